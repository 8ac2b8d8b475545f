//! `Sim` and its builder: every setting of a run in one place.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::str::FromStr;

use std::sync::Arc;

use super::Seed;
use super::outcome::Outcome;
use super::policy::{LatePolls, PollCost, Schedule};
use super::world::World;
use crate::time::Duration;
use crate::trace::{TraceMode, Verbosity};

/// How the executor picks the next task among the ready ones.
///
/// | policy | text | what it is for |
/// |---|---|---|
/// | `Random` | `random` | the default of `Sim::builder()`: a uniform choice per step; shallow races in few seeds |
/// | `Fifo` | `fifo` | the natural order of a production executor; explores nothing |
/// | `Pct { depth }` | `pct:3` (`pct` = `pct:3`) | ordering bugs of a given depth, in far fewer seeds than uniform choice |
/// | `Swarm` | `swarm` | `Random`, with each seed enabling its own subset of random fault kinds and buggify points |
/// | `Mix` | `mix` | exploration, the default of `lockstep explore` and (without its poll cost) of `#[sim_test]`: per seed, `Random` or `Pct` of depth 2 to 4, late polls, a swarm configuration, and on one seed in two a poll cost, all drawn from the seed |
///
/// Where a policy is given as text (`lockstep explore --policy`,
/// `#[sim_test(policy = "...")]`), settings may follow it after `+`:
/// `random+cost:1ms:8x` is `Random` with each poll charged up to 1 ms of
/// virtual time on hosts up to 8 times slower (see
/// [`PollCost`](crate::explore::PollCost) and [`SimBuilder::poll_cost`];
/// `cost:0` is none), and `random+late:0.25:10ms` moves the clock early,
/// with probability 0.25 per step, to a timer due within 10 ms (see
/// [`LatePolls`](crate::explore::LatePolls) and [`SimBuilder::late_polls`];
/// `late:off` is none, `late:P` means within 10 ms). `mix+late:off` is the
/// mix without its late polls.
///
/// A recorded [`Schedule`](crate::explore::Schedule) is replayed with
/// [`SimBuilder::replay`] (it is not `Copy`, so not a variant here).
///
/// ```
/// use lockstep::Policy;
///
/// assert_eq!("pct:2".parse::<Policy>().unwrap(), Policy::Pct { depth: 2 });
/// assert_eq!(Policy::Pct { depth: 2 }.to_string(), "pct:2");
/// assert!("pct:0".parse::<Policy>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// A uniform choice among ready tasks, drawn from the seed (the
    /// default). Different seeds explore different interleavings.
    #[default]
    Random,
    /// The task that became ready first runs first, like most production
    /// executors. Deterministic but explores nothing: for speed comparisons
    /// and for reproducing a "natural" order. Never moves the clock early.
    Fifo,
    /// Probabilistic concurrency testing: random task priorities, and
    /// `depth - 1` points (over [`SimBuilder::pct_horizon`] steps) where
    /// the running task drops to the lowest priority. Finds a bug that
    /// needs `depth` orderings with a probability that does not shrink
    /// with the number of interleavings.
    Pct {
        /// The bug depth to aim for (1 = priorities only).
        depth: u32,
    },
    /// [`Random`](Policy::Random) with swarm testing: each seed draws which
    /// random fault kinds are on, their intensity, and how often
    /// `buggify!` points are enabled (see [`Swarm`](crate::explore::Swarm)).
    Swarm,
    /// The exploration mix: each seed draws `Random` or `Pct` (depth 2 to
    /// 4), late polls (see [`LatePolls`](crate::explore::LatePolls)), a
    /// swarm configuration, and on one seed in two a poll cost (see
    /// [`PollCost`](crate::explore::PollCost)). What a sweep looking for
    /// bugs should use.
    Mix,
}

impl Policy {
    /// The policy a bug-hunting sweep should use: [`Policy::Mix`].
    pub const EXPLORE: Policy = Policy::Mix;
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Policy, String> {
        let text = s.trim().to_ascii_lowercase();
        if text.contains('+') {
            return Err(format!(
                "`{s}`: a policy with options (`random+cost:1ms:8x`) sets more than the \
                 policy; this place takes a policy alone: `random`, `fifo`, `pct`, `pct:D`, \
                 `swarm` or `mix`"
            ));
        }
        let depth = |d: &str| match d.parse::<u32>() {
            Ok(d) if (1..=64).contains(&d) => Ok(Policy::Pct { depth: d }),
            _ => Err(format!(
                "`{s}`: the depth of `pct:D` is a whole number from 1 to 64"
            )),
        };
        match text.as_str() {
            "random" => Ok(Policy::Random),
            "fifo" => Ok(Policy::Fifo),
            "pct" => Ok(Policy::Pct { depth: 3 }),
            "swarm" => Ok(Policy::Swarm),
            "mix" => Ok(Policy::Mix),
            other => match other.strip_prefix("pct:") {
                Some(d) => depth(d),
                None => Err(format!(
                    "unknown scheduling policy `{other}`: expected `random`, `fifo`, `pct`, \
                     `pct:D` (depth D), `swarm` or `mix`"
                )),
            },
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Random => f.write_str("random"),
            Policy::Fifo => f.write_str("fifo"),
            Policy::Pct { depth } => write!(f, "pct:{depth}"),
            Policy::Swarm => f.write_str("swarm"),
            Policy::Mix => f.write_str("mix"),
        }
    }
}

