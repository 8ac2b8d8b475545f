//! `Semaphore`: the limit holds under every schedule; fair FIFO order;
//! close; owned permits; cancellation safety.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::sync::{Semaphore, TryAcquireError};

#[test]
fn a_semaphore_of_three_never_admits_a_fourth_holder() {
    let mut peaks = [0usize; 4];
    for seed in 0..500u64 {
        let outcome = Sim::builder()
            .seed(seed)
            .verbosity(Verbosity::Off)
            .build()
            .run(async {
                let sem = Rc::new(Semaphore::named("pool", 3));
                let (now, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
                let tasks: Vec<_> = (0..10)
                    .map(|_| {
                        let (sem, now, peak) = (sem.clone(), now.clone(), peak.clone());
                        spawn(async move {
                            sleep(lockstep::random::duration(
                                Duration::ZERO..Duration::from_millis(20),
                            ))
                            .await;
                            let _permit = sem.acquire().await.unwrap();
                            now.set(now.get() + 1);
                            assert!(now.get() <= 3, "{} holders", now.get());
                            peak.set(peak.get().max(now.get()));
                            sleep(lockstep::random::duration(
                                Duration::from_millis(1)..Duration::from_millis(30),
                            ))
                            .await;
                            lockstep::task::yield_now().await;
                            now.set(now.get() - 1);
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                assert_eq!(sem.available_permits(), 3);
                peak.get()
            });
        let peak = outcome.into_result().unwrap();
        peaks[peak] += 1;
    }
    assert_eq!(peaks[0], 0);
    assert!(
        peaks[3] > 250,
        "the limit is reached in most runs: {peaks:?}"
    );
}

#[test]
fn the_tutorials_limited_downloads_take_three_rounds() {
    // Eight one-second downloads; three at a time take 3 s, unlimited 1 s.
    let run = |limit: usize| {
        Sim::new(9)
            .run(async move {
                let sem = Rc::new(Semaphore::new(limit));
                let downloads: Vec<_> = (0..8)
                    .map(|_| {
                        let sem = sem.clone();
                        spawn(async move {
                            let _p = sem.acquire().await.unwrap();
                            sleep(Duration::from_secs(1)).await;
                        })
                    })
                    .collect();
                for d in downloads {
                    d.await.unwrap();
                }
                Instant::now().since_start()
            })
            .into_result()
            .unwrap()
    };
    assert_eq!(run(3), Duration::from_secs(3));
    assert_eq!(run(8), Duration::from_secs(1));
}

#[test]
fn a_large_request_is_not_starved_by_later_small_ones() {
    let outcome = Sim::new(1).run(async {
        let sem = Rc::new(Semaphore::named("s", 3));
        let order = Rc::new(RefCell::new(Vec::new()));
        let held = sem.acquire_many(2).await.unwrap();
        let (s, o) = (sem.clone(), order.clone());
        let big = spawn(async move {
            let _p = s.acquire_many(2).await.unwrap();
            o.borrow_mut().push("big");
        });
        sleep(Duration::from_millis(1)).await;
        // One permit is free, but `big` is first in line.
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
        let (s, o) = (sem.clone(), order.clone());
        let small = spawn(async move {
            let _p = s.acquire().await.unwrap();
            o.borrow_mut().push("small");
        });
        sleep(Duration::from_millis(1)).await;
        drop(held);
        big.await.unwrap();
        small.await.unwrap();
        order.take()
    });
    assert_eq!(outcome.into_result().unwrap(), ["big", "small"]);
}

#[test]
fn a_cancelled_request_at_the_head_lets_the_ones_behind_it_in() {
    let outcome = Sim::new(1).run(async {
        let sem = Rc::new(Semaphore::named("s", 2));
        let held = sem.acquire().await.unwrap();
        let s = sem.clone();
        let big = spawn(async move { s.acquire_many(2).await.map(|_| ()) });
        sleep(Duration::from_millis(1)).await;
        let s = sem.clone();
        let small = spawn(async move { s.acquire().await.map(|_| Instant::now()) });
        sleep(Duration::from_millis(1)).await;
        big.abort(); // the free permit can now go to `small`
        let got = small.await.unwrap().unwrap();
        drop(held);
        got
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        Instant::START + Duration::from_millis(2)
    );
}

#[test]
fn permits_handed_to_a_waiter_that_is_then_aborted_go_to_the_next() {
    let outcome = Sim::new(1).run(async {
        let sem = Rc::new(Semaphore::named("s", 1));
        let p = sem.acquire().await.unwrap();
        let s = sem.clone();
        let victim = spawn(async move {
            let _p = s.acquire().await.unwrap();
            sleep(Duration::from_secs(100)).await;
        });
        sleep(Duration::from_millis(1)).await;
        let s = sem.clone();
        let next = spawn(async move { s.acquire().await.is_ok() });
        sleep(Duration::from_millis(1)).await;
        drop(p); // handed to `victim`, which has not run yet
        victim.abort();
        let ok = next.await.unwrap();
        (ok, sem.available_permits(), Instant::now())
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        (true, 1, Instant::START + Duration::from_millis(2))
    );
}

#[test]
fn closing_fails_waiters_and_later_acquires_but_permits_still_come_back() {
    let outcome = Sim::new(1).run(async {
        let sem = Rc::new(Semaphore::named("s", 1));
        let p = sem.acquire().await.unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let s = sem.clone();
                spawn(async move { s.acquire().await.is_err() })
            })
            .collect();
        sleep(Duration::from_millis(1)).await;
        sem.close();
        let mut failed = Vec::new();
        for w in waiters {
            failed.push(w.await.unwrap());
        }
        let later = sem.acquire().await.is_err();
        let try_later = sem.try_acquire().unwrap_err();
        drop(p);
        (
            failed,
            later,
            try_later,
            sem.available_permits(),
            sem.is_closed(),
        )
    });
    let (failed, later, try_later, free, closed) = outcome.into_result().unwrap();
    assert_eq!(failed, [true, true]);
    assert!(later && closed);
    assert_eq!(try_later, TryAcquireError::Closed);
    assert_eq!(free, 1);
    assert!(outcome_trace_has_close());
}

fn outcome_trace_has_close() -> bool {
    let outcome = Sim::new(1).run(async {
        let sem = Semaphore::named("pool", 1);
        sem.close();
    });
    outcome
        .trace()
        .render()
        .contains("#0 main            close semaphore 'pool'")
}

#[test]
fn owned_permits_move_into_other_tasks() {
    let outcome = Sim::new(2).run(async {
        let sem = Rc::new(Semaphore::new(2));
        let mut tasks = Vec::new();
        for i in 0..6u64 {
            let permit = sem.clone().acquire_owned().await.unwrap();
            assert_eq!(permit.num_permits(), 1);
            tasks.push(spawn(async move {
                sleep(Duration::from_millis(10 * i)).await;
                drop(permit);
            }));
        }
        let extra = sem.clone().try_acquire_owned();
        for t in tasks {
            t.await.unwrap();
        }
        drop(extra);
        sem.available_permits()
    });
    assert_eq!(outcome.into_result().unwrap(), 2);
}

#[test]
fn a_timed_out_acquire_leaves_the_line() {
    let outcome = Sim::new(1).run(async {
        let sem = Rc::new(Semaphore::new(1));
        let p = sem.acquire().await.unwrap();
        let gave_up = timeout(Duration::from_millis(5), sem.acquire())
            .await
            .is_err();
        drop(p);
        // Nobody is left in line: the permit is free, not handed to a ghost.
        (gave_up, sem.available_permits(), sem.try_acquire().is_ok())
    });
    assert_eq!(outcome.into_result().unwrap(), (true, 1, true));
}
