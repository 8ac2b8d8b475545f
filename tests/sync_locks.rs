//! `Mutex` and `RwLock`: mutual exclusion, FIFO hand-off, cancellation
//! safety, traces.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::sync::{Mutex, RwLock};
use lockstep::task::Builder;
use lockstep::trace::RenderOptions;

#[test]
fn the_mutex_fixes_the_tutorials_lost_update_for_every_seed() {
    for seed in 0..200u64 {
        let outcome = Sim::new(seed).run(async {
            let counter = Rc::new(Mutex::named("counter", 0));
            let workers: Vec<_> = (0..10)
                .map(|_| {
                    let c = counter.clone();
                    spawn(async move {
                        let mut n = c.lock().await;
                        let old = *n;
                        sleep(Duration::from_millis(10)).await;
                        *n = old + 1;
                    })
                })
                .collect();
            for w in workers {
                w.await.unwrap();
            }
            let n = *counter.lock().await;
            (n, Instant::now())
        });
        let (n, at) = outcome.into_result().unwrap();
        assert_eq!(n, 10, "seed {seed}");
        assert_eq!(
            at,
            Instant::START + Duration::from_millis(100),
            "seed {seed}"
        );
    }
}

#[test]
fn waiters_get_the_lock_in_the_order_they_came() {
    for seed in 0..100u64 {
        let order = Sim::new(seed)
            .run(async {
                let m = Rc::new(Mutex::new(Vec::new()));
                let first = m.lock().await; // everyone queues behind main
                let tasks: Vec<_> = (0..8u64)
                    .map(|i| {
                        let m = m.clone();
                        spawn(async move {
                            sleep(Duration::from_millis(i)).await;
                            m.lock().await.push(i);
                        })
                    })
                    .collect();
                sleep(Duration::from_secs(1)).await;
                drop(first);
                for t in tasks {
                    t.await.unwrap();
                }
                m.lock().await.clone()
            })
            .into_result()
            .unwrap();
        assert_eq!(order, (0..8).collect::<Vec<_>>(), "seed {seed}");
    }
}

#[test]
fn a_released_lock_is_handed_off_so_nobody_barges_in() {
    let outcome = Sim::new(1).run(async {
        let m = Rc::new(Mutex::named("m", ()));
        let g = m.lock().await;
        let m2 = m.clone();
        let waiter = spawn(async move {
            let _g = m2.lock().await;
        });
        lockstep::task::yield_now().await;
        lockstep::task::yield_now().await; // the waiter is queued by now
        drop(g);
        // Handed to the waiter, which has not run yet: still locked.
        let barged = m.try_lock().is_ok();
        waiter.await.unwrap();
        (barged, m.try_lock().is_ok())
    });
    assert_eq!(outcome.into_result().unwrap(), (false, true));
}

/// Main holds the lock; `victim` and `next` queue behind it, in that order.
/// `cancel` runs right after main releases (the lock then belongs to
/// `victim`, which has not run), or before (`victim` still in line).
fn cancel_a_waiter(after_release: bool, abort: bool) -> Vec<&'static str> {
    Sim::new(1)
        .run(async move {
            let m = Rc::new(Mutex::named("m", ()));
            let log = Rc::new(RefCell::new(Vec::new()));
            let g = m.lock().await;
            let (m1, l1) = (m.clone(), log.clone());
            let victim = Builder::new().name("victim").spawn(async move {
                let lock = m1.lock();
                if abort {
                    let _g = lock.await;
                } else if timeout(Duration::from_millis(10), lock).await.is_ok() {
                    l1.borrow_mut().push("victim");
                    return;
                }
                l1.borrow_mut().push("victim");
            });
            sleep(Duration::from_millis(1)).await;
            let (m2, l2) = (m.clone(), log.clone());
            let next = Builder::new().name("next").spawn(async move {
                let _g = m2.lock().await;
                l2.borrow_mut().push("next");
            });
            sleep(Duration::from_millis(1)).await;
            if after_release {
                drop(g);
                if abort {
                    victim.abort();
                }
            } else {
                if abort {
                    victim.abort();
                } else {
                    sleep(Duration::from_millis(20)).await; // the timeout fires
                }
                drop(g);
            }
            let _ = victim.await;
            next.await.unwrap();
            assert!(!m.is_locked());
            log.take()
        })
        .into_result()
        .unwrap()
}

#[test]
fn an_aborted_or_timed_out_waiter_leaves_no_stale_entry_and_loses_no_wakeup() {
    // Aborted in line: `next` gets the lock.
    assert_eq!(cancel_a_waiter(false, true), ["next"]);
    // Aborted after the lock was handed to it: it passes the lock on.
    assert_eq!(cancel_a_waiter(true, true), ["next"]);
    // Timed out in line: the victim logs its give-up, `next` gets the lock.
    assert_eq!(cancel_a_waiter(false, false), ["victim", "next"]);
}

