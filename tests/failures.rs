//! Every failure kind, produced by a small program, with its message checked.

use std::cell::RefCell;
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::task::Builder;

fn failure_of<T>(outcome: &Outcome<T>) -> &Failure {
    outcome.failure().expect("the run should fail")
}

#[test]
fn two_tasks_awaiting_each_other_deadlock_and_are_named() {
    let outcome = Sim::new(0xdead).run(async {
        let slot_a: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
        let slot_b: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
        let (for_a, for_b) = (slot_b.clone(), slot_a.clone());
        let a = Builder::new().name("task-a").spawn(async move {
            sleep(Duration::from_secs(1)).await;
            let b = for_a.borrow_mut().take().unwrap();
            b.await.unwrap();
        });
        let b = Builder::new().name("task-b").spawn(async move {
            sleep(Duration::from_secs(1)).await;
            let a = for_b.borrow_mut().take().unwrap();
            a.await.unwrap();
        });
        let (ida, idb) = (a.id(), b.id());
        *slot_a.borrow_mut() = Some(a);
        *slot_b.borrow_mut() = Some(b);
        futures::future::pending::<()>().await;
        (ida, idb)
    });
    let failure = failure_of(&outcome);
    assert!(matches!(failure, Failure::Deadlock(_)), "{failure}");
    let text = failure.to_string();
    assert!(
        text.contains("deadlock (seed 0xdead, virtual time 1.000s"),
        "{text}"
    );
    assert!(
        text.contains("#1 task-a (spawned at tests/failures.rs:"),
        "{text}"
    );
    assert!(text.contains("waits on join of #2 task-b"), "{text}");
    assert!(text.contains("waits on join of #1 task-a"), "{text}");
    assert!(
        text.contains("#0 main (spawned at tests/failures.rs:"),
        "{text}"
    );
    let Failure::Deadlock(report) = failure else {
        unreachable!()
    };
    assert_eq!(report.blocked.len(), 3, "{text}");
}

#[test]
fn a_deadlock_on_foreign_futures_is_reported_not_hung() {
    // Two tasks each waiting on a oneshot that only the other would send.
    let outcome = Sim::new(1).run(async {
        let (tx1, rx1) = futures::channel::oneshot::channel::<()>();
        let (tx2, rx2) = futures::channel::oneshot::channel::<()>();
        let a = spawn(async move {
            rx1.await.ok();
            tx2.send(()).ok();
        });
        let b = spawn(async move {
            rx2.await.ok();
            tx1.send(()).ok();
        });
        a.await.unwrap();
        b.await.unwrap();
    });
    let text = failure_of(&outcome).to_string();
    assert!(text.starts_with("deadlock"), "{text}");
    assert!(text.contains("a future lockstep does not track"), "{text}");
    assert!(
        text.contains("#0 main") && text.contains("#1") && text.contains("#2"),
        "{text}"
    );
}

#[test]
fn a_task_panic_observed_through_its_handle_is_a_value() {
    let outcome = Sim::new(4).run(async {
        let h = Builder::new()
            .name("doomed")
            .spawn(async { panic!("boom {}", 42) });
        h.await
    });
    let err = outcome.into_result().unwrap().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("boom 42"));
    let JoinError::Panicked { location, .. } = &err else {
        unreachable!()
    };
    assert_eq!(location.as_ref().unwrap().file, "tests/failures.rs");
    assert!(
        err.to_string()
            .starts_with("task panicked at tests/failures.rs:")
    );
}

#[test]
fn a_detached_task_panic_fails_the_run_with_a_report() {
    let outcome = Sim::new(0x51).run(async {
        drop(Builder::new().name("fire-and-forget").spawn(async {
            sleep(Duration::from_millis(10)).await;
            panic!("nobody is listening");
        }));
        sleep(Duration::from_secs(1)).await;
    });
    let failure = failure_of(&outcome);
    let Failure::Panic(report) = failure else {
        panic!("{failure}")
    };
    assert!(report.unobserved);
    assert_eq!(report.task.name.as_deref(), Some("fire-and-forget"));
    assert_eq!(report.at.time, Instant::START + Duration::from_millis(10));
    let text = failure.to_string();
    assert!(
        text.contains("task #1 fire-and-forget (spawned at tests/failures.rs:"),
        "{text}"
    );
    assert!(text.contains("nobody is listening"), "{text}");
    assert!(text.contains("seed 0x51"), "{text}");
    assert!(text.contains("nobody observed this panic"), "{text}");
}

#[test]
fn a_panic_held_in_a_handle_never_awaited_fails_at_the_end() {
    let outcome = Sim::new(2).run(async {
        let h = spawn(async { panic!("stored") });
        sleep(Duration::from_secs(1)).await;
        assert!(h.is_finished());
        vec![h] // returned, never awaited
    });
    let text = failure_of(&outcome).to_string();
    assert!(
        text.contains("stored") && text.contains("nobody observed"),
        "{text}"
    );
}

#[test]
fn unobserved_panics_can_be_downgraded() {
    let program = || async {
        drop(spawn(async { panic!("ignored on purpose") }));
        lockstep::task::yield_now().await;
        lockstep::task::yield_now().await;
    };
    let warn = Sim::builder()
        .unobserved_panics(Severity::Warn)
        .build()
        .run(program());
    assert!(warn.is_ok());
    assert!(
        warn.warnings()[0]
            .to_string()
            .contains("ignored on purpose")
    );
    let ignore = Sim::builder()
        .unobserved_panics(Severity::Ignore)
        .build()
        .run(program());
    assert!(ignore.is_ok() && ignore.warnings().is_empty());
}

