//! Segments on the wire: ordered delivery, loss as retransmission delay,
//! stalls under partitions, reads and writes, crashes.

use std::io;
use std::task::{Context, Poll, Waker};

use super::connect::fail_connect;
use super::{ConnKey, Due, End, Seg, State, nanos, now, schedule, trace_conn};
use crate::net::fabric::{Fabric, MsgEvent, Wakes};
use crate::net::host::HostId;
use crate::runtime::world::World;

/// Queues a segment on end `side`'s wire.
pub(super) fn wire_push(f: &mut Fabric, w: &World, key: ConnKey, side: usize, seg: Seg) {
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

/// Bytes waiting in end `e`'s receive buffer.
pub(super) fn unread(e: &End) -> usize {
    e.rx.iter().map(Vec::len).sum::<usize>() - e.rx_off
}

/// `n` bytes end `e` wrote were read or discarded by its peer: its window
/// opens; returns its writer to wake, if one waits and there is room.
pub(super) fn credit(e: &mut End, n: usize) -> Option<Waker> {
    e.unacked = e.unacked.saturating_sub(n);
    if n > 0 && e.unacked < e.window {
        e.writer.take()
    } else {
        None
    }
}

fn kernel_alive(f: &Fabric, e: &End) -> bool {
    e.open && !e.gone && f.host(e.host).up && f.host(e.host).incarnation == e.incarnation
}

pub(super) fn on_wire(f: &mut Fabric, w: &World, key: ConnKey, side: usize) -> Wakes {
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
                } else {
                    // Nobody will read it: the sender's window opens.
                    wakes.push(credit(&mut c.ends[side], n));
                }
                wakes.push(c.ends[d].reader.take());
                f.trace_msg(w, MsgEvent::Deliver, "tcp", (src, sp), (dst, dp), n);
            }
            Seg::Fin => {
                c.ends[d].rx_fin = true;
                wakes.push(c.ends[d].reader.take());
            }
            Seg::SynAck => {
                if let State::Connecting { waker, .. } =
                    std::mem::replace(&mut c.state, State::Open)
                {
                    wakes.push(waker);
                }
            }
        }
    } else if let Seg::Data(bytes) = &seg {
        let n = bytes.len();
        wakes.push(credit(&mut c.ends[side], n));
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

/// Polls a read on end `side`; a read opens the peer's window, so its
/// writer (if one waits) is put in `wake`.
pub(crate) fn poll_read(
    f: &mut Fabric,
    key: ConnKey,
    side: usize,
    buf: &mut [u8],
    cx: &mut Context<'_>,
    wake: &mut Option<Waker>,
) -> Poll<io::Result<usize>> {
    let Some(c) = f.conns.get_mut(key) else {
        return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
    };
    let [a, b] = &mut c.ends;
    let (end, peer) = if side == 0 { (a, b) } else { (b, a) };
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
        *wake = credit(peer, n);
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

/// Writes on end `side`: as many bytes as the window has room for are
/// queued at once; with the window full, the writer waits.
pub(crate) fn poll_write(
    f: &mut Fabric,
    w: &World,
    key: ConnKey,
    side: usize,
    buf: &[u8],
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    let Some(c) = f.conns.get_mut(key) else {
        return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
    };
    let end = &mut c.ends[side];
    if let Some(kind) = end.error {
        return Poll::Ready(Err(stream_error(kind)));
    }
    if end.wr_closed {
        return Poll::Ready(Err(stream_error(io::ErrorKind::BrokenPipe)));
    }
    if end.gone {
        return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
    }
    if buf.is_empty() {
        return Poll::Ready(Ok(0));
    }
    let room = end.window.saturating_sub(end.unacked);
    if room == 0 {
        if !end.writer.as_ref().is_some_and(|x| x.will_wake(cx.waker())) {
            end.writer = Some(cx.waker().clone());
        }
        return Poll::Pending;
    }
    let n = room.min(buf.len());
    end.unacked += n;
    let (from, to) = (
        (c.ends[side].host, c.ends[side].port),
        (c.ends[1 - side].host, c.ends[1 - side].port),
    );
    f.trace_msg(w, MsgEvent::Send, "tcp", from, to, n);
    wire_push(f, w, key, side, Seg::Data(buf[..n].to_vec()));
    Poll::Ready(Ok(n))
}

/// Sets end `side`'s window; returns its writer to wake if it opened.
pub(crate) fn set_window(f: &mut Fabric, key: ConnKey, side: usize, bytes: usize) -> Option<Waker> {
    let end = &mut f.conns.get_mut(key)?.ends[side];
    end.window = bytes;
    if end.unacked < end.window {
        end.writer.take()
    } else {
        None
    }
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

/// Closes the read half of end `side`: buffered and later data is dropped
/// (which opens the peer's window).
pub(crate) fn shutdown_read(f: &mut Fabric, key: ConnKey, side: usize) -> Wakes {
    let Some(c) = f.conns.get_mut(key) else {
        return Wakes::default();
    };
    let end = &mut c.ends[side];
    end.rd_shut = true;
    let discarded = unread(end);
    end.rx.clear();
    end.rx_off = 0;
    let mut wakes = Wakes::one(end.reader.take());
    wakes.push(credit(&mut c.ends[1 - side], discarded));
    wakes
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
            let discarded = unread(end);
            end.rx.clear();
            end.rx_off = 0;
            end.stalled_since = None;
            wakers.extend(end.reader.take());
            wakers.extend(end.writer.take());
            wakers.extend(credit(&mut c.ends[1 - side], discarded));
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
