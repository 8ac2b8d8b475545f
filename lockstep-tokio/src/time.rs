//! Time: [`Instant`], [`sleep`], [`sleep_until`], [`timeout`],
//! [`interval`], [`MissedTickBehavior`].
//!
//! Inside a simulation every one of them reads lockstep's virtual clock:
//! `sleep(Duration::from_secs(3600))` completes at once in wall time, an
//! hour later in virtual time, the same way in every run of a seed. A task
//! on a simulated host reads its host's clock (skew and drift apply).
//! Outside a simulation they are tokio's.
//!
//! An [`Instant`] holds either a real instant or a virtual one: both kinds
//! support the same arithmetic, and mixing them (comparing an instant read
//! inside a simulation with one read outside) panics with a message
//! saying so, because the two clocks have nothing in common.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::local::Local;

pub use std::time::Duration;

/// Errors of this module: [`Elapsed`].
pub mod error {
    use std::fmt;

    /// A [`timeout`](super::timeout) whose deadline passed before the
    /// future completed.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Elapsed(pub(crate) ());

    impl fmt::Display for Elapsed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("deadline has elapsed")
        }
    }

    impl std::error::Error for Elapsed {}

    impl From<Elapsed> for std::io::Error {
        fn from(e: Elapsed) -> std::io::Error {
            std::io::Error::new(std::io::ErrorKind::TimedOut, e)
        }
    }
}

use error::Elapsed;

/// A point in time: a real one (tokio's) or a virtual one (lockstep's).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Instant(Repr);

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Repr {
    Real(tokio::time::Instant),
    Sim(lockstep::time::Instant),
}

impl Instant {
    /// Now: the virtual clock inside a simulation, the real one outside.
    #[track_caller]
    pub fn now() -> Instant {
        if crate::sim() {
            Instant(Repr::Sim(lockstep::time::Instant::now()))
        } else {
            Instant(Repr::Real(tokio::time::Instant::now()))
        }
    }

    /// A real instant from `std`.
    pub fn from_std(std: std::time::Instant) -> Instant {
        Instant(Repr::Real(tokio::time::Instant::from_std(std)))
    }

    /// The `std` instant.
    ///
    /// # Panics
    ///
    /// For a virtual instant: it has no wall-clock counterpart.
    #[track_caller]
    pub fn into_std(self) -> std::time::Instant {
        match self.0 {
            Repr::Real(i) => i.into_std(),
            Repr::Sim(_) => crate::unsupported("tokio::time::Instant::into_std"),
        }
    }

    /// The virtual instant, if this is one.
    pub fn as_simulated(self) -> Option<lockstep::time::Instant> {
        match self.0 {
            Repr::Sim(i) => Some(i),
            Repr::Real(_) => None,
        }
    }

    #[track_caller]
    fn pair(self, other: Instant, what: &str) -> Pair {
        match (self.0, other.0) {
            (Repr::Real(a), Repr::Real(b)) => Pair::Real(a, b),
            (Repr::Sim(a), Repr::Sim(b)) => Pair::Sim(a, b),
            _ => crate::mixed(what),
        }
    }

    /// The real instant, or a panic naming `api` for a virtual one.
    #[track_caller]
    fn real(self, api: &str) -> tokio::time::Instant {
        match self.0 {
            Repr::Real(i) => i,
            Repr::Sim(_) => crate::mixed(api),
        }
    }

    /// The virtual instant, or a panic naming `api` for a real one.
    #[track_caller]
    fn simulated(self, api: &str) -> lockstep::time::Instant {
        match self.0 {
            Repr::Sim(i) => i,
            Repr::Real(_) => crate::mixed(api),
        }
    }

    /// `self - earlier`, zero if `earlier` is later.
    #[track_caller]
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }

    /// `self - earlier`, or `None` if `earlier` is later.
    #[track_caller]
    pub fn checked_duration_since(&self, earlier: Instant) -> Option<Duration> {
        match self.pair(earlier, "Instant::checked_duration_since") {
            Pair::Real(a, b) => a.checked_duration_since(b),
            Pair::Sim(a, b) => a.checked_duration_since(b),
        }
    }

    /// `self - earlier`, zero if `earlier` is later.
    #[track_caller]
    pub fn saturating_duration_since(&self, earlier: Instant) -> Duration {
        self.checked_duration_since(earlier).unwrap_or_default()
    }

    /// Time since this instant, on its own clock.
    #[track_caller]
    pub fn elapsed(&self) -> Duration {
        match self.0 {
            Repr::Real(i) => i.elapsed(),
            Repr::Sim(i) => lockstep::time::Instant::now().saturating_duration_since(i),
        }
    }

    /// `self + d`, or `None` on overflow.
    pub fn checked_add(&self, d: Duration) -> Option<Instant> {
        Some(Instant(match self.0 {
            Repr::Real(i) => Repr::Real(i.checked_add(d)?),
            Repr::Sim(i) => Repr::Sim(i.checked_add(d)?),
        }))
    }

    /// `self - d`, or `None` on underflow.
    pub fn checked_sub(&self, d: Duration) -> Option<Instant> {
        Some(Instant(match self.0 {
            Repr::Real(i) => Repr::Real(i.checked_sub(d)?),
            Repr::Sim(i) => Repr::Sim(i.checked_sub(d)?),
        }))
    }
}

