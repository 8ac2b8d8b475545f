#[lockstep::sim_test]
async fn answer() -> u32 {
    42
}

fn main() {}
