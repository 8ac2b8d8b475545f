//! `FaultPlan`: a time-ordered list of fault actions, as plain data.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand_chacha::rand_core::Rng;
use serde::{Deserialize, Serialize};

use crate::net::signed;
use crate::runtime::Seed;
use crate::runtime::world::{rng_for, stream};
use crate::time::{format_duration, parse_duration};

/// One fault, as data. Hosts are named (`"server"`), or given as a slot
/// `"@N"`: the N-th host created (from 0), modulo the number of hosts when
/// the action applies (random plans name hosts this way, since they are
/// drawn before the hosts exist). When both hosts of a two-host action are
/// slots that land on the same host, the second moves on to another host,
/// so the action always names two distinct hosts once two exist.
///
/// The text form of each action is what [`FaultPlan`]'s text form and the
/// trace print (`partition client server`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FaultAction {
    /// `partition A B`: cut both directions between two hosts.
    Partition {
        /// One host.
        a: String,
        /// The other.
        b: String,
    },
    /// `partition-oneway FROM TO`: cut one direction.
    #[serde(rename = "partition-oneway")]
    PartitionOneWay {
        /// Messages from this host…
        from: String,
        /// …to this one are dropped.
        to: String,
    },
    /// `heal A B`: restore both directions.
    Heal {
        /// One host.
        a: String,
        /// The other.
        b: String,
    },
    /// `heal-oneway FROM TO`: restore one direction.
    #[serde(rename = "heal-oneway")]
    HealOneWay {
        /// Messages from this host…
        from: String,
        /// …to this one flow again.
        to: String,
    },
    /// `heal-all`: restore every direction.
    HealAll,
    /// `crash HOST`: kill the host's tasks, close its sockets.
    Crash {
        /// The host.
        host: String,
    },
    /// `restart HOST`: crash it if it is up, then run its factory again.
    Restart {
        /// The host.
        host: String,
    },
    /// `pause HOST for D`: stop polling the host's tasks for a while.
    Pause {
        /// The host.
        host: String,
        /// How long.
        #[serde(rename = "for")]
        duration: Duration,
    },
    /// `resume HOST`: end a pause early.
    Resume {
        /// The host.
        host: String,
    },
    /// `clock-skew HOST +D` / `-D`: step the host's clock.
    ClockSkew {
        /// The host.
        host: String,
        /// The step in nanoseconds (positive: forward).
        offset_nanos: i64,
    },
    /// `clock-drift HOST +Nppm`: make the host's clock run fast or slow.
    ClockDrift {
        /// The host.
        host: String,
        /// Parts per million (positive: fast).
        ppm: i64,
    },
    /// `link-loss A B P`: both directions lose datagrams (and retransmit
    /// segments) with probability `P`, whatever the link's own setting.
    LinkLoss {
        /// One host.
        a: String,
        /// The other.
        b: String,
        /// The loss probability.
        loss: f64,
    },
    /// `link-delay A B D`: both directions take `D` longer.
    LinkDelay {
        /// One host.
        a: String,
        /// The other.
        b: String,
        /// The added delay.
        delay: Duration,
    },
    /// `link-restore A B`: undo `link-loss` and `link-delay`.
    LinkRestore {
        /// One host.
        a: String,
        /// The other.
        b: String,
    },
    /// `random INTENSITY for D`: when applied, draws a random plan from the
    /// run's seed ([`FaultPlan::generate`]) and applies it.
    Random {
        /// From 0 (no faults) to 1 (a fault every 2 s on average).
        intensity: f64,
        /// Faults are drawn over this much virtual time; at its end every
        /// partition heals.
        horizon: Duration,
    },
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FaultAction::*;
        match self {
            Partition { a, b } => write!(f, "partition {a} {b}"),
            PartitionOneWay { from, to } => write!(f, "partition-oneway {from} {to}"),
            Heal { a, b } => write!(f, "heal {a} {b}"),
            HealOneWay { from, to } => write!(f, "heal-oneway {from} {to}"),
            HealAll => f.write_str("heal-all"),
            Crash { host } => write!(f, "crash {host}"),
            Restart { host } => write!(f, "restart {host}"),
            Pause { host, duration } => {
                write!(f, "pause {host} for {}", format_duration(*duration))
            }
            Resume { host } => write!(f, "resume {host}"),
            ClockSkew { host, offset_nanos } => {
                write!(f, "clock-skew {host} {}", signed(*offset_nanos))
            }
            ClockDrift { host, ppm } => {
                let sign = if *ppm < 0 { "" } else { "+" };
                write!(f, "clock-drift {host} {sign}{ppm}ppm")
            }
            LinkLoss { a, b, loss } => write!(f, "link-loss {a} {b} {loss}"),
            LinkDelay { a, b, delay } => {
                write!(f, "link-delay {a} {b} {}", format_duration(*delay))
            }
            LinkRestore { a, b } => write!(f, "link-restore {a} {b}"),
            Random { intensity, horizon } => {
                write!(f, "random {intensity} for {}", format_duration(*horizon))
            }
        }
    }
}

