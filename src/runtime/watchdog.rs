//! The wall-clock watchdog: a poll that never returns must not hang CI.
//!
//! No executor can interrupt a future that loops inside one `poll`. What
//! lockstep can do is notice, and say which seed, which task and which spawn
//! site, before the process is killed by a CI timeout that says nothing.
//!
//! Each run with the watchdog on owns a [`Slot`] of atomics. Around every
//! poll the simulation thread bumps a counter (odd while inside a poll) and
//! stores the task id, spawn site and virtual time: plain stores, no
//! locking. One process-wide watchdog thread, started on first use, looks
//! at every live slot a few times a second; a slot whose counter stayed odd
//! and unchanged for longer than its limit gets a report on stderr, and the
//! process aborts. The watchdog never touches the simulation's state, so it
//! cannot influence a run.
//!
//! Task names cross threads only for named tasks, through a small map
//! updated at spawn and finish (not per poll).

use std::collections::BTreeMap;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::{Duration, Instant as WallInstant};

use super::Seed;

pub(crate) struct Slot {
    seed: Seed,
    limit: Duration,
    polls: AtomicU64,
    task: AtomicU32,
    site: AtomicPtr<Location<'static>>,
    vtime: AtomicU64,
    done: AtomicBool,
    names: Mutex<BTreeMap<u32, Arc<str>>>,
}

impl Slot {
    /// A poll starts (simulation thread only).
    #[inline]
    pub(crate) fn enter(&self, task: u32, site: &'static Location<'static>, vtime: u64) {
        self.task.store(task, Ordering::Relaxed);
        self.site.store(
            site as *const Location<'static> as *mut _,
            Ordering::Relaxed,
        );
        self.vtime.store(vtime, Ordering::Relaxed);
        let n = self.polls.load(Ordering::Relaxed);
        self.polls.store(n.wrapping_add(1), Ordering::Release);
    }

    /// The poll returned.
    #[inline]
    pub(crate) fn exit(&self) {
        let n = self.polls.load(Ordering::Relaxed);
        self.polls.store(n.wrapping_add(1), Ordering::Release);
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

    fn report(&self, stuck_for: Duration) -> String {
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
        let who = match (&name, task) {
            (_, 0) => "#0 main".to_string(),
            (Some(n), _) => format!("#{task} {n}"),
            (None, _) => format!("#{task}"),
        };
        let site = site.map_or("an unknown site".to_string(), |l| {
            format!("{}:{}", l.file(), l.line())
        });
        format!(
            "lockstep watchdog: task {who} (spawned at {site}) has been inside one poll for \
             {:.1}s of wall time (limit {:.1}s).\n  seed {}, virtual time {}\n  A poll that \
             never returns (a busy loop without an .await, a blocking call, a real \
             std::thread::sleep) cannot be interrupted, so the process is aborted. Replay the \
             seed to reproduce; disable the watchdog with `SimBuilder::watchdog(None)` when \
             debugging under a debugger.",
            stuck_for.as_secs_f64(),
            self.limit.as_secs_f64(),
            self.seed,
            crate::time::Instant::from_nanos(self.vtime.load(Ordering::Relaxed)),
        )
    }
}

static REGISTRY: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());
static START: Once = Once::new();

/// How often the watchdog looks.
const TICK: Duration = Duration::from_millis(50);

/// A slot for a new run, watched until the run drops it.
pub(crate) fn register(seed: Seed, limit: Duration) -> Arc<Slot> {
    START.call_once(|| {
        std::thread::Builder::new()
            .name("lockstep-watchdog".into())
            .spawn(watch)
            .expect("lockstep could not start its watchdog thread");
    });
    let slot = Arc::new(Slot {
        seed,
        limit,
        polls: AtomicU64::new(0),
        task: AtomicU32::new(0),
        site: AtomicPtr::new(std::ptr::null_mut()),
        vtime: AtomicU64::new(0),
        done: AtomicBool::new(false),
        names: Mutex::new(BTreeMap::new()),
    });
    REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(&slot));
    slot
}

fn watch() {
    // Per watched slot: the counter last seen, and since when.
    let mut seen: Vec<(Weak<Slot>, u64, WallInstant)> = Vec::new();
    loop {
        std::thread::sleep(TICK);
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
        for (w, last, since) in seen.iter_mut() {
            let Some(slot) = w.upgrade() else { continue };
            let polls = slot.polls.load(Ordering::Acquire);
            if polls != *last {
                *last = polls;
                *since = now;
                continue;
            }
            let in_poll = polls % 2 == 1;
            let stuck_for = now.duration_since(*since);
            if in_poll && !slot.done.load(Ordering::Relaxed) && stuck_for >= slot.limit {
                eprintln!("{}", slot.report(stuck_for));
                std::process::abort();
            }
        }
    }
}
