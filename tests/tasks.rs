//! Tasks: spawn, join, abort (with Drop running), JoinSet, ids.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use lockstep::prelude::*;
use lockstep::task::{self, Builder};

/// Sets its flag when dropped: a stand-in for cleanup-on-cancel code.
struct Guard(Rc<Cell<bool>>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.set(true);
        lockstep::trace!("guard dropped");
    }
}

#[test]
fn abort_drops_the_future_at_once_and_runs_its_drop_guards() {
    let outcome = Sim::new(1).run(async {
        let cleaned = Rc::new(Cell::new(false));
        let flag = cleaned.clone();
        let h = Builder::new().name("victim").spawn(async move {
            let _guard = Guard(flag);
            sleep(Duration::from_secs(60)).await;
            "finished"
        });
        sleep(Duration::from_secs(1)).await;
        assert!(!cleaned.get());
        assert!(!h.is_finished());
        h.abort();
        assert!(cleaned.get(), "Drop ran inside abort()");
        assert!(h.is_finished());
        let res = h.await;
        (res, Instant::now())
    });
    let trace = outcome.trace().render();
    let (res, at) = outcome.into_result().unwrap();
    assert_eq!(res, Err(JoinError::Cancelled));
    // The abandoned 60 s sleep was cancelled with the task: the run ends at 1 s.
    assert_eq!(at, Instant::START + Duration::from_secs(1));
    assert!(trace.contains("abort #1 victim"), "{trace}");
    assert!(trace.contains("log: guard dropped"), "{trace}");
}

#[test]
fn aborting_a_finished_task_changes_nothing() {
    let v = Sim::new(1)
        .run(async {
            let h = spawn(async { 5 });
            sleep(Duration::from_secs(1)).await;
            h.abort();
            h.await
        })
        .into_result()
        .unwrap();
    assert_eq!(v, Ok(5));
}

#[test]
fn a_task_can_abort_itself() {
    let outcome = Sim::new(1).run(async {
        let me: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
        let me2 = me.clone();
        let dropped = Rc::new(Cell::new(false));
        let flag = dropped.clone();
        let h = spawn(async move {
            let _g = Guard(flag);
            task::yield_now().await;
            me2.borrow().as_ref().unwrap().abort();
            task::yield_now().await;
            unreachable!("aborted at the previous await");
        });
        *me.borrow_mut() = Some(h);
        sleep(Duration::from_secs(1)).await;
        let h = me.borrow_mut().take().unwrap();
        (h.await, dropped.get())
    });
    let (res, dropped) = outcome.into_result().unwrap();
    assert_eq!(res, Err(JoinError::Cancelled));
    assert!(dropped);
}

