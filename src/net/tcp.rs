//! `TcpListener` and `TcpStream`: reliable, ordered byte streams between
//! hosts. The model (handshake, partitions, crashes, closing) is described
//! in the [`net`](super) module docs.

use std::future::{Future, poll_fn};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

use super::SocketWait;
use super::addr::{self, ToAddr};
use super::fabric::{self, Fabric};
use super::host::{Binding, HostId, Proto};
use super::leaks::Owner;
use super::split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use super::stream::{self, Backlog, ConnKey};
use crate::runtime::context;
use crate::runtime::world::World;
use crate::time::Duration;

/// The host of the calling task; panics with a clear message, at the
/// user's line `caller`, if it runs on none.
pub(crate) fn here(w: &World, api: &str, caller: &'static Location<'static>) -> HostId {
    w.exec
        .current_host()
        .map(HostId::of_group)
        .unwrap_or_else(|| {
            crate::runtime::panics::misuse(
                caller,
                format!(
                    "`{api}` was called from a task that runs on no host: sockets belong to hosts, \
                 so call it from a host's task (`lockstep::net::Host::new(..)`'s factory, or \
                 `host.spawn(..)`)"
                ),
            )
        })
}

/// Binds `(proto, port)` on `host`, or an ephemeral port for port 0.
pub(crate) fn bind_port(
    f: &mut Fabric,
    host: HostId,
    proto: Proto,
    port: u16,
    binding: Binding,
) -> io::Result<u16> {
    let hs = f.host_mut(host);
    let port = match port {
        0 => hs.ephemeral(proto).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                "no ephemeral port is left on this host",
            )
        })?,
        p => p,
    };
    if hs.ports.contains_key(&(proto, port)) {
        let what = if proto == Proto::Tcp { "tcp" } else { "udp" };
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{what} port {port} is already bound on host {}", hs.name),
        ));
    }
    hs.ports.insert((proto, port), binding);
    Ok(port)
}

/// A socket bound on a host, as its handle remembers it.
#[derive(Debug)]
pub(crate) struct Bound {
    /// The run's network it belongs to (`Fabric::epoch`).
    pub(crate) epoch: u64,
    pub(crate) host: HostId,
    pub(crate) incarnation: u32,
    pub(crate) port: u16,
    pub(crate) id: u64,
    pub(crate) local: SocketAddr,
    /// `accept on server:80`: what a task blocked on it waits for.
    pub(crate) desc: Rc<SocketWait>,
}

impl Bound {
    /// Binds a new socket for the calling task's host.
    pub(crate) fn new(
        api: &str,
        addr: &(impl ToAddr + ?Sized),
        proto: Proto,
        make: impl FnOnce(u64, Option<Owner>) -> Binding,
        verb: &str,
        caller: &'static Location<'static>,
    ) -> io::Result<Bound> {
        let spec = addr.to_addr_spec()?;
        context::with("lockstep::net", |w| {
            let host = here(w, api, caller);
            fabric::with(w, |f| {
                let port = addr::local_port(f, &spec, host)?;
                let id = f.next_socket;
                f.next_socket += 1;
                let port = bind_port(f, host, proto, port, make(id, Owner::here(w)))?;
                let hs = f.host(host);
                Ok(Bound {
                    epoch: f.epoch,
                    host,
                    incarnation: hs.incarnation,
                    port,
                    id,
                    local: SocketAddr::new(hs.ip.into(), port),
                    desc: SocketWait::new(format!("{verb} {}:{port}", hs.name)),
                })
            })
        })
    }

    /// Whether the socket still exists (its host did not crash since).
    pub(crate) fn live(&self, f: &Fabric) -> bool {
        if f.epoch != self.epoch {
            return false;
        }
        let hs = f.host(self.host);
        hs.up && hs.incarnation == self.incarnation
    }

