//! Host clocks: skew and drift, as faults.
//!
//! The clocks themselves are the time layer's (one per group, see
//! `time::clock`): a host's clock is its group's. This module steps them
//! and records the fault. What sleeps and timeouts do on a skewed host is
//! in the [`time`](crate::time) module docs.

use super::fabric;
use super::host::{HostId, record_fault};
use crate::runtime::world::World;
use crate::time::Duration;

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
    w.clocks.step(h.group(), now, offset_nanos);
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
    w.clocks.set_drift(h.group(), now, ppm);
    let name = fabric::with(w, |f| f.host(h).name.clone());
    let sign = if ppm < 0 { "" } else { "+" };
    record_fault(w, format!("clock-drift {name} {sign}{ppm}ppm"));
}
