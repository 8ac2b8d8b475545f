//! Channels: `mpsc` (bounded and unbounded), `oneshot`, `broadcast`,
//! `watch`; close and drop semantics; cancellation safety.

use std::cell::RefCell;
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::sync::mpsc::{self, TryRecvError, TrySendError};
use lockstep::sync::{broadcast, oneshot, watch};
use lockstep::task::Builder;

#[test]
fn producers_and_a_consumer_move_every_item_exactly_once() {
    for seed in 0..200u64 {
        let outcome = Sim::new(seed).run(async {
            let (tx, mut rx) = mpsc::channel_named("items", 2);
            for p in 0..3 {
                let tx = tx.clone();
                Builder::new()
                    .name(format!("producer-{p}"))
                    .spawn(async move {
                        for i in 0..3 {
                            tx.send(p * 10 + i).await.unwrap();
                            sleep(lockstep::random::duration(
                                Duration::ZERO..Duration::from_millis(5),
                            ))
                            .await;
                        }
                    });
            }
            drop(tx);
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                assert!(rx.len() <= 2);
                got.push(v);
            }
            got.sort();
            got
        });
        assert_eq!(
            outcome.into_result().unwrap(),
            [0, 1, 2, 10, 11, 12, 20, 21, 22],
            "seed {seed}"
        );
    }
}

#[test]
fn a_full_channel_makes_senders_wait_in_order() {
    let outcome = Sim::new(1).run(async {
        let (tx, mut rx) = mpsc::channel(1);
        tx.send(0).await.unwrap();
        assert!(matches!(tx.try_send(99), Err(TrySendError::Full(99))));
        let senders: Vec<_> = (1..=3)
            .map(|i| {
                let tx = tx.clone();
                spawn(async move {
                    sleep(Duration::from_millis(i)).await;
                    tx.send(i).await.unwrap();
                })
            })
            .collect();
        sleep(Duration::from_millis(10)).await;
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(rx.recv().await.unwrap());
        }
        for s in senders {
            s.await.unwrap();
        }
        assert_eq!(tx.capacity(), 1);
        got
    });
    assert_eq!(outcome.into_result().unwrap(), [0, 1, 2, 3]);
}

