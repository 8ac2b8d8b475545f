//! [`watch`](self): a single value that receivers watch for changes, with
//! tokio's API.
//!
//! The sender replaces the value; each receiver remembers the version it
//! last saw, and `changed().await` returns once a newer one is there (at
//! once if one already is). Receivers made by [`channel`] and
//! [`Sender::subscribe`] start having seen the current value. Intermediate
//! values may be skipped: a watch delivers the latest, not every one.
//! `changed` is cancel-safe. Once the sender is gone, `changed` fails with
//! [`RecvError`] (after any change not yet seen).
//!
//! `borrow()` returns a `std::cell::Ref`: drop it before awaiting, or a
//! send in the meantime panics (with a message that says so).

use std::cell::{Ref, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

pub use super::mpsc::SendError;
use super::places::{self, At};
use super::resource::{Ev, Kind, Meta, Release, Tracked, WaitOp, block};
use super::waiters::{self, State, Ticket, WaitList};
use crate::runtime::context;
use crate::runtime::executor::Executor;
use crate::runtime::waker::TaskKey;

/// A watch channel holding `init`; reports call it `watch#N`.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::sync::watch;
///
/// let outcome = Sim::new(5).run(async {
///     let (tx, mut rx) = watch::channel_named("config", 1);
///     spawn(async move {
///         sleep(Duration::from_secs(1)).await;
///         tx.send(2).unwrap();
///     });
///     rx.changed().await.unwrap();
///     let seen = *rx.borrow_and_update();
///     (seen, rx.changed().await.is_err(), Instant::now())
/// });
/// let (seen, closed, at) = outcome.into_result().unwrap();
/// assert_eq!((seen, closed), (2, true));
/// assert_eq!(at, Instant::START + Duration::from_secs(1));
/// ```
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    make(None, init)
}

/// A watch channel that traces and reports call `watch '<name>'`.
pub fn channel_named<T>(name: impl Into<String>, init: T) -> (Sender<T>, Receiver<T>) {
    make(Some(name.into()), init)
}

fn make<T>(name: Option<String>, init: T) -> (Sender<T>, Receiver<T>) {
    let shared = Rc::new(Shared {
        core: Rc::new(WatchCore {
            meta: Meta::new(Kind::Watch, name),
            state: RefCell::new(WatchState {
                version: 0,
                tx_alive: true,
                receivers: 1,
                waiters: WaitList::default(),
                tx_at: At::Nowhere,
            }),
        }),
        value: RefCell::new(init),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared, seen: 0 },
    )
}

struct Shared<T> {
    core: Rc<WatchCore>,
    value: RefCell<T>,
}

struct WatchCore {
    meta: Meta,
    state: RefCell<WatchState>,
}

struct WatchState {
    version: u64,
    tx_alive: bool,
    receivers: usize,
    waiters: WaitList<()>,
    /// Where the sender is (see `places.rs`).
    tx_at: At,
}

/// The error of `changed` once the sender is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError(());

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the sender was dropped")
    }
}

impl std::error::Error for RecvError {}

impl Tracked for WatchCore {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    /// A wait for a change ends when the sender sends or goes: by the task
    /// holding it, if it is placed.
    fn release(&self, op: WaitOp, out: &mut Vec<TaskKey>) -> Release {
        let st = self.state.borrow();
        if op == WaitOp::Changed && st.tx_alive && places::holder(st.tx_at, out) {
            Release::Holders
        } else {
            Release::Anyone
        }
    }

    fn held_as(&self, _: TaskKey, _: WaitOp) -> String {
        format!("the sender of {}", self.meta.label())
    }

    fn describe(&self, _: WaitOp, _: &Executor) -> String {
        format!(
            "a change on {} (no new value; the sender is alive)",
            self.meta.label()
        )
    }
}

