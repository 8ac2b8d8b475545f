//! # lockstep: deterministic simulation testing for async Rust
//!
//! A lockstep test runs on a **seeded, single-threaded executor** with a
//! **virtual clock**. Every choice the runtime makes (which ready task runs
//! next, when a timer fires, every random number handed to the program) is
//! drawn from one seed, so a run that fails once fails again, bit for bit,
//! when replayed with the same seed. Races, deadlocks and timeouts stop being
//! flaky and become ordinary test failures with a trace you can read, diff
//! and snapshot.
//!
//! ```
//! use lockstep::prelude::*;
//! use std::{cell::Cell, rc::Rc};
//!
//! // Ten workers each read a shared counter, yield, then write it back:
//! // a lost update. Whether it shows depends on the schedule, so on the seed.
//! let racy = || async {
//!     let counter = Rc::new(Cell::new(0));
//!     let tasks: Vec<_> = (0..10)
//!         .map(|i| {
//!             let c = counter.clone();
//!             lockstep::task::Builder::new()
//!                 .name(format!("worker-{i}"))
//!                 .spawn(async move {
//!                     let v = c.get();
//!                     lockstep::task::yield_now().await; // a suspension point: a race window
//!                     c.set(v + 1);
//!                 })
//!         })
//!         .collect();
//!     for t in tasks {
//!         t.await.unwrap();
//!     }
//!     assert_eq!(counter.get(), 10, "lost update");
//! };
//!
//! let outcome = Sim::builder().seed(0x1a7).build().run(racy());
//! let failure = outcome.result().unwrap_err();
//! assert!(failure.to_string().contains("lost update"));
//! assert!(failure.to_string().contains("seed 0x1a7"));
//!
//! // The same seed replays the same run, event for event.
//! let again = Sim::builder().seed(0x1a7).build().run(racy());
//! assert_eq!(outcome.trace().render(), again.trace().render());
//! ```
//!
//! ## Where things live
//!
//! - [`Sim`], [`SimBuilder`], [`Outcome`]: configure and run one simulation.
//! - [`task`]: `spawn`, [`task::Builder`], [`task::JoinHandle`],
//!   [`task::yield_now`], [`task::JoinSet`].
//! - [`time`]: the virtual clock: [`time::Instant`], [`time::sleep`],
//!   [`time::timeout`], [`time::interval`].
//! - [`sync`]: locks, semaphores, events and channels that traces and
//!   deadlock reports can see ([`sync::Mutex`], [`sync::Semaphore`],
//!   [`sync::Event`], [`sync::mpsc`], ...).
//! - [`future`]: asyncio's combinators: [`future::gather`],
//!   [`future::as_completed`], [`future::wait`], [`future::select`].
//! - [`net`]: simulated hosts, datagrams and streams, links and partitions;
//!   [`fault`]: fault plans and `buggify!`.
//! - [`trace`](mod@trace): the event log every run records, and the [`trace!`] macro.
//! - [`Failure`]: what can go wrong in a run, each kind with a message a user
//!   can act on (it always names the seed).
//! - [`random`]: seeded random numbers for the program under test.
//! - [`explore`]: finding bugs in fewer seeds and reading them in fewer
//!   steps: scheduling policies ([`Policy`]: random, FIFO, PCT, swarm, and
//!   the `mix` that bug hunts should use), late polls, recorded
//!   [`explore::Schedule`]s that replay exactly, schedule shrinking, and
//!   [`explore::find_failure`].
//! - [`net`]: simulated hosts, datagrams and byte streams over links with
//!   latency, loss, duplication and reordering; partitions, crashes,
//!   restarts, pauses and clock skew.
//! - [`fault`]: [`fault::FaultPlan`], a schedule of faults as plain data,
//!   and the [`buggify!`] fault points.
//! - `http` (feature `hyper`): hyper 1.x HTTP clients and servers over the
//!   simulated streams.
//!
//! ## The rules that keep a run deterministic
//!
//! Inside a simulation, use lockstep's clock ([`time::Instant::now`]) and
//! randomness ([`random`]), never `std::time::Instant`, `SystemTime` or
//! `thread_rng`. Do not wake lockstep tasks from other threads: such a wake is
//! not applied (it would race), the run's verdict stays the simulation's own
//! (typically a deadlock, whose report names the thread the wake came from),
//! and the wake is listed in [`Outcome::warnings`] as a
//! [`Failure::NonDeterminism`]. Everything else (`Rc`,
//! `RefCell`, non-`Send` futures) is fine: a simulation is one thread.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]
// A `Failure` is produced at most once per run, so its size never matters,
// and unboxed reports keep `match failure { Failure::Panic(r) => .. }` simple.
#![allow(clippy::result_large_err)]

