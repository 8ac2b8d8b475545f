//! The executor: the task table, the ready set, and one scheduling step.
//!
//! Tasks live in a table of slots (a slab): a task's [`TaskKey`] is its slot
//! index plus its [`TaskId`], which doubles as the slot's generation, so a
//! stale key (of a task that finished, its slot since reused) never reaches
//! the new occupant. The ready set is a queue of keys; a task is in it at
//! most once (its `queued` flag), and keys of tasks that ended while queued
//! are skipped when picked.
//!
//! Invariant that keeps `RefCell`s from ever clashing: the executor never
//! holds a borrow of its table or ready set while running user code (a poll,
//! a future's `Drop`, a waker). User code may call back into the executor
//! (spawn, wake, abort) at any time.
//!
//! Each step the [`Policy`] picks one ready task: uniformly at random from
//! the seeded scheduler stream (`Random`), or the oldest (`Fifo`).
//!
//! Groups: a task may belong to a [`Group`] (`Entry::host`: the network
//! maps each simulated host onto one group), inherited from the task that
//! spawned it. A group's tasks are exempt from the leak check (servers run
//! until the simulation ends), can be listed together (the network aborts
//! them when their host crashes), and are *parked* while the group is
//! paused: a picked task of a paused group stays marked `queued` (so wakes
//! do not queue it twice) and moves to the parked list until the group
//! resumes. The clock keeps moving meanwhile, as it does for a process
//! stopped by a long GC.
//!
//! What a blocked task waits on is the list of [`Waiting`] items that the
//! lockstep futures it polled noted during its last poll (cleared before
//! every poll). A task can wait on several things at once (`select`,
//! `timeout`), and each is an alternative: any of them may let it go on.
//! After a poll returns `Pending`, the layers' `after_pending` hooks (the
//! sync layer's deadlock analysis) look at that list, only if it holds a
//! wait they follow: a `JoinHandle`, or a layer's wait marked followed (a
//! lock, a semaphore, a channel); see `ext`.

use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::Severity;
use super::ext::{Group, LayerWait};
use super::hugevec::HugeVec;
use super::panics::{self, PanicPayload};
use super::policy::{Pick, ReadyView, Scheduler};
use super::waker::{self, TaskKey};
use super::world::World;
use crate::check::{BlockedTask, Failure, PanicReport, Site, TaskInfo};
use crate::runtime::ready::ReadyQueue;
use crate::task::{JoinError, SetLink, TaskId, TaskRef, TaskState};
use crate::time::Instant;
use crate::trace::store::code;
use crate::trace::{EventKind, Verbosity};

/// One thing a blocked task waits on, as noted by a lockstep future that
/// returned `Pending` during the task's last poll. Used for deadlock, leak
/// and limit reports, and by the early deadlock check. A task that noted
/// nothing waits on something lockstep does not know about (a foreign
/// future, or a plain `yield`).
#[derive(Clone, Debug)]
pub(crate) enum Waiting {
    /// The `JoinHandle` of a task.
    Join(TaskKey),
    /// The next task of a `JoinSet` of this many tasks.
    JoinSet(usize),
    /// A resource of a layer built on the runtime (a sync primitive, a
    /// socket), which that layer describes and walks.
    Layer(LayerWait),
}

impl Waiting {
    /// Whether the deadlock analysis follows this wait (see
    /// `ext::Layer::after_pending`).
    #[inline]
    pub(crate) fn followed(&self) -> bool {
        match self {
            Waiting::Join(_) => true,
            Waiting::JoinSet(_) => false,
            Waiting::Layer(l) => l.followed,
        }
    }
}

/// One live task, in its slot of the table.
///
/// Kept to 40 bytes: a run may hold a million tasks, and each entry is
/// memory the first spawn into its slot faults in (W1's 100,000 tasks ran
/// 5 ms slower, in 28, with 64 more bytes per entry). What only some tasks
/// have, a name, a list of waits and a timer's deadline, lives beside the
/// table ([`Beside`]), flagged in the entry; a host is packed into 4
/// bytes, and the task's cell is a thin pointer.
pub(crate) struct Entry {
    pub(crate) id: TaskId,
    /// `None` for the main task, whose future `Sim::run` holds.
    cell: Option<TaskRef>,
    pub(crate) site: &'static Location<'static>,
    pub(crate) daemon: bool,
    /// The task has a name, in `Beside::names` (the main task's is implied
    /// by its id, and not stored).
    named: bool,
    /// The task noted a wait since its last poll began: its list in
    /// `Beside::waits` may hold something.
    waited: bool,
    /// The group (the network's host) the task runs in (`None`: the main
    /// task and tasks spawned outside any group).
    pub(crate) host: Option<Group>,
    queued: bool,
    /// Ready, but held back because its host is paused.
    parked: bool,
    /// Late polls wait for this task's next poll: it has never been polled
    /// (just spawned), or its own timer (a sleep, a timeout) made it ready
    /// (see `World::maybe_move_early`).
    holds_clock: bool,
    abort_requested: bool,
    pub(crate) polls: u64,
    /// The task armed a timer in its last poll: its earliest deadline is
    /// in `Beside::deadlines`.
    timed: bool,
}

impl Entry {
    /// Whether the task is in the ready set.
    pub(crate) fn queued(&self) -> bool {
        self.queued
    }

    /// The task's id, name (`stored` beside the table; the main task's is
    /// implied) and spawn site.
    fn info(&self, stored: Option<&str>) -> TaskInfo {
        let name = if self.id == TaskId::MAIN {
            Some(MAIN_NAME)
        } else {
            stored
        };
        TaskInfo {
            id: self.id,
            name: name.map(str::to_string),
            spawned_at: Site::from_location(self.site),
        }
    }
}

/// A live task's entry with what lives beside it in the table: what
/// `Executor::inspect` shows. Looks beside the entry only when asked: most
/// callers read the entry alone.
pub(crate) struct EntryRef<'a> {
    entry: &'a Entry,
    beside: &'a Beside,
    index: u32,
}

impl std::ops::Deref for EntryRef<'_> {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        self.entry
    }
}

impl<'a> EntryRef<'a> {
    pub(crate) fn info(&self) -> TaskInfo {
        let stored = self.beside.names.get(self.index as usize);
        let name = stored
            .filter(|_| self.entry.named)
            .and_then(Option::as_deref);
        self.entry.info(name)
    }

    /// The earliest timer this task armed during its last poll.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let at = self.beside.deadlines.get(self.index as usize);
        at.filter(|_| self.entry.timed)
            .map(|&ns| Instant::from_nanos(ns))
    }

    /// What the task waited on in its last poll (alternatives).
    pub(crate) fn waiting(&self) -> &'a [Waiting] {
        match self.beside.waits.get(self.index as usize) {
            Some(w) if self.entry.waited => &w[..],
            _ => &[],
        }
    }
}

/// An entry taken out of the table, with its name.
pub(crate) struct Removed {
    entry: Entry,
    name: Option<Arc<str>>,
}