/// What a check does when it finds a problem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Fail the run (the default for every check).
    #[default]
    Fail,
    /// Let the run succeed, and list the problem in
    /// [`Outcome::warnings`](crate::Outcome::warnings).
    Warn,
    /// Say nothing.
    Ignore,
}

/// The settings of a run. Cloned into the world when a run starts.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) seed: Seed,
    pub(crate) max_virtual_time: Option<Duration>,
    pub(crate) max_steps: Option<u64>,
    pub(crate) policy: Policy,
    pub(crate) verbosity: Verbosity,
    pub(crate) trace_mode: TraceMode,
    pub(crate) leaks: Severity,
    pub(crate) unobserved_panics: Severity,
    pub(crate) unobserved_errors: Severity,
    pub(crate) deadlock_cycles: Severity,
    pub(crate) watchdog: Option<Duration>,
    pub(crate) blocked_poll: Option<Duration>,
    pub(crate) livelock_steps: u64,
    /// Settings of the layers built on the runtime (the fault plan).
    pub(crate) layers: super::ext::Settings,
    pub(crate) buggify: bool,
    /// Late polls (`None`: the policy's default, off except under `Mix`).
    pub(crate) late_polls: Option<LatePolls>,
    /// Poll cost (`None`: the policy's default, off except under `Mix`).
    pub(crate) poll_cost: Option<PollCost>,
    /// Expected steps of a run, for `Pct`'s change points.
    pub(crate) pct_horizon: u64,
    /// A schedule to replay, and whether strictly.
    pub(crate) replay: Option<(Arc<Schedule>, bool)>,
    /// Whether to record the schedule (`None`: when tracing).
    pub(crate) record_schedule: Option<bool>,
    /// Where the watchdog hands a stuck poll (isolated runs only).
    pub(crate) handoff: Option<super::watchdog::Handoff>,
    /// Stop the run before this step with this failure (to record the trace
    /// of a run whose poll at that step never returned).
    pub(crate) halt: Option<Halt>,
}

/// Stops a run just before a step, failing it with a given failure.
#[derive(Clone, Debug)]
pub(crate) struct Halt {
    pub(crate) step: u64,
    pub(crate) failure: crate::check::Failure,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: Seed(0),
            max_virtual_time: Some(SimBuilder::DEFAULT_MAX_VIRTUAL_TIME),
            max_steps: Some(SimBuilder::DEFAULT_MAX_STEPS),
            policy: Policy::Random,
            verbosity: Verbosity::Full,
            trace_mode: TraceMode::default(),
            leaks: Severity::Fail,
            unobserved_panics: Severity::Fail,
            unobserved_errors: Severity::Fail,
            deadlock_cycles: Severity::Fail,
            watchdog: Some(SimBuilder::DEFAULT_WATCHDOG),
            blocked_poll: Some(SimBuilder::DEFAULT_BLOCKED_POLL),
            livelock_steps: SimBuilder::DEFAULT_LIVELOCK_STEPS,
            layers: super::ext::Settings::default(),
            buggify: true,
            late_polls: None,
            poll_cost: None,
            pct_horizon: SimBuilder::DEFAULT_PCT_HORIZON,
            replay: None,
            record_schedule: None,
            handoff: None,
            halt: None,
        }
    }
}

