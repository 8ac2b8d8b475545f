//! `wait-conditions` (seed section: asyncio.wait()).
//!
//! The tutorial's `demonstrate_wait_conditions` and
//! `demonstrate_wait_with_timeout`, with [`wait`]:
//!
//! - `FIRST_COMPLETED` over tasks of 1, 2 and 3 s returns at 1 s with A
//!   done and two pending, which are cancelled and awaited;
//! - `FIRST_EXCEPTION` over X (2 s), Y (1 s, fails) and Z (3 s) returns at
//!   1 s with Y's error; X and Z are cancelled and awaited;
//! - `ALL_COMPLETED` with a 2 s timeout over 1, 3 and 5 s tasks returns at
//!   2 s with Fast done; Medium and Slow are cancelled.
//!
//! Every cancelled task runs its `except CancelledError` cleanup (a drop
//! guard here) before the demo goes on; nothing is left running. One
//! variant, `tutorial`, which passes every seed tried.

use std::cell::Cell;
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::task::{Builder, JoinError, JoinHandle};

use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "wait-conditions",
    "FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED with timeout; pending tasks cancelled and awaited",
    &[Variant::new("tutorial", Expect::Pass, |sim| {
        sim.run(async {
            demonstrate_wait_conditions().await;
            demonstrate_wait_with_timeout().await;
        })
    })],
)
.seeds(500);

/// Counts cleanups: the tutorial's `except asyncio.CancelledError`.
struct Cleanup(&'static str, Rc<Cell<u32>>, bool);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.2 {
            lockstep::trace!("task {}: cancelled", self.0);
            self.1.set(self.1.get() + 1);
        }
    }
}

type Task = JoinHandle<Result<String, String>>;

/// The tutorial's `controlled_task`, spawned.
fn controlled_task(id: &'static str, secs: u64, fail: bool, cancelled: &Rc<Cell<u32>>) -> Task {
    let cancelled = cancelled.clone();
    Builder::new().name(id).spawn(async move {
        lockstep::trace!("task {id}: starting");
        let mut cleanup = Cleanup(id, cancelled, false);
        sleep(Duration::from_secs(secs)).await;
        cleanup.2 = true;
        if fail {
            return Err(format!("task {id} intentionally failed"));
        }
        lockstep::trace!("task {id}: completed successfully");
        Ok(format!("Result from task {id}"))
    })
}

/// Cancels `pending` and waits for the cancellations.
async fn cancel_all(pending: Vec<Task>) {
    for t in &pending {
        t.abort();
    }
    for t in pending {
        assert!(matches!(t.await, Err(JoinError::Cancelled)));
    }
}

/// The tutorial's `demonstrate_wait_conditions`.
pub async fn demonstrate_wait_conditions() {
    let cancelled = Rc::new(Cell::new(0));
    let start = Instant::now();
    let tasks = [
        controlled_task("A", 1, false, &cancelled),
        controlled_task("B", 2, false, &cancelled),
        controlled_task("C", 3, false, &cancelled),
    ];
    let (done, pending) = wait(tasks, WaitFor::FirstCompleted, None).await;
    lockstep::trace!("first completion after {:?}", Instant::now() - start);
    assert_eq!((done.len(), pending.len()), (1, 2));
    assert_eq!(Instant::now() - start, Duration::from_secs(1));
    for t in done {
        assert_eq!(t.await.unwrap().unwrap(), "Result from task A");
    }
    cancel_all(pending).await;
    assert_eq!(cancelled.get(), 2);

    let start = Instant::now();
    let tasks = [
        controlled_task("X", 2, false, &cancelled),
        controlled_task("Y", 1, true, &cancelled),
        controlled_task("Z", 3, false, &cancelled),
    ];
    let (done, pending) = wait(tasks, WaitFor::FirstException, None).await;
    lockstep::trace!("first exception after {:?}", Instant::now() - start);
    assert_eq!(Instant::now() - start, Duration::from_secs(1));
    assert_eq!(done.len(), 1);
    for t in done {
        let err = t.await.unwrap().unwrap_err();
        lockstep::trace!("task failed: {err}");
        assert_eq!(err, "task Y intentionally failed");
    }
    cancel_all(pending).await;
    assert_eq!(cancelled.get(), 4);
}

/// The tutorial's `demonstrate_wait_with_timeout`.
pub async fn demonstrate_wait_with_timeout() {
    let cancelled = Rc::new(Cell::new(0));
    let start = Instant::now();
    let tasks = [
        controlled_task("Fast", 1, false, &cancelled),
        controlled_task("Medium", 3, false, &cancelled),
        controlled_task("Slow", 5, false, &cancelled),
    ];
    let (done, pending) = wait(tasks, WaitFor::AllCompleted, Some(Duration::from_secs(2))).await;
    lockstep::trace!(
        "timeout reached after {:?}: {} completed, {} timed out",
        Instant::now() - start,
        done.len(),
        pending.len()
    );
    assert_eq!(Instant::now() - start, Duration::from_secs(2));
    assert_eq!((done.len(), pending.len()), (1, 2));
    for t in done {
        assert_eq!(t.await.unwrap().unwrap(), "Result from task Fast");
    }
    cancel_all(pending).await;
    assert_eq!(cancelled.get(), 2);
}
