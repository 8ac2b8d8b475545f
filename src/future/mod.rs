//! asyncio's combinators: [`gather`], [`gather_settled`], [`as_completed`],
//! [`wait`], [`select`] and [`wait_for`].
//!
//! They follow asyncio's semantics, because that is what the programs
//! ported to lockstep were written against, and they are deterministic:
//! completion order is the virtual order of events, and every choice (which
//! `select` branch is polled first) comes from the seed.
//!
//! | asyncio | lockstep |
//! |---|---|
//! | `gather(*coros)` | [`gather`]: spawns, `Ok(values)` in order or the first `Err` |
//! | `gather(*coros, return_exceptions=True)` | [`gather_settled`]: every result, in order |
//! | `as_completed(coros, timeout=t)` | [`as_completed`]: results in completion order, then one `Err(Elapsed)` |
//! | `wait(tasks, return_when=…, timeout=t)` | [`wait`] with [`WaitFor`]: `(done, pending)` handles |
//! | `wait_for(coro, t)` | [`wait_for`] (the same as [`time::timeout`](crate::time::timeout)) |
//! | — | [`select`]: the first of two futures, the other dropped |
//!
//! ## Decisions
//!
//! - **Spawning.** `gather`, `gather_settled` and `as_completed` take
//!   futures and spawn each as a task at the call, as asyncio wraps
//!   coroutines in tasks, so they run concurrently and keep running
//!   independently. A `JoinHandle` is a future too (of `Result<T,
//!   JoinError>`), so handles can be gathered: each is then awaited by a
//!   small task of its own. [`wait`] takes `JoinHandle`s, since it hands
//!   tasks back.
//! - **Fail-fast leaves the rest running.** When `gather` returns the first
//!   error, the other tasks are *not* cancelled (asyncio's behaviour): they
//!   are detached and keep running. If they are still running when the main
//!   task returns, the leak check reports them; abort them or use
//!   [`gather_settled`] if that is not what you want. Dropping a `gather`
//!   future before it finished (a `timeout` around it, the losing branch of
//!   a `select`) cancels the tasks, as cancelling an asyncio `gather` does.
//! - **Panics are bugs, not values.** A gathered task that panics makes
//!   `gather` (and `as_completed`) panic in the task that awaits it, with
//!   the task's message and location, like `handle.await.unwrap()` would;
//!   the panic is then observed, not reported twice. [`gather_settled`]
//!   returns it as an `Err(JoinError)` instead, as `return_exceptions=True`
//!   returns exceptions.
//! - **`wait` cancels nothing.** Pending tasks are returned, still running
//!   (asyncio semantics); the caller aborts them if it wants to.
//! - **`as_completed` owns its tasks.** asyncio leaves the tasks running
//!   after its timeout; here nothing else can reach them, so dropping the
//!   stream aborts the tasks that have not completed (like a `JoinSet`).
//! - **`select` is fair and seeded.** When both futures are ready in the
//!   same poll, which one wins is a seeded choice (not always the first, not
//!   a thread-local RNG), so both outcomes of the race get explored.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::runtime::context;
use crate::task::{JoinError, JoinHandle, JoinSet, TaskId};
use crate::time::{Duration, Elapsed, Sleep};

pub use crate::time::timeout as wait_for;

/// Tasks spawned together, whose results come back with their index.
struct Group<T> {
    set: JoinSet<T>,
    /// Task ids in spawn order (increasing): index = position.
    ids: Vec<TaskId>,
}

impl<T: 'static> Group<T> {
    fn spawn<I>(futures: I, site: &'static Location<'static>) -> Group<T>
    where
        I: IntoIterator,
        I::Item: Future<Output = T> + 'static,
    {
        let mut set = JoinSet::new();
        let ids = futures
            .into_iter()
            .map(|f| set.insert(crate::task::spawn_at(f, None, false, site)))
            .collect();
        Group { set, ids }
    }

    /// One empty slot per task, for results by index.
    fn slots<X>(&self) -> Vec<Option<X>> {
        std::iter::repeat_with(|| None)
            .take(self.ids.len())
            .collect()
    }

    /// The next task to end, with its index.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, Result<T, JoinError>)>> {
        self.set.poll_join_next_with_id(cx).map(|next| {
            next.map(|(id, res)| {
                let i = self
                    .ids
                    .binary_search(&id)
                    .expect("a task of the group has its id");
                (i, res)
            })
        })
    }
}

