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
//! The model, by event:
//!
//! - **connect**: a SYN crosses the link. A host that is down, or a
//!   partition, loses it; it is retransmitted after 1 s, 2 s, 4 s, … until
//!   `TcpConfig::connect_timeout` (`TimedOut`). No listener on the port:
//!   the host answers with a reset one latency later (`ConnectionRefused`).
//!   Otherwise the connection joins the listener's backlog (`accept`
//!   returns it) and a SYN-ACK travels back; `connect` returns when it
//!   arrives, one round trip after it started.
//! - **data**: a write is queued on the wire at once (no flow control: a
//!   write never blocks) and crosses the link with a fresh latency sample.
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
use std::task::{Context, Poll, Waker};

use super::fabric::{Due as FabricDue, Fabric, MsgEvent, Wakes};
use super::host::{Binding, HostId, Proto};
use crate::runtime::world::World;
use crate::time::{Duration, format_duration};
use crate::trace::{EventKind, Verbosity};

/// A connection's slot and generation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConnKey {
    index: u32,
    generation: u32,
}

/// A listener's queue of connections waiting for `accept`.
pub(crate) struct Backlog {
    pub(crate) id: u64,
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
    wire: VecDeque<(u64, Seg)>,
    wire_armed: bool,
    stalled_since: Option<u64>,
    last_at: u64,
}

impl End {
    fn new(host: HostId, port: u16, incarnation: u32, open: bool) -> End {
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
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            connect_timeout: Duration::from_secs(127),
            user_timeout: Duration::from_secs(30),
            rto: Duration::from_millis(200),
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
        w.record(EventKind::Conn {
            what: what.to_string(),
            from,
            to,
            detail,
        });
    }
}

fn schedule(f: &mut Fabric, w: &World, at: u64, due: Due) {
    f.schedule(w, at, FabricDue::Stream(due));
}

/// Starts a connection from `here` to `(dst, port)`: sends the SYN.
pub(crate) fn open(
    f: &mut Fabric,
    w: &World,
    here: HostId,
    dst: HostId,
    port: u16,
) -> io::Result<ConnKey> {
    let local = f.host_mut(here).ephemeral(Proto::Tcp).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "no ephemeral port is left on this host",
        )
    })?;
    let inc = f.host(here).incarnation;
    let deadline = now(w).saturating_add(nanos(f.tcp.connect_timeout));
    let key = f.conns.insert(
        [
            End::new(here, local, inc, true),
            End::new(dst, port, 0, false),
        ],
        State::Connecting {
            attempt: 0,
            deadline,
            waker: None,
        },
    );
    trace_conn(f, w, key, 0, "connect", None);
    send_syn(f, w, key);
    Ok(key)
}

fn send_syn(f: &mut Fabric, w: &World, key: ConnKey) {
    let Some(c) = f.conns.get(key) else { return };
    let (src, dst) = (c.ends[0].host, c.ends[1].host);
    let at = now(w) + f.latency(src, dst);
    schedule(f, w, at, Due::Syn(key));
}

/// Polls a pending connect.
pub(crate) fn poll_connect(
    f: &mut Fabric,
    key: ConnKey,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    let label = f
        .conns
        .get(key)
        .map(|c| f.label(c.ends[1].host, c.ends[1].port))
        .unwrap_or_default();
    let Some(c) = f.conns.get_mut(key) else {
        return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
    };
    match &mut c.state {
        State::Open => Poll::Ready(Ok(())),
        State::Failed(kind) => {
            let why = match kind {
                io::ErrorKind::ConnectionRefused => "connection refused: nothing listens on",
                io::ErrorKind::TimedOut => "connect timed out: no answer from",
                _ => "connection failed to",
            };
            Poll::Ready(Err(io::Error::new(*kind, format!("{why} {label}"))))
        }
        State::Connecting { waker, .. } => {
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
            Poll::Pending
        }
    }
}

/// Fails a connection that is still connecting.
fn fail_connect(c: &mut Conn, kind: io::ErrorKind) -> Option<Waker> {
    match std::mem::replace(&mut c.state, State::Failed(kind)) {
        State::Connecting { waker, .. } => waker,
        other => {
            c.state = other;
            None
        }
    }
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
            let a = reset_end(f, w, key, side, io::ErrorKind::TimedOut, "");
            let b = reset_end(f, w, key, 1 - side, io::ErrorKind::ConnectionReset, "");
            Wakes(a.0.or(a.1), b.0.or(b.1))
        }
    }
}