/// One action and when it applies: `at` after the plan was installed
/// (for a plan given to [`SimBuilder::faults`](crate::SimBuilder::faults),
/// after the start of the run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timed {
    /// When, from the installation of the plan.
    pub at: Duration,
    /// What.
    pub action: FaultAction,
}

/// A schedule of faults: plain, cloneable, comparable data, with a text
/// form that parses back, one action per line:
///
/// ```text
/// # a switch reboots, then the server crashes and comes back
/// at 2.000s partition client server
/// at 7.000s heal client server
/// at 9.500s crash server
/// at 10.000s restart server
/// at 12s pause client for 1.5s
/// at 15s clock-skew server -250ms
/// ```
///
/// Write one by hand, parse one, draw one from a seed
/// ([`FaultPlan::generate`]) or defer the draw to the run
/// ([`FaultPlan::random`]); apply it from inside a simulation with
/// [`fault::apply`](crate::fault::apply), or give it to
/// [`SimBuilder::faults`](crate::SimBuilder::faults).
///
/// ```
/// use lockstep::fault::{FaultAction, FaultPlan};
/// use std::time::Duration;
///
/// let plan: FaultPlan = "at 2s partition client server\nat 7s heal client server".parse().unwrap();
/// assert_eq!(plan.actions[0].action, FaultAction::Partition { a: "client".into(), b: "server".into() });
/// assert_eq!(plan.to_string(), "at 2.000s partition client server\nat 7.000s heal client server\n");
/// assert_eq!(plan.to_string().parse::<FaultPlan>().unwrap(), plan);
/// ```
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// The actions, in time order (equal times keep their order).
    pub actions: Vec<Timed>,
}

impl FaultPlan {
    /// An empty plan.
    pub fn new() -> FaultPlan {
        FaultPlan::default()
    }

    /// A plan of these actions, sorted by time (stable).
    pub fn from_actions(actions: impl IntoIterator<Item = Timed>) -> FaultPlan {
        let mut actions: Vec<Timed> = actions.into_iter().collect();
        actions.sort_by_key(|t| t.at);
        FaultPlan { actions }
    }

    /// Adds an action at `at`, after any action already at that time.
    pub fn at(mut self, at: Duration, action: FaultAction) -> FaultPlan {
        let i = self.actions.partition_point(|t| t.at <= at);
        self.actions.insert(i, Timed { at, action });
        self
    }

