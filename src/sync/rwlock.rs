//! [`RwLock`]: many readers or one writer, served first come, first served.
//!
//! Fair like tokio's: a reader that arrives while a writer waits queues
//! behind the writer, so writers are not starved. On release, the lock goes
//! to the first waiter in line; if that is a reader, every reader right
//! behind it gets in with it, up to the next writer.
//!
//! Holders are recorded (the writer, or every reader) for deadlock reports;
//! a writer waiting on readers is stuck only if every reader is.

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::mutex::TryLockError;
use super::resource::{Ev, Kind, Meta, Release, Tracked, WaitOp, block, held_by};
use super::waiters::{self, State, Ticket, Turn, WaitList};
use crate::runtime::context;
use crate::runtime::executor::Executor;
use crate::runtime::waker::TaskKey;

/// An async reader-writer lock.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::sync::RwLock;
/// use std::rc::Rc;
///
/// let outcome = Sim::new(2).run(async {
///     let config = Rc::new(RwLock::named("config", 1));
///     let c = config.clone();
///     let reader = spawn(async move {
///         let v = c.read().await;
///         sleep(Duration::from_secs(1)).await;
///         *v
///     });
///     sleep(Duration::from_millis(1)).await;
///     *config.write().await = 2; // waits for the reader
///     (reader.await.unwrap(), *config.read().await, Instant::now())
/// });
/// let (seen, now, at) = outcome.into_result().unwrap();
/// assert_eq!((seen, now), (1, 2));
/// assert_eq!(at, Instant::START + Duration::from_secs(1));
/// ```
pub struct RwLock<T: ?Sized> {
    core: Rc<RwCore>,
    value: RefCell<T>,
}

struct RwCore {
    meta: Meta,
    state: RefCell<RwState>,
}

/// Read or write.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Mode {
    Read,
    Write,
}

impl Mode {
    fn word(self) -> &'static str {
        match self {
            Mode::Read => "read",
            Mode::Write => "write",
        }
    }
}

#[derive(Default)]
struct RwState {
    /// Write-locked, by this task (`None`: outside any task).
    writer: Option<Option<TaskKey>>,
    /// One entry per read guard out, by the task that took it.
    readers: Vec<Option<TaskKey>>,
    waiters: WaitList<Mode>,
}

impl RwState {
    /// Lets in whoever is first in line, and the readers right behind a
    /// reader. Returns the first task let in.
    fn grant(&mut self, wake: &mut Vec<Waker>) -> Option<TaskKey> {
        let mut first = None;
        while let Some(next) = self.waiters.front() {
            if !self.try_take(next.data, next.task) {
                break;
            }
            first = first.or(next.task);
            wake.extend(self.waiters.settle(next.ticket, State::Granted));
            if next.data == Mode::Write {
                break;
            }
        }
        first
    }

    /// Takes the lock for `task` if `mode` allows it now.
    fn try_take(&mut self, mode: Mode, task: Option<TaskKey>) -> bool {
        let ok = match mode {
            Mode::Read => self.writer.is_none(),
            Mode::Write => self.writer.is_none() && self.readers.is_empty(),
        };
        if ok {
            self.take(mode, task);
        }
        ok
    }

    fn take(&mut self, mode: Mode, task: Option<TaskKey>) {
        match mode {
            Mode::Read => self.readers.push(task),
            Mode::Write => self.writer = Some(task),
        }
    }
}

impl<T> RwLock<T> {
    /// An unlocked lock; reports call it `rwlock#N`.
    pub fn new(value: T) -> RwLock<T> {
        RwLock::make(None, value)
    }

    /// An unlocked lock that traces and reports call `rwlock '<name>'`.
    pub fn named(name: impl Into<String>, value: T) -> RwLock<T> {
        RwLock::make(Some(name.into()), value)
    }

