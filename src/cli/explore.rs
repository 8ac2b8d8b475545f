//! `lockstep explore`: sweep seeds, and a table of verdicts.
//!
//! Every selected variant runs its seeds with tracing off (the decision hash
//! is kept) and is judged against what it declares, by the rules of
//! [`verdict`](super::verdict).
//!
//! Results are collected by seed, so the table, the first failing seed and
//! the exit code are the same whatever `--jobs` is. `--shard I/N` runs
//! every N-th seed of the sweep from the I-th: the union of the N shards is
//! exactly the sweep, and `lockstep merge` of their `--json` outputs gives
//! the table one machine would print.
//!
//! Without `--keep-going`, explore stops at the first variant that does not
//! behave as declared (a fixed variant stops at its first failing seed),
//! as `cargo test` stops at the first failing test binary; the rest are
//! listed as skipped. A shard always keeps going: it cannot know what the
//! other shards found.
//!
//! The first `--bundles` failing seeds of each variant (default 3) are run
//! again with full tracing and written as failure bundles; the traced run
//! must take the same decisions as the sweep's (the decision hashes must
//! match), or the variant's verdict is `NON-DETERMINISTIC`.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::Instant as WallInstant;

use super::spec::{self, SeedRange, ShardArg, SimArgs};
use super::verdict::{SeedResult, VariantResult, expect_label, print_table};
use super::{Expect, Outcome, Scenario, Variant, exit};
use crate::harness::{bundle, jobs};
use crate::runtime::Seed;
use crate::trace::Verbosity;

/// `lockstep explore`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Scenarios to explore (all when none is named, or with --all).
    #[arg(value_name = "SCENARIO")]
    scenarios: Vec<String>,
    /// Explore every scenario.
    #[arg(long, conflicts_with = "scenarios")]
    all: bool,
    /// Only this variant of each scenario.
    #[arg(long)]
    variant: Option<String>,
    /// Seeds A..B (B excluded), instead of each scenario's default count.
    #[arg(long, value_parser = spec::parse_range, value_name = "A..B", conflicts_with = "count")]
    seeds: Option<SeedRange>,
    /// Seeds 0..N, instead of each scenario's default count.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    #[command(flatten)]
    sim: SimArgs,
    /// Threads running seeds (one simulation per thread): a number, or auto.
    #[arg(long, short = 'j', default_value = "1", value_parser = jobs::parse)]
    jobs: usize,
    /// Run only shard I of N (I from 1): every N-th seed from the I-th. `N`
    /// alone takes I from JOB_COMPLETION_INDEX (counted from 0).
    #[arg(long, value_parser = spec::parse_shard, value_name = "I/N")]
    shard: Option<ShardArg>,
    /// Isolate seeds so that a poll that never returns becomes a failure of
    /// that seed: `thread` (each seed on a worker thread, as #[sim_test]
    /// does; a stuck worker is left spinning) or `process` (child
    /// processes, killed after --timeout; also for code with
    /// process-global state).
    #[arg(long, value_enum, value_name = "MODE")]
    isolate: Option<Isolate>,
    /// With --isolate process: wall-clock seconds a seed may take before its
    /// child is killed and the seed counted as hung.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    timeout: f64,
    /// Run every seed of every variant, even after one misbehaves.
    #[arg(long)]
    keep_going: bool,
    /// Print one JSON line per variant on stdout (for `lockstep merge`); the
    /// table goes to stderr.
    #[arg(long)]
    json: bool,
    /// Failure bundles to write per variant (its first failing seeds).
    #[arg(long, default_value_t = 3, value_name = "N")]
    bundles: usize,
    /// Where bundles go (default: target/lockstep).
    #[arg(long, value_name = "DIR")]
    bundle_dir: Option<PathBuf>,
}

/// How seeds are isolated.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isolate {
    /// Each seed on a worker thread ([`Sim::isolate`](crate::Sim::isolate)).
    Thread,
    /// One child process per batch of seeds.
    Process,
}

/// The sweep's settings for one variant.
pub(crate) struct Sweep<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) variant: &'static Variant,
    pub(crate) sim: &'a SimArgs,
    pub(crate) seeds: Vec<Seed>,
}

/// Runs a variant in `sim`, on a worker thread if `threaded`.
fn run_variant(variant: &Variant, sim: &crate::Sim, threaded: bool) -> crate::Outcome<()> {
    if threaded {
        let v = *variant;
        sim.isolate(move |s| v.run(s))
    } else {
        variant.run(sim)
    }
}

