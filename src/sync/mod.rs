//! Synchronization primitives that the simulation can see.
//!
//! Locks ([`Mutex`], [`RwLock`]), counting ([`Semaphore`]), signals
//! ([`Event`], [`Notify`], [`Barrier`]) and channels ([`mpsc`],
//! [`oneshot`], [`broadcast`], [`watch`]), with tokio's names and
//! signatures (and asyncio's for `Event`), built for one thread: they are
//! `!Send`, use `Rc`/`RefCell` inside, and share through `Rc`.
//!
//! What they add over tokio's is that the simulation sees them:
//!
//! - **Names.** Every primitive can be named (`Mutex::named("accounts", v)`,
//!   `mpsc::channel_named("jobs", 8)`); unnamed ones are numbered per kind in
//!   creation order (`mutex#0`), so traces and reports are the same in every
//!   run of a seed.
//! - **Trace events** for every acquire, release, wait, notify, send,
//!   receive and close, with the primitive's name ([`EventKind`]). Waits and
//!   closes are recorded at `Summary` verbosity, the rest at `Full`; with
//!   tracing off, nothing is formatted.
//! - **Deadlock reports that name the cycle.** A blocked task notes what it
//!   waits on; locks and semaphores know who holds them. When a run
//!   deadlocks, [`Failure::Deadlock`] lists each task, what it waits on, who
//!   holds that, and the cycle: `#1 task-a holds mutex 'lock1' and waits for
//!   mutex 'lock2'; #2 task-b holds mutex 'lock2' and waits for mutex
//!   'lock1'`. A cycle of waits on locks, semaphores, `JoinHandle`s and
//!   channels whose other end is held by a known task fails the run *at
//!   the step that closes it*, even while other tasks keep running (see the
//!   `deadlock` module docs for what is certain and what it costs, and
//!   [`SimBuilder::deadlock_cycles`]).
//!
//! ## Rules every primitive keeps
//!
//! - **FIFO hand-off.** A released lock, permit or channel slot goes to the
//!   first waiter in line, at once: nobody barges in between the release
//!   and the waiter's next poll. The scheduler's choice of which ready task
//!   runs next stays seeded, so races around a hand-off are still explored.
//! - **Cancellation safety.** Dropping a waiting future (an aborted task, a
//!   `timeout`, the losing branch of a `select`) removes it from the line in
//!   O(1); if the resource had already been handed to it, it is handed on.
//!   No stale waiter is left and no wake-up is lost. Guards and permits
//!   give back what they hold when dropped, also on abort.
//! - **No borrow across user code.** A primitive never holds its own
//!   `RefCell` borrow while waking a task, so wakers may call back in.
//! - **Determinism.** Waiters are served in a fixed order; ids and numbers
//!   start at 0 in every run; nothing depends on addresses or hash order.
//! - **Cheap when uncontended.** Locking a free mutex, sending on a channel
//!   with room, receiving a buffered message: no allocation, no deadlock
//!   bookkeeping, one comparison for tracing. Waiter slots are reused.
//!
//! Creating a primitive works anywhere, and so do the non-waiting calls
//! (`try_lock`, `try_send`, `set`). Waiting on one (`lock().await`,
//! `recv().await`, ...) needs the simulation and panics with a message that
//! names the call outside one.
//!
//! ## What a deadlock report knows
//!
//! - **Locks and semaphores** know their holders: the task that took a
//!   guard or a borrowed permit. A guard borrows its primitive, and spawned
//!   tasks are `'static`, so it cannot move to another task: only its holder
//!   can release it, by running. Cycles through them (and through
//!   `JoinHandle`s: a task awaiting another) are certain, and found early.
//! - **Owned permits** ([`Semaphore::acquire_owned`]) may move to any task,
//!   so a semaphore with owned permits out is never part of an early report.
//! - **Channels** ([`mpsc`], [`broadcast`], [`watch`]) can be ended by
//!   whoever holds the other end, and handles move between tasks without
//!   running any code. A handle is *placed* in the task that last used it
//!   (sent, received), until that task spawns a task or sends a value that
//!   could carry a handle (one with drop glue: a `u32` cannot); a wait is
//!   certain only when every handle of the other end is placed in a task.
//!   Then `#1 a holds the only sender of channel 'to-b' and waits for a
//!   message on channel 'to-a'; #2 b holds the only sender of channel 'to-a'
//!   and waits for a message on channel 'to-b'` is found when it closes. A
//!   handle made and never used, kept in a static or a struct, or sent in a
//!   message is held by no task lockstep can name: a wait on it is never
//!   part of an early report (the rule, and its one assumption, are in
//!   `places.rs`). A [`oneshot`] sender is used once, by the send that
//!   consumes it, so where it is is never known.
//! - **Signals** ([`Event`], [`Notify`], [`Barrier`]) are shared by
//!   reference (`Rc`, `'static`), and anyone who can reach one may set it:
//!   they are never part of an early report.
//!
//!   When the whole run stalls, the report still says what is known about
//!   every wait: `a message on channel 'jobs' (empty; 2 senders alive; last
//!   sent by #2 producer)`, and follows that to the cycle it closes.
//! - **Anything else** that may wake a task (a timer, a `timeout`, a
//!   `JoinSet`, a future from another crate) keeps the task out of an early
//!   report: the executor counts the copies of each task's waker held
//!   outside lockstep's primitives. So an early report is never wrong about
//!   a task that could still go on by itself. Tasks of a cycle could still
//!   be *aborted* by a task outside it (asyncio's `wait_for(gather(..))`
//!   way of "detecting" a deadlock); that is an outside rescue, not
//!   progress, and the cycle is reported anyway, unless
//!   [`SimBuilder::deadlock_cycles`] says to warn instead.
//! - The one assumption: a guard of a primitive leaked to `'static`
//!   (`Box::leak`) is not moved to another task.
//!
//! [`EventKind`]: crate::trace::EventKind
//! [`Semaphore::acquire_owned`]: Semaphore::acquire_owned
//! [`Failure::Deadlock`]: crate::Failure::Deadlock
//! [`SimBuilder::deadlock_cycles`]: crate::SimBuilder::deadlock_cycles

mod barrier;
pub mod broadcast;
pub(crate) mod deadlock;
mod event;
pub mod mpsc;
mod mutex;
mod notify;
pub mod oneshot;
mod places;
mod resource;
mod rwlock;
mod semaphore;
mod waiters;
pub mod watch;

pub use barrier::{Barrier, BarrierWait, BarrierWaitResult};
pub use event::{Event, EventWait};
pub use notify::{Notified, Notify};

pub use mutex::{Lock, Mutex, MutexGuard, TryLockError};
pub use rwlock::{LockRw, Read, RwLock, RwLockReadGuard, RwLockWriteGuard, Write};
pub use semaphore::{
    Acquire, AcquireError, OwnedSemaphorePermit, Semaphore, SemaphorePermit, TryAcquireError,
};

pub(crate) use resource::Registry;

/// The sync layer's hooks: the deadlock analysis (the early check after a
/// task blocks, the report of a run where nothing can run, who holds what)
/// and the placement of channel handles when a task is spawned.
pub(crate) const LAYER: crate::runtime::ext::Layer = crate::runtime::ext::Layer {
    spawned: Some(places::task_spawned),
    after_pending: Some(deadlock::after_pending),
    stalled: Some(deadlock::stalled),
    holdings: Some(deadlock::holdings_of),
    ..crate::runtime::ext::Layer::NONE
};
