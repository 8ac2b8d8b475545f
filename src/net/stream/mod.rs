//! The kernel side of streams: connections, handshakes, segments, resets.
//!
//! A connection has two ends (0: the end that connected, 1: the end that
//! accepted). Each end has an outgoing *wire*: the segments it sent that
//! have not reached the other end yet, in order, each with its delivery
//! time. Times on a wire never decrease (a segment is due no earlier than
//! the one before it), and only the wire's head has a flight in the
//! fabric's heap, so segments of one direction arrive in the order they
//! were written, whatever latencies were drawn: the stream is reliable and
//! ordered, as TCP is.
//!
//! The code: `connect.rs` (handshake, refusal, abandoning, listener
//! close), `wire.rs` (segments, reads and writes, stalls, crashes), this
//! file (the connection table and the dispatch of due work).
//!
//! The model, by event:
//!
//! - **connect**: a SYN crosses the link. A host that is down, or a
//!   partition, loses it; it is retransmitted after 1 s, 2 s, 4 s, … until
//!   `TcpConfig::connect_timeout` (`TimedOut`). No listener on the port:
//!   the host answers with a reset one latency later (`ConnectionRefused`).
//!   Otherwise the connection joins the listener's backlog (`accept`
//!   returns it) and a SYN-ACK travels back; `connect` returns when it
//!   arrives, one round trip after it started.
//! - **data**: a write is queued on the wire at once and crosses the link
//!   with a fresh latency sample. Each end has a *window*
//!   (`TcpConfig::send_window`, 64 KiB by default; per stream with
//!   `TcpStream::set_send_window`): the bytes it wrote that the peer has not
//!   read yet, in flight or in the peer's receive buffer. A write takes
//!   what fits and returns that count; with the window full it waits
//!   (`poll_write` is `Pending`) until the peer reads. The window opens the
//!   moment the peer reads (the ACK's latency is not modelled), and data a
//!   peer discards (it dropped its stream, or shut its read half) opens it
//!   too, so a writer never waits on a reader that is gone.
//!   Link loss makes a segment wait a retransmission timeout (200 ms, then
//!   doubling) per loss draw; duplication and reordering do not apply.
//! - **partition**: a segment that finds its direction cut when due
//!   *stalls* with everything behind it, as unacknowledged data does. When
//!   the partition heals the wire resumes, in order, with fresh latencies.
//!   A direction stalled for `TcpConfig::user_timeout` (30 s) fails the
//!   connection, like `TCP_USER_TIMEOUT`: the stalled sender gets
//!   `TimedOut`, the other end `ConnectionReset`.
//! - **crash**: the crashed host's ends vanish with their unsent data. The
//!   peer gets a reset one link latency later (`ConnectionReset` on its
//!   next read or write; data already received can still be read first).
//! - **close**: dropping a stream or closing its write half sends a FIN
//!   after the data written before it; the peer reads the data, then `0`.

use std::collections::VecDeque;
use std::io;
use std::task::Waker;

use super::fabric::{Due as FabricDue, Fabric, Wakes};
use super::host::HostId;
use super::leaks::{Owner, end_leak};
use crate::check::SocketLeak;
use crate::runtime::world::World;
use crate::time::{Duration, format_duration};
use crate::trace::{ConnEvent, EventKind, Verbosity};

mod connect;
mod wire;

use connect::{fail_connect, on_syn, send_syn};
use wire::on_wire;

pub(crate) use connect::{drop_end, open, poll_connect, reset_backlog};
pub(crate) use wire::{
    close_write, crash_host, flush_stalls, poll_read, poll_write, set_window, shutdown_read,
};

/// A connection's slot and generation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConnKey {
    index: u32,
    generation: u32,
}

/// A listener's queue of connections waiting for `accept`.
pub(crate) struct Backlog {
    pub(crate) id: u64,
    /// The task that bound the listener, and its last user.
    pub(crate) owner: Option<Owner>,
    pub(crate) queue: VecDeque<ConnKey>,
    pub(crate) waker: Option<Waker>,
}

pub(crate) enum Seg {
    Data(Vec<u8>),
    Fin,
    SynAck,
}

