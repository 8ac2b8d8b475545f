//! Finding bugs in fewer seeds, and reading them in fewer steps.
//!
//! - [`Schedule`]: every decision of a run (task picks, early clock
//!   moves, scheduler draws) as one copy-pasteable word, from
//!   [`Outcome::schedule`]; [`SimBuilder::replay`] follows it exactly.
//! - [`find_failure`]: a sweep over seeds that stops at the first failing
//!   one, with tracing off, and sizes `Pct`'s horizon from the seeds
//!   already run.
//! - [`shrink_schedule`]: from a failing schedule, a shorter and simpler
//!   one that fails the same way: fewer steps, fewer preemptions of
//!   tasks, fewer early clock moves and draws, fewer fault kinds.
//! - [`LatePolls`]: the clock may move to a timer while tasks are ready,
//!   so a woken task can run after its timeout fired.
//! - [`PollCost`]: virtual time charged per poll, scaled by per-host
//!   speeds, so that timers fall due while tasks run and slow hosts lag.
//! - [`Swarm`]: per-seed subsets of fault kinds and buggify points.
//! - The policies themselves are [`Policy`] values: `random`, `fifo`,
//!   `pct:D`, `swarm`, and `mix`, the exploration default
//!   ([`Policy::EXPLORE`]).
//!
//! ```
//! use lockstep::prelude::*;
//! use lockstep::explore::shrink_schedule;
//! use std::{cell::Cell, rc::Rc};
//!
//! // Two workers read, yield, write: a lost update.
//! fn program(sim: &Sim) -> Outcome<()> {
//!     sim.run(async {
//!         let n = Rc::new(Cell::new(0));
//!         let workers: Vec<_> = (0..2).map(|_| {
//!             let n = n.clone();
//!             spawn(async move {
//!                 for _ in 0..3 { yield_now().await; }
//!                 let v = n.get();
//!                 yield_now().await;
//!                 n.set(v + 1);
//!             })
//!         }).collect();
//!         for w in workers { w.await.unwrap(); }
//!         assert_eq!(n.get(), 2, "lost update");
//!     })
//! }
//!
//! let failing = (0..100u64)
//!     .map(|seed| program(&Sim::new(seed)))
//!     .find(|o| o.failure().is_some())
//!     .expect("some seed loses an update");
//! let schedule = failing.schedule().unwrap();
//! let shrunk = shrink_schedule(&Sim::new(0), schedule, program).unwrap();
//! assert!(shrunk.schedule.len() <= schedule.len());
//! let again = program(&Sim::builder().replay(shrunk.schedule.clone()).build());
//! assert_eq!(again.failure().unwrap().kind(), shrunk.kind);
//! ```
//!
//! [`Outcome::schedule`]: crate::Outcome::schedule
//! [`SimBuilder::replay`]: crate::SimBuilder::replay
//! [`Policy`]: crate::Policy
//! [`Policy::EXPLORE`]: crate::Policy::EXPLORE

use std::fmt;

use crate::check::FailureKind;
use crate::runtime::policy::schedule::Decision;
use crate::{Outcome, Policy, Sim, Verbosity};

pub use crate::runtime::{LatePolls, PollCost, Schedule, ScheduleParseError, Swarm};

/// What [`find_failure`] found.
#[derive(Debug)]
#[non_exhaustive]
pub struct Found<T> {
    /// How many seeds ran, the failing one included.
    pub runs: u64,
    /// The failing run (untraced; its [`Outcome::schedule`] replays it
    /// with a trace), or `None` if every seed passed.
    pub failure: Option<Outcome<T>>,
}

