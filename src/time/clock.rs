//! Group clocks: skew and drift.
//!
//! Each group of tasks (the network's host) has a piecewise-linear clock
//! over the simulation's time:
//! `local = local_base + (now - base) × (1 + ppm / 10⁶)`. A skew steps
//! `local_base` (forward or back); a drift changes `ppm` from now on. The
//! clocks live in the world beside the timers, read by `Instant::now`
//! without any other borrow. While no clock was ever changed,
//! `Instant::now` does not look at them at all. What sleeps and timeouts
//! do on a skewed host is in the [`time`](crate::time) module docs.

use std::cell::{Cell, RefCell};

use crate::runtime::ext::Group;
use crate::runtime::world::World;
use crate::time::Instant;

/// A group's clock: `local = local_base + (now - base) × (1 + ppm / 10⁶)`.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct HostClock {
    base: u64,
    local_base: u64,
    ppm: i64,
}

impl HostClock {
    pub(crate) fn read(&self, now: u64) -> u64 {
        let dt = now.saturating_sub(self.base) as i128;
        let local = self.local_base as i128 + dt + dt * self.ppm as i128 / 1_000_000;
        local.clamp(0, u64::MAX as i128) as u64
    }

    /// The earliest simulation instant at which this clock reads `local`.
    fn global_for(&self, now: u64, local: u64) -> u64 {
        if local <= self.read(now) {
            return now;
        }
        let dl = (local - self.local_base) as i128;
        let rate = 1_000_000 + self.ppm as i128;
        let mut g = (self.base as i128 + (dl * 1_000_000 + rate - 1) / rate).max(now as i128);
        while g < u64::MAX as i128 && self.read(g as u64) < local {
            g += 1;
        }
        g.clamp(0, u64::MAX as i128) as u64
    }

    fn step(&mut self, now: u64, offset_nanos: i64) {
        let local = self.read(now) as i128 + offset_nanos as i128;
        self.local_base = local.clamp(0, u64::MAX as i128) as u64;
        self.base = now;
    }

    fn set_drift(&mut self, now: u64, ppm: i64) {
        self.local_base = self.read(now);
        self.base = now;
        self.ppm = ppm;
    }
}

/// The clocks of a run's groups, by group index.
#[derive(Default)]
pub(crate) struct Clocks {
    /// Whether any clock was ever changed: `Instant::now` takes the fast
    /// path (the simulation's own time) while it is `false`.
    skewed: Cell<bool>,
    clocks: RefCell<Vec<HostClock>>,
}

impl Clocks {
    /// A clock for a new group (groups are numbered from 0, in order).
    pub(crate) fn add(&self) {
        self.clocks.borrow_mut().push(HostClock::default());
    }

    /// The clock of `g`.
    pub(crate) fn of(&self, g: Group) -> HostClock {
        self.clocks.borrow()[g.index()]
    }

    /// Steps the clock of `g` by `offset_nanos` at `now`.
    pub(crate) fn step(&self, g: Group, now: u64, offset_nanos: i64) {
        self.clocks.borrow_mut()[g.index()].step(now, offset_nanos);
        self.skewed.set(true);
    }

    /// Sets the drift of the clock of `g` at `now`.
    pub(crate) fn set_drift(&self, g: Group, now: u64, ppm: i64) {
        self.clocks.borrow_mut()[g.index()].set_drift(now, ppm);
        self.skewed.set(true);
    }
}

impl World {
    /// The current time as the current task's group clock reads it.
    #[inline]
    pub(crate) fn local_now(&self) -> Instant {
        let now = self.now();
        if !self.clocks.skewed.get() {
            return now;
        }
        match self.exec.current_host() {
            Some(h) => Instant::from_nanos(self.clocks.of(h).read(now.as_nanos())),
            None => now,
        }
    }

    /// The simulation instant at which the current task's group clock reads
    /// `deadline`.
    #[inline]
    pub(crate) fn to_global(&self, deadline: Instant) -> Instant {
        if !self.clocks.skewed.get() {
            return deadline;
        }
        match self.exec.current_host() {
            Some(h) => {
                let clock = self.clocks.of(h);
                Instant::from_nanos(clock.global_for(self.now().as_nanos(), deadline.as_nanos()))
            }
            None => deadline,
        }
    }
}
