//! Seeds to the first failure: lockstep's policies against shuttle's
//! `check_random` and `check_pct`, on the bug corpus.
//!
//! Run: `cargo bench -p lockstep-benches --bench explore`.
//!
//! Each corpus program is written once per runtime with the same logic:
//! the lockstep version is the one `tests/corpus.rs` checks
//! (`tests/corpus/programs.rs`), the shuttle version below mirrors it
//! (`Rc`/`Cell` become `Arc`/std atomics, which are not scheduling points in
//! shuttle, so both runtimes switch tasks at the same awaits and locks).
//! Programs that need virtual time (timeouts, retries, late polls, poll
//! cost and host speeds) have no shuttle version.
//!
//! For every program and policy, 20 independent sweeps each run seeds (or
//! shuttle iterations) until the first failure, at most `CAP`; the table
//! shows the median and worst count, and schedules per second (wall time
//! over at least 2,000 runs, more sweeps than the 20 counted if those are
//! short; shuttle's includes building a runner per sweep; noisy on a
//! shared machine: compare side by side).

#[path = "../tests/corpus/programs.rs"]
mod programs;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use lockstep::explore::find_failure;
use lockstep::{Policy, Sim};

const SWEEPS: u64 = 20;
const CAP: u64 = 2_000;
/// Schedules per second are timed over at least this many runs (more
/// sweeps than the 20 counted, when those are short).
const TIMED_RUNS: u64 = 2_000;

/// Runs until the first failure per sweep: (seeds, failed).
struct Row {
    counts: Vec<u64>,
    runs: u64,
    secs: f64,
}

impl Row {
    fn show(&self, program: &str, policy: &str) {
        let mut c = self.counts.clone();
        c.sort_unstable();
        let found = c.iter().filter(|&&n| n <= CAP).count();
        let median = c[c.len() / 2];
        let worst = *c.last().unwrap();
        let fmt = |n: u64| {
            if n > CAP {
                format!(">{CAP}")
            } else {
                n.to_string()
            }
        };
        println!(
            "{program:<24} {policy:<16} {:>8} {:>8} {:>6}/{SWEEPS} {:>12.0}",
            fmt(median),
            fmt(worst),
            found,
            self.runs as f64 / self.secs
        );
    }
}

fn lockstep_row(program: &programs::Program, policy: Policy) -> Row {
    let start = Instant::now();
    let mut counts = Vec::new();
    let mut runs = 0;
    let mut sweep = 0;
    while sweep < SWEEPS || runs < TIMED_RUNS {
        let base = 1 + sweep * 1_000_003;
        let sim = Sim::builder().policy(policy).build();
        let found = find_failure(&sim, base..base + CAP, |sim| (program.run)(sim, false));
        runs += found.runs;
        if sweep < SWEEPS {
            counts.push(match found.failure {
                Some(_) => found.runs,
                None => CAP + 1,
            });
        }
        sweep += 1;
    }
    Row {
        counts,
        runs,
        secs: start.elapsed().as_secs_f64(),
    }
}

#[derive(Clone, Copy)]
enum Shuttle {
    Random,
    Pct(usize),
}

fn shuttle_row(test: fn(), which: Shuttle) -> Row {
    shuttle_row_n(test, which, SWEEPS)
}

