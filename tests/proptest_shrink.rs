//! proptest drives lockstep: a failing fault plan shrinks to the one fault
//! that matters.
//!
//! The system: node `a` sends a heartbeat datagram to node `b` every 100 ms;
//! `b` suspects `a` after 1 s of silence. The property: `b` never suspects
//! `a` while `a` is up. Random plans over three hosts (`c` is a bystander)
//! break it with any long enough partition or pause between `a` and `b`,
//! buried among irrelevant faults; shrinking must strip it down to one
//! fault episode just over a second long.

use std::cell::RefCell;
use std::rc::Rc;

use lockstep::fault::{FaultAction, FaultPlan};
use lockstep::net::{Host, UdpSocket};
use lockstep::prelude::*;
use lockstep::proptest::{FaultKind, fault_plans};
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

const SUSPECT_AFTER: Duration = Duration::from_secs(1);
const HEARTBEAT: Duration = Duration::from_millis(100);

/// Runs the detector for 20 s under `plan`; returns when `b` wrongly
/// suspected `a`, if it did.
fn false_suspicion(plan: &FaultPlan) -> Option<Instant> {
    let outcome = Sim::builder()
        .seed(1)
        .faults(plan.clone())
        .verbosity(Verbosity::Off)
        .build()
        .run(async {
            let wrong: Rc<RefCell<Option<Instant>>> = Rc::default();
            let a = Host::new("a", || async {
                let s = UdpSocket::bind("0.0.0.0:0").await?;
                loop {
                    s.send_to(b"alive", "b:7").await?;
                    sleep(HEARTBEAT).await;
                }
            });
            let a_seen = a.clone();
            let report = wrong.clone();
            Host::new("b", move || {
                let (a, report) = (a_seen.clone(), report.clone());
                async move {
                    let s = UdpSocket::bind("0.0.0.0:7").await?;
                    let mut buf = [0; 8];
                    loop {
                        let heard = timeout(SUSPECT_AFTER, s.recv_from(&mut buf)).await;
                        if heard.is_err() && a.is_up() && report.borrow().is_none() {
                            *report.borrow_mut() = Some(Instant::now());
                        }
                    }
                }
            });
            Host::new("c", || async { Ok(()) });
            sleep(Duration::from_secs(20)).await;
            wrong.take()
        });
    outcome.into_result().unwrap_or_else(|f| panic!("{f}"))
}

fn episodes(plan: &FaultPlan) -> usize {
    // Every episode starts with a fault; its repair (if any) comes later.
    plan.actions
        .iter()
        .filter(|t| {
            !matches!(
                t.action,
                FaultAction::Heal { .. }
                    | FaultAction::HealOneWay { .. }
                    | FaultAction::Restart { .. }
            )
        })
        .count()
}

#[test]
fn a_failing_fault_plan_shrinks_to_the_single_fault_that_matters() {
    let strategy = fault_plans(["a", "b", "c"])
        .max_faults(8)
        .horizon(Duration::from_secs(15))
        .lengths(Duration::from_millis(100), Duration::from_secs(4))
        .kinds(&[
            FaultKind::Partition,
            FaultKind::PartitionOneWay,
            FaultKind::Crash,
            FaultKind::Pause,
        ]);
    let config = Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    };
    // A fixed proptest seed: the search, and so this test, is reproducible.
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let first_failure: RefCell<Option<FaultPlan>> = RefCell::new(None);
    let result = runner.run(&strategy, |plan| {
        if let Some(at) = false_suspicion(&plan) {
            first_failure.borrow_mut().get_or_insert(plan.clone());
            return Err(proptest::test_runner::TestCaseError::fail(format!(
                "b suspected a at {at} while a was up"
            )));
        }
        Ok(())
    });
    let Err(TestError::Fail(reason, minimal)) = result else {
        panic!("the search should find a failing plan: {result:?}");
    };
    let original = first_failure.into_inner().expect("a failing plan was seen");
    // Before: the first failing plan the search drew; after: the shrunk one.
    let (before, after) = (episodes(&original), episodes(&minimal));
    println!(
        "first failing plan ({before} faults):\n{original}\nshrunk ({after}):\n{minimal}\n{reason}"
    );
    assert!(
        before >= 3,
        "the first failure came with irrelevant faults: {original:?}"
    );
    assert_eq!(after, 1, "shrunk to one fault: {minimal:?}");
    // The one fault cuts a off from b (a partition either way, or a pause
    // of a) from the start, for about the suspicion timeout: the shortest
    // cut that loses every heartbeat due before b's 1 s timer fires (the
    // last lost one is due at 0.9 s, so just over 0.9 s suffices).
    let fault = &minimal.actions[0];
    assert_eq!(fault.at, Duration::ZERO, "earliest: {minimal:?}");
    let (involves_a, length) = match &fault.action {
        FaultAction::Partition { a, b } => (
            [a, b].contains(&&"a".to_string()) && [a, b].contains(&&"b".to_string()),
            minimal.actions[1].at,
        ),
        FaultAction::PartitionOneWay { from, to } => {
            (from == "a" && to == "b", minimal.actions[1].at)
        }
        FaultAction::Pause { host, duration } => (host == "a", *duration),
        other => panic!("an unexpected minimal fault: {other}"),
    };
    assert!(involves_a, "{minimal:?}");
    assert!(
        length > SUSPECT_AFTER - HEARTBEAT && length <= SUSPECT_AFTER + Duration::from_millis(250),
        "shortest: {length:?} in {minimal:?}"
    );
    // The shrunk plan still fails, and its text form replays it.
    let replayed: FaultPlan = minimal.to_string().parse().unwrap();
    assert!(false_suspicion(&replayed).is_some());
}
