//! The virtual clock: sleeps, timeouts, intervals, timer order.

use std::cell::RefCell;
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::time::{MissedTickBehavior, interval_at, timeout_at};
use lockstep::trace::EventKind;

fn secs(s: f64) -> Instant {
    Instant::START + Duration::from_secs_f64(s)
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    Sim::new(11)
        .run(f)
        .into_result()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn sleep_advances_virtual_time_exactly() {
    let t = run(async {
        sleep(Duration::from_millis(1500)).await;
        let a = Instant::now();
        sleep(Duration::from_nanos(1)).await;
        (a, Instant::now())
    });
    assert_eq!(t.0, secs(1.5));
    assert_eq!(t.1, secs(1.5) + Duration::from_nanos(1));
}

#[test]
fn sleep_zero_completes_without_yielding() {
    let outcome = Sim::new(1).run(async {
        for _ in 0..100 {
            sleep(Duration::ZERO).await;
            sleep_until(Instant::START).await;
        }
        Instant::now()
    });
    assert_eq!(*outcome.result().unwrap(), Instant::START);
    assert_eq!(
        outcome.stats().steps,
        1,
        "a due sleep never suspends the task"
    );
}

#[test]
fn a_ten_year_sleep_is_instant_and_exact() {
    let ten_years = Duration::from_secs(10 * 365 * 24 * 3600);
    let outcome = Sim::builder()
        .seed(5)
        .no_time_limit()
        .build()
        .run(async move {
            sleep(ten_years).await;
            Instant::now()
        });
    assert_eq!(*outcome.result().unwrap(), Instant::START + ten_years);
    assert_eq!(outcome.stats().clock_jumps, 1);
    assert_eq!(outcome.stats().steps, 2);
}

#[test]
fn a_sleep_past_the_time_limit_fails_with_time_limit() {
    let outcome = Sim::builder()
        .seed(5)
        .max_virtual_time(Duration::from_secs(60))
        .build()
        .run(async { sleep(Duration::from_secs(61)).await });
    let failure = outcome.failure().expect("61 s > 60 s");
    assert!(matches!(failure, Failure::TimeLimit(_)), "{failure}");
    assert_eq!(failure.at().time, secs(60.0));
    let text = failure.to_string();
    assert!(text.contains("limit of 60.000s"), "{text}");
    assert!(text.contains("#0 main"), "{text}");
    assert!(text.contains("a sleep until 61.000s"), "{text}");
}

#[test]
fn nested_timeouts_fire_at_the_right_time() {
    let (inner_first, outer_first) = run(async {
        let a = timeout(
            Duration::from_secs(5),
            timeout(Duration::from_secs(1), sleep(Duration::from_secs(10))),
        )
        .await;
        let a_at = Instant::now();
        let b = timeout(
            Duration::from_secs(1),
            timeout(Duration::from_secs(5), sleep(Duration::from_secs(10))),
        )
        .await;
        ((a, a_at), (b, Instant::now()))
    });
    // The inner (1 s) timeout fires; the outer sees its Err as a value.
    assert!(matches!(inner_first.0, Ok(Err(_))));
    assert_eq!(inner_first.1, secs(1.0));
    // The outer (1 s) timeout fires first; the inner never completes.
    assert!(outer_first.0.is_err());
    assert_eq!(outer_first.1, secs(2.0));
}

#[test]
fn timeout_lets_a_ready_future_win_and_drops_its_timer() {
    let outcome = Sim::new(2).run(async {
        let v = timeout(Duration::from_secs(3600), async { 7 }).await;
        let w = timeout_at(secs(0.5), sleep(Duration::from_millis(500))).await;
        (v, w)
    });
    let (v, w) = outcome.result().unwrap();
    assert_eq!(*v, Ok(7));
    assert_eq!(*w, Ok(()), "at the deadline instant, the future wins");
    // The abandoned one-hour timer does not hold the run open.
    assert_eq!(outcome.stats().virtual_time, Duration::from_millis(500));
    let err = lockstep::time::Elapsed::to_string(
        &run(async { timeout(Duration::ZERO, std::future::pending::<()>()).await }).unwrap_err(),
    );
    assert_eq!(err, "deadline has elapsed");
}

#[test]
fn interval_ticks_every_period_starting_now() {
    let ticks = run(async {
        let mut iv = interval(Duration::from_millis(250));
        let mut ticks = Vec::new();
        for _ in 0..5 {
            ticks.push(iv.tick().await);
        }
        ticks
    });
    let expected: Vec<Instant> = (0..5).map(|i| secs(0.25 * i as f64)).collect();
    assert_eq!(ticks, expected);
}

#[test]
fn interval_missed_tick_behaviors() {
    let late_ticks = |behavior| {
        run(async move {
            let mut iv = interval_at(Instant::START, Duration::from_millis(300));
            iv.set_missed_tick_behavior(behavior);
            iv.tick().await; // 0.0
            sleep(Duration::from_millis(1000)).await; // miss the ticks at .3, .6, .9
            let mut seen = Vec::new();
            for _ in 0..3 {
                iv.tick().await;
                seen.push(Instant::now());
            }
            seen
        })
    };
    assert_eq!(
        late_ticks(MissedTickBehavior::Burst),
        [secs(1.0), secs(1.0), secs(1.0)],
        "burst fires the missed .3/.6/.9 ticks at once"
    );
    assert_eq!(
        late_ticks(MissedTickBehavior::Delay),
        [secs(1.0), secs(1.3), secs(1.6)]
    );
    assert_eq!(
        late_ticks(MissedTickBehavior::Skip),
        [secs(1.0), secs(1.2), secs(1.5)]
    );
}

#[test]
fn timers_with_equal_deadlines_fire_in_the_order_they_were_set() {
    for seed in 0..20u64 {
        let outcome = Sim::new(seed).run(async {
            let order = Rc::new(RefCell::new(Vec::new()));
            let tasks: Vec<_> = (0..5)
                .map(|i| {
                    let order = order.clone();
                    spawn(async move {
                        sleep(Duration::from_secs(1) * (i % 2 + 1)).await;
                        order.borrow_mut().push(i);
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            Rc::try_unwrap(order).unwrap().into_inner()
        });
        // Fire order is (deadline, set order): the trace shows it.
        let trace = outcome.trace();
        let set_order: Vec<_> = trace
            .events()
            .filter(|e| matches!(e.kind, EventKind::TimerSet { .. }))
            .map(|e| e.task.unwrap())
            .collect();
        let fire_order: Vec<_> = trace
            .events()
            .filter_map(|e| match e.kind {
                EventKind::TimerFire { target } => target,
                _ => None,
            })
            .collect();
        let mut expected = set_order.clone();
        // Tasks 0, 2, 4 (ids #1, #3, #5) sleep 1 s; 1, 3 sleep 2 s.
        expected.sort_by_key(|id| (id.as_u32() + 1) % 2);
        assert_eq!(fire_order, expected, "seed {seed}");
        // Who runs first after they fire is still the policy's (seeded) choice.
        let order = outcome.into_result().unwrap();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2, 3, 4]);
    }
}

#[test]
fn fifo_runs_tasks_woken_together_in_timer_order() {
    let order = Sim::builder()
        .policy(Policy::Fifo)
        .build()
        .run(async {
            let order = Rc::new(RefCell::new(Vec::new()));
            let tasks: Vec<_> = (0..4)
                .map(|i| {
                    let order = order.clone();
                    spawn(async move {
                        sleep(Duration::from_secs(1)).await;
                        order.borrow_mut().push(i);
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            order.take()
        })
        .into_result()
        .unwrap();
    assert_eq!(order, [0, 1, 2, 3]);
}

#[test]
fn instant_arithmetic_and_display() {
    let t = secs(1.5);
    assert_eq!(t.to_string(), "1.500s");
    assert_eq!(format!("{:>8}", secs(0.25)), "  0.250s");
    assert_eq!(
        (Instant::START + Duration::from_micros(250)).to_string(),
        "0.000250s"
    );
    assert_eq!(t - secs(0.5), Duration::from_secs(1));
    assert_eq!(secs(0.5) - t, Duration::ZERO, "saturates like std");
    assert_eq!(t.checked_sub(Duration::from_secs(2)), None);
    assert_eq!(Instant::MAX.checked_add(Duration::from_nanos(1)), None);
    assert_eq!(Instant::START.saturating_add(Duration::MAX), Instant::MAX);
}

#[test]
fn clock_apis_outside_a_simulation_say_so() {
    let err = std::panic::catch_unwind(Instant::now).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("`lockstep::time::Instant::now` was called outside a lockstep simulation"),
        "{msg}"
    );
    let err = std::panic::catch_unwind(|| sleep(Duration::from_secs(1))).unwrap_err();
    assert!(
        err.downcast_ref::<String>()
            .unwrap()
            .contains("lockstep::time::sleep")
    );
}
