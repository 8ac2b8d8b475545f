//! The `lockstep` command line, embeddable in any crate.
//!
//! A crate registers its [`Scenario`]s and gets every verb of the
//! `lockstep` binary for them with a `main` of one line; the workspace's own
//! `lockstep` binary is this runner with the scenarios of `sim-scenarios`:
//!
//! ```no_run
//! use lockstep::check::FailureKind;
//! use lockstep::cli::{Expect, Scenario, Variant};
//!
//! static SCENARIOS: &[Scenario] = &[Scenario::new(
//!     "always-fails",
//!     "a program that panics",
//!     &[Variant::new("buggy", Expect::Fails(FailureKind::Panic), |sim| {
//!         sim.run(async { panic!("boom") })
//!     })],
//! )];
//!
//! fn main() -> std::process::ExitCode {
//!     lockstep::cli::main(SCENARIOS)
//! }
//! ```
//!
//! | verb | what it does |
//! |---|---|
//! | `list` | the scenarios, their variants and what each declares |
//! | `run NAME[/VARIANT] --seed S` | one run, its failure, optionally its trace |
//! | `explore [NAME…\|--all]` | a sweep of seeds and a table of verdicts; `--jobs`, `--shard I/N`, `--isolate process`, `--json` |
//! | `merge FILE…` | one verdict table from the `--json` outputs of shards |
//! | `replay BUNDLE` | reruns a failure bundle: reproduced, fixed, or diverged at event N |
//! | `diff A B` | where two traces (files, bundles, `NAME@SEED`) first diverge, and what differs after |
//! | `shrink BUNDLE` | the smallest fault plan that still fails the same way |
//! | `trace SOURCE --format text\|jsonl\|perfetto` | converts a trace |
//! | `completions bash\|zsh\|fish` | a shell completion script |
//!
//! Exit codes: 0 when every variant behaved as declared, a replay
//! reproduced, a diff found no difference; 1 otherwise; 2 for a usage or
//! input error, always one line naming what was wrong and what is accepted.

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod bundle;
mod completions;
mod diff;
mod explore;
mod isolate;
mod list;
mod merge;
mod replay;
mod run;
mod scenario;
mod shrink;
mod spec;
mod trace;
mod verdict;

pub use scenario::{Expect, Scenario, Variant};

/// Runs the command line of the process with these scenarios registered,
/// and returns the exit code (0, 1, or 2 for bad input).
pub fn main(scenarios: &[Scenario]) -> ExitCode {
    run_with_args(std::env::args_os(), scenarios)
}

/// [`main`] with explicit arguments (the first is the program name).
pub fn run_with_args<I, T>(args: I, scenarios: &[Scenario]) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    let result = match cli.command {
        Command::List(a) => list::run(a, scenarios),
        Command::Run(a) => run::run(a, scenarios),
        Command::Explore(a) => explore::run(a, scenarios),
        Command::Merge(a) => merge::run(a),
        Command::Replay(a) => replay::run(a, scenarios),
        Command::Diff(a) => diff::run(a, scenarios),
        Command::Shrink(a) => shrink::run(a, scenarios),
        Command::Trace(a) => trace::run(a, scenarios),
        Command::Completions(a) => completions::run(a, Cli::command()),
        Command::Seeds(a) => isolate::child(a, scenarios),
    };
    let _ = std::io::stdout().flush();
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("lockstep: {message}");
            ExitCode::from(2)
        }
    }
}

/// A clap error as one line (help and version print in full).
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let text = e.render().to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("bad arguments");
    let first = first.trim().strip_prefix("error: ").unwrap_or(first.trim());
    eprintln!("lockstep: {first} (see `lockstep --help`)");
    ExitCode::from(2)
}

/// What a verb returns: its exit code, or a one-line input error (exit 2).
type Outcome = Result<ExitCode, String>;

/// Exit code 0 or 1.
fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[derive(Parser)]
#[command(
    name = "lockstep",
    version,
    about = "Deterministic simulation testing: explore seeds, replay failure bundles, diff and \
             picture traces",
    long_about = None,
    propagate_version = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the scenarios, their variants and what each declares.
    List(list::Args),
    /// Run one seed of a scenario.
    Run(run::Args),
    /// Sweep seeds and print a table of verdicts.
    Explore(explore::Args),
    /// Merge the --json outputs of explore shards into one verdict table.
    Merge(merge::Args),
    /// Rerun a failure bundle: reproduced, fixed, or diverged at event N.
    Replay(replay::Args),
    /// Show where two traces first diverge, and what differs after.
    Diff(diff::Args),
    /// Reduce a failure bundle's fault plan to the smallest that still fails.
    Shrink(shrink::Args),
    /// Convert a trace to text, JSON lines or Perfetto JSON.
    Trace(trace::Args),
    /// Print a shell completion script.
    Completions(completions::Args),
    /// Runs seeds in a child process for `explore --isolate process`.
    #[command(name = "__seeds", hide = true)]
    Seeds(isolate::ChildArgs),
}
