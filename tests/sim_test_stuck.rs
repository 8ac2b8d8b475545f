//! A `#[sim_test]` seed whose poll never returns is reported as a failure
//! of that seed, with its trace, and the other tests of the binary go on
//! (no process abort). The tests that get stuck on purpose are `#[ignore]`d
//! and run in a child process: this same test binary.

use std::process::Command;

use lockstep::prelude::*;

#[lockstep::sim_test(seeds = 50, watchdog = "300ms")]
#[ignore = "gets stuck on purpose: driven by the test below"]
async fn child_stuck_seed() {
    sleep(Duration::from_millis(lockstep::random::range(1..10))).await;
    if lockstep::random::range(0..4) == 0 {
        lockstep::trace!("spinning now");
        lockstep::task::Builder::new()
            .name("spinner")
            .spawn(async {
                // A poll that never returns (the child process exits with
                // the thread still spinning).
                loop {
                    std::hint::spin_loop();
                }
            })
            .await
            .unwrap();
    }
}

#[lockstep::sim_test(seeds = 20)]
#[ignore = "run by the test below, after the stuck one"]
async fn child_zz_neighbour_passes() {
    sleep(Duration::from_millis(1)).await;
}

#[test]
fn a_stuck_seed_fails_its_test_with_a_trace_and_the_binary_goes_on() {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child_", "--ignored", "--test-threads=1"]);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LOCKSTEP_")) {
        cmd.env_remove(k);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A test failure, not a signal.
    assert_eq!(out.status.code(), Some(101), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("test child_stuck_seed ... FAILED"),
        "{stdout}"
    );
    assert!(
        stdout.contains("test child_zz_neighbour_passes ... ok"),
        "{stdout}"
    );
    assert!(stdout.contains("1 passed; 1 failed"), "{stdout}");
    assert!(
        stdout.contains(
            "blocked poll: one poll of task #1 spinner (spawned at tests/sim_test_stuck.rs:"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("never returned"), "{stdout}");
    // Its trace up to the stuck step, and the command that replays it.
    assert!(stdout.contains("spinning now"), "{stdout}");
    assert!(
        stdout.contains("replay:        LOCKSTEP_SEED=0x"),
        "{stdout}"
    );
}

static BLOCKED_ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[lockstep::sim_test(seeds = 3, blocked_poll = "100ms")]
#[ignore = "blocks on purpose: driven by the test below"]
async fn first_run_blocker() {
    lockstep::trace!("about to block");
    lockstep::task::Builder::new()
        .name("blocker")
        .spawn(async {
            // Blocks in the first run of the process only: the traced
            // replay of the failing seed is quick.
            if !BLOCKED_ONCE.swap(true, std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(400));
            }
        })
        .await
        .unwrap();
}

#[test]
fn a_blocked_poll_is_reported_as_such_even_when_its_replay_is_quick() {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["first_run_blocker", "--exact", "--ignored"]);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LOCKSTEP_")) {
        cmd.env_remove(k);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("blocked poll: one poll of task #1 blocker"),
        "{stdout}"
    );
    assert!(!stdout.contains("non-determinism"), "{stdout}");
    // The trace of the seed, up to the step that blocked.
    assert!(stdout.contains("about to block"), "{stdout}");
    assert!(stdout.contains("FAILED (blocked-poll)"), "{stdout}");
}
