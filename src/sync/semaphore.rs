//! [`Semaphore`]: a fixed number of permits, handed out first come, first
//! served.
//!
//! Fair like tokio's: when the first waiter in line needs more permits than
//! are free, later waiters wait behind it even if they need fewer, so a
//! large request is not starved. Released permits go straight to the
//! waiters in line (FIFO hand-off) until the first one that cannot be served.
//!
//! The permit count is fixed at creation: permits come back only when a
//! permit is dropped (there is no `add_permits`). That is what lets the
//! deadlock analysis treat the holders as the only way out of a wait.
//! Borrowed permits ([`SemaphorePermit`]) are attributed to the task that
//! acquired them; owned ones ([`OwnedSemaphorePermit`]) can move between
//! tasks, so a semaphore with owned permits out never takes part in an
//! early deadlock report (the global one still catches a stall).
//!
//! [`Semaphore::close`] fails every waiter and every later acquire with
//! [`AcquireError`]; permits already out still come back normally.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::resource::{Ev, Kind, Meta, Release, Tracked, WaitOp, block, held_by};
use super::waiters::{self, State, Ticket, Turn, WaitList};
use crate::runtime::context;
use crate::runtime::executor::Executor;
use crate::runtime::waker::TaskKey;

/// A counting semaphore.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::sync::Semaphore;
/// use std::rc::Rc;
///
/// // Eight one-second downloads, at most three at a time: three rounds.
/// let outcome = Sim::new(3).run(async {
///     let limit = Rc::new(Semaphore::named("downloads", 3));
///     let tasks: Vec<_> = (0..8)
///         .map(|_| {
///             let limit = limit.clone();
///             spawn(async move {
///                 let _permit = limit.acquire().await.unwrap();
///                 sleep(Duration::from_secs(1)).await;
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     Instant::now()
/// });
/// assert_eq!(outcome.into_result().unwrap(), Instant::START + Duration::from_secs(3));
/// ```
pub struct Semaphore {
    core: Rc<SemCore>,
}

struct SemCore {
    meta: Meta,
    total: usize,
    state: RefCell<SemState>,
}

/// What a waiter asks for.
#[derive(Copy, Clone, Debug)]
struct Want {
    permits: u32,
    owned: bool,
}

struct SemState {
    free: usize,
    closed: bool,
    waiters: WaitList<Want>,
    /// Borrowed permits out, by the task that acquired them.
    holders: Vec<(TaskKey, u32)>,
    /// Permits out that no task can be named for: owned ones, or taken
    /// outside any task.
    unattributed: u64,
}

/// The error of an acquire on a closed semaphore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireError(());

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the semaphore is closed")
    }
}

impl std::error::Error for AcquireError {}

/// The error of a `try_acquire`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryAcquireError {
    /// The semaphore is closed.
    Closed,
    /// Not enough permits are free, or others are already waiting.
    NoPermits,
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryAcquireError::Closed => "the semaphore is closed",
            TryAcquireError::NoPermits => "no permits available",
        })
    }
}

impl std::error::Error for TryAcquireError {}

