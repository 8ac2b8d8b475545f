//! `rate-limited-scraper` (seed section: Web Scraping with Rate Limiting).
//!
//! A faithful port of the tutorial's `IntelligentWebScraper` against the
//! simulated httpbin: a semaphore of `max_concurrent = 3`, a per-domain
//! delay (`base_delay = 0.5 s`, doubled on every 429), up to 3 retries with
//! `2^attempt + uniform(0, 1)` s of backoff, a pooled client (limit 50, 10
//! per host, 30 s total timeout) and the tutorial's eight URLs, one of them
//! `/status/429` (which answers 429 with `Retry-After: 1` every time, so it
//! fails after four attempts; the scraper ignores `Retry-After`, as the
//! tutorial does).
//!
//! Invariants: never more than `max_concurrent` requests in flight;
//! requests to one domain at least `base_delay` apart; every URL resolved
//! (content, or `None` after the retries) and nothing lost (the statistics
//! add up: requests made = successes + failures).
//!
//! `buggy` is the tutorial's `smart_delay`: it reads the domain's last
//! request time, sleeps the difference, then writes the new time. Two
//! tasks that read the same last time sleep until the same instant and
//! send together: the rate limit the tutorial presents as correct lets
//! requests through 0 s apart. It fails on every seed tried (first failing
//! seed 0x0, 100 of the first 100), at 0.5 s, when the second and third
//! tasks both wake.
//!
//! `fixed` reserves the domain's next slot before sleeping (no suspension
//! point between reading and writing the time), so concurrent tasks queue
//! at least `base_delay` apart. Passes every seed tried.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use lockstep::check::FailureKind;
use lockstep::prelude::*;
use lockstep::sync::Semaphore;

use crate::http::{Client, ClientConfig, Error, url};
use crate::support::{Web, secs};
use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "rate-limited-scraper",
    "IntelligentWebScraper against 429s and latency: concurrency cap, per-domain spacing, every URL resolved",
    &[
        Variant::new("buggy", Expect::Fails(FailureKind::Panic), |sim| {
            sim.run(demonstrate_intelligent_scraping(Delay::Tutorial))
        }),
        Variant::new("fixed", Expect::Pass, |sim| {
            sim.run(demonstrate_intelligent_scraping(Delay::Reserve))
        }),
    ],
)
.seeds(500);

/// How `smart_delay` spaces requests to a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// The tutorial's: read the last time, sleep, write the time.
    Tutorial,
    /// Reserve the next slot, then sleep until it.
    Reserve,
}

#[derive(Debug, Default, Clone, Copy)]
struct ScraperStats {
    requests_made: u32,
    successful_requests: u32,
    failed_requests: u32,
    retries: u32,
    rate_limited: u32,
}

/// A scraped page.
#[derive(Debug)]
pub struct Page {
    /// Its URL.
    pub url: String,
    /// Its body.
    pub content: String,
    /// Its status.
    pub status: u16,
    /// Its headers.
    pub headers: Vec<(String, String)>,
}

/// The tutorial's `IntelligentWebScraper`.
pub struct IntelligentWebScraper {
    base_delay: Duration,
    max_concurrent: u64,
    max_retries: u32,
    client: Client,
    semaphore: Semaphore,
    stats: Cell<ScraperStats>,
    last_request_time: RefCell<BTreeMap<String, Instant>>,
    domain_delays: RefCell<BTreeMap<String, Duration>>,
    delay: Delay,
    // For the invariants.
    in_flight: Cell<u64>,
    sent: RefCell<BTreeMap<String, Vec<Instant>>>,
}

fn domain(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("")
        .to_string()
}

impl IntelligentWebScraper {
    /// `__init__` and `__aenter__`.
    pub fn new(web: &Web, base_delay: Duration, max_concurrent: usize, delay: Delay) -> Self {
        let client = web.client_with(
            ClientConfig::default()
                .limit(50)
                .limit_per_host(10)
                .total_timeout(Duration::from_secs(30))
                .user_agent("Mozilla/5.0 (compatible; AsyncScraper/1.0)"),
        );
        IntelligentWebScraper {
            base_delay,
            max_concurrent: max_concurrent as u64,
            max_retries: 3,
            client,
            semaphore: Semaphore::named("scraper", max_concurrent),
            stats: Cell::default(),
            last_request_time: RefCell::default(),
            domain_delays: RefCell::default(),
            delay,
            in_flight: Cell::new(0),
            sent: RefCell::default(),
        }
    }

