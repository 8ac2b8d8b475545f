//! Opening and abandoning connections: SYN, SYN retransmission, refusal,
//! acceptance into a listener's backlog.

use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll, Waker};

use super::wire::{close_write, credit, unread, wire_push};
use super::{Conn, ConnKey, Due, End, Seg, State, nanos, now, schedule, trace_conn};
use crate::net::fabric::{Fabric, MsgEvent, Wakes};
use crate::net::host::{Binding, HostId, Proto};
use crate::runtime::world::World;

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
    let window = |from, to| f.link(from, to).send_window.unwrap_or(f.tcp.send_window);
    let (w0, w1) = (window(here, dst), window(dst, here));
    let key = f.conns.insert(
        [
            End::new(here, local, inc, true, w0),
            End::new(dst, port, 0, false, w1),
        ],
        State::Connecting {
            attempt: 0,
            deadline,
            waker: None,
        },
    );
    super::set_owner(f, w, key, 0);
    trace_conn(f, w, key, 0, "connect", None);
    send_syn(f, w, key);
    Ok(key)
}

pub(super) fn send_syn(f: &mut Fabric, w: &World, key: ConnKey) {
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
pub(super) fn fail_connect(c: &mut Conn, kind: io::ErrorKind) -> Option<Waker> {
    match std::mem::replace(&mut c.state, State::Failed(kind)) {
        State::Connecting { waker, .. } => waker,
        other => {
            c.state = other;
            None
        }
    }
}

pub(super) fn on_syn(f: &mut Fabric, w: &World, key: ConnKey) -> Wakes {
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

/// The handle of end `side` is gone (a stream dropped, a connect
/// abandoned). Returns the peer's writer to wake, if its window opened.
pub(crate) fn drop_end(f: &mut Fabric, w: &World, key: ConnKey, side: usize) -> Option<Waker> {
    let c = f.conns.get_mut(key)?;
    let connecting = matches!(c.state, State::Connecting { .. });
    let end = &mut c.ends[side];
    end.alive = false;
    end.reader = None;
    end.writer = None;
    // Unread data is discarded: the peer's window opens.
    let unread = unread(end);
    end.rx.clear();
    end.rx_off = 0;
    let close = end.open && !end.gone && !end.wr_closed && end.error.is_none();
    let peer_writer = credit(&mut c.ends[1 - side], unread);
    if connecting {
        c.state = State::Failed(io::ErrorKind::ConnectionAborted);
        if c.ends[1].open {
            let (src, dst) = (c.ends[0].host, c.ends[1].host);
            let at = now(w) + f.latency(src, dst);
            schedule(f, w, at, Due::Rst(key, 1, "peer abandoned the connect"));
        }
    } else if close {
        let _ = close_write(f, w, key, side);
    }
    f.conns.maybe_free(key);
    peer_writer
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
