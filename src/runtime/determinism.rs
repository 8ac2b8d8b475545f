//! The determinism check: run a seed twice, compare, explain a difference.
//!
//! Every run keeps a rolling hash of its scheduling decisions, clock jumps
//! and random draws (see [`Outcome::determinism_hash`]), tracing or not. Two
//! runs of one seed with equal hashes made the same decisions. When the
//! hashes differ, both runs are repeated with full tracing and the hash of
//! every step recorded, and the report names the first trace event (or, if
//! the traces agree, the first step) where they part, with the events just
//! before it.

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
    let first = World::new(config, false).run(make(), site);
    let second = World::new(config, false).run(make(), site);
    if first.determinism_hash() == second.determinism_hash() {
        return first;
    }
    let mut traced = config.clone();
    traced.verbosity = Verbosity::Full;
    let a = World::new(&traced, true).run(make(), site);
    let b = World::new(&traced, true).run(make(), site);
    let failure = Failure::NonDeterminism(NonDeterminismReport {
        cause: divergence(&a, &b),
        at: RunPoint {
            seed: config.seed,
            time: first.stats().virtual_time_instant(),
            step: first.stats().steps,
        },
    });
    first.with_failure(failure)
}

fn divergence<T, U>(a: &Outcome<T>, b: &Outcome<U>) -> Divergence {
    let (ta, tb) = (a.trace(), b.trace());
    let first_step = match (a.step_hashes(), b.step_hashes()) {
        (Some(x), Some(y)) => x
            .iter()
            .zip(y)
            .position(|(p, q)| p != q)
            .map(|i| i as u64 + 1)
            .unwrap_or(x.len().min(y.len()) as u64),
        _ => 0,
    };
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
        Some(i) => Divergence::Diverged {
            event: Some(i),
            step: first_step,
            first: show(ta, i),
            second: show(tb, i),
            context: (i.saturating_sub(CONTEXT)..i)
                .map(|j| show(ta, j))
                .collect(),
        },
        None => {
            // Same events: point at the last event before the first
            // differing step.
            let i = ta
                .events()
                .filter(|e| e.step < first_step)
                .count()
                .saturating_sub(1);
            Divergence::Diverged {
                event: None,
                step: first_step,
                first: format!(
                    "hash {:#018x} after step {first_step}",
                    hash_at(a, first_step)
                ),
                second: format!(
                    "hash {:#018x} after step {first_step}",
                    hash_at(b, first_step)
                ),
                context: (i.saturating_sub(CONTEXT)..=i)
                    .filter(|&j| j < ta.len())
                    .map(|j| show(ta, j))
                    .collect(),
            }
        }
    }
}

fn hash_at<T>(o: &Outcome<T>, step: u64) -> u64 {
    o.step_hashes()
        .and_then(|h| h.get(step.saturating_sub(1) as usize).copied())
        .unwrap_or_else(|| o.determinism_hash())
}
