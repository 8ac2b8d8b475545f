//! What can go wrong in a run, and how it is reported.
//!
//! A run ends in its main task's value or in one [`Failure`]. Every kind of
//! failure is a variant a caller can match on, carrying a report struct with
//! the facts (which task, what it waited on, what limit was hit) and a
//! [`RunPoint`]: the seed, the virtual time and the step at which the run
//! failed. The `Display` of a failure is the message a user needs: it always
//! names the seed as `0x…`, so a failure seen once can be replayed.
//!
//! All failure printing lives in this module (`display.rs`), so every kind
//! is worded the same way and none can forget the seed.

use std::borrow::Cow;
use std::panic::Location;

use crate::runtime::Seed;
use crate::task::TaskId;
use crate::time::{Duration, Instant};

mod display;

pub(crate) use display::plural;

/// Why a simulation failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Failure {
    /// A task panicked: the main task, or a task whose panic nobody observed
    /// through its [`JoinHandle`](crate::task::JoinHandle).
    Panic(PanicReport),
    /// Tasks can never make progress: either nothing at all is ready and no
    /// timer is pending although the main task has not finished, or a cycle
    /// of tasks waiting on each other's locks, semaphores, channels or
    /// `JoinHandle`s closed (found at the step that closed it, even while other tasks
    /// still run).
    Deadlock(DeadlockReport),
    /// The virtual clock would pass the configured `max_virtual_time`.
    TimeLimit(TimeLimitReport),
    /// The run took more scheduling steps than `max_steps`: tasks keep
    /// running but the main task never finishes (a livelock, or a busy loop
    /// of `yield_now`).
    StepLimit(StepLimitReport),
    /// Tasks were still alive, or sockets still open, when the main task
    /// returned.
    Leak(LeakReport),
    /// The run could not be reproduced: two runs of one seed diverged. (A
    /// task woken from outside the simulation's thread is listed with this
    /// kind in [`Outcome::warnings`](crate::Outcome::warnings): the wake is
    /// not applied, so it never decides a verdict.)
    NonDeterminism(NonDeterminismReport),
    /// A fault plan's action could not apply when its time came (it names a
    /// host that does not exist then, or the same host twice).
    InvalidFault(InvalidFaultReport),
    /// Tasks kept running without making progress: no virtual time passed
    /// and no task finished for `livelock_steps` polls in a row, or a task
    /// woke itself over and over inside one poll that never returned.
    Livelock(LivelockReport),
    /// One poll held the executor for longer than the wall-time threshold
    /// (a blocking call inside a task), or never returned at all.
    BlockedPoll(BlockedPollReport),
    /// A task returned a `Result::Err` and its `JoinHandle` was dropped
    /// without taking it: nobody will ever see that error (a forgotten
    /// `.await`).
    UnobservedError(UnobservedErrorReport),
    /// A replayed [`Schedule`](crate::explore::Schedule) no longer fits the
    /// program (it was edited, or the schedule belongs to another test):
    /// the report names the step and what each side wanted.
    ScheduleDiverged(ScheduleDivergedReport),
}

impl Failure {
    /// The backtrace of a panic, when one was captured (see
    /// [`PanicReport::backtrace`]).
    pub fn backtrace(&self) -> Option<&std::backtrace::Backtrace> {
        match self {
            Failure::Panic(r) => r.backtrace.as_deref(),
            _ => None,
        }
    }

    /// Where the run stood when it failed: seed, virtual time, step.
    pub fn at(&self) -> &RunPoint {
        match self {
            Failure::Panic(r) => &r.at,
            Failure::Deadlock(r) => &r.at,
            Failure::TimeLimit(r) => &r.at,
            Failure::StepLimit(r) => &r.at,
            Failure::Leak(r) => &r.at,
            Failure::NonDeterminism(r) => &r.at,
            Failure::InvalidFault(r) => &r.at,
            Failure::Livelock(r) => &r.at,
            Failure::BlockedPoll(r) => &r.at,
            Failure::UnobservedError(r) => &r.at,
            Failure::ScheduleDiverged(r) => &r.at,
        }
    }

    /// The seed of the failing run.
    pub fn seed(&self) -> Seed {
        self.at().seed
    }