impl Semaphore {
    /// A semaphore with `permits` permits; reports call it `semaphore#N`.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore::make(None, permits)
    }

    /// A semaphore that traces and reports call `semaphore '<name>'`.
    pub fn named(name: impl Into<String>, permits: usize) -> Semaphore {
        Semaphore::make(Some(name.into()), permits)
    }

    fn make(name: Option<String>, permits: usize) -> Semaphore {
        Semaphore {
            core: Rc::new(SemCore {
                meta: Meta::new(Kind::Semaphore, name),
                total: permits,
                state: RefCell::new(SemState {
                    free: permits,
                    closed: false,
                    waiters: WaitList::default(),
                    holders: Vec::new(),
                    unattributed: 0,
                }),
            }),
        }
    }

    /// Waits for one permit; `Err` if the semaphore is (or gets) closed.
    /// Cancel-safe: a dropped acquire leaves the line and hands on permits
    /// it had been given.
    ///
    /// # Panics
    ///
    /// When polled outside a simulation.
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Waits for `n` permits at once.
    pub fn acquire_many(&self, n: u32) -> Acquire<'_> {
        Acquire {
            sem: self,
            want: Want {
                permits: n,
                owned: false,
            },
            ticket: None,
            task: None,
        }
    }

    /// Waits for one permit that can move to another task.
    pub async fn acquire_owned(self: Rc<Self>) -> Result<OwnedSemaphorePermit, AcquireError> {
        self.acquire_many_owned(1).await
    }

    /// Waits for `n` permits that can move to another task.
    pub async fn acquire_many_owned(
        self: Rc<Self>,
        n: u32,
    ) -> Result<OwnedSemaphorePermit, AcquireError> {
        let acquire = Acquire {
            sem: &self,
            want: Want {
                permits: n,
                owned: true,
            },
            ticket: None,
            task: None,
        };
        let permit = acquire.await?;
        std::mem::forget(permit);
        Ok(OwnedSemaphorePermit {
            sem: self,
            permits: n,
        })
    }

    /// Takes one permit if one is free and nobody is waiting.
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody is waiting.
    pub fn try_acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        let task = context::try_with(|w| w.exec.current_key()).flatten();
        self.core.try_take(n, task, false)?;
        Ok(self.permit(n, task))
    }

    /// Like [`try_acquire`](Self::try_acquire), for a permit that can move.
    pub fn try_acquire_owned(self: Rc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.core.try_take(1, None, true)?;
        self.core.record_acquire(1);
        Ok(OwnedSemaphorePermit {
            sem: self,
            permits: 1,
        })
    }

    fn permit(&self, permits: u32, holder: Option<TaskKey>) -> SemaphorePermit<'_> {
        self.core.record_acquire(permits);
        SemaphorePermit {
            sem: self,
            permits,
            holder,
        }
    }

    /// Permits free right now.
    pub fn available_permits(&self) -> usize {
        self.core.state.borrow().free
    }

    /// Closes the semaphore: every waiter and every later acquire gets
    /// [`AcquireError`]. Permits already out are unaffected.
    pub fn close(&self) {
        let core = &self.core;
        waiters::wake_after(&core.state, |st, wake| {
            if st.closed {
                return;
            }
            st.closed = true;
            st.waiters.settle_all(State::Woken, wake);
            let woken = wake.len();
            core.meta.trace(Ev::Close, || {
                (woken > 0).then(|| format!("{woken} waiting failed"))
            });
        });
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.core.state.borrow().closed
    }

    /// The name given with [`Semaphore::named`].
    pub fn name(&self) -> Option<&str> {
        self.core.meta.name()
    }
}

fn permits_detail(n: u32) -> Option<String> {
    (n != 1).then(|| format!("{n} permits"))
}

impl SemState {
    /// Hands free permits to the waiters in line, first come first served,
    /// until one needs more than is free. Returns the first task served.
    fn grant(&mut self, wake: &mut Vec<Waker>) -> Option<TaskKey> {
        let mut first = None;
        while let Some(next) = self.waiters.front() {
            let want = next.data.permits as usize;
            if self.closed || want > self.free {
                break;
            }
            self.free -= want;
            self.hold(next.data.permits, next.task, next.data.owned);
            first = first.or(next.task);
            wake.extend(self.waiters.settle(next.ticket, State::Granted));
        }
        first
    }

    fn hold(&mut self, n: u32, task: Option<TaskKey>, owned: bool) {
        match task {
            Some(k) if !owned => match self.holders.iter_mut().find(|(h, _)| *h == k) {
                Some((_, held)) => *held += n,
                None => self.holders.push((k, n)),
            },
            _ => self.unattributed += u64::from(n),
        }
    }

    fn unhold(&mut self, n: u32, holder: Option<TaskKey>) {
        match holder.and_then(|k| self.holders.iter().position(|(h, _)| *h == k)) {
            Some(i) => {
                let held = &mut self.holders[i].1;
                *held -= n;
                if *held == 0 {
                    self.holders.swap_remove(i);
                }
            }
            None => self.unattributed = self.unattributed.saturating_sub(u64::from(n)),
        }
    }
}

impl SemCore {
    fn try_take(&self, n: u32, task: Option<TaskKey>, owned: bool) -> Result<(), TryAcquireError> {
        let mut st = self.state.borrow_mut();
        if st.closed {
            return Err(TryAcquireError::Closed);
        }
        if !st.waiters.is_empty() || st.free < n as usize {
            return Err(TryAcquireError::NoPermits);
        }
        st.free -= n as usize;
        st.hold(n, task, owned);
        Ok(())
    }

    fn record_acquire(&self, n: u32) {
        self.meta.trace(Ev::Acquire, || permits_detail(n));
    }

    /// Gives back `n` permits held by `holder` and hands free permits to the
    /// waiters in line.
    fn release(&self, n: u32, holder: Option<TaskKey>) {
        waiters::wake_after(&self.state, |st, wake| {
            st.unhold(n, holder);
            st.free += n as usize;
            let first = st.grant(wake);
            self.meta.trace(Ev::Release(first), || permits_detail(n));
        });
    }

    /// A waiter left the line: those behind it may now be served.
    fn left_line(&self) {
        waiters::wake_after(&self.state, |st, wake| {
            st.grant(wake);
        });
    }
}

impl Tracked for SemCore {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn release(&self, _: WaitOp, out: &mut Vec<TaskKey>) -> Release {
        let st = self.state.borrow();
        if st.unattributed > 0 || st.closed {
            return Release::Anyone;
        }
        out.extend(st.holders.iter().map(|(k, _)| *k));
        Release::Holders
    }