/// Runs `seeds` in order with `sim`'s settings, tracing off and the
/// schedule recorded, until one fails.
///
/// Under [`Policy::Mix`], the first run of the sweep
/// takes the natural order ([`Policy::Fifo`]: the
/// task ready first runs first) with the first seed: the order a
/// production executor most likely takes, and a round robin at every
/// `yield`, which alone shows many races (shuttle's PCT starts its
/// iterations the same way). It counts as a run.
///
/// [`Policy::Pct`] (also under `mix`) spreads its
/// change points over the expected run length: after the first seed, the
/// sweep sets [`SimBuilder::pct_horizon`](crate::SimBuilder::pct_horizon)
/// to the most steps any seed so far took. The failing run's schedule
/// replays it exactly whatever the horizon was.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::explore::find_failure;
///
/// let found = find_failure(&Sim::builder().policy(Policy::EXPLORE).build(), 0..100, |sim| {
///     sim.run(async {
///         let flag = std::rc::Rc::new(std::cell::Cell::new(false));
///         let f = flag.clone();
///         let t = spawn(async move { f.set(true) });
///         yield_now().await;
///         assert!(flag.get(), "the spawned task has not run yet");
///         t.await.unwrap();
///     })
/// });
/// let failing = found.failure.expect("some seed runs main first");
/// let replay = Sim::builder().replay(failing.schedule().unwrap().clone()).build();
/// # let _ = replay;
/// assert!(found.runs >= 1);
/// ```
pub fn find_failure<T>(
    sim: &Sim,
    seeds: impl IntoIterator<Item = u64>,
    mut run: impl FnMut(&Sim) -> Outcome<T>,
) -> Found<T> {
    let base = sim
        .to_builder()
        .verbosity(Verbosity::Off)
        .record_schedule(true);
    let mut horizon: Option<u64> = None;
    let mut runs = 0;
    let mut seeds = seeds.into_iter().peekable();
    if sim.policy() == Policy::Mix {
        if let Some(&first) = seeds.peek() {
            runs += 1;
            let outcome = run(&base.clone().seed(first).policy(Policy::Fifo).build());
            if outcome.failure().is_some() {
                return Found {
                    runs,
                    failure: Some(outcome),
                };
            }
            horizon = Some(outcome.stats().steps);
        }
    }
    for seed in seeds {
        runs += 1;
        let mut b = base.clone().seed(seed);
        if let Some(h) = horizon {
            b = b.pct_horizon(h);
        }
        let outcome = run(&b.build());
        if outcome.failure().is_some() {
            return Found {
                runs,
                failure: Some(outcome),
            };
        }
        let steps = outcome.stats().steps;
        horizon = Some(horizon.map_or(steps, |h| h.max(steps)));
    }
    Found {
        runs,
        failure: None,
    }
}

/// Runs at most this many candidate schedules while shrinking.
pub const SHRINK_BUDGET: u32 = 2000;

/// A shrunk schedule and what it took to find.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Shrunk {
    /// The shrunk schedule: it fails with [`kind`](Self::kind) under a
    /// strict replay.
    pub schedule: Schedule,
    /// The failure kind both schedules end in.
    pub kind: FailureKind,
    /// The schedule shrinking started from (as replayed).
    pub original: Schedule,
    /// How many runs shrinking took.
    pub runs: u32,
}

impl fmt::Display for Shrunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |k: u64, what: &str| format!("{k} {what}{}", if k == 1 { "" } else { "s" });
        let describe = |s: &Schedule| {
            format!(
                "{}, {}, {}, {}",
                n(s.steps(), "step"),
                n(s.preemptions().unwrap_or(s.switches()), "preemption"),
                n(s.early_clock_moves(), "early clock move"),
                n(s.draws(), "draw")
            )
        };
        writeln!(
            f,
            "shrunk a {} schedule in {} runs, from {} to {}:",
            self.kind,
            self.runs,
            describe(&self.original),
            describe(&self.schedule)
        )?;
        writeln!(f, "  {}", self.schedule)?;
        write!(
            f,
            "replay it with Sim::builder().replay(\"{}\".parse()?)",
            self.schedule
        )
    }
}

/// Why a schedule could not be shrunk.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ShrinkError {
    /// Replayed, the schedule does not fail: there is nothing to shrink.
    Passes,
    /// The program does not fit the schedule (see
    /// [`Failure::ScheduleDiverged`](crate::Failure::ScheduleDiverged)).
    Diverged(String),
}

impl fmt::Display for ShrinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShrinkError::Passes => f.write_str(
                "the schedule does not fail when replayed: nothing to shrink (is it the \
                 schedule of a failing run of this program?)",
            ),
            ShrinkError::Diverged(m) => write!(f, "the schedule does not fit the program: {m}"),
        }
    }
}

impl std::error::Error for ShrinkError {}