impl std::ops::Deref for Removed {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        &self.entry
    }
}

impl Removed {
    fn info(&self) -> TaskInfo {
        self.entry.info(self.name.as_deref())
    }
}

/// Ready queues longer than this have the next picks' tasks prefetched
/// (see `Executor::prefetch_next`): shorter ones stay in cache anyway.
const PREFETCH_ABOVE: usize = 1024;
/// How many picks ahead the task's allocation, its table entry and its
/// ready-queue slot are prefetched (each level needs the one before it in
/// cache). Chosen on W1: one step ahead left most misses in place; these
/// distances took W1 from 60 ms to 31-35 ms (the noise of this machine
/// hides finer differences).
const D_CELL: usize = 1;
const D_ENTRY: usize = 3;
const D_KEY: usize = 5;

/// A hint to the CPU to start loading the cache line holding `p`.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch has no architectural effect: it never faults and
    // reads nothing the program sees, whatever the address (SSE, which
    // provides it, is part of the x86_64 baseline).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// What only some tasks have, per table slot, beside the table (see
/// [`Entry`]). Each list is grown only as far as the last slot that used
/// it: a run of tasks that never wait, have no name and arm no timer (W1)
/// has none. A slot's value means something only while its entry's flag
/// says so.
#[derive(Default)]
struct Beside {
    /// What the occupant waited on in its last poll (`Entry::waited`).
    waits: Vec<Vec<Waiting>>,
    /// The occupant's name (`Entry::named`).
    names: Vec<Option<Arc<str>>>,
    /// The earliest deadline, in nanoseconds, of the timers the occupant
    /// armed in its last poll (`Entry::timed`).
    deadlines: Vec<u64>,
    /// The occupant's link to its `JoinSet`, notified when it ends. Looked
    /// at only once some task of the run joined a set
    /// (`Executor::linked`); the entry has no flag for it.
    links: Vec<Option<SetLink>>,
}

impl Beside {
    /// Emptied for the next run; each list of waits keeps its room, so
    /// that the next run's tasks that wait in the same slots allocate
    /// nothing.
    fn clear(&mut self) {
        self.waits.iter_mut().for_each(Vec::clear);
        self.names.clear();
        self.deadlines.clear();
        self.links.clear();
    }

    /// Takes slot `index`'s link.
    #[inline]
    fn take_link(&mut self, index: u32) -> Option<SetLink> {
        self.links.get_mut(index as usize).and_then(Option::take)
    }
}

#[derive(Default)]
struct Table {
    /// On huge pages once it holds thousands of tasks (see `HugeVec`).
    slots: HugeVec<Option<Entry>>,
    free: Vec<u32>,
    next_id: u32,
    beside: Beside,
}

impl Table {
    /// The entry in `key`'s slot with what lives beside it.
    fn view(&self, key: TaskKey) -> Option<EntryRef<'_>> {
        self.get(key).map(|e| self.view_of(key.index, e))
    }

    fn view_of<'a>(&'a self, index: u32, entry: &'a Entry) -> EntryRef<'a> {
        EntryRef {
            entry,
            beside: &self.beside,
            index,
        }
    }

    /// The live entry of `key`, and what lives beside the table, borrowed
    /// apart.
    #[inline(always)]
    fn get_beside(&mut self, key: TaskKey) -> Option<(&mut Entry, &mut Beside)> {
        let e = self.slots.get_mut(key.index as usize)?.as_mut();
        Some((e.filter(|e| e.id == key.id)?, &mut self.beside))
    }

    fn get(&self, key: TaskKey) -> Option<&Entry> {
        self.slots
            .get(key.index as usize)?
            .as_ref()
            .filter(|e| e.id == key.id)
    }

    fn get_mut(&mut self, key: TaskKey) -> Option<&mut Entry> {
        self.slots
            .get_mut(key.index as usize)?
            .as_mut()
            .filter(|e| e.id == key.id)
    }

    fn insert(&mut self, entry: Entry) -> TaskKey {
        let id = entry.id;
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(entry);
                i
            }
            None => {
                if self.slots.capacity() == 0 {
                    self.slots.reserve(FIRST_TASKS);
                }
                assert!(
                    self.slots.len() < 1 << waker::INDEX_BITS,
                    "a lockstep run holds more than {} tasks alive at once; end or abort \
                     some (a task that spawns in a loop without awaiting is a common cause)",
                    1u32 << waker::INDEX_BITS
                );
                self.slots.push(Some(entry));
                (self.slots.len() - 1) as u32
            }
        };
        TaskKey { index, id }
    }

    fn remove(&mut self, key: TaskKey) -> Option<Removed> {
        self.get(key)?;
        if self.free.capacity() == 0 {
            self.free.reserve(FIRST_TASKS);
        }
        self.free.push(key.index);
        let entry = self.slots[key.index as usize].take()?;
        if entry.waited {
            // Emptied, not freed: the slot's next task may wait too.
            self.beside.waits[key.index as usize].clear();
        }
        let name = if entry.named {
            self.beside
                .names
                .get_mut(key.index as usize)
                .and_then(Option::take)
        } else {
            None
        };
        // A link not taken before (by a path that notifies it) goes: the
        // slot's next task is in no set.
        drop(self.beside.take_link(key.index));
        Some(Removed { entry, name })
    }

    /// Keys of live entries, in id order.
    fn keys_by_id(&self) -> Vec<TaskKey> {
        let mut keys: Vec<TaskKey> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                e.as_ref().map(|e| TaskKey {
                    index: i as u32,
                    id: e.id,
                })
            })
            .collect();
        keys.sort_by_key(|k| k.id);
        keys
    }

    /// Live entries, in id order (slot order is not spawn order).
    fn sorted(&self) -> Vec<EntryRef<'_>> {
        let mut v: Vec<EntryRef<'_>> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some(self.view_of(i as u32, e.as_ref()?)))
            .collect();
        v.sort_by_key(|e| e.id);
        v
    }
}