    /// The kind of failure, as a value to match or compare; its `Display`
    /// is a short, stable name (`panic`, `deadlock`, `time-limit`, …).
    pub fn kind(&self) -> FailureKind {
        match self {
            Failure::Panic(_) => FailureKind::Panic,
            Failure::Deadlock(_) => FailureKind::Deadlock,
            Failure::TimeLimit(_) => FailureKind::TimeLimit,
            Failure::StepLimit(_) => FailureKind::StepLimit,
            Failure::Leak(_) => FailureKind::Leak,
            Failure::NonDeterminism(_) => FailureKind::NonDeterminism,
            Failure::InvalidFault(_) => FailureKind::InvalidFault,
            Failure::Livelock(_) => FailureKind::Livelock,
            Failure::BlockedPoll(_) => FailureKind::BlockedPoll,
            Failure::UnobservedError(_) => FailureKind::UnobservedError,
            Failure::ScheduleDiverged(_) => FailureKind::ScheduleDiverged,
        }
    }
}

/// The kinds of [`Failure`], without their reports: what a scenario
/// declares it must fail with, what a sweep counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// [`Failure::Panic`].
    Panic,
    /// [`Failure::Deadlock`].
    Deadlock,
    /// [`Failure::TimeLimit`].
    TimeLimit,
    /// [`Failure::StepLimit`].
    StepLimit,
    /// [`Failure::Leak`].
    Leak,
    /// [`Failure::NonDeterminism`].
    NonDeterminism,
    /// [`Failure::InvalidFault`].
    InvalidFault,
    /// [`Failure::Livelock`].
    Livelock,
    /// [`Failure::BlockedPoll`].
    BlockedPoll,
    /// [`Failure::UnobservedError`].
    UnobservedError,
    /// [`Failure::ScheduleDiverged`].
    ScheduleDiverged,
}

impl FailureKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [FailureKind] = &[
        FailureKind::Panic,
        FailureKind::Deadlock,
        FailureKind::TimeLimit,
        FailureKind::StepLimit,
        FailureKind::Leak,
        FailureKind::NonDeterminism,
        FailureKind::InvalidFault,
        FailureKind::Livelock,
        FailureKind::BlockedPoll,
        FailureKind::UnobservedError,
        FailureKind::ScheduleDiverged,
    ];

    /// The short, stable name: `panic`, `deadlock`, `time-limit`,
    /// `step-limit`, `leak`, `non-determinism`, `invalid-fault`, `livelock`,
    /// `blocked-poll`, `unobserved-error`, `schedule-diverged`.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Panic => "panic",
            FailureKind::Deadlock => "deadlock",
            FailureKind::TimeLimit => "time-limit",
            FailureKind::StepLimit => "step-limit",
            FailureKind::Leak => "leak",
            FailureKind::NonDeterminism => "non-determinism",
            FailureKind::InvalidFault => "invalid-fault",
            FailureKind::Livelock => "livelock",
            FailureKind::BlockedPoll => "blocked-poll",
            FailureKind::UnobservedError => "unobserved-error",
            FailureKind::ScheduleDiverged => "schedule-diverged",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for FailureKind {
    type Err = String;
    fn from_str(s: &str) -> Result<FailureKind, String> {
        FailureKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = FailureKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown failure kind `{}`: expected one of {}",
                    s.trim(),
                    names.join(", ")
                )
            })
    }
}

impl std::error::Error for Failure {}

/// The seed, virtual time and step at which something happened.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunPoint {
    /// The run's seed.
    pub seed: Seed,
    /// Virtual time.
    pub time: Instant,
    /// Scheduling steps taken so far (one step = one task poll).
    pub step: u64,
}

/// A place in the source: a spawn site or a panic location.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Site {
    /// Source file, as the compiler names it (relative to the workspace).
    pub file: Cow<'static, str>,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl Site {
    pub(crate) fn from_location(loc: &'static Location<'static>) -> Site {
        Site {
            file: Cow::Borrowed(loc.file()),
            line: loc.line(),
            column: loc.column(),
        }
    }
}

/// A task as reports name it: id, name, and where it was spawned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskInfo {
    /// The task's id in this run (main is `#0`).
    pub id: TaskId,
    /// The name given with [`task::Builder::name`](crate::task::Builder::name).
    pub name: Option<String>,
    /// The `spawn` call that created it.
    pub spawned_at: Site,
}

