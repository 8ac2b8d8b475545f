#[lockstep::sim_test(seedz = 5)]
async fn typo() {}

fn main() {}