fn on_syn(f: &mut Fabric, w: &World, key: ConnKey) -> Wakes {
    let Some(c) = f.conns.get(key) else {
        return Wakes::default();
    };
    let State::Connecting {
        attempt, deadline, ..
    } = c.state
    else {
        return Wakes::default();
    };
    let (src, dst, port) = (c.ends[0].host, c.ends[1].host, c.ends[1].port);
    let lost = if !f.host(dst).up {
        Some("SYN lost: host down")
    } else if f.is_cut(src, dst) {
        Some("SYN lost: partition")
    } else {
        None
    };
    if let Some(reason) = lost {
        f.trace_msg(
            w,
            MsgEvent::Drop(reason),
            "tcp",
            (src, c.ends[0].port),
            (dst, port),
            0,
        );
        let rto = 1_000_000_000u64 << attempt.min(20);
        let at = now(w).saturating_add(rto).min(deadline);
        if let Some(State::Connecting { attempt, .. }) = f.conns.get_mut(key).map(|c| &mut c.state)
        {
            *attempt += 1;
        }
        schedule(f, w, at, Due::SynRetry(key));
        return Wakes::default();
    }
    let inc = f.host(dst).incarnation;
    let waker = match f.host_mut(dst).ports.get_mut(&(Proto::Tcp, port)) {
        Some(Binding::Listener(backlog)) => {
            backlog.queue.push_back(key);
            backlog.waker.take()
        }
        _ => {
            let at = now(w) + f.latency(dst, src);
            schedule(f, w, at, Due::Refused(key));
            return Wakes::default();
        }
    };
    if let Some(c) = f.conns.get_mut(key) {
        let end = &mut c.ends[1];
        end.incarnation = inc;
        end.open = true;
        end.alive = true;
    }
    wire_push(f, w, key, 1, Seg::SynAck);
    Wakes::one(waker)
}

/// Queues a segment on end `side`'s wire.
fn wire_push(f: &mut Fabric, w: &World, key: ConnKey, side: usize, seg: Seg) {
    let Some(c) = f.conns.get(key) else { return };
    let (src, dst) = (c.ends[side].host, c.ends[1 - side].host);
    let stalled = c.ends[side].stalled_since.is_some();
    let at = if stalled {
        0
    } else {
        segment_time(f, w, src, dst)
    };
    let Some(c) = f.conns.get_mut(key) else {
        return;
    };
    let end = &mut c.ends[side];
    let at = at.max(end.last_at);
    end.last_at = at;
    end.wire.push_back((at, seg));
    if !stalled && !end.wire_armed {
        end.wire_armed = true;
        schedule(f, w, at, Due::Wire(key, side as u8));
    }
}

/// When a segment sent now on `src -> dst` arrives: a latency sample, plus
/// a retransmission timeout per loss draw (at most six).
fn segment_time(f: &mut Fabric, w: &World, src: HostId, dst: HostId) -> u64 {
    let mut lat = f.latency(src, dst);
    let p = f.loss(src, dst);
    if p > 0.0 {
        let mut rto = nanos(f.tcp.rto);
        for _ in 0..6 {
            if f.unit() >= p {
                break;
            }
            lat = lat.saturating_add(rto);
            rto = rto.saturating_mul(2);
        }
    }
    now(w).saturating_add(lat)
}

fn kernel_alive(f: &Fabric, e: &End) -> bool {
    e.open && !e.gone && f.host(e.host).up && f.host(e.host).incarnation == e.incarnation
}

