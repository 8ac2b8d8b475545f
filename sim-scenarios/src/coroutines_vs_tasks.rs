//! `coroutines-vs-tasks` (seed section: Tasks vs Coroutines).
//!
//! The tutorial's `demonstrate_tasks_vs_coroutines`. A Rust future, like a
//! Python coroutine, does nothing until awaited: `coroutines` creates two
//! 2 s `background_work` futures, sleeps 1 s (no work starts: the trace has
//! no progress line before 1 s), then awaits them one after the other, so
//! the run takes 1 + 2 + 2 = 5 s. `tasks` spawns them instead: they start
//! at once, progress during the 1 s sleep, and both are done at 2 s, the
//! 3 s the tutorial says tasks save.
//!
//! Both variants pass every seed; the virtual times (5 s and 2 s) and the
//! instants of each progress step are the assertions.

use std::cell::RefCell;
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::task::Builder;

use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "coroutines-vs-tasks",
    "un-spawned futures run only when awaited (5 s); spawned tasks start at once (2 s)",
    &[
        Variant::new("coroutines", Expect::Pass, |sim| sim.run(coroutines())),
        Variant::new("tasks", Expect::Pass, |sim| sim.run(tasks())),
    ],
)
.seeds(300);

type Log = Rc<RefCell<Vec<(String, Duration)>>>;

/// The tutorial's `background_work`: `duration` one-second steps.
async fn background_work(id: &'static str, duration: u32, log: Log) -> String {
    lockstep::trace!("work {id}: starting ({duration}s)");
    for i in 1..=duration {
        sleep(Duration::from_secs(1)).await;
        lockstep::trace!("work {id}: progress {i}/{duration}");
        log.borrow_mut()
            .push((format!("{id} {i}"), Instant::now().since_start()));
    }
    format!("Result-{id}")
}

/// Futures created, not awaited until after a 1 s sleep: sequential.
pub async fn coroutines() {
    let log = Log::default();
    let start = Instant::now();
    let coro1 = background_work("Coro-A", 2, log.clone());
    let coro2 = background_work("Coro-B", 2, log.clone());
    sleep(Duration::from_secs(1)).await;
    assert!(log.borrow().is_empty(), "no work has started yet");
    let r1 = coro1.await;
    let r2 = coro2.await;
    let took = Instant::now() - start;
    lockstep::trace!("coroutines completed in {took:?} (sequential)");
    assert_eq!(
        (r1.as_str(), r2.as_str()),
        ("Result-Coro-A", "Result-Coro-B")
    );
    assert_eq!(took, Duration::from_secs(5));
    let at: Vec<u64> = log.borrow().iter().map(|(_, t)| t.as_secs()).collect();
    assert_eq!(at, [2, 3, 4, 5]);
}

/// The same work spawned as tasks: it starts at once and overlaps.
pub async fn tasks() {
    let log = Log::default();
    let start = Instant::now();
    let task1 = Builder::new()
        .name("Task-A")
        .spawn(background_work("Task-A", 2, log.clone()));
    let task2 = Builder::new()
        .name("Task-B")
        .spawn(background_work("Task-B", 2, log.clone()));
    sleep(Duration::from_secs(1)).await;
    lockstep::trace!("1 second later: work is already running");
    let results = gather_settled([task1, task2]).await;
    let took = Instant::now() - start;
    lockstep::trace!("tasks completed in {took:?} (concurrent)");
    for r in results {
        assert!(r.unwrap().unwrap().starts_with("Result-Task-"));
    }
    assert_eq!(took, Duration::from_secs(2));
    let mut at: Vec<u64> = log.borrow().iter().map(|(_, t)| t.as_secs()).collect();
    at.sort();
    assert_eq!(at, [1, 1, 2, 2], "both tasks progressed during the sleep");
}