pub(crate) struct Executor {
    table: RefCell<Table>,
    ready: RefCell<ReadyQueue>,
    current: Cell<Option<TaskKey>>,
    /// The host of the task being polled.
    current_host: Cell<Option<Group>>,
    /// The host of the task polled last (read by poll cost after the poll).
    polled_host: Cell<Option<Group>>,
    /// Hosts that are paused (few; usually none).
    paused: RefCell<Vec<Group>>,
    /// Ready tasks of paused hosts, in the order they were picked.
    parked: RefCell<Vec<(Group, TaskKey)>>,
    /// The scheduling policy and the schedule recorder.
    pub(crate) sched: RefCell<Scheduler>,
    /// The ready queue's length at the last prefetching pick.
    last_ready: Cell<usize>,
    /// The task being polled noted a wait or its own abort, so its entry
    /// is looked at again after a `Pending` poll, which clears the flag.
    /// Left set by a poll that ended otherwise, it costs the next
    /// `Pending` poll one look-up that finds nothing, never a missed one.
    poll_noted: Cell<bool>,
    /// A task of this run joined a `JoinSet` (see `Beside::links`): a task
    /// that ends looks for its link only then.
    linked: Cell<bool>,
    /// Tasks that panicked while their handle was alive: observed if the
    /// handle takes the result, reported if the handle is dropped first or
    /// the run ends.
    panicked: RefCell<Vec<(TaskRef, PanicReport)>>,
    /// Per task slot: the low 16 bits of the occupant's id, and how many
    /// counted copies of its waker are alive (see `waker.rs`). Apart from
    /// the table so that a waker dropped while the table is borrowed can
    /// still be counted.
    wakers_out: RefCell<Vec<(u16, u32)>>,
    /// Wakes of the polled task by itself in this poll.
    self_wakes: Cell<u64>,
    /// Set when a poll was stopped for waking itself too often.
    poll_livelock: Cell<Option<u64>>,
    /// Tasks that returned `Err` while their handle was alive: reported if
    /// the handle is dropped without taking the output.
    errored: RefCell<Vec<(TaskRef, TaskInfo)>>,
    /// Tasks woken from another thread, and by which.
    foreign: RefCell<Vec<(TaskId, String)>>,
    /// At least as many keys in the ready set as belong to tasks that
    /// ended while queued (counted when such a task is removed, uncounted
    /// when its key is picked and skipped).
    stale_keys: Cell<usize>,
    /// Live tasks that hold the clock (`Entry::holds_clock`).
    clock_holders: Cell<u32>,
    /// Whether the wakes happening now come from a firing timer.
    timer_waking: Cell<bool>,
    /// Per task slot: how many times the task may have handed values it
    /// held to another task (it spawned one, or sent a message a layer
    /// says could carry one). Kept here, beside the waker counts, for the
    /// same reader: the sync layer's deadlock analysis, which takes a
    /// channel handle for held by a task only while this count stands
    /// (`sync/places.rs`). Read on every channel operation.
    moves: RefCell<Vec<u32>>,
}

/// Self-wakes of one task within one poll past which the poll is taken to
/// loop forever. A correct poll wakes itself a handful of times (a `select`
/// over a few branches that each yield once); a million is a loop that
/// re-polls a self-waking future. Waker clones do not count: a poll that
/// arms a hundred thousand timers at once (a `join_all` of sleeps) clones
/// its waker that often, and is fine.
pub(crate) const SELF_WAKE_LIMIT: u64 = 1_000_000;

/// Room made for this many tasks when a per-task table first grows: a
/// fresh small run then allocates each table once instead of growing it
/// four times (1, 4, 8, 16).
pub(crate) const FIRST_TASKS: usize = 16;

/// Entry `i` of a table kept per task slot (or per task id), grown to hold
/// it: with room for [`FIRST_TASKS`] at first, then filled to its capacity
/// (or doubled) at once, new entries made by `fill`. Slots and ids count
/// up one a spawn: grown to exactly `i + 1`, the table was resized on
/// every spawn. Entries past the last task read as what `fill` makes,
/// which every caller's "nothing here yet" is.
pub(crate) fn per_task<T>(v: &mut Vec<T>, i: usize, fill: impl FnMut() -> T) -> &mut T {
    if v.len() <= i {
        if v.capacity() == 0 {
            v.reserve(FIRST_TASKS);
        }
        let len = (i + 1).max(v.capacity()).max(v.len() * 2);
        v.resize_with(len, fill);
    }
    &mut v[i]
}

/// The panic payload that stops a poll found looping (see
/// [`Executor::after_poll`]).
pub(crate) struct PollLivelock;

/// The main task's name.
const MAIN_NAME: &str = "main";

pub(crate) const MAIN_KEY: TaskKey = TaskKey {
    index: 0,
    id: TaskId::MAIN,
};

/// What one step did.
pub(crate) enum Step {
    /// Nothing was ready.
    Idle,
    /// The main task is due; `Sim::run` polls it.
    Main,
    /// A spawned task was polled.
    Polled,
    /// The run cannot go on (a replayed schedule diverged).
    Stop,
}

impl ReadyView for Executor {
    fn runnable(&self, key: TaskKey) -> bool {
        self.table
            .borrow()
            .get(key)
            .is_some_and(|e| e.queued && !e.parked && !e.host.is_some_and(|h| self.is_paused(h)))
    }
}

/// The per-task tables of the last finished run on this thread, emptied,
/// for the next run to fill: a sweep of small seeds then allocates none of
/// them per run (five allocations and frees of a fresh run). Kept only
/// while small, so a large run does not leave its memory behind.
struct Spare {
    slots: HugeVec<Option<Entry>>,
    free: Vec<u32>,
    beside: Beside,
    ready: ReadyQueue,
    wakers_out: Vec<(u16, u32)>,
    moves: Vec<u32>,
}

/// The largest table (in tasks) a finished run hands on to the next.
const SPARE_UP_TO: usize = 256;

thread_local! {
    static SPARE: RefCell<Option<Spare>> = const { RefCell::new(None) };
}

impl Executor {
    pub(crate) fn new(sched: Scheduler) -> Executor {
        let spare = SPARE.try_with(|s| s.borrow_mut().take()).ok().flatten();
        let Spare {
            slots,
            free,
            beside,
            ready,
            wakers_out,
            moves,
        } = spare.unwrap_or_else(|| Spare {
            slots: HugeVec::new(),
            free: Vec::new(),
            beside: Beside::default(),
            ready: ReadyQueue::with_capacity(64),
            wakers_out: Vec::new(),
            moves: Vec::new(),
        });
        Executor {
            table: RefCell::new(Table {
                slots,
                free,
                next_id: 0,
                beside,
            }),
            ready: RefCell::new(ready),
            current: Cell::new(None),
            current_host: Cell::new(None),
            polled_host: Cell::new(None),
            paused: RefCell::new(Vec::new()),
            parked: RefCell::new(Vec::new()),
            sched: RefCell::new(sched),
            last_ready: Cell::new(0),
            poll_noted: Cell::new(false),
            linked: Cell::new(false),
            panicked: RefCell::new(Vec::new()),
            wakers_out: RefCell::new(wakers_out),
            self_wakes: Cell::new(0),
            poll_livelock: Cell::new(None),
            foreign: RefCell::new(Vec::new()),
            errored: RefCell::new(Vec::new()),
            stale_keys: Cell::new(0),
            clock_holders: Cell::new(0),
            timer_waking: Cell::new(false),
            moves: RefCell::new(moves),
        }
    }

