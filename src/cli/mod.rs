//! The `lockstep` command line, embeddable in any crate.
//!
//! A crate registers its [`Scenario`]s and gets every verb of the
//! `lockstep` binary for them. The workspace's own `lockstep` binary is
//! this runner with the built-in scenarios of `sim-scenarios`.

mod scenario;

pub use scenario::{Expect, Scenario, Variant};
