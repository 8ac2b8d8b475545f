#[lockstep::sim_test(faults = 2.5)]
async fn too_faulty() {}

#[lockstep::sim_test(faults = 1)]
async fn integer() {}

#[lockstep::sim_test(faults = -0.1)]
async fn negative() {}

#[lockstep::sim_test(blocked_poll = "soon")]
async fn bad_threshold() {}

fn main() {}