    /// Hands the per-task tables, emptied, to the next run on this thread
    /// (see [`Spare`]). Called once the run is over; does nothing while a
    /// task's future is still in the table (it drops with the executor).
    pub(crate) fn recycle(&self) {
        let mut t = self.table.borrow_mut();
        let large = t.slots.capacity().max(self.ready.borrow().capacity()) > SPARE_UP_TO;
        if large || t.slots.iter().flatten().any(|e| e.cell.is_some()) {
            return;
        }
        let mut spare = Spare {
            slots: std::mem::take(&mut t.slots),
            free: std::mem::take(&mut t.free),
            beside: std::mem::take(&mut t.beside),
            ready: std::mem::take(&mut *self.ready.borrow_mut()),
            wakers_out: std::mem::take(&mut *self.wakers_out.borrow_mut()),
            moves: std::mem::take(&mut *self.moves.borrow_mut()),
        };
        drop(t);
        spare.slots.clear();
        spare.free.clear();
        spare.beside.clear();
        spare.ready.clear();
        spare.wakers_out.clear();
        spare.moves.clear();
        let _ = SPARE.try_with(|s| *s.borrow_mut() = Some(spare));
    }

    fn new_entry(
        id: TaskId,
        cell: Option<TaskRef>,
        named: bool,
        site: &'static Location<'static>,
        daemon: bool,
        host: Option<Group>,
    ) -> Entry {
        Entry {
            id,
            cell,
            site,
            daemon,
            named,
            waited: false,
            host,
            queued: true,
            parked: false,
            // A new task holds the clock until its first poll.
            holds_clock: true,
            abort_requested: false,
            polls: 0,
            timed: false,
        }
    }

    /// Registers the main task: id `#0`, slot 0, ready.
    pub(crate) fn spawn_main(&self, w: &World, site: &'static Location<'static>) {
        let mut t = self.table.borrow_mut();
        debug_assert_eq!(t.next_id, 0);
        t.next_id = 1;
        let key = t.insert(Self::new_entry(
            TaskId::MAIN,
            None,
            false,
            site,
            false,
            None,
        ));
        drop(t);
        debug_assert_eq!(key, MAIN_KEY);
        self.clock_holders.set(self.clock_holders.get() + 1);
        self.ready.borrow_mut().push_back(key);
        w.record_spawn(None, TaskId::MAIN, Some(MAIN_NAME), None, None);
    }

    pub(crate) fn spawn(
        &self,
        w: &World,
        cell: TaskRef,
        name: Option<Arc<str>>,
        daemon: bool,
        host: Option<Group>,
        site: &'static Location<'static>,
    ) -> TaskKey {
        let mut t = self.table.borrow_mut();
        let id = TaskId(t.next_id);
        t.next_id = t
            .next_id
            .checked_add(1)
            .expect("a lockstep run spawned more than 4 billion tasks");
        let key = t.insert(Self::new_entry(
            id,
            Some(cell),
            name.is_some(),
            site,
            daemon,
            host,
        ));
        if let Some(name) = &name {
            *per_task(&mut t.beside.names, key.index as usize, || None) = Some(name.clone());
        }
        drop(t);
        self.reset_waker_count(key);
        self.clock_holders.set(self.clock_holders.get() + 1);
        self.ready.borrow_mut().push_back(key);
        w.stats.spawned.set(w.stats.spawned.get() + 1);
        w.record_spawn(self.current_id(), id, name.as_deref(), Some(site), host);
        if let (Some(wd), Some(name)) = (&w.watchdog, name) {
            wd.name_task(id.0, name);
        }
        key
    }

    /// Counts one wake of the task being polled by itself;
    /// past [`SELF_WAKE_LIMIT`] in one poll, stops the poll with a panic
    /// (see `LivelockKind::WithinPoll`).
    #[inline]
    fn note_self_wake(&self, index: u32, id_low: u16) {
        let Some(cur) = self.current.get() else {
            return;
        };
        if cur.index != index || cur.id.0 as u16 != id_low {
            return;
        }
        self.count_self_wake(|| {});
    }

    /// Counts a wake of the task being polled by itself (see
    /// [`Executor::note_self_wake`]); `before_stop` runs before the poll
    /// is stopped.
    #[inline]
    fn count_self_wake(&self, before_stop: impl FnOnce()) {
        let n = self.self_wakes.get() + 1;
        self.self_wakes.set(n);
        // Never while unwinding: a second panic would abort the process.
        if n >= SELF_WAKE_LIMIT && !std::thread::panicking() {
            before_stop();
            self.poll_livelock.set(Some(n));
            std::panic::panic_any(PollLivelock);
        }
    }

    /// After a poll returned (or unwound): a livelock found inside it fails
    /// the run before anything else is made of the poll's result.
    #[inline]
    pub(crate) fn after_poll(&self, w: &World, key: TaskKey) {
        if self.poll_livelock.get().is_some() {
            self.poll_looped(w, key);
        }
    }

    #[cold]
    #[inline(never)]
    fn poll_looped(&self, w: &World, key: TaskKey) {
        if let Some(wakes) = self.poll_livelock.take() {
            let found = self.inspect(key, |e| (e.info(), e.polls));
            if let Some((info, polls)) = found {
                w.poll_livelock(info, wakes, polls);
            }
        }
    }

    /// A yield of the task being polled: records it, and wakes the task
    /// if `waker` is its own (see [`waker::is_own`]), as
    /// `waker.wake_by_ref()` would, without the call through the vtable
    /// and a second look-up of the run; the yield and the wake are then
    /// recorded together (the records and their order are those of the
    /// two apart). Returns `false`, having only recorded the yield, for
    /// any other waker: the caller wakes it.
    #[inline(always)]
    pub(crate) fn yield_current(&self, w: &World, waker: &std::task::Waker) -> bool {
        let yielded = || w.record_plain(Verbosity::Full, code::YIELD, 0);
        let Some(cur) = self
            .current
            .get()
            .filter(|&cur| waker::is_own(waker, cur, w.tag.0))
        else {
            yielded();
            return false;
        };
        // `wake` for the task being polled.
        self.count_self_wake(yielded);
        if self.make_ready(cur.index, cur.id.0 as u16).is_some() {
            w.record_yield_woke();
        } else {
            yielded();
        }
        true
    }

    /// Puts task `index` in the ready set if its id still matches and it
    /// is not there yet, holding the clock if a firing timer woke it.
    /// Returns its key if it was put there (the caller records the wake).
    #[inline(always)]
    fn make_ready(&self, index: u32, id_low: u16) -> Option<TaskKey> {
        let mut t = self.table.borrow_mut();
        let e = t.slots.get_mut(index as usize)?.as_mut()?;
        if e.id.0 as u16 != id_low || e.queued {
            return None;
        }
        e.queued = true;
        if self.timer_waking.get() && !e.holds_clock {
            e.holds_clock = true;
            self.clock_holders.set(self.clock_holders.get() + 1);
        }
        let key = TaskKey { index, id: e.id };
        drop(t);
        self.ready.borrow_mut().push_back(key);
        Some(key)
    }

    /// Makes task `index` ready if its id still matches (a waker's wake).
    #[inline]
    pub(crate) fn wake(&self, w: &World, index: u32, id_low: u16) {
        self.note_self_wake(index, id_low);
        if let Some(key) = self.make_ready(index, id_low) {
            w.record_plain(Verbosity::Full, code::WAKE, key.id.as_u32());
        }
    }

