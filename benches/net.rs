//! Simulated network throughput: lockstep against turmoil 0.7 on the same
//! echo workloads, in one process.
//!
//! Run: `cargo bench -p lockstep-benches --bench net`.
//!
//! Each workload has `CLIENTS` client hosts doing `ROUND_TRIPS` request /
//! reply exchanges of 64 bytes with one echo server host, over streams and
//! over datagrams, with a constant 1 ms link latency on both simulators
//! (turmoil: min = max message latency = 1 ms, 1 ms ticks). A message is
//! one request or one reply delivered. Runtimes alternate round by round;
//! the median wall time per runtime gives messages per wall second, and the
//! ratio lockstep / turmoil (above 1.0: lockstep delivers more per second).
//! lockstep runs with tracing off (its fastest setting; the decision hash
//! is still kept) and with the full trace.
//!
//! A counting allocator also reports lockstep's allocations per delivered
//! message in a warmed-up window (the payload copy is the only one the
//! design needs).

use std::alloc::{GlobalAlloc, Layout, System};
use std::error::Error;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lockstep::{Policy, Sim, Verbosity};

const ROUNDS: usize = 7;
const CLIENTS: usize = 10;
const ROUND_TRIPS: usize = 500;
const MESSAGES: u64 = (2 * CLIENTS * ROUND_TRIPS) as u64;
const PAYLOAD: usize = 64;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates every call to the system allocator unchanged, adding
// only a relaxed atomic increment.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ----- lockstep ------------------------------------------------------------

mod ls {
    use super::*;
    use futures::{AsyncReadExt, AsyncWriteExt};
    use lockstep::net::{self, Host, LinkConfig, TcpListener, TcpStream, UdpSocket};

    fn sim(verbosity: Verbosity) -> Sim {
        Sim::builder()
            .seed(1)
            .policy(Policy::Random)
            .verbosity(verbosity)
            .no_time_limit()
            .no_step_limit()
            .build()
    }

    fn link() {
        net::set_default_link(LinkConfig::constant(Duration::from_millis(1)));
    }

    pub(super) fn tcp(verbosity: Verbosity) -> u64 {
        sim(verbosity)
            .run(async {
                link();
                Host::new("server", || async {
                    let listener = TcpListener::bind("0.0.0.0:7").await?;
                    loop {
                        let (mut s, _) = listener.accept().await?;
                        lockstep::spawn(async move {
                            let mut buf = [0; PAYLOAD];
                            while s.read_exact(&mut buf).await.is_ok() {
                                s.write_all(&buf).await.unwrap();
                            }
                        });
                    }
                });
                let mut handles = Vec::new();
                for i in 0..CLIENTS {
                    let host = Host::new(format!("client{i}"), || async { Ok(()) });
                    handles.push(host.spawn(async {
                        let mut s = TcpStream::connect("server:7").await.unwrap();
                        let mut buf = [7; PAYLOAD];
                        for _ in 0..ROUND_TRIPS {
                            s.write_all(&buf).await.unwrap();
                            s.read_exact(&mut buf).await.unwrap();
                        }
                        2 * ROUND_TRIPS as u64
                    }));
                }
                let mut n = 0;
                for h in handles {
                    n += h.await.unwrap();
                }
                n
            })
            .into_result()
            .unwrap()
    }

    pub(super) fn udp(verbosity: Verbosity) -> u64 {
        sim(verbosity)
            .run(async {
                link();
                Host::new("server", || async {
                    let socket = UdpSocket::bind("0.0.0.0:7").await?;
                    let mut buf = [0; PAYLOAD];
                    loop {
                        let (n, from) = socket.recv_from(&mut buf).await?;
                        socket.send_to(&buf[..n], from).await?;
                    }
                });
                let mut handles = Vec::new();
                for i in 0..CLIENTS {
                    let host = Host::new(format!("client{i}"), || async { Ok(()) });
                    handles.push(host.spawn(async {
                        let socket = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                        let mut buf = [7; PAYLOAD];
                        for _ in 0..ROUND_TRIPS {
                            socket.send_to(&buf, "server:7").await.unwrap();
                            socket.recv_from(&mut buf).await.unwrap();
                        }
                        2 * ROUND_TRIPS as u64
                    }));
                }
                let mut n = 0;
                for h in handles {
                    n += h.await.unwrap();
                }
                n
            })
            .into_result()
            .unwrap()
    }

    /// Allocations per delivered datagram and per stream message, measured
    /// over a window after a warm-up, with tracing off.
    pub(super) fn allocs_per_message() -> (f64, f64) {
        let measure = |tcp: bool| {
            sim(Verbosity::Off)
                .run(async move {
                    link();
                    let server = Host::new("server", || async { Ok(()) });
                    let client = Host::new("client", || async { Ok(()) });
                    let window = |done: u64| done == 200;
                    if tcp {
                        server.spawn(async {
                            let listener = TcpListener::bind("0.0.0.0:7").await.unwrap();
                            let (mut s, _) = listener.accept().await.unwrap();
                            let mut buf = [0; PAYLOAD];
                            while s.read_exact(&mut buf).await.is_ok() {
                                s.write_all(&buf).await.unwrap();
                            }
                        });
                        client
                            .spawn(async move {
                                let mut s = TcpStream::connect("server:7").await.unwrap();
                                let mut buf = [7; PAYLOAD];
                                let mut start = 0;
                                for i in 0..1200u64 {
                                    if window(i) {
                                        start = ALLOCS.load(Ordering::Relaxed);
                                    }
                                    s.write_all(&buf).await.unwrap();
                                    s.read_exact(&mut buf).await.unwrap();
                                }
                                (ALLOCS.load(Ordering::Relaxed) - start) as f64 / 2000.0
                            })
                            .await
                            .unwrap()
                    } else {
                        server.spawn(async {
                            let socket = UdpSocket::bind("0.0.0.0:7").await.unwrap();
                            let mut buf = [0; PAYLOAD];
                            loop {
                                let (n, from) = socket.recv_from(&mut buf).await.unwrap();
                                socket.send_to(&buf[..n], from).await.unwrap();
                            }
                        });
                        client
                            .spawn(async move {
                                let socket = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                                let mut buf = [7; PAYLOAD];
                                let mut start = 0;
                                for i in 0..1200u64 {
                                    if window(i) {
                                        start = ALLOCS.load(Ordering::Relaxed);
                                    }
                                    socket.send_to(&buf, "server:7").await.unwrap();
                                    socket.recv_from(&mut buf).await.unwrap();
                                }
                                (ALLOCS.load(Ordering::Relaxed) - start) as f64 / 2000.0
                            })
                            .await
                            .unwrap()
                    }
                })
                .into_result()
                .unwrap()
        };
        (measure(false), measure(true))
    }
}

