//! The asyncio deep-dive's patterns, ported to lockstep.
//!
//! Every scenario is real Rust on lockstep's public API and states its
//! invariants as assertions. Where the tutorial shows a mistake, the
//! scenario has a `buggy` variant that keeps it and a `fixed` variant that
//! keeps the fix: exploring seeds must find a failing seed of every buggy
//! variant, and every fixed variant must pass every seed tried. Where a
//! pattern the tutorial presents as correct turned out racy under some
//! schedule, it is kept as a `buggy` variant too, and its module says so.
//!
//! The HTTP scenarios fetch from a simulated httpbin ([`http`]) over the
//! simulated network, with hyper on both ends.
//!
//! The `lockstep` binary of this crate explores them all.

pub use lockstep::cli::{Expect, Scenario, Variant};

pub mod http;
mod support;

pub mod as_completed_timeout;
pub mod batching;
pub mod circuit_breaker;
pub mod connection_pool;
pub mod coroutines_vs_tasks;
pub mod event_pipeline;
pub mod exception_propagation;
pub mod forgotten_await;
pub mod gather_semantics;
pub mod lock_ordering;
pub mod lost_update;
pub mod producer_consumer;
pub mod rate_limited_scraper;
pub mod resource_leaks;
pub mod restaurant;
pub mod retry_backoff;
pub mod semaphore_downloads;
pub mod sequential_vs_concurrent;
pub mod task_management;
pub mod wait_conditions;

/// Every scenario, in catalogue order.
pub fn all() -> &'static [Scenario] {
    &[
        sequential_vs_concurrent::SCENARIO,
        restaurant::SCENARIO,
        coroutines_vs_tasks::SCENARIO,
        task_management::SCENARIO,
        gather_semantics::SCENARIO,
        as_completed_timeout::SCENARIO,
        wait_conditions::SCENARIO,
        lost_update::SCENARIO,
        producer_consumer::SCENARIO,
        semaphore_downloads::SCENARIO,
        event_pipeline::SCENARIO,
        exception_propagation::SCENARIO,
        retry_backoff::SCENARIO,
        circuit_breaker::SCENARIO,
        connection_pool::SCENARIO,
        batching::SCENARIO,
        resource_leaks::SCENARIO,
        lock_ordering::SCENARIO,
        forgotten_await::SCENARIO,
        rate_limited_scraper::SCENARIO,
    ]
}

/// Finds a scenario by name.
pub fn find(name: &str) -> Option<&'static Scenario> {
    all().iter().find(|s| s.name() == name)
}
