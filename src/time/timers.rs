//! The timers of one simulation.
//!
//! Timers fire in (deadline, sequence) order, the sequence being the order in
//! which they were set, so two timers with the same deadline always fire in
//! the same order.
//!
//! The structure is made for a virtual clock that jumps: many timers share
//! a deadline (a thousand tasks sleeping "100 ms" at the same virtual
//! instant, a retry schedule in whole milliseconds), and the clock visits
//! each deadline once. Timers with one deadline form a *bucket*: an
//! intrusive doubly linked list of timer slots in the order they were set
//! (which is sequence order, so a bucket needs no sorting). Buckets sit in a
//! binary min-heap by deadline, and a map from deadline to bucket finds the
//! bucket of a new timer in O(1) (the map is only looked up, never iterated,
//! so its order cannot reach a run). Setting a timer is a lookup and an
//! append; firing one is an unlink; the heap only moves when a deadline
//! appears or empties, O(log d) for d distinct deadlines, not n timers.
//! Cancelling (a `Sleep` dropped before its deadline: the usual fate of a
//! `timeout` that did not fire) unlinks the timer at once: there are no
//! stale entries to skip or compact, memory is bounded by the timers alive
//! at once, and nothing allocates in steady state (slots, buckets, the heap
//! and the map reuse their capacity).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::task::Waker;

use crate::runtime::world::World;
use crate::task::TaskId;
use crate::trace::store::FxHasher;

/// Identifies one armed timer. Stale once the timer fired or was cancelled.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: u32,
    seq: u64,
}

/// What happens when a timer fires.
pub(crate) enum TimerAction {
    /// Wake a task (a `Sleep`, a `timeout`, an interval tick).
    Wake(Waker),
    /// Run a callback in the runtime (network deliveries, scheduled faults).
    Call(Box<dyn FnOnce(&World)>),
}

/// No slot / no bucket.
const NIL: u32 = u32::MAX;

struct Slot {
    /// 0 when the slot is free.
    seq: u64,
    /// The bucket holding the timer while armed.
    bucket: u32,
    prev: u32,
    next: u32,
    action: Option<TimerAction>,
    owner: Option<TaskId>,
}

struct Bucket {
    deadline: u64,
    head: u32,
    tail: u32,
    /// Position in `heap`.
    pos: u32,
}

/// A timer that fired: what to do, and for whom (for the trace).
pub(crate) struct Fired {
    pub(crate) action: TimerAction,
    pub(crate) owner: Option<TaskId>,
}

#[derive(Default)]
pub(crate) struct Timers {
    /// Bucket numbers, a min-heap by deadline (deadlines are distinct).
    heap: Vec<u32>,
    buckets: Vec<Bucket>,
    free_buckets: Vec<u32>,
    /// The bucket of each armed deadline.
    by_deadline: HashMap<u64, u32, BuildHasherDefault<FxHasher>>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    next_seq: u64,
}

impl Timers {
    /// Arms a timer for `deadline` (nanoseconds of virtual time).
    pub(crate) fn insert(
        &mut self,
        deadline: u64,
        action: TimerAction,
        owner: Option<TaskId>,
    ) -> TimerKey {
        self.next_seq += 1;
        let seq = self.next_seq;
        let bucket = match self.by_deadline.get(&deadline) {
            Some(&b) => b,
            None => self.new_bucket(deadline),
        };
        let tail = self.buckets[bucket as usize].tail;
        let slot = Slot {
            seq,
            bucket,
            prev: tail,
            next: NIL,
            action: Some(action),
            owner,
        };
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        let b = &mut self.buckets[bucket as usize];
        if tail == NIL {
            b.head = index;
        } else {
            self.slots[tail as usize].next = index;
        }
        b.tail = index;
        TimerKey { slot: index, seq }
    }

    fn new_bucket(&mut self, deadline: u64) -> u32 {
        let pos = self.heap.len() as u32;
        let bucket = Bucket {
            deadline,
            head: NIL,
            tail: NIL,
            pos,
        };
        let b = match self.free_buckets.pop() {
            Some(b) => {
                self.buckets[b as usize] = bucket;
                b
            }
            None => {
                self.buckets.push(bucket);
                (self.buckets.len() - 1) as u32
            }
        };
        self.heap.push(b);
        self.sift_up(pos as usize);
        self.by_deadline.insert(deadline, b);
        b
    }

    fn armed(&self, key: TimerKey) -> bool {
        self.slots
            .get(key.slot as usize)
            .is_some_and(|s| s.seq == key.seq)
    }

    /// Points an armed timer at a new waker (a `Sleep` polled by a new
    /// context). Returns `false` if the timer is no longer armed.
    pub(crate) fn update_waker(&mut self, key: TimerKey, waker: &Waker) -> bool {
        if !self.armed(key) {
            return false;
        }
        if let Some(TimerAction::Wake(w)) = &mut self.slots[key.slot as usize].action {
            if !w.will_wake(waker) {
                *w = waker.clone();
            }
        }
        true
    }

    /// Disarms a timer; a no-op if it already fired or was cancelled.
    pub(crate) fn cancel(&mut self, key: TimerKey) {
        if self.armed(key) {
            self.unlink(key.slot);
        }
    }