/// A task panicked.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PanicReport {
    /// The task that panicked.
    pub task: TaskInfo,
    /// The panic message.
    pub message: String,
    /// Where the panic was raised, when known.
    pub location: Option<Site>,
    /// `true` when the panic failed the run because nobody observed it: the
    /// task's `JoinHandle` was dropped, or still held but never awaited when
    /// the main task returned.
    pub unobserved: bool,
    /// The panic's backtrace, captured when `RUST_BACKTRACE` (or
    /// `RUST_LIB_BACKTRACE`) asks for one, as std's panic hook would print
    /// it. The `#[sim_test]` report and [`Outcome::unwrap`](crate::Outcome::unwrap)
    /// print it; the failure's `Display` does not (it is the same in every
    /// replay of the seed, and a backtrace is not).
    pub backtrace: Option<std::sync::Arc<std::backtrace::Backtrace>>,
    /// When it happened.
    pub at: RunPoint,
}

/// A task that could not make progress, and what it was waiting on.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BlockedTask {
    /// The task.
    pub task: TaskInfo,
    /// What it waits on, in words (`join of #2 worker-b`, `sleep until
    /// 5.000s`, `mutex 'lock2', held by #1 task-a`, …), as recorded by the
    /// lockstep primitives it last blocked in.
    pub waiting_on: String,
    /// The sync primitives it holds that some task waits on (`mutex
    /// 'lock1'`, `semaphore 'pool' (2 permits)`).
    pub holds: Vec<String>,
}

/// How a deadlock was found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadlockKind {
    /// Nothing could run and no timer was pending.
    Stalled,
    /// A cycle of waits closed (at the step of the report) while other tasks
    /// could still run.
    Cycle,
}

/// One task of a wait-for cycle: what it holds that the previous task of
/// the cycle waits for, and what it waits for in turn.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CycleLink {
    /// The task.
    pub task: TaskInfo,
    /// The primitive it holds that the previous task waits for (`mutex
    /// 'lock1'`); `None` when the previous task waits for this task itself
    /// (its `JoinHandle`) or for a channel this task sent to.
    pub holds: Option<String>,
    /// What it waits for (`mutex 'lock2'`, `join of #2 task-b`).
    pub waits_for: String,
}

/// Tasks that can never make progress.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DeadlockReport {
    /// How it was found.
    pub kind: DeadlockKind,
    /// The cycle of waits, in order (each task waits for the next; the last
    /// for the first), when there is one. Always present for
    /// [`DeadlockKind::Cycle`].
    pub cycle: Vec<CycleLink>,
    /// Every task still alive, what it waits on and what it holds.
    pub blocked: Vec<BlockedTask>,
    /// When the run stalled or the cycle closed.
    pub at: RunPoint,
}

/// The virtual clock ran past its limit.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TimeLimitReport {
    /// The configured `max_virtual_time`.
    pub limit: Duration,
    /// The tasks still alive when the limit was hit, and what they waited on.
    pub blocked: Vec<BlockedTask>,
    /// When the limit was hit (the virtual time is the limit).
    pub at: RunPoint,
}

/// The run took too many steps.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StepLimitReport {
    /// The configured `max_steps`.
    pub limit: u64,
    /// The tasks polled most often, with their poll counts, busiest first
    /// (at most five): usually the loop that never ends.
    pub busiest: Vec<(TaskInfo, u64)>,
    /// When the limit was hit.
    pub at: RunPoint,
}

/// Tasks or sockets outlived the main task.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LeakReport {
    /// The leaked tasks and what they were waiting on.
    pub tasks: Vec<BlockedTask>,
    /// Sockets (TCP streams and listeners, UDP sockets) still open when
    /// the main task returned although no running host task holds them
    /// (the rule is in the [`net`](crate::net) module docs).
    pub sockets: Vec<SocketLeak>,
    /// When the main task returned.
    pub at: RunPoint,
}