#[test]
fn aborting_the_holder_releases_the_lock() {
    let outcome = Sim::new(2).run(async {
        let m = Rc::new(Mutex::named("m", 0));
        let m1 = m.clone();
        let holder = spawn(async move {
            let _g = m1.lock().await;
            futures::future::pending::<()>().await;
        });
        sleep(Duration::from_millis(5)).await;
        assert!(m.is_locked());
        holder.abort();
        *m.lock().await += 1;
        Instant::now()
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        Instant::START + Duration::from_millis(5)
    );
}

#[test]
fn lock_events_name_the_mutex_and_the_hand_off() {
    let outcome = Sim::new(1).run(async {
        let m = Rc::new(Mutex::named("accounts", ()));
        let g = m.lock().await;
        let m2 = m.clone();
        let t = Builder::new().name("teller").spawn(async move {
            let _g = m2.lock().await;
        });
        sleep(Duration::from_millis(1)).await;
        drop(g);
        t.await.unwrap();
    });
    let text = outcome.trace().render_with(&RenderOptions::stable());
    for line in [
        "#0 main            acquire mutex 'accounts'",
        "#1 teller          wait for mutex 'accounts' (held by #0 main)",
        "#0 main            release mutex 'accounts', handed to #1 teller",
        "#1 teller          acquire mutex 'accounts'",
        "#1 teller          release mutex 'accounts'",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // At summary verbosity only the wait is traced.
    let summary = Sim::builder()
        .verbosity(Verbosity::Summary)
        .build()
        .run(async {
            let m = Mutex::named("m", ());
            let _g = m.lock().await;
        });
    assert!(!summary.trace().render().contains("acquire"));
}

#[test]
fn waiting_outside_a_simulation_says_so_but_try_lock_works() {
    let m = Mutex::named("m", 1);
    assert_eq!(*m.try_lock().unwrap(), 1);
    let g = m.try_lock().unwrap();
    assert!(m.try_lock().is_err());
    drop(g);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut lock = std::pin::pin!(m.lock());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let _ = std::future::Future::poll(lock.as_mut(), &mut cx);
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("`lockstep::sync::Mutex::lock` was called outside a lockstep simulation"),
        "{msg}"
    );
    assert_eq!(m.name(), Some("m"));
    assert_eq!(
        format!("{m:?}"),
        "Mutex { name: mutex 'm', locked: false, .. }"
    );
}

#[test]
fn readers_share_and_writers_exclude() {
    let outcome = Sim::new(3).run(async {
        let lock = Rc::new(RwLock::named("cfg", 0));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let l = lock.clone();
                spawn(async move {
                    let v = l.read().await;
                    sleep(Duration::from_secs(1)).await;
                    *v
                })
            })
            .collect();
        for r in readers {
            r.await.unwrap();
        }
        let three_readers = Instant::now();
        let writers: Vec<_> = (0..3)
            .map(|_| {
                let l = lock.clone();
                spawn(async move {
                    let mut v = l.write().await;
                    sleep(Duration::from_secs(1)).await;
                    *v += 1;
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        (three_readers, Instant::now(), *lock.read().await)
    });
    let (readers_done, writers_done, v) = outcome.into_result().unwrap();
    assert_eq!(readers_done, Instant::START + Duration::from_secs(1));
    assert_eq!(writers_done, Instant::START + Duration::from_secs(4));
    assert_eq!(v, 3);
}

#[test]
fn a_waiting_writer_holds_back_later_readers_until_it_has_written() {
    for seed in 0..50u64 {
        let outcome = Sim::new(seed).run(async {
            let lock = Rc::new(RwLock::new(0));
            let seen = Rc::new(Cell::new(-1));
            let r1 = lock.read().await;
            let l = lock.clone();
            let writer = spawn(async move {
                *l.write().await = 1;
            });
            sleep(Duration::from_millis(1)).await;
            assert!(
                lock.try_read().is_err(),
                "a reader may not pass a waiting writer"
            );
            let (l, s) = (lock.clone(), seen.clone());
            let reader = spawn(async move { s.set(*l.read().await) });
            sleep(Duration::from_millis(1)).await;
            drop(r1);
            writer.await.unwrap();
            reader.await.unwrap();
            seen.get()
        });
        assert_eq!(outcome.into_result().unwrap(), 1, "seed {seed}");
    }
}

#[test]
fn readers_behind_a_cancelled_writer_get_in_at_once() {
    let outcome = Sim::new(4).run(async {
        let lock = Rc::new(RwLock::named("cfg", 0));
        let r1 = lock.read().await;
        let l = lock.clone();
        let writer = spawn(async move {
            *l.write().await = 1;
        });
        sleep(Duration::from_millis(1)).await;
        let l = lock.clone();
        let reader = spawn(async move { *l.read().await });
        sleep(Duration::from_millis(1)).await;
        writer.abort(); // the reader behind it is compatible with r1
        let v = reader.await.unwrap();
        drop(r1);
        (v, Instant::now())
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        (0, Instant::START + Duration::from_millis(2))
    );
}

#[test]
fn try_read_and_try_write_follow_the_same_rules() {
    let lock = RwLock::new(5);
    {
        let a = lock.try_read().unwrap();
        let b = lock.try_read().unwrap();
        assert_eq!(*a + *b, 10);
        assert!(lock.try_write().is_err());
    }
    let mut w = lock.try_write().unwrap();
    *w = 6;
    assert!(lock.try_read().is_err());
    drop(w);
    assert_eq!(lock.into_inner(), 6);
}
