#[lockstep::sim_test(seeds = 0)]
async fn none() {}

fn main() {}