enum Pair {
    Real(tokio::time::Instant, tokio::time::Instant),
    Sim(lockstep::time::Instant, lockstep::time::Instant),
}

impl PartialOrd for Instant {
    fn partial_cmp(&self, other: &Instant) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Instant {
    /// # Panics
    ///
    /// When comparing a virtual instant with a real one.
    #[track_caller]
    fn cmp(&self, other: &Instant) -> std::cmp::Ordering {
        match self.pair(*other, "comparing two Instants") {
            Pair::Real(a, b) => a.cmp(&b),
            Pair::Sim(a, b) => a.cmp(&b),
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    #[track_caller]
    fn add(self, d: Duration) -> Instant {
        match self.checked_add(d) {
            Some(i) => i,
            None => panic!("overflow when adding a duration to an instant"),
        }
    }
}

impl AddAssign<Duration> for Instant {
    #[track_caller]
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    #[track_caller]
    fn sub(self, d: Duration) -> Instant {
        match self.checked_sub(d) {
            Some(i) => i,
            None => panic!("overflow when subtracting a duration from an instant"),
        }
    }
}

impl SubAssign<Duration> for Instant {
    #[track_caller]
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    #[track_caller]
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl From<std::time::Instant> for Instant {
    fn from(i: std::time::Instant) -> Instant {
        Instant::from_std(i)
    }
}

impl From<lockstep::time::Instant> for Instant {
    fn from(i: lockstep::time::Instant) -> Instant {
        Instant(Repr::Sim(i))
    }
}

impl From<Instant> for std::time::Instant {
    #[track_caller]
    fn from(i: Instant) -> std::time::Instant {
        i.into_std()
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Real(i) => fmt::Debug::fmt(i, f),
            Repr::Sim(i) => fmt::Debug::fmt(i, f),
        }
    }
}

pin_project! {
    /// The future of [`sleep`] and [`sleep_until`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Sleep {
        #[pin]
        inner: SleepRepr,
    }
}

pin_project! {
    #[project = SleepProj]
    enum SleepRepr {
        Real { #[pin] sleep: tokio::time::Sleep },
        Sim { sleep: Local<lockstep::time::Sleep> },
    }
}

impl Sleep {
    /// When the sleep completes.
    pub fn deadline(&self) -> Instant {
        match &self.inner {
            SleepRepr::Real { sleep } => Instant(Repr::Real(sleep.deadline())),
            SleepRepr::Sim { sleep } => Instant(Repr::Sim(sleep.get().deadline())),
        }
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        match &self.inner {
            SleepRepr::Real { sleep } => sleep.is_elapsed(),
            SleepRepr::Sim { sleep } => sleep.get().is_elapsed(),
        }
    }

    /// Moves the deadline, keeping the sleep usable.
    #[track_caller]
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        match self.project().inner.project() {
            SleepProj::Real { sleep } => sleep.reset(deadline.real("Sleep::reset")),
            SleepProj::Sim { sleep } => sleep.get_mut().reset(deadline.simulated("Sleep::reset")),
        }
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project().inner.project() {
            SleepProj::Real { sleep } => sleep.poll(cx),
            SleepProj::Sim { sleep } => sleep.get_mut().poll_elapsed(cx),
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline())
            .finish()
    }
}

/// Waits until `duration` has passed.
pub fn sleep(duration: Duration) -> Sleep {
    if crate::sim() {
        let deadline = lockstep::time::Instant::now()
            .checked_add(duration)
            .unwrap_or(lockstep::time::Instant::MAX);
        sim_sleep(deadline)
    } else {
        Sleep {
            inner: SleepRepr::Real {
                sleep: tokio::time::sleep(duration),
            },
        }
    }
}

fn sim_sleep(deadline: lockstep::time::Instant) -> Sleep {
    Sleep {
        inner: SleepRepr::Sim {
            sleep: Local::new(lockstep::time::sleep_until(deadline), "tokio::time::Sleep"),
        },
    }
}

/// Waits until `deadline`.
///
/// # Panics
///
/// With an instant of the other world (a real one inside a simulation).
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    if crate::sim() {
        sim_sleep(deadline.simulated("sleep_until"))
    } else {
        Sleep {
            inner: SleepRepr::Real {
                sleep: tokio::time::sleep_until(deadline.real("sleep_until")),
            },
        }
    }
}

pin_project! {
    /// The future of [`timeout`]: the inner future's output, or
    /// [`Elapsed`] if the deadline passed first.
    #[must_use = "futures do nothing unless awaited"]
    #[derive(Debug)]
    pub struct Timeout<T> {
        #[pin]
        value: T,
        #[pin]
        delay: Sleep,
    }
}

impl<T> Timeout<T> {
    /// The inner future.
    pub fn get_ref(&self) -> &T {
        &self.value
    }

