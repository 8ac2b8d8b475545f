//! Poll cost: virtual time charged for each poll, scaled by the speed of
//! the task's host.
//!
//! In a plain simulation a poll takes no virtual time: a task woken at
//! 1 ms runs at 1 ms, however many other tasks run first, and every host
//! is equally fast. A real executor is loaded and real machines differ:
//! while other tasks run, time passes, and a timer that falls due meanwhile
//! fires before the woken task is polled; a task on a slow host misses a
//! deadline its peers meet. With a [`PollCost`] on, each poll is charged a
//! seeded time drawn uniformly from `0..=max`, multiplied by the speed
//! factor of the polled task's host (each host draws a distinct factor
//! from `1x` to `slowest`x when it is created; tasks not on a host run at
//! `1x`). After a charged poll the clock moves by that time and the timers
//! due by then fire, in their usual (deadline, sequence) order, before the
//! next task is picked.
//!
//! The simulation is one executor: every host's polls run on it one after
//! the other, so a poll on a slow host holds up every task, as a
//! saturated core shared by all hosts would; a host is not a CPU of its
//! own (a model where each host's CPU is busy until its polls' time is
//! spent, while other hosts' tasks run, is not built).
//!
//! Unlike late polls ([`LatePolls`](super::LatePolls)), which jump to the
//! next timer, the charges make time flow with work: the author's own,
//! distinct durations decide which timer falls due during which stretch
//! of polls.
//!
//! Determinism and replay: the charges and the host speeds come from their
//! own stream of the seed (`COST`), one draw per poll and one per host, so
//! turning charges on does not shift the scheduler's or the late polls'
//! draws. A recorded [`Schedule`](super::Schedule) carries the setting
//! (`c<max ns>x<slowest>` in its configuration field) and its seed, so a
//! replay draws the same charges at the same polls. Never under `Fifo`;
//! off by default under `Random` and `Pct`.
//!
//! Tracing: the setting is noted when the run starts, each host's factor
//! when the host is created (both summary level); at full verbosity, a
//! charge that makes timers fall due is noted (`poll charged ...`), which
//! is where a woken task starts to run late. Charges that fire nothing are
//! only counted ([`Stats::poll_time`](crate::Stats::poll_time)).

use std::fmt;
use std::str::FromStr;

use rand_chacha::ChaCha8Rng;

use super::below;
use crate::runtime::Seed;
use crate::runtime::world::{rng_for, stream};
use crate::time::{Duration, format_duration};

/// The largest host slowdown factor [`PollCost::host_speeds`] accepts.
const MAX_SLOWEST: u32 = 64;

/// Virtual time charged per poll: up to `max`, times the host's speed
/// factor (hosts draw distinct factors from `1x` to `slowest`x).
///
/// Polls take no virtual time otherwise, so a woken task always runs
/// before any later timer, and every host is equally fast. With charges,
/// time flows while tasks work: a timer that falls due while other tasks
/// run fires before the woken task is polled (the cancellation race of a
/// loaded executor, with the author's own distinct durations), and the
/// tasks of a slow host lag behind their peers (a lease or heartbeat it
/// misses). Set it with [`SimBuilder::poll_cost`](crate::SimBuilder::poll_cost);
/// the charges come from the seed and a recorded schedule carries the
/// setting, so a replay repeats them.
///
/// Text form (`--policy random+cost:1ms:8x`, `#[sim_test(policy =
/// "random+cost:1ms:8x")]`): `cost:MAX` or `cost:MAX:Kx`.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::explore::PollCost;
///
/// let cost = PollCost::new(Duration::from_micros(500)).host_speeds(8);
/// assert_eq!(cost.to_string(), "cost:500us:8x");
/// assert_eq!("cost:500us:8x".parse::<PollCost>().unwrap(), cost);
/// let outcome = Sim::builder().poll_cost(cost).build().run(async {
///     for _ in 0..10 {
///         yield_now().await;
///     }
/// });
/// assert!(outcome.stats().poll_time > Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PollCost {
    max: Duration,
    slowest: u32,
}

impl PollCost {
    /// Each poll is charged a seeded time from zero to `max`; every host
    /// runs at `1x` (see [`host_speeds`](Self::host_speeds)).
    pub fn new(max: Duration) -> PollCost {
        PollCost { max, slowest: 1 }
    }

