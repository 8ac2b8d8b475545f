//! The test harness behind `#[sim_test]`.
//!
//! The macro expands a test into `SimTest::new(meta).<options>.run(body)`.
//! `run` decides which seeds to try (the attribute's `seed`/`seeds`, the
//! `LOCKSTEP_*` variables of [`env`]), runs them (on `LOCKSTEP_JOBS`
//! threads, see [`jobs`]; the first failing seed does not depend on how
//! many), and stops at the first failing seed with a report that ends in
//! the command replaying it ([`report`]) and the failure bundle that
//! `lockstep replay` reruns ([`bundle`]).
//!
//! Speed and faithfulness at once: the seeds are explored with tracing off
//! (the determinism hash is still kept); a failing seed is then run again
//! with full tracing to produce its trace, and the two runs' hashes must
//! match, so the trace shown is the trace of the run that failed, and a
//! seed that does not replay is reported as non-determinism instead.
//!
//! Every failing seed's report shows the run's recorded schedule (which
//! ready task ran at each step, early clock moves, draws) and the command
//! that follows it exactly (`LOCKSTEP_SCHEDULE=…`); its bundle keeps it in
//! `schedule.txt`, and `lockstep shrink <bundle>` reruns the test with
//! `LOCKSTEP_SHRINK=1` to report the run of a minimal interleaving.
//!
//! Each seed runs on a worker thread ([`Sim::run_isolated`]): a poll that
//! never returns fails that seed with a report (and its trace up to the
//! stuck step) instead of aborting the test binary, so the other tests in
//! it go on. Thread-locals a test uses are the worker's (one per thread that
//! runs seeds, reused from seed to seed, replaced after a stuck seed).
//!
//! Seeds are `base, base+1, …, base+n-1`, with `base` 0 unless
//! `LOCKSTEP_SEED_BASE` says otherwise: the same seeds on every run, so CI
//! is reproducible, and a nightly job can explore fresh ones.

use std::future::Future;
use std::sync::Arc;

use crate::check::{BlockedPollReport, Failure};
use crate::runtime::{Outcome, Policy, Seed, Sim, SimBuilder};
use crate::time::Duration;
use crate::trace::Verbosity;

pub(crate) mod bundle;
pub(crate) mod env;
pub(crate) mod jobs;
pub(crate) mod perfetto;
pub(crate) mod report;
pub(crate) mod snapshot;

use report::Cause;

/// A test body's future as a simulation's main future: its output as a
/// test result.
async fn as_test_result<Fut>(fut: Fut) -> Result<(), String>
where
    Fut: Future,
    Fut::Output: TestOutput,
{
    fut.await.into_test_result()
}

/// Seeds handed to a worker thread at a time, for `n` seeds on `jobs`
/// threads. A hand-off costs two thread wake-ups, which on a virtual
/// machine take longer than a small simulation: W6b (20,000 ten-task
/// seeds on one thread) runs 343k seeds/s in batches of 64, 396k/s in
/// batches of 512 and 404–414k/s in batches of 1,024 (medians of 9,
/// alternating). One thread takes large batches (bounded: a batch holds
/// one configuration per seed); several take at least eight batches each
/// (so that `LOCKSTEP_JOBS=2` still splits the default 100 seeds).
fn seed_batch(n: usize, jobs: usize) -> usize {
    if jobs <= 1 {
        1024
    } else {
        n.div_ceil(jobs * 8).clamp(16, 512)
    }
}

/// Seeds a `#[sim_test]` runs when nothing says otherwise.
pub(crate) const DEFAULT_SEEDS: u64 = 100;

/// What the macro knows about the test it expanded.
#[derive(Debug, Clone, Copy)]
pub struct TestMeta {
    /// The function's name.
    pub name: &'static str,
    /// `module_path!()` inside the test function.
    pub module_path: &'static str,
    /// `file!()` of the test.
    pub file: &'static str,
    /// `CARGO_PKG_NAME` of the test's package.
    pub package: &'static str,
    /// `CARGO_CRATE_NAME` of the test's crate.
    pub crate_name: &'static str,
    /// Whether the test carries `#[ignore]`.
    pub ignored: bool,
}

