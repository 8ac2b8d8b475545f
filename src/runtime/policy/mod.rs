//! Scheduling policies: which ready task runs next, whether the clock may
//! move while tasks are ready, and the scheduler's random draws.
//!
//! The executor is mechanism (a task table, a ready queue, a clock); a
//! policy is the decisions. Each policy is one small file behind
//! [`SchedulePolicy`], four methods that shuttle's scheduler trait also
//! has in spirit: start a run, pick the next ready task, draw a random
//! value, and (lockstep's addition) decide whether the clock may move now
//! although tasks are ready.
//!
//! - `random.rs`: a uniform choice among ready tasks (the default).
//! - `fifo.rs`: the task ready first runs first (speed, natural order).
//! - `pct.rs`: probabilistic concurrency testing (random priorities and
//!   `depth - 1` priority change points: bugs of depth `d` are found with
//!   probability at least `1 / (n · k^(d-1))` per run).
//! - `replay.rs`: follows a recorded [`Schedule`], and says where a
//!   program that no longer fits it diverged.
//! - `late.rs`: late polls, the seeded choice to move the clock to the
//!   next timer while tasks are ready, so that a woken task can run after
//!   a later timer fires, as on a loaded executor.
//! - `cost.rs`: poll cost, seeded virtual time charged per poll and scaled
//!   by per-host speed factors, so that time flows while tasks run.
//! - `swarm.rs`: per-seed configurations of fault kinds and buggify points.
//! - `schedule.rs`: the recorded decisions of a run and their text form.
//!
//! Dispatch is a `match` on an enum, not a trait object: one predictable
//! branch per step, no indirect call on the hot path. Recording the
//! schedule appends to a run-length encoded list (a step of the task that
//! ran last is a counter increment).

use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;

use super::Seed;
use super::sim::{Config, Policy};
use super::waker::TaskKey;
use super::world::{rng_for, stream};
use crate::runtime::ready::ReadyQueue;
use crate::time::Duration;

mod cost;
mod fifo;
mod late;
mod pct;
mod random;
mod replay;
pub(crate) mod schedule;
pub(crate) mod swarm;

pub use cost::PollCost;
pub use late::LatePolls;
pub use schedule::{Schedule, ScheduleParseError};
pub use swarm::Swarm;

use schedule::Words;

/// What a policy decided at a step.
pub(crate) enum Pick {
    /// Run this task (already taken out of the ready queue).
    Run(TaskKey),
    /// Nothing the policy may run: move the clock as if nothing were ready.
    Idle,
}

/// What the executor tells a policy about the tasks in its ready queue.
pub(crate) trait ReadyView {
    /// Whether the task of `key` is alive, queued and not on a paused host.
    fn runnable(&self, key: TaskKey) -> bool;
}

/// One scheduling policy. See the module docs.
pub(crate) trait SchedulePolicy {
    /// Prepares for a run of `seed` (called once, before the first step):
    /// draws what the run needs up front (PCT's change points). Streams
    /// are seeded when the policy is made.
    fn start(&mut self, seed: Seed);
    /// Takes the next task to run out of `ready` (never empty). A key
    /// handed back that is no longer runnable is dropped (or parked) by the
    /// executor, which then asks again.
    fn pick(&mut self, ready: &mut ReadyQueue, view: &dyn ReadyView) -> Pick;
    /// A uniform value below `n` (`n ≥ 1`), for choices the program leaves
    /// to the scheduler (`select`'s fair order).
    fn draw(&mut self, n: usize) -> usize;
    /// Whether the clock may move `by` to the next timer now, although
    /// some task is ready (a late poll).
    fn clock_may_move(&mut self, by: Duration) -> bool;
}

/// A uniform index below `n` (Lemire's multiply-shift; independent of
/// `rand`'s sampling algorithms, so a `rand` upgrade cannot change
/// schedules).
#[inline]
pub(crate) fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    scale(rng.next_u64(), n)
}

