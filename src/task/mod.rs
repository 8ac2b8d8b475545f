//! Tasks: [`spawn`], [`Builder`], [`JoinHandle`], [`yield_now`], [`JoinSet`].
//!
//! A task is a future the executor polls to completion. Tasks need not be
//! `Send` (a simulation is one thread, so `Rc` and `RefCell` are fine inside
//! them). Every task has a [`TaskId`] (its number in spawn order, the main
//! task being `#0`), an optional name, and a spawn site: the `file:line` of
//! the `spawn` call, captured with `#[track_caller]`, so that every report
//! can say which `spawn` a task came from.
//!
//! A panic inside a task is caught: its `JoinHandle` yields
//! [`JoinError::Panicked`]. A panic nobody observes (the handle was dropped,
//! or never awaited) fails the run. Aborting a task drops its future at once,
//! so cleanup in `Drop` guards runs then, the way cancellation cleanup runs
//! in asyncio's `finally` blocks.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};

mod cell;
mod join;
mod join_set;
mod output;
mod slab;

pub(crate) use cell::{State as TaskState, TaskRef};
pub(crate) use join::propagate;
pub use join::{JoinError, JoinHandle};
pub use join_set::JoinSet;
pub(crate) use join_set::SetLink;

use crate::runtime::context;

/// A task's id: its number in spawn order within the run (the main task is
/// `#0`). Unique within a run and never reused, so it also serves as the
/// generation of the task-table slot the task occupies. Ids restart at 0 in
/// every run, so traces do not depend on what ran before.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub(crate) u32);

impl TaskId {
    /// The main task (the future given to `Sim::run`).
    pub const MAIN: TaskId = TaskId(0);

    /// The number.
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("#{}", self.0))
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Spawns a task; it starts running at the executor's next choice.
///
/// A task spawned by a task of a simulated [host](crate::net::Host) runs on
/// that host too: it is dropped when the host crashes and held while it is
/// paused.
///
/// ```
/// use lockstep::prelude::*;
///
/// let outcome = Sim::new(1).run(async {
///     let handle = spawn(async { 6 * 7 });
///     handle.await.unwrap()
/// });
/// assert_eq!(outcome.into_result().unwrap(), 42);
/// ```
///
/// # Panics
///
/// Outside a simulation.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn_at(future, None, false, Location::caller())
}

#[track_caller]
#[inline]
pub(crate) fn spawn_at<F>(
    future: F,
    name: Option<Arc<str>>,
    daemon: bool,
    site: &'static Location<'static>,
) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    context::with("lockstep::spawn", |w| {
        let host = w.exec.current_host();
        spawn_in(w, future, name, daemon, host, site)
    })
}

/// Spawns in a given group (a host; `None`: in none), whatever the current
/// task's group is.
pub(crate) fn spawn_in<F>(
    w: &crate::runtime::world::World,
    future: F,
    name: Option<Arc<str>>,
    daemon: bool,
    host: Option<crate::runtime::ext::Group>,
    site: &'static Location<'static>,
) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let (task, join) = cell::TaskRef::new(future);
    let key = w.exec.spawn(w, task, name, daemon, host, site);
    // The layers' spawn hooks (the parent's channel handles and sockets may
    // have moved into the child).
    w.layers_spawned(key);
    JoinHandle::new(join, key)
}

/// Configures a task before spawning it.
///
/// ```
/// use lockstep::prelude::*;
///
/// let outcome = Sim::new(1).run(async {
///     lockstep::task::Builder::new()
///         .name("heartbeat")
///         .daemon(true)          // may outlive the main task without a leak report
///         .spawn(async {
///             loop {
///                 sleep(Duration::from_secs(1)).await;
///             }
///         });
///     sleep(Duration::from_secs(3)).await;
/// });
/// assert!(outcome.is_ok());
/// ```
#[derive(Debug, Default, Clone)]
#[must_use = "a Builder does nothing until `spawn` is called"]
pub struct Builder {
    name: Option<Arc<str>>,
    daemon: bool,
}

impl Builder {
    /// A builder for an unnamed, non-daemon task.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the task; traces and reports use the name.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(Arc::from(name.into()));
        self
    }

    /// Marks the task as a daemon: it may still be running when the main
    /// task returns without being reported as leaked (a heartbeat, a
    /// background flusher).
    pub fn daemon(mut self, daemon: bool) -> Builder {
        self.daemon = daemon;
        self
    }

    /// Spawns the task.
    ///
    /// # Panics
    ///
    /// Outside a simulation.
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        spawn_at(future, self.name, self.daemon, Location::caller())
    }
}

/// The id of the task being polled.
///
/// # Panics
///
/// Outside a simulation, or outside a task (in a timer callback).
#[track_caller]
pub fn id() -> TaskId {
    try_id().expect("lockstep::task::id() was called outside a lockstep task")
}

/// The id of the task being polled, if any.
pub fn try_id() -> Option<TaskId> {
    context::try_with(|w| w.exec.current_id()).flatten()
}

/// Yields: the task goes back to the ready set and the executor picks the
/// next task to run (possibly this one again). Each `yield_now().await` is a
/// point where other tasks may interleave, which is where races live.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // The task's own waker (the usual case) wakes it directly; any
        // other (a combinator's) is woken as given.
        let woken = context::try_with(|w| w.exec.yield_current(w, cx.waker()));
        if woken != Some(true) {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
