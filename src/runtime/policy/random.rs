//! `Random`: a uniform choice among the ready tasks (the default policy).
//!
//! The draw is the first of the seed's scheduler stream at each step with
//! more than one ready key, and the chosen key is swapped out of the queue
//! (`swap_remove_back`, O(1)): exactly what lockstep has always done, so
//! every recorded seed and snapshot keeps its meaning.

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;

use super::late::{LatePolls, LateState};
use super::{Pick, ReadyView, SchedulePolicy, below};
use crate::runtime::Seed;
use crate::runtime::waker::TaskKey;
use crate::runtime::world::{rng_for, stream};
use crate::time::Duration;

pub(crate) struct Random {
    rng: ChaCha8Rng,
    /// Boxed: most runs have no late polls, and a policy is moved into
    /// every fresh run.
    late: Option<Box<LateState>>,
}

impl Random {
    pub(crate) fn new(seed: Seed, late: Option<LatePolls>) -> Random {
        Random {
            rng: rng_for(seed, stream::SCHED),
            late: late.map(|l| Box::new(LateState::new(l, seed))),
        }
    }
}

impl SchedulePolicy for Random {
    fn start(&mut self, _: Seed) {}

    #[inline]
    fn pick(&mut self, ready: &mut VecDeque<TaskKey>, _: &dyn ReadyView) -> Pick {
        let n = ready.len();
        let i = if n == 1 { 0 } else { below(&mut self.rng, n) };
        Pick::Run(
            ready
                .swap_remove_back(i)
                .expect("the ready set is not empty"),
        )
    }

    fn draw(&mut self, n: usize) -> usize {
        below(&mut self.rng, n)
    }

    fn clock_may_move(&mut self, by: Duration) -> bool {
        self.late.as_mut().is_some_and(|l| l.fire(by))
    }
}
