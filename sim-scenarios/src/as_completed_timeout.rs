//! `as-completed-timeout` (seed section: asyncio.as_completed()).
//!
//! The tutorial's `demonstrate_as_completed`: five tasks of seeded 0.5–3 s
//! are consumed with [`as_completed`]; results arrive in completion order
//! (the order of their durations), not creation order, and the last one at
//! the longest duration. Then `demonstrate_as_completed_with_timeout`:
//! tasks of 1, 3, 2 and 4 s with an overall timeout of 2.5 s yield A at
//! 1 s, C at 2 s, then the timeout at 2.5 s, which stops the loop.
//!
//! One difference from asyncio, by design: asyncio leaves the two tasks
//! that missed the timeout running; lockstep's `as_completed` owns its
//! tasks and cancels them when the stream is dropped, so nothing leaks.
//!
//! One variant, `tutorial`, which passes every seed tried.

use lockstep::prelude::*;

use crate::support::secs;
use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "as-completed-timeout",
    "results arrive in completion order; the overall timeout stops the loop after the 1 s and 2 s tasks",
    &[Variant::new("tutorial", Expect::Pass, |sim| {
        sim.run(async {
            demonstrate_as_completed().await;
            demonstrate_as_completed_with_timeout().await;
        })
    })],
)
.seeds(1000);

/// The tutorial's `demonstrate_as_completed`.
pub async fn demonstrate_as_completed() {
    let start = Instant::now();
    let durations: Vec<Duration> = (0..5)
        .map(|_| lockstep::random::duration(secs(0.5)..secs(3.0)))
        .collect();
    let tasks = durations.iter().enumerate().map(|(i, &d)| async move {
        let id = format!("T{}", i + 1);
        lockstep::trace!("task {id}: starting ({d:?} estimated)");
        sleep(d).await;
        lockstep::trace!("task {id}: completed after {d:?}");
        (i, Instant::now())
    });
    let mut results = as_completed(tasks, None);
    let mut order = Vec::new();
    while let Some(next) = results.next().await {
        let (i, completed_at) = next.expect("no timeout was set");
        let elapsed = Instant::now() - start;
        lockstep::trace!(
            "received result from T{} after {elapsed:?} total elapsed",
            i + 1
        );
        assert_eq!(
            completed_at,
            Instant::now(),
            "handed over the instant it completed"
        );
        order.push(i);
    }
    let mut by_duration: Vec<usize> = (0..5).collect();
    by_duration.sort_by_key(|&i| durations[i]);
    let completion: Vec<Duration> = order.iter().map(|&i| durations[i]).collect();
    assert!(
        completion.windows(2).all(|w| w[0] <= w[1]),
        "results arrived in completion order: {completion:?}"
    );
    assert_eq!(order.len(), 5);
    let longest = durations.iter().max().copied().unwrap_or_default();
    assert_eq!(Instant::now() - start, longest);
}

/// The tutorial's `demonstrate_as_completed_with_timeout`.
pub async fn demonstrate_as_completed_with_timeout() {
    let start = Instant::now();
    let slow_task = |id: &'static str, s: u64| async move {
        sleep(Duration::from_secs(s)).await;
        format!("Task {id} result")
    };
    let tasks = [
        slow_task("A", 1),
        slow_task("B", 3),
        slow_task("C", 2),
        slow_task("D", 4),
    ];
    let mut results = as_completed(tasks, Some(secs(2.5)));
    let mut completed = Vec::new();
    while let Some(next) = results.next().await {
        match next {
            Ok(result) => {
                lockstep::trace!("completed {}: {result}", completed.len() + 1);
                completed.push((result, Instant::now() - start));
            }
            Err(_) => {
                lockstep::trace!(
                    "overall timeout reached after 2.5s; {} tasks completed",
                    completed.len()
                );
                break;
            }
        }
    }
    assert_eq!(
        completed,
        [
            ("Task A result".to_string(), secs(1.0)),
            ("Task C result".to_string(), secs(2.0))
        ]
    );
    assert_eq!(Instant::now() - start, secs(2.5));
}