/// Configures a [`Sim`].
///
/// | setting | default | what it bounds or decides |
/// |---|---|---|
/// | [`seed`](Self::seed) | `0` | every random choice of the run |
/// | [`max_virtual_time`](Self::max_virtual_time) | 1 hour | virtual time before [`Failure::TimeLimit`](crate::Failure::TimeLimit) |
/// | [`max_steps`](Self::max_steps) | 1,000,000 | polls before [`Failure::StepLimit`](crate::Failure::StepLimit) (a run that is too long) |
/// | [`livelock_steps`](Self::livelock_steps) | 1,000,000 | polls in a row with no progress before [`Failure::Livelock`](crate::Failure::Livelock); kept with `no_step_limit` |
/// | [`policy`](Self::policy) | `Random` | which ready task runs next |
/// | [`verbosity`](Self::verbosity) | `Full` | what the trace records |
/// | [`leaks`](Self::leaks) | `Fail` | tasks alive when main returns |
/// | [`unobserved_panics`](Self::unobserved_panics) | `Fail` | task panics nobody awaited |
/// | [`unobserved_errors`](Self::unobserved_errors) | `Fail` | task `Err` outputs whose handle was dropped untaken |
/// | [`deadlock_cycles`](Self::deadlock_cycles) | `Fail` | a wait-for cycle that closes while other tasks still run |
/// | [`blocked_poll`](Self::blocked_poll) | 1 s wall time | one poll that blocks the executor: [`Failure::BlockedPoll`](crate::Failure::BlockedPoll) once it returns |
/// | [`watchdog`](Self::watchdog) | 5 s wall time | one poll that never returns: handed back by [`Sim::run_isolated`], a process abort under [`Sim::run`] |
/// | [`faults`](Self::faults) | none | a [`FaultPlan`](crate::fault::FaultPlan) applied from the start |
/// | [`buggify`](Self::buggify) | on | whether [`buggify!`](crate::buggify!) points may fire |
/// | [`late_polls`](Self::late_polls) | off (drawn per seed under `Mix`) | whether the clock may move while tasks are ready |
/// | [`poll_cost`](Self::poll_cost) | off (on for some seeds under `Mix`) | virtual time charged per poll, and per-host speeds |
/// | [`pct_horizon`](Self::pct_horizon) | 200 steps | the run length `Pct` spreads its change points over |
/// | [`replay`](Self::replay) | none | a recorded schedule to follow exactly |
/// | [`record_schedule`](Self::record_schedule) | when tracing (bounded in a ring) | whether [`Outcome::schedule`](crate::Outcome::schedule) is kept |
#[derive(Clone, Debug, Default)]
#[must_use = "a SimBuilder does nothing until `build` is called"]
pub struct SimBuilder {
    pub(crate) config: Config,
}

impl SimBuilder {
    /// Default virtual time limit: one hour.
    pub const DEFAULT_MAX_VIRTUAL_TIME: Duration = Duration::from_secs(3600);
    /// Default step limit.
    pub const DEFAULT_MAX_STEPS: u64 = 1_000_000;
    /// Default watchdog limit: wall time after which a poll is taken to
    /// never return.
    pub const DEFAULT_WATCHDOG: Duration = Duration::from_secs(5);
    /// Default expected run length for [`Policy::Pct`], in steps.
    pub const DEFAULT_PCT_HORIZON: u64 = 200;
    /// Default blocked-poll threshold: wall time one poll may take before
    /// its run fails with [`Failure::BlockedPoll`](crate::Failure::BlockedPoll).
    /// One second catches a blocking call of a second or more (a
    /// `std::thread::sleep(Duration::from_secs(1))`, a slow synchronous
    /// request) while leaving a wide margin for a poll that is merely slow
    /// (a debug build, a loaded CI machine); lower it (say to 100 ms) to
    /// catch shorter blocking calls.
    pub const DEFAULT_BLOCKED_POLL: Duration = Duration::from_secs(1);
    /// Default livelock window: steps in a row without progress.
    pub const DEFAULT_LIVELOCK_STEPS: u64 = 1_000_000;

    /// The seed: every random choice of the run derives from it.
    pub fn seed(mut self, seed: impl Into<Seed>) -> Self {
        self.config.seed = seed.into();
        self
    }

    /// Fails the run with [`Failure::TimeLimit`](crate::Failure::TimeLimit)
    /// when the virtual clock would pass `limit`.
    pub fn max_virtual_time(mut self, limit: Duration) -> Self {
        self.config.max_virtual_time = Some(limit);
        self
    }

    /// Removes the virtual time limit (a ten-year sleep is then fine).
    pub fn no_time_limit(mut self) -> Self {
        self.config.max_virtual_time = None;
        self
    }

    /// Fails the run with [`Failure::StepLimit`](crate::Failure::StepLimit)
    /// after `steps` polls.
    ///
    /// # Panics
    ///
    /// If `steps` is 0: no run could take its first step. Use
    /// [`no_step_limit`](Self::no_step_limit) to remove the limit.
    #[track_caller]
    pub fn max_steps(mut self, steps: u64) -> Self {
        assert!(
            steps > 0,
            "SimBuilder::max_steps(0): a run needs at least one step; pass a positive limit, \
             or call `no_step_limit()` to remove it"
        );
        self.config.max_steps = Some(steps);
        self
    }

