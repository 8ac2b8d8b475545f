//! Task wakers: one pointer-sized word, no allocation.
//!
//! A waker's data word packs the task's slot index (32 bits), the low 16 bits
//! of its [`TaskId`] (a generation: it tells a stale waker of a finished task
//! from a waker of the task now in the same slot) and the 16-bit tag of the
//! simulation that made it. Cloning copies the word; waking looks up the
//! current simulation through the thread-local context and pushes the task
//! into its ready set. Nothing is allocated or reference-counted.
//!
//! ## Who can wake a task
//!
//! The early deadlock check (see `sync::deadlock`) may only call a task stuck
//! when nothing outside the wait-for graph can wake it. So the executor
//! counts the copies of each task's waker held *outside* lockstep's tracked
//! primitives: a timer, a `JoinSet`, a channel from another crate, a
//! hand-written future. There are two vtables with the same data word:
//!
//! - *uncounted*: the waker a poll hands to the task, and the copies that
//!   lockstep's sync primitives and `JoinHandle`s keep ([`tracked_clone`]):
//!   what they wait on is recorded in the task's `Waiting` list instead;
//! - *counted*: every `clone()`. Cloning adds one to the task's count, and
//!   dropping (or waking by value) takes one off.
//!
//! A task whose count is above zero may be woken by something lockstep does
//! not see, so it is never reported early. The count lives in its own
//! `RefCell`, apart from the task table, so a waker dropped anywhere (even
//! while the table is borrowed) can update it.
//!
//! A wake that arrives on a thread where that simulation is not running (a
//! real OS thread, a thread pool, a tokio runtime) cannot be applied without
//! a data race, and would make the run depend on the OS scheduler. It is
//! recorded in a small process-wide table instead, keyed by the
//! simulation's tag; the simulation checks the table when it stalls and at
//! its end, and fails with [`Failure::NonDeterminism`] naming the task and
//! the thread. The table is only a reporting channel: it never influences a
//! scheduling decision, so it cannot make runs differ.
//!
//! [`TaskId`]: crate::task::TaskId
//! [`Failure::NonDeterminism`]: crate::Failure::NonDeterminism

use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::context;
use crate::task::TaskId;

/// Where a task lives: its slot in the task table and its id (the id doubles
/// as the slot's generation).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct TaskKey {
    pub(crate) index: u32,
    pub(crate) id: TaskId,
}

impl TaskKey {
    fn pack(self, tag: u16) -> usize {
        (self.index as usize) | ((self.id.0 as usize & 0xFFFF) << 32) | ((tag as usize) << 48)
    }
}

/// A packed waker word, unpacked.
#[derive(Copy, Clone, Debug)]
pub(crate) struct WakeTarget {
    pub(crate) index: u32,
    pub(crate) id_low: u16,
    pub(crate) tag: u16,
}

fn unpack(word: usize) -> WakeTarget {
    WakeTarget {
        index: word as u32,
        id_low: (word >> 32) as u16,
        tag: (word >> 48) as u16,
    }
}

static NEXT_TAG: AtomicU16 = AtomicU16::new(1);

/// A tag for a new simulation. Tags only tell simulations apart for foreign
/// wake reports; they never reach a trace or a decision.
pub(crate) fn next_tag() -> u16 {
    NEXT_TAG.fetch_add(1, Ordering::Relaxed)
}

/// Copies held outside lockstep's tracked primitives: counted.
static COUNTED: RawWakerVTable =
    RawWakerVTable::new(clone, wake_counted, wake_by_ref, drop_counted);
/// The poll's own waker and the copies tracked primitives keep: not counted.
static UNCOUNTED: RawWakerVTable =
    RawWakerVTable::new(clone, wake_by_ref, wake_by_ref, drop_uncounted);

/// The (uncounted) waker of task `key` in the simulation tagged `tag`.
#[inline]
pub(crate) fn waker(key: TaskKey, tag: u16) -> Waker {
    let data = std::ptr::without_provenance::<()>(key.pack(tag));
    // SAFETY: the vtable functions below never dereference the data pointer:
    // it is a plain integer (built without provenance) that they unpack. They
    // touch no memory shared between threads except through the thread-local
    // context (only read on the calling thread) and the `FOREIGN` mutex, so
    // calling them from any thread, any number of times, is sound, as the
    // `RawWaker` contract requires. Clone returns the same word (with the
    // counted vtable, whose functions share these properties), and drop has
    // nothing to release.
    unsafe { Waker::from_raw(RawWaker::new(data, &UNCOUNTED)) }
}

