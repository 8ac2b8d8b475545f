//! Scheduling policies through the public API: parsing, `#[sim_test]`
//! options, swarm configurations applied to random fault plans, late polls
//! off by default, and the default policy unchanged.

use std::cell::Cell;
use std::rc::Rc;

use lockstep::explore::{LatePolls, find_failure};
use lockstep::fault::FaultPlan;
use lockstep::net::Host;
use lockstep::prelude::*;

#[test]
fn policies_parse_and_print() {
    for (text, policy) in [
        ("random", Policy::Random),
        ("fifo", Policy::Fifo),
        ("pct", Policy::Pct { depth: 3 }),
        ("pct:5", Policy::Pct { depth: 5 }),
        ("swarm", Policy::Swarm),
        ("mix", Policy::Mix),
    ] {
        assert_eq!(text.parse::<Policy>().unwrap(), policy);
        assert_eq!(policy.to_string().parse::<Policy>().unwrap(), policy);
    }
    for bad in ["pct:0", "pct:x", "pct:65", "lifo"] {
        let e = bad.parse::<Policy>().unwrap_err();
        assert!(e.contains("pct"), "{bad}: {e}");
    }
    assert_eq!(Policy::EXPLORE, Policy::Mix);
    assert_eq!(Policy::default(), Policy::Random);
}

#[lockstep::sim_test(policy = "pct:2", seeds = 20)]
async fn sim_test_accepts_pct_with_a_depth() {
    let t = spawn(async { yield_now().await });
    t.await.unwrap();
}

#[lockstep::sim_test(policy = "mix", seeds = 20)]
async fn sim_test_accepts_mix() {
    sleep(Duration::from_millis(1)).await;
}

#[lockstep::sim_test(policy = "swarm", seeds = 5)]
async fn sim_test_accepts_swarm() {}

#[lockstep::sim_test(policy = "random+cost:1ms:8x", seeds = 20)]
async fn sim_test_accepts_a_poll_cost() {
    // Ten polls of a task on a host: time flows while it works.
    let host = Host::client("worker");
    let start = lockstep::time::now();
    let t = host.spawn(async {
        for _ in 0..10 {
            yield_now().await;
        }
    });
    t.await.unwrap();
    assert!(lockstep::time::now() > start, "polls were not charged");
}

#[test]
fn poll_cost_is_off_by_default_and_never_under_fifo() {
    let program = || async {
        let t = spawn(async {
            for _ in 0..10 {
                yield_now().await;
            }
        });
        t.await.unwrap();
        lockstep::time::now()
    };
    let cost = lockstep::explore::PollCost::new(Duration::from_millis(1));
    for seed in 0..20 {
        let plain = Sim::new(seed).run(program());
        assert_eq!(plain.stats().poll_time, Duration::ZERO);
        assert_eq!(plain.into_result().unwrap(), Instant::START);
        let fifo = Sim::builder()
            .seed(seed)
            .policy(Policy::Fifo)
            .poll_cost(cost)
            .build()
            .run(program());
        assert_eq!(fifo.into_result().unwrap(), Instant::START);
        let charged = Sim::builder()
            .seed(seed)
            .poll_cost(cost)
            .build()
            .run(program());
        assert!(charged.stats().poll_time > Duration::ZERO);
        let end = charged.into_result().unwrap();
        assert!(end > Instant::START && end <= Instant::START + Duration::from_millis(12));
    }
}

/// Three hosts idling for a minute under a random fault plan.
async fn three_hosts() {
    for name in ["a", "b", "c"] {
        Host::new(name, || async { Ok(()) });
    }
    sleep(Duration::from_secs(60)).await;
}

#[test]
fn swarm_keeps_only_its_fault_kinds_in_random_plans() {
    let mut kinds_seen = std::collections::BTreeSet::new();
    for seed in 0..30 {
        let outcome = Sim::builder()
            .seed(seed)
            .policy(Policy::Swarm)
            .faults(FaultPlan::random(1.0))
            .build()
            .run(three_hosts());
        assert!(outcome.is_ok(), "{:?}", outcome.failure());
        let swarm = *outcome.schedule().unwrap().swarm().unwrap();
        for line in outcome.trace().render().lines() {
            let Some(action) = line.split("fault: ").nth(1) else {
                continue;
            };
            if action.starts_with("random") || action.starts_with("skipped") {
                continue;
            }
            let plan: FaultPlan = format!("at 0s {action}").parse().unwrap();
            let action = &plan.actions[0].action;
            assert!(swarm.allows(action), "seed {seed}: {swarm} ran `{action}`");
            kinds_seen.insert(action.to_string().split(' ').next().unwrap().to_string());
        }
    }
    assert!(kinds_seen.len() >= 4, "{kinds_seen:?}");
}

#[test]
fn the_default_policy_moves_the_clock_only_when_idle() {
    // A task woken at 1 ms always runs before a 3 ms timer, on every seed.
    for seed in 0..200 {
        let outcome = Sim::new(seed).run(async {
            let woke = Rc::new(Cell::new(None));
            let w = woke.clone();
            let t = spawn(async move {
                sleep(Duration::from_millis(1)).await;
                w.set(Some(lockstep::time::now()));
            });
            sleep(Duration::from_millis(3)).await;
            t.await.unwrap();
            woke.get().unwrap()
        });
        assert_eq!(outcome.stats().late_polls, 0);
        assert_eq!(outcome.into_result().unwrap().as_nanos(), 1_000_000);
    }
}

