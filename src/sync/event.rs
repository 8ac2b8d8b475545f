//! [`Event`]: asyncio's `Event`, a flag that tasks wait to see set.
//!
//! `set` wakes every waiter, and a waiter woken by `set` returns even if
//! the event is cleared again before it runs (as in asyncio: the wake is
//! delivered, not re-checked). `wait` on an event that is set returns at
//! once. Anyone may set an event, so waiting on one never takes part in an
//! early deadlock report; the global one lists it.

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

/// A flag tasks can wait on: asyncio's `Event`.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::sync::Event;
/// use std::rc::Rc;
///
/// let outcome = Sim::new(1).run(async {
///     let ready = Rc::new(Event::named("ready"));
///     let r = ready.clone();
///     let waiter = spawn(async move {
///         r.wait().await;
///         Instant::now()
///     });
///     sleep(Duration::from_secs(2)).await;
///     ready.set();
///     waiter.await.unwrap()
/// });
/// assert_eq!(outcome.into_result().unwrap(), Instant::START + Duration::from_secs(2));
/// ```
pub struct Event {
    core: Rc<EventCore>,
}

struct EventCore {
    meta: Meta,
    state: RefCell<EventState>,
}

#[derive(Default)]
struct EventState {
    set: bool,
    waiters: WaitList<()>,
}

impl Event {
    /// An event that is not set; reports call it `event#N`.
    pub fn new() -> Event {
        Event::make(None)
    }

    /// An event that traces and reports call `event '<name>'`.
    pub fn named(name: impl Into<String>) -> Event {
        Event::make(Some(name.into()))
    }

    fn make(name: Option<String>) -> Event {
        Event {
            core: Rc::new(EventCore {
                meta: Meta::new(Kind::Event, name),
                state: RefCell::default(),
            }),
        }
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        let core = &self.core;
        waiters::wake_after(&core.state, |st, wake| {
            if st.set {
                return;
            }
            st.set = true;
            st.waiters.settle_all(State::Woken, wake);
            let woken = wake.len();
            core.meta
                .trace(Ev::Notify, || Some(format!("set, woke {woken}")));
        });
    }

    /// Clears the flag: later `wait`s wait again.
    pub fn clear(&self) {
        self.core.state.borrow_mut().set = false;
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.core.state.borrow().set
    }

    /// Waits until the flag is set (returns at once if it is).
    /// Cancel-safe: a dropped wait leaves nothing behind.
    ///
    /// # Panics
    ///
    /// When polled outside a simulation.
    pub fn wait(&self) -> EventWait<'_> {
        EventWait {
            event: self,
            ticket: None,
        }
    }

    /// The name given with [`Event::named`].
    pub fn name(&self) -> Option<&str> {
        self.core.meta.name()
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl Tracked for EventCore {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn describe(&self, _: WaitOp, _: &Executor) -> String {
        let st = self.state.borrow();
        format!(
            "{} (not set; {} waiting)",
            self.meta.label(),
            st.waiters.len()
        )
    }
}

/// The future of [`Event::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait<'a> {
    event: &'a Event,
    ticket: Option<Ticket>,
}

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let event = self.event;
        let core = &event.core;
        context::with("lockstep::sync::Event::wait", |w| {
            let mut st = core.state.borrow_mut();
            let turn = match self.ticket {
                None if st.set => Turn::Now,
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

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        self.event
            .core
            .state
            .borrow_mut()
            .waiters
            .cancel(&mut self.ticket);
    }
}

impl fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("event", &self.event.core.meta)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.core.meta)
            .field("set", &self.is_set())
            .finish()
    }
}
