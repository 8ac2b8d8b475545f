//! `Outcome`: what a run produced.

use std::fmt;

use super::Seed;
use super::policy::Schedule;
use crate::check::Failure;
use crate::time::Duration;
use crate::trace::Trace;

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Scheduling steps: task polls.
    pub steps: u64,
    /// Tasks spawned, not counting the main task.
    pub tasks_spawned: u64,
    /// Timers that fired.
    pub timers_fired: u64,
    /// Times the clock jumped forward.
    pub clock_jumps: u64,
    /// Times the clock moved to a timer while tasks were ready (late
    /// polls, see [`LatePolls`](crate::explore::LatePolls)).
    pub late_polls: u64,
    /// Virtual time charged to polls (see
    /// [`PollCost`](crate::explore::PollCost)).
    pub poll_time: Duration,
    /// Virtual time reached at the end of the run.
    pub virtual_time: Duration,
}

/// The result of [`Sim::run`](crate::Sim::run): the main task's value or the
/// [`Failure`], plus the trace, counters, seed and decision hash.
pub struct Outcome<T> {
    result: Result<T, Failure>,
    trace: Trace,
    stats: Stats,
    seed: Seed,
    hash: u64,
    warnings: Vec<Failure>,
    step_hashes: Option<Vec<u64>>,
    /// The recorded schedule, or the bound (in steps) it was dropped at.
    schedule: Result<Option<Schedule>, u64>,
}

impl<T> Outcome<T> {
    pub(crate) fn new(
        result: Result<T, Failure>,
        trace: Trace,
        stats: Stats,
        seed: Seed,
        hash: u64,
        warnings: Vec<Failure>,
        step_hashes: Option<Vec<u64>>,
    ) -> Outcome<T> {
        Outcome {
            result,
            trace,
            stats,
            seed,
            hash,
            warnings,
            step_hashes,
            schedule: Ok(None),
        }
    }

    /// The run's recorded schedule, or the bound it was dropped at.
    pub(crate) fn with_schedule(mut self, schedule: Result<Option<Schedule>, u64>) -> Outcome<T> {
        self.schedule = schedule;
        self
    }

    /// The step count past which this run dropped the schedule it was
    /// recording (see [`Outcome::schedule`]).
    pub(crate) fn schedule_dropped(&self) -> Option<u64> {
        self.schedule.as_ref().err().copied()
    }

    /// The run's schedule: every task pick, early clock move and scheduler
    /// draw, replayable with [`SimBuilder::replay`](crate::SimBuilder::replay)
    /// and printable as one word (`S1:0x2a:-:0.1x3.t.2`). Kept by runs that
    /// trace, or that were built with
    /// [`record_schedule(true)`](crate::SimBuilder::record_schedule).
    ///
    /// A schedule grows by about 2 bytes a step. A run that traces into a
    /// ring or a stream (the default, [`TraceMode`](crate::trace::TraceMode))
    /// bounds it as it bounds its trace, to keep its memory flat: it drops
    /// the schedule, and this is `None`, once the run passes its ring's
    /// count of steps, or [`TraceMode::DEFAULT_RING`](crate::trace::TraceMode::DEFAULT_RING)
    /// steps if that is more (so every run within the default step limit
    /// keeps it). The seed still replays such a run exactly;
    /// `record_schedule(true)` or `TraceMode::Keep` keeps its schedule
    /// whole.
    pub fn schedule(&self) -> Option<&Schedule> {
        self.schedule.as_ref().ok()?.as_ref()
    }

    /// The main task's value, or why the run failed.
    pub fn result(&self) -> Result<&T, &Failure> {
        self.result.as_ref()
    }

    /// Takes the result.
    pub fn into_result(self) -> Result<T, Failure> {
        self.result
    }

    /// Whether the run succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// The failure, if the run failed.
    pub fn failure(&self) -> Option<&Failure> {
        self.result.as_ref().err()
    }

    /// The recorded events.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Takes the trace.
    pub fn into_trace(self) -> Trace {
        self.trace
    }

    /// Run counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The seed.
    pub fn seed(&self) -> Seed {
        self.seed
    }

    /// A rolling hash of every scheduling decision, clock jump and random
    /// draw of the run, kept even with tracing off. Two runs of one seed
    /// have the same hash; if they do not, something outside the seed
    /// reached the run.
    pub fn determinism_hash(&self) -> u64 {
        self.hash
    }

    /// Problems found by checks set to [`Severity::Warn`](crate::Severity::Warn).
    pub fn warnings(&self) -> &[Failure] {
        &self.warnings
    }

    pub(crate) fn step_hashes(&self) -> Option<&[u64]> {
        self.step_hashes.as_deref()
    }

    pub(crate) fn with_failure<U>(self, failure: Failure) -> Outcome<U> {
        Outcome {
            result: Err(failure),
            trace: self.trace,
            stats: self.stats,
            seed: self.seed,
            hash: self.hash,
            warnings: self.warnings,
            step_hashes: self.step_hashes,
            schedule: self.schedule,
        }
    }

    /// The value; panics with the failure and the end of the trace if the
    /// run failed.
    #[track_caller]
    pub fn unwrap(self) -> T {
        match self.result {
            Ok(v) => v,
            Err(f) => panic!(
                "lockstep run failed: {f}{}\n\nlast events:\n{}",
                f.backtrace()
                    .map(|bt| format!("\n\nbacktrace of the panic:\n{bt}"))
                    .unwrap_or_default(),
                self.trace.render_tail(20)
            ),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Outcome<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outcome")
            .field("seed", &self.seed)
            .field("result", &self.result)
            .field("stats", &self.stats)
            .field("events", &self.trace.len())
            .finish()
    }
}
