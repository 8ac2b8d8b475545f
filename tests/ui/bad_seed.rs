#[lockstep::sim_test(seed = "0xg00d")]
async fn hex() {}

#[lockstep::sim_test(seed = 99999999999999999999999)]
async fn huge() {}

fn main() {}
