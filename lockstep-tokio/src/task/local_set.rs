//! `LocalSet`: tokio's outside a simulation; inside one, a thin handle on
//! lockstep's executor, which already runs `!Send` tasks (a simulation is
//! one thread).

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::JoinHandle;
use crate::local::Local;

/// A set of `!Send` tasks run on the current thread.
///
/// Inside a simulation its tasks are ordinary lockstep tasks (scheduled
/// with all others, from the seed); awaiting the set waits until every
/// task spawned through it has ended, as tokio's does.
pub struct LocalSet {
    repr: Repr,
}

enum Repr {
    Real(tokio::task::LocalSet),
    Sim(Local<Rc<Tracker>>),
}

/// How many of a simulated set's tasks are alive, and who waits for none.
#[derive(Default)]
struct Tracker {
    live: Cell<usize>,
    waiter: Cell<Option<Waker>>,
}

/// Held by each task of a simulated set; counts it out when the task ends
/// (finished, panicked, or aborted: its future is dropped in every case).
struct Member(Rc<Tracker>);

impl Drop for Member {
    fn drop(&mut self) {
        let live = self.0.live.get() - 1;
        self.0.live.set(live);
        if live == 0 {
            if let Some(w) = self.0.waiter.take() {
                w.wake();
            }
        }
    }
}

impl LocalSet {
    /// An empty set, of the world it is made in.
    pub fn new() -> LocalSet {
        let repr = if crate::sim() {
            Repr::Sim(Local::new(Rc::default(), "tokio::task::LocalSet"))
        } else {
            Repr::Real(tokio::task::LocalSet::new())
        };
        LocalSet { repr }
    }

    /// Spawns a `!Send` task on the set.
    #[track_caller]
    pub fn spawn_local<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        match &self.repr {
            Repr::Real(set) => JoinHandle::real(set.spawn_local(future)),
            Repr::Sim(tracker) => {
                let tracker = tracker.get();
                tracker.live.set(tracker.live.get() + 1);
                let member = Member(tracker.clone());
                JoinHandle::spawn_sim(
                    async move {
                        let _member = member;
                        future.await
                    },
                    None,
                )
            }
        }
    }

    /// Runs `future` with the set's tasks running alongside.
    pub async fn run_until<F: Future>(&self, future: F) -> F::Output {
        match &self.repr {
            Repr::Real(set) => set.run_until(future).await,
            Repr::Sim(_) => future.await,
        }
    }

    /// Runs `future` on `rt` with the set's tasks (real tokio only).
    #[track_caller]
    pub fn block_on<F: Future>(&self, rt: &crate::runtime::Runtime, future: F) -> F::Output {
        match &self.repr {
            Repr::Real(set) => set.block_on(rt.inner(), future),
            Repr::Sim(_) => crate::unsupported("tokio::task::LocalSet::block_on"),
        }
    }
}

impl Default for LocalSet {
    fn default() -> Self {
        LocalSet::new()
    }
}

impl Future for LocalSet {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.get_mut().repr {
            Repr::Real(set) => Pin::new(set).poll(cx),
            Repr::Sim(tracker) => {
                let tracker = tracker.get();
                if tracker.live.get() == 0 {
                    return Poll::Ready(());
                }
                tracker.waiter.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}

impl fmt::Debug for LocalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSet").finish_non_exhaustive()
    }
}
