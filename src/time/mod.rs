//! The virtual clock: [`Instant`], [`sleep`], [`timeout`], [`interval`].
//!
//! Time in a simulation is a number, not a measurement. It starts at
//! [`Instant::START`] and moves only when no task is ready to run: then the
//! clock jumps straight to the earliest pending timer and fires every timer
//! due at that instant, in the order they were set. A ten-hour `sleep` costs
//! microseconds of wall time, and computing never "takes" virtual time: a
//! task that never awaits a timer keeps the clock still (a busy loop of
//! `yield_now` runs into the step limit, not the time limit).
//!
//! A `sleep` whose deadline is already reached (including `sleep(0)`)
//! completes on its first poll without yielding; use
//! [`yield_now`](crate::task::yield_now) to give other tasks a turn.
//!
//! ## Host clocks: skew and drift
//!
//! A task that runs on a simulated [host](crate::net::Host) reads *its
//! host's* clock: [`Instant::now`] is the simulation's time mapped through
//! the host's offset and drift (see [`Host::clock_forward`],
//! [`Host::clock_back`] and [`Host::clock_drift`]). Everywhere else (the main task, tasks on no
//! host, traces) time is the simulation's own. A host clock is piecewise
//! linear: `local = base_local + (now - base) × (1 + ppm / 10⁶)`, where a
//! skew steps `base_local` (forward or back: a host's `Instant::now` can go
//! backwards, as a wall clock stepped by NTP does) and a drift changes the
//! rate from that moment on.
//!
//! Deadlines are read on the clock of the host whose task polls them:
//!
//! - `sleep(d)` and `timeout(d, ..)` measure `d` on the host clock: on a
//!   host drifting `+1000ppm` (fast), a 1 s sleep ends after 0.999 s of
//!   simulation time. An offset alone does not change a sleep's length.
//! - `sleep_until(t)` waits until the host clock reads `t`; the wake-up is
//!   scheduled at the simulation instant where the host clock reaches `t`,
//!   computed when the sleep is polled. A later step of the host clock
//!   takes effect when the sleeper is next polled: after a step forward a
//!   sleeper wakes at the instant computed before the step (late by the
//!   host clock, never early); after a step back it wakes, finds its
//!   deadline not yet reached on the host clock, and sleeps again.
//!
//! [`Host::clock_forward`]: crate::net::Host::clock_forward
//! [`Host::clock_back`]: crate::net::Host::clock_back
//! [`Host::clock_drift`]: crate::net::Host::clock_drift

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

pub use std::time::Duration;

pub(crate) mod clock;
mod instant;
mod parse;
pub(crate) mod timers;

pub use instant::{Instant, format_duration};
pub use parse::parse_duration;

use crate::runtime::context;
use timers::TimerKey;

/// The current virtual time (same as [`Instant::now`]).
#[track_caller]
pub fn now() -> Instant {
    Instant::now()
}

/// Waits until `duration` of virtual time has passed.
///
/// # Panics
///
/// Outside a simulation.
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    sleep_for("lockstep::time::sleep", duration)
}

/// A sleep of `duration`, made by the API `api` (named if it is called
/// outside a simulation).
#[track_caller]
fn sleep_for(api: &'static str, duration: Duration) -> Sleep {
    let now = context::with(api, |w| w.local_now());
    Sleep::new(now.saturating_add(duration))
}

/// Waits until virtual time reaches `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::new(deadline)
}

/// The future returned by [`sleep`] and [`sleep_until`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    key: Option<TimerKey>,
}

impl Sleep {
    fn new(deadline: Instant) -> Sleep {
        Sleep {
            deadline,
            key: None,
        }
    }

    /// When this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has been reached.
    #[track_caller]
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline (earlier or later), keeping the sleep usable.
    pub fn reset(&mut self, deadline: Instant) {
        self.cancel();
        self.deadline = deadline;
    }

    fn cancel(&mut self) {
        if let Some(key) = self.key.take() {
            context::try_with(|w| w.timers.borrow_mut().cancel(key));
        }
    }

