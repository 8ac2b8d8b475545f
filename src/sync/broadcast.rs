//! [`broadcast`](self): every receiver sees every message, with tokio's API.
//!
//! The channel keeps the last `capacity` messages. A receiver that falls
//! further behind loses the oldest ones: its next `recv` returns
//! [`RecvError::Lagged`] with how many it missed, then carries on from the
//! oldest message kept. Messages are cloned out to each receiver, and stay
//! in the buffer until newer ones push them out. `recv` is cancel-safe.
//! When every sender is gone, receivers get what is left, then
//! [`RecvError::Closed`].

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

pub use super::mpsc::SendError;
use super::places::{self, Places, senders_held};
use super::resource::{Ev, Kind, Meta, Release, Tracked, WaitOp, block};
use super::waiters::{self, State, Ticket, WaitList};
use crate::runtime::context;
use crate::runtime::executor::Executor;
use crate::runtime::waker::TaskKey;

/// A broadcast channel keeping `capacity` messages; reports call it
/// `broadcast#N`.
///
/// # Panics
///
/// If `capacity` is zero.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::sync::broadcast::{self, RecvError};
///
/// let outcome = Sim::new(2).run(async {
///     let (tx, mut rx) = broadcast::channel_named("news", 2);
///     for i in 1..=3 {
///         tx.send(i).unwrap();
///     }
///     drop(tx);
///     let mut seen = Vec::new();
///     loop {
///         match rx.recv().await {
///             Ok(v) => seen.push(Ok(v)),
///             Err(RecvError::Closed) => break,
///             Err(e) => seen.push(Err(e)),
///         }
///     }
///     seen
/// });
/// // Capacity 2: the first message was pushed out before it was read.
/// assert_eq!(outcome.into_result().unwrap(), [Err(RecvError::Lagged(1)), Ok(2), Ok(3)]);
/// ```
pub fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    make(None, capacity)
}

/// A broadcast channel that traces and reports call `broadcast '<name>'`.
pub fn channel_named<T: Clone>(
    name: impl Into<String>,
    capacity: usize,
) -> (Sender<T>, Receiver<T>) {
    make(Some(name.into()), capacity)
}

fn make<T: Clone>(name: Option<String>, capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        capacity > 0,
        "lockstep::sync::broadcast::channel: the capacity must be at least one"
    );
    let shared = Rc::new(Shared {
        core: Rc::new(BroadcastCore {
            meta: Meta::new(Kind::Broadcast, name),
            cap: capacity,
            state: RefCell::new(BroadcastState {
                head: 0,
                next: 0,
                senders: 1,
                receivers: 1,
                waiters: WaitList::default(),
                tx_at: Places::default(),
            }),
        }),
        buf: RefCell::new(VecDeque::with_capacity(capacity)),
    });
    let slot = shared.core.state.borrow_mut().tx_at.add();
    (
        Sender {
            shared: shared.clone(),
            slot,
        },
        Receiver { shared, next: 0 },
    )
}

struct Shared<T> {
    core: Rc<BroadcastCore>,
    buf: RefCell<VecDeque<T>>,
}

struct BroadcastCore {
    meta: Meta,
    cap: usize,
    state: RefCell<BroadcastState>,
}

struct BroadcastState {
    /// Sequence number of the oldest message kept.
    head: u64,
    /// Sequence number of the next message sent.
    next: u64,
    senders: usize,
    receivers: usize,
    waiters: WaitList<()>,
    /// Where the senders are (see `places.rs`).
    tx_at: Places,
}

/// Why a receive returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Every sender is gone and every message was seen.
    Closed,
    /// This receiver fell behind and this many messages were lost to it.
    Lagged(u64),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str("channel closed"),
            RecvError::Lagged(n) => write!(f, "receiver lagged behind by {n} messages"),
        }
    }
}

impl std::error::Error for RecvError {}

/// Why `try_recv` returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing new yet.
    Empty,
    /// Every sender is gone and every message was seen.
    Closed,
    /// This receiver fell behind and this many messages were lost to it.
    Lagged(u64),
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("nothing new"),
            TryRecvError::Closed => f.write_str("channel closed"),
            TryRecvError::Lagged(n) => write!(f, "receiver lagged behind by {n} messages"),
        }
    }
}

impl std::error::Error for TryRecvError {}

impl Tracked for BroadcastCore {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    /// A receive ends when a sender sends or the last one goes: by the
    /// tasks holding the senders, if every sender is placed.
    fn release(&self, op: WaitOp, out: &mut Vec<TaskKey>) -> Release {
        let st = self.state.borrow();
        if op == WaitOp::Recv && places::holders(&st.tx_at, out) && !out.is_empty() {
            Release::Holders
        } else {
            Release::Anyone
        }
    }

    fn held_as(&self, task: TaskKey, _: WaitOp) -> String {
        let st = self.state.borrow();
        senders_held(
            &self.meta.label(),
            places::count(&st.tx_at, task),
            st.senders,
        )
    }

