//! Deadlock reports: cycles found the moment they close (even while other
//! tasks run), named with their tasks and primitives; global stalls with
//! wait chains; and no report where a task can still go on.

use std::cell::Cell;
use std::rc::Rc;

use lockstep::check::{DeadlockKind, DeadlockReport};
use lockstep::prelude::*;
use lockstep::sync::{Mutex, RwLock, Semaphore, mpsc};
use lockstep::task::Builder;
use lockstep::trace::RenderOptions;

fn deadlock(outcome: &Outcome<impl Sized>) -> &DeadlockReport {
    match outcome.failure() {
        Some(Failure::Deadlock(r)) => r,
        other => panic!("expected a deadlock, got {other:?}"),
    }
}

/// The tutorial's two workers, taking two locks in opposite orders (or the
/// same order), after a seeded start delay so that whether they overlap
/// depends on the seed.
async fn two_workers(opposite: bool, heartbeat: bool) {
    let lock1 = Rc::new(Mutex::named("lock1", ()));
    let lock2 = Rc::new(Mutex::named("lock2", ()));
    if heartbeat {
        Builder::new().name("heartbeat").daemon(true).spawn(async {
            loop {
                sleep(Duration::from_secs(1)).await;
            }
        });
    }
    let worker = |name: &'static str, first: Rc<Mutex<()>>, second: Rc<Mutex<()>>| {
        Builder::new().name(name).spawn(async move {
            sleep(lockstep::random::duration(
                Duration::ZERO..Duration::from_millis(300),
            ))
            .await;
            let _a = first.lock().await;
            sleep(Duration::from_millis(100)).await;
            let _b = second.lock().await;
        })
    };
    let a = worker("task-a", lock1.clone(), lock2.clone());
    let b = if opposite {
        worker("task-b", lock2, lock1)
    } else {
        worker("task-b", lock1, lock2)
    };
    a.await.unwrap();
    b.await.unwrap();
}

#[test]
fn a_lock_order_cycle_fails_the_run_when_it_closes_although_a_heartbeat_runs() {
    // Without the seeded start delays: both always deadlock at 0.1 s.
    let outcome = Sim::new(7).run(async {
        let lock1 = Rc::new(Mutex::named("lock1", ()));
        let lock2 = Rc::new(Mutex::named("lock2", ()));
        Builder::new().name("heartbeat").spawn(async {
            loop {
                sleep(Duration::from_secs(1)).await;
            }
        });
        let (l1, l2) = (lock1.clone(), lock2.clone());
        let a = Builder::new().name("task-a").spawn(async move {
            let _g = l1.lock().await;
            sleep(Duration::from_millis(100)).await;
            let _h = l2.lock().await;
        });
        let b = Builder::new().name("task-b").spawn(async move {
            let _g = lock2.lock().await;
            sleep(Duration::from_millis(100)).await;
            let _h = lock1.lock().await;
        });
        a.await.unwrap();
        b.await.unwrap();
    });
    let report = deadlock(&outcome);
    assert_eq!(report.kind, DeadlockKind::Cycle);
    // At the virtual time the cycle closed, not at the time limit.
    assert_eq!(report.at.time, Instant::START + Duration::from_millis(100));
    assert_eq!(report.cycle.len(), 2);
    let text = outcome.failure().unwrap().to_string();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("deadlock (seed 0x7, virtual time 0.100s, step"),
        "{text}"
    );
    for link in [
        "#2 task-a holds mutex 'lock1' and waits for mutex 'lock2'",
        "#3 task-b holds mutex 'lock2' and waits for mutex 'lock1'",
    ] {
        assert!(first.contains(link), "{text}");
    }
    assert!(
        text.contains("#1 heartbeat (spawned at tests/deadlock.rs:") && text.contains("a sleep"),
        "{text}"
    );
    assert!(
        text.contains("holds mutex 'lock1' and waits on mutex 'lock2', held by #3 task-b"),
        "{text}"
    );
    // The trace ends with the failure, not with teardown noise.
    let trace = outcome.trace();
    assert!(matches!(
        trace.events().last().unwrap().kind,
        lockstep::trace::EventKind::Failure { .. }
    ));
}

