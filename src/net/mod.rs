//! The simulated network: hosts, datagrams, streams, links and faults.
//!
//! Everything here is created from inside a running simulation: the main
//! future makes [hosts](Host), each with a factory that returns its main
//! future; host tasks bind [`TcpListener`]s and [`UdpSocket`]s and
//! [`connect`](TcpStream::connect) to each other by name (`"server:80"`).
//! Messages cross *links* that delay, lose, duplicate and reorder them as
//! their [`LinkConfig`] says, with every draw taken from the seed: a seed
//! replays the same deliveries at the same virtual instants, byte for byte.
//! Messages in flight are pending work: a run waiting for one is not
//! deadlocked, its clock jumps to the delivery.
//!
//! ```
//! use lockstep::prelude::*;
//! use lockstep::net::{self, Host, UdpSocket};
//!
//! let outcome = Sim::new(7).run(async {
//!     Host::new("server", || async {
//!         let socket = UdpSocket::bind("0.0.0.0:53").await?;
//!         let mut buf = [0; 512];
//!         loop {
//!             let (n, from) = socket.recv_from(&mut buf).await?;
//!             socket.send_to(&buf[..n], from).await?;
//!         }
//!     });
//!     let client = Host::new("client", || async { Ok(()) });
//!     net::partition("client", "server");
//!     let asked = client.spawn(async {
//!         let socket = UdpSocket::bind("0.0.0.0:0").await.unwrap();
//!         socket.send_to(b"query", "server:53").await.unwrap();
//!         let mut buf = [0; 512];
//!         timeout(Duration::from_secs(2), socket.recv_from(&mut buf)).await.is_ok()
//!     });
//!     assert!(!asked.await.unwrap(), "the partition dropped the query");
//!     Instant::now()
//! });
//! assert_eq!(outcome.into_result().unwrap(), Instant::START + Duration::from_secs(2));
//! ```
//!
//! ## Faults and settings
//!
//! | fault | setting | default | the real event it models |
//! |---|---|---|---|
//! | latency | [`LinkConfig::latency`]: [`Latency`] constant, uniform, exponential or long-tailed | uniform 1–3 ms | propagation, queueing in switches; a long tail of slow packets on a WAN |
//! | jitter | [`LinkConfig::jitter`] | 0 | a busy link adding a little delay to every packet |
//! | datagram loss | [`LinkConfig::loss`] | 0 | a congested router dropping packets; on streams, a segment retransmitted after [`TcpConfig::rto`] (200 ms, doubling) |
//! | duplication | [`LinkConfig::duplicate`] | 0 | a retransmitting middlebox delivering one datagram twice (streams never see duplicates) |
//! | reordering | [`LinkConfig::reorder`] | 0 | datagrams taking different paths: one held back 1–10× its latency is overtaken (streams stay ordered) |
//! | two-way partition | [`partition`] / [`heal`] | none | a switch reboots or a cable is pulled: nothing crosses for a while |
//! | one-way partition | [`partition_oneway`] / [`heal_oneway`] | none | an asymmetric firewall rule or a half-broken NIC: a hears b, b does not hear a |
//! | slow reader | [`TcpConfig::send_window`], per link [`LinkConfig::send_window`], per stream [`TcpStream::set_send_window`] | 64 KiB | a peer that reads slowly: its receive window fills and the writer's `write` waits (backpressure) until it reads |
//! | stalled stream | [`TcpConfig::user_timeout`] | 30 s | data unacknowledged across a partition: the stream waits, then fails with `TimedOut` / `ConnectionReset` |
//! | unreachable host | [`TcpConfig::connect_timeout`] | 127 s | SYNs retransmitted to a dead or partitioned host (1 s, 2 s, 4 s, …) until `connect` gives up |
//! | crash | [`Host::crash`] | — | the process is killed: tasks and memory lost, sockets closed, peers reset |
//! | restart | [`Host::restart`] | — | a supervisor restarts the process: the factory runs again with fresh state |
//! | pause | [`Host::pause_for`] / [`Host::resume`] | — | a stop-the-world GC, a VM migration, `SIGSTOP`: time and the network go on, the host's tasks do not |
//! | clock skew | [`Host::clock_forward`] / [`Host::clock_back`] | 0 | NTP stepping a clock: the host's `Instant::now` jumps (back, too) |
//! | clock drift | [`Host::clock_drift`] | 0 ppm | a cheap crystal running fast or slow: the host's timers fire early or late |
//!
//! The same faults can be scheduled as data with a
//! [`FaultPlan`](crate::fault::FaultPlan), and code under test can inject
//! its own with [`buggify!`](crate::buggify!).
//!
//! ## Streams, precisely
//!
//! [`TcpStream`] is reliable and ordered: every byte written arrives once,
//! in order, after the link's latency (sampled per write; a later write
//! never overtakes an earlier one). A partition *stalls* the cut direction
//! (as unacknowledged TCP data does) instead of breaking it, and the stream
//! resumes when the partition heals; only a stall longer than the user
//! timeout fails the connection. A crash of either end resets the other
//! end one link latency later. The details, event by event, are in
//! `src/net/stream.rs`.
//!
//! ## Sockets left open
//!
//! When the main task returns, a TCP stream, listener or UDP socket whose
//! handle still exists is a [`Failure::Leak`](crate::Failure::Leak) (with
//! the `leaks` severity, like leaked tasks) if the last task that used it
//! (or opened it: `connect`, `accept`, `bind`) has finished, or is the main
//! task or a leaked task on no host: it was kept in a `static`, forgotten
//! with `mem::forget`, leaked in a `Box`, or left in a finished task's
//! unawaited output. The report names the socket and that task
//! (`tcp stream client:49152 -> server:80, opened by #3 fetch (spawned at
//! …), which has finished`). A socket held by a host task that is still
//! running (a server's accept loop and its handlers, a client still at
//! work), or by a finished task that spawned a task still running (a pool
//! worker given its connection), is not a leak: it ends with the
//! simulation, as its task does. A
//! stream closed with `close()` or `shutdown(Write)`, or whose connection
//! was reset, is closed, even if its handle lives on.
//!
//! ## Errors
//!
//! Socket calls return the `std::io::ErrorKind` a real stack does:
//! `ConnectionRefused` (nothing listens), `ConnectionReset` (the peer
//! crashed, or its listener closed before `accept`), `TimedOut` (connect
//! or user timeout), `AddrInUse` (a bound port), `AddrNotAvailable`
//! (binding another host's address), `NotFound` (an unknown host name:
//! the message lists the hosts), `HostUnreachable` (an unknown address),
//! `InvalidInput` (a malformed address, an oversized datagram),
//! `BrokenPipe` (writing after `close`), `NotConnected` (a socket whose
//! host crashed). Using a socket from a task on no host (the main task) is
//! a programming error: it panics with a message saying so.

