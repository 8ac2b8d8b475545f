//! lockstep against its peers on the same workloads: tokio's current-thread
//! runtime with a paused clock (the reference), madsim, shuttle, and
//! futures' `LocalPool` (the floor: an executor with no simulation at all).
//!
//! Run everything (this table, and the network one in `net.rs`) with
//! `benches/run.sh`; this bench alone with
//! `cargo bench -p lockstep-benches --bench runtime` (madsim rows need
//! `RUSTFLAGS="--cfg madsim"`, which the script sets).
//!
//! Every measurement runs in a fresh child process (this binary again, with
//! `--child WORKLOAD RUNTIME`), so that each reports its own peak RSS and no
//! run inherits another's heap. W1-W6 are timed by the thread's on-CPU time
//! (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`), which other processes' load disturbs far
//! less than wall time; W6b (test runners that use a thread per seed) by
//! wall time.
//! Rounds alternate runtimes; the median per runtime is reported as a ratio
//! to tokio (below 1.0: faster than tokio). The machine is shared and
//! noisy: compare ratios from one run, not absolute times.
//!
//! Other flags: `--rounds N`, `--only W2,W4` (workloads), `--runtimes a,b`.
//! For instruction counts, run one child under callgrind:
//! `valgrind --tool=callgrind target/release/deps/runtime-* --child W1 lockstep-off`.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::process::Command;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lockstep::trace::TraceMode;
use lockstep::{Sim, Verbosity};

const DEFAULT_ROUNDS: usize = 7;

// ----- workload sizes ---------------------------------------------------

const W1_TASKS: u64 = 100_000;
const W2_TASKS: u64 = 1_000;
const W2_YIELDS: u64 = 1_000;
const W3_TASKS: u64 = 10_000;
const W3_SLEEPS: u64 = 10;
const W4_ROUND_TRIPS: u64 = 500_000;
const W5_TASKS: u64 = 100;
const W5_ITERS: u64 = 1_000;
const W6_SIMS: u64 = 20_000;
const W6_TASKS: u64 = 10;
const IDLE_TASKS: u64 = 100_000;

/// A seeded sleep length in ms for task `i`, sleep `j` (same on every
/// runtime).
fn sleep_ms(i: u64, j: u64) -> u64 {
    (i.wrapping_mul(7919) ^ j.wrapping_mul(104_729)) % 100 + 1
}

/// A yield that works on any executor: wake self, return `Pending` once.
struct Yield(bool);

