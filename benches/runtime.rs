//! lockstep's executor against tokio's current-thread runtime with a paused
//! clock, on the same workloads, in one process.
//!
//! Run: `cargo bench -p lockstep-benches --bench runtime`.
//!
//! Each workload runs alternately on every runtime, several rounds; the
//! median wall time per runtime is kept and reported as a ratio to tokio
//! (below 1.0: lockstep is faster). The machine is shared and noisy, so
//! ratios measured side by side are what to compare across commits, not the
//! absolute times (printed for context only).

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use lockstep::{Policy, Sim, Verbosity};

const ROUNDS: usize = 9;

/// One workload, written once per runtime.
struct Workload {
    name: &'static str,
    lockstep: fn() -> u64,
    tokio: fn() -> u64,
}

fn lockstep_run<F: Future<Output = u64>>(policy: Policy, verbosity: Verbosity, f: F) -> u64 {
    Sim::builder()
        .seed(1)
        .policy(policy)
        .verbosity(verbosity)
        .no_time_limit()
        .no_step_limit()
        .build()
        .run(f)
        .into_result()
        .unwrap()
}

fn tokio_run<F: Future<Output = u64>>(f: F) -> u64 {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(f)
}

const TASKS: u64 = 10_000;
const YIELDS: u64 = 50_000;

thread_local! {
    static CONFIG: std::cell::Cell<(Policy, Verbosity)> =
        const { std::cell::Cell::new((Policy::Random, Verbosity::Off)) };
}

fn config() -> (Policy, Verbosity) {
    CONFIG.with(|c| c.get())
}

fn deadline_ms(i: u64) -> u64 {
    i * 7919 % 1000
}

fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "spawn-join (10k tasks)",
            lockstep: || {
                let (p, v) = config();
                lockstep_run(p, v, async {
                    let hs: Vec<_> = (0..TASKS)
                        .map(|i| lockstep::spawn(async move { i }))
                        .collect();
                    let mut sum = 0;
                    for h in hs {
                        sum += h.await.unwrap();
                    }
                    sum
                })
            },
            tokio: || {
                tokio_run(async {
                    let hs: Vec<_> = (0..TASKS).map(|i| tokio::spawn(async move { i })).collect();
                    let mut sum = 0;
                    for h in hs {
                        sum += h.await.unwrap();
                    }
                    sum
                })
            },
        },
        Workload {
            name: "yield ping-pong (2x50k)",
            lockstep: || {
                let (p, v) = config();
                lockstep_run(p, v, async {
                    let hs: Vec<_> = (0..2)
                        .map(|_| {
                            lockstep::spawn(async {
                                for _ in 0..YIELDS {
                                    lockstep::task::yield_now().await;
                                }
                                YIELDS
                            })
                        })
                        .collect();
                    let mut n = 0;
                    for h in hs {
                        n += h.await.unwrap();
                    }
                    n
                })
            },
            tokio: || {
                tokio_run(async {
                    let hs: Vec<_> = (0..2)
                        .map(|_| {
                            tokio::spawn(async {
                                for _ in 0..YIELDS {
                                    tokio::task::yield_now().await;
                                }
                                YIELDS
                            })
                        })
                        .collect();
                    let mut n = 0;
                    for h in hs {
                        n += h.await.unwrap();
                    }
                    n
                })
            },
        },
        Workload {
            name: "many timers (10k sleeps)",
            lockstep: || {
                let (p, v) = config();
                lockstep_run(p, v, async {
                    let hs: Vec<_> = (0..TASKS)
                        .map(|i| {
                            lockstep::spawn(async move {
                                lockstep::time::sleep(Duration::from_millis(deadline_ms(i))).await;
                                i
                            })
                        })
                        .collect();
                    let mut sum = 0;
                    for h in hs {
                        sum += h.await.unwrap();
                    }
                    sum
                })
            },
            tokio: || {
                tokio_run(async {
                    let hs: Vec<_> = (0..TASKS)
                        .map(|i| {
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_millis(deadline_ms(i))).await;
                                i
                            })
                        })
                        .collect();
                    let mut sum = 0;
                    for h in hs {
                        sum += h.await.unwrap();
                    }
                    sum
                })
            },
        },
        Workload {
            name: "timeouts not firing (100k)",
            lockstep: || {
                let (p, v) = config();
                lockstep_run(p, v, async {
                    let mut n = 0;
                    for _ in 0..10 * TASKS {
                        if lockstep::time::timeout(
                            Duration::from_secs(1),
                            lockstep::task::yield_now(),
                        )
                        .await
                        .is_ok()
                        {
                            n += 1;
                        }
                    }
                    n
                })
            },
            tokio: || {
                tokio_run(async {
                    let mut n = 0;
                    for _ in 0..10 * TASKS {
                        if tokio::time::timeout(Duration::from_secs(1), tokio::task::yield_now())
                            .await
                            .is_ok()
                        {
                            n += 1;
                        }
                    }
                    n
                })
            },
        },
    ]
}

fn time(f: fn() -> u64) -> (Duration, u64) {
    let start = Instant::now();
    let v = black_box(f());
    (start.elapsed(), v)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs this with `--test`: one quick round only.
    let quick = std::env::args().any(|a| a == "--test");
    let rounds = if quick { 1 } else { ROUNDS };
    let configs = [
        ("random, trace off", Policy::Random, Verbosity::Off),
        ("fifo, trace off", Policy::Fifo, Verbosity::Off),
        ("random, full trace", Policy::Random, Verbosity::Full),
    ];
    println!(
        "lockstep / tokio (current-thread, paused clock): median of {rounds} rounds; < 1.0 means lockstep is faster\n"
    );
    print!("{:<28} {:>10}", "workload", "tokio");
    for (name, _, _) in &configs {
        print!(" {:>24}", format!("lockstep {name}"));
    }
    println!();
    for w in workloads() {
        let mut tokio_times = Vec::new();
        let mut ls_times: Vec<Vec<Duration>> = vec![Vec::new(); configs.len()];
        for _ in 0..rounds {
            let (t, tv) = time(w.tokio);
            tokio_times.push(t);
            for (i, (_, p, v)) in configs.iter().enumerate() {
                CONFIG.with(|c| c.set((*p, *v)));
                let (t, lv) = time(w.lockstep);
                assert_eq!(lv, tv, "{}: both runtimes compute the same result", w.name);
                ls_times[i].push(t);
            }
        }
        let tokio_med = median(tokio_times);
        print!("{:<28} {:>8.2}ms", w.name, tokio_med.as_secs_f64() * 1e3);
        for times in ls_times {
            let m = median(times);
            print!(
                " {:>13.2}ms ({:>5.2}x)",
                m.as_secs_f64() * 1e3,
                m.as_secs_f64() / tokio_med.as_secs_f64()
            );
        }
        println!();
    }
}
