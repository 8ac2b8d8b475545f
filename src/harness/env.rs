//! The `LOCKSTEP_*` environment variables a `#[sim_test]` reads.
//!
//! | variable | meaning | accepted values |
//! |---|---|---|
//! | `LOCKSTEP_SEED` | replay exactly this seed (overrides `seed`/`seeds`) | `0x1a7` or `423` |
//! | `LOCKSTEP_SEEDS` | how many seeds each test runs (overrides `seeds`) | a whole number ≥ 1 |
//! | `LOCKSTEP_SEED_BASE` | the first seed of the range (default 0) | a seed, or `random` |
//! | `LOCKSTEP_TRACE` | write the trace of the failing or replayed seed here | a file path; `.jsonl` writes JSON lines, anything else text |
//! | `LOCKSTEP_JOBS` | threads running a test's seeds (read by [`jobs`](super::jobs)); the first failing seed is the one one thread finds | a whole number ≥ 1, or `auto` |
//! | `LOCKSTEP_BUNDLE_DIR` | where failure bundles go (read by [`bundle`](super::bundle)) | a folder; default `<target dir>/lockstep` |
//! | `LOCKSTEP_SCHEDULE` | follow this recorded schedule exactly (its seed, every task pick, early clock move and draw) | a schedule (`S1:0x2a:-:0.1x3`), a file holding one, or a failure bundle's folder |
//! | `LOCKSTEP_SHRINK` | shrink the failing run's schedule to the fewest preemptions that still fail the same way, and report that run (what `lockstep shrink` asks a test binary to do) | `1` or `true` |
//!
//! An empty value counts as unset. Any other value that does not parse is a
//! test failure whose message names the variable, the value, and what is
//! accepted: a typo must not silently run the default.

use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};

use crate::runtime::{Schedule, Seed};

/// The parsed variables.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Env {
    pub(crate) seed: Option<Seed>,
    pub(crate) seeds: Option<u64>,
    pub(crate) base: Option<Seed>,
    pub(crate) trace: Option<PathBuf>,
    pub(crate) schedule: Option<Schedule>,
    pub(crate) shrink: bool,
}

impl Env {
    /// Reads the process environment.
    pub(crate) fn read() -> Result<Env, String> {
        Env::parse(|name| std::env::var(name).ok())
    }

    /// Parses from any lookup (tests pass a map).
    pub(crate) fn parse(get: impl Fn(&str) -> Option<String>) -> Result<Env, String> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mut env = Env::default();
        if let Some(v) = var("LOCKSTEP_SEED") {
            env.seed = Some(v.parse().map_err(|e| format!("LOCKSTEP_SEED: {e}"))?);
        }
        if let Some(v) = var("LOCKSTEP_SEEDS") {
            let n: u64 = v.trim().replace('_', "").parse().map_err(|_| {
                format!(
                    "LOCKSTEP_SEEDS=`{v}` is not a whole number: it sets how many seeds each \
                     test runs, e.g. LOCKSTEP_SEEDS=500"
                )
            })?;
            if n == 0 {
                return Err("LOCKSTEP_SEEDS=0: a test needs at least one seed".to_string());
            }
            env.seeds = Some(n);
        }
        if let Some(v) = var("LOCKSTEP_SEED_BASE") {
            env.base = Some(if v.trim().eq_ignore_ascii_case("random") {
                // Chosen outside any run, from the OS: only which seeds are
                // tried depends on it, and the report names the failing one.
                Seed(RandomState::new().hash_one(std::process::id()))
            } else {
                v.parse().map_err(|e| {
                    format!("LOCKSTEP_SEED_BASE: {e}; or `random` to explore fresh seeds")
                })?
            });
        }
        env.trace = var("LOCKSTEP_TRACE").map(PathBuf::from);
        if let Some(v) = var("LOCKSTEP_SCHEDULE") {
            let schedule = read_schedule(v.trim())?;
            if env.seed.is_some_and(|s| s != schedule.seed()) {
                return Err(format!(
                    "LOCKSTEP_SEED={} and LOCKSTEP_SCHEDULE (seed {}) disagree: a schedule \
                     names its seed; set one of them",
                    env.seed.unwrap_or_default(),
                    schedule.seed()
                ));
            }
            env.schedule = Some(schedule);
        }
        if let Some(v) = var("LOCKSTEP_SHRINK") {
            env.shrink = match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => {
                    return Err(format!(
                        "LOCKSTEP_SHRINK=`{v}` is not `1` or `0`: `1` shrinks the failing \
                         run's schedule"
                    ));
                }
            };
        }
        Ok(env)
    }
}