    fn make(name: Option<String>, value: T) -> RwLock<T> {
        RwLock {
            core: Rc::new(RwCore {
                meta: Meta::new(Kind::RwLock, name),
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

impl<T: ?Sized> RwLock<T> {
    /// Waits for shared read access. Cancel-safe.
    ///
    /// # Panics
    ///
    /// When polled outside a simulation.
    pub fn read(&self) -> LockRw<'_, T, Read> {
        self.lock(Mode::Read)
    }

    /// Waits for exclusive write access. Cancel-safe.
    ///
    /// # Panics
    ///
    /// When polled outside a simulation.
    pub fn write(&self) -> LockRw<'_, T, Write> {
        self.lock(Mode::Write)
    }

    fn lock<M>(&self, mode: Mode) -> LockRw<'_, T, M> {
        LockRw {
            lock: self,
            mode,
            ticket: None,
            task: None,
            _mode: std::marker::PhantomData,
        }
    }

    /// Takes read access if nobody writes or waits to.
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, TryLockError> {
        let task = self.try_take(Mode::Read)?;
        Ok(self.read_guard(task))
    }

    /// Takes write access if the lock is free and nobody waits.
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, TryLockError> {
        let task = self.try_take(Mode::Write)?;
        Ok(self.write_guard(task))
    }

    fn try_take(&self, mode: Mode) -> Result<Option<TaskKey>, TryLockError> {
        let task = context::try_with(|w| w.exec.current_key()).flatten();
        let mut st = self.core.state.borrow_mut();
        if !st.waiters.is_empty() || !st.try_take(mode, task) {
            return Err(TryLockError::new());
        }
        Ok(task)
    }

    fn read_guard(&self, holder: Option<TaskKey>) -> RwLockReadGuard<'_, T> {
        self.core.record_acquire(Mode::Read);
        RwLockReadGuard {
            lock: self,
            value: self.value.borrow(),
            holder,
        }
    }

    fn write_guard(&self, holder: Option<TaskKey>) -> RwLockWriteGuard<'_, T> {
        self.core.record_acquire(Mode::Write);
        RwLockWriteGuard {
            lock: self,
            value: self.value.borrow_mut(),
            holder,
        }
    }

    /// The value, through an exclusive borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// The name given with [`RwLock::named`].
    pub fn name(&self) -> Option<&str> {
        self.core.meta.name()
    }
}

impl RwCore {
    fn record_acquire(&self, mode: Mode) {
        self.meta
            .trace(Ev::Acquire, || Some(mode.word().to_string()));
    }

    /// Releases one hold and lets in whoever is first in line (and the
    /// readers right behind a reader).
    fn release(&self, mode: Mode, holder: Option<TaskKey>) {
        waiters::wake_after(&self.state, |st, wake| {
            match mode {
                Mode::Write => st.writer = None,
                Mode::Read => {
                    if let Some(i) = st.readers.iter().position(|r| *r == holder) {
                        st.readers.swap_remove(i);
                    }
                }
            }
            let first = st.grant(wake);
            self.meta
                .trace(Ev::Release(first), || Some(mode.word().to_string()));
        });
    }

    fn holders(st: &RwState) -> Vec<Option<TaskKey>> {
        match st.writer {
            Some(w) => vec![w],
            None => st.readers.clone(),
        }
    }
}

impl Tracked for RwCore {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn release(&self, _: WaitOp, out: &mut Vec<TaskKey>) -> Release {
        let st = self.state.borrow();
        let holders = RwCore::holders(&st);
        if holders.iter().any(Option::is_none) {
            return Release::Anyone;
        }
        out.extend(holders.into_iter().flatten());
        Release::Holders
    }

    fn describe(&self, op: WaitOp, exec: &Executor) -> String {
        let st = self.state.borrow();
        let mut holders: Vec<TaskKey> = RwCore::holders(&st).into_iter().flatten().collect();
        holders.sort_by_key(|k| k.id);
        holders.dedup();
        let how = match (st.writer, st.readers.len()) {
            (Some(_), _) => "write-locked".to_string(),
            (None, 0) => "free".to_string(),
            (None, n) => format!("read-locked by {n}"),
        };
        let wants = if op == WaitOp::Write { "write" } else { "read" };
        format!(
            "{} (to {wants}; {how}){}",
            self.meta.label(),
            held_by(exec, &holders)
        )
    }