    pub(crate) fn closed_error(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::NotConnected,
            "the socket was closed: its host crashed (or it was made by an earlier simulation \
             run)",
        )
    }

    /// Unbinds the port if this socket still holds it.
    pub(crate) fn unbind(&self, f: &mut Fabric, proto: Proto) -> Option<Binding> {
        if !self.live(f) {
            return None;
        }
        let ports = &mut f.host_mut(self.host).ports;
        let same = match ports.get(&(proto, self.port)) {
            Some(Binding::Listener(b)) => b.id == self.id,
            Some(Binding::Udp(i)) => i.id == self.id,
            None => false,
        };
        if same {
            ports.remove(&(proto, self.port))
        } else {
            None
        }
    }
}

/// A socket that accepts stream connections, like `tokio::net::TcpListener`.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::net::{Host, TcpListener, TcpStream};
/// use futures::{AsyncReadExt, AsyncWriteExt};
///
/// let outcome = Sim::new(3).run(async {
///     Host::new("server", || async {
///         let listener = TcpListener::bind("0.0.0.0:7").await?;
///         loop {
///             let (mut stream, _) = listener.accept().await?;
///             lockstep::spawn(async move {
///                 let mut buf = [0; 64];
///                 let n = stream.read(&mut buf).await?;
///                 stream.write_all(&buf[..n]).await
///             });
///         }
///     });
///     let client = Host::new("client", || async { Ok(()) });
///     client.spawn(async {
///         let mut stream = TcpStream::connect("server:7").await?;
///         stream.write_all(b"hello").await?;
///         let mut reply = [0; 5];
///         stream.read_exact(&mut reply).await?;
///         Ok::<_, std::io::Error>(reply)
///     }).await.unwrap()
/// });
/// assert_eq!(&outcome.into_result().unwrap().unwrap(), b"hello");
/// ```
#[derive(Debug)]
pub struct TcpListener {
    bound: Bound,
}

impl TcpListener {
    /// Listens on `addr` of the calling task's host (`"0.0.0.0:80"`; port
    /// `0` picks a free port).
    ///
    /// # Errors
    ///
    /// `AddrInUse` if the port is taken, `AddrNotAvailable` for an address
    /// that is not the host's, `InvalidInput` for a malformed address.
    ///
    /// # Panics
    ///
    /// Outside a host's task.
    #[track_caller]
    pub fn bind(addr: impl ToAddr) -> impl Future<Output = io::Result<TcpListener>> {
        let caller = Location::caller();
        async move {
            let bound = Bound::new(
                "lockstep::net::TcpListener::bind",
                &addr,
                Proto::Tcp,
                |id, owner| {
                    Binding::Listener(Backlog {
                        id,
                        owner,
                        queue: Default::default(),
                        waker: None,
                    })
                },
                "accept on",
                caller,
            )?;
            Ok(TcpListener { bound })
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.bound.local)
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next connection.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        context::with("lockstep::net::TcpListener::accept", |w| {
            let got = fabric::with(w, |f| {
                if !self.bound.live(f) {
                    return Some(Err(self.bound.closed_error()));
                }
                loop {
                    let key = match f
                        .host_mut(self.bound.host)
                        .ports
                        .get_mut(&(Proto::Tcp, self.bound.port))
                    {
                        Some(Binding::Listener(b)) if b.id == self.bound.id => {
                            Owner::touch_opt(&mut b.owner, w);
                            match b.queue.pop_front() {
                                Some(key) => key,
                                None => {
                                    if !b.waker.as_ref().is_some_and(|x| x.will_wake(cx.waker())) {
                                        b.waker = Some(cx.waker().clone());
                                    }
                                    return None;
                                }
                            }
                        }
                        _ => return Some(Err(self.bound.closed_error())),
                    };
                    if let Some(stream) = TcpStream::from_key(f, key, 1) {
                        stream::set_owner(f, w, key, 1);
                        stream::trace_accept(f, w, key);
                        let peer = stream.peer;
                        return Some(Ok((stream, peer)));
                    }
                }
            });
            match got {
                Some(result) => Poll::Ready(result),
                None => {
                    self.bound.desc.note(w);
                    Poll::Pending
                }
            }
        })
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        context::try_with(|w| {
            fabric::with(w, |f| {
                if let Some(Binding::Listener(b)) = self.bound.unbind(f, Proto::Tcp) {
                    stream::reset_backlog(f, w, b.queue);
                }
            })
        });
    }
}

