//! `sequential-vs-concurrent` (seed section: The Fundamental Problem).
//!
//! Three `GET /delay/2` against the simulated httpbin. `sequential` is the
//! tutorial's `sequential_downloads`: each request waits for the one before
//! it, so the three take 6 s of virtual time (plus a few milliseconds of
//! link latency per round trip). `concurrent` is its
//! `concurrent_downloads`: one session, the three requests gathered, about
//! 2 s. Both are correct programs; the scenario asserts the timings.
//!
//! Explorer: both variants pass every seed tried (300 in the tests, 500 in
//! `explore`): the three requests take 6 s one after another and 2 s
//! gathered, each plus a few milliseconds of link latency (asserted below
//! 100 ms; over seeds 0..40, 6.013–6.020 s and 2.007–2.011 s).

use lockstep::prelude::*;

use crate::http::{Client, Error, url};
use crate::support::{Web, assert_took, secs};
use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "sequential-vs-concurrent",
    "three /delay/2 fetches: 6 s one after another, about 2 s gathered",
    &[
        Variant::new("sequential", Expect::Pass, |sim| {
            sim.run(sequential_downloads())
        }),
        Variant::new("concurrent", Expect::Pass, |sim| {
            sim.run(concurrent_downloads())
        }),
    ],
)
.seeds(500);

/// The tutorial's `sequential_downloads`.
pub async fn sequential_downloads() {
    let web = Web::start();
    let client = web.client();
    let start = Instant::now();
    for i in 1..=3 {
        let resp = client.get(&url("/delay/2")).await.unwrap();
        assert_eq!(resp.status, 200);
        lockstep::trace!("download {i} complete");
    }
    let took = Instant::now() - start;
    lockstep::trace!("total time: {took:?}");
    assert_took("sequential downloads", took, secs(6.0), secs(0.1));
    client.close().await;
}

/// The tutorial's `concurrent_downloads`.
pub async fn concurrent_downloads() {
    let web = Web::start();
    let client = web.client();
    let start = Instant::now();
    let fetch = |c: Client| async move { c.get(&url("/delay/2")).await };
    let responses = gather([
        fetch(client.clone()),
        fetch(client.clone()),
        fetch(client.clone()),
    ])
    .await
    .unwrap_or_else(|e: Error| panic!("a download failed: {e}"));
    for (i, resp) in responses.iter().enumerate() {
        assert_eq!(resp.status, 200);
        lockstep::trace!("download {} complete", i + 1);
    }
    let took = Instant::now() - start;
    lockstep::trace!("total time: {took:?}");
    assert_took("concurrent downloads", took, secs(2.0), secs(0.1));
    client.close().await;
}
