//! `task-management` (seed section: Task Management and Control).
//!
//! The tutorial's `demonstrate_task_management`: five workers, each with a
//! seeded 1–4 s of work in one-second steps and a 30 % chance of failing at
//! the end; a monitor reports the counts every 0.5 s; after 2 s every
//! unfinished worker is cancelled, and all are gathered with
//! `return_exceptions`. A worker's `except CancelledError` cleanup is a
//! drop guard here (an aborted task's future is dropped, so its guards
//! run).
//!
//! Invariants: every worker ends exactly one way (ok, failed or cancelled)
//! and the gathered result says the same; the cleanup ran for exactly the
//! cancelled ones; a worker whose steps end before 2 s is never cancelled,
//! one whose steps end after 2 s always is. A worker whose last step ends
//! *at* 2 s races the cancellation: which wins is the schedule's choice,
//! and both outcomes are explored (the tutorial's loop decides it by
//! wall-clock jitter).
//!
//! One variant, `cancel-after-2s`; it passes every seed tried.

use std::cell::RefCell;
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::task::{Builder, JoinError};

use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "task-management",
    "workers with seeded durations and 30% failures, cancelled after 2 s; each ends ok, failed or cancelled",
    &[Variant::new("cancel-after-2s", Expect::Pass, |sim| {
        sim.run(demonstrate_task_management())
    })],
)
.seeds(1000);

/// How a worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Running,
    Ok,
    Failed,
    Cancelled,
}

type Ends = Rc<RefCell<Vec<End>>>;

/// Records `Cancelled` when dropped before the worker ended: the
/// tutorial's `except asyncio.CancelledError` block.
struct Cleanup {
    ends: Ends,
    i: usize,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut ends = self.ends.borrow_mut();
        if ends[self.i] == End::Running {
            ends[self.i] = End::Cancelled;
            lockstep::trace!("worker W{}: cancelled during work", self.i + 1);
        }
    }
}

async fn worker_task(i: usize, steps: u32, fails: bool, ends: Ends) -> Result<String, String> {
    let _cleanup = Cleanup {
        ends: ends.clone(),
        i,
    };
    let id = format!("W{}", i + 1);
    lockstep::trace!("worker {id}: starting {steps}s of work");
    for step in 1..=steps {
        sleep(Duration::from_secs(1)).await;
        lockstep::trace!("worker {id}: {step}/{steps} seconds complete");
    }
    if fails {
        ends.borrow_mut()[i] = End::Failed;
        return Err(format!("worker {id} encountered an error!"));
    }
    ends.borrow_mut()[i] = End::Ok;
    lockstep::trace!("worker {id}: work completed successfully");
    Ok(format!("Success-{id}"))
}

/// The tutorial's `demonstrate_task_management`.
pub async fn demonstrate_task_management() {
    const WORKERS: usize = 5;
    let ends: Ends = Rc::new(RefCell::new(vec![End::Running; WORKERS]));
    // random.uniform(1, 4), truncated to whole steps as the loop does.
    let plans: Vec<(u32, bool)> = (0..WORKERS)
        .map(|_| {
            let work: f64 = lockstep::random::range(1.0..4.0);
            (work as u32, lockstep::random::bool(0.3))
        })
        .collect();
    let tasks: Vec<_> = plans
        .iter()
        .enumerate()
        .map(|(i, &(steps, fails))| {
            Builder::new()
                .name(format!("W{}", i + 1))
                .spawn(worker_task(i, steps, fails, ends.clone()))
        })
        .collect();

    let monitor = {
        let ends = ends.clone();
        Builder::new().name("monitor").spawn(async move {
            loop {
                sleep(Duration::from_millis(500)).await;
                let count = |e| ends.borrow().iter().filter(|&&x| x == e).count();
                let pending = count(End::Running);
                lockstep::trace!(
                    "status: {pending} pending, {} completed, {} cancelled, {} failed",
                    count(End::Ok),
                    count(End::Cancelled),
                    count(End::Failed)
                );
                if pending == 0 {
                    break;
                }
            }
        })
    };

    sleep(Duration::from_secs(2)).await;
    for t in tasks.iter().filter(|t| !t.is_finished()) {
        lockstep::trace!("cancelling slow task {}", t.id());
        t.abort();
    }
    let results = gather_settled(tasks).await;
    monitor.abort();
    let _ = monitor.await;

    for (i, result) in results.into_iter().enumerate() {
        let end = ends.borrow()[i];
        let (steps, fails) = plans[i];
        let seen = match result.expect("a gathered handle always ends") {
            Ok(Ok(_)) => End::Ok,
            Ok(Err(_)) => End::Failed,
            Err(JoinError::Cancelled) => End::Cancelled,
            Err(e) => panic!("worker W{} panicked: {e}", i + 1),
        };
        lockstep::trace!("task {}: {seen:?}", i + 1);
        assert_eq!(seen, end, "W{}: the result and the worker disagree", i + 1);
        match steps {
            0..2 => assert_ne!(end, End::Cancelled, "W{} ended before 2 s", i + 1),
            2 => {} // ends at 2 s: races the cancellation
            _ => assert_eq!(end, End::Cancelled, "W{} was still working at 2 s", i + 1),
        }
        if end != End::Cancelled {
            assert_eq!(end == End::Failed, fails);
        }
    }
}