    fn stat(&self, f: impl FnOnce(&mut ScraperStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// The tutorial's `smart_delay`, or the fix.
    async fn smart_delay(&self, url: &str) {
        let domain = domain(url);
        let domain_delay = self
            .domain_delays
            .borrow()
            .get(&domain)
            .copied()
            .unwrap_or(self.base_delay);
        match self.delay {
            Delay::Tutorial => {
                let last = self.last_request_time.borrow().get(&domain).copied();
                if let Some(last) = last {
                    let elapsed = Instant::now() - last;
                    if elapsed < domain_delay {
                        let wait = domain_delay - elapsed;
                        lockstep::trace!("rate limiting: waiting {wait:?} for {domain}");
                        sleep(wait).await;
                        self.stat(|s| s.rate_limited += 1);
                    }
                }
                self.last_request_time
                    .borrow_mut()
                    .insert(domain, Instant::now());
            }
            Delay::Reserve => {
                let now = Instant::now();
                let slot = match self.last_request_time.borrow().get(&domain) {
                    Some(&last) => (last + domain_delay).max(now),
                    None => now,
                };
                self.last_request_time
                    .borrow_mut()
                    .insert(domain.clone(), slot);
                if slot > now {
                    lockstep::trace!("rate limiting: waiting {:?} for {domain}", slot - now);
                    sleep_until(slot).await;
                    self.stat(|s| s.rate_limited += 1);
                }
            }
        }
    }

    /// One request, with the invariants checked as it is sent.
    async fn get(&self, url: &str) -> Result<crate::http::Response, Error> {
        let now = Instant::now();
        {
            let mut sent = self.sent.borrow_mut();
            let times = sent.entry(domain(url)).or_default();
            if let Some(&prev) = times.last() {
                assert!(
                    now - prev >= self.base_delay,
                    "two requests to {} only {:?} apart (base_delay {:?})",
                    domain(url),
                    now - prev,
                    self.base_delay
                );
            }
            times.push(now);
        }
        self.in_flight.set(self.in_flight.get() + 1);
        assert!(
            self.in_flight.get() <= self.max_concurrent,
            "{} requests in flight, max_concurrent is {}",
            self.in_flight.get(),
            self.max_concurrent
        );
        let r = self.client.get(url).await;
        self.in_flight.set(self.in_flight.get() - 1);
        r
    }

    /// The tutorial's `fetch_with_retries`.
    pub async fn fetch_with_retries(&self, url: &str) -> Option<Page> {
        let domain = domain(url);
        for attempt in 0..=self.max_retries {
            let outcome: Result<Page, String> = async {
                let _permit = self.semaphore.acquire().await.expect("never closed");
                self.smart_delay(url).await;
                self.stat(|s| s.requests_made += 1);
                let resp = self.get(url).await.map_err(|e| e.to_string())?;
                match resp.status {
                    200 => {
                        self.stat(|s| s.successful_requests += 1);
                        Ok(Page {
                            url: url.to_string(),
                            content: resp.text(),
                            status: resp.status,
                            headers: resp.headers.clone(),
                        })
                    }
                    429 => {
                        let mut delays = self.domain_delays.borrow_mut();
                        let d = delays.get(&domain).copied().unwrap_or(self.base_delay) * 2;
                        delays.insert(domain.clone(), d);
                        Err("429, message='Rate limited'".to_string())
                    }
                    status => Err(format!("{status}")),
                }
            }
            .await;
            match outcome {
                Ok(page) => return Some(page),
                Err(e) => {
                    self.stat(|s| s.failed_requests += 1);
                    if attempt == self.max_retries {
                        lockstep::trace!(
                            "failed to fetch {url} after {} attempts: {e}",
                            self.max_retries + 1
                        );
                        return None;
                    }
                    let retry_delay =
                        secs(2f64.powi(attempt as i32) + lockstep::random::range(0.0..1.0));
                    lockstep::trace!(
                        "attempt {} failed for {url}: {e}. Retrying in {retry_delay:?}",
                        attempt + 1
                    );
                    self.stat(|s| s.retries += 1);
                    sleep(retry_delay).await;
                }
            }
        }
        None
    }
}

/// The tutorial's `demonstrate_intelligent_scraping`.
pub async fn demonstrate_intelligent_scraping(delay: Delay) {
    let web = Web::start();
    let paths = [
        "/delay/1",
        "/status/200",
        "/json",
        "/headers",
        "/user-agent",
        "/delay/2",
        "/status/429",
        "/html",
    ];
    let urls: Vec<String> = paths.iter().map(|p| url(p)).collect();
    let scraper = Rc::new(IntelligentWebScraper::new(&web, secs(0.5), 3, delay));
    let start = Instant::now();
    // asyncio.gather(*tasks): a fetch that panics (an invariant broken)
    // fails the program at once.
    let results: Vec<Option<Page>> = gather(urls.iter().cloned().map(|u| {
        let scraper = scraper.clone();
        async move { Ok::<_, std::convert::Infallible>(scraper.fetch_with_retries(&u).await) }
    }))
    .await
    .unwrap_or_else(|never| match never {});
    let duration = Instant::now() - start;
    let stats = scraper.stats.get();
    let successful = results.iter().flatten().count();
    lockstep::trace!(
        "duration {duration:?}: {successful} successful, {} failed; {stats:?}",
        results.len() - successful
    );
    for page in results.iter().flatten().take(3) {
        lockstep::trace!(
            "{}: {} ({} chars, {} headers)",
            page.url,
            page.status,
            page.content.len(),
            page.headers.len()
        );
    }
    // Every URL resolved, nothing lost.
    assert_eq!(results.len(), urls.len());
    for (u, r) in urls.iter().zip(&results) {
        let expect_ok = !u.ends_with("/status/429");
        assert_eq!(r.is_some(), expect_ok, "{u}: {r:?}");
        if let Some(page) = r {
            assert_eq!(&page.url, u);
        }
    }
    assert_eq!(
        stats.requests_made,
        stats.successful_requests + stats.failed_requests
    );
    assert_eq!(stats.successful_requests, 7);
    assert_eq!(stats.failed_requests, 4, "the 429 URL, four times");
    assert_eq!(stats.retries, 3);
    scraper.client.close().await;
}
