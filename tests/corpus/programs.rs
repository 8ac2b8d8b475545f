//! The bug corpus: small buggy programs, each with its fixed twin.
//!
//! Each program is `fn(&Sim, fixed: bool) -> Outcome<()>`: the same code
//! with the bug in, or fixed. They range from shallow (a lost update
//! between two workers) to deep (an atomicity violation that needs three
//! events in one order; a lost wakeup that only a late poll exposes; a
//! lost write that needs a dropped message at the right moment; a lease
//! that only a task on a slow host lets lapse, which needs poll cost).
//! `tests/corpus.rs` checks that exploration finds every bug in a bounded
//! number of seeds and that every fix passes under every policy.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::sync::{Mutex, Notify, mpsc, oneshot};

/// A corpus entry.
pub struct Program {
    pub name: &'static str,
    pub run: fn(&Sim, bool) -> Outcome<()>,
    /// What the buggy version fails with.
    pub fails_with: lockstep::check::FailureKind,
}

use lockstep::check::FailureKind::{Deadlock, Panic};

pub const CORPUS: &[Program] = &[
    Program {
        name: "lost-update-2",
        run: lost_update_2,
        fails_with: Panic,
    },
    Program {
        name: "lost-update-10",
        run: lost_update_10,
        fails_with: Panic,
    },
    Program {
        name: "lock-order-deadlock",
        run: lock_order,
        fails_with: Deadlock,
    },
    Program {
        name: "dining-philosophers",
        run: philosophers,
        fails_with: Deadlock,
    },
    Program {
        name: "check-then-act",
        run: check_then_act,
        fails_with: Panic,
    },
    Program {
        name: "hand-rolled-semaphore",
        run: semaphore,
        fails_with: Panic,
    },
    Program {
        name: "three-event-atomicity",
        run: atomicity,
        fails_with: Panic,
    },
    Program {
        name: "retry-double-apply",
        run: double_apply,
        fails_with: Panic,
    },
    Program {
        name: "late-poll-lost-wakeup",
        run: lost_wakeup,
        fails_with: Panic,
    },
    Program {
        name: "unreplicated-ack",
        run: unreplicated_ack,
        fails_with: Panic,
    },
    Program {
        name: "slow-host-lease",
        run: slow_host_lease,
        fails_with: Panic,
    },
];

