//! `blocking-the-loop` (seed section: Common Pitfalls, Blocking the Event
//! Loop).
//!
//! The tutorial's `demonstrate_blocking_problems`. A blocking call inside
//! a task (its `requests.get`, its `cpu_intensive_work` run inline) holds
//! the one thread every task runs on: nothing else runs until it returns.
//! Virtual time hides that, since a blocking call takes no virtual time,
//! so lockstep measures each poll in wall time and fails a run whose poll
//! holds the executor longer than a threshold (`blocked_poll`, 150 ms
//! here), naming the task and where it was spawned.
//!
//! - `buggy` is `bad_concurrent_requests` / `truly_blocking_example`: three
//!   "concurrent" requests, each a blocking 350 ms call
//!   (`std::thread::sleep`, what `requests.get` does to the thread) inside
//!   a task. Every seed fails with `blocked-poll` at the first of them
//!   (first failing seed 0x0; 10 of 10 in the tests, 20 of 20 in
//!   `explore`); the report names `blocking-request-N` and its spawn site.
//! - `fixed` is `good_concurrent_requests` and `good_cpu_intensive_work`:
//!   the requests go through the async client (three `/delay/1`, gathered:
//!   about 1 s of virtual time, asserted), and the CPU work is cut into
//!   slices with a `yield_now` between them, so other tasks run in
//!   between (a simulation has no thread pool to hand work to; yielding is
//!   how a single-threaded runtime shares the thread). Passes every seed
//!   tried.
//!
//! This is the one check that depends on the machine: the threshold is
//! far above what a correct poll takes, and the blocking call far above
//! the threshold.

use std::hint::black_box;

use lockstep::check::FailureKind;
use lockstep::prelude::*;
use lockstep::task::Builder;

use crate::http::{Error, url};
use crate::support::{Web, assert_took, secs};
use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "blocking-the-loop",
    "a blocking call inside a task holds every other task (a blocked poll); the async version does not",
    &[
        Variant::new("buggy", Expect::Fails(FailureKind::BlockedPoll), |sim| {
            sim.to_builder()
                .blocked_poll(Some(THRESHOLD))
                .build()
                .run(bad_concurrent_requests())
        }),
        Variant::new("fixed", Expect::Pass, |sim| {
            sim.to_builder()
                .blocked_poll(Some(THRESHOLD))
                .build()
                .run(async {
                    good_concurrent_requests().await;
                    good_cpu_intensive_work().await;
                })
        }),
    ],
)
.seeds(20);

/// The wall time one poll may hold the executor.
pub const THRESHOLD: std::time::Duration = std::time::Duration::from_millis(150);

/// What a blocking `requests.get` does to the thread.
const BLOCKING_CALL: std::time::Duration = std::time::Duration::from_millis(350);

/// The tutorial's `bad_concurrent_requests`: blocking calls in tasks.
pub async fn bad_concurrent_requests() {
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            Builder::new()
                .name(format!("blocking-request-{i}"))
                .spawn(async move {
                    // requests.get(".../delay/1"): the thread waits.
                    std::thread::sleep(BLOCKING_CALL);
                    lockstep::trace!("blocking request {i} returned");
                })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// The tutorial's `good_concurrent_requests`.
pub async fn good_concurrent_requests() {
    let web = Web::start();
    let client = web.client();
    let start = Instant::now();
    let responses = gather((0..3).map(|_| {
        let c = client.clone();
        async move { c.get(&url("/delay/1")).await }
    }))
    .await
    .unwrap_or_else(|e: Error| panic!("a request failed: {e}"));
    assert!(responses.iter().all(|r| r.status == 200));
    assert_took(
        "3 concurrent requests",
        Instant::now() - start,
        secs(1.0),
        secs(0.1),
    );
    client.close().await;
}

/// The tutorial's `good_cpu_intensive_work`: the work in slices, yielding
/// the thread between them, while a heartbeat task keeps running.
pub async fn good_cpu_intensive_work() {
    let heartbeat = Builder::new().name("heartbeat").spawn(async {
        let mut beats = 0u32;
        for _ in 0..3 {
            yield_now().await;
            beats += 1;
        }
        beats
    });
    let mut total: u64 = 0;
    for slice in 0..10u64 {
        for i in slice * 1_000..(slice + 1) * 1_000 {
            total = total.wrapping_add(black_box(i * i));
        }
        yield_now().await;
    }
    assert_eq!(total, (0..10_000u64).map(|i| i * i).sum::<u64>());
    assert_eq!(heartbeat.await.unwrap(), 3, "the heartbeat got its turns");
}
