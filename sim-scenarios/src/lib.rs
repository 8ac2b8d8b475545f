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
//! | scenario | variants (expected) | what exploring shows |
//! |---|---|---|
//! | [`sequential-vs-concurrent`](sequential_vs_concurrent) | sequential, concurrent (pass) | three `/delay/2`: 6 s vs 2 s of virtual time |
//! | [`restaurant`] | gather (pass) | orders finish by service time, all at 3 s |
//! | [`coroutines-vs-tasks`](coroutines_vs_tasks) | coroutines, tasks (pass) | 5 s awaited in turn vs 2 s spawned |
//! | [`task-management`](task_management) | cancel-after-2s (pass) | every worker ends ok, failed or cancelled; the tie at 2 s goes both ways |
//! | [`gather-semantics`](gather_semantics) | buggy (leak), fixed (pass) | fail-fast `gather` leaves its siblings running |
//! | [`as-completed-timeout`](as_completed_timeout) | tutorial (pass) | completion order; the timeout after A and C |
//! | [`wait-conditions`](wait_conditions) | tutorial (pass) | first-completed, first-exception, timeout; cancellations awaited |
//! | [`lost-update`](lost_update) | buggy (panic), fixed (pass) | read, suspend, write loses increments |
//! | [`producer-consumer`](producer_consumer) | lock (pass) | nine items, each processed once |
//! | [`semaphore-downloads`](semaphore_downloads) | limited (pass), unlimited (panic) | at most 3 in flight, peak exactly 3 |
//! | [`event-pipeline`](event_pipeline) | tutorial (pass) | events release every stage; `wait_for` both ways |
//! | [`exception-propagation`](exception_propagation) | tutorial (pass) | fail-fast, per-task, timeouts, partial completion |
//! | [`retry-backoff`](retry_backoff) | backoff (pass) | retries at 0.1, 0.2, 0.4 s, then give up |
//! | [`circuit-breaker`](circuit_breaker) | sequential (pass), buggy (panic), fixed (pass) | the tutorial's breaker is racy under concurrent callers |
//! | [`connection-pool`](connection_pool) | pooled, per-request, sequential (pass) | at most 10 connections; pooled is faster sequentially |
//! | [`batching`] | gathered, sequential (pass) | batching is slower gathered, 2x faster in sequence |
//! | [`blocking-the-loop`](blocking_the_loop) | buggy (blocked-poll), fixed (pass) | a blocking call holds every task |
//! | [`resource-leaks`](resource_leaks) | buggy, buggy-error-path (leak), fixed (pass) | unclosed sessions' connections reported |
//! | [`lock-ordering-deadlock`](lock_ordering) | buggy (deadlock), fixed (pass) | the cycle, found when it closes |
//! | [`forgotten-await`](forgotten_await) | buggy (unobserved-error), fixed (pass) | a dropped task's error |
//! | [`rate-limited-scraper`](rate_limited_scraper) | buggy (panic), fixed (pass) | the tutorial's rate limiter lets requests through together |
//!
//! The `lockstep` binary of this crate explores them all.

pub use lockstep::cli::{Expect, Scenario, Variant};

pub mod http;
mod support;

pub mod as_completed_timeout;
pub mod batching;
pub mod blocking_the_loop;
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
        blocking_the_loop::SCENARIO,
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
