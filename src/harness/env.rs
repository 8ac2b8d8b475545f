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
//!
//! An empty value counts as unset. Any other value that does not parse is a
//! test failure whose message names the variable, the value, and what is
//! accepted: a typo must not silently run the default.

use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;

use crate::runtime::Seed;

/// The parsed variables.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Env {
    pub(crate) seed: Option<Seed>,
    pub(crate) seeds: Option<u64>,
    pub(crate) base: Option<Seed>,
    pub(crate) trace: Option<PathBuf>,
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
        Ok(env)
    }
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
    }
}
