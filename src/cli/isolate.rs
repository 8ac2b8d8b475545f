//! `explore --isolate process`: seeds in child processes.
//!
//! For code with process-global state (a `static`, a global allocator
//! counter, a C library), and for polls that never return. The parent runs
//! the binary itself again with the hidden `__seeds` verb and a batch of
//! seeds; the child runs them one after another and prints one JSON line
//! per seed. The parent waits for each line at most `--timeout` seconds of
//! wall time: a seed that takes longer is counted as a failure of kind
//! `hung` and its child is killed; a child that dies mid-seed (lockstep's
//! watchdog aborts a poll stuck for 5 s) makes that seed a failure of kind
//! `crashed`, with the child's last line of stderr. Either way the sweep
//! goes on with the next seed in a fresh child.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::explore::Sweep;
use super::spec::{self, SimArgs};
use super::verdict::SeedResult;
use super::{Outcome, Scenario};
use crate::runtime::Seed;

/// The hidden `__seeds` verb.
#[derive(clap::Args)]
pub(crate) struct ChildArgs {
    #[arg(long)]
    scenario: String,
    #[arg(long)]
    variant: String,
    /// Comma-separated seeds.
    #[arg(long)]
    seeds: String,
    #[command(flatten)]
    sim: SimArgs,
    /// Write the bundle of each failing seed under this folder.
    #[arg(long)]
    bundle_dir: Option<PathBuf>,
}

/// The child: runs the seeds, one JSON line each.
pub(crate) fn child(args: ChildArgs, scenarios: &[Scenario]) -> Outcome {
    let scenario = spec::find(scenarios, &args.scenario)?;
    let variant = spec::variant(scenario, &args.variant)?;
    let seeds: Vec<Seed> = args
        .seeds
        .split(',')
        .map(spec::parse_seed)
        .collect::<Result<_, _>>()?;
    let sweep = Sweep {
        scenario,
        variant,
        sim: &args.sim,
        seeds: Vec::new(),
    };
    let mut out = std::io::stdout().lock();
    for seed in seeds {
        let mut r = super::explore::run_in_process(variant, &args.sim, &[seed], false);
        let r = r.pop().expect("one seed, one result");
        if let (Some(root), Some(_)) = (&args.bundle_dir, &r.kind) {
            let line = match super::explore::write_bundle(&sweep, &r, root, false) {
                Ok((dir, same)) => {
                    serde_json::json!({"bundle": dir.display().to_string(), "same": same})
                }
                Err(e) => serde_json::json!({"error": e}),
            };
            let _ = writeln!(out, "{line}");
        } else {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string(&r).map_err(|e| e.to_string())?
            );
        }
        let _ = out.flush();
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// A child process running some seeds.
struct Child {
    process: std::process::Child,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

fn spawn(sweep: &Sweep<'_>, seeds: &[Seed], bundle_dir: Option<&Path>) -> Result<Child, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("--isolate: cannot find this binary: {e}"))?;
    let list: Vec<String> = seeds.iter().map(Seed::to_string).collect();
    let mut cmd = Command::new(exe);
    cmd.arg("__seeds")
        .args(["--scenario", sweep.scenario.name()])
        .args(["--variant", sweep.variant.name()])
        .args(["--seeds", &list.join(",")]);
    if let Some(p) = sweep.sim.policy {
        cmd.args(["--policy", &p.to_string()]);
    }
    if let Some(plan) = &sweep.sim.faults {
        cmd.args(["--faults", &plan.to_string()]);
    }
    if let Some(secs) = sweep.sim.watchdog {
        cmd.args(["--watchdog", &secs.to_string()]);
    }
    if let Some(dir) = bundle_dir {
        cmd.arg("--bundle-dir").arg(dir);
    }
    let mut process = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("--isolate: cannot start a child process: {e}"))?;
    let stdout = process.stdout.take().expect("piped stdout");
    let mut stderr = process.stderr.take().expect("piped stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    Ok(Child {
        process,
        lines,
        stderr,
    })
}

impl Child {
    /// Kills the child (if still running) and returns the end of its stderr.
    fn end(mut self, kill: bool) -> (String, String) {
        if kill {
            let _ = self.process.kill();
        }
        let status = self
            .process
            .wait()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        let err = self.stderr.join().unwrap_or_default();
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        (status, last)
    }
}

/// Runs `seeds` in child processes; every seed gets a result.
pub(crate) fn run_chunk(sweep: &Sweep<'_>, seeds: &[Seed], timeout: f64) -> Vec<SeedResult> {
    let timeout = Duration::from_secs_f64(timeout);
    let mut results = Vec::with_capacity(seeds.len());
    let mut rest = seeds;
    while let Some(&seed) = rest.first() {
        let child = match spawn(sweep, rest, None) {
            Ok(c) => c,
            Err(e) => {
                results.extend(rest.iter().map(|&seed| SeedResult {
                    seed,
                    kind: Some("crashed".to_string()),
                    message: e.clone(),
                    hash: 0,
                }));
                return results;
            }
        };
        let mut k = 0;
        let failed = loop {
            if k == rest.len() {
                break None;
            }
            match child.lines.recv_timeout(timeout) {
                Ok(line) => match serde_json::from_str::<SeedResult>(&line) {
                    Ok(r) => {
                        results.push(r);
                        k += 1;
                    }
                    Err(_) => continue,
                },
                Err(mpsc::RecvTimeoutError::Timeout) => break Some(true),
                Err(mpsc::RecvTimeoutError::Disconnected) => break Some(false),
            }
        };
        let Some(hung) = failed else {
            let _ = child.end(false);
            return results;
        };
        let seed = rest.get(k).copied().unwrap_or(seed);
        let (status, last) = child.end(hung);
        results.push(SeedResult {
            seed,
            kind: Some(if hung { "hung" } else { "crashed" }.to_string()),
            message: if hung {
                format!(
                    "no result after {:.1}s of wall time: a poll that never returns? (child killed)",
                    timeout.as_secs_f64()
                )
            } else {
                format!("the child process died ({status}): {last}")
            },
            hash: 0,
        });
        rest = &rest[(k + 1).min(rest.len())..];
    }
    results
}

/// Writes a failing seed's bundle from a child process (a seed that hung or
/// crashed the child gets none: rerunning it would hang again).
pub(crate) fn write_bundle(
    sweep: &Sweep<'_>,
    f: &SeedResult,
    root: &Path,
) -> Result<(PathBuf, bool), String> {
    if matches!(f.kind.as_deref(), Some("hung" | "crashed")) {
        return Err(format!(
            "seed {} {}: no bundle (rerun it with `lockstep run {}/{} --seed {}`)",
            f.seed,
            f.kind.as_deref().unwrap_or(""),
            sweep.scenario.name(),
            sweep.variant.name(),
            f.seed
        ));
    }
    let child = spawn(sweep, &[f.seed], Some(root))?;
    let line = child.lines.recv().ok();
    let _ = child.end(false);
    let v: serde_json::Value = line
        .as_deref()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("seed {}: the child wrote no bundle", f.seed))?;
    match (v["bundle"].as_str(), v["error"].as_str()) {
        (Some(dir), _) => Ok((PathBuf::from(dir), v["same"].as_bool().unwrap_or(false))),
        (_, Some(e)) => Err(e.to_string()),
        _ => Err(format!("seed {}: the child wrote no bundle", f.seed)),
    }
}
