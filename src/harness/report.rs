//! What a failing `#[sim_test]` prints, and the command that replays it.
//!
//! The report lists, in this order: the failure (and a panic's backtrace,
//! when `RUST_BACKTRACE` asked for one), the seed, the virtual time and step
//! count, the run's schedule (inline when short, else the bundle file that
//! holds it), the last events of the trace, the exact command that replays
//! the seed and the one that follows the schedule exactly; then where the
//! full trace was written, and (added by the caller) the bundle and the
//! `lockstep shrink` command that finds a minimal interleaving. The replay command is
//! built from what the macro captured at the test's definition
//! (`CARGO_PKG_NAME`, `CARGO_CRATE_NAME`, `file!()`, `module_path!()`), so
//! it selects exactly this test in exactly this target, and from where the
//! running test binary lives (`target/release/…` adds `--release`), so it
//! rebuilds nothing the failing run did not use.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::TestMeta;
use crate::check::Failure;
use crate::runtime::{Outcome, Schedule, Seed};
use crate::trace::Trace;

/// How many trace events a report shows.
pub(crate) const TAIL: usize = 25;

/// A schedule longer than this (in characters) is not printed in the
/// report: it is named by the bundle file that holds it.
pub(crate) const INLINE_SCHEDULE: usize = 200;

/// Why a seed failed.
pub(crate) enum Cause {
    /// The run failed.
    Failure(Failure),
    /// The test body returned `Err`.
    Returned(String),
    /// The traced replay of the failing seed did not match the first run.
    ReplayDiverged { first: String },
}

impl TestMeta {
    /// The test's path as libtest names it (`tests::my_test`, or `my_test`
    /// at a crate root).
    pub(crate) fn test_path(&self) -> String {
        match self.module_path.split_once("::") {
            Some((_, rest)) => format!("{rest}::{}", self.name),
            None => self.name.to_string(),
        }
    }

    /// The cargo target selector: `--lib`, `--bin NAME` or `--test NAME`.
    pub(crate) fn target(&self) -> String {
        let file = self.file.replace('\\', "/");
        if let Some(bin) = file.split("src/bin/").nth(1) {
            let stem = bin.split('/').next().unwrap_or(bin);
            return format!("--bin {}", stem.trim_end_matches(".rs"));
        }
        if self.crate_name == self.package.replace('-', "_") {
            if file.ends_with("src/main.rs") {
                return format!("--bin {}", self.package);
            }
            return "--lib".to_string();
        }
        // An integration test: `tests/NAME.rs` or `tests/NAME/main.rs`. The
        // target name keeps dashes that the crate name turned into `_`.
        let under_tests = file.rsplit_once("tests/").map(|(_, rest)| {
            rest.split('/')
                .next()
                .unwrap_or(rest)
                .trim_end_matches(".rs")
        });
        match under_tests {
            Some(t) if t.replace('-', "_") == self.crate_name => format!("--test {t}"),
            _ => format!("--test {}", self.crate_name),
        }
    }

    /// The command that reruns `seed` of this test alone, built the way
    /// the running test binary was (see [`build_flags`]).
    pub(crate) fn replay_command(&self, seed: Seed) -> String {
        self.replay_command_for(seed, &build_flags())
    }

    pub(crate) fn replay_command_for(&self, seed: Seed, flags: &str) -> String {
        self.command_with(&format!("LOCKSTEP_SEED={seed}"), flags)
    }

    /// The command that reruns this test following `schedule` exactly (a
    /// schedule's text, or the path of a file holding one).
    pub(crate) fn schedule_command(&self, schedule: &str) -> String {
        let value = if schedule.contains(char::is_whitespace) || schedule.contains('\'') {
            format!("'{}'", schedule.replace('\'', r"'\''"))
        } else {
            schedule.to_string()
        };
        self.command_with(&format!("LOCKSTEP_SCHEDULE={value}"), &build_flags())
    }

    fn command_with(&self, env: &str, flags: &str) -> String {
        format!(
            "{env} cargo test{flags} -p {} {} -- {} --exact{}",
            self.package,
            self.target(),
            self.test_path(),
            if self.ignored {
                " --include-ignored"
            } else {
                ""
            }
        )
    }