/// Sets the value.
pub struct Sender<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Replaces the value and tells the receivers. Fails, giving the value
    /// back, if no receiver is alive (the value is then not stored).
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.core.state.borrow().receivers == 0 {
            return Err(SendError(value));
        }
        self.send_replace(value);
        Ok(())
    }

    /// Replaces the value whether or not anyone watches; returns the old.
    pub fn send_replace(&self, value: T) -> T {
        let mut old = Some(value);
        self.send_modify(|v| {
            old = old.take().map(|new| std::mem::replace(v, new));
        });
        old.expect("send_modify ran the closure")
    }

    /// Changes the value in place and tells the receivers.
    pub fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        {
            let Ok(mut v) = self.shared.value.try_borrow_mut() else {
                panic!(
                    "{}: a value was sent while a `borrow()` of it was held; drop the \
                     borrow before awaiting",
                    self.shared.core.meta.label()
                )
            };
            modify(&mut v);
        }
        let core = &self.shared.core;
        places::moved_with::<T>();
        waiters::wake_after(&core.state, |st, wake| {
            st.tx_at.touch();
            st.version += 1;
            st.waiters.settle_all(State::Woken, wake);
            core.meta.trace(Ev::Send, || None);
        });
    }

    /// The current value.
    pub fn borrow(&self) -> Ref<'_, T> {
        self.shared.value.borrow()
    }

    /// A new receiver that has seen the current value.
    pub fn subscribe(&self) -> Receiver<T> {
        let mut st = self.shared.core.state.borrow_mut();
        st.receivers += 1;
        Receiver {
            shared: self.shared.clone(),
            seen: st.version,
        }
    }

    /// Receivers alive.
    pub fn receiver_count(&self) -> usize {
        self.shared.core.state.borrow().receivers
    }

    /// Whether every receiver is gone.
    pub fn is_closed(&self) -> bool {
        let mut st = self.shared.core.state.borrow_mut();
        st.tx_at.touch();
        st.receivers == 0
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let core = &self.shared.core;
        waiters::wake_after(&core.state, |st, wake| {
            st.tx_alive = false;
            st.waiters.settle_all(State::Woken, wake);
            core.meta
                .trace(Ev::Close, || Some("sender dropped".to_string()));
        });
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("watch", &self.shared.core.meta)
            .finish()
    }
}

/// Watches the value.
pub struct Receiver<T> {
    shared: Rc<Shared<T>>,
    /// The version this receiver has seen.
    seen: u64,
}

impl<T> Receiver<T> {
    /// The current value, without marking it seen.
    pub fn borrow(&self) -> Ref<'_, T> {
        self.shared.value.borrow()
    }

    /// The current value, marking it seen.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        self.seen = self.shared.core.state.borrow().version;
        self.shared.value.borrow()
    }

    /// Whether a value this receiver has not seen is there; `Err` if the
    /// sender is gone.
    pub fn has_changed(&self) -> Result<bool, RecvError> {
        let st = self.shared.core.state.borrow();
        if !st.tx_alive {
            return Err(RecvError(()));
        }
        Ok(st.version != self.seen)
    }

    /// Waits for a value this receiver has not seen, and marks it seen.
    /// Fails once the sender is gone and every change was seen.
    /// Cancel-safe.
    ///
    /// # Panics
    ///
    /// When polled outside a simulation.
    pub async fn changed(&mut self) -> Result<(), RecvError> {
        Changed {
            rx: self,
            ticket: None,
        }
        .await
    }

    /// Marks the current value seen.
    pub fn mark_unchanged(&mut self) {
        self.seen = self.shared.core.state.borrow().version;
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.core.state.borrow_mut().receivers += 1;
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
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
            .field("watch", &self.shared.core.meta)
            .field("seen", &self.seen)
            .finish()
    }
}

struct Changed<'a, T> {
    rx: &'a mut Receiver<T>,
    ticket: Option<Ticket>,
}

impl<T> Future for Changed<'_, T> {
    type Output = Result<(), RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let core = this.rx.shared.core.clone();
        context::with("lockstep::sync::watch::Receiver::changed", |w| {
            let mut st = core.state.borrow_mut();
            let ready = if st.version != this.rx.seen {
                this.rx.seen = st.version;
                Some(Ok(()))
            } else if !st.tx_alive {
                Some(Err(RecvError(())))
            } else {
                None
            };
            if let Some(res) = ready {
                st.waiters.cancel(&mut this.ticket);
                return Poll::Ready(res);
            }
            let first = st
                .waiters
                .wait_again(&mut this.ticket, cx, w.exec.current_key(), ());
            drop(st);
            block(w, core.clone(), WaitOp::Changed, first, || {
                Some("a change".to_string())
            })
        })
    }
}

impl<T> Drop for Changed<'_, T> {
    fn drop(&mut self) {
        let core = &self.rx.shared.core;
        core.state.borrow_mut().waiters.cancel(&mut self.ticket);
    }
}
