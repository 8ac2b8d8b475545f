//! Compact traces: ring and streaming modes, memory per event, the time
//! column and host labels.

use std::cell::Cell;
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::sync::{Mutex, mpsc};
use lockstep::trace::{EventKind, Trace, TraceMode};

/// 20 tasks yielding 500 times each (many full-level events, few summary
/// ones), then a panic.
async fn yields_then_panic(fail: bool) {
    let hs: Vec<_> = (0..20)
        .map(|i| {
            lockstep::task::Builder::new()
                .name(format!("y{i}"))
                .spawn(async move {
                    for _ in 0..500 {
                        yield_now().await;
                    }
                })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    lockstep::trace!("all yielded");
    assert!(!fail, "the end");
}

fn run(mode: TraceMode, fail: bool) -> Outcome<()> {
    Sim::builder()
        .seed(5)
        .trace_mode(mode)
        .build()
        .run(yields_then_panic(fail))
}

/// `round_trips` values sent to an echo task and back over two capacity-1
/// channels, so that every step ends in a wait (a summary event). With
/// `pause_every` above 0, the echo first sleeps a few microseconds on each
/// multiple of it: the clock moves now and then, between steps.
async fn ping_pong(round_trips: u64, pause_every: u64) {
    let (tx, mut rx) = mpsc::channel::<u64>(1);
    let (back_tx, mut back_rx) = mpsc::channel::<u64>(1);
    let echo = spawn(async move {
        while let Some(v) = rx.recv().await {
            if pause_every > 0 && v % pause_every == 0 {
                lockstep::time::sleep(std::time::Duration::from_micros(v % 5 + 1)).await;
            }
            back_tx.send(v).await.unwrap();
        }
    });
    for i in 0..round_trips {
        tx.send(i).await.unwrap();
        assert_eq!(back_rx.recv().await, Some(i));
    }
    drop(tx);
    echo.await.unwrap();
}

#[test]
fn a_ring_keeps_the_last_events_and_every_summary_event() {
    let all = run(TraceMode::Keep, true);
    let ring = run(TraceMode::Ring(1000), true);
    assert_eq!(all.trace().dropped(), 0);
    assert!(ring.trace().dropped() > 0);
    assert_eq!(
        ring.trace().len() as u64 + ring.trace().dropped(),
        all.trace().len() as u64
    );
    // Same run, same decisions.
    assert_eq!(all.determinism_hash(), ring.determinism_hash());
    let summary = |t: &Trace| -> Vec<_> {
        t.events()
            .filter(|e| e.kind.verbosity() <= Verbosity::Summary)
            .collect()
    };
    assert_eq!(summary(all.trace()), summary(ring.trace()));
    // The last 1000 events are all there, in order, failure last.
    let tail = |t: &Trace| -> Vec<_> {
        let v: Vec<_> = t.events().collect();
        v[v.len() - 1000..].to_vec()
    };
    assert_eq!(tail(all.trace()), tail(ring.trace()));
    assert!(matches!(
        ring.trace().events().last().unwrap().kind,
        EventKind::Failure { .. }
    ));
    // What a report shows is the same.
    assert_eq!(
        all.trace()
            .render_tail(20)
            .lines()
            .skip(1)
            .collect::<Vec<_>>(),
        ring.trace()
            .render_tail(20)
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
    );
    assert!(
        ring.trace()
            .render()
            .contains("events dropped here (trace ring)")
    );
}

#[test]
fn a_ring_has_flat_memory() {
    let small = run(TraceMode::Ring(1000), false);
    let big = Sim::builder()
        .seed(5)
        .trace_mode(TraceMode::Ring(1000))
        .build()
        .run(async {
            let hs: Vec<_> = (0..20)
                .map(|_| {
                    spawn(async {
                        for _ in 0..5000 {
                            yield_now().await;
                        }
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        });
    assert!(big.trace().dropped() > 10 * small.trace().dropped());
    // Ten times the events, about the same memory.
    assert!(
        big.trace().memory_bytes() < 2 * small.trace().memory_bytes(),
        "{} vs {}",
        big.trace().memory_bytes(),
        small.trace().memory_bytes()
    );
}

#[test]
fn a_stream_writes_every_event_to_a_file() {
    let dir = std::env::temp_dir().join(format!("lockstep-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.jsonl");
    let all = run(TraceMode::Keep, true);
    let streamed = run(
        TraceMode::Stream {
            path: path.clone(),
            ring: 500,
        },
        true,
    );
    assert!(streamed.trace().dropped() > 0);
    let text = std::fs::read_to_string(&path).unwrap();
    let back = Trace::from_jsonl(&text).unwrap();
    assert_eq!(&back, all.trace());
    assert_eq!(back.render(), all.trace().render());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stream_to_a_missing_directory_is_a_clear_error() {
    let result = std::panic::catch_unwind(|| {
        run(
            TraceMode::Stream {
                path: "/nonexistent-lockstep-dir/x.jsonl".into(),
                ring: 10,
            },
            false,
        )
    });
    let err = result.unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("cannot create the trace stream file `/nonexistent-lockstep-dir/x.jsonl`"),
        "{msg}"
    );
}

/// Memory per event on the two workloads with the most events per step:
/// yields (W2) and a capacity-1 channel ping-pong (W4).
#[test]
fn an_event_costs_at_most_16_bytes() {
    let yields = Sim::builder()
        .seed(1)
        .trace_mode(TraceMode::Keep)
        .no_step_limit()
        .build()
        .run(async {
            let hs: Vec<_> = (0..100)
                .map(|_| {
                    spawn(async {
                        for _ in 0..1000 {
                            yield_now().await;
                        }
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        });
    let ping_pong = Sim::builder()
        .seed(1)
        .trace_mode(TraceMode::Keep)
        .no_step_limit()
        .build()
        .run(ping_pong(50_000, 0));
    for (name, o) in [("yields", &yields), ("ping-pong", &ping_pong)] {
        let t = o.trace();
        assert!(t.len() > 200_000, "{name}: {} events", t.len());
        let per_event = t.memory_bytes() as f64 / t.len() as f64;
        assert!(per_event <= 16.0, "{name}: {per_event:.1} bytes per event");
    }
}

#[test]
fn times_in_one_trace_have_one_precision_and_width() {
    let o = Sim::new(3).run(async {
        sleep(Duration::from_millis(50)).await;
        sleep(Duration::from_micros(1602)).await;
        sleep(Duration::from_nanos(25_757_911)).await;
    });
    let text = o.trace().render();
    // One precision (nanoseconds, the finest needed) and one width.
    assert!(
        text.lines()
            .all(|l| l.split_whitespace().next().unwrap().len() == "0.000000000s".len()),
        "{text}"
    );
    assert!(text.contains("0.050000000s  -"), "{text}");
    assert!(text.contains("0.077359911s  -"), "{text}");
    // A millisecond trace keeps milliseconds.
    let ms = Sim::new(3).run(async { sleep(Duration::from_millis(50)).await });
    assert!(ms.trace().render().contains("      0.050s"));
}

#[test]
fn tasks_spawned_inside_a_host_show_their_host() {
    let o = Sim::new(1).run(async {
        let server = lockstep::net::Host::new("server", || async {
            spawn(async { sleep(Duration::from_millis(1)).await });
            lockstep::task::Builder::new()
                .name("flusher")
                .spawn(async { sleep(Duration::from_millis(1)).await });
            Ok(())
        });
        sleep(Duration::from_millis(5)).await;
        drop(server);
    });
    let text = o.trace().render();
    assert!(text.contains("spawn #2 @server at"), "{text}");
    assert!(text.contains("spawn #3 flusher@server at"), "{text}");
    assert!(text.contains("  #2 @server         poll"), "{text}");
    assert!(text.contains("  #1 server          poll"), "{text}");
    let spawn_host = o.trace().events().find_map(|e| match e.kind {
        EventKind::Spawn { child, host, .. } if child.as_u32() == 2 => host,
        _ => None,
    });
    assert_eq!(spawn_host.as_deref(), Some("server"));
    // And it survives a round trip through JSON lines.
    let back = Trace::from_jsonl(&o.trace().to_jsonl()).unwrap();
    assert_eq!(back.render(), text);
}

#[test]
fn a_lock_heavy_run_renders_the_same_in_every_mode() {
    let body = || async {
        let m = Rc::new(Mutex::named("m", 0u64));
        let n = Rc::new(Cell::new(0));
        let hs: Vec<_> = (0..10)
            .map(|_| {
                let (m, n) = (m.clone(), n.clone());
                spawn(async move {
                    for _ in 0..200 {
                        let mut g = m.lock().await;
                        *g += 1;
                        n.set(n.get() + 1);
                        yield_now().await;
                        drop(g);
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    };
    let keep = Sim::builder()
        .seed(9)
        .trace_mode(TraceMode::Keep)
        .build()
        .run(body());
    let ring = Sim::builder()
        .seed(9)
        .trace_mode(TraceMode::Ring(1 << 20))
        .build()
        .run(body());
    assert_eq!(keep.trace().render(), ring.trace().render());
    assert_eq!(
        keep.trace(),
        &Trace::from_jsonl(&keep.trace().to_jsonl()).unwrap()
    );
}

/// A ping-pong: a ring's summary log holds a wait for each step.
#[test]
fn a_ring_keeps_waits_at_every_step_with_their_steps_and_times() {
    let run = |mode| {
        Sim::builder()
            .seed(3)
            .trace_mode(mode)
            .build()
            .run(ping_pong(1500, 50))
    };
    let (keep, ring) = (run(TraceMode::Keep), run(TraceMode::Ring(1000)));
    assert!(
        ring.trace().dropped() > 0,
        "the ring evicted: {} {} {}",
        keep.trace().len(),
        ring.trace().len(),
        ring.trace().dropped()
    );
    let summary = |t: &Trace| -> Vec<_> {
        t.events()
            .filter(|e| e.kind.verbosity() <= Verbosity::Summary)
            .collect()
    };
    let (all, kept) = (summary(keep.trace()), summary(ring.trace()));
    assert!(kept.len() > 1000, "waits kept: {}", kept.len());
    // The summary log is bounded too: it keeps the latest summary events,
    // each with its step, time and task, in order.
    assert!(all.ends_with(&kept), "kept {} of {}", kept.len(), all.len());
    let steps: Vec<u64> = kept.iter().map(|e| e.step).collect();
    assert!(steps.windows(2).filter(|w| w[1] == w[0] + 1).count() > 500);
}

/// A trace past its first 256 KiB of records keeps the rest in 2 MiB slabs
/// (huge pages where the kernel gives them): it reads back the same as a
/// copy of itself, as its JSONL, as a ring's, and as a second run's.
#[test]
fn a_long_trace_reads_back_the_same_every_way() {
    let run = |mode| {
        Sim::builder()
            .seed(11)
            .trace_mode(mode)
            .no_step_limit()
            .build()
            .run(ping_pong(20_000, 97))
    };
    let keep = run(TraceMode::Keep);
    let t = keep.trace();
    assert!(
        t.memory_bytes() > 1 << 20,
        "past the allocator's 256 KiB of chunks: {} bytes",
        t.memory_bytes()
    );
    // What the run did, read from the records: two tasks, steps and times
    // in order, and one send on each channel a round trip (a record
    // written over, or read from another buffer's slot, breaks these).
    let events: Vec<_> = t.events().collect();
    assert!(
        events
            .iter()
            .all(|e| e.task.is_none_or(|id| id.as_u32() <= 1))
    );
    assert!(
        events
            .windows(2)
            .all(|w| w[0].step <= w[1].step && w[0].time <= w[1].time)
    );
    let sends = |by: u32, on: &str| {
        events
            .iter()
            .filter(|e| e.task.map(|id| id.as_u32()) == Some(by))
            .filter(|e| matches!(&e.kind, EventKind::Send { resource, .. } if resource == on))
            .count()
    };
    assert_eq!(
        (sends(0, "channel#0"), sends(1, "channel#1")),
        (20_000, 20_000)
    );
    assert_eq!(&t.clone(), t);
    let text = t.render();
    assert_eq!(Trace::from_jsonl(&t.to_jsonl()).unwrap().render(), text);
    assert_eq!(run(TraceMode::Ring(1 << 20)).trace().render(), text);
    assert_eq!(run(TraceMode::Keep).trace().render(), text);
}

/// A run `steps` steps long (the main task alone, yielding), traced at
/// summary level into a small ring.
fn yielding_run(steps: u64, keep_schedule: Option<bool>) -> Outcome<()> {
    let mut b = Sim::builder()
        .seed(3)
        .verbosity(lockstep::trace::Verbosity::Summary)
        .trace_mode(TraceMode::Ring(10))
        .no_step_limit()
        .livelock_steps(u64::MAX);
    if let Some(keep) = keep_schedule {
        b = b.record_schedule(keep);
    }
    b.build().run(async move {
        for _ in 1..steps {
            yield_now().await;
        }
    })
}

/// A schedule grows with the run (2 bytes a step): a ring-mode run keeps
/// it up to `TraceMode::DEFAULT_RING` steps (its ring, if larger), and
/// drops it past that, so that its memory stays flat; asked for, it is
/// kept whole.
#[test]
fn a_ring_bounds_the_schedule_it_records() {
    let bound = TraceMode::DEFAULT_RING as u64;
    let at = yielding_run(bound, None);
    assert_eq!(at.stats().steps, bound);
    assert_eq!(at.schedule().map(|s| s.steps()), Some(bound));
    let past = yielding_run(bound + 1, None);
    assert_eq!(past.stats().steps, bound + 1);
    assert!(past.schedule().is_none(), "dropped past {bound} steps");
    let asked = yielding_run(bound + 1, Some(true));
    assert_eq!(asked.schedule().map(|s| s.steps()), Some(bound + 1));
}
