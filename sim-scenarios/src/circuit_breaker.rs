//! `circuit-breaker` (seed section: Error Handling and Resilience,
//! resilient patterns).
//!
//! The tutorial's `circuit_breaker_call`: after 3 failures the breaker is
//! open and rejects calls until 5 s have passed since the last failure,
//! then resets; a success resets the failure count. The service is its
//! `unreliable_service_call` (0.1 s, 70 % failures).
//!
//! The invariant: once the breaker opens, no call reaches the service for
//! 5 s.
//!
//! - `sequential` is the tutorial's demo: eight calls one after another.
//!   It passes every seed tried.
//! - `buggy`: the same breaker, shared by four concurrent callers (what a
//!   breaker is for). The tutorial presents it as correct, but it is racy:
//!   a call admitted while the breaker was closed can succeed *after* other
//!   calls opened it, and its `failures = 0` closes the breaker at once, so
//!   the next caller reaches the service well inside the 5 s. The explorer
//!   finds it within a few seeds (measured below).
//! - `fixed`: the breaker keeps a generation, bumped when it opens or
//!   resets; a result from a call admitted in an earlier generation does
//!   not change its state. Passes every seed tried.
//!
//! Measured over seeds 0..100 (the test's sweep): `buggy` fails (panic:
//! "call … admitted … after the breaker opened") for 63 of them, the first
//! at seed 0x0; `fixed` and `sequential` pass all 300 seeds of the test.

use std::cell::Cell;
use std::rc::Rc;

use lockstep::check::FailureKind;
use lockstep::prelude::*;
use lockstep::task::Builder;

use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "circuit-breaker",
    "opens after 3 failures, rejects for 5 s, then closes; racy under concurrent callers",
    &[
        Variant::new("sequential", Expect::Pass, |sim| sim.run(sequential_demo())),
        Variant::new("buggy", Expect::Fails(FailureKind::Panic), |sim| {
            sim.run(concurrent_callers(Breaker::new(false)))
        }),
        Variant::new("fixed", Expect::Pass, |sim| {
            sim.run(concurrent_callers(Breaker::new(true)))
        }),
    ],
)
.seeds(1000);

const THRESHOLD: u32 = 3;
const OPEN_FOR: Duration = Duration::from_secs(5);

/// The tutorial's `unreliable_service_call`.
async fn unreliable_service_call(call_id: String) -> Result<String, String> {
    sleep(Duration::from_millis(100)).await;
    if lockstep::random::f64() < 0.7 {
        return Err(format!("Service call {call_id} failed"));
    }
    Ok(format!("Service result {call_id}"))
}

/// The tutorial's breaker state (its function attributes), plus the
/// generation of the fix and what the invariant needs.
pub struct Breaker {
    failures: Cell<u32>,
    last_failure_time: Cell<Instant>,
    generational: bool,
    generation: Cell<u64>,
    /// When the breaker last went from closed to open.
    opened_at: Cell<Option<Instant>>,
}

impl Breaker {
    /// A closed breaker; `generational` is the fix.
    pub fn new(generational: bool) -> Rc<Breaker> {
        Rc::new(Breaker {
            failures: Cell::new(0),
            last_failure_time: Cell::new(Instant::START),
            generational,
            generation: Cell::new(0),
            opened_at: Cell::new(None),
        })
    }

    /// The tutorial's `circuit_breaker_call`.
    pub async fn call(&self, call_id: String) -> Result<String, String> {
        if self.failures.get() >= THRESHOLD {
            if Instant::now() - self.last_failure_time.get() < OPEN_FOR {
                return Err("Circuit breaker is OPEN - service unavailable".to_string());
            }
            self.failures.set(0);
            self.generation.set(self.generation.get() + 1);
        }
        // The invariant: nothing reaches the service within 5 s of opening.
        if let Some(opened) = self.opened_at.get() {
            let since = Instant::now() - opened;
            assert!(
                since >= OPEN_FOR,
                "call {call_id} admitted {since:?} after the breaker opened (it must reject for {OPEN_FOR:?})"
            );
        }
        let generation = self.generation.get();
        let result = unreliable_service_call(call_id).await;
        if self.generational && generation != self.generation.get() {
            // Admitted before the breaker last changed state: stale news.
            return result;
        }
        match &result {
            Ok(_) => self.failures.set(0),
            Err(_) => {
                self.failures.set(self.failures.get() + 1);
                self.last_failure_time.set(Instant::now());
                if self.failures.get() == THRESHOLD {
                    lockstep::trace!("breaker opens");
                    self.opened_at.set(Some(Instant::now()));
                    self.generation.set(self.generation.get() + 1);
                }
            }
        }
        result
    }
}

/// The tutorial's demo: eight calls in a row.
pub async fn sequential_demo() {
    let breaker = Breaker::new(false);
    for i in 0..8 {
        match breaker.call(format!("CB-{i}")).await {
            Ok(r) => lockstep::trace!("call {i}: {r}"),
            Err(e) => lockstep::trace!("call {i}: {e}"),
        }
    }
}

/// Four callers share one breaker for 12 s of virtual time.
pub async fn concurrent_callers(breaker: Rc<Breaker>) {
    let callers: Vec<_> = (0..4)
        .map(|c| {
            let breaker = breaker.clone();
            Builder::new()
                .name(format!("caller-{c}"))
                .spawn(async move {
                    let mut i = 0;
                    while Instant::now().since_start() < Duration::from_secs(12) {
                        let r = breaker.call(format!("C{c}-{i}")).await;
                        lockstep::trace!(
                            "caller {c} call {i}: {}",
                            if r.is_ok() { "ok" } else { "error" }
                        );
                        i += 1;
                        sleep(lockstep::random::duration(
                            Duration::from_millis(50)..Duration::from_millis(400),
                        ))
                        .await;
                    }
                })
        })
        .collect();
    for c in callers {
        c.await.unwrap();
    }
}
