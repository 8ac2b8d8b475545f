//! # lockstep-tokio: tokio's API, simulated by lockstep under test
//!
//! A service written against tokio runs unchanged under lockstep's
//! deterministic simulation once its manifest says
//!
//! ```toml
//! [dependencies]
//! tokio = { package = "lockstep-tokio", version = "0.1", features = ["rt", "net", "time", "sync", "macros", "io-util"] }
//! ```
//!
//! Every `tokio::` path of the service then names this crate. Each call
//! decides *at run time* which world it is in:
//!
//! - **inside a lockstep simulation** (a `#[tokio::test]`, a
//!   `#[lockstep::sim_test]`, a `lockstep::Sim::run`) it is lockstep's:
//!   `tokio::spawn` spawns a lockstep task, `tokio::time::sleep` waits on
//!   the virtual clock, `tokio::net::TcpStream` is a simulated stream with
//!   latency, partitions and crashes, and `tokio::select!` draws its branch
//!   order from the seed. Everything is traced and replays bit for bit.
//! - **anywhere else** (production, `#[tokio::main]`) it is real tokio:
//!   each call forwards to the `tokio` crate after one thread-local check
//!   ([`lockstep::in_simulation`]), a few nanoseconds.
//!
//! ```
//! // A test of tokio code: under this crate, it runs in a simulation,
//! // once per seed (100 seeds unless LOCKSTEP_SEEDS says otherwise).
//! # extern crate lockstep_tokio as tokio;
//! # use std::time::Duration;
//! # let _ = || {
//! #[tokio::test]
//! async fn times_out() {
//!     let slow = tokio::time::sleep(Duration::from_secs(3600));
//!     assert!(tokio::time::timeout(Duration::from_secs(5), slow).await.is_err());
//! }
//! # };
//! ```
//!
//! Production is unchanged: `#[tokio::main]` builds a real runtime, and
//! every call made on it is tokio's.
//!
//! ```no_run
//! # extern crate lockstep_tokio as tokio;
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> std::io::Result<()> {
//!     let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         tokio::spawn(async move { drop(stream) });
//!     }
//! }
//! ```
//!
//! ## Why a run-time switch, and not `--cfg`
//!
//! madsim swaps tokio for its simulator with `RUSTFLAGS="--cfg madsim"`.
//! That flag changes every crate's fingerprint, so turning the simulation on
//! or off rebuilds the whole dependency tree; rust-analyzer and `cargo
//! check` see the non-simulated code unless configured with the same flag;
//! and a production build and a test build are different programs. Here the
//! switch is one dependency line, and the same binary code serves both
//! worlds: the test build is the production build, run inside a
//! simulation. The cost is a thread-local read per tokio call in
//! production (a few nanoseconds, measured by `cargo bench -p
//! lockstep-tokio`; the numbers are in the README), and
//! handles that are enums (`Real(tokio::…)` or `Sim(lockstep::…)`), one
//! word larger than tokio's own.
//!
//! What the simulation cannot reach is said loudly: an API this crate does
//! not simulate, called inside a simulation, panics with a message naming
//! it (never real I/O or real time behind the simulation's back). The
//! README's coverage table lists every API and what it does in a
//! simulation.
//!
//! ## Known differences inside a simulation
//!
//! - `tokio::sync` is tokio's own (its primitives are executor-agnostic and
//!   run correctly on lockstep's executor), so lockstep's deadlock report
//!   cannot name a cycle through a `tokio::sync::Mutex`; a run where nothing
//!   can progress is still reported as a deadlock.
//! - Tasks run on one thread in a seeded order: `Send` bounds are kept so
//!   the code still compiles against tokio, but nothing runs in parallel.
//! - `spawn_blocking` runs its closure on the simulation's thread, in a
//!   task; virtual time does not pass while it runs.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]

mod local;
pub mod net;
pub mod runtime;
pub mod task;
pub mod time;

pub use task::spawn;

/// tokio's executor-agnostic synchronization primitives (`Mutex`,
/// `RwLock`, `Semaphore`, `Notify`, `Barrier`, `mpsc`, `oneshot`,
/// `broadcast`, `watch`), re-exported unchanged: they work the same on
/// lockstep's executor, but lockstep's deadlock report cannot see inside
/// them (a cycle through them is reported as a plain deadlock, once
/// nothing at all can run).
pub mod sync {
    pub use tokio::sync::*;
}

/// tokio's I/O traits and utilities (`AsyncRead`, `AsyncWrite`,
/// `AsyncReadExt`, `AsyncWriteExt`, `split`, `BufReader`, `copy`,
/// `duplex`, …), re-exported unchanged: they are generic over streams and
/// work on the simulated ones. `stdin`/`stdout`/`stderr` are real I/O and
/// need a real runtime.
pub mod io {
    pub use tokio::io::*;
}

/// Waits on several futures concurrently, polling them in turn on one task;
/// returns their outputs as a tuple. tokio's own macro: it needs no runtime.
pub use tokio::join;
/// Like [`join!`], for futures returning `Result`: returns the first `Err`
/// at once, or the tuple of `Ok` values. tokio's own macro.
pub use tokio::try_join;

/// Runs an `async fn main` on a real tokio runtime (production is never a
/// simulation). Accepts tokio's options: `flavor = "current_thread"` or
/// `"multi_thread"` (with the `rt-multi-thread` feature),
/// `worker_threads = N`, `crate = "path"`.
#[cfg(feature = "rt-multi-thread")]
pub use lockstep_tokio_macros::main;
/// Runs an `async fn main` on a real tokio runtime (production is never a
/// simulation). Without the `rt-multi-thread` feature only
/// `flavor = "current_thread"` is available, as in tokio.
#[cfg(not(feature = "rt-multi-thread"))]
pub use lockstep_tokio_macros::main_rt as main;

/// A test of tokio code, run as a lockstep simulation over many seeds.
///
/// The body runs on a simulated host named `main` (so it may bind
/// listeners and connect to `127.0.0.1`), once per seed, exactly like a
/// `#[lockstep::sim_test]`: 100 seeds by default, the same `LOCKSTEP_SEED`,
/// `LOCKSTEP_SEEDS`, `LOCKSTEP_SEED_BASE` and `LOCKSTEP_TRACE` variables,
/// and on failure the same report ending in the command that replays the
/// failing seed. Tasks still running when the body returns are dropped, as
/// tokio's test runtime drops them.
///
/// tokio's options are accepted (`flavor`, `worker_threads`,
/// `start_paused`, `crate`); they matter only on the real path. lockstep's
/// own (`seeds = N`, `seed = 0x1a7`, `max_time = "30s"`) are accepted too,
/// for tests that never switch back to real tokio.
///
/// To run the tests on real tokio instead, set `LOCKSTEP_TOKIO=real`: each
/// test then runs once on a real runtime of the given flavor.
pub use lockstep_tokio_macros::test;

/// Waits on several branches, running the handler of the first that
/// completes and matches its pattern; the others are dropped.
///
/// Same syntax and rules as tokio's: `pattern = future (, if
/// precondition)? => handler`, an optional `else => handler`, and `biased;`
/// first to poll branches in the order written. Without `biased;` each
/// poll starts at a random branch: inside a simulation that choice is
/// drawn from the seed (so the same seed takes the same branch, and
/// different seeds explore different ones); outside one it comes from an
/// unseeded per-thread generator, as in tokio.
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__private::select_impl! { ($crate) $($tokens)* }
    };
}

