//! The runtime: one simulation's world, its executor and the way in.
//!
//! - `sim.rs`: [`Sim`], [`SimBuilder`] and the settings of a run.
//! - `world.rs`: the `World`, which owns all state of one run, and the drive
//!   loop (poll a ready task; else jump the clock; else report a deadlock).
//! - `executor.rs`: the task table, the ready set, one scheduling step.
//! - `ext.rs`: how the layers built on the runtime (sync, net, fault) attach
//!   per-run state and hooks without the runtime naming them.
//! - `context.rs`: the scoped thread-local through which lockstep APIs find
//!   the running world.
//! - `waker.rs`: allocation-free wakers that carry a task id.
//! - `panics.rs`, `watchdog.rs`: panics become reports; a poll that blocks
//!   the executor becomes a report, and one that never returns a report
//!   (isolated runs) or a loud abort instead of a silent hang.
//! - `isolated.rs`: runs on a worker thread, so that a poll that never
//!   returns can be handed back to the caller as a failure.
//! - `policy/`: scheduling policies (random, FIFO, PCT, replay), late
//!   polls, swarm configurations and recorded schedules.
//! - `determinism.rs`: run a seed twice and explain any difference.

pub(crate) mod context;
mod determinism;
pub(crate) mod executor;
pub(crate) mod ext;
mod hugevec;
pub(crate) mod isolated;
mod outcome;
pub(crate) mod panics;
pub(crate) mod policy;
pub(crate) mod ready;
mod seed;
mod sim;
pub(crate) mod waker;
mod watchdog;
pub(crate) mod world;

pub use outcome::{Outcome, Stats};
pub use policy::{LatePolls, PollCost, Schedule, ScheduleParseError, Swarm};
pub use seed::{Seed, SeedParseError};
pub(crate) use sim::Config;
pub(crate) use sim::PolicySpec;
#[cfg(feature = "cli")]
pub(crate) use sim::parse_policy_spec;
pub use sim::{Policy, Severity, Sim, SimBuilder};

/// A number no other call in this process returns (never 0): an identity
/// for per-run caches, never part of a decision or a trace.
///
/// Threads take numbers in blocks from one process-wide counter, so
/// threads starting runs in parallel (`LOCKSTEP_JOBS`) do not contend for
/// one cache line on every run.
pub(crate) fn unique_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    const BLOCK: u64 = 1 << 10;
    static BLOCKS: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        /// The next number of this thread's block, and the block's end.
        static NEXT: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
    }
    let take = |next: &std::cell::Cell<(u64, u64)>| {
        let (mut n, mut end) = next.get();
        if n == end {
            n = BLOCKS.fetch_add(1, Ordering::Relaxed) * BLOCK;
            end = n + BLOCK;
        }
        next.set((n + 1, end));
        n
    };
    // A thread being torn down has no block: it takes a block of its own.
    NEXT.try_with(take)
        .unwrap_or_else(|_| BLOCKS.fetch_add(1, Ordering::Relaxed) * BLOCK)
}