    fn file_stem(&self, seed: Seed) -> String {
        format!(
            "{}__{}-{seed}",
            self.crate_name,
            self.test_path().replace("::", "__")
        )
    }
}

/// The cargo flags that build the running test binary again: ` --release`
/// for one under `target/release/`, ` --profile NAME` for a custom profile,
/// and ` --target TRIPLE` when cross-built; empty for the default debug
/// build. A replay under another profile would rebuild everything and might
/// not reproduce the timing-dependent behaviour of the code under test.
pub(crate) fn build_flags() -> String {
    let exe = std::env::current_exe().ok();
    let target_dir = exe
        .as_deref()
        .and_then(|e| e.ancestors().find(|a| a.join("CACHEDIR.TAG").is_file()));
    match (exe.as_deref(), target_dir) {
        (Some(exe), Some(dir)) => flags_for(exe.strip_prefix(dir).unwrap_or(exe)),
        // Not under a cargo target directory: fall back on how lockstep
        // itself was compiled.
        _ if cfg!(debug_assertions) => String::new(),
        _ => " --release".to_string(),
    }
}

/// The flags for a binary at `rel`, relative to the target directory
/// (`release/deps/x-123`, `x86_64-unknown-linux-gnu/debug/deps/x-123`).
pub(crate) fn flags_for(rel: &Path) -> String {
    let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    let (triple, profile) = match parts.as_slice() {
        [profile, "deps", _] => (None, *profile),
        [triple, profile, "deps", _] => (Some(*triple), *profile),
        _ => (None, "debug"),
    };
    let mut flags = match profile {
        "debug" => String::new(),
        "release" => " --release".to_string(),
        custom => format!(" --profile {custom}"),
    };
    if let Some(triple) = triple {
        flags.push_str(&format!(" --target {triple}"));
    }
    flags
}

/// Where trace files go: `<target dir>/lockstep/`. The target directory is
/// the nearest ancestor of the test binary that cargo marked with
/// `CACHEDIR.TAG` (so `CARGO_TARGET_DIR` and custom profiles just work).
pub(crate) fn trace_dir() -> PathBuf {
    let exe = std::env::current_exe().ok();
    let target = exe
        .as_deref()
        .and_then(|e| e.ancestors().find(|a| a.join("CACHEDIR.TAG").is_file()))
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    target.join("lockstep")
}

/// Writes a trace as text, or as JSON lines if `path` ends in `.jsonl`.
///
/// The file is written beside its destination and renamed into place, so a
/// reader never sees half a trace, even when several test processes (say,
/// under `cargo nextest`) write the trace of the same seed at once.
pub(crate) fn write_trace(path: &Path, trace: &Trace) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let text = if path.extension().is_some_and(|e| e == "jsonl") {
        trace.to_jsonl()
    } else {
        trace.render()
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Makes sure a trace can be written at `path`: its directory exists (or
/// is created) and `path` is not a directory.
pub(crate) fn prepare_trace_path(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("this is a directory; give a file path (`trace.txt`, or \
                    `trace.jsonl` for JSON lines)"
            .to_string());
    }
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "its directory {} does not exist and cannot be created: {e}",
                dir.display()
            )
        }),
        None => Ok(()),
    }
}

/// Writes both forms of the failing seed's trace; returns the text path, or
/// why it could not be written.
pub(crate) fn write_failure_traces(
    meta: &TestMeta,
    seed: Seed,
    suffix: &str,
    trace: &Trace,
) -> Result<PathBuf, String> {
    let dir = trace_dir();
    let stem = format!("{}{suffix}", meta.file_stem(seed));
    let text = dir.join(format!("{stem}.txt"));
    let jsonl = dir.join(format!("{stem}.jsonl"));
    write_trace(&text, trace)
        .and_then(|()| write_trace(&jsonl, trace))
        .map_err(|e| format!("could not write the trace under {}: {e}", dir.display()))?;
    Ok(text)
}

