//! Every buggy variant fails for some seed; every fixed variant passes every
//! seed tried; failing seeds replay; one trace per scenario is snapshotted.

use lockstep::Seed;
use sim_scenarios::Expect;

const SEEDS: u64 = 200;

#[test]
fn buggy_variants_are_caught_and_fixed_variants_pass() {
    for scenario in sim_scenarios::all() {
        for variant in scenario.variants() {
            let failing: Vec<Seed> = (0..SEEDS)
                .map(Seed)
                .filter(|&s| !variant.run_seed(s).is_ok())
                .collect();
            match variant.expect() {
                Expect::Fails(kind) => {
                    assert!(
                        !failing.is_empty(),
                        "{}/{}: no seed fails",
                        scenario.name(),
                        variant.name()
                    );
                    assert_eq!(
                        variant.run_seed(failing[0]).failure().map(|f| f.kind()),
                        Some(kind)
                    );
                    let a = variant.run_seed(failing[0]);
                    let b = variant.run_seed(failing[0]);
                    assert_eq!(a.trace().render(), b.trace().render());
                }
                _ => assert!(
                    failing.is_empty(),
                    "{}/{}: seeds {failing:?} fail: {}",
                    scenario.name(),
                    variant.name(),
                    variant.run_seed(failing[0]).failure().unwrap()
                ),
            }
        }
    }
}

#[test]
fn scenario_trace_snapshots() {
    for scenario in sim_scenarios::all() {
        for variant in scenario.variants() {
            let outcome = variant.run_seed(Seed(1));
            lockstep::assert_trace_snapshot!(
                format!("{}-{}-seed-0x1", scenario.name(), variant.name()),
                outcome
            );
        }
    }
}
