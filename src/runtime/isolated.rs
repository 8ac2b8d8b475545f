//! Runs on a worker thread, so that a poll that never returns is a report.
//!
//! A future that loops inside one `poll` cannot be interrupted, and a thread
//! cannot be killed. What can be done is not to wait for it: the run goes to
//! a worker thread while the caller waits for either its outcome or a word
//! from the watchdog that one poll passed the watchdog limit. In the second
//! case the caller builds the [`Failure::BlockedPoll`] itself and leaves the
//! worker spinning. Each calling thread keeps one worker and reuses it run
//! after run (starting a thread per run would cost more than a small run
//! does); a worker left to a stuck run is replaced by a new one.
//!
//! The stuck run has no trace to hand over (it lives on the stuck thread,
//! mid-poll). Since a run is a function of its seed, the trace up to the
//! stuck step is recorded again: the same seed, traced, halted just before
//! that step (see `Halt`), on another worker, watched the same way. If that
//! run does not reach the step (a program that is not deterministic), the
//! trace is left empty rather than shown from a different run.

use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::outcome::{Outcome, Stats};
use super::sim::{Config, Halt};
use super::watchdog::{Handoff, StuckPoll};
use super::world::World;
use crate::check::{BlockedPollReport, Failure, RunPoint, Site, TaskInfo};
use crate::task::TaskId;
use crate::time::{Duration, Instant};
use crate::trace::{Trace, Verbosity};

enum Msg<T> {
    Done(Box<Outcome<T>>),
    Stuck(StuckPoll),
    /// The run function panicked outside any task.
    Panicked(Box<dyn std::any::Any + Send>),
}

/// Work for a worker thread.
type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// This thread's worker: reused run after run (a thread per run would
    /// cost more than a small run), replaced once a run on it got stuck.
    static WORKER: RefCell<Option<mpsc::Sender<Job>>> = const { RefCell::new(None) };
}

/// Hands `job` to this thread's worker, starting one if there is none.
fn submit(job: Job) {
    WORKER.with(|w| {
        let mut w = w.borrow_mut();
        let job = match w.as_ref() {
            Some(worker) => match worker.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        // The worker carries the caller's thread name (libtest names a
        // test's thread after the test), so panics and thread names read
        // the same.
        let name = std::thread::current()
            .name()
            .unwrap_or("lockstep-run")
            .to_string();
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("lockstep could not start a worker thread for an isolated run");
        tx.send(job)
            .expect("a worker just started takes its first job");
        *w = Some(tx);
    });
}

/// Leaves this thread's worker to its stuck run; the next run starts a
/// new one.
fn abandon_worker() {
    WORKER.with(|w| w.borrow_mut().take());
}

/// How one isolated run is made: given the simulation (settings plus the
/// watchdog's hand-off), run it once and return the outcome.
pub(crate) type RunFn<T> = Arc<dyn Fn(&Config) -> Outcome<T> + Send + Sync>;

/// Runs `make()`'s future in a simulation of `config` on a worker thread;
/// with `check`, runs it twice and compares (as `Sim::check_determinism`).
pub(crate) fn run<M, F>(
    config: &Config,
    make: Arc<M>,
    check: bool,
    site: &'static Location<'static>,
) -> Outcome<F::Output>
where
    M: Fn() -> F + Send + Sync + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    isolate(config, run_fn(make, check, site))
}

/// How [`run`] runs `make()`'s future in a given simulation.
pub(crate) fn run_fn<M, F>(
    make: Arc<M>,
    check: bool,
    site: &'static Location<'static>,
) -> RunFn<F::Output>
where
    M: Fn() -> F + Send + Sync + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    Arc::new(move |config: &Config| {
        if check {
            super::determinism::check(config, || make(), site)
        } else {
            World::new(config, false).run(make(), site)
        }
    })
}

