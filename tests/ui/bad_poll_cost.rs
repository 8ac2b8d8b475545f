#[lockstep::sim_test(policy = "random+cost:fast")]
async fn charged() {}

#[lockstep::sim_test(policy = "random+speed:2")]
async fn unknown_option() {}

#[lockstep::sim_test(policy = "fifo+cost:1ms")]
async fn fifo_never_charges() {}

fn main() {}