    /// The earliest armed deadline.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.heap
            .first()
            .map(|&b| self.buckets[b as usize].deadline)
    }

    /// Disarms and returns the next timer due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<Fired> {
        let &b = self.heap.first()?;
        let bucket = &self.buckets[b as usize];
        if bucket.deadline > now {
            return None;
        }
        let slot = self.unlink(bucket.head);
        Some(Fired {
            action: slot.action.expect("an armed timer has an action"),
            owner: slot.owner,
        })
    }

    /// Takes timer `index` out of its bucket (dropping the bucket if it
    /// empties) and frees its slot.
    fn unlink(&mut self, index: u32) -> Slot {
        let (b, prev, next) = {
            let s = &self.slots[index as usize];
            (s.bucket, s.prev, s.next)
        };
        if prev == NIL {
            self.buckets[b as usize].head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.buckets[b as usize].tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        if self.buckets[b as usize].head == NIL {
            self.remove_bucket(b);
        }
        self.free.push(index);
        std::mem::replace(
            &mut self.slots[index as usize],
            Slot {
                seq: 0,
                bucket: NIL,
                prev: NIL,
                next: NIL,
                action: None,
                owner: None,
            },
        )
    }

    fn remove_bucket(&mut self, b: u32) {
        let (deadline, pos) = {
            let bucket = &self.buckets[b as usize];
            (bucket.deadline, bucket.pos as usize)
        };
        self.by_deadline.remove(&deadline);
        self.heap.swap_remove(pos);
        if pos < self.heap.len() {
            self.buckets[self.heap[pos] as usize].pos = pos as u32;
            self.sift_down(pos);
            self.sift_up(pos);
        }
        self.free_buckets.push(b);
    }

    fn less(&self, a: u32, b: u32) -> bool {
        self.buckets[a as usize].deadline < self.buckets[b as usize].deadline
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.heap.swap(i, j);
        self.buckets[self.heap[i] as usize].pos = i as u32;
        self.buckets[self.heap[j] as usize].pos = j as u32;
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.less(self.heap[i], self.heap[parent]) {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < n && self.less(self.heap[l], self.heap[smallest]) {
                smallest = l;
            }
            if r < n && self.less(self.heap[r], self.heap[smallest]) {
                smallest = r;
            }
            if smallest == i {
                break;
            }
            self.swap(i, smallest);
            i = smallest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fire_order(ops: &[(u64, bool)]) -> Vec<u64> {
        // Insert timers with the given deadlines, cancel the flagged ones,
        // then pop everything: the sequence number is the insertion index.
        let mut t = Timers::default();
        let keys: Vec<_> = ops
            .iter()
            .map(|&(d, _)| t.insert(d, TimerAction::Wake(Waker::noop().clone()), None))
            .collect();
        for (k, &(_, cancel)) in keys.iter().zip(ops) {
            if cancel {
                t.cancel(*k);
            }
        }
        let mut out = Vec::new();
        while let Some(d) = t.next_deadline() {
            let before = t.free.len();
            t.pop_due(d).unwrap();
            assert_eq!(t.free.len(), before + 1);
            out.push(d);
        }
        assert!(t.by_deadline.is_empty() && t.heap.is_empty());
        out
    }

    #[test]
    fn pops_in_deadline_then_insertion_order_with_cancellations() {
        let mut rng = 0x1234_5678_u64;
        for round in 0..200 {
            let ops: Vec<(u64, bool)> = (0..(round % 40))
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    (rng % 10, rng % 3 == 0)
                })
                .collect();
            let mut expected: Vec<u64> = ops.iter().filter(|o| !o.1).map(|o| o.0).collect();
            expected.sort();
            assert_eq!(fire_order(&ops), expected, "ops {ops:?}");
        }
    }

    #[test]
    fn equal_deadlines_fire_in_insertion_order() {
        let mut t = Timers::default();
        let owners: Vec<TaskId> = (0..6).map(TaskId).collect();
        for &o in &owners {
            t.insert(5, TimerAction::Wake(Waker::noop().clone()), Some(o));
        }
        let fired: Vec<_> = std::iter::from_fn(|| t.pop_due(5).map(|f| f.owner.unwrap())).collect();
        assert_eq!(fired, owners);
    }

    /// Interleaved inserts, cancels and pops against a sorted-list model:
    /// every timer fires in exact (deadline, set order) order.
    #[test]
    fn matches_a_sorted_model_under_interleaving() {
        let mut rng = 0x9e37_79b9_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..50 {
            let mut t = Timers::default();
            // (deadline, id, key) of armed timers, in set order.
            let mut model: Vec<(u64, u32, TimerKey)> = Vec::new();
            let mut now = 0;
            let mut id = 0u32;
            for _ in 0..400 {
                match next() % 4 {
                    0 | 1 => {
                        let d = now + next() % 6;
                        let key = t.insert(
                            d,
                            TimerAction::Wake(Waker::noop().clone()),
                            Some(TaskId(id)),
                        );
                        model.push((d, id, key));
                        id += 1;
                    }
                    2 if !model.is_empty() => {
                        let i = (next() % model.len() as u64) as usize;
                        t.cancel(model.remove(i).2);
                    }
                    _ => {
                        assert_eq!(t.next_deadline(), model.iter().map(|m| m.0).min());
                        if let Some(d) = t.next_deadline() {
                            now = d;
                            while let Some(f) = t.pop_due(now) {
                                // The model's first timer at the earliest deadline.
                                let i = model
                                    .iter()
                                    .position(|m| m.0 == d)
                                    .expect("the model has it");
                                assert_eq!(f.owner, Some(TaskId(model.remove(i).1)));
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn stale_keys_are_ignored() {
        let mut t = Timers::default();
        let a = t.insert(1, TimerAction::Wake(Waker::noop().clone()), None);
        t.pop_due(1).unwrap();
        let b = t.insert(2, TimerAction::Wake(Waker::noop().clone()), None);
        t.cancel(a); // a's slot now belongs to b: must not cancel b
        assert!(!t.update_waker(a, Waker::noop()));
        assert!(t.update_waker(b, Waker::noop()));
        assert_eq!(t.next_deadline(), Some(2));
    }
}
