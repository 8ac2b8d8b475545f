#[lockstep::sim_test(policy = "random+cost:fast")]
async fn charged() {}

#[lockstep::sim_test(policy = "random+speed:2")]
async fn unknown_option() {}

#[lockstep::sim_test(policy = "fifo+cost:1ms")]
async fn fifo_never_charges() {}

#[lockstep::sim_test(policy = "random+late:2")]
async fn late_probability_above_one() {}

#[lockstep::sim_test(policy = "mix+late:off+late:0.1")]
async fn late_given_twice() {}

fn main() {}
