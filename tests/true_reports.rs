//! Every failure is a true report: the report names the cause, the runs that
//! actually failed, and never hangs or aborts the test process. One test per
//! defect, each named after what it checks.

use lockstep::prelude::*;

fn failure_of<T>(outcome: &Outcome<T>) -> &Failure {
    outcome.failure().expect("the run fails")
}

#[test]
fn the_root_cause_panic_is_reported_not_a_handle_dropped_while_unwinding() {
    let outcome = Sim::new(5).run(async {
        let a = spawn(async {
            panic!("FIRST");
            #[allow(unreachable_code)]
            ()
        });
        let b = spawn(async {
            yield_now().await;
            panic!("second");
            #[allow(unreachable_code)]
            ()
        });
        sleep(Duration::from_millis(1)).await;
        a.await.unwrap();
        b.await.unwrap();
    });
    let failure = failure_of(&outcome);
    let Failure::Panic(report) = failure else {
        panic!("{failure}")
    };
    assert_eq!(report.task.id, lockstep::task::TaskId::MAIN, "{failure}");
    assert!(!report.unobserved, "{failure}");
    let text = failure.to_string();
    assert!(text.contains("FIRST"), "{text}");
    assert!(!text.contains("nobody observed"), "{text}");
    // The main task's panic, the root cause, is in the trace too.
    let trace = outcome.trace().render();
    assert!(trace.contains("FIRST"), "{trace}");
}

#[test]
fn a_panic_whose_handle_was_dropped_during_a_caught_unwind_is_still_reported() {
    let outcome = Sim::new(5).run(async {
        let b = spawn(async { panic!("second") });
        sleep(Duration::from_millis(1)).await;
        // The program catches its own panic while `b`'s handle is dropped
        // by the unwind: `b`'s panic was never observed.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _b = b;
            panic!("caught on purpose");
        }));
        assert!(caught.is_err());
    });
    let text = failure_of(&outcome).to_string();
    assert!(
        text.contains("second") && text.contains("nobody observed"),
        "{text}"
    );
}

#[test]
fn a_blocking_call_in_a_task_is_a_blocked_poll_failure_of_that_run() {
    let outcome = Sim::builder()
        .seed(7)
        .blocked_poll(Some(Duration::from_millis(100)))
        .build()
        .run(async {
            sleep(Duration::from_millis(3)).await;
            lockstep::task::Builder::new()
                .name("blocker")
                .spawn(async {
                    std::thread::sleep(std::time::Duration::from_millis(500));
                })
                .await
                .unwrap();
        });
    let failure = failure_of(&outcome);
    let Failure::BlockedPoll(report) = failure else {
        panic!("{failure}")
    };
    assert!(report.returned, "{failure}");
    assert_eq!(report.task.name.as_deref(), Some("blocker"));
    assert_eq!(failure.kind(), lockstep::check::FailureKind::BlockedPoll);
    let text = failure.to_string();
    assert!(
        text.starts_with(
            "blocked poll: one poll of task #1 blocker (spawned at tests/true_reports.rs:"
        ),
        "{text}"
    );
    assert!(
        text.contains("100ms threshold") && text.contains("seed 0x7"),
        "{text}"
    );
    assert!(text.contains("std::thread::sleep"), "{text}");
    // The trace ends with the failure and holds no wall time.
    let trace = outcome.trace().render();
    assert!(trace.contains("blocked-poll"), "{trace}");
    assert!(!trace.contains("at least"), "{trace}");
}

#[test]
fn a_fast_poll_is_not_a_blocked_poll() {
    let outcome = Sim::builder()
        .blocked_poll(Some(Duration::from_millis(200)))
        .build()
        .run(async {
            for _ in 0..100 {
                yield_now().await;
            }
        });
    assert!(outcome.is_ok(), "{:?}", outcome.failure());
}

