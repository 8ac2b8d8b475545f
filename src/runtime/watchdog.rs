//! The wall-clock watchdog: a poll that blocks the executor becomes a report,
//! and a poll that never returns must not hang CI.
//!
//! No executor can interrupt a future that loops inside one `poll`. What
//! lockstep can do is notice, and say which seed, which task and which spawn
//! site. Two limits, both wall time of one poll:
//!
//! - the *blocked-poll threshold* (`SimBuilder::blocked_poll`, default 1 s):
//!   a poll that took longer fails its run with
//!   [`Failure::BlockedPoll`](crate::Failure::BlockedPoll) as soon as it
//!   returns. A blocking call in a task (`std::thread::sleep`, blocking I/O,
//!   a long computation) stops every other task, which a simulation with a
//!   virtual clock would otherwise hide completely.
//! - the *watchdog limit* (`SimBuilder::watchdog`, default 5 s): a poll still
//!   running after it is taken to never return. A run started with
//!   [`Sim::run_isolated`](crate::Sim::run_isolated) (every `#[sim_test]`
//!   seed) runs on a worker thread, and the caller is handed a
//!   `Failure::BlockedPoll` with `returned: false` at once; the stuck worker
//!   thread cannot be stopped and keeps spinning until the process exits. A
//!   run on the caller's own thread ([`Sim::run`](crate::Sim::run)) has
//!   nobody to hand a report to: as a last resort the watchdog prints the
//!   report on stderr and aborts the process, so that CI fails loudly
//!   instead of hanging.
//!
//! Each run with a limit owns a [`Slot`] of atomics. Around every poll the
//! simulation thread bumps a counter (odd while inside a poll) and stores
//! the task id, spawn site, step and virtual time: plain stores, no locking,
//! no clock read. One process-wide watchdog thread, started on first use,
//! looks at every live slot many times a second; a counter that stayed odd
//! and unchanged is one poll that has not returned. Past the threshold the
//! watchdog marks that very poll (by its counter value) as blocked; when the
//! poll returns, the simulation thread sees the mark with one atomic load
//! and fails the run. The watchdog never touches the simulation's state, so
//! it cannot influence a run: only whether a run that blocked is reported.
//!
//! Task names cross threads only for named tasks, through a small map
//! updated at spawn and finish (not per poll).

use std::collections::BTreeMap;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::{Duration, Instant as WallInstant};

use super::Seed;

/// Where a run that is handed back on a stuck poll sends the news.
#[derive(Clone)]
pub(crate) struct Handoff(pub(crate) Arc<dyn Fn(StuckPoll) + Send + Sync>);

impl fmt::Debug for Handoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handoff")
    }
}

/// A poll that did not return within the watchdog limit.
#[derive(Clone, Debug)]
pub(crate) struct StuckPoll {
    pub(crate) task: u32,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) site: Option<&'static Location<'static>>,
    /// The step whose poll is stuck.
    pub(crate) step: u64,
    pub(crate) vtime: u64,
    pub(crate) stuck_for: Duration,
    pub(crate) limit: Duration,
}

pub(crate) struct Slot {
    /// The run's settings: they change when the slot is reused by the
    /// next run on the same thread.
    settings: Mutex<Settings>,
    /// Bumped around every poll; never reset, so a counter value names one
    /// poll even across the runs that reuse the slot.
    polls: AtomicU64,
    task: AtomicU32,
    site: AtomicPtr<Location<'static>>,
    vtime: AtomicU64,
    step: AtomicU64,
    /// The counter value of the poll found blocked (`u64::MAX`: none).
    blocked: AtomicU64,
    /// When the watchdog first saw the blocked poll running.
    blocked_since: Mutex<Option<WallInstant>>,
    done: AtomicBool,
    /// Handed back to the caller: the watchdog looks no more.
    abandoned: AtomicBool,
    names: Mutex<BTreeMap<u32, Arc<str>>>,
}

/// What a slot watches for, set per run.
struct Settings {
    seed: Seed,
    /// A poll running this long never returns.
    limit: Option<Duration>,
    /// A poll running this long blocked the executor.
    threshold: Option<Duration>,
    handoff: Option<Handoff>,
}