#[test]
fn a_dropped_send_hands_its_slot_on_and_sends_nothing() {
    let outcome = Sim::new(1).run(async {
        let (tx, mut rx) = mpsc::channel_named("c", 1);
        tx.send("first").await.unwrap();
        let t1 = tx.clone();
        let victim = spawn(async move { t1.send("victim").await });
        sleep(Duration::from_millis(1)).await;
        let t2 = tx.clone();
        let next = spawn(async move { t2.send("next").await });
        sleep(Duration::from_millis(1)).await;
        let a = rx.recv().await; // frees the slot: handed to `victim`...
        victim.abort(); // ...which is dropped before it runs
        let b = rx.recv().await;
        next.await.unwrap().unwrap();
        // A send that timed out in line leaves no stale waiter either.
        tx.send("third").await.unwrap();
        let gave_up = timeout(Duration::from_millis(1), tx.send("never"))
            .await
            .is_err();
        let c = rx.recv().await;
        drop(tx);
        (a, b, c, gave_up, rx.recv().await)
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        (Some("first"), Some("next"), Some("third"), true, None)
    );
}

#[test]
fn recv_returns_the_buffer_then_none_once_every_sender_is_gone() {
    let outcome = Sim::new(1).run(async {
        let (tx, mut rx) = mpsc::unbounded_channel_named("u");
        let tx2 = tx.clone();
        tx.send(1).unwrap();
        tx2.send(2).unwrap();
        drop(tx);
        assert_eq!(rx.try_recv(), Ok(1));
        let waiter = spawn(async move {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        sleep(Duration::from_millis(1)).await;
        tx2.send(3).unwrap();
        sleep(Duration::from_millis(1)).await;
        drop(tx2); // wakes the waiting receiver with None
        waiter.await.unwrap()
    });
    assert_eq!(outcome.into_result().unwrap(), [2, 3]);
}

#[test]
fn a_closed_or_dropped_receiver_fails_sends_and_wakes_waiting_senders() {
    let outcome = Sim::new(1).run(async {
        let (tx, mut rx) = mpsc::channel(1);
        tx.send(1).await.unwrap();
        let t = tx.clone();
        let blocked = spawn(async move { t.send(2).await.map_err(|e| e.0) });
        sleep(Duration::from_millis(1)).await;
        rx.close();
        let blocked = blocked.await.unwrap();
        let after = tx.send(3).await.map_err(|e| e.0);
        let closed = tx.is_closed();
        // What was buffered before the close still comes out.
        let buffered = (rx.recv().await, rx.recv().await, rx.try_recv());
        let (utx, urx) = mpsc::unbounded_channel::<u8>();
        drop(urx);
        let dropped = utx.send(7).map_err(|e| e.0);
        (blocked, after, closed, buffered, dropped)
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        (
            Err(2),
            Err(3),
            true,
            (Some(1), None, Err(TryRecvError::Disconnected)),
            Err(7)
        )
    );
}

#[test]
fn a_dropped_receiver_drops_what_was_buffered_even_after_a_close() {
    // Each message carries a oneshot sender: dropping the message tells
    // whoever waits on the other end.
    let outcome = Sim::new(1).run(async {
        let (tx, mut rx) = mpsc::channel(2);
        let (reply_tx, reply_rx) = oneshot::channel::<()>();
        tx.send(reply_tx).await.unwrap();
        rx.close();
        drop(rx);
        // `tx` is still alive, but the message is gone with the receiver.
        let told = reply_rx.await.is_err();
        (told, tx.is_closed())
    });
    assert_eq!(outcome.into_result().unwrap(), (true, true));
}

#[test]
fn a_dropped_recv_loses_no_message() {
    let outcome = Sim::new(3).run(async {
        let (tx, mut rx) = mpsc::channel(4);
        for _ in 0..3 {
            assert!(timeout(Duration::from_millis(1), rx.recv()).await.is_err());
        }
        let sender = spawn(async move {
            sleep(Duration::from_millis(5)).await;
            tx.send(42).await.unwrap();
        });
        let first = timeout(Duration::from_millis(1), rx.recv()).await;
        let later = rx.recv().await;
        sender.await.unwrap();
        (first.is_err(), later)
    });
    assert_eq!(outcome.into_result().unwrap(), (true, Some(42)));
}

#[test]
fn channel_events_are_traced_with_the_channel_name() {
    let outcome = Sim::new(1).run(async {
        let (tx, mut rx) = mpsc::channel_named("jobs", 1);
        let consumer = Builder::new()
            .name("consumer")
            .spawn(async move { while rx.recv().await.is_some() {} });
        sleep(Duration::from_millis(1)).await;
        tx.send(1).await.unwrap();
        drop(tx);
        consumer.await.unwrap();
    });
    let text = outcome.trace().render();
    for line in [
        "#1 consumer        wait for channel 'jobs' (a message)",
        "#0 main            send on channel 'jobs'",
        "#1 consumer        recv on channel 'jobs'",
        "#0 main            close channel 'jobs' (last sender dropped)",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

#[test]
fn oneshot_delivers_one_value_or_says_the_sender_is_gone() {
    let outcome = Sim::new(1).run(async {
        let (tx, rx) = oneshot::channel_named("reply");
        spawn(async move {
            sleep(Duration::from_millis(3)).await;
            tx.send(5).unwrap();
        });
        let got = rx.await;
        let (tx, rx) = oneshot::channel::<u8>();
        drop(tx);
        let dropped = rx.await;
        let (tx, mut rx) = oneshot::channel::<u8>();
        assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Empty));
        rx.close();
        let refused = tx.send(1);
        let (tx, rx) = oneshot::channel::<u8>();
        drop(rx);
        (got, dropped, refused, tx.is_closed())
    });
    let (got, dropped, refused, closed) = outcome.into_result().unwrap();
    assert_eq!(got, Ok(5));
    assert!(dropped.is_err());
    assert_eq!(refused, Err(1));
    assert!(closed);
}

#[test]
fn a_oneshot_receiver_can_time_out_and_still_be_awaited() {
    let outcome = Sim::new(1).run(async {
        let (tx, mut rx) = oneshot::channel();
        spawn(async move {
            sleep(Duration::from_millis(10)).await;
            tx.send("late").unwrap();
        });
        let early = timeout(Duration::from_millis(5), &mut rx).await.is_err();
        (early, rx.await, Instant::now())
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        (true, Ok("late"), Instant::START + Duration::from_millis(10))
    );
}

#[test]
fn every_broadcast_receiver_sees_every_message_and_laggards_are_told() {
    let outcome = Sim::new(1).run(async {
        let (tx, mut rx1) = broadcast::channel_named("news", 2);
        let mut rx2 = tx.subscribe();
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let reader = spawn(async move {
            while let Ok(v) = rx1.recv().await {
                l.borrow_mut().push(v);
            }
        });
        for i in 0..4 {
            assert_eq!(tx.send(i), Ok(2));
            sleep(Duration::from_millis(1)).await;
        }
        // rx2 never read: it missed two of four.
        let lagged = rx2.recv().await;
        let rest = (rx2.recv().await, rx2.recv().await);
        drop(tx);
        reader.await.unwrap();
        let closed = rx2.recv().await;
        (log.take(), lagged, rest, closed)
    });
    let (seen, lagged, rest, closed) = outcome.into_result().unwrap();
    assert_eq!(seen, [0, 1, 2, 3]);
    assert_eq!(lagged, Err(broadcast::RecvError::Lagged(2)));
    assert_eq!(rest, (Ok(2), Ok(3)));
    assert_eq!(closed, Err(broadcast::RecvError::Closed));
}

#[test]
fn a_broadcast_without_receivers_refuses_and_a_dropped_recv_leaves_nothing() {
    let outcome = Sim::new(1).run(async {
        let (tx, rx) = broadcast::channel::<u8>(4);
        let mut rx2 = rx.resubscribe();
        drop(rx);
        assert!(timeout(Duration::from_millis(1), rx2.recv()).await.is_err());
        tx.send(1).unwrap();
        let got = rx2.recv().await;
        drop(rx2);
        (got, tx.send(2).map_err(|e| e.0), tx.receiver_count())
    });
    assert_eq!(outcome.into_result().unwrap(), (Ok(1), Err(2), 0));
}

#[test]
fn watch_delivers_the_latest_value_and_ends_when_the_sender_goes() {
    let outcome = Sim::new(1).run(async {
        let (tx, mut rx) = watch::channel_named("config", 0);
        let mut rx2 = rx.clone();
        let watcher = spawn(async move {
            let mut seen = Vec::new();
            while rx2.changed().await.is_ok() {
                seen.push(*rx2.borrow_and_update());
            }
            seen
        });
        tx.send(1).unwrap();
        tx.send(2).unwrap(); // before the watcher runs: it sees only 2
        sleep(Duration::from_millis(1)).await;
        tx.send_modify(|v| *v += 1);
        sleep(Duration::from_millis(1)).await;
        assert_eq!(rx.has_changed(), Ok(true));
        assert_eq!(*rx.borrow_and_update(), 3);
        assert_eq!(rx.has_changed(), Ok(false));
        let old = tx.send_replace(4);
        drop(tx);
        let seen = watcher.await.unwrap();
        let last = rx.changed().await; // the unseen 4, then the close
        (seen, old, last, rx.changed().await.is_err())
    });
    let (seen, old, last, closed) = outcome.into_result().unwrap();
    assert_eq!(seen, [2, 3, 4]);
    assert_eq!(old, 3);
    assert_eq!(last, Ok(()));
    assert!(closed);
}

#[test]
fn a_watch_send_without_receivers_fails_and_keeps_the_old_value() {
    let (tx, rx) = watch::channel(1);
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(2).map_err(|e| e.0), Err(2));
    assert_eq!(*tx.borrow(), 1);
    let _rx = tx.subscribe();
    assert!(tx.send(3).is_ok());
    assert_eq!(*tx.borrow(), 3);
}

#[test]
fn a_dropped_watch_wait_leaves_nothing_behind_and_misses_no_change() {
    let outcome = Sim::new(1).run(async {
        let (tx, mut rx) = watch::channel_named("w", 0);
        for _ in 0..3 {
            assert!(
                timeout(Duration::from_millis(1), rx.changed())
                    .await
                    .is_err()
            );
        }
        let setter = spawn(async move {
            sleep(Duration::from_millis(5)).await;
            tx.send(1).unwrap();
            tx
        });
        // Given up before the change: the change is still seen afterwards.
        let early = timeout(Duration::from_millis(1), rx.changed())
            .await
            .is_err();
        sleep(Duration::from_millis(10)).await;
        let later = rx.changed().await;
        let tx = setter.await.unwrap();
        (early, later, *rx.borrow(), tx.receiver_count())
    });
    assert_eq!(outcome.into_result().unwrap(), (true, Ok(()), 1, 1));
}
