//! The asyncio deep-dive's patterns, ported to lockstep.
//!
//! Every scenario is real Rust on lockstep's public API and states its
//! invariants as assertions. Where the tutorial shows a mistake, the
//! scenario has a `buggy` variant that keeps it and a `fixed` variant that
//! keeps the fix: exploring seeds must find a failing seed of every buggy
//! variant, and every fixed variant must pass every seed tried.
//!
//! The `lockstep` binary of this crate explores them all.

pub use lockstep::cli::{Expect, Scenario, Variant};

pub mod http;
pub mod lock_ordering;
pub mod lost_update;

/// Every scenario, in catalogue order.
pub fn all() -> &'static [Scenario] {
    &[lost_update::SCENARIO, lock_ordering::SCENARIO]
}

/// Finds a scenario by name.
pub fn find(name: &str) -> Option<&'static Scenario> {
    all().iter().find(|s| s.name() == name)
}
