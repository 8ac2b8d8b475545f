#[lockstep::sim_test(seed = 1, seeds = 10)]
async fn both() {}

fn main() {}