    fn describe(&self, op: WaitOp, exec: &Executor) -> String {
        let st = self.state.borrow();
        let mut holders: Vec<TaskKey> = st.holders.iter().map(|(k, _)| *k).collect();
        holders.sort_by_key(|k| k.id);
        let want = match op {
            WaitOp::Acquire(n) if n != 1 => format!("{n} permits wanted, "),
            _ => String::new(),
        };
        let mut text = format!(
            "{} ({want}{} of {} free, {} waiting){}",
            self.meta.label(),
            st.free,
            self.total,
            st.waiters.len(),
            held_by(exec, &holders)
        );
        if st.unattributed > 0 {
            text.push_str(&format!(
                "; {} permits are held outside any task (owned permits)",
                st.unattributed
            ));
        }
        text
    }

    fn held_as(&self, task: TaskKey, _: WaitOp) -> String {
        let st = self.state.borrow();
        match st.holders.iter().find(|(k, _)| *k == task) {
            Some((_, n)) if *n != 1 => format!("{} ({n} permits)", self.meta.label()),
            _ => self.meta.label(),
        }
    }
}

/// The future of [`Semaphore::acquire`] and [`Semaphore::acquire_many`].
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a> {
    sem: &'a Semaphore,
    want: Want,
    ticket: Option<Ticket>,
    /// The task that polled it.
    task: Option<TaskKey>,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<SemaphorePermit<'a>, AcquireError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let sem = self.sem;
        let core = &sem.core;
        let want = self.want;
        context::with("lockstep::sync::Semaphore::acquire", |w| {
            let task = w.exec.current_key();
            self.task = task;
            let mut st = core.state.borrow_mut();
            let st = &mut *st;
            if st.closed && self.ticket.is_none() {
                return Poll::Ready(Err(AcquireError(())));
            }
            let turn = match self.ticket {
                None if st.waiters.is_empty() && st.free >= want.permits as usize => {
                    st.free -= want.permits as usize;
                    st.hold(want.permits, task, want.owned);
                    Turn::Now
                }
                _ => st.waiters.poll_turn(&mut self.ticket, cx, task, want),
            };
            match turn {
                Turn::Now | Turn::Granted => {
                    let holder = if want.owned { None } else { task };
                    Poll::Ready(Ok(sem.permit(want.permits, holder)))
                }
                Turn::Woken => Poll::Ready(Err(AcquireError(()))),
                Turn::Waiting { first } => {
                    let (free, total) = (st.free, core.total);
                    block(
                        w,
                        core.clone(),
                        WaitOp::Acquire(want.permits),
                        first,
                        || {
                            let wanted = permits_detail(want.permits).map(|p| p + " wanted, ");
                            Some(format!(
                                "{}{free} of {total} free",
                                wanted.unwrap_or_default()
                            ))
                        },
                    )
                }
            }
        })
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let core = &self.sem.core;
        let state = core.state.borrow_mut().waiters.cancel(&mut self.ticket);
        match state {
            Some(State::Granted) => {
                // Handed permits but never took them: give them back, from
                // the task they were attributed to (this may run in another
                // task, one that aborted ours).
                let holder = if self.want.owned { None } else { self.task };
                core.release(self.want.permits, holder);
            }
            Some(State::Queued) => core.left_line(),
            _ => {}
        }
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("semaphore", &self.sem.core.meta)
            .field("permits", &self.want.permits)
            .field("queued", &self.ticket.is_some())
            .finish()
    }
}

/// Permits borrowed from a [`Semaphore`]; given back when dropped.
#[must_use = "the permits are given back as soon as this is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    permits: u32,
    holder: Option<TaskKey>,
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    pub fn num_permits(&self) -> u32 {
        self.permits
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.core.release(self.permits, self.holder);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("semaphore", &self.sem.core.meta)
            .field("permits", &self.permits)
            .finish()
    }
}

/// Permits of an `Rc<Semaphore>` that can move between tasks; given back
/// when dropped.
#[must_use = "the permits are given back as soon as this is dropped"]
pub struct OwnedSemaphorePermit {
    sem: Rc<Semaphore>,
    permits: u32,
}

impl OwnedSemaphorePermit {
    /// How many permits this holds.
    pub fn num_permits(&self) -> u32 {
        self.permits
    }

    /// The semaphore.
    pub fn semaphore(&self) -> &Rc<Semaphore> {
        &self.sem
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        self.sem.core.release(self.permits, None);
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("semaphore", &self.sem.core.meta)
            .field("permits", &self.permits)
            .finish()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.core.state.borrow();
        f.debug_struct("Semaphore")
            .field("name", &self.core.meta)
            .field("free", &st.free)
            .field("closed", &st.closed)
            .finish_non_exhaustive()
    }
}
