//! Scenarios: named programs with variants, each declaring what exploring
//! its seeds must show.
//!
//! A [`Scenario`] is what the `lockstep` command line runs by name: a
//! kebab-case name, one line of description, and [`Variant`]s. Each variant
//! is a function from a configured [`Sim`] to its [`Outcome`], and an
//! [`Expect`]ation: pass every seed (a correct or fixed program), or fail
//! some seed with a named [`FailureKind`] (a buggy program the explorer must
//! catch). The runner decides the seed, the policy, the verbosity and the
//! fault plan; a variant that needs other settings (a blocked-poll
//! threshold, a time limit) starts from `sim.to_builder()`.
//!
//! Everything here is `const`-constructible, so a crate registers its
//! scenarios as a `static` slice:
//!
//! ```
//! use lockstep::cli::{Expect, Scenario, Variant};
//! use lockstep::check::FailureKind;
//!
//! static SCENARIOS: &[Scenario] = &[Scenario::new(
//!     "two-adds",
//!     "two tasks add to one counter",
//!     &[
//!         Variant::new("fixed", Expect::Pass, |sim| sim.run(async {})),
//!         Variant::new("buggy", Expect::Fails(FailureKind::Panic), |sim| {
//!             sim.run(async { panic!("lost update") })
//!         }),
//!     ],
//! )
//! .seeds(50)];
//!
//! let outcome = SCENARIOS[0].variant("buggy").unwrap().run_seed(7u64);
//! assert!(outcome.failure().is_some());
//! ```

use crate::check::FailureKind;
use crate::{Outcome, Seed, Sim, Verbosity};

/// What exploring a variant's seeds must show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expect {
    /// Every seed passes: a correct program, or a buggy one's fix.
    Pass,
    /// Some seed fails, and with this kind of failure: a buggy program the
    /// explorer must catch. `lockstep explore` judges by the first failing
    /// seed of the sweep: it must fail with this kind (later seeds failing
    /// another way are listed, not held against the variant, since a buggy
    /// program may fail in more than one way).
    Fails(FailureKind),
}

impl Expect {
    /// Whether one run's result is allowed by this expectation
    /// (`None`: the run passed).
    pub fn allows(&self, failure: Option<FailureKind>) -> bool {
        match (self, failure) {
            (_, None) => true,
            (Expect::Pass, Some(_)) => false,
            (Expect::Fails(want), Some(got)) => *want == got,
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Pass => f.write_str("passes every seed"),
            Expect::Fails(kind) => write!(f, "fails some seed with {kind}"),
        }
    }
}

/// One runnable version of a scenario (`buggy`, `fixed`, …).
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    name: &'static str,
    expect: Expect,
    run: fn(&Sim) -> Outcome<()>,
}

impl Variant {
    /// A variant: its name, what its seeds must show, and how to run one.
    pub const fn new(name: &'static str, expect: Expect, run: fn(&Sim) -> Outcome<()>) -> Variant {
        Variant { name, expect, run }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// What exploring it must show.
    pub fn expect(&self) -> Expect {
        self.expect
    }

    /// Runs it in `sim` (any seed, policy, verbosity or fault plan).
    pub fn run(&self, sim: &Sim) -> Outcome<()> {
        (self.run)(sim)
    }

    /// Runs one seed with every other setting at its default (full trace).
    pub fn run_seed(&self, seed: impl Into<Seed>) -> Outcome<()> {
        self.run(&Sim::new(seed))
    }

    /// Runs one seed with tracing off: the fast way to sweep seeds. The
    /// decision hash is kept, so a traced replay can be checked against it.
    pub fn run_untraced(&self, seed: impl Into<Seed>) -> Outcome<()> {
        self.run(&Sim::builder().seed(seed).verbosity(Verbosity::Off).build())
    }
}

/// A named program with variants.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    name: &'static str,
    description: &'static str,
    variants: &'static [Variant],
    seeds: u64,
}

impl Scenario {
    /// How many seeds `explore` tries per variant unless told otherwise.
    pub const DEFAULT_SEEDS: u64 = 200;

    /// A scenario: kebab-case name, one line of description, variants.
    pub const fn new(
        name: &'static str,
        description: &'static str,
        variants: &'static [Variant],
    ) -> Scenario {
        Scenario {
            name,
            description,
            variants,
            seeds: Self::DEFAULT_SEEDS,
        }
    }

    /// Sets how many seeds `explore` tries per variant by default.
    pub const fn seeds(mut self, seeds: u64) -> Scenario {
        self.seeds = seeds;
        self
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its one-line description.
    pub fn description(&self) -> &'static str {
        self.description
    }

    /// Its variants.
    pub fn variants(&self) -> &'static [Variant] {
        self.variants
    }

    /// A variant by name.
    pub fn variant(&self, name: &str) -> Option<&'static Variant> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// How many seeds `explore` tries per variant by default.
    pub fn default_seeds(&self) -> u64 {
        self.seeds
    }
}
