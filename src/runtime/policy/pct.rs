//! `Pct { depth }`: probabilistic concurrency testing (Burckhardt, Kothari,
//! Musuvathi, Nagarakatte, ASPLOS 2010).
//!
//! Every task gets a random priority when the policy first sees it; the
//! ready task of highest priority always runs. At `depth - 1` change
//! points, steps drawn uniformly from the run's expected length, the task
//! about to run drops below every other task. A bug that needs `d`
//! specific orderings between `n` tasks over `k` steps is found with
//! probability at least `1 / (n · k^(d-1))` per run: depth 1 and 2 bugs
//! (an order violation, an atomicity violation) come in a handful of
//! seeds, where a uniform random scheduler may need thousands because it
//! keeps switching tasks.
//!
//! A task that wakes itself during its own poll (a `yield_now`, a
//! cooperative loop) drops below every task that has not yielded since,
//! in the order tasks yielded, as shuttle's PCT does: a yield is the
//! program saying "let the others run", and a busy-waiting task of top
//! priority would otherwise starve the task it waits for.
//!
//! The expected length `k` is [`SimBuilder::pct_horizon`]
//! (default [`SimBuilder::DEFAULT_PCT_HORIZON`] steps); a sweep that knows
//! the program's length (from earlier seeds) sets it. Change points past
//! the end of a run never happen, so an overestimate only weakens the
//! depth.
//!
//! [`SimBuilder::pct_horizon`]: crate::SimBuilder::pct_horizon
//! [`SimBuilder::DEFAULT_PCT_HORIZON`]: crate::SimBuilder::DEFAULT_PCT_HORIZON

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;

use super::late::{LatePolls, LateState};
use super::{Pick, ReadyView, SchedulePolicy, below};
use crate::runtime::Seed;
use crate::runtime::ready::ReadyQueue;
use crate::runtime::waker::TaskKey;
use crate::runtime::world::{rng_for, stream};
use crate::time::Duration;

/// Initial priorities have the top bit set; lowered ones are small.
const HIGH: u64 = 1 << 63;

/// No entry in the ready queue.
const OUT: u64 = u64::MAX;

/// A key's place in the order of picks, `(priority, order)`: higher
/// priority first, then the key that became ready first (the lower
/// sequence number).
fn rank(priority: u64, order: u64) -> (u64, u64) {
    (priority, order)
}

/// Ready queues up to this long are scanned at each pick; longer ones are
/// kept in a heap (until they shrink to half of it).
const SCAN_UP_TO: usize = 32;

/// A ready task as the heap orders it: highest priority first, then the
/// one that became ready first (the lower sequence number). An entry is
/// current while its task's priority and ready entry are still the ones
/// it was pushed with; others are dropped when they surface.
struct Candidate {
    priority: u64,
    order: Reverse<u64>,
    key: TaskKey,
}

