//! Many runs on one thread, each leaving state behind (a stashed waker,
//! thread-locals, trace lines): no state of one run may reach another, and
//! every run's verdict must be its own.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

use lockstep::prelude::*;

thread_local! {
    static STASH: RefCell<Option<Waker>> = const { RefCell::new(None) };
    static RUNS: Cell<u64> = const { Cell::new(0) };
}

/// One small program: wakes the waker the previous run stashed (stale),
/// logs, stashes its own waker, yields, and fails on purpose when asked.
async fn program(i: u64, fail: bool) {
    if let Some(w) = STASH.with(|s| s.borrow_mut().take()) {
        w.wake();
    }
    RUNS.with(|r| r.set(r.get() + 1));
    lockstep::trace!("run {i}");
    poll_fn(|cx| {
        STASH.with(|s| *s.borrow_mut() = Some(cx.waker().clone()));
        Poll::Ready(())
    })
    .await;
    yield_now().await;
    if fail {
        panic!("planned failure of run {i}");
    }
}

fn runs(n: u64) {
    RUNS.with(|r| r.set(0));
    let sim = Sim::builder().verbosity(Verbosity::Off).build();
    for i in 0..n {
        let fail = i % 997 == 996;
        let outcome = sim.to_builder().seed(i).build().run(program(i, fail));
        match outcome.failure() {
            None => assert!(!fail, "run {i} should have failed"),
            Some(Failure::Panic(p)) if fail => {
                assert_eq!(p.message, format!("planned failure of run {i}"))
            }
            Some(f) => panic!("run {i} failed: {f}"),
        }
        assert!(
            outcome.warnings().is_empty(),
            "run {i}: {:?}",
            outcome.warnings()
        );
        if i % 20_000 == 0 {
            // Another thread wakes the stashed waker whenever it runs,
            // racing the later runs of this thread: never theirs to see.
            if let Some(w) = STASH.with(|s| s.borrow_mut().take()) {
                std::thread::spawn(move || w.wake());
            }
        }
    }
    assert_eq!(RUNS.with(Cell::get), n);
    // The last stash, woken after every run ended.
    if let Some(w) = STASH.with(|s| s.borrow_mut().take()) {
        w.wake();
    }
}

#[test]
fn a_stale_wake_from_an_ended_run_never_fails_a_later_run() {
    // The 16-bit run tags of old wrapped after 65,536 runs: run 65,536 then
    // took run 0's stale wake for its own.
    runs(70_000);
}

#[test]
fn two_hundred_thousand_runs_on_one_thread_each_get_their_own_verdict() {
    runs(200_000);
}

/// A `JoinHandle` kept from an ended run speaks for that run's task only:
/// in a later run, whose tasks have the same ids and table slots, aborting
/// it cancels nothing and dropping it reports nothing.
#[test]
fn a_handle_from_an_ended_run_touches_nothing_in_a_later_run() {
    let (stale_ok, stale_err) = Sim::builder()
        .seed(1)
        .unobserved_errors(Severity::Ignore)
        .build()
        .run(async {
            let ok = spawn(async { 1u32 });
            let err = spawn(async { Err::<u32, String>("old".into()) });
            while !(ok.is_finished() && err.is_finished()) {
                yield_now().await;
            }
            (ok, err)
        })
        .into_result()
        .unwrap();
    let outcome = Sim::new(2).run(async move {
        // The same ids, in the same slots, in this run.
        let worker = spawn(async {
            sleep(Duration::from_secs(1)).await;
            2u32
        });
        let failing = spawn(async { Err::<u32, String>("new".into()) });
        while !failing.is_finished() {
            yield_now().await;
        }
        assert_eq!((worker.id(), failing.id()), (stale_ok.id(), stale_err.id()));
        stale_ok.abort();
        // Its task returned `Err` nobody took, in the run before.
        drop(stale_err);
        (worker.await, failing.await)
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        (Ok(2), Ok(Err("new".to_string())))
    );
}
