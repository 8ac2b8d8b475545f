//! Same seed, same run; different seeds, different schedules.

use std::sync::atomic::{AtomicU64, Ordering};

use lockstep::check::Divergence;
use lockstep::prelude::*;

mod common;
use common::lost_update;

fn run(seed: u64, n: usize) -> Outcome<()> {
    Sim::new(seed).run(lost_update(n))
}

#[test]
fn same_seed_gives_byte_identical_traces() {
    for seed in [0u64, 1, 0x1a7, u64::MAX] {
        let a = run(seed, 3);
        let b = run(seed, 3);
        assert_eq!(a.trace().render(), b.trace().render(), "seed {seed:#x}");
        assert_eq!(a.trace().to_jsonl(), b.trace().to_jsonl());
        assert_eq!(a.determinism_hash(), b.determinism_hash());
        assert_eq!(a.stats(), b.stats());
        assert!(a.trace().len() > 10, "the trace records the run");
    }
}

#[test]
fn same_seed_on_two_threads_at_once() {
    let reference: Vec<String> = (0..40u64).map(|s| run(s, 4).trace().render()).collect();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                (0..40u64)
                    .map(|s| run(s, 4).trace().render())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), reference);
    }
}

/// A run leaves its emptied tables to the next run on its thread (task
/// slots, ready queue, PCT's tables): what carries over is capacity only.
/// Runs after larger runs, after a run that failed with a task still
/// alive, and under every policy give the traces and schedules of the
/// same runs on a fresh thread.
#[test]
fn runs_after_other_runs_on_a_thread_are_the_runs_of_a_fresh_thread() {
    let policies = [
        Policy::Random,
        Policy::Pct { depth: 3 },
        Policy::Mix,
        Policy::Fifo,
    ];
    let runs = |policies: &[Policy]| -> Vec<String> {
        let mut out = Vec::new();
        for &policy in policies {
            for seed in 0..12u64 {
                let o = Sim::builder()
                    .seed(seed)
                    .policy(policy)
                    .record_schedule(true)
                    .build()
                    .run(lost_update(3 + seed as usize % 4));
                let schedule = o.schedule().map(|s| s.to_string()).unwrap_or_default();
                out.push(format!("{}\n{schedule}", o.trace().render()));
            }
        }
        out
    };
    let fresh = std::thread::spawn(move || runs(&policies)).join().unwrap();
    let after = std::thread::spawn(move || {
        for &policy in &policies {
            let sim = Sim::builder().seed(5).policy(policy).build();
            // Larger tables than any run below.
            let _ = sim.run(lost_update(300));
            // A run that ends with a task still alive (leaked).
            let _ = sim.run(async {
                spawn(async { sleep(Duration::from_secs(1)).await });
            });
        }
        runs(&policies)
    })
    .join()
    .unwrap();
    assert_eq!(fresh.len(), after.len());
    for (i, (a, b)) in fresh.iter().zip(&after).enumerate() {
        assert_eq!(a, b, "run {i}");
    }
}

#[test]
fn different_seeds_give_different_schedules() {
    let mut hashes: Vec<u64> = (0..50u64).map(|s| run(s, 4).determinism_hash()).collect();
    hashes.sort();
    hashes.dedup();
    assert!(
        hashes.len() > 10,
        "only {} distinct schedules in 50 seeds",
        hashes.len()
    );
}

#[test]
fn lost_update_fails_for_some_seeds_and_replays() {
    for workers in [2, 3] {
        let failing: Vec<u64> = (0..200u64).filter(|&s| !run(s, workers).is_ok()).collect();
        assert!(
            !failing.is_empty() && failing.len() < 200,
            "{workers} workers: {} of 200 seeds fail; a race must fail for some seeds only",
            failing.len()
        );
        for &seed in &failing {
            let a = run(seed, workers);
            let b = run(seed, workers);
            let (fa, fb) = (a.failure().unwrap(), b.failure().unwrap());
            assert!(matches!(fa, Failure::Panic(_)), "{fa}");
            assert_eq!(fa.to_string(), fb.to_string());
            assert!(fa.to_string().contains("lost update"));
            assert!(fa.to_string().contains(&format!("seed {seed:#x}")));
            assert_eq!(a.trace().render(), b.trace().render());
        }
    }
}