/// Workers read a counter, yield, write it back (fixed: no await between
/// the read and the write).
fn lost_update(sim: &Sim, fixed: bool, workers: usize) -> Outcome<()> {
    sim.run(async move {
        let n = Rc::new(Cell::new(0));
        let tasks: Vec<_> = (0..workers)
            .map(|_| {
                let n = n.clone();
                spawn(async move {
                    yield_now().await;
                    if fixed {
                        n.set(n.get() + 1);
                    } else {
                        let v = n.get();
                        yield_now().await;
                        n.set(v + 1);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(n.get(), workers, "lost update");
    })
}

pub fn lost_update_2(sim: &Sim, fixed: bool) -> Outcome<()> {
    lost_update(sim, fixed, 2)
}

pub fn lost_update_10(sim: &Sim, fixed: bool) -> Outcome<()> {
    lost_update(sim, fixed, 10)
}

/// Two tasks take two locks in opposite orders (fixed: the same order).
pub fn lock_order(sim: &Sim, fixed: bool) -> Outcome<()> {
    sim.run(async move {
        let a = Rc::new(Mutex::named("a", 0));
        let b = Rc::new(Mutex::named("b", 0));
        let one = {
            let (a, b) = (a.clone(), b.clone());
            spawn(async move {
                let _x = a.lock().await;
                yield_now().await;
                let _y = b.lock().await;
            })
        };
        let two = spawn(async move {
            let (first, second) = if fixed { (a, b) } else { (b, a) };
            let _x = first.lock().await;
            yield_now().await;
            let _y = second.lock().await;
        });
        one.await.unwrap();
        two.await.unwrap();
    })
}

/// Five philosophers take their left fork, then their right (fixed: the
/// last one takes the right fork first).
pub fn philosophers(sim: &Sim, fixed: bool) -> Outcome<()> {
    sim.run(async move {
        const N: usize = 5;
        let forks: Rc<Vec<Mutex<()>>> = Rc::new(
            (0..N)
                .map(|i| Mutex::named(format!("fork-{i}"), ()))
                .collect(),
        );
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                let forks = forks.clone();
                spawn(async move {
                    let (l, r) = (i, (i + 1) % N);
                    let (first, second) = if fixed && i == N - 1 { (r, l) } else { (l, r) };
                    let _f = forks[first].lock().await;
                    yield_now().await;
                    let _s = forks[second].lock().await;
                    yield_now().await;
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    })
}

/// Two tasks register the same key if it is absent, checking before an
/// await and inserting after it (fixed: check and insert in one step).
pub fn check_then_act(sim: &Sim, fixed: bool) -> Outcome<()> {
    sim.run(async move {
        let registry: Rc<RefCell<Vec<&str>>> = Rc::new(RefCell::new(Vec::new()));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let registry = registry.clone();
                spawn(async move {
                    yield_now().await;
                    let absent = !registry.borrow().contains(&"leader");
                    if !fixed {
                        yield_now().await; // e.g. a lookup in a slow store
                    }
                    if absent {
                        registry.borrow_mut().push("leader");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(registry.borrow().len(), 1, "two leaders registered");
    })
}

/// A semaphore of one permit, written by hand: check, yield, decrement
/// (fixed: decrement, then yield). Waiters poll it every millisecond.
pub fn semaphore(sim: &Sim, fixed: bool) -> Outcome<()> {
    sim.run(async move {
        let permits = Rc::new(Cell::new(1u32));
        let inside = Rc::new(Cell::new(0u32));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (permits, inside) = (permits.clone(), inside.clone());
                spawn(async move {
                    loop {
                        if permits.get() > 0 {
                            if fixed {
                                permits.set(permits.get() - 1);
                                yield_now().await;
                            } else {
                                yield_now().await;
                                permits.set(permits.get().saturating_sub(1));
                            }
                            break;
                        }
                        sleep(Duration::from_millis(1)).await;
                    }
                    inside.set(inside.get() + 1);
                    assert_eq!(inside.get(), 1, "two tasks inside a one-permit section");
                    yield_now().await;
                    inside.set(inside.get() - 1);
                    permits.set(permits.get() + 1);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    })
}

/// A user checks that a connection is open, then uses it over an await;
/// a closer closes it once the opener has opened it. The bug needs three
/// events in one order: open, the user's check, close, before the use
/// (fixed: the user holds the connection's lock across check and use).
pub fn atomicity(sim: &Sim, fixed: bool) -> Outcome<()> {
    sim.run(async move {
        let conn: Rc<Mutex<Option<&str>>> = Rc::new(Mutex::named("conn", None));
        let open = Rc::new(Cell::new(false));
        let opener = {
            let (conn, open) = (conn.clone(), open.clone());
            spawn(async move {
                for _ in 0..2 {
                    yield_now().await;
                }
                *conn.lock().await = Some("db");
                open.set(true);
            })
        };
        let user = {
            let (conn, open) = (conn.clone(), open.clone());
            spawn(async move {
                for _ in 0..4 {
                    yield_now().await;
                    if !open.get() {
                        continue;
                    }
                    if fixed {
                        let c = conn.lock().await;
                        if let Some(db) = *c {
                            yield_now().await; // a query
                            assert_eq!(db, "db");
                        }
                    } else {
                        let ok = conn.lock().await.is_some();
                        yield_now().await; // a query
                        if ok {
                            assert!(conn.lock().await.is_some(), "used a closed connection");
                        }
                    }
                }
            })
        };
        let closer = spawn(async move {
            for _ in 0..6 {
                yield_now().await;
                if open.get() {
                    conn.lock().await.take();
                    return;
                }
            }
        });
        opener.await.unwrap();
        user.await.unwrap();
        closer.await.unwrap();
    })
}

/// A client retries a deposit when the reply is late; the server applies
/// every copy it receives (fixed: it remembers request ids).
pub fn double_apply(sim: &Sim, fixed: bool) -> Outcome<()> {
    sim.run(async move {
        let (tx, mut rx) = mpsc::unbounded_channel::<(u32, u64, oneshot::Sender<()>)>();
        let balance = Rc::new(Cell::new(0u64));
        let server = {
            let balance = balance.clone();
            spawn(async move {
                let mut seen = Vec::new();
                while let Some((id, amount, reply)) = rx.recv().await {
                    // A slow disk: 1 to 20 ms.
                    sleep(Duration::from_millis(lockstep::random::range(1..21u64))).await;
                    if !fixed || !seen.contains(&id) {
                        balance.set(balance.get() + amount);
                        seen.push(id);
                    }
                    let _ = reply.send(());
                }
            })
        };
        for attempt in 0..5 {
            let (reply, answer) = oneshot::channel();
            tx.send((7, 100, reply)).unwrap();
            // Exponential back-off: 15 ms, 30 ms, ...
            let wait = Duration::from_millis(15 << attempt);
            if timeout(wait, answer).await.is_ok() {
                break;
            }
            assert!(attempt < 4, "no reply after 5 attempts");
        }
        drop(tx);
        server.await.unwrap();
        assert_eq!(balance.get(), 100, "a retried deposit was applied twice");
    })
}

/// A producer hands a message to a waiting consumer at 1 ms; the
/// consumer gives up at 3 ms. The consumer checks its deadline before its
/// slot, so if it is first polled after 3 ms (a loaded executor) it
/// drops a message handed over in time (fixed: slot first, then the
/// deadline). The timings are distinct: only a late poll finds it.
pub fn lost_wakeup(sim: &Sim, fixed: bool) -> Outcome<()> {
    sim.run(async move {
        let slot: Rc<Cell<Option<u32>>> = Rc::new(Cell::new(None));
        let notify = Rc::new(Notify::new());
        let deadline = lockstep::time::now() + Duration::from_millis(3);
        let consumer = {
            let (slot, notify) = (slot.clone(), notify.clone());
            spawn(async move {
                loop {
                    if fixed {
                        if let Some(v) = slot.take() {
                            return Some(v);
                        }
                    }
                    if lockstep::time::now() >= deadline {
                        return None;
                    }
                    if let Some(v) = slot.take() {
                        return Some(v);
                    }
                    select(notify.notified(), sleep_until(deadline)).await;
                }
            })
        };
        let producer = {
            let (slot, notify) = (slot.clone(), notify.clone());
            spawn(async move {
                sleep(Duration::from_millis(1)).await;
                slot.set(Some(42));
                notify.notify_one();
                lockstep::time::now()
            })
        };
        let handed_at = producer.await.unwrap();
        let got = consumer.await.unwrap();
        if handed_at < deadline {
            assert_eq!(got, Some(42), "a message handed over in time was lost");
        }
    })
}

/// A primary acknowledges a write, then replicates it to its backup over
/// a link that may drop a message (a `buggify!` point); the client then
/// fails over and reads from the backup (fixed: the primary resends until
/// the backup confirms, and acknowledges after that).
pub fn unreplicated_ack(sim: &Sim, fixed: bool) -> Outcome<()> {
    sim.run(async move {
        let backup: Rc<RefCell<Vec<u32>>> = Rc::new(RefCell::new(Vec::new()));
        let (to_primary, mut primary_rx) = mpsc::unbounded_channel::<(u32, oneshot::Sender<()>)>();
        let primary = {
            let backup = backup.clone();
            spawn(async move {
                while let Some((value, ack)) = primary_rx.recv().await {
                    let replicate = |backup: &Rc<RefCell<Vec<u32>>>| {
                        // The replication message may be lost on the way.
                        let lost = lockstep::buggify!(0.5);
                        if !lost {
                            backup.borrow_mut().push(value);
                        }
                        !lost
                    };
                    if fixed {
                        sleep(Duration::from_millis(2)).await;
                        while !replicate(&backup) {
                            sleep(Duration::from_millis(5)).await; // resend
                        }
                        let _ = ack.send(());
                    } else {
                        let _ = ack.send(());
                        sleep(Duration::from_millis(2)).await;
                        replicate(&backup);
                    }
                }
            })
        };
        for value in 0..3 {
            let (ack, acked) = oneshot::channel();
            to_primary.send((value, ack)).unwrap();
            acked.await.unwrap();
        }
        drop(to_primary);
        primary.await.unwrap();
        // Fail over: every acknowledged write must be on the backup.
        assert_eq!(
            *backup.borrow(),
            vec![0, 1, 2],
            "an acknowledged write was lost"
        );
    })
}

/// How long a lease lasts without renewal.
pub const LEASE: Duration = Duration::from_millis(12);

/// A leaseholder on host `worker` renews its lease, does a batch of work
/// (four polls), then writes; a monitor on host `monitor` checks the
/// lease every millisecond and deposes a holder whose lease lapsed. The
/// holder writes without checking that its lease is still valid, trusting
/// that four polls never take 12 ms (fixed: it checks right before the
/// write, with no await in between, and steps down if the lease lapsed).
///
/// Polls take no virtual time unless charged, so uniform and PCT
/// scheduling never find it; poll cost finds it when hosts are slow: at
/// equal speeds, with up to 1 ms per poll, the batch always ends within
/// the lease; with hosts up to 8 times slower it often does not (the
/// worker's own polls take longer, and so do the monitor's, which run on
/// the same simulated executor while the worker's batch is under way). (Late
/// polls that keep moving the clock while the worker starves reach it too,
/// rarely: in 3 of 20 sweeps of 2,000 `mix` seeds without poll cost.)
pub fn slow_host_lease(sim: &Sim, fixed: bool) -> Outcome<()> {
    sim.run(async move {
        let renewed = Rc::new(Cell::new(lockstep::time::now()));
        let deposed = Rc::new(Cell::new(false));
        let done = Rc::new(Cell::new(false));
        let monitor = lockstep::net::Host::client("monitor");
        {
            let (renewed, deposed, done) = (renewed.clone(), deposed.clone(), done.clone());
            // A host task: it runs until the simulation ends.
            drop(monitor.spawn(async move {
                while !done.get() {
                    sleep(Duration::from_millis(1)).await;
                    if lockstep::time::now() - renewed.get() > LEASE {
                        deposed.set(true);
                    }
                }
            }));
        }
        let worker = lockstep::net::Host::client("worker");
        let holder = worker.spawn({
            let (renewed, deposed) = (renewed.clone(), deposed.clone());
            async move {
                let mut writes = 0;
                for _ in 0..10 {
                    if deposed.get() {
                        break; // the lease moved on: step down
                    }
                    renewed.set(lockstep::time::now());
                    for _ in 0..4 {
                        yield_now().await; // a batch of work
                    }
                    if fixed && lockstep::time::now() - renewed.get() >= LEASE {
                        break; // too slow: the lease may have lapsed
                    }
                    assert!(!deposed.get(), "a deposed leaseholder wrote");
                    writes += 1;
                    sleep(Duration::from_millis(2)).await;
                }
                writes
            }
        });
        let writes = holder.await.unwrap();
        done.set(true);
        assert!(writes <= 10);
    })
}
