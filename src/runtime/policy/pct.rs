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

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;

use super::late::{LatePolls, LateState};
use super::{Pick, ReadyView, SchedulePolicy, below};
use crate::runtime::Seed;
use crate::runtime::waker::TaskKey;
use crate::runtime::world::{rng_for, stream};
use crate::time::Duration;

/// Initial priorities have the top bit set; lowered ones are small.
const HIGH: u64 = 1 << 63;

pub(crate) struct Pct {
    depth: u32,
    horizon: u64,
    rng: ChaCha8Rng,
    /// Priority by task id (ids are dense per run).
    priority: Vec<u64>,
    /// Steps at which the running task drops, ascending.
    change_points: Vec<u64>,
    /// Change points passed so far.
    changed: usize,
    /// Steps with a choice (more than one ready key) so far.
    step: u64,
    /// The task polled last, and how many yields were seen.
    last: Option<TaskKey>,
    yields: u64,
    /// Boxed: most runs have no late polls, and a policy is moved into
    /// every fresh run.
    late: Option<Box<LateState>>,
}

impl Pct {
    pub(crate) fn new(seed: Seed, depth: u32, horizon: u64, late: Option<LatePolls>) -> Pct {
        Pct {
            depth: depth.max(1),
            horizon: horizon.max(1),
            rng: rng_for(seed, stream::SCHED),
            priority: Vec::new(),
            change_points: Vec::new(),
            changed: 0,
            step: 0,
            last: None,
            yields: 0,
            late: late.map(|l| Box::new(LateState::new(l, seed))),
        }
    }

    fn priority_of(&mut self, key: TaskKey) -> u64 {
        let id = key.id.0 as usize;
        while self.priority.len() <= id {
            self.priority.push(self.rng.next_u64() | HIGH);
        }
        self.priority[id]
    }

    /// The index of the runnable key of highest priority (ties: the one
    /// ready first), or 0 when none is runnable (the executor then drops
    /// or parks it).
    fn best(&mut self, ready: &VecDeque<TaskKey>, view: &dyn ReadyView) -> usize {
        let mut best: Option<(usize, u64)> = None;
        for (i, &key) in ready.iter().enumerate() {
            if !view.runnable(key) {
                continue;
            }
            let p = self.priority_of(key);
            if best.is_none_or(|(_, b)| p > b) {
                best = Some((i, p));
            }
        }
        best.map_or(0, |(i, _)| i)
    }
}

impl SchedulePolicy for Pct {
    fn start(&mut self, _: Seed) {
        let mut points: Vec<u64> = (1..self.depth)
            .map(|_| 1 + below(&mut self.rng, self.horizon as usize) as u64)
            .collect();
        points.sort_unstable();
        self.change_points = points;
    }

    fn pick(&mut self, ready: &mut VecDeque<TaskKey>, view: &dyn ReadyView) -> Pick {
        // Only real choices count as steps (PCT, 4.1: change points in
        // sequential stretches are wasted).
        if ready.len() > 1 {
            self.step += 1;
        }
        if let Some(last) = self.last.take() {
            if ready.contains(&last) {
                // It woke itself while it ran: a yield. Below every task
                // that has not yielded, and below earlier yielders (they
                // take turns), above change-point drops.
                self.priority_of(last);
                self.priority[last.id.0 as usize] = HIGH - 1 - self.yields;
                self.yields += 1;
            }
        }
        let mut i = self.best(ready, view);
        while self.change_points.get(self.changed) == Some(&self.step) {
            // The task about to run drops below every initial priority,
            // and below earlier drops.
            let id = ready[i].id.0 as usize;
            self.priority_of(ready[i]);
            self.priority[id] = (self.depth as usize - 1 - self.changed) as u64;
            self.changed += 1;
            i = self.best(ready, view);
        }
        let key = ready.remove(i).expect("the index is in the queue");
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