    /// Whether the plan has no action.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// A plan drawn from the run's seed when it is applied: about
    /// `intensity × 15` faults of every kind over the first 30 s, every
    /// partition healed at 30 s. `0.0` means no fault.
    ///
    /// Fault times are spread on a log scale from 1 ms to 30 s, and each
    /// fault lasts about as long as the run before it (at most 10 s), so a
    /// run of any length sees its share: a program that ends in 200 ms is
    /// hit about half as often as one that runs the full 30 s, not 150
    /// times less. Two-host faults always name two distinct hosts that
    /// exist (see [`FaultAction`]). [`random_over`](FaultPlan::random_over)
    /// sets another span.
    ///
    /// # Panics
    ///
    /// If `intensity` is not between 0 and 1.
    pub fn random(intensity: f64) -> FaultPlan {
        FaultPlan::random_over(intensity, Duration::from_secs(30))
    }

    /// Like [`FaultPlan::random`], over `horizon` of virtual time (faults
    /// from 1 ms to `horizon`, every partition healed at `horizon`).
    ///
    /// # Panics
    ///
    /// If `intensity` is not between 0 and 1.
    pub fn random_over(intensity: f64, horizon: Duration) -> FaultPlan {
        check_intensity(intensity);
        FaultPlan::new().at(Duration::ZERO, FaultAction::Random { intensity, horizon })
    }

    /// Draws a concrete plan from `seed`: a pure function of its arguments,
    /// so the plan can be printed, saved, edited and replayed. Hosts are
    /// slots (`@0`, `@1`, …; see [`FaultAction`]).
    ///
    /// Each fault comes with its repair: a partition heals, a crashed host
    /// restarts, a pause ends, a skewed clock steps back, a lossy or slow
    /// link is restored. Start times are log-uniform between 1 ms and
    /// `horizon` (whole milliseconds), and a fault starting at `t` lasts
    /// between `t / 2` and `1.5 t` (at least 1 ms, at most 10 s), so the
    /// plan suits runs of any length up to `horizon`; at `horizon` every
    /// partition heals.
    ///
    /// ```
    /// use lockstep::fault::FaultPlan;
    /// use std::time::Duration;
    ///
    /// let plan = FaultPlan::generate(7, 0.5, Duration::from_secs(30));
    /// assert_eq!(plan, FaultPlan::generate(7, 0.5, Duration::from_secs(30)));
    /// assert!(plan.actions.len() > 2);
    /// assert_eq!(plan.to_string().parse::<FaultPlan>().unwrap(), plan);
    /// ```
    ///
    /// # Panics
    ///
    /// If `intensity` is not between 0 and 1.
    pub fn generate(seed: u64, intensity: f64, horizon: Duration) -> FaultPlan {
        check_intensity(intensity);
        let mut rng = rng_for(Seed(seed), stream::FAULT);
        let mut unit = || crate::net::unit(rng.next_u64());
        let secs = horizon.as_secs_f64();
        let episodes = (intensity * secs / 2.0 + unit()).floor() as usize;
        let mut plan = FaultPlan::new();
        // Slots spread over 0..64: resolved modulo the number of hosts, they
        // reach every host of a run of up to 64, about equally.
        let slot = |x: f64| format!("@{}", (x * 64.0) as u32);
        let horizon_ms = (secs * 1000.0).max(1.0);
        for _ in 0..episodes {
            // Log-uniform in [1 ms, horizon], whole milliseconds: plans and
            // traces stay readable.
            let start_ms = horizon_ms.powf(unit()).floor();
            let start = Duration::from_millis(start_ms as u64);
            // Repaired by the horizon: start < horizon, so there is room.
            let length_ms = (start_ms * (0.5 + unit()))
                .clamp(1.0, 10_000.0)
                .min((horizon_ms - start_ms).max(1.0));
            let end = start + Duration::from_millis(length_ms as u64);
            let length = end - start;
            let a = slot(unit());
            let b = slot(unit());
            let kind = unit();
            let (fault, repair) = if kind < 0.30 {
                (
                    FaultAction::Partition {
                        a: a.clone(),
                        b: b.clone(),
                    },
                    FaultAction::Heal { a, b },
                )
            } else if kind < 0.40 {
                (
                    FaultAction::PartitionOneWay {
                        from: a.clone(),
                        to: b.clone(),
                    },
                    FaultAction::HealOneWay { from: a, to: b },
                )
            } else if kind < 0.60 {
                (
                    FaultAction::Crash { host: a.clone() },
                    FaultAction::Restart { host: a },
                )
            } else if kind < 0.75 {
                plan = plan.at(
                    start,
                    FaultAction::Pause {
                        host: a,
                        duration: length,
                    },
                );
                continue;
            } else if kind < 0.85 {
                let by = (100_000_000.0 + unit() * 4_900_000_000.0) as i64;
                let by = if unit() < 0.5 { -by } else { by };
                (
                    FaultAction::ClockSkew {
                        host: a.clone(),
                        offset_nanos: by,
                    },
                    FaultAction::ClockSkew {
                        host: a,
                        offset_nanos: -by,
                    },
                )
            } else if kind < 0.95 {
                let loss = ((0.1 + unit() * 0.8) * 100.0).round() / 100.0;
                (
                    FaultAction::LinkLoss {
                        a: a.clone(),
                        b: b.clone(),
                        loss,
                    },
                    FaultAction::LinkRestore { a, b },
                )
            } else {
                let delay = Duration::from_millis(10 + (unit() * 490.0) as u64);
                (
                    FaultAction::LinkDelay {
                        a: a.clone(),
                        b: b.clone(),
                        delay,
                    },
                    FaultAction::LinkRestore { a, b },
                )
            };
            plan = plan.at(start, fault).at(end, repair);
        }
        plan.at(horizon, FaultAction::HealAll)
    }
}

