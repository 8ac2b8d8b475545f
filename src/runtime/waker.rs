//! Task wakers: one pointer-sized word, no allocation.
//!
//! A waker's data word packs the task's slot index (24 bits), the low 16 bits
//! of its [`TaskId`] (a generation: it tells a stale waker of a finished task
//! from a waker of the task now in the same slot) and the 24-bit tag of the
//! simulation run that made it. Cloning copies the word; waking looks up the
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
//! ## Wakes from elsewhere
//!
//! A wake that arrives where its run is not the current one (a real OS
//! thread, a thread pool, a tokio runtime, or this thread after the run
//! ended) is never applied: applying it from another thread would race, and
//! would make the run depend on the OS scheduler. Tags are handed out by a
//! small process-wide registry of *live* runs: a tag is unique among the
//! runs alive at once, and a wake whose tag names no live run is dropped on
//! the spot, so nothing of a run that ended can reach a later one, however
//! many runs came between (a tag is reused only after 16 million runs, and
//! only if its run has ended). A wake for a live run from another thread is
//! recorded in the registry; the run collects it when it is idle and at its
//! end, and lists it in [`Outcome::warnings`]. It never changes the run's
//! verdict, which the simulation alone decides: the woken task simply is not
//! woken (typically a deadlock, whose report then says where the wake came
//! from). The registry is only a reporting channel: it never influences a
//! scheduling decision, so it cannot make runs differ.
//!
//! [`Outcome::warnings`]: crate::Outcome::warnings
//! [`TaskId`]: crate::task::TaskId
//! [`Failure::NonDeterminism`]: crate::Failure::NonDeterminism

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
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

/// Bits of the slot index in a waker word: a run holds at most 2^24 tasks
/// alive at once.
pub(crate) const INDEX_BITS: u32 = 24;
/// Bits of the run tag in a waker word.
const TAG_BITS: u32 = 24;

impl TaskKey {
    fn pack(self, tag: u32) -> usize {
        debug_assert!(self.index < 1 << INDEX_BITS && tag < 1 << TAG_BITS);
        (self.index as usize)
            | ((self.id.0 as usize & 0xFFFF) << INDEX_BITS)
            | ((tag as usize) << (INDEX_BITS + 16))
    }
}

/// A packed waker word, unpacked.
#[derive(Copy, Clone, Debug)]
pub(crate) struct WakeTarget {
    pub(crate) index: u32,
    pub(crate) id_low: u16,
    pub(crate) tag: u32,
}

fn unpack(word: usize) -> WakeTarget {
    WakeTarget {
        index: (word & ((1 << INDEX_BITS) - 1)) as u32,
        id_low: (word >> INDEX_BITS) as u16,
        tag: ((word >> (INDEX_BITS + 16)) & ((1 << TAG_BITS) - 1)) as u32,
    }
}

/// The runs alive in this process, by tag, and the wakes that reached them
/// from other threads.
///
/// Tags are handed to threads in blocks: a thread takes a block of fresh
/// tags under this registry's lock once every `BLOCK_TAGS` runs, and
/// lists its live runs' tags in its own [`ThreadTags`], which only it and
/// the rare foreign wake lock. Threads running seeds in parallel thus do
/// not contend for a lock on every run.
struct Registry {
    /// Where the next block of tags starts.
    next: u32,
    /// Every thread that took a block: where its live tags are listed.
    threads: Vec<Weak<ThreadTags>>,
    foreign: Vec<ForeignWake>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 1,
    threads: Vec::new(),
    foreign: Vec::new(),
});

/// Live tags of runs started where a thread's block was not reachable (a
/// thread being torn down).
static OTHER_LIVE: ThreadTags = ThreadTags {
    live: Mutex::new(Vec::new()),
};

/// Tags a thread hands out at a time.
const BLOCK_TAGS: u32 = 256;

/// The tags of the runs alive on one thread: usually one, more while a
/// run is started inside another.
#[derive(Debug, Default)]
pub(crate) struct ThreadTags {
    live: Mutex<Vec<u32>>,
}

impl ThreadTags {
    fn live(&self) -> std::sync::MutexGuard<'_, Vec<u32>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// This thread's block of fresh tags: the next one, the block's end.
struct Block {
    next: u32,
    end: u32,
    tags: Arc<ThreadTags>,
}

thread_local! {
    static BLOCK: RefCell<Option<Block>> = const { RefCell::new(None) };
}

impl Registry {
    /// The lists of the threads still alive (ended threads dropped).
    fn homes(&mut self) -> Vec<Arc<ThreadTags>> {
        self.threads.retain(|t| t.strong_count() > 0);
        self.threads.iter().filter_map(Weak::upgrade).collect()
    }

    /// Every live tag, wherever it is listed.
    fn live_tags(&mut self) -> Vec<u32> {
        let mut all = OTHER_LIVE.live().clone();
        for t in self.homes() {
            all.extend(t.live().iter().copied());
        }
        all
    }

