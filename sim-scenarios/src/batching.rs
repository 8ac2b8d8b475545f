//! `batching` (seed section: Performance Optimization, Batching).
//!
//! The tutorial's `demonstrate_batching_optimization`: 20 items processed
//! one by one (0.1 s each) or in batches of 5 (0.05 s per item, so 0.25 s
//! a batch).
//!
//! - `gathered` is the tutorial's code: both ways are gathered, so the 20
//!   individual items take 0.1 s and the four batches 0.25 s. Batching is
//!   2.5 times *slower* here (the tutorial's printed "speedup" is 0.4x):
//!   batching saves per-item work only when the work is serialised.
//! - `sequential` processes items and batches one after another, where the
//!   cheaper per-item cost shows: 2 s individually, 1 s batched, a 2x
//!   speed-up.
//!
//! Both variants pass every seed; their virtual times are the assertions.

use std::convert::Infallible;

use lockstep::prelude::*;

use crate::support::secs;
use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "batching",
    "20 items one by one vs batches of 5: gathered 0.1 s vs 0.25 s, sequential 2 s vs 1 s",
    &[
        Variant::new("gathered", Expect::Pass, |sim| sim.run(gathered())),
        Variant::new("sequential", Expect::Pass, |sim| sim.run(sequential())),
    ],
)
.seeds(300);

async fn process_item(id: u32) -> Result<String, Infallible> {
    sleep(Duration::from_millis(100)).await;
    Ok(format!("Processed-{id}"))
}

async fn process_batch(ids: Vec<u32>) -> Result<Vec<String>, Infallible> {
    sleep(Duration::from_millis(50) * ids.len() as u32).await;
    Ok(ids
        .iter()
        .map(|id| format!("BatchProcessed-{id}"))
        .collect())
}

fn batches() -> Vec<Vec<u32>> {
    (1..=20u32)
        .collect::<Vec<_>>()
        .chunks(5)
        .map(<[u32]>::to_vec)
        .collect()
}

/// The tutorial's code: both ways gathered.
pub async fn gathered() {
    let start = Instant::now();
    let individual = gather((1..=20).map(process_item)).await.unwrap();
    let individual_time = Instant::now() - start;
    let start = Instant::now();
    let batched: Vec<String> = gather(batches().into_iter().map(process_batch))
        .await
        .unwrap()
        .concat();
    let batch_time = Instant::now() - start;
    lockstep::trace!(
        "individual: {individual_time:?} for {} items; batched: {batch_time:?} for {} items; speedup {:.1}x",
        individual.len(),
        batched.len(),
        individual_time.as_secs_f64() / batch_time.as_secs_f64()
    );
    assert_eq!((individual.len(), batched.len()), (20, 20));
    assert_eq!(individual_time, secs(0.1));
    assert_eq!(batch_time, secs(0.25), "gathered, batching is slower");
}

/// One after another: where batching pays.
pub async fn sequential() {
    let start = Instant::now();
    let mut individual = Vec::new();
    for id in 1..=20 {
        individual.push(process_item(id).await.unwrap());
    }
    let individual_time = Instant::now() - start;
    let start = Instant::now();
    let mut batched = Vec::new();
    for batch in batches() {
        batched.extend(process_batch(batch).await.unwrap());
    }
    let batch_time = Instant::now() - start;
    lockstep::trace!("individual: {individual_time:?}; batched: {batch_time:?}");
    assert_eq!((individual.len(), batched.len()), (20, 20));
    assert_eq!(individual_time, secs(2.0));
    assert_eq!(batch_time, secs(1.0), "batching halves the serial time");
}
