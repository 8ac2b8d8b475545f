//! What the verbs share: naming a scenario run (`NAME[/VARIANT][@SEED]`),
//! seed ranges, shards, fault plans and the settings of a run.
//!
//! Every parser here returns a one-line error that names the bad input and
//! what is accepted; clap prints it as the argument's error (exit 2).

use std::path::{Path, PathBuf};

use crate::fault::FaultPlan;
use crate::runtime::{Seed, Sim, SimBuilder};
use crate::trace::Verbosity;

use super::{Scenario, Variant};

/// Settings of a run that the command line may change.
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct SimArgs {
    /// Scheduling policy: random, fifo, pct, pct:D, swarm or mix, with
    /// optional settings after `+`: a poll cost (random+cost:1ms:8x charges
    /// each poll up to 1 ms of virtual time, on hosts up to 8 times slower)
    /// and late polls (mix+late:off; random+late:0.25:10ms moves the clock
    /// early, with probability 0.25 per step, to a timer due within 10 ms).
    #[arg(long, value_parser = parse_policy, value_name = "POLICY")]
    pub(crate) policy: Option<PolicyArg>,
    /// A fault plan applied from the start of every run: plan text (actions
    /// separated by `;` or newlines, e.g. "at 1s crash server; at 2s restart
    /// server"), a file holding one, or an intensity from 0 to 1 for a plan
    /// drawn from each seed.
    #[arg(long, value_parser = parse_faults, value_name = "PLAN")]
    pub(crate) faults: Option<FaultPlan>,
    /// Wall-clock seconds one poll may take before the watchdog acts
    /// (default 5): with --isolate, the seed fails with a blocked poll.
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS")]
    pub(crate) watchdog: Option<f64>,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "`{s}` is not a positive number of seconds (e.g. 0.5)"
        )),
    }
}

impl SimArgs {
    /// A builder with these settings.
    pub(crate) fn builder(&self) -> SimBuilder {
        let mut b = self.policy.unwrap_or_default().apply(Sim::builder());
        if let Some(plan) = &self.faults {
            b = b.faults(plan.clone());
        }
        if let Some(secs) = self.watchdog {
            b = b.watchdog(Some(crate::time::Duration::from_secs_f64(secs)));
        }
        b
    }

    /// The simulation for one seed.
    pub(crate) fn sim(&self, seed: Seed, verbosity: Verbosity) -> Sim {
        self.builder().seed(seed).verbosity(verbosity).build()
    }
}

/// `--policy`: a policy and its options (`random+cost:1ms:8x`,
/// `mix+late:off`).
pub(crate) type PolicyArg = crate::runtime::PolicySpec;

fn parse_policy(s: &str) -> Result<PolicyArg, String> {
    crate::runtime::parse_policy_spec(s)
}

/// A fault plan from the command line (see [`SimArgs::faults`]).
pub(crate) fn parse_faults(s: &str) -> Result<FaultPlan, String> {
    if let Ok(intensity) = s.trim().parse::<f64>() {
        if !(0.0..=1.0).contains(&intensity) {
            return Err(format!(
                "intensity {intensity} is not between 0 and 1 (0.2 draws a few faults per run)"
            ));
        }
        return Ok(FaultPlan::random(intensity));
    }
    let path = Path::new(s);
    let text = if !s.contains('\n') && path.is_file() {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {s}: {e}"))?
    } else {
        s.replace(';', "\n")
    };
    text.parse::<FaultPlan>().map_err(|e| e.to_string())
}

/// A seed.
pub(crate) fn parse_seed(s: &str) -> Result<Seed, String> {
    s.parse::<Seed>().map_err(|e| e.to_string())
}

/// Seeds `start..end` (end excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeedRange {
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl SeedRange {
    pub(crate) fn len(&self) -> u64 {
        self.end - self.start
    }
}

/// `A..B`: seeds A up to B, B excluded (`0..200`, `0x100..0x200`).
pub(crate) fn parse_range(s: &str) -> Result<SeedRange, String> {
    let accepted = "a range is A..B with A < B, seeds in decimal or 0x hex (0..500, 0x100..0x200)";
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("`{s}` is not a seed range: {accepted}"))?;
    let b = b
        .strip_prefix('=')
        .map_or(Ok((b, 0)), |b| Ok::<_, String>((b, 1)))?;
    let start = a.parse::<Seed>().map_err(|e| format!("`{s}`: {e}"))?.get();
    let end =
        b.0.parse::<Seed>()
            .map_err(|e| format!("`{s}`: {e}"))?
            .get()
            .checked_add(b.1)
            .ok_or_else(|| format!("`{s}`: the range ends past the last seed"))?;
    if start >= end {
        return Err(format!("`{s}` is empty: {accepted}"));
    }
    Ok(SeedRange { start, end })
}

/// `--shard I/N` (I from 1 to N), or `--shard N` with the index taken from
/// `JOB_COMPLETION_INDEX` (a Kubernetes indexed Job, counted from 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShardArg {
    /// `I/N`.
    Given { index: u64, count: u64 },
    /// `N`: the index comes from the environment.
    FromEnv { count: u64 },
}