impl Slot {
    /// A poll starts (simulation thread only).
    #[inline]
    pub(crate) fn enter(&self, task: u32, site: &'static Location<'static>, vtime: u64, step: u64) {
        self.task.store(task, Ordering::Relaxed);
        self.site.store(
            site as *const Location<'static> as *mut _,
            Ordering::Relaxed,
        );
        self.vtime.store(vtime, Ordering::Relaxed);
        self.step.store(step, Ordering::Relaxed);
        let n = self.polls.load(Ordering::Relaxed);
        self.polls.store(n.wrapping_add(1), Ordering::Release);
    }

    /// The poll returned. Returns how long it ran (at least) if the
    /// watchdog found it blocked.
    #[inline]
    pub(crate) fn exit(&self) -> Option<Duration> {
        let n = self.polls.load(Ordering::Relaxed);
        self.polls.store(n.wrapping_add(1), Ordering::Release);
        if self.blocked.load(Ordering::Acquire) == n {
            return Some(self.blocked_for());
        }
        None
    }

    #[cold]
    fn blocked_for(&self) -> Duration {
        self.blocked_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map_or(Duration::ZERO, |since| since.elapsed())
    }

    fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The blocked-poll threshold.
    pub(crate) fn threshold(&self) -> Duration {
        self.settings().threshold.unwrap_or(Duration::MAX)
    }

    pub(crate) fn name_task(&self, task: u32, name: Arc<str>) {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task, name);
    }

    pub(crate) fn forget_task(&self, task: u32) {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&task);
    }

    pub(crate) fn finish(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    fn stuck(&self, stuck_for: Duration, limit: Duration) -> StuckPoll {
        let task = self.task.load(Ordering::Relaxed);
        let site = self.site.load(Ordering::Relaxed);
        // SAFETY: `site` only ever holds null or a pointer made from a
        // `&'static Location<'static>` in `enter`, which is valid forever.
        let site = unsafe { site.as_ref() };
        let name = self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&task)
            .cloned();
        StuckPoll {
            task,
            name: if task == 0 {
                Some(Arc::from("main"))
            } else {
                name
            },
            site,
            step: self.step.load(Ordering::Relaxed),
            vtime: self.vtime.load(Ordering::Relaxed),
            stuck_for,
            limit,
        }
    }

    fn report(&self, s: &StuckPoll) -> String {
        let who = match &s.name {
            Some(n) => format!("#{} {n}", s.task),
            None => format!("#{}", s.task),
        };
        let site = s.site.map_or("an unknown site".to_string(), |l| {
            format!("{}:{}", l.file(), l.line())
        });
        format!(
            "lockstep watchdog: task {who} (spawned at {site}) has been inside one poll for \
             {:.1}s of wall time (limit {:.1}s).\n  seed {seed}, virtual time {}, step {}\n  A poll \
             that never returns (a busy loop without an .await, a blocking call, a real \
             std::thread::sleep) cannot be interrupted, and this run was started on the \
             caller's thread (`Sim::run`), so there is nobody to hand a report to: the \
             process is aborted. `Sim::run_isolated` (which #[sim_test] uses) reports such a \
             seed as a failure instead. Replay the seed to reproduce; disable the watchdog \
             with `SimBuilder::watchdog(None)` when debugging under a debugger.",
            s.stuck_for.as_secs_f64(),
            s.limit.as_secs_f64(),
            crate::time::Instant::from_nanos(s.vtime),
            s.step,
            seed = self.settings().seed,
        )
    }
}

static REGISTRY: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());
static START: Once = Once::new();

thread_local! {
    /// The slot of the last run on this thread that ended, kept for the
    /// next one: a fresh run then neither allocates a slot nor takes the
    /// process-wide registry's lock (which threads running seeds in
    /// parallel would contend for).
    static SPARE: std::cell::Cell<Option<Arc<Slot>>> = const { std::cell::Cell::new(None) };
}

/// The slowest the watchdog looks; it looks faster for small limits.
const MAX_TICK: Duration = Duration::from_millis(50);
const MIN_TICK: Duration = Duration::from_millis(2);

