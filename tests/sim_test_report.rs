//! A failing `#[sim_test]`: the report names the failure, the seed, the time
//! and steps, the last events and the replay command; running that command's
//! environment reproduces the same failure and the same trace.
//!
//! The failing test is `#[ignore]`d (it fails on purpose) and run in a child
//! process: this same test binary, selected with `--exact --ignored`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lockstep::prelude::*;

mod common;

#[lockstep::sim_test(seeds = 200)]
#[ignore = "fails on purpose: driven by the tests below"]
async fn racy_counter() {
    common::lost_update(3).await;
}

/// A race after a long stretch of work: its schedule is too long to print.
#[lockstep::sim_test(seeds = 200)]
#[ignore = "fails on purpose: driven by the tests below"]
async fn racy_after_long_work() {
    let busy: Vec<_> = (0..4)
        .map(|_| {
            spawn(async {
                for _ in 0..40 {
                    yield_now().await;
                }
            })
        })
        .collect();
    for b in busy {
        b.await.unwrap();
    }
    common::lost_update(3).await;
}

fn child(envs: &[(&str, &Path)], seed: Option<&str>) -> Output {
    child_of("racy_counter", envs, seed)
}

fn child_of(test: &str, envs: &[(&str, &Path)], seed: Option<&str>) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--ignored", "--test-threads=1"]);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LOCKSTEP_")) {
        cmd.env_remove(k);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    if let Some(s) = seed {
        cmd.env("LOCKSTEP_SEED", s);
    }
    cmd.output().unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lockstep-report-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn field<'a>(report: &'a str, label: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{report}"))
        .trim()
}

#[test]
fn a_failing_seed_is_reported_and_replays_exactly() {
    let first_trace = scratch("first.txt");
    let out = child(&[("LOCKSTEP_TRACE", &first_trace)], None);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");

    // The failure, the seed, time and steps, the last events, the command.
    let seed = field(&report, "seed:");
    assert!(seed.starts_with("0x"), "{report}");
    assert!(
        report.contains(&format!(
            "lockstep: `racy_counter` failed for seed {seed} (seed "
        )),
        "{report}"
    );
    assert!(
        report.contains("the main task panicked at tests/common/mod.rs:"),
        "{report}"
    );
    assert!(report.contains("lost update"), "{report}");
    assert!(
        field(&report, "virtual time:").ends_with("steps"),
        "{report}"
    );
    assert!(report.contains("last events:"), "{report}");
    assert!(report.contains("FAILED (panic)"), "{report}");
    let replay = field(&report, "replay:");
    assert_eq!(
        replay,
        format!(
            "LOCKSTEP_SEED={seed} cargo test -p lockstep --test sim_test_report -- racy_counter \
             --exact --include-ignored"
        )
    );
    let order = [
        "panicked at",
        "seed:",
        "virtual time:",
        "last events:",
        "replay:",
        "full trace:",
    ];
    let positions: Vec<usize> = order.iter().map(|s| report.find(s).unwrap()).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "report order: {report}"
    );

    // The full trace was written under target/lockstep/.
    let full = field(&report, "full trace:").trim_end_matches(" (and .jsonl)");
    assert!(
        full.contains("/lockstep/sim_test_report__racy_counter-0x"),
        "{full}"
    );
    let written = std::fs::read_to_string(full).unwrap();
    assert_eq!(written, std::fs::read_to_string(&first_trace).unwrap());
    let jsonl = std::fs::read_to_string(full.replace(".txt", ".jsonl")).unwrap();
    assert_eq!(
        lockstep::trace::Trace::from_jsonl(&jsonl).unwrap().render(),
        written
    );

    // Replaying with LOCKSTEP_SEED reproduces the failure and the trace.
    let replay_trace = scratch("replay.txt");
    let again = child(&[("LOCKSTEP_TRACE", &replay_trace)], Some(seed));
    let replay_report = String::from_utf8_lossy(&again.stdout);
    assert!(!again.status.success());
    assert!(
        replay_report.contains(&format!("failed for seed {seed} (seed 1 of 1 tried)")),
        "{replay_report}"
    );
    assert_eq!(
        std::fs::read_to_string(&replay_trace).unwrap(),
        written,
        "the replay's trace is byte-identical"
    );
}

