//! `TcpListener` and `TcpStream` (and its halves): tokio's, or lockstep's
//! simulated streams adapted to `tokio::io::{AsyncRead, AsyncWrite}`.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::io::{AsyncRead as FutRead, AsyncWrite as FutWrite};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Target, ToSocketAddrs, each_sim_addr, target};
use crate::local::Local;

type SimStream = Local<Rc<lockstep::net::TcpStream>>;

fn sim_stream(s: lockstep::net::TcpStream) -> SimStream {
    Local::new(Rc::new(s), "tokio::net::TcpStream")
}

/// A TCP listener.
pub struct TcpListener {
    repr: ListenerRepr,
}

enum ListenerRepr {
    Real(tokio::net::TcpListener),
    Sim(Local<lockstep::net::TcpListener>),
}

impl TcpListener {
    /// Binds a listener. Inside a simulation, on the calling task's host
    /// (`0.0.0.0:80`, `127.0.0.1:0`, the host's name or address; port `0`
    /// picks a free one).
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        let t = target(&addr);
        let repr = if crate::sim() {
            ListenerRepr::Sim(
                each_sim_addr(t, |a| {
                    Local::new(
                        async move {
                            lockstep::net::TcpListener::bind(a)
                                .await
                                .map(|l| Local::new(l, "tokio::net::TcpListener"))
                        },
                        "tokio::net::TcpListener::bind",
                    )
                })
                .await?,
            )
        } else {
            ListenerRepr::Real(match t {
                Target::Addr(a) => tokio::net::TcpListener::bind(a).await?,
                Target::Addrs(a) => tokio::net::TcpListener::bind(a).await?,
                Target::Str(s) => tokio::net::TcpListener::bind(s).await?,
                Target::HostPort(h, p) => tokio::net::TcpListener::bind((h, p)).await?,
            })
        };
        Ok(TcpListener { repr })
    }

    /// Accepts a connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for a connection.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        match &self.repr {
            ListenerRepr::Real(l) => l.poll_accept(cx).map(|r| {
                r.map(|(s, a)| {
                    (
                        TcpStream {
                            repr: StreamRepr::Real(s),
                        },
                        a,
                    )
                })
            }),
            ListenerRepr::Sim(l) => l.get().poll_accept(cx).map(|r| {
                r.map(|(s, a)| {
                    (
                        TcpStream {
                            repr: StreamRepr::Sim(sim_stream(s)),
                        },
                        a,
                    )
                })
            }),
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.repr {
            ListenerRepr::Real(l) => l.local_addr(),
            ListenerRepr::Sim(l) => l.get().local_addr(),
        }
    }

    /// Adopts a `std` listener.
    ///
    /// # Panics
    ///
    /// Inside a simulation: a real socket has no place there.
    #[track_caller]
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        if crate::sim() {
            crate::unsupported("tokio::net::TcpListener::from_std");
        }
        Ok(TcpListener {
            repr: ListenerRepr::Real(tokio::net::TcpListener::from_std(listener)?),
        })
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            ListenerRepr::Real(l) => fmt::Debug::fmt(l, f),
            ListenerRepr::Sim(l) => fmt::Debug::fmt(l.get(), f),
        }
    }
}

/// A TCP connection: tokio's, or a simulated stream (reliable and ordered,
/// with the link's latency; partitions stall it, crashes reset it).
pub struct TcpStream {
    repr: StreamRepr,
}

enum StreamRepr {
    Real(tokio::net::TcpStream),
    Sim(SimStream),
}

impl TcpStream {
    /// Connects to `addr`. Inside a simulation, from the calling task's
    /// host to a simulated host (`"server:80"`, `"10.0.0.2:80"`,
    /// `"127.0.0.1:80"` for its own host).
    pub async fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        let t = target(&addr);
        let repr = if crate::sim() {
            StreamRepr::Sim(
                each_sim_addr(t, |a| {
                    Local::new(
                        async move { lockstep::net::TcpStream::connect(a).await.map(sim_stream) },
                        "tokio::net::TcpStream::connect",
                    )
                })
                .await?,
            )
        } else {
            StreamRepr::Real(match t {
                Target::Addr(a) => tokio::net::TcpStream::connect(a).await?,
                Target::Addrs(a) => tokio::net::TcpStream::connect(a).await?,
                Target::Str(s) => tokio::net::TcpStream::connect(s).await?,
                Target::HostPort(h, p) => tokio::net::TcpStream::connect((h, p)).await?,
            })
        };
        Ok(TcpStream { repr })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.repr {
            StreamRepr::Real(s) => s.local_addr(),
            StreamRepr::Sim(s) => s.get().local_addr(),
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.repr {
            StreamRepr::Real(s) => s.peer_addr(),
            StreamRepr::Sim(s) => s.get().peer_addr(),
        }
    }

