//! `buggify!`: fault points in the code under test.
//!
//! Borrowed from FoundationDB's simulation: a `buggify!()` point marks a
//! place where the code may take a rare path on purpose (a spurious
//! timeout, a short read, a dropped cache entry) to shake out the code
//! that handles it. Inside a simulation, each point is *enabled* for the
//! run with probability 1/4 the first time it is reached; an enabled point
//! fires with probability 1/4 each time it is reached (or the probability
//! given: `buggify!(0.05)`). Both draws come from the seed, so a run that
//! fired a point fires it again on replay. Outside a simulation, or with
//! [`SimBuilder::buggify(false)`](crate::SimBuilder::buggify), a point never
//! fires and costs a thread-local read.
//!
//! Every firing is recorded in the trace with its site
//! (`buggify fired at src/cache.rs:42`).

use std::borrow::Cow;

use rand_chacha::rand_core::Rng;

use crate::check::Site;
use crate::net::{fabric, unit};
use crate::runtime::context;
use crate::trace::EventKind;

/// Probability that a point is enabled for a run.
const ENABLE: f64 = 0.25;

/// What `buggify!` expands to. Not a public API.
#[doc(hidden)]
pub fn __buggify(probability: f64, file: &'static str, line: u32, column: u32) -> bool {
    context::try_with(|w| {
        if !w.config.buggify {
            return false;
        }
        // A swarm configuration decides how many points a seed enables.
        let enable = w.swarm.map_or(ENABLE, |s| s.buggify_enabled());
        let fired = fabric::with(w, |f| {
            let rng = &mut f.fault_rng;
            let enabled = *f
                .buggify_sites
                .entry((file, line, column))
                .or_insert_with(|| unit(rng.next_u64()) < enable);
            enabled && unit(rng.next_u64()) < probability
        });
        if fired {
            w.mix(u64::from(line) << 32 | u64::from(column));
            w.record(EventKind::Buggify {
                site: Site {
                    file: Cow::Borrowed(file),
                    line,
                    column,
                },
            });
        }
        fired
    })
    .unwrap_or(false)
}

/// A fault point: `true` when the code should take its rare path now.
///
/// Fires only inside a simulation, for seeds that enable this point (one
/// in four), one time in four (or with the probability given). See the
/// [`fault`](crate::fault) module.
///
/// ```
/// use lockstep::prelude::*;
///
/// fn read_chunk(len: usize) -> usize {
///     if lockstep::buggify!() {
///         return len / 2; // a short read: callers must loop
///     }
///     len
/// }
///
/// let fired: Vec<bool> = (0..40u64)
///     .map(|seed| Sim::new(seed).run(async { (0..10).any(|_| read_chunk(8) == 4) }).into_result().unwrap())
///     .collect();
/// assert!(fired.contains(&true) && fired.contains(&false));
/// assert_eq!(read_chunk(8), 8); // never outside a simulation
/// ```
#[macro_export]
macro_rules! buggify {
    () => {
        $crate::fault::__buggify(0.25, ::std::file!(), ::std::line!(), ::std::column!())
    };
    ($probability:expr) => {
        $crate::fault::__buggify(
            $probability,
            ::std::file!(),
            ::std::line!(),
            ::std::column!(),
        )
    };
}
