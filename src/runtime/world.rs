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
use super::policy::Scheduler;
use super::sim::Config;
use super::waker;
use super::watchdog::{self, Slot};
use super::{Seed, Severity};
use crate::check::{
    Divergence, Failure, LeakReport, NonDeterminismReport, PanicReport, RunPoint,
    ScheduleDivergedReport, StepLimitReport, TimeLimitReport,
};
use crate::task::TaskId;
use crate::time::timers::{TimerAction, TimerKey, Timers};
use crate::time::{Duration, Instant};
use crate::trace::store::{self, Compact};
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
    /// Late polls: whether the clock moves early at a step.
    pub(crate) const LATE: u64 = 5;
    /// Per-seed choices of `Policy::Mix` and `Policy::Swarm`.
    pub(crate) const POLICY: u64 = 6;
    /// Poll cost: the time charged per poll, and hosts' speed factors.
    pub(crate) const COST: u64 = 7;
}

/// Counters the run keeps for [`Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) spawned: Cell<u64>,
    pub(crate) timers_fired: Cell<u64>,
    pub(crate) clock_jumps: Cell<u64>,
    pub(crate) late_polls: Cell<u64>,
    pub(crate) poll_time: Cell<u64>,
}

pub(crate) struct Tracer {
    level: Verbosity,
    trace: RefCell<Trace>,
    /// Interned names of groups, by group index (`u32::MAX`: unnamed).
    hosts: RefCell<Vec<u32>>,
    /// Identifies this run's trace, for caches of interned ids kept by
    /// long-lived objects (a sync primitive's label). Unique in the process.
    pub(crate) epoch: u64,
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
    /// Whether the policy may move the clock while tasks are ready (late
    /// polls, replay): one test per step when it may not.
    consults_clock: bool,
    /// Whether polls are charged virtual time: one test per step when not.
    charges: bool,
    /// The run's swarm configuration, if its policy drew one.
    pub(crate) swarm: Option<crate::runtime::policy::Swarm>,
    /// What the policy drew for this seed, traced when the run starts.
    policy_note: Option<String>,
    /// The program's random stream, made on its first draw (most runs
    /// draw nothing: a fresh run then skips a ChaCha key set-up, and the
    /// world stays small to move).
    user_rng: RefCell<Option<Box<ChaCha8Rng>>>,
    pub(crate) tracer: Tracer,
    failure: RefCell<Option<Failure>>,
    /// Whether `failure` is set (read on every traced event).
    has_failed: Cell<bool>,
    warnings: RefCell<Vec<Failure>>,
    /// Tasks woken from other threads (not applied), and by which thread.
    foreign: RefCell<Vec<(Option<crate::check::TaskInfo>, String)>>,
    pub(crate) stats: Counters,
    pub(crate) watchdog: Option<Arc<Slot>>,
    /// The per-run state of the layers built on the runtime (see `ext`).
    pub(crate) ext: super::ext::Slots,
    /// Host clocks (skew and drift), by group.
    pub(crate) clocks: crate::time::clock::Clocks,
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
        let (sched, resolved) = Scheduler::new(config);
        let seed = config.seed;
        World {
            tag: waker::RunTag::new(),
            config: config.clone(),
            now: Cell::new(0),
            step: Cell::new(0),
            hash: Cell::new(seed.0 ^ 0x6C6F_636B_7374_6570),
            step_hashes: record_step_hashes.then(|| RefCell::new(Vec::new())),
            timers: RefCell::new(Timers::default()),
            exec: Executor::new(sched),
            consults_clock: resolved.consults_clock,
            charges: resolved.charges,
            swarm: resolved.swarm,
            policy_note: resolved.note,
            user_rng: RefCell::new(None),
            tracer: Tracer {
                level: config.verbosity,
                trace: RefCell::new(match config.verbosity {
                    Verbosity::Off => Trace::default(),
                    _ => Trace::for_mode(&config.trace_mode).unwrap_or_else(|e| panic!("{e}")),
                }),
                hosts: RefCell::new(Vec::new()),
                epoch: super::unique_id(),
            },
            failure: RefCell::new(None),
            has_failed: Cell::new(false),
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
            ext: super::ext::Slots::default(),
            clocks: crate::time::clock::Clocks::default(),
        }
    }

    // ----- clock, steps, hash, randomness -------------------------------

    /// This run among every run of the process: an identity only (for
    /// values kept across runs, in a `static`), never in behaviour or the
    /// trace.
    #[inline]
    pub(crate) fn run_id(&self) -> u64 {
        self.tracer.epoch
    }

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

    /// Steps taken so far.
    #[inline]
    pub(crate) fn steps(&self) -> u64 {
        self.step.get()
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

    /// A uniform index below `n`, drawn by the scheduling policy (from the
    /// scheduler stream, or from a replayed schedule) and recorded in the
    /// run's schedule.
    #[inline]
    pub(crate) fn sched_below(&self, n: usize) -> usize {
        let (v, diverged) = self.exec.draw(n);
        if let Some(d) = diverged {
            self.diverged(d);
        }
        v
    }

    /// A replayed schedule no longer fits the program: the run fails.
    pub(crate) fn diverged(&self, message: String) {
        self.fail(Failure::ScheduleDiverged(ScheduleDivergedReport {
            message,
            at: self.point(),
        }));
    }

    fn with_user_rng<R>(&self, f: impl FnOnce(&mut ChaCha8Rng) -> R) -> R {
        let mut rng = self.user_rng.borrow_mut();
        f(rng.get_or_insert_with(|| Box::new(rng_for(self.config.seed, stream::USER))))
    }

    /// A raw draw from the program's random stream, folded into the hash.
    pub(crate) fn user_u64(&self) -> u64 {
        let x = self.with_user_rng(|r| r.next_u64());
        self.mix(x);
        x
    }

    /// Fills `dst` from the program's random stream, folded into the hash.
    pub(crate) fn user_fill(&self, dst: &mut [u8]) {
        self.with_user_rng(|r| r.fill_bytes(dst));
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
        self.record_timer_set(deadline);
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
            self.fail(Failure::Deadlock(self.layers_stalled()));
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
        self.move_clock_to(deadline)
    }

    /// A late poll: with tasks ready, the policy may move the clock to the
    /// next timer first (within the time limit). Returns `Some(go_on)` if
    /// it did. Asked before every step of a run with late polls on (every
    /// seed of `Policy::Mix`): the common answer, no timer armed, is given
    /// here, inline, without the frame of the rest.
    #[inline]
    fn maybe_move_early(&self) -> Option<bool> {
        let deadline = self.timers.borrow().next_deadline()?;
        self.maybe_move_early_to(deadline)
    }

    #[inline(never)]
    fn maybe_move_early_to(&self, deadline: u64) -> Option<bool> {
        if let Some(limit) = self.config.max_virtual_time {
            if u128::from(deadline) > limit.as_nanos() {
                return None;
            }
        }
        // A late poll delays a task woken by an event (a message, a
        // notify, a lock handed over), as a loaded executor does. Two kinds
        // of ready task run first: one that has not run at all yet (just
        // spawned, a host just started), or a client would connect before
        // a server spawned in the same instant had bound its listener; and
        // one its own timer woke, so that a sleep or a timeout returns at
        // its deadline (`sleep(5ms)` then `elapsed() == 5ms` holds, however
        // many other timers are due). Neither order is the race late polls
        // look for: woken in time, polled after a later timer fired.
        if self.exec.late_polls_wait() || !self.exec.any_runnable() {
            return None;
        }
        let by = Duration::from_nanos(deadline.saturating_sub(self.now.get()));
        if !self.exec.sched.borrow_mut().clock_may_move(by) {
            return None;
        }
        self.stats.late_polls.set(self.stats.late_polls.get() + 1);
        if self.tracing(Verbosity::Summary) {
            self.record_as(
                None,
                EventKind::Sched {
                    what: format!(
                        "late poll: the clock moves to {} with tasks ready",
                        Instant::from_nanos(deadline.max(self.now.get()))
                    ),
                },
            );
        }
        Some(self.move_clock_to(deadline))
    }

    /// Moves the clock to `deadline` (if later) and fires every timer due
    /// then. Returns `false` if the run cannot go on.
    fn move_clock_to(&self, deadline: u64) -> bool {
        if deadline > self.now.get() {
            self.now.set(deadline);
            self.progressed();
            self.mix(deadline);
            self.stats.clock_jumps.set(self.stats.clock_jumps.get() + 1);
        }
        self.fire_due(deadline)
    }

    /// Fires every timer due by `deadline`, in (deadline, sequence) order.
    /// Returns `false` if the run cannot go on.
    fn fire_due(&self, deadline: u64) -> bool {
        loop {
            let fired = self.timers.borrow_mut().pop_due(deadline);
            let Some(fired) = fired else { break };
            self.stats
                .timers_fired
                .set(self.stats.timers_fired.get() + 1);
            match fired.action {
                TimerAction::Wake(waker) => {
                    if self.tracing(Verbosity::Full) {
                        self.record_plain(
                            Verbosity::Full,
                            store::code::TIMER_FIRE,
                            fired.owner.map_or(0, |t| t.as_u32() + 1),
                        );
                    }
                    self.exec.timer_wakes(|| waker.wake());
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

    /// Poll cost: charges the poll just taken (see `policy/cost.rs`). The
    /// clock moves by the charge (not past the time limit) and the timers
    /// due by then fire before the next pick. Not progress for the
    /// livelock detector: a busy loop stays one. Returns `false` if the
    /// run cannot go on.
    #[inline(never)]
    fn charge_poll(&self) -> bool {
        let host = self.exec.polled_host();
        let (ns, milli) = self
            .exec
            .sched
            .borrow_mut()
            .charge(host.map(super::ext::Group::index));
        let now = self.now.get();
        let mut to = now.saturating_add(ns);
        if let Some(limit) = self.config.max_virtual_time {
            to = to.min(u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX));
        }
        if to <= now {
            return true;
        }
        self.now.set(to);
        self.mix(to);
        self.stats
            .poll_time
            .set(self.stats.poll_time.get() + (to - now));
        let due = self
            .timers
            .borrow()
            .next_deadline()
            .is_some_and(|d| d <= to);
        if !due {
            return true;
        }
        if self.tracing(Verbosity::Full) {
            let at = if milli == 1000 {
                String::new()
            } else {
                format!(" (host at {}.{:03}x)", milli / 1000, milli % 1000)
            };
            self.record_as(
                None,
                EventKind::Sched {
                    what: format!(
                        "poll charged {}{at}: timers fall due while tasks run",
                        crate::time::format_duration(Duration::from_nanos(to - now))
                    ),
                },
            );
        }
        self.fire_due(to)
    }

    /// A host was created (called by the net layer): under poll cost it
    /// draws its speed factor, traced.
    pub(crate) fn host_created(&self, index: usize, name: &str) {
        if !self.charges {
            return;
        }
        let milli = self.exec.sched.borrow_mut().new_host(index);
        if let (Some(m), true) = (milli, self.tracing(Verbosity::Summary)) {
            self.record_as(
                None,
                EventKind::Sched {
                    what: format!(
                        "host {name} runs {}.{:03}x slower (poll cost)",
                        m / 1000,
                        m % 1000
                    ),
                },
            );
        }
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

    /// Records an event in its compact form, by the current task, if
    /// `level` is traced (the hot path: poll, yield, wake, timers).
    #[inline]
    pub(crate) fn record_compact(&self, level: Verbosity, c: Compact) {
        if level > self.tracer.level || self.failed() {
            return;
        }
        self.push_compact(c);
    }

    /// The traced half of [`World::record_compact`], out of line so that
    /// the untraced check inlines into its callers.
    #[inline(never)]
    fn push_compact(&self, c: Compact) {
        let task = self.exec.current_id();
        self.tracer
            .trace
            .borrow_mut()
            .store
            .push(self.step.get(), self.now.get(), task, c);
    }

    /// Records an event without extensions, by the current task, if
    /// `level` is traced (the hottest path: poll, yield, wake).
    #[inline(always)]
    pub(crate) fn record_plain(&self, level: Verbosity, code: u8, arg: u32) {
        if level > self.tracer.level || self.failed() {
            return;
        }
        // `code` is a constant at every call: polls, yields and wakes get
        // an append made for them (a poll's record carries its step; a
        // wake may share its task's yield's record).
        match code {
            store::code::POLL => self.push_poll(),
            store::code::YIELD => self.push_yield(),
            store::code::WAKE => self.push_wake(arg),
            _ => self.push_plain(code, arg),
        }
    }

    /// Records a yield and the yielding task's wake of itself (full):
    /// the two records [`World::record_plain`] makes for them, in one
    /// borrow of the trace.
    #[inline(always)]
    pub(crate) fn record_yield_woke(&self) {
        if Verbosity::Full > self.tracer.level || self.failed() {
            return;
        }
        self.push_yield_woke();
    }

    #[inline(never)]
    fn push_yield_woke(&self) {
        let task = self.exec.current_id();
        let (step, now) = (self.step.get(), self.now.get());
        let trace = &mut *self.tracer.trace.borrow_mut();
        trace
            .store
            .push_plain(step, now, task, store::code::YIELD, 0);
        let me = task.map_or(0, |t| t.as_u32());
        trace
            .store
            .push_plain(step, now, task, store::code::WAKE, me);
    }

    #[inline(never)]
    fn push_poll(&self) {
        self.push_plain_as(store::code::POLL, 0);
    }

    #[inline(never)]
    fn push_yield(&self) {
        self.push_plain_as(store::code::YIELD, 0);
    }

    #[inline(never)]
    fn push_wake(&self, target: u32) {
        self.push_plain_as(store::code::WAKE, target);
    }

    #[inline(never)]
    fn push_plain(&self, code: u8, arg: u32) {
        self.push_plain_as(code, arg);
    }

    /// The traced half of [`World::record_plain`]: a few compares and a
    /// store in the usual case (the store's slow path is out of line).
    /// Out of line (in the four functions above): inlined, it made every
    /// caller (a yield, a wake) save more registers, trace off too.
    #[inline(always)]
    fn push_plain_as(&self, code: u8, arg: u32) {
        let task = self.exec.current_id();
        self.tracer.trace.borrow_mut().store.push_plain(
            self.step.get(),
            self.now.get(),
            task,
            code,
            arg,
        );
    }

    /// Records a timer armed by the current task (full).
    #[inline]
    pub(crate) fn record_timer_set(&self, deadline: Instant) {
        self.record_compact(
            Verbosity::Full,
            store::timer_set(self.now.get(), deadline.as_nanos()),
        );
    }

    /// Records a sync event on the primitive labelled by `label` (interned
    /// once per run through `cache`). Always inlined: its callers pass
    /// constants (no detail, no target) that fold its look-ups away, and
    /// left to the inliner it was kept out of line when unrelated code
    /// moved (W4 fully traced: +3% instructions).
    #[inline(always)]
    pub(crate) fn record_sync(
        &self,
        level: Verbosity,
        code: u8,
        cache: &Cell<(u64, u32)>,
        label: impl FnOnce() -> String,
        detail: Option<std::borrow::Cow<'static, str>>,
        to: Option<TaskId>,
    ) {
        if level > self.tracer.level || self.failed() {
            return;
        }
        let task = self.exec.current_id();
        let mut trace = self.tracer.trace.borrow_mut();
        let store = &mut trace.store;
        let id = store.strings.intern_cached(self.tracer.epoch, cache, label);
        let c = store.sync_id(code, id, detail.as_ref(), to);
        store.push(self.step.get(), self.now.get(), task, c);
    }

    /// Records a wait with a fixed detail (summary): one pair of the
    /// primitive and its detail, looked up through `pair` (the last detail
    /// and its pair id, in the trace of that epoch) while the detail
    /// repeats.
    pub(crate) fn record_wait_static(
        &self,
        cache: &Cell<(u64, u32)>,
        pair: &Cell<(u64, usize, usize, u32)>,
        label: impl FnOnce() -> String,
        detail: &'static str,
    ) {
        if !self.tracing(Verbosity::Summary) || self.failed() {
            return;
        }
        let task = self.exec.current_id();
        let epoch = self.tracer.epoch;
        let key = (detail.as_ptr() as usize, detail.len());
        let mut trace = self.tracer.trace.borrow_mut();
        let store = &mut trace.store;
        let c = match pair.get() {
            (e, p, l, id) if e == epoch && (p, l) == key => {
                Compact::new(store::code::WAIT | store::code::PAIRED, id)
            }
            _ => {
                let id = store.strings.intern_cached(epoch, cache, label);
                let c = store.sync_id(
                    store::code::WAIT,
                    id,
                    Some(&std::borrow::Cow::Borrowed(detail)),
                    None,
                );
                if c.code() == store::code::WAIT | store::code::PAIRED {
                    pair.set((epoch, key.0, key.1, c.arg()));
                }
                c
            }
        };
        store.push(self.step.get(), self.now.get(), task, c);
    }

    /// Records a wait for a lock held by `holder` (summary).
    pub(crate) fn record_sync_held(
        &self,
        cache: &Cell<(u64, u32)>,
        label: impl FnOnce() -> String,
        holder: Option<TaskId>,
    ) {
        if !self.tracing(Verbosity::Summary) || self.failed() {
            return;
        }
        let task = self.exec.current_id();
        let mut trace = self.tracer.trace.borrow_mut();
        let store = &mut trace.store;
        let id = store.strings.intern_cached(self.tracer.epoch, cache, label);
        let mut c = Compact::new(store::code::WAIT, id);
        if let Some(h) = holder {
            c = c.with(store::code::HELD, h.as_u32());
        }
        store.push(self.step.get(), self.now.get(), task, c);
    }

    /// Records the spawn of `child` by `by` (summary): no string is built;
    /// the name and site are interned.
    pub(crate) fn record_spawn(
        &self,
        by: Option<TaskId>,
        child: TaskId,
        name: Option<&str>,
        site: Option<&'static Location<'static>>,
        host: Option<super::ext::Group>,
    ) {
        if !self.tracing(Verbosity::Summary) || self.failed() {
            return;
        }
        let host = host.map_or(u32::MAX, |h| self.host_string(h));
        let mut trace = self.tracer.trace.borrow_mut();
        let store = &mut trace.store;
        let name = name.map_or(u32::MAX, |n| store.strings.intern(n));
        let site = site.map_or(u32::MAX, |s| store.site_of(s));
        store.set_task(child, name, site, host);
        store.push(
            self.step.get(),
            self.now.get(),
            by,
            Compact::new(store::code::SPAWN, child.as_u32()),
        );
    }

    /// Records a network message event (full): its size and an interned
    /// route, no string built. Endpoints are (host index, port); `label`
    /// makes an endpoint's `host:port` the first time it is seen.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_net(
        &self,
        kind: store::NetKind,
        proto: &'static str,
        from: (u32, u16),
        to: (u32, u16),
        bytes: u32,
        reason: Option<&'static str>,
        label: impl Fn((u32, u16)) -> String,
    ) {
        if !self.tracing(Verbosity::Full) || self.failed() {
            return;
        }
        let task = self.exec.current_id();
        let mut trace = self.tracer.trace.borrow_mut();
        let store = &mut trace.store;
        let f = store.endpoint(from.0, from.1, || label(from));
        let t = store.endpoint(to.0, to.1, || label(to));
        let route = store.route(kind, proto, f, t, reason);
        let c = Compact::new(store::code::NET, bytes).with(store::code::ROUTE, route);
        store.push(self.step.get(), self.now.get(), task, c);
    }

    /// Names group `g` in the trace (the network names a host's group
    /// when it makes the host): the name is interned now, for the spawns
    /// on that group to cite.
    pub(crate) fn name_group(&self, g: super::ext::Group, name: &str) {
        if !self.tracing(Verbosity::Summary) || self.failed() {
            return;
        }
        let id = self.tracer.trace.borrow_mut().store.strings.intern(name);
        let mut hosts = self.tracer.hosts.borrow_mut();
        if hosts.len() <= g.index() {
            hosts.resize(g.index() + 1, u32::MAX);
        }
        hosts[g.index()] = id;
    }

    /// The interned name of group `h` (`u32::MAX` if unnamed).
    fn host_string(&self, h: super::ext::Group) -> u32 {
        self.tracer
            .hosts
            .borrow()
            .get(h.index())
            .copied()
            .unwrap_or(u32::MAX)
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
        self.has_failed.set(true);
    }

    pub(crate) fn warn(&self, failure: Failure) {
        self.warnings.borrow_mut().push(failure);
    }

    /// Whether the run has failed.
    #[inline]
    pub(crate) fn failed(&self) -> bool {
        self.has_failed.get()
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
            if self.consults_clock {
                if let Some(go_on) = self.maybe_move_early() {
                    if !go_on {
                        return None;
                    }
                    continue;
                }
            }
            match self.exec.step(self) {
                Step::Polled => {
                    if self.charges && !self.charge_poll() {
                        return None;
                    }
                }
                Step::Stop => return None,
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
                            self.layers_after_pending(super::executor::MAIN_KEY);
                            self.exec.end_main_step();
                            if self.charges && !self.charge_poll() {
                                return None;
                            }
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
        let leftover = self.exec.sched.borrow_mut().finish();
        if let Some(d) = leftover {
            self.diverged(d);
            return;
        }
        self.layers_main_finished();
        if self.failed() {
            return;
        }
        let leaked = self.exec.leaked();
        let sockets = self.layers_leaks();
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
        mut self,
        main: F,
        site: &'static Location<'static>,
    ) -> Outcome<F::Output> {
        panics::install_hook();
        let value = {
            let _enter = super::context::Enter::new(&self);
            if let Some(note) = &self.policy_note {
                if self.tracing(Verbosity::Summary) {
                    self.record_as(None, EventKind::Sched { what: note.clone() });
                }
            }
            self.exec.spawn_main(&self, site);
            self.layers_start();
            let mut main = std::pin::pin!(Some(main));
            let value = self.drive(main.as_mut(), site);
            // Drop what is left inside the context, so that `Drop` impls
            // that call lockstep (wakes, aborts, trace lines) still work.
            main.set(None);
            self.exec.teardown(&self);
            *self.timers.borrow_mut() = Timers::default();
            // Host factories and socket buffers may hold user values whose
            // `Drop` calls lockstep: drop them while the context is entered.
            self.layers_teardown();
            self.collect_foreign();
            value
        };
        if let Some(wd) = self.watchdog.take() {
            watchdog::recycle(wd);
        }
        self.exec.recycle();
        let stats = Stats {
            steps: self.step.get(),
            tasks_spawned: self.stats.spawned.get(),
            timers_fired: self.stats.timers_fired.get(),
            clock_jumps: self.stats.clock_jumps.get(),
            late_polls: self.stats.late_polls.get(),
            poll_time: Duration::from_nanos(self.stats.poll_time.get()),
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
        let schedule = self.exec.sched.borrow_mut().take_schedule();
        // Moved out, not taken: `take` would build (and later drop) an
        // empty trace in its place, a boxed store per run.
        let mut trace = self.tracer.trace.into_inner();
        if let Some(e) = trace.finish_stream() {
            eprintln!("lockstep: {e}");
        }
        Outcome::new(
            result,
            trace,
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
        .with_schedule(schedule)
    }
}