    /// No charges.
    pub const OFF: PollCost = PollCost {
        max: Duration::ZERO,
        slowest: 1,
    };

    /// Hosts draw distinct speed factors from `1x` to `slowest`x (`1`:
    /// every host as fast as tasks outside hosts).
    ///
    /// # Panics
    ///
    /// If `slowest` is 0 or above 64.
    #[track_caller]
    pub fn host_speeds(mut self, slowest: u32) -> PollCost {
        assert!(
            (1..=MAX_SLOWEST).contains(&slowest),
            "PollCost::host_speeds({slowest}): the slowest host's factor is from 1 (all \
             hosts equal) to {MAX_SLOWEST}"
        );
        self.slowest = slowest;
        self
    }

    /// The most a poll at `1x` is charged.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The slowest host's factor.
    pub fn slowest(&self) -> u32 {
        self.slowest
    }

    pub(crate) fn is_on(&self) -> bool {
        !self.max.is_zero()
    }

    /// A setting drawn for one seed of `Policy::Mix`: up to 0.1, 1 or
    /// 5 ms per poll, hosts up to 2x, 4x or 8x slower.
    pub(crate) fn draw(rng: &mut ChaCha8Rng) -> PollCost {
        const MAX_US: [u64; 3] = [100, 1_000, 5_000];
        const SLOWEST: [u32; 3] = [2, 4, 8];
        let max = MAX_US[below(rng, MAX_US.len())];
        let slowest = SLOWEST[below(rng, SLOWEST.len())];
        PollCost::new(Duration::from_micros(max)).host_speeds(slowest)
    }

    /// A sentence for the trace.
    pub(crate) fn describe(&self) -> String {
        let hosts = if self.slowest > 1 {
            format!("hosts 1x to {}x slower", self.slowest)
        } else {
            "hosts at equal speed".to_string()
        };
        format!(
            "poll cost: each poll takes 0 to {} of virtual time, {hosts}",
            format_duration(self.max)
        )
    }

    /// The form inside a schedule's configuration field (`c1000000x8`).
    pub(crate) fn schedule_text(&self) -> String {
        format!("c{}x{}", self.max.as_nanos(), self.slowest)
    }

    /// Parses [`schedule_text`](Self::schedule_text).
    pub(crate) fn from_schedule_text(s: &str) -> Result<PollCost, String> {
        let bad = || format!("poll cost `{s}` is not `c<max ns>x<slowest>` (like `c1000000x8`)");
        let rest = s.strip_prefix('c').ok_or_else(bad)?;
        let (max, slowest) = rest.split_once('x').ok_or_else(bad)?;
        let max: u64 = max.parse().map_err(|_| bad())?;
        let slowest: u32 = slowest.parse().map_err(|_| bad())?;
        if max == 0 || !(1..=MAX_SLOWEST).contains(&slowest) {
            return Err(bad());
        }
        Ok(PollCost::new(Duration::from_nanos(max)).host_speeds(slowest))
    }
}

/// A duration in its largest exact unit (`500us`, `1ms`, `2s`).
pub(crate) fn compact(d: Duration) -> String {
    let ns = d.as_nanos();
    for (unit, scale) in [("s", 1_000_000_000u128), ("ms", 1_000_000), ("us", 1_000)] {
        if ns % scale == 0 {
            return format!("{}{unit}", ns / scale);
        }
    }
    format!("{ns}ns")
}

impl fmt::Display for PollCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.is_on() {
            return f.write_str("cost:0");
        }
        write!(f, "cost:{}", compact(self.max))?;
        if self.slowest > 1 {
            write!(f, ":{}x", self.slowest)?;
        }
        Ok(())
    }
}

impl FromStr for PollCost {
    type Err = String;