/// `x` (uniform over `u64`) scaled to an index below `n`: [`below`]'s
/// arithmetic, for a value drawn earlier.
#[inline]
pub(crate) fn scale(x: u64, n: usize) -> usize {
    ((x as u128 * n as u128) >> 64) as usize
}

/// A policy as the executor holds it (static dispatch). An explicit tag
/// byte: the per-step `match` is one load and compare, where a niche-packed
/// discriminant cost a dozen instructions (measured with callgrind).
#[repr(u8)]
enum Active {
    Random(random::Random),
    Fifo(fifo::Fifo),
    Pct(pct::Pct),
    Replay(replay::Replay),
}

macro_rules! each {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            Active::Random($p) => $e,
            Active::Fifo($p) => $e,
            Active::Pct($p) => $e,
            Active::Replay($p) => $e,
        }
    };
}

/// One seed in this many of `Policy::Mix` charges polls. Measured on the
/// corpus (benches/explore.rs, 20 sweeps): every bug is found in the same
/// median and worst number of seeds as without poll cost, and the
/// slow-host lease bug, out of reach without it, in a median of 5 (10 at
/// one seed in four).
const MIX_COST_ONE_IN: u64 = 2;

/// The settings of a run's policy once `Mix` and `Swarm` are resolved
/// for the seed.
pub(crate) struct Resolved {
    /// Swarm configuration of the run.
    pub(crate) swarm: Option<Swarm>,
    /// What to print at the start of the trace (the swarm configuration;
    /// nothing for `random`, `fifo` and `pct`, so their traces stay as
    /// they were).
    pub(crate) note: Option<String>,
    /// Whether the clock may ever move early (a quick gate per step).
    pub(crate) consults_clock: bool,
    /// Whether polls are charged virtual time (a quick gate per step).
    pub(crate) charges: bool,
}

/// The run's policy, its recorder, and a divergence it found.
pub(crate) struct Scheduler {
    active: Active,
    /// The schedule being recorded, its decisions appended as [`Words`]
    /// (2 bytes a step; decoded only when looked at). Boxed, as `cost`: a
    /// scheduler is moved a few times into every fresh run, and most runs
    /// neither record nor charge.
    record: Option<Box<Schedule>>,
    /// The task polled last (kept while recording, to count preemptions).
    last_run: Option<TaskKey>,
    /// One more than the steps the recorded schedule may still take
    /// before it is dropped (see `Config::schedule_bound`): a count down,
    /// the cheapest check per step. 0: it was dropped.
    record_left: u64,
    record_bound: u64,
    diverged: Option<String>,
    /// Poll charges, when on.
    cost: Option<Box<cost::CostState>>,
}

