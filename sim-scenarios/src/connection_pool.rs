//! `connection-pool` (seed section: Performance Optimization, Connection
//! Pooling and Resource Management).
//!
//! The tutorial's `HighPerformanceHTTPClient`: a client with a pool of at
//! most 10 connections (`limit`), 30 per host, keep-alive, and timeouts,
//! making 20 `GET /get?id=N` requests, against a client per request
//! (`test_without_pooling`: a new session, so a new connection, for every
//! request).
//!
//! - `pooled` (the tutorial's `test_with_pooling`, 20 requests gathered):
//!   never more than 10 connections open at once (the client's count and
//!   the server's), 10 created and 10 reused; requests over the limit
//!   queue on the pool's semaphore, which the trace shows.
//! - `per-request` (`test_without_pooling`): 20 connections, none reused.
//! - `sequential`: the same 20 requests one after another, pooled and then
//!   per request: the pooled client pays one TCP handshake, the other
//!   twenty, so the pooled run is faster in virtual time (asserted).
//! - `backpressure`: six `GET /bytes/65536` through a pool of 2 over links
//!   of a constant 5 ms, with an 8 KiB TCP send window: the server can put
//!   only 8 KiB on the wire before the client reads it, so each body
//!   crosses in eight windows (the trace shows the 8 KiB sends, each
//!   released by a read), and the pool serves the six in three waves: at
//!   least 3 x 8 x 5 ms = 120 ms of virtual time (asserted), where one
//!   window per body would take a sixth of that.
//!
//! What the explorer shows about the tutorial's claim: with all 20 requests
//! gathered, the client per request is *not* slower in virtual time (it
//! opens 20 connections at once, while the pool of 10 serves the second
//! ten after the first: one round trip more). Pooling saves connections
//! and handshakes; it saves time only when handshakes are on the critical
//! path (sequential requests, or a server that limits connections). All
//! variants pass every seed tried.

use lockstep::net::{self, LinkConfig, TcpConfig};
use lockstep::prelude::*;

use crate::http::{Client, ClientConfig, url};
use crate::support::Web;
use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "connection-pool",
    "a pooled client reuses at most 10 connections; sequential requests are faster pooled than with a client per request",
    &[
        Variant::new("pooled", Expect::Pass, |sim| sim.run(test_with_pooling())),
        Variant::new("per-request", Expect::Pass, |sim| {
            sim.run(test_without_pooling())
        }),
        Variant::new("sequential", Expect::Pass, |sim| sim.run(sequential())),
        Variant::new("backpressure", Expect::Pass, |sim| sim.run(backpressure())),
    ],
)
.seeds(300);

const REQUESTS: usize = 20;

/// The tutorial's `HighPerformanceHTTPClient` settings.
fn high_performance(web: &Web, max_connections: usize) -> Client {
    web.client_with(
        ClientConfig::default()
            .limit(max_connections)
            .limit_per_host(30)
            .total_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5)),
    )
}

async fn get_id(client: &Client, i: usize) -> serde_json::Value {
    let resp = client.get(&url(&format!("/get?id={i}"))).await.unwrap();
    let json = resp.json().expect("httpbin answers JSON");
    assert_eq!(
        json["args"]["id"],
        i.to_string(),
        "the answer to request {i}"
    );
    json
}

/// The tutorial's `test_with_pooling`.
pub async fn test_with_pooling() {
    let web = Web::start();
    let client = high_performance(&web, 10);
    let start = Instant::now();
    let results = gather_settled((0..REQUESTS).map(|i| {
        let c = client.clone();
        async move { get_id(&c, i).await }
    }))
    .await;
    let duration = Instant::now() - start;
    assert!(results.iter().all(|r| r.is_ok()));
    let stats = client.stats();
    lockstep::trace!("pooled: {REQUESTS} requests in {duration:?}; {stats:?}");
    assert_eq!(stats.requests, REQUESTS as u64);
    assert!(
        stats.peak_open <= 10,
        "{} connections open at once",
        stats.peak_open
    );
    assert_eq!(stats.created, 10);
    assert_eq!(stats.reused, 10);
    let server = web.httpbin.stats();
    assert!(
        server.peak_open <= 10,
        "the server saw {} connections at once",
        server.peak_open
    );
    client.close().await;
}

/// The tutorial's `test_without_pooling`: a session per request.
pub async fn test_without_pooling() {
    let web = Web::start();
    let start = Instant::now();
    let results = gather_settled((0..REQUESTS).map(|i| {
        let client = web.client();
        async move {
            let json = get_id(&client, i).await;
            client.close().await;
            json
        }
    }))
    .await;
    let duration = Instant::now() - start;
    assert!(results.iter().all(|r| r.is_ok()));
    let server = web.httpbin.stats();
    lockstep::trace!("per request: {REQUESTS} requests in {duration:?}; server {server:?}");
    assert_eq!(
        server.connections, REQUESTS as u64,
        "one connection per request"
    );
}

/// Twenty requests one after another, pooled and per request.
pub async fn sequential() {
    let web = Web::start();
    let client = high_performance(&web, 10);
    let start = Instant::now();
    for i in 0..REQUESTS {
        get_id(&client, i).await;
    }
    let pooled = Instant::now() - start;
    let stats = client.stats();
    client.close().await;
    assert_eq!((stats.created, stats.reused), (1, REQUESTS as u64 - 1));

    let start = Instant::now();
    for i in 0..REQUESTS {
        let client = web.client();
        get_id(&client, i).await;
        client.close().await;
    }
    let per_request = Instant::now() - start;
    lockstep::trace!(
        "sequential: pooled {pooled:?}, per request {per_request:?}, speed-up {:.2}x",
        per_request.as_secs_f64() / pooled.as_secs_f64()
    );
    assert!(
        pooled < per_request,
        "pooled {pooled:?} vs per request {per_request:?}"
    );
}

/// Large bodies through a small send window and a pool of two.
pub async fn backpressure() {
    let web = Web::start();
    net::set_default_link(LinkConfig::constant(Duration::from_millis(5)));
    net::set_tcp_config(TcpConfig::default().send_window(8 * 1024));
    let client = high_performance(&web, 2);
    let start = Instant::now();
    let sizes = gather((0..6).map(|_| {
        let c = client.clone();
        async move { c.get(&url("/bytes/65536")).await.map(|r| r.body.len()) }
    }))
    .await
    .unwrap_or_else(|e| panic!("a download failed: {e}"));
    let took = Instant::now() - start;
    let stats = client.stats();
    lockstep::trace!("6 x 64 KiB through a pool of 2 and 8 KiB windows: {took:?}; {stats:?}");
    assert_eq!(sizes, [65536; 6]);
    assert!(stats.peak_open <= 2 && stats.created == 2, "{stats:?}");
    assert!(
        took >= Duration::from_millis(3 * 8 * 5),
        "three waves of eight 8 KiB windows at 5 ms each take at least 120 ms, took {took:?}"
    );
    client.close().await;
}
