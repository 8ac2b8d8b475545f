//! Host clocks: skew and drift.
//!
//! Each host has a piecewise-linear clock over the simulation's time:
//! `local = local_base + (now - base) × (1 + ppm / 10⁶)`. A skew steps
//! `local_base` (forward or back); a drift changes `ppm` from now on. The
//! clocks live beside the fabric (in `NetSlot`), not in it, because
//! `Instant::now` reads them and must not need the fabric's borrow. While
//! no clock was ever changed, `Instant::now` does not look at them at all.
//! What sleeps and timeouts do on a skewed host is in the
//! [`time`](crate::time) module docs.

use super::fabric;
use super::host::{HostId, record_fault};
use crate::runtime::world::World;
use crate::time::{Duration, Instant};

/// A host's clock: `local = local_base + (now - base) × (1 + ppm / 10⁶)`.
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

impl World {
    /// The current time as the current task's host clock reads it.
    #[inline]
    pub(crate) fn local_now(&self) -> Instant {
        let now = self.now();
        if !self.net.skewed.get() {
            return now;
        }
        match self.exec.current_host() {
            Some(h) => {
                Instant::from_nanos(self.net.clocks.borrow()[h.index()].read(now.as_nanos()))
            }
            None => now,
        }
    }

    /// The simulation instant at which the current task's host clock reads
    /// `deadline`.
    #[inline]
    pub(crate) fn to_global(&self, deadline: Instant) -> Instant {
        if !self.net.skewed.get() {
            return deadline;
        }
        match self.exec.current_host() {
            Some(h) => {
                let clock = self.net.clocks.borrow()[h.index()];
                Instant::from_nanos(clock.global_for(self.now().as_nanos(), deadline.as_nanos()))
            }
            None => deadline,
        }
    }
}

/// The text form of a signed clock offset: `+1.500s`, `-0.250s`.
pub(crate) fn signed(nanos: i64) -> String {
    let sign = if nanos < 0 { '-' } else { '+' };
    format!(
        "{sign}{}",
        crate::time::format_duration(Duration::from_nanos(nanos.unsigned_abs()))
    )
}

/// Steps the clock of `h` by `offset_nanos`.
pub(crate) fn skew(w: &World, h: HostId, offset_nanos: i64) {
    let now = w.now().as_nanos();
    w.net.clocks.borrow_mut()[h.index()].step(now, offset_nanos);
    w.net.skewed.set(true);
    let name = fabric::with(w, |f| f.host(h).name.clone());
    record_fault(w, format!("clock-skew {name} {}", signed(offset_nanos)));
}

/// Sets the drift of the clock of `h`.
pub(crate) fn drift(w: &World, h: HostId, ppm: i64) {
    assert!(
        ppm > -1_000_000,
        "lockstep::net: a clock drift of {ppm}ppm would stop the clock or run it backwards \
         (expected more than -1000000)"
    );
    let now = w.now().as_nanos();
    w.net.clocks.borrow_mut()[h.index()].set_drift(now, ppm);
    w.net.skewed.set(true);
    let name = fabric::with(w, |f| f.host(h).name.clone());
    let sign = if ppm < 0 { "" } else { "+" };
    record_fault(w, format!("clock-drift {name} {sign}{ppm}ppm"));
}
