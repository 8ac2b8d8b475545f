//! `JoinSet`: a collection of tasks, joined in completion order.
//!
//! Each task in a set is linked to the set's shared completion queue: when it
//! ends (however it ends) it pushes its index there and wakes the set's
//! waiter. `join_next` pops that queue, so results come back in the order the
//! tasks finished, in O(1) per task, however large the set. The executor
//! keeps the links (beside its task table, not in every task's cell) and
//! notifies a task's link right after its joiner's wake.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::{JoinError, JoinHandle, TaskId};
use crate::runtime::context;
use crate::runtime::executor::Waiting;

#[derive(Default)]
struct Shared {
    done: RefCell<VecDeque<usize>>,
    waker: Cell<Option<Waker>>,
}

/// The link from a task to the set it belongs to.
pub(crate) struct SetLink {
    shared: Rc<Shared>,
    index: usize,
}

impl SetLink {
    pub(crate) fn notify(self) {
        self.shared.done.borrow_mut().push_back(self.index);
        if let Some(w) = self.shared.waker.take() {
            w.wake();
        }
    }
}

/// A set of tasks whose results are collected in the order they finish.
///
/// Dropping the set aborts every task still in it.
///
/// ```
/// use lockstep::prelude::*;
///
/// let outcome = Sim::new(5).run(async {
///     let mut set = JoinSet::new();
///     for secs in [3, 1, 2] {
///         set.spawn(async move {
///             sleep(Duration::from_secs(secs)).await;
///             secs
///         });
///     }
///     let mut order = Vec::new();
///     while let Some(res) = set.join_next().await {
///         order.push(res.unwrap());
///     }
///     order
/// });
/// assert_eq!(outcome.into_result().unwrap(), [1, 2, 3]);
/// ```
pub struct JoinSet<T> {
    handles: Vec<Option<JoinHandle<T>>>,
    free: Vec<usize>,
    len: usize,
    shared: Rc<Shared>,
}

impl<T: 'static> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            handles: Vec::new(),
            free: Vec::new(),
            len: 0,
            shared: Rc::default(),
        }
    }

    /// Spawns a task into the set.
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F) -> TaskId
    where
        F: Future<Output = T> + 'static,
    {
        let handle = super::spawn_at(future, None, false, Location::caller());
        self.insert(handle)
    }

    /// Adds an already spawned task (for instance one made with
    /// [`Builder`](super::Builder), to give it a name).
    pub fn insert(&mut self, handle: JoinHandle<T>) -> TaskId {
        let id = handle.id();
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.handles.push(None);
                self.handles.len() - 1
            }
        };
        let link = SetLink {
            shared: self.shared.clone(),
            index,
        };
        // A task that already ended (or one outside any run) tells the set
        // at once.
        let unlinked = if handle.is_finished() {
            Some(link)
        } else {
            context::try_with(|w| w.exec.link_to_set(handle.key(), link)).unwrap_or(None)
        };
        if let Some(link) = unlinked {
            link.notify();
        }
        self.handles[index] = Some(handle);
        self.len += 1;
        id
    }

    /// Number of tasks in the set (finished ones count until joined).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Waits for the next task to finish and returns its result; `None` when
    /// the set is empty.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        std::future::poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Like [`join_next`](Self::join_next), with the id of the task that
    /// finished.
    pub async fn join_next_with_id(&mut self) -> Option<(TaskId, Result<T, JoinError>)> {
        std::future::poll_fn(|cx| self.poll_join_next_with_id(cx)).await
    }

    /// The next result if a task has already finished, without waiting.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        Some(self.try_join_next_with_id()?.1)
    }

    fn try_join_next_with_id(&mut self) -> Option<(TaskId, Result<T, JoinError>)> {
        let index = self.shared.done.borrow_mut().pop_front()?;
        Some(self.take(index))
    }

    /// Polls for the next finished task.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.poll_join_next_with_id(cx)
            .map(|next| next.map(|(_, res)| res))
    }

    /// Polls for the next finished task, with its id.
    pub fn poll_join_next_with_id(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(TaskId, Result<T, JoinError>)>> {
        if let Some(res) = self.try_join_next_with_id() {
            return Poll::Ready(Some(res));
        }
        if self.len == 0 {
            return Poll::Ready(None);
        }
        self.shared.waker.set(Some(cx.waker().clone()));
        context::try_with(|w| w.exec.note_waiting(Waiting::JoinSet(self.len)));
        Poll::Pending
    }

    fn take(&mut self, index: usize) -> (TaskId, Result<T, JoinError>) {
        let handle = self.handles[index]
            .take()
            .expect("a finished task of a JoinSet is still in it");
        self.free.push(index);
        self.len -= 1;
        let mut cx = Context::from_waker(Waker::noop());
        match handle.raw().poll_join(&mut cx) {
            Poll::Ready(res) => (handle.id(), res),
            Poll::Pending => unreachable!("a task reported finished by its JoinSet link"),
        }
    }

    /// Removes every task from the set without aborting it: they keep
    /// running, detached (as if their `JoinHandle`s were dropped). Detaching
    /// is deliberate, so a `Result::Err` they return is not reported as
    /// unobserved (as asyncio's `gather` marks the exceptions of the
    /// children it leaves behind as retrieved); a panic still is.
    pub fn detach_all(&mut self) {
        for h in self.handles.iter_mut().filter_map(Option::take) {
            unlink(&h);
            h.raw().header().set_quiet();
        }
        self.free.clear();
        self.handles.clear();
        self.len = 0;
        self.shared.done.borrow_mut().clear();
    }

    /// Waits for every task and returns their results in completion order.
    pub async fn join_all(mut self) -> Vec<Result<T, JoinError>> {
        let mut out = Vec::with_capacity(self.len);
        while let Some(res) = self.join_next().await {
            out.push(res);
        }
        out
    }

    /// Aborts every task in the set; their results (`Cancelled`, or the
    /// value of one that finished first) stay joinable.
    pub fn abort_all(&mut self) {
        for h in self.handles.iter().flatten() {
            h.abort();
        }
    }

    /// Aborts every task and waits until the set is empty.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }
}

impl<T: 'static> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        for h in self.handles.iter().flatten() {
            unlink(h);
            // Dropping a set drops its tasks' outputs on purpose (`gather`
            // failing fast does): an `Err` among them is not "unobserved".
            h.raw().header().set_quiet();
            h.abort();
        }
    }
}

/// Unlinks a task from its set: it ends, later, without telling the set.
fn unlink<T>(h: &JoinHandle<T>) {
    if !h.is_finished() {
        context::try_with(|w| w.exec.unlink_from_set(h.key()));
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len).finish()
    }
}