#[test]
fn a_panic_in_the_main_task_is_a_report() {
    let outcome = Sim::new(9).run(async {
        sleep(Duration::from_secs(3)).await;
        let v: Vec<u8> = Vec::new();
        v[1]
    });
    let failure = failure_of(&outcome);
    let text = failure.to_string();
    assert!(
        text.starts_with("the main task panicked at tests/failures.rs:"),
        "{text}"
    );
    assert!(text.contains("index out of bounds"), "{text}");
    assert!(text.contains("seed 0x9, virtual time 3.000s"), "{text}");
}

#[test]
fn a_yield_loop_hits_the_step_limit() {
    let outcome = Sim::builder().seed(3).max_steps(10_000).build().run(async {
        Builder::new().name("spinner").spawn(async {
            loop {
                lockstep::task::yield_now().await;
            }
        });
        futures::future::pending::<()>().await
    });
    let failure = failure_of(&outcome);
    let Failure::StepLimit(report) = failure else {
        panic!("{failure}")
    };
    assert_eq!(report.limit, 10_000);
    assert_eq!(report.busiest[0].0.name.as_deref(), Some("spinner"));
    let text = failure.to_string();
    assert!(text.starts_with("step limit: 10000 steps"), "{text}");
    assert!(
        text.contains("#1 spinner (spawned at tests/failures.rs:"),
        "{text}"
    );
    assert!(text.contains("seed 0x3"), "{text}");
}

#[test]
fn the_default_step_limit_stops_a_livelock() {
    let outcome = Sim::new(1).run(async {
        loop {
            lockstep::task::yield_now().await;
        }
    });
    assert!(matches!(failure_of(&outcome), Failure::StepLimit(_)));
    assert_eq!(
        outcome.stats().steps,
        lockstep::SimBuilder::DEFAULT_MAX_STEPS
    );
}

#[test]
fn a_timer_loop_hits_the_time_limit() {
    let outcome = Sim::builder()
        .seed(0x77)
        .max_virtual_time(Duration::from_secs(10))
        .build()
        .run(async {
            loop {
                sleep(Duration::from_secs(1)).await;
            }
        });
    let failure = failure_of(&outcome);
    assert!(matches!(failure, Failure::TimeLimit(_)), "{failure}");
    assert_eq!(failure.at().time, Instant::START + Duration::from_secs(10));
    assert!(
        failure
            .to_string()
            .contains("seed 0x77, virtual time 10.000s")
    );
}

#[test]
fn tasks_alive_when_main_returns_are_leaks() {
    let program = || async {
        Builder::new().name("forgotten").spawn(async {
            sleep(Duration::from_secs(100)).await;
        });
        Builder::new().name("heartbeat").daemon(true).spawn(async {
            loop {
                sleep(Duration::from_secs(1)).await;
            }
        });
        spawn(async {}).await.unwrap(); // finished: not a leak
        sleep(Duration::from_secs(5)).await;
    };
    let outcome = Sim::new(0x1ea).run(program());
    let failure = failure_of(&outcome);
    let Failure::Leak(report) = failure else {
        panic!("{failure}")
    };
    assert_eq!(report.tasks.len(), 1, "the daemon is exempt");
    let text = failure.to_string();
    assert!(text.starts_with("leak: 1 task was still alive"), "{text}");
    assert!(
        text.contains("#1 forgotten (spawned at tests/failures.rs:"),
        "{text}"
    );
    assert!(text.contains("a sleep until 100.000s"), "{text}");
    assert!(text.contains("seed 0x1ea, virtual time 5.000s"), "{text}");

    let warned = Sim::builder().leaks(Severity::Warn).build().run(program());
    assert!(warned.is_ok());
    assert!(matches!(warned.warnings(), [Failure::Leak(_)]));
    assert!(
        Sim::builder()
            .leaks(Severity::Ignore)
            .build()
            .run(program())
            .is_ok()
    );
}

#[test]
fn every_failure_message_names_the_seed() {
    let seed = 0xabc_u64;
    let outcomes: Vec<Outcome<()>> = vec![
        Sim::new(seed).run(async { panic!("p") }),
        Sim::new(seed).run(futures::future::pending::<()>()),
        Sim::builder().seed(seed).max_steps(5).build().run(async {
            loop {
                lockstep::task::yield_now().await
            }
        }),
        Sim::builder()
            .seed(seed)
            .max_virtual_time(Duration::from_secs(1))
            .build()
            .run(async { sleep(Duration::from_secs(2)).await }),
        Sim::new(seed).run(async {
            spawn(futures::future::pending::<()>());
        }),
    ];
    let kinds: Vec<&str> = outcomes
        .iter()
        .map(|o| failure_of(o).kind().name())
        .collect();
    assert_eq!(
        kinds,
        ["panic", "deadlock", "step-limit", "time-limit", "leak"]
    );
    for o in &outcomes {
        let f = failure_of(o);
        assert_eq!(f.seed(), Seed(seed));
        assert!(f.to_string().contains("seed 0xabc"), "{f}");
        // The trace ends with the failure.
        let last = o.trace().events().last().unwrap();
        assert!(matches!(
            last.kind,
            lockstep::trace::EventKind::Failure { .. }
        ));
    }
}

#[test]
fn spawning_outside_a_simulation_says_so() {
    let err = std::panic::catch_unwind(|| lockstep::spawn(async {})).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("`lockstep::spawn` was called outside a lockstep simulation"),
        "{msg}"
    );
    assert!(!lockstep::in_simulation());
    assert!(
        Sim::new(1)
            .run(async { lockstep::in_simulation() })
            .into_result()
            .unwrap()
    );
}