#[test]
fn opposite_lock_orders_deadlock_for_some_seeds_and_one_order_never_does() {
    let mut deadlocked = 0;
    for seed in 0..500u64 {
        let outcome = Sim::new(seed).run(two_workers(true, true));
        let Some(failure) = outcome.failure() else {
            continue;
        };
        deadlocked += 1;
        let report = deadlock(&outcome);
        assert_eq!(report.kind, DeadlockKind::Cycle, "seed {seed}: {failure}");
        let names: Vec<_> = report
            .cycle
            .iter()
            .map(|l| l.task.name.as_deref().unwrap())
            .collect();
        assert!(
            names.contains(&"task-a") && names.contains(&"task-b"),
            "{failure}"
        );
        let held: Vec<_> = report.cycle.iter().map(|l| l.holds.clone()).collect();
        assert!(held.contains(&Some("mutex 'lock1'".into())), "{failure}");
        assert!(held.contains(&Some("mutex 'lock2'".into())), "{failure}");
    }
    assert!(
        (20..480).contains(&deadlocked),
        "{deadlocked} of 500 seeds deadlocked: the race should go both ways"
    );
    for seed in 0..500u64 {
        let outcome = Sim::new(seed).run(two_workers(false, true));
        assert!(
            outcome.is_ok(),
            "seed {seed}: {}",
            outcome.failure().unwrap()
        );
    }
}

#[test]
fn a_deadlocked_seed_replays_with_the_same_report() {
    let seed = (0..100u64)
        .find(|&s| {
            Sim::new(s)
                .run(two_workers(true, false))
                .failure()
                .is_some()
        })
        .expect("some seed deadlocks");
    let run = || Sim::new(seed).run(two_workers(true, false));
    let (a, b) = (run(), run());
    assert_eq!(a.trace().render(), b.trace().render());
    assert_eq!(
        a.failure().unwrap().to_string(),
        b.failure().unwrap().to_string()
    );
}

#[test]
fn awaiting_a_handle_while_holding_the_lock_it_needs_is_a_cycle() {
    let outcome = Sim::new(3).run(async {
        Builder::new().name("monitor").daemon(true).spawn(async {
            loop {
                sleep(Duration::from_millis(250)).await;
            }
        });
        let lock = Rc::new(Mutex::named("state", 0));
        let guard = lock.lock().await;
        let l = lock.clone();
        let child = Builder::new().name("child").spawn(async move {
            *l.lock().await += 1;
        });
        sleep(Duration::from_secs(1)).await;
        child.await.unwrap(); // waits for the child, which waits for our lock
        drop(guard);
    });
    let report = deadlock(&outcome);
    assert_eq!(report.kind, DeadlockKind::Cycle);
    assert_eq!(report.at.time, Instant::START + Duration::from_secs(1));
    let text = outcome.failure().unwrap().to_string();
    assert!(
        text.contains(
            "#0 main holds mutex 'state' and waits for the JoinHandle of #2 child; \
             #2 child waits for mutex 'state'"
        ),
        "{text}"
    );
}

#[test]
fn semaphore_and_rwlock_cycles_are_found_too() {
    let sems = Sim::new(1).run(async {
        let (s1, s2) = (
            Rc::new(Semaphore::named("s1", 1)),
            Rc::new(Semaphore::named("s2", 1)),
        );
        let (a1, a2) = (s1.clone(), s2.clone());
        let a = Builder::new().name("a").spawn(async move {
            let _p = a1.acquire().await.unwrap();
            sleep(Duration::from_millis(10)).await;
            let _q = a2.acquire().await.unwrap();
        });
        let b = Builder::new().name("b").spawn(async move {
            let _p = s2.acquire().await.unwrap();
            sleep(Duration::from_millis(10)).await;
            let _q = s1.acquire().await.unwrap();
        });
        a.await.unwrap();
        b.await.unwrap();
    });
    let text = sems.failure().unwrap().to_string();
    assert!(
        text.contains("holds semaphore 's1' and waits for semaphore 's2'"),
        "{text}"
    );
    assert_eq!(deadlock(&sems).kind, DeadlockKind::Cycle);

    let rw = Sim::new(1).run(async {
        let config = Rc::new(RwLock::named("config", 0));
        let log = Rc::new(Mutex::named("log", ()));
        let (c, l) = (config.clone(), log.clone());
        let reader = Builder::new().name("reader").spawn(async move {
            let _r = c.read().await;
            sleep(Duration::from_millis(10)).await;
            let _l = l.lock().await;
        });
        let writer = Builder::new().name("writer").spawn(async move {
            let _l = log.lock().await;
            sleep(Duration::from_millis(10)).await;
            *config.write().await += 1;
        });
        reader.await.unwrap();
        writer.await.unwrap();
    });
    let text = rw.failure().unwrap().to_string();
    assert!(
        text.contains("holds rwlock 'config' (read) and waits for mutex 'log'"),
        "{text}"
    );
    assert!(
        text.contains("holds mutex 'log' and waits for rwlock 'config' (write)"),
        "{text}"
    );
}