fn shuttle_row_n(test: fn(), which: Shuttle, sweeps: u64) -> Row {
    use shuttle::scheduler::{PctScheduler, RandomScheduler};
    use shuttle::{Config, FailurePersistence, Runner};
    let start = Instant::now();
    let mut counts = Vec::new();
    let mut runs = 0;
    let mut sweep = 0;
    while sweep < sweeps || (sweeps > 1 && runs < TIMED_RUNS) {
        let iterations = Arc::new(AtomicUsize::new(0));
        let counter = iterations.clone();
        let body = move || {
            counter.fetch_add(1, Ordering::Relaxed);
            test();
        };
        let mut config = Config::new();
        config.failure_persistence = FailurePersistence::None;
        config.silence_warnings = true;
        let cap = CAP as usize;
        let result = catch_unwind(AssertUnwindSafe(|| match which {
            Shuttle::Random => {
                Runner::new(RandomScheduler::new_from_seed(sweep + 1, cap), config).run(body)
            }
            Shuttle::Pct(d) => {
                Runner::new(PctScheduler::new_from_seed(sweep + 1, d, cap), config).run(body)
            }
        }));
        let failed = result.is_err();
        if let (Err(payload), true) = (&result, std::env::var_os("EXPLORE_BENCH_DEBUG").is_some()) {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            eprintln!("shuttle failure: {msg}");
        }
        let n = iterations.load(Ordering::Relaxed) as u64;
        runs += n;
        if sweep < sweeps {
            counts.push(if failed { n } else { CAP + 1 });
        }
        sweep += 1;
    }
    Row {
        counts,
        runs,
        secs: start.elapsed().as_secs_f64(),
    }
}