#[cfg(not(target_pointer_width = "64"))]
compile_error!(
    "lockstep needs a 64-bit target: a task waker packs the task's slot, id and simulation tag into one pointer-sized word"
);

pub mod check;
#[cfg(feature = "cli")]
pub mod cli;
pub mod explore;
pub mod fault;
pub mod future;
mod harness;
#[cfg(feature = "hyper")]
pub mod http;
pub mod net;
#[cfg(feature = "proptest")]
pub mod proptest;
pub mod random;
mod runtime;
pub mod sync;
pub mod task;
pub mod time;
pub mod trace;

/// The layers built on the runtime, in the order their hooks run. The
/// runtime knows them only through this list (see `runtime::ext`): `sync`
/// (the deadlock analysis), `net` (sockets left open, hosts dropped at the
/// end), `fault` (the plan of the settings, actions never applied).
pub(crate) static LAYERS: &[&runtime::ext::Layer] = &[&sync::LAYER, &net::LAYER, &fault::LAYER];

pub use check::Failure;
pub use runtime::{Outcome, Policy, Seed, SeedParseError, Severity, Sim, SimBuilder, Stats};
pub use task::spawn;
pub use trace::Verbosity;

/// Runs an `async fn` test in a fresh simulation for each of many seeds.
///
/// ```no_run
/// use lockstep::prelude::*;
///
/// #[lockstep::sim_test(seeds = 200)]
/// async fn counter_is_atomic() {
///     let counter = std::rc::Rc::new(std::cell::Cell::new(0));
///     let tasks: Vec<_> = (0..10)
///         .map(|_| {
///             let c = counter.clone();
///             spawn(async move { c.set(c.get() + 1) }) // no await between read and write
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(counter.get(), 10);
/// }
/// ```
///
/// The function becomes a `#[test]`. It may return `()` or
/// `Result<(), E: Debug>` (an `Err` fails the seed), and keeps its other
/// attributes (`#[ignore]`, `#[should_panic]`, docs).
///
/// | option | meaning | default |
/// |---|---|---|
/// | `seeds = N` | run seeds `base .. base+N` | 100 |
/// | `seed = 0x1a7` | run this one seed (also `seed = "0x1a7"`) | |
/// | `max_time = "30s"` | virtual time limit (`ns`, `us`, `ms`, `s`, `m`, `h`) | 1 hour |
/// | `max_steps = N` | step limit | 1,000,000 |
/// | `livelock_steps = N` | polls in a row without progress before [`Failure::Livelock`] | 1,000,000 |
/// | `blocked_poll = "100ms"` | wall time one poll may take before [`Failure::BlockedPoll`] (`false`: off) | `"1s"` |
/// | `watchdog = "5s"` | wall time after which a poll is taken to never return: the seed fails with [`Failure::BlockedPoll`], the other tests go on (`false`: off) | `"5s"` |
/// | `policy = "fifo"` | scheduling policy: `"random"`, `"fifo"`, `"pct"`, `"pct:D"`, `"swarm"`, `"mix"` (or a `Policy` expression); settings may follow after `+`: a poll cost, `"random+cost:1ms:8x"` charges each poll up to 1 ms of virtual time, on hosts up to 8x slower ([`PollCost`](explore::PollCost)); late polls, `"mix+late:off"`, `"random+late:0.25:10ms"` ([`LatePolls`](explore::LatePolls)) | `"mix"` without its poll cost: random or PCT scheduling, late polls and a swarm per seed (a poll cost shifts every virtual time a test reads and would fail exact timing assertions; name `"mix"` to include it) |
/// | `faults = 0.2` | a random [`FaultPlan`](fault::FaultPlan) of that intensity, drawn from each seed; a plan in its text form (`faults = "at 1s crash server"`, parsed when the test runs); or any `FaultPlan` expression | none |
/// | `check_determinism` | run each seed twice and compare | off |
///
/// At the first failing seed the test panics with a report: the failure,
/// the seed, the virtual time and steps, the last trace events, and the
/// exact command that replays it (`LOCKSTEP_SEED=0x… cargo test -p … --test
/// … -- name --exact`), the run's schedule with the command that follows it
/// exactly, and `lockstep shrink <bundle>` for a minimal interleaving; the
/// full trace and the failure bundle are written under `target/lockstep/`.
/// Environment variables override the attribute:
///
/// | variable | effect |
/// |---|---|
/// | `LOCKSTEP_SEED=0x1a7` | replay that one seed (traced) |
/// | `LOCKSTEP_SEEDS=500` | run this many seeds |
/// | `LOCKSTEP_SEED_BASE=n` or `=random` | start the seed range elsewhere (a nightly job explores fresh seeds) |
/// | `LOCKSTEP_TRACE=path` | also write the failing or replayed seed's trace there (`.jsonl`: JSON lines) |
/// | `LOCKSTEP_SCHEDULE=S1:…` | follow a recorded schedule exactly (its text, a file holding it, or a bundle folder); the report of a failing seed prints this command |
/// | `LOCKSTEP_SHRINK=1` | shrink the failing run's schedule to a minimal interleaving and report that run (what `lockstep shrink <bundle>` asks the test to do) |
pub use lockstep_macros::sim_test;

