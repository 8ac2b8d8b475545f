//! `Fifo`: the task that became ready first runs first, like most
//! production executors. Explores nothing: for speed comparisons and the
//! "natural" order. The clock never moves early under it.

use rand_chacha::ChaCha8Rng;

use super::{Pick, ReadyView, SchedulePolicy, below};
use crate::runtime::Seed;
use crate::runtime::ready::ReadyQueue;
use crate::runtime::world::{rng_for, stream};
use crate::time::Duration;

pub(crate) struct Fifo {
    /// For draws the program asks for (`select`).
    rng: ChaCha8Rng,
}

impl Fifo {
    pub(crate) fn new(seed: Seed) -> Fifo {
        Fifo {
            rng: rng_for(seed, stream::SCHED),
        }
    }
}

impl SchedulePolicy for Fifo {
    fn start(&mut self, _: Seed) {}

    #[inline]
    fn pick(&mut self, ready: &mut ReadyQueue, _: &dyn ReadyView) -> Pick {
        Pick::Run(ready.pop_front().expect("the ready set is not empty"))
    }

    fn draw(&mut self, n: usize) -> usize {
        below(&mut self.rng, n)
    }

    fn clock_may_move(&mut self, _: Duration) -> bool {
        false
    }
}
