#[lockstep::sim_test(max_time = "30 parsecs")]
async fn far() {}

#[lockstep::sim_test(max_time = 30)]
async fn unitless() {}

fn main() {}
