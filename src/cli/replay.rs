//! `lockstep replay BUNDLE`: rerun exactly what a failure bundle recorded,
//! and say which of three things happened.
//!
//! - **reproduced**: the run fails again with the same events (the trace
//!   is compared event by event, without source line numbers, so moving
//!   code does not count; the report also says when the JSON lines are
//!   byte-identical);
//! - **fixed**: the run passes now;
//! - **diverged at event N**: it still fails, but the code changed since:
//!   the first differing events are shown side by side.
//!
//! A scenario bundle is rerun in this process (the scenario must be
//! registered in this binary). A `#[sim_test]` bundle is rerun by running
//! the recorded test binary with `LOCKSTEP_SEED` and `LOCKSTEP_TRACE` (and
//! `LOCKSTEP_BUNDLE_DIR` pointing elsewhere, so the bundle being replayed
//! is not overwritten); with `--cargo`, through `cargo test` instead, which
//! rebuilds the test first.
//!
//! `replay NAME/VARIANT@SEED` runs a seed twice and checks that the two
//! runs are the same. Exit code 0 only for "reproduced".

use std::path::{Path, PathBuf};
use std::process::Command;

use super::bundle::Bundle;
use super::spec::{self, SimArgs};
use super::trace::stable_lines;
use super::{Outcome, Scenario, exit};
use crate::harness::bundle::TestRun;
use crate::runtime::Seed;
use crate::trace::{Trace, Verbosity};

/// `lockstep replay`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// A bundle folder, or a scenario run NAME/VARIANT@SEED.
    source: String,
    /// The seed, for a scenario run.
    #[arg(long, value_parser = spec::parse_seed)]
    seed: Option<Seed>,
    /// The variant, for a scenario run.
    #[arg(long)]
    variant: Option<String>,
    #[command(flatten)]
    sim: SimArgs,
    /// For a #[sim_test] bundle: rerun through `cargo test` (rebuilding the
    /// test) instead of the recorded test binary.
    #[arg(long)]
    cargo: bool,
    /// Write the replayed trace here (`.jsonl` for JSON lines, else text).
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// What the replay showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Replayed {
    Reproduced,
    Fixed,
    Diverged(usize),
}

/// The first index where two line lists differ (a missing line differs).
pub(crate) fn first_difference(a: &[String], b: &[String]) -> Option<usize> {
    let n = a.len().min(b.len());
    (0..n)
        .find(|&i| a[i] != b[i])
        .or((a.len() != b.len()).then_some(n))
}

/// Prints the two events at `i` side by side, after a little context.
pub(crate) fn show_divergence(a: &[String], b: &[String], i: usize, left: &str, right: &str) {
    for line in &a[i.saturating_sub(3)..i.min(a.len())] {
        println!(
            "    {:<w$}  {line}",
            "",
            w = left.len().max(right.len()) + 1
        );
    }
    let w = left.len().max(right.len()) + 1;
    println!(
        "  > {:<w$}  {}",
        format!("{left}:"),
        a.get(i).map_or("(the trace ends here)", String::as_str)
    );
    println!(
        "  > {:<w$}  {}",
        format!("{right}:"),
        b.get(i).map_or("(the trace ends here)", String::as_str)
    );
}

fn compare(recorded: &Trace, now: &Trace, now_failed: bool) -> Replayed {
    let a = stable_lines(recorded);
    let b = stable_lines(now);
    match (now_failed, first_difference(&a, &b)) {
        (false, _) => Replayed::Fixed,
        (true, None) => Replayed::Reproduced,
        (true, Some(i)) => Replayed::Diverged(i),
    }
}

fn report(bundle: &Bundle, recorded: &Trace, now: &Trace, hash: Option<u64>, verdict: &Replayed) {
    let title = bundle.title();
    match verdict {
        Replayed::Reproduced => {
            let bytes = std::fs::read_to_string(bundle.dir.join("trace.jsonl"))
                .is_ok_and(|t| t == now.to_jsonl());
            println!(
                "reproduced: {title} fails again ({}), the same {} events{}",
                bundle.manifest.failure_kind,
                now.len(),
                if bytes {
                    ", byte-identical trace"
                } else {
                    " (source lines moved)"
                }
            );
            println!("  {}", bundle.manifest.failure);
            if let Some(h) = hash.map(|h| format!("{h:#x}")) {
                if h != bundle.manifest.decision_hash {
                    println!(
                        "  note: the decision hash differs (recorded {}, now {h}): the same events \
                         came from other random draws",
                        bundle.manifest.decision_hash
                    );
                }
            }
        }
        Replayed::Fixed => {
            println!(
                "fixed: {title} passes now (it failed with {}: {})",
                bundle.manifest.failure_kind, bundle.manifest.failure
            );
        }
        Replayed::Diverged(i) => {
            let a = stable_lines(recorded);
            let b = stable_lines(now);
            println!(
                "diverged at event {i}: {title} still fails, but not the same way: the code \
                 changed since the bundle was written ({} events recorded, {} now)",
                a.len(),
                b.len()
            );
            show_divergence(&a, &b, *i, "recorded", "now");
        }
    }
}

pub(crate) fn run(args: Args, scenarios: &[Scenario]) -> Outcome {
    let path = Path::new(&args.source);
    if !path.is_dir() {
        if path.exists() || args.source.matches('/').count() > 1 || args.source.ends_with('/') {
            // A file, or a path that does not exist: a bundle was meant.
            Bundle::open(path)?;
        }
        return replay_target(&args, scenarios);
    }
    let bundle = Bundle::open(path)?;
    let recorded = bundle.trace()?;
    let (now, now_failed, hash) = if bundle.manifest.test.is_some() {
        let (trace, failed) = rerun_test(&bundle, args.cargo)?;
        (trace, failed, None)
    } else {
        rerun_scenario(&bundle, scenarios)?
    };
    if let Some(out) = &args.output {
        let format = if out.extension().is_some_and(|e| e == "jsonl") {
            super::trace::Format::Jsonl
        } else {
            super::trace::Format::Text
        };
        super::trace::write_output(&now, format, Some(out))?;
    }
    let verdict = compare(&recorded, &now, now_failed);
    report(&bundle, &recorded, &now, hash, &verdict);
    Ok(exit(verdict == Replayed::Reproduced))
}