    /// Removes the step limit. The livelock detector stays on (see
    /// [`livelock_steps`](Self::livelock_steps)): a run that stops making
    /// progress still ends with a report.
    pub fn no_step_limit(mut self) -> Self {
        self.config.max_steps = None;
        self
    }

    /// Fails the run with [`Failure::Livelock`](crate::Failure::Livelock)
    /// after `steps` polls in a row without progress: the virtual clock did
    /// not move and no task finished, while tasks kept being polled (a
    /// future that wakes itself and returns `Pending`, a `yield_now` loop
    /// waiting for a flag nobody sets). Independent of
    /// [`max_steps`](Self::max_steps), so removing the step limit never
    /// turns a livelock into a hang. Raise it for a program that really
    /// spends that many polls between two instants of virtual time;
    /// `u64::MAX` turns the detector off.
    ///
    /// # Panics
    ///
    /// If `steps` is 0.
    #[track_caller]
    pub fn livelock_steps(mut self, steps: u64) -> Self {
        assert!(
            steps > 0,
            "SimBuilder::livelock_steps(0): the livelock window must be at least one step; \
             pass a larger number to allow longer stretches without progress"
        );
        self.config.livelock_steps = steps;
        self
    }

    /// The wall-time threshold of one poll, or `None` to turn the check
    /// off (default: [`DEFAULT_BLOCKED_POLL`](Self::DEFAULT_BLOCKED_POLL),
    /// 1 s). A poll that takes longer (a `std::thread::sleep`, blocking
    /// I/O, a long computation inside a task) holds up every other task,
    /// which virtual time hides: the run fails with
    /// [`Failure::BlockedPoll`](crate::Failure::BlockedPoll), naming the
    /// task, its spawn site and the poll's wall time, as soon as the poll
    /// returns. The check costs one atomic load per poll; a watchdog thread
    /// does the timing. Wall time is not simulated, so this is the one
    /// check whose verdict can depend on the machine: keep the threshold
    /// well above what a correct poll takes.
    pub fn blocked_poll(mut self, threshold: Option<Duration>) -> Self {
        self.config.blocked_poll = threshold;
        self
    }

