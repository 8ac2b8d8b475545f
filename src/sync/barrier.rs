//! [`Barrier`]: tokio's `Barrier`, where `n` tasks wait for each other.
//!
//! The `n`-th task to arrive releases everyone waiting and is the
//! generation's leader; the barrier then starts over. A task whose wait is
//! dropped before the barrier opened (aborted, timed out) withdraws its
//! arrival, so the barrier still needs `n` live arrivals: no stale waiter
//! is counted.

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

/// Lets `n` tasks wait until all of them have arrived.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::sync::Barrier;
/// use std::rc::Rc;
///
/// let outcome = Sim::new(8).run(async {
///     let barrier = Rc::new(Barrier::named("start", 3));
///     let tasks: Vec<_> = (1..=3u64)
///         .map(|i| {
///             let b = barrier.clone();
///             spawn(async move {
///                 sleep(Duration::from_secs(i)).await;
///                 let leader = b.wait().await.is_leader();
///                 (leader, Instant::now())
///             })
///         })
///         .collect();
///     let mut out = Vec::new();
///     for t in tasks {
///         out.push(t.await.unwrap());
///     }
///     out
/// });
/// let three = Instant::START + Duration::from_secs(3);
/// // Everyone leaves when the last arrives; the last one is the leader.
/// assert_eq!(outcome.into_result().unwrap(), [(false, three), (false, three), (true, three)]);
/// ```
pub struct Barrier {
    core: Rc<BarrierCore>,
}

struct BarrierCore {
    meta: Meta,
    n: usize,
    state: RefCell<BarrierState>,
}

#[derive(Default)]
struct BarrierState {
    arrived: usize,
    waiters: WaitList<()>,
}

/// What [`Barrier::wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this task's arrival opened the barrier (exactly one per
    /// generation).
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` tasks (`0` acts like `1`); reports call it
    /// `barrier#N`.
    pub fn new(n: usize) -> Barrier {
        Barrier::make(None, n)
    }

    /// A barrier that traces and reports call `barrier '<name>'`.
    pub fn named(name: impl Into<String>, n: usize) -> Barrier {
        Barrier::make(Some(name.into()), n)
    }

    fn make(name: Option<String>, n: usize) -> Barrier {
        Barrier {
            core: Rc::new(BarrierCore {
                meta: Meta::new(Kind::Barrier, name),
                n: n.max(1),
                state: RefCell::default(),
            }),
        }
    }

    /// Arrives and waits for the others. Cancel-safe: a wait dropped before
    /// the barrier opens withdraws its arrival.
    ///
    /// # Panics
    ///
    /// When polled outside a simulation.
    pub fn wait(&self) -> BarrierWait<'_> {
        BarrierWait {
            barrier: self,
            ticket: None,
        }
    }

    /// The name given with [`Barrier::named`].
    pub fn name(&self) -> Option<&str> {
        self.core.meta.name()
    }
}

impl Tracked for BarrierCore {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn describe(&self, _: WaitOp, _: &Executor) -> String {
        let st = self.state.borrow();
        format!(
            "{} ({} of {} arrived)",
            self.meta.label(),
            st.arrived,
            self.n
        )
    }
}

/// The future of [`Barrier::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct BarrierWait<'a> {
    barrier: &'a Barrier,
    ticket: Option<Ticket>,
}

impl Future for BarrierWait<'_> {
    type Output = BarrierWaitResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<BarrierWaitResult> {
        let barrier = self.barrier;
        let core = &barrier.core;
        context::with("lockstep::sync::Barrier::wait", |w| {
            let opened = waiters::wake_after(&core.state, |st, wake| {
                if self.ticket.is_some() {
                    return None;
                }
                st.arrived += 1;
                if st.arrived < core.n {
                    return None;
                }
                st.arrived = 0;
                st.waiters.settle_all(State::Woken, wake);
                core.meta
                    .trace(Ev::Notify, || Some(format!("opened, woke {}", wake.len())));
                Some(BarrierWaitResult(true))
            });
            if let Some(leader) = opened {
                return Poll::Ready(leader);
            }
            let mut st = core.state.borrow_mut();
            let turn = st
                .waiters
                .poll_turn(&mut self.ticket, cx, w.exec.current_key(), ());
            let arrived = st.arrived;
            drop(st);
            let Turn::Waiting { first } = turn else {
                return Poll::Ready(BarrierWaitResult(false));
            };
            block(w, core.clone(), WaitOp::Signal, first, || {
                Some(format!("{arrived} of {} arrived", core.n))
            })
        })
    }
}

impl Drop for BarrierWait<'_> {
    fn drop(&mut self) {
        let mut st = self.barrier.core.state.borrow_mut();
        if st.waiters.cancel(&mut self.ticket) == Some(State::Queued) {
            st.arrived -= 1;
        }
    }
}

impl fmt::Debug for BarrierWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWait")
            .field("barrier", &self.barrier.core.meta)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("name", &self.core.meta)
            .field("n", &self.core.n)
            .finish_non_exhaustive()
    }
}