    fn held_as(&self, task: TaskKey, _: WaitOp) -> String {
        let st = self.state.borrow();
        let mode = if st.writer == Some(Some(task)) {
            Mode::Write
        } else {
            Mode::Read
        };
        format!("{} ({})", self.meta.label(), mode.word())
    }
}

/// Marks a [`LockRw`] future that gives read access.
#[derive(Debug)]
pub enum Read {}
/// Marks a [`LockRw`] future that gives write access.
#[derive(Debug)]
pub enum Write {}

/// The future of [`RwLock::read`] (`LockRw<T, Read>`) and [`RwLock::write`]
/// (`LockRw<T, Write>`).
#[must_use = "futures do nothing unless awaited"]
pub struct LockRw<'a, T: ?Sized, M> {
    lock: &'a RwLock<T>,
    mode: Mode,
    ticket: Option<Ticket>,
    /// The task that polled it.
    task: Option<TaskKey>,
    _mode: std::marker::PhantomData<M>,
}

impl<T: ?Sized, M> LockRw<'_, T, M> {
    /// Polls for the lock; `Ready` once this future holds it.
    fn poll_lock(&mut self, cx: &Context<'_>) -> Poll<Option<TaskKey>> {
        let lock = self.lock;
        let core = &lock.core;
        let mode = self.mode;
        context::with("lockstep::sync::RwLock::read/write", |w| {
            let task = w.exec.current_key();
            self.task = task;
            let mut st = core.state.borrow_mut();
            let st = &mut *st;
            let turn = match self.ticket {
                None if st.waiters.is_empty() && st.try_take(mode, task) => Turn::Now,
                _ => st.waiters.poll_turn(&mut self.ticket, cx, task, mode),
            };
            if let Turn::Waiting { first } = turn {
                let holders: Vec<TaskKey> = RwCore::holders(st).into_iter().flatten().collect();
                let op = match mode {
                    Mode::Read => WaitOp::Read,
                    Mode::Write => WaitOp::Write,
                };
                return block(w, core.clone(), op, first, || {
                    Some(format!("to {}{}", mode.word(), held_by(&w.exec, &holders)))
                });
            }
            Poll::Ready(task)
        })
    }
}

impl<'a, T: ?Sized> Future for LockRw<'a, T, Read> {
    type Output = RwLockReadGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let lock = self.lock;
        self.poll_lock(cx).map(|task| lock.read_guard(task))
    }
}

impl<'a, T: ?Sized> Future for LockRw<'a, T, Write> {
    type Output = RwLockWriteGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let lock = self.lock;
        self.poll_lock(cx).map(|task| lock.write_guard(task))
    }
}

impl<T: ?Sized, M> Drop for LockRw<'_, T, M> {
    fn drop(&mut self) {
        let core = &self.lock.core;
        let state = core.state.borrow_mut().waiters.cancel(&mut self.ticket);
        match state {
            // Let in but never took it: release, as its task.
            Some(State::Granted) => core.release(self.mode, self.task),
            // Readers queued behind a writer that left may get in now.
            Some(State::Queued) => {
                waiters::wake_after(&core.state, |st, wake| {
                    st.grant(wake);
                });
            }
            _ => {}
        }
    }
}

impl<T: ?Sized, M> fmt::Debug for LockRw<'_, T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockRw")
            .field("lock", &self.lock.core.meta)
            .field("mode", &self.mode)
            .field("queued", &self.ticket.is_some())
            .finish()
    }
}

/// Shared read access to an [`RwLock`]'s value.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    value: Ref<'a, T>,
    holder: Option<TaskKey>,
}

/// Exclusive write access to an [`RwLock`]'s value.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    value: RefMut<'a, T>,
    holder: Option<TaskKey>,
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.core.release(Mode::Read, self.holder);
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.core.release(Mode::Write, self.holder);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}

impl<T: ?Sized> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.core.state.borrow();
        f.debug_struct("RwLock")
            .field("name", &self.core.meta)
            .field("writer", &st.writer.is_some())
            .field("readers", &st.readers.len())
            .finish_non_exhaustive()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}
