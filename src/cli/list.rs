//! `lockstep list`: the registered scenarios, their variants, and what each
//! variant declares.

use super::verdict::expect_label;
use super::{Outcome, Scenario};

/// `lockstep list`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// One line per variant, tab-separated (scenario, variant, expectation,
    /// default seeds), for scripts.
    #[arg(long)]
    plain: bool,
}

pub(crate) fn run(args: Args, scenarios: &[Scenario]) -> Outcome {
    for s in scenarios {
        if args.plain {
            for v in s.variants() {
                println!(
                    "{}\t{}\t{}\t{}",
                    s.name(),
                    v.name(),
                    expect_label(v.expect()),
                    s.default_seeds()
                );
            }
            continue;
        }
        println!("{}  ({} seeds by default)", s.name(), s.default_seeds());
        println!("  {}", s.description());
        for v in s.variants() {
            println!("  {:<10} {}", v.name(), v.expect());
        }
    }
    if scenarios.is_empty() {
        println!("no scenario is registered");
    }
    Ok(std::process::ExitCode::SUCCESS)
}
