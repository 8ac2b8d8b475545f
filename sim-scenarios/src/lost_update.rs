//! `lost-update` (seed section: asyncio.Lock).
//!
//! Workers each increment a shared counter: read it, suspend (the
//! tutorial's `await asyncio.sleep(0.01)` in the middle of the
//! read-modify-write), write back what they read plus one.
//!
//! The buggy variant is the tutorial's `unsafe_increment`: when another
//! worker runs between a read and its write, that worker's increment is
//! lost. The explorer finds seeds where the final count is below the number
//! of workers: 67 of the first 100 seeds fail, the first at seed 0x5.
//!
//! The fixed variant is its `safe_increment`: the same read, suspend, write,
//! inside `async with self.lock`, here a [`lockstep::sync::Mutex`]. Workers
//! queue on the lock in arrival order and every seed counts them all (300
//! seeds in the tests); the trace shows each hand-off of the lock.

use std::cell::Cell;
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::sync::Mutex;
use lockstep::task::Builder;

use lockstep::check::FailureKind;

use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "lost-update",
    "read, suspend, write: concurrent increments are lost for some schedules",
    &[
        Variant::new("buggy", Expect::Fails(FailureKind::Panic), |sim| {
            sim.run(counter(WORKERS, Increment::Unsafe))
        }),
        Variant::new("fixed", Expect::Pass, |sim| {
            sim.run(counter(WORKERS, Increment::Locked))
        }),
    ],
)
.seeds(1000);

const WORKERS: usize = 3;

/// How the workers increment the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Increment {
    /// Read, suspend, write: the tutorial's `unsafe_increment`.
    Unsafe,
    /// The same, holding a mutex throughout: its `safe_increment`.
    Locked,
}

/// `workers` tasks increment one counter once each.
pub async fn counter(workers: usize, how: Increment) {
    let counter = Rc::new(Cell::new(0));
    let lock = Rc::new(Mutex::named("counter", ()));
    let tasks: Vec<_> = (0..workers)
        .map(|i| {
            let (c, lock) = (counter.clone(), lock.clone());
            Builder::new()
                .name(format!("worker-{i}"))
                .spawn(async move {
                    // Arrive at slightly different, seeded times.
                    sleep(lockstep::random::duration(
                        Duration::ZERO..Duration::from_millis(6),
                    ))
                    .await;
                    let _guard = match how {
                        Increment::Locked => Some(lock.lock().await),
                        Increment::Unsafe => None,
                    };
                    let read = c.get();
                    sleep(Duration::from_millis(1)).await;
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
