//! Recorded schedules: every decision of a run as a compact string.
//!
//! A run's schedule is what the scheduler decided, in order: which ready
//! task it polled at each step, when it moved the clock while tasks were
//! ready (a late poll), and the scheduler's random draws that the program
//! asked for (`select`'s fair choice). Draws of the program's own random
//! stream, the network's and the faults' come from the seed, which the
//! schedule names, as does the swarm configuration of the run: with the
//! same program, a schedule decides everything.
//!
//! The text form is one word, safe to paste into a shell unquoted:
//!
//! ```text
//! S1:0x2a:-:0.1x3.2.t.0.r1.2
//! ```
//!
//! `S1` is the format, `0x2a` the seed, `-` the run's configuration (none;
//! else its parts separated by commas: a swarm configuration like
//! `k5i200b100`, a poll cost like `c1000000x8`), then the decisions separated by dots: `3` polls task `#3`, `1x3` polls
//! task `#1` three times in a row, `t` moves the clock to the next timer
//! while tasks are ready, `r1` is a draw that came out `1`.

use std::fmt;
use std::str::FromStr;

use super::cost::PollCost;
use super::swarm::Swarm;
use crate::runtime::Seed;
use crate::trace::recbuf::Buf;

/// One decision of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Decision {
    /// Poll task `task`, `times` steps in a row.
    Run { task: u32, times: u32 },
    /// Move the clock to the next timer although tasks are ready.
    Advance,
    /// A scheduler draw (below some bound) that came out `value`.
    Draw { value: u64 },
}

/// The decisions of one run: which task ran at each step, when the clock
/// moved early, and the scheduler's draws. Printed and parsed as one
/// copy-pasteable word (`S1:0x2a:-:0.1x3.2.t.0`); replayed exactly with
/// [`SimBuilder::replay`](crate::SimBuilder::replay).
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::explore::Schedule;
///
/// let program = || async {
///     let a = spawn(async { yield_now().await; 1 });
///     let b = spawn(async { 2 });
///     a.await.unwrap() + b.await.unwrap()
/// };
/// let first = Sim::new(7).run(program());
/// let schedule: Schedule = first.schedule().unwrap().to_string().parse().unwrap();
/// let again = Sim::builder().replay(schedule).build().run(program());
/// assert_eq!(first.trace().render(), again.trace().render());
/// ```
#[derive(Clone, Debug)]
pub struct Schedule {
    pub(crate) seed: Seed,
    pub(crate) swarm: Option<Swarm>,
    /// The poll cost of the run (its charges come from the seed).
    pub(crate) cost: Option<PollCost>,
    /// The decisions, decoded from `words` when first asked for.
    decided: std::sync::OnceLock<Vec<Decision>>,
    /// The decisions as a run records them (see [`Words`]), 2 bytes a
    /// step: most recorded schedules are never looked at, and decoding
    /// every one into 16-byte decisions cost a traced run a fifth of its
    /// time (page faults included). Appended to while a run records.
    pub(crate) words: Words,
    /// Counted while recording (not part of the text form).
    pub(crate) preemptions: Option<u64>,
}

/// Two schedules are equal when they decide the same (the preemption
/// count is a measurement of the run that recorded one, not a decision).
impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        (self.seed, &self.swarm, &self.cost, self.decisions())
            == (other.seed, &other.swarm, &other.cost, other.decisions())
    }
}

impl Eq for Schedule {}

impl std::hash::Hash for Schedule {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.seed, &self.swarm, &self.cost, self.decisions()).hash(state);
    }
}

impl Schedule {
    /// A schedule of `decisions`.
    pub(crate) fn new(
        seed: Seed,
        swarm: Option<Swarm>,
        cost: Option<PollCost>,
        decisions: Vec<Decision>,
    ) -> Schedule {
        Schedule {
            seed,
            swarm,
            cost,
            decided: std::sync::OnceLock::from(decisions),
            words: Words::default(),
            preemptions: None,
        }
    }

    /// The schedule a run recorded in `words`.
    pub(crate) fn recorded(
        seed: Seed,
        swarm: Option<Swarm>,
        cost: Option<PollCost>,
        words: Words,
        preemptions: u64,
    ) -> Schedule {
        Schedule {
            seed,
            swarm,
            cost,
            decided: std::sync::OnceLock::new(),
            words,
            preemptions: Some(preemptions),
        }
    }

    /// The decisions, in order.
    pub(crate) fn decisions(&self) -> &Vec<Decision> {
        self.decided.get_or_init(|| self.words.decode())
    }

    /// The seed the run's other random streams come from.
    pub fn seed(&self) -> Seed {
        self.seed
    }

    /// How many scheduling steps (task polls) it decides.
    pub fn steps(&self) -> u64 {
        self.decisions()
            .iter()
            .map(|d| match d {
                Decision::Run { times, .. } => u64::from(*times),
                _ => 0,
            })
            .sum()
    }