    /// The scheduling policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.config.policy = policy;
        self
    }

    /// What the trace records.
    pub fn verbosity(mut self, verbosity: Verbosity) -> Self {
        self.config.verbosity = verbosity;
        self
    }

    /// How much of the trace is kept, and where (default: a ring of
    /// [`TraceMode::DEFAULT_RING`] events plus every summary-level event,
    /// so memory stays flat on long runs while a test-sized run keeps every
    /// event). `TraceMode::Keep` keeps everything; `TraceMode::Stream`
    /// also writes every event to a JSON-lines file.
    ///
    /// ```
    /// use lockstep::prelude::*;
    /// use lockstep::trace::TraceMode;
    ///
    /// let outcome = Sim::builder()
    ///     .trace_mode(TraceMode::Ring(10))
    ///     .build()
    ///     .run(async {
    ///         for _ in 0..100_000 {
    ///             yield_now().await;
    ///         }
    ///     });
    /// // The last 10 events at least (a ring drops whole chunks of a few
    /// // thousand), of the 300,000 the run recorded.
    /// assert!(outcome.trace().dropped() > 0);
    /// assert!(outcome.trace().len() < 100_000);
    /// ```
    pub fn trace_mode(mut self, mode: TraceMode) -> Self {
        self.config.trace_mode = mode;
        self
    }

    /// What to do about tasks still alive when the main task returns
    /// (daemon and host tasks are exempt), and sockets still open then
    /// outside a running host task (see the `net` module docs).
    pub fn leaks(mut self, severity: Severity) -> Self {
        self.config.leaks = severity;
        self
    }

    /// What to do about a task panic nobody observes through its
    /// `JoinHandle`.
    pub fn unobserved_panics(mut self, severity: Severity) -> Self {
        self.config.unobserved_panics = severity;
        self
    }

    /// What to do about a task that returned a `Result::Err` nobody took:
    /// its `JoinHandle` was dropped (before or after it returned) without
    /// being awaited, the "forgotten await" that asyncio reports as "Task
    /// exception was never retrieved". Any output type that is a `Result`
    /// counts (`io::Result`, `anyhow::Result`, ...); tasks of a dropped
    /// `JoinSet` do not. [`Failure::UnobservedError`](crate::Failure::UnobservedError)
    /// names the task, its spawn site and the output type.
    pub fn unobserved_errors(mut self, severity: Severity) -> Self {
        self.config.unobserved_errors = severity;
        self
    }

    /// What to do when tasks close a cycle of waits on locks, semaphores or
    /// each other's `JoinHandle`s while other tasks can still run (a
    /// heartbeat, a monitor). By default the run fails at the step that
    /// closed the cycle. With [`Severity::Warn`] the report goes to
    /// [`Outcome::warnings`](crate::Outcome::warnings) and the run goes on,
    /// for programs that recover by cancelling the deadlocked tasks (as the
    /// asyncio idiom `wait_for(gather(..), timeout)` does); `Ignore` skips
    /// the check. A run where nothing at all can progress is always a
    /// [`Failure::Deadlock`](crate::Failure::Deadlock).
    pub fn deadlock_cycles(mut self, severity: Severity) -> Self {
        self.config.deadlock_cycles = severity;
        self
    }

    /// The wall-clock limit after which a poll is taken to never return, or
    /// `None` to disable the watchdog (under a debugger). A poll that does
    /// not return (a busy loop, a blocking call) cannot be interrupted.
    /// Under [`Sim::run_isolated`] (and `#[sim_test]`) the caller gets a
    /// [`Failure::BlockedPoll`](crate::Failure::BlockedPoll) with
    /// `returned: false` and the trace up to the stuck step, while the
    /// stuck worker thread keeps spinning until the process exits. Under
    /// [`Sim::run`] there is nobody to hand a report to: the watchdog
    /// prints the seed, the task, its spawn site and the virtual time, then
    /// aborts the process, so that CI fails loudly instead of hanging.
    pub fn watchdog(mut self, limit: Option<Duration>) -> Self {
        self.config.watchdog = limit;
        self
    }

    /// Whether [`buggify!`](crate::buggify!) points may fire (default:
    /// yes). Off, every point evaluates to `false` and draws nothing.
    pub fn buggify(mut self, enabled: bool) -> Self {
        self.config.buggify = enabled;
        self
    }

    /// Late polls: the clock may move to a timer due soon although tasks
    /// are ready, so that a woken task runs after a later timer fires (as
    /// on a loaded executor). Off by default, drawn per seed under
    /// [`Policy::Mix`], never under [`Policy::Fifo`].
    /// [`LatePolls::OFF`] turns them off under `Mix` too.
    pub fn late_polls(mut self, late: LatePolls) -> Self {
        self.config.late_polls = Some(late);
        self
    }

    /// Poll cost: each poll is charged a seeded virtual time from zero to
    /// `cost.max()`, times the speed factor of the polled task's host
    /// (hosts draw distinct factors up to `cost.slowest()`; tasks outside
    /// hosts run at `1x`). After a charged poll the clock moves on and
    /// the timers due by then fire before the next task is picked, so a
    /// woken task can run after a timer that fell due while other tasks
    /// ran, and a slow host's tasks lag behind. Off by default; on for one
    /// seed in two under [`Policy::Mix`]; never under [`Policy::Fifo`].
    /// [`PollCost::OFF`] turns it off under `Mix` too. A recorded
    /// schedule carries the setting, so a replay repeats the charges.
    ///
    /// ```
    /// use lockstep::prelude::*;
    /// use lockstep::explore::PollCost;
    ///
    /// // A timer due at 1 ms, and a task that keeps polling: with polls
    /// // charged, the timer fires while that task is still busy.
    /// let outcome = Sim::builder()
    ///     .seed(1)
    ///     .poll_cost(PollCost::new(Duration::from_micros(200)))
    ///     .build()
    ///     .run(async {
    ///         let busy = spawn(async {
    ///             for _ in 0..100 {
    ///                 yield_now().await;
    ///             }
    ///             lockstep::time::now()
    ///         });
    ///         sleep(Duration::from_millis(1)).await;
    ///         let fired_at = lockstep::time::now();
    ///         assert!(busy.await.unwrap() > fired_at);
    ///     });
    /// assert!(outcome.is_ok());
    /// assert!(outcome.stats().poll_time > Duration::ZERO);
    /// ```
    pub fn poll_cost(mut self, cost: PollCost) -> Self {
        self.config.poll_cost = Some(cost);
        self
    }

    /// The run length, in steps, over which [`Policy::Pct`] draws its
    /// priority change points (default
    /// [`DEFAULT_PCT_HORIZON`](Self::DEFAULT_PCT_HORIZON)); a sweep sets it
    /// from the steps of earlier seeds.
    pub fn pct_horizon(mut self, steps: u64) -> Self {
        self.config.pct_horizon = steps.max(1);
        self
    }

    /// Follows `schedule` exactly instead of a policy: its seed, its swarm
    /// configuration, every task pick, early clock move and scheduler draw.
    /// A program that no longer fits it fails with
    /// [`Failure::ScheduleDiverged`](crate::Failure::ScheduleDiverged),
    /// naming the step.
    pub fn replay(mut self, schedule: Schedule) -> Self {
        self.config.seed = schedule.seed();
        self.config.replay = Some((Arc::new(schedule), true));
        self
    }

    /// Follows `schedule` while it fits, then goes on in the least tangled
    /// order (the last task while it is ready, else the one ready first):
    /// how shrinking tries edited schedules.
    pub(crate) fn replay_lenient(mut self, schedule: Schedule) -> Self {
        self.config.seed = schedule.seed();
        self.config.replay = Some((Arc::new(schedule), false));
        self
    }

    /// Whether the run keeps its [`Schedule`] for
    /// [`Outcome::schedule`](crate::Outcome::schedule). By default, runs
    /// that trace do (a run with tracing off stays allocation-free per
    /// step), and a run that traces into a ring drops it once it passes
    /// its ring's count of steps (at least
    /// [`TraceMode::DEFAULT_RING`]), so that its memory stays flat. `true`
    /// keeps it whole however long the run (about 2 bytes a step).
    pub fn record_schedule(mut self, record: bool) -> Self {
        self.config.record_schedule = Some(record);
        self
    }

    /// Stops the run just before step `step`, failing it with `failure` (to
    /// record the trace of a run that failed on wall time, which a replay
    /// does not reproduce).
    pub(crate) fn halt_before(mut self, step: u64, failure: crate::check::Failure) -> Self {
        self.config.halt = Some(Halt { step, failure });
        self
    }

    /// Builds the simulation.
    pub fn build(self) -> Sim {
        Sim {
            config: self.config,
        }
    }
}

