//! Wait-for cycles through channels: found when they close, even while
//! other tasks keep running; never reported while a sender could still be
//! used by a task that can run.

use std::cell::RefCell;
use std::rc::Rc;

use lockstep::check::{DeadlockKind, FailureKind};
use lockstep::prelude::*;
use lockstep::sync::{broadcast, mpsc, watch};
use lockstep::task::Builder;

fn heartbeat() {
    Builder::new().name("heartbeat").daemon(true).spawn(async {
        loop {
            sleep(Duration::from_millis(100)).await;
        }
    });
}

fn deadlock_text(outcome: Outcome<()>) -> (String, Instant) {
    let failure = outcome.into_result().unwrap_err();
    assert_eq!(failure.kind(), FailureKind::Deadlock, "{failure}");
    let lockstep::Failure::Deadlock(r) = &failure else {
        unreachable!()
    };
    assert_eq!(r.kind, DeadlockKind::Cycle, "{failure}");
    (failure.to_string(), r.at.time)
}

#[test]
fn a_receive_cycle_through_two_channels_is_a_deadlock_while_a_heartbeat_runs() {
    let (text, at) = deadlock_text(receive_cycle(1));
    assert!(
        text.contains(
            "holds the only sender of channel 'to-b' and waits for a message on channel 'to-a'"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "holds the only sender of channel 'to-a' and waits for a message on channel 'to-b'"
        ),
        "{text}"
    );
    assert!(
        at < Instant::START + Duration::from_secs(1),
        "found late: {at}"
    );
}

#[test]
fn channel_verdicts_are_the_same_for_every_seed() {
    for seed in 0..100 {
        deadlock_text(receive_cycle(seed));
        assert_eq!(moved_sender(seed).into_result().unwrap(), [1, 2]);
        assert_eq!(shared_state(seed).into_result().unwrap(), (7, 8));
        assert_eq!(timer_holder(seed).into_result().unwrap(), Some(1));
    }
}

/// a and b greet each other, then each waits for the other to speak
/// again: a protocol bug. The heartbeat keeps the run going for ever.
fn receive_cycle(seed: u64) -> Outcome<()> {
    Sim::new(seed).run(async {
        heartbeat();
        let (to_a, mut a_inbox) = mpsc::unbounded_channel_named::<&str>("to-a");
        let (to_b, mut b_inbox) = mpsc::unbounded_channel_named::<&str>("to-b");
        let a = Builder::new().name("a").spawn(async move {
            to_b.send("hello").unwrap();
            a_inbox.recv().await;
            a_inbox.recv().await;
        });
        let b = Builder::new().name("b").spawn(async move {
            to_a.send("hello").unwrap();
            b_inbox.recv().await;
            b_inbox.recv().await;
        });
        a.await.unwrap();
        b.await.unwrap();
    })
}

#[test]
fn a_bounded_send_cycle_is_a_deadlock() {
    // Each takes its start message, then sends two messages into the
    // other's channel of one slot: neither reads again.
    let outcome = Sim::new(2).run(async {
        heartbeat();
        let (to_a, mut a_inbox) = mpsc::channel_named::<u8>("to-a", 1);
        let (to_b, mut b_inbox) = mpsc::channel_named::<u8>("to-b", 1);
        to_a.send(0).await.unwrap();
        to_b.send(0).await.unwrap();
        let a = Builder::new().name("a").spawn(async move {
            a_inbox.recv().await;
            to_b.send(1).await.unwrap();
            to_b.send(2).await.unwrap();
            a_inbox.recv().await;
        });
        let b = Builder::new().name("b").spawn(async move {
            b_inbox.recv().await;
            to_a.send(1).await.unwrap();
            to_a.send(2).await.unwrap();
            b_inbox.recv().await;
        });
        a.await.unwrap();
        b.await.unwrap();
    });
    let (text, _) = deadlock_text(outcome);
    assert!(
        text.contains("holds the receiver of channel 'to-b' and waits for room on channel 'to-a'"),
        "{text}"
    );
}

#[test]
fn waiting_on_a_channel_whose_only_sender_you_hold_is_a_deadlock() {
    // The classic: the consumer still holds a sender, so `recv` never
    // returns `None`.
    let outcome = Sim::new(3).run(async {
        heartbeat();
        let (tx, mut rx) = mpsc::channel_named::<u32>("jobs", 8);
        tx.send(1).await.unwrap();
        while let Some(_job) = rx.recv().await {}
        drop(tx);
    });
    let (text, _) = deadlock_text(outcome);
    assert!(
        text.contains(
            "holds the only sender of channel 'jobs' and waits for a message on channel 'jobs'"
        ),
        "{text}"
    );
}

#[test]
fn a_sender_moved_to_a_running_task_breaks_the_cycle() {
    assert_eq!(moved_sender(4).into_result().unwrap(), [1, 2]);
}

