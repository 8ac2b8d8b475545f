//! A poll that never returns is reported with seed, task and spawn site, and
//! the process aborts instead of hanging CI. The stuck program runs in a
//! child process (this same test binary, re-executed), because aborting is
//! the point.

use std::process::Command;

use lockstep::prelude::*;

const CHILD: &str = "LOCKSTEP_WATCHDOG_TEST_CHILD";

fn stuck_program() {
    Sim::builder()
        .seed(0xbad)
        .watchdog(Some(Duration::from_millis(300)))
        .build()
        .run(async {
            sleep(Duration::from_secs(2)).await;
            lockstep::task::Builder::new()
                .name("spinner")
                .spawn(async {
                    // A busy loop inside one poll: no .await, so no executor
                    // can take control back.
                    loop {
                        std::hint::spin_loop();
                    }
                })
                .await
                .unwrap();
        });
}

#[test]
fn a_poll_that_never_returns_is_reported_then_aborts() {
    if std::env::var_os(CHILD).is_some() {
        stuck_program();
        unreachable!("the watchdog aborts the process");
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_poll_that_never_returns_is_reported_then_aborts",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the child must not succeed: {stderr}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(6), "SIGABRT expected: {stderr}");
    }
    assert!(
        stderr.contains("lockstep watchdog: task #1 spinner (spawned at tests/watchdog.rs:21)"),
        "{stderr}"
    );
    assert!(stderr.contains("inside one poll"), "{stderr}");
    assert!(
        stderr.contains("seed 0xbad, virtual time 2.000s"),
        "{stderr}"
    );
    assert!(stderr.contains("watchdog(None)"), "{stderr}");
}

#[test]
fn a_slow_but_finite_poll_is_fine() {
    // 100 ms of real work in one poll, under a 2 s limit: no report.
    let outcome = Sim::builder()
        .watchdog(Some(Duration::from_secs(2)))
        .build()
        .run(async {
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_millis(100) {
                std::hint::spin_loop();
            }
        });
    assert!(outcome.is_ok());
}
