//! `Event`, `Notify` and `Barrier`: the tutorial's event patterns, wake-up
//! rules, and cancellation safety.

use std::cell::RefCell;
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::sync::{Barrier, Event, Notify};
use lockstep::task::Builder;

#[test]
fn event_timeout_patterns_from_the_tutorial() {
    // waiter(A) with wait_for(event.wait(), 2.0), setter after 1 s: received
    // at 1 s. waiter(B), setter after 3 s: times out at 2 s; gather ends at 3 s.
    let outcome = Sim::new(1).run(async {
        let waiter = |event: Rc<Event>| async move {
            let got = timeout(Duration::from_secs(2), event.wait()).await.is_ok();
            Ok::<_, ()>((got, Instant::now().since_start().as_secs_f64()))
        };
        let setter = |event: Rc<Event>, secs: u64| async move {
            sleep(Duration::from_secs(secs)).await;
            event.set();
            Ok::<_, ()>((true, Instant::now().since_start().as_secs_f64()))
        };
        // asyncio.gather(waiter(..), delayed_setter(..)), spawned.
        let both = |event: Rc<Event>, delay| {
            let w = spawn(waiter(event.clone()));
            let s = spawn(setter(event, delay));
            async move { [w.await.unwrap().unwrap(), s.await.unwrap().unwrap()] }
        };
        let fast = both(Rc::new(Event::named("quick_event")), 1).await;
        let t1 = Instant::now().since_start().as_secs_f64();
        let slow = both(Rc::new(Event::named("slow_event")), 3).await;
        (fast, t1, slow, Instant::now().since_start().as_secs_f64())
    });
    let (fast, t1, slow, t2) = outcome.into_result().unwrap();
    assert_eq!(fast, [(true, 1.0), (true, 1.0)]);
    assert_eq!(t1, 1.0);
    assert_eq!(slow, [(false, 3.0), (true, 4.0)]);
    assert_eq!(t2, 4.0);
}

#[test]
fn the_event_pipeline_processes_every_item_once() {
    // start / data-ready / complete events coordinating a producer and
    // three processors, as in the tutorial.
    for seed in 0..100u64 {
        let outcome = Sim::new(seed).run(async {
            let start = Rc::new(Event::named("start"));
            let ready = Rc::new(Event::named("data_ready"));
            let done = Rc::new(Event::named("complete"));
            let items = Rc::new(RefCell::new(Vec::new()));
            let processed = Rc::new(RefCell::new(Vec::new()));
            let (s, r, i) = (start.clone(), ready.clone(), items.clone());
            let producer = Builder::new().name("producer").spawn(async move {
                s.wait().await;
                for n in 0..5 {
                    i.borrow_mut().push(n);
                    sleep(Duration::from_millis(200)).await;
                }
                r.set();
            });
            let processors: Vec<_> = (1..=3)
                .map(|p| {
                    let (r, d, i, out) = (
                        ready.clone(),
                        done.clone(),
                        items.clone(),
                        processed.clone(),
                    );
                    Builder::new()
                        .name(format!("processor-{p}"))
                        .spawn(async move {
                            r.wait().await;
                            loop {
                                let next = i.borrow_mut().pop();
                                let Some(item) = next else { break };
                                sleep(lockstep::random::duration(
                                    Duration::from_millis(100)..Duration::from_millis(300),
                                ))
                                .await;
                                out.borrow_mut().push(item);
                            }
                            if out.borrow().len() == 5 {
                                d.set();
                            }
                        })
                })
                .collect();
            sleep(Duration::from_millis(500)).await;
            start.set();
            done.wait().await;
            producer.await.unwrap();
            for p in processors {
                p.await.unwrap();
            }
            let mut all = processed.take();
            all.sort();
            all
        });
        assert_eq!(
            outcome.into_result().unwrap(),
            [0, 1, 2, 3, 4],
            "seed {seed}"
        );
    }
}

#[test]
fn a_set_wakes_every_waiter_even_if_cleared_before_they_run() {
    let outcome = Sim::new(3).run(async {
        let e = Rc::new(Event::new());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let e = e.clone();
                spawn(async move { e.wait().await })
            })
            .collect();
        sleep(Duration::from_millis(1)).await;
        e.set();
        e.clear();
        for w in waiters {
            w.await.unwrap();
        }
        assert!(!e.is_set());
        e.set();
        e.wait().await; // set: returns at once
        Instant::now()
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        Instant::START + Duration::from_millis(1)
    );
}

