//! The asyncio deep-dive's patterns, ported to lockstep.
//!
//! Every scenario is real Rust on lockstep's public API and states its
//! invariants as assertions. Where the tutorial shows a mistake, the
//! scenario has a `buggy` variant that keeps it and a `fixed` variant that
//! keeps the fix: exploring seeds must find a failing seed of every buggy
//! variant, and every fixed variant must pass every seed tried.
//!
//! The `lockstep` binary of this crate explores them all.

use lockstep::{Outcome, Seed, Sim, Verbosity};

pub mod lock_ordering;
pub mod lost_update;

/// What a variant is expected to do across seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Some seed must fail (a buggy variant: the explorer must catch it).
    SomeSeedFails,
    /// Every seed must pass.
    AllSeedsPass,
}

/// One runnable version of a scenario.
pub struct Variant {
    /// `buggy`, `fixed`, …
    pub name: &'static str,
    /// What exploring it must show.
    pub expect: Expect,
    /// Runs the variant for one seed.
    pub run: fn(&Sim) -> Outcome<()>,
}

/// A scenario of the catalogue.
pub struct Scenario {
    /// Kebab-case name (`lost-update`).
    pub name: &'static str,
    /// One line.
    pub description: &'static str,
    /// Its variants.
    pub variants: &'static [Variant],
}

impl Variant {
    /// Runs one seed with default settings (full tracing).
    pub fn run_seed(&self, seed: Seed) -> Outcome<()> {
        (self.run)(&Sim::new(seed))
    }

    /// Runs one seed with tracing off: the fast way to sweep seeds. The
    /// decision hash is kept, so a traced replay can be checked against it.
    pub fn run_untraced(&self, seed: Seed) -> Outcome<()> {
        (self.run)(&Sim::builder().seed(seed).verbosity(Verbosity::Off).build())
    }
}

/// Every scenario, in catalogue order.
pub fn all() -> &'static [Scenario] {
    &[lost_update::SCENARIO, lock_ordering::SCENARIO]
}

/// Finds a scenario by name.
pub fn find(name: &str) -> Option<&'static Scenario> {
    all().iter().find(|s| s.name == name)
}