/// Whether the calling code runs inside a lockstep simulation (on the
/// simulation's thread). Lets code shared with production take a simulated
/// path only under test.
#[inline]
pub fn in_simulation() -> bool {
    runtime::context::is_inside()
}

/// The names most tests need, in one `use lockstep::prelude::*;`.
pub mod prelude {
    pub use crate::check::Failure;
    pub use crate::fault::FaultPlan;
    pub use crate::future::{WaitFor, as_completed, gather, gather_settled, select, wait};
    pub use crate::runtime::{Outcome, Policy, Seed, Severity, Sim};
    pub use crate::task::{JoinError, JoinHandle, JoinSet, spawn, yield_now};
    pub use crate::time::{Duration, Instant, interval, sleep, sleep_until, timeout};
    pub use crate::trace::Verbosity;
    /// `read`, `read_exact`, `read_to_end`, … on [`TcpStream`](crate::net::TcpStream)
    /// (futures' extension traits, which tokio's names mirror).
    pub use futures::io::AsyncReadExt;
    /// `write`, `write_all`, `flush`, `close`, … on [`TcpStream`](crate::net::TcpStream).
    pub use futures::io::AsyncWriteExt;
    pub use lockstep_macros::sim_test;
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Paths that lockstep's macros expand to. Not a public API: it may change
/// in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::harness::snapshot::{AsTrace, snapshot_dir, stable_trace};
    pub use crate::harness::{SimTest, TestMeta, TestOutput};
    pub use crate::task::JoinError;

    /// Spawns `future` on `host` with the given spawn site (the user's test,
    /// for a task spawned on its behalf) and awaits it; a panic of the task
    /// fails the run as an observed panic, its root cause.
    pub async fn run_on_host<F>(
        host: &crate::net::Host,
        future: F,
        site: &'static std::panic::Location<'static>,
    ) -> Result<F::Output, JoinError>
    where
        F: std::future::Future + 'static,
        F::Output: 'static,
    {
        crate::task::propagate(host.spawn_at(future, site)).await
    }
    pub use crate::trace::{user_event, user_events_enabled, user_line};
    pub use insta;
}