    /// Sets `TCP_NODELAY`. A simulated stream sends every write at once
    /// anyway: a no-op there.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match &self.repr {
            StreamRepr::Real(s) => s.set_nodelay(nodelay),
            StreamRepr::Sim(_) => Ok(()),
        }
    }

    /// Whether `TCP_NODELAY` is set (always, for a simulated stream).
    pub fn nodelay(&self) -> io::Result<bool> {
        match &self.repr {
            StreamRepr::Real(s) => s.nodelay(),
            StreamRepr::Sim(_) => Ok(true),
        }
    }

    /// Splits into borrowed read and write halves.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        match &mut self.repr {
            StreamRepr::Real(s) => {
                let (r, w) = s.split();
                (ReadHalf(HalfRef::Real(r)), WriteHalf(WriteRef::Real(w)))
            }
            StreamRepr::Sim(s) => {
                let s: &SimStream = s;
                (ReadHalf(HalfRef::Sim(s)), WriteHalf(WriteRef::Sim(s)))
            }
        }
    }

    /// Splits into owned halves (each may go to its own task). Dropping
    /// the write half shuts the write direction down, as tokio's does.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        match self.repr {
            StreamRepr::Real(s) => {
                let (r, w) = s.into_split();
                (
                    OwnedReadHalf(OwnedRead::Real(r)),
                    OwnedWriteHalf(OwnedWrite::Real(w)),
                )
            }
            StreamRepr::Sim(s) => {
                let other = Local::new(Rc::clone(s.get()), "tokio::net::tcp::OwnedWriteHalf");
                (
                    OwnedReadHalf(OwnedRead::Sim(s)),
                    OwnedWriteHalf(OwnedWrite::Sim(other)),
                )
            }
        }
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            StreamRepr::Real(s) => fmt::Debug::fmt(s, f),
            StreamRepr::Sim(s) => fmt::Debug::fmt(&**s.get(), f),
        }
    }
}

// ---- the adapters from lockstep's `futures::io` streams to `tokio::io`

fn sim_read(
    s: &lockstep::net::TcpStream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let mut s = s;
    let dst = buf.initialize_unfilled();
    match Pin::new(&mut s).poll_read(cx, dst) {
        Poll::Ready(Ok(n)) => {
            buf.advance(n);
            Poll::Ready(Ok(()))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

fn sim_write(
    s: &lockstep::net::TcpStream,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    let mut s = s;
    Pin::new(&mut s).poll_write(cx, buf)
}

fn sim_flush(s: &lockstep::net::TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let mut s = s;
    Pin::new(&mut s).poll_flush(cx)
}

fn sim_shutdown(s: &lockstep::net::TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let mut s = s;
    Pin::new(&mut s).poll_close(cx)
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().repr {
            StreamRepr::Real(s) => Pin::new(s).poll_read(cx, buf),
            StreamRepr::Sim(s) => sim_read(s.get(), cx, buf),
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().repr {
            StreamRepr::Real(s) => Pin::new(s).poll_write(cx, buf),
            StreamRepr::Sim(s) => sim_write(s.get(), cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().repr {
            StreamRepr::Real(s) => Pin::new(s).poll_flush(cx),
            StreamRepr::Sim(s) => sim_flush(s.get(), cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().repr {
            StreamRepr::Real(s) => Pin::new(s).poll_shutdown(cx),
            StreamRepr::Sim(s) => sim_shutdown(s.get(), cx),
        }
    }
}

/// The read half of [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a>(HalfRef<'a>);

#[derive(Debug)]
enum HalfRef<'a> {
    Real(tokio::net::tcp::ReadHalf<'a>),
    Sim(&'a SimStream),
}

/// The write half of [`TcpStream::split`].
#[derive(Debug)]
pub struct WriteHalf<'a>(WriteRef<'a>);

#[derive(Debug)]
enum WriteRef<'a> {
    Real(tokio::net::tcp::WriteHalf<'a>),
    Sim(&'a SimStream),
}

/// The owned read half of [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf(OwnedRead);

#[derive(Debug)]
enum OwnedRead {
    Real(tokio::net::tcp::OwnedReadHalf),
    Sim(SimStream),
}

/// The owned write half of [`TcpStream::into_split`]; dropping it shuts
/// the write direction down.
#[derive(Debug)]
pub struct OwnedWriteHalf(OwnedWrite);

#[derive(Debug)]
enum OwnedWrite {
    Real(tokio::net::tcp::OwnedWriteHalf),
    Sim(SimStream),
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if let OwnedWrite::Sim(s) = &self.0 {
            if crate::sim() {
                let _ = s.get().shutdown(Shutdown::Write);
            }
        }
    }
}

impl AsyncRead for ReadHalf<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            HalfRef::Real(h) => Pin::new(h).poll_read(cx, buf),
            HalfRef::Sim(s) => sim_read(s.get(), cx, buf),
        }
    }
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            OwnedRead::Real(h) => Pin::new(h).poll_read(cx, buf),
            OwnedRead::Sim(s) => sim_read(s.get(), cx, buf),
        }
    }
}

macro_rules! write_half {
    ($t:ty, $real:path, $sim:path) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match &mut self.get_mut().0 {
                    $real(h) => Pin::new(h).poll_write(cx, buf),
                    $sim(s) => sim_write(s.get(), cx, buf),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match &mut self.get_mut().0 {
                    $real(h) => Pin::new(h).poll_flush(cx),
                    $sim(s) => sim_flush(s.get(), cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match &mut self.get_mut().0 {
                    $real(h) => Pin::new(h).poll_shutdown(cx),
                    $sim(s) => sim_shutdown(s.get(), cx),
                }
            }
        }
    };
}

write_half!(WriteHalf<'_>, WriteRef::Real, WriteRef::Sim);
write_half!(OwnedWriteHalf, OwnedWrite::Real, OwnedWrite::Sim);