/// Runs `run` once for each of `configs`, in order, on this thread's
/// worker, and returns the first outcome that `stop` keeps, with its index
/// (`None`: `stop` kept none). Each run is watched as under [`isolate`], and
/// a poll that never returns ends the batch with that run's
/// `BlockedPoll`. One hand-off per batch instead of one per run: a small
/// simulation costs less than the two thread switches of a hand-off, so a
/// sweep of many seeds hands them over in batches.
pub(crate) fn isolate_first<T: Send + 'static>(
    configs: Vec<Config>,
    run: RunFn<T>,
    stop: fn(&Outcome<T>) -> bool,
) -> Option<(usize, Outcome<T>)> {
    // `None`: every run passed `stop` by.
    let (tx, rx) = mpsc::channel::<Option<(usize, Msg<T>)>>();
    // One hand-off for the batch, which reads the index of the run under
    // way: nothing is allocated or cloned per run, and the worker reads
    // the configurations the caller keeps (for a stuck run's replay).
    let running = Arc::new(AtomicUsize::new(0));
    let handoff = {
        let (running, stuck_tx) = (running.clone(), tx.clone());
        Handoff(Arc::new(move |s| {
            let i = running.load(Ordering::Acquire);
            let _ = stuck_tx.send(Some((i, Msg::Stuck(s))));
        }))
    };
    let mut configs = configs;
    for config in &mut configs {
        config.handoff = Some(handoff.clone());
    }
    let configs = Arc::new(configs);
    let batch = configs.clone();
    let worker_run = run.clone();
    submit(Box::new(move || {
        for (i, config) in batch.iter().enumerate() {
            running.store(i, Ordering::Release);
            match std::panic::catch_unwind(AssertUnwindSafe(|| worker_run(config))) {
                Ok(outcome) if stop(&outcome) => {
                    let _ = tx.send(Some((i, Msg::Done(Box::new(outcome)))));
                    return;
                }
                Ok(_) => {}
                Err(payload) => {
                    let _ = tx.send(Some((i, Msg::Panicked(payload))));
                    return;
                }
            }
        }
        let _ = tx.send(None);
    }));
    match rx.recv() {
        Ok(None) => None,
        Ok(Some((i, Msg::Done(outcome)))) => Some((i, *outcome)),
        Ok(Some((i, Msg::Stuck(stuck)))) => {
            abandon_worker();
            Some((i, stuck_outcome(&configs[i], run, stuck)))
        }
        Ok(Some((_, Msg::Panicked(payload)))) => std::panic::resume_unwind(payload),
        Err(mpsc::RecvError) => {
            abandon_worker();
            panic!("lockstep: an isolated run's worker thread ended without an outcome")
        }
    }
}

/// Runs `run` on a worker thread, watched: the outcome, or a
/// `BlockedPoll` failure with the trace up to the stuck step.
pub(crate) fn isolate<T: Send + 'static>(config: &Config, run: RunFn<T>) -> Outcome<T> {
    match on_worker(config.clone(), run.clone()) {
        Ok(outcome) => outcome,
        Err(stuck) => stuck_outcome(config, run, stuck),
    }
}

/// The outcome of a run of `config` whose poll never returned: a
/// `BlockedPoll` failure with the trace up to the stuck step.
fn stuck_outcome<T: Send + 'static>(
    config: &Config,
    run: RunFn<T>,
    stuck: StuckPoll,
) -> Outcome<T> {
    let failure = Failure::BlockedPoll(BlockedPollReport {
        task: TaskInfo {
            id: TaskId(stuck.task),
            name: stuck.name.as_deref().map(str::to_string),
            spawned_at: stuck.site.map_or(
                Site {
                    file: "an unknown site".into(),
                    line: 0,
                    column: 0,
                },
                Site::from_location,
            ),
        },
        wall_time: stuck.stuck_for,
        threshold: stuck.limit,
        returned: false,
        at: RunPoint {
            seed: config.seed,
            time: Instant::from_nanos(stuck.vtime),
            step: stuck.step,
        },
    });
    // The trace up to the stuck step, from a second run of the seed.
    let mut replay = config.clone();
    replay.verbosity = Verbosity::Full;
    replay.halt = Some(Halt {
        step: stuck.step,
        failure: failure.clone(),
    });
    if let Ok(outcome) = on_worker(replay, run) {
        let halted = matches!(
            outcome.failure(),
            Some(Failure::BlockedPoll(r)) if !r.returned && r.at.step == stuck.step
        );
        if halted {
            return outcome;
        }
    }
    let stats = Stats {
        steps: stuck.step,
        virtual_time: Duration::from_nanos(stuck.vtime),
        ..Stats::default()
    };
    Outcome::new(
        Err(failure),
        Trace::default(),
        stats,
        config.seed,
        0,
        Vec::new(),
        None,
    )
}

/// One run on this thread's worker: its outcome, or the stuck poll the
/// watchdog found.
fn on_worker<T: Send + 'static>(
    mut config: Config,
    run: RunFn<T>,
) -> Result<Outcome<T>, StuckPoll> {
    let (tx, rx) = mpsc::channel::<Msg<T>>();
    let stuck_tx = tx.clone();
    config.handoff = Some(Handoff(Arc::new(move |s| {
        let _ = stuck_tx.send(Msg::Stuck(s));
    })));
    submit(Box::new(move || {
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| run(&config)));
        let _ = tx.send(match ran {
            Ok(outcome) => Msg::Done(Box::new(outcome)),
            Err(payload) => Msg::Panicked(payload),
        });
    }));
    match rx.recv() {
        Ok(Msg::Done(outcome)) => Ok(*outcome),
        Ok(Msg::Stuck(stuck)) => {
            abandon_worker();
            Err(stuck)
        }
        // The run function (or lockstep) panicked outside any task: pass
        // the panic on to the caller.
        Ok(Msg::Panicked(payload)) => std::panic::resume_unwind(payload),
        Err(mpsc::RecvError) => {
            abandon_worker();
            panic!("lockstep: an isolated run's worker thread ended without an outcome")
        }
    }
}