    fn describe(&self, _: WaitOp, _: &Executor) -> String {
        let st = self.state.borrow();
        format!(
            "a message on {} (nothing new; {} senders alive)",
            self.meta.label(),
            st.senders
        )
    }
}

/// Sends to every receiver. Clone it for more senders.
pub struct Sender<T> {
    shared: Rc<Shared<T>>,
    /// Its entry in the channel's `tx_at`.
    slot: u32,
}

impl<T: Clone> Sender<T> {
    /// Sends to every receiver alive; returns how many. Fails, giving the
    /// value back, if there is none.
    pub fn send(&self, value: T) -> Result<usize, SendError<T>> {
        let core = &self.shared.core;
        places::moved_with::<T>();
        let receivers = {
            let mut st = core.state.borrow_mut();
            st.tx_at.touch(self.slot);
            st.receivers
        };
        if receivers == 0 {
            return Err(SendError(value));
        }
        let pushed_out = {
            let mut buf = self.shared.buf.borrow_mut();
            buf.push_back(value);
            (buf.len() > core.cap).then(|| buf.pop_front())
        };
        waiters::wake_after(&core.state, |st, wake| {
            st.next += 1;
            if pushed_out.is_some() {
                st.head += 1;
            }
            st.waiters.settle_all(State::Woken, wake);
            core.meta
                .trace(Ev::Send, || Some(format!("to {receivers}")));
        });
        drop(pushed_out);
        Ok(receivers)
    }

    /// A new receiver that sees messages sent from now on.
    pub fn subscribe(&self) -> Receiver<T> {
        subscribe(&self.shared)
    }

    /// Receivers alive.
    pub fn receiver_count(&self) -> usize {
        self.shared.core.state.borrow().receivers
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        let mut st = self.shared.core.state.borrow_mut();
        st.senders += 1;
        let slot = st.tx_at.add();
        Sender {
            shared: self.shared.clone(),
            slot,
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let core = &self.shared.core;
        waiters::wake_after(&core.state, |st, wake| {
            st.senders -= 1;
            st.tx_at.remove(self.slot);
            if st.senders == 0 {
                st.waiters.settle_all(State::Woken, wake);
                core.meta
                    .trace(Ev::Close, || Some("last sender dropped".to_string()));
            }
        });
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("broadcast", &self.shared.core.meta)
            .finish()
    }
}

/// Receives every message sent after it subscribed.
pub struct Receiver<T> {
    shared: Rc<Shared<T>>,
    /// Sequence number of the next message for this receiver.
    next: u64,
}

impl<T: Clone> Receiver<T> {
    /// The next message, [`RecvError::Lagged`] if some were lost to this
    /// receiver, or [`RecvError::Closed`]. Cancel-safe.
    ///
    /// # Panics
    ///
    /// When polled outside a simulation.
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        Recv {
            rx: self,
            ticket: None,
        }
        .await
    }

    /// The next message, if there is one now.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        match self.next_message() {
            Some(Ok(v)) => Ok(v),
            Some(Err(RecvError::Lagged(n))) => Err(TryRecvError::Lagged(n)),
            Some(Err(RecvError::Closed)) => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    /// What a receive gets now, or `None` if it must wait.
    fn next_message(&mut self) -> Option<Result<T, RecvError>> {
        let core = &self.shared.core;
        let st = core.state.borrow();
        if self.next < st.head {
            let lost = st.head - self.next;
            self.next = st.head;
            return Some(Err(RecvError::Lagged(lost)));
        }
        if self.next < st.next {
            let v = self.shared.buf.borrow()[(self.next - st.head) as usize].clone();
            self.next += 1;
            drop(st);
            core.meta.trace(Ev::Recv, || None);
            return Some(Ok(v));
        }
        (st.senders == 0).then_some(Err(RecvError::Closed))
    }

    /// A new receiver that sees messages sent from now on.
    pub fn resubscribe(&self) -> Receiver<T> {
        subscribe(&self.shared)
    }
}

fn subscribe<T>(shared: &Rc<Shared<T>>) -> Receiver<T> {
    let mut st = shared.core.state.borrow_mut();
    st.receivers += 1;
    Receiver {
        shared: shared.clone(),
        next: st.next,
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.core.state.borrow_mut().receivers -= 1;
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("broadcast", &self.shared.core.meta)
            .field("next", &self.next)
            .finish()
    }
}

struct Recv<'a, T> {
    rx: &'a mut Receiver<T>,
    ticket: Option<Ticket>,
}

impl<T: Clone> Future for Recv<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let core = this.rx.shared.core.clone();
        context::with("lockstep::sync::broadcast::Receiver::recv", |w| {
            if let Some(res) = this.rx.next_message() {
                core.state.borrow_mut().waiters.cancel(&mut this.ticket);
                return Poll::Ready(res);
            }
            let first = core.state.borrow_mut().waiters.wait_again(
                &mut this.ticket,
                cx,
                w.exec.current_key(),
                (),
            );
            block(w, core.clone(), WaitOp::Recv, first, || {
                Some("a message".to_string())
            })
        })
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        let core = &self.rx.shared.core;
        core.state.borrow_mut().waiters.cancel(&mut self.ticket);
    }
}
