//! The `lockstep` binary, run as a user runs it: every verb, every bad
//! input, bundles from `explore` and from a `#[sim_test]` of a fixture crate
//! built here (see `tests/fixture/README.md`), and the same answers
//! whatever `--jobs`, `--shard` and `LOCKSTEP_JOBS` are.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// What a command did.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    #[track_caller]
    fn expect(self, code: i32) -> Ran {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// A command without the caller's `LOCKSTEP_*` settings.
fn cmd(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    for (k, _) in std::env::vars() {
        if k.starts_with("LOCKSTEP_") || k == "JOB_COMPLETION_INDEX" {
            c.env_remove(k);
        }
    }
    c
}

fn run(cmd: &mut Command) -> Ran {
    let out = cmd.output().expect("the command starts");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn lockstep(args: &[&str]) -> Ran {
    run(cmd(env!("CARGO_BIN_EXE_lockstep")).args(args))
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The paths after `prefix` on lines of `text`.
fn after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(prefix))
        .map(|rest| rest.split_whitespace().next().unwrap_or(""))
        .collect()
}

#[test]
fn help_list_run_and_completions() {
    let help = lockstep(&["--help"]).expect(0);
    for verb in [
        "list",
        "run",
        "explore",
        "merge",
        "replay",
        "diff",
        "shrink",
        "trace",
        "completions",
    ] {
        assert!(help.stdout.contains(verb), "{verb} in {}", help.stdout);
    }
    lockstep(&["explore", "--help"]).expect(0);
    let list = lockstep(&["list"]).expect(0);
    assert!(list.stdout.contains("lost-update"), "{}", list.stdout);
    assert!(list.stdout.contains("fails some seed with panic"));
    let plain = lockstep(&["list", "--plain"]).expect(0);
    assert!(
        plain
            .stdout
            .contains("lost-update\tbuggy\tfails:panic\t1000")
    );

    let dir = scratch("run");
    let passed = lockstep(&["run", "lost-update/fixed", "--seed", "5"]).expect(0);
    assert!(passed.stdout.contains("passed"), "{}", passed.stdout);
    let failed = lockstep(&[
        "run",
        "lost-update",
        "--variant",
        "buggy",
        "--seed",
        "0x5",
        "--bundle-dir",
        s(&dir),
        "--trace",
        "text",
    ])
    .expect(1);
    assert!(
        failed.stderr.contains("FAILED (panic)"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stdout.contains("worker-0 wrote"),
        "{}",
        failed.stdout
    );
    assert!(dir.join("lost-update-buggy-0x5/bundle.json").is_file());

    for shell in ["bash", "zsh", "fish"] {
        let script = lockstep(&["completions", shell]).expect(0);
        assert!(script.stdout.contains("explore"), "{shell}");
    }
}

#[test]
fn every_bad_input_is_one_line_and_exit_2() {
    let dir = scratch("bad-inputs");
    let corrupt = dir.join("corrupt-bundle");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(corrupt.join("bundle.json"), "{ not json").unwrap();
    let no_trace = dir.join("no-trace-bundle");
    std::fs::create_dir_all(&no_trace).unwrap();
    let bad_jsonl = dir.join("bad.jsonl");
    std::fs::write(&bad_jsonl, "{\"step\": \"nope\"}\n").unwrap();
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "hello\n").unwrap();
    let missing = dir.join("missing/bundle");
    let no_such_trace = dir.join("no-such-trace.jsonl");
    let no_such_file = dir.join("none.jsonl");
    let cases: Vec<Vec<&str>> = vec![
        vec!["frobnicate"],
        vec!["explore", "no-such-scenario"],
        vec!["explore", "lost-update", "--variant", "nope"],
        vec!["run", "lost-update/nope", "--seed", "1"],
        vec!["run", "lost-update/buggy", "--seed", "0xzz"],
        vec!["run", "lost-update/buggy@12x"],
        vec!["explore", "--seeds", "9..3"],
        vec!["explore", "--seeds", "nine"],
        vec!["explore", "--count", "ten"],
        vec!["explore", "--shard", "5/4"],
        vec!["explore", "--shard", "4"],
        vec!["explore", "--jobs", "0"],
        vec!["explore", "--faults", "at 1s explode a"],
        vec!["explore", "--policy", "random+cost:soon"],
        vec!["explore", "--policy", "random+speed:2"],
        vec!["explore", "--policy", "fifo+cost:1ms"],
        vec!["explore", "--policy", "random+late:2"],
        vec!["explore", "--policy", "mix+late:off+late:0.1"],
        vec!["replay", s(&missing)],
        vec!["replay", s(&corrupt)],
        vec!["replay", s(&no_trace)],
        vec!["shrink", s(&corrupt)],
        vec!["trace", s(&no_such_trace)],
        vec!["trace", s(&bad_jsonl)],
        vec!["trace", s(&garbage), "--format", "perfetto"],
        vec!["diff", s(&bad_jsonl), s(&bad_jsonl)],
        vec!["merge", s(&garbage)],
        vec!["merge", s(&no_such_file)],
        vec!["completions", "powershell"],
    ];
    for args in cases {
        let ran = lockstep(&args);
        assert_eq!(ran.code, 2, "{args:?}: {ran:?}");
        let err = ran.stderr.trim_end();
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.starts_with("lockstep: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Runs `explore --json` and returns the failing seeds of each variant.
fn failing_seeds(json: &str) -> Vec<(String, Vec<String>)> {
    json.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let seeds = v["failures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["seed"].to_string())
                .collect();
            (format!("{}/{}", v["scenario"], v["variant"]), seeds)
        })
        .collect()
}

#[test]
fn explore_catches_lost_update_and_its_bundle_replays_byte_for_byte() {
    let dir = scratch("explore");
    let ran = lockstep(&[
        "explore",
        "lost-update",
        "--count",
        "60",
        "--bundle-dir",
        s(&dir),
    ])
    .expect(0);
    let table = ran
        .stdout
        .lines()
        .find(|l| l.starts_with("lost-update"))
        .unwrap();
    assert!(table.contains("ok: caught"), "{}", ran.stdout);
    assert!(ran.stdout.contains("every variant behaved as declared"));
    let bundles = after(&ran.stdout, "bundle: ");
    assert!(!bundles.is_empty(), "{}", ran.stdout);
    let bundle = Path::new(bundles[0]);
    for file in [
        "bundle.json",
        "failure.txt",
        "trace.txt",
        "trace.jsonl",
        "trace.perfetto.json",
    ] {
        assert!(bundle.join(file).is_file(), "{file}");
    }

    let replayed = dir.join("replayed.jsonl");
    let replay = lockstep(&["replay", bundles[0], "-o", s(&replayed)]).expect(0);
    assert!(
        replay.stdout.starts_with("reproduced:"),
        "{}",
        replay.stdout
    );
    assert!(replay.stdout.contains("byte-identical trace"));
    assert_eq!(
        std::fs::read(&replayed).unwrap(),
        std::fs::read(bundle.join("trace.jsonl")).unwrap()
    );

    // A fixed variant declared to pass, made to fail by a bundle that
    // claims otherwise: the replay of a bundle whose trace was edited
    // diverges at the edited event.
    let edited = dir.join("edited");
    std::fs::create_dir_all(&edited).unwrap();
    for file in ["bundle.json", "trace.jsonl"] {
        std::fs::copy(bundle.join(file), edited.join(file)).unwrap();
    }
    let trace = std::fs::read_to_string(edited.join("trace.jsonl")).unwrap();
    let mut lines: Vec<&str> = trace.lines().collect();
    lines.remove(4);
    std::fs::write(edited.join("trace.jsonl"), lines.join("\n") + "\n").unwrap();
    let diverged = lockstep(&["replay", s(&edited)]).expect(1);
    assert!(
        diverged.stdout.starts_with("diverged at event 4:"),
        "{}",
        diverged.stdout
    );
    assert!(diverged.stdout.contains("> recorded:") && diverged.stdout.contains("> now:"));

    // A scenario run replays twice the same.
    lockstep(&["replay", "lost-update/buggy@5"]).expect(0);
}

#[test]
fn diff_names_the_first_differing_event() {
    let ran = lockstep(&["diff", "lost-update/buggy@5", "lost-update/buggy@7"]).expect(1);
    assert!(
        ran.stdout.contains("first divergence at event 6:"),
        "{}",
        ran.stdout
    );
    let a = ran.stdout.lines().find(|l| l.contains("> A:")).unwrap();
    let b = ran.stdout.lines().find(|l| l.contains("> B:")).unwrap();
    assert!(a.contains("#2 worker-1 timer set for"), "{a}");
    assert!(b.contains("#2 worker-1 timer set for"), "{b}");
    assert!(ran.stdout.contains("only in A"));
    let same = lockstep(&["diff", "lost-update/buggy@5", "lost-update/buggy@5"]).expect(0);
    assert!(same.stdout.starts_with("no difference"), "{}", same.stdout);

    // A failed snapshot in CI: the stored .snap against the new .snap.new.
    let dir = scratch("diff-snap");
    let snap = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../snapshots/explore__lost-update-buggy-seed-0x1.snap");
    let old = std::fs::read_to_string(&snap).unwrap();
    let new = old.replacen("worker-1 wrote", "worker-1 now writes", 1);
    assert_ne!(old, new);
    std::fs::write(dir.join("x.snap"), &old).unwrap();
    std::fs::write(dir.join("x.snap.new"), &new).unwrap();
    let ran = lockstep(&["diff", s(&dir.join("x.snap")), s(&dir.join("x.snap.new"))]).expect(1);
    assert!(ran.stdout.contains("worker-1 now writes"), "{}", ran.stdout);
    assert!(
        ran.stdout.contains("1 only in A, 1 only in B"),
        "{}",
        ran.stdout
    );
}

#[test]
fn jobs_and_shards_find_the_same_failing_seeds() {
    let dir = scratch("shards");
    let sweep = [
        "explore",
        "lost-update",
        "--count",
        "120",
        "--keep-going",
        "--json",
        "--bundles",
        "0",
    ];
    let one = lockstep(&[&sweep[..], &["--jobs", "1"]].concat()).expect(0);
    let two = lockstep(&[&sweep[..], &["--jobs", "2"]].concat()).expect(0);
    let mut files = Vec::new();
    for i in 1..=4 {
        let shard = lockstep(&[&sweep[..], &["--shard", &format!("{i}/4")]].concat()).expect(0);
        let file = dir.join(format!("shard-{i}.jsonl"));
        std::fs::write(&file, shard.stdout).unwrap();
        files.push(file);
    }
    let paths: Vec<&str> = files.iter().map(|f| s(f)).collect();
    let merged = lockstep(&[&["merge", "--json"][..], &paths].concat()).expect(0);
    let expected = failing_seeds(&one.stdout);
    assert!(
        !expected[0].1.is_empty(),
        "the buggy variant fails somewhere"
    );
    assert_eq!(failing_seeds(&two.stdout), expected);
    assert_eq!(failing_seeds(&merged.stdout), expected);
    assert!(merged.stderr.contains("ok: caught"), "{}", merged.stderr);

    // The Kubernetes form: the shard index from JOB_COMPLETION_INDEX.
    let k8s = run(cmd(env!("CARGO_BIN_EXE_lockstep"))
        .args([&sweep[..], &["--shard", "4"]].concat())
        .env("JOB_COMPLETION_INDEX", "1"))
    .expect(0);
    assert_eq!(
        failing_seeds(&k8s.stdout),
        failing_seeds(&std::fs::read_to_string(&files[1]).unwrap())
    );
    assert!(k8s.stdout.contains("\"shard\":\"2/4\""), "{}", k8s.stdout);

    // Three shards of four are not the sweep.
    let partial = lockstep(&["merge", paths[0], paths[1], paths[3]]).expect(2);
    assert!(
        partial.stderr.contains("shard 3/4 is missing"),
        "{}",
        partial.stderr
    );
    let twice = lockstep(&["merge", paths[0], paths[0], paths[1], paths[2], paths[3]]).expect(2);
    assert!(twice.stderr.contains("more than once"), "{}", twice.stderr);
}

#[test]
fn perfetto_export_has_one_track_per_task() {
    let dir = scratch("perfetto");
    let out = dir.join("trace.json");
    lockstep(&[
        "trace",
        "lost-update/buggy@5",
        "--format",
        "perfetto",
        "-o",
        s(&out),
    ])
    .expect(0);
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap())
        .expect("Perfetto JSON parses");
    let events = doc["traceEvents"].as_array().unwrap();
    let mut tracks: Vec<String> = events
        .iter()
        .filter(|e| e["name"] == "thread_name" && e["tid"] != 0)
        .map(|e| e["args"]["name"].as_str().unwrap().to_string())
        .collect();
    tracks.sort();
    assert_eq!(
        tracks,
        ["#0 main", "#1 worker-0", "#2 worker-1", "#3 worker-2"]
    );
    assert!(events.iter().any(|e| e["ph"] == "X" && e["name"] == "poll"));
    assert!(events.iter().any(|e| e["ph"] == "s") && events.iter().any(|e| e["ph"] == "f"));
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "i" && e["name"].as_str().unwrap().starts_with("FAILED"))
    );
    let jsonl = lockstep(&["trace", "lost-update/buggy@5", "--format", "jsonl"]).expect(0);
    let text = lockstep(&["trace", "lost-update/buggy@5"]).expect(0);
    assert_eq!(jsonl.stdout.lines().count(), text.stdout.lines().count());
}