/// Runs `seeds` of a variant in this process, untraced (each on a worker
/// thread if `threaded`).
pub(crate) fn run_in_process(
    variant: &Variant,
    sim: &SimArgs,
    seeds: &[Seed],
    threaded: bool,
) -> Vec<SeedResult> {
    seeds
        .iter()
        .map(|&seed| {
            let outcome = run_variant(variant, &sim.sim(seed, Verbosity::Off), threaded);
            let failure = outcome.failure();
            SeedResult {
                seed,
                kind: failure.map(|f| f.kind().to_string()),
                message: failure
                    .map(|f| f.to_string().lines().next().unwrap_or_default().to_string())
                    .unwrap_or_default(),
                hash: outcome.determinism_hash(),
            }
        })
        .collect()
}

pub(crate) fn run(args: Args, scenarios: &[Scenario]) -> Outcome {
    if args.jobs == 0 {
        return Err("--jobs must be at least 1".to_string());
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(format!(
            "--timeout {}: expected a positive number of seconds",
            args.timeout
        ));
    }
    let selected: Vec<&Scenario> = if args.scenarios.is_empty() {
        scenarios.iter().collect()
    } else {
        args.scenarios
            .iter()
            .map(|n| spec::find(scenarios, n))
            .collect::<Result<_, _>>()?
    };
    let mut work: Vec<(&Scenario, &'static Variant)> = Vec::new();
    for s in &selected {
        match &args.variant {
            Some(v) => work.push((s, spec::variant(s, v)?)),
            None => work.extend(s.variants().iter().map(|v| (*s, v))),
        }
    }
    if work.is_empty() {
        return Err("nothing to explore: no scenario is registered".to_string());
    }
    let shard = args.shard.map(ShardArg::resolve).transpose()?;
    let keep_going = args.keep_going || shard.is_some();
    let range_of = |s: &Scenario| match (args.seeds, args.count) {
        (Some(r), _) => Ok(r),
        (None, Some(0)) => Err("--count 0: explore needs at least one seed".to_string()),
        (None, Some(n)) => Ok(SeedRange { start: 0, end: n }),
        (None, None) => Ok(SeedRange {
            start: 0,
            end: s.default_seeds().max(1),
        }),
    };
    let plan: Vec<(SeedRange, Vec<Seed>)> = work
        .iter()
        .map(|(s, _)| {
            let r = range_of(s)?;
            let seeds = (0..r.len())
                .filter(|k| shard.is_none_or(|(i, n)| k % n == i - 1))
                .map(|k| Seed(r.start + k))
                .collect();
            Ok::<_, String>((r, seeds))
        })
        .collect::<Result<_, _>>()?;

    let total: u64 = plan.iter().map(|(_, s)| s.len() as u64).sum();
    let bar = (!args.json && std::io::stdout().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30}] {pos}/{len} seeds  {msg}  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let mut log: Box<dyn std::io::Write> = if args.json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let root = spec::bundle_root(args.bundle_dir.as_deref());
    let mut results = Vec::new();
    let mut stopped = false;
    for ((scenario, variant), (range, seeds)) in work.iter().zip(plan) {
        let mut result = VariantResult {
            lockstep: env!("CARGO_PKG_VERSION").to_string(),
            scenario: scenario.name().to_string(),
            variant: variant.name().to_string(),
            expect: expect_label(variant.expect()),
            start: range.start,
            end: range.end,
            shard: shard.map(|(i, n)| format!("{i}/{n}")),
            policy: args.sim.policy.unwrap_or_default().to_string(),
            faults: args.sim.faults.as_ref().map(ToString::to_string),
            tried: 0,
            skipped: stopped,
            failures: Vec::new(),
            elapsed_secs: 0.0,
            bundles: Vec::new(),
            nondeterministic: Vec::new(),
        };
        if stopped {
            if let Some(bar) = &bar {
                bar.inc(seeds.len() as u64);
            }
            json_line(args.json, &result)?;
            results.push(result);
            continue;
        }
        let sweep = Sweep {
            scenario,
            variant,
            sim: &args.sim,
            seeds,
        };
        if let Some(bar) = &bar {
            bar.set_prefix(format!("{}/{}", scenario.name(), variant.name()));
            bar.set_message("0 failing");
        }
        let started = WallInstant::now();
        let stop_early = !keep_going && variant.expect() == Expect::Pass;
        let chunk = if args.isolate == Some(Isolate::Process) {
            32
        } else {
            1
        };
        let threaded = args.isolate == Some(Isolate::Thread);
        let chunks: Vec<&[Seed]> = sweep.seeds.chunks(chunk).collect();
        let mut failing = 0usize;
        let done = jobs::map_ordered(
            chunks.len(),
            args.jobs,
            |c| match args.isolate {
                Some(Isolate::Process) => {
                    super::isolate::run_chunk(&sweep, chunks[c], args.timeout)
                }
                _ => run_in_process(variant, &args.sim, chunks[c], threaded),
            },
            |rs| stop_early && rs.iter().any(|r| r.kind.is_some()),
            |_, rs| {
                failing += rs.iter().filter(|r| r.kind.is_some()).count();
                if let Some(bar) = &bar {
                    bar.inc(rs.len() as u64);
                    bar.set_message(format!("{failing} failing"));
                }
            },
        );
        let mut seeds_run: Vec<SeedResult> = done.into_iter().flat_map(|(_, rs)| rs).collect();
        let first_failing = seeds_run.iter().position(|r| r.kind.is_some());
        if let (true, Some(i)) = (stop_early, first_failing) {
            seeds_run.truncate(i + 1);
        }
        result.elapsed_secs = started.elapsed().as_secs_f64();
        result.tried = seeds_run.len() as u64;
        result.failures = seeds_run.into_iter().filter(|r| r.kind.is_some()).collect();
        for f in result.failures.iter().take(args.bundles) {
            let written = match args.isolate {
                Some(Isolate::Process) => super::isolate::write_bundle(&sweep, f, &root),
                _ => write_bundle(&sweep, f, &root, threaded),
            };
            match written {
                Ok((dir, same)) => {
                    if !same {
                        result.nondeterministic.push(f.seed);
                    }
                    result.bundles.push(dir.display().to_string());
                }
                Err(e) => {
                    let _ = writeln!(log, "lockstep: {e}");
                }
            }
        }
        let verdict = result.verdict();
        if bar.is_none() {
            let _ = writeln!(
                log,
                "explored {}/{}: {} seeds, {} failing: {}",
                result.scenario,
                result.variant,
                result.tried,
                result.failures.len(),
                verdict.label()
            );
        }
        stopped = !keep_going && !verdict.ok();
        json_line(args.json, &result)?;
        results.push(result);
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let _ = writeln!(log);
    let ok = print_table(&results, &mut *log);
    Ok(exit(ok))
}

/// With `--json`, prints a variant's result as soon as it is known.
fn json_line(json: bool, r: &VariantResult) -> Result<(), String> {
    if json {
        let line = serde_json::to_string(r).map_err(|e| format!("--json: {e}"))?;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
    Ok(())
}

/// Reruns a failing seed traced and writes its bundle; the flag says
/// whether the traced run took the sweep's decisions (else the bundle
/// records non-determinism).
pub(crate) fn write_bundle(
    sweep: &Sweep<'_>,
    f: &SeedResult,
    root: &std::path::Path,
    threaded: bool,
) -> Result<(PathBuf, bool), String> {
    let sim = sweep.sim.sim(f.seed, Verbosity::Full);
    let traced = run_variant(sweep.variant, &sim, threaded);
    let same = traced.determinism_hash() == f.hash && traced.failure().is_some();
    let (kind, text) = match traced.failure() {
        Some(failure) if same => (failure.kind().to_string(), failure.to_string()),
        other => (
            "non-determinism".to_string(),
            format!(
                "non-determinism: seed {} failed untraced ({}), but its traced rerun took a \
                 different path{}",
                f.seed,
                f.message,
                other.map_or(" and passed".to_string(), |o| format!(": {o}"))
            ),
        ),
    };
    bundle_for(sweep, &sim, &traced, &kind, &text, root).map(|dir| (dir, same))
}

/// Writes the bundle of a traced scenario run.
pub(crate) fn bundle_for(
    sweep: &Sweep<'_>,
    sim: &crate::Sim,
    traced: &crate::Outcome<()>,
    kind: &str,
    text: &str,
    root: &std::path::Path,
) -> Result<PathBuf, String> {
    let mut manifest = bundle::Manifest::new(sim, traced, kind, text);
    manifest.scenario = Some(bundle::ScenarioRun {
        name: sweep.scenario.name().to_string(),
        variant: sweep.variant.name().to_string(),
        expect: expect_label(sweep.variant.expect()),
    });
    let dir = root.join(format!(
        "{}-{}-{}",
        sweep.scenario.name(),
        sweep.variant.name(),
        traced.seed()
    ));
    bundle::write(&dir, &manifest, text, traced.trace())
        .map_err(|e| format!("could not write the bundle {}: {e}", dir.display()))
}
