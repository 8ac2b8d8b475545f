//! Runs on a worker thread, so that a poll that never returns is a report.
//!
//! A future that loops inside one `poll` cannot be interrupted, and a thread
//! cannot be killed. What can be done is not to wait for it: the run goes to
//! a fresh worker thread while the caller waits for either its outcome or a
//! word from the watchdog that one poll passed the watchdog limit. In the
//! second case the caller builds the [`Failure::BlockedPoll`] itself and
//! leaves the worker spinning.
//!
//! The stuck run has no trace to hand over (it lives on the stuck thread,
//! mid-poll). Since a run is a function of its seed, the trace up to the
//! stuck step is recorded again: the same seed, traced, halted just before
//! that step (see `Halt`), on another worker, watched the same way. If that
//! run does not reach the step (a program that is not deterministic), the
//! trace is left empty rather than shown from a different run.

use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::sync::mpsc;

use super::outcome::{Outcome, Stats};
use super::sim::{Config, Halt, Sim};
use super::watchdog::{Handoff, StuckPoll};
use super::world::World;
use crate::check::{BlockedPollReport, Failure, RunPoint, Site, TaskInfo};
use crate::task::TaskId;
use crate::time::{Duration, Instant};
use crate::trace::{Trace, Verbosity};

enum Msg<T> {
    Done(Box<Outcome<T>>),
    Stuck(StuckPoll),
}

/// How one isolated run is made: given the simulation (settings plus the
/// watchdog's hand-off), run it once and return the outcome.
pub(crate) type RunFn<T> = Arc<dyn Fn(&Sim) -> Outcome<T> + Send + Sync>;

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
    isolate(
        config,
        Arc::new(move |sim: &Sim| {
            if check {
                super::determinism::check(&sim.config, || make(), site)
            } else {
                World::new(&sim.config, false).run(make(), site)
            }
        }),
    )
}

/// Runs `run` on a worker thread, watched: the outcome, or a
/// `BlockedPoll` failure with the trace up to the stuck step.
pub(crate) fn isolate<T: Send + 'static>(config: &Config, run: RunFn<T>) -> Outcome<T> {
    let stuck = match on_worker(config.clone(), run.clone()) {
        Ok(outcome) => return outcome,
        Err(stuck) => stuck,
    };
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

/// One run on a fresh worker thread: its outcome, or the stuck poll the
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
    // The worker carries the caller's thread name (libtest names a test's
    // thread after the test), so panics and thread names read the same.
    let name = std::thread::current()
        .name()
        .unwrap_or("lockstep-run")
        .to_string();
    let worker = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let outcome = run(&Sim { config });
            let _ = tx.send(Msg::Done(Box::new(outcome)));
        })
        .expect("lockstep could not start a worker thread for an isolated run");
    match rx.recv() {
        Ok(Msg::Done(outcome)) => {
            let _ = worker.join();
            Ok(*outcome)
        }
        Ok(Msg::Stuck(stuck)) => Err(stuck),
        // The worker ended without an outcome: the run function (or
        // lockstep) panicked outside any task. Pass the panic on.
        Err(mpsc::RecvError) => match worker.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("an isolated run's worker sends its outcome before ending"),
        },
    }
}
