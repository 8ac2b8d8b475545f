//! Swarm testing: each seed enables its own subset of fault kinds and
//! buggify points, at its own intensity.
//!
//! Running every fault kind at once on every seed makes rare combinations
//! no likelier than common ones, and a fault that masks another (a crashed
//! host cannot be partitioned) hides it. FoundationDB's and TigerBeetle's
//! simulators vary the configuration per seed instead ("swarm testing",
//! Groce et al. 2012): some seeds only partition, some only crash and
//! delay, some run buggify points at full tilt. Here a [`Swarm`] is drawn
//! from the seed by [`Policy::Swarm`](crate::Policy::Swarm) and
//! [`Policy::Mix`](crate::Policy::Mix), printed in the trace, and carried
//! in the run's [`Schedule`](super::Schedule) so that a replay uses it too.
//!
//! What it changes: random fault plans ([`FaultPlan::random`] and
//! [`FaultPlan::generate`] through the run) keep only the enabled kinds,
//! at the scaled intensity; `buggify!` points are enabled with the swarm's
//! probability instead of one in four. Hand-written plans and explicit
//! fault calls are the author's intent and are left alone.
//!
//! [`FaultPlan::random`]: crate::fault::FaultPlan::random
//! [`FaultPlan::generate`]: crate::fault::FaultPlan::generate

use std::fmt;
use std::str::FromStr;

/// The fault kinds a swarm configuration switches, in bit order (the
/// fault module maps each action to one; the runtime does not know
/// faults).
const KINDS: [&str; 7] = [
    "partition",
    "one-way",
    "crash",
    "pause",
    "clock",
    "loss",
    "delay",
];
const INTENSITIES: [u16; 5] = [25, 50, 100, 200, 400];
const BUGGIFY: [u16; 5] = [0, 100, 250, 500, 1000];

/// One seed's swarm configuration: which random fault kinds are on, how
/// intense random fault plans are, and how likely each `buggify!` point is
/// to be enabled. Text form `k<mask>i<percent>b<per-mille>` (`k5i200b100`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Swarm {
    pub(crate) kinds: u8,
    intensity_percent: u16,
    buggify_per_mille: u16,
}

impl Swarm {
    /// Draws a configuration from `draw` (uniform `u64`s).
    pub(crate) fn draw(mut draw: impl FnMut() -> u64) -> Swarm {
        let mut kinds = 0u8;
        for bit in 0..KINDS.len() {
            if draw() & 1 == 1 {
                kinds |= 1 << bit;
            }
        }
        if kinds == 0 {
            kinds = 1 << (draw() % KINDS.len() as u64);
        }
        let pick = |x: u64, of: &[u16]| of[(x % of.len() as u64) as usize];
        Swarm {
            kinds,
            intensity_percent: pick(draw(), &INTENSITIES),
            buggify_per_mille: pick(draw(), &BUGGIFY),
        }
    }

    /// Whether random fault plans may use fault kind `bit` (the order of
    /// `KINDS`; the fault module maps actions to kinds).
    pub(crate) fn kind_enabled(&self, bit: u8) -> bool {
        self.kinds & (1 << bit) != 0
    }

    /// The factor applied to a random fault plan's intensity.
    pub fn intensity_factor(&self) -> f64 {
        f64::from(self.intensity_percent) / 100.0
    }

    /// The probability that a `buggify!` point is enabled for the run.
    pub fn buggify_enabled(&self) -> f64 {
        f64::from(self.buggify_per_mille) / 1000.0
    }

    /// A sentence for the trace and reports.
    pub fn describe(&self) -> String {
        let kinds: Vec<&str> = KINDS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.kinds & (1 << i) != 0)
            .map(|(_, k)| *k)
            .collect();
        format!(
            "swarm {self}: random faults {} at {}% intensity; buggify points enabled {}",
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds.join("+")
            },
            self.intensity_percent,
            match self.buggify_per_mille {
                0 => "never".to_string(),
                1000 => "always".to_string(),
                p => format!("with probability {}", f64::from(p) / 1000.0),
            }
        )
    }
}

impl fmt::Display for Swarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "k{:x}i{}b{}",
            self.kinds, self.intensity_percent, self.buggify_per_mille
        )
    }
}

impl FromStr for Swarm {
    type Err = String;

    fn from_str(s: &str) -> Result<Swarm, String> {
        let bad = || {
            format!("swarm `{s}` is not `k<hex mask>i<percent>b<per-mille>` (like `k5i200b100`)")
        };
        let rest = s.strip_prefix('k').ok_or_else(bad)?;
        let (kinds, rest) = rest.split_once('i').ok_or_else(bad)?;
        let (intensity, buggify) = rest.split_once('b').ok_or_else(bad)?;
        let swarm = Swarm {
            kinds: u8::from_str_radix(kinds, 16).map_err(|_| bad())?,
            intensity_percent: intensity.parse().map_err(|_| bad())?,
            buggify_per_mille: buggify.parse().map_err(|_| bad())?,
        };
        if swarm.kinds >= 1 << KINDS.len() || swarm.buggify_per_mille > 1000 {
            return Err(bad());
        }
        Ok(swarm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_draws_vary() {
        let mut x = 0u64;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let s = Swarm::draw(|| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                x >> 33
            });
            assert_eq!(s.to_string().parse::<Swarm>().unwrap(), s);
            assert_ne!(s.kinds, 0);
            seen.insert(s.to_string());
        }
        assert!(seen.len() > 10);
        assert!("k80i1b1".parse::<Swarm>().is_err());
        assert!("nope".parse::<Swarm>().unwrap_err().contains("k5i200b100"));
    }
}
