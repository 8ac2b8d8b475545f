//! The executor's hot path allocates nothing per step.
//!
//! A counting global allocator (in this test binary only) counts the
//! allocations made by the simulation's thread. An allocation count is
//! deterministic, unlike a wall time, so it belongs in a test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use lockstep::prelude::*;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates every call to the system allocator unchanged; the only
// addition is a thread-local counter bump, which does not allocate (a
// const-initialised `Cell<u64>` needs no lazy initialisation or destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Two tasks handing a baton back and forth through wakers.
async fn ping_pong(
    me: usize,
    turn: Rc<Cell<usize>>,
    wakers: Rc<[Cell<Option<Waker>>; 2]>,
    stop: Rc<Cell<bool>>,
) {
    while !stop.get() {
        poll_fn(|cx| {
            if turn.get() == me || stop.get() {
                Poll::Ready(())
            } else {
                wakers[me].set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
        turn.set(1 - me);
        if let Some(w) = wakers[1 - me].take() {
            w.wake();
        }
        sleep(Duration::from_micros(100)).await;
    }
}

#[test]
fn the_hot_path_allocates_nothing_per_step() {
    for policy in [Policy::Random, Policy::Fifo] {
        let outcome = Sim::builder()
            .seed(42)
            .policy(policy)
            .verbosity(Verbosity::Off)
            .build()
            .run(async {
                let stop = Rc::new(Cell::new(false));
                let turn = Rc::new(Cell::new(0));
                let wakers: Rc<[Cell<Option<Waker>>; 2]> =
                    Rc::new([Cell::new(None), Cell::new(None)]);
                let mut handles = Vec::new();
                for me in 0..2 {
                    handles.push(spawn(ping_pong(
                        me,
                        turn.clone(),
                        wakers.clone(),
                        stop.clone(),
                    )));
                }
                for i in 0..4u64 {
                    let stop = stop.clone();
                    handles.push(spawn(async move {
                        while !stop.get() {
                            lockstep::task::yield_now().await;
                            lockstep::task::yield_now().await;
                            // Timers with equal and distinct deadlines.
                            sleep(Duration::from_micros(250 * (i % 2 + 1))).await;
                            let _ =
                                timeout(Duration::from_secs(5), lockstep::task::yield_now()).await;
                        }
                    }));
                }
                // Warm up: let queues, the timer heap and the slab reach
                // their working sizes.
                sleep(Duration::from_millis(50)).await;
                let steps_before = lockstep::random::u64(); // a draw: also allocation-free
                let _ = steps_before;
                let before = allocs();
                sleep(Duration::from_millis(500)).await;
                let during = allocs() - before;
                stop.set(true);
                for h in handles {
                    h.await.unwrap();
                }
                during
            });
        let steps = outcome.stats().steps;
        let during = outcome.into_result().unwrap();
        assert!(
            steps > 10_000,
            "the window ran too few steps ({steps}) to mean anything"
        );
        assert_eq!(
            during, 0,
            "{policy}: {during} allocations in a warmed-up window"
        );
    }
}

#[test]
fn a_delivered_message_allocates_only_its_payload() {
    use futures::{AsyncReadExt, AsyncWriteExt};
    use lockstep::net::{Host, TcpListener, TcpStream, UdpSocket};

    const WARM_UP: u64 = 200;
    const WINDOW: u64 = 1000;
    let outcome = Sim::builder()
        .seed(7)
        .verbosity(Verbosity::Off)
        .build()
        .run(async {
            let server = Host::new("server", || async { Ok(()) });
            let client = Host::new("client", || async { Ok(()) });
            server.spawn(async {
                let socket = UdpSocket::bind("0.0.0.0:7").await.unwrap();
                let mut buf = [0; 64];
                loop {
                    let (n, from) = socket.recv_from(&mut buf).await.unwrap();
                    socket.send_to(&buf[..n], from).await.unwrap();
                }
            });
            server.spawn(async {
                let listener = TcpListener::bind("0.0.0.0:7").await.unwrap();
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0; 64];
                while s.read_exact(&mut buf).await.is_ok() {
                    s.write_all(&buf).await.unwrap();
                }
            });
            client
                .spawn(async {
                    let udp = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                    let mut tcp = TcpStream::connect("server:7").await.unwrap();
                    let mut buf = [1; 64];
                    let mut before = (0, 0);
                    let mut during = (0, 0);
                    for i in 0..WARM_UP + WINDOW {
                        if i == WARM_UP {
                            before.0 = allocs();
                        }
                        udp.send_to(&buf, "server:7").await.unwrap();
                        udp.recv_from(&mut buf).await.unwrap();
                    }
                    during.0 = allocs() - before.0;
                    for i in 0..WARM_UP + WINDOW {
                        if i == WARM_UP {
                            before.1 = allocs();
                        }
                        tcp.write_all(&buf).await.unwrap();
                        tcp.read_exact(&mut buf).await.unwrap();
                    }
                    during.1 = allocs() - before.1;
                    during
                })
                .await
                .unwrap()
        });
    let (udp, tcp) = outcome.into_result().unwrap();
    // Two messages (request and reply) per round trip, one payload each.
    assert_eq!(
        udp,
        2 * WINDOW,
        "datagrams: {udp} allocations for {} messages",
        2 * WINDOW
    );
    assert_eq!(
        tcp,
        2 * WINDOW,
        "streams: {tcp} allocations for {} messages",
        2 * WINDOW
    );
}

#[test]
fn uncontended_sync_operations_allocate_nothing() {
    use lockstep::sync::{Mutex, RwLock, Semaphore, mpsc};
    let outcome = Sim::builder()
        .seed(7)
        .verbosity(Verbosity::Off)
        .build()
        .run(async {
            let m = Mutex::named("m", 0u64);
            let rw = RwLock::new(0u64);
            let sem = Semaphore::new(2);
            let (tx, mut rx) = mpsc::channel_named("c", 4);
            let (utx, mut urx) = mpsc::unbounded_channel();
            let round = |i: u64| {
                let (m, rw, sem, tx, utx) = (&m, &rw, &sem, &tx, &utx);
                async move {
                    *m.lock().await += i;
                    let r = *rw.read().await;
                    *rw.write().await += r;
                    let _p = sem.acquire().await.unwrap();
                    tx.send(i).await.unwrap();
                    utx.send(i).unwrap();
                }
            };
            // Warm up: buffers reach their working sizes.
            for i in 0..8 {
                round(i).await;
                rx.recv().await.unwrap();
                urx.recv().await.unwrap();
            }
            let before = allocs();
            for i in 0..1000 {
                round(i).await;
                rx.recv().await.unwrap();
                urx.recv().await.unwrap();
            }
            allocs() - before
        });
    assert_eq!(outcome.into_result().unwrap(), 0);
}

/// Allocations in a warmed-up window of `window` yields by the main task
/// while `body`'s tasks run; `mode` sets the trace.
fn warm_window_allocs(
    verbosity: Verbosity,
    mode: lockstep::trace::TraceMode,
    record_schedule: bool,
    spawn_tasks: fn(Rc<Cell<bool>>) -> Vec<JoinHandle<()>>,
) -> (u64, u64) {
    let outcome = Sim::builder()
        .seed(3)
        .verbosity(verbosity)
        .trace_mode(mode)
        .record_schedule(record_schedule)
        .no_step_limit()
        .build()
        .run(async move {
            let stop = Rc::new(Cell::new(false));
            let handles = spawn_tasks(stop.clone());
            // Warm up: queues, the ring and its summary log reach their
            // working sizes (both start recycling their chunks).
            for _ in 0..16_000 {
                lockstep::task::yield_now().await;
            }
            let before = allocs();
            for _ in 0..4_000 {
                lockstep::task::yield_now().await;
            }
            let during = allocs() - before;
            stop.set(true);
            for h in handles {
                h.await.unwrap();
            }
            during
        });
    let steps = outcome.stats().steps;
    (outcome.into_result().unwrap(), steps)
}

/// W2's shape: many tasks yielding.
fn yielders(stop: Rc<Cell<bool>>) -> Vec<JoinHandle<()>> {
    (0..20)
        .map(|_| {
            let stop = stop.clone();
            spawn(async move {
                while !stop.get() {
                    lockstep::task::yield_now().await;
                }
            })
        })
        .collect()
}

/// W5's shape: tasks taking a contended lock, yielding while holding it.
fn lockers(stop: Rc<Cell<bool>>) -> Vec<JoinHandle<()>> {
    let m = Rc::new(lockstep::sync::Mutex::new(0u64));
    (0..20)
        .map(|_| {
            let (m, stop) = (m.clone(), stop.clone());
            spawn(async move {
                while !stop.get() {
                    let mut g = m.lock().await;
                    *g += 1;
                    lockstep::task::yield_now().await;
                    drop(g);
                }
            })
        })
        .collect()
}

#[test]
fn yields_and_contended_locks_allocate_nothing_once_warm() {
    use lockstep::trace::TraceMode;
    for (name, tasks) in [
        ("yields", yielders as fn(_) -> _),
        ("locks", lockers as fn(_) -> _),
    ] {
        for (verbosity, mode) in [
            (Verbosity::Off, TraceMode::Keep),
            // A full trace in a warm ring reuses its chunks.
            (Verbosity::Full, TraceMode::Ring(2_000)),
        ] {
            let (during, steps) = warm_window_allocs(verbosity, mode, false, tasks);
            assert!(steps > 10_000, "{name}: only {steps} steps");
            assert_eq!(
                during, 0,
                "{name}, trace {verbosity}: {during} allocations in a warm window"
            );
        }
        // A traced run also records its schedule (2 bytes a step, for
        // replay and shrinking), which grows with the run: at most one
        // doubling of its buffer in a window, never one per step.
        let (during, _) = warm_window_allocs(Verbosity::Full, TraceMode::Ring(2_000), true, tasks);
        assert!(
            during <= 1,
            "{name}, trace full, schedule recorded: {during} allocations in a warm window"
        );
    }
}

/// Spawning and joining a task allocates nothing once warm: its cell
/// comes from the thread's pool of task cells (the room the first round's
/// tasks left), and no name or site is formatted, plain, named (a builder
/// reused) or on a host.
/// (With the watchdog or the blocked-poll check on, the default, a named
/// task is also entered in the watchdog's table of names, which that
/// thread reads: a map insert per named spawn, measured apart here.)
#[test]
fn a_spawn_allocates_only_the_task() {
    const N: u64 = 1000;
    let outcome = Sim::builder()
        .seed(1)
        .verbosity(Verbosity::Off)
        .watchdog(None)
        .blocked_poll(None)
        .build()
        .run(async {
            let host = lockstep::net::Host::new("server", || async { Ok(()) });
            let named = lockstep::task::Builder::new().name("worker");
            let mut handles = Vec::with_capacity(N as usize);
            let mut counts = [0u64; 3];
            // The first round warms the task table, the ready set and the
            // pool of task cells.
            for round in 0..2 {
                for (kind, count) in counts.iter_mut().enumerate() {
                    let before = allocs();
                    for i in 0..N {
                        handles.push(match kind {
                            0 => spawn(async move { i }),
                            1 => named.clone().spawn(async move { i }),
                            _ => host.spawn(async move { i }),
                        });
                    }
                    for h in handles.drain(..) {
                        h.await.unwrap();
                    }
                    if round == 1 {
                        *count = allocs() - before;
                    }
                }
            }
            counts
        });
    let [plain, named, on_host] = outcome.into_result().unwrap();
    eprintln!("allocations per {N} spawns: plain {plain}, named {named}, on a host {on_host}");
    for (what, n) in [("plain", plain), ("named", named), ("on a host", on_host)] {
        assert!(
            n <= 4,
            "{what}: {n} allocations for {N} spawns (none per task expected once warm, a few for the run's tables)"
        );
    }
}
