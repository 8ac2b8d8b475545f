//! `lockstep shrink BUNDLE`: the smallest fault plan that still fails the
//! same way.
//!
//! Starts from the plan the failing run applied (for a random plan, the
//! concrete actions it drew, which the bundle records) and reduces it while
//! the seed still fails with the same failure kind:
//!
//! 1. **fewest**: delta debugging over the plan's actions (drop halves,
//!    then quarters, … of the actions, keep any smaller plan that still
//!    fails), down to a plan where removing any one action makes the
//!    failure go away;
//! 2. **earliest**: each action moves as early as it can (a binary search
//!    over whole milliseconds);
//! 3. **shortest**: each pause and link delay as short as it can be.
//!
//! Why not proptest's shrinker (`lockstep::proptest::fault_plans`)? It
//! shrinks a plan only through the value tree of the strategy that drew
//! it; a bundle's plan may be hand-written or drawn by
//! `FaultPlan::generate`, so a direct reduction over actions serves every
//! plan, and needs no `proptest` feature. It tries the same simplifications
//! (fewer, earlier, shorter faults).
//!
//! Then the interleaving: the failing run's recorded schedule (which ready
//! task ran at each step, early clock moves, scheduler draws) is shrunk
//! with [`shrink_schedule`](crate::explore::shrink_schedule) to fewer
//! preemptions, early clock moves and draws, and the new bundle follows
//! that schedule exactly (`schedule` in `bundle.json`). A bundle without a
//! fault plan gets only this step; a bundle that already follows a
//! schedule keeps its plan. The result is written as a new bundle beside the
//! original (`…-shrunk`), whose plan is the shrunk one; the command prints
//! the plan and the command that replays it.
//!
//! A `#[sim_test]` bundle holds the failing run's schedule but not the
//! program, which lives in the test binary: the test is run again (its
//! recorded binary, or `cargo test` with `--cargo`) with
//! `LOCKSTEP_SCHEDULE=<bundle>` and `LOCKSTEP_SHRINK=1`, so that it shrinks
//! the schedule itself and writes the bundle of the shrunk run, which lands
//! beside the original (`…-shrunk`). Its fault plan is the test's own (set
//! in its source) and is kept.

use std::path::{Path, PathBuf};

use super::bundle::Bundle;
use super::explore::{Sweep, bundle_for};
use super::spec::{self, SimArgs};
use super::{Outcome, Scenario, exit};
use crate::fault::{FaultAction, FaultPlan, Timed};
use crate::time::Duration;
use crate::trace::Verbosity;

/// `lockstep shrink`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// A failure bundle: of a scenario run (its fault plan, then its
    /// schedule), or of a #[sim_test] (its schedule, shrunk by the test).
    bundle: PathBuf,
    /// At most this many runs.
    #[arg(long, default_value_t = 400)]
    max_runs: usize,
    /// For a #[sim_test] bundle: run the test through `cargo test`
    /// (rebuilding it) instead of the recorded test binary.
    #[arg(long)]
    cargo: bool,
}