/// `LOCKSTEP_SCHEDULE`: a schedule's text, a file holding one, or a
/// bundle folder (its `schedule.txt`).
fn read_schedule(v: &str) -> Result<Schedule, String> {
    let what = "a schedule (`S1:0x2a:-:0.1x3`), a file holding one, or a failure bundle's folder";
    let path = Path::new(v);
    let text = if v.starts_with("S1:") {
        v.to_string()
    } else if path.is_dir() {
        let file = path.join("schedule.txt");
        std::fs::read_to_string(&file).map_err(|e| {
            format!(
                "LOCKSTEP_SCHEDULE={v}: the bundle has no schedule ({}: {e}); expected {what}",
                file.display()
            )
        })?
    } else if path.is_file() {
        std::fs::read_to_string(path)
            .map_err(|e| format!("LOCKSTEP_SCHEDULE={v}: cannot read it: {e}"))?
    } else if v.starts_with('S') {
        v.to_string()
    } else {
        return Err(format!(
            "LOCKSTEP_SCHEDULE=`{v}` is neither a schedule nor an existing file or folder: \
             expected {what}"
        ));
    };
    text.trim()
        .parse()
        .map_err(|e| format!("LOCKSTEP_SCHEDULE: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Env, String> {
        Env::parse(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn values_parse() {
        let env = parse(&[
            ("LOCKSTEP_SEED", "0x1a7"),
            ("LOCKSTEP_SEEDS", "1_000"),
            ("LOCKSTEP_SEED_BASE", "77"),
            ("LOCKSTEP_TRACE", "out.jsonl"),
        ])
        .unwrap();
        assert_eq!(env.seed, Some(Seed(0x1a7)));
        assert_eq!(env.seeds, Some(1000));
        assert_eq!(env.base, Some(Seed(77)));
        assert_eq!(env.trace, Some(PathBuf::from("out.jsonl")));
        assert_eq!(parse(&[("LOCKSTEP_SEED", " ")]).unwrap(), Env::default());
        assert!(
            parse(&[("LOCKSTEP_SEED_BASE", "random")])
                .unwrap()
                .base
                .is_some()
        );
    }

    #[test]
    fn bad_values_say_what_is_accepted() {
        let e = parse(&[("LOCKSTEP_SEED", "0xzz")]).unwrap_err();
        assert!(e.starts_with("LOCKSTEP_SEED: invalid seed `0xzz`"), "{e}");
        assert!(e.contains("0x1a7") && e.contains("423"), "{e}");
        let e = parse(&[("LOCKSTEP_SEEDS", "many")]).unwrap_err();
        assert!(
            e.contains("LOCKSTEP_SEEDS=`many` is not a whole number"),
            "{e}"
        );
        assert!(
            parse(&[("LOCKSTEP_SEEDS", "0")])
                .unwrap_err()
                .contains("at least one")
        );
        let e = parse(&[("LOCKSTEP_SEED_BASE", "soon")]).unwrap_err();
        assert!(e.contains("`random`"), "{e}");
        let e = parse(&[("LOCKSTEP_SCHEDULE", "S1:0x1:-:0.q")]).unwrap_err();
        assert!(e.starts_with("LOCKSTEP_SCHEDULE: invalid schedule"), "{e}");
        let e = parse(&[("LOCKSTEP_SCHEDULE", "/no/such/bundle")]).unwrap_err();
        assert!(e.contains("neither a schedule"), "{e}");
        let e = parse(&[("LOCKSTEP_SCHEDULE", "S1:0x1:-:0"), ("LOCKSTEP_SEED", "2")]).unwrap_err();
        assert!(e.contains("disagree"), "{e}");
        let e = parse(&[("LOCKSTEP_SHRINK", "maybe")]).unwrap_err();
        assert!(e.contains("LOCKSTEP_SHRINK=`maybe`"), "{e}");
        let env = parse(&[
            ("LOCKSTEP_SCHEDULE", "S1:0x5:-:0.1"),
            ("LOCKSTEP_SHRINK", "1"),
        ])
        .unwrap();
        assert_eq!(env.schedule.unwrap().seed(), Seed(5));
        assert!(env.shrink);
    }
}
