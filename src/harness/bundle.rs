//! Failure bundles: one folder per failing seed with everything needed to
//! reproduce and read it.
//!
//! A failing `#[sim_test]` seed and every failing seed `lockstep explore`
//! keeps leaves a folder under `<target dir>/lockstep/` (or
//! `LOCKSTEP_BUNDLE_DIR`):
//!
//! | file | what |
//! |---|---|
//! | `bundle.json` | the [`Manifest`]: seed, failure, policy, limits, fault plan, decision hash, lockstep version, and what ran (a scenario and variant, or a test binary, package, test name and cargo profile) |
//! | `failure.txt` | the failure report, as printed |
//! | `trace.txt` | the trace, one event a line |
//! | `trace.jsonl` | the trace as JSON lines (what `lockstep replay` compares against) |
//! | `trace.perfetto.json` | the trace for ui.perfetto.dev |
//! | `faults.txt` | the fault plan as given, and the plan a random one drew |
//! | `schedule.txt` | the run's schedule, when known (`LOCKSTEP_SCHEDULE=<folder>` follows it) |
//!
//! `lockstep replay <folder>` reruns exactly what the manifest records and
//! says whether the failure was reproduced, fixed, or diverged. The folder
//! is written beside its destination and renamed into place, so a reader
//! never sees half a bundle.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::fault::{FaultAction, FaultPlan};
use crate::runtime::{Outcome, Sim};
use crate::time::format_duration;
use crate::trace::{EventKind, Trace};

/// The manifest format; bumped when a field changes meaning.
pub(crate) const FORMAT: u32 = 1;

/// `bundle.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Manifest {
    /// [`FORMAT`] of the writer.
    pub(crate) format: u32,
    /// The lockstep version that wrote it.
    pub(crate) lockstep_version: String,
    /// `0x…`.
    pub(crate) seed: String,
    /// `panic`, `deadlock`, … (`returned-error` for a test body's `Err`).
    pub(crate) failure_kind: String,
    /// The first line of the failure.
    pub(crate) failure: String,
    /// The scheduling policy.
    pub(crate) policy: String,
    /// `3600.000s`, or `None` without a limit.
    pub(crate) max_virtual_time: Option<String>,
    /// The step limit, if any.
    pub(crate) max_steps: Option<u64>,
    /// The fault plan as given (text form), if any.
    pub(crate) faults: Option<String>,
    /// The concrete plan a `random` plan drew in this run, if any.
    pub(crate) faults_drawn: Option<String>,
    /// The schedule of the run (text form): the one it replayed (a bundle
    /// written by `lockstep shrink` after shrinking the interleaving), or
    /// the one a failing `#[sim_test]` run recorded. Following it exactly
    /// reproduces the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) schedule: Option<String>,
    /// Whether the run followed `schedule` (a replay, a shrunk run) rather
    /// than recording it from its seed: `lockstep replay` of a
    /// `#[sim_test]` bundle then follows it too (`LOCKSTEP_SCHEDULE`),
    /// else it reruns the seed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) follows_schedule: bool,
    /// The decision hash of the failing run, `0x…`.
    pub(crate) decision_hash: String,
    /// Events in the trace.
    pub(crate) events: usize,
    /// Steps taken.
    pub(crate) steps: u64,
    /// Virtual time at the end.
    pub(crate) virtual_time: String,
    /// A scenario's run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scenario: Option<ScenarioRun>,
    /// A `#[sim_test]`'s run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) test: Option<TestRun>,
}

/// What ran, for a scenario.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct ScenarioRun {
    /// The scenario's name.
    pub(crate) name: String,
    /// The variant's name.
    pub(crate) variant: String,
    /// What the variant declares.
    pub(crate) expect: String,
}

/// What ran, for a `#[sim_test]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct TestRun {
    /// The test binary (`std::env::current_exe`).
    pub(crate) binary: String,
    /// The cargo package.
    pub(crate) package: String,
    /// The crate (target) name.
    pub(crate) crate_name: String,
    /// The test's path as libtest names it.
    pub(crate) test: String,
    /// The cargo target selector (`--test race`).
    pub(crate) target: String,
    /// The cargo profile (`dev`, `release`, …) the binary was built with.
    pub(crate) profile: String,
    /// Whether the test is `#[ignore]`d (libtest then needs `--include-ignored`).
    pub(crate) ignored: bool,
    /// The directory the test ran in (cargo runs tests in their package's).
    pub(crate) cwd: String,
    /// The `LOCKSTEP_SEED=… cargo test …` line.
    pub(crate) replay_command: String,
}

