//! `gather`, `gather_settled`, `as_completed`, `wait`, `select`,
//! `wait_for`: the asyncio tutorial's examples, with their virtual timings.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use lockstep::future::{Either, wait_for};
use lockstep::prelude::*;
use lockstep::sync::Mutex;
use lockstep::task::Builder;

type Task<T> = Pin<Box<dyn Future<Output = T>>>;

/// A simulated request: `Ok(name)` after `secs`, or `Err` if it fails.
fn fetch(name: &'static str, secs: f64, ok: bool) -> Task<Result<&'static str, String>> {
    Box::pin(async move {
        sleep(Duration::from_secs_f64(secs)).await;
        if ok {
            Ok(name)
        } else {
            Err(format!("{name}: HTTP 500"))
        }
    })
}

fn secs() -> f64 {
    Instant::now().since_start().as_secs_f64()
}

#[test]
fn gather_returns_every_value_in_order_when_all_succeed() {
    let outcome = Sim::new(1).run(async {
        let results = gather([
            fetch("Fast", 1.0, true),
            fetch("Medium", 2.0, true),
            fetch("Quick", 1.5, true),
        ])
        .await;
        (results, secs())
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        (Ok(vec!["Fast", "Medium", "Quick"]), 2.0)
    );
}

#[test]
fn gather_fails_fast_and_leaves_the_others_running() {
    let finished = Rc::new(Cell::new(0));
    let program = |wait_for_them: bool| {
        let finished = finished.clone();
        async move {
            let tracked = |name, secs| {
                let finished = finished.clone();
                Box::pin(async move {
                    let r = fetch(name, secs, true).await;
                    finished.set(finished.get() + 1);
                    r
                }) as Task<_>
            };
            let res = gather([
                tracked("Success1", 1.0),
                fetch("Failure", 0.5, false),
                tracked("Success2", 1.0),
            ])
            .await;
            let failed_at = secs();
            if wait_for_them {
                sleep(Duration::from_secs(1)).await;
            }
            (res, failed_at)
        }
    };
    let outcome = Sim::new(2).run(program(true));
    let (res, at) = outcome.into_result().unwrap();
    assert_eq!(res, Err("Failure: HTTP 500".to_string()));
    assert_eq!(at, 0.5);
    assert_eq!(finished.get(), 2, "the siblings ran to completion");

    // Returning at once: the siblings are still running, and the leak
    // check says so.
    let outcome = Sim::new(2).run(program(false));
    match outcome.failure() {
        Some(Failure::Leak(report)) => assert_eq!(report.tasks.len(), 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn gather_settled_returns_every_result_in_order() {
    let outcome = Sim::new(3).run(async {
        let results = gather_settled([
            fetch("R3", 0.5, true),
            fetch("U2", 0.5, false),
            fetch("R4", 0.5, true),
        ])
        .await;
        let results: Vec<_> = results.into_iter().map(Result::unwrap).collect();
        (results, secs())
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        (
            vec![Ok("R3"), Err("U2: HTTP 500".to_string()), Ok("R4")],
            0.5
        )
    );
}

#[test]
fn a_panicking_gathered_task_panics_the_gatherer_once() {
    let outcome = Sim::new(4).run(async {
        let boom: Task<Result<(), ()>> = Box::pin(async {
            sleep(Duration::from_millis(5)).await;
            panic!("boom")
        });
        let _ = gather([boom, Box::pin(async { Ok(()) })]).await;
    });
    let Some(Failure::Panic(report)) = outcome.failure() else {
        panic!("{:?}", outcome.failure());
    };
    assert!(!report.unobserved, "observed through gather, reported once");
    assert!(
        report
            .message
            .starts_with("gather: task #1: task panicked at tests/combinators.rs:"),
        "{}",
        report.message
    );
    assert!(report.message.ends_with(": boom"), "{}", report.message);

    // gather_settled returns it as a value instead.
    let outcome = Sim::new(4).run(async {
        gather_settled([
            Box::pin(async { panic!("boom") as u8 }) as Task<u8>,
            Box::pin(async { 1 }),
        ])
        .await
    });
    let results = outcome.into_result().unwrap();
    assert_eq!(
        results[0].as_ref().unwrap_err().panic_message(),
        Some("boom")
    );
    assert_eq!(results[1], Ok(1));
}

#[test]
fn dropping_a_gather_cancels_its_tasks() {
    // The tutorial's `wait_for(gather(...), timeout)`: cancelling the gather
    // cancels what it gathered, and their cleanup runs.
    struct Cleanup(Rc<Cell<u32>>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let cleaned = Rc::new(Cell::new(0));
    let c = cleaned.clone();
    let outcome = Sim::new(5).run(async move {
        let slow = |c: Rc<Cell<u32>>| {
            Box::pin(async move {
                let _cleanup = Cleanup(c);
                sleep(Duration::from_secs(5)).await;
                Ok::<_, ()>(())
            }) as Task<_>
        };
        let res = wait_for(
            Duration::from_secs(1),
            gather([slow(c.clone()), slow(c.clone())]),
        )
        .await;
        (res.is_err(), secs())
    });
    assert_eq!(outcome.into_result().unwrap(), (true, 1.0));
    assert_eq!(cleaned.get(), 2);
}

#[test]
fn as_completed_yields_in_completion_order_then_the_timeout() {
    let outcome = Sim::new(6).run(async {
        let slow_task = |id: &'static str, secs: u64| async move {
            sleep(Duration::from_secs(secs)).await;
            format!("Task {id} result")
        };
        let mut completed = Vec::new();
        let mut tasks = as_completed(
            [
                slow_task("A", 1),
                slow_task("B", 3),
                slow_task("C", 2),
                slow_task("D", 4),
            ],
            Some(Duration::from_secs_f64(2.5)),
        );
        while let Some(next) = tasks.next().await {
            match next {
                Ok(result) => completed.push((result, secs())),
                Err(_elapsed) => {
                    completed.push(("timeout".to_string(), secs()));
                    break;
                }
            }
        }
        (completed, tasks.len())
    });
    let (completed, left) = outcome.into_result().unwrap();
    assert_eq!(
        completed,
        [
            ("Task A result".to_string(), 1.0),
            ("Task C result".to_string(), 2.0),
            ("timeout".to_string(), 2.5),
        ]
    );
    // B and D were aborted with the stream: no leak.
    assert_eq!(left, 2);
}

#[test]
fn as_completed_without_a_timeout_orders_by_duration() {
    for seed in 0..50u64 {
        let outcome = Sim::new(seed).run(async {
            let durations: Vec<Duration> = (0..5)
                .map(|_| {
                    lockstep::random::duration(Duration::from_millis(500)..Duration::from_secs(3))
                })
                .collect();
            let tasks = durations.iter().enumerate().map(|(i, &d)| async move {
                sleep(d).await;
                (i, d)
            });
            let mut stream = as_completed(tasks, None);
            let mut order = Vec::new();
            while let Some(next) = stream.next().await {
                order.push(next.unwrap().1);
            }
            let max = durations.iter().max().copied();
            (order, max, Instant::now().since_start())
        });
        let (order, max, total) = outcome.into_result().unwrap();
        assert!(order.is_sorted(), "seed {seed}: {order:?}");
        assert_eq!(Some(total), max);
    }
}

/// The tutorial's `controlled_task`: `Ok` after `secs`, or `Err`.
fn controlled(id: &'static str, secs: u64, fail: bool) -> JoinHandle<Result<String, String>> {
    Builder::new().name(id).spawn(async move {
        sleep(Duration::from_secs(secs)).await;
        if fail {
            Err(format!("Task {id} intentionally failed"))
        } else {
            Ok(format!("Result from task {id}"))
        }
    })
}

/// Awaits the handles `wait` returned as done.
async fn results<T>(done: Vec<JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in done {
        out.push(t.await.unwrap());
    }
    out
}

/// "Cancel remaining tasks", as the tutorial does after `wait`.
fn cancel(pending: &[JoinHandle<impl Sized>]) {
    for t in pending {
        t.abort();
    }
}

#[test]
fn wait_first_completed_returns_at_the_first_and_cancelling_the_rest_is_instant() {
    let outcome = Sim::new(7).run(async {
        let tasks = [
            controlled("A", 1, false),
            controlled("B", 2, false),
            controlled("C", 3, false),
        ];
        let (done, pending) = wait(tasks, WaitFor::FirstCompleted, None).await;
        let first_at = secs();
        let results = results(done).await;
        cancel(&pending);
        let (cancelled, still) = wait(pending, WaitFor::AllCompleted, None).await;
        (results, first_at, cancelled.len(), still.len(), secs())
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        (vec![Ok("Result from task A".to_string())], 1.0, 2, 0, 1.0)
    );
}

#[test]
fn wait_first_exception_returns_at_the_first_failure() {
    let outcome = Sim::new(8).run(async {
        let tasks = [
            controlled("X", 2, false),
            controlled("Y", 1, true),
            controlled("Z", 3, false),
        ];
        let (done, pending) = wait(tasks, WaitFor::FirstException, None).await;
        let at = secs();
        let results = results(done).await;
        cancel(&pending);
        (results, pending.len(), at)
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        (vec![Err("Task Y intentionally failed".to_string())], 2, 1.0)
    );
    // Without a failure it waits for all.
    let all = Sim::new(8)
        .run(async {
            let tasks = [controlled("P", 1, false), controlled("Q", 2, false)];
            let (done, _) = wait(tasks, WaitFor::FirstException, None).await;
            (done.len(), secs())
        })
        .into_result()
        .unwrap();
    assert_eq!(all, (2, 2.0));
}

#[test]
fn wait_with_a_timeout_returns_what_finished_by_then() {
    let outcome = Sim::new(9).run(async {
        let tasks = [
            controlled("Fast", 1, false),
            controlled("Medium", 3, false),
            controlled("Slow", 5, false),
        ];
        let (done, pending) =
            wait(tasks, WaitFor::AllCompleted, Some(Duration::from_secs(2))).await;
        let at = secs();
        cancel(&pending);
        let results: Vec<_> = results(done)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        (results, pending.len(), at)
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        (vec!["Result from task Fast".to_string()], 2, 2.0)
    );

    // The error-handling section's partial completion: 1, 2, 4, 5 s with a
    // 2.5 s timeout.
    let outcome = Sim::new(9).run(async {
        let ops: Vec<_> = [1, 2, 4, 5]
            .into_iter()
            .map(|s| controlled("Op", s, false))
            .collect();
        let (done, pending) = wait(
            ops,
            WaitFor::AllCompleted,
            Some(Duration::from_millis(2500)),
        )
        .await;
        cancel(&pending);
        (done.len(), pending.len(), secs())
    });
    assert_eq!(outcome.into_result().unwrap(), (2, 2, 2.5));
}

#[test]
fn the_task_management_example_ends_every_task_as_ok_failed_or_cancelled() {
    for seed in 0..100u64 {
        let outcome = Sim::new(seed).run(async {
            let cancelled_cleanly = Rc::new(Cell::new(0));
            let tasks: Vec<JoinHandle<Result<String, String>>> = (1..=5)
                .map(|i| {
                    let cancelled = cancelled_cleanly.clone();
                    Builder::new().name(format!("W{i}")).spawn(async move {
                        struct OnCancel(Rc<Cell<u32>>, bool);
                        impl Drop for OnCancel {
                            fn drop(&mut self) {
                                if !self.1 {
                                    self.0.set(self.0.get() + 1); // "Cancelled during work"
                                }
                            }
                        }
                        let mut guard = OnCancel(cancelled, false);
                        let work = lockstep::random::range(1.0..4.0f64);
                        for _ in 0..work as u32 {
                            sleep(Duration::from_secs(1)).await;
                        }
                        guard.1 = true;
                        if lockstep::random::f64() < 0.3 {
                            return Err(format!("Worker W{i} encountered an error!"));
                        }
                        Ok(format!("Success-W{i}"))
                    })
                })
                .collect();
            sleep(Duration::from_secs(2)).await;
            for t in &tasks {
                if !t.is_finished() {
                    t.abort();
                }
            }
            let results = gather_settled(tasks).await;
            let mut kinds = [0u32; 3];
            for r in results {
                match r.unwrap() {
                    Ok(Ok(_)) => kinds[0] += 1,
                    Ok(Err(_)) => kinds[1] += 1,
                    Err(e) => {
                        assert!(e.is_cancelled());
                        kinds[2] += 1
                    }
                }
            }
            (kinds, cancelled_cleanly.get(), secs())
        });
        let (kinds, cleaned, at) = outcome.into_result().unwrap();
        assert_eq!(kinds.iter().sum::<u32>(), 5, "seed {seed}");
        assert_eq!(
            kinds[2], cleaned,
            "seed {seed}: cleanup ran for each cancelled task"
        );
        assert_eq!(at, 2.0, "seed {seed}");
    }
}

#[test]
fn select_returns_the_first_and_drops_the_other() {
    let outcome = Sim::new(10).run(async {
        let m = Rc::new(Mutex::named("m", ()));
        let guard = m.lock().await;
        // The losing branch is a queued lock: dropping it leaves the line.
        let won = select(m.lock(), sleep(Duration::from_secs(1))).await;
        let won = matches!(won, Either::Right(()));
        drop(guard);
        let free = m.try_lock().is_ok();
        (won, free, secs())
    });
    assert_eq!(outcome.into_result().unwrap(), (true, true, 1.0));
}

#[test]
fn when_both_are_ready_the_winner_is_a_seeded_choice() {
    let winner = |seed: u64| {
        Sim::new(seed)
            .run(async { matches!(select(async { 1 }, async { 2 }).await, Either::Left(_)) })
            .into_result()
            .unwrap()
    };
    let lefts = (0..100).filter(|&s| winner(s)).count();
    assert!((20..80).contains(&lefts), "{lefts} of 100");
    for s in 0..20 {
        assert_eq!(winner(s), winner(s), "seed {s} replays");
    }
}

#[test]
fn wait_for_is_timeout() {
    let outcome = Sim::new(1).run(async {
        let slow = wait_for(Duration::from_secs(2), sleep(Duration::from_secs(3))).await;
        let fast = wait_for(Duration::from_secs(2), async { 7 }).await;
        (slow.is_err(), fast, secs())
    });
    assert_eq!(outcome.into_result().unwrap(), (true, Ok(7), 2.0));
}

#[test]
fn recovering_from_a_lock_cycle_by_cancelling_the_gather_warns_when_asked() {
    // The tutorial's `wait_for(gather(task_a(), task_b()), timeout=1.0)`.
    let program = || async {
        let (lock1, lock2) = (
            Rc::new(Mutex::named("lock1", ())),
            Rc::new(Mutex::named("lock2", ())),
        );
        let (a1, a2) = (lock1.clone(), lock2.clone());
        let task_a = async move {
            let _g = a1.lock().await;
            sleep(Duration::from_millis(100)).await;
            let _h = a2.lock().await;
            Ok::<_, ()>(())
        };
        let task_b = async move {
            let _g = lock2.lock().await;
            sleep(Duration::from_millis(100)).await;
            let _h = lock1.lock().await;
            Ok::<_, ()>(())
        };
        let res = wait_for(
            Duration::from_secs(1),
            gather([Box::pin(task_a) as Task<_>, Box::pin(task_b)]),
        )
        .await;
        (res.is_err(), Instant::now())
    };
    // By default the cycle fails the run when it closes, at 0.1 s.
    let failed = Sim::new(1).run(program());
    match failed.failure() {
        Some(Failure::Deadlock(r)) => {
            assert_eq!(r.at.time, Instant::START + Duration::from_millis(100))
        }
        other => panic!("{other:?}"),
    }

    let warned = Sim::builder()
        .seed(1)
        .deadlock_cycles(Severity::Warn)
        .build()
        .run(program());
    assert!(
        matches!(warned.warnings(), [Failure::Deadlock(_)]),
        "one report"
    );
    let (timed_out, at) = warned.into_result().unwrap();
    assert!(timed_out, "\"Deadlock detected! Tasks timed out\"");
    assert_eq!(at, Instant::START + Duration::from_secs(1));
}

#[test]
fn as_completed_trace_snapshot() {
    let outcome = Sim::new(1).run(async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let slow_task = |id: &'static str, secs: u64| async move {
            sleep(Duration::from_secs(secs)).await;
            lockstep::trace!("task {id} done");
            id
        };
        let mut tasks = as_completed(
            [
                slow_task("A", 1),
                slow_task("B", 3),
                slow_task("C", 2),
                slow_task("D", 4),
            ],
            Some(Duration::from_millis(2500)),
        );
        while let Some(next) = tasks.next().await {
            match next {
                Ok(id) => lockstep::trace!("completed {id}"),
                Err(_) => lockstep::trace!("overall timeout"),
            }
            log.borrow_mut().push(secs());
        }
        log.take()
    });
    lockstep::assert_trace_snapshot!("as_completed_timeout_seed_0x1", outcome);
    assert_eq!(outcome.into_result().unwrap(), [1.0, 2.0, 2.5]);
}

#[test]
fn programs_using_sync_and_combinators_replay_exactly() {
    // Runs each seed twice and compares every decision (the executor's
    // determinism check): hand-offs, names and select's choice included.
    let program = || async {
        let m = Rc::new(Mutex::new(0u32));
        let (tx, mut rx) = lockstep::sync::mpsc::channel(4);
        let work: Vec<Task<Result<u32, ()>>> = (0..4)
            .map(|i: u32| {
                let (m, tx) = (m.clone(), tx.clone());
                Box::pin(async move {
                    sleep(lockstep::random::duration(
                        Duration::ZERO..Duration::from_millis(10),
                    ))
                    .await;
                    *m.lock().await += i;
                    tx.send(i).await.unwrap();
                    Ok(i)
                }) as Task<_>
            })
            .collect();
        drop(tx);
        let all = gather(work).await.unwrap();
        let mut got = Vec::new();
        while let Some(v) = rx.recv().await {
            got.push(v);
        }
        let raced = select(async { 1 }, async { 2 }).await;
        (all, got, raced == Either::Left(1), *m.lock().await)
    };
    for seed in 0..20u64 {
        let outcome = Sim::check_determinism(seed, program);
        let (all, mut got, _, sum) = outcome.into_result().unwrap();
        got.sort();
        assert_eq!((all, got, sum), (vec![0, 1, 2, 3], vec![0, 1, 2, 3], 6));
    }
}
