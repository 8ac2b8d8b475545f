//! `forgotten-await` (seed section: Common Pitfalls, Forgotten await).
//!
//! The tutorial's `demonstrate_forgotten_await`. Its first two mistakes do
//! not survive the port: a Rust future, like a coroutine, does nothing
//! until awaited, but calling an `async fn` and dropping the future is a
//! compile-time warning (`unused_must_use`, an error under `-D warnings`).
//! `futures_do_nothing` keeps the demonstration behind an `allow`: the
//! function never runs (its counter stays 0), and the trace has no line
//! from it.
//!
//! What the compiler cannot see is the task version of the mistake: a
//! task spawned and its handle dropped, "fire and forget", so nobody
//! awaits its result. One of the three calls fails here (the tutorial's
//! function never does; the failure is what makes the lost await matter).
//!
//! - `buggy` spawns the three calls, drops the handles and goes on with
//!   its work for half a second: call 1's `Err` is returned to nobody. The
//!   run fails with `unobserved-error` on every seed (first failing seed
//!   0x0, 100 of the first 100), naming the task, where it was spawned and
//!   its output type: asyncio's "Task exception was never retrieved", made
//!   a failure. (Ending the program before the calls finish is caught too,
//!   as a leak of the three tasks.)
//! - `fixed` is `correct_loop_example`: the tasks are gathered with their
//!   results, and the failure is handled. Passes every seed tried.

use std::cell::Cell;
use std::rc::Rc;

use lockstep::check::FailureKind;
use lockstep::prelude::*;
use lockstep::task::Builder;

use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "forgotten-await",
    "a spawned task nobody awaits: its error is reported as unobserved",
    &[
        Variant::new(
            "buggy",
            Expect::Fails(FailureKind::UnobservedError),
            |sim| {
                sim.run(async {
                    futures_do_nothing().await;
                    loop_await_mistake().await;
                })
            },
        ),
        Variant::new("fixed", Expect::Pass, |sim| {
            sim.run(async {
                futures_do_nothing().await;
                correct_loop_example().await;
            })
        }),
    ],
)
.seeds(1000);

/// The tutorial's `important_async_function`; call 1 fails.
async fn important_async_function(i: u32, ran: Rc<Cell<u32>>) -> Result<String, String> {
    ran.set(ran.get() + 1);
    sleep(Duration::from_millis(100)).await;
    if i == 1 {
        lockstep::trace!("important call {i} failed");
        return Err(format!("important call {i} failed"));
    }
    Ok("Important result".to_string())
}

/// `forgot_await_example`: a future created and dropped never runs.
pub async fn futures_do_nothing() {
    let ran = Rc::new(Cell::new(0));
    #[allow(unused_must_use)]
    {
        important_async_function(0, ran.clone());
    }
    sleep(Duration::from_millis(100)).await;
    assert_eq!(ran.get(), 0, "the function never actually executed");
    let result = important_async_function(0, ran.clone()).await;
    assert_eq!(result.as_deref(), Ok("Important result"));
    assert_eq!(ran.get(), 1);
}

/// The mistake with tasks: spawned, handles dropped, never awaited.
pub async fn loop_await_mistake() {
    let ran = Rc::new(Cell::new(0));
    for i in 0..3 {
        // The handle is dropped: nobody will see the result.
        drop(
            Builder::new()
                .name(format!("important-{i}"))
                .spawn(important_async_function(i, ran.clone())),
        );
    }
    lockstep::trace!("started 3 calls and moved on");
    // Other work, long enough for the calls to finish.
    sleep(Duration::from_millis(500)).await;
    assert_eq!(ran.get(), 3, "the calls ran; nobody saw how they ended");
}

/// The tutorial's `correct_loop_example`.
pub async fn correct_loop_example() {
    let ran = Rc::new(Cell::new(0));
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            Builder::new()
                .name(format!("important-{i}"))
                .spawn(important_async_function(i, ran.clone()))
        })
        .collect();
    let results: Vec<_> = gather_settled(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("gathered").expect("no call panics"))
        .collect();
    lockstep::trace!("results: {results:?}");
    assert_eq!(ran.get(), 3);
    assert_eq!(
        results.iter().filter(|r| r.is_err()).count(),
        1,
        "the failure was seen"
    );
}
