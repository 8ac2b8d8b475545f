//! What `select!`, `#[tokio::main]` and `#[tokio::test]` expand to.

pub use std::future::Future;

pub use lockstep::__private::{TestMeta, TestOutput};
pub use lockstep_tokio_macros::select_impl;
pub use std::future::{IntoFuture, poll_fn};
pub use std::task::{Context, Poll};

/// Where a `select!` without `biased;` starts polling: drawn from the
/// simulation's seed inside one; outside, from a per-thread generator
/// seeded by the OS, as tokio's own `select!` does (tokio's generator is
/// not public API, so the layer keeps its own).
#[inline]
pub fn select_start(branches: u32) -> u32 {
    if lockstep::in_simulation() {
        lockstep::random::range(0..branches)
    } else {
        real_rng_n(branches)
    }
}

thread_local! {
    static REAL_RNG: std::cell::Cell<u64> = std::cell::Cell::new({
        use std::hash::{BuildHasher, RandomState};
        // Never zero: xorshift would stay at zero.
        RandomState::new().hash_one(std::thread::current().id()) | 1
    });
}

/// A uniform value in `0..n` from a xorshift64* stream (`n > 0`).
fn real_rng_n(n: u32) -> u32 {
    REAL_RNG.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
        ((r * u64::from(n)) >> 32) as u32
    })
}

/// The runtime `#[tokio::main]` runs on: always a real one.
#[track_caller]
pub fn main_runtime(multi_thread: bool, worker_threads: Option<usize>) -> tokio::runtime::Runtime {
    if lockstep::in_simulation() {
        crate::unsupported("#[tokio::main]");
    }
    real_runtime(multi_thread, worker_threads, false)
}

#[track_caller]
fn real_runtime(
    multi_thread: bool,
    worker_threads: Option<usize>,
    start_paused: bool,
) -> tokio::runtime::Runtime {
    let mut builder = if multi_thread {
        multi_thread_builder()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    if let Some(n) = worker_threads {
        builder.worker_threads(n);
    }
    builder.enable_all();
    if start_paused {
        pause(&mut builder);
    }
    match builder.build() {
        Ok(rt) => rt,
        Err(e) => panic!("lockstep-tokio: could not start a tokio runtime: {e}"),
    }
}

#[cfg(feature = "rt-multi-thread")]
fn multi_thread_builder() -> tokio::runtime::Builder {
    tokio::runtime::Builder::new_multi_thread()
}

#[cfg(not(feature = "rt-multi-thread"))]
#[track_caller]
fn multi_thread_builder() -> tokio::runtime::Builder {
    panic!(
        "lockstep-tokio: the `multi_thread` runtime flavor needs the `rt-multi-thread` feature \
         of lockstep-tokio"
    )
}

#[cfg(feature = "test-util")]
fn pause(builder: &mut tokio::runtime::Builder) {
    builder.start_paused(true);
}

#[cfg(not(feature = "test-util"))]
#[track_caller]
fn pause(_: &mut tokio::runtime::Builder) {
    panic!(
        "lockstep-tokio: `start_paused = true` on real tokio needs the `test-util` feature of \
         lockstep-tokio (in a simulation, time is always virtual)"
    )
}

/// The options of one `#[tokio::test]`.
#[derive(Debug, Clone, Copy)]
pub struct TestOptions {
    /// `flavor = "multi_thread"` (real tokio only).
    pub multi_thread: bool,
    /// `worker_threads = N` (real tokio only).
    pub worker_threads: Option<u64>,
    /// `start_paused = true` (real tokio only: a simulation's time is
    /// always virtual).
    pub start_paused: bool,
    /// `seed = 0x1a7`.
    pub seed: Option<u64>,
    /// `seeds = N`.
    pub seeds: Option<u64>,
    /// `max_time = "30s"`, in nanoseconds.
    pub max_time_nanos: Option<u64>,
}

/// The variable that picks real tokio for `#[tokio::test]`s.
pub const MODE_VAR: &str = "LOCKSTEP_TOKIO";

/// The name of the host a `#[tokio::test]` body runs on.
pub const TEST_HOST: &str = "main";

/// An error a test body returned, shown as its `Debug` text.
struct Returned(String);

impl std::fmt::Debug for Returned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs a `#[tokio::test]`: in lockstep simulations, one per seed, or on
/// real tokio when `LOCKSTEP_TOKIO=real`.
#[track_caller]
pub fn run_test<F, Fut>(meta: TestMeta, options: TestOptions, body: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: TestOutput + 'static,
{
    match std::env::var(MODE_VAR).as_deref().map(str::trim) {
        Err(_) | Ok("") | Ok("sim") => {}
        Ok("real") => {
            let workers = options.worker_threads.map(|n| n as usize);
            let rt = real_runtime(options.multi_thread, workers, options.start_paused);
            if let Err(e) = rt.block_on(body()).into_test_result() {
                panic!("the test returned an error: {e}");
            }
            return;
        }
        Ok(other) => panic!(
            "lockstep-tokio: {MODE_VAR}=`{other}` is not a mode: expected `sim` (the default: \
             run #[tokio::test]s in lockstep simulations) or `real` (run them on real tokio)"
        ),
    }
    let mut test = lockstep::__private::SimTest::new(meta);
    if let Some(seed) = options.seed {
        test = test.seed(lockstep::Seed(seed));
    }
    if let Some(n) = options.seeds {
        test = test.seeds(n);
    }
    if let Some(nanos) = options.max_time_nanos {
        test = test.max_virtual_time(lockstep::time::Duration::from_nanos(nanos));
    }
    let site = std::panic::Location::caller();
    test.run(move || on_test_host(body(), site));
}

/// Runs a test body on the simulated host [`TEST_HOST`], so that it may
/// bind and connect as a process does, and so that the tasks it leaves
/// behind end with the simulation (as tokio's test runtime drops them)
/// instead of being reported as leaks.
///
/// The body's task is spawned at the test's own site (`site`, the line of
/// `#[tokio::test]`) and awaited: if it panics, that panic, with its
/// location, is the run's failure, reported as the test's.
async fn on_test_host<Fut>(
    body: Fut,
    site: &'static std::panic::Location<'static>,
) -> Result<(), Returned>
where
    Fut: Future + 'static,
    Fut::Output: TestOutput + 'static,
{
    let host = lockstep::net::Host::new(TEST_HOST, || async { Ok(()) });
    let run = async move { body.await.into_test_result() };
    match lockstep::__private::run_on_host(&host, run, site).await {
        Ok(result) => result.map_err(Returned),
        Err(e) => Err(Returned(format!(
            "the test's task ended without a result: {e}"
        ))),
    }
}
