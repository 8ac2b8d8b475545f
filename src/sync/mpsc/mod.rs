//! [`mpsc`](self): multi-producer, single-consumer channels, bounded and
//! unbounded, with tokio's API.
//!
//! - A **bounded** channel holds at most `buffer` messages. `send().await`
//!   waits for room; senders waiting for room are served first come, first
//!   served, and a slot freed by the receiver is handed to the first of them
//!   at once (it is reserved for it, nobody else can take it). A send
//!   dropped before it ran gives its slot to the next sender: nothing is
//!   lost, nothing is left behind.
//! - An **unbounded** channel never makes a sender wait.
//! - **Close and drop.** When every sender is dropped, `recv` returns the
//!   buffered messages and then `None`. When the receiver is dropped or
//!   [`close`](Receiver::close)d, sends fail with [`SendError`] (giving the
//!   value back) and waiting senders wake with it; a closed receiver still
//!   gets what was buffered; a dropped one drops it.
//! - `recv` is cancel-safe: a dropped `recv` loses no message.
//!
//! Anyone holding a sender may send, and senders move between tasks. A
//! wait on a channel takes part in an early deadlock report only when
//! every handle of the other end is placed in a task that used it (see
//! the `sync` module docs): then `#2 b holds the only sender of channel
//! 'to-a'` is certain. Otherwise reports of a stalled run say what is
//! known: how many senders are alive, and which tasks sent last (for a
//! receive) or received last (for a send).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::places::{self, At, Places, senders_held};
use super::resource::{Ev, Kind, Meta, Release, Tracked, WaitOp, block_str, task_list};
use super::waiters::{self, State, Ticket, Turn, WaitList};
use crate::runtime::context;
use crate::runtime::executor::Executor;
use crate::runtime::waker::{self, TaskKey};

mod error;
mod unbounded;

pub use error::{SendError, TryRecvError, TrySendError};
pub use unbounded::{UnboundedReceiver, UnboundedSender};

/// How many recent senders a channel remembers for reports.
const RECENT: usize = 4;

/// A bounded channel of `buffer` messages; reports call it `channel#N`.
///
/// # Panics
///
/// If `buffer` is zero.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::sync::mpsc;
///
/// let outcome = Sim::new(6).run(async {
///     let (tx, mut rx) = mpsc::channel_named("jobs", 2);
///     for i in 0..3 {
///         let tx = tx.clone();
///         spawn(async move {
///             tx.send(i).await.unwrap();
///         });
///     }
///     drop(tx); // the channel ends when the last sender is gone
///     let mut got = Vec::new();
///     while let Some(job) = rx.recv().await {
///         got.push(job);
///     }
///     got.sort();
///     got
/// });
/// assert_eq!(outcome.into_result().unwrap(), [0, 1, 2]);
/// ```
pub fn channel<T>(buffer: usize) -> (Sender<T>, Receiver<T>) {
    make(None, Some(buffer))
}

/// A bounded channel that traces and reports call `channel '<name>'`.
pub fn channel_named<T>(name: impl Into<String>, buffer: usize) -> (Sender<T>, Receiver<T>) {
    make(Some(name.into()), Some(buffer))
}

/// An unbounded channel; reports call it `channel#N`.
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    let (tx, rx) = make(None, None);
    (UnboundedSender(tx), UnboundedReceiver(rx))
}

/// An unbounded channel that traces and reports call `channel '<name>'`.
pub fn unbounded_channel_named<T>(
    name: impl Into<String>,
) -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    let (tx, rx) = make(Some(name.into()), None);
    (UnboundedSender(tx), UnboundedReceiver(rx))
}

fn make<T>(name: Option<String>, cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    assert!(
        cap != Some(0),
        "lockstep::sync::mpsc::channel: the buffer must hold at least one message"
    );
    let chan = Rc::new(Chan {
        core: Rc::new(ChanCore {
            meta: Meta::new(Kind::Channel, name),
            cap,
            state: RefCell::new(ChanState {
                len: 0,
                reserved: 0,
                senders: 1,
                rx_alive: true,
                rx_closed: false,
                rx_waker: None,
                rx_waiting: false,
                send_waiters: WaitList::default(),
                recent_senders: Vec::new(),
                last_receiver: None,
                tx_at: Places::default(),
                rx_at: At::Nowhere,
            }),
        }),
        buf: RefCell::new(VecDeque::with_capacity(cap.unwrap_or(0))),
    });
    let slot = chan.core.state.borrow_mut().tx_at.add();
    (
        Sender {
            chan: chan.clone(),
            slot,
        },
        Receiver { chan },
    )
}

