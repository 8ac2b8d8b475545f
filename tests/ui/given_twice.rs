#[lockstep::sim_test(seeds = 5, seeds = 6)]
async fn twice() {}

fn main() {}
