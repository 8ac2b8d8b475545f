#[lockstep::sim_test(faults = 2.5)]
async fn too_faulty() {}

#[lockstep::sim_test(faults = 1)]
async fn integer() {}

fn main() {}
