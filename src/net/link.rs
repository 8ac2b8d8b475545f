//! Link settings: latency distributions, jitter, loss, duplication,
//! reordering.
//!
//! A link is one direction between two hosts. Every host pair uses the
//! default link ([`set_default_link`](super::set_default_link)) unless
//! [`set_link`](super::set_link) gave it its own settings. Traffic between
//! sockets of one host (loopback) takes no time and never fails.
//!
//! What each setting does to datagrams and to streams is in the table of
//! the [`net`](super) module docs.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;
use serde::{Deserialize, Serialize};

/// A uniform `f64` in `[0, 1)` from 53 random bits.
pub(crate) fn unit(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Rounds nanoseconds up to whole microseconds.
pub(crate) fn round_micros(nanos: u64) -> u64 {
    match nanos % 1_000 {
        0 => nanos,
        r => nanos.saturating_add(1_000 - r),
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How long a message takes to cross a link, before jitter.
///
/// ```
/// use lockstep::net::Latency;
/// use std::time::Duration;
///
/// // A WAN link: half the messages take under 40 ms, one in a hundred over 250 ms.
/// let wan = Latency::LongTail { median: Duration::from_millis(40), p99: Duration::from_millis(250) };
/// # let _ = wan;
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Latency {
    /// Always the same.
    Constant(Duration),
    /// Uniform between `min` and `max` (inclusive of `min`).
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
    /// Exponential with this mean: mostly short, sometimes several times
    /// the mean (queueing in a busy switch).
    Exponential {
        /// The mean.
        mean: Duration,
    },
    /// Log-normal, set by its median and 99th percentile: the long tail of
    /// real networks (a GC on a middlebox, a retransmission on a lossy
    /// hop). Samples are capped at 100 × `p99`.
    LongTail {
        /// Half the messages are faster than this.
        median: Duration,
        /// 99% of the messages are faster than this (at least `median`).
        p99: Duration,
    },
}

impl Latency {
    /// A sample in nanoseconds.
    pub(crate) fn sample(&self, rng: &mut ChaCha8Rng) -> u64 {
        match self {
            Latency::Constant(d) => nanos(*d),
            Latency::Uniform { min, max } => {
                let (lo, hi) = (nanos(*min), nanos(*max));
                if hi <= lo {
                    return lo;
                }
                lo + ((rng.next_u64() as u128 * (hi - lo + 1) as u128) >> 64) as u64
            }
            Latency::Exponential { mean } => {
                let u = unit(rng.next_u64());
                (-(1.0 - u).ln() * nanos(*mean) as f64) as u64
            }
            Latency::LongTail { median, p99 } => {
                let (m, p) = (nanos(*median) as f64, nanos(*p99) as f64);
                if m <= 0.0 {
                    return 0;
                }
                // sigma such that the 99th percentile (z = 2.326) is p99.
                let sigma = (p.max(m) / m).ln() / 2.326_347_874;
                // Box-Muller: a standard normal from two uniforms.
                let (u1, u2) = (unit(rng.next_u64()), unit(rng.next_u64()));
                let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (m * (sigma * z).exp()).min(100.0 * p.max(m)) as u64
            }
        }
    }
}

/// The settings of a link (one direction between two hosts).
///
/// Build one from the default and change what matters:
///
/// ```
/// use lockstep::net::{LinkConfig, Latency};
/// use std::time::Duration;
///
/// let flaky = LinkConfig::default()
///     .latency(Latency::Exponential { mean: Duration::from_millis(20) })
///     .jitter(Duration::from_millis(5))
///     .loss(0.1)          // one datagram in ten is lost
///     .duplicate(0.01)    // one in a hundred arrives twice
///     .reorder(0.05);     // one in twenty is held back and overtaken
/// assert_eq!(flaky.loss, 0.1);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkConfig {
    /// The latency distribution (default: uniform 1 to 3 ms, a quiet LAN).
    pub latency: Latency,
    /// Extra delay, uniform in `[0, jitter)`, added to every message
    /// (default: none).
    pub jitter: Duration,
    /// Probability that a datagram is lost; on streams, that a segment needs
    /// a retransmission (default: 0).
    pub loss: f64,
    /// Probability that a datagram is delivered twice (default: 0).
    pub duplicate: f64,
    /// Probability that a datagram is held back by an extra 1 to 10 times
    /// its latency, so that later ones overtake it (default: 0).
    pub reorder: f64,
    /// The send window of streams opened over this link, for the end that
    /// sends in this direction (default: `None`, the simulation's
    /// [`TcpConfig::send_window`](super::TcpConfig::send_window)).
    #[serde(default)]
    pub send_window: Option<usize>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Latency::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(3),
            },
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            send_window: None,
        }
    }
}

fn probability(what: &str, p: f64) -> f64 {
    assert!(
        (0.0..=1.0).contains(&p),
        "lockstep::net::LinkConfig::{what}: {p} is not a probability (expected 0.0 to 1.0)"
    );
    p
}

impl LinkConfig {
    /// Sets the send window of streams opened over this link (the end that
    /// sends in this direction): a thin pipe that holds a writer back
    /// sooner.
    ///
    /// # Panics
    ///
    /// For a window of 0 (a write could never proceed).
    #[track_caller]
    pub fn send_window(mut self, bytes: usize) -> Self {
        assert!(
            bytes > 0,
            "lockstep::net::LinkConfig::send_window(0): the window must be at least 1 byte"
        );
        self.send_window = Some(bytes);
        self
    }

    /// A link that never fails, with a constant latency.
    pub fn constant(latency: Duration) -> LinkConfig {
        LinkConfig::default().latency(Latency::Constant(latency))
    }

    /// Sets the latency distribution.
    pub fn latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// Sets the jitter.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the loss probability.
    ///
    /// # Panics
    ///
    /// If `p` is not between 0 and 1.
    pub fn loss(mut self, p: f64) -> Self {
        self.loss = probability("loss", p);
        self
    }

    /// Sets the duplication probability.
    ///
    /// # Panics
    ///
    /// If `p` is not between 0 and 1.
    pub fn duplicate(mut self, p: f64) -> Self {
        self.duplicate = probability("duplicate", p);
        self
    }

    /// Sets the reordering probability.
    ///
    /// # Panics
    ///
    /// If `p` is not between 0 and 1.
    pub fn reorder(mut self, p: f64) -> Self {
        self.reorder = probability("reorder", p);
        self
    }

    /// One latency sample plus jitter, in nanoseconds, rounded to whole
    /// microseconds (traces stay readable: `0.002417s`).
    pub(crate) fn sample(&self, rng: &mut ChaCha8Rng) -> u64 {
        let mut lat = self.latency.sample(rng);
        let jitter = nanos(self.jitter);
        if jitter != 0 {
            lat += ((rng.next_u64() as u128 * jitter as u128) >> 64) as u64;
        }
        round_micros(lat)
    }
}

/// What fault actions lay over a link's own settings (cleared by
/// `link-restore`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Overlay {
    pub(crate) loss: Option<f64>,
    pub(crate) delay: Duration,
}

impl Overlay {
    pub(crate) fn delay_nanos(&self) -> u64 {
        nanos(self.delay)
    }
}