impl Scheduler {
    /// The scheduler of a run of `config`, its policy resolved for the seed.
    pub(crate) fn new(config: &Config) -> (Scheduler, Resolved) {
        let seed = config.seed;
        // Only `mix` and `swarm` draw per-seed settings.
        let mut policy_rng = matches!(config.policy, Policy::Mix | Policy::Swarm)
            .then(|| rng_for(seed, stream::POLICY));
        let mut notes: Vec<String> = Vec::new();
        let mut swarm = None;
        let mut late = config.late_polls;
        let mut charge = config.poll_cost;
        let active = if let Some((schedule, strict)) = &config.replay {
            swarm = schedule.swarm;
            charge = schedule.cost;
            Active::Replay(replay::Replay::new(Arc::clone(schedule), *strict))
        } else {
            let concrete = match config.policy {
                Policy::Swarm => {
                    let rng = policy_rng.as_mut().expect("drawn for swarm");
                    swarm = Some(Swarm::draw(|| rng.next_u64()));
                    Policy::Random
                }
                Policy::Mix => {
                    let policy_rng = policy_rng.as_mut().expect("drawn for mix");
                    swarm = Some(Swarm::draw(|| policy_rng.next_u64()));
                    // Drawn whether or not set, so that a setting does not
                    // shift the draws after it.
                    let drawn = LatePolls::draw(policy_rng);
                    late = late.or(Some(drawn));
                    let concrete = if policy_rng.next_u64() & 1 == 0 {
                        Policy::Random
                    } else {
                        Policy::Pct {
                            depth: 2 + below(policy_rng, 3) as u32,
                        }
                    };
                    // Drawn after the settings above, so that they stay
                    // what they were before poll costs existed.
                    let drawn = PollCost::draw(policy_rng);
                    if policy_rng.next_u64() % MIX_COST_ONE_IN == 0 {
                        charge = charge.or(Some(drawn));
                    }
                    concrete
                }
                p => p,
            };
            match concrete {
                Policy::Fifo => {
                    late = None;
                    charge = None;
                    Active::Fifo(fifo::Fifo::new(seed))
                }
                Policy::Pct { depth } => Active::Pct(pct::Pct::new(
                    seed,
                    depth,
                    config.pct_horizon,
                    late.filter(|l| l.is_on()),
                )),
                _ => Active::Random(random::Random::new(seed, late.filter(|l| l.is_on()))),
            }
        };
        let late = late.filter(|l| l.is_on() && !matches!(active, Active::Replay(_)));
        // Only what a replay repeats is traced (the swarm configuration is
        // in the schedule): a replayed trace equals the original's. The
        // text is built only for a trace that keeps it (a sweep's untraced
        // seeds would format it for nothing).
        let charge = charge.filter(PollCost::is_on);
        if config.verbosity >= crate::trace::Verbosity::Summary {
            notes.extend(swarm.as_ref().map(Swarm::describe));
            notes.extend(charge.as_ref().map(PollCost::describe));
        }
        let consults_clock = late.is_some() || matches!(active, Active::Replay(_));
        let mut sched = Scheduler {
            active,
            record: config
                .records_schedule()
                .then(|| Box::new(Schedule::recorded(seed, swarm, charge, Words::default(), 0))),
            last_run: None,
            record_left: config.schedule_bound().saturating_add(1),
            record_bound: config.schedule_bound(),
            diverged: None,
            cost: charge.map(|c| Box::new(cost::CostState::new(c, seed))),
        };
        each!(&mut sched.active, p => p.start(seed));
        let resolved = Resolved {
            swarm,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
            consults_clock,
            charges: charge.is_some(),
        };
        (sched, resolved)
    }

    /// Where in a ready queue of `n` keys the pick `k` steps from now
    /// (`k` < 6) will probably land, for policies that can tell cheaply
    /// (`Random`, by drawing its stream ahead; the others say nothing).
    /// The executor prefetches those tasks; no choice depends on it.
    #[inline]
    pub(crate) fn predict(&mut self, k: usize, n: usize) -> Option<usize> {
        match &mut self.active {
            Active::Random(p) if n > 1 => Some(p.predict(k, n)),
            _ => None,
        }
    }

    /// Takes the next task out of `ready`.
    #[inline]
    pub(crate) fn pick(&mut self, ready: &mut ReadyQueue, view: &dyn ReadyView) -> Pick {
        match &mut self.active {
            // The default first, inline.
            Active::Random(p) => p.pick(ready, view),
            Active::Replay(p) => {
                let pick = p.pick(ready, view);
                if let Some(d) = p.take_divergence() {
                    self.diverged.get_or_insert(d);
                }
                pick
            }
            other => each!(other, p => p.pick(ready, view)),
        }
    }

    /// Notes that `key`'s task is polled (the pick the executor
    /// accepted), and whether that preempts the task polled before it
    /// (still in `ready`: it yielded, or was woken again).
    /// `in_ready` tells whether a task is in the ready set (a look at its
    /// entry, not a scan of the set: a scan per step made a fully traced
    /// run quadratic in its ready tasks).
    #[inline]
    pub(crate) fn record_run(&mut self, key: TaskKey, in_ready: impl FnOnce(TaskKey) -> bool) {
        if let Some(s) = &mut self.record {
            self.record_left -= 1;
            if self.record_left == 0 {
                self.drop_record();
                return;
            }
            if let Some(last) = self.last_run {
                if last != key && in_ready(last) {
                    *s.preemptions.get_or_insert(0) += 1;
                }
            }
            self.last_run = Some(key);
            s.words.run(key.id.0);
        }
    }