/// One end of a stream connection: implements
/// [`futures::io::AsyncRead`] and [`AsyncWrite`] (use
/// `futures::{AsyncReadExt, AsyncWriteExt}` for `read`, `write_all`, …).
///
/// Reads and writes also work through `&TcpStream`, so one task may read
/// while another writes ([`split`](TcpStream::split) and
/// [`into_split`](TcpStream::into_split) name the halves). Writes are
/// flow-controlled: an end may have at most its send window
/// ([`TcpConfig::send_window`], 64 KiB by default;
/// [`set_send_window`](TcpStream::set_send_window) per stream) written but
/// not yet read by the peer; a write takes what fits and waits when
/// nothing does, until the peer reads.
/// `close()` (or [`shutdown`](TcpStream::shutdown) with
/// `Shutdown::Write`) sends a FIN: the peer reads what was written, then
/// `0`. Dropping the stream closes it the same way.
#[derive(Debug)]
pub struct TcpStream {
    /// The run's network it belongs to (`Fabric::epoch`).
    epoch: u64,
    key: ConnKey,
    side: u8,
    local: SocketAddr,
    peer: SocketAddr,
    desc: Rc<SocketWait>,
    write_desc: Rc<SocketWait>,
}

impl TcpStream {
    fn from_key(f: &Fabric, key: ConnKey, side: usize) -> Option<TcpStream> {
        let (local, peer) = stream::endpoints(f, key, side)?;
        let (p, l) = (f.label(peer.0, peer.1), f.label(local.0, local.1));
        Some(TcpStream {
            epoch: f.epoch,
            key,
            side: side as u8,
            local: fabric::socket_addr(f, local),
            peer: fabric::socket_addr(f, peer),
            desc: SocketWait::new(format!("read from {p} on {l}")),
            write_desc: SocketWait::new(format!(
                "room to write to {p} on {l} (the send window is full)"
            )),
        })
    }

    /// Connects to `addr` (`"server:80"`) from the calling task's host.
    ///
    /// # Errors
    ///
    /// `ConnectionRefused` when nothing listens on the port;
    /// `TimedOut` when no answer came within
    /// [`TcpConfig::connect_timeout`] (the host is down or partitioned
    /// away); `NotFound` for an unknown host name; `InvalidInput` for a
    /// malformed address.
    ///
    /// # Panics
    ///
    /// Outside a host's task.
    #[track_caller]
    pub fn connect(addr: impl ToAddr) -> impl Future<Output = io::Result<TcpStream>> {
        let caller = Location::caller();
        async move {
            let spec = addr.to_addr_spec()?;
            let key = context::with("lockstep::net::TcpStream::connect", |w| {
                let host = here(w, "lockstep::net::TcpStream::connect", caller);
                fabric::with(w, |f| {
                    let (dst, port) = addr::resolve(f, &spec, Some(host))?;
                    stream::open(f, w, host, dst, port)
                })
            })?;
            let mut pending = PendingConnect(Some(key));
            let desc: Rc<SocketWait> = context::with("lockstep::net::TcpStream::connect", |w| {
                fabric::with(w, |f| {
                    let (_, peer) = stream::endpoints(f, key, 0).expect("a new connection exists");
                    SocketWait::new(format!("connect to {}", f.label(peer.0, peer.1)))
                })
            });
            poll_fn(|cx| {
                context::with("lockstep::net::TcpStream::connect", |w| {
                    let poll = fabric::with(w, |f| {
                        stream::poll_connect(f, key, cx).map(|r| {
                            r.and_then(|()| {
                                TcpStream::from_key(f, key, 0)
                                    .ok_or_else(|| io::ErrorKind::NotConnected.into())
                            })
                        })
                    });
                    if poll.is_pending() {
                        desc.note(w);
                    }
                    poll
                })
            })
            .await
            .inspect(|_| pending.0 = None)
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Splits the stream into a read half and a write half that borrow it,
    /// for reading and writing from two futures at once (a `select`, a
    /// `join`).
    ///
    /// ```
    /// use lockstep::prelude::*;
    /// use lockstep::net::{Host, TcpListener, TcpStream};
    ///
    /// Sim::new(1).run(async {
    ///     Host::new("server", || async {
    ///         let (mut s, _) = TcpListener::bind("0.0.0.0:7").await?.accept().await?;
    ///         let (mut rd, mut wr) = s.split();
    ///         futures::io::copy(&mut rd, &mut wr).await?;
    ///         Ok(())
    ///     });
    ///     let reply = Host::client("client").spawn(async {
    ///         let mut s = TcpStream::connect("server:7").await?;
    ///         s.write_all(b"ping").await?;
    ///         s.close().await?;
    ///         let mut reply = String::new();
    ///         s.read_to_string(&mut reply).await?;
    ///         Ok::<_, std::io::Error>(reply)
    ///     });
    ///     assert_eq!(reply.await.unwrap().unwrap(), "ping");
    /// }).into_result().unwrap();
    /// ```
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf(self), WriteHalf(self))
    }

