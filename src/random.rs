//! Seeded randomness for the program under test.
//!
//! Code inside a simulation must not use `rand::rng()` / `thread_rng`: their
//! values differ on every run, so a failing seed would not replay. Draw from
//! the simulation instead: [`rng`] returns a handle that implements
//! [`rand::Rng`] (use [`RngExt`] for `random_range` and
//! friends), and the free functions cover the common cases. Every draw comes
//! from a stream derived from the seed and is folded into the run's
//! determinism hash.
//!
//! ```
//! use lockstep::prelude::*;
//!
//! let roll = |seed| Sim::new(seed).run(async { lockstep::random::range(1..=6u8) });
//! assert_eq!(roll(9).into_result().unwrap(), roll(9).into_result().unwrap());
//! ```
//!
//! ## Which `rand`
//!
//! [`Rng`], [`RngExt`], and the bounds of [`range`] (`SampleUniform`,
//! `SampleRange`) are the `rand` crate's own, re-exported: this module's
//! API follows `rand`'s major version (0.10 today), and a new major `rand`
//! comes with a new major lockstep. Code that uses another `rand` can still
//! draw from the simulation through the functions whose signatures name no
//! `rand` type: [`u64()`], [`f64()`], [`fill`], [`bool()`] and [`duration`] (seed
//! its own generator with [`u64()`] for anything else; it then draws from the
//! seed too).

use std::convert::Infallible;

use rand::distr::uniform::{SampleRange, SampleUniform};
pub use rand::{Rng, RngExt};

use crate::runtime::context;

/// A handle to the running simulation's random stream.
///
/// Holds no state of its own: every draw goes to the simulation, so copies
/// and handles made in different tasks all share one seeded stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimRng {
    _private: (),
}

/// The running simulation's random stream.
pub fn rng() -> SimRng {
    SimRng { _private: () }
}

impl rand::TryRng for SimRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.try_next_u64()? as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(context::with("lockstep::random", |w| w.user_u64()))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        context::with("lockstep::random", |w| w.user_fill(dst));
        Ok(())
    }
}

/// A uniform value in `range` (`0..10`, `1..=6`, `0.0..1.0`).
///
/// # Panics
///
/// If the range is empty, or outside a simulation.
#[track_caller]
pub fn range<T: SampleUniform, R: SampleRange<T>>(range: R) -> T {
    inside("lockstep::random::range");
    assert!(
        !range.is_empty(),
        "lockstep::random::range: the range is empty; give a range with at least one value \
         (`0..10`, `1..=6`)"
    );
    rng().random_range(range)
}

/// Panics at the caller's line when called outside a simulation (rather
/// than deep inside `rand`).
#[track_caller]
fn inside(api: &'static str) {
    context::with(api, |_| ());
}

/// `true` with probability `p`.
///
/// # Panics
///
/// If `p` is not in `0.0..=1.0`, or outside a simulation.
#[track_caller]
pub fn bool(p: f64) -> bool {
    inside("lockstep::random::bool");
    assert!(
        (0.0..=1.0).contains(&p),
        "lockstep::random::bool: probability {p} is not between 0 and 1"
    );
    rng().random_bool(p)
}

/// A uniform `u64`.
#[track_caller]
pub fn u64() -> u64 {
    context::with("lockstep::random::u64", |w| w.user_u64())
}

/// Fills `dest` with random bytes.
///
/// # Panics
///
/// Outside a simulation.
pub fn fill(dest: &mut [u8]) {
    context::with("lockstep::random::fill", |w| w.user_fill(dest));
}

/// A uniform `f64` in `[0, 1)`.
#[track_caller]
pub fn f64() -> f64 {
    let x = context::with("lockstep::random::f64", |w| w.user_u64());
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform duration in `range`, at nanosecond resolution.
#[track_caller]
pub fn duration(range: std::ops::Range<std::time::Duration>) -> std::time::Duration {
    inside("lockstep::random::duration");
    assert!(
        range.start < range.end,
        "lockstep::random::duration: the range {range:?} is empty"
    );
    let lo = u64::try_from(range.start.as_nanos()).unwrap_or(u64::MAX);
    let hi = u64::try_from(range.end.as_nanos()).unwrap_or(u64::MAX);
    std::time::Duration::from_nanos(self::range(lo..hi))
}