/// What a test body may return: `()` or `Result<(), E: Debug>`.
#[diagnostic::on_unimplemented(
    message = "a #[sim_test] function returns `()` or `Result<(), E>` with `E: Debug`, not `{Self}`",
    label = "this is the test's return type"
)]
pub trait TestOutput {
    /// `Err` with the error's `Debug` text if the test failed.
    fn into_test_result(self) -> Result<(), String>;
}

impl TestOutput for () {
    fn into_test_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Debug> TestOutput for Result<(), E> {
    fn into_test_result(self) -> Result<(), String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// One `#[sim_test]`: its settings, then [`SimTest::run`].
#[must_use = "a SimTest does nothing until `run` is called"]
pub struct SimTest {
    meta: TestMeta,
    builder: SimBuilder,
    seed: Option<Seed>,
    seeds: Option<u64>,
    check_determinism: bool,
    /// Whether the poll cost was set (else the default policy's own).
    poll_cost_set: bool,
}

impl SimTest {
    /// The policy a test runs under unless it names one:
    /// [`Policy::EXPLORE`], the mix that finds the corpus's bugs in the
    /// fewest seeds (uniform random or PCT scheduling per seed, late polls,
    /// a swarm configuration), but without its poll cost.
    ///
    /// A poll cost moves the clock on every poll, so every virtual time a
    /// test reads gains a seeded remainder: an exact assertion such as
    /// `assert_eq!(start.elapsed(), Duration::from_secs(3))`, which is
    /// right for a program whose only waits are its timers, would fail for
    /// reasons that are not bugs. Late polls keep that exact: a task its
    /// own timer wakes, and a task not yet polled, always run before the
    /// clock moves; only a task woken by an event (a message, a notify, a
    /// lock) may run after the clock has reached a later timer, as on a
    /// loaded executor. A test they fail read the clock, or decided, after
    /// such a wake, assuming no time passed before it ran.
    /// `policy = "mix"` (or any policy named in the attribute) turns the
    /// mix's poll cost back on; `policy = "random"` is the uniform
    /// scheduler alone.
    pub const DEFAULT_POLICY: Policy = Policy::EXPLORE;

    /// A test with default settings.
    pub fn new(meta: TestMeta) -> SimTest {
        SimTest {
            meta,
            builder: Sim::builder()
                .policy(Self::DEFAULT_POLICY)
                .poll_cost(crate::explore::PollCost::OFF),
            seed: None,
            seeds: None,
            check_determinism: false,
            poll_cost_set: false,
        }
    }

    /// Runs only this seed.
    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Runs this many seeds.
    pub fn seeds(mut self, n: u64) -> Self {
        self.seeds = Some(n);
        self
    }

    /// See [`SimBuilder::max_virtual_time`].
    pub fn max_virtual_time(mut self, limit: Duration) -> Self {
        self.builder = self.builder.max_virtual_time(limit);
        self
    }

    /// See [`SimBuilder::max_steps`].
    pub fn max_steps(mut self, steps: u64) -> Self {
        self.builder = self.builder.max_steps(steps);
        self
    }

    /// See [`SimBuilder::livelock_steps`].
    pub fn livelock_steps(mut self, steps: u64) -> Self {
        self.builder = self.builder.livelock_steps(steps);
        self
    }

    /// See [`SimBuilder::blocked_poll`].
    pub fn blocked_poll(mut self, threshold: Option<Duration>) -> Self {
        self.builder = self.builder.blocked_poll(threshold);
        self
    }

    /// See [`SimBuilder::watchdog`].
    pub fn watchdog(mut self, limit: Option<Duration>) -> Self {
        self.builder = self.builder.watchdog(limit);
        self
    }

    /// See [`SimBuilder::policy`]. A policy named here runs as it is,
    /// poll cost included where it draws one (see
    /// [`DEFAULT_POLICY`](Self::DEFAULT_POLICY)).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.builder = self.builder.policy(policy);
        if !self.poll_cost_set {
            self.builder.config.poll_cost = None;
        }
        self
    }

    /// See [`SimBuilder::late_polls`].
    pub fn late_polls(mut self, late: crate::explore::LatePolls) -> Self {
        self.builder = self.builder.late_polls(late);
        self
    }

    /// See [`SimBuilder::poll_cost`].
    pub fn poll_cost(mut self, cost: crate::explore::PollCost) -> Self {
        self.builder = self.builder.poll_cost(cost);
        self.poll_cost_set = true;
        self
    }

    /// See [`SimBuilder::faults`]: the plan is applied in every seed's run
    /// (a [`FaultPlan::random`](crate::fault::FaultPlan::random) plan is
    /// drawn from each seed).
    pub fn faults(mut self, plan: crate::fault::FaultPlan) -> Self {
        self.builder = self.builder.faults(plan);
        self
    }

    /// Runs every seed twice and fails on any difference.
    pub fn check_determinism(mut self, on: bool) -> Self {
        self.check_determinism = on;
        self
    }

    /// Runs the test once per builder, in order, in one batch on a worker
    /// thread (see `runtime::isolated::isolate_first`): a poll that never
    /// returns fails that run (and this test) with a report, and the other
    /// tests of the binary go on. Returns the first outcome `stop` keeps.
    fn runs<F, Fut>(
        &self,
        configs: Vec<crate::runtime::Config>,
        body: &Arc<F>,
        stop: fn(&Outcome<Result<(), String>>) -> bool,
    ) -> Option<(usize, Outcome<Result<(), String>>)>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: TestOutput,
    {
        let body = body.clone();
        let make = move || as_test_result(body());
        let run = crate::runtime::isolated::run_fn(
            Arc::new(make),
            self.check_determinism,
            std::panic::Location::caller(),
        );
        crate::runtime::isolated::isolate_first(configs, run, stop)
    }

    /// The first of `seeds` whose run fails, with its index.
    fn first_failing<F, Fut>(
        &self,
        seeds: &[Seed],
        verbosity: Verbosity,
        body: &Arc<F>,
    ) -> Option<(usize, Outcome<Result<(), String>>)>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: TestOutput,
    {
        // The configurations themselves, not builders: a builder method
        // moves the whole configuration, and a sweep makes one per seed.
        let configs = seeds
            .iter()
            .map(|&seed| {
                let mut config = self.builder.config.clone();
                config.seed = seed;
                config.verbosity = verbosity;
                config
            })
            .collect();
        self.runs(configs, body, |outcome| {
            !matches!(outcome.result(), Ok(Ok(())))
        })
    }

    /// One run of `seed` with `builder`'s settings.
    fn run_seed_with<F, Fut>(
        &self,
        builder: SimBuilder,
        seed: Seed,
        verbosity: Verbosity,
        body: &Arc<F>,
    ) -> Outcome<Result<(), String>>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: TestOutput,
    {
        let config = builder.seed(seed).verbosity(verbosity).build().config;
        self.runs(vec![config], body, |_| true)
            .expect("a batch whose `stop` keeps every run returns its first")
            .1
    }

    /// Runs the test for every seed; panics with a report at the first
    /// failing one.
    #[track_caller]
    pub fn run<F, Fut>(mut self, body: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: TestOutput,
    {
        let env = match env::Env::read() {
            Ok(env) => env,
            Err(e) => panic!("lockstep: {e}"),
        };
        if let Some(schedule) = &env.schedule {
            // Its seed, its swarm configuration and poll cost, every pick.
            self.builder = self.builder.replay(schedule.clone());
            self.seed = Some(schedule.seed());
        }
        if env.shrink {
            // Shrinking starts from the failing run's schedule: kept whole,
            // however long the run (a ring-mode trace bounds it).
            self.builder = self.builder.record_schedule(true);
        }
        if let Some(path) = &env.trace {
            // Checked before any seed runs: a path that cannot be written
            // is an error now, not a silent nothing when the test passes.
            if let Err(e) = report::prepare_trace_path(path) {
                panic!("lockstep: LOCKSTEP_TRACE={}: {e}", path.display());
            }
        }
        let body = Arc::new(body);
        let seed = if env.schedule.is_some() {
            self.seed
        } else {
            env.seed.or(self.seed)
        };
        let seeds: Vec<Seed> = if let Some(seed) = seed {
            vec![seed]
        } else {
            let n = env.seeds.or(self.seeds).unwrap_or(DEFAULT_SEEDS);
            let base = env.base.unwrap_or_default().0;
            (0..n).map(|i| Seed(base.wrapping_add(i))).collect()
        };
        // One seed: trace it from the start (it is a replay, or the test's
        // only seed). Many: explore untraced, trace only a failure.
        let explore = if seeds.len() == 1 {
            Verbosity::Full
        } else {
            Verbosity::Off
        };
        let jobs = jobs::from_env().unwrap_or_else(|e| panic!("lockstep: {e}"));
        // The first failing seed, on `jobs` threads: the same seed one
        // thread would find (see `jobs`).
        // Seeds go to the worker thread in batches: one hand-off per batch,
        // not per seed (a small seed costs less than a hand-off).
        let batch = seed_batch(seeds.len(), jobs);
        let batches = seeds.len().div_ceil(batch);
        let first_failure = jobs::first_some(batches, jobs, |b| {
            let start = b * batch;
            let end = (start + batch).min(seeds.len());
            self.first_failing(&seeds[start..end], explore, &body)
                .map(|(i, outcome)| (start + i, outcome))
        })
        .map(|(_, found)| found);
        if let Some((i, outcome)) = first_failure {
            let seed = seeds[i];
            let cause = match outcome.result() {
                Ok(Ok(())) => unreachable!("a passing seed is not a failure"),
                Ok(Err(e)) => Cause::Returned(e.clone()),
                Err(f) => Cause::Failure(f.clone()),
            };
            // Already traced: the run itself, a determinism check (which
            // traces the two runs it compares), or a run whose poll never
            // returned (its trace was recorded up to the stuck step).
            let has_trace = explore == Verbosity::Full
                || matches!(
                    outcome.failure(),
                    Some(Failure::NonDeterminism(_))
                        | Some(Failure::BlockedPoll(BlockedPollReport {
                            returned: false,
                            ..
                        }))
                );
            let (traced, cause) = if has_trace {
                (outcome, cause)
            } else if let Some(Failure::BlockedPoll(r)) = outcome.failure() {
                // Wall time is not replayed: the traced run's poll may be
                // quicker. Trace the same seed up to the end of the step
                // that blocked, and report what the first run saw.
                let halt = self
                    .builder
                    .clone()
                    .halt_before(r.at.step + 1, Failure::BlockedPoll(r.clone()));
                let traced = self.run_seed_with(halt, seed, Verbosity::Full, &body);
                (traced, cause)
            } else {
                let traced = self.run_seed_with(self.builder.clone(), seed, Verbosity::Full, &body);
                let same = traced.determinism_hash() == outcome.determinism_hash();
                let cause = if same {
                    cause
                } else {
                    Cause::ReplayDiverged {
                        first: describe(&cause),
                    }
                };
                (traced, cause)
            };
            if env.shrink {
                if let Some(shrunk) = self.shrink(seed, &traced, &body) {
                    let builder = self.builder.clone().replay(shrunk.schedule.clone());
                    let traced = self.run_seed_with(builder.clone(), seed, Verbosity::Full, &body);
                    let cause = match traced.result() {
                        Ok(Ok(())) => cause,
                        Ok(Err(e)) => Cause::Returned(e.clone()),
                        Err(f) => Cause::Failure(f.clone()),
                    };
                    let note = format!(
                        "  shrunk:        from {} to {} in {} runs\n",
                        report::describe_schedule(&shrunk.original),
                        report::describe_schedule(&shrunk.schedule),
                        shrunk.runs
                    );
                    let how = Reported {
                        builder: &builder,
                        suffix: "-shrunk",
                        note: Some(&note),
                    };
                    self.report_failure(&env, seed, (i, seeds.len()), &cause, &traced, how);
                }
            }
            let how = Reported {
                builder: &self.builder,
                suffix: "",
                note: None,
            };
            self.report_failure(&env, seed, (i, seeds.len()), &cause, &traced, how);
        }
        match (&env.trace, seeds.as_slice()) {
            (Some(path), [seed]) => {
                // A replayed seed that passed: still write its trace, as asked.
                let traced =
                    self.run_seed_with(self.builder.clone(), *seed, Verbosity::Full, &body);
                if let Err(e) = report::write_trace(path, traced.trace()) {
                    panic!("lockstep: LOCKSTEP_TRACE={}: {e}", path.display());
                }
            }
            (Some(path), _) => eprintln!(
                "lockstep: LOCKSTEP_TRACE={}: no trace written: all {} seeds of `{}` passed; \
                 a trace is written for a failing seed, or for the one seed LOCKSTEP_SEED \
                 replays",
                path.display(),
                seeds.len(),
                self.meta.test_path()
            ),
            (None, _) => {}
        }
    }

    /// `LOCKSTEP_SHRINK`: the failing run's schedule, shrunk to the fewest
    /// preemptions, early clock moves and draws that still fail the same
    /// way (a test body's `Err` counts as a panic while shrinking, at the
    /// same step). `None`, said on stderr, if it cannot be shrunk.
    fn shrink<F, Fut>(
        &self,
        seed: Seed,
        traced: &Outcome<Result<(), String>>,
        body: &Arc<F>,
    ) -> Option<crate::explore::Shrunk>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: TestOutput,
    {
        let Some(schedule) = traced.schedule() else {
            eprintln!("lockstep: LOCKSTEP_SHRINK: the failing run recorded no schedule");
            return None;
        };
        let sim = self.builder.clone().seed(seed).build();
        let body = body.clone();
        let run = move |sim: &Sim| {
            let body = body.clone();
            sim.run_isolated(move || {
                let fut = as_test_result(body());
                async move {
                    if let Err(e) = fut.await {
                        panic!("the test returned an error: {e}");
                    }
                }
            })
        };
        match crate::explore::shrink_schedule(&sim, schedule, run) {
            Ok(shrunk) => Some(shrunk),
            Err(e) => {
                eprintln!("lockstep: LOCKSTEP_SHRINK: {e}");
                None
            }
        }
    }

    /// Everything a failing seed leaves behind, then the panic that fails
    /// the test: trace files, then the report (see [`report`]).
    #[track_caller]
    fn report_failure(
        &self,
        env: &env::Env,
        seed: Seed,
        tried: (usize, usize),
        cause: &Cause,
        traced: &Outcome<Result<(), String>>,
        how: Reported<'_>,
    ) -> ! {
        let file = report::write_failure_traces(&self.meta, seed, how.suffix, traced.trace());
        if let Some(path) = &env.trace {
            if let Err(e) = report::write_trace(path, traced.trace()) {
                eprintln!("lockstep: LOCKSTEP_TRACE={}: {e}", path.display());
            }
        }
        let dir = bundle::test_dir(&self.meta, seed, how.suffix);
        let follows = how.builder.clone().build().replay_schedule().is_some();
        let run = report::RunSchedule {
            bundle_dir: &dir,
            follows_schedule: follows,
        };
        let mut report = report::render(&self.meta, seed, tried, cause, traced, &file, run);
        if let Some(note) = how.note {
            report.push_str(note);
        }
        let sim = how.builder.clone().seed(seed).build();
        let bundle = bundle::write_for_test(
            &self.meta,
            &sim,
            traced,
            &cause_kind(cause),
            &report,
            how.suffix,
        );
        report.push_str(&bundle::report_lines(&bundle));
        panic!("{report}");
    }
}

/// How a failure is reported: the settings its bundle records, the
/// bundle's name suffix, and a line to add (what shrinking did).
struct Reported<'a> {
    builder: &'a SimBuilder,
    suffix: &'a str,
    note: Option<&'a str>,
}

/// The failure kind a bundle records.
fn cause_kind(cause: &Cause) -> String {
    match cause {
        Cause::Failure(f) => f.kind().to_string(),
        Cause::Returned(_) => "returned-error".to_string(),
        Cause::ReplayDiverged { .. } => crate::check::FailureKind::NonDeterminism.to_string(),
    }
}

fn describe(cause: &Cause) -> String {
    match cause {
        Cause::Failure(f) => f.to_string().lines().next().unwrap_or_default().to_string(),
        Cause::Returned(e) => format!("the test returned an error: {e}"),
        Cause::ReplayDiverged { first } => first.clone(),
    }
}