// ----- turmoil -------------------------------------------------------------

mod tm {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use turmoil::net::{TcpListener, TcpStream, UdpSocket};

    fn sim<'a>() -> turmoil::Sim<'a> {
        turmoil::Builder::new()
            .simulation_duration(Duration::from_secs(3600))
            .tick_duration(Duration::from_millis(1))
            .min_message_latency(Duration::from_millis(1))
            .max_message_latency(Duration::from_millis(1))
            .rng_seed(1)
            .build()
    }

    pub(super) fn tcp() -> u64 {
        let mut sim = sim();
        sim.host("server", || async {
            let listener = TcpListener::bind("0.0.0.0:7").await?;
            loop {
                let (mut s, _) = listener.accept().await?;
                tokio::spawn(async move {
                    let mut buf = [0; PAYLOAD];
                    while s.read_exact(&mut buf).await.is_ok() {
                        s.write_all(&buf).await.unwrap();
                    }
                });
            }
        });
        for i in 0..CLIENTS {
            sim.client(format!("client{i}"), async {
                let mut s = TcpStream::connect("server:7").await?;
                let mut buf = [7; PAYLOAD];
                for _ in 0..ROUND_TRIPS {
                    s.write_all(&buf).await?;
                    s.read_exact(&mut buf).await?;
                }
                Ok::<_, Box<dyn Error>>(())
            });
        }
        sim.run().unwrap();
        MESSAGES
    }

    pub(super) fn udp() -> u64 {
        let mut sim = sim();
        sim.host("server", || async {
            let socket = UdpSocket::bind("0.0.0.0:7").await?;
            let mut buf = [0; PAYLOAD];
            loop {
                let (n, from) = socket.recv_from(&mut buf).await?;
                socket.send_to(&buf[..n], from).await?;
            }
        });
        for i in 0..CLIENTS {
            sim.client(format!("client{i}"), async {
                let socket = UdpSocket::bind("0.0.0.0:0").await?;
                let mut buf = [7; PAYLOAD];
                for _ in 0..ROUND_TRIPS {
                    socket.send_to(&buf, "server:7").await?;
                    socket.recv_from(&mut buf).await?;
                }
                Ok::<_, Box<dyn Error>>(())
            });
        }
        sim.run().unwrap();
        MESSAGES
    }
}

// ----- harness -------------------------------------------------------------

fn time(f: &dyn Fn() -> u64) -> Duration {
    let start = Instant::now();
    let n = black_box(f());
    assert_eq!(n, MESSAGES, "every message was delivered");
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rate(d: Duration) -> f64 {
    MESSAGES as f64 / d.as_secs_f64()
}

fn main() {
    // `cargo test --benches` runs this with `--test`: one quick round only.
    let quick = std::env::args().any(|a| a == "--test");
    let rounds = if quick { 1 } else { ROUNDS };
    type Run = Box<dyn Fn() -> u64>;
    let workloads: Vec<(&str, Run, Run, Run)> = vec![
        (
            "tcp echo",
            Box::new(tm::tcp),
            Box::new(|| ls::tcp(Verbosity::Off)),
            Box::new(|| ls::tcp(Verbosity::Full)),
        ),
        (
            "udp echo",
            Box::new(tm::udp),
            Box::new(|| ls::udp(Verbosity::Off)),
            Box::new(|| ls::udp(Verbosity::Full)),
        ),
    ];
    println!(
        "simulated network: {CLIENTS} clients x {ROUND_TRIPS} round trips of {PAYLOAD} bytes \
         ({MESSAGES} messages), 1 ms links; median of {rounds} rounds, alternating runtimes\n\
         messages delivered per wall second; ratio = lockstep / turmoil (> 1.0: lockstep is faster)\n"
    );
    println!(
        "{:<10} {:>14} {:>26} {:>26}",
        "workload", "turmoil 0.7", "lockstep (trace off)", "lockstep (full trace)"
    );
    for (name, turmoil, off, full) in &workloads {
        let (mut t, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            t.push(time(turmoil.as_ref()));
            a.push(time(off.as_ref()));
            b.push(time(full.as_ref()));
        }
        let (t, a, b) = (rate(median(t)), rate(median(a)), rate(median(b)));
        println!(
            "{name:<10} {:>12.0}/s {:>14.0}/s ({:>5.2}x) {:>14.0}/s ({:>5.2}x)",
            t,
            a,
            a / t,
            b,
            b / t
        );
    }
    let (udp, tcp) = ls::allocs_per_message();
    println!(
        "\nlockstep allocations per delivered message (trace off, warmed up): \
         datagrams {udp:.2}, streams {tcp:.2}"
    );
}