/// A configured simulation: run a main future in it with [`Sim::run`].
///
/// A `Sim` holds only settings; each [`run`](Sim::run) starts from nothing
/// (task ids from `#0`, the clock at `0.000s`, the random streams at the
/// seed), so running it twice gives the same outcome twice.
#[derive(Clone, Debug)]
pub struct Sim {
    pub(crate) config: Config,
}

impl Sim {
    /// A builder with every default.
    pub fn builder() -> SimBuilder {
        SimBuilder::default()
    }

    /// A simulation with default settings and the given seed.
    pub fn new(seed: impl Into<Seed>) -> Sim {
        Sim::builder().seed(seed).build()
    }

    /// The seed.
    pub fn seed(&self) -> Seed {
        self.config.seed
    }

    /// The scheduling policy.
    pub fn policy(&self) -> Policy {
        self.config.policy
    }

    /// The virtual time limit, if any.
    pub fn max_virtual_time(&self) -> Option<Duration> {
        self.config.max_virtual_time
    }

    /// The step limit, if any.
    pub fn max_steps(&self) -> Option<u64> {
        self.config.max_steps
    }

    /// The poll cost set with [`SimBuilder::poll_cost`], if any.
    pub fn poll_cost(&self) -> Option<PollCost> {
        self.config.poll_cost
    }

    /// The late polls set with [`SimBuilder::late_polls`], if any (the
    /// mix draws its own per seed when none is set).
    pub fn late_polls(&self) -> Option<LatePolls> {
        self.config.late_polls
    }

    /// The schedule each run follows exactly, if set with
    /// [`SimBuilder::replay`].
    pub fn replay_schedule(&self) -> Option<&Schedule> {
        match &self.config.replay {
            Some((schedule, true)) => Some(schedule),
            _ => None,
        }
    }

    /// A builder holding this simulation's settings, to change some.
    pub fn to_builder(&self) -> SimBuilder {
        SimBuilder {
            config: self.config.clone(),
        }
    }

    /// Runs `main` as the main task (`#0`) until it returns or the run fails.
    ///
    /// The main future need not be `Send` or `'static`. Tasks it spawns run
    /// alongside it; when it returns, the leak and unobserved-panic checks
    /// run, and whatever is still alive is dropped.
    #[track_caller]
    pub fn run<F: Future>(&self, main: F) -> Outcome<F::Output> {
        World::new(&self.config, false).run(main, Location::caller())
    }

