//! `Random`: a uniform choice among the ready tasks (the default policy).
//!
//! The draw is the first of the seed's scheduler stream at each step with
//! more than one ready key, and the chosen key is swapped out of the queue
//! (`swap_remove_back`, O(1)): exactly what lockstep has always done, so
//! every recorded seed and snapshot keeps its meaning.

use rand_chacha::ChaCha8Rng;

use super::late::{LatePolls, LateState};
use rand_chacha::rand_core::Rng;

use super::{Pick, ReadyView, SchedulePolicy, scale};
use crate::runtime::Seed;
use crate::runtime::ready::ReadyQueue;
use crate::runtime::world::{rng_for, stream};
use crate::time::Duration;

pub(crate) struct Random {
    rng: ChaCha8Rng,
    /// Values taken from `rng` before their step (oldest first), so that
    /// the executor can prefetch the tasks the next picks will probably
    /// run. Every draw takes from here first: the stream's order, and so
    /// every choice, is the same as drawing on demand.
    ahead: [u64; AHEAD],
    ahead_len: usize,
    /// Small (its stream is boxed, and made on its first draw): a policy
    /// is moved into every fresh run.
    late: Option<LateState>,
}

impl Random {
    pub(crate) fn new(seed: Seed, late: Option<LatePolls>) -> Random {
        Random {
            rng: rng_for(seed, stream::SCHED),
            ahead: [0; AHEAD],
            ahead_len: 0,
            late: late.map(|l| LateState::new(l, seed)),
        }
    }
}

/// How many picks ahead [`Random::predict`] can see.
pub(crate) const AHEAD: usize = 6;

impl Random {
    /// The next value of the stream.
    #[inline]
    fn next(&mut self) -> u64 {
        if self.ahead_len == 0 {
            return self.rng.next_u64();
        }
        let v = self.ahead[0];
        self.ahead.copy_within(1.., 0);
        self.ahead_len -= 1;
        v
    }

    /// The index the pick `k` steps from now (`k < AHEAD`, 0 is the next
    /// one) would take in a ready queue of `n` keys, if nothing draws in
    /// between. A guess for prefetching only: it changes no choice.
    #[inline]
    pub(crate) fn predict(&mut self, k: usize, n: usize) -> usize {
        while self.ahead_len <= k {
            self.ahead[self.ahead_len] = self.rng.next_u64();
            self.ahead_len += 1;
        }
        scale(self.ahead[k], n)
    }
}

impl SchedulePolicy for Random {
    fn start(&mut self, _: Seed) {}

    #[inline]
    fn pick(&mut self, ready: &mut ReadyQueue, _: &dyn ReadyView) -> Pick {
        let n = ready.len();
        let i = if n == 1 { 0 } else { scale(self.next(), n) };
        Pick::Run(
            ready
                .swap_remove_back(i)
                .expect("the ready set is not empty"),
        )
    }

    fn draw(&mut self, n: usize) -> usize {
        scale(self.next(), n)
    }

    fn clock_may_move(&mut self, by: Duration) -> bool {
        self.late.as_mut().is_some_and(|l| l.fire(by))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Looking ahead takes values from the stream early but hands them out
    /// in the same order: picks and draws are what they are without it.
    #[test]
    fn predicting_changes_no_choice() {
        let seed = Seed(7);
        let mut plain = Random::new(seed, None);
        let mut peeking = Random::new(seed, None);
        for step in 0..2_000usize {
            let n = 2 + step % 37;
            if step % 3 == 0 {
                let guess = peeking.predict(step % AHEAD, n + 5);
                assert!(guess < n + 5);
            }
            let (a, b) = if step % 5 == 0 {
                (plain.draw(n), peeking.draw(n))
            } else {
                (scale(plain.next(), n), scale(peeking.next(), n))
            };
            assert_eq!(a, b, "step {step}");
        }
        // And a prediction is right when nothing changes in between.
        let guess = peeking.predict(0, 10);
        assert_eq!(scale(peeking.next(), 10), guess);
    }
}