    /// Splits the stream into owned halves that can move to two tasks.
    /// Dropping the write half closes the write side (the peer reads `0`
    /// after the data); the stream closes when both halves are gone.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let shared = Rc::new(self);
        (OwnedReadHalf(shared.clone()), OwnedWriteHalf(shared))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }

    /// Shuts down the read half (buffered and later data is discarded, reads
    /// return `0`), the write half (a FIN is sent), or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        context::with("lockstep::net::TcpStream::shutdown", |w| {
            let (result, wakes) = fabric::with(w, |f| {
                if self.stale(f) {
                    return (Err(stale_error()), Default::default());
                }
                let side = self.side as usize;
                let wakes = match how {
                    Shutdown::Read | Shutdown::Both => stream::shutdown_read(f, self.key, side),
                    Shutdown::Write => Default::default(),
                };
                let result = match how {
                    Shutdown::Write | Shutdown::Both => stream::close_write(f, w, self.key, side),
                    Shutdown::Read => Ok(()),
                };
                (result, wakes)
            });
            wakes.wake();
            result
        })
    }

    /// Whether this handle belongs to another run than `f`'s (kept in a
    /// `static` across runs): it must then touch nothing.
    fn stale(&self, f: &Fabric) -> bool {
        f.epoch != self.epoch
    }

    /// Sets how many bytes this end may have written that the peer has not
    /// read yet before writes wait (its send window; the default is
    /// [`TcpConfig::send_window`], 64 KiB). A small window shows a slow
    /// reader holding its writer back; a large one lets a writer run ahead.
    ///
    /// # Panics
    ///
    /// For a window of 0 (a write could never proceed), or outside a
    /// simulation.
    #[track_caller]
    pub fn set_send_window(&self, bytes: usize) {
        assert!(
            bytes > 0,
            "`TcpStream::set_send_window(0)`: the window must be at least 1 byte"
        );
        let waker = context::with("lockstep::net::TcpStream::set_send_window", |w| {
            fabric::with(w, |f| {
                if self.stale(f) {
                    return None;
                }
                stream::set_window(f, self.key, self.side as usize, bytes)
            })
        });
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn read_poll(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        context::with("lockstep::net::TcpStream::read", |w| {
            let mut wake = None;
            let poll = fabric::with(w, |f| {
                if self.stale(f) {
                    return Poll::Ready(Err(stale_error()));
                }
                stream::touch(f, w, self.key, self.side as usize);
                stream::poll_read(f, self.key, self.side as usize, buf, cx, &mut wake)
            });
            if let Some(waker) = wake {
                waker.wake();
            }
            if poll.is_pending() {
                self.desc.note(w);
            }
            poll
        })
    }

    fn write_poll(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        context::with("lockstep::net::TcpStream::write", |w| {
            let poll = fabric::with(w, |f| {
                if self.stale(f) {
                    return Poll::Ready(Err(stale_error()));
                }
                stream::touch(f, w, self.key, self.side as usize);
                stream::poll_write(f, w, self.key, self.side as usize, buf, cx)
            });
            if poll.is_pending() {
                self.write_desc.note(w);
            }
            poll
        })
    }

    fn close_now(&self) -> Poll<io::Result<()>> {
        Poll::Ready(context::with("lockstep::net::TcpStream::close", |w| {
            fabric::with(w, |f| {
                if self.stale(f) {
                    return Err(stale_error());
                }
                stream::close_write(f, w, self.key, self.side as usize)
            })
        }))
    }
}

