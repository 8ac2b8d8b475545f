//! `assert_trace_snapshot!` stores traces under the workspace's
//! `snapshots/`, without line numbers, one event per line.

use lockstep::prelude::*;

fn two_timers() -> Outcome<()> {
    Sim::new(0x5).run(async {
        let a = lockstep::task::Builder::new().name("fast").spawn(async {
            sleep(Duration::from_millis(10)).await;
            lockstep::trace!("fast done");
        });
        let b = lockstep::task::Builder::new().name("slow").spawn(async {
            sleep(Duration::from_millis(30)).await;
            lockstep::trace!("slow done");
        });
        a.await.unwrap();
        b.await.unwrap();
    })
}

#[test]
fn named_after_the_test_function() {
    lockstep::assert_trace_snapshot!(two_timers());
}

#[test]
fn named_explicitly_from_a_trace() {
    let outcome = two_timers();
    lockstep::assert_trace_snapshot!("two_timers_trace", outcome.trace());
}

#[test]
fn snapshots_live_in_the_workspace_snapshots_dir() {
    let dir = lockstep::__private::snapshot_dir(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        dir,
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots")
    );
    assert!(
        dir.join("snapshot_macro__named_after_the_test_function.snap")
            .is_file()
    );
    assert!(dir.join("snapshot_macro__two_timers_trace.snap").is_file());
    // From a member crate, the same directory.
    let member = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sim-scenarios");
    assert_eq!(
        lockstep::__private::snapshot_dir(member.to_str().unwrap()),
        dir
    );
    assert!(
        !std::path::Path::new("tests/snapshots").exists(),
        "nothing beside the tests"
    );
}