fn check_intensity(intensity: f64) {
    assert!(
        (0.0..=1.0).contains(&intensity),
        "lockstep::fault::FaultPlan: intensity {intensity} is not between 0.0 and 1.0"
    );
}

impl fmt::Display for FaultPlan {
    /// One action per line: `at 2.500s partition client server`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.actions {
            writeln!(f, "at {} {}", format_duration(t.at), t.action)?;
        }
        Ok(())
    }
}

impl fmt::Debug for FaultPlan {
    /// The text form, so that a failing plan printed by an assertion or by
    /// proptest's "minimal failing input" reads as a schedule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.actions.is_empty() {
            return f.write_str("FaultPlan (no faults)");
        }
        f.write_str("FaultPlan {\n")?;
        for t in &self.actions {
            writeln!(f, "    at {} {}", format_duration(t.at), t.action)?;
        }
        f.write_str("}")
    }
}

/// A fault plan's text that does not parse: which line, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultPlanParseError {
    /// The line (from 1).
    pub line: usize,
    /// What was wrong, and what is accepted there.
    pub message: String,
}

impl fmt::Display for FaultPlanParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault plan line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for FaultPlanParseError {}

const ACTIONS: &str = "partition A B, partition-oneway FROM TO, heal A B, heal-oneway FROM TO, \
     heal-all, crash HOST, restart HOST, pause HOST for DURATION, resume HOST, \
     clock-skew HOST ±DURATION, clock-drift HOST ±Nppm, link-loss A B PROBABILITY, \
     link-delay A B DURATION, link-restore A B, random INTENSITY for DURATION";

fn parse_signed(s: &str) -> Result<i64, String> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let d = parse_duration(rest)?;
    let n = i64::try_from(d.as_nanos()).map_err(|_| format!("`{s}` is too large"))?;
    Ok(if neg { -n } else { n })
}

/// A number from 0.0 to 1.0.
fn parse_fraction(word: &str, what: &str) -> Result<f64, String> {
    word.parse::<f64>()
        .ok()
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| format!("`{word}` is not {what} (expected 0.0 to 1.0)"))
}