    /// Polls without requiring a pin (a `Sleep` is `Unpin`).
    pub fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        context::with("lockstep::time::Sleep::poll", |w| {
            if w.local_now() >= self.deadline {
                if let Some(key) = self.key.take() {
                    w.timers.borrow_mut().cancel(key);
                }
                return Poll::Ready(());
            }
            let armed = match self.key {
                Some(key) => w.timers.borrow_mut().update_waker(key, cx.waker()),
                None => false,
            };
            let at = w.to_global(self.deadline);
            if !armed {
                self.key = Some(w.arm_timer(at, cx.waker()));
            }
            w.exec.note_deadline(at);
            Poll::Pending
        })
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().poll_elapsed(cx)
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// The error of a [`timeout`] whose deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl Elapsed {
    pub(crate) fn new() -> Elapsed {
        Elapsed(())
    }
}

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Runs `future` for at most `duration` of virtual time: `Ok(output)` if it
/// finished in time, `Err(Elapsed)` otherwise (the future is then dropped,
/// which cancels it). asyncio calls this `wait_for`.
///
/// When the future completes at the very instant the deadline passes, the
/// future wins.
///
/// ```
/// use lockstep::prelude::*;
///
/// let outcome = Sim::new(7).run(async {
///     let slow = timeout(Duration::from_secs(1), sleep(Duration::from_secs(5))).await;
///     let fast = timeout(Duration::from_secs(1), async { 42 }).await;
///     (slow.is_err(), fast, Instant::now())
/// });
/// let (slow_timed_out, fast, now) = outcome.into_result().unwrap();
/// assert!(slow_timed_out);
/// assert_eq!(fast, Ok(42));
/// assert_eq!(now, Instant::START + Duration::from_secs(1));
/// ```
#[track_caller]
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        future: future.into_future(),
        sleep: sleep_for("lockstep::time::timeout", duration),
    }
}

/// Like [`timeout`], with an absolute deadline.
pub fn timeout_at<F: IntoFuture>(deadline: Instant, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        future: future.into_future(),
        sleep: sleep_until(deadline),
    }
}

pin_project! {
    /// The future returned by [`timeout`] and [`timeout_at`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless awaited"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F> Timeout<F> {
    /// The wrapped future.
    pub fn get_ref(&self) -> &F {
        &self.future
    }

    /// The deadline.
    pub fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match this.sleep.poll_elapsed(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// What an [`Interval`] does when a tick is late (its task was busy
/// elsewhere when the tick was due).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissedTickBehavior {
    /// Fire the missed ticks back to back until caught up (the default,
    /// as in tokio).
    #[default]
    Burst,
    /// Fire once now, then `period` after now.
    Delay,
    /// Fire once now, then at the next multiple of `period` from the start.
    Skip,
}

/// Ticks every `period` of virtual time; the first tick completes at once.
///
/// # Panics
///
/// If `period` is zero, or outside a simulation.
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Ticks every `period`, the first tick at `start`.
///
/// # Panics
///
/// If `period` is zero.
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "lockstep::time::interval: the period must be greater than zero"
    );
    Interval {
        period,
        next: start,
        missed: MissedTickBehavior::Burst,
        sleep: sleep_until(start),
    }
}

/// A periodic timer; see [`interval`].
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    next: Instant,
    missed: MissedTickBehavior,
    sleep: Sleep,
}

impl Interval {
    /// Waits for the next tick and returns its scheduled instant.
    pub async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if self.sleep.deadline() != self.next {
            self.sleep.reset(self.next);
        }
        if self.sleep.poll_elapsed(cx).is_pending() {
            return Poll::Pending;
        }
        let tick = self.next;
        let now = Instant::now();
        self.next = match self.missed {
            MissedTickBehavior::Burst => tick.saturating_add(self.period),
            MissedTickBehavior::Delay if now > tick => now.saturating_add(self.period),
            MissedTickBehavior::Delay => tick.saturating_add(self.period),
            MissedTickBehavior::Skip => {
                let behind = now.saturating_duration_since(tick).as_nanos();
                let period = self.period.as_nanos();
                let periods = u32::try_from(behind / period + 1).unwrap_or(u32::MAX);
                tick.saturating_add(self.period.saturating_mul(periods))
            }
        };
        Poll::Ready(tick)
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Sets what happens to late ticks.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }

    /// Restarts the interval: the next tick is one period from now.
    #[track_caller]
    pub fn reset(&mut self) {
        self.next = Instant::now().saturating_add(self.period);
    }
}