    /// Runs the future `make` returns as the main task, on a worker thread,
    /// so that a poll that never returns becomes a failure of this run
    /// instead of a hang or a process abort.
    ///
    /// The outcome is the one [`Sim::run`] would give, with one addition:
    /// when a poll is still running after the
    /// [`watchdog`](SimBuilder::watchdog) limit, this returns at once with
    /// [`Failure::BlockedPoll`](crate::Failure::BlockedPoll) (`returned:
    /// false`) naming the task, its spawn site and the step, and with the
    /// trace of the run up to that step (recorded at full verbosity by a
    /// second run of the seed that stops just before the stuck step). The
    /// stuck worker thread cannot be stopped: it keeps running until the
    /// process exits (`lockstep explore --isolate process` runs each seed
    /// in a child process, which can be killed).
    ///
    /// `make` is called on the worker thread (twice when a poll got stuck),
    /// so the future itself need not be `Send`. Thread-locals the program
    /// uses are the worker thread's: each calling thread has one worker,
    /// reused run after run, and replaced only after a run got stuck on it.
    ///
    /// ```
    /// use lockstep::prelude::*;
    ///
    /// let outcome = Sim::new(7).run_isolated(|| async {
    ///     sleep(Duration::from_millis(5)).await;
    ///     6 * 7
    /// });
    /// assert_eq!(outcome.into_result().unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn run_isolated<M, F>(&self, make: M) -> Outcome<F::Output>
    where
        M: Fn() -> F + Send + Sync + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        super::isolated::run(
            &self.config,
            std::sync::Arc::new(make),
            false,
            Location::caller(),
        )
    }

    /// Runs `run` on a worker thread, watched as [`Sim::run_isolated`]
    /// watches its run: for a caller that holds a function that runs a
    /// simulation rather than a future (a scenario's variant, a sweep's
    /// runner). `run` is given this simulation, with the watchdog's hand-off
    /// installed, and must run it once (`sim.run(..)`, or
    /// `sim.run_checking_determinism(..)`) and return that outcome; a
    /// simulation it builds some other way is not handed back, and its
    /// stuck poll aborts the process as under [`Sim::run`]. When a poll does
    /// not return within the watchdog limit, `run` is called a second time
    /// (with a simulation that stops just before the stuck step) to record
    /// the trace.
    ///
    /// ```
    /// use lockstep::prelude::*;
    ///
    /// fn variant(sim: &Sim) -> Outcome<()> {
    ///     sim.run(async { sleep(Duration::from_millis(1)).await })
    /// }
    /// assert!(Sim::new(3).isolate(variant).is_ok());
    /// ```
    pub fn isolate<T, R>(&self, run: R) -> Outcome<T>
    where
        R: Fn(&Sim) -> Outcome<T> + Send + Sync + 'static,
        T: Send + 'static,
    {
        let run = move |config: &Config| {
            run(&Sim {
                config: config.clone(),
            })
        };
        super::isolated::isolate(&self.config, std::sync::Arc::new(run))
    }

    /// [`Sim::run_isolated`] checking determinism as
    /// [`Sim::run_checking_determinism`] does (both runs on the worker).
    #[track_caller]
    pub fn run_isolated_checking_determinism<M, F>(&self, make: M) -> Outcome<F::Output>
    where
        M: Fn() -> F + Send + Sync + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        super::isolated::run(
            &self.config,
            std::sync::Arc::new(make),
            true,
            Location::caller(),
        )
    }

    /// Runs the seed twice and compares the decision hashes; when they
    /// differ, fails with
    /// [`Failure::NonDeterminism`](crate::Failure::NonDeterminism) naming
    /// the first event (or step) where those two runs diverge. Otherwise
    /// returns the first outcome. Both runs are traced at full verbosity
    /// and keep the hash of every step, so the report describes the very
    /// runs that differed; the returned trace is therefore a full one,
    /// whatever [`verbosity`](SimBuilder::verbosity) says.
    ///
    /// ```
    /// use lockstep::prelude::*;
    ///
    /// let outcome = Sim::check_determinism(0x2a, || async {
    ///     let a = spawn(async { sleep(Duration::from_millis(3)).await; 1 });
    ///     let b = spawn(async { lockstep::random::range(0..10u32) });
    ///     a.await.unwrap() + b.await.unwrap()
    /// });
    /// assert!(outcome.is_ok());
    /// ```
    #[track_caller]
    pub fn check_determinism<M, F>(seed: impl Into<Seed>, make: M) -> Outcome<F::Output>
    where
        M: FnMut() -> F,
        F: Future,
    {
        Sim::new(seed).run_checking_determinism(make)
    }

    /// [`Sim::check_determinism`] with this simulation's settings.
    #[track_caller]
    pub fn run_checking_determinism<M, F>(&self, make: M) -> Outcome<F::Output>
    where
        M: FnMut() -> F,
        F: Future,
    {
        super::determinism::check(&self.config, make, Location::caller())
    }
}

/// A policy and its options, as text: `POLICY[+cost:MAX[:Kx]][+late:…]`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct PolicySpec {
    pub(crate) policy: Policy,
    pub(crate) cost: Option<PollCost>,
    pub(crate) late: Option<LatePolls>,
}

impl PolicySpec {
    /// Applies the policy and the options it names to `b`.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))]
    pub(crate) fn apply(&self, mut b: SimBuilder) -> SimBuilder {
        b = b.policy(self.policy);
        if let Some(cost) = self.cost {
            b = b.poll_cost(cost);
        }
        if let Some(late) = self.late {
            b = b.late_polls(late);
        }
        b
    }
}