/// Stream work in flight.
pub(crate) enum Due {
    Syn(ConnKey),
    SynRetry(ConnKey),
    Refused(ConnKey),
    /// The head of end `side`'s wire is due.
    Wire(ConnKey, u8),
    /// A reset reaches end `to`.
    Rst(ConnKey, u8, &'static str),
    /// End `side`'s wire has been stalled since `since`: time to give up?
    UserTimeout(ConnKey, u8, u64),
}

#[derive(Debug)]
enum State {
    Connecting {
        attempt: u32,
        deadline: u64,
        waker: Option<Waker>,
    },
    Open,
    Failed(io::ErrorKind),
}

pub(crate) struct End {
    pub(crate) host: HostId,
    pub(crate) port: u16,
    incarnation: u32,
    /// The end exists on its host (the accepting end exists once the SYN
    /// reached a listener).
    open: bool,
    /// A handle (or a backlog, or a pending connect) owns this end.
    alive: bool,
    /// Its host crashed: the end's kernel state is gone.
    gone: bool,
    rx: VecDeque<Vec<u8>>,
    rx_off: usize,
    rx_fin: bool,
    rd_shut: bool,
    reader: Option<Waker>,
    error: Option<io::ErrorKind>,
    wr_closed: bool,
    /// Bytes this end wrote that the peer has not read yet (on the wire
    /// or in the peer's receive buffer): the window in use.
    unacked: usize,
    /// How many bytes may be unread before writes wait.
    window: usize,
    /// A task waiting for room in the window.
    writer: Option<Waker>,
    /// The task that opened this end (connect, accept), and its last user.
    owner: Option<Owner>,
    wire: VecDeque<(u64, Seg)>,
    wire_armed: bool,
    stalled_since: Option<u64>,
    last_at: u64,
}

impl End {
    fn new(host: HostId, port: u16, incarnation: u32, open: bool, window: usize) -> End {
        End {
            host,
            port,
            incarnation,
            open,
            alive: open,
            gone: false,
            rx: VecDeque::new(),
            rx_off: 0,
            rx_fin: false,
            rd_shut: false,
            reader: None,
            error: None,
            wr_closed: false,
            unacked: 0,
            window,
            writer: None,
            owner: None,
            wire: VecDeque::new(),
            wire_armed: false,
            stalled_since: None,
            last_at: 0,
        }
    }
}

pub(crate) struct Conn {
    generation: u32,
    pub(crate) ends: [End; 2],
    state: State,
}

/// The connection table: a slab scanned in slot order (deterministic).
#[derive(Default)]
pub(crate) struct Conns {
    slots: Vec<Option<Conn>>,
    free: Vec<u32>,
    next_gen: u32,
}

impl Conns {
    pub(crate) fn get(&self, key: ConnKey) -> Option<&Conn> {
        self.slots
            .get(key.index as usize)?
            .as_ref()
            .filter(|c| c.generation == key.generation)
    }

    fn get_mut(&mut self, key: ConnKey) -> Option<&mut Conn> {
        self.slots
            .get_mut(key.index as usize)?
            .as_mut()
            .filter(|c| c.generation == key.generation)
    }