/// Panics in the awaiting task with what a gathered task's `JoinError` says.
#[track_caller]
fn propagate(what: &str, id: TaskId, err: JoinError) -> ! {
    let who = context::try_with(|w| w.exec.label(id)).unwrap_or_else(|| id.to_string());
    match err {
        JoinError::Cancelled => panic!("{what}: task {who} was cancelled"),
        err => panic!("{what}: task {who}: {err}"),
    }
}

/// Runs every future as a task and returns their values in order, or the
/// first error (by completion time): asyncio's `gather`.
///
/// On the first error the other tasks keep running, detached (see the
/// module docs); dropping the future before it completes cancels them. A
/// task that panics makes this panic, in the awaiting task.
///
/// ```
/// use lockstep::prelude::*;
///
/// let fetch = |secs: u64, ok: bool| async move {
///     sleep(Duration::from_secs(secs)).await;
///     if ok { Ok(secs) } else { Err(format!("{secs} failed")) }
/// };
/// let outcome = Sim::new(1).run(async move {
///     let all = gather([fetch(1, true), fetch(2, true), fetch(1, true)]).await;
///     let t = Instant::now();
///     let failed = gather([fetch(3, true), fetch(1, false), fetch(2, true)]).await;
///     let failed_at = Instant::now();
///     // The other two still run; let them end, or the leak check reports them.
///     sleep(Duration::from_secs(3)).await;
///     (all, t, failed, failed_at)
/// });
/// let (all, t, failed, failed_at) = outcome.into_result().unwrap();
/// assert_eq!(all, Ok(vec![1, 2, 1]));
/// assert_eq!(t, Instant::START + Duration::from_secs(2));
/// assert_eq!(failed, Err("1 failed".to_string())); // fail-fast, after 1 s
/// assert_eq!(failed_at, t + Duration::from_secs(1));
/// ```
#[track_caller]
pub fn gather<I, F, T, E>(futures: I) -> Gather<T, E>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>> + 'static,
    T: 'static,
    E: 'static,
{
    let group = Group::spawn(futures, Location::caller());
    let values = group.slots();
    Gather { group, values }
}

/// The future of [`gather`].
#[must_use = "futures do nothing unless awaited"]
pub struct Gather<T, E> {
    group: Group<Result<T, E>>,
    values: Vec<Option<T>>,
}

// Nothing in it is pinned structurally.
impl<T, E> Unpin for Gather<T, E> {}

impl<T: 'static, E: 'static> Future for Gather<T, E> {
    type Output = Result<Vec<T>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this.group.poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    let values = std::mem::take(&mut this.values);
                    return Poll::Ready(Ok(values
                        .into_iter()
                        .map(|v| v.expect("every gathered task gave a value"))
                        .collect()));
                }
                Poll::Ready(Some((i, Ok(Ok(v))))) => this.values[i] = Some(v),
                Poll::Ready(Some((_, Ok(Err(e))))) => {
                    // asyncio: the others keep running.
                    this.group.set.detach_all();
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Some((i, Err(err)))) => {
                    this.group.set.detach_all();
                    propagate("gather", this.group.ids[i], err)
                }
            }
        }
    }
}

impl<T, E> fmt::Debug for Gather<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gather")
            .field("tasks", &self.group.ids)
            .finish_non_exhaustive()
    }
}

/// Runs every future as a task and returns every result in order, errors
/// included: asyncio's `gather(..., return_exceptions=True)`. A task that
/// panicked or was cancelled gives `Err(JoinError)`.
///
/// ```
/// use lockstep::prelude::*;
///
/// let outcome = Sim::new(1).run(async {
///     let results = gather_settled([
///         spawn(async { sleep(Duration::from_secs(1)).await; Ok(1) }),
///         spawn(async { Err("boom") }),
///         spawn(async { sleep(Duration::from_secs(1)).await; Ok(3) }),
///     ])
///     .await;
///     (results, Instant::now())
/// });
/// let (results, at) = outcome.into_result().unwrap();
/// // Each item: did the gathered future run to the end (outer), and what
/// // it returned: here the JoinHandle's own result, then the task's.
/// let values: Vec<_> = results.into_iter().map(|r| r.unwrap().unwrap()).collect();
/// assert_eq!(values, [Ok(1), Err("boom"), Ok(3)]);
/// assert_eq!(at, Instant::START + Duration::from_secs(1));
/// ```
#[track_caller]
pub fn gather_settled<I, F>(futures: I) -> GatherSettled<F::Output>
where
    I: IntoIterator<Item = F>,
    F: Future + 'static,
    F::Output: 'static,
{
    let group = Group::spawn(futures, Location::caller());
    let results = group.slots();
    GatherSettled { group, results }
}

