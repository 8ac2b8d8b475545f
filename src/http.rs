//! HTTP over the simulated network with [hyper] 1.x (feature `hyper`).
//!
//! hyper's HTTP/1 client and server are runtime-agnostic state machines:
//! they read and write through the [`hyper::rt::Read`] and
//! [`hyper::rt::Write`] traits and leave spawning to the caller. That is all
//! it takes to run a real HTTP stack on lockstep: wrap a
//! [`TcpStream`](crate::net::TcpStream) (or anything implementing
//! `futures::io::AsyncRead + AsyncWrite`) in [`HyperIo`], hand it to
//! `hyper::client::conn::http1::handshake` or to
//! `hyper::server::conn::http1::Builder::serve_connection`, and spawn the
//! connection future as a lockstep task. Every byte then crosses simulated
//! links, with their latency, loss, partitions and crashes, and the same
//! seed replays the same requests at the same virtual instants.
//!
//! Two settings matter for determinism, and [`server_builder`] sets both:
//!
//! - **No `Date` header.** hyper's server stamps responses with the wall
//!   clock (`SystemTime::now`) unless told not to; a simulated server must
//!   not read the wall clock, so [`server_builder`] turns it off.
//! - **No hyper timer.** hyper's [`Timer`](hyper::rt::Timer) trait speaks
//!   `std::time::Instant`, which cannot be made to follow the virtual clock
//!   honestly, so lockstep does not provide one. hyper's own timeouts
//!   (`header_read_timeout`) therefore stay off; put timeouts around calls
//!   with [`time::timeout`](crate::time::timeout) instead, as a client does
//!   anyway.
//!
//! hyper needs no executor for HTTP/1 (the caller spawns the connection);
//! [`Executor`] is there for code that asks for one, and spawns on the
//! current simulation.
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use hyper::{Request, Response};
//! use lockstep::http::{HyperIo, server_builder};
//! use lockstep::net::{Host, TcpListener, TcpStream};
//! use lockstep::prelude::*;
//!
//! let outcome = Sim::new(5).run(async {
//!     Host::new("api", || async {
//!         let listener = TcpListener::bind("0.0.0.0:80").await?;
//!         loop {
//!             let (stream, _) = listener.accept().await?;
//!             let service = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
//!                 let body = format!("you asked for {}", req.uri().path());
//!                 Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(body))))
//!             });
//!             let conn = server_builder().serve_connection(HyperIo::new(stream), service);
//!             // A connection's error is the server's to see: a task's `Err`
//!             // that nobody takes fails the run (an unobserved error).
//!             lockstep::spawn(async move {
//!                 if let Err(e) = conn.await {
//!                     lockstep::trace!("connection error: {e}");
//!                 }
//!             });
//!         }
//!     });
//!     let client = Host::new("client", || async { Ok(()) });
//!     client
//!         .spawn(async {
//!             let stream = TcpStream::connect("api:80").await.unwrap();
//!             let (mut send, conn) = hyper::client::conn::http1::handshake(HyperIo::new(stream))
//!                 .await
//!                 .unwrap();
//!             lockstep::spawn(async move {
//!                 let _ = conn.await; // ends when `send` is dropped
//!             });
//!             let req = Request::get("/hello")
//!                 .header("host", "api")
//!                 .body(Full::new(Bytes::new()))
//!                 .unwrap();
//!             let resp = send.send_request(req).await.unwrap();
//!             let body = resp.into_body().collect().await.unwrap().to_bytes();
//!             String::from_utf8(body.to_vec()).unwrap()
//!         })
//!         .await
//!         .unwrap()
//! });
//! assert_eq!(outcome.into_result().unwrap(), "you asked for /hello");
//! ```

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::io::{AsyncRead, AsyncWrite};

/// How many bytes one read hands hyper at most. hyper's read buffer starts
/// at 8 KiB; reads go through a stack buffer of this size, so no `unsafe`
/// is needed to fill hyper's uninitialised memory.
const READ_CHUNK: usize = 8 * 1024;

/// An I/O object for hyper: wraps any `futures::io::AsyncRead +
/// AsyncWrite` (a lockstep [`TcpStream`](crate::net::TcpStream), a
/// `&TcpStream`, a test double) and implements [`hyper::rt::Read`] and
/// [`hyper::rt::Write`].
///
/// `poll_shutdown` closes the write half (a FIN the peer reads as the end
/// of the stream); dropping the wrapper drops the stream, which closes it
/// too.
#[derive(Debug)]
pub struct HyperIo<T> {
    inner: T,
}

impl<T> HyperIo<T> {
    /// Wraps `io`.
    pub fn new(io: T) -> HyperIo<T> {
        HyperIo { inner: io }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead + Unpin> hyper::rt::Read for HyperIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut chunk = [0u8; READ_CHUNK];
        let want = buf.remaining().min(READ_CHUNK);
        let n = ready!(Pin::new(&mut self.get_mut().inner).poll_read(cx, &mut chunk[..want]))?;
        buf.put_slice(&chunk[..n]);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for HyperIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// A [`hyper::rt::Executor`] that spawns on the running simulation, for
/// hyper APIs that take one. Tasks spawned from a host's task belong to
/// that host. The handles are dropped: a spawned future whose output is an
/// `Err` fails the run as an unobserved error, so hand it futures that
/// deal with their own errors.
///
/// # Panics
///
/// `execute` panics outside a simulation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Executor;

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        crate::task::spawn(fut);
    }
}

/// hyper's HTTP/1 server builder set up for a simulation: no wall-clock
/// `Date` header (see the module docs).
pub fn server_builder() -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.auto_date_header(false);
    builder
}
