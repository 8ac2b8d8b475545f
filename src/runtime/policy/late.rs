//! Late polls: the clock may move to the next timer while tasks are ready.
//!
//! Virtual time moves only when nothing is ready, so on an idle simulated
//! executor a woken task always runs before any later timer fires. A real
//! executor is loaded: a task woken at 1 ms may first be polled at 4 ms,
//! after its 3 ms timeout fired. A bug that needs that order (the ordinary
//! "woken, but the timeout won" race) is out of reach unless the author
//! happens to write equal durations. With late polls on, before each step
//! with a timer due within the window, the policy draws whether to move the
//! clock to that timer first (firing it) and poll the ready tasks after.
//!
//! Only tasks woken by an event (a message, a notify, a lock handed over)
//! are delayed. While a task that has never been polled (just spawned, on a
//! host that just started) is alive, or a task its own timer woke is ready,
//! the clock stays put: start-up order (a server binding its listener
//! before a client spawned in the same instant connects) is not mistaken
//! for the race, and a sleep or a timeout returns exactly at its deadline
//! (`sleep(5ms)` then `elapsed() == 5ms` holds, whatever other timers are
//! due). A task that runs late on its timer is what a poll cost models.
//!
//! The draw comes from its own stream (`LATE`), so turning late polls on
//! does not shift which task the scheduler picks at the steps where the
//! clock stays put. Each early move is traced (`sched: late poll: ...`),
//! counted in [`Stats::late_polls`](crate::Stats::late_polls), and recorded
//! in the run's schedule (`t`).

use std::fmt;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;

use super::below;
use crate::runtime::Seed;
use crate::runtime::world::{rng_for, stream};
use crate::time::{Duration, format_duration};

/// Late polls: with `probability` per step, when a timer is due within
/// `within`, the clock moves to it although tasks are ready.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::explore::LatePolls;
///
/// let late = LatePolls::new(0.25, Duration::from_millis(10));
/// assert_eq!(late.to_string(), "late polls 1 in 4 within 0.010s");
/// let sim = Sim::builder().late_polls(late).build();
/// # let _ = sim;
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatePolls {
    probability: f64,
    within: Duration,
}

impl LatePolls {
    /// Late polls with this probability per step (clamped to `0..=1`),
    /// for timers due within `within` of now.
    pub fn new(probability: f64, within: Duration) -> LatePolls {
        let probability = if probability.is_nan() {
            0.0
        } else {
            probability.clamp(0.0, 1.0)
        };
        LatePolls {
            probability,
            within,
        }
    }

    /// No late polls.
    pub const OFF: LatePolls = LatePolls {
        probability: 0.0,
        within: Duration::ZERO,
    };

    /// The probability per step.
    pub fn probability(&self) -> f64 {
        self.probability
    }

    /// How far ahead a timer may be for the clock to move to it early.
    pub fn within(&self) -> Duration {
        self.within
    }

    pub(crate) fn is_on(&self) -> bool {
        self.probability > 0.0 && !self.within.is_zero()
    }

    /// A setting drawn for one seed of `Policy::Mix`: 1 in 8, 1 in 4 or
    /// 1 in 2, within 10 ms or 100 ms. Always on: a late poll that comes
    /// too early (before the task that would wake the late one has run)
    /// hides the race as surely as none, so middling probabilities find
    /// late-poll bugs fastest (measured on the corpus's lost wakeup).
    pub(crate) fn draw(rng: &mut ChaCha8Rng) -> LatePolls {
        const P: [f64; 3] = [0.125, 0.25, 0.5];
        const W: [u64; 2] = [10, 100];
        let p = P[below(rng, P.len())];
        let w = W[below(rng, W.len())];
        LatePolls::new(p, Duration::from_millis(w))
    }
}

impl fmt::Display for LatePolls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.is_on() {
            return f.write_str("late polls off");
        }
        let inv = 1.0 / self.probability;
        if (inv - inv.round()).abs() < 1e-9 {
            write!(f, "late polls 1 in {}", inv.round() as u64)?;
        } else {
            write!(f, "late polls {}", self.probability)?;
        }
        write!(f, " within {}", format_duration(self.within))
    }
}

impl LatePolls {
    /// The window of `late:P` when none is given.
    const DEFAULT_WITHIN: Duration = Duration::from_millis(10);

    /// The option's text form, as `explore --policy` and
    /// `#[sim_test(policy = "...")]` take it: `late:off` or
    /// `late:P:WITHIN` (`late:0.25:10ms`).
    pub(crate) fn spec(&self) -> String {
        if !self.is_on() {
            return "late:off".to_string();
        }
        format!(
            "late:{}:{}",
            self.probability,
            super::cost::compact(self.within)
        )
    }
}

impl std::str::FromStr for LatePolls {
    type Err = String;

    /// `late:off`, `late:P` or `late:P:WITHIN`: with probability `P` (from
    /// 0 to 1) per step, the clock moves to a timer due within `WITHIN`
    /// (default 10 ms) although tasks are ready.
    fn from_str(s: &str) -> Result<LatePolls, String> {
        let accepted = "late polls are `late:off`, `late:P` or `late:P:WITHIN`: with \
                        probability P (0 to 1) per step the clock moves early to a timer due \
                        within WITHIN (default 10ms), e.g. `late:0.25:10ms`";
        let rest = s
            .trim()
            .strip_prefix("late:")
            .ok_or_else(|| format!("`{s}`: {accepted}"))?;
        if rest == "off" {
            return Ok(LatePolls::OFF);
        }
        let (p, within) = match rest.split_once(':') {
            Some((p, w)) => (
                p,
                crate::time::parse_duration(w).map_err(|e| format!("`{s}`: {e}; {accepted}"))?,
            ),
            None => (rest, Self::DEFAULT_WITHIN),
        };
        match p.parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => Ok(LatePolls::new(p, within)),
            _ => Err(format!(
                "`{s}`: the probability `{p}` is not a number from 0 to 1; {accepted}"
            )),
        }
    }
}

/// Late polls in a run: the threshold and the stream.
///
/// The stream is made at its first draw: a fresh run of `Policy::Mix`
/// always has late polls on, but most short runs never have a timer due
/// within the window while tasks are ready, and so never draw. A stream is
/// a function of (seed, stream id), so making it later yields the same
/// values.
pub(crate) struct LateState {
    threshold: u64,
    within_ns: u64,
    seed: Seed,
    rng: Option<Box<ChaCha8Rng>>,
}

impl LateState {
    pub(crate) fn new(late: LatePolls, seed: Seed) -> LateState {
        let threshold = if late.probability >= 1.0 {
            u64::MAX
        } else {
            (late.probability * u64::MAX as f64) as u64
        };
        LateState {
            threshold,
            within_ns: u64::try_from(late.within.as_nanos()).unwrap_or(u64::MAX),
            seed,
            rng: None,
        }
    }

    /// Whether to move the clock `by` now.
    pub(crate) fn fire(&mut self, by: Duration) -> bool {
        if !u64::try_from(by.as_nanos()).is_ok_and(|ns| ns <= self.within_ns) {
            return false;
        }
        let seed = self.seed;
        let rng = self
            .rng
            .get_or_insert_with(|| Box::new(rng_for(seed, stream::LATE)));
        rng.next_u64() <= self.threshold
    }
}