/// The future of [`gather_settled`].
#[must_use = "futures do nothing unless awaited"]
pub struct GatherSettled<T> {
    group: Group<T>,
    results: Vec<Option<Result<T, JoinError>>>,
}

// Nothing in it is pinned structurally.
impl<T> Unpin for GatherSettled<T> {}

impl<T: 'static> Future for GatherSettled<T> {
    type Output = Vec<Result<T, JoinError>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        while let Some((i, res)) = std::task::ready!(this.group.poll_next(cx)) {
            this.results[i] = Some(res);
        }
        Poll::Ready(
            std::mem::take(&mut this.results)
                .into_iter()
                .map(|r| r.expect("every gathered task ended"))
                .collect(),
        )
    }
}

impl<T> fmt::Debug for GatherSettled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatherSettled")
            .field("tasks", &self.group.ids)
            .finish_non_exhaustive()
    }
}

/// Runs every future as a task and yields their values in the order they
/// complete; with a `timeout`, yields one `Err(Elapsed)` when it passes
/// (counted from this call) and then ends: asyncio's `as_completed`.
///
/// Dropping the stream aborts the tasks that have not completed. A task
/// that panics makes `next` panic, in the awaiting task.
///
/// ```
/// use lockstep::prelude::*;
///
/// let outcome = Sim::new(1).run(async {
///     let task = |name: &'static str, secs: u64| async move {
///         sleep(Duration::from_secs(secs)).await;
///         name
///     };
///     let mut results = as_completed(
///         [task("A", 1), task("B", 3), task("C", 2), task("D", 4)],
///         Some(Duration::from_millis(2500)),
///     );
///     let mut seen = Vec::new();
///     while let Some(next) = results.next().await {
///         let at = Instant::now().since_start().as_millis();
///         seen.push((next.unwrap_or("timeout"), at));
///     }
///     seen
/// });
/// assert_eq!(
///     outcome.into_result().unwrap(),
///     [("A", 1000), ("C", 2000), ("timeout", 2500)]
/// );
/// ```
#[track_caller]
pub fn as_completed<I, F>(futures: I, timeout: Option<Duration>) -> AsCompleted<F::Output>
where
    I: IntoIterator<Item = F>,
    F: Future + 'static,
    F::Output: 'static,
{
    let deadline = timeout.map(|t| crate::time::sleep(t));
    AsCompleted {
        group: Group::spawn(futures, Location::caller()),
        deadline,
        ended: false,
    }
}

/// The stream of [`as_completed`].
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<T> {
    group: Group<T>,
    deadline: Option<Sleep>,
    ended: bool,
}

impl<T: 'static> AsCompleted<T> {
    /// The next value to complete, `Err(Elapsed)` once when the timeout
    /// passes, then `None`.
    pub async fn next(&mut self) -> Option<Result<T, Elapsed>> {
        std::future::poll_fn(|cx| self.poll_next_result(cx)).await
    }

    /// Polls for the next value.
    pub fn poll_next_result(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Elapsed>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.group.poll_next(cx) {
            Poll::Ready(Some((_, Ok(v)))) => return Poll::Ready(Some(Ok(v))),
            Poll::Ready(Some((i, Err(err)))) => propagate("as_completed", self.group.ids[i], err),
            Poll::Ready(None) => {
                self.ended = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        let elapsed = match &mut self.deadline {
            Some(sleep) => sleep.poll_elapsed(cx).is_ready(),
            None => false,
        };
        if !elapsed {
            return Poll::Pending;
        }
        self.ended = true;
        Poll::Ready(Some(Err(Elapsed::new())))
    }

    /// Tasks that have not been yielded yet.
    pub fn len(&self) -> usize {
        self.group.set.len()
    }

    /// Whether every task has been yielded.
    pub fn is_empty(&self) -> bool {
        self.group.set.is_empty()
    }
}

impl<T: 'static> futures::Stream for AsCompleted<T> {
    type Item = Result<T, Elapsed>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_result(cx)
    }
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("tasks", &self.group.ids)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// When [`wait`] returns: asyncio's `return_when`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// As soon as any task ends.
    FirstCompleted,
    /// As soon as any task fails (an `Err` output, a panic or a
    /// cancellation; see [`Fallible`]), or when all have ended.
    FirstException,
    /// When every task has ended.
    AllCompleted,
}

