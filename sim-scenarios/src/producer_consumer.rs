//! `producer-consumer` (seed section: asyncio.Lock usage patterns).
//!
//! The tutorial's `demonstrate_lock_usage_patterns`: three producers each
//! append three items to a shared list under a lock, 0.1 s apart; one
//! processor pops items under the same lock, processes each for 0.05 s
//! *outside* it, and polls every 0.01 s when the list is empty, until it
//! has nine.
//!
//! Invariants: all nine items are processed exactly once, each after it
//! was produced, and the processing count reaches nine; a producer's items
//! are processed in the order it produced them. One variant, `lock`, which
//! passes every seed tried (the lock is held across no suspension point, so
//! it is correct; the trace shows every hand-off).

use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::sync::Mutex;

use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "producer-consumer",
    "3 producers x 3 items, one processor under a lock: all 9 processed exactly once",
    &[Variant::new("lock", Expect::Pass, |sim| {
        sim.run(demonstrate_lock_usage_patterns())
    })],
)
.seeds(1000);

#[derive(Default)]
struct Shared {
    data: Vec<String>,
    processing_count: u32,
}

/// The tutorial's `demonstrate_lock_usage_patterns`.
pub async fn demonstrate_lock_usage_patterns() {
    let shared = Rc::new(Mutex::named("shared_resource", Shared::default()));
    let produced = Rc::new(RefCell::new(Vec::new()));

    let producer = |id: u32| {
        let (shared, produced) = (shared.clone(), produced.clone());
        async move {
            for i in 0..3 {
                let item = format!("P{id}-Item{i}");
                {
                    let mut s = shared.lock().await;
                    s.data.push(item.clone());
                    produced.borrow_mut().push(item.clone());
                    lockstep::trace!("producer {id} added: {item}");
                }
                sleep(Duration::from_millis(100)).await;
            }
            Ok::<Vec<String>, Infallible>(Vec::new())
        }
    };
    let processor = {
        let (shared, produced) = (shared.clone(), produced.clone());
        async move {
            let mut processed = Vec::new();
            while processed.len() < 9 {
                let (item, count) = {
                    let mut s = shared.lock().await;
                    if s.data.is_empty() {
                        (None, s.processing_count)
                    } else {
                        let item = s.data.remove(0);
                        s.processing_count += 1;
                        (Some(item), s.processing_count)
                    }
                };
                match item {
                    Some(item) => {
                        assert!(produced.borrow().contains(&item), "{item} was produced");
                        // Process outside the lock.
                        sleep(Duration::from_millis(50)).await;
                        lockstep::trace!("processed: {item} (#{count})");
                        processed.push(item);
                    }
                    None => sleep(Duration::from_millis(10)).await,
                }
            }
            Ok::<Vec<String>, Infallible>(processed)
        }
    };
    let results = gather([
        Box::pin(producer(1)) as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>,
        Box::pin(producer(2)),
        Box::pin(producer(3)),
        Box::pin(processor),
    ])
    .await
    .unwrap();
    let processed = &results[3];
    lockstep::trace!("processing complete: {} items processed", processed.len());

    let mut sorted = processed.clone();
    sorted.sort();
    let mut expected: Vec<String> = (1..=3)
        .flat_map(|p| (0..3).map(move |i| format!("P{p}-Item{i}")))
        .collect();
    expected.sort();
    assert_eq!(sorted, expected, "every item processed exactly once");
    for p in 1..=3 {
        let mine: Vec<&String> = processed
            .iter()
            .filter(|s| s.starts_with(&format!("P{p}-")))
            .collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "P{p} in order: {mine:?}"
        );
    }
    assert_eq!(shared.lock().await.processing_count, 9);
}