    /// `cost:MAX` or `cost:MAX:Kx` (`cost:1ms`, `cost:500us:8x`).
    fn from_str(s: &str) -> Result<PollCost, String> {
        let accepted = "a poll cost is `cost:MAX` or `cost:MAX:Kx`: each poll takes up to MAX \
                        of virtual time (a duration such as `500us` or `1ms`), hosts up to K \
                        times slower (K from 1 to 64), e.g. `cost:1ms:8x`";
        let text = s.trim();
        let rest = text
            .strip_prefix("cost:")
            .ok_or_else(|| format!("`{s}`: {accepted}"))?;
        let (max, slowest) = match rest.split_once(':') {
            Some((max, k)) => {
                let k = k.strip_suffix('x').unwrap_or(k);
                match k.parse::<u32>() {
                    Ok(k) if (1..=MAX_SLOWEST).contains(&k) => (max, k),
                    _ => {
                        return Err(format!(
                            "`{s}`: the slowdown `{k}` is not 1 to 64; {accepted}"
                        ));
                    }
                }
            }
            None => (rest, 1),
        };
        if max.trim() == "0" {
            return Ok(PollCost::OFF);
        }
        let max =
            crate::time::parse_duration(max).map_err(|e| format!("`{s}`: {e}; {accepted}"))?;
        Ok(PollCost { max, slowest })
    }
}

/// Poll charges in a run: the setting, its stream, the hosts' factors.
pub(crate) struct CostState {
    max_ns: u64,
    slowest: u32,
    rng: ChaCha8Rng,
    /// Speed factor per host index, in thousandths (`1000` = `1x`).
    speeds: Vec<u32>,
}

impl CostState {
    pub(crate) fn new(cost: PollCost, seed: Seed) -> CostState {
        CostState {
            max_ns: u64::try_from(cost.max.as_nanos()).unwrap_or(u64::MAX / 2),
            slowest: cost.slowest,
            rng: rng_for(seed, stream::COST),
            speeds: Vec::new(),
        }
    }

    /// Draws the speed of a new host (index `index`): distinct from the
    /// factors of the hosts before it (redrawn a few times on a tie).
    /// Returns the factor in thousandths.
    pub(crate) fn new_host(&mut self, index: usize) -> u32 {
        let span = (self.slowest - 1) as usize * 1000;
        let mut milli = 1000;
        if span > 0 {
            for _ in 0..8 {
                milli = 1000 + below(&mut self.rng, span + 1) as u32;
                if !self.speeds.contains(&milli) {
                    break;
                }
            }
        }
        if self.speeds.len() <= index {
            self.speeds.resize(index + 1, 1000);
        }
        self.speeds[index] = milli;
        milli
    }

    /// The charge of one poll of a task on host `host` (an index), in
    /// nanoseconds, and the factor applied (thousandths).
    #[inline]
    pub(crate) fn charge(&mut self, host: Option<usize>) -> (u64, u32) {
        let base = below(&mut self.rng, self.max_ns as usize + 1) as u64;
        let milli = host
            .and_then(|h| self.speeds.get(h).copied())
            .unwrap_or(1000);
        let ns = u128::from(base) * u128::from(milli) / 1000;
        (u64::try_from(ns).unwrap_or(u64::MAX), milli)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip_and_bad_text_says_what_is_accepted() {
        let c = PollCost::new(Duration::from_millis(1)).host_speeds(8);
        assert_eq!(c.to_string(), "cost:1ms:8x");
        assert_eq!("cost:1ms:8x".parse::<PollCost>(), Ok(c));
        assert_eq!("cost:1ms:8".parse::<PollCost>(), Ok(c));
        assert_eq!(
            "cost:250us".parse::<PollCost>(),
            Ok(PollCost::new(Duration::from_micros(250)))
        );
        assert_eq!(PollCost::from_schedule_text(&c.schedule_text()), Ok(c));
        for (text, says) in [
            ("cost", "cost:MAX"),
            ("cost:fast", "not a duration"),
            ("cost:1ms:0x", "not 1 to 64"),
            ("cost:1ms:99x", "not 1 to 64"),
            ("charge:1ms", "cost:MAX:Kx"),
        ] {
            let e = text.parse::<PollCost>().unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        assert!(PollCost::from_schedule_text("c0x1").is_err());
        assert!(PollCost::from_schedule_text("c5x65").is_err());
    }

    #[test]
    fn host_speeds_are_distinct_and_within_the_range() {
        let mut s = CostState::new(
            PollCost::new(Duration::from_millis(1)).host_speeds(8),
            Seed(3),
        );
        let speeds: Vec<u32> = (0..6).map(|h| s.new_host(h)).collect();
        let mut sorted = speeds.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), speeds.len());
        assert!(speeds.iter().all(|m| (1000..=8000).contains(m)));
        let (ns, milli) = s.charge(Some(2));
        assert_eq!(milli, speeds[2]);
        assert!(ns <= 8_000_000);
        assert_eq!(s.charge(None).1, 1000);
    }
}
