//! The timer heap: every pending deadline of one simulation.
//!
//! Timers fire in (deadline, sequence) order, the sequence being the order in
//! which they were set, so two timers with the same deadline always fire in
//! the same order.
//!
//! The structure is an indexed binary min-heap: timers live in a table of
//! reusable slots, the heap holds slot numbers, and every slot knows its
//! position in the heap. Cancelling a timer (a `Sleep` dropped before its
//! deadline: the usual fate of a `timeout` that did not fire) removes it from
//! the heap at once in O(log n). There are no stale entries to skip or
//! compact, memory is bounded by the timers alive at once, and nothing
//! allocates in steady state (slots and heap capacity are reused).

use std::task::Waker;

use crate::runtime::world::World;
use crate::task::TaskId;

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

struct Slot {
    /// 0 when the slot is free.
    seq: u64,
    deadline: u64,
    /// Position in `heap` while armed.
    pos: u32,
    action: Option<TimerAction>,
    owner: Option<TaskId>,
}

/// A timer that fired: what to do, and for whom (for the trace).
pub(crate) struct Fired {
    pub(crate) action: TimerAction,
    pub(crate) owner: Option<TaskId>,
}

#[derive(Default)]
pub(crate) struct Timers {
    /// Slot numbers, a min-heap by (deadline, seq).
    heap: Vec<u32>,
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
        let pos = self.heap.len() as u32;
        let slot = Slot {
            seq,
            deadline,
            pos,
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
        self.heap.push(index);
        self.sift_up(pos as usize);
        TimerKey { slot: index, seq }
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
            let pos = self.slots[key.slot as usize].pos as usize;
            self.remove_at(pos);
        }
    }

    /// The earliest armed deadline.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.heap.first().map(|&i| self.slots[i as usize].deadline)
    }

    /// Disarms and returns the next timer due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<Fired> {
        if self.next_deadline()? > now {
            return None;
        }
        let slot = self.remove_at(0);
        Some(Fired {
            action: slot.action.expect("an armed timer has an action"),
            owner: slot.owner,
        })
    }

    /// Removes the timer at heap position `pos` and frees its slot.
    fn remove_at(&mut self, pos: usize) -> Slot {
        let index = self.heap.swap_remove(pos);
        if pos < self.heap.len() {
            self.slots[self.heap[pos] as usize].pos = pos as u32;
            self.sift_down(pos);
            self.sift_up(pos);
        }
        self.free.push(index);
        std::mem::replace(
            &mut self.slots[index as usize],
            Slot {
                seq: 0,
                deadline: 0,
                pos: 0,
                action: None,
                owner: None,
            },
        )
    }

    fn less(&self, a: u32, b: u32) -> bool {
        let (a, b) = (&self.slots[a as usize], &self.slots[b as usize]);
        (a.deadline, a.seq) < (b.deadline, b.seq)
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.heap.swap(i, j);
        self.slots[self.heap[i] as usize].pos = i as u32;
        self.slots[self.heap[j] as usize].pos = j as u32;
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
            let before = t.heap.len();
            t.pop_due(d).unwrap();
            assert_eq!(t.heap.len(), before - 1);
            out.push(d);
        }
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