    /// The recorded schedule reached its bound: dropped, its memory freed
    /// (the seed still replays the run; see `Config::schedule_bound`).
    #[cold]
    fn drop_record(&mut self) {
        self.record = None;
    }

    /// A scheduler draw below `n`, recorded.
    pub(crate) fn draw(&mut self, n: usize) -> usize {
        let v = each!(&mut self.active, p => p.draw(n));
        if let Active::Replay(p) = &mut self.active {
            if let Some(d) = p.take_divergence() {
                self.diverged.get_or_insert(d);
            }
        }
        if let Some(s) = &mut self.record {
            s.words.draw(v as u64);
        }
        v
    }

    /// Whether the clock may move `by` now although tasks are ready.
    pub(crate) fn clock_may_move(&mut self, by: Duration) -> bool {
        let yes = each!(&mut self.active, p => p.clock_may_move(by));
        if let Some(s) = self.record.as_mut().filter(|_| yes) {
            s.words.advance();
        }
        yes
    }

    /// The charge of the poll just taken by a task on host `host` (an
    /// index): nanoseconds, and the host's factor in thousandths.
    pub(crate) fn charge(&mut self, host: Option<usize>) -> (u64, u32) {
        self.cost.as_mut().map_or((0, 1000), |c| c.charge(host))
    }

    /// A host was created: its speed factor (thousandths), drawn when
    /// polls are charged.
    pub(crate) fn new_host(&mut self, index: usize) -> Option<u32> {
        self.cost.as_mut().map(|c| c.new_host(index))
    }

    /// A divergence from the replayed schedule, once.
    pub(crate) fn take_divergence(&mut self) -> Option<String> {
        self.diverged.take()
    }

    /// Checks, at the end of a strict replay, that the schedule was used up.
    pub(crate) fn finish(&mut self) -> Option<String> {
        match &mut self.active {
            Active::Replay(p) => p.leftover(),
            _ => None,
        }
    }

    /// The recorded schedule, or the bound it was dropped at.
    pub(crate) fn take_schedule(&mut self) -> Result<Option<Schedule>, u64> {
        if self.record_left == 0 {
            return Err(self.record_bound);
        }
        Ok(self.record.take().map(|s| *s))
    }
}

impl Config {
    /// Whether this run records its schedule: when asked, or by default
    /// whenever it traces (a run with tracing off keeps its hot path free
    /// of appends).
    pub(crate) fn records_schedule(&self) -> bool {
        self.record_schedule
            .unwrap_or(self.verbosity != crate::trace::Verbosity::Off)
    }

    /// How many steps a recorded schedule may hold before the run drops
    /// it (`u64::MAX`: no bound). A schedule grows by 2 bytes a step, so a
    /// run that bounds its trace (a ring, a stream) bounds its schedule as
    /// well, or a billion-step run would hold 2 GB of it: to its ring's
    /// count, and never below [`TraceMode::DEFAULT_RING`] steps, so that
    /// every run within the default step limit keeps its schedule however
    /// small its ring. Kept whole when asked for
    /// ([`record_schedule(true)`](crate::SimBuilder::record_schedule)), or
    /// when the trace is kept whole ([`TraceMode::Keep`]).
    ///
    /// [`TraceMode::DEFAULT_RING`]: crate::trace::TraceMode::DEFAULT_RING
    /// [`TraceMode::Keep`]: crate::trace::TraceMode::Keep
    pub(crate) fn schedule_bound(&self) -> u64 {
        use crate::trace::TraceMode;
        let ring = match (&self.trace_mode, self.record_schedule) {
            (_, Some(true)) | (TraceMode::Keep, _) => return u64::MAX,
            (TraceMode::Ring(n), _) | (TraceMode::Stream { ring: n, .. }, _) => *n,
        };
        ring.max(TraceMode::DEFAULT_RING) as u64
    }
}
