//! [`Mutex`]: an async lock with FIFO hand-off.
//!
//! When the holder releases the lock and tasks are waiting, the lock is
//! handed to the first waiter in line at once: it stays locked, on that
//! waiter's behalf, until the waiter runs and takes its guard. Nobody can
//! barge in between (not even the releasing task locking again right away),
//! so waiters are served in the order they came. Which of the ready tasks
//! then runs first is still the scheduler's seeded choice.
//!
//! The lock records its holder (the task that acquired the guard), which is
//! what deadlock reports name. A guard borrows the mutex, so it cannot move
//! to another task: only its holder can release it.

use std::cell::{RefCell, RefMut};
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::resource::{Ev, Kind, Meta, Release, Tracked, WaitOp, block_held, held_by};
use super::waiters::{State, Ticket, Turn, WaitList};
use crate::runtime::context;
use crate::runtime::executor::Executor;
use crate::runtime::waker::TaskKey;

/// An async mutual-exclusion lock, served first come, first served.
///
/// `lock().await` waits for the lock and returns a guard that gives access
/// to the value; dropping the guard releases the lock (to the first waiter,
/// if any). Wrap it in an `Rc` to share it between tasks.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::sync::Mutex;
/// use std::rc::Rc;
///
/// let outcome = Sim::new(1).run(async {
///     let counter = Rc::new(Mutex::named("counter", 0));
///     let workers: Vec<_> = (0..10)
///         .map(|_| {
///             let counter = counter.clone();
///             spawn(async move {
///                 let mut n = counter.lock().await;
///                 let read = *n;
///                 sleep(Duration::from_millis(10)).await; // others wait: no lost update
///                 *n = read + 1;
///             })
///         })
///         .collect();
///     for w in workers {
///         w.await.unwrap();
///     }
///     (*counter.lock().await, Instant::now())
/// });
/// let (count, now) = outcome.into_result().unwrap();
/// assert_eq!(count, 10);
/// assert_eq!(now, Instant::START + Duration::from_millis(100)); // one at a time
/// ```
pub struct Mutex<T: ?Sized> {
    core: Rc<MutexCore>,
    value: RefCell<T>,
}

struct MutexCore {
    meta: Meta,
    state: RefCell<LockState>,
}

#[derive(Default)]
struct LockState {
    locked: bool,
    /// The task holding the lock (or that it was handed to); `None` while
    /// locked means it was taken outside any task.
    holder: Option<TaskKey>,
    waiters: WaitList<()>,
}

/// The error of [`Mutex::try_lock`]: the lock is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryLockError(());

impl fmt::Display for TryLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the lock is held")
    }
}

impl std::error::Error for TryLockError {}

impl TryLockError {
    pub(crate) fn new() -> TryLockError {
        TryLockError(())
    }
}

impl<T> Mutex<T> {
    /// An unlocked mutex; reports call it `mutex#N`.
    pub fn new(value: T) -> Mutex<T> {
        Mutex::make(None, value)
    }

    /// An unlocked mutex that traces and reports call `mutex '<name>'`.
    pub fn named(name: impl Into<String>, value: T) -> Mutex<T> {
        Mutex::make(Some(name.into()), value)
    }

    fn make(name: Option<String>, value: T) -> Mutex<T> {
        Mutex {
            core: Rc::new(MutexCore {
                meta: Meta::new(Kind::Mutex, name),
                state: RefCell::default(),
            }),
            value: RefCell::new(value),
        }
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits for the lock. Waiters get it in the order they first polled.
    ///
    /// Cancel-safe: dropping the future (a `timeout`, an abort) before it
    /// completes gives up its place in line, and if the lock had already
    /// been handed to it, hands it on.
    ///
    /// # Panics
    ///
    /// When polled outside a simulation (the message names this call's
    /// line).
    #[track_caller]
    pub fn lock(&self) -> Lock<'_, T> {
        Lock {
            mutex: self,
            ticket: None,
            caller: std::panic::Location::caller(),
        }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        let mut st = self.core.state.borrow_mut();
        if st.locked {
            return Err(TryLockError::new());
        }
        st.locked = true;
        st.holder = context::try_with(|w| w.exec.current_key()).flatten();
        drop(st);
        Ok(self.guard())
    }