fn on_wire(f: &mut Fabric, w: &World, key: ConnKey, side: usize) -> Wakes {
    let t = now(w);
    let d = 1 - side;
    let Some(c) = f.conns.get_mut(key) else {
        return Wakes::default();
    };
    c.ends[side].wire_armed = false;
    if c.ends[side].stalled_since.is_some() {
        return Wakes::default();
    }
    let Some(&(at, _)) = c.ends[side].wire.front() else {
        return Wakes::default();
    };
    if at > t {
        c.ends[side].wire_armed = true;
        schedule(f, w, at, Due::Wire(key, side as u8));
        return Wakes::default();
    }
    let (src, dst) = (c.ends[side].host, c.ends[d].host);
    if f.is_cut(src, dst) {
        let Some(c) = f.conns.get_mut(key) else {
            return Wakes::default();
        };
        c.ends[side].stalled_since = Some(t);
        let timeout = t.saturating_add(nanos(f.tcp.user_timeout));
        schedule(f, w, timeout, Due::UserTimeout(key, side as u8, t));
        trace_conn(f, w, key, side, "stall", Some("partition".to_string()));
        return Wakes::default();
    }
    let alive = {
        let c = f.conns.get(key).expect("checked above");
        kernel_alive(f, &c.ends[d]) && c.ends[d].error.is_none()
    };
    let c = f.conns.get_mut(key).expect("checked above");
    let (_, seg) = c.ends[side].wire.pop_front().expect("the wire has a head");
    let mut wakes = Wakes::default();
    if alive {
        let (sp, dp) = (c.ends[side].port, c.ends[d].port);
        match seg {
            Seg::Data(bytes) => {
                let n = bytes.len();
                let end = &mut c.ends[d];
                if end.alive && !end.rd_shut {
                    end.rx.push_back(bytes);
                }
                wakes.0 = end.reader.take();
                f.trace_msg(w, MsgEvent::Deliver, "tcp", (src, sp), (dst, dp), n);
            }
            Seg::Fin => {
                c.ends[d].rx_fin = true;
                wakes.0 = c.ends[d].reader.take();
            }
            Seg::SynAck => {
                if let State::Connecting { waker, .. } =
                    std::mem::replace(&mut c.state, State::Open)
                {
                    wakes.0 = waker;
                }
            }
        }
    }
    let Some(c) = f.conns.get_mut(key) else {
        return wakes;
    };
    if let Some(&(next, _)) = c.ends[side].wire.front() {
        c.ends[side].wire_armed = true;
        schedule(f, w, next, Due::Wire(key, side as u8));
    } else {
        f.conns.maybe_free(key);
    }
    wakes
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
    let reader = end.reader.take();
    let connect = if to == 0 { fail_connect(c, kind) } else { None };
    if !why.is_empty() {
        trace_conn(f, w, key, to, "reset", Some(why.to_string()));
    }
    f.conns.maybe_free(key);
    Wakes(reader, connect)
}

/// Polls a read on end `side`.
pub(crate) fn poll_read(
    f: &mut Fabric,
    key: ConnKey,
    side: usize,
    buf: &mut [u8],
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    let Some(c) = f.conns.get_mut(key) else {
        return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
    };
    let end = &mut c.ends[side];
    if buf.is_empty() || end.rd_shut {
        return Poll::Ready(Ok(0));
    }
    if !end.rx.is_empty() {
        let mut n = 0;
        while n < buf.len() {
            let Some(front) = end.rx.front() else { break };
            let take = (front.len() - end.rx_off).min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&front[end.rx_off..end.rx_off + take]);
            n += take;
            end.rx_off += take;
            if end.rx_off == front.len() {
                end.rx.pop_front();
                end.rx_off = 0;
            }
        }
        return Poll::Ready(Ok(n));
    }
    if let Some(kind) = end.error {
        return Poll::Ready(Err(stream_error(kind)));
    }
    if end.rx_fin {
        return Poll::Ready(Ok(0));
    }
    if end.gone {
        return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
    }
    if !end.reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        end.reader = Some(cx.waker().clone());
    }
    Poll::Pending
}

fn stream_error(kind: io::ErrorKind) -> io::Error {
    let why = match kind {
        io::ErrorKind::ConnectionReset => "connection reset by peer",
        io::ErrorKind::TimedOut => "connection timed out: the peer was unreachable for too long",
        io::ErrorKind::BrokenPipe => "the write half of this stream is closed",
        _ => "connection failed",
    };
    io::Error::new(kind, why)
}

/// Writes on end `side`: the bytes are queued at once.
pub(crate) fn write(
    f: &mut Fabric,
    w: &World,
    key: ConnKey,
    side: usize,
    buf: &[u8],
) -> io::Result<usize> {
    let Some(c) = f.conns.get(key) else {
        return Err(io::ErrorKind::NotConnected.into());
    };
    let end = &c.ends[side];
    if let Some(kind) = end.error {
        return Err(stream_error(kind));
    }
    if end.wr_closed {
        return Err(stream_error(io::ErrorKind::BrokenPipe));
    }
    if end.gone {
        return Err(io::ErrorKind::NotConnected.into());
    }
    if buf.is_empty() {
        return Ok(0);
    }
    let peer = &c.ends[1 - side];
    f.trace_msg(
        w,
        MsgEvent::Send,
        "tcp",
        (end.host, end.port),
        (peer.host, peer.port),
        buf.len(),
    );
    wire_push(f, w, key, side, Seg::Data(buf.to_vec()));
    Ok(buf.len())
}

/// Closes the write half of end `side` (sends a FIN).
pub(crate) fn close_write(f: &mut Fabric, w: &World, key: ConnKey, side: usize) -> io::Result<()> {
    let Some(c) = f.conns.get_mut(key) else {
        return Err(io::ErrorKind::NotConnected.into());
    };
    let end = &mut c.ends[side];
    if let Some(kind) = end.error {
        return Err(stream_error(kind));
    }
    if end.wr_closed || end.gone {
        return Ok(());
    }
    end.wr_closed = true;
    trace_conn(f, w, key, side, "close", None);
    wire_push(f, w, key, side, Seg::Fin);
    Ok(())
}

