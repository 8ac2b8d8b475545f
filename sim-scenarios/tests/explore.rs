//! Every scenario of the catalogue, explored: each correct or fixed
//! variant passes 300 seeds, each buggy variant fails within the first 100
//! seeds with the failure kind it declares, failing seeds replay with the
//! same trace, and one trace per scenario is snapshotted.
//!
//! Sweeps run untraced (the fast path); the first failing seed is then
//! replayed traced, twice, and must fail the same way with the same trace.

use lockstep::Seed;
use lockstep::check::FailureKind;
use sim_scenarios::{Expect, Scenario, Variant};

/// Seeds every passing variant must pass.
const PASS_SEEDS: u64 = 300;
/// Seeds within which every buggy variant must have failed.
const BUG_SEEDS: u64 = 100;

fn scenario(name: &str) -> &'static Scenario {
    sim_scenarios::find(name).unwrap_or_else(|| panic!("no scenario `{name}`"))
}

fn check_passes(s: &Scenario, v: &Variant) {
    for seed in 0..PASS_SEEDS {
        let outcome = v.run_untraced(seed);
        if let Some(f) = outcome.failure() {
            panic!("{}/{}: seed {seed:#x} fails: {f}", s.name(), v.name());
        }
    }
}

fn check_caught(s: &Scenario, v: &Variant, kind: FailureKind, bug_seeds: u64) {
    let mut failing = Vec::new();
    for seed in 0..bug_seeds {
        let outcome = v.run_untraced(seed);
        if let Some(f) = outcome.failure() {
            assert_eq!(
                f.kind(),
                kind,
                "{}/{}: seed {seed:#x} fails with another kind than declared: {f}",
                s.name(),
                v.name()
            );
            failing.push((Seed(seed), outcome.determinism_hash()));
        }
    }
    let Some(&(first, hash)) = failing.first() else {
        panic!("{}/{}: none of {bug_seeds} seeds fails", s.name(), v.name());
    };
    // The traced replay is the same run: same decisions, same failure.
    let a = v.run_seed(first);
    let b = v.run_seed(first);
    assert_eq!(
        a.determinism_hash(),
        hash,
        "traced and untraced runs diverge"
    );
    assert_eq!(a.failure().map(|f| f.kind()), Some(kind));
    assert_eq!(a.trace().render(), b.trace().render());
    eprintln!(
        "{}/{}: {} of {bug_seeds} seeds fail, first {first}",
        s.name(),
        v.name(),
        failing.len()
    );
}

/// `bug_seeds`: fewer for a buggy variant that costs wall time per seed.
fn explore_with(name: &str, bug_seeds: u64) {
    let s = scenario(name);
    for v in s.variants() {
        match v.expect() {
            Expect::Fails(kind) => check_caught(s, v, kind, bug_seeds),
            _ => check_passes(s, v),
        }
    }
}

macro_rules! explore_tests {
    ($($test:ident => $name:literal $(with $bug_seeds:literal)?,)*) => {
        $(
            #[test]
            fn $test() {
                explore_with($name, BUG_SEEDS $(.min($bug_seeds))?);
            }
        )*

        /// Every registered scenario has a test here.
        #[test]
        fn every_scenario_is_explored() {
            let tested = [$($name),*];
            assert_eq!(sim_scenarios::all().len(), 21, "the catalogue has 21 scenarios");
            for s in sim_scenarios::all() {
                assert!(tested.contains(&s.name()), "{} has no test", s.name());
            }
        }
    };
}

explore_tests! {
    sequential_vs_concurrent => "sequential-vs-concurrent",
    restaurant => "restaurant",
    coroutines_vs_tasks => "coroutines-vs-tasks",
    task_management => "task-management",
    gather_semantics => "gather-semantics",
    as_completed_timeout => "as-completed-timeout",
    wait_conditions => "wait-conditions",
    lost_update => "lost-update",
    producer_consumer => "producer-consumer",
    semaphore_downloads => "semaphore-downloads",
    event_pipeline => "event-pipeline",
    exception_propagation => "exception-propagation",
    retry_backoff => "retry-backoff",
    circuit_breaker => "circuit-breaker",
    connection_pool => "connection-pool",
    batching => "batching",
    blocking_the_loop => "blocking-the-loop" with 10,
    resource_leaks => "resource-leaks",
    lock_ordering_deadlock => "lock-ordering-deadlock",
    forgotten_await => "forgotten-await",
    rate_limited_scraper => "rate-limited-scraper",
}

#[test]
fn scenario_trace_snapshots() {
    for s in sim_scenarios::all() {
        // The first variant is the scenario's default.
        let v = &s.variants()[0];
        let outcome = v.run_seed(Seed(1));
        let again = v.run_seed(Seed(1));
        assert_eq!(
            outcome.trace().render(),
            again.trace().render(),
            "{} replays",
            s.name()
        );
        lockstep::assert_trace_snapshot!(format!("{}-{}-seed-0x1", s.name(), v.name()), outcome);
    }
}
