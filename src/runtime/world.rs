//! The world: all state of one simulation, and the loop that drives it.
//!
//! One `World` is created per run and dropped at its end; nothing outlives
//! it and nothing is shared with another run. Every field uses interior
//! mutability (`Cell`/`RefCell`), because user code reaches the world through
//! a shared reference (the scoped context) while the executor is also using
//! it; see the executor's module docs for the borrowing rule that keeps the
//! `RefCell`s from clashing.
//!
//! The drive loop, in one sentence: pick a ready task and poll it; when none
//! is ready, jump the clock to the earliest timer and fire every timer due
//! then; when there is no timer either, the run is deadlocked.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::executor::{Executor, Step};
use super::outcome::{Outcome, Stats};
use super::panics;
use super::sim::Config;
use super::waker;
use super::watchdog::{self, Slot};
use super::{Seed, Severity};
use crate::check::{
    Divergence, Failure, LeakReport, NonDeterminismReport, PanicReport, RunPoint, StepLimitReport,
    TimeLimitReport,
};
use crate::task::TaskId;
use crate::time::timers::{TimerAction, TimerKey, Timers};
use crate::time::{Duration, Instant};
use crate::trace::{Event, EventKind, Trace, Verbosity};

/// Independent random streams, one per consumer, all derived from the seed:
/// adding a random draw in one place does not shift the draws of another.
pub(crate) mod stream {
    /// Scheduling decisions.
    pub(crate) const SCHED: u64 = 1;
    /// `lockstep::random` draws by the program under test.
    pub(crate) const USER: u64 = 2;
    /// The simulated network: latencies, loss, duplication, reordering.
    pub(crate) const NET: u64 = 3;
    /// Faults: `buggify!` points and random fault plans.
    pub(crate) const FAULT: u64 = 4;
}

/// Counters the run keeps for [`Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) spawned: Cell<u64>,
    pub(crate) timers_fired: Cell<u64>,
    pub(crate) clock_jumps: Cell<u64>,
}

pub(crate) struct Tracer {
    level: Verbosity,
    trace: RefCell<Trace>,
}

impl Tracer {
    pub(crate) fn level(&self) -> Verbosity {
        self.level
    }
}

pub(crate) struct World {
    pub(crate) tag: waker::RunTag,
    pub(crate) config: Config,
    now: Cell<u64>,
    step: Cell<u64>,
    /// The last step at which the run made progress (the clock moved, a
    /// task finished): the livelock detector's reference.
    progress: Cell<u64>,
    hash: Cell<u64>,
    /// The decision hash after each step, kept only when diagnosing a
    /// divergence.
    step_hashes: Option<RefCell<Vec<u64>>>,
    pub(crate) timers: RefCell<Timers>,
    pub(crate) exec: Executor,
    sched_rng: RefCell<ChaCha8Rng>,
    user_rng: RefCell<ChaCha8Rng>,
    pub(crate) tracer: Tracer,
    failure: RefCell<Option<Failure>>,
    warnings: RefCell<Vec<Failure>>,
    /// Tasks woken from other threads (not applied), and by which thread.
    foreign: RefCell<Vec<(Option<crate::check::TaskInfo>, String)>>,
    pub(crate) stats: Counters,
    pub(crate) watchdog: Option<Arc<Slot>>,
    /// Hosts, sockets, links and faults; empty until a host is created.
    pub(crate) net: crate::net::NetSlot,
    /// Sync primitives' per-run state: auto-names, the deadlock walk.
    pub(crate) sync: crate::sync::Registry,
}

/// FNV-1a over the bytes of a text, fed piece by piece as it is formatted
/// (the result does not depend on how the text is split).
struct TextHash(u64);

impl Default for TextHash {
    fn default() -> Self {
        TextHash(0xcbf2_9ce4_8422_2325)
    }
}

impl std::fmt::Write for TextHash {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for b in s.bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Ok(())
    }
}

/// Expands a `u64` seed into a ChaCha key with SplitMix64, so that seeds do
/// not depend on how a `rand_core` release implements `seed_from_u64`.
pub(crate) fn rng_for(seed: Seed, stream: u64) -> ChaCha8Rng {
    let mut x = seed.0;
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(stream);
    rng
}

