//! `Replay`: follows a recorded [`Schedule`] decision by decision.
//!
//! Strict (the default of [`SimBuilder::replay`]): each step must find the
//! recorded task ready, each draw must be a draw, each early clock move
//! must come where the program can take it; the first mismatch stops the
//! run with [`Failure::ScheduleDiverged`], naming the step and what the
//! schedule and the program each wanted. A schedule that runs out while
//! the program goes on diverges too.
//!
//! Lenient (for shrinking): at the first mismatch, or when the schedule
//! runs out, the rest of the run takes the least tangled order: the task
//! that ran last goes on while it is ready (a yield does not switch, for
//! up to 64 steps, so a busy-wait cannot hang it), else the task ready
//! first runs; no early clock moves, draws of 0. An edited schedule is
//! thus still a run, with as few preemptions as the edit allows, and the
//! run records what actually happened.
//!
//! The ready queue is kept in the order tasks became ready (`remove`, not
//! `swap_remove`), so "ready first" is well defined.
//!
//! [`SimBuilder::replay`]: crate::SimBuilder::replay
//! [`Failure::ScheduleDiverged`]: crate::Failure::ScheduleDiverged

use std::sync::Arc;

use super::schedule::{Decision, Schedule};
use super::{Pick, ReadyView, SchedulePolicy};
use crate::runtime::Seed;
use crate::runtime::ready::ReadyQueue;
use crate::runtime::waker::TaskKey;
use crate::time::Duration;

pub(crate) struct Replay {
    schedule: Arc<Schedule>,
    strict: bool,
    /// The next decision, and how many steps of it (a `Run`) are used.
    at: usize,
    used: u32,
    /// Steps taken so far (for messages).
    step: u64,
    /// Lenient replay that left the schedule: natural order from here.
    off: bool,
    /// After leaving the schedule: the task that ran last, and how many
    /// steps in a row it has run.
    last: Option<TaskKey>,
    streak: u32,
    diverged: Option<String>,
}

impl Replay {
    pub(crate) fn new(schedule: Arc<Schedule>, strict: bool) -> Replay {
        Replay {
            schedule,
            strict,
            at: 0,
            used: 0,
            step: 0,
            off: false,
            last: None,
            streak: 0,
            diverged: None,
        }
    }

    fn next(&self) -> Option<Decision> {
        self.schedule.decisions().get(self.at).copied()
    }

    fn consume(&mut self) {
        if let Some(Decision::Run { times, .. }) = self.next() {
            self.used += 1;
            if self.used < times {
                return;
            }
        }
        self.used = 0;
        self.at += 1;
    }

    /// The program and the schedule disagree: strict replay fails, lenient
    /// replay goes on in the natural order.
    fn mismatch(&mut self, what: impl FnOnce() -> String) {
        self.off = true;
        if self.strict && self.diverged.is_none() {
            self.diverged = Some(what());
        }
    }

    /// The least tangled choice: the last task again while it is ready
    /// (a bounded streak), else the one ready first.
    fn natural(&mut self, ready: &mut ReadyQueue, view: &dyn ReadyView) -> Pick {
        const STREAK: u32 = 64;
        let again = self
            .last
            .filter(|_| self.streak < STREAK)
            .and_then(|last| ready.iter().position(|k| *k == last && view.runnable(*k)));
        let i = match again {
            Some(i) => {
                self.streak += 1;
                i
            }
            None => {
                self.streak = 0;
                0
            }
        };
        let key = ready.remove(i).expect("the index is in the queue");
        self.last = Some(key);
        Pick::Run(key)
    }

    pub(crate) fn take_divergence(&mut self) -> Option<String> {
        self.diverged.take()
    }

    /// At the end of a run: decisions the program never asked for.
    pub(crate) fn leftover(&mut self) -> Option<String> {
        if !self.strict || self.off {
            return None;
        }
        let left = self.schedule.decisions().len().saturating_sub(self.at);
        (left > 0).then(|| {
            format!(
                "the run ended after step {}, but the schedule has {left} more decision{} (next: {})",
                self.step,
                if left == 1 { "" } else { "s" },
                describe(self.next())
            )
        })
    }
}

fn describe(d: Option<Decision>) -> String {
    match d {
        Some(Decision::Run { task, .. }) => format!("poll #{task}"),
        Some(Decision::Advance) => "move the clock early".to_string(),
        Some(Decision::Draw { value }) => format!("a draw of {value}"),
        None => "nothing: the schedule ended".to_string(),
    }
}

impl SchedulePolicy for Replay {
    fn start(&mut self, _: Seed) {}

    fn pick(&mut self, ready: &mut ReadyQueue, view: &dyn ReadyView) -> Pick {
        if self.off {
            return self.natural(ready, view);
        }
        let next = self.next();
        match next {
            Some(Decision::Run { task, .. }) => {
                if let Some(i) = ready
                    .iter()
                    .position(|k| k.id.0 == task && view.runnable(*k))
                {
                    self.consume();
                    self.step += 1;
                    return Pick::Run(ready.remove(i).expect("the index is in the queue"));
                }
                if !ready.iter().any(|k| view.runnable(*k)) {
                    // Nothing can run (ended or paused tasks only): the
                    // clock moves, as it did when the schedule was recorded.
                    return Pick::Idle;
                }
                let mut ids: Vec<TaskKey> = ready
                    .iter()
                    .filter(|k| view.runnable(**k))
                    .copied()
                    .collect();
                ids.sort_by_key(|k| k.id);
                let ids: Vec<String> = ids.iter().map(|k| k.id.to_string()).collect();
                let step = self.step + 1;
                self.mismatch(|| {
                    format!(
                        "at step {step} the schedule polls #{task}, but it is not ready \
                         (ready: {})",
                        ids.join(", ")
                    )
                });
            }
            other => {
                let step = self.step + 1;
                self.mismatch(|| {
                    format!(
                        "at step {step} the program polls a task, but the schedule says: {}",
                        describe(other)
                    )
                });
            }
        }
        if self.strict {
            // The executor stops the run with the divergence.
            return Pick::Idle;
        }
        self.step += 1;
        self.natural(ready, view)
    }

    fn draw(&mut self, n: usize) -> usize {
        if self.off {
            return 0;
        }
        match self.next() {
            Some(Decision::Draw { value }) if (value as u128) < n as u128 => {
                self.consume();
                value as usize
            }
            other => {
                let step = self.step;
                self.mismatch(|| {
                    format!(
                        "during step {step} the program draws a value below {n}, but the \
                         schedule says: {}",
                        describe(other)
                    )
                });
                0
            }
        }
    }

    fn clock_may_move(&mut self, _: Duration) -> bool {
        if !self.off && self.next() == Some(Decision::Advance) {
            self.consume();
            return true;
        }
        false
    }
}