/// Whether `waker` is a lockstep task waker (counted or not).
fn is_lockstep(waker: &Waker) -> bool {
    std::ptr::eq(waker.vtable(), &COUNTED) || std::ptr::eq(waker.vtable(), &UNCOUNTED)
}

/// The copy of a waker that a tracked lockstep primitive keeps while a task
/// waits on it: uncounted for lockstep wakers (the wait is recorded in the
/// task's `Waiting` list instead), an ordinary clone for any other waker.
pub(crate) fn tracked_clone(waker: &Waker) -> Waker {
    if !is_lockstep(waker) {
        return waker.clone();
    }
    let t = unpack(waker.data().addr());
    let key = TaskKey {
        index: t.index,
        // Only the low 16 bits of the id reach the data word.
        id: TaskId(u32::from(t.id_low)),
    };
    self::waker(key, t.tag)
}

/// Whether two wakers wake the same lockstep task (counted or not).
pub(crate) fn same_task(a: &Waker, b: &Waker) -> bool {
    a.will_wake(b) || (is_lockstep(a) && is_lockstep(b) && a.data() == b.data())
}

fn clone(data: *const ()) -> RawWaker {
    count(data, true);
    RawWaker::new(data, &COUNTED)
}

fn wake_counted(data: *const ()) {
    wake_by_ref(data);
    count(data, false);
}

fn drop_counted(data: *const ()) {
    count(data, false);
}

fn drop_uncounted(_: *const ()) {}

/// Adds or removes one counted copy of a task's waker.
fn count(data: *const (), up: bool) {
    let t = unpack(data.addr());
    context::try_with(|w| {
        if w.tag == t.tag {
            w.exec.count_waker(t.index, t.id_low, up);
        }
    });
}

fn wake_by_ref(data: *const ()) {
    let target = unpack(data.addr());
    let applied = context::try_with(|w| {
        if w.tag == target.tag {
            w.exec.wake(w, target.index, target.id_low);
            true
        } else {
            false
        }
    });
    if applied != Some(true) {
        record_foreign(target);
    }
}

/// A wake that did not happen on its simulation's thread.
#[derive(Clone, Debug)]
pub(crate) struct ForeignWake {
    pub(crate) target: WakeTarget,
    pub(crate) thread: String,
}

/// Foreign wakes not yet collected by their simulation. Bounded: a program
/// that wakes stale wakers of finished simulations forever cannot grow it.
static FOREIGN: Mutex<Vec<ForeignWake>> = Mutex::new(Vec::new());
static FOREIGN_PENDING: AtomicUsize = AtomicUsize::new(0);
const FOREIGN_CAP: usize = 256;

#[cold]
fn record_foreign(target: WakeTarget) {
    let current = std::thread::current();
    let thread = match current.name() {
        Some(name) => format!("thread '{name}'"),
        None => "an unnamed thread".to_string(),
    };
    let mut table = FOREIGN.lock().unwrap_or_else(|e| e.into_inner());
    if table.len() >= FOREIGN_CAP {
        table.remove(0);
    } else {
        FOREIGN_PENDING.fetch_add(1, Ordering::Relaxed);
    }
    table.push(ForeignWake { target, thread });
}

/// Takes the foreign wakes recorded for simulation `tag`. Cheap (one atomic
/// load) when there are none, which is always, in a correct program.
pub(crate) fn take_foreign(tag: u16) -> Vec<ForeignWake> {
    if FOREIGN_PENDING.load(Ordering::Relaxed) == 0 {
        return Vec::new();
    }
    let mut table = FOREIGN.lock().unwrap_or_else(|e| e.into_inner());
    let mut mine = Vec::new();
    table.retain(|f| {
        if f.target.tag == tag {
            mine.push(f.clone());
            false
        } else {
            true
        }
    });
    FOREIGN_PENDING.store(table.len(), Ordering::Relaxed);
    mine
}
