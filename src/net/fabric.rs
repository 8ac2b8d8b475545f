//! The network's state: hosts, links, partitions, and messages in flight.
//!
//! One `Fabric` per run, created on first use (a run without hosts pays
//! nothing) and reached through [`with`], which borrows it for the length
//! of one closure. The borrowing rule mirrors the executor's: code that
//! holds the fabric never runs user code (no polls, no `Drop` of a user
//! value, no waker calls). Wakers are taken out and woken after the borrow
//! ends.
//!
//! Messages in flight live in one min-heap ordered by (delivery time,
//! sequence). Exactly one runtime timer is armed, at the heap's earliest
//! deadline, with a callback that captures nothing (a zero-sized closure:
//! boxing it does not allocate). So a delivery costs a heap push and pop
//! and the payload buffer, nothing else, and a run waiting for a message in
//! flight always has a pending timer: it is not deadlocked.
//!
//! Every collection that can reach behaviour or the trace is ordered (a
//! `Vec` indexed by host id, `BTreeMap`s, a slab scanned in slot order), and
//! every random draw comes from the `NET` stream of the seed, so the same
//! seed delivers the same messages at the same instants.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::SocketAddr;
use std::task::Waker;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;

use super::host::{HostId, HostState};
use super::link::{LinkConfig, Overlay, unit};
use super::stream::{self, Conns};
use super::tcp::TcpConfig;
use crate::runtime::world::{World, rng_for, stream as streams};
use crate::time::timers::TimerKey;
use crate::trace::store::NetKind;
use crate::trace::{EventKind, NetDrop, NetMessage, Verbosity};

/// The network's per-run state in the world (see `runtime::ext`): the
/// fabric, created on first use.
#[derive(Default)]
pub(crate) struct NetSlot {
    state: RefCell<Option<Box<Fabric>>>,
}

impl NetSlot {
    /// Drops the network state (at the end of a run, inside the context).
    pub(crate) fn clear(w: &World) {
        if let Some(slot) = w.ext.try_get::<NetSlot>() {
            let state = slot.state.borrow_mut().take();
            drop(state);
        }
    }
}

/// What a message in flight is.
pub(crate) enum Due {
    /// A datagram for `to`.
    Datagram {
        src: HostId,
        dst: HostId,
        from: u16,
        to: u16,
        payload: Vec<u8>,
    },
    /// Stream machinery (segments, handshakes, resets, timeouts).
    Stream(stream::Due),
}

struct Flight {
    at: u64,
    seq: u64,
    due: Due,
}

impl PartialEq for Flight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Flight {}
impl PartialOrd for Flight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Flight {
    /// Reversed: `BinaryHeap` is a max-heap, the earliest flight must top it.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

pub(crate) struct Fabric {
    /// This run's network, among every run of the process: a socket handle
    /// kept from an earlier run (in a `static`, a `thread_local!`) must not
    /// touch this run's connections, whose slots and ports it may share.
    /// An identity only: it never reaches behaviour or the trace.
    pub(crate) epoch: u64,
    pub(crate) hosts: Vec<HostState>,
    pub(crate) names: BTreeMap<std::rc::Rc<str>, HostId>,
    pub(crate) default_link: LinkConfig,
    /// Per-direction link settings, `(from, to)`.
    pub(crate) links: BTreeMap<(HostId, HostId), LinkConfig>,
    /// Fault overlays on links (loss, extra delay), `(from, to)`.
    pub(crate) overlays: BTreeMap<(HostId, HostId), Overlay>,
    /// Cut directions, `(from, to)`.
    pub(crate) cut: BTreeSet<(HostId, HostId)>,
    pub(crate) tcp: TcpConfig,
    pub(crate) conns: Conns,
    rng: ChaCha8Rng,
    pub(crate) fault_rng: ChaCha8Rng,
    pub(crate) buggify_sites: BTreeMap<(&'static str, u32, u32), bool>,
    inflight: BinaryHeap<Flight>,
    seq: u64,
    armed: Option<(u64, TimerKey)>,
    pub(crate) next_socket: u64,
}

impl Fabric {
    fn new(w: &World) -> Fabric {
        static EPOCHS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Fabric {
            epoch: EPOCHS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            hosts: Vec::new(),
            names: BTreeMap::new(),
            default_link: LinkConfig::default(),
            links: BTreeMap::new(),
            overlays: BTreeMap::new(),
            cut: BTreeSet::new(),
            tcp: TcpConfig::default(),
            conns: Conns::default(),
            rng: rng_for(w.config.seed, streams::NET),
            fault_rng: rng_for(w.config.seed, streams::FAULT),
            buggify_sites: BTreeMap::new(),
            inflight: BinaryHeap::new(),
            seq: 0,
            armed: None,
            next_socket: 1,
        }
    }

