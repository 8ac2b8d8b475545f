//! `JoinSet`: tokio's inside real tokio, lockstep's inside a simulation.

use std::fmt;
use std::future::Future;
use std::task::{Context, Poll};

use super::join::{AbortHandle, Id, JoinError, abortable};
use crate::local::Local;

/// A set of tasks whose results are collected in the order they finish.
/// Dropping the set aborts every task still in it.
///
/// Which world a set belongs to is decided when it is made: a set made
/// inside a simulation holds lockstep tasks.
pub struct JoinSet<T> {
    repr: Repr<T>,
}

enum Repr<T> {
    Real(tokio::task::JoinSet<T>),
    Sim(Local<lockstep::task::JoinSet<Option<T>>>),
}

type Joined<T> = Option<Result<T, JoinError>>;

fn from_sim<T>(
    (id, r): (
        lockstep::task::TaskId,
        Result<Option<T>, lockstep::task::JoinError>,
    ),
) -> (Id, Result<T, JoinError>) {
    let id = Id::sim(id);
    let r = match r {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(JoinError::cancelled(id)),
        Err(e) => Err(JoinError::sim(id, e)),
    };
    (id, r)
}

/// A set made outside any simulation, checked not to be spawned into from
/// inside one (its tasks would need a real runtime there).
#[track_caller]
fn real<'a, T>(set: &'a mut tokio::task::JoinSet<T>, api: &str) -> &'a mut tokio::task::JoinSet<T> {
    if crate::sim() {
        crate::mixed(api);
    }
    set
}

impl<T: 'static> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        let repr = if crate::sim() {
            Repr::Sim(Local::new(
                lockstep::task::JoinSet::new(),
                "tokio::task::JoinSet",
            ))
        } else {
            Repr::Real(tokio::task::JoinSet::new())
        };
        JoinSet { repr }
    }

    /// How many tasks are in the set.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Real(s) => s.len(),
            Repr::Sim(s) => s.get().len(),
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[track_caller]
    fn spawn_sim<F>(set: &mut Local<lockstep::task::JoinSet<Option<T>>>, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        let (future, state) = abortable(future);
        let handle = lockstep::task::spawn(future);
        let id = Id::sim(handle.id());
        set.get_mut().insert(handle);
        AbortHandle::sim(state, id)
    }

    /// Spawns a task into the set (tokio's bounds: `Send + 'static`).
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
        T: Send,
    {
        match &mut self.repr {
            Repr::Real(s) => AbortHandle::real(real(s, "JoinSet::spawn").spawn(future)),
            Repr::Sim(s) => Self::spawn_sim(s, future),
        }
    }

    /// Spawns a `!Send` task into the set (outside a simulation: on the
    /// current `LocalSet`).
    #[track_caller]
    pub fn spawn_local<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        match &mut self.repr {
            Repr::Real(s) => AbortHandle::real(real(s, "JoinSet::spawn_local").spawn_local(future)),
            Repr::Sim(s) => Self::spawn_sim(s, future),
        }
    }

    /// Runs blocking code as a task of the set (see
    /// [`spawn_blocking`](super::spawn_blocking)).
    #[track_caller]
    pub fn spawn_blocking<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send,
    {
        match &mut self.repr {
            Repr::Real(s) => {
                AbortHandle::real(real(s, "JoinSet::spawn_blocking").spawn_blocking(f))
            }
            Repr::Sim(s) => Self::spawn_sim(s, async move { f() }),
        }
    }

    /// Waits for the next task to finish and returns its result; `None`
    /// when the set is empty.
    pub async fn join_next(&mut self) -> Joined<T> {
        self.join_next_with_id().await.map(|r| r.map(|(_, v)| v))
    }

    /// [`join_next`](Self::join_next), with the finished task's id.
    pub async fn join_next_with_id(&mut self) -> Option<Result<(Id, T), JoinError>> {
        std::future::poll_fn(|cx| self.poll_join_next_with_id(cx)).await
    }

    /// Polls for the next finished task.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Joined<T>> {
        self.poll_join_next_with_id(cx)
            .map(|o| o.map(|r| r.map(|(_, v)| v)))
    }

    /// Polls for the next finished task, with its id.
    pub fn poll_join_next_with_id(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(Id, T), JoinError>>> {
        match &mut self.repr {
            Repr::Real(s) => s
                .poll_join_next_with_id(cx)
                .map(|o| o.map(|r| r.map(|(id, v)| (Id::real(id), v)).map_err(JoinError::real))),
            Repr::Sim(s) => s.get_mut().poll_join_next_with_id(cx).map(|o| {
                o.map(|pair| {
                    let (id, r) = from_sim(pair);
                    r.map(|v| (id, v))
                })
            }),
        }
    }

    /// A finished task's result, if one is ready now.
    pub fn try_join_next(&mut self) -> Joined<T> {
        match &mut self.repr {
            Repr::Real(s) => s.try_join_next().map(|r| r.map_err(JoinError::real)),
            Repr::Sim(s) => {
                let waker = std::task::Waker::noop();
                let mut cx = Context::from_waker(waker);
                match s.get_mut().poll_join_next_with_id(&mut cx) {
                    Poll::Ready(Some(pair)) => Some(from_sim(pair).1),
                    _ => None,
                }
            }
        }
    }

    /// Aborts every task in the set; they stay in it until joined.
    pub fn abort_all(&mut self) {
        match &mut self.repr {
            Repr::Real(s) => s.abort_all(),
            Repr::Sim(s) => s.get_mut().abort_all(),
        }
    }

    /// Removes every task from the set without aborting them.
    pub fn detach_all(&mut self) {
        match &mut self.repr {
            Repr::Real(s) => s.detach_all(),
            Repr::Sim(s) => s.get_mut().detach_all(),
        }
    }

    /// Aborts every task and waits for them all to end.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Waits for every task and returns their outputs in completion order.
    ///
    /// # Panics
    ///
    /// If a task panicked or was cancelled (as tokio's does).
    pub async fn join_all(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len());
        while let Some(r) = self.join_next().await {
            match r {
                Ok(v) => out.push(v),
                Err(e) => panic!("a task of JoinSet::join_all failed: {e}"),
            }
        }
        out
    }
}

impl<T: 'static> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let world = match &self.repr {
            Repr::Real(_) => "real",
            Repr::Sim(_) => "simulated",
        };
        f.debug_struct("JoinSet").field("world", &world).finish()
    }
}
