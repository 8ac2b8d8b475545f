//! A simulated httpbin: the endpoints the tutorial calls, served by hyper's
//! HTTP/1 server on a simulated host.
//!
//! | endpoint | answer |
//! |---|---|
//! | `/delay/N` | `200` after `N` seconds of virtual time (`N` may be fractional: `/delay/1.5`), JSON |
//! | `/status/CODE` | an empty `CODE` response; `429` carries `Retry-After: 1` |
//! | `/bytes/N` | `N` seeded random bytes |
//! | `/json` | httpbin's slideshow document |
//! | `/get` | JSON echo of the query arguments, headers and URL |
//! | `/headers` | JSON echo of the request headers |
//! | `/user-agent` | JSON `{"user-agent": …}` |
//! | `/html` | a small HTML page |
//! | anything else | `404` |
//!
//! [`Httpbin::start`] makes the host (`httpbin.org`, port 80) from inside a
//! simulation; [`Httpbin::stats`] tells what the server saw: requests, the
//! connections it accepted, and the peaks of requests in flight and of
//! connections open at once, the numbers a concurrency limit or a
//! connection pool is judged by.

use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use lockstep::http::{HyperIo, server_builder};
use lockstep::net::{Host, TcpListener};
use lockstep::prelude::*;
use lockstep::task::Builder;

/// The host name of the service.
pub const HOST: &str = "httpbin.org";

/// Its base URL.
pub const BASE: &str = "http://httpbin.org";

/// What the server saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Requests received.
    pub requests: u64,
    /// Requests being served now.
    pub in_flight: u64,
    /// The most requests served at once.
    pub peak_in_flight: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Connections open now.
    pub open: u64,
    /// The most connections open at once.
    pub peak_open: u64,
}

#[derive(Default)]
struct Counters(Cell<Stats>);

impl Counters {
    fn update(&self, f: impl FnOnce(&mut Stats)) {
        let mut s = self.0.get();
        f(&mut s);
        s.peak_in_flight = s.peak_in_flight.max(s.in_flight);
        s.peak_open = s.peak_open.max(s.open);
        self.0.set(s);
    }
}

/// The running service.
#[derive(Clone)]
pub struct Httpbin {
    host: Host,
    counters: Rc<Counters>,
}

impl Httpbin {
    /// Starts the service on a new host named [`HOST`], port 80.
    ///
    /// # Panics
    ///
    /// Outside a simulation, or if a host of that name exists.
    pub fn start() -> Httpbin {
        let counters = Rc::new(Counters::default());
        let c = counters.clone();
        let host = Host::new(HOST, move || serve(c.clone()));
        Httpbin { host, counters }
    }

    /// Its host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// What the server saw so far.
    pub fn stats(&self) -> Stats {
        self.counters.0.get()
    }
}

async fn serve(counters: Rc<Counters>) -> lockstep::net::HostResult {
    let listener = TcpListener::bind("0.0.0.0:80").await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let counters = counters.clone();
        counters.update(|s| {
            s.connections += 1;
            s.open += 1;
        });
        let n = counters.0.get().connections;
        Builder::new()
            .name(format!("httpbin-conn-{n}"))
            .spawn(async move {
                let c = counters.clone();
                let service = hyper::service::service_fn(move |req| handle(req, c.clone()));
                // A client that resets the connection is its business.
                let _ = server_builder()
                    .serve_connection(HyperIo::new(stream), service)
                    .await;
                counters.update(|s| s.open -= 1);
            });
    }
}

/// Decrements the in-flight count even when the request is dropped.
struct InFlight(Rc<Counters>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|s| s.in_flight -= 1);
    }
}

async fn handle(
    req: Request<Incoming>,
    counters: Rc<Counters>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    counters.update(|s| {
        s.requests += 1;
        s.in_flight += 1;
    });
    let _guard = InFlight(counters);
    let path = req.uri().path().to_string();
    let resp = route(&req, &path).await;
    lockstep::trace!(
        "httpbin: {} {} -> {}",
        req.method(),
        req.uri(),
        resp.status().as_u16()
    );
    Ok(resp)
}

fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("a valid response")
}

fn json(value: serde_json::Value) -> Response<Full<Bytes>> {
    response(StatusCode::OK, "application/json", value.to_string())
}

fn headers_json(req: &Request<Incoming>) -> serde_json::Value {
    // Sorted by name: a HeaderMap's order must not reach the body.
    let mut map = serde_json::Map::new();
    let mut names: Vec<_> = req
        .headers()
        .keys()
        .map(|k| k.as_str().to_string())
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let value = req.headers()[name.as_str()]
            .to_str()
            .unwrap_or("")
            .to_string();
        map.insert(name, value.into());
    }
    serde_json::Value::Object(map)
}

async fn route(req: &Request<Incoming>, path: &str) -> Response<Full<Bytes>> {
    let url = format!("{BASE}{}", req.uri());
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    match (parts.next().unwrap_or(""), parts.next()) {
        ("delay", Some(n)) => match n.parse::<f64>() {
            Ok(secs) if (0.0..=10.0).contains(&secs) => {
                sleep(Duration::from_secs_f64(secs)).await;
                json(serde_json::json!({ "url": url, "delay": secs }))
            }
            _ => response(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "delay must be 0 to 10 seconds",
            ),
        },
        ("status", Some(code)) => match code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(status) => {
                let mut resp = response(status, "text/plain", Bytes::new());
                if status == StatusCode::TOO_MANY_REQUESTS {
                    resp.headers_mut()
                        .insert("retry-after", "1".parse().expect("a header value"));
                }
                resp
            }
            None => response(StatusCode::BAD_REQUEST, "text/plain", "invalid status code"),
        },
        ("bytes", Some(n)) => match n.parse::<usize>() {
            Ok(n) if n <= 100 * 1024 => {
                // One draw from the simulation seeds a cheap generator for
                // the rest: deterministic, and fast for 100 KiB.
                let mut x = lockstep::random::u64() | 1;
                let bytes: Vec<u8> = (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                response(StatusCode::OK, "application/octet-stream", bytes)
            }
            _ => response(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "at most 102400 bytes",
            ),
        },
        ("json", None) => json(serde_json::json!({
            "slideshow": {
                "author": "Yours Truly",
                "date": "date of publication",
                "title": "Sample Slide Show",
                "slides": [
                    { "title": "Wake up to WonderWidgets!", "type": "all" },
                    { "title": "Overview", "type": "all",
                      "items": ["Why WonderWidgets are great", "Who buys WonderWidgets"] }
                ]
            }
        })),
        ("get", None) => {
            let mut args = serde_json::Map::new();
            for pair in req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
            {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                args.insert(k.to_string(), v.into());
            }
            json(serde_json::json!({ "args": args, "headers": headers_json(req), "url": url }))
        }
        ("headers", None) => json(serde_json::json!({ "headers": headers_json(req) })),
        ("user-agent", None) => {
            let ua = req
                .headers()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            json(serde_json::json!({ "user-agent": ua }))
        }
        ("html", None) => response(
            StatusCode::OK,
            "text/html",
            "<!DOCTYPE html><html><body><h1>Herman Melville - Moby-Dick</h1></body></html>",
        ),
        _ => response(StatusCode::NOT_FOUND, "text/plain", "not found"),
    }
}
