//! The example deployments under `deploy/` run what they say: their
//! structure is checked (the matrix and the shard count agree, the
//! Kubernetes Job is indexed with one pod per shard), and their `lockstep`
//! commands are run with the real binary, on fewer seeds, shard by shard,
//! then merged.

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy(file: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(file),
    )
    .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("deploy-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `lockstep …` command on the line holding `needle`, from `lockstep`
/// on (any path before it dropped).
fn command(text: &str, needle: &str) -> String {
    text.lines()
        .find_map(|l| {
            let at = l.find(needle)?;
            // A command, not a mention in prose (`lockstep merge` prints…).
            l[at + needle.len()..]
                .starts_with(' ')
                .then(|| l[at..].trim().to_string())
        })
        .unwrap_or_else(|| panic!("no `{needle}` command in the example"))
}

/// A YAML scalar `key: value` (the first one).
fn scalar<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no `{key}:`"))
        .trim()
}

/// Runs a shell-free `lockstep` command line in `dir`: `--count` lowered
/// to `count`, stdout sent to the file after `>` (if any), `JOB_*` set.
fn run(line: &str, dir: &Path, count: &str, env: &[(&str, &str)]) -> (i32, String) {
    let (args, out) = match line.split_once(" > ") {
        Some((a, o)) => (a, Some(o.trim())),
        None => (line, None),
    };
    let mut words: Vec<String> = args.split_whitespace().skip(1).map(String::from).collect();
    if let Some(i) = words.iter().position(|w| w == "--count") {
        words[i + 1] = count.to_string();
    }
    // Expand `shards/shard-*.jsonl`-style globs.
    let mut expanded = Vec::new();
    for w in words {
        match w.split_once('*') {
            Some((head, tail)) => {
                let head = dir.join(head);
                let (folder, prefix) = (head.parent().unwrap(), head.file_name().unwrap());
                let mut hits: Vec<String> = std::fs::read_dir(folder)
                    .unwrap()
                    .filter_map(|e| {
                        let name = e.unwrap().file_name().into_string().unwrap();
                        (name.starts_with(prefix.to_str().unwrap()) && name.ends_with(tail))
                            .then(|| folder.join(name).display().to_string())
                    })
                    .collect();
                hits.sort();
                assert!(!hits.is_empty(), "`{w}` matches nothing");
                expanded.extend(hits);
            }
            None => expanded.push(w),
        }
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lockstep"));
    cmd.args(&expanded).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("LOCKSTEP_") || k == "JOB_COMPLETION_INDEX" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let result = cmd.output().unwrap();
    let stdout = String::from_utf8(result.stdout).unwrap();
    if let Some(out) = out {
        let path = dir.join(out);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &stdout).unwrap();
    }
    let stderr = String::from_utf8(result.stderr).unwrap();
    (result.status.code().unwrap_or(-1), stdout + &stderr)
}

#[test]
fn the_github_actions_matrix_sweeps_every_seed_once_and_merges() {
    let yaml = deploy("github-actions-nightly.yml");
    let matrix: Vec<u64> = scalar(&yaml, "shard")
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    let explore = command(&yaml, "lockstep explore");
    let shards = explore
        .split("--shard ${{ matrix.shard }}/")
        .nth(1)
        .expect("explore takes its shard from the matrix")
        .split_whitespace()
        .next()
        .unwrap();
    let n: u64 = shards.parse().unwrap();
    assert_eq!(matrix, (1..=n).collect::<Vec<_>>(), "one job per shard");
    assert!(explore.contains("--json"));

    let dir = scratch("github");
    for shard in &matrix {
        let line = explore.replace("${{ matrix.shard }}", &shard.to_string());
        // The merge job downloads every shard's artifact into shards/.
        let line = line.replace("> shard-", "> shards/shard-");
        let (code, out) = run(&line, &dir, "40", &[]);
        assert_eq!(code, 0, "shard {shard}: {out}");
    }
    let merge = command(&yaml, "lockstep merge");
    let (code, out) = run(&merge, &dir, "", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("every variant behaved as declared"), "{out}");
    assert!(out.contains("ok: caught"), "{out}");
}

#[test]
fn the_kubernetes_indexed_job_runs_one_shard_per_pod_and_merges() {
    let yaml = deploy("kubernetes-indexed-job.yaml");
    assert_eq!(scalar(&yaml, "kind"), "Job");
    assert_eq!(scalar(&yaml, "completionMode"), "Indexed");
    let pods: u64 = scalar(&yaml, "completions").parse().unwrap();
    assert_eq!(scalar(&yaml, "parallelism"), pods.to_string());
    let explore = command(&yaml, "lockstep explore");
    assert!(
        explore.contains(&format!("--shard {pods} ")),
        "the shard count is the number of completions: {explore}"
    );
    assert!(explore.contains("$JOB_COMPLETION_INDEX"));

    let dir = scratch("kubernetes");
    let results = dir.join("results");
    for index in 0..pods {
        let line = explore
            .replace("/results", results.to_str().unwrap())
            .replace("$JOB_COMPLETION_INDEX", &index.to_string());
        let (code, out) = run(
            &line,
            &dir,
            "48",
            &[("JOB_COMPLETION_INDEX", &index.to_string())],
        );
        assert_eq!(code, 0, "pod {index}: {out}");
    }
    let merge = command(&yaml, "lockstep merge").replace("/results", results.to_str().unwrap());
    let (code, out) = run(&merge, &dir, "", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok: caught"), "{out}");
}
