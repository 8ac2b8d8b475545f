//! An HTTP client with a connection pool, a per-host limit and timeouts:
//! what the tutorial gets from `aiohttp.ClientSession` and `TCPConnector`,
//! built on hyper's HTTP/1 client connections.
//!
//! A [`Client`] belongs to a simulated host, the machine it runs on: its
//! sockets are opened by tasks of that host (sockets belong to hosts), so
//! a crash of the host resets them. Requests may come from any task; each
//! connection is driven by a task (`<host>-conn-<local port>`) spawned where the
//! request that opened it runs. From a task on a host, that task belongs
//! to the host and ends with the simulation; from the program's own tasks
//! (the main task and what it spawns), a connection still open when the
//! program returns is a leak the run reports, as an unclosed
//! `aiohttp.ClientSession` is. [`Client::close`] closes the pooled
//! connections and waits until they are closed.
//!
//! Like a `ClientSession`, a client must be closed: dropping its last
//! handle does not close the pooled connections (each idle connection
//! keeps the pool alive), so a forgotten `close` shows up as open
//! connections at the end of the run. A connection cut off mid-request (a
//! timeout, a cancelled task) is torn down at once.
//!
//! | setting | meaning | default (aiohttp's) |
//! |---|---|---|
//! | [`limit`](ClientConfig::limit) | connections in use at once, all hosts | 100 |
//! | [`limit_per_host`](ClientConfig::limit_per_host) | connections in use at once to one host | 0 (none) |
//! | [`pool`](ClientConfig::pool) | keep connections open for reuse | on |
//! | [`connect_timeout`](ClientConfig::connect_timeout) | TCP connect and HTTP handshake | 5 s |
//! | [`total_timeout`](ClientConfig::total_timeout) | a whole request, queueing included | 30 s |
//!
//! Requests over the limits queue (FIFO) for a slot; a request that finds
//! an idle connection to its host reuses it, otherwise it opens one,
//! closing the oldest idle connection first if `limit` connections are
//! open. [`Client::stats`] counts connections created and reused, and the
//! peak of connections open at once.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Uri};
use lockstep::http::HyperIo;
use lockstep::net::{Host, TcpStream};
use lockstep::prelude::*;
use lockstep::sync::Semaphore;
use lockstep::task::{Builder, JoinHandle};

/// How a [`Client`] pools and limits connections, and its timeouts.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    limit: usize,
    limit_per_host: usize,
    pool: bool,
    connect_timeout: Duration,
    total_timeout: Duration,
    user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            limit: 100,
            limit_per_host: 0,
            pool: true,
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(30),
            user_agent: "lockstep-client/0.1".to_string(),
        }
    }
}

impl ClientConfig {
    /// Connections in use at once, over all hosts (0: no limit).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    /// Connections in use at once to one host (0: no limit).
    pub fn limit_per_host(mut self, n: usize) -> Self {
        self.limit_per_host = n;
        self
    }

    /// Whether connections are kept for reuse (off: one per request).
    pub fn pool(mut self, on: bool) -> Self {
        self.pool = on;
        self
    }

    /// The limit on connecting (TCP and HTTP handshake).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// The limit on a whole request, queueing for a slot included.
    pub fn total_timeout(mut self, d: Duration) -> Self {
        self.total_timeout = d;
        self
    }

    /// The `User-Agent` header sent.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum Error {
    /// The URL is not `http://host[:port]/path`.
    InvalidUrl(String),
    /// Connecting failed (refused, unreachable, reset).
    Connect(std::io::Error),
    /// A timeout passed: `"connect"` or `"total"`.
    Timeout(&'static str),
    /// The HTTP exchange failed (the connection broke mid-request).
    Http(hyper::Error),
    /// The response's status is an error (from [`Response::error_for_status`]).
    Status(u16),
    /// The client was closed.
    Closed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl(u) => {
                write!(f, "invalid URL `{u}`: expected http://host[:port]/path")
            }
            Error::Connect(e) => write!(f, "connect failed: {e}"),
            Error::Timeout(what) => write!(f, "{what} timeout"),
            Error::Http(e) => write!(f, "HTTP error: {e}"),
            Error::Status(code) => write!(f, "HTTP status {code}"),
            Error::Closed => f.write_str("the client is closed"),
        }
    }
}

