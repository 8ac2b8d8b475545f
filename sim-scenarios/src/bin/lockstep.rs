//! `lockstep`: explores the built-in scenarios.
//!
//! ```text
//! lockstep explore [--seeds N] [--from SEED] [SCENARIO...]
//! lockstep list
//! ```
//!
//! For every variant of every scenario (or of the named ones), runs seeds
//! `from .. from + N` (default `0 .. 200`) and checks the variant's
//! expectation: a buggy variant must fail for some seed, a fixed one must
//! pass every seed. For each failing seed found, prints the failure, its
//! trace, and checks that replaying the seed reproduces the same trace.
//! Exits non-zero if an expectation is not met.

use std::process::ExitCode;

use lockstep::Seed;
use sim_scenarios::{Expect, Scenario};

const USAGE: &str =
    "usage: lockstep explore [--seeds N] [--from SEED] [SCENARIO...]\n       lockstep list";

struct Args {
    seeds: u64,
    from: Seed,
    scenarios: Vec<&'static Scenario>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        seeds: 200,
        from: Seed(0),
        scenarios: Vec::new(),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seeds" => {
                let v = args.next().ok_or("--seeds needs a number")?;
                out.seeds = v.parse().map_err(|_| {
                    format!("--seeds `{v}` is not a whole number (e.g. --seeds 500)")
                })?;
            }
            "--from" => {
                let v = args.next().ok_or("--from needs a seed")?;
                out.from = v.parse().map_err(|e| format!("--from: {e}"))?;
            }
            name if !name.starts_with('-') => {
                let s = sim_scenarios::find(name).ok_or_else(|| {
                    let known: Vec<_> = sim_scenarios::all().iter().map(|s| s.name()).collect();
                    format!("unknown scenario `{name}`; known: {}", known.join(", "))
                })?;
                out.scenarios.push(s);
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if out.scenarios.is_empty() {
        out.scenarios = sim_scenarios::all().iter().collect();
    }
    Ok(out)
}

fn explore(args: &Args) -> bool {
    let mut all_met = true;
    for scenario in &args.scenarios {
        println!("{} — {}", scenario.name(), scenario.description());
        for variant in scenario.variants() {
            let mut failing = Vec::new();
            let mut first_hash = 0;
            for n in 0..args.seeds {
                let seed = Seed(args.from.0.wrapping_add(n));
                let outcome = variant.run_untraced(seed);
                if !outcome.is_ok() {
                    if failing.is_empty() {
                        first_hash = outcome.determinism_hash();
                    }
                    failing.push(seed);
                }
            }
            let first_kind = failing
                .first()
                .and_then(|&s| variant.run_untraced(s).failure().map(|f| f.kind()));
            let met = match variant.expect() {
                Expect::Fails(_) => first_kind.is_some() && variant.expect().allows(first_kind),
                _ => failing.is_empty(),
            };
            all_met &= met;
            println!(
                "  {:<8} {} of {} seeds fail  [{}]",
                variant.name(),
                failing.len(),
                args.seeds,
                match (variant.expect(), met) {
                    (Expect::Fails(_), true) => "ok: the bug is caught",
                    (Expect::Fails(_), false) => "MISSED: no seed shows the bug as declared",
                    (_, true) => "ok: every seed passes",
                    (_, false) => "BROKEN: the fix fails",
                }
            );
            if let Some(&seed) = failing.first() {
                // Replay traced: the same decisions (hash) as the sweep's run,
                // and the same trace twice.
                let first = variant.run_seed(seed);
                let again = variant.run_seed(seed);
                let replays = first.determinism_hash() == first_hash
                    && first.trace().render() == again.trace().render();
                all_met &= replays;
                let shown: Vec<String> = failing.iter().take(8).map(Seed::to_string).collect();
                println!(
                    "    failing seeds: {}{}",
                    shown.join(" "),
                    if failing.len() > 8 { " …" } else { "" }
                );
                println!(
                    "    first failing seed {seed}: {}",
                    first.failure().unwrap()
                );
                println!(
                    "    replay of {seed}: {}",
                    if replays {
                        "identical trace"
                    } else {
                        "DIFFERENT trace (non-determinism)"
                    }
                );
                println!("    trace of {seed}:");
                for line in first.trace().render_tail(40).lines() {
                    println!("      {line}");
                }
            }
        }
    }
    all_met
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let verb = argv.next();
    match verb.as_deref() {
        Some("list") => {
            for s in sim_scenarios::all() {
                let variants: Vec<_> = s.variants().iter().map(|v| v.name()).collect();
                println!(
                    "{:<24} [{}] {}",
                    s.name(),
                    variants.join(", "),
                    s.description()
                );
            }
            ExitCode::SUCCESS
        }
        Some("explore") => match parse(argv) {
            Ok(args) => {
                if explore(&args) {
                    ExitCode::SUCCESS
                } else {
                    println!("\nsome expectations were not met (see above)");
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("lockstep: {e}\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some(other) => {
            eprintln!("lockstep: unknown command `{other}`\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