/// A socket still open when the main task returned, and who opened it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SocketLeak {
    /// The socket: `tcp stream client:49152 -> server:80`, `tcp listener
    /// server:80`, `udp socket client:5353`.
    pub socket: String,
    /// The task that opened it (`connect`, `accept`, `bind`).
    pub opened_by: TaskInfo,
    /// The last task that used it, when another than the one that opened
    /// it.
    pub last_used_by: Option<TaskInfo>,
    /// Whether the last task to hold it had finished (`false`: that task
    /// is itself a leaked task on no host).
    pub finished: bool,
}

/// The run is not reproducible.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NonDeterminismReport {
    /// What was seen.
    pub cause: Divergence,
    /// Where it was seen.
    pub at: RunPoint,
}

/// A fault plan action that could not apply.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct InvalidFaultReport {
    /// The action, in the plan's text form (`crash serverr`).
    pub action: String,
    /// Why it could not apply, and what could.
    pub message: String,
    /// When it was due.
    pub at: RunPoint,
}

/// How a livelock was found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LivelockKind {
    /// `window` polls in a row passed with no virtual time passing and no
    /// task finishing.
    NoProgress,
    /// The task being polled woke itself `window` times inside one poll: a loop inside `poll` that re-polls a
    /// self-waking future and would never return. The poll was stopped by
    /// a panic raised from inside the wake.
    WithinPoll,
}

/// Tasks ran without making progress.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LivelockReport {
    /// How it was found.
    pub kind: LivelockKind,
    /// Polls without progress ([`LivelockKind::NoProgress`]), or self-wakes
    /// inside the one poll ([`LivelockKind::WithinPoll`]).
    pub window: u64,
    /// The tasks polled most often, with their poll counts, busiest first
    /// (at most five); for [`LivelockKind::WithinPoll`], the looping task
    /// alone.
    pub busiest: Vec<(TaskInfo, u64)>,
    /// When it was found.
    pub at: RunPoint,
}

/// One poll took too long in wall time.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BlockedPollReport {
    /// The task whose poll it was.
    pub task: TaskInfo,
    /// How long the poll ran, at least (wall time, measured by the
    /// watchdog thread to within a few milliseconds). Never in a trace.
    pub wall_time: std::time::Duration,
    /// The threshold it passed: `blocked_poll` when the poll returned, the
    /// `watchdog` limit when it did not.
    pub threshold: std::time::Duration,
    /// Whether the poll returned. `false`: it was still running when the
    /// watchdog limit passed, and the run was abandoned on its worker
    /// thread (see [`Sim::run_isolated`](crate::Sim::run_isolated)).
    pub returned: bool,
    /// The step of that poll.
    pub at: RunPoint,
}

/// A task's `Err` that nobody took.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UnobservedErrorReport {
    /// The task that returned it.
    pub task: TaskInfo,
    /// The task's output type (`Result<(), String>`): the error value itself
    /// cannot be shown, since an output need not implement `Debug`.
    pub output_type: String,
    /// When the error became unobservable (the handle was dropped, or the
    /// task returned with its handle already gone).
    pub at: RunPoint,
}

/// Where a replayed schedule and the program parted.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScheduleDivergedReport {
    /// What the schedule wanted and what the program did instead
    /// (`at step 12 the schedule polls #3, but it is not ready (ready: #1)`).
    pub message: String,
    /// Where the run stood.
    pub at: RunPoint,
}

/// How a run showed it is not deterministic.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Divergence {
    /// Two runs of the same seed took different paths.
    Diverged {
        /// The index (from 0) of the first trace event that differs, when the
        /// traces differ; `None` when the traces match but a random draw or
        /// decision that the trace does not show differed.
        event: Option<usize>,
        /// The step at which the runs' decision hashes first differ.
        step: u64,
        /// That event (or the last matching one) in the first run.
        first: String,
        /// The same event in the second run.
        second: String,
        /// The events just before the divergence, identical in both runs.
        context: Vec<String>,
    },
    /// A task was woken from a thread other than the simulation's: a real
    /// thread, a thread pool or another runtime got hold of its waker. The
    /// wake was not applied; this is listed in
    /// [`Outcome::warnings`](crate::Outcome::warnings), never the verdict.
    ForeignWake {
        /// The woken task, if it is still alive.
        task: Option<TaskInfo>,
        /// The thread the wake came from.
        thread: String,
    },
}