fn stale_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "this stream was made by an earlier simulation run: a socket does not outlive its run",
    )
}

/// Abandons a connect whose future was dropped before it finished.
struct PendingConnect(Option<ConnKey>);

impl Drop for PendingConnect {
    fn drop(&mut self) {
        if let Some(key) = self.0 {
            let waker = context::try_with(|w| fabric::with(w, |f| stream::drop_end(f, w, key, 0)));
            if let Some(Some(waker)) = waker {
                waker.wake();
            }
        }
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        let waker = context::try_with(|w| {
            fabric::with(w, |f| {
                if self.stale(f) {
                    return None;
                }
                stream::drop_end(f, w, self.key, self.side as usize)
            })
        });
        if let Some(Some(waker)) = waker {
            waker.wake();
        }
    }
}

/// `AsyncRead` and `AsyncWrite` for a stream and for a shared reference to
/// it (the state lives in the simulation, so both work the same).
macro_rules! stream_io {
    ($($t:ty),*) => {$(
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.read_poll(cx, buf)
            }
        }

        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.write_poll(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.close_now()
            }
        }
    )*};
}

stream_io!(TcpStream, &TcpStream);

/// The TCP settings of a simulation ([`set_tcp_config`](super::set_tcp_config)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpConfig {
    /// How long `connect` keeps retransmitting its SYN before `TimedOut`
    /// (default 127 s: Linux's six retries, 1 + 2 + … + 64 s).
    pub connect_timeout: Duration,
    /// How long a direction may stay stalled by a partition before the
    /// connection fails (default 30 s; `TCP_USER_TIMEOUT`).
    pub user_timeout: Duration,
    /// The first retransmission timeout after a segment loss (default
    /// 200 ms, Linux's minimum RTO); it doubles on every further loss.
    pub rto: Duration,
    /// How many bytes one end of a stream may have written that the peer
    /// has not read yet (in flight or in its receive buffer) before writes
    /// wait: the send buffer and the peer's receive window together
    /// (default 64 KiB). Applies to streams opened after it is set;
    /// [`TcpStream::set_send_window`] changes one stream.
    pub send_window: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            connect_timeout: Duration::from_secs(127),
            user_timeout: Duration::from_secs(30),
            rto: Duration::from_millis(200),
            send_window: 64 * 1024,
        }
    }
}

impl TcpConfig {
    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Sets the user timeout.
    pub fn user_timeout(mut self, d: Duration) -> Self {
        self.user_timeout = d;
        self
    }

    /// Sets the first retransmission timeout.
    pub fn rto(mut self, d: Duration) -> Self {
        self.rto = d;
        self
    }

    /// Sets the send window of new streams.
    ///
    /// # Panics
    ///
    /// For a window of 0 (a write could never proceed).
    #[track_caller]
    pub fn send_window(mut self, bytes: usize) -> Self {
        assert!(
            bytes > 0,
            "`TcpConfig::send_window(0)`: the window must be at least 1 byte"
        );
        self.send_window = bytes;
        self
    }
}