#[test]
fn a_waiter_with_one_live_holder_among_several_is_not_stuck() {
    // `w` holds `m` and waits for a permit of `pool`, held by `stuck` (who
    // waits for `m`) and by `sleeper` (who gives its permit back at 1 s).
    for seed in 0..50u64 {
        let outcome = Sim::new(seed).run(async {
            let pool = Rc::new(Semaphore::named("pool", 2));
            let m = Rc::new(Mutex::named("m", ()));
            let (p1, p2, p3) = (pool.clone(), pool.clone(), pool.clone());
            let m2 = m.clone();
            let sleeper = Builder::new().name("sleeper").spawn(async move {
                let _p = p1.acquire().await.unwrap();
                sleep(Duration::from_secs(1)).await;
            });
            let w = Builder::new().name("w").spawn(async move {
                let _g = m.lock().await;
                sleep(Duration::from_millis(10)).await;
                let _p = p2.acquire().await.unwrap();
            });
            let stuck = Builder::new().name("stuck").spawn(async move {
                let _p = p3.acquire().await.unwrap();
                sleep(Duration::from_millis(20)).await;
                let _g = m2.lock().await;
            });
            for t in [sleeper, w, stuck] {
                t.await.unwrap();
            }
            Instant::now()
        });
        let t = outcome.into_result().unwrap();
        assert_eq!(t, Instant::START + Duration::from_secs(1), "seed {seed}");
    }
}

#[test]
fn a_timeout_on_the_second_lock_is_a_way_out_not_a_deadlock() {
    for seed in 0..100u64 {
        let outcome = Sim::new(seed).run(async {
            let (l1, l2) = (
                Rc::new(Mutex::named("l1", ())),
                Rc::new(Mutex::named("l2", ())),
            );
            let worker = |first: Rc<Mutex<()>>, second: Rc<Mutex<()>>| {
                spawn(async move {
                    let _g = first.lock().await;
                    sleep(Duration::from_millis(100)).await;
                    timeout(Duration::from_secs(1), second.lock()).await.is_ok()
                })
            };
            let a = worker(l1.clone(), l2.clone());
            let b = worker(l2, l1);
            (a.await.unwrap(), b.await.unwrap(), Instant::now())
        });
        let (a, b, at) = outcome.into_result().unwrap();
        // One gives up after its 1 s timeout; the other then gets through.
        assert!(a != b, "seed {seed}");
        assert_eq!(
            at,
            Instant::START + Duration::from_millis(1100),
            "seed {seed}"
        );
    }
}

#[test]
fn a_select_with_a_future_lockstep_cannot_see_is_never_reported_early() {
    // task-a waits for lock2 *or* a message on a channel from the futures
    // crate; a third task sends it at 1 s. lockstep counts the copy of
    // task-a's waker that the foreign channel holds: no false report.
    let outcome = Sim::new(11).run(async {
        let (l1, l2) = (
            Rc::new(Mutex::named("l1", ())),
            Rc::new(Mutex::named("l2", ())),
        );
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let (a1, a2) = (l1.clone(), l2.clone());
        let a = Builder::new().name("task-a").spawn(async move {
            let _g = a1.lock().await;
            sleep(Duration::from_millis(100)).await;
            // A `select` from the futures crate, too: nothing lockstep-made
            // but the lock.
            match futures::future::select(Box::pin(a2.lock()), rx).await {
                futures::future::Either::Left(_) => "lock",
                futures::future::Either::Right(_) => "gave up",
            }
        });
        let b = Builder::new().name("task-b").spawn(async move {
            let _g = l2.lock().await;
            sleep(Duration::from_millis(100)).await;
            let _h = l1.lock().await;
        });
        Builder::new().name("rescuer").spawn(async move {
            sleep(Duration::from_secs(1)).await;
            tx.send(()).unwrap();
        });
        let how = a.await.unwrap();
        b.await.unwrap();
        (how, Instant::now())
    });
    let (how, at) = outcome.into_result().unwrap();
    assert_eq!(how, "gave up");
    assert_eq!(at, Instant::START + Duration::from_secs(1));
}