use std::io;
use std::net::IpAddr;

mod addr;
mod clock;
pub(crate) mod fabric;
mod host;
mod leaks;
mod link;
mod split;
mod stream;
mod tcp;
mod udp;

pub use addr::{AddrSpec, ToAddr};
pub(crate) use fabric::NetSlot;
pub(crate) use host::HostId;
pub use host::{Host, HostResult};
pub(crate) use link::unit;
pub use link::{Latency, LinkConfig};
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
pub use tcp::{TcpConfig, TcpListener, TcpStream};
pub use udp::UdpSocket;

use crate::runtime::context;
use crate::runtime::ext::{Awaited, LayerWait, Op};
use crate::runtime::world::World;
use crate::time::Duration;
use crate::trace::EventKind;
use std::rc::Rc;

pub(crate) use clock::{drift, signed, skew};
pub(crate) use host::{crash, pause, restart, resume};
pub(crate) use leaks::leaked as leaked_sockets;

/// What a task blocked on a socket waits for (`accept on server:80`), as
/// reports read it. Made once per socket; a wait notes a clone of the `Rc`.
pub(crate) struct SocketWait(String);

impl SocketWait {
    pub(crate) fn new(what: String) -> Rc<SocketWait> {
        Rc::new(SocketWait(what))
    }

    /// Notes that the current task waits on this socket. Traffic from any
    /// host may end the wait: the deadlock analysis never follows it.
    pub(crate) fn note(self: &Rc<Self>, w: &World) {
        w.exec
            .note_waiting(crate::runtime::executor::Waiting::Layer(LayerWait::new(
                self.clone(),
                Op::default(),
                false,
            )));
    }
}

impl std::fmt::Debug for SocketWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl Awaited for SocketWait {
    fn describe(&self, _op: Op, _exec: &crate::runtime::executor::Executor) -> String {
        self.0.clone()
    }

    fn label(&self) -> String {
        self.0.clone()
    }
}