/// A slot for a new run, watched until the run drops it.
pub(crate) fn register(
    seed: Seed,
    limit: Option<Duration>,
    threshold: Option<Duration>,
    handoff: Option<Handoff>,
) -> Arc<Slot> {
    let settings = Settings {
        seed,
        limit,
        threshold,
        handoff,
    };
    if let Some(slot) = SPARE.try_with(|s| s.take()).ok().flatten() {
        // Between two runs: not inside a poll (the counter is even), so
        // the watchdog ignores the slot while it is reset.
        *slot.settings() = settings;
        slot.names.lock().unwrap_or_else(|e| e.into_inner()).clear();
        *slot.blocked_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        slot.blocked.store(u64::MAX, Ordering::Release);
        slot.done.store(false, Ordering::Relaxed);
        return slot;
    }
    START.call_once(|| {
        std::thread::Builder::new()
            .name("lockstep-watchdog".into())
            .spawn(watch)
            .expect("lockstep could not start its watchdog thread");
    });
    let slot = Arc::new(Slot {
        settings: Mutex::new(settings),
        polls: AtomicU64::new(0),
        task: AtomicU32::new(0),
        site: AtomicPtr::new(std::ptr::null_mut()),
        vtime: AtomicU64::new(0),
        step: AtomicU64::new(0),
        blocked: AtomicU64::new(u64::MAX),
        blocked_since: Mutex::new(None),
        done: AtomicBool::new(false),
        abandoned: AtomicBool::new(false),
        names: Mutex::new(BTreeMap::new()),
    });
    REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(&slot));
    slot
}

/// The run of `slot` ended on this thread: keep the slot for the next run
/// here, unless something else still holds it or it was handed back on a
/// stuck poll.
pub(crate) fn recycle(slot: Arc<Slot>) {
    slot.finish();
    if Arc::strong_count(&slot) == 1 && !slot.abandoned.load(Ordering::Relaxed) {
        let _ = SPARE.try_with(|s| s.set(Some(slot)));
    }
}

fn watch() {
    // Per watched slot: the counter last seen, and since when.
    let mut seen: Vec<(Weak<Slot>, u64, WallInstant)> = Vec::new();
    let mut tick = MAX_TICK;
    loop {
        std::thread::sleep(tick);
        let now = WallInstant::now();
        {
            let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
            reg.retain(|w| w.strong_count() > 0);
            for w in reg.iter() {
                if !seen.iter().any(|(s, _, _)| Weak::ptr_eq(s, w)) {
                    seen.push((w.clone(), u64::MAX, now));
                }
            }
        }
        seen.retain(|(w, _, _)| w.strong_count() > 0);
        tick = MAX_TICK;
        for (w, last, since) in seen.iter_mut() {
            let Some(slot) = w.upgrade() else { continue };
            let (threshold, limit, handoff) = {
                let s = slot.settings();
                (s.threshold, s.limit, s.handoff.clone())
            };
            for limit in [threshold, limit].into_iter().flatten() {
                tick = tick.min(limit / 5).max(MIN_TICK);
            }
            let polls = slot.polls.load(Ordering::Acquire);
            if polls != *last {
                *last = polls;
                *since = now;
                continue;
            }
            let in_poll = polls % 2 == 1;
            if !in_poll
                || slot.done.load(Ordering::Relaxed)
                || slot.abandoned.load(Ordering::Relaxed)
            {
                continue;
            }
            let stuck_for = now.duration_since(*since);
            if threshold.is_some_and(|t| stuck_for >= t)
                && slot.blocked.load(Ordering::Relaxed) != polls
            {
                *slot.blocked_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(*since);
                slot.blocked.store(polls, Ordering::Release);
            }
            let Some(limit) = limit.filter(|l| stuck_for >= *l) else {
                continue;
            };
            let stuck = slot.stuck(stuck_for, limit);
            match &handoff {
                Some(handoff) => {
                    slot.abandoned.store(true, Ordering::Relaxed);
                    (handoff.0)(stuck);
                }
                None => {
                    eprintln!("{}", slot.report(&stuck));
                    std::process::abort();
                }
            }
        }
    }
}