/// The consumer used the sender, then gave it to a producer task that
/// sends later: no deadlock.
fn moved_sender(seed: u64) -> Outcome<Vec<u32>> {
    Sim::new(seed).run(async {
        let (tx, mut rx) = mpsc::channel_named::<u32>("jobs", 8);
        tx.send(1).await.unwrap();
        spawn(async move {
            sleep(Duration::from_millis(5)).await;
            tx.send(2).await.unwrap();
        });
        let mut got = Vec::new();
        while let Some(job) = rx.recv().await {
            got.push(job);
        }
        got
    })
}

#[test]
fn a_sender_sent_through_a_channel_or_kept_in_shared_state_is_never_certain() {
    assert_eq!(shared_state(5).into_result().unwrap(), (7, 8));
}

/// The reply sender travels in a request; an unused sender kept in a
/// shared map is held by no task lockstep can name. Neither is reported
/// early, and the run completes.
fn shared_state(seed: u64) -> Outcome<(u32, u32)> {
    Sim::new(seed).run(async {
        let (req_tx, mut req_rx) = mpsc::unbounded_channel::<mpsc::UnboundedSender<u32>>();
        let pending: Rc<RefCell<Vec<mpsc::UnboundedSender<u32>>>> = Rc::default();
        let server = {
            let pending = pending.clone();
            spawn(async move {
                let reply = req_rx.recv().await.unwrap();
                sleep(Duration::from_millis(1)).await;
                reply.send(7).unwrap();
                sleep(Duration::from_millis(1)).await;
                let later = pending.borrow_mut().pop().unwrap();
                later.send(8).unwrap();
            })
        };
        let (reply_tx, mut reply_rx) = mpsc::unbounded_channel();
        reply_tx.send(0).unwrap();
        reply_rx.recv().await;
        req_tx.send(reply_tx).unwrap();
        let first = reply_rx.recv().await.unwrap();
        let (later_tx, mut later_rx) = mpsc::unbounded_channel();
        pending.borrow_mut().push(later_tx);
        let second = later_rx.recv().await.unwrap();
        server.await.unwrap();
        (first, second)
    })
}

#[test]
fn a_holder_that_waits_on_a_timer_breaks_the_cycle() {
    assert_eq!(timer_holder(6).into_result().unwrap(), Some(1));
}

fn timer_holder(seed: u64) -> Outcome<Option<u8>> {
    Sim::new(seed).run(async {
        let (to_a, mut a_inbox) = mpsc::unbounded_channel_named::<u8>("to-a");
        let (to_b, mut b_inbox) = mpsc::unbounded_channel_named::<u8>("to-b");
        let a = spawn(async move {
            to_b.send(0).unwrap();
            a_inbox.recv().await;
            a_inbox.recv().await
        });
        let b = spawn(async move {
            to_a.send(0).unwrap();
            b_inbox.recv().await;
            // Not stuck: a timeout will fire.
            let _ = timeout(Duration::from_secs(1), b_inbox.recv()).await;
            to_a.send(1).unwrap();
        });
        b.await.unwrap();
        a.await.unwrap()
    })
}

#[test]
fn broadcast_and_watch_cycles_are_deadlocks() {
    let outcome = Sim::new(7).run(async {
        heartbeat();
        let (to_a, mut a_rx) = broadcast::channel_named::<u8>("news-a", 4);
        let (to_b, mut b_rx) = watch::channel_named("state-b", 0u8);
        let a = Builder::new().name("a").spawn(async move {
            to_b.send(1).unwrap();
            let _ = a_rx.recv().await;
            let _ = a_rx.recv().await;
        });
        let b = Builder::new().name("b").spawn(async move {
            to_a.send(1).unwrap();
            b_rx.changed().await.unwrap();
            b_rx.changed().await.unwrap();
        });
        a.await.unwrap();
        b.await.unwrap();
    });
    let (text, _) = deadlock_text(outcome);
    assert!(text.contains("broadcast 'news-a'"), "{text}");
    assert!(text.contains("watch 'state-b'"), "{text}");
}

#[test]
fn a_used_sender_sent_away_in_a_oneshot_is_no_longer_placed() {
    // The task used the sender, then handed it to a worker in a oneshot;
    // the worker sends later: no deadlock.
    for seed in 0..20 {
        let outcome = Sim::new(seed).run(async {
            let (tx, mut rx) = mpsc::unbounded_channel::<u8>();
            let (hand_tx, hand_rx) = lockstep::sync::oneshot::channel();
            let worker = spawn(async move {
                let tx: mpsc::UnboundedSender<u8> = hand_rx.await.unwrap();
                sleep(Duration::from_millis(3)).await;
                tx.send(2).unwrap();
            });
            // Placed here (after the spawn), then sent away.
            tx.send(1).unwrap();
            hand_tx.send(tx).unwrap();
            let got = (rx.recv().await, rx.recv().await, rx.recv().await);
            worker.await.unwrap();
            got
        });
        assert_eq!(outcome.into_result().unwrap(), (Some(1), Some(2), None));
    }
}

