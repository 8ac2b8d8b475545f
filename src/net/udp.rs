//! `UdpSocket`: datagrams, subject to every link fault.
//!
//! A datagram crosses the link with its own latency sample, so datagrams
//! may arrive out of order; the link may lose it, duplicate it (the copy
//! has its own latency) or hold it back (reordering). A partition drops it,
//! whether it was cut when sent or while in flight; so does a destination
//! host that is down or has no socket on the port (no ICMP error comes
//! back, as with a firewalled real host). A receive queue holds at most
//! 1024 datagrams; later ones are dropped until the socket is read.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::panic::Location;
use std::task::{Context, Poll, Waker};

use super::addr::{self, ToAddr};
use super::fabric::{self, Due, Endpoint, Fabric, MsgEvent, Wakes};
use super::host::{Binding, Proto};
use super::leaks::Owner;
use super::tcp::Bound;
use crate::runtime::context;
use crate::runtime::world::World;

/// The largest datagram payload (IPv4's limit).
const MAX_DATAGRAM: usize = 65_507;
/// Datagrams a socket queues before dropping.
const QUEUE: usize = 1024;

/// A socket's receive queue.
pub(crate) struct Inbox {
    pub(crate) id: u64,
    /// The task that bound the socket, and its last user.
    pub(crate) owner: Option<Owner>,
    queue: VecDeque<(SocketAddr, Vec<u8>)>,
    pub(crate) waker: Option<Waker>,
}

/// A datagram socket, like `tokio::net::UdpSocket`.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::net::{Host, UdpSocket};
///
/// let outcome = Sim::new(5).run(async {
///     Host::new("echo", || async {
///         let socket = UdpSocket::bind("0.0.0.0:7").await?;
///         let mut buf = [0; 1500];
///         loop {
///             let (n, from) = socket.recv_from(&mut buf).await?;
///             socket.send_to(&buf[..n], from).await?;
///         }
///     });
///     let client = Host::new("client", || async { Ok(()) });
///     client.spawn(async {
///         let socket = UdpSocket::bind("0.0.0.0:0").await?;
///         socket.send_to(b"ping", "echo:7").await?;
///         let mut buf = [0; 16];
///         let (n, from) = socket.recv_from(&mut buf).await?;
///         Ok::<_, std::io::Error>((buf[..n].to_vec(), from.to_string()))
///     }).await.unwrap()
/// });
/// let (reply, from) = outcome.into_result().unwrap().unwrap();
/// assert_eq!(reply, b"ping");
/// assert_eq!(from, "10.0.0.1:7");
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    bound: Bound,
}

impl UdpSocket {
    /// Binds `addr` on the calling task's host (`"0.0.0.0:0"` for any free
    /// port).
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
    pub fn bind(addr: impl ToAddr) -> impl Future<Output = io::Result<UdpSocket>> {
        let caller = Location::caller();
        async move {
            let bound = Bound::new(
                "lockstep::net::UdpSocket::bind",
                &addr,
                Proto::Udp,
                |id, owner| {
                    Binding::Udp(Inbox {
                        id,
                        owner,
                        queue: VecDeque::new(),
                        waker: None,
                    })
                },
                "recv_from on",
                caller,
            )?;
            Ok(UdpSocket { bound })
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.bound.local)
    }

