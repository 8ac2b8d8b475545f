//! The runtime: one simulation's world, its executor and the way in.
//!
//! - `sim.rs`: [`Sim`], [`SimBuilder`] and the settings of a run.
//! - `world.rs`: the `World`, which owns all state of one run, and the drive
//!   loop (poll a ready task; else jump the clock; else report a deadlock).
//! - `executor.rs`: the task table, the ready set, one scheduling step.
//! - `context.rs`: the scoped thread-local through which lockstep APIs find
//!   the running world.
//! - `waker.rs`: allocation-free wakers that carry a task id.
//! - `panics.rs`, `watchdog.rs`: panics become reports; stuck polls become a
//!   loud abort instead of a silent hang.
//! - `policy/`: scheduling policies (random, FIFO, PCT, replay), late
//!   polls, swarm configurations and recorded schedules.
//! - `determinism.rs`: run a seed twice and explain any difference.

pub(crate) mod context;
mod determinism;
pub(crate) mod executor;
mod outcome;
mod panics;
pub(crate) mod policy;
mod seed;
mod sim;
pub(crate) mod waker;
mod watchdog;
pub(crate) mod world;

pub use outcome::{Outcome, Stats};
pub use policy::{LatePolls, Schedule, ScheduleParseError, Swarm};
pub use seed::{Seed, SeedParseError};
pub use sim::{Policy, Severity, Sim, SimBuilder};