impl Manifest {
    /// The manifest of a failing run of `sim` (its settings as given).
    pub(crate) fn new<T>(
        sim: &Sim,
        outcome: &Outcome<T>,
        failure_kind: &str,
        failure: &str,
    ) -> Manifest {
        let faults = sim.faults().filter(|p| !p.is_empty());
        Manifest {
            format: FORMAT,
            lockstep_version: env!("CARGO_PKG_VERSION").to_string(),
            seed: outcome.seed().to_string(),
            failure_kind: failure_kind.to_string(),
            failure: failure.lines().next().unwrap_or_default().to_string(),
            policy: crate::runtime::PolicySpec {
                policy: sim.policy(),
                cost: sim.poll_cost(),
                late: sim.late_polls(),
            }
            .to_string(),
            max_virtual_time: sim.max_virtual_time().map(format_duration),
            max_steps: sim.max_steps(),
            faults: faults.map(ToString::to_string),
            faults_drawn: faults
                .and_then(|p| drawn_plan(p, outcome.trace()))
                .map(|p| p.to_string()),
            schedule: sim.replay_schedule().map(ToString::to_string),
            follows_schedule: sim.replay_schedule().is_some(),
            decision_hash: format!("{:#x}", outcome.determinism_hash()),
            events: outcome.trace().len(),
            steps: outcome.stats().steps,
            virtual_time: format_duration(outcome.stats().virtual_time),
            scenario: None,
            test: None,
        }
    }
}

/// The concrete plan a plan with `random` actions drew in the run that
/// left `trace`: each `random` action replaced by the actions
/// [`FaultPlan::generate`] drew for it (its seed is in the trace's `fault:
/// random …` line), at its time. `None` if `plan` draws nothing, or the
/// trace does not say what was drawn.
pub(crate) fn drawn_plan(plan: &FaultPlan, trace: &Trace) -> Option<FaultPlan> {
    if !plan
        .actions
        .iter()
        .any(|t| matches!(t.action, FaultAction::Random { .. }))
    {
        return None;
    }
    let mut draws = trace.events().filter_map(|e| match &e.kind {
        EventKind::Fault { action } if action.starts_with("random ") => {
            let hex = action.split("FaultPlan::generate(0x").nth(1)?;
            let hex: String = hex.chars().take_while(char::is_ascii_hexdigit).collect();
            u64::from_str_radix(&hex, 16).ok()
        }
        _ => None,
    });
    let mut actions = Vec::new();
    for t in &plan.actions {
        match &t.action {
            FaultAction::Random { intensity, horizon } => {
                let drawn = FaultPlan::generate(draws.next()?, *intensity, *horizon);
                actions.extend(drawn.actions.into_iter().map(|mut d| {
                    d.at += t.at;
                    d
                }));
            }
            _ => actions.push(t.clone()),
        }
    }
    Some(FaultPlan::from_actions(actions))
}

/// Where bundles go: `LOCKSTEP_BUNDLE_DIR` if set, else `<target
/// dir>/lockstep` (the target directory is the nearest ancestor of the
/// running binary that cargo marked with `CACHEDIR.TAG`), else `fallback`.
pub(crate) fn root(fallback: impl FnOnce() -> PathBuf) -> PathBuf {
    if let Some(dir) = std::env::var_os("LOCKSTEP_BUNDLE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().ok();
    exe.as_deref()
        .and_then(|e| e.ancestors().find(|a| a.join("CACHEDIR.TAG").is_file()))
        .map(|t| t.join("lockstep"))
        .unwrap_or_else(fallback)
}

/// The cargo profile the running binary was built with: `dev` for
/// `target/debug`, else the profile folder's name.
pub(crate) fn profile() -> String {
    let exe = std::env::current_exe().ok();
    let dir = exe.as_deref().and_then(|e| {
        let target = e.ancestors().find(|a| a.join("CACHEDIR.TAG").is_file())?;
        let rel = e.strip_prefix(target).ok()?;
        let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy());
        let first = parts.next()?.to_string();
        // `target/<triple>/<profile>/…` when cross-compiling.
        match parts.next() {
            Some(p) if first.contains('-') && p != "deps" && p != "build" => Some(p.to_string()),
            _ => Some(first),
        }
    });
    match dir.as_deref() {
        Some("debug") | None => "dev".to_string(),
        Some(p) => p.to_string(),
    }
}