/// The fixture crate, built once per test process.
struct Fixture {
    /// Its `lockstep` runner.
    bin: PathBuf,
    /// Its `#[sim_test]` binary.
    test: PathBuf,
    /// Its package folder (where cargo runs its tests).
    dir: PathBuf,
    /// The shared target directory.
    target: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let repo = manifest.parent().unwrap();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lockstep-fixture");
        for sub in ["src", "tests"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for file in ["src/main.rs", "tests/race.rs"] {
            let text = std::fs::read_to_string(manifest.join("tests/fixture").join(file)).unwrap();
            // Rewrite only on change, so cargo sees nothing to rebuild.
            if std::fs::read_to_string(dir.join(file)).ok().as_deref() != Some(&text) {
                std::fs::write(dir.join(file), text).unwrap();
            }
        }
        let toml = format!(
            "[package]\nname = \"lockstep-fixture\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
             publish = false\n\n[dependencies]\nlockstep = {{ path = {:?}, features = [\"cli\"] }}\n\n\
             [workspace]\n",
            repo.display().to_string()
        );
        if std::fs::read_to_string(dir.join("Cargo.toml")).ok() != Some(toml.clone()) {
            std::fs::write(dir.join("Cargo.toml"), toml).unwrap();
            // The workspace's versions, so the shared target dir's builds
            // of every dependency are reused.
            std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        }
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let built = run(cmd(cargo)
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", target)
            // Built once: no incremental cache to write (or to race on).
            .env("CARGO_INCREMENTAL", "0")
            .args(["test", "--no-run", "--offline", "--message-format=json"]))
        .expect(0);
        let mut bin = None;
        let mut test = None;
        for line in built.stdout.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            let (Some(name), Some(exe)) = (v["target"]["name"].as_str(), v["executable"].as_str())
            else {
                continue;
            };
            match (name, v["profile"]["test"].as_bool()) {
                ("race", _) => test = Some(PathBuf::from(exe)),
                ("lockstep-fixture", Some(false)) => bin = Some(PathBuf::from(exe)),
                _ => {}
            }
        }
        let bin = bin.or_else(|| {
            let exe = target
                .join("debug")
                .join(format!("lockstep-fixture{}", std::env::consts::EXE_SUFFIX));
            exe.is_file().then_some(exe)
        });
        Fixture {
            bin: bin.expect("the fixture's runner was built"),
            test: test.expect("the fixture's test was built"),
            dir: dir.clone(),
            target: target.to_path_buf(),
        }
    })
}

/// Runs the fixture's `#[sim_test]` with some environment.
fn fixture_test(env: &[(&str, &str)]) -> Ran {
    let mut c = cmd(&fixture().test);
    // As cargo runs a test: in its package's folder.
    c.args(["lost_update", "--exact"])
        .current_dir(&fixture().dir);
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c)
}

