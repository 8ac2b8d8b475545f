//! The determinism check: run a seed twice, compare, explain a difference.
//!
//! Every run keeps a rolling hash of its scheduling decisions, clock jumps,
//! random draws and `trace!` text (see [`Outcome::determinism_hash`]),
//! tracing or not. Two runs of one seed with equal hashes made the same
//! decisions.
//!
//! The two runs compared are also the two runs explained: both record the
//! hash at the end of every step and a full trace, so when they differ the
//! report names the first trace event where *those* runs part (or, when
//! their traces agree, the first step whose hash differs, with both hashes,
//! which then differ by construction). Explaining the difference with a
//! second pair of runs would describe runs that may diverge elsewhere, or
//! not at all, and contradict the verdict.

use std::future::Future;
use std::panic::Location;

use super::outcome::Outcome;
use super::sim::Config;
use super::world::World;
use crate::check::{Divergence, Failure, NonDeterminismReport, RunPoint};
use crate::trace::Verbosity;

const CONTEXT: usize = 5;

pub(crate) fn check<M, F>(
    config: &Config,
    mut make: M,
    site: &'static Location<'static>,
) -> Outcome<F::Output>
where
    M: FnMut() -> F,
    F: Future,
{
    let mut traced = config.clone();
    traced.verbosity = Verbosity::Full;
    let first = World::new(&traced, true).run(make(), site);
    let second = World::new(&traced, true).run(make(), site);
    if first.determinism_hash() == second.determinism_hash() {
        return first;
    }
    let (cause, step) = divergence(&first, &second);
    let time = first
        .trace()
        .events()
        .take_while(|e| e.step <= step)
        .last()
        .map_or(crate::time::Instant::START, |e| e.time);
    let failure = Failure::NonDeterminism(NonDeterminismReport {
        cause,
        at: RunPoint {
            seed: config.seed,
            time,
            step,
        },
    });
    first.with_failure(failure)
}

/// Where two runs of one seed part, and the step of it.
fn divergence<T, U>(a: &Outcome<T>, b: &Outcome<U>) -> (Divergence, u64) {
    let (ta, tb) = (a.trace(), b.trace());
    let (ha, hb) = (
        a.step_hashes().unwrap_or_default(),
        b.step_hashes().unwrap_or_default(),
    );
    // Entry `j` is the hash at the end of step `j`; the last entry is the
    // final hash, so two lists of hashes of differing runs always differ.
    let first_step = ha
        .iter()
        .zip(hb)
        .position(|(p, q)| p != q)
        .unwrap_or(ha.len().min(hb.len()).saturating_sub(1)) as u64;
    let event = ta
        .events()
        .zip(tb.events())
        .position(|(x, y)| x != y)
        .or_else(|| (ta.len() != tb.len()).then(|| ta.len().min(tb.len())));
    let show = |t: &crate::trace::Trace, i: usize| {
        t.events()
            .nth(i)
            .map_or("(the run ended here)".to_string(), |e| t.render_event(&e))
    };
    match event {
        Some(i) => {
            let step = ta
                .events()
                .nth(i)
                .or_else(|| tb.events().nth(i))
                .map_or(first_step, |e| e.step);
            (
                Divergence::Diverged {
                    event: Some(i),
                    step,
                    first: show(ta, i),
                    second: show(tb, i),
                    context: (i.saturating_sub(CONTEXT)..i)
                        .map(|j| show(ta, j))
                        .collect(),
                },
                step,
            )
        }
        None => {
            // Same events: point at the events of the first differing step.
            let i = ta
                .events()
                .filter(|e| e.step <= first_step)
                .count()
                .saturating_sub(1);
            (
                Divergence::Diverged {
                    event: None,
                    step: first_step,
                    first: format!(
                        "hash {:#018x} at the end of step {first_step}",
                        hash_at(a, first_step)
                    ),
                    second: format!(
                        "hash {:#018x} at the end of step {first_step}",
                        hash_at(b, first_step)
                    ),
                    context: (i.saturating_sub(CONTEXT)..=i)
                        .filter(|&j| j < ta.len())
                        .map(|j| show(ta, j))
                        .collect(),
                },
                first_step,
            )
        }
    }
}

fn hash_at<T>(o: &Outcome<T>, step: u64) -> u64 {
    o.step_hashes()
        .and_then(|h| h.get(step as usize).copied())
        .unwrap_or_else(|| o.determinism_hash())
}
