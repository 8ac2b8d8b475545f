#[lockstep::sim_test(policy = "lifo")]
async fn stack() {}

fn main() {}