#[test]
fn late_polls_let_a_woken_task_run_after_a_later_timer() {
    let late = LatePolls::new(1.0, Duration::from_millis(5));
    let outcome = Sim::builder().seed(3).late_polls(late).build().run(async {
        let (tx, rx) = lockstep::sync::oneshot::channel();
        let sender = spawn(async move {
            sleep(Duration::from_millis(1)).await;
            let _ = tx.send(());
        });
        let woken = spawn(async move {
            rx.await.unwrap();
            lockstep::time::now()
        });
        sleep(Duration::from_millis(3)).await;
        sender.await.unwrap();
        woken.await.unwrap()
    });
    assert!(outcome.stats().late_polls > 0);
    assert!(outcome.trace().render().contains("sched: late poll"));
    // The receiver, woken by the send at 1 ms, was polled after main's
    // 3 ms timer fired.
    assert!(outcome.into_result().unwrap().as_nanos() >= 3_000_000);
    // A task woken by its own timer is never late: a sleep returns at its
    // deadline, however many other timers are due.
    for seed in 0..50 {
        let outcome = Sim::builder()
            .seed(seed)
            .late_polls(late)
            .build()
            .run(async {
                let beat = spawn(async {
                    for _ in 0..10 {
                        sleep(Duration::from_micros(300)).await;
                    }
                });
                let start = lockstep::time::now();
                sleep(Duration::from_millis(1)).await;
                let slept = start.elapsed();
                beat.await.unwrap();
                slept
            });
        assert_eq!(outcome.into_result().unwrap(), Duration::from_millis(1));
    }
    // Late polls never move the clock past a timer the window excludes.
    let far = Sim::builder()
        .seed(3)
        .late_polls(LatePolls::new(1.0, Duration::from_micros(10)))
        .build()
        .run(async {
            let t = spawn(async { sleep(Duration::from_millis(1)).await });
            yield_now().await;
            t.await.unwrap();
        });
    assert_eq!(far.stats().late_polls, 0);
}

/// `workers` tasks each read a counter, yield, and write it back plus one.
async fn lost_update(workers: usize) {
    let n = Rc::new(Cell::new(0));
    let ts: Vec<_> = (0..workers)
        .map(|_| {
            let n = n.clone();
            spawn(async move {
                let v = n.get();
                yield_now().await;
                n.set(v + 1);
            })
        })
        .collect();
    for t in ts {
        t.await.unwrap();
    }
    assert_eq!(n.get(), workers, "lost update");
}

#[test]
fn find_failure_stops_at_the_first_failing_seed() {
    let sim = Sim::builder().policy(Policy::Pct { depth: 2 }).build();
    let found = find_failure(&sim, 0..500, |sim| sim.run(lost_update(3)));
    let failing = found.failure.expect("found");
    assert!(found.runs <= 500);
    // Its schedule replays it with a trace.
    let replay = Sim::builder()
        .replay(failing.schedule().unwrap().clone())
        .build();
    assert_eq!(replay.seed(), failing.seed());
}

#[test]
fn find_failure_under_mix_tries_the_natural_order_first() {
    let sim = Sim::builder().policy(Policy::Mix).build();
    let found = find_failure(&sim, 1000..1100, |sim| sim.run(lost_update(2)));
    // First ready, first run: a round robin at every yield loses the update.
    assert_eq!(found.runs, 1);
    assert!(found.failure.is_some());
}

#[test]
fn pct_does_not_starve_the_task_a_yielding_loop_waits_for() {
    for seed in 0..100 {
        let outcome = Sim::builder()
            .seed(seed)
            .policy(Policy::Pct { depth: 3 })
            .max_steps(10_000)
            .build()
            .run(async {
                let flag = Rc::new(Cell::new(false));
                let f = flag.clone();
                let spinner = spawn(async move {
                    while !f.get() {
                        yield_now().await;
                    }
                });
                let setter = spawn(async move {
                    yield_now().await;
                    flag.set(true);
                });
                spinner.await.unwrap();
                setter.await.unwrap();
            });
        assert!(outcome.is_ok(), "seed {seed}: {:?}", outcome.failure());
    }
}

#[test]
fn a_huge_poll_cost_stops_at_the_time_limit() {
    // Charges never carry the clock past the limit: the run ends on its
    // own terms (here it finishes: the clock is capped, not failed).
    let cost = lockstep::explore::PollCost::new(Duration::from_secs(u64::MAX / 1_000_000_000))
        .host_speeds(64);
    let outcome = Sim::builder()
        .seed(3)
        .poll_cost(cost)
        .max_virtual_time(Duration::from_secs(10))
        .build()
        .run(async {
            let host = Host::client("slow");
            host.spawn(async {
                for _ in 0..5 {
                    yield_now().await;
                }
            })
            .await
            .unwrap();
            lockstep::time::now()
        });
    let end = outcome.into_result().unwrap();
    assert!(end <= Instant::START + Duration::from_secs(10), "{end:?}");
}