impl World {
    pub(crate) fn new(config: &Config, record_step_hashes: bool) -> World {
        let seed = config.seed;
        World {
            tag: waker::RunTag::new(),
            config: config.clone(),
            now: Cell::new(0),
            step: Cell::new(0),
            hash: Cell::new(seed.0 ^ 0x6C6F_636B_7374_6570),
            step_hashes: record_step_hashes.then(|| RefCell::new(Vec::new())),
            timers: RefCell::new(Timers::default()),
            exec: Executor::new(config.policy),
            sched_rng: RefCell::new(rng_for(seed, stream::SCHED)),
            user_rng: RefCell::new(rng_for(seed, stream::USER)),
            tracer: Tracer {
                level: config.verbosity,
                trace: RefCell::new(Trace::with_capacity(match config.verbosity {
                    Verbosity::Off => 0,
                    _ => 256,
                })),
            },
            failure: RefCell::new(None),
            warnings: RefCell::new(Vec::new()),
            foreign: RefCell::new(Vec::new()),
            stats: Counters::default(),
            watchdog: (config.watchdog.is_some() || config.blocked_poll.is_some()).then(|| {
                watchdog::register(
                    seed,
                    config.watchdog,
                    config.blocked_poll,
                    config.handoff.clone(),
                )
            }),
            progress: Cell::new(0),
            net: crate::net::NetSlot::default(),
            sync: crate::sync::Registry::default(),
        }
    }

    // ----- clock, steps, hash, randomness -------------------------------