#[test]
fn tasks_may_hold_rc_and_refcell() {
    let total = Sim::new(3)
        .run(async {
            let shared = Rc::new(RefCell::new(Vec::new()));
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    let s = shared.clone();
                    spawn(async move {
                        task::yield_now().await;
                        s.borrow_mut().push(i);
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
            shared.borrow().iter().sum::<i32>()
        })
        .into_result()
        .unwrap();
    assert_eq!(total, 6);
}

#[test]
fn task_ids_restart_at_zero_in_every_run() {
    let ids = || {
        Sim::new(1)
            .run(async {
                let main = task::id();
                let child = spawn(async { task::id() });
                let child_id = child.id();
                (main, child_id, child.await.unwrap())
            })
            .into_result()
            .unwrap()
    };
    let first = ids();
    assert_eq!(first, ids());
    assert_eq!(first.0, task::TaskId::MAIN);
    assert_eq!(first.1.to_string(), "#1");
    assert_eq!(first.1, first.2);
}

#[test]
fn join_set_yields_in_completion_order() {
    let out = Sim::new(8)
        .run(async {
            let mut set = JoinSet::new();
            for (i, secs) in [4u64, 1, 3, 2].into_iter().enumerate() {
                set.insert(Builder::new().name(format!("job-{i}")).spawn(async move {
                    sleep(Duration::from_secs(secs)).await;
                    secs
                }));
            }
            let mut order = Vec::new();
            while let Some(r) = set.join_next().await {
                order.push((r.unwrap(), Instant::now()));
            }
            assert!(set.is_empty());
            order
        })
        .into_result()
        .unwrap();
    let expected: Vec<_> = [1u64, 2, 3, 4]
        .iter()
        .map(|&s| (s, Instant::START + Duration::from_secs(s)))
        .collect();
    assert_eq!(out, expected);
}

#[test]
fn dropping_a_join_set_aborts_its_tasks() {
    let outcome = Sim::new(1).run(async {
        let dropped = Rc::new(Cell::new(0));
        let mut set = JoinSet::new();
        struct Count(Rc<Cell<i32>>);
        impl Drop for Count {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }
        for _ in 0..3 {
            // Owned by the future from the start, polled or not.
            let c = Count(dropped.clone());
            set.spawn(async move {
                let _c = c;
                futures::future::pending::<()>().await
            });
        }
        task::yield_now().await;
        drop(set);
        dropped.get()
    });
    // No leak report: the set's drop aborted them.
    assert_eq!(outcome.into_result().unwrap(), 3);
}

#[test]
fn join_set_results_include_panics_and_cancellations() {
    let mut results = Sim::new(2)
        .run(async {
            let mut set = JoinSet::new();
            set.spawn(async { Ok::<u8, ()>(1) });
            set.spawn(async { panic!("bad job") });
            let slow = set.spawn(async {
                sleep(Duration::from_secs(9)).await;
                Ok(3)
            });
            let _ = slow;
            let first = set.join_next().await.unwrap();
            let second = set.join_next().await.unwrap();
            set.abort_all();
            let third = set.join_next().await.unwrap();
            assert!(set.join_next().await.is_none());
            vec![first, second, third]
        })
        .into_result()
        .unwrap();
    let cancelled = results.pop().unwrap();
    assert_eq!(cancelled, Err(JoinError::Cancelled));
    assert!(results.iter().any(|r| r == &Ok(Ok(1))));
    assert!(results.iter().any(|r| {
        r.as_ref()
            .is_err_and(|e| e.panic_message() == Some("bad job"))
    }));
}

/// A set hears of the tasks in it, and of no other: not of tasks it let
/// go, nor of later tasks that take their slots in the task table; a task
/// that ended before it joined the set is ready there at once.
#[test]
fn a_join_set_hears_only_of_its_own_tasks_whatever_reuses_their_slots() {
    let out = Sim::new(3)
        .run(async {
            let mut set = JoinSet::new();
            for i in 0..4u64 {
                set.spawn(async move {
                    sleep(Duration::from_millis(10 * (i + 1))).await;
                    i
                });
            }
            // Let go before they end: they finish detached.
            set.detach_all();
            sleep(Duration::from_millis(100)).await;
            // Their slots go to new tasks, outside any set, that end too.
            let plain: Vec<_> = (0..8u64).map(|i| spawn(async move { i })).collect();
            for h in plain {
                h.await.unwrap();
            }
            let heard_nothing = set.try_join_next().is_none() && set.is_empty();
            let done = spawn(async { 7u64 });
            while !done.is_finished() {
                task::yield_now().await;
            }
            set.insert(done);
            let joined = set.join_next().await.unwrap().unwrap();
            (heard_nothing, joined, set.join_next().await.is_none())
        })
        .into_result()
        .unwrap();
    assert_eq!(out, (true, 7, true));
}

/// A handle may outlive its run (here it is the run's value): it still
/// tells whether its task ended, and dropping it, after the run's tasks
/// are gone, frees the task's cell (the handle holds the last reference).
#[test]
fn a_join_handle_outlives_its_run() {
    let (done, cut_short) = Sim::new(1)
        .run(async {
            let done = spawn(async { String::from("kept") });
            let cut_short = Builder::new()
                .daemon(true)
                .spawn(futures::future::pending::<Vec<u8>>());
            while !done.is_finished() {
                task::yield_now().await;
            }
            (done, cut_short)
        })
        .into_result()
        .unwrap();
    assert!(done.is_finished());
    // The run's end cancelled the daemon, which dropped its future.
    assert!(cut_short.is_finished());
    drop(cut_short);
    drop(done);
}

#[test]
fn join_all_and_shutdown() {
    let v = Sim::new(2)
        .run(async {
            let mut set = JoinSet::new();
            for i in 0..5u32 {
                set.spawn(async move {
                    sleep(Duration::from_millis(100 * (5 - i as u64))).await;
                    i
                });
            }
            let all: Vec<u32> = set
                .join_all()
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
            let mut other = JoinSet::new();
            other.spawn(futures::future::pending::<()>());
            other.shutdown().await;
            (all, other.len())
        })
        .into_result()
        .unwrap();
    assert_eq!(v, (vec![4, 3, 2, 1, 0], 0));
}

#[test]
fn nested_spawns_and_deep_chains() {
    fn chain(depth: u32) -> JoinHandle<u32> {
        spawn(async move {
            if depth == 0 {
                0
            } else {
                chain(depth - 1).await.unwrap() + 1
            }
        })
    }
    let outcome = Sim::new(4).run(async { chain(500).await.unwrap() });
    assert_eq!(outcome.stats().tasks_spawned, 501);
    assert_eq!(outcome.into_result().unwrap(), 500);
}

/// A yield inside a combinator that gives each future a waker of its own
/// (`FuturesUnordered`) wakes through that waker, so the combinator polls
/// that future again (a yield that woke the task directly would leave it
/// never polled: the run would end in a deadlock report); a yield under
/// the task's own waker wakes the task.
#[test]
fn a_yield_wakes_through_a_combinators_waker() {
    use futures::StreamExt;
    use futures::stream::FuturesUnordered;

    let outcome = Sim::new(3).run(async {
        let polls = Rc::new(Cell::new(0u32));
        let mut set: FuturesUnordered<_> = (0..3u32)
            .map(|i| {
                let polls = polls.clone();
                async move {
                    for _ in 0..5 {
                        polls.set(polls.get() + 1);
                        yield_now().await;
                    }
                    i
                }
            })
            .collect();
        let mut done = Vec::new();
        while let Some(i) = set.next().await {
            done.push(i);
        }
        yield_now().await;
        done.sort();
        (done, polls.get())
    });
    assert_eq!(outcome.result().unwrap(), &(vec![0, 1, 2], 15));
    let events: Vec<_> = outcome.trace().events().collect();
    let yields = events
        .iter()
        .filter(|e| matches!(e.kind, lockstep::trace::EventKind::Yield))
        .count();
    let self_wakes = events
        .iter()
        .filter(|e| matches!(e.kind, lockstep::trace::EventKind::Wake { target } if Some(target) == e.task))
        .count();
    assert_eq!(yields, 16);
    // `FuturesUnordered` wakes the task once for the futures that yielded
    // in one of its polls: fewer wakes than yields, at least one a round.
    assert!((5..16).contains(&self_wakes), "{self_wakes} wakes");
}

/// Counts its drops: a future's, or an output's.
#[derive(Debug)]
struct Drops(Rc<Cell<u32>>);
impl Drop for Drops {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// A task's future and, later, its output share one place in the task:
/// each is dropped exactly once, whether the output is taken, left in a
/// dropped handle, or never made (an abort).
#[test]
fn a_task_drops_its_future_and_its_output_exactly_once() {
    let outcome = Sim::new(1).run(async {
        let futures = Rc::new(Cell::new(0));
        let outputs = Rc::new(Cell::new(0));
        let both = || (futures.get(), outputs.get());

        // Finished and joined: the caller owns the output.
        let (f, o) = (Drops(futures.clone()), outputs.clone());
        let out = spawn(async move {
            let _f = f;
            Drops(o)
        })
        .await
        .unwrap();
        assert_eq!(both(), (1, 0));
        drop(out);
        assert_eq!(both(), (1, 1));

        // Finished, then its handle dropped without a join.
        let (f, o) = (Drops(futures.clone()), outputs.clone());
        let h = spawn(async move {
            let _f = f;
            Drops(o)
        });
        while !h.is_finished() {
            yield_now().await;
        }
        assert_eq!(both(), (2, 1));
        drop(h);
        assert_eq!(both(), (2, 2));

        // Aborted while it waits: no output is ever made.
        let f = Drops(futures.clone());
        let h = spawn(async move {
            let _f = f;
            std::future::pending::<Drops>().await
        });
        yield_now().await;
        h.abort();
        assert_eq!(both(), (3, 2));
        assert!(h.await.unwrap_err().is_cancelled());
        both()
    });
    assert_eq!(outcome.into_result().unwrap(), (3, 2));
}

/// Panics when dropped.
struct Bomb(&'static str);
impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

/// An aborted future whose `Drop` panics: the panic is reported (here as
/// a warning, so the run goes on), and the handle still yields `Cancelled`.
#[test]
fn a_future_that_panics_while_aborted_still_leaves_its_handle_a_result() {
    let outcome = Sim::builder()
        .seed(1)
        .unobserved_panics(Severity::Warn)
        .build()
        .run(async {
            let h = spawn(async {
                let _b = Bomb("the cleanup failed");
                std::future::pending::<u32>().await
            });
            yield_now().await;
            h.abort();
            h.await
        });
    assert_eq!(outcome.warnings().len(), 1, "{:?}", outcome.warnings());
    let warning = outcome.warnings()[0].to_string();
    assert!(warning.contains("the cleanup failed"), "{warning}");
    assert!(outcome.into_result().unwrap().unwrap_err().is_cancelled());
}

/// A future that returns its value and then panics as it is dropped: the
/// task ended in that panic, and its handle says so.
#[test]
fn a_future_that_panics_when_dropped_after_its_value_is_a_panicked_task() {
    struct ReadyThenBomb;
    impl Future for ReadyThenBomb {
        type Output = u32;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
            Poll::Ready(5)
        }
    }
    impl Drop for ReadyThenBomb {
        fn drop(&mut self) {
            panic!("dropped after its value");
        }
    }
    let outcome = Sim::new(1).run(async { spawn(ReadyThenBomb).await.unwrap_err() });
    let err = outcome.into_result().unwrap();
    assert_eq!(err.panic_message(), Some("dropped after its value"));
}
