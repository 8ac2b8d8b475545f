//! The ready set's queue: a ring of task keys.
//!
//! The operations and the logical order are those of `VecDeque` (which
//! the queue was): keys in the order they were queued, `swap_remove_back`
//! for `Random`'s pick, `pop_front` for `Fifo`'s, `remove` keeping the
//! order for a replay's. So every pick, and every recorded seed, is what
//! it was. What differs is the cost of the two operations run on every
//! step: `VecDeque::push_back` is a call (25 instructions, out of line)
//! and its indices wrap with a compare; here the capacity is a power of
//! two, indices wrap with a mask, and both stay inline.

use std::ops::RangeFrom;

use super::hugevec::HugeVec;
use super::waker::TaskKey;

/// A queue of task keys (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct ReadyQueue {
    /// The ring: its length is its capacity, a power of two (or 0). A
    /// ring of many thousand keys sits on huge pages (see `HugeVec`).
    buf: HugeVec<TaskKey>,
    /// Where the front key is.
    head: usize,
    len: usize,
}

/// A filler for the ring's unused slots (never read as a key). Filling
/// them costs a little memory traffic when the ring grows; writing only
/// the slots reached cost a branch on every push (W2: 7 instructions a
/// step).
const VACANT: TaskKey = TaskKey {
    index: u32::MAX,
    id: crate::task::TaskId(u32::MAX),
};

impl ReadyQueue {
    /// An empty queue with room for `n` keys.
    pub(crate) fn with_capacity(n: usize) -> ReadyQueue {
        let mut buf = HugeVec::new();
        buf.resize(n.next_power_of_two(), VACANT);
        ReadyQueue {
            buf,
            head: 0,
            len: 0,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many keys fit before the ring grows.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The ring's slot of the key at logical position `i`.
    #[inline]
    fn slot(&self, i: usize) -> usize {
        (self.head + i) & (self.buf.len() - 1)
    }

    #[inline]
    pub(crate) fn push_back(&mut self, key: TaskKey) {
        if self.len == self.buf.len() {
            self.grow();
        }
        let at = self.slot(self.len);
        self.buf[at] = key;
        self.len += 1;
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<TaskKey> {
        if self.len == 0 {
            return None;
        }
        let key = self.buf[self.head];
        self.head = self.slot(1);
        self.len -= 1;
        Some(key)
    }

    /// Takes out the key at position `i`, putting the last key in its
    /// place (as `VecDeque::swap_remove_back`).
    #[inline]
    pub(crate) fn swap_remove_back(&mut self, i: usize) -> Option<TaskKey> {
        if i >= self.len {
            return None;
        }
        let (at, last) = (self.slot(i), self.slot(self.len - 1));
        let key = self.buf[at];
        self.buf[at] = self.buf[last];
        self.len -= 1;
        Some(key)
    }

    /// Takes out the key at position `i`, the others keeping their order
    /// (as `VecDeque::remove`, which also moves the shorter side).
    pub(crate) fn remove(&mut self, i: usize) -> Option<TaskKey> {
        if i >= self.len {
            return None;
        }
        let key = self.buf[self.slot(i)];
        if i < self.len - 1 - i {
            for j in (0..i).rev() {
                let (to, from) = (self.slot(j + 1), self.slot(j));
                self.buf[to] = self.buf[from];
            }
            self.head = self.slot(1);
        } else {
            for j in i..self.len - 1 {
                let (to, from) = (self.slot(j), self.slot(j + 1));
                self.buf[to] = self.buf[from];
            }
        }
        self.len -= 1;
        Some(key)
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&TaskKey> {
        (i < self.len).then(|| &self.buf[self.slot(i)])
    }

    pub(crate) fn iter(&self) -> Iter<'_> {
        self.range(0..)
    }

    /// The keys from position `r.start` on (none if it is past the end).
    pub(crate) fn range(&self, r: RangeFrom<usize>) -> Iter<'_> {
        Iter {
            queue: self,
            at: r.start.min(self.len),
        }
    }

    pub(crate) fn contains(&self, key: &TaskKey) -> bool {
        self.iter().any(|k| k == key)
    }

    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Doubles the ring (at least 4 slots): the keys that wrapped around
    /// (those before `head`) are copied to just after the old end, so that
    /// the keys run on from `head`, as `VecDeque` lays them out when it
    /// grows. (The buffer itself moves to new memory when it grows, see
    /// `HugeVec`: past 256 KiB, huge pages.)
    #[cold]
    fn grow(&mut self) {
        let old = self.buf.len();
        let cap = (old * 2).max(4);
        self.buf.reserve(cap - old);
        for i in 0..self.head {
            let key = self.buf[i];
            self.buf.push(key);
        }
        self.buf.resize(cap, VACANT);
    }
}

/// The keys of a [`ReadyQueue`], front to back.
pub(crate) struct Iter<'a> {
    queue: &'a ReadyQueue,
    at: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a TaskKey;

    #[inline]
    fn next(&mut self) -> Option<&'a TaskKey> {
        let key = self.queue.get(self.at)?;
        self.at += 1;
        Some(key)
    }
}

impl<'a> IntoIterator for &'a ReadyQueue {
    type Item = &'a TaskKey;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::task::TaskId;

    fn key(n: u32) -> TaskKey {
        TaskKey {
            index: n,
            id: TaskId(n),
        }
    }

    /// Every operation, in long random sequences (wrapping around the
    /// ring, growing it, emptying it), leaves the same keys in the same
    /// order as a `VecDeque` given the same operations, and returns the
    /// same values.
    #[test]
    fn behaves_as_a_vecdeque() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // Fewer under Miri, which runs this a thousand times slower.
        let (rounds, steps) = if cfg!(miri) { (8, 400) } else { (50, 2_000) };
        for round in 0..rounds {
            let mut ours = if round % 2 == 0 {
                ReadyQueue::default()
            } else {
                ReadyQueue::with_capacity(round)
            };
            let mut model: VecDeque<TaskKey> = VecDeque::new();
            let mut next = 0;
            for step in 0..steps {
                let n = model.len();
                let i = rng.random_range(0..n + 2);
                match rng.random_range(0..10) {
                    0..=3 => {
                        ours.push_back(key(next));
                        model.push_back(key(next));
                        next += 1;
                    }
                    4 => assert_eq!(ours.pop_front(), model.pop_front()),
                    5 | 6 => assert_eq!(ours.swap_remove_back(i), model.swap_remove_back(i)),
                    7 => assert_eq!(ours.remove(i), model.remove(i)),
                    8 => assert_eq!(ours.get(i), model.get(i)),
                    _ if step % 97 == 0 => {
                        ours.clear();
                        model.clear();
                    }
                    _ => assert_eq!(
                        ours.contains(&key(i as u32)),
                        model.contains(&key(i as u32))
                    ),
                }
                assert_eq!(ours.len(), model.len());
                assert_eq!(ours.is_empty(), model.is_empty());
                assert!(ours.iter().eq(model.iter()), "round {round}, step {step}");
                let from = i.min(model.len());
                assert!(ours.range(from..).eq(model.range(from..)));
                assert!((&ours).into_iter().eq(model.iter()));
            }
        }
    }
}
