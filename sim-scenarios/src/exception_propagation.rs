//! `exception-propagation` (seed section: Error Handling and Resilience,
//! Exception Propagation in Concurrent Code).
//!
//! The tutorial's four demos:
//!
//! - `gather` fail-fast over R1, U1 (fails) and R2, all 0.5 s: the error
//!   comes back at 0.5 s; `gather_settled` (`return_exceptions=True`)
//!   returns `[ok, error, ok]`;
//! - per-task handling: T1–T4 (0.3 s, T2 and T4 fail) awaited one by one:
//!   2 successful, 2 errors, at 0.3 s;
//! - `wait_for(slow_operation(3 s), 2 s)` times out at 2 s;
//! - partial completion: `wait` over 1, 2, 4 and 5 s operations with a
//!   2.5 s timeout: two done, two pending, which are cancelled.
//!
//! (The last demo passes bare coroutines to `asyncio.wait`, which Python
//! 3.11 rejects with a `TypeError`; the port spawns them, as the tutorial
//! means.) One variant, `tutorial`, which passes every seed tried: the
//! fail-fast `gather`'s siblings end at the same instant as the error, so
//! nothing is left running (compare `gather-semantics`).

use lockstep::future::wait_for;
use lockstep::prelude::*;
use lockstep::task::{Builder, JoinHandle};

use crate::support::secs;
use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "exception-propagation",
    "failure in gather, per-task handling, wait_for timeout, partial completion",
    &[Variant::new("tutorial", Expect::Pass, |sim| {
        sim.run(async {
            demonstrate_exception_propagation().await;
            demonstrate_task_exception_handling().await;
            demonstrate_timeout_handling().await;
        })
    })],
)
.seeds(500);

async fn reliable_task(id: &'static str) -> Result<String, String> {
    sleep(Duration::from_millis(500)).await;
    Ok(format!("Success from {id}"))
}

async fn unreliable_task(id: &'static str, failure_rate: f64) -> Result<String, String> {
    sleep(Duration::from_millis(500)).await;
    if lockstep::random::f64() < failure_rate {
        return Err(format!("Task {id} failed randomly!"));
    }
    Ok(format!("Success from {id}"))
}

type Boxed = std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>>>>;

/// The tutorial's `demonstrate_exception_propagation`.
pub async fn demonstrate_exception_propagation() {
    let start = Instant::now();
    let failed = gather([
        Box::pin(reliable_task("R1")) as Boxed,
        Box::pin(unreliable_task("U1", 1.0)),
        Box::pin(reliable_task("R2")),
    ])
    .await;
    lockstep::trace!("gather() failed: {failed:?}");
    assert_eq!(failed, Err("Task U1 failed randomly!".to_string()));
    assert_eq!(Instant::now() - start, secs(0.5));

    let results = gather_settled([
        Box::pin(reliable_task("R3")) as Boxed,
        Box::pin(unreliable_task("U2", 1.0)),
        Box::pin(reliable_task("R4")),
    ])
    .await;
    let results: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    lockstep::trace!("mixed results: {results:?}");
    assert_eq!(
        results,
        [
            Ok("Success from R3".to_string()),
            Err("Task U2 failed randomly!".to_string()),
            Ok("Success from R4".to_string())
        ]
    );
}

/// The tutorial's `demonstrate_task_exception_handling`.
pub async fn demonstrate_task_exception_handling() {
    let monitored = |id: &'static str, fail: bool| {
        Builder::new().name(id).spawn(async move {
            sleep(Duration::from_millis(300)).await;
            if fail {
                return Err(format!("Task {id} encountered an error"));
            }
            Ok(format!("Result from {id}"))
        })
    };
    let start = Instant::now();
    let tasks = [
        monitored("T1", false),
        monitored("T2", true),
        monitored("T3", false),
        monitored("T4", true),
    ];
    let mut ok = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(r) => {
                ok += 1;
                lockstep::trace!("task {}: {r}", i + 1);
            }
            Err(e) => lockstep::trace!("task {}: {e}", i + 1),
        }
    }
    assert_eq!(ok, 2);
    assert_eq!(Instant::now() - start, secs(0.3));
}

fn slow_operation(
    id: &'static str,
    s: u64,
) -> JoinHandle<Result<String, std::convert::Infallible>> {
    Builder::new().name(id).spawn(async move {
        lockstep::trace!("operation {id}: starting ({s}s)");
        sleep(Duration::from_secs(s)).await;
        lockstep::trace!("operation {id}: completed");
        Ok(format!("Result from {id}"))
    })
}

/// The tutorial's `demonstrate_timeout_handling`.
pub async fn demonstrate_timeout_handling() {
    let start = Instant::now();
    let op = slow_operation("Slow1", 3);
    let timed_out = wait_for(Duration::from_secs(2), op).await.is_err();
    lockstep::trace!("operation timed out: {timed_out}");
    assert!(timed_out);
    assert_eq!(Instant::now() - start, secs(2.0));

    let start = Instant::now();
    let ops = [
        slow_operation("Op1", 1),
        slow_operation("Op2", 2),
        slow_operation("Op3", 4),
        slow_operation("Op4", 5),
    ];
    let (completed, pending) = wait(ops, WaitFor::AllCompleted, Some(secs(2.5))).await;
    lockstep::trace!("completed: {}, pending: {}", completed.len(), pending.len());
    assert_eq!((completed.len(), pending.len()), (2, 2));
    assert_eq!(Instant::now() - start, secs(2.5));
    for t in completed {
        lockstep::trace!("completed: {}", t.await.unwrap().unwrap());
    }
    for t in &pending {
        t.abort();
    }
    for t in pending {
        assert!(t.await.unwrap_err().is_cancelled());
    }
}