    /// Picks the next ready task, per the policy, and readies its entry
    /// for the poll (one table look-up for both). Inlined into `step`, its
    /// only caller: returned through memory, `Picked` cost a dozen
    /// instructions a step.
    #[inline(always)]
    fn pick(&self) -> Option<(TaskKey, usize)> {
        // Held across the loop (no user code runs here): one borrow per
        // step for the pick and its record.
        let mut sched = self.sched.borrow_mut();
        loop {
            let n;
            let key = {
                let mut ready = self.ready.borrow_mut();
                n = ready.len();
                if n == 0 {
                    return None;
                }
                match sched.pick(&mut ready, self) {
                    Pick::Run(key) => key,
                    Pick::Idle => return None,
                }
            };
            let mut t = self.table.borrow_mut();
            let Some(e) = t.get_mut(key) else {
                // The key of a task that ended while queued.
                self.stale_keys.set(self.stale_keys.get().saturating_sub(1));
                continue;
            };
            if e.queued {
                if let Some(h) = e.host.filter(|h| self.is_paused(*h)) {
                    // Stays `queued`: released as is when the host resumes.
                    e.parked = true;
                    self.parked.borrow_mut().push((h, key));
                    continue;
                }
                e.queued = false;
                sched.record_run(key, |last| match t.get(last) {
                    Some(e) => e.queued && !e.parked,
                    // Ended: its key is in the set only if it ended queued.
                    None => self.stale_keys.get() > 0 && self.ready.borrow().contains(&last),
                });
                if n > PREFETCH_ABOVE {
                    self.prefetch_next(&mut sched, &t, n);
                }
                return Some((key, n));
            }
        }
    }

    /// Asks the CPU to load what the coming picks will probably touch,
    /// while this step runs, one level per distance (`D_KEY`, `D_ENTRY`,
    /// `D_CELL` steps ahead): the ready-queue slot of a pick, then its
    /// table entry once the slot is in cache, then its task once the entry
    /// is. A `Random` pick among many ready tasks lands anywhere in memory,
    /// and these cache misses were most of a step on W1 (100k ready
    /// tasks). A wrong guess (a wake changed the queue) costs a wasted
    /// load, never a different choice.
    #[inline(never)]
    fn prefetch_next(&self, sched: &mut Scheduler, t: &Table, n: usize) {
        // How the queue's length moved over the last step (-1 when tasks
        // finish, 0 when each re-queues itself), to guess it further on.
        let trend = (n as isize - self.last_ready.replace(n) as isize).clamp(-1, 1);
        let ready = self.ready.borrow();
        let entry = |i: usize| {
            let k = ready.get(i)?;
            t.slots.get(k.index as usize)
        };
        // The length the pick `d + 1` steps after this one will see.
        let at = |d: usize| (n as isize + (d as isize + 1) * trend).max(1) as usize;
        if let Some(Some(Some(e))) = sched.predict(D_CELL, at(D_CELL)).map(entry) {
            if let Some(cell) = &e.cell {
                // The cell starts with its header: its reference count and
                // state, then its future.
                let p = cell.as_ptr();
                prefetch(p);
                prefetch(p.wrapping_add(48));
            }
        }
        if let Some(Some(slot)) = sched.predict(D_ENTRY, at(D_ENTRY)).map(entry) {
            let p = (slot as *const Option<Entry>).cast::<u8>();
            prefetch(p);
            prefetch(p.wrapping_add(size_of::<Option<Entry>>() - 1));
        }
        if let Some(Some(k)) = sched.predict(D_KEY, at(D_KEY)).map(|i| ready.get(i)) {
            prefetch((k as *const TaskKey).cast());
        }
    }

    /// Whether a live task has never been polled, or a ready one was made
    /// ready by its own timer: late polls wait for those.
    #[inline]
    pub(crate) fn late_polls_wait(&self) -> bool {
        self.clock_holders.get() > 0
    }

    /// Runs `wake` (a firing timer's wakes): the tasks it makes ready are
    /// marked as woken by their timer.
    #[inline]
    pub(crate) fn timer_wakes(&self, wake: impl FnOnce()) {
        self.timer_waking.set(true);
        wake();
        self.timer_waking.set(false);
    }

    /// Whether some key in the ready set can run now (not ended, not on a
    /// paused host). A scan: only for late-poll and replay decisions.
    pub(crate) fn any_runnable(&self) -> bool {
        self.ready.borrow().iter().any(|k| self.runnable(*k))
    }

    /// A scheduler draw below `n`, and a divergence from a replayed
    /// schedule it found.
    pub(crate) fn draw(&self, n: usize) -> (usize, Option<String>) {
        let mut s = self.sched.borrow_mut();
        let v = s.draw(n);
        (v, s.take_divergence())
    }

    fn is_paused(&self, host: Group) -> bool {
        let paused = self.paused.borrow();
        !paused.is_empty() && paused.contains(&host)
    }

    /// Stops picking the tasks of `host` until [`Executor::resume_host`].
    pub(crate) fn pause_host(&self, host: Group) {
        let mut paused = self.paused.borrow_mut();
        if !paused.contains(&host) {
            paused.push(host);
        }
    }

    /// Lets the tasks of `host` run again: its parked tasks become ready, in
    /// the order they were parked.
    pub(crate) fn resume_host(&self, host: Group) {
        self.paused.borrow_mut().retain(|h| *h != host);
        let released: Vec<TaskKey> = {
            let mut parked = self.parked.borrow_mut();
            let mut out = Vec::new();
            parked.retain(|&(h, k)| {
                if h == host {
                    out.push(k);
                }
                h != host
            });
            out
        };
        let mut t = self.table.borrow_mut();
        let mut ready = self.ready.borrow_mut();
        for key in released {
            if let Some(e) = t.get_mut(key) {
                e.parked = false;
                ready.push_back(key);
            }
        }
    }

    /// The host of the task being polled.
    #[inline]
    pub(crate) fn current_host(&self) -> Option<Group> {
        self.current_host.get()
    }

    /// The host of the task polled last: the one speed factor poll cost
    /// reads (`None`: not on a host, or the main task).
    #[inline]
    pub(crate) fn polled_host(&self) -> Option<Group> {
        self.polled_host.get()
    }