/// The network's hooks: sockets still open when the main task returns are
/// leaks; at the end of the run, hosts (their factories) and socket
/// buffers are dropped inside the context.
pub(crate) const LAYER: crate::runtime::ext::Layer = crate::runtime::ext::Layer {
    leaks: Some(leaked_sockets),
    teardown: Some(NetSlot::clear),
    ..crate::runtime::ext::Layer::NONE
};

/// Resolves a host for a fault: a name, or `@N` (the N-th host created,
/// from 0, modulo the number of hosts: how random fault plans name hosts).
pub(crate) fn host_id(w: &World, name: &str) -> Result<HostId, String> {
    fabric::with(w, |f| {
        if let Some(slot) = name.strip_prefix('@') {
            let n: usize = slot
                .parse()
                .map_err(|_| format!("`{name}` is not a host slot (`@0`, `@1`, …)"))?;
            if f.hosts.is_empty() {
                return Err(format!(
                    "`{name}` names a host slot, but no host exists yet"
                ));
            }
            return Ok(HostId::new(n % f.hosts.len()));
        }
        f.names
            .get(name)
            .copied()
            .ok_or_else(|| format!("no host named `{name}` ({})", addr::known_hosts(f)))
    })
}

/// The name of `h`.
pub(crate) fn host_name(w: &World, h: HostId) -> String {
    fabric::with(w, |f| f.host(h).name.to_string())
}

#[track_caller]
fn resolve_or_panic(
    w: &World,
    api: &str,
    name: &str,
    caller: &'static std::panic::Location<'static>,
) -> HostId {
    host_id(w, name)
        .unwrap_or_else(|e| crate::runtime::panics::misuse(caller, format!("`{api}`: {e}")))
}

fn fault_event(w: &World, action: String) {
    w.record(EventKind::Fault { action });
}

/// Cuts `from -> to` (and `to -> from` when `both`).
pub(crate) fn cut(w: &World, a: HostId, b: HostId, both: bool) {
    fabric::with(w, |f| {
        f.cut.insert((a, b));
        if both {
            f.cut.insert((b, a));
        }
    });
    let (a, b) = (host_name(w, a), host_name(w, b));
    fault_event(
        w,
        if both {
            format!("partition {a} {b}")
        } else {
            format!("partition-oneway {a} {b}")
        },
    );
}

/// Heals `from -> to` (and `to -> from` when `both`); stalled streams
/// resume.
pub(crate) fn uncut(w: &World, a: HostId, b: HostId, both: bool) {
    fabric::with(w, |f| {
        f.cut.remove(&(a, b));
        if both {
            f.cut.remove(&(b, a));
        }
    });
    let (an, bn) = (host_name(w, a), host_name(w, b));
    fault_event(
        w,
        if both {
            format!("heal {an} {bn}")
        } else {
            format!("heal-oneway {an} {bn}")
        },
    );
    fabric::with(w, |f| stream::flush_stalls(f, w));
}

/// Heals every partition.
pub(crate) fn uncut_all(w: &World) {
    fabric::with(w, |f| f.cut.clear());
    fault_event(w, "heal-all".to_string());
    fabric::with(w, |f| stream::flush_stalls(f, w));
}

/// What a link fault changes.
pub(crate) enum LinkFault {
    Loss(f64),
    Delay(Duration),
    Restore,
}

/// Applies a link fault to both directions between `a` and `b`.
pub(crate) fn link_fault(w: &World, a: HostId, b: HostId, fault: LinkFault) {
    let text = {
        let (an, bn) = (host_name(w, a), host_name(w, b));
        match &fault {
            LinkFault::Loss(p) => format!("link-loss {an} {bn} {p}"),
            LinkFault::Delay(d) => {
                format!("link-delay {an} {bn} {}", crate::time::format_duration(*d))
            }
            LinkFault::Restore => format!("link-restore {an} {bn}"),
        }
    };
    fabric::with(w, |f| {
        for pair in [(a, b), (b, a)] {
            match &fault {
                LinkFault::Loss(p) => f.overlays.entry(pair).or_default().loss = Some(*p),
                LinkFault::Delay(d) => f.overlays.entry(pair).or_default().delay = *d,
                LinkFault::Restore => {
                    f.overlays.remove(&pair);
                }
            }
        }
    });
    fault_event(w, text);
}

