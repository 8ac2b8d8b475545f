//! `retry-backoff` (seed section: Error Handling and Resilience, resilient
//! patterns).
//!
//! The tutorial's `retry_with_backoff` around `unreliable_service_call`
//! (0.1 s, then a 70 % chance of `ConnectionError`), `max_retries = 3`,
//! `base_delay = 0.1`. The delays between attempts are exactly 0.1, 0.2
//! and 0.4 s of virtual time, so attempts start at 0, 0.2, 0.5 and 1.0 s;
//! after the fourth failure (1.1 s) the last error is raised. Across seeds
//! both ends are explored: success at some attempt, and giving up (0.7^4,
//! about a quarter of the seeds).
//!
//! One variant, `backoff`, which passes every seed tried.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use lockstep::prelude::*;

use crate::support::secs;
use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "retry-backoff",
    "retries with exponential backoff against a 70%-failing service: delays 0.1, 0.2, 0.4 s, then give up",
    &[Variant::new("backoff", Expect::Pass, |sim| sim.run(demonstrate_retry()))],
)
.seeds(1000);

/// The tutorial's `unreliable_service_call`.
async fn unreliable_service_call(call_id: &str) -> Result<String, String> {
    sleep(Duration::from_millis(100)).await;
    if lockstep::random::f64() < 0.7 {
        return Err(format!("Service call {call_id} failed"));
    }
    Ok(format!("Service result {call_id}"))
}

/// The tutorial's `retry_with_backoff`.
pub async fn retry_with_backoff<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    mut operation: impl FnMut() -> F,
    max_retries: u32,
    base_delay: Duration,
) -> Result<T, E> {
    let mut attempt = 0;
    loop {
        match operation().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt == max_retries => return Err(e),
            Err(e) => {
                let delay = base_delay * 2u32.pow(attempt);
                lockstep::trace!("attempt {} failed: {e}. Retrying in {delay:?}", attempt + 1);
                sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

/// The tutorial's retry demo.
pub async fn demonstrate_retry() {
    let starts = Rc::new(RefCell::new(Vec::new()));
    let s = starts.clone();
    let result = retry_with_backoff(
        move || {
            s.borrow_mut().push(Instant::now().since_start());
            unreliable_service_call("RetryTest")
        },
        3,
        secs(0.1),
    )
    .await;
    let starts = starts.borrow();
    lockstep::trace!("attempts started at {starts:?}: {result:?}");
    let expected = [secs(0.0), secs(0.2), secs(0.5), secs(1.0)];
    assert!(!starts.is_empty() && starts.len() <= 4);
    assert_eq!(
        starts[..],
        expected[..starts.len()],
        "backoff 0.1, 0.2, 0.4 s"
    );
    match result {
        Ok(_) => assert_eq!(
            Instant::now().since_start(),
            starts[starts.len() - 1] + secs(0.1)
        ),
        Err(e) => {
            assert_eq!(starts.len(), 4, "gives up only after max_retries");
            assert_eq!(e, "Service call RetryTest failed");
            assert_eq!(Instant::now().since_start(), secs(1.1));
        }
    }
}
