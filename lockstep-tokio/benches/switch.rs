//! What the run-time switch costs in production: lockstep-tokio's calls
//! against real tokio's, outside any simulation, on a current-thread
//! runtime. `cargo bench -p lockstep-tokio` prints ns per call and the
//! ratio; the numbers are recorded in the crate's README.

use std::hint::black_box;
use std::time::{Duration, Instant};

const ROUNDS: usize = 7;

/// The median over `ROUNDS` of the time per iteration of `f(n)`.
fn measure(n: u32, mut f: impl FnMut(u32)) -> f64 {
    let mut samples: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            f(n);
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[ROUNDS / 2]
}

fn row(name: &str, layer: f64, tokio: f64) {
    println!(
        "{name:<34} {layer:>9.1} ns {tokio:>9.1} ns   {:>5.2}x",
        layer / tokio
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{:<34} {:>12} {:>12}   ratio",
        "outside a simulation", "lockstep-tokio", "tokio"
    );

    let check = measure(10_000_000, |n| {
        for _ in 0..n {
            black_box(lockstep::in_simulation());
        }
    });
    println!("{:<34} {check:>9.2} ns", "lockstep::in_simulation()");

    row(
        "time::Instant::now()",
        measure(1_000_000, |n| {
            for _ in 0..n {
                black_box(lockstep_tokio::time::Instant::now());
            }
        }),
        measure(1_000_000, |n| {
            for _ in 0..n {
                black_box(tokio::time::Instant::now());
            }
        }),
    );

    row(
        "task::yield_now().await",
        measure(200_000, |n| {
            rt.block_on(async {
                for _ in 0..n {
                    lockstep_tokio::task::yield_now().await;
                }
            })
        }),
        measure(200_000, |n| {
            rt.block_on(async {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
            })
        }),
    );

    // A timeout around a ready future: builds the timer, polls the
    // future, never waits (a real `sleep(0)` waits for the timer wheel's
    // next millisecond, which would measure the wheel, not the layer).
    row(
        "timeout(1 h, ready).await",
        measure(200_000, |n| {
            rt.block_on(async {
                for _ in 0..n {
                    let hour = Duration::from_secs(3600);
                    let r = lockstep_tokio::time::timeout(hour, std::future::ready(1)).await;
                    black_box(r.unwrap());
                }
            })
        }),
        measure(200_000, |n| {
            rt.block_on(async {
                for _ in 0..n {
                    let hour = Duration::from_secs(3600);
                    black_box(
                        tokio::time::timeout(hour, std::future::ready(1))
                            .await
                            .unwrap(),
                    );
                }
            })
        }),
    );

    row(
        "spawn + await JoinHandle",
        measure(100_000, |n| {
            rt.block_on(async {
                for i in 0..n {
                    black_box(lockstep_tokio::spawn(async move { i }).await.unwrap());
                }
            })
        }),
        measure(100_000, |n| {
            rt.block_on(async {
                for i in 0..n {
                    black_box(tokio::spawn(async move { i }).await.unwrap());
                }
            })
        }),
    );

    row(
        "select! over two ready branches",
        measure(1_000_000, |n| {
            rt.block_on(async {
                for _ in 0..n {
                    black_box(lockstep_tokio::select! {
                        v = std::future::ready(1) => v,
                        v = std::future::ready(2) => v,
                    });
                }
            })
        }),
        measure(1_000_000, |n| {
            rt.block_on(async {
                for _ in 0..n {
                    black_box(tokio::select! {
                        v = std::future::ready(1) => v,
                        v = std::future::ready(2) => v,
                    });
                }
            })
        }),
    );
}