#[test]
fn a_dropped_event_wait_leaves_nothing_behind() {
    let outcome = Sim::new(1).run(async {
        let e = Rc::new(Event::named("e"));
        for _ in 0..3 {
            assert!(timeout(Duration::from_millis(1), e.wait()).await.is_err());
        }
        let e2 = e.clone();
        let w = spawn(async move { e2.wait().await });
        sleep(Duration::from_millis(1)).await;
        w.abort();
        e.set();
    });
    let trace = outcome.trace().render();
    assert!(trace.contains("notify event 'e' (set, woke 0)"), "{trace}");
}

#[test]
fn notify_one_stores_a_permit_and_notify_waiters_does_not() {
    let outcome = Sim::new(1).run(async {
        let n = Rc::new(Notify::named("n"));
        n.notify_waiters(); // nobody waits: lost, nothing stored
        let lost = timeout(Duration::from_millis(1), n.notified())
            .await
            .is_err();
        n.notify_one(); // stored
        n.notify_one(); // still one permit, not two
        n.notified().await;
        let one_permit = timeout(Duration::from_millis(1), n.notified())
            .await
            .is_err();
        // notify_waiters reaches futures created before it, polled or not.
        let early = n.notified();
        n.notify_waiters();
        early.await;
        (lost, one_permit)
    });
    assert_eq!(outcome.into_result().unwrap(), (true, true));
}

#[test]
fn notify_one_wakes_waiters_in_order_and_a_dropped_chosen_one_passes_it_on() {
    let outcome = Sim::new(2).run(async {
        let n = Rc::new(Notify::named("n"));
        let log = Rc::new(RefCell::new(Vec::new()));
        let spawn_waiter = |name: &'static str| {
            let (n, log) = (n.clone(), log.clone());
            Builder::new().name(name).spawn(async move {
                n.notified().await;
                log.borrow_mut().push(name);
            })
        };
        let first = spawn_waiter("first");
        sleep(Duration::from_millis(1)).await;
        let second = spawn_waiter("second");
        sleep(Duration::from_millis(1)).await;
        let third = spawn_waiter("third");
        sleep(Duration::from_millis(1)).await;
        n.notify_one(); // chooses `first`...
        first.abort(); // ...which is dropped before it runs: `second` gets it
        second.await.unwrap();
        n.notify_one();
        third.await.unwrap();
        log.take()
    });
    assert_eq!(outcome.into_result().unwrap(), ["second", "third"]);
}

#[test]
fn a_barrier_opens_when_the_last_arrives_with_one_leader_per_generation() {
    for seed in 0..50u64 {
        let outcome = Sim::new(seed).run(async {
            let b = Rc::new(Barrier::named("sync", 3));
            let tasks: Vec<_> = (0..6)
                .map(|_| {
                    let b = b.clone();
                    spawn(async move {
                        sleep(lockstep::random::duration(
                            Duration::ZERO..Duration::from_millis(10),
                        ))
                        .await;
                        b.wait().await.is_leader()
                    })
                })
                .collect();
            let mut leaders = 0;
            for t in tasks {
                leaders += t.await.unwrap() as u32;
            }
            leaders
        });
        assert_eq!(outcome.into_result().unwrap(), 2, "seed {seed}");
    }
}

#[test]
fn a_cancelled_barrier_wait_withdraws_its_arrival() {
    let outcome = Sim::new(1).run(async {
        let b = Rc::new(Barrier::named("b", 2));
        // Arrives, gives up: it must not count.
        assert!(timeout(Duration::from_millis(1), b.wait()).await.is_err());
        let b2 = b.clone();
        let other = spawn(async move {
            sleep(Duration::from_millis(5)).await;
            b2.wait().await.is_leader()
        });
        let mine = timeout(Duration::from_millis(2), b.wait()).await.is_err();
        // Now both arrive for real.
        let leader = b.wait().await.is_leader();
        (mine, leader, other.await.unwrap(), Instant::now())
    });
    let (gave_up, me, other, at) = outcome.into_result().unwrap();
    assert!(gave_up);
    assert!(me ^ other, "exactly one leader");
    assert_eq!(at, Instant::START + Duration::from_millis(6));
}