/// Writes the bundle of a failing run into `dir` (replacing any bundle of
/// the same name); returns `dir`.
pub(crate) fn write(
    dir: &Path,
    manifest: &Manifest,
    failure_text: &str,
    trace: &Trace,
) -> std::io::Result<PathBuf> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let mut tmp = dir.as_os_str().to_owned();
    tmp.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let json = serde_json::to_string_pretty(manifest).map_err(std::io::Error::other)?;
    std::fs::write(tmp.join("bundle.json"), json + "\n")?;
    std::fs::write(tmp.join("failure.txt"), failure_text)?;
    std::fs::write(tmp.join("trace.txt"), trace.render())?;
    std::fs::write(tmp.join("trace.jsonl"), trace.to_jsonl())?;
    std::fs::write(
        tmp.join("trace.perfetto.json"),
        super::perfetto::to_perfetto(trace),
    )?;
    if let Some(schedule) = &manifest.schedule {
        std::fs::write(tmp.join("schedule.txt"), format!("{schedule}\n"))?;
    }
    if let Some(plan) = &manifest.faults {
        let mut text = format!("# the fault plan as given\n{plan}");
        if let Some(drawn) = &manifest.faults_drawn {
            text.push_str("\n# what its random actions drew in this run\n");
            text.push_str(drawn);
        }
        std::fs::write(tmp.join("faults.txt"), text)?;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&tmp);
    })?;
    Ok(dir.to_path_buf())
}

/// The bundle of a failing `#[sim_test]` seed.
pub(crate) fn write_for_test<T>(
    meta: &super::TestMeta,
    sim: &Sim,
    traced: &Outcome<T>,
    failure_kind: &str,
    report: &str,
    suffix: &str,
) -> Result<PathBuf, String> {
    let seed = traced.seed();
    let mut manifest = Manifest::new(sim, traced, failure_kind, first_failure_line(report));
    if manifest.schedule.is_none() {
        manifest.schedule = traced.schedule().map(ToString::to_string);
    }
    manifest.test = Some(TestRun {
        binary: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        package: meta.package.to_string(),
        crate_name: meta.crate_name.to_string(),
        test: meta.test_path(),
        target: meta.target(),
        profile: profile(),
        ignored: meta.ignored,
        cwd: std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        replay_command: meta.replay_command(seed),
    });
    let dir = test_dir(meta, seed, suffix);
    write(&dir, &manifest, report, traced.trace())
        .map_err(|e| format!("could not write the failure bundle {}: {e}", dir.display()))
}

/// The bundle folder of a failing `#[sim_test]` seed (`suffix`: `-shrunk`
/// for the run of a shrunk schedule, else empty).
pub(crate) fn test_dir(meta: &super::TestMeta, seed: crate::Seed, suffix: &str) -> PathBuf {
    let name = format!(
        "{}__{}-{seed}{suffix}",
        meta.crate_name,
        meta.test_path().replace("::", "__")
    );
    root(std::env::temp_dir).join(name)
}

/// The failure's own first line in a `#[sim_test]` report (the report
/// opens with a heading, then the failure indented).
fn first_failure_line(report: &str) -> &str {
    report
        .lines()
        .skip(1)
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(report)
}

/// The lines a `#[sim_test]` report ends with to point at its bundle.
pub(crate) fn report_lines(bundle: &Result<PathBuf, String>) -> String {
    match bundle {
        Ok(dir) => {
            let mut lines = format!(
                "  bundle:        {}\n  replay bundle: lockstep replay {}\n",
                dir.display(),
                dir.display()
            );
            if dir.join("schedule.txt").is_file() {
                lines.push_str(&format!(
                    "  shrink:        lockstep shrink {} (a minimal interleaving that fails the \
                     same way)\n",
                    dir.display()
                ));
            }
            lines
        }
        Err(e) => format!("  bundle:        {e}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[test]
    fn a_random_plan_is_written_as_what_it_drew() {
        let sim = Sim::builder()
            .seed(5)
            .faults(FaultPlan::random(0.5))
            .build();
        let outcome = sim.run(async {
            lockstep_hosts();
            sleep(Duration::from_secs(40)).await;
        });
        let drawn = drawn_plan(sim.faults().unwrap(), outcome.trace()).unwrap();
        assert!(drawn.actions.len() > 1, "{drawn}");
        assert!(
            !drawn
                .actions
                .iter()
                .any(|t| matches!(t.action, FaultAction::Random { .. }))
        );
        let m = Manifest::new(&sim, &outcome, "panic", "boom\nmore");
        assert_eq!(m.failure, "boom");
        let back: Manifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    fn lockstep_hosts() {
        crate::net::Host::new("a", || async { Ok(()) });
        crate::net::Host::new("b", || async { Ok(()) });
    }
}