/// Closes the read half of end `side`: buffered and later data is dropped.
pub(crate) fn shutdown_read(f: &mut Fabric, key: ConnKey, side: usize) -> Option<Waker> {
    let c = f.conns.get_mut(key)?;
    let end = &mut c.ends[side];
    end.rd_shut = true;
    end.rx.clear();
    end.rx_off = 0;
    end.reader.take()
}

/// The handle of end `side` is gone (a stream dropped, a connect
/// abandoned).
pub(crate) fn drop_end(f: &mut Fabric, w: &World, key: ConnKey, side: usize) {
    let Some(c) = f.conns.get_mut(key) else {
        return;
    };
    let connecting = matches!(c.state, State::Connecting { .. });
    let end = &mut c.ends[side];
    end.alive = false;
    end.reader = None;
    if connecting {
        c.state = State::Failed(io::ErrorKind::ConnectionAborted);
        if c.ends[1].open {
            let (src, dst) = (c.ends[0].host, c.ends[1].host);
            let at = now(w) + f.latency(src, dst);
            schedule(f, w, at, Due::Rst(key, 1, "peer abandoned the connect"));
        }
    } else if end.open && !end.gone && !end.wr_closed && end.error.is_none() {
        let _ = close_write(f, w, key, side);
    }
    f.conns.maybe_free(key);
}

/// A listener with a backlog closed: its pending connections are reset.
pub(crate) fn reset_backlog(f: &mut Fabric, w: &World, queue: VecDeque<ConnKey>) {
    for key in queue {
        let Some(c) = f.conns.get_mut(key) else {
            continue;
        };
        c.ends[1].alive = false;
        c.ends[1].gone = true;
        c.ends[1].wire.clear();
        let (src, dst) = (c.ends[1].host, c.ends[0].host);
        let at = now(w) + f.latency(src, dst);
        schedule(f, w, at, Due::Rst(key, 0, "listener closed"));
    }
}

/// Host `h` crashed: its ends vanish, their peers get resets.
pub(crate) fn crash_host(f: &mut Fabric, w: &World, h: HostId, wakers: &mut Vec<Waker>) {
    for key in f.conns.keys() {
        for side in 0..2 {
            let Some(c) = f.conns.get_mut(key) else { break };
            let end = &mut c.ends[side];
            if end.host != h || !end.open || end.gone {
                continue;
            }
            end.gone = true;
            end.alive = false;
            end.error = Some(io::ErrorKind::ConnectionAborted);
            end.wire.clear();
            end.rx.clear();
            end.stalled_since = None;
            wakers.extend(end.reader.take());
            if side == 0 {
                wakers.extend(fail_connect(c, io::ErrorKind::ConnectionAborted));
            }
            let peer = &c.ends[1 - side];
            if peer.open && !peer.gone && peer.error.is_none() && peer.host != h {
                let to = peer.host;
                let at = now(w) + f.latency(h, to);
                schedule(f, w, at, Due::Rst(key, (1 - side) as u8, "peer crashed"));
            }
        }
        f.conns.maybe_free(key);
    }
}

/// A partition healed: stalled wires whose direction is open again resume,
/// in order, with fresh latencies.
pub(crate) fn flush_stalls(f: &mut Fabric, w: &World) {
    let t = now(w);
    for key in f.conns.keys() {
        for side in 0..2 {
            let Some(c) = f.conns.get(key) else { break };
            let end = &c.ends[side];
            if end.stalled_since.is_none() || f.is_cut(end.host, c.ends[1 - side].host) {
                continue;
            }
            let (src, dst, n) = (end.host, c.ends[1 - side].host, end.wire.len());
            let mut at = t;
            for i in 0..n {
                at = at.max(segment_time(f, w, src, dst));
                if let Some(c) = f.conns.get_mut(key) {
                    c.ends[side].wire[i].0 = at;
                }
            }
            let Some(c) = f.conns.get_mut(key) else { break };
            let end = &mut c.ends[side];
            end.stalled_since = None;
            end.last_at = at;
            if let Some(&(head, _)) = end.wire.front() {
                end.wire_armed = true;
                schedule(f, w, head, Due::Wire(key, side as u8));
            }
            trace_conn(f, w, key, side, "resume", None);
        }
    }
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

/// Records an accept.
pub(crate) fn trace_accept(f: &Fabric, w: &World, key: ConnKey) {
    trace_conn(f, w, key, 1, "accept", None);
}
