//! `event-pipeline` (seed section: asyncio.Event).
//!
//! The tutorial's `demonstrate_event_coordination`: a coordinator starts a
//! producer and three processors, sets `start` after 0.5 s; the producer
//! generates five items 0.2 s apart and sets `data_ready`; the processors
//! take items (seeded 0.1–0.3 s each) until none are left, and whichever
//! finds all five processed sets `complete`, which releases the
//! coordinator. Then `demonstrate_event_patterns`: `wait_for(event.wait(),
//! 2 s)` once with the event set at 1 s (received) and once at 3 s (times
//! out at 2 s; the gather still waits for the setter, until 3 s).
//!
//! Invariants: every item is processed exactly once, the coordinator
//! finishes (a processor always sets `complete`: the last one to finish
//! sees five processed items), nothing waits on an event forever (a
//! missed `set` would be a deadlock report naming the event), and the
//! timeouts fire at the virtual instants above. One variant, `tutorial`,
//! which passes every seed tried: the tutorial's "double-check in case
//! another processor took it" is not needed (no suspension point lies
//! between the check and the pop), but it is harmless.

use std::cell::RefCell;
use std::rc::Rc;

use lockstep::future::wait_for;
use lockstep::prelude::*;
use lockstep::sync::Event;
use lockstep::task::Builder;

use crate::support::secs;
use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "event-pipeline",
    "start / data-ready / complete events: every item processed once, the coordinator finishes; wait_for both ways",
    &[Variant::new("tutorial", Expect::Pass, |sim| {
        sim.run(async {
            demonstrate_event_coordination().await;
            demonstrate_event_patterns().await;
        })
    })],
)
.seeds(1000);

#[derive(Default)]
struct SharedData {
    items: Vec<String>,
    processed_items: Vec<String>,
}

struct Pipeline {
    start: Event,
    data_ready: Event,
    complete: Event,
    data: RefCell<SharedData>,
}

async fn data_producer(p: Rc<Pipeline>) {
    lockstep::trace!("producer: waiting for start signal");
    p.start.wait().await;
    for i in 0..5 {
        let item = format!("Data-{i}");
        p.data.borrow_mut().items.push(item.clone());
        lockstep::trace!("producer: generated {item}");
        sleep(Duration::from_millis(200)).await;
    }
    lockstep::trace!("producer: all data generated, signaling data_ready");
    p.data_ready.set();
}

async fn data_processor(p: Rc<Pipeline>, id: u32) {
    p.data_ready.wait().await;
    lockstep::trace!("processor {id}: data is ready, starting processing");
    while !p.data.borrow().items.is_empty() {
        let item = {
            let mut d = p.data.borrow_mut();
            if d.items.is_empty() {
                continue;
            }
            d.items.remove(0)
        };
        sleep(lockstep::random::duration(secs(0.1)..secs(0.3))).await;
        let processed = format!("Processed-{item}-by-P{id}");
        lockstep::trace!("processor {id}: completed {processed}");
        p.data.borrow_mut().processed_items.push(processed);
    }
    let d = p.data.borrow();
    if d.items.is_empty() && d.processed_items.len() == 5 {
        lockstep::trace!("processor {id}: all processing complete, signaling completion");
        p.complete.set();
    }
}

/// The tutorial's `demonstrate_event_coordination`.
pub async fn demonstrate_event_coordination() {
    let p = Rc::new(Pipeline {
        start: Event::named("start_event"),
        data_ready: Event::named("data_ready_event"),
        complete: Event::named("processing_complete_event"),
        data: RefCell::default(),
    });
    let producer = Builder::new()
        .name("producer")
        .spawn(data_producer(p.clone()));
    let processors: Vec<_> = (1..=3)
        .map(|id| {
            Builder::new()
                .name(format!("processor-{id}"))
                .spawn(data_processor(p.clone(), id))
        })
        .collect();
    sleep(Duration::from_millis(500)).await;
    lockstep::trace!("coordinator: sending start signal");
    p.start.set();
    p.complete.wait().await;
    lockstep::trace!("coordinator: all work completed");
    producer.await.unwrap();
    for t in processors {
        t.await.unwrap();
    }
    let mut items: Vec<String> = p
        .data
        .borrow()
        .processed_items
        .iter()
        .map(|s| s.split('-').take(3).collect::<Vec<_>>().join("-"))
        .collect();
    items.sort();
    assert_eq!(
        items,
        (0..5)
            .map(|i| format!("Processed-Data-{i}"))
            .collect::<Vec<_>>(),
        "every item processed exactly once"
    );
}

/// The tutorial's `demonstrate_event_patterns`.
pub async fn demonstrate_event_patterns() {
    async fn waiter(id: &str, event: Rc<Event>) -> Result<bool, std::convert::Infallible> {
        let received = wait_for(Duration::from_secs(2), event.wait()).await.is_ok();
        if received {
            lockstep::trace!("waiter {id}: event received");
        } else {
            lockstep::trace!("waiter {id}: timeout waiting for event");
        }
        Ok(received)
    }
    async fn delayed_setter(
        event: Rc<Event>,
        delay: f64,
    ) -> Result<bool, std::convert::Infallible> {
        sleep(secs(delay)).await;
        event.set();
        Ok(true)
    }
    let start = Instant::now();
    let quick = Rc::new(Event::named("quick_event"));
    let r = gather([
        Box::pin(waiter("A", quick.clone()))
            as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>,
        Box::pin(delayed_setter(quick, 1.0)),
    ])
    .await
    .unwrap();
    assert_eq!(r, [true, true]);
    assert_eq!(Instant::now() - start, secs(1.0));

    let start = Instant::now();
    let slow = Rc::new(Event::named("slow_event"));
    let r = gather([
        Box::pin(waiter("B", slow.clone()))
            as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>,
        Box::pin(delayed_setter(slow, 3.0)),
    ])
    .await
    .unwrap();
    assert_eq!(r, [false, true], "B times out at 2 s");
    assert_eq!(Instant::now() - start, secs(3.0));
}