#[test]
fn owned_permits_that_move_to_other_tasks_are_not_attributed_to_the_acquirer() {
    // The common pattern: acquire an owned permit, hand it to a spawned
    // worker. The acquirer then waits on the semaphore while the workers
    // (not the acquirer) hold the permits.
    let outcome = Sim::new(5).run(async {
        let limit = Rc::new(Semaphore::named("limit", 2));
        let mut workers = Vec::new();
        for i in 0..6u64 {
            let permit = limit.clone().acquire_owned().await.unwrap();
            workers.push(spawn(async move {
                sleep(Duration::from_millis(100 * (i + 1))).await;
                drop(permit);
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
        Instant::now()
    });
    assert!(outcome.is_ok(), "{}", outcome.failure().unwrap());
}

#[test]
fn a_cycle_through_a_channel_and_a_mutex_is_found_when_it_closes() {
    // The consumer holds `db` while it waits for a job; the producer, which
    // holds the only sender (it sent on it), needs `db` before it can send
    // the next one: a cycle, found the moment the producer blocks.
    let outcome = Sim::new(2).run(async {
        let db = Rc::new(Mutex::named("db", ()));
        let (tx, mut rx) = mpsc::channel_named::<u32>("jobs", 4);
        let d = db.clone();
        let consumer = Builder::new().name("consumer").spawn(async move {
            let _conn = d.lock().await;
            while let Some(job) = rx.recv().await {
                lockstep::trace!("job {job}");
            }
        });
        let producer = Builder::new().name("producer").spawn(async move {
            tx.send(1).await.unwrap();
            sleep(Duration::from_millis(10)).await;
            let _conn = db.lock().await;
            tx.send(2).await.unwrap();
        });
        producer.await.unwrap();
        consumer.await.unwrap();
    });
    let report = deadlock(&outcome);
    assert_eq!(report.kind, DeadlockKind::Cycle);
    let text = outcome.failure().unwrap().to_string();
    assert!(
        text.contains(
            "#1 consumer holds mutex 'db' and waits for a message on channel 'jobs'; \
             #2 producer holds the only sender of channel 'jobs' and waits for mutex 'db'"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "holds mutex 'db' and waits on a message on channel 'jobs' (empty; its only \
             sender is held by #2 producer)"
        ),
        "{text}"
    );
    assert!(
        text.contains("#2 producer (spawned at tests/deadlock.rs:")
            && text.contains("waits on mutex 'db', held by #1 consumer"),
        "{text}"
    );
}

#[test]
fn locking_a_mutex_twice_in_one_task_is_a_cycle_of_one() {
    let outcome = Sim::new(1).run(async {
        let m = Mutex::named("m", ());
        let _g = m.lock().await;
        let _h = m.lock().await;
    });
    let text = outcome.failure().unwrap().to_string();
    assert!(
        text.contains("#0 main holds mutex 'm' and waits for mutex 'm'"),
        "{text}"
    );
}

#[test]
fn the_check_can_be_turned_off() {
    let outcome = Sim::builder()
        .seed(7)
        .deadlock_cycles(Severity::Ignore)
        .max_virtual_time(Duration::from_secs(5))
        .build()
        .run(two_workers(true, true));
    // With the check off, the heartbeat keeps the run going to the limit
    // (for the seeds where the workers deadlock).
    if let Some(f) = outcome.failure() {
        assert!(matches!(f, Failure::TimeLimit(_)), "{f}");
    }
}

#[test]
fn unnamed_primitives_are_numbered_per_kind_in_creation_order() {
    let outcome = Sim::new(1).run(async {
        let _unused = Mutex::new(());
        let (a, b) = (Rc::new(Mutex::new(0)), Rc::new(Mutex::new(0)));
        let _sem = Semaphore::new(1);
        let (a2, b2) = (a.clone(), b.clone());
        let t = spawn(async move {
            let _x = b2.lock().await;
            sleep(Duration::from_millis(1)).await;
            let _y = a2.lock().await;
        });
        let _x = a.lock().await;
        sleep(Duration::from_millis(1)).await;
        let _y = b.lock().await;
        t.await.unwrap();
    });
    let text = outcome.failure().unwrap().to_string();
    assert!(
        text.contains("mutex#1") && text.contains("mutex#2"),
        "{text}"
    );
}

#[test]
fn deadlock_report_snapshot() {
    let outcome = Sim::new(3).run(two_workers(true, true));
    let failure = outcome.failure().expect("seed 3 deadlocks").to_string();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_omit_expression(true);
    settings.bind(|| {
        insta::assert_snapshot!(
            "deadlock_two_locks_seed_0x3",
            format!(
                "{}\n--- report ---\n{}\n",
                outcome.trace().render_with(&RenderOptions::stable()),
                strip_lines(&failure)
            )
        )
    });
}

/// Removes `:line` after `.rs` so the snapshot survives edits above.
fn strip_lines(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(".rs:") {
        out.push_str(&rest[..i + 3]);
        rest = rest[i + 4..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

#[test]
fn the_uncontended_path_never_walks_and_a_long_chain_is_cheap() {
    // 300 tasks queue on one lock held by a sleeping task: every block
    // walks one step (to the holder, which can go on).
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let outcome = Sim::builder()
        .seed(1)
        .verbosity(Verbosity::Off)
        .build()
        .run(async move {
            let m = Rc::new(Mutex::new(()));
            let g = m.lock().await;
            let tasks: Vec<_> = (0..300)
                .map(|_| {
                    let (m, r) = (m.clone(), r.clone());
                    spawn(async move {
                        let _g = m.lock().await;
                        r.set(r.get() + 1);
                    })
                })
                .collect();
            sleep(Duration::from_secs(1)).await;
            drop(g);
            for t in tasks {
                t.await.unwrap();
            }
        });
    assert!(outcome.is_ok());
    assert_eq!(ran.get(), 300);
}