/// What counts as a task failing, for [`WaitFor::FirstException`]. A task
/// that panicked or was cancelled always counts as failed.
pub trait Fallible {
    /// Whether this output is a failure.
    fn is_failure(&self) -> bool;
}

impl<T, E> Fallible for Result<T, E> {
    fn is_failure(&self) -> bool {
        self.is_err()
    }
}

impl Fallible for () {
    fn is_failure(&self) -> bool {
        false
    }
}

/// Waits for tasks until `when` holds or `timeout` passes, and returns
/// `(done, pending)`, each in the order given: asyncio's `wait`. Awaiting a
/// handle of `done` gives its result at once. Pending tasks keep running:
/// abort them if they should not.
///
/// ```
/// use lockstep::prelude::*;
///
/// let outcome = Sim::new(1).run(async {
///     let task = |secs: u64| spawn(async move {
///         sleep(Duration::from_secs(secs)).await;
///         Ok::<u64, String>(secs)
///     });
///     let (done, pending) = wait([task(1), task(2), task(3)], WaitFor::FirstCompleted, None).await;
///     let first = Instant::now();
///     for t in &pending {
///         t.abort();
///     }
///     let mut results = Vec::new();
///     for t in done {
///         results.push(t.await.unwrap());
///     }
///     (results, pending.len(), first)
/// });
/// let (results, pending, first) = outcome.into_result().unwrap();
/// assert_eq!((results, pending), (vec![Ok(1)], 2));
/// assert_eq!(first, Instant::START + Duration::from_secs(1));
/// ```
pub async fn wait<T, I>(
    tasks: I,
    when: WaitFor,
    timeout: Option<Duration>,
) -> (Vec<JoinHandle<T>>, Vec<JoinHandle<T>>)
where
    I: IntoIterator<Item = JoinHandle<T>>,
    T: Fallible,
{
    let handles: Vec<JoinHandle<T>> = tasks.into_iter().collect();
    let mut deadline = timeout.map(crate::time::sleep);
    std::future::poll_fn(|cx| {
        let (mut done, mut failed) = (0, false);
        for h in &handles {
            if h.poll_finished(cx).is_ready() {
                done += 1;
                failed |= h.ended_in_failure(T::is_failure) == Some(true);
            }
        }
        let all = done == handles.len();
        let met = match when {
            WaitFor::FirstCompleted => done > 0 || all,
            WaitFor::FirstException => failed || all,
            WaitFor::AllCompleted => all,
        };
        let mut timed_out = || {
            deadline
                .as_mut()
                .is_some_and(|s| s.poll_elapsed(cx).is_ready())
        };
        if met || timed_out() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    handles.into_iter().partition(JoinHandle::is_finished)
}

/// One of two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Either<A, B> {
    /// The first future's.
    Left(A),
    /// The second future's.
    Right(B),
}

/// Runs two futures and returns the output of the first to complete; the
/// other is dropped (cancelled) with the `Select`. When both complete in
/// the same poll, which one wins is a seeded choice: both orders get
/// explored across seeds.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::future::Either;
///
/// let outcome = Sim::new(1).run(async {
///     select(sleep(Duration::from_secs(5)), async {
///         sleep(Duration::from_secs(1)).await;
///         "fast"
///     })
///     .await
/// });
/// assert_eq!(outcome.into_result().unwrap(), Either::Right("fast"));
/// ```
pub fn select<A: Future, B: Future>(a: A, b: B) -> Select<A, B> {
    Select { a, b }
}

pin_project! {
    /// The future of [`select`].
    #[must_use = "futures do nothing unless awaited"]
    #[derive(Debug)]
    pub struct Select<A, B> {
        #[pin]
        a: A,
        #[pin]
        b: B,
    }
}

impl<A: Future, B: Future> Future for Select<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let b_first = context::with("lockstep::future::select", |w| w.sched_below(2) == 1);
        if b_first {
            if let Poll::Ready(v) = this.b.as_mut().poll(cx) {
                return Poll::Ready(Either::Right(v));
            }
        }
        if let Poll::Ready(v) = this.a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if !b_first {
            if let Poll::Ready(v) = this.b.as_mut().poll(cx) {
                return Poll::Ready(Either::Right(v));
            }
        }
        Poll::Pending
    }
}