    /// How many decisions it holds: steps, early clock moves and draws.
    pub fn len(&self) -> u64 {
        self.steps() + self.early_clock_moves() + self.draws()
    }

    /// Whether it decides nothing.
    pub fn is_empty(&self) -> bool {
        self.decisions().is_empty()
    }

    /// How many times the clock moved while tasks were ready (late polls).
    pub fn early_clock_moves(&self) -> u64 {
        self.decisions()
            .iter()
            .filter(|d| matches!(d, Decision::Advance))
            .count() as u64
    }

    /// How many scheduler draws it holds.
    pub fn draws(&self) -> u64 {
        self.decisions()
            .iter()
            .filter(|d| matches!(d, Decision::Draw { .. }))
            .count() as u64
    }

    /// How many times it switches from one task to another: a measure of
    /// how tangled the interleaving is (a shrunk schedule has few).
    pub fn switches(&self) -> u64 {
        let mut last = None;
        let mut n = 0;
        for d in self.decisions() {
            if let Decision::Run { task, .. } = d {
                if last.is_some_and(|l| l != *task) {
                    n += 1;
                }
                last = Some(*task);
            }
        }
        n
    }

    /// How many times the recording run switched away from a task that
    /// could have gone on (it had yielded, or was woken again): the
    /// preemptions a reader has to follow. Known for a schedule a run
    /// recorded ([`Outcome::schedule`](crate::Outcome::schedule)), `None`
    /// for one parsed from text (replay it to count).
    pub fn preemptions(&self) -> Option<u64> {
        self.preemptions
    }

    /// The swarm configuration the run used, if any.
    pub fn swarm(&self) -> Option<&Swarm> {
        self.swarm.as_ref()
    }

    /// The poll cost the run used, if any (its charges are drawn from the
    /// seed, so a replay repeats them).
    pub fn poll_cost(&self) -> Option<PollCost> {
        self.cost
    }
}

/// Appends one step of `task` to `decisions` (merged into a run of the same
/// task).
fn push_run(decisions: &mut Vec<Decision>, task: u32) {
    if let Some(Decision::Run { task: t, times }) = decisions.last_mut() {
        if *t == task && *times < u32::MAX {
            *times += 1;
            return;
        }
    }
    decisions.push(Decision::Run { task, times: 1 });
}

/// Decisions as a run records them, in 16-bit words: a task id per step
/// (ids below [`Words::WIDE`]), or a marker word (an early clock move; a
/// draw, followed by its value in four words; a task id that does not fit,
/// followed by it in two). Decoded into [`Decision`]s, repeated runs
/// merged, when first asked for.
#[derive(Clone, Debug, Default)]
pub(crate) struct Words(Buf<u16>);

impl Words {
    const ADVANCE: u16 = u16::MAX;
    const DRAW: u16 = u16::MAX - 1;
    const WIDE: u16 = u16::MAX - 2;

    /// One step of `task`.
    #[inline]
    pub(crate) fn run(&mut self, task: u32) {
        if task < u32::from(Self::WIDE) {
            self.0.push(task as u16);
        } else {
            self.0
                .extend_from_slice(&[Self::WIDE, task as u16, (task >> 16) as u16]);
        }
    }

    /// An early clock move.
    pub(crate) fn advance(&mut self) {
        self.0.push(Self::ADVANCE);
    }

    /// A scheduler draw that came out `value`.
    pub(crate) fn draw(&mut self, value: u64) {
        let [a, b, c, d] = [0, 1, 2, 3].map(|i| (value >> (16 * i)) as u16);
        self.0.extend_from_slice(&[Self::DRAW, a, b, c, d]);
    }

    fn decode(&self) -> Vec<Decision> {
        let mut out = Vec::new();
        let mut it = self.0.iter().copied();
        // The next `n` words as one number, low word first.
        let wide = |it: &mut std::iter::Copied<std::slice::Iter<'_, u16>>, n: u32| {
            (0..n).fold(0u64, |v, i| {
                v | u64::from(it.next().unwrap_or(0)) << (16 * i)
            })
        };
        while let Some(w) = it.next() {
            match w {
                Self::ADVANCE => out.push(Decision::Advance),
                Self::DRAW => out.push(Decision::Draw {
                    value: wide(&mut it, 4),
                }),
                Self::WIDE => push_run(&mut out, wide(&mut it, 2) as u32),
                task => push_run(&mut out, u32::from(task)),
            }
        }
        out
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S1:{}:", self.seed)?;
        match (&self.swarm, &self.cost) {
            (None, None) => f.write_str("-:")?,
            (Some(s), None) => write!(f, "{s}:")?,
            (None, Some(c)) => write!(f, "{}:", c.schedule_text())?,
            (Some(s), Some(c)) => write!(f, "{s},{}:", c.schedule_text())?,
        }
        for (i, d) in self.decisions().iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            match d {
                Decision::Run { task, times: 1 } => write!(f, "{task}")?,
                Decision::Run { task, times } => write!(f, "{task}x{times}")?,
                Decision::Advance => f.write_str("t")?,
                Decision::Draw { value } => write!(f, "r{value}")?,
            }
        }
        Ok(())
    }
}

