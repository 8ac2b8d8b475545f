//! `resource-leaks` (seed section: Common Pitfalls, Resource Management).
//!
//! The tutorial's `demonstrate_resource_leaks`, with [`Client`] for
//! `aiohttp.ClientSession`: a client keeps its connections open for reuse
//! until it is closed, and a connection still open when the program
//! returns is reported by the run, with the task that drives it and where
//! that task was spawned.
//!
//! - `buggy` is `resource_leak_example`: five sessions, one `GET /get`
//!   each, never closed (the tutorial's "clean up for demo, you shouldn't
//!   rely on this" loop is the part it tells you not to rely on, so it is
//!   left out). The run fails with `leak` on every seed (first failing seed
//!   0x0, 100 of the first 100): the report lists the five connection
//!   tasks still alive and the five TCP streams still open, each with the
//!   task that opened it (the client host's connect task, and its spawn
//!   site) and the task that last used it.
//! - `buggy-error-path` is `manual_cleanup_example` without its `finally`:
//!   `close` after the request, but the request fails (`/status/500` with
//!   `raise_for_status`) and `?` returns before the close. Every seed
//!   leaks the connection (first failing seed 0x0, 100 of the first 100).
//! - `fixed` is `proper_resource_management` (one session for five
//!   gathered requests, closed by a scope that closes whatever the body
//!   returns, the `async with` of Rust here) followed by
//!   `manual_cleanup_example` with its `finally` (the same scope around a
//!   request that fails). Passes every seed tried: nothing is open at the
//!   end.

use lockstep::check::FailureKind;
use lockstep::prelude::*;
use std::future::Future;

use crate::http::{Client, Error, url};
use crate::support::Web;
use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "resource-leaks",
    "sessions never closed leave connections open at the end of the run; closing them in every path leaves none",
    &[
        Variant::new("buggy", Expect::Fails(FailureKind::Leak), |sim| {
            sim.run(resource_leak_example())
        }),
        Variant::new("buggy-error-path", Expect::Fails(FailureKind::Leak), |sim| {
            sim.run(async {
                let web = Web::start();
                let _ = cleanup_without_finally(&web).await;
            })
        }),
        Variant::new("fixed", Expect::Pass, |sim| {
            sim.run(async {
                let web = Web::start();
                proper_resource_management(&web).await;
                manual_cleanup_example(&web).await;
            })
        }),
    ],
)
.seeds(500);

/// `async with session:`: runs `body` with a new client, then closes the
/// client whatever `body` returned.
pub async fn with_session<T, F: Future<Output = T>>(
    web: &Web,
    body: impl FnOnce(Client) -> F,
) -> T {
    let client = web.client();
    let result = body(client.clone()).await;
    client.close().await;
    result
}

/// The tutorial's `resource_leak_example`, without the cleanup it says
/// not to rely on.
pub async fn resource_leak_example() {
    let web = Web::start();
    let mut sessions = Vec::new();
    for i in 1..=5 {
        // A session created and never closed.
        let session = web.client();
        match session.get(&url("/get")).await {
            Ok(resp) => lockstep::trace!("request {i}: status {}", resp.status),
            Err(e) => lockstep::trace!("request {i}: error {e}"),
        }
        sessions.push(session);
    }
    lockstep::trace!("sessions created but never closed");
}

/// `manual_cleanup_example` without `finally`: the close is skipped when
/// the request fails.
pub async fn cleanup_without_finally(web: &Web) -> Result<(), Error> {
    let session = web.client();
    let resp = session
        .get(&url("/status/500"))
        .await
        .and_then(|r| r.error_for_status())?;
    lockstep::trace!("manual cleanup: status {}", resp.status);
    session.close().await;
    Ok(())
}

/// The tutorial's `proper_resource_management`.
pub async fn proper_resource_management(web: &Web) {
    with_session(web, |session| async move {
        let responses = gather((0..5).map(|_| {
            let s = session.clone();
            async move { s.get(&url("/get")).await }
        }))
        .await
        .unwrap_or_else(|e| panic!("a request failed: {e}"));
        for (i, r) in responses.iter().enumerate() {
            lockstep::trace!("request {}: status {}", i + 1, r.status);
            assert_eq!(r.status, 200);
        }
    })
    .await;
    lockstep::trace!("session closed by its scope");
}

/// The tutorial's `manual_cleanup_example`, with its `finally`.
pub async fn manual_cleanup_example(web: &Web) {
    let result = with_session(web, |session| async move {
        let resp = session.get(&url("/status/500")).await?.error_for_status()?;
        lockstep::trace!("manual cleanup: status {}", resp.status);
        Ok::<_, Error>(())
    })
    .await;
    lockstep::trace!("error {result:?}; session closed in the finally block");
    assert!(matches!(result, Err(Error::Status(500))));
}
