//! `lockstep run NAME[/VARIANT] --seed S`: one run, fully traced.
//!
//! Prints whether the run passed or how it failed, its virtual time and
//! steps, and with `--trace` its trace (text, JSON lines or Perfetto JSON)
//! to stdout or `-o FILE`. A failing run leaves a failure bundle. Exits 0
//! if the run passed, 1 if it failed.

use std::path::PathBuf;

use super::explore::{Sweep, bundle_for};
use super::spec::{self, SimArgs};
use super::trace::{Format, write_output};
use super::{Outcome, Scenario, exit};
use crate::runtime::Seed;
use crate::trace::Verbosity;

/// `lockstep run`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The scenario: NAME, NAME/VARIANT or NAME/VARIANT@SEED.
    #[arg(value_name = "SCENARIO")]
    target: String,
    /// The variant (when the scenario has several).
    #[arg(long)]
    variant: Option<String>,
    /// The seed (decimal or 0x hex).
    #[arg(long, value_parser = spec::parse_seed)]
    seed: Option<Seed>,
    #[command(flatten)]
    sim: SimArgs,
    /// Also print the trace in this format.
    #[arg(long, value_enum, value_name = "FORMAT")]
    trace: Option<Format>,
    /// Write the trace there instead of stdout.
    #[arg(short = 'o', long, requires = "trace", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Where the bundle of a failing run goes (default: target/lockstep).
    #[arg(long, value_name = "DIR")]
    bundle_dir: Option<PathBuf>,
}

pub(crate) fn run(args: Args, scenarios: &[Scenario]) -> Outcome {
    let target = spec::target(scenarios, &args.target, args.variant.as_deref())?;
    let variant = spec::one_variant(&target)?;
    let seed = match (target.seed, args.seed) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!(
                "two seeds: {a} in `{}` and --seed {b}; give one",
                args.target
            ));
        }
        (Some(s), _) | (None, Some(s)) => s,
        (None, None) => {
            return Err(format!(
                "which seed? add --seed S or write `{}@S`",
                args.target
            ));
        }
    };
    let sim = args.sim.sim(seed, Verbosity::Full);
    let outcome = variant.run(&sim);
    let name = format!("{}/{}", target.scenario.name(), variant.name());
    let stats = outcome.stats();
    let time = crate::time::format_duration(stats.virtual_time);
    // With the trace on stdout, the summary goes to stderr.
    let to_stdout = args.trace.is_none() || args.output.is_some();
    let say = |s: String| {
        if to_stdout {
            println!("{s}");
        } else {
            eprintln!("{s}");
        }
    };
    match outcome.failure() {
        None => say(format!(
            "{name} seed {seed}: passed ({time} virtual, {} steps)",
            stats.steps
        )),
        Some(f) => {
            say(format!(
                "{name} seed {seed}: FAILED ({}) at {time} virtual, {} steps\n{f}",
                f.kind(),
                stats.steps
            ));
            let sweep = Sweep {
                scenario: target.scenario,
                variant,
                sim: &args.sim,
                seeds: Vec::new(),
            };
            let root = spec::bundle_root(args.bundle_dir.as_deref());
            match bundle_for(
                &sweep,
                &sim,
                &outcome,
                f.kind().name(),
                &f.to_string(),
                &root,
            ) {
                Ok(dir) => say(format!(
                    "bundle: {}\nreplay: lockstep replay {}",
                    dir.display(),
                    dir.display()
                )),
                Err(e) => eprintln!("lockstep: {e}"),
            }
        }
    }
    if let Some(format) = args.trace {
        write_output(outcome.trace(), format, args.output.as_deref())?;
    }
    Ok(exit(outcome.is_ok()))
}