struct Chan<T> {
    core: Rc<ChanCore>,
    buf: RefCell<VecDeque<T>>,
}

struct ChanCore {
    meta: Meta,
    /// `None`: unbounded.
    cap: Option<usize>,
    state: RefCell<ChanState>,
}

struct ChanState {
    /// Messages buffered.
    len: usize,
    /// Slots handed to waiting senders, not yet filled.
    reserved: usize,
    senders: usize,
    rx_alive: bool,
    rx_closed: bool,
    rx_waker: Option<Waker>,
    /// The receiver is blocked in `recv` (for tracing the wait once).
    rx_waiting: bool,
    send_waiters: WaitList<()>,
    /// The last few distinct tasks that sent, oldest first.
    recent_senders: Vec<TaskKey>,
    last_receiver: Option<TaskKey>,
    /// Where the senders are (see `places.rs`).
    tx_at: Places,
    /// Where the receiver is.
    rx_at: At,
}

impl ChanState {
    fn closed(&self) -> bool {
        !self.rx_alive || self.rx_closed
    }

    fn room(&self, cap: Option<usize>) -> bool {
        cap.is_none_or(|cap| self.len + self.reserved < cap)
    }

    /// Hands free slots to the senders first in line.
    fn grant_slots(&mut self, cap: Option<usize>, wake: &mut Vec<Waker>) {
        while self.room(cap) {
            let Some(next) = self.send_waiters.front() else {
                break;
            };
            self.reserved += 1;
            wake.extend(self.send_waiters.settle(next.ticket, State::Granted));
        }
    }
}