    fn guard(&self) -> MutexGuard<'_, T> {
        self.core.meta.trace(Ev::Acquire, || None);
        MutexGuard {
            mutex: self,
            value: self.value.borrow_mut(),
        }
    }

    /// Whether the lock is held (or handed to a waiter that has not yet
    /// taken it).
    pub fn is_locked(&self) -> bool {
        self.core.state.borrow().locked
    }

    /// The value, through an exclusive borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// The name given with [`Mutex::named`].
    pub fn name(&self) -> Option<&str> {
        self.core.meta.name()
    }
}

impl MutexCore {
    /// Releases the lock: hands it to the first waiter, or unlocks.
    fn unlock(&self) {
        let mut st = self.state.borrow_mut();
        let (waker, to) = match st.waiters.front() {
            Some(next) => {
                st.holder = next.task;
                (st.waiters.settle(next.ticket, State::Granted), next.task)
            }
            None => {
                st.locked = false;
                st.holder = None;
                (None, None)
            }
        };
        drop(st);
        self.meta.trace(Ev::Release(to), || None);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Tracked for MutexCore {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn release(&self, _: WaitOp, out: &mut Vec<TaskKey>) -> Release {
        let st = self.state.borrow();
        match (st.locked, st.holder) {
            (true, None) => Release::Anyone,
            (_, holder) => {
                out.extend(holder);
                Release::Holders
            }
        }
    }

    fn describe(&self, _: WaitOp, exec: &Executor) -> String {
        let st = self.state.borrow();
        let who = match (st.locked, st.holder) {
            (true, None) => ", held outside any task".to_string(),
            (_, holder) => held_by(exec, holder.as_slice()),
        };
        format!("{}{who}", self.meta.label())
    }
}

/// The future of [`Mutex::lock`].
#[must_use = "futures do nothing unless awaited"]
pub struct Lock<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    ticket: Option<Ticket>,
    caller: &'static std::panic::Location<'static>,
}

impl<'a, T: ?Sized> Future for Lock<'a, T> {
    type Output = MutexGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<MutexGuard<'a, T>> {
        let mutex = self.mutex;
        let core = &mutex.core;
        context::with_at("lockstep::sync::Mutex::lock", self.caller, |w| {
            let task = w.exec.current_key();
            let mut st = core.state.borrow_mut();
            let st = &mut *st;
            let turn = match self.ticket {
                None if !st.locked => {
                    st.locked = true;
                    st.holder = task;
                    Turn::Now
                }
                _ => st.waiters.poll_turn(&mut self.ticket, cx, task, ()),
            };
            let holder = st.holder;
            if let Turn::Waiting { first } = turn {
                return block_held(w, core.clone(), WaitOp::Lock, first, holder);
            }
            Poll::Ready(mutex.guard())
        })
    }
}

impl<T: ?Sized> Drop for Lock<'_, T> {
    fn drop(&mut self) {
        let core = &self.mutex.core;
        let granted =
            core.state.borrow_mut().waiters.cancel(&mut self.ticket) == Some(State::Granted);
        if granted {
            // Handed the lock but never took it: pass it on.
            core.unlock();
        }
    }
}

impl<T: ?Sized> fmt::Debug for Lock<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("mutex", &self.mutex.core.meta)
            .field("queued", &self.ticket.is_some())
            .finish()
    }
}

/// Access to a [`Mutex`]'s value; the lock is released when it is dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    value: RefMut<'a, T>,
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.core.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.value, f)
    }
}

impl<T: ?Sized> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("name", &self.core.meta)
            .field("locked", &self.is_locked())
            .finish_non_exhaustive()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}