    /// Global virtual time.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        Instant::from_nanos(self.now.get())
    }

    /// Folds `x` into the decision hash (for subsystems whose draws must be
    /// covered by the determinism check: network fates, faults).
    #[inline]
    pub(crate) fn mix(&self, x: u64) {
        let h = (self.hash.get() ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.hash.set(h ^ (h >> 29));
    }

    /// Counts a step and folds the decision (which task, out of how many
    /// ready ones) into the decision hash.
    #[inline]
    pub(crate) fn begin_step(&self, task: TaskId, choices: usize) {
        // Entry `j` of the step hashes is the hash at the end of step `j`
        // (entry 0: before the first step): everything decided or drawn up
        // to the end of that step's poll.
        if let Some(h) = &self.step_hashes {
            h.borrow_mut().push(self.hash.get());
        }
        self.step.set(self.step.get() + 1);
        self.mix(((choices as u64) << 32) | task.0 as u64);
    }

    /// The run made progress (the clock moved, a task finished).
    #[inline]
    pub(crate) fn progressed(&self) {
        self.progress.set(self.step.get());
    }

    /// Fails the run with a blocked poll of task `task` that took at least
    /// `wall` (the watchdog found it past the threshold).
    #[cold]
    pub(crate) fn blocked_poll(&self, task: crate::check::TaskInfo, wall: Duration) {
        let threshold = self
            .watchdog
            .as_ref()
            .map_or(Duration::ZERO, |wd| wd.threshold());
        self.fail(Failure::BlockedPoll(crate::check::BlockedPollReport {
            task,
            wall_time: wall,
            threshold,
            returned: true,
            at: self.point(),
        }));
    }

    /// Fails the run with a livelock inside the poll of `task`.
    #[cold]
    pub(crate) fn poll_livelock(&self, task: crate::check::TaskInfo, wakes: u64, polls: u64) {
        self.fail(Failure::Livelock(crate::check::LivelockReport {
            kind: crate::check::LivelockKind::WithinPoll,
            window: wakes,
            busiest: vec![(task, polls)],
            at: self.point(),
        }));
    }

    /// A uniform index below `n` from the scheduler stream (Lemire's
    /// multiply-shift; independent of `rand`'s sampling algorithms, so a
    /// `rand` upgrade cannot change schedules).
    #[inline]
    pub(crate) fn sched_below(&self, n: usize) -> usize {
        let x = self.sched_rng.borrow_mut().next_u64();
        ((x as u128 * n as u128) >> 64) as usize
    }

    /// A raw draw from the program's random stream, folded into the hash.
    pub(crate) fn user_u64(&self) -> u64 {
        let x = self.user_rng.borrow_mut().next_u64();
        self.mix(x);
        x
    }

    /// Fills `dst` from the program's random stream, folded into the hash.
    pub(crate) fn user_fill(&self, dst: &mut [u8]) {
        self.user_rng.borrow_mut().fill_bytes(dst);
        for chunk in dst.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    pub(crate) fn point(&self) -> RunPoint {
        RunPoint {
            seed: self.config.seed,
            time: self.now(),
            step: self.step.get(),
        }
    }

    // ----- timers -------------------------------------------------------

    /// Arms a timer that wakes `waker` at `deadline`, owned by the current
    /// task.
    pub(crate) fn arm_timer(&self, deadline: Instant, waker: &Waker) -> TimerKey {
        let owner = self.exec.current_id();
        if self.tracing(Verbosity::Full) {
            self.record(EventKind::TimerSet { deadline });
        }
        self.timers.borrow_mut().insert(
            deadline.as_nanos(),
            TimerAction::Wake(waker.clone()),
            owner,
        )
    }

    /// Runs `f` inside the runtime at `deadline` (for subsystems: message
    /// deliveries, scheduled faults). A pending callback counts as pending
    /// work, so a run waiting for it is not deadlocked.
    pub(crate) fn call_at(&self, deadline: Instant, f: impl FnOnce(&World) + 'static) -> TimerKey {
        self.timers
            .borrow_mut()
            .insert(deadline.as_nanos(), TimerAction::Call(Box::new(f)), None)
    }

    /// Jumps the clock to the earliest timer and fires every timer due then.
    /// Returns `false` (and records the failure) if the run cannot go on.
    fn advance(&self) -> bool {
        self.collect_foreign();
        let next = self.timers.borrow().next_deadline();
        let Some(deadline) = next else {
            self.fail(Failure::Deadlock(crate::sync::deadlock::stalled(self)));
            return false;
        };
        if let Some(limit) = self.config.max_virtual_time {
            let limit_ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
            if deadline > limit_ns {
                self.now.set(limit_ns.max(self.now.get()));
                self.fail(Failure::TimeLimit(TimeLimitReport {
                    limit,
                    blocked: self.exec.blocked(),
                    at: self.point(),
                }));
                return false;
            }
        }
        if deadline > self.now.get() {
            self.now.set(deadline);
            self.progressed();
            self.mix(deadline);
            self.stats.clock_jumps.set(self.stats.clock_jumps.get() + 1);
        }
        loop {
            let fired = self.timers.borrow_mut().pop_due(deadline);
            let Some(fired) = fired else { break };
            self.stats
                .timers_fired
                .set(self.stats.timers_fired.get() + 1);
            match fired.action {
                TimerAction::Wake(waker) => {
                    if self.tracing(Verbosity::Full) {
                        self.record(EventKind::TimerFire {
                            target: fired.owner,
                        });
                    }
                    waker.wake();
                }
                TimerAction::Call(f) => {
                    if let Err(p) = panics::catch(|| f(self)) {
                        // A runtime callback panicking is a lockstep bug or a
                        // user callback's; either way, fail loudly.
                        self.fail(Failure::Panic(PanicReport {
                            task: self.runtime_info(),
                            message: p.message,
                            location: p.location,
                            unobserved: true,
                            backtrace: p.backtrace,
                            at: self.point(),
                        }));
                        return false;
                    }
                }
            }
        }
        true
    }

    fn runtime_info(&self) -> crate::check::TaskInfo {
        crate::check::TaskInfo {
            id: TaskId::MAIN,
            name: Some("runtime".to_string()),
            spawned_at: crate::check::Site::from_location(Location::caller()),
        }
    }

    /// Collects the wakes of this run's tasks that came from other threads.
    /// They were not applied, and they do not decide the run's verdict
    /// (that would depend on when the other thread ran): each is listed in
    /// the warnings at the end, and named in the report of a task that
    /// stays blocked.
    fn collect_foreign(&self) {
        for f in waker::take_foreign(self.tag.0) {
            let task = self.exec.info_at(f.target.index, f.target.id_low);
            if let Some(t) = &task {
                self.exec.note_foreign(t.id, &f.thread);
            }
            let seen = self.foreign.borrow().iter().any(|(t, th)| {
                t.as_ref().map(|t| t.id) == task.as_ref().map(|t| t.id) && *th == f.thread
            });
            if !seen {
                self.foreign.borrow_mut().push((task, f.thread));
            }
        }
    }

    // ----- tracing, failures --------------------------------------------

    #[inline]
    pub(crate) fn tracing(&self, level: Verbosity) -> bool {
        self.tracer.level >= level
    }

    /// A `trace!` line: hashed always, recorded when user lines are traced.
    pub(crate) fn user_line(&self, args: std::fmt::Arguments<'_>) {
        let mut hash = TextHash::default();
        if self.tracing(Verbosity::Summary) {
            let message = match args.as_str() {
                Some(s) => s.to_string(),
                None => args.to_string(),
            };
            std::fmt::Write::write_str(&mut hash, &message).ok();
            self.mix(hash.0);
            self.record(EventKind::User { message });
        } else {
            match args.as_str() {
                Some(s) => std::fmt::Write::write_str(&mut hash, s).ok(),
                None => std::fmt::write(&mut hash, args).ok(),
            };
            self.mix(hash.0);
        }
    }

    /// Records an event by the current task, if its kind is traced.
    #[inline]
    pub(crate) fn record(&self, kind: EventKind) {
        self.record_as(self.exec.current_id(), kind)
    }

    pub(crate) fn record_as(&self, task: Option<TaskId>, kind: EventKind) {
        // The failure is the last event of a failed run: what the teardown
        // drops after it (guards released, channels closed) is not traced.
        if kind.verbosity() > self.tracer.level || self.failed() {
            return;
        }
        self.tracer.trace.borrow_mut().push(Event {
            step: self.step.get(),
            time: self.now(),
            task,
            kind,
        });
    }

    /// Fails the run (the first failure wins) and ends the trace with it.
    pub(crate) fn fail(&self, failure: Failure) {
        if self.failure.borrow().is_some() {
            return;
        }
        let message = failure.to_string();
        let first = message.lines().next().unwrap_or_default().to_string();
        self.record_as(
            None,
            EventKind::Failure {
                kind: failure.kind().to_string(),
                message: first,
            },
        );
        *self.failure.borrow_mut() = Some(failure);
    }

    pub(crate) fn warn(&self, failure: Failure) {
        self.warnings.borrow_mut().push(failure);
    }

    fn failed(&self) -> bool {
        self.failure.borrow().is_some()
    }

    // ----- the run ------------------------------------------------------

    /// Drives the simulation until the main task finishes or the run fails.
    fn drive<F: Future>(
        &self,
        mut main: Pin<&mut Option<F>>,
        main_site: &'static Location<'static>,
    ) -> Option<F::Output> {
        let main_waker = waker::waker(super::executor::MAIN_KEY, self.tag.0);
        let max_steps = self.config.max_steps.unwrap_or(u64::MAX);
        loop {
            if self.failed() {
                return None;
            }
            let step = self.step.get();
            if step >= max_steps && self.exec.has_ready() {
                self.fail(Failure::StepLimit(StepLimitReport {
                    limit: max_steps,
                    busiest: self.exec.busiest(5),
                    at: self.point(),
                }));
                return None;
            }
            if step - self.progress.get() >= self.config.livelock_steps && self.exec.has_ready() {
                self.fail(Failure::Livelock(crate::check::LivelockReport {
                    kind: crate::check::LivelockKind::NoProgress,
                    window: self.config.livelock_steps,
                    busiest: self.exec.busiest(5),
                    at: self.point(),
                }));
                return None;
            }
            if let Some(halt) = &self.config.halt {
                if step + 1 >= halt.step && self.exec.has_ready() {
                    self.fail(halt.failure.clone());
                    return None;
                }
            }
            match self.exec.step(self) {
                Step::Polled => {}
                Step::Idle => {
                    if !self.advance() {
                        return None;
                    }
                }
                Step::Main => {
                    let fut = main
                        .as_mut()
                        .as_pin_mut()
                        .expect("the main task is polled only until it finishes");
                    let mut cx = Context::from_waker(&main_waker);
                    if let Some(wd) = &self.watchdog {
                        wd.enter(0, main_site, self.now.get(), self.step.get());
                    }
                    let res = panics::catch(|| fut.poll(&mut cx));
                    if let Some(wall) = self.watchdog.as_ref().and_then(|wd| wd.exit()) {
                        if let Some(info) = self.exec.info_at(0, 0) {
                            self.blocked_poll(info, wall);
                        }
                    }
                    self.exec.after_poll(self, super::executor::MAIN_KEY);
                    match res {
                        Ok(Poll::Pending) => {
                            crate::sync::deadlock::after_pending(self, super::executor::MAIN_KEY);
                            self.exec.end_main_step();
                        }
                        Ok(Poll::Ready(value)) => {
                            self.record(EventKind::Finish);
                            self.exec.end_main_step();
                            main.set(None);
                            self.main_finished();
                            return (!self.failed()).then_some(value);
                        }
                        Err(p) => {
                            self.record(EventKind::Panic {
                                message: p.message.clone(),
                                location: p.location.as_ref().map(|l| format!("{l}:{}", l.column)),
                            });
                            self.exec.end_main_step();
                            let task = self
                                .exec
                                .info_at(0, 0)
                                .expect("the main task is live while it runs");
                            self.fail(Failure::Panic(PanicReport {
                                task,
                                message: p.message,
                                location: p.location,
                                unobserved: false,
                                backtrace: p.backtrace,
                                at: self.point(),
                            }));
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// The checks that run when the main task returns.
    fn main_finished(&self) {
        self.exec.check_unobserved_at_end(self);
        if self.failed() {
            return;
        }
        crate::fault::check_unapplied(self);
        if self.failed() {
            return;
        }
        let leaked = self.exec.leaked();
        let sockets = crate::net::leaked_sockets(self);
        if !leaked.is_empty() || !sockets.is_empty() {
            let report = Failure::Leak(LeakReport {
                tasks: leaked,
                sockets,
                at: self.point(),
            });
            match self.config.leaks {
                Severity::Fail => self.fail(report),
                Severity::Warn => self.warn(report),
                Severity::Ignore => {}
            }
        }
    }

    /// Runs `main` to completion in this world and packs the outcome.
    pub(crate) fn run<F: Future>(
        self,
        main: F,
        site: &'static Location<'static>,
    ) -> Outcome<F::Output> {
        panics::install_hook();
        let value = {
            let _enter = super::context::Enter::new(&self);
            self.exec.spawn_main(&self, site);
            if let Some(plan) = &self.config.faults {
                crate::fault::install(&self, plan);
            }
            let mut main = std::pin::pin!(Some(main));
            let value = self.drive(main.as_mut(), site);
            // Drop what is left inside the context, so that `Drop` impls
            // that call lockstep (wakes, aborts, trace lines) still work.
            main.set(None);
            self.exec.teardown(&self);
            *self.timers.borrow_mut() = Timers::default();
            // Host factories and socket buffers may hold user values whose
            // `Drop` calls lockstep: drop them while the context is entered.
            self.net.clear();
            self.collect_foreign();
            value
        };
        if let Some(wd) = &self.watchdog {
            wd.finish();
        }
        let stats = Stats {
            steps: self.step.get(),
            tasks_spawned: self.stats.spawned.get(),
            timers_fired: self.stats.timers_fired.get(),
            clock_jumps: self.stats.clock_jumps.get(),
            virtual_time: Duration::from_nanos(self.now.get()),
        };
        let failure = self.failure.take();
        let mut warnings = self.warnings.take();
        for (task, thread) in self.foreign.take() {
            warnings.push(Failure::NonDeterminism(NonDeterminismReport {
                cause: Divergence::ForeignWake { task, thread },
                at: self.point(),
            }));
        }
        let result = match (value, failure) {
            (_, Some(f)) => Err(f),
            (Some(v), None) => Ok(v),
            (None, None) => unreachable!("a run without a value has a failure"),
        };
        Outcome::new(
            result,
            self.tracer.trace.take(),
            stats,
            self.config.seed,
            self.hash.get(),
            warnings,
            self.step_hashes.map(|h| {
                let mut h = h.into_inner();
                h.push(self.hash.get());
                h
            }),
        )
    }
}
