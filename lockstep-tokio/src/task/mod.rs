//! Tasks: [`spawn`], [`JoinHandle`], [`JoinSet`], [`yield_now`],
//! [`spawn_blocking`], [`spawn_local`], [`AbortHandle`], [`LocalSet`].
//!
//! Inside a simulation a task is a lockstep task: it runs when the seeded
//! scheduler picks it, its spawn site (the caller's `file:line`) is in the
//! trace, a panic nobody observes fails the run, and a task spawned by a
//! task of a simulated host belongs to that host (it dies with a crash).
//! Outside one it is a tokio task.

use std::future::Future;

mod join;
mod join_set;
mod local_set;

pub use join::{AbortHandle, Id, JoinError, JoinHandle};
pub use join_set::JoinSet;
pub use local_set::LocalSet;

/// Spawns a task. Same bounds as tokio's (`Send + 'static`), so the code
/// still compiles against tokio; inside a simulation the task runs on the
/// simulation's one thread all the same.
///
/// # Panics
///
/// Outside a simulation, when no tokio runtime is running (as tokio does).
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if crate::sim() {
        JoinHandle::spawn_sim(future, None)
    } else {
        JoinHandle::real(tokio::task::spawn(future))
    }
}

/// Spawns a `!Send` task on the current thread: inside a simulation, any
/// task (a simulation is one thread); outside, on tokio's `LocalSet`.
///
/// # Panics
///
/// Outside a simulation, when not inside a tokio `LocalSet` (as tokio does).
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    if crate::sim() {
        JoinHandle::spawn_sim(future, None)
    } else {
        JoinHandle::real(tokio::task::spawn_local(future))
    }
}

/// Runs blocking code. Inside a simulation it runs on the simulation's
/// thread, in a task named `blocking`, when the scheduler picks that task:
/// virtual time does not pass while it runs (so it must not wait on
/// anything real). Outside, on tokio's blocking pool.
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    if crate::sim() {
        JoinHandle::spawn_sim(async move { f() }, Some("blocking"))
    } else {
        JoinHandle::real(tokio::task::spawn_blocking(f))
    }
}

/// Runs blocking code in place on a multi-threaded tokio runtime.
///
/// # Panics
///
/// Inside a simulation (there is no other worker to hand the runtime to),
/// with a message naming this function.
#[cfg(feature = "rt-multi-thread")]
#[track_caller]
pub fn block_in_place<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    if crate::sim() {
        crate::unsupported("tokio::task::block_in_place");
    }
    tokio::task::block_in_place(f)
}

/// Gives other tasks a turn. Inside a simulation the scheduler then picks
/// the next task from the seed: every `yield_now().await` is a point where
/// another interleaving may be explored.
pub async fn yield_now() {
    if crate::sim() {
        lockstep::task::yield_now().await
    } else {
        tokio::task::yield_now().await
    }
}

/// The id of the running task.
///
/// # Panics
///
/// Outside any task.
#[track_caller]
pub fn id() -> Id {
    match try_id() {
        Some(id) => id,
        None => panic!("tokio::task::id() was called outside a task"),
    }
}

/// The id of the running task, if any.
pub fn try_id() -> Option<Id> {
    if crate::sim() {
        lockstep::task::try_id().map(Id::sim)
    } else {
        tokio::task::try_id().map(Id::real)
    }
}