/// A task that re-polls a self-waking inner future until it is ready
/// (never), inside one poll: a shared future's bug.
async fn reshare_loop() {
    use std::future::{Future, poll_fn};
    use std::pin::pin;
    use std::task::Poll;

    lockstep::trace!("before the loop");
    lockstep::task::Builder::new()
        .name("reshare")
        .spawn(poll_fn(|cx| {
            let mut inner = pin!(poll_fn(|cx| {
                cx.waker().wake_by_ref();
                Poll::<()>::Pending
            }));
            loop {
                if inner.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
        }))
        .await
        .unwrap();
}

#[test]
fn a_task_waking_itself_in_a_loop_inside_one_poll_is_a_livelock_with_a_trace() {
    let outcome = Sim::new(11).run(reshare_loop());
    let failure = failure_of(&outcome);
    let Failure::Livelock(report) = failure else {
        panic!("{failure}")
    };
    assert_eq!(report.kind, lockstep::check::LivelockKind::WithinPoll);
    let text = failure.to_string();
    assert!(
        text.starts_with("livelock: task #1 reshare (spawned at tests/true_reports.rs:"),
        "{text}"
    );
    assert!(text.contains("inside one poll"), "{text}");
    let trace = outcome.trace().render();
    assert!(
        trace.contains("before the loop") && trace.contains("livelock"),
        "{trace}"
    );
    // An ordinary failure: the seed replays to the same trace.
    let again = Sim::new(11).run(reshare_loop());
    assert_eq!(again.trace().render(), trace);
}

#[test]
fn a_livelock_without_a_step_limit_ends_with_a_report() {
    let outcome = Sim::builder()
        .seed(3)
        .no_step_limit()
        .livelock_steps(20_000)
        .build()
        .run(async {
            lockstep::task::Builder::new()
                .name("spinner")
                .spawn(async {
                    loop {
                        yield_now().await;
                    }
                })
                .await
                .unwrap();
        });
    let failure = failure_of(&outcome);
    let Failure::Livelock(report) = failure else {
        panic!("{failure}")
    };
    assert_eq!(report.kind, lockstep::check::LivelockKind::NoProgress);
    assert_eq!(report.busiest[0].0.name.as_deref(), Some("spinner"));
    let text = failure.to_string();
    assert!(
        text.starts_with("livelock: 20000 polls in a row without progress"),
        "{text}"
    );
    assert!(
        text.contains("#1 spinner (spawned at tests/true_reports.rs:"),
        "{text}"
    );
}

#[test]
fn the_default_livelock_detector_survives_no_step_limit() {
    // A future that wakes itself and returns `Pending`, forever, with the
    // step limit removed: the default detector still ends the run.
    let outcome = Sim::builder().no_step_limit().build().run(async {
        std::future::poll_fn(|cx| {
            cx.waker().wake_by_ref();
            std::task::Poll::<()>::Pending
        })
        .await
    });
    let failure = failure_of(&outcome);
    assert_eq!(
        failure.kind(),
        lockstep::check::FailureKind::Livelock,
        "{failure}"
    );
}

#[test]
fn a_livelock_that_makes_progress_in_time_is_not_a_livelock() {
    // A million polls, but the clock moves every hundred: not a livelock.
    let outcome = Sim::builder()
        .no_step_limit()
        .livelock_steps(1_000)
        .build()
        .run(async {
            for i in 0..20_000u32 {
                if i % 100 == 0 {
                    sleep(Duration::from_millis(1)).await;
                }
                yield_now().await;
            }
        });
    assert!(outcome.is_ok(), "{:?}", outcome.failure());
}

#[test]
#[should_panic(expected = "SimBuilder::max_steps(0)")]
fn max_steps_zero_is_rejected_where_it_is_written() {
    let _ = Sim::builder().max_steps(0);
}

/// Set when a test is done with a poll that "never returns", so that the
/// abandoned worker thread stops spinning instead of burning a core until
/// the test binary exits.
static RELEASE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[test]
fn a_poll_that_never_returns_is_handed_back_with_its_trace() {
    let sim = Sim::builder()
        .seed(0xbad)
        .watchdog(Some(Duration::from_millis(300)))
        .blocked_poll(None)
        .build();
    let outcome = sim.run_isolated(|| async {
        sleep(Duration::from_secs(2)).await;
        lockstep::trace!("about to spin");
        lockstep::task::Builder::new()
            .name("spinner")
            .spawn(async {
                // No .await: no executor can take control back.
                while !RELEASE.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
            .await
            .unwrap();
    });
    RELEASE.store(true, std::sync::atomic::Ordering::Relaxed);
    let failure = failure_of(&outcome);
    let Failure::BlockedPoll(report) = failure else {
        panic!("{failure}")
    };
    assert!(!report.returned, "{failure}");
    assert_eq!(report.task.name.as_deref(), Some("spinner"));
    assert_eq!(report.at.time, Instant::START + Duration::from_secs(2));
    let text = failure.to_string();
    assert!(
        text.starts_with(
            "blocked poll: one poll of task #1 spinner (spawned at tests/true_reports.rs:"
        ),
        "{text}"
    );
    assert!(
        text.contains("never returned") && text.contains("seed 0xbad"),
        "{text}"
    );
    // The trace up to the stuck step, recorded by a second run of the seed.
    let trace = outcome.trace().render();
    assert!(trace.contains("about to spin"), "{trace}");
    assert!(trace.contains("blocked-poll"), "{trace}");
    // This thread goes on: the next run works.
    assert!(sim.run_isolated(|| async { 1 }).is_ok());
}

thread_local! {
    static RUNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Sleeps 1 ms in the thread's first run, 2 ms in its second, 5 ms after:
/// a program that is not deterministic, and whose later runs would diverge
/// differently from its first two.
async fn sleeps_by_run_count() {
    let n = RUNS.with(|r| {
        r.set(r.get() + 1);
        r.get()
    });
    let ms = if n <= 2 { n } else { 5 };
    sleep(Duration::from_millis(ms)).await;
}

#[test]
fn a_divergence_report_describes_the_two_runs_that_diverged() {
    RUNS.with(|r| r.set(0));
    let outcome = Sim::check_determinism(1, sleeps_by_run_count);
    let failure = failure_of(&outcome);
    let Failure::NonDeterminism(report) = failure else {
        panic!("{failure}")
    };
    let lockstep::check::Divergence::Diverged {
        event,
        first,
        second,
        ..
    } = &report.cause
    else {
        panic!("{failure}")
    };
    let text = failure.to_string();
    assert!(event.is_some(), "{text}");
    assert_ne!(first, second, "{text}");
    assert!(
        first.contains("0.001s") && second.contains("0.002s"),
        "{text}"
    );
    assert!(
        !text.contains("0.005s"),
        "runs that were not compared: {text}"
    );
    assert!(!text.contains("although their traces match"), "{text}");
}

#[test]
fn a_divergence_in_a_draw_names_two_different_hashes() {
    RUNS.with(|r| r.set(0));
    let outcome = Sim::check_determinism(2, || async {
        let n = RUNS.with(|r| {
            r.set(r.get() + 1);
            r.get()
        });
        // A draw that only the second run makes: the traces match.
        if n == 2 {
            let _ = lockstep::random::u64();
        }
    });
    let Some(Failure::NonDeterminism(report)) = outcome.failure() else {
        panic!("{:?}", outcome.failure())
    };
    let lockstep::check::Divergence::Diverged {
        event: None,
        first,
        second,
        ..
    } = &report.cause
    else {
        panic!("{:?}", report.cause)
    };
    assert_ne!(first, second);
}

#[lockstep::sim_test(seed = 1, check_determinism)]
#[ignore = "fails on purpose: driven by the test below"]
async fn child_sleeps_differently_each_run() {
    sleeps_by_run_count().await;
}

#[test]
fn a_sim_test_determinism_failure_is_reported_once_not_nested() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_sleeps_differently_each_run", "--exact", "--ignored"])
        .env_remove("LOCKSTEP_SEED")
        .env_remove("LOCKSTEP_SEEDS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("non-determinism: two runs of seed 0x1 diverged at trace event"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("the seed failed (non-determinism"),
        "{stdout}"
    );
}

#[test]
fn trace_text_is_part_of_the_determinism_hash() {
    for verbosity in [Verbosity::Full, Verbosity::Off] {
        RUNS.with(|r| r.set(0));
        let outcome = Sim::builder()
            .seed(4)
            .verbosity(verbosity)
            .build()
            .run_checking_determinism(|| async {
                let n = RUNS.with(|r| {
                    r.set(r.get() + 1);
                    r.get()
                });
                lockstep::trace!("run number {n}");
            });
        let failure = failure_of(&outcome);
        assert_eq!(
            failure.kind(),
            lockstep::check::FailureKind::NonDeterminism,
            "{failure}"
        );
        let text = failure.to_string();
        assert!(
            text.contains("run number 1") && text.contains("run number 2"),
            "{text}"
        );
    }
    // The same text hashes the same whether it is traced or not.
    let hash = |v| {
        Sim::builder()
            .seed(4)
            .verbosity(v)
            .build()
            .run(async { lockstep::trace!("line {}", 7) })
            .determinism_hash()
    };
    assert_eq!(hash(Verbosity::Full), hash(Verbosity::Off));
}

#[test]
fn a_wake_from_another_thread_gives_one_failure_kind_whatever_the_timing() {
    use std::future::poll_fn;
    use std::task::Poll;

    for delay_ms in [0, 0, 0, 20, 0, 5] {
        let outcome = Sim::new(8).run(async move {
            let mut asked = false;
            poll_fn(|cx| {
                if asked {
                    return Poll::Ready(());
                }
                asked = true;
                let waker = cx.waker().clone();
                // Not joined: the wake lands whenever the OS runs it.
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
                    waker.wake();
                });
                Poll::Pending
            })
            .await;
        });
        let failure = failure_of(&outcome);
        assert_eq!(
            failure.kind(),
            lockstep::check::FailureKind::Deadlock,
            "{failure}"
        );
    }
}

#[test]
fn a_dropped_task_err_is_an_unobserved_error() {
    let outcome = Sim::new(6).run(async {
        drop(
            lockstep::task::Builder::new()
                .name("fallible")
                .spawn(async { Err::<(), _>("boom") }),
        );
        sleep(Duration::from_millis(1)).await;
    });
    let failure = failure_of(&outcome);
    let Failure::UnobservedError(report) = failure else {
        panic!("{failure}")
    };
    assert_eq!(report.task.name.as_deref(), Some("fallible"));
    assert_eq!(report.output_type, "Result<(), &str>");
    let text = failure.to_string();
    assert!(
        text.starts_with("unobserved error: task #1 fallible (spawned at tests/true_reports.rs:"),
        "{text}"
    );
    assert!(
        text.contains("forgotten .await") && text.contains("seed 0x6"),
        "{text}"
    );
}

#[test]
fn a_task_err_whose_handle_is_dropped_later_is_an_unobserved_error() {
    let outcome = Sim::new(6).run(async {
        let h = spawn(async { Err::<u8, std::io::Error>(std::io::Error::other("disk full")) });
        sleep(Duration::from_millis(1)).await;
        assert!(h.is_finished());
        drop(h); // the forgotten await
        sleep(Duration::from_millis(1)).await;
    });
    let failure = failure_of(&outcome);
    assert_eq!(
        failure.kind(),
        lockstep::check::FailureKind::UnobservedError,
        "{failure}"
    );
    assert!(
        failure
            .to_string()
            .contains("Result<u8, std::io::error::Error>"),
        "{failure}"
    );
}

#[test]
fn task_errs_that_are_taken_or_ok_or_in_a_dropped_join_set_are_fine() {
    let outcome = Sim::new(6).run(async {
        let taken = spawn(async { Err::<(), _>("seen") });
        assert!(taken.await.unwrap().is_err());
        drop(spawn(async { Ok::<_, String>(1) }));
        drop(spawn(async { Some(()) }));
        let mut set = JoinSet::new();
        set.spawn(async { Err::<(), _>("dropped with its set") });
        sleep(Duration::from_millis(1)).await;
        drop(set);
        // `gather` fails fast and drops the rest.
        let r = gather(vec![
            Box::pin(async { Err::<(), _>("first") })
                as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>,
            Box::pin(async { Err::<(), _>("second") }),
        ])
        .await;
        assert!(r.is_err());
        sleep(Duration::from_millis(1)).await;
    });
    assert!(outcome.is_ok(), "{:?}", outcome.failure());
}

#[test]
fn unobserved_errors_can_be_downgraded() {
    let program = || async {
        drop(spawn(async { Err::<(), _>("ignored on purpose") }));
        sleep(Duration::from_millis(1)).await;
    };
    let warn = Sim::builder()
        .unobserved_errors(Severity::Warn)
        .build()
        .run(program());
    assert!(warn.is_ok());
    assert_eq!(
        warn.warnings()[0].kind(),
        lockstep::check::FailureKind::UnobservedError
    );
    let ignore = Sim::builder()
        .unobserved_errors(Severity::Ignore)
        .build()
        .run(program());
    assert!(ignore.is_ok() && ignore.warnings().is_empty());
}

/// The panic of a misused lockstep API, caught as the run's failure.
fn misuse_report<T>(outcome: &Outcome<T>) -> (String, String) {
    let failure = failure_of(outcome);
    let Failure::Panic(report) = failure else {
        panic!("{failure}")
    };
    let at = report
        .location
        .as_ref()
        .map(|l| l.file.to_string())
        .unwrap_or_default();
    (at, report.message.clone())
}

#[test]
fn misuse_of_lockstep_apis_points_at_the_callers_line() {
    // A socket from the main task, which runs on no host.
    let (at, message) = misuse_report(&Sim::new(1).run(async {
        lockstep::net::UdpSocket::bind("0.0.0.0:9").await.unwrap();
    }));
    assert_eq!(at, "tests/true_reports.rs");
    assert!(
        message.contains(
            "`lockstep::net::UdpSocket::bind` was called from a task that runs on no host"
        ),
        "{message}"
    );
    assert!(message.contains("Host::new"), "{message}");
    let (at, message) = misuse_report(&Sim::new(1).run(async {
        lockstep::net::TcpStream::connect("server:80")
            .await
            .unwrap();
    }));
    assert_eq!(at, "tests/true_reports.rs", "{message}");
    // An unknown host in a partition.
    let (at, message) = misuse_report(&Sim::new(1).run(async {
        lockstep::net::Host::new("a", || async { Ok(()) });
        lockstep::net::partition("a", "nope");
    }));
    assert_eq!(at, "tests/true_reports.rs", "{message}");
    assert!(message.contains("`lockstep::net::partition`"), "{message}");
    // An empty random range.
    let (at, message) = misuse_report(&Sim::new(1).run(async {
        lockstep::random::range(5..5u32);
    }));
    assert_eq!(at, "tests/true_reports.rs", "{message}");
    assert!(message.contains("the range is empty"), "{message}");
}

#[test]
fn apis_called_outside_a_simulation_name_themselves() {
    let message = |f: fn()| {
        let err = std::panic::catch_unwind(f).unwrap_err();
        err.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    let m = message(|| drop(timeout(Duration::from_secs(1), async {})));
    assert!(
        m.contains("`lockstep::time::timeout` was called outside"),
        "{m}"
    );
    let m = message(|| {
        let _ = lockstep::random::range(0..10u8);
    });
    assert!(
        m.contains("`lockstep::random::range` was called outside"),
        "{m}"
    );
    let m = message(|| lockstep::net::partition("a", "b"));
    assert!(
        m.contains("`lockstep::net::partition` was called outside"),
        "{m}"
    );
}

#[test]
fn a_mutex_locked_outside_a_simulation_names_the_line_that_locked_it() {
    let err = std::panic::catch_unwind(|| {
        let m = lockstep::sync::Mutex::new(0);
        let mut lock = std::pin::pin!(m.lock());
        let waker = std::task::Waker::noop();
        let _ =
            std::future::Future::poll(lock.as_mut(), &mut std::task::Context::from_waker(waker));
    })
    .unwrap_err();
    let m = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        m.contains("`lockstep::sync::Mutex::lock` was called outside"),
        "{m}"
    );
    assert!(
        m.contains("the future was made at tests/true_reports.rs:"),
        "{m}"
    );
}

#[test]
fn messages_count_in_the_singular_and_plural() {
    let outcome = Sim::builder().max_steps(1).build().run(async {
        yield_now().await;
    });
    let text = failure_of(&outcome).to_string();
    assert!(text.starts_with("step limit: 1 step without"), "{text}");
}

#[test]
fn a_task_deadlocked_on_its_own_mutex_is_not_said_to_leave_others_running() {
    let outcome = Sim::new(1).run(async {
        let m = lockstep::sync::Mutex::named("m", ());
        let _held = m.lock().await;
        let _again = m.lock().await;
    });
    let failure = failure_of(&outcome);
    assert_eq!(
        failure.kind(),
        lockstep::check::FailureKind::Deadlock,
        "{failure}"
    );
    let text = failure.to_string();
    assert!(!text.contains("other tasks could still run"), "{text}");
}

#[test]
#[ignore = "prints a report for the test below, under its RUST_BACKTRACE"]
fn child_prints_a_task_panic_report() {
    let outcome = Sim::new(1).run(async {
        drop(spawn(async { panic!("deep down") }));
        yield_now().await;
    });
    let failure = failure_of(&outcome);
    println!("REPORT<<{failure}>>");
    if let Some(bt) = failure.backtrace() {
        println!("BACKTRACE<<{bt}>>");
    }
}

#[test]
fn a_task_panic_report_has_a_backtrace_when_asked_for() {
    let report = |backtrace: &str| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "child_prints_a_task_panic_report",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env("RUST_BACKTRACE", backtrace)
            .env_remove("RUST_LIB_BACKTRACE")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{stdout}");
        let start = stdout.find("REPORT<<").expect("a report");
        stdout[start..].to_string()
    };
    let with = report("1");
    assert!(
        with.contains("deep down") && with.contains("BACKTRACE<<"),
        "{with}"
    );
    assert!(with.contains("true_reports"), "{with}");
    let without = report("0");
    assert!(without.contains("deep down"), "{without}");
    assert!(!without.contains("BACKTRACE<<"), "{without}");
}

#[test]
fn a_poll_that_arms_many_timers_at_once_is_not_a_livelock() {
    // 150,000 sleeps polled in one poll clone the task's waker as often:
    // many clones, no loop.
    use std::future::Future;
    let outcome = Sim::new(2).run(async {
        let mut sleeps: Vec<_> = (0..150_000u64)
            .map(|i| Box::pin(sleep(Duration::from_micros(1 + i % 7))))
            .collect();
        std::future::poll_fn(|cx| {
            sleeps.retain_mut(|s| s.as_mut().poll(cx).is_pending());
            if sleeps.is_empty() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    });
    assert!(outcome.is_ok(), "{:?}", outcome.failure());
}

/// A scenario-style runner: a function from a configured simulation to its
/// outcome, whose poll never returns (until the test releases it).
fn stuck_variant(sim: &Sim) -> Outcome<()> {
    sim.to_builder()
        .watchdog(Some(Duration::from_millis(300)))
        .build()
        .run(async {
            lockstep::trace!("variant starts");
            sleep(Duration::from_millis(4)).await;
            while !RELEASE_VARIANT.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
}

static RELEASE_VARIANT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[test]
fn a_runner_function_whose_poll_never_returns_is_handed_back_by_isolate() {
    let outcome = Sim::new(0x5eed).isolate(stuck_variant);
    RELEASE_VARIANT.store(true, std::sync::atomic::Ordering::Relaxed);
    let failure = failure_of(&outcome);
    let Failure::BlockedPoll(report) = failure else {
        panic!("{failure}")
    };
    assert!(!report.returned, "{failure}");
    assert_eq!(report.task.id, lockstep::task::TaskId::MAIN);
    assert_eq!(report.at.time, Instant::START + Duration::from_millis(4));
    let trace = outcome.trace().render();
    assert!(trace.contains("variant starts"), "{trace}");
}

static RELEASE_SWEEP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One seed of a sweep: seeds 3 and 7 spin inside one poll.
fn sweep_seed(sim: &Sim) -> Outcome<()> {
    let stuck = matches!(sim.seed().0, 3 | 7);
    sim.run(async move {
        lockstep::trace!("seed starts");
        sleep(Duration::from_millis(lockstep::random::range(1..5))).await;
        if stuck {
            while !RELEASE_SWEEP.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        }
    })
}

#[test]
fn a_sweep_reports_each_stuck_seed_with_its_trace_and_goes_on() {
    let mut verdicts = Vec::new();
    for seed in 0..10u64 {
        let sim = Sim::builder()
            .seed(seed)
            .watchdog(Some(Duration::from_millis(200)))
            .build();
        let outcome = sim.isolate(sweep_seed);
        if let Some(Failure::BlockedPoll(r)) = outcome.failure() {
            assert!(!r.returned);
            let trace = outcome.trace().render();
            assert!(trace.contains("seed starts"), "seed {seed}: {trace}");
        }
        verdicts.push((seed, outcome.failure().map(Failure::kind)));
    }
    RELEASE_SWEEP.store(true, std::sync::atomic::Ordering::Relaxed);
    let stuck: Vec<u64> = verdicts
        .iter()
        .filter(|(_, k)| *k == Some(lockstep::check::FailureKind::BlockedPoll))
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(stuck, [3, 7], "{verdicts:?}");
    assert_eq!(verdicts.iter().filter(|(_, k)| k.is_none()).count(), 8);
}