pub(crate) fn run(args: Args, scenarios: &[Scenario]) -> Outcome {
    let bundle = Bundle::open(&args.bundle)?;
    let m = &bundle.manifest;
    let Some(s) = &m.scenario else {
        return shrink_test(&bundle, args.cargo);
    };
    let scenario = spec::find(scenarios, &s.name)?;
    let variant = spec::variant(scenario, &s.variant)?;
    let start: Option<FaultPlan> = m
        .faults_drawn
        .as_ref()
        .or(m.faults.as_ref())
        .map(|text| text.parse())
        .transpose()
        .map_err(|e| format!("{}: bundle.json faults: {e}", bundle.dir.display()))?;
    let base = m.sim()?;
    let want = m.failure_kind.clone();
    let mut runs = 0usize;

    // 1. The fault plan: fewest, earliest, shortest. A bundle that already
    // follows a recorded schedule keeps its plan: another plan would make
    // the schedule diverge.
    let mut plan_line = None;
    let mut with_plan = base.clone();
    if let (Some(start), None) = (&start, &m.schedule) {
        let mut fails = |actions: &[Timed]| -> bool {
            if runs >= args.max_runs {
                return false;
            }
            runs += 1;
            let sim = base
                .to_builder()
                .faults(FaultPlan::from_actions(actions.iter().cloned()))
                .verbosity(Verbosity::Off)
                .build();
            variant
                .run(&sim)
                .failure()
                .is_some_and(|f| f.kind().name() == want)
        };
        if !fails(&start.actions) {
            println!(
                "cannot shrink: with the plan as recorded, seed {} no longer fails with {want}",
                m.seed
            );
            return Ok(exit(false));
        }
        let mut actions = if fails(&[]) {
            Vec::new()
        } else {
            ddmin(start.actions.clone(), &mut fails)
        };
        earliest(&mut actions, &mut fails);
        shortest(&mut actions, &mut fails);
        let plan = FaultPlan::from_actions(actions);
        plan_line = Some(format!(
            "fault plan: {} actions to {}",
            start.actions.len(),
            plan.actions.len()
        ));
        with_plan = base.to_builder().faults(plan).build();
    }

    // 2. The interleaving: the recorded schedule of the failing run, cut
    // down to the few decisions that matter (fewer preemptions, early clock
    // moves and draws).
    let recorded = variant.run(
        &with_plan
            .to_builder()
            .verbosity(Verbosity::Off)
            .record_schedule(true)
            .build(),
    );
    runs += 1;
    if recorded.failure().is_none_or(|f| f.kind().name() != want) {
        println!(
            "cannot shrink: seed {} no longer fails with {want}{}",
            m.seed,
            if start.is_some() {
                " under the shrunk plan"
            } else {
                ""
            }
        );
        return Ok(exit(false));
    }
    let mut schedule_line = None;
    let mut sim = with_plan.clone();
    if let Some(schedule) = recorded.schedule() {
        match crate::explore::shrink_schedule(&with_plan, schedule, |s| variant.run(s)) {
            Ok(shrunk) if shrunk.kind.name() == want => {
                runs += shrunk.runs as usize;
                schedule_line = Some(format!(
                    "schedule: {} steps to {}, {} preemptions to {}",
                    shrunk.original.steps(),
                    shrunk.schedule.steps(),
                    shrunk
                        .original
                        .preemptions()
                        .unwrap_or(shrunk.original.switches()),
                    shrunk
                        .schedule
                        .preemptions()
                        .unwrap_or(shrunk.schedule.switches())
                ));
                sim = with_plan.to_builder().replay(shrunk.schedule).build();
            }
            Ok(shrunk) => {
                schedule_line = Some(format!(
                    "schedule: kept as drawn (the shrunk one fails with {}, not {want})",
                    shrunk.kind
                ))
            }
            Err(e) => schedule_line = Some(format!("schedule: kept as drawn ({e})")),
        }
    }

    let traced = variant.run(&sim);
    let Some(failure) = traced.failure() else {
        return Err("the shrunk run passed when traced: the scenario is not deterministic".into());
    };
    let sim_args = SimArgs::default();
    let sweep = Sweep {
        scenario,
        variant,
        sim: &sim_args,
        seeds: Vec::new(),
    };
    let root = bundle.dir.parent().unwrap_or(Path::new(".")).to_path_buf();
    let dir = bundle_for(&sweep, &sim, &traced, &want, &failure.to_string(), &root)?;
    let shrunk = shrunk_dir(&bundle.dir);
    let _ = std::fs::remove_dir_all(&shrunk);
    std::fs::rename(&dir, &shrunk)
        .map_err(|e| format!("cannot write {}: {e}", shrunk.display()))?;
    println!(
        "shrunk in {runs} runs; seed {} still fails with {want}:",
        m.seed
    );
    for line in plan_line.iter().chain(schedule_line.iter()) {
        println!("  {line}");
    }
    match sim.faults() {
        Some(plan) if !plan.is_empty() => {
            for line in plan.to_string().lines() {
                println!("  {line}");
            }
        }
        _ if start.is_some() => println!("  (no fault: the failure does not need the plan)"),
        _ => {}
    }
    if let Some(schedule) = sim.replay_schedule() {
        println!("  schedule {schedule}");
    }
    println!("bundle: {}", shrunk.display());
    println!("replay: lockstep replay {}", shrunk.display());
    Ok(exit(true))
}