/// A schedule string that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleParseError {
    message: String,
}

impl fmt::Display for ScheduleParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid schedule: {}; expected `S1:<seed>:<swarm or ->:<decisions>`, \
             decisions like `0.1x3.t.r1` (task #0, task #1 three times, an early \
             clock move, a draw of 1)",
            self.message
        )
    }
}

impl std::error::Error for ScheduleParseError {}

impl FromStr for Schedule {
    type Err = ScheduleParseError;

    fn from_str(s: &str) -> Result<Schedule, ScheduleParseError> {
        let err = |message: String| ScheduleParseError { message };
        let mut parts = s.trim().splitn(4, ':');
        match parts.next() {
            Some("S1") => {}
            other => {
                return Err(err(format!(
                    "it starts with `{}`, not the format tag `S1`",
                    other.unwrap_or_default()
                )));
            }
        }
        let seed: Seed = parts
            .next()
            .ok_or_else(|| err("the seed is missing".into()))?
            .parse()
            .map_err(|e| err(format!("{e}")))?;
        let config = parts
            .next()
            .ok_or_else(|| err("the swarm field is missing".into()))?;
        let (mut swarm, mut cost) = (None, None);
        if config != "-" {
            for part in config.split(',') {
                if part.starts_with('c') {
                    cost = Some(PollCost::from_schedule_text(part).map_err(err)?);
                } else {
                    swarm = Some(part.parse::<Swarm>().map_err(err)?);
                }
            }
        }
        let body = parts
            .next()
            .ok_or_else(|| err("the decisions are missing".into()))?;
        let mut decisions = Vec::new();
        for (i, tok) in body.split('.').enumerate().filter(|(_, t)| !t.is_empty()) {
            let bad = || {
                err(format!(
                    "decision {} `{tok}` is not `N`, `NxK`, `t` or `rN`",
                    i + 1
                ))
            };
            let d = if tok == "t" {
                Decision::Advance
            } else if let Some(v) = tok.strip_prefix('r') {
                Decision::Draw {
                    value: v.parse().map_err(|_| bad())?,
                }
            } else if let Some((t, k)) = tok.split_once('x') {
                let times: u32 = k.parse().map_err(|_| bad())?;
                if times == 0 {
                    return Err(bad());
                }
                Decision::Run {
                    task: t.parse().map_err(|_| bad())?,
                    times,
                }
            } else {
                Decision::Run {
                    task: tok.parse().map_err(|_| bad())?,
                    times: 1,
                }
            };
            decisions.push(d);
        }
        Ok(Schedule::new(seed, swarm, cost, decisions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips() {
        let text = "S1:0x2a:-:0.1x3.2.t.0.r1.2";
        let s: Schedule = text.parse().unwrap();
        assert_eq!(s.to_string(), text);
        assert_eq!(s.steps(), 7);
        assert_eq!(s.early_clock_moves(), 1);
        assert_eq!(s.draws(), 1);
        assert_eq!(s.len(), 9);
        assert_eq!(s.switches(), 4);
        for text in ["S1:0x2a:c1000000x8:0.1", "S1:0x2a:k5i200b100,c500x1:0"] {
            let s: Schedule = text.parse().unwrap();
            assert!(s.poll_cost().is_some());
            assert_eq!(s.to_string(), text);
        }
    }

    #[test]
    fn recorded_words_decode_to_their_decisions() {
        let mut words = Words::default();
        let wide = u32::from(Words::WIDE);
        for task in [0, 3, 3, wide - 1, wide, wide, u32::MAX, 7] {
            words.run(task);
        }
        words.advance();
        words.draw(u64::MAX - 5);
        words.draw(2);
        words.run(7);
        let run = |task, times| Decision::Run { task, times };
        assert_eq!(
            words.decode(),
            [
                run(0, 1),
                run(3, 2),
                run(wide - 1, 1),
                run(wide, 2),
                run(u32::MAX, 1),
                run(7, 1),
                Decision::Advance,
                Decision::Draw {
                    value: u64::MAX - 5
                },
                Decision::Draw { value: 2 },
                run(7, 1),
            ]
        );
    }

    #[test]
    fn bad_text_names_what_is_wrong() {
        for (text, says) in [
            ("S2:0x1:-:0", "format tag"),
            ("S1:zz:-:0", "invalid seed"),
            ("S1:0x1:-:0.q", "decision 2 `q`"),
            ("S1:0x1:-:3x0", "decision 1"),
            ("S1:0x1", "swarm field is missing"),
            ("S1:0x1:c0x2:0", "poll cost `c0x2`"),
        ] {
            let e = text.parse::<Schedule>().unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