/// The report of a failing seed.
pub(crate) fn render<T>(
    meta: &TestMeta,
    seed: Seed,
    tried: (usize, usize),
    cause: &Cause,
    traced: &Outcome<T>,
    trace_file: &Result<PathBuf, String>,
    run: RunSchedule<'_>,
) -> String {
    let RunSchedule {
        bundle_dir,
        follows_schedule,
    } = run;
    let mut r = String::new();
    let (index, total) = tried;
    let _ = writeln!(
        r,
        "lockstep: `{}` failed for seed {seed} (seed {} of {total} tried)\n",
        meta.test_path(),
        index + 1
    );
    let failure = match cause {
        Cause::Failure(f) => f.to_string(),
        Cause::Returned(e) => format!("the test returned an error: {e}"),
        Cause::ReplayDiverged { first } => format!(
            "non-determinism: the seed failed ({first}), but replaying it with tracing on took \
             a different path; something outside the seed reached the run (wall-clock time, \
             thread_rng, HashMap order, another thread)"
        ),
    };
    for line in failure.lines() {
        let _ = writeln!(r, "  {line}");
    }
    if let Cause::Failure(f) = cause {
        if let Some(bt) = f.backtrace() {
            let _ = writeln!(r, "\n  backtrace of the panic:");
            for line in bt.to_string().lines() {
                let _ = writeln!(r, "    {line}");
            }
        }
    }
    let stats = traced.stats();
    let _ = writeln!(r, "\n  seed:          {seed}");
    let _ = writeln!(
        r,
        "  virtual time:  {} after {}",
        crate::time::format_duration(stats.virtual_time),
        crate::check::plural(stats.steps, "step")
    );
    let schedule = traced.schedule().map(|s| (s, s.to_string()));
    if let Some((s, text)) = &schedule {
        if text.len() <= INLINE_SCHEDULE {
            let _ = writeln!(r, "  schedule:      {text}");
            let _ = writeln!(r, "                 ({})", describe_schedule(s));
        } else {
            let _ = writeln!(
                r,
                "  schedule:      {}: in {}",
                describe_schedule(s),
                schedule_file(bundle_dir).display()
            );
        }
    } else if let Some(bound) = traced.schedule_dropped() {
        let _ = writeln!(
            r,
            "  schedule:      not kept: the run passed {bound} steps, where a ring-mode \
             trace drops it (the seed replays the run exactly)"
        );
    }
    let _ = writeln!(r, "\n  last events:");
    for line in traced.trace().render_tail(TAIL).lines() {
        let _ = writeln!(r, "    {line}");
    }
    let same = schedule.as_ref().map(|(_, text)| {
        let spec = if text.len() <= INLINE_SCHEDULE {
            text.clone()
        } else {
            schedule_file(bundle_dir).display().to_string()
        };
        meta.schedule_command(&spec)
    });
    match (same, follows_schedule) {
        // The run followed a schedule (a replay, a shrunk run): rerunning
        // the seed would not reproduce it.
        (Some(same), true) => {
            let _ = writeln!(r, "\n  replay:        {same}");
        }
        (same, _) => {
            let _ = writeln!(r, "\n  replay:        {}", meta.replay_command(seed));
            if let Some(same) = same {
                let _ = writeln!(r, "  same schedule: {same}");
            }
        }
    }
    match trace_file {
        Ok(path) => {
            let _ = writeln!(r, "  full trace:    {} (and .jsonl)", path.display());
        }
        Err(e) => {
            let _ = writeln!(r, "  full trace:    {e}");
        }
    }
    r
}

/// What the report says about the run's schedule: where its bundle keeps
/// it, and whether the run followed it (a replay, a shrunk run) rather
/// than drawing it from the seed.
pub(crate) struct RunSchedule<'a> {
    pub(crate) bundle_dir: &'a Path,
    pub(crate) follows_schedule: bool,
}

/// Where a bundle keeps its schedule.
pub(crate) fn schedule_file(bundle_dir: &Path) -> PathBuf {
    bundle_dir.join("schedule.txt")
}