/// How simple a schedule is: fewer preemptions, early clock moves and
/// draws first, then fewer decisions, then fewer fault kinds (and no
/// poll cost), then fewer switches.
fn cost(s: &Schedule) -> (u64, u64, u64, u64) {
    (
        s.preemptions.unwrap_or(s.switches()) + s.early_clock_moves() + s.draws(),
        s.len(),
        s.swarm.map_or(0, |w| u64::from(w.kinds.count_ones())) + u64::from(s.cost.is_some()),
        s.switches(),
    )
}

struct Shrinker<'a, T, R: FnMut(&Sim) -> Outcome<T>> {
    sim: &'a Sim,
    run: R,
    kind: FailureKind,
    runs: u32,
    best: Schedule,
    /// The original's length: no candidate may be longer (with fewer
    /// preemptions a run may take more steps to fail, say when time flows
    /// with polls).
    limit: u64,
}

impl<T, R: FnMut(&Sim) -> Outcome<T>> Shrinker<'_, T, R> {
    fn budget_left(&self) -> bool {
        self.runs < SHRINK_BUDGET
    }

    /// Runs `candidate` leniently; keeps what actually ran if it fails the
    /// same way and is simpler.
    fn try_candidate(&mut self, candidate: Schedule) -> bool {
        if !self.budget_left() {
            return false;
        }
        self.runs += 1;
        let sim = self
            .sim
            .to_builder()
            .replay_lenient(candidate)
            .verbosity(Verbosity::Off)
            .record_schedule(true)
            .build();
        let outcome = (self.run)(&sim);
        let same = outcome.failure().is_some_and(|f| f.kind() == self.kind);
        match outcome.schedule() {
            Some(ran) if same && ran.len() <= self.limit && cost(ran) < cost(&self.best) => {
                self.best = ran.clone();
                true
            }
            _ => false,
        }
    }

    fn with(&self, decisions: Vec<Decision>) -> Schedule {
        Schedule {
            seed: self.best.seed,
            swarm: self.best.swarm,
            cost: self.best.cost,
            decisions,
            preemptions: None,
        }
    }

    /// One pass of every kind of edit; whether any helped.
    fn pass(&mut self) -> bool {
        let mut better = false;
        // Cut the tail (the rest runs without preemptions): the shortest
        // prefix that still fails, tried from the shortest up (every
        // length for short schedules, 32 evenly spaced ones for long).
        let n = self.best.decisions.len();
        let stride = n.div_ceil(32).max(1);
        let mut keep = 0;
        while keep < n && self.budget_left() {
            let d = self.best.decisions[..keep].to_vec();
            if self.try_candidate(self.with(d)) {
                better = true;
                break;
            }
            keep += stride;
        }
        // Delete chunks, large to small (ddmin).
        let mut size = (self.best.decisions.len() / 2).max(1);
        loop {
            let mut i = 0;
            while i < self.best.decisions.len() && self.budget_left() {
                let mut d = self.best.decisions.clone();
                let end = (i + size).min(d.len());
                d.drain(i..end);
                if self.try_candidate(self.with(d)) {
                    better = true;
                } else {
                    i += size;
                }
            }
            if size == 1 || !self.budget_left() {
                break;
            }
            size /= 2;
        }
        // Move a task's run back next to its previous run (`A B C A`
        // becomes `A A B C`): the same steps of every task, fewer
        // switches, so the rest of the schedule still fits where only the
        // order of the steps mattered (the task was ready then: it had
        // just run, and a yield keeps it ready).
        let mut i = 2;
        while i < self.best.decisions.len() && self.budget_left() {
            let d = &self.best.decisions;
            let target = match d[i] {
                Decision::Run { task, .. } => {
                    let mut j = i;
                    let mut found = None;
                    while j > 0 {
                        j -= 1;
                        match d[j] {
                            Decision::Run { task: t, .. } if t == task => {
                                found = Some(j);
                                break;
                            }
                            Decision::Run { .. } => {}
                            _ => break,
                        }
                    }
                    found.filter(|&j| j + 1 < i)
                }
                _ => None,
            };
            let candidate = target.map(|j| {
                let mut d = d.clone();
                let run = d.remove(i);
                d.insert(j + 1, run);
                d
            });
            let moved = candidate.is_some_and(|d| self.try_candidate(self.with(d)));
            if moved {
                better = true;
            } else {
                i += 1;
            }
        }
        // Let the previous task go on instead of switching (a preemption
        // fewer where the switch was not needed).
        let mut i = 1;
        while i < self.best.decisions.len() && self.budget_left() {
            let mut d = self.best.decisions.clone();
            let prev = d[..i].iter().rev().find_map(|x| match x {
                Decision::Run { task, .. } => Some(*task),
                _ => None,
            });
            let edit = match (&mut d[i], prev) {
                (Decision::Run { task, .. }, Some(p)) if *task != p => {
                    *task = p;
                    true
                }
                _ => false,
            };
            if !(edit && self.try_candidate(self.with(d))) {
                i += 1;
            } else {
                better = true;
            }
        }
        // Shorten runs of one task, and draws to 0.
        let mut i = 0;
        while i < self.best.decisions.len() && self.budget_left() {
            let mut d = self.best.decisions.clone();
            let edit = match &mut d[i] {
                Decision::Run { times, .. } if *times > 1 => {
                    *times -= 1;
                    true
                }
                Decision::Draw { value } if *value > 0 => {
                    *value = 0;
                    true
                }
                _ => false,
            };
            if edit && self.try_candidate(self.with(d)) {
                better = true;
            } else {
                i += 1;
            }
        }
        // Fewer fault kinds (down to none: random plans then inject
        // nothing).
        for bit in 0..8u8 {
            let Some(swarm) = self.best.swarm else { break };
            if swarm.kinds & (1 << bit) != 0 {
                let mut c = self.best.clone();
                if let Some(s) = &mut c.swarm {
                    s.kinds &= !(1 << bit);
                }
                better |= self.try_candidate(c);
            }
        }
        // No poll cost: the failure does not need time to flow with work.
        if self.best.cost.is_some() {
            let mut c = self.best.clone();
            c.cost = None;
            better |= self.try_candidate(c);
        }
        better
    }
}