impl<T> Chan<T> {
    /// Buffers a message for which room was checked or reserved, sent
    /// through the sender in `slot`.
    fn push(&self, value: T, reserved: bool, slot: u32) {
        // The message may carry handles away: the sender's other handles
        // lose their place; the one that sent keeps it.
        places::moved_with::<T>();
        let waker = {
            let mut st = self.core.state.borrow_mut();
            let task = context::try_with(|w| {
                st.tx_at.touch_in(slot, w);
                w.exec.current_key()
            })
            .flatten();
            if reserved {
                st.reserved -= 1;
            }
            st.len += 1;
            if let Some(k) = task {
                // Already the most recent sender: the list stays as it is.
                if st.recent_senders.last() != Some(&k) {
                    st.recent_senders.retain(|s| *s != k);
                    if st.recent_senders.len() == RECENT {
                        st.recent_senders.remove(0);
                    }
                    st.recent_senders.push(k);
                }
            }
            st.rx_waker.take()
        };
        self.buf.borrow_mut().push_back(value);
        self.core.meta.trace(Ev::Send, || None);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Takes the next message, if any, and hands the freed slot on.
    fn pop(&self) -> Option<T> {
        let value = self.buf.borrow_mut().pop_front()?;
        let core = &self.core;
        waiters::wake_after(&core.state, |st, wake| {
            st.len -= 1;
            st.rx_waiting = false;
            st.last_receiver = context::try_with(|w| {
                st.rx_at.touch_in(w);
                w.exec.current_key()
            })
            .flatten();
            core.meta.trace(Ev::Recv, || None);
            st.grant_slots(core.cap, wake);
        });
        Some(value)
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        context::with("lockstep::sync::mpsc::Receiver::recv", |w| {
            if let Some(v) = self.pop() {
                return Poll::Ready(Some(v));
            }
            let mut st = self.core.state.borrow_mut();
            st.rx_at.touch_in(w);
            if st.senders == 0 || st.rx_closed {
                st.rx_waiting = false;
                return Poll::Ready(None);
            }
            match &st.rx_waker {
                Some(old) if waker::same_task(old, cx.waker()) => {}
                _ => st.rx_waker = Some(waker::tracked_clone(cx.waker())),
            }
            let first = !std::mem::replace(&mut st.rx_waiting, true);
            drop(st);
            block_str(w, self.core.clone(), WaitOp::Recv, first, "a message")
        })
    }

    fn try_recv(&self) -> Result<T, TryRecvError> {
        if let Some(v) = self.pop() {
            return Ok(v);
        }
        let mut st = self.core.state.borrow_mut();
        st.rx_at.touch();
        if st.senders == 0 || st.rx_closed {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// The receiver closed or went away: fail every waiting sender. A
    /// dropped receiver also drops what was buffered.
    fn close_rx(&self, dropped: bool) {
        let core = &self.core;
        waiters::wake_after(&core.state, |st, wake| {
            let was_closed = st.closed();
            if dropped {
                st.rx_alive = false;
            } else {
                st.rx_closed = true;
            }
            if was_closed {
                return;
            }
            st.send_waiters.settle_all(State::Woken, wake);
            let how = if dropped { "dropped" } else { "closed" };
            core.meta
                .trace(Ev::Close, || Some(format!("receiver {how}")));
        });
        if dropped {
            // Outside any borrow: a message's Drop may use the channel.
            let rest = std::mem::take(&mut *self.buf.borrow_mut());
            self.core.state.borrow_mut().len = 0;
            drop(rest);
        }
    }

    fn add_sender(&self) -> u32 {
        let mut st = self.core.state.borrow_mut();
        st.senders += 1;
        st.tx_at.add()
    }

    fn drop_sender(&self, slot: u32) {
        let waker = {
            let mut st = self.core.state.borrow_mut();
            st.senders -= 1;
            st.tx_at.remove(slot);
            if st.senders > 0 {
                return;
            }
            st.rx_waker.take()
        };
        self.core
            .meta
            .trace(Ev::Close, || Some("last sender dropped".to_string()));
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn len(&self) -> usize {
        self.buf.borrow().len()
    }
}

impl Tracked for ChanCore {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    /// A receive ends when a sender sends or the last one is dropped: by
    /// the tasks holding the senders, if every sender is placed. A send
    /// waiting for room ends when the receiver receives or goes: by its
    /// task, if it is placed.
    fn release(&self, op: WaitOp, out: &mut Vec<TaskKey>) -> Release {
        let st = self.state.borrow();
        let known = match op {
            WaitOp::Recv => places::holders(&st.tx_at, out),
            WaitOp::Send => places::holder(st.rx_at, out),
            _ => false,
        };
        if known && !out.is_empty() {
            Release::Holders
        } else {
            Release::Anyone
        }
    }

    fn likely(&self, op: WaitOp, out: &mut Vec<TaskKey>) {
        if self.release(op, out) == Release::Holders {
            return;
        }
        out.clear();
        let st = self.state.borrow();
        match op {
            WaitOp::Recv => out.extend(st.recent_senders.iter().rev()),
            _ => out.extend(st.last_receiver),
        }
    }

    fn held_as(&self, task: TaskKey, op: WaitOp) -> String {
        let st = self.state.borrow();
        let label = self.meta.label();
        if op == WaitOp::Send {
            return format!("the receiver of {label}");
        }
        senders_held(&label, places::count(&st.tx_at, task), st.senders)
    }

    fn describe(&self, op: WaitOp, exec: &Executor) -> String {
        let st = self.state.borrow();
        let label = self.meta.label();
        if op == WaitOp::Send {
            let cap = self.cap.unwrap_or(0);
            let last = match st.last_receiver {
                Some(k) => format!("; last received by {}", exec.label_of(k)),
                None => "; nothing received yet".to_string(),
            };
            return format!(
                "room on {label} (full: {} of {cap}, {} senders waiting{last})",
                st.len + st.reserved,
                st.send_waiters.len()
            );
        }
        let mut holders = Vec::new();
        if places::holders(&st.tx_at, &mut holders) && !holders.is_empty() {
            holders.sort_by_key(|k| k.id);
            holders.dedup();
            let who = task_list(exec, &holders);
            return match st.senders {
                1 => format!("a message on {label} (empty; its only sender is held by {who})"),
                n => format!("a message on {label} (empty; its {n} senders are held by {who})"),
            };
        }
        let senders = match st.senders {
            1 => "1 sender alive".to_string(),
            n => format!("{n} senders alive"),
        };
        let recent: Vec<TaskKey> = st.recent_senders.iter().rev().copied().collect();
        let last = if recent.is_empty() {
            "; nothing sent yet".to_string()
        } else {
            format!("; last sent by {}", task_list(exec, &recent))
        };
        format!("a message on {label} (empty; {senders}{last})")
    }
}

/// The sending half of a bounded channel. Clone it for more producers.
pub struct Sender<T> {
    chan: Rc<Chan<T>>,
    /// Its entry in the channel's `tx_at`.
    slot: u32,
}

impl<T> Sender<T> {
    /// Sends a message, waiting for room if the channel is full. Fails,
    /// giving the value back, if the receiver is gone or closed.
    ///
    /// Cancel-safe in the sense that matters: if the future is dropped
    /// before it completes, the message was not sent, and a slot reserved
    /// for it goes to the next sender in line.
    ///
    /// # Panics
    ///
    /// When polled outside a simulation.
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let reserve = Reserve {
            chan: &self.chan.core,
            ticket: None,
        };
        match reserve.await {
            Ok(()) => {
                self.chan.push(value, true, self.slot);
                Ok(())
            }
            Err(()) => Err(SendError(value)),
        }
    }

    /// Sends if there is room now.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut st = self.chan.core.state.borrow_mut();
        if st.closed() {
            return Err(TrySendError::Closed(value));
        }
        if !st.send_waiters.is_empty() || !st.room(self.chan.core.cap) {
            return Err(TrySendError::Full(value));
        }
        st.reserved += 1;
        drop(st);
        self.chan.push(value, true, self.slot);
        Ok(())
    }

    /// Whether the receiver is gone or closed.
    pub fn is_closed(&self) -> bool {
        let mut st = self.chan.core.state.borrow_mut();
        st.tx_at.touch(self.slot);
        st.closed()
    }

    /// Free slots right now.
    pub fn capacity(&self) -> usize {
        let st = self.chan.core.state.borrow();
        self.max_capacity() - st.len - st.reserved
    }

    /// The buffer size the channel was made with.
    pub fn max_capacity(&self) -> usize {
        self.chan.core.cap.unwrap_or(usize::MAX)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        let slot = self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
            slot,
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender(self.slot);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("channel", &self.chan.core.meta)
            .finish()
    }
}

/// Waits for a slot on a bounded channel; `Err` once it is closed.
struct Reserve<'a> {
    chan: &'a Rc<ChanCore>,
    ticket: Option<Ticket>,
}

impl Future for Reserve<'_> {
    type Output = Result<(), ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let core = self.chan;
        context::with("lockstep::sync::mpsc::Sender::send", |w| {
            let mut st = core.state.borrow_mut();
            let turn = match self.ticket {
                None if st.closed() => Turn::Woken,
                None if st.send_waiters.is_empty() && st.room(core.cap) => {
                    st.reserved += 1;
                    Turn::Now
                }
                _ => st
                    .send_waiters
                    .poll_turn(&mut self.ticket, cx, w.exec.current_key(), ()),
            };
            drop(st);
            match turn {
                Turn::Now | Turn::Granted => Poll::Ready(Ok(())),
                Turn::Woken => Poll::Ready(Err(())),
                Turn::Waiting { first } => {
                    block_str(w, core.clone(), WaitOp::Send, first, "room to send")
                }
            }
        })
    }
}

impl Drop for Reserve<'_> {
    fn drop(&mut self) {
        if self.ticket.is_none() {
            // Never queued (or its turn was collected): nothing to hand on.
            return;
        }
        let core = self.chan;
        let cap = core.cap;
        waiters::wake_after(&core.state, |st, wake| {
            if st.send_waiters.cancel(&mut self.ticket) == Some(State::Granted) {
                // Given a slot but never used it: hand it on.
                st.reserved -= 1;
                st.grant_slots(cap, wake);
            }
        });
    }
}

/// The receiving half of a bounded channel.
pub struct Receiver<T> {
    chan: Rc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// The next message; `None` once every sender is gone (or the receiver
    /// closed) and the buffer is empty. Cancel-safe.
    ///
    /// # Panics
    ///
    /// When polled outside a simulation.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next message.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.chan.poll_recv(cx)
    }

    /// The next message if one is buffered.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// Stops the channel: sends fail from now on; what is buffered can
    /// still be received.
    pub fn close(&mut self) {
        self.chan.close_rx(false);
    }

    /// Messages buffered.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.close_rx(true);
    }
}

impl<T> futures::Stream for Receiver<T> {
    type Item = T;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("channel", &self.chan.core.meta)
            .finish()
    }
}