fn rerun_scenario(
    bundle: &Bundle,
    scenarios: &[Scenario],
) -> Result<(Trace, bool, Option<u64>), String> {
    let Some(s) = &bundle.manifest.scenario else {
        return Err(format!(
            "{}: bundle.json names neither a scenario nor a test",
            bundle.dir.display()
        ));
    };
    let scenario = spec::find(scenarios, &s.name).map_err(|e| {
        format!("{e}; the bundle was written by another binary: replay it with that one")
    })?;
    let variant = spec::variant(scenario, &s.variant)?;
    let outcome = variant.run(&bundle.manifest.sim()?);
    let failed = !outcome.is_ok();
    let hash = outcome.determinism_hash();
    Ok((outcome.into_trace(), failed, Some(hash)))
}

/// The command that runs the one test of a `#[sim_test]` bundle: its
/// recorded binary, or `cargo test` (rebuilding it), in the directory it
/// ran in, with no `LOCKSTEP_*` setting of this process leaking in.
pub(crate) fn test_command(t: &TestRun, cargo: bool) -> Result<Command, String> {
    let mut cmd = if cargo {
        let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        c.args(["test", "-p", &t.package]);
        c.args(t.target.split_whitespace());
        if t.profile != "dev" {
            c.args(["--profile", &t.profile]);
        }
        c.arg("--");
        c
    } else {
        if !Path::new(&t.binary).is_file() {
            return Err(format!(
                "the test binary {} recorded in the bundle no longer exists; rebuild it with \
                 `cargo test --no-run -p {} {}`, or replay with --cargo",
                t.binary, t.package, t.target
            ));
        }
        Command::new(&t.binary)
    };
    cmd.args([t.test.as_str(), "--exact"]);
    if t.ignored {
        cmd.arg("--include-ignored");
    }
    if Path::new(&t.cwd).is_dir() {
        cmd.current_dir(&t.cwd);
    }
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LOCKSTEP_")) {
        cmd.env_remove(k);
    }
    Ok(cmd)
}

fn rerun_test(bundle: &Bundle, cargo: bool) -> Result<(Trace, bool), String> {
    let t = bundle.manifest.test.as_ref().expect("a test bundle");
    let scratch = std::env::temp_dir().join(format!("lockstep-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let trace_file = scratch.join("replay.jsonl");
    let mut cmd = test_command(t, cargo)?;
    if bundle.manifest.follows_schedule && bundle.dir.join("schedule.txt").is_file() {
        cmd.env("LOCKSTEP_SCHEDULE", &bundle.dir);
    } else {
        cmd.env("LOCKSTEP_SEED", &bundle.manifest.seed);
    }
    cmd.env("LOCKSTEP_TRACE", &trace_file)
        .env("LOCKSTEP_BUNDLE_DIR", scratch.join("bundles"))
        .env_remove("LOCKSTEP_SEEDS")
        .env_remove("LOCKSTEP_SEED_BASE");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run the test binary {}: {e}", t.binary))?;
    let text = std::fs::read_to_string(&trace_file).map_err(|_| {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let hint = stdout
            .lines()
            .rev()
            .find(|l| l.contains("test result") || l.contains("running"))
            .unwrap_or("")
            .trim()
            .to_string();
        format!(
            "the test `{}` wrote no trace: is it still a #[sim_test] in {}? ({hint})",
            t.test, t.binary
        )
    })?;
    let _ = std::fs::remove_dir_all(&scratch);
    let trace = Trace::from_jsonl(&text).map_err(|e| format!("the replayed trace: {e}"))?;
    Ok((trace, !out.status.success()))
}

/// `replay NAME/VARIANT@SEED`: two runs of one seed must be the same.
fn replay_target(args: &Args, scenarios: &[Scenario]) -> Outcome {
    let target = spec::target(scenarios, &args.source, args.variant.as_deref())?;
    let variant = spec::one_variant(&target)?;
    let seed = target.seed.or(args.seed).ok_or_else(|| {
        format!(
            "which seed? add --seed S or write `{}@S` (or give a bundle folder)",
            args.source
        )
    })?;
    let sim = args.sim.sim(seed, Verbosity::Full);
    let first = variant.run(&sim);
    let again = variant.run(&sim);
    let a = stable_lines(first.trace());
    let b = stable_lines(again.trace());
    let name = format!("{}/{} seed {seed}", target.scenario.name(), variant.name());
    if let Some(out) = &args.output {
        super::trace::write_output(first.trace(), super::trace::Format::Jsonl, Some(out))?;
    }
    match first_difference(&a, &b) {
        None if first.determinism_hash() == again.determinism_hash() => {
            println!(
                "reproduced: {name} runs the same twice ({} events, {})",
                a.len(),
                first
                    .failure()
                    .map_or("passes".to_string(), |f| format!("fails: {f}"))
                    .lines()
                    .next()
                    .unwrap_or_default()
            );
            Ok(exit(true))
        }
        i => {
            let i = i.unwrap_or(a.len());
            println!("diverged at event {i}: {name} does not run the same twice (non-determinism)");
            show_divergence(&a, &b, i, "first run", "second run");
            Ok(exit(false))
        }
    }
}