impl Future for Yield {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn any_yield() -> Yield {
    Yield(false)
}

// ----- the workloads, once per API shape ----------------------------------

/// Writes the five workloads against a tokio-like API: `$spawn`, `$yield`,
/// `$sleep`, and tokio's runtime-agnostic `Mutex` and `mpsc`.
macro_rules! workloads {
    ($modname:ident, spawn = $spawn:path, yield_now = $yield:path, sleep = $sleep:path) => {
        #[allow(dead_code)]
        mod $modname {
            use super::*;

            pub(crate) async fn w1() -> u64 {
                let hs: Vec<_> = (0..W1_TASKS).map(|i| $spawn(async move { i })).collect();
                let mut sum = 0;
                for h in hs {
                    sum += h.await.unwrap();
                }
                sum
            }

            pub(crate) async fn w2() -> u64 {
                let hs: Vec<_> = (0..W2_TASKS)
                    .map(|_| {
                        $spawn(async {
                            for _ in 0..W2_YIELDS {
                                $yield().await;
                            }
                            W2_YIELDS
                        })
                    })
                    .collect();
                let mut n = 0;
                for h in hs {
                    n += h.await.unwrap();
                }
                n
            }

            pub(crate) async fn w3() -> u64 {
                let hs: Vec<_> = (0..W3_TASKS)
                    .map(|i| {
                        $spawn(async move {
                            for j in 0..W3_SLEEPS {
                                $sleep(Duration::from_millis(sleep_ms(i, j))).await;
                            }
                            i
                        })
                    })
                    .collect();
                let mut sum = 0;
                for h in hs {
                    sum += h.await.unwrap();
                }
                sum
            }

            pub(crate) async fn w4() -> u64 {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1);
                let (back_tx, mut back_rx) = tokio::sync::mpsc::channel::<u64>(1);
                let echo = $spawn(async move {
                    while let Some(v) = rx.recv().await {
                        if back_tx.send(v).await.is_err() {
                            break;
                        }
                    }
                    0u64
                });
                let mut sum = 0;
                for i in 0..W4_ROUND_TRIPS {
                    tx.send(i).await.unwrap();
                    sum += back_rx.recv().await.unwrap();
                }
                drop(tx);
                echo.await.unwrap();
                sum
            }

            #[allow(clippy::let_and_return)] // the guard must drop before `m`
            pub(crate) async fn w5() -> u64 {
                let m = std::sync::Arc::new(tokio::sync::Mutex::new(0u64));
                let hs: Vec<_> = (0..W5_TASKS)
                    .map(|_| {
                        let m = m.clone();
                        $spawn(async move {
                            for _ in 0..W5_ITERS {
                                let mut g = m.lock().await;
                                *g += 1;
                                $yield().await;
                                drop(g);
                            }
                            0u64
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
                let v = *m.lock().await;
                v
            }

            /// One small simulation: 10 tasks that yield once.
            pub(crate) async fn w6() -> u64 {
                let hs: Vec<_> = (0..W6_TASKS)
                    .map(|i| {
                        $spawn(async move {
                            $yield().await;
                            i
                        })
                    })
                    .collect();
                let mut sum = 0;
                for h in hs {
                    sum += h.await.unwrap();
                }
                sum
            }

            /// 100k tasks parked on a timer; returns RSS growth per task
            /// (bytes) measured while they are parked.
            pub(crate) async fn idle() -> u64 {
                let before = rss_kb();
                let hs: Vec<_> = (0..IDLE_TASKS)
                    .map(|_| {
                        $spawn(async {
                            $sleep(Duration::from_secs(3600)).await;
                            0u64
                        })
                    })
                    .collect();
                $sleep(Duration::from_millis(1)).await;
                let after = rss_kb();
                for h in hs {
                    h.await.unwrap();
                }
                (after.saturating_sub(before)) * 1024 / IDLE_TASKS
            }
        }
    };
}

/// Lockstep's own sync primitives for W4/W5 (they trace), the rest as above.
mod ls {
    use super::*;
    use lockstep::sync::{Mutex, mpsc};

    workloads!(
        generic,
        spawn = lockstep::spawn,
        yield_now = lockstep::task::yield_now,
        sleep = lockstep::time::sleep
    );
    pub(crate) use generic::{idle, w1, w2, w3, w6};

    pub(crate) async fn w4() -> u64 {
        let (tx, mut rx) = mpsc::channel::<u64>(1);
        let (back_tx, mut back_rx) = mpsc::channel::<u64>(1);
        let echo = lockstep::spawn(async move {
            while let Some(v) = rx.recv().await {
                if back_tx.send(v).await.is_err() {
                    break;
                }
            }
        });
        let mut sum = 0;
        for i in 0..W4_ROUND_TRIPS {
            tx.send(i).await.unwrap();
            sum += back_rx.recv().await.unwrap();
        }
        drop(tx);
        echo.await.unwrap();
        sum
    }

    #[allow(clippy::let_and_return)] // the guard must drop before `m`
    pub(crate) async fn w5() -> u64 {
        let m = Rc::new(Mutex::new(0u64));
        let hs: Vec<_> = (0..W5_TASKS)
            .map(|_| {
                let m = m.clone();
                lockstep::spawn(async move {
                    for _ in 0..W5_ITERS {
                        let mut g = m.lock().await;
                        *g += 1;
                        lockstep::task::yield_now().await;
                        drop(g);
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
        let v = *m.lock().await;
        v
    }
}

workloads!(
    tk,
    spawn = tokio::spawn,
    yield_now = tokio::task::yield_now,
    sleep = tokio::time::sleep
);

#[cfg(madsim)]
workloads!(
    ms,
    spawn = madsim::task::spawn,
    yield_now = madsim::task::yield_now,
    sleep = madsim::time::sleep
);

/// `LocalPool`: spawn with a remote handle; no timers (W3 is n/a).
mod lp {
    use super::*;
    use futures::task::LocalSpawnExt;

    thread_local! {
        static SPAWNER: std::cell::RefCell<Option<futures::executor::LocalSpawner>> =
            const { std::cell::RefCell::new(None) };
    }

    pub(crate) struct Handle<T>(futures::future::RemoteHandle<T>);

    impl<T: 'static> Future for Handle<T> {
        type Output = Result<T, ()>;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            Pin::new(&mut self.0).poll(cx).map(Ok)
        }
    }

    pub(crate) fn spawn<F: Future + 'static>(f: F) -> Handle<F::Output> {
        SPAWNER.with(|s| {
            Handle(
                s.borrow()
                    .as_ref()
                    .expect("inside run")
                    .spawn_local_with_handle(f)
                    .expect("the pool is alive"),
            )
        })
    }

    async fn no_sleep(_: Duration) {
        unreachable!("LocalPool has no timers")
    }

    workloads!(
        generic,
        spawn = spawn,
        yield_now = any_yield,
        sleep = no_sleep
    );
    pub(crate) use generic::{w1, w2, w4, w5, w6};

    pub(crate) fn run<F: Future<Output = u64> + 'static>(f: F) -> u64 {
        let mut pool = futures::executor::LocalPool::new();
        SPAWNER.with(|s| *s.borrow_mut() = Some(pool.spawner()));
        let h = spawn(f);
        let v = pool.run_until(h).unwrap();
        SPAWNER.with(|s| *s.borrow_mut() = None);
        v
    }
}

/// shuttle: its futures executor under one random schedule; no timers.
mod sh {
    use super::*;

    pub(crate) fn spawn<F>(f: F) -> shuttle::future::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        shuttle::future::spawn(f)
    }

    async fn no_sleep(_: Duration) {
        unreachable!("shuttle has no timers")
    }

    workloads!(
        generic,
        spawn = spawn,
        yield_now = any_yield,
        sleep = no_sleep
    );
    pub(crate) use generic::{w1, w2, w4, w5, w6};

    pub(crate) fn run<F: Future<Output = u64> + Send + 'static>(f: fn() -> F) -> u64 {
        let out = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let o = out.clone();
        let mut config = shuttle::Config::new();
        config.max_steps = shuttle::MaxSteps::None;
        let runner = shuttle::Runner::new(shuttle::scheduler::RandomScheduler::new(1), config);
        runner.run(move || {
            let v = shuttle::future::block_on(f());
            o.store(v, std::sync::atomic::Ordering::Relaxed);
        });
        out.load(std::sync::atomic::Ordering::Relaxed)
    }
}

// ----- runners --------------------------------------------------------------

fn lockstep_sim(verbosity: Verbosity, mode: TraceMode) -> Sim {
    let fifo = std::env::var_os("BENCH_FIFO").is_some();
    Sim::builder()
        .seed(1)
        .policy(if fifo {
            lockstep::Policy::Fifo
        } else {
            lockstep::Policy::Random
        })
        .verbosity(verbosity)
        .trace_mode(mode)
        .no_time_limit()
        .no_step_limit()
        // W4 passes a million messages at one instant of virtual time,
        // which the livelock detector would count as no progress.
        .livelock_steps(u64::MAX)
        .watchdog(None)
        .build()
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Peak resident set (VmHWM) of this process, in KiB.
fn peak_rss_kb() -> u64 {
    status_kb("VmHWM:")
}

/// The calling thread's on-CPU time in nanoseconds, exact to the
/// nanosecond: `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` brings the
/// scheduler's account up to date before it answers.
/// (`/proc/thread-self/schedstat`, used before, is only brought up to date
/// at the scheduler's tick, 4 ms on this machine: a 6 ms run read as 4 or
/// 8 ms.)
fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the
    // call, and `CLOCK_THREAD_CPUTIME_ID` is a clock every Linux has; the
    // call writes nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn rss_kb() -> u64 {
    status_kb("VmRSS:")
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

const RUNTIMES: &[&str] = &[
    "tokio",
    "lockstep-off",
    "lockstep-summary",
    "lockstep-full",
    "madsim",
    "shuttle",
    "localpool",
];

const WORKLOADS: &[(&str, &str)] = &[
    ("W1", "spawn + join 100k tasks"),
    ("W2", "1,000 tasks x 1,000 yields"),
    ("W3", "10,000 tasks x 10 seeded sleeps"),
    ("W4", "1M messages ping-pong, capacity-1 mpsc"),
    ("W5", "100 tasks x 1,000 lock/yield/unlock"),
    ("W6", "fresh 10-task simulations (20k)"),
    ("W6b", "W6 through the test harness (20k seeds)"),
    ("IDLE", "100k tasks parked on a timer (bytes/task)"),
    ("TRACE", "full-trace bytes per event (W2 / W4)"),
    (
        "LONG",
        "peak RSS of a 2M-step run, then of a 16M-step one (default ring)",
    ),
];

/// `LONG`: a run of about `steps` steps (two tasks sleeping a nanosecond
/// at a time) in the builder's default trace mode, the ring.
fn long_run(verbosity: Verbosity, steps: u64) {
    let o = lockstep_sim(verbosity, TraceMode::default()).run(async move {
        let sleeper = || async move {
            for _ in 0..steps / 2 {
                lockstep::time::sleep(Duration::from_nanos(1)).await;
            }
        };
        let other = lockstep::spawn(sleeper());
        sleeper().await;
        other.await.unwrap();
    });
    assert!(o.stats().steps >= steps);
}

/// Runs one workload on one runtime in this process. Returns the value it
/// computed (checked across runtimes), or `None` if the pair is n/a.
fn run_one(workload: &str, runtime: &str) -> Option<u64> {
    let level = match runtime {
        "lockstep-off" => Some(Verbosity::Off),
        "lockstep-summary" => Some(Verbosity::Summary),
        "lockstep-full" => Some(Verbosity::Full),
        _ => None,
    };
    if let Some(v) = level {
        let sim = lockstep_sim(v, TraceMode::default());
        let run = |f: Pin<Box<dyn Future<Output = u64>>>| sim.run(f).into_result().unwrap();
        return Some(match workload {
            "W1" => run(Box::pin(ls::w1())),
            "W2" => run(Box::pin(ls::w2())),
            "W3" => run(Box::pin(ls::w3())),
            "W4" => run(Box::pin(ls::w4())),
            "W5" => run(Box::pin(ls::w5())),
            "W6" => (0..W6_SIMS)
                .map(|seed| {
                    Sim::builder()
                        .seed(seed)
                        .verbosity(v)
                        .build()
                        .run(ls::w6())
                        .into_result()
                        .unwrap()
                })
                .sum(),
            "W6b" => {
                w6b(v);
                W6_SIMS
            }
            "IDLE" => run(Box::pin(ls::idle())),
            // Peak RSS after the short run; the child's peak is the long's.
            "LONG" => {
                long_run(v, 2_000_000);
                let short = peak_rss_kb();
                long_run(v, 16_000_000);
                short
            }
            "TRACE" if v == Verbosity::Full => {
                let per = |f: Pin<Box<dyn Future<Output = u64>>>| {
                    let o = lockstep_sim(v, TraceMode::Keep).run(f);
                    let t = o.trace();
                    (t.memory_bytes() as f64 / t.len() as f64 * 100.0) as u64
                };
                let (a, b) = (per(Box::pin(ls::w2())), per(Box::pin(ls::w4())));
                println!(
                    "bytes/event W2 {:.2} W4 {:.2}",
                    a as f64 / 100.0,
                    b as f64 / 100.0
                );
                a.max(b)
            }
            _ => return None,
        });
    }
    match runtime {
        "tokio" => Some(match workload {
            "W1" => tokio_rt().block_on(tk::w1()),
            "W2" => tokio_rt().block_on(tk::w2()),
            "W3" => tokio_rt().block_on(tk::w3()),
            "W4" => tokio_rt().block_on(tk::w4()),
            "W5" => tokio_rt().block_on(tk::w5()),
            "W6" => (0..W6_SIMS).map(|_| tokio_rt().block_on(tk::w6())).sum(),
            "IDLE" => tokio_rt().block_on(tk::idle()),
            _ => return None,
        }),
        "localpool" => Some(match workload {
            "W1" => lp::run(lp::w1()),
            "W2" => lp::run(lp::w2()),
            "W4" => lp::run(lp::w4()),
            "W5" => lp::run(lp::w5()),
            "W6" => (0..W6_SIMS).map(|_| lp::run(lp::w6())).sum(),
            _ => return None,
        }),
        "shuttle" => Some(match workload {
            "W1" => sh::run(sh::w1),
            "W2" => sh::run(sh::w2),
            "W4" => sh::run(sh::w4),
            "W5" => sh::run(sh::w5),
            "W6" => (0..W6_SIMS / 10).map(|_| sh::run(sh::w6)).sum::<u64>() * 10,
            _ => return None,
        }),
        "madsim" => madsim_one(workload),
        _ => None,
    }
}

#[cfg(madsim)]
fn madsim_one(workload: &str) -> Option<u64> {
    let rt = || madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
    Some(match workload {
        "W1" => rt().block_on(ms::w1()),
        "W2" => rt().block_on(ms::w2()),
        "W3" => rt().block_on(ms::w3()),
        "W4" => rt().block_on(ms::w4()),
        "W5" => rt().block_on(ms::w5()),
        "W6" => (0..W6_SIMS)
            .map(|seed| {
                madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default())
                    .block_on(ms::w6())
            })
            .sum(),
        "W6b" => {
            // What `#[madsim::test]` runs: a builder from the environment,
            // one fresh runtime per seed.
            let mut b = madsim::runtime::Builder::from_env();
            b.count = W6_SIMS;
            b.jobs = 1;
            b.run(ms::w6);
            W6_SIMS
        }
        "IDLE" => rt().block_on(ms::idle()),
        _ => return None,
    })
}

#[cfg(not(madsim))]
fn madsim_one(_: &str) -> Option<u64> {
    None
}

/// W6 through `#[sim_test]`'s runner: what the attribute expands to.
fn w6b(v: Verbosity) {
    let meta = lockstep::__private::TestMeta {
        name: "w6b",
        module_path: module_path!(),
        file: file!(),
        package: env!("CARGO_PKG_NAME"),
        crate_name: env!("CARGO_CRATE_NAME"),
        ignored: false,
    };
    let _ = v; // the harness explores untraced, as `#[sim_test]` does
    lockstep::__private::SimTest::new(meta)
        .seeds(W6_SIMS)
        .run(|| async {
            black_box(ls::w6().await);
        });
}

// ----- the parent: children, medians, the table -----------------------------

struct Measure {
    wall: Duration,
    rss_kb: u64,
    value: u64,
}

fn child(workload: &str, runtime: &str) -> Option<Measure> {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--child", workload, runtime])
        .env_remove("LOCKSTEP_SEED")
        .env_remove("LOCKSTEP_SEEDS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!(
            "{workload} on {runtime} failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let last = text.lines().last()?;
    if last == "n/a" {
        return None;
    }
    let mut it = last.split_whitespace();
    let wall = Duration::from_nanos(it.next()?.parse().ok()?);
    let rss_kb = it.next()?.parse().ok()?;
    let value = it.next()?.parse().ok()?;
    Some(Measure {
        wall,
        rss_kb,
        value,
    })
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let (w, r) = (&args[i + 1], &args[i + 2]);
        let (start, cpu_start) = (Instant::now(), cpu_ns());
        let value = black_box(run_one(w, r));
        // W1-W6 run on this thread: its on-CPU time is what the machine's
        // other load disturbs least. W6b runs seeds on threads: wall time.
        let took = match w.as_str() {
            "W6b" | "IDLE" | "TRACE" | "LONG" => start.elapsed().as_nanos() as u64,
            _ => cpu_ns() - cpu_start,
        };
        match value {
            Some(v) => println!("{} {} {}", took, peak_rss_kb(), v),
            None => println!("n/a"),
        }
        return;
    }
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    // `cargo test --benches` runs this with `--test`: one quick round.
    let quick = args.iter().any(|a| a == "--test");
    let rounds: usize = flag("--rounds")
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { 1 } else { DEFAULT_ROUNDS });
    let only: Option<Vec<String>> =
        flag("--only").map(|s| s.split(',').map(str::to_string).collect());
    let runtimes: Vec<&str> = match flag("--runtimes") {
        Some(list) => RUNTIMES
            .iter()
            .copied()
            .filter(|r| list.split(',').any(|x| x == *r))
            .collect(),
        None => RUNTIMES.to_vec(),
    };
    println!(
        "median of {rounds} rounds, each run in a fresh process; W1-W6: on-CPU time (W6b: wall time); ratio to tokio's (lower is faster)\n"
    );
    print!("| workload |");
    for r in &runtimes {
        print!(" {r} |");
    }
    println!();
    print!("|---|");
    for _ in &runtimes {
        print!("---|");
    }
    println!();
    for (w, desc) in WORKLOADS {
        if only.as_ref().is_some_and(|o| !o.iter().any(|x| x == w)) {
            continue;
        }
        let mut per: Vec<Vec<Measure>> = (0..runtimes.len()).map(|_| Vec::new()).collect();
        for _ in 0..rounds {
            for (i, r) in runtimes.iter().enumerate() {
                if let Some(m) = child(w, r) {
                    per[i].push(m);
                }
            }
        }
        let values: Vec<u64> = per
            .iter()
            .filter_map(|m| m.first())
            .map(|m| m.value)
            .collect();
        let wall = |ms: &[Measure]| median(ms.iter().map(|m| m.wall).collect());
        let tokio = runtimes
            .iter()
            .position(|r| *r == "tokio")
            .filter(|&i| !per[i].is_empty())
            .map(|i| wall(&per[i]));
        print!("| {w} {desc} |");
        for ms in &per {
            if ms.is_empty() {
                print!(" n/a |");
                continue;
            }
            let value = median(ms.iter().map(|m| m.value).collect());
            let rss = median(ms.iter().map(|m| m.rss_kb).collect()) / 1024;
            match *w {
                "IDLE" => print!(" {value} B |"),
                "TRACE" => print!(" {:.2} B |", value as f64 / 100.0),
                "LONG" => print!(" {} → {rss} MiB |", value / 1024),
                "W6" | "W6b" => {
                    let per_s = W6_SIMS as f64 / wall(ms).as_secs_f64();
                    print!(" {:.0}k/s, {rss} MiB |", per_s / 1e3);
                }
                _ => {
                    let t = wall(ms);
                    match tokio {
                        Some(tk) => print!(
                            " {:.2}x ({:.1} ms, {rss} MiB) |",
                            t.as_secs_f64() / tk.as_secs_f64(),
                            t.as_secs_f64() * 1e3
                        ),
                        None => print!(" {:.1} ms, {rss} MiB |", t.as_secs_f64() * 1e3),
                    }
                }
            }
        }
        println!();
        if !matches!(*w, "IDLE" | "TRACE" | "LONG" | "W6" | "W6b")
            && values.windows(2).any(|p| p[0] != p[1])
        {
            eprintln!("{w}: runtimes computed different results: {values:?}");
        }
    }
}