    /// The live tasks of `host`, in id order.
    pub(crate) fn tasks_of(&self, host: Group) -> Vec<TaskKey> {
        let t = self.table.borrow();
        let mut keys: Vec<TaskKey> = t
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let e = e.as_ref()?;
                (e.host == Some(host)).then_some(TaskKey {
                    index: i as u32,
                    id: e.id,
                })
            })
            .collect();
        keys.sort_by_key(|k| k.id);
        keys
    }

    /// Runs one scheduling step: picks a ready task and polls it (unless it
    /// is the main task, which the caller polls).
    pub(crate) fn step(&self, w: &World) -> Step {
        let Some((key, choices)) = self.pick() else {
            return self.idle(w);
        };
        w.begin_step(key.id, choices);
        let (cell, site, host) = {
            let mut t = self.table.borrow_mut();
            let (e, beside) = t.get_beside(key).expect("a picked task is live");
            if e.holds_clock {
                e.holds_clock = false;
                self.clock_holders.set(self.clock_holders.get() - 1);
            }
            e.polls += 1;
            e.timed = false;
            if std::mem::take(&mut e.waited) {
                beside.waits[key.index as usize].clear();
            }
            (e.cell.clone(), e.site, e.host)
        };
        self.current.set(Some(key));
        self.current_host.set(host);
        self.polled_host.set(host);
        self.self_wakes.set(0);
        w.record_plain(Verbosity::Full, code::POLL, 0);
        let Some(cell) = cell else {
            return Step::Main;
        };
        let waker = waker::waker(key, w.tag.0);
        let mut cx = Context::from_waker(&waker);
        if let Some(wd) = &w.watchdog {
            wd.enter(key.id.0, site, w.now().as_nanos(), w.steps());
        }
        let res = panics::catch(|| cell.poll(&mut cx));
        if let Some(wall) = w.watchdog.as_ref().and_then(|wd| wd.exit()) {
            if let Some(info) = self.info(key) {
                w.blocked_poll(info, wall);
            }
        }
        self.after_poll(w, key);
        match res {
            // A poll that noted neither a wait nor an abort of its own task
            // (a yield, a timer) needs no second look at its entry.
            Ok(Poll::Pending) if self.poll_noted.replace(false) => {
                // One look at the entry decides both follow-ups.
                let (abort, follow) = self.table.borrow().view(key).map_or((false, false), |e| {
                    (e.abort_requested, e.waiting().iter().any(Waiting::followed))
                });
                if abort {
                    self.abort_entry(w, key);
                } else if follow {
                    w.layers_after_pending(key);
                }
            }
            Ok(Poll::Pending) => {}
            Ok(Poll::Ready(())) if self.linked.get() => match self.notify_set(key) {
                Ok(()) => self.finished(w, key, cell),
                Err(payload) => self.task_panicked(w, key, cell, payload),
            },
            Ok(Poll::Ready(())) => self.finished(w, key, cell),
            Err(payload) => self.task_panicked(w, key, cell, payload),
        }
        self.current.set(None);
        self.current_host.set(None);
        Step::Polled
    }

    /// Tells a task's `JoinSet` that it ended, right after its joiner was
    /// woken, as the cell did when it held the link. The set's waker runs
    /// here: if it panics, that is the poll's panic, as it was then.
    #[cold]
    fn notify_set(&self, key: TaskKey) -> Result<(), PanicPayload> {
        match self.take_link(key) {
            Some(link) => panics::catch(|| link.notify()),
            None => Ok(()),
        }
    }

    /// A task's poll returned `Ready`.
    #[inline(always)]
    fn finished(&self, w: &World, key: TaskKey, cell: TaskRef) {
        w.record_plain(Verbosity::Summary, code::FINISH, 0);
        w.progressed();
        let entry = self.remove(w, key);
        if cell.header().unobserved_err() {
            if let Some(e) = entry {
                self.finished_with_err(w, cell, e.info());
            }
        }
    }

    /// Nothing to pick: the clock moves, unless a replayed schedule
    /// diverged.
    #[cold]
    fn idle(&self, w: &World) -> Step {
        match self.sched.borrow_mut().take_divergence() {
            Some(d) => {
                w.diverged(d);
                Step::Stop
            }
            None => Step::Idle,
        }
    }

    /// Ends the main task's step (called by `Sim::run` after polling it).
    pub(crate) fn end_main_step(&self) {
        self.current.set(None);
    }

    fn remove(&self, w: &World, key: TaskKey) -> Option<Removed> {
        let entry = self.table.borrow_mut().remove(key);
        if entry.as_ref().is_some_and(|e| e.holds_clock) {
            self.clock_holders.set(self.clock_holders.get() - 1);
        }
        if entry.as_ref().is_some_and(|e| e.queued && !e.parked) {
            self.stale_keys.set(self.stale_keys.get() + 1);
        }
        if let (Some(wd), Some(e)) = (&w.watchdog, &entry) {
            if e.named {
                wd.forget_task(e.id.0);
            }
        }
        entry
    }

    fn task_panicked(&self, w: &World, key: TaskKey, cell: TaskRef, p: PanicPayload) {
        let info = self
            .table
            .borrow()
            .view(key)
            .map(|e| e.info())
            .expect("a panicking task is live");
        w.record(EventKind::Panic {
            message: p.message.clone(),
            location: p.location.as_ref().map(|l| format!("{l}:{}", l.column)),
        });
        let link = self.take_link(key);
        self.remove(w, key);
        let report = PanicReport {
            task: info,
            message: p.message.clone(),
            location: p.location.clone(),
            unobserved: false,
            backtrace: p.backtrace,
            at: w.point(),
        };
        let err = JoinError::Panicked {
            message: p.message,
            location: p.location,
        };
        match panics::catch(|| cell.finish_with(err, link)) {
            Ok(true) if cell.header().handle_alive() => {
                let mut list = self.panicked.borrow_mut();
                list.retain(|(c, _)| c.header().state() == TaskState::Panicked);
                list.push((cell, report));
            }
            // Nobody holds the handle, the task had already finished (the
            // panic came from dropping its future), or dropping the panicked
            // future panicked again: nobody can observe this panic.
            _ => w.unobserved_panic(report),
        }
    }

    /// A task returned `Err`: reported now if nobody holds its handle, else
    /// kept until the handle takes it or is dropped.
    #[cold]
    fn finished_with_err(&self, w: &World, cell: TaskRef, info: TaskInfo) {
        if cell.header().handle_alive() {
            let mut list = self.errored.borrow_mut();
            list.retain(|(c, _)| c.header().unobserved_err() && c.header().handle_alive());
            list.push((cell, info));
        } else {
            w.unobserved_error(info, cell.output_type());
        }
    }

    /// A `JoinHandle` holding an `Err` output was dropped without taking it.
    ///
    /// This and the two below find the task by its cell, not its id: a
    /// handle kept from an ended run may be dropped in a later one, whose
    /// tasks reuse the ids; its cell is found in no list of this run.
    pub(crate) fn err_unobserved(&self, w: &World, task: &TaskRef) {
        let found = {
            let mut list = self.errored.borrow_mut();
            let Some(i) = list.iter().position(|(c, _)| c.same(task)) else {
                return;
            };
            list.remove(i)
        };
        let (cell, info) = found;
        w.unobserved_error(info, cell.output_type());
    }

    /// A `JoinHandle` holding a panic was dropped without taking it.
    pub(crate) fn panic_unobserved(&self, w: &World, task: &TaskRef) {
        let report = {
            let mut list = self.panicked.borrow_mut();
            let Some(i) = list.iter().position(|(c, _)| c.same(task)) else {
                return;
            };
            list.remove(i).1
        };
        w.unobserved_panic(report);
    }

    /// The panic of `task`, stored for its handle, becomes the run's
    /// failure as an observed panic (its holder propagates it, see
    /// `task::propagate`). Returns whether there was one.
    pub(crate) fn propagate_panic(&self, w: &World, task: &TaskRef) -> bool {
        let report = {
            let mut list = self.panicked.borrow_mut();
            let Some(i) = list.iter().position(|(c, _)| c.same(task)) else {
                return false;
            };
            list.remove(i).1
        };
        w.fail(Failure::Panic(report));
        true
    }

    /// Panics still held, never taken, when the run ends.
    pub(crate) fn check_unobserved_at_end(&self, w: &World) {
        let list = std::mem::take(&mut *self.panicked.borrow_mut());
        for (cell, report) in list {
            if cell.header().state() == TaskState::Panicked {
                w.unobserved_panic(report);
            }
        }
    }

    /// Aborts a task (a `JoinHandle::abort`). A task aborting itself is
    /// dropped when its current poll returns.
    pub(crate) fn abort(&self, w: &World, key: TaskKey) {
        if self.current.get() == Some(key) {
            if let Some(e) = self.table.borrow_mut().get_mut(key) {
                e.abort_requested = true;
                self.poll_noted.set(true);
            }
            return;
        }
        self.abort_entry(w, key);
    }

    /// Removes a task and drops its future now.
    pub(crate) fn abort_entry(&self, w: &World, key: TaskKey) {
        let link = self.take_link(key);
        let Some(entry) = self.remove(w, key) else {
            return;
        };
        let Some(cell) = entry.cell.clone() else {
            return;
        };
        w.record(EventKind::Abort { target: key.id });
        if let Err(p) = panics::catch(|| cell.finish_with(JoinError::Cancelled, link)) {
            w.unobserved_panic(PanicReport {
                task: entry.info(),
                message: format!(
                    "panicked while its future was dropped on abort: {}",
                    p.message
                ),
                location: p.location,
                unobserved: true,
                backtrace: p.backtrace,
                at: w.point(),
            });
        }
    }

    /// Links a running task to its `JoinSet`. Gives the link back if the
    /// task is not live (it is ending): the caller notifies the set.
    pub(crate) fn link_to_set(&self, key: TaskKey, link: SetLink) -> Option<SetLink> {
        let mut t = self.table.borrow_mut();
        let Some((_, beside)) = t.get_beside(key) else {
            return Some(link);
        };
        *per_task(&mut beside.links, key.index as usize, || None) = Some(link);
        self.linked.set(true);
        None
    }

    /// Drops a task's link to its `JoinSet` (the set let it go).
    pub(crate) fn unlink_from_set(&self, key: TaskKey) {
        drop(self.take_link(key));
    }

    /// Takes a live task's link to its `JoinSet`, to notify it when the
    /// task ends (taken before the entry is removed, which drops it).
    fn take_link(&self, key: TaskKey) -> Option<SetLink> {
        if !self.linked.get() {
            return None;
        }
        let mut t = self.table.borrow_mut();
        let (_, beside) = t.get_beside(key)?;
        beside.take_link(key.index)
    }

    /// The task being polled.
    pub(crate) fn current_id(&self) -> Option<TaskId> {
        self.current.get().map(|k| k.id)
    }

    /// The key of the task being polled.
    pub(crate) fn current_key(&self) -> Option<TaskKey> {
        self.current.get()
    }

    /// Records one more thing the current task now waits on.
    pub(crate) fn note_waiting(&self, waiting: Waiting) {
        if let Some(key) = self.current.get() {
            if let Some((e, beside)) = self.table.borrow_mut().get_beside(key) {
                self.poll_noted.set(true);
                e.waited = true;
                per_task(&mut beside.waits, key.index as usize, Vec::new).push(waiting);
            }
        }
    }

    /// Looks at a live task's entry (the table borrowed shared for `f`).
    pub(crate) fn inspect<R>(&self, key: TaskKey, f: impl FnOnce(&EntryRef<'_>) -> R) -> Option<R> {
        self.table.borrow().view(key).map(|e| f(&e))
    }

    /// A live task's id, name and spawn site, for a report.
    pub(crate) fn info(&self, key: TaskKey) -> Option<TaskInfo> {
        self.inspect(key, |e| e.info())
    }

    /// The keys of every live task, in id order.
    pub(crate) fn live_keys(&self) -> Vec<TaskKey> {
        self.table.borrow().keys_by_id()
    }

    fn reset_waker_count(&self, key: TaskKey) {
        let mut counts = self.wakers_out.borrow_mut();
        *per_task(&mut counts, key.index as usize, || (0, 0)) = (key.id.0 as u16, 0);
    }

    /// A counted copy of task `index`'s waker was made (`up`) or dropped.
    pub(crate) fn count_waker(&self, index: u32, id_low: u16, up: bool) {
        let mut counts = self.wakers_out.borrow_mut();
        if let Some((id, n)) = counts.get_mut(index as usize) {
            if *id == id_low {
                *n = if up {
                    n.saturating_add(1)
                } else {
                    n.saturating_sub(1)
                };
            }
        }
    }

    /// How many counted copies of a task's waker are alive: things outside
    /// lockstep's tracked primitives that may wake it (timers, foreign
    /// futures, a `JoinSet`).
    pub(crate) fn untracked_wakers(&self, key: TaskKey) -> u32 {
        match self.wakers_out.borrow().get(key.index as usize) {
            Some(&(id, n)) if id == key.id.0 as u16 => n,
            _ => 0,
        }
    }

    /// How many times the task in `key`'s slot may have handed values away.
    #[inline]
    pub(crate) fn moves_of(&self, key: TaskKey) -> u32 {
        self.moves
            .borrow()
            .get(key.index as usize)
            .copied()
            .unwrap_or(0)
    }

    /// The task in `key`'s slot may have handed values away.
    pub(crate) fn bump_moves(&self, key: TaskKey) {
        let mut m = self.moves.borrow_mut();
        let n = per_task(&mut m, key.index as usize, || 0);
        *n = n.wrapping_add(1);
    }

    /// Records a timer the current task armed.
    pub(crate) fn note_deadline(&self, deadline: Instant) {
        if let Some(key) = self.current.get() {
            if let Some((e, beside)) = self.table.borrow_mut().get_beside(key) {
                let at = per_task(&mut beside.deadlines, key.index as usize, || 0);
                let ns = deadline.as_nanos();
                *at = if std::mem::replace(&mut e.timed, true) {
                    (*at).min(ns)
                } else {
                    ns
                };
            }
        }
    }

    /// The label of a task for reports (`#2 worker-b`), by id (a scan: for
    /// reports only).
    pub(crate) fn label(&self, id: TaskId) -> String {
        let t = self.table.borrow();
        let found = t.slots.iter().enumerate().find_map(|(i, e)| {
            let e = e.as_ref().filter(|e| e.id == id)?;
            Some(t.view_of(i as u32, e))
        });
        match found {
            Some(e) => e.info().label(),
            None => id.to_string(),
        }
    }

    /// The label of a task for reports, by key (O(1)).
    pub(crate) fn label_of(&self, key: TaskKey) -> String {
        match self.info(key) {
            Some(info) => info.label(),
            None => key.id.to_string(),
        }
    }

    /// Info about a live task, by slot (for foreign-wake reports).
    pub(crate) fn info_at(&self, index: u32, id_low: u16) -> Option<TaskInfo> {
        let t = self.table.borrow();
        let e = t.slots.get(index as usize)?.as_ref()?;
        (e.id.0 as u16 == id_low).then(|| t.view_of(index, e).info())
    }

    /// A wake of task `id` came from `thread` and was not applied.
    pub(crate) fn note_foreign(&self, id: TaskId, thread: &str) {
        let mut f = self.foreign.borrow_mut();
        if !f.iter().any(|(t, _)| *t == id) {
            f.push((id, thread.to_string()));
        }
    }

    fn describe(&self, e: &EntryRef<'_>) -> String {
        let what = self.describe_wait(e);
        match self.foreign.borrow().iter().find(|(id, _)| *id == e.id) {
            Some((_, thread)) => format!(
                "{what}; it was woken from {thread}, outside the simulation, and that wake was \
                 ignored (a simulation runs on one thread: a real thread, a thread pool or \
                 another runtime holds this task's waker)"
            ),
            None => what,
        }
    }

    fn describe_wait(&self, e: &EntryRef<'_>) -> String {
        let what = (!e.waiting().is_empty()).then(|| {
            let each: Vec<String> = e
                .waiting()
                .iter()
                .map(|waiting| match waiting {
                    Waiting::Join(key) => format!("join of {}", self.label_of(*key)),
                    Waiting::JoinSet(n) => format!("the next of {n} tasks in a JoinSet"),
                    Waiting::Layer(l) => l.on.describe(l.op(), self),
                })
                .collect();
            each.join(", or ")
        });
        match (what, e.deadline()) {
            (Some(what), Some(d)) => format!("{what}, or its timeout at {d}"),
            (Some(what), None) => what,
            (None, Some(d)) => format!("a sleep until {d}"),
            (None, None) if e.parked => {
                "nothing: it is ready to run, but its host is paused".to_string()
            }
            (None, None) if e.queued => "nothing: it is ready to run".to_string(),
            (None, None) => "a future lockstep does not track (not a lockstep primitive: a \
                             channel or lock from another library, or a hand-written future)"
                .to_string(),
        }
    }

    /// Every live task, what it waits on and what it holds, in id order.
    pub(crate) fn blocked(&self) -> Vec<BlockedTask> {
        self.tasks_where(|_| true)
    }

    /// Live tasks that count as leaks when the main task returns. Host
    /// tasks do not: they end with the simulation, like the servers they
    /// model.
    pub(crate) fn leaked(&self) -> Vec<BlockedTask> {
        let leaked = |e: &Entry| e.id != TaskId::MAIN && !e.daemon && e.host.is_none();
        // The usual end of a run: nothing left to report, nothing to sort.
        if !self.table.borrow().slots.iter().flatten().any(leaked) {
            return Vec::new();
        }
        self.tasks_where(leaked)
    }

    fn tasks_where(&self, keep: impl Fn(&Entry) -> bool) -> Vec<BlockedTask> {
        let t = self.table.borrow();
        let entries = t.sorted();
        let waits: Vec<&[Waiting]> = entries.iter().map(EntryRef::waiting).collect();
        let mut holds = super::ext::holdings(&waits);
        entries
            .into_iter()
            .filter(|e| keep(e))
            .map(|e| BlockedTask {
                task: e.info(),
                waiting_on: self.describe(&e),
                holds: holds.remove(&e.id).unwrap_or_default(),
            })
            .collect()
    }

    /// The tasks polled most often (livelock suspects).
    pub(crate) fn busiest(&self, n: usize) -> Vec<(TaskInfo, u64)> {
        let t = self.table.borrow();
        let mut v: Vec<(TaskInfo, u64)> = t
            .sorted()
            .into_iter()
            .map(|e| (e.info(), e.polls))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.id.cmp(&b.0.id)));
        v.truncate(n);
        v
    }

    /// Whether any task is ready.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.borrow().is_empty()
    }

    /// Drops every remaining task (in id order) at the end of a run. Drops
    /// may spawn or wake; repeat until nothing is left (bounded, in case a
    /// `Drop` keeps spawning).
    pub(crate) fn teardown(&self, w: &World) {
        for _ in 0..64 {
            let entries: Vec<(Removed, Option<SetLink>)> = {
                let mut t = self.table.borrow_mut();
                if t.slots.iter().flatten().all(|e| e.cell.is_none()) {
                    // No future left to drop (the main task's entry holds
                    // none): what is left goes with the table, and a run
                    // that ended cleanly collects nothing.
                    Vec::new()
                } else {
                    let keys = t.keys_by_id();
                    keys.into_iter()
                        .filter_map(|k| {
                            let link = t.beside.take_link(k.index);
                            Some((t.remove(k)?, link))
                        })
                        .collect()
                }
            };
            self.ready.borrow_mut().clear();
            self.stale_keys.set(0);
            self.parked.borrow_mut().clear();
            if entries.is_empty() {
                break;
            }
            for (entry, link) in entries {
                let Some(cell) = entry.cell.clone() else {
                    continue;
                };
                if let Err(p) = panics::catch(|| cell.finish_with(JoinError::Cancelled, link)) {
                    w.unobserved_panic(PanicReport {
                        task: entry.info(),
                        message: format!(
                            "panicked while its future was dropped at the end of the run: {}",
                            p.message
                        ),
                        location: p.location,
                        unobserved: true,
                        backtrace: p.backtrace,
                        at: w.point(),
                    });
                }
            }
        }
        self.panicked.borrow_mut().clear();
    }
}

impl World {
    /// Applies the configured severity to a task `Err` nobody observed.
    pub(crate) fn unobserved_error(&self, task: TaskInfo, output_type: String) {
        let report = Failure::UnobservedError(crate::check::UnobservedErrorReport {
            task,
            output_type,
            at: self.point(),
        });
        match self.config.unobserved_errors {
            Severity::Fail => self.fail(report),
            Severity::Warn => self.warn(report),
            Severity::Ignore => {}
        }
    }

    /// Applies the configured severity to a panic nobody observed.
    pub(crate) fn unobserved_panic(&self, mut report: PanicReport) {
        report.unobserved = true;
        match self.config.unobserved_panics {
            Severity::Fail => self.fail(Failure::Panic(report)),
            Severity::Warn => self.warn(Failure::Panic(report)),
            Severity::Ignore => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every live task holds one entry; its size is memory a large run
    /// faults in (see `Entry`).
    #[test]
    fn a_task_entry_takes_40_bytes() {
        assert_eq!(size_of::<Option<Entry>>(), 40);
        assert_eq!(size_of::<Option<Group>>(), 4);
    }
}