/// Shrinks a failing schedule: finds a schedule at most as long that fails
/// with the same [`FailureKind`], with as few preemptions (switches away
/// from a task that could go on), early clock moves, scheduler draws and
/// swarm fault kinds as it can, in
/// at most [`SHRINK_BUDGET`] runs.
///
/// `run` runs the program in the `Sim` it is given (a replay of a
/// candidate, built from `sim`'s settings); `sim` supplies every setting
/// but the schedule (time and step limits, checks, fault plan). Candidates
/// are edits of the schedule (a cut tail, deleted decisions, shorter runs
/// of one task, draws set to 0, fault kinds turned off) replayed leniently
/// (the natural order where the edit no longer fits); each one that fails
/// the same way and is simpler replaces the best so far, as the schedule
/// it actually ran, so the result replays strictly. Where an edit no
/// longer fits, a lenient replay lets the last task go on while it can,
/// so the rest of a candidate adds no preemptions.
///
/// # Errors
///
/// [`ShrinkError::Passes`] if `schedule` does not fail when replayed;
/// [`ShrinkError::Diverged`] if it does not fit the program.
pub fn shrink_schedule<T>(
    sim: &Sim,
    schedule: &Schedule,
    mut run: impl FnMut(&Sim) -> Outcome<T>,
) -> Result<Shrunk, ShrinkError> {
    let strict = |s: &Schedule| {
        sim.to_builder()
            .replay(s.clone())
            .verbosity(Verbosity::Off)
            .record_schedule(true)
            .build()
    };
    let first = run(&strict(schedule));
    let kind = match first.failure() {
        None => return Err(ShrinkError::Passes),
        Some(f) if f.kind() == FailureKind::ScheduleDiverged => {
            return Err(ShrinkError::Diverged(f.to_string()));
        }
        Some(f) => f.kind(),
    };
    let original = first
        .schedule()
        .cloned()
        .unwrap_or_else(|| schedule.clone());
    let mut s = Shrinker {
        sim,
        run: &mut run,
        kind,
        runs: 1,
        limit: original.len(),
        best: original.clone(),
    };
    while s.budget_left() && s.pass() {}
    let best = s.best;
    let runs = s.runs;
    // The best schedule is what a run did: a strict replay must agree.
    let check = run(&strict(&best));
    let schedule = if check.failure().is_some_and(|f| f.kind() == kind) {
        best
    } else {
        original.clone()
    };
    Ok(Shrunk {
        schedule,
        kind,
        original,
        runs: runs + 1,
    })
}