/// `lockstep shrink` of a `#[sim_test]` bundle: the test shrinks its own
/// schedule (see the module docs).
fn shrink_test(bundle: &Bundle, cargo: bool) -> Outcome {
    let m = &bundle.manifest;
    let Some(t) = &m.test else {
        return Err(format!(
            "{}: bundle.json names neither a scenario nor a test",
            bundle.dir.display()
        ));
    };
    if m.schedule.is_none() {
        return Err(format!(
            "{}: the bundle records no schedule (written by an older lockstep); run the test \
             again for a new bundle: {}",
            bundle.dir.display(),
            t.replay_command
        ));
    }
    // The test writes its bundle beside this one, named as the test names
    // it (this bundle's name, unless it was renamed), plus `-shrunk`.
    let parent = bundle.dir.parent().unwrap_or(Path::new("."));
    let written = parent.join(format!(
        "{}__{}-{}-shrunk",
        t.crate_name,
        t.test.replace("::", "__"),
        m.seed
    ));
    let shrunk = shrunk_dir(&bundle.dir);
    let _ = std::fs::remove_dir_all(&written);
    let _ = std::fs::remove_dir_all(&shrunk);
    let mut cmd = super::replay::test_command(t, cargo)?;
    cmd.env("LOCKSTEP_SCHEDULE", &bundle.dir)
        .env("LOCKSTEP_SHRINK", "1")
        .env("LOCKSTEP_BUNDLE_DIR", parent);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run the test binary {}: {e}", t.binary))?;
    if !written.is_dir() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr
            .lines()
            .chain(stdout.lines())
            .find(|l| l.contains("LOCKSTEP_") || l.contains("test result"))
            .unwrap_or("")
            .trim()
            .to_string();
        return Err(format!(
            "the test `{}` wrote no shrunk bundle (does the schedule still fail? {why})",
            t.test
        ));
    }
    if written != shrunk {
        std::fs::rename(&written, &shrunk)
            .map_err(|e| format!("cannot write {}: {e}", shrunk.display()))?;
    }
    let new = Bundle::open(&shrunk)?;
    let failure = std::fs::read_to_string(shrunk.join("failure.txt")).unwrap_or_default();
    println!(
        "shrunk; seed {} still fails with {}:",
        m.seed, new.manifest.failure_kind
    );
    for line in failure
        .lines()
        .filter(|l| l.trim_start().starts_with("shrunk:"))
    {
        println!("  {}", line.trim_start());
    }
    if let Some(schedule) = &new.manifest.schedule {
        println!("  schedule {schedule}");
    }
    println!("bundle: {}", shrunk.display());
    println!("replay: lockstep replay {}", shrunk.display());
    if let Some((_, command)) = t.replay_command.split_once(' ') {
        println!(
            "same schedule: LOCKSTEP_SCHEDULE={} {command}",
            shrunk.display()
        );
    }
    Ok(exit(true))
}

/// Delta debugging (Zeller's ddmin): a 1-minimal subsequence of `items`
/// for which `fails` holds.
/// Where the shrunk bundle of the bundle at `dir` goes: beside it, named
/// after it with `-shrunk`.
fn shrunk_dir(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    dir.with_file_name(format!("{name}-shrunk"))
}