/// `412 steps, 37 preemptions, 2 early clock moves, 1 draw`.
pub(crate) fn describe_schedule(s: &Schedule) -> String {
    use crate::check::plural;
    let mut parts = vec![
        plural(s.steps(), "step"),
        plural(s.preemptions().unwrap_or(s.switches()), "preemption"),
    ];
    if s.early_clock_moves() > 0 {
        parts.push(plural(s.early_clock_moves(), "early clock move"));
    }
    if s.draws() > 0 {
        parts.push(plural(s.draws(), "draw"));
    }
    if let Some(c) = s.poll_cost() {
        parts.push(c.to_string());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_command_matches_the_profile_the_test_ran_under() {
        let flags = |p: &str| flags_for(Path::new(p));
        assert_eq!(flags("debug/deps/race-1a2b"), "");
        assert_eq!(flags("release/deps/race-1a2b"), " --release");
        assert_eq!(flags("ci/deps/race-1a2b"), " --profile ci");
        assert_eq!(
            flags("aarch64-unknown-linux-gnu/release/deps/race-1a2b"),
            " --release --target aarch64-unknown-linux-gnu"
        );
        // This very test binary runs from the debug profile.
        assert_eq!(
            build_flags(),
            if cfg!(debug_assertions) {
                ""
            } else {
                " --release"
            }
        );
    }

    fn meta(
        file: &'static str,
        module_path: &'static str,
        package: &'static str,
        krate: &'static str,
    ) -> TestMeta {
        TestMeta {
            name: "my_test",
            module_path,
            file,
            package,
            crate_name: krate,
            ignored: false,
        }
    }

    /// A run longer than `TraceMode::DEFAULT_RING` steps, traced into a
    /// ring, drops its schedule (its memory stays flat): the report says
    /// so, and its replay command is the seed's.
    #[test]
    fn a_report_says_when_a_long_run_kept_no_schedule() {
        let steps = crate::trace::TraceMode::DEFAULT_RING as u64 + 1;
        let outcome = crate::Sim::builder()
            .seed(4)
            .verbosity(crate::trace::Verbosity::Summary)
            .trace_mode(crate::trace::TraceMode::Ring(10))
            .no_step_limit()
            .livelock_steps(u64::MAX)
            .build()
            .run(async move {
                for _ in 1..steps {
                    crate::task::yield_now().await;
                }
                panic!("after a million steps");
            });
        assert!(outcome.schedule().is_none());
        let cause = Cause::Failure(outcome.failure().expect("the run panics").clone());
        let dir = Path::new("target/lockstep/long");
        let run = RunSchedule {
            bundle_dir: dir,
            follows_schedule: false,
        };
        let m = meta("tests/long.rs", "long", "lockstep", "long");
        let report = render(&m, Seed(4), (1, 1), &cause, &outcome, &Err("-".into()), run);
        let line = |label: &str| {
            report
                .lines()
                .find_map(|l| l.trim_start().strip_prefix(label))
                .unwrap_or_else(|| panic!("no `{label}` line in:\n{report}"))
                .trim()
                .to_string()
        };
        assert_eq!(
            line("schedule:"),
            format!(
                "not kept: the run passed {} steps, where a ring-mode trace drops it \
                 (the seed replays the run exactly)",
                steps - 1
            )
        );
        assert!(
            line("replay:").starts_with("LOCKSTEP_SEED=0x4 cargo test"),
            "{report}"
        );
    }

    #[test]
    fn replay_commands_select_the_right_target() {
        let integration = meta("tests/race.rs", "race", "lockstep", "race");
        assert_eq!(
            integration.replay_command_for(Seed(0x1a7), ""),
            "LOCKSTEP_SEED=0x1a7 cargo test -p lockstep --test race -- my_test --exact"
        );
        let dashed = meta("app/tests/my-race.rs", "my_race::nested", "app", "my_race");
        assert_eq!(dashed.target(), "--test my-race");
        assert_eq!(dashed.test_path(), "nested::my_test");
        let dir = meta("tests/suite/main.rs", "suite", "app", "suite");
        assert_eq!(dir.target(), "--test suite");
        let included = meta("tests/common/mod.rs", "suite::common", "app", "suite");
        assert_eq!(included.target(), "--test suite");
        let unit = meta("src/lib.rs", "my_app::tests", "my-app", "my_app");
        assert_eq!(unit.target(), "--lib");
        assert_eq!(unit.test_path(), "tests::my_test");
        let bin = meta("src/bin/tool.rs", "tool", "app", "tool");
        assert_eq!(bin.target(), "--bin tool");
        assert_eq!(
            integration.replay_command_for(Seed(1), " --release"),
            "LOCKSTEP_SEED=0x1 cargo test --release -p lockstep --test race -- my_test --exact"
        );
        let mut ignored = integration;
        ignored.ignored = true;
        assert!(
            ignored
                .replay_command(Seed(1))
                .ends_with("--exact --include-ignored")
        );
    }
}