/// The seed a failing `#[sim_test]` report names.
fn failing_seed(report: &str) -> String {
    let line = report
        .lines()
        .find(|l| l.contains("failed for seed"))
        .unwrap_or_else(|| panic!("no failing seed in:\n{report}"));
    line.split("failed for seed ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_sim_test_bundle_replays_reproduced_diverged_fixed() {
    let dir = scratch("sim-test-bundle");
    let bundles = dir.join("bundles");
    let failed = fixture_test(&[("LOCKSTEP_BUNDLE_DIR", s(&bundles))]).expect(101);
    let report = failed.stdout + &failed.stderr;
    let seed = failing_seed(&report);
    assert!(
        report.contains(&format!(
            "LOCKSTEP_SEED={seed} cargo test -p lockstep-fixture --test race"
        )),
        "{report}"
    );
    let bundle = after(&report, "replay bundle: lockstep replay ");
    assert_eq!(bundle.len(), 1, "{report}");
    let bundle = bundle[0];
    assert!(bundle.starts_with(s(&bundles)), "{bundle}");
    let recorded = std::fs::read_to_string(Path::new(bundle).join("bundle.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&recorded).unwrap();
    assert_eq!(manifest["test"]["package"], "lockstep-fixture");
    assert_eq!(manifest["test"]["test"], "lost_update");
    assert_eq!(manifest["test"]["profile"], "dev");
    assert_eq!(
        Path::new(manifest["test"]["binary"].as_str().unwrap()),
        fixture().test
    );

    let reproduced = lockstep(&["replay", bundle]).expect(0);
    assert!(
        reproduced.stdout.starts_with("reproduced: lost_update"),
        "{}",
        reproduced.stdout
    );
    assert!(
        reproduced.stdout.contains("byte-identical"),
        "{}",
        reproduced.stdout
    );
    // The bundle being replayed is left as it was.
    assert_eq!(
        std::fs::read_to_string(Path::new(bundle).join("bundle.json")).unwrap(),
        recorded
    );

    let changed = run(cmd(env!("CARGO_BIN_EXE_lockstep"))
        .args(["replay", bundle])
        .env("FIXTURE_EXTRA_STEP", "1"))
    .expect(1);
    assert!(
        changed.stdout.starts_with("diverged at event "),
        "{}",
        changed.stdout
    );
    assert!(
        changed.stdout.contains("log: an extra step"),
        "{}",
        changed.stdout
    );

    let fixed = run(cmd(env!("CARGO_BIN_EXE_lockstep"))
        .args(["replay", bundle])
        .env("FIXTURE_FIXED", "1"))
    .expect(1);
    assert!(fixed.stdout.starts_with("fixed: "), "{}", fixed.stdout);

    // --cargo reruns it through `cargo test` (which rebuilds if needed).
    let through_cargo = run(cmd(env!("CARGO_BIN_EXE_lockstep"))
        .args(["replay", bundle, "--cargo"])
        .env("CARGO_TARGET_DIR", &fixture().target)
        .env("CARGO_INCREMENTAL", "0")
        .env("CARGO_NET_OFFLINE", "true"))
    .expect(0);
    assert!(
        through_cargo.stdout.starts_with("reproduced: lost_update"),
        "{}",
        through_cargo.stdout
    );
}

#[test]
fn lockstep_jobs_keeps_the_first_failing_seed() {
    let dir = scratch("lockstep-jobs");
    let one = fixture_test(&[("LOCKSTEP_JOBS", "1"), ("LOCKSTEP_BUNDLE_DIR", s(&dir))]).expect(101);
    let two = fixture_test(&[("LOCKSTEP_JOBS", "2"), ("LOCKSTEP_BUNDLE_DIR", s(&dir))]).expect(101);
    let (a, b) = (one.stdout + &one.stderr, two.stdout + &two.stderr);
    assert_eq!(failing_seed(&a), failing_seed(&b));
    let tried = |r: &str| r.lines().find(|l| l.contains("tried)")).map(str::to_string);
    assert_eq!(tried(&a), tried(&b));
    let bad = fixture_test(&[("LOCKSTEP_JOBS", "zero")]).expect(101);
    assert!(
        (bad.stdout + &bad.stderr).contains("LOCKSTEP_JOBS: `zero` is not a number of threads"),
    );
}

#[test]
fn shrink_reduces_a_multi_fault_plan() {
    let dir = scratch("shrink");
    let plan = "at 1s partition a b; at 2s heal a b; at 2.5s pause b for 1s; at 3s crash a; \
                at 8s restart a; at 9s link-loss a b 0.5";
    let failed = run(cmd(&fixture().bin).args([
        "run",
        "crash-sensitive/buggy",
        "--seed",
        "7",
        "--faults",
        plan,
        "--bundle-dir",
        s(&dir),
    ]))
    .expect(1);
    let bundle = after(&failed.stdout, "bundle: ");
    assert_eq!(bundle.len(), 1, "{failed:?}");
    let shrunk = run(cmd(&fixture().bin).args(["shrink", bundle[0]])).expect(0);
    assert!(
        shrunk.stdout.contains("fault plan: 6 actions to 1"),
        "{}",
        shrunk.stdout
    );
    assert!(
        shrunk.stdout.contains("at 0.000s crash a"),
        "{}",
        shrunk.stdout
    );
    let again = after(&shrunk.stdout, "replay: lockstep replay ");
    let replay = run(cmd(&fixture().bin).args(["replay", again[0]])).expect(0);
    assert!(
        replay.stdout.starts_with("reproduced:"),
        "{}",
        replay.stdout
    );
    let faults = std::fs::read_to_string(Path::new(again[0]).join("faults.txt")).unwrap();
    assert!(faults.contains("at 0.000s crash a"), "{faults}");

    // A random plan: the bundle records what it drew, and that shrinks.
    let random = scratch("shrink-random");
    let swept = run(cmd(&fixture().bin).args([
        "explore",
        "crash-sensitive",
        "--faults",
        "0.9",
        "--count",
        "20",
        "--bundle-dir",
        s(&random),
    ]))
    .expect(0);
    let bundle = after(&swept.stdout, "bundle: ");
    assert!(!bundle.is_empty(), "{}", swept.stdout);
    let faults = std::fs::read_to_string(Path::new(bundle[0]).join("faults.txt")).unwrap();
    assert!(faults.contains("random 0.9 for 30.000s"), "{faults}");
    assert!(faults.contains("what its random actions drew"), "{faults}");
    let drawn = faults.lines().filter(|l| l.starts_with("at ")).count() - 1;
    let shrunk = run(cmd(&fixture().bin).args(["shrink", bundle[0]])).expect(0);
    assert!(
        shrunk
            .stdout
            .contains(&format!("fault plan: {drawn} actions to 1")),
        "{}",
        shrunk.stdout
    );
    let again = after(&shrunk.stdout, "replay: lockstep replay ");
    run(cmd(&fixture().bin).args(["replay", again[0]])).expect(0);
}

#[test]
fn explore_accepts_a_poll_cost_and_says_what_a_bad_one_is() {
    for policy in ["mix+cost:1ms:8x", "mix+late:off+cost:0"] {
        let ran = lockstep(&[
            "explore",
            "lost-update",
            "--variant",
            "fixed",
            "--seeds",
            "0..20",
            "--policy",
            policy,
        ]);
        assert_eq!(ran.code, 0, "{policy}: {ran:?}");
    }
    let bad = lockstep(&["explore", "lost-update", "--policy", "random+cost:1ms:99x"]).expect(2);
    assert!(bad.stderr.contains("not 1 to 64"), "{}", bad.stderr);
    assert!(bad.stderr.contains("cost:MAX:Kx"), "{}", bad.stderr);
    let bad = lockstep(&["explore", "lost-update", "--policy", "random+late:0.5:soon"]).expect(2);
    assert!(bad.stderr.contains("late:P:WITHIN"), "{}", bad.stderr);
}

#[test]
fn shrink_of_a_sim_test_bundle_runs_the_test_to_shrink_its_schedule() {
    let dir = scratch("sim-test-shrink");
    let failed = fixture_test(&[("LOCKSTEP_BUNDLE_DIR", s(&dir))]).expect(101);
    let report = failed.stdout + &failed.stderr;
    let bundle = after(&report, "shrink:        lockstep shrink ");
    assert_eq!(bundle.len(), 1, "{report}");
    let bundle = bundle[0].split(" (").next().unwrap();
    let original = std::fs::read_to_string(Path::new(bundle).join("schedule.txt")).unwrap();
    let shrunk = lockstep(&["shrink", bundle]).expect(0);
    assert!(
        shrunk.stdout.starts_with("shrunk; seed "),
        "{}",
        shrunk.stdout
    );
    assert!(
        shrunk.stdout.contains("shrunk:        from "),
        "{}",
        shrunk.stdout
    );
    let again = after(&shrunk.stdout, "replay: lockstep replay ");
    assert_eq!(again.len(), 1, "{}", shrunk.stdout);
    assert_eq!(again[0], format!("{bundle}-shrunk"));
    let small = std::fs::read_to_string(Path::new(again[0]).join("schedule.txt")).unwrap();
    let steps = |s: &str| s.trim().rsplit(':').next().unwrap().split('.').count();
    assert!(steps(&small) <= steps(&original), "{small} vs {original}");
    let manifest = std::fs::read_to_string(Path::new(again[0]).join("bundle.json")).unwrap();
    assert!(
        manifest.contains("\"follows_schedule\": true"),
        "{manifest}"
    );
    // Its replay follows the shrunk schedule: byte for byte.
    let replay = lockstep(&["replay", again[0]]).expect(0);
    assert!(
        replay.stdout.starts_with("reproduced:"),
        "{}",
        replay.stdout
    );
    assert!(
        shrunk.stdout.contains(&format!(
            "same schedule: LOCKSTEP_SCHEDULE={} cargo test",
            again[0]
        )),
        "{}",
        shrunk.stdout
    );
}

#[test]
fn shrink_cuts_a_failing_interleaving_down_and_its_bundle_replays_it() {
    let dir = scratch("shrink-schedule");
    let failed = lockstep(&[
        "run",
        "lost-update/buggy",
        "--seed",
        "0x5",
        "--bundle-dir",
        s(&dir),
    ])
    .expect(1);
    let bundle = after(&failed.stdout, "bundle: ");
    assert_eq!(bundle.len(), 1, "{failed:?}");
    let shrunk = lockstep(&["shrink", bundle[0]]).expect(0);
    let line: Vec<&str> = shrunk
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("schedule: "))
        .collect();
    assert_eq!(line.len(), 1, "{}", shrunk.stdout);
    // "N steps to M, P preemptions to Q": never longer than the original.
    let numbers: Vec<u64> = line[0]
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(numbers.len() >= 4, "{}", line[0]);
    assert!(numbers[1] <= numbers[0], "{}", line[0]);
    assert!(numbers[3] <= numbers[2], "{}", line[0]);
    let again = after(&shrunk.stdout, "replay: lockstep replay ");
    let manifest = std::fs::read_to_string(Path::new(again[0]).join("bundle.json")).unwrap();
    assert!(manifest.contains("\"schedule\": \"S1:"), "{manifest}");
    let replay = lockstep(&["replay", again[0]]).expect(0);
    assert!(
        replay.stdout.starts_with("reproduced:"),
        "{}",
        replay.stdout
    );
}

#[test]
fn isolate_process_turns_a_poll_that_never_returns_into_a_failure() {
    let ran = run(cmd(&fixture().bin).args([
        "explore",
        "spin",
        "--isolate",
        "process",
        "--timeout",
        "2",
        "--keep-going",
        "--json",
    ]))
    .expect(1);
    let v: serde_json::Value = serde_json::from_str(ran.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(v["tried"], 6);
    let failures = v["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{v}");
    assert_eq!(failures[0]["seed"], 3);
    assert_eq!(failures[0]["kind"], "hung");
    assert!(ran.stderr.contains("BROKEN"), "{}", ran.stderr);

    // On worker threads: the stuck seed is a blocked poll, with a bundle.
    let dir = scratch("isolate-thread");
    let ran = run(cmd(&fixture().bin).args([
        "explore",
        "spin",
        "--isolate",
        "thread",
        "--watchdog",
        "0.3",
        "--keep-going",
        "--json",
        "--bundle-dir",
        s(&dir),
    ]))
    .expect(1);
    let v: serde_json::Value = serde_json::from_str(ran.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(v["tried"], 6);
    let failures = v["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{v}");
    assert_eq!(failures[0]["seed"], 3);
    assert_eq!(failures[0]["kind"], "blocked-poll", "{v}");
    assert!(
        dir.join("spin-buggy-0x3/trace.jsonl").is_file(),
        "{}",
        ran.stderr
    );

    // The same failing seeds in child processes as in this one.
    let sweep = [
        "explore",
        "lost-update",
        "--count",
        "40",
        "--keep-going",
        "--json",
        "--bundles",
        "0",
    ];
    let inside = lockstep(&sweep).expect(0);
    let isolated =
        lockstep(&[&sweep[..], &["--isolate", "process", "--jobs", "2"]].concat()).expect(0);
    assert_eq!(
        failing_seeds(&inside.stdout),
        failing_seeds(&isolated.stdout)
    );
}