#[test]
fn a_sender_shared_by_reference_between_tasks_is_never_placed() {
    // An `Rc` holding the sender: the producer and the consumer both use
    // it. Once two tasks have used one handle, lockstep never assumes
    // where it is, so the consumer waiting on the channel is not reported.
    for seed in 0..20 {
        let outcome = Sim::new(seed).run(async {
            let (tx, mut rx) = mpsc::unbounded_channel::<u8>();
            let tx = Rc::new(tx);
            let shared = tx.clone();
            let producer = spawn(async move {
                shared.send(1).unwrap();
                sleep(Duration::from_millis(5)).await;
                shared.send(3).unwrap();
            });
            sleep(Duration::from_millis(1)).await;
            tx.send(2).unwrap();
            let got = (rx.recv().await, rx.recv().await, rx.recv().await);
            producer.await.unwrap();
            got
        });
        assert_eq!(
            outcome.into_result().unwrap(),
            (Some(1), Some(2), Some(3)),
            "seed {seed}"
        );
    }
}

/// Fan-out/fan-in, an actor with oneshot replies, and a bounded pipeline:
/// correct programs, never reported, for any seed.
fn common_patterns(seed: u64) -> Outcome<(u32, u32, u32)> {
    Sim::new(seed).run(async {
        // Fan-out / fan-in.
        let (results_tx, mut results) = mpsc::channel::<u32>(2);
        let mut job_txs = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..3 {
            let (job_tx, mut jobs) = mpsc::channel::<u32>(1);
            let results_tx = results_tx.clone();
            workers.push(spawn(async move {
                while let Some(j) = jobs.recv().await {
                    lockstep::task::yield_now().await;
                    results_tx.send(j * 2).await.unwrap();
                }
            }));
            job_txs.push(job_tx);
        }
        drop(results_tx);
        let feeder = spawn(async move {
            for j in 0..12u32 {
                job_txs[(j % 3) as usize].send(j).await.unwrap();
            }
        });
        let mut sum = 0;
        for _ in 0..12 {
            sum += results.recv().await.unwrap();
        }
        feeder.await.unwrap();
        for w in workers {
            w.await.unwrap();
        }

        // An actor answering through oneshots.
        type Req = (u32, lockstep::sync::oneshot::Sender<u32>);
        let (mailbox_tx, mut mailbox) = mpsc::unbounded_channel::<Req>();
        let actor = spawn(async move {
            while let Some((n, reply)) = mailbox.recv().await {
                sleep(Duration::from_millis(1)).await;
                let _ = reply.send(n + 1);
            }
        });
        let mut clients = Vec::new();
        for i in 0..4u32 {
            let mailbox_tx = mailbox_tx.clone();
            clients.push(spawn(async move {
                let (tx, rx) = lockstep::sync::oneshot::channel();
                mailbox_tx.send((i, tx)).unwrap();
                rx.await.unwrap()
            }));
        }
        drop(mailbox_tx);
        let mut answers = 0;
        for c in clients {
            answers += c.await.unwrap();
        }
        actor.await.unwrap();

        // A bounded pipeline of three stages.
        let (a_tx, mut a_rx) = mpsc::channel::<u32>(1);
        let (b_tx, mut b_rx) = mpsc::channel::<u32>(1);
        let source = spawn(async move {
            for i in 0..10 {
                a_tx.send(i).await.unwrap();
            }
        });
        let middle = spawn(async move {
            while let Some(v) = a_rx.recv().await {
                b_tx.send(v + 1).await.unwrap();
            }
        });
        let mut total = 0;
        while let Some(v) = b_rx.recv().await {
            sleep(Duration::from_micros(100)).await;
            total += v;
        }
        source.await.unwrap();
        middle.await.unwrap();
        (sum, answers, total)
    })
}

#[test]
fn common_channel_patterns_are_never_reported() {
    for seed in 0..200 {
        let got = common_patterns(seed).into_result();
        assert_eq!(got.unwrap(), (132, 10, 55), "seed {seed}");
    }
}

thread_local! {
    static KEPT: RefCell<Option<(mpsc::UnboundedSender<u8>, mpsc::UnboundedReceiver<u8>)>> =
        const { RefCell::new(None) };
}

#[test]
fn a_channel_kept_across_runs_is_not_placed_by_an_earlier_run() {
    // Run 1's task #1 uses the sender; the channel is kept. In run 2 task
    // #1 (same id) receives, and task #2 sends later: the sender must not
    // count as placed in run 2's task #1.
    Sim::new(1)
        .run(async {
            spawn(async {
                let (tx, rx) = mpsc::unbounded_channel::<u8>();
                tx.send(0).unwrap();
                KEPT.with(|k| *k.borrow_mut() = Some((tx, rx)));
            })
            .await
            .unwrap();
        })
        .into_result()
        .unwrap();
    let outcome = Sim::new(2).run(async {
        let (tx, mut rx) = KEPT.with(|k| k.borrow_mut().take()).unwrap();
        let receiver = spawn(async move { (rx.recv().await, rx.recv().await) });
        spawn(async move {
            sleep(Duration::from_millis(1)).await;
            tx.send(1).unwrap();
        });
        receiver.await.unwrap()
    });
    assert_eq!(outcome.into_result().unwrap(), (Some(0), Some(1)));
}