impl std::error::Error for Error {}

/// A response, its body read in full.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers, names lower-case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// The connection that carried it (numbered from 1 per client).
    pub connection: u64,
    /// Whether that connection had served an earlier request.
    pub reused: bool,
}

impl Response {
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Err(Error::Status)` for a 4xx or 5xx status (aiohttp's
    /// `raise_for_status`).
    pub fn error_for_status(self) -> Result<Response, Error> {
        if self.status >= 400 {
            Err(Error::Status(self.status))
        } else {
            Ok(self)
        }
    }
}

/// Connection counts of a client.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClientStats {
    /// Requests sent.
    pub requests: u64,
    /// Connections opened.
    pub created: u64,
    /// Requests that reused an idle connection.
    pub reused: u64,
    /// Connections open now (in use or idle).
    pub open: u64,
    /// The most connections open at once.
    pub peak_open: u64,
}

struct Conn {
    id: u64,
    send: SendRequest<Full<Bytes>>,
    /// The task driving the connection: it ends (closing the stream) once
    /// `send` is dropped with no request in flight. `None` once closed.
    driver: Option<JoinHandle<()>>,
    served: u64,
    _open: OpenGuard,
}

impl Conn {
    /// Closes the connection and waits until its stream is closed.
    async fn close(mut self) {
        let driver = self.driver.take();
        drop(self);
        if let Some(driver) = driver {
            let _ = driver.await;
        }
    }
}

impl Drop for Conn {
    /// A connection dropped without `close` was cut off mid-request (a
    /// timeout, a cancelled task): its state is unknown, so it is torn
    /// down, as aiohttp closes a connection whose request was cancelled.
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            driver.abort();
        }
    }
}

struct OpenGuard(Rc<Inner>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let mut s = self.0.stats.get();
        s.open -= 1;
        self.0.stats.set(s);
    }
}

struct Inner {
    host: Host,
    config: ClientConfig,
    limit: Semaphore,
    per_host: RefCell<BTreeMap<String, Rc<Semaphore>>>,
    /// Idle connections by authority, oldest first.
    idle: RefCell<BTreeMap<String, Vec<Conn>>>,
    stats: Cell<ClientStats>,
    closed: Cell<bool>,
}

/// A pooled HTTP/1 client (cheap to clone: clones share the pool).
#[derive(Clone)]
pub struct Client {
    inner: Rc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.inner.host.name())
            .field("stats", &self.inner.stats.get())
            .finish_non_exhaustive()
    }
}

const UNLIMITED: usize = 1 << 20;

impl Client {
    /// A client whose connections run on `host`, with default settings.
    pub fn new(host: &Host) -> Client {
        Client::with_config(host, ClientConfig::default())
    }

    /// A client whose connections run on `host`.
    pub fn with_config(host: &Host, config: ClientConfig) -> Client {
        let limit = if config.limit == 0 {
            UNLIMITED
        } else {
            config.limit
        };
        Client {
            inner: Rc::new(Inner {
                host: host.clone(),
                limit: Semaphore::named(format!("{}: connection limit", host.name()), limit),
                config,
                per_host: RefCell::default(),
                idle: RefCell::default(),
                stats: Cell::default(),
                closed: Cell::new(false),
            }),
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> ClientStats {
        self.inner.stats.get()
    }

    /// Refuses new requests, closes the idle connections and waits until
    /// they are closed (aiohttp's `await session.close()`). Requests in
    /// flight finish on their connections, which then close.
    pub async fn close(&self) {
        self.inner.closed.set(true);
        let idle = std::mem::take(&mut *self.inner.idle.borrow_mut());
        for conn in idle.into_values().flatten() {
            conn.close().await;
        }
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Result<Response, Error> {
        let total = self.inner.config.total_timeout;
        match timeout(total, self.request(url)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout("total")),
        }
    }

    fn update(&self, f: impl FnOnce(&mut ClientStats)) {
        let mut s = self.inner.stats.get();
        f(&mut s);
        s.peak_open = s.peak_open.max(s.open);
        self.inner.stats.set(s);
    }

    fn host_limit(&self, authority: &str) -> Option<Rc<Semaphore>> {
        let n = self.inner.config.limit_per_host;
        (n > 0).then(|| {
            self.inner
                .per_host
                .borrow_mut()
                .entry(authority.to_string())
                .or_insert_with(|| {
                    Rc::new(Semaphore::named(format!("per-host limit {authority}"), n))
                })
                .clone()
        })
    }

    async fn request(&self, url: &str) -> Result<Response, Error> {
        if self.inner.closed.get() {
            return Err(Error::Closed);
        }
        let uri: Uri = url
            .parse()
            .map_err(|_| Error::InvalidUrl(url.to_string()))?;
        let (Some("http"), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return Err(Error::InvalidUrl(url.to_string()));
        };
        let authority = format!("{host}:{}", uri.port_u16().unwrap_or(80));
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let host_limit = self.host_limit(&authority);
        let _host_slot = match &host_limit {
            Some(s) => Some(s.acquire().await.map_err(|_| Error::Closed)?),
            None => None,
        };
        let _slot = self
            .inner
            .limit
            .acquire()
            .await
            .map_err(|_| Error::Closed)?;
        let idle = self
            .inner
            .idle
            .borrow_mut()
            .get_mut(&authority)
            .and_then(|v| v.pop());
        let mut conn = match idle {
            Some(conn) => {
                self.update(|s| s.reused += 1);
                conn
            }
            None => self.connect(&authority).await?,
        };
        self.update(|s| s.requests += 1);
        let req = Request::get(path)
            .header("host", host)
            .header("user-agent", self.inner.config.user_agent.as_str())
            .body(Full::new(Bytes::new()))
            .map_err(|_| Error::InvalidUrl(url.to_string()))?;
        conn.send.ready().await.map_err(Error::Http)?;
        let resp = conn.send.send_request(req).await.map_err(Error::Http)?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(Error::Http)?
            .to_bytes();
        let response = Response {
            status,
            headers,
            body,
            connection: conn.id,
            reused: conn.served > 0,
        };
        conn.served += 1;
        if self.inner.config.pool && !self.inner.closed.get() && !conn.send.is_closed() {
            self.inner
                .idle
                .borrow_mut()
                .entry(authority)
                .or_default()
                .insert(0, conn);
        }
        Ok(response)
    }

    /// Takes the oldest idle connection of any host, if any.
    fn evict_one(&self) -> Option<Conn> {
        let mut idle = self.inner.idle.borrow_mut();
        idle.values_mut().find_map(|conns| conns.pop())
    }

    async fn connect(&self, authority: &str) -> Result<Conn, Error> {
        while self.inner.config.limit > 0 && self.stats().open >= self.inner.config.limit as u64 {
            match self.evict_one() {
                Some(conn) => conn.close().await,
                None => break,
            }
        }
        let id = self.stats().created + 1;
        self.update(|s| {
            s.created += 1;
            s.open += 1;
        });
        let guard = OpenGuard(self.inner.clone());
        let addr = authority.to_string();
        let limit = self.inner.config.connect_timeout;
        let connecting = async {
            // Sockets belong to hosts: a task of the client's host opens it.
            let stream = match AbortOnDrop(self.inner.host.spawn(TcpStream::connect(addr))).await {
                Ok(r) => r.map_err(Error::Connect)?,
                Err(join) => return Err(Error::Connect(join.into())),
            };
            // Named by its local port: unique on the host, and the name
            // the trace's tcp lines show.
            let port = stream.local_addr().map_or(0, |a| a.port());
            hyper::client::conn::http1::handshake(HyperIo::new(stream))
                .await
                .map(|(send, conn)| (send, conn, port))
                .map_err(Error::Http)
        };
        let (send, conn, port) = match timeout(limit, connecting).await {
            Ok(r) => r?,
            Err(_) => return Err(Error::Timeout("connect")),
        };
        // Ends when the `SendRequest` is dropped, or the peer closes.
        let name = format!("{}-conn-{port}", self.inner.host.name());
        let driver = Builder::new().name(name).spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            id,
            send,
            driver: Some(driver),
            served: 0,
            _open: guard,
        })
    }
}

/// Awaits a task, and aborts it if dropped first (a connect that timed out).
struct AbortOnDrop<T>(lockstep::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, lockstep::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}