#[test]
fn a_bad_environment_value_is_a_clear_error() {
    let out = child(&[], Some("0xnot-a-seed"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("lockstep: LOCKSTEP_SEED: invalid seed `0xnot-a-seed`"),
        "{text}"
    );
    assert!(
        text.contains("in hex with a 0x prefix (0x1a7) or in decimal (423)"),
        "{text}"
    );
}

#[test]
fn a_passing_replayed_seed_still_writes_its_trace() {
    let path = scratch("passing.jsonl");
    // Not every schedule loses an update: replay seeds until one passes.
    let seed = (0..200u64)
        .map(|s| format!("{s:#x}"))
        .find(|s| {
            child(&[("LOCKSTEP_TRACE", &path)], Some(s))
                .status
                .success()
        })
        .expect("some seed passes the racy counter");
    let trace =
        lockstep::trace::Trace::from_jsonl(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        !trace.is_empty(),
        "seed {seed}: the replayed run's trace is written"
    );
}

#[test]
fn a_trace_path_that_cannot_be_written_is_reported_before_any_seed_runs() {
    let file = scratch("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let path = file.join("sub").join("trace.txt");
    let out = child(&[("LOCKSTEP_TRACE", &path)], Some("0x1"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("lockstep: LOCKSTEP_TRACE="), "{stdout}");
    assert!(stdout.contains("cannot be created"), "{stdout}");
    assert!(!stdout.contains("failed for seed"), "{stdout}");
}

#[test]
fn the_report_shows_the_schedule_and_following_it_replays_exactly() {
    let bundles = scratch("schedule-bundles");
    let first_trace = scratch("schedule-first.txt");
    let out = child(
        &[
            ("LOCKSTEP_BUNDLE_DIR", &bundles),
            ("LOCKSTEP_TRACE", &first_trace),
        ],
        None,
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    let seed = field(&report, "seed:").to_string();

    // Short: printed inline, with what it holds.
    let schedule = field(&report, "schedule:");
    assert!(schedule.starts_with(&format!("S1:{seed}:")), "{report}");
    let parsed: lockstep::explore::Schedule = schedule.parse().unwrap();
    assert!(
        report.contains(&format!("({} steps, ", parsed.steps())),
        "{report}"
    );
    // The command that follows it exactly.
    assert_eq!(
        field(&report, "same schedule:"),
        format!(
            "LOCKSTEP_SCHEDULE={schedule} cargo test -p lockstep --test sim_test_report -- \
             racy_counter --exact --include-ignored"
        )
    );
    // The bundle keeps it, and the report suggests shrinking it.
    let bundle = PathBuf::from(field(&report, "bundle:"));
    assert_eq!(
        std::fs::read_to_string(bundle.join("schedule.txt"))
            .unwrap()
            .trim(),
        schedule
    );
    let manifest = std::fs::read_to_string(bundle.join("bundle.json")).unwrap();
    assert!(
        manifest.contains(&format!("\"schedule\": \"{schedule}\"")),
        "{manifest}"
    );
    let shrink = field(&report, "shrink:");
    assert!(
        shrink.starts_with(&format!("lockstep shrink {}", bundle.display())),
        "{report}"
    );
    let order = [
        "seed:",
        "schedule:",
        "last events:",
        "replay:",
        "same schedule:",
        "shrink:",
    ];
    let positions: Vec<usize> = order.iter().map(|s| report.find(s).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{report}");

    // Following the schedule (its text, or the bundle) reproduces the
    // failure and the trace, byte for byte.
    let first = std::fs::read_to_string(&first_trace).unwrap();
    for (i, spec) in [Path::new(schedule), bundle.as_path()]
        .into_iter()
        .enumerate()
    {
        let trace = scratch(&format!("schedule-replay-{i}.txt"));
        let again = child(
            &[("LOCKSTEP_SCHEDULE", spec), ("LOCKSTEP_TRACE", &trace)],
            None,
        );
        let text = String::from_utf8_lossy(&again.stdout);
        assert!(!again.status.success(), "{text}");
        assert!(
            text.contains(&format!("failed for seed {seed} (seed 1 of 1 tried)")),
            "{text}"
        );
        assert_eq!(std::fs::read_to_string(&trace).unwrap(), first);
        // Its own replay command follows the schedule (not the seed).
        assert!(
            field(&text, "replay:").starts_with("LOCKSTEP_SCHEDULE="),
            "{text}"
        );
        assert!(!text.contains("same schedule:"), "{text}");
    }
    // A schedule that is not one is a clear error.
    let bad = child(&[("LOCKSTEP_SCHEDULE", Path::new("S1:0x1:-:0.zz"))], None);
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(
        text.contains("lockstep: LOCKSTEP_SCHEDULE: invalid schedule"),
        "{text}"
    );
}

/// `racy_after_long_work` run into a fresh bundle directory `name`: the
/// directory, the failure report, and the failing seed's bundle.
fn long_work_failure(name: &str) -> (PathBuf, String, PathBuf) {
    let bundles = scratch(name);
    let out = child_of(
        "racy_after_long_work",
        &[("LOCKSTEP_BUNDLE_DIR", &bundles)],
        None,
    );
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{report}");
    let bundle = PathBuf::from(field(&report, "bundle:"));
    (bundles, report, bundle)
}

#[test]
fn a_long_schedule_is_named_by_its_bundle_file() {
    let (_, report, bundle) = long_work_failure("long-bundles");
    let file = bundle.join("schedule.txt");
    let schedule = field(&report, "schedule:");
    assert!(
        schedule.ends_with(&format!(": in {}", file.display())),
        "{report}"
    );
    assert!(schedule.contains(" steps, "), "{report}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.trim().len() > 200, "{text}");
    assert!(
        field(&report, "same schedule:")
            .starts_with(&format!("LOCKSTEP_SCHEDULE={} cargo test", file.display())),
        "{report}"
    );
}

#[test]
fn lockstep_shrink_asks_the_test_for_a_minimal_interleaving() {
    // What `lockstep shrink <bundle>` runs: the test, following the
    // bundle's schedule, with LOCKSTEP_SHRINK=1.
    let (bundles, _, bundle) = long_work_failure("shrink-bundles");
    let original: lockstep::explore::Schedule =
        std::fs::read_to_string(bundle.join("schedule.txt"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    let shrunk = child_of(
        "racy_after_long_work",
        &[
            ("LOCKSTEP_BUNDLE_DIR", &bundles),
            ("LOCKSTEP_SCHEDULE", &bundle),
            ("LOCKSTEP_SHRINK", Path::new("1")),
        ],
        None,
    );
    let text = String::from_utf8_lossy(&shrunk.stdout);
    assert!(!shrunk.status.success(), "{text}");
    assert!(text.contains("lost update"), "{text}");
    let line = field(&text, "shrunk:");
    assert!(line.starts_with("from "), "{text}");
    let dir = PathBuf::from(field(&text, "bundle:"));
    assert!(dir.to_string_lossy().ends_with("-shrunk"), "{text}");
    let small: lockstep::explore::Schedule = std::fs::read_to_string(dir.join("schedule.txt"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(small.len() <= original.len(), "{small} vs {original}");
    // The busy tasks' interleaving is noise: most switches are gone.
    assert!(
        small.switches() * 4 < original.switches(),
        "{small} vs {original}"
    );
    // It still fails the same way when followed.
    let again = child_of("racy_after_long_work", &[("LOCKSTEP_SCHEDULE", &dir)], None);
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(again.contains("lost update"), "{again}");
}