pub(crate) fn parse_shard(s: &str) -> Result<ShardArg, String> {
    let accepted = "a shard is I/N with 1 ≤ I ≤ N (2/4), or N alone to take I from \
                    JOB_COMPLETION_INDEX";
    let num = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{s}` is not a shard: {accepted}"))
    };
    match s.split_once('/') {
        Some((i, n)) => {
            let (index, count) = (num(i)?, num(n)?);
            if count == 0 || index == 0 || index > count {
                return Err(format!(
                    "`{s}`: the shard index must be between 1 and {count}: {accepted}"
                ));
            }
            Ok(ShardArg::Given { index, count })
        }
        None => {
            let count = num(s)?;
            if count == 0 {
                return Err(format!("`{s}`: there must be at least one shard"));
            }
            Ok(ShardArg::FromEnv { count })
        }
    }
}

impl ShardArg {
    /// `(index from 1, count)`, reading `JOB_COMPLETION_INDEX` if needed.
    pub(crate) fn resolve(self) -> Result<(u64, u64), String> {
        match self {
            ShardArg::Given { index, count } => Ok((index, count)),
            ShardArg::FromEnv { count } => {
                let v = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
                    format!(
                        "--shard {count} takes the shard index from JOB_COMPLETION_INDEX, which \
                         is not set; give it as --shard I/{count}"
                    )
                })?;
                match v.trim().parse::<u64>() {
                    Ok(i) if i < count => Ok((i + 1, count)),
                    _ => Err(format!(
                        "JOB_COMPLETION_INDEX=`{v}` is not a shard index from 0 to {}",
                        count - 1
                    )),
                }
            }
        }
    }
}

/// A scenario, some of its variants, and maybe a seed: `NAME`,
/// `NAME/VARIANT`, `NAME@SEED`, `NAME/VARIANT@SEED`.
pub(crate) struct Target<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) variants: Vec<&'static Variant>,
    pub(crate) seed: Option<Seed>,
}

/// Finds a scenario by name.
pub(crate) fn find<'a>(scenarios: &'a [Scenario], name: &str) -> Result<&'a Scenario, String> {
    scenarios.iter().find(|s| s.name() == name).ok_or_else(|| {
        let known: Vec<&str> = scenarios.iter().map(|s| s.name()).collect();
        if known.is_empty() {
            format!("unknown scenario `{name}`: this binary registers no scenario")
        } else {
            format!(
                "unknown scenario `{name}`; known: {} (see `lockstep list`)",
                known.join(", ")
            )
        }
    })
}

/// Finds a variant by name.
pub(crate) fn variant(scenario: &Scenario, name: &str) -> Result<&'static Variant, String> {
    scenario.variant(name).ok_or_else(|| {
        let known: Vec<&str> = scenario.variants().iter().map(|v| v.name()).collect();
        format!(
            "scenario `{}` has no variant `{name}`; its variants: {}",
            scenario.name(),
            known.join(", ")
        )
    })
}

/// Resolves `NAME[/VARIANT][@SEED]`; `variant` (from `--variant`) narrows
/// it further.
pub(crate) fn target<'a>(
    scenarios: &'a [Scenario],
    spec: &str,
    variant_flag: Option<&str>,
) -> Result<Target<'a>, String> {
    let (rest, seed) = match spec.split_once('@') {
        Some((rest, seed)) => (
            rest,
            Some(parse_seed(seed).map_err(|e| format!("`{spec}`: {e}"))?),
        ),
        None => (spec, None),
    };
    let (name, v) = match rest.split_once('/') {
        Some((n, v)) => (n, Some(v)),
        None => (rest, None),
    };
    let scenario = find(scenarios, name)?;
    let variants = match v.or(variant_flag) {
        Some(v) => vec![variant(scenario, v)?],
        None => scenario.variants().iter().collect(),
    };
    Ok(Target {
        scenario,
        variants,
        seed,
    })
}

/// Exactly one variant of a target, or an error that lists them.
pub(crate) fn one_variant(t: &Target<'_>) -> Result<&'static Variant, String> {
    match t.variants.as_slice() {
        [v] => Ok(v),
        vs => {
            let names: Vec<&str> = vs.iter().map(|v| v.name()).collect();
            Err(format!(
                "scenario `{}` has variants {}: pick one, as `{}/{}` or with --variant",
                t.scenario.name(),
                names.join(", "),
                t.scenario.name(),
                names.first().copied().unwrap_or("VARIANT")
            ))
        }
    }
}

/// Where the command line writes bundles: `--bundle-dir`, else
/// `LOCKSTEP_BUNDLE_DIR`, else the target directory of this binary, else
/// `target/lockstep` under the current directory.
pub(crate) fn bundle_root(flag: Option<&Path>) -> PathBuf {
    match flag {
        Some(dir) => dir.to_path_buf(),
        None => crate::harness::bundle::root(|| PathBuf::from("target").join("lockstep")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_shards_parse_or_say_what_is_accepted() {
        assert_eq!(parse_range("0..200"), Ok(SeedRange { start: 0, end: 200 }));
        assert_eq!(
            parse_range("0x10..=0x11"),
            Ok(SeedRange { start: 16, end: 18 })
        );
        assert!(parse_range("5..2").unwrap_err().contains("empty"));
        assert!(parse_range("abc").unwrap_err().contains("A..B"));
        assert!(parse_range("1..zz").unwrap_err().contains("invalid seed"));
        assert_eq!(
            parse_shard("2/4"),
            Ok(ShardArg::Given { index: 2, count: 4 })
        );
        assert!(parse_shard("5/4").unwrap_err().contains("between 1 and 4"));
        assert!(parse_shard("0/4").is_err());
        assert_eq!(parse_shard("4"), Ok(ShardArg::FromEnv { count: 4 }));
        assert!(parse_faults("1.5").is_err());
        assert_eq!(
            parse_faults("at 1s crash a; at 2s restart a")
                .unwrap()
                .actions
                .len(),
            2
        );
        assert!(parse_faults("at 1s explode a").is_err());
    }
}