impl fmt::Display for PolicySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.policy)?;
        if let Some(c) = self.cost {
            write!(f, "+{c}")?;
        }
        if let Some(l) = self.late {
            write!(f, "+{}", l.spec())?;
        }
        Ok(())
    }
}

/// A policy and its options as text: `POLICY[+cost:MAX[:Kx]][+late:…]`
/// (`random+cost:1ms:8x`, `mix+late:off`), as `lockstep explore --policy`
/// and `#[sim_test(policy = "...")]` take it (the macro checks its own copy
/// at compile time).
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
pub(crate) fn parse_policy_spec(s: &str) -> Result<PolicySpec, String> {
    let mut parts = s.trim().split('+');
    let policy: Policy = parts.next().unwrap_or_default().parse()?;
    let mut spec = PolicySpec {
        policy,
        ..PolicySpec::default()
    };
    // An option given once, parsed as its type.
    fn once<T: std::str::FromStr<Err = String>>(
        slot: &mut Option<T>,
        name: &str,
        option: &str,
        s: &str,
    ) -> Result<(), String> {
        if slot.is_some() {
            return Err(format!("`{s}`: `{name}` is given twice"));
        }
        *slot = Some(option.parse().map_err(|e| format!("`{s}`: {e}"))?);
        Ok(())
    }
    for option in parts {
        let option = option.trim();
        if option.starts_with("cost") {
            once(&mut spec.cost, "cost", option, s)?;
        } else if option.starts_with("late") {
            once(&mut spec.late, "late", option, s)?;
        } else {
            return Err(format!(
                "`{s}`: unknown policy option `{option}`: expected `cost:MAX[:Kx]` (a poll \
                 cost, e.g. `random+cost:1ms:8x`) or `late:P[:WITHIN]` / `late:off` (late \
                 polls, e.g. `random+late:0.25:10ms`)"
            ));
        }
    }
    if policy == Policy::Fifo && spec.cost.is_some_and(|c| c.is_on()) {
        return Err(format!(
            "`{s}`: `fifo` never charges polls (it is the natural order); use `random+cost:...`"
        ));
    }
    if policy == Policy::Fifo && spec.late.is_some_and(|l| l.is_on()) {
        return Err(format!(
            "`{s}`: `fifo` never moves the clock early (it is the natural order); use \
             `random+late:...`"
        ));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_specs_parse_or_say_what_is_accepted() {
        let spec = parse_policy_spec("random+cost:1ms:8x").unwrap();
        assert_eq!(spec.policy, Policy::Random);
        let c = spec.cost.unwrap();
        assert_eq!(c.max(), Duration::from_millis(1));
        assert_eq!(c.slowest(), 8);
        assert_eq!(spec.to_string(), "random+cost:1ms:8x");
        assert_eq!(
            parse_policy_spec("pct:2").unwrap(),
            PolicySpec {
                policy: Policy::Pct { depth: 2 },
                ..PolicySpec::default()
            }
        );
        let spec = parse_policy_spec("mix+late:0.25:100ms").unwrap();
        let late = spec.late.unwrap();
        assert_eq!(late.probability(), 0.25);
        assert_eq!(late.within(), Duration::from_millis(100));
        assert_eq!(spec.to_string(), "mix+late:0.25:100ms");
        assert_eq!(
            parse_policy_spec(&spec.to_string()).unwrap(),
            spec,
            "the text form reads back"
        );
        let spec = parse_policy_spec("mix+late:off+cost:0").unwrap();
        assert_eq!(spec.late, Some(LatePolls::OFF));
        assert_eq!(spec.to_string(), "mix+cost:0+late:off");
        assert_eq!(
            parse_policy_spec("random+late:0.5").unwrap().late,
            Some(LatePolls::new(0.5, Duration::from_millis(10)))
        );
        for (text, says) in [
            ("random+speed:2", "unknown policy option `speed:2`"),
            ("random+cost:soon", "not a duration"),
            ("random+cost:1ms+cost:2ms", "twice"),
            ("fifo+cost:1ms", "never charges"),
            ("lifo+cost:1ms", "unknown scheduling policy"),
            ("random+late:2", "not a number from 0 to 1"),
            ("random+late:0.5:soon", "not a duration"),
            ("random+late", "late:P"),
            ("random+late:off+late:0.1", "twice"),
            ("fifo+late:0.5", "never moves the clock early"),
        ] {
            let e = parse_policy_spec(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
            assert!(
                !e.contains("  "),
                "{text}: a message without runs of spaces: {e}"
            );
        }
        assert!(
            "random+cost:1ms"
                .parse::<Policy>()
                .unwrap_err()
                .contains("policy alone")
        );
    }
}
