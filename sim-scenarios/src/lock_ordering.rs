//! `lock-ordering-deadlock` (seed section: Deadlock Avoidance).
//!
//! The buggy variant is the tutorial's `deadlock_example`: `task_a` takes
//! `lock1`, sleeps 0.1 s, then wants `lock2`; `task_b` takes them in the
//! opposite order. Both are gathered under `wait_for(.., timeout=1.0)`, the
//! tutorial's way of noticing the deadlock a second later ("Deadlock
//! detected! Tasks timed out"). lockstep reports it at 0.1 s instead, when
//! the cycle closes, naming both tasks, both locks and the cycle: the
//! timeout would only have hidden the bug. Every seed deadlocks (the
//! tutorial's sleeps make the overlap certain): 100 of the first 100, the
//! first at seed 0x0.
//!
//! The fixed variant is its `deadlock_solution`: both tasks take `lock1`
//! then `lock2`. One order, no cycle: every seed finishes at 0.2 s.

use std::convert::Infallible;
use std::rc::Rc;

use lockstep::future::wait_for;
use lockstep::prelude::*;
use lockstep::sync::Mutex;

use lockstep::check::FailureKind;

use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "lock-ordering-deadlock",
    "two locks taken in opposite orders deadlock; one order never does",
    &[
        Variant::new("buggy", Expect::Fails(FailureKind::Deadlock), |sim| {
            sim.run(deadlock_example())
        }),
        Variant::new("fixed", Expect::Pass, |sim| sim.run(deadlock_solution())),
    ],
)
.seeds(300);

type Locks = (Rc<Mutex<()>>, Rc<Mutex<()>>);

fn locks() -> Locks {
    (
        Rc::new(Mutex::named("lock1", ())),
        Rc::new(Mutex::named("lock2", ())),
    )
}

/// Takes `first`, then `second`; sleeps 0.1 s `between` the two or while
/// holding both. Never fails: the `Result` is for `gather`.
async fn worker(
    name: &str,
    first: Rc<Mutex<()>>,
    second: Rc<Mutex<()>>,
    between: bool,
) -> Result<(), Infallible> {
    let _a = first.lock().await;
    lockstep::trace!("{name}: acquired {}", first.name().unwrap_or_default());
    if between {
        sleep(Duration::from_millis(100)).await;
        lockstep::trace!(
            "{name}: trying to acquire {}",
            second.name().unwrap_or_default()
        );
    }
    let _b = second.lock().await;
    lockstep::trace!("{name}: acquired {}", second.name().unwrap_or_default());
    if !between {
        sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The tutorial's `deadlock_example`.
pub async fn deadlock_example() {
    let (lock1, lock2) = locks();
    let task_a = worker("Task A", lock1.clone(), lock2.clone(), true);
    let task_b = worker("Task B", lock2, lock1, true);
    let both = gather([task_a, task_b]);
    match wait_for(Duration::from_secs(1), both).await {
        Ok(_) => lockstep::trace!("no deadlock occurred"),
        Err(_) => lockstep::trace!("deadlock detected! tasks timed out"),
    }
}

/// The tutorial's `deadlock_solution`: one lock order.
pub async fn deadlock_solution() {
    let (lock1, lock2) = locks();
    let safe_a = worker("Safe Task A", lock1.clone(), lock2.clone(), false);
    let safe_b = worker("Safe Task B", lock1, lock2, false);
    gather([safe_a, safe_b]).await.unwrap();
    assert_eq!(Instant::now(), Instant::START + Duration::from_millis(200));
    lockstep::trace!("all tasks completed successfully");
}