/// Whether the caller runs inside a lockstep simulation: the one check
/// every call makes to pick its world.
#[inline(always)]
pub(crate) fn sim() -> bool {
    lockstep::in_simulation()
}

/// The failure of an API this crate does not simulate, called inside a
/// simulation: a panic naming it, never real I/O or real time.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn unsupported(api: &str) -> ! {
    panic!(
        "lockstep-tokio: `{api}` is not supported inside a lockstep simulation (it would use \
         real threads, real time or real I/O behind the simulation's back); see the coverage \
         table in lockstep-tokio's README for what a simulation runs"
    )
}

/// A value of one world used in the other (an `Instant` read outside a
/// simulation, compared with one read inside).
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn mixed(what: &str) -> ! {
    panic!(
        "lockstep-tokio: {what} mixes a value made inside a lockstep simulation with one made \
         outside it (on real tokio); the two clocks and networks have nothing in common"
    )
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Attribute and macro input the macros refuse at compile time, each with
/// an error at the offending token (`compile_fail` doctests).
///
/// An unknown runtime flavor:
///
/// ```compile_fail
/// # extern crate lockstep_tokio as tokio;
/// #[tokio::test(flavor = "threaded")]
/// async fn t() {}
/// ```
///
/// An unknown option:
///
/// ```compile_fail
/// # extern crate lockstep_tokio as tokio;
/// #[tokio::test(sedes = 10)]
/// async fn t() {}
/// ```
///
/// A test that is not `async`:
///
/// ```compile_fail
/// # extern crate lockstep_tokio as tokio;
/// #[tokio::test]
/// fn t() {}
/// ```
///
/// A `select!` without branches:
///
/// ```compile_fail
/// # extern crate lockstep_tokio as tokio;
/// async fn f() {
///     tokio::select! {}
/// }
/// ```
///
/// The same inputs, well formed:
///
/// ```
/// # extern crate lockstep_tokio as tokio;
/// #[tokio::test(flavor = "current_thread", seeds = 10)]
/// async fn t() {}
///
/// async fn f() -> u8 {
///     tokio::select! {
///         v = async { 1 } => v,
///     }
/// }
/// ```
#[cfg(doctest)]
pub struct MacroInputDoctests;

/// Paths the macros expand to. Not a public API: it may change in any
/// release.
#[doc(hidden)]
pub mod __private;
