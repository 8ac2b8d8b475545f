//! Reading failure bundles (the writer is `harness::bundle`, which
//! `#[sim_test]` uses without the `cli` feature).
//!
//! A folder is a bundle when it holds a `bundle.json` that parses; every
//! problem with one (missing, not JSON, a field that does not parse, a
//! missing trace) is a one-line error naming the file and what was wrong.

use std::path::{Path, PathBuf};

use crate::harness::bundle::Manifest;
use crate::runtime::{Seed, Sim};
use crate::time::Duration;
use crate::trace::Trace;

/// An opened bundle.
pub(crate) struct Bundle {
    pub(crate) dir: PathBuf,
    pub(crate) manifest: Manifest,
}

impl Bundle {
    /// Opens the bundle in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Bundle, String> {
        if !dir.is_dir() {
            return Err(format!(
                "{} is not a failure bundle: {} (a bundle is a folder under target/lockstep/ \
                 holding bundle.json)",
                dir.display(),
                if dir.exists() {
                    "it is a file"
                } else {
                    "no such folder"
                }
            ));
        }
        let file = dir.join("bundle.json");
        let text = std::fs::read_to_string(&file).map_err(|e| {
            format!(
                "{} is not a failure bundle: cannot read {}: {e}",
                dir.display(),
                file.display()
            )
        })?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is corrupt: {e}; a bundle.json is written by lockstep for a failing seed",
                file.display()
            )
        })?;
        if manifest.format > crate::harness::bundle::FORMAT {
            return Err(format!(
                "{} was written by lockstep {} (bundle format {}); this lockstep reads format {}",
                file.display(),
                manifest.lockstep_version,
                manifest.format,
                crate::harness::bundle::FORMAT
            ));
        }
        let bundle = Bundle {
            dir: dir.to_path_buf(),
            manifest,
        };
        bundle.manifest.seed()?;
        Ok(bundle)
    }

    /// The recorded trace.
    pub(crate) fn trace(&self) -> Result<Trace, String> {
        let file = self.dir.join("trace.jsonl");
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read the bundle's trace {}: {e}", file.display()))?;
        Trace::from_jsonl(&text).map_err(|e| format!("{} is corrupt: {e}", file.display()))
    }

    /// `lost-update/buggy seed 0x3` or `race::my_test seed 0x3`.
    pub(crate) fn title(&self) -> String {
        let m = &self.manifest;
        match (&m.scenario, &m.test) {
            (Some(s), _) => format!("{}/{} seed {}", s.name, s.variant, m.seed),
            (None, Some(t)) => format!("{} ({}) seed {}", t.test, t.package, m.seed),
            _ => format!("seed {}", m.seed),
        }
    }
}

impl Manifest {
    /// The seed.
    pub(crate) fn seed(&self) -> Result<Seed, String> {
        self.seed
            .parse()
            .map_err(|e| format!("bundle.json: seed: {e}"))
    }

    /// The settings of the recorded run, full tracing.
    pub(crate) fn sim(&self) -> Result<Sim, String> {
        let spec = crate::runtime::parse_policy_spec(&self.policy)
            .map_err(|e| format!("bundle.json: policy: {e}"))?;
        let mut b = spec.apply(
            Sim::builder()
                .seed(self.seed()?)
                .verbosity(crate::Verbosity::Full),
        );
        b = match &self.max_virtual_time {
            Some(t) => b.max_virtual_time(parse_secs(t)?),
            None => b.no_time_limit(),
        };
        b = match self.max_steps {
            Some(n) => b.max_steps(n),
            None => b.no_step_limit(),
        };
        if let Some(plan) = &self.faults {
            b = b.faults(
                plan.parse()
                    .map_err(|e| format!("bundle.json: faults: {e}"))?,
            );
        }
        if let Some(schedule) = &self.schedule {
            b = b.replay(
                schedule
                    .parse()
                    .map_err(|e| format!("bundle.json: schedule: {e}"))?,
            );
        }
        Ok(b.build())
    }
}

/// `1.500s` → 1.5 s (what [`format_duration`] writes), or any duration
/// [`parse_duration`](crate::time::parse_duration) takes (`1h30m`), exactly.
fn parse_secs(t: &str) -> Result<Duration, String> {
    crate::time::parse_duration(t)
        .map_err(|e| format!("bundle.json: {e}; `3600.000s` is what bundles write"))
}