fn ddmin(mut items: Vec<Timed>, fails: &mut impl FnMut(&[Timed]) -> bool) -> Vec<Timed> {
    let mut n = 2;
    while items.len() >= 2 {
        let chunk = items.len().div_ceil(n);
        let parts: Vec<Vec<Timed>> = items.chunks(chunk).map(<[Timed]>::to_vec).collect();
        let mut reduced = false;
        for (i, part) in parts.iter().enumerate() {
            if fails(part) {
                items = part.clone();
                n = 2;
                reduced = true;
                break;
            }
            let complement: Vec<Timed> = parts
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, p)| p.iter().cloned())
                .collect();
            if parts.len() > 2 && fails(&complement) {
                items = complement;
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if n >= items.len() {
                break;
            }
            n = (n * 2).min(items.len());
        }
    }
    items
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Binary search for the smallest whole-millisecond value in `0..=hi` for
/// which `ok` holds, assuming `ok(hi)`.
fn smallest(hi: u64, ok: &mut impl FnMut(u64) -> bool) -> u64 {
    if hi == 0 || ok(0) {
        return 0;
    }
    let (mut lo, mut hi) = (0, hi);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if ok(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Moves each action as early as the failure allows.
fn earliest(actions: &mut [Timed], fails: &mut impl FnMut(&[Timed]) -> bool) {
    for i in 0..actions.len() {
        let at = millis(actions[i].at);
        let best = smallest(at, &mut |ms| {
            let mut trial = actions.to_vec();
            trial[i].at = Duration::from_millis(ms);
            fails(&trial)
        });
        if best < at {
            actions[i].at = Duration::from_millis(best);
        }
    }
}

/// Shortens each pause and link delay as far as the failure allows.
fn shortest(actions: &mut [Timed], fails: &mut impl FnMut(&[Timed]) -> bool) {
    for i in 0..actions.len() {
        let len = match &actions[i].action {
            FaultAction::Pause { duration, .. } => *duration,
            FaultAction::LinkDelay { delay, .. } => *delay,
            _ => continue,
        };
        let with = |a: &FaultAction, ms: u64| {
            let mut a = a.clone();
            match &mut a {
                FaultAction::Pause { duration, .. } => *duration = Duration::from_millis(ms),
                FaultAction::LinkDelay { delay, .. } => *delay = Duration::from_millis(ms),
                _ => {}
            }
            a
        };
        let best = smallest(millis(len), &mut |ms| {
            let mut trial = actions.to_vec();
            trial[i].action = with(&actions[i].action, ms);
            fails(&trial)
        });
        if best < millis(len) {
            actions[i].action = with(&actions[i].action, best);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash(host: &str, at_ms: u64) -> Timed {
        Timed {
            at: Duration::from_millis(at_ms),
            action: FaultAction::Crash { host: host.into() },
        }
    }

    #[test]
    fn ddmin_keeps_only_the_actions_the_failure_needs() {
        let plan: Vec<Timed> = (0..13).map(|i| crash(&format!("h{i}"), i * 100)).collect();
        let needs = |a: &[Timed]| {
            let has = |h: &str| a.iter().any(|t| t.action == crash(h, 0).action);
            has("h3") && has("h11")
        };
        let mut runs = 0;
        let min = ddmin(plan, &mut |a: &[Timed]| {
            runs += 1;
            needs(a)
        });
        let hosts: Vec<String> = min.iter().map(|t| t.action.to_string()).collect();
        assert_eq!(hosts, ["crash h3", "crash h11"]);
        assert!(runs < 60, "{runs} runs");
    }

    #[test]
    fn actions_move_as_early_as_the_failure_allows() {
        let mut plan = vec![crash("a", 9_000), crash("b", 4_000)];
        // Fails while `a` crashes at or after 2.5 s; `b` does not matter.
        let mut fails = |a: &[Timed]| a[0].at >= Duration::from_millis(2_500);
        earliest(&mut plan, &mut fails);
        assert_eq!(plan[0].at, Duration::from_millis(2_500));
        assert_eq!(plan[1].at, Duration::ZERO);
    }
}