    pub(crate) fn host(&self, h: HostId) -> &HostState {
        &self.hosts[h.index()]
    }

    pub(crate) fn host_mut(&mut self, h: HostId) -> &mut HostState {
        &mut self.hosts[h.index()]
    }

    /// `host:port`, as traces print addresses.
    pub(crate) fn label(&self, h: HostId, port: u16) -> String {
        format!("{}:{port}", self.host(h).name)
    }

    /// A uniform draw in `[0, 1)` from the network stream.
    pub(crate) fn unit(&mut self) -> f64 {
        unit(self.rng.next_u64())
    }

    /// Whether packets from `from` to `to` are dropped by a partition.
    pub(crate) fn is_cut(&self, from: HostId, to: HostId) -> bool {
        from != to && !self.cut.is_empty() && self.cut.contains(&(from, to))
    }

    /// One latency sample for the link `from -> to`, in nanoseconds,
    /// including fault overlays. Traffic within a host takes no time.
    pub(crate) fn latency(&mut self, from: HostId, to: HostId) -> u64 {
        if from == to {
            return 0;
        }
        let link = self.links.get(&(from, to)).unwrap_or(&self.default_link);
        let extra = self
            .overlays
            .get(&(from, to))
            .map_or(0, |o| o.delay_nanos());
        link.sample(&mut self.rng) + extra
    }

    /// The loss probability of `from -> to`, with fault overlays.
    pub(crate) fn loss(&self, from: HostId, to: HostId) -> f64 {
        if from == to {
            return 0.0;
        }
        let base = self
            .links
            .get(&(from, to))
            .unwrap_or(&self.default_link)
            .loss;
        self.overlays
            .get(&(from, to))
            .and_then(|o| o.loss)
            .unwrap_or(base)
    }

    /// The link `from -> to` as configured (without fault overlays).
    pub(crate) fn link(&self, from: HostId, to: HostId) -> &LinkConfig {
        self.links.get(&(from, to)).unwrap_or(&self.default_link)
    }

    /// Puts a message in flight, to be handled at `at` (nanoseconds).
    pub(crate) fn schedule(&mut self, w: &World, at: u64, due: Due) {
        w.mix(at);
        self.seq += 1;
        self.inflight.push(Flight {
            at,
            seq: self.seq,
            due,
        });
        self.arm(w);
    }

    /// Keeps exactly one runtime timer armed, at the earliest flight.
    fn arm(&mut self, w: &World) {
        let Some(next) = self.inflight.peek().map(|f| f.at) else {
            return;
        };
        match self.armed {
            Some((at, _)) if at <= next => {}
            Some((_, key)) => {
                w.timers.borrow_mut().cancel(key);
                self.armed = Some((next, arm_at(w, next)));
            }
            None => self.armed = Some((next, arm_at(w, next))),
        }
    }

    /// Takes the next flight due at or before `now`.
    fn pop_due(&mut self, now: u64) -> Option<Due> {
        if self.inflight.peek()?.at > now {
            return None;
        }
        self.inflight.pop().map(|f| f.due)
    }

