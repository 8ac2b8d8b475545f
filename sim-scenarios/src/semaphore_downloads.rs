//! `semaphore-downloads` (seed section: asyncio.Semaphore).
//!
//! The tutorial's `RateLimitedDownloader`: ten `GET /bytes/1024` against
//! the simulated httpbin, through a semaphore of 3, with the statistics it
//! keeps under a stats lock (started, completed, failed, currently
//! running, concurrent peak); then `demonstrate_semaphore_vs_unlimited`,
//! eight `/delay/1` downloads with and without a semaphore of 3.
//!
//! `limited` (the semaphore throughout): never more than 3 downloads in
//! flight, by the downloader's count and by the server's own count, the
//! peak is exactly 3, all ten complete; the eight limited `/delay/1`
//! downloads take three rounds, about 3 s of virtual time. Passes every
//! seed tried.
//!
//! `unlimited` is the tutorial's `unlimited_downloads`, which it warns
//! "may overwhelm the server": the eight requests reach the server at
//! once, and the server-side invariant (never more than 3 in flight)
//! fails on every seed (first failing seed 0x0, all seeds tried fail): a
//! limit the client does not enforce is not a limit.

use std::cell::Cell;
use std::rc::Rc;

use lockstep::check::FailureKind;
use lockstep::prelude::*;
use lockstep::sync::{Mutex, Semaphore};

use crate::http::{Client, Error, Httpbin, url};
use crate::support::{Web, assert_took, secs};
use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "semaphore-downloads",
    "10 downloads through a semaphore of 3: never more than 3 in flight, the peak is exactly 3",
    &[
        Variant::new("limited", Expect::Pass, |sim| sim.run(downloads(true))),
        Variant::new("unlimited", Expect::Fails(FailureKind::Panic), |sim| {
            sim.run(downloads(false))
        }),
    ],
)
.seeds(300);

const LIMIT: u64 = 3;

#[derive(Default, Debug, Clone, Copy)]
struct DownloadStats {
    started: u32,
    completed: u32,
    failed: u32,
    concurrent_peak: u32,
    currently_running: u32,
}

/// The tutorial's `RateLimitedDownloader`.
struct RateLimitedDownloader {
    semaphore: Semaphore,
    stats: Mutex<DownloadStats>,
}

impl RateLimitedDownloader {
    fn new(max_concurrent_downloads: usize) -> Self {
        RateLimitedDownloader {
            semaphore: Semaphore::named("downloads", max_concurrent_downloads),
            stats: Mutex::named("stats_lock", DownloadStats::default()),
        }
    }

    async fn download_file(
        &self,
        client: &Client,
        path: &str,
        file_id: String,
    ) -> Result<usize, Error> {
        let _permit = self.semaphore.acquire().await.expect("never closed");
        let running = {
            let mut s = self.stats.lock().await;
            s.started += 1;
            s.currently_running += 1;
            s.concurrent_peak = s.concurrent_peak.max(s.currently_running);
            s.currently_running
        };
        lockstep::trace!("download {file_id}: starting (concurrent: {running})");
        let start = Instant::now();
        match client
            .get(&url(path))
            .await
            .and_then(|r| r.error_for_status())
        {
            Ok(resp) => {
                let took = Instant::now() - start;
                // Simulate file processing.
                sleep(Duration::from_millis(100)).await;
                let mut s = self.stats.lock().await;
                s.completed += 1;
                s.currently_running -= 1;
                lockstep::trace!(
                    "download {file_id}: complete ({} bytes in {took:?})",
                    resp.body.len()
                );
                Ok(resp.body.len())
            }
            Err(e) => {
                let mut s = self.stats.lock().await;
                s.failed += 1;
                s.currently_running -= 1;
                lockstep::trace!("download {file_id}: failed - {e}");
                Err(e)
            }
        }
    }
}

/// Checks the server never serves more than the limit at once.
fn check_server(httpbin: &Httpbin) {
    let peak = httpbin.stats().peak_in_flight;
    assert!(
        peak <= LIMIT,
        "the server had {peak} requests in flight at once; the limit is {LIMIT}"
    );
}

/// The tutorial's two demos; `limited: false` runs its unlimited variant.
pub async fn downloads(limited: bool) {
    let web = Web::start();
    if limited {
        let downloader = Rc::new(RateLimitedDownloader::new(LIMIT as usize));
        let client = web.client();
        let start = Instant::now();
        let results = gather_settled((0..10).map(|i| {
            let (d, c) = (downloader.clone(), client.clone());
            async move {
                d.download_file(&c, "/bytes/1024", format!("File-{}", i + 1))
                    .await
            }
        }))
        .await;
        let ok = results.iter().filter(|r| matches!(r, Ok(Ok(1024)))).count();
        let stats = *downloader.stats.lock().await;
        lockstep::trace!(
            "{ok} of 10 successful in {:?}; stats {stats:?}",
            Instant::now() - start
        );
        assert_eq!(ok, 10);
        assert_eq!((stats.started, stats.completed, stats.failed), (10, 10, 0));
        assert_eq!(
            stats.concurrent_peak, LIMIT as u32,
            "the peak is exactly the limit"
        );
        check_server(&web.httpbin);
        client.close().await;
    }

    // demonstrate_semaphore_vs_unlimited
    let client = web.client();
    let semaphore = Rc::new(Semaphore::named("limited_downloads", LIMIT as usize));
    let running = Rc::new(Cell::new(0u64));
    let start = Instant::now();
    let durations = gather((0..8).map(|i| {
        let (client, semaphore, running) = (client.clone(), semaphore.clone(), running.clone());
        async move {
            let _permit = if limited {
                Some(semaphore.acquire().await.expect("never closed"))
            } else {
                None
            };
            running.set(running.get() + 1);
            let t = Instant::now();
            client.get(&url("/delay/1")).await?;
            running.set(running.get() - 1);
            let took = Instant::now() - t;
            lockstep::trace!(
                "{} {i}: {took:?}",
                if limited { "limited" } else { "unlimited" }
            );
            Ok::<_, Error>(took)
        }
    }))
    .await
    .unwrap_or_else(|e| panic!("a download failed: {e}"));
    let total = Instant::now() - start;
    lockstep::trace!("8 downloads in {total:?}; {} measured", durations.len());
    check_server(&web.httpbin);
    assert_took("8 limited downloads", total, secs(3.0), secs(0.1));
    client.close().await;
}
