//! [`Notify`]: tokio's `Notify`, a wake-up without data.
//!
//! `notify_one` wakes the first task in line, or, if nobody waits, stores
//! one permit that the next `notified().await` consumes at once.
//! `notify_waiters` wakes every task waiting (and every `Notified` future
//! created before the call, even if not yet polled), storing nothing.
//!
//! Cancellation: a `Notified` future dropped after `notify_one` chose it,
//! but before it ran, passes the notification on (to the next in line, or
//! back as the stored permit), so no wake-up is lost.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::resource::{Ev, Kind, Meta, Tracked, WaitOp, block};
use super::waiters::{self, State, Ticket, Turn, WaitList};
use crate::runtime::context;
use crate::runtime::executor::Executor;

/// Notifies one task or all waiting tasks of an event, without data.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::sync::Notify;
/// use std::rc::Rc;
///
/// let outcome = Sim::new(4).run(async {
///     let notify = Rc::new(Notify::new());
///     notify.notify_one(); // nobody waits yet: stored as a permit
///     notify.notified().await; // consumes it at once
///     let n = notify.clone();
///     let waiter = spawn(async move { n.notified().await });
///     sleep(Duration::from_secs(1)).await;
///     notify.notify_one();
///     waiter.await.unwrap();
///     Instant::now()
/// });
/// assert_eq!(outcome.into_result().unwrap(), Instant::START + Duration::from_secs(1));
/// ```
pub struct Notify {
    core: Rc<NotifyCore>,
}

struct NotifyCore {
    meta: Meta,
    state: RefCell<NotifyState>,
}

#[derive(Default)]
struct NotifyState {
    permit: bool,
    /// Bumped by every `notify_waiters`.
    epoch: u64,
    waiters: WaitList<()>,
}

impl Notify {
    /// A `Notify` with no stored permit; reports call it `notify#N`.
    pub fn new() -> Notify {
        Notify::make(None)
    }

    /// A `Notify` that traces and reports call `notify '<name>'`.
    pub fn named(name: impl Into<String>) -> Notify {
        Notify::make(Some(name.into()))
    }

    fn make(name: Option<String>) -> Notify {
        Notify {
            core: Rc::new(NotifyCore {
                meta: Meta::new(Kind::Notify, name),
                state: RefCell::default(),
            }),
        }
    }

    /// Waits for a notification. Cancel-safe.
    ///
    /// # Panics
    ///
    /// When polled outside a simulation.
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            epoch: self.core.state.borrow().epoch,
            ticket: None,
        }
    }

    /// Wakes the first waiting task, or stores a permit for the next one.
    pub fn notify_one(&self) {
        self.core.notify_one();
    }

    /// Wakes every waiting task; stores nothing.
    pub fn notify_waiters(&self) {
        let core = &self.core;
        waiters::wake_after(&core.state, |st, wake| {
            st.epoch += 1;
            st.waiters.settle_all(State::Woken, wake);
            let woken = wake.len();
            core.meta
                .trace(Ev::Notify, || Some(format!("notify_waiters, woke {woken}")));
        });
    }

    /// The name given with [`Notify::named`].
    pub fn name(&self) -> Option<&str> {
        self.core.meta.name()
    }
}

impl NotifyCore {
    fn notify_one(&self) {
        waiters::wake_after(&self.state, |st, wake| {
            let to = match st.waiters.front() {
                Some(next) => {
                    wake.extend(st.waiters.settle(next.ticket, State::Granted));
                    next.task
                }
                None => {
                    st.permit = true;
                    None
                }
            };
            let what = if to.is_some() { "woke 1" } else { "stored" };
            self.meta
                .trace(Ev::Notify, || Some(format!("notify_one, {what}")));
        });
    }
}

impl Default for Notify {
    fn default() -> Self {
        Notify::new()
    }
}

impl Tracked for NotifyCore {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn describe(&self, _: WaitOp, _: &Executor) -> String {
        let st = self.state.borrow();
        format!("{} ({} waiting)", self.meta.label(), st.waiters.len())
    }
}

/// The future of [`Notify::notified`].
#[must_use = "futures do nothing unless awaited"]
pub struct Notified<'a> {
    notify: &'a Notify,
    /// The `notify_waiters` epoch when it was created.
    epoch: u64,
    ticket: Option<Ticket>,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let notify = self.notify;
        let core = &notify.core;
        context::with("lockstep::sync::Notify::notified", |w| {
            let mut st = core.state.borrow_mut();
            let turn = match self.ticket {
                None if st.permit => {
                    st.permit = false;
                    Turn::Now
                }
                None if st.epoch != self.epoch => Turn::Now,
                _ => st
                    .waiters
                    .poll_turn(&mut self.ticket, cx, w.exec.current_key(), ()),
            };
            drop(st);
            let Turn::Waiting { first } = turn else {
                return Poll::Ready(());
            };
            block(w, core.clone(), WaitOp::Signal, first, || None)
        })
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        let core = &self.notify.core;
        let state = core.state.borrow_mut().waiters.cancel(&mut self.ticket);
        if state == Some(State::Granted) {
            // Chosen by `notify_one` but never ran: pass it on.
            core.notify_one();
        }
    }
}

impl fmt::Debug for Notified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notified")
            .field("notify", &self.notify.core.meta)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notify")
            .field("name", &self.core.meta)
            .finish_non_exhaustive()
    }
}