fn parse_action(words: &[&str]) -> Result<FaultAction, String> {
    use FaultAction::*;
    let s = |i: usize| words[i].to_string();
    let arity = |n: usize, usage: &str| {
        if words.len() == n {
            Ok(())
        } else {
            Err(format!("`{}` takes the form `{usage}`", words[0]))
        }
    };
    Ok(match words[0] {
        "partition" => arity(3, "partition A B").map(|_| Partition { a: s(1), b: s(2) })?,
        "partition-oneway" => arity(3, "partition-oneway FROM TO").map(|_| PartitionOneWay {
            from: s(1),
            to: s(2),
        })?,
        "heal" => arity(3, "heal A B").map(|_| Heal { a: s(1), b: s(2) })?,
        "heal-oneway" => arity(3, "heal-oneway FROM TO").map(|_| HealOneWay {
            from: s(1),
            to: s(2),
        })?,
        "heal-all" => arity(1, "heal-all").map(|_| HealAll)?,
        "crash" => arity(2, "crash HOST").map(|_| Crash { host: s(1) })?,
        "restart" => arity(2, "restart HOST").map(|_| Restart { host: s(1) })?,
        "resume" => arity(2, "resume HOST").map(|_| Resume { host: s(1) })?,
        "pause" => {
            arity(4, "pause HOST for DURATION")?;
            if words[2] != "for" {
                return Err("`pause` takes the form `pause HOST for DURATION`".to_string());
            }
            Pause {
                host: s(1),
                duration: parse_duration(words[3])?,
            }
        }
        "clock-skew" => {
            arity(3, "clock-skew HOST ±DURATION")?;
            ClockSkew {
                host: s(1),
                offset_nanos: parse_signed(words[2])?,
            }
        }
        "clock-drift" => {
            arity(3, "clock-drift HOST ±Nppm")?;
            let ppm = words[2]
                .strip_suffix("ppm")
                .and_then(|n| n.strip_prefix('+').unwrap_or(n).parse::<i64>().ok())
                .ok_or_else(|| {
                    format!(
                        "`{}` is not a drift (expected `+100ppm` or `-50ppm`)",
                        words[2]
                    )
                })?;
            ClockDrift { host: s(1), ppm }
        }
        "link-loss" => {
            arity(4, "link-loss A B PROBABILITY")?;
            let loss = parse_fraction(words[3], "a probability")?;
            LinkLoss {
                a: s(1),
                b: s(2),
                loss,
            }
        }
        "link-delay" => {
            arity(4, "link-delay A B DURATION")?;
            LinkDelay {
                a: s(1),
                b: s(2),
                delay: parse_duration(words[3])?,
            }
        }
        "link-restore" => arity(3, "link-restore A B").map(|_| LinkRestore { a: s(1), b: s(2) })?,
        "random" => {
            arity(4, "random INTENSITY for DURATION")?;
            let intensity = parse_fraction(words[1], "an intensity")?;
            if words[2] != "for" {
                return Err("`random` takes the form `random INTENSITY for DURATION`".to_string());
            }
            Random {
                intensity,
                horizon: parse_duration(words[3])?,
            }
        }
        other => {
            return Err(format!(
                "unknown action `{other}`; the actions are: {ACTIONS}"
            ));
        }
    })
}

impl FromStr for FaultPlan {
    type Err = FaultPlanParseError;

    /// Parses the text form: one `at DURATION ACTION` per line; blank lines
    /// and `#` comments are skipped; actions are sorted by time (stable).
    fn from_str(text: &str) -> Result<FaultPlan, FaultPlanParseError> {
        let mut actions = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |message: String| FaultPlanParseError {
                line: i + 1,
                message,
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            if words[0] != "at" || words.len() < 3 {
                return Err(err(format!(
                    "`{line}` is not an action: expected `at DURATION ACTION`, like `at 2.5s crash server`"
                )));
            }
            let at = parse_duration(words[1]).map_err(err)?;
            let action = parse_action(&words[2..]).map_err(err)?;
            actions.push(Timed { at, action });
        }
        Ok(FaultPlan::from_actions(actions))
    }
}