    /// Sends a datagram to `target`. Completes at once: success means the
    /// datagram left, not that it will arrive.
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown host name, `InvalidInput` for a malformed
    /// address or a payload over 65,507 bytes.
    pub async fn send_to(&self, buf: &[u8], target: impl ToAddr) -> io::Result<usize> {
        let spec = target.to_addr_spec()?;
        if buf.len() > MAX_DATAGRAM {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a datagram of {} bytes is over the limit of {MAX_DATAGRAM}",
                    buf.len()
                ),
            ));
        }
        context::with("lockstep::net::UdpSocket::send_to", |w| {
            fabric::with(w, |f| {
                if !self.bound.live(f) {
                    return Err(self.bound.closed_error());
                }
                let port = (Proto::Udp, self.bound.port);
                if let Some(Binding::Udp(inbox)) = f.host_mut(self.bound.host).ports.get_mut(&port)
                {
                    if inbox.id == self.bound.id {
                        Owner::touch_opt(&mut inbox.owner, w);
                    }
                }
                let dst = addr::resolve(f, &spec, Some(self.bound.host))?;
                send(f, w, (self.bound.host, self.bound.port), dst, buf);
                Ok(buf.len())
            })
        })
    }

    /// Waits for a datagram; copies it into `buf` (truncating it if `buf` is
    /// too small, as UDP does) and returns its length and sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| self.poll_recv_from(cx, buf)).await
    }

    /// Polls for a datagram.
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        context::with("lockstep::net::UdpSocket::recv_from", |w| {
            let poll = fabric::with(w, |f| {
                if !self.bound.live(f) {
                    return Poll::Ready(Err(self.bound.closed_error()));
                }
                let key = (Proto::Udp, self.bound.port);
                let Some(Binding::Udp(inbox)) = f.host_mut(self.bound.host).ports.get_mut(&key)
                else {
                    return Poll::Ready(Err(self.bound.closed_error()));
                };
                Owner::touch_opt(&mut inbox.owner, w);
                match inbox.queue.pop_front() {
                    Some((from, payload)) => {
                        let n = payload.len().min(buf.len());
                        buf[..n].copy_from_slice(&payload[..n]);
                        Poll::Ready(Ok((n, from)))
                    }
                    None => {
                        if !inbox
                            .waker
                            .as_ref()
                            .is_some_and(|x| x.will_wake(cx.waker()))
                        {
                            inbox.waker = Some(cx.waker().clone());
                        }
                        Poll::Pending
                    }
                }
            });
            if poll.is_pending() {
                self.bound.desc.note(w);
            }
            poll
        })
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        context::try_with(|w| fabric::with(w, |f| self.bound.unbind(f, Proto::Udp)));
    }
}

/// Puts a datagram on the link, applying the link's faults.
fn send(f: &mut Fabric, w: &World, src: Endpoint, dst: Endpoint, payload: &[u8]) {
    let n = payload.len();
    f.trace_msg(w, MsgEvent::Send, "udp", src, dst, n);
    let now = w.now().as_nanos();
    if f.is_cut(src.0, dst.0) {
        w.mix(1);
        f.trace_msg(w, MsgEvent::Drop("partition"), "udp", src, dst, n);
        return;
    }
    let loss = f.loss(src.0, dst.0);
    if loss > 0.0 && f.unit() < loss {
        w.mix(2);
        f.trace_msg(w, MsgEvent::Drop("loss"), "udp", src, dst, n);
        return;
    }
    let (reorder, duplicate) = if src.0 == dst.0 {
        (0.0, 0.0)
    } else {
        let link = f.link(src.0, dst.0);
        (link.reorder, link.duplicate)
    };
    let mut lat = f.latency(src.0, dst.0);
    if reorder > 0.0 && f.unit() < reorder {
        let held = (lat as f64 * (1.0 + 9.0 * f.unit())) as u64;
        lat = lat.saturating_add(super::link::round_micros(held));
    }
    let copy = (duplicate > 0.0 && f.unit() < duplicate).then(|| payload.to_vec());
    let datagram = |payload| Due::Datagram {
        src: src.0,
        dst: dst.0,
        from: src.1,
        to: dst.1,
        payload,
    };
    f.schedule(w, now.saturating_add(lat), datagram(payload.to_vec()));
    if let Some(copy) = copy {
        f.trace_msg(w, MsgEvent::Duplicate, "udp", src, dst, n);
        let lat = f.latency(src.0, dst.0);
        f.schedule(w, now.saturating_add(lat), datagram(copy));
    }
}

/// A datagram arrives at `dst`.
pub(crate) fn deliver(
    f: &mut Fabric,
    w: &World,
    src: Endpoint,
    dst: Endpoint,
    payload: Vec<u8>,
) -> Wakes {
    let n = payload.len();
    let drop_reason = if !f.host(dst.0).up {
        Some("host down")
    } else if f.is_cut(src.0, dst.0) {
        Some("partition")
    } else {
        None
    };
    if let Some(reason) = drop_reason {
        f.trace_msg(w, MsgEvent::Drop(reason), "udp", src, dst, n);
        return Wakes::default();
    }
    let from = fabric::socket_addr(f, src);
    let outcome = match f.host_mut(dst.0).ports.get_mut(&(Proto::Udp, dst.1)) {
        Some(Binding::Udp(inbox)) if inbox.queue.len() < QUEUE => {
            inbox.queue.push_back((from, payload));
            Ok(inbox.waker.take())
        }
        Some(Binding::Udp(_)) => Err("receive queue full"),
        _ => Err("no socket"),
    };
    match outcome {
        Ok(waker) => {
            f.trace_msg(w, MsgEvent::Deliver, "udp", src, dst, n);
            Wakes::one(waker)
        }
        Err(reason) => {
            f.trace_msg(w, MsgEvent::Drop(reason), "udp", src, dst, n);
            Wakes::default()
        }
    }
}