    /// Records a datagram or segment event when the trace is that verbose.
    pub(crate) fn trace_msg(
        &self,
        w: &World,
        kind: MsgEvent,
        proto: &'static str,
        (src, from): (HostId, u16),
        (dst, to): (HostId, u16),
        bytes: usize,
    ) {
        if !w.tracing(Verbosity::Full) {
            return;
        }
        if let Ok(n) = u32::try_from(bytes) {
            let (kind, reason) = match kind {
                MsgEvent::Send => (NetKind::Send, None),
                MsgEvent::Deliver => (NetKind::Deliver, None),
                MsgEvent::Duplicate => (NetKind::Duplicate, None),
                MsgEvent::Drop(reason) => (NetKind::Drop, Some(reason)),
            };
            let (s, d) = (src.index() as u32, dst.index() as u32);
            let label = |(h, port): (u32, u16)| {
                let host = if h == s { src } else { dst };
                self.label(host, port)
            };
            w.record_net(kind, proto, (s, from), (d, to), n, reason, label);
            return;
        }
        // A message of 4 GiB or more: recorded in full.
        let message = NetMessage {
            proto: proto.to_string(),
            from: self.label(src, from),
            to: self.label(dst, to),
            bytes: bytes as u64,
        };
        w.record(match kind {
            MsgEvent::Send => EventKind::NetSend(Box::new(message)),
            MsgEvent::Deliver => EventKind::NetDeliver(Box::new(message)),
            MsgEvent::Duplicate => EventKind::NetDuplicate(Box::new(message)),
            MsgEvent::Drop(reason) => EventKind::NetDrop(Box::new(NetDrop {
                message,
                reason: reason.to_string(),
            })),
        });
    }
}

/// Which message event to record.
#[derive(Copy, Clone)]
pub(crate) enum MsgEvent {
    Send,
    Deliver,
    Duplicate,
    Drop(&'static str),
}

fn arm_at(w: &World, at: u64) -> TimerKey {
    // A closure capturing nothing: the box holding it does not allocate.
    w.call_at(crate::time::Instant::from_nanos(at), on_timer)
}

/// Runs `f` with the fabric (created on first use). `f` must not run user
/// code: no polls, wakes or drops of user values (see the module docs).
pub(crate) fn with<R>(w: &World, f: impl FnOnce(&mut Fabric) -> R) -> R {
    let mut slot = w.ext.get::<NetSlot>().state.borrow_mut();
    let fabric = slot.get_or_insert_with(|| Box::new(Fabric::new(w)));
    f(fabric)
}

/// Runs `f` with the fabric if the network was ever used.
pub(crate) fn with_existing<R>(w: &World, f: impl FnOnce(&mut Fabric) -> R) -> Option<R> {
    let mut slot = w.ext.try_get::<NetSlot>()?.state.borrow_mut();
    slot.as_mut().map(|fabric| f(fabric))
}

/// Up to six wakers to wake once the fabric is released (a reset of both
/// ends wakes at most a reader, a writer and a pending connect of each).
#[derive(Default)]
pub(crate) struct Wakes([Option<Waker>; 6]);

impl Wakes {
    pub(crate) fn one(w: Option<Waker>) -> Wakes {
        let mut wakes = Wakes::default();
        wakes.push(w);
        wakes
    }

    /// Adds a waker (if any) to wake.
    pub(crate) fn push(&mut self, w: Option<Waker>) {
        let Some(w) = w else { return };
        match self.0.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(w),
            // Never more than six at once; wake at once rather than lose one.
            None => w.wake(),
        }
    }

    /// Adds every waker of `other`.
    pub(crate) fn merge(&mut self, other: Wakes) {
        for w in other.0 {
            self.push(w);
        }
    }

    pub(crate) fn wake(self) {
        for w in self.0.into_iter().flatten() {
            w.wake();
        }
    }
}

/// The network's timer: handles every flight that is due, one at a time,
/// waking receivers between flights with the fabric released.
fn on_timer(w: &World) {
    let now = w.now().as_nanos();
    with(w, |f| f.armed = None);
    loop {
        let wakes = with(w, |f| {
            let due = f.pop_due(now)?;
            Some(match due {
                Due::Datagram {
                    src,
                    dst,
                    from,
                    to,
                    payload,
                } => super::udp::deliver(f, w, (src, from), (dst, to), payload),
                Due::Stream(d) => stream::handle(f, w, d),
            })
        });
        match wakes {
            Some(wakes) => wakes.wake(),
            None => break,
        }
    }
    with(w, |f| f.arm(w));
}

/// A socket as the fabric names it: `(host, port)`.
pub(crate) type Endpoint = (HostId, u16);

/// The socket address of `(host, port)`.
pub(crate) fn socket_addr(f: &Fabric, (h, port): Endpoint) -> SocketAddr {
    SocketAddr::new(f.host(h).ip.into(), port)
}