#[test]
fn lost_update_with_ten_workers_fails_for_nearly_every_seed() {
    let failing = (0..200u64).filter(|&s| !run(s, 10).is_ok()).count();
    assert!(
        failing >= 190,
        "only {failing} of 200 seeds fail with 10 workers"
    );
}

#[test]
fn fifo_policy_is_seed_independent() {
    let fifo = |seed| {
        Sim::builder()
            .seed(seed)
            .policy(Policy::Fifo)
            .build()
            .run(lost_update(3))
    };
    // The same schedule for every seed: only the seed in the failure differs.
    let events = |o: &Outcome<()>| {
        o.trace()
            .events()
            .take(o.trace().len() - 1)
            .collect::<Vec<_>>()
    };
    let (a, b) = (fifo(1), fifo(2));
    assert_eq!(events(&a), events(&b));
    assert!(
        !a.is_ok(),
        "FIFO runs every read before every write: the update is lost"
    );
}

#[test]
fn check_determinism_passes_a_deterministic_program() {
    let outcome = Sim::check_determinism(0x2a, || async {
        let a = spawn(async {
            sleep(Duration::from_millis(3)).await;
            lockstep::random::range(0..100u32)
        });
        let b = spawn(async { lockstep::random::u64() });
        (a.await.unwrap(), b.await.unwrap())
    });
    assert!(outcome.is_ok(), "{:?}", outcome.failure());
}

#[test]
fn check_determinism_names_the_first_diverging_event() {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let outcome = Sim::check_determinism(7, || async {
        // Process state leaking into the run: every other run yields once
        // more. This is exactly what the check exists to catch.
        let odd = RUNS.fetch_add(1, Ordering::SeqCst) % 2 == 1;
        let t = spawn(async {});
        if odd {
            lockstep::task::yield_now().await;
        }
        t.await.unwrap();
    });
    let failure = outcome.failure().expect("the runs differ");
    let Failure::NonDeterminism(report) = failure else {
        panic!("expected non-determinism, got {failure}");
    };
    let Divergence::Diverged { event, .. } = &report.cause else {
        panic!("expected a divergence");
    };
    assert!(event.is_some(), "the traces differ, so an event is named");
    let text = failure.to_string();
    assert!(text.contains("diverged at trace event"), "{text}");
    assert!(text.contains("seed 0x7"), "{text}");
    assert!(
        text.contains("first run:") && text.contains("second run:"),
        "{text}"
    );
}

#[test]
fn check_determinism_catches_a_hidden_random_difference() {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let outcome = Sim::check_determinism(8, || async {
        // Different numbers of random draws, invisible in the trace.
        let draws = 1 + RUNS.fetch_add(1, Ordering::SeqCst) % 2;
        for _ in 0..draws {
            lockstep::random::u64();
        }
        spawn(async {}).await.unwrap();
    });
    let text = outcome.failure().expect("the hashes differ").to_string();
    assert!(text.contains("non-determinism"), "{text}");
}

#[test]
fn a_wake_from_another_thread_is_ignored_and_named_in_the_report() {
    use std::future::poll_fn;
    use std::task::Poll;

    let outcome = Sim::new(3).run(async {
        let mut woken = false;
        poll_fn(|cx| {
            if woken {
                return Poll::Ready(());
            }
            woken = true;
            let waker = cx.waker().clone();
            std::thread::Builder::new()
                .name("intruder".into())
                .spawn(move || waker.wake())
                .unwrap()
                .join()
                .unwrap();
            Poll::Pending
        })
        .await;
    });
    // The wake is not applied (that would race): the main task stays
    // blocked, and the verdict is the simulation's own, a deadlock.
    let failure = outcome.failure().expect("the main task is never woken");
    assert!(matches!(failure, Failure::Deadlock(_)), "{failure}");
    let text = failure.to_string();
    assert!(text.contains("#0 main"), "{text}");
    assert!(
        text.contains("it was woken from thread 'intruder', outside the simulation"),
        "{text}"
    );
    // And listed as a warning of the run.
    let warning = outcome.warnings()[0].to_string();
    assert!(warning.contains("thread 'intruder'"), "{warning}");
    assert!(matches!(outcome.warnings()[0], Failure::NonDeterminism(_)));
}