    /// The start of a block of tags none of which is live (a tag is
    /// reused only after 16 million runs, and only if its run has ended).
    fn take_block(&mut self) -> u32 {
        let live = self.live_tags();
        loop {
            let start = self.next;
            let end = start + BLOCK_TAGS;
            if end > 1 << TAG_BITS {
                self.next = 1;
                continue;
            }
            self.next = end;
            if !live.iter().any(|t| (start..end).contains(t)) {
                return start;
            }
        }
    }
}
/// Foreign wakes waiting in the registry (a cheap check for the usual none).
static FOREIGN_PENDING: AtomicUsize = AtomicUsize::new(0);
const FOREIGN_CAP: usize = 256;

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A live run's tag; dropping it ends the run for wakes: later wakes with
/// this tag are ignored. Tags only tell runs apart for wakes and foreign
/// wake reports; they never reach a trace or a decision.
#[derive(Debug)]
pub(crate) struct RunTag(pub(crate) u32, Option<Arc<ThreadTags>>);

impl RunTag {
    pub(crate) fn new() -> RunTag {
        let mine = BLOCK.try_with(|b| {
            let mut b = b.borrow_mut();
            if b.as_ref().is_none_or(|b| b.next == b.end) {
                let mut r = registry();
                let tags = match b.take() {
                    Some(old) => old.tags,
                    None => {
                        let t = Arc::new(ThreadTags::default());
                        r.threads.push(Arc::downgrade(&t));
                        t
                    }
                };
                let start = r.take_block();
                *b = Some(Block {
                    next: start,
                    end: start + BLOCK_TAGS,
                    tags,
                });
            }
            let b = b.as_mut().expect("a block was just taken");
            let tag = b.next;
            b.next += 1;
            b.tags.live().push(tag);
            RunTag(tag, Some(b.tags.clone()))
        });
        mine.unwrap_or_else(|_| {
            let mut r = registry();
            let tag = r.take_block();
            OTHER_LIVE.live().push(tag);
            RunTag(tag, None)
        })
    }
}

impl Drop for RunTag {
    fn drop(&mut self) {
        let tag = self.0;
        let home = self.1.as_deref().unwrap_or(&OTHER_LIVE);
        home.live().retain(|t| *t != tag);
        // A foreign wake is recorded while its run's list is locked, so
        // one recorded before the removal above is visible here.
        if FOREIGN_PENDING.load(Ordering::Relaxed) > 0 {
            let mut r = registry();
            r.foreign.retain(|f| f.target.tag != tag);
            FOREIGN_PENDING.store(r.foreign.len(), Ordering::Relaxed);
        }
    }
}

/// Copies held outside lockstep's tracked primitives: counted.
static COUNTED: RawWakerVTable =
    RawWakerVTable::new(clone, wake_counted, wake_by_ref, drop_counted);
/// The poll's own waker and the copies tracked primitives keep: not counted.
static UNCOUNTED: RawWakerVTable =
    RawWakerVTable::new(clone, wake_by_ref, wake_by_ref, drop_uncounted);

/// Whether `waker` is task `key`'s own, in the simulation tagged `tag`
/// (the poll's waker, or a clone of it): its wake is then that task's
/// wake, with no word to unpack. The vtable is compared too: another
/// waker's data is a pointer, which may equal a packed word.
#[inline]
pub(crate) fn is_own(waker: &Waker, key: TaskKey, tag: u32) -> bool {
    waker.data().addr() == key.pack(tag) && is_lockstep(waker)
}

/// The (uncounted) waker of task `key` in the simulation tagged `tag`.
#[inline]
pub(crate) fn waker(key: TaskKey, tag: u32) -> Waker {
    let data = std::ptr::without_provenance::<()>(key.pack(tag));
    // SAFETY: the vtable functions below never dereference the data pointer:
    // it is a plain integer (built without provenance) that they unpack. They
    // touch no memory shared between threads except through the thread-local
    // context (only read on the calling thread) and the run registry mutex, so
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
        if w.tag.0 == t.tag {
            w.exec.count_waker(t.index, t.id_low, up);
        }
    });
}

fn wake_by_ref(data: *const ()) {
    let target = unpack(data.addr());
    let applied = context::try_with(|w| {
        if w.tag.0 == target.tag {
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

/// A wake that did not happen where its run is current: recorded for its
/// run if that run is alive (on another thread), dropped if it ended.
#[cold]
fn record_foreign(target: WakeTarget) {
    let current = std::thread::current();
    let thread = match current.name() {
        Some(name) => format!("thread '{name}'"),
        None => "an unnamed thread".to_string(),
    };
    let mut r = registry();
    let homes = r.homes();
    // The list that holds the tag stays locked while the wake is recorded:
    // the run's `RunTag::drop` (which takes that lock first) then sees the
    // wake pending and removes it.
    let mut holding = None;
    for home in homes.iter().map(|t| &**t).chain([&OTHER_LIVE]) {
        let live = home.live();
        if live.contains(&target.tag) {
            holding = Some(live);
            break;
        }
    }
    let Some(_live) = holding else {
        return;
    };
    if r.foreign.len() >= FOREIGN_CAP {
        r.foreign.remove(0);
    }
    r.foreign.push(ForeignWake { target, thread });
    FOREIGN_PENDING.store(r.foreign.len(), Ordering::Relaxed);
}

/// Takes the foreign wakes recorded for the run tagged `tag`. Cheap (one
/// atomic load) when there are none, which is always, in a correct program.
pub(crate) fn take_foreign(tag: u32) -> Vec<ForeignWake> {
    if FOREIGN_PENDING.load(Ordering::Relaxed) == 0 {
        return Vec::new();
    }
    let mut r = registry();
    let mut mine = Vec::new();
    r.foreign.retain(|f| {
        if f.target.tag == tag {
            mine.push(f.clone());
            false
        } else {
            true
        }
    });
    FOREIGN_PENDING.store(r.foreign.len(), Ordering::Relaxed);
    mine
}