impl Candidate {
    fn rank(&self) -> (u64, Reverse<u64>) {
        (self.priority, self.order)
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// What the policy knows of one task (by task id; ids are dense per run).
#[derive(Clone, Copy)]
struct Slot {
    priority: u64,
    /// The sequence number of its entry in the ready queue (`OUT` when it
    /// has none), and that entry's position in the queue.
    order: u64,
    pos: u32,
}

/// Change points kept in place up to this many (`Policy::Mix` draws
/// depths 2 to 4): a fresh run allocates none.
const INLINE_POINTS: usize = 3;

/// Steps at which the running task drops, ascending.
enum ChangePoints {
    Few([u64; INLINE_POINTS], u8),
    Many(Vec<u64>),
}

impl ChangePoints {
    fn get(&self, i: usize) -> Option<u64> {
        match self {
            ChangePoints::Few(points, len) => points[..*len as usize].get(i).copied(),
            ChangePoints::Many(points) => points.get(i).copied(),
        }
    }
}

pub(crate) struct Pct {
    depth: u32,
    horizon: u64,
    rng: ChaCha8Rng,
    /// Per task id: its priority and ready entry. Priorities are drawn in
    /// id order, for every id up to the highest one taken in (one table:
    /// a fresh run sizes one vector, and a look-up is one bounds check).
    tasks: Vec<Slot>,
    /// The ready tasks by priority, with stale entries (see `Candidate`),
    /// kept only while the ready queue is long (`heap_on`): a short one is
    /// scanned, which costs less than keeping a heap.
    heap: BinaryHeap<Candidate>,
    heap_on: bool,
    /// The rank of each key of the ready queue, at the same position
    /// (`rank`): a short queue is scanned here, in one contiguous array.
    ranks: Vec<(u64, u64)>,
    /// How many keys at the front of the ready queue the policy has taken
    /// in: the executor only ever appends, and only the policy removes.
    known: usize,
    /// The next sequence number.
    seq: u64,
    /// Steps at which the running task drops, ascending.
    change_points: ChangePoints,
    /// Change points passed so far.
    changed: usize,
    /// Steps with a choice (more than one ready key) so far.
    step: u64,
    /// The task polled last, and how many yields were seen.
    last: Option<TaskKey>,
    yields: u64,
    /// Small (its stream is boxed, and made on its first draw): a policy
    /// is moved into every fresh run.
    late: Option<LateState>,
}

/// The tables of the last PCT run on this thread, emptied, for the next
/// (as the executor's task tables: a sweep allocates them once per
/// thread, not once per seed). Kept only while small.
type SpareTables = (Vec<Slot>, Vec<(u64, u64)>);

thread_local! {
    static SPARE: std::cell::Cell<Option<SpareTables>> = const { std::cell::Cell::new(None) };
}

/// The largest tables (in tasks) a finished run hands on.
const SPARE_UP_TO: usize = 256;

impl Drop for Pct {
    fn drop(&mut self) {
        if self.tasks.capacity().max(self.ranks.capacity()) > SPARE_UP_TO {
            return;
        }
        let mut tasks = std::mem::take(&mut self.tasks);
        let mut ranks = std::mem::take(&mut self.ranks);
        tasks.clear();
        ranks.clear();
        let _ = SPARE.try_with(|s| s.set(Some((tasks, ranks))));
    }
}

impl Pct {
    pub(crate) fn new(seed: Seed, depth: u32, horizon: u64, late: Option<LatePolls>) -> Pct {
        // Sized for a small run at once (growing one by one would
        // reallocate a few times in every fresh run), or an earlier run's.
        let (tasks, ranks) = SPARE
            .try_with(std::cell::Cell::take)
            .ok()
            .flatten()
            .unwrap_or_else(|| (Vec::with_capacity(16), Vec::with_capacity(16)));
        Pct {
            depth: depth.max(1),
            horizon: horizon.max(1),
            rng: rng_for(seed, stream::SCHED),
            tasks,
            heap: BinaryHeap::new(),
            heap_on: false,
            ranks,
            known: 0,
            seq: 0,
            change_points: ChangePoints::Few([0; INLINE_POINTS], 0),
            changed: 0,
            step: 0,
            last: None,
            yields: 0,
            late: late.map(|l| LateState::new(l, seed)),
        }
    }

    /// The slot of `key`'s task, drawing the priorities of every id up to
    /// it not seen yet (in id order).
    #[inline]
    fn slot_of(&mut self, key: TaskKey) -> &mut Slot {
        let id = key.id.0 as usize;
        if self.tasks.len() <= id {
            self.draw_up_to(id);
        }
        &mut self.tasks[id]
    }

    #[cold]
    fn draw_up_to(&mut self, id: usize) {
        while self.tasks.len() <= id {
            self.tasks.push(Slot {
                priority: self.rng.next_u64() | HIGH,
                order: OUT,
                pos: 0,
            });
        }
    }

    /// Takes in the keys the executor appended since the last pick.
    fn take_in(&mut self, ready: &ReadyQueue) {
        if ready.len() == self.known && !self.heap_on {
            // Nothing new (the queue is short, and stays scanned).
            return;
        }
        for (pos, &key) in ready.range(self.known..).enumerate() {
            let pos = self.known + pos;
            let order = self.seq;
            self.seq += 1;
            let slot = self.slot_of(key);
            slot.order = order;
            slot.pos = pos as u32;
            let priority = slot.priority;
            debug_assert_eq!(self.ranks.len(), pos, "ranks mirror the ready queue");
            self.ranks.push(rank(priority, order));
            if self.heap_on {
                self.heap.push(Candidate {
                    priority,
                    order: Reverse(order),
                    key,
                });
            }
        }
        self.known = ready.len();
        if !self.heap_on && ready.len() > SCAN_UP_TO {
            self.heap_on = true;
            for &key in ready.iter() {
                let slot = self.tasks[key.id.0 as usize];
                self.heap.push(Candidate {
                    priority: slot.priority,
                    order: Reverse(slot.order),
                    key,
                });
            }
        } else if self.heap_on && ready.len() <= SCAN_UP_TO / 2 {
            self.heap_on = false;
            self.heap.clear();
        }
    }

    /// Gives `key` (in the ready queue) a new priority.
    fn set_priority(&mut self, key: TaskKey, priority: u64) {
        let slot = self.slot_of(key);
        slot.priority = priority;
        let Slot { order, pos, .. } = *slot;
        debug_assert_ne!(order, OUT, "only a ready task is given a new priority");
        self.ranks[pos as usize] = rank(priority, order);
        if !self.heap_on {
            return;
        }
        self.heap.push(Candidate {
            priority,
            order: Reverse(order),
            key,
        });
    }

    /// The runnable key of highest priority (ties: the one ready first),
    /// left in the heap; or, when none is runnable, the key ready first
    /// (the executor then drops or parks it).
    #[inline]
    fn best(&mut self, ready: &ReadyQueue, view: &dyn ReadyView) -> TaskKey {
        if !self.heap_on {
            return self.scan(ready, view);
        }
        self.best_in_heap(ready, view)
    }

    /// [`best`](Self::best) from the heap of a long ready queue.
    #[inline(never)]
    fn best_in_heap(&mut self, ready: &ReadyQueue, view: &dyn ReadyView) -> TaskKey {
        let mut set_aside = Vec::new();
        let found = loop {
            let Some(top) = self.heap.peek() else {
                break None;
            };
            let current = (self.tasks.get(top.key.id.0 as usize))
                .is_some_and(|s| s.priority == top.priority && s.order == top.order.0);
            if !current {
                self.heap.pop();
            } else if !view.runnable(top.key) {
                set_aside.extend(self.heap.pop());
            } else {
                break Some(top.key);
            }
        };
        self.heap.extend(set_aside);
        found.unwrap_or_else(|| self.first_ready(ready))
    }

    /// [`best`](Self::best) by a scan of a short ready queue: the same
    /// order as the heap's. Inlined into the pick (one call, one frame).
    #[inline]
    fn scan(&self, ready: &ReadyQueue, view: &dyn ReadyView) -> TaskKey {
        // Nearly always the key of top rank is runnable: rank first, then
        // ask the executor about that one key only.
        // Ranks are distinct (each entry has its own sequence number);
        // priorities nearly always are, so the order is rarely compared.
        let mut top = 0;
        let (mut top_priority, mut top_order) = (0, OUT);
        for (i, &(p, o)) in self.ranks.iter().enumerate() {
            if p > top_priority || (p == top_priority && o < top_order) {
                (top, top_priority, top_order) = (i, p, o);
            }
        }
        if let Some(&top) = ready.get(top) {
            if view.runnable(top) {
                return top;
            }
        }
        self.scan_runnable(ready, view)
    }

    /// [`scan`](Self::scan) when the key of top rank is not runnable.
    #[cold]
    fn scan_runnable(&self, ready: &ReadyQueue, view: &dyn ReadyView) -> TaskKey {
        let mut best: Option<((u64, Reverse<u64>), TaskKey)> = None;
        for &key in ready {
            if !view.runnable(key) {
                continue;
            }
            let slot = self.tasks[key.id.0 as usize];
            let rank = (slot.priority, Reverse(slot.order));
            if best.is_none_or(|(b, _)| rank > b) {
                best = Some((rank, key));
            }
        }
        best.map_or_else(|| self.first_ready(ready), |(_, key)| key)
    }

    /// The key that became ready first (none is runnable).
    fn first_ready(&self, ready: &ReadyQueue) -> TaskKey {
        *ready
            .iter()
            .min_by_key(|k| self.tasks.get(k.id.0 as usize).map_or(OUT, |s| s.order))
            .expect("the ready queue is not empty")
    }

    /// Takes `key` out of the ready queue (swapping the last key into its
    /// place: the queue's order means nothing to this policy, which keeps
    /// its own).
    fn take_out(&mut self, ready: &mut ReadyQueue, key: TaskKey) {
        // Every key of the queue was taken in: its slot exists.
        let slot = &mut self.tasks[key.id.0 as usize];
        slot.order = OUT;
        let pos = std::mem::take(&mut slot.pos) as usize;
        ready.swap_remove_back(pos);
        self.ranks.swap_remove(pos);
        if let Some(&moved) = ready.get(pos) {
            self.tasks[moved.id.0 as usize].pos = pos as u32;
        }
        self.known = ready.len();
    }
}

impl SchedulePolicy for Pct {
    fn start(&mut self, _: Seed) {
        let n = self.depth as usize - 1;
        let mut draw = || 1 + below(&mut self.rng, self.horizon as usize) as u64;
        self.change_points = if n <= INLINE_POINTS {
            let mut points = [0; INLINE_POINTS];
            points[..n].fill_with(&mut draw);
            points[..n].sort_unstable();
            ChangePoints::Few(points, n as u8)
        } else {
            let mut points: Vec<u64> = (0..n).map(|_| draw()).collect();
            points.sort_unstable();
            ChangePoints::Many(points)
        };
    }

    fn pick(&mut self, ready: &mut ReadyQueue, view: &dyn ReadyView) -> Pick {
        if ready.len() < self.known {
            // The executor emptied the queue (the run is ending).
            self.known = 0;
            self.ranks.clear();
        }
        self.take_in(ready);
        // Only real choices count as steps (PCT, 4.1: change points in
        // sequential stretches are wasted).
        if ready.len() > 1 {
            self.step += 1;
        }
        if let Some(last) = self.last.take() {
            // Taken in at its pick: its slot exists.
            if self.tasks[last.id.0 as usize].order != OUT {
                // It woke itself while it ran: a yield. Below every task
                // that has not yielded, and below earlier yielders (they
                // take turns), above change-point drops.
                self.set_priority(last, HIGH - 1 - self.yields);
                self.yields += 1;
            }
        }
        // One key: it is the pick whatever its rank or state (`best` of one
        // key returns it), and no change point falls here (they fall on
        // steps with a choice, and were passed when the step was reached).
        let mut key = if ready.len() == 1 {
            *ready.get(0).expect("one key")
        } else {
            self.best(ready, view)
        };
        while self.change_points.get(self.changed) == Some(self.step) {
            // The task about to run drops below every initial priority,
            // and below earlier drops.
            self.set_priority(key, (self.depth as usize - 1 - self.changed) as u64);
            self.changed += 1;
            key = self.best(ready, view);
        }
        self.take_out(ready, key);
        self.last = Some(key);
        Pick::Run(key)
    }

    fn draw(&mut self, n: usize) -> usize {
        below(&mut self.rng, n)
    }

    fn clock_may_move(&mut self, by: Duration) -> bool {
        self.late.as_mut().is_some_and(|l| l.fire(by))
    }
}