#[track_caller]
fn two_hosts(api: &'static str, a: &str, b: &str, f: impl FnOnce(&World, HostId, HostId)) {
    let caller = std::panic::Location::caller();
    context::with(api, |w| {
        let (a, b) = (
            resolve_or_panic(w, api, a, caller),
            resolve_or_panic(w, api, b, caller),
        );
        if a == b {
            crate::runtime::panics::misuse(
                caller,
                format!("`{api}`: both ends are the same host; name two different hosts"),
            );
        }
        f(w, a, b)
    })
}

/// Cuts both directions between hosts `a` and `b` (by name or handle):
/// datagrams between them are dropped, streams stall, connects time out.
///
/// # Panics
///
/// Outside a simulation; for an unknown host name (the message lists the
/// hosts).
#[track_caller]
pub fn partition(a: impl AsRef<str>, b: impl AsRef<str>) {
    two_hosts(
        "lockstep::net::partition",
        a.as_ref(),
        b.as_ref(),
        |w, a, b| cut(w, a, b, true),
    );
}

/// Cuts the direction `from -> to` only: `to` still reaches `from`.
///
/// # Panics
///
/// As [`partition`].
#[track_caller]
pub fn partition_oneway(from: impl AsRef<str>, to: impl AsRef<str>) {
    two_hosts(
        "lockstep::net::partition_oneway",
        from.as_ref(),
        to.as_ref(),
        |w, a, b| cut(w, a, b, false),
    );
}

/// Heals both directions between `a` and `b`; stalled streams resume.
///
/// # Panics
///
/// As [`partition`].
#[track_caller]
pub fn heal(a: impl AsRef<str>, b: impl AsRef<str>) {
    two_hosts("lockstep::net::heal", a.as_ref(), b.as_ref(), |w, a, b| {
        uncut(w, a, b, true)
    });
}

/// Heals the direction `from -> to`.
///
/// # Panics
///
/// As [`partition`].
#[track_caller]
pub fn heal_oneway(from: impl AsRef<str>, to: impl AsRef<str>) {
    two_hosts(
        "lockstep::net::heal_oneway",
        from.as_ref(),
        to.as_ref(),
        |w, a, b| uncut(w, a, b, false),
    );
}

/// Heals every partition.
///
/// # Panics
///
/// Outside a simulation.
#[track_caller]
pub fn heal_all() {
    context::with("lockstep::net::heal_all", uncut_all);
}

/// Sets the link settings between `a` and `b`, both directions.
///
/// # Panics
///
/// As [`partition`].
#[track_caller]
pub fn set_link(a: impl AsRef<str>, b: impl AsRef<str>, config: LinkConfig) {
    two_hosts(
        "lockstep::net::set_link",
        a.as_ref(),
        b.as_ref(),
        |w, a, b| {
            fabric::with(w, |f| {
                f.links.insert((a, b), config.clone());
                f.links.insert((b, a), config);
            })
        },
    );
}

/// Sets the link settings of the direction `from -> to`.
///
/// # Panics
///
/// As [`partition`].
#[track_caller]
pub fn set_link_oneway(from: impl AsRef<str>, to: impl AsRef<str>, config: LinkConfig) {
    two_hosts(
        "lockstep::net::set_link_oneway",
        from.as_ref(),
        to.as_ref(),
        |w, a, b| {
            fabric::with(w, |f| {
                f.links.insert((a, b), config);
            })
        },
    );
}

/// Sets the link settings used between hosts without their own.
///
/// # Panics
///
/// Outside a simulation.
#[track_caller]
pub fn set_default_link(config: LinkConfig) {
    context::with("lockstep::net::set_default_link", |w| {
        fabric::with(w, |f| f.default_link = config)
    });
}

/// Sets the TCP timeouts of this simulation.
///
/// # Panics
///
/// Outside a simulation.
#[track_caller]
pub fn set_tcp_config(config: TcpConfig) {
    context::with("lockstep::net::set_tcp_config", |w| {
        fabric::with(w, |f| f.tcp = config)
    });
}

/// Resolves a host name to its address (`"server"` → `10.0.0.1`), like a
/// DNS lookup.
///
/// # Errors
///
/// `NotFound` if no host has that name.
#[track_caller]
pub fn lookup_host(name: &str) -> io::Result<IpAddr> {
    context::with("lockstep::net::lookup_host", |w| {
        let here = w.exec.current_host().map(HostId::of_group);
        fabric::with(w, |f| {
            let h = addr::resolve_host(f, name, here)?;
            Ok(f.host(h).ip.into())
        })
    })
}