    fn insert(&mut self, ends: [End; 2], state: State) -> ConnKey {
        self.next_gen = self.next_gen.wrapping_add(1);
        let conn = Conn {
            generation: self.next_gen,
            ends,
            state,
        };
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(conn);
                i
            }
            None => {
                self.slots.push(Some(conn));
                (self.slots.len() - 1) as u32
            }
        };
        ConnKey {
            index,
            generation: self.next_gen,
        }
    }

    fn keys(&self) -> Vec<ConnKey> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.as_ref().map(|c| ConnKey {
                    index: i as u32,
                    generation: c.generation,
                })
            })
            .collect()
    }

    /// Frees a connection nobody holds and nothing is in flight on.
    fn maybe_free(&mut self, key: ConnKey) {
        let Some(c) = self.get(key) else { return };
        let idle = c.ends.iter().all(|e| !e.alive && e.wire.is_empty());
        if idle {
            self.slots[key.index as usize] = None;
            self.free.push(key.index);
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn now(w: &World) -> u64 {
    w.now().as_nanos()
}

fn ends_label(f: &Fabric, c: &Conn, side: usize) -> (String, String) {
    let (a, b) = (&c.ends[side], &c.ends[1 - side]);
    (f.label(a.host, a.port), f.label(b.host, b.port))
}

fn trace_conn(
    f: &Fabric,
    w: &World,
    key: ConnKey,
    side: usize,
    what: &str,
    detail: Option<String>,
) {
    if !w.tracing(Verbosity::Summary) {
        return;
    }
    if let Some(c) = f.conns.get(key) {
        let (from, to) = ends_label(f, c, side);
        w.record(EventKind::Conn(Box::new(ConnEvent {
            what: what.to_string(),
            from,
            to,
            detail,
        })));
    }
}

fn schedule(f: &mut Fabric, w: &World, at: u64, due: Due) {
    f.schedule(w, at, FabricDue::Stream(due));
}

/// Handles stream work that is due.
pub(crate) fn handle(f: &mut Fabric, w: &World, due: Due) -> Wakes {
    match due {
        Due::Syn(key) => on_syn(f, w, key),
        Due::SynRetry(key) => {
            let Some(c) = f.conns.get_mut(key) else {
                return Wakes::default();
            };
            let State::Connecting { deadline, .. } = c.state else {
                return Wakes::default();
            };
            if now(w) >= deadline {
                let waker = fail_connect(c, io::ErrorKind::TimedOut);
                trace_conn(
                    f,
                    w,
                    key,
                    0,
                    "timeout",
                    Some("no answer to SYN".to_string()),
                );
                return Wakes::one(waker);
            }
            send_syn(f, w, key);
            Wakes::default()
        }
        Due::Refused(key) => {
            let Some(c) = f.conns.get_mut(key) else {
                return Wakes::default();
            };
            let waker = fail_connect(c, io::ErrorKind::ConnectionRefused);
            trace_conn(f, w, key, 0, "refused", None);
            Wakes::one(waker)
        }
        Due::Wire(key, side) => on_wire(f, w, key, side as usize),
        Due::Rst(key, to, why) => {
            reset_end(f, w, key, to as usize, io::ErrorKind::ConnectionReset, why)
        }
        Due::UserTimeout(key, side, since) => {
            let side = side as usize;
            let stalled = f
                .conns
                .get(key)
                .is_some_and(|c| c.ends[side].stalled_since == Some(since));
            if !stalled {
                return Wakes::default();
            }
            let detail = format!(
                "no progress for {} (partition)",
                format_duration(f.tcp.user_timeout)
            );
            trace_conn(f, w, key, side, "timeout", Some(detail));
            let mut wakes = reset_end(f, w, key, side, io::ErrorKind::TimedOut, "");
            wakes.merge(reset_end(
                f,
                w,
                key,
                1 - side,
                io::ErrorKind::ConnectionReset,
                "",
            ));
            wakes
        }
    }
}

/// Fails end `to` with `kind` (a reset reached it); `why` is traced.
fn reset_end(
    f: &mut Fabric,
    w: &World,
    key: ConnKey,
    to: usize,
    kind: io::ErrorKind,
    why: &str,
) -> Wakes {
    let Some(c) = f.conns.get_mut(key) else {
        return Wakes::default();
    };
    let end = &mut c.ends[to];
    if end.gone || end.error.is_some() || !end.open {
        return Wakes::default();
    }
    end.error = Some(kind);
    end.wire.clear();
    end.stalled_since = None;
    let mut wakes = Wakes::one(end.reader.take());
    wakes.push(end.writer.take());
    if to == 0 {
        wakes.push(fail_connect(c, kind));
    }
    if !why.is_empty() {
        trace_conn(f, w, key, to, "reset", Some(why.to_string()));
    }
    f.conns.maybe_free(key);
    wakes
}

/// The two ends' `(host, port)`, seen from `side`: (local, peer).
pub(crate) fn endpoints(
    f: &Fabric,
    key: ConnKey,
    side: usize,
) -> Option<((HostId, u16), (HostId, u16))> {
    let c = f.conns.get(key)?;
    let (a, b) = (&c.ends[side], &c.ends[1 - side]);
    Some(((a.host, a.port), (b.host, b.port)))
}

/// The task running now opened end `side` (its handle was just made).
pub(crate) fn set_owner(f: &mut Fabric, w: &World, key: ConnKey, side: usize) {
    if let Some(c) = f.conns.get_mut(key) {
        c.ends[side].owner = Owner::here(w);
    }
}

/// The task running now used end `side`.
pub(crate) fn touch(f: &mut Fabric, w: &World, key: ConnKey, side: usize) {
    if let Some(c) = f.conns.get_mut(key) {
        Owner::touch_opt(&mut c.ends[side].owner, w);
    }
}

/// Stream ends still open whose owner makes them leaks (see `leaks.rs`).
pub(crate) fn leaked(f: &Fabric, w: &World, out: &mut Vec<SocketLeak>) {
    for c in f.conns.slots.iter().flatten() {
        if !matches!(c.state, State::Open) {
            continue;
        }
        for side in 0..2 {
            let e = &c.ends[side];
            if !e.alive || !e.open || e.gone || e.error.is_some() || e.wr_closed {
                continue;
            }
            let Some(owner) = &e.owner else { continue };
            if let Some(leak) = end_leak(owner, w, || {
                let (a, b) = ends_label(f, c, side);
                format!("tcp stream {a} -> {b}")
            }) {
                out.push(leak);
            }
        }
    }
}

/// Records an accept.
pub(crate) fn trace_accept(f: &Fabric, w: &World, key: ConnKey) {
    trace_conn(f, w, key, 1, "accept", None);
}