/// The shuttle twins of the corpus's buggy programs.
mod twins {
    use shuttle::future::{block_on, spawn_local as spawn, yield_now};
    use shuttle::sync::Mutex;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};

    fn lost_update(workers: usize) {
        block_on(async move {
            let n = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (0..workers)
                .map(|_| {
                    let n = n.clone();
                    spawn(async move {
                        yield_now().await;
                        let v = n.load(SeqCst);
                        yield_now().await;
                        n.store(v + 1, SeqCst);
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(n.load(SeqCst), workers, "lost update");
        })
    }

    pub fn lost_update_2() {
        lost_update(2)
    }

    pub fn lost_update_10() {
        lost_update(10)
    }

    pub fn lock_order() {
        block_on(async {
            let a = Arc::new(Mutex::new(0));
            let b = Arc::new(Mutex::new(0));
            let one = {
                let (a, b) = (a.clone(), b.clone());
                spawn(async move {
                    let _x = a.lock().unwrap();
                    yield_now().await;
                    let _y = b.lock().unwrap();
                })
            };
            let two = spawn(async move {
                let _x = b.lock().unwrap();
                yield_now().await;
                let _y = a.lock().unwrap();
            });
            one.await.unwrap();
            two.await.unwrap();
        })
    }

    pub fn philosophers() {
        block_on(async {
            const N: usize = 5;
            let forks: Arc<Vec<Mutex<()>>> = Arc::new((0..N).map(|_| Mutex::new(())).collect());
            let tasks: Vec<_> = (0..N)
                .map(|i| {
                    let forks = forks.clone();
                    spawn(async move {
                        let _f = forks[i].lock().unwrap();
                        yield_now().await;
                        let _s = forks[(i + 1) % N].lock().unwrap();
                        yield_now().await;
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
    }

    pub fn check_then_act() {
        block_on(async {
            let registered = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let registered = registered.clone();
                    spawn(async move {
                        yield_now().await;
                        let absent = registered.load(SeqCst) == 0;
                        yield_now().await;
                        if absent {
                            registered.fetch_add(1, SeqCst);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(registered.load(SeqCst), 1, "two leaders registered");
        })
    }

    pub fn semaphore() {
        block_on(async {
            let permits = Arc::new(AtomicU32::new(1));
            let inside = Arc::new(AtomicU32::new(0));
            let tasks: Vec<_> = (0..3)
                .map(|_| {
                    let (permits, inside) = (permits.clone(), inside.clone());
                    spawn(async move {
                        loop {
                            if permits.load(SeqCst) > 0 {
                                yield_now().await;
                                let p = permits.load(SeqCst);
                                permits.store(p.saturating_sub(1), SeqCst);
                                break;
                            }
                            // lockstep sleeps 1 ms here; shuttle has no clock.
                            yield_now().await;
                        }
                        inside.fetch_add(1, SeqCst);
                        assert_eq!(inside.load(SeqCst), 1, "two tasks inside");
                        yield_now().await;
                        inside.fetch_sub(1, SeqCst);
                        permits.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
    }

    pub fn atomicity() {
        block_on(async {
            let conn = Arc::new(Mutex::new(None::<&str>));
            let open = Arc::new(AtomicBool::new(false));
            let opener = {
                let (conn, open) = (conn.clone(), open.clone());
                spawn(async move {
                    for _ in 0..2 {
                        yield_now().await;
                    }
                    *conn.lock().unwrap() = Some("db");
                    open.store(true, SeqCst);
                })
            };
            let user = {
                let (conn, open) = (conn.clone(), open.clone());
                spawn(async move {
                    for _ in 0..4 {
                        yield_now().await;
                        if !open.load(SeqCst) {
                            continue;
                        }
                        let ok = conn.lock().unwrap().is_some();
                        yield_now().await;
                        if ok {
                            assert!(conn.lock().unwrap().is_some(), "used a closed connection");
                        }
                    }
                })
            };
            let closer = spawn(async move {
                for _ in 0..6 {
                    yield_now().await;
                    if open.load(SeqCst) {
                        conn.lock().unwrap().take();
                        return;
                    }
                }
            });
            opener.await.unwrap();
            user.await.unwrap();
            closer.await.unwrap();
        })
    }
}

fn shuttle_twin(name: &str) -> Option<fn()> {
    Some(match name {
        "lost-update-2" => twins::lost_update_2,
        "lost-update-10" => twins::lost_update_10,
        "lock-order-deadlock" => twins::lock_order,
        "dining-philosophers" => twins::philosophers,
        "check-then-act" => twins::check_then_act,
        "hand-rolled-semaphore" => twins::semaphore,
        "three-event-atomicity" => twins::atomicity,
        _ => return None,
    })
}

fn main() {
    // Failing iterations panic by design: keep the output to the table.
    // lockstep's rows run first: shuttle's runner installs a process-wide
    // panic hook of its own that stays after it returns.
    std::panic::set_hook(Box::new(|_| {}));
    let mut rows: Vec<(&str, String, Row)> = Vec::new();
    for program in programs::CORPUS {
        // Warm up (first panic, lazy statics) outside the timed sweeps.
        let _ = (program.run)(&Sim::new(0), false);
        for policy in [
            Policy::Random,
            Policy::Pct { depth: 3 },
            Policy::Swarm,
            Policy::EXPLORE,
        ] {
            let name = if policy == Policy::EXPLORE {
                "lockstep mix*".to_string()
            } else {
                format!("lockstep {policy}")
            };
            rows.push((program.name, name, lockstep_row(program, policy)));
        }
    }
    for program in programs::CORPUS {
        if let Some(test) = shuttle_twin(program.name) {
            let _ = shuttle_row_n(test, Shuttle::Random, 1);
            rows.push((
                program.name,
                "shuttle random".into(),
                shuttle_row(test, Shuttle::Random),
            ));
            rows.push((
                program.name,
                "shuttle pct:3".into(),
                shuttle_row(test, Shuttle::Pct(3)),
            ));
        }
    }
    println!(
        "seeds to the first failure, {SWEEPS} sweeps each (capped at {CAP}); schedules/s over at least {TIMED_RUNS} runs"
    );
    println!(
        "{:<24} {:<16} {:>8} {:>8} {:>9} {:>12}",
        "program", "policy", "median", "worst", "found", "schedules/s"
    );
    for program in programs::CORPUS {
        for (_, policy, row) in rows.iter().filter(|(p, _, _)| *p == program.name) {
            row.show(program.name, policy);
        }
        if shuttle_twin(program.name).is_none() {
            println!("{:<24} shuttle: needs virtual time, no twin", program.name);
        }
    }
    println!("* mix is lockstep's exploration default (Policy::EXPLORE); under find_failure its");
    println!("  first run is the natural order, as shuttle's PCT's first iteration is (identity");
    println!("  priorities, no change points): that is why both find most programs in one run.");
}
