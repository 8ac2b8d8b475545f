//! Virtual instants: nanoseconds since the start of the run, as a `u64`.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use serde::{Deserialize, Serialize};

use super::Duration;
use crate::runtime::context;

/// A point in virtual time: nanoseconds since the simulation started.
///
/// Every run starts at `Instant::START` (rendered `0.000s`), so instants are
/// the same in every run of a seed and print the same way in every trace.
/// It plays the role of `std::time::Instant` inside a simulation; it is not
/// convertible to it on purpose (the wall clock has no place in a run).
///
/// ```
/// use lockstep::prelude::*;
///
/// let outcome = Sim::new(1).run(async {
///     let start = Instant::now();
///     sleep(Duration::from_millis(1500)).await;
///     Instant::now() - start
/// });
/// assert_eq!(outcome.into_result().unwrap(), Duration::from_millis(1500));
/// ```
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Instant(u64);

impl Instant {
    /// The start of every run.
    pub const START: Instant = Instant(0);

    /// The latest representable instant (about 584 years into the run).
    pub const MAX: Instant = Instant(u64::MAX);

    /// The current virtual time of the running simulation, as the clock of
    /// the current task's host reads it (the simulation's own time for tasks
    /// on no host, or on a host whose clock was never skewed).
    ///
    /// # Panics
    ///
    /// Outside a simulation.
    #[track_caller]
    pub fn now() -> Instant {
        context::with("lockstep::time::Instant::now", |w| w.local_now())
    }

    /// The instant `nanos` nanoseconds after the start of the run.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    /// Nanoseconds since the start of the run.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Virtual time since the start of the run.
    pub const fn since_start(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// Virtual time elapsed since `self`.
    #[track_caller]
    pub fn elapsed(self) -> Duration {
        Instant::now().saturating_duration_since(self)
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later (like
    /// `std::time::Instant::duration_since`).
    pub fn duration_since(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }

    /// Time from `earlier` to `self`, or `None` if `earlier` is later.
    pub fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_nanos)
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, or `None` on overflow.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        u64::try_from(d.as_nanos())
            .ok()
            .and_then(|n| self.0.checked_add(n))
            .map(Instant)
    }

    /// `self - d`, or `None` before the start of the run.
    pub fn checked_sub(self, d: Duration) -> Option<Instant> {
        u64::try_from(d.as_nanos())
            .ok()
            .and_then(|n| self.0.checked_sub(n))
            .map(Instant)
    }

    /// `self + d`, clamped to [`Instant::MAX`]. Sleeping "forever"
    /// (`Duration::MAX`) lands here.
    pub fn saturating_add(self, d: Duration) -> Instant {
        self.checked_add(d).unwrap_or(Instant::MAX)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// # Panics
    /// On overflow past [`Instant::MAX`]; use [`Instant::saturating_add`] to clamp.
    fn add(self, d: Duration) -> Instant {
        self.checked_add(d)
            .expect("overflow when adding a duration to a lockstep Instant")
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// # Panics
    /// Before the start of the run.
    fn sub(self, d: Duration) -> Instant {
        self.checked_sub(d)
            .expect("subtracting this duration would go before the start of the run")
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturates to zero when `rhs` is later, like `std::time::Instant`.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Display for Instant {
    /// Seconds since the start of the run: `1.500s`, `0.000250s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format_duration(self.since_start()))
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Formats a duration the way traces and reports print times: seconds with
/// millisecond precision, widened to micro- or nanoseconds only when those
/// digits are not zero (`2.000s`, `0.150s`, `1.000250s`, `0.000000001s`).
pub fn format_duration(d: Duration) -> String {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    if nanos % 1_000_000 == 0 {
        format!("{secs}.{:03}s", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{secs}.{:06}s", nanos / 1_000)
    } else {
        format!("{secs}.{nanos:09}s")
    }
}