    /// The inner future, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.value
    }

    /// The inner future, dropping the timer.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T: Future> Future for Timeout<T> {
    type Output = Result<T::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.value.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match this.delay.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Runs `future` for at most `duration`: `Err(Elapsed)` if it did not
/// complete by then (it is then dropped with the `Timeout`).
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        value: future.into_future(),
        delay: sleep(duration),
    }
}

/// Runs `future` until `deadline` at most.
#[track_caller]
pub fn timeout_at<F: IntoFuture>(deadline: Instant, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        value: future.into_future(),
        delay: sleep_until(deadline),
    }
}

/// What an [`Interval`] does with ticks it missed (its task was busy when
/// they were due).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks back to back until caught up (the default).
    #[default]
    Burst,
    /// Fire once now, then every period from now.
    Delay,
    /// Fire once now, then at the next multiple of the period from the
    /// start.
    Skip,
}

impl MissedTickBehavior {
    fn real(self) -> tokio::time::MissedTickBehavior {
        match self {
            MissedTickBehavior::Burst => tokio::time::MissedTickBehavior::Burst,
            MissedTickBehavior::Delay => tokio::time::MissedTickBehavior::Delay,
            MissedTickBehavior::Skip => tokio::time::MissedTickBehavior::Skip,
        }
    }

    fn simulated(self) -> lockstep::time::MissedTickBehavior {
        match self {
            MissedTickBehavior::Burst => lockstep::time::MissedTickBehavior::Burst,
            MissedTickBehavior::Delay => lockstep::time::MissedTickBehavior::Delay,
            MissedTickBehavior::Skip => lockstep::time::MissedTickBehavior::Skip,
        }
    }
}

/// Ticks every period; see [`interval`].
#[derive(Debug)]
pub struct Interval {
    repr: IntervalRepr,
    missed: MissedTickBehavior,
}

#[derive(Debug)]
enum IntervalRepr {
    Real(tokio::time::Interval),
    Sim(Local<lockstep::time::Interval>),
}

/// Ticks every `period`; the first tick completes at once.
///
/// # Panics
///
/// If `period` is zero.
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Ticks every `period`, the first tick at `start`.
///
/// # Panics
///
/// If `period` is zero, or `start` is of the other world.
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(!period.is_zero(), "`period` must be non-zero.");
    let repr = if crate::sim() {
        IntervalRepr::Sim(Local::new(
            lockstep::time::interval_at(start.simulated("interval_at"), period),
            "tokio::time::Interval",
        ))
    } else {
        IntervalRepr::Real(tokio::time::interval_at(start.real("interval_at"), period))
    };
    Interval {
        repr,
        missed: MissedTickBehavior::Burst,
    }
}

impl Interval {
    /// Waits for the next tick; returns the instant it was due.
    pub async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        match &mut self.repr {
            IntervalRepr::Real(i) => i.poll_tick(cx).map(|t| Instant(Repr::Real(t))),
            IntervalRepr::Sim(i) => i.get_mut().poll_tick(cx).map(|t| Instant(Repr::Sim(t))),
        }
    }

    /// Restarts the interval: the next tick is one period from now.
    pub fn reset(&mut self) {
        match &mut self.repr {
            IntervalRepr::Real(i) => i.reset(),
            IntervalRepr::Sim(i) => i.get_mut().reset(),
        }
    }

    /// The period.
    pub fn period(&self) -> Duration {
        match &self.repr {
            IntervalRepr::Real(i) => i.period(),
            IntervalRepr::Sim(i) => i.get().period(),
        }
    }

    /// What happens to missed ticks.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// Sets what happens to missed ticks.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
        match &mut self.repr {
            IntervalRepr::Real(i) => i.set_missed_tick_behavior(behavior.real()),
            IntervalRepr::Sim(i) => i.get_mut().set_missed_tick_behavior(behavior.simulated()),
        }
    }
}

/// Pauses real tokio's clock (test-util). Inside a simulation time is
/// always virtual, so this does nothing.
#[cfg(feature = "test-util")]
pub fn pause() {
    if !crate::sim() {
        tokio::time::pause()
    }
}

/// Resumes real tokio's clock (test-util). Does nothing in a simulation.
#[cfg(feature = "test-util")]
pub fn resume() {
    if !crate::sim() {
        tokio::time::resume()
    }
}

/// Advances real tokio's paused clock (test-util). Inside a simulation:
/// sleeps `duration` of virtual time, which is what advancing means there.
#[cfg(feature = "test-util")]
pub async fn advance(duration: Duration) {
    if crate::sim() {
        sleep(duration).await
    } else {
        tokio::time::advance(duration).await
    }
}
