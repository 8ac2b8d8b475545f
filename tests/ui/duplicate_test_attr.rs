#[lockstep::sim_test]
#[test]
async fn twice() {}

fn main() {}
