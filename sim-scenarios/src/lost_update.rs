//! `lost-update` (seed section: asyncio.Lock).
//!
//! Ten workers each increment a shared counter. The buggy variant reads the
//! counter, suspends (an `await` in the middle of the read-modify-write, the
//! tutorial's `await asyncio.sleep(0.001)`), then writes back what it read
//! plus one: when another worker runs in between, its increment is lost.
//! The explorer finds seeds where the final count is below ten.
//!
//! The fixed variant does the read-modify-write without a suspension point
//! in the middle, which on a single-threaded executor makes it atomic, and
//! passes for every seed.

use std::cell::Cell;
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::task::Builder;

use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario {
    name: "lost-update",
    description: "read, suspend, write: concurrent increments are lost for some schedules",
    variants: &[
        Variant {
            name: "buggy",
            expect: Expect::SomeSeedFails,
            run: |sim| sim.run(counter(WORKERS, true)),
        },
        Variant {
            name: "fixed",
            expect: Expect::AllSeedsPass,
            run: |sim| sim.run(counter(WORKERS, false)),
        },
    ],
};

const WORKERS: usize = 3;

/// `workers` tasks increment one counter once each; `suspend` puts a sleep
/// between the read and the write.
pub async fn counter(workers: usize, suspend: bool) {
    let counter = Rc::new(Cell::new(0));
    let tasks: Vec<_> = (0..workers)
        .map(|i| {
            let c = counter.clone();
            Builder::new()
                .name(format!("worker-{i}"))
                .spawn(async move {
                    // Arrive at slightly different, seeded times.
                    sleep(lockstep::random::duration(
                        Duration::ZERO..Duration::from_millis(6),
                    ))
                    .await;
                    let read = c.get();
                    if suspend {
                        sleep(Duration::from_millis(1)).await;
                    }
                    c.set(read + 1);
                    lockstep::trace!("worker-{i} wrote {}", read + 1);
                })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        counter.get(),
        workers,
        "lost update: {} of {workers} increments survived",
        counter.get()
    );
}
