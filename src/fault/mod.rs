//! Faults on a schedule, and fault points in code under test.
//!
//! - [`FaultPlan`]: a time-ordered list of [`FaultAction`]s (partitions,
//!   crashes, restarts, pauses, clock skew, link loss and delay) as plain
//!   data: written by hand, parsed from its text form, drawn from a seed
//!   ([`FaultPlan::generate`], or [`FaultPlan::random`] to draw it from the
//!   run's own seed), serialized with serde, and shrunk by proptest.
//! - [`apply`]: schedules a plan in the running simulation. Every action
//!   runs inside the runtime at its virtual time (a pending action is
//!   pending work, like a timer) and is recorded in the trace as
//!   `fault: partition client server`, exactly as the same fault called
//!   directly (`lockstep::net::partition`) is.
//! - [`buggify!`](crate::buggify!): a fault point in code under test that
//!   fires, in simulations only, with a probability drawn from the seed.
//!
//! Host names in a plan resolve when the action applies, not when the plan
//! is installed, so a plan may name hosts that the main task creates later.
//! An action naming a host that does not exist *at its time* fails the run
//! with [`Failure::InvalidFault`], naming the action, its time and the
//! hosts that exist, since a hand-written plan with a typo would otherwise
//! test nothing. An action the run never reached (due after the main task
//! returned) is checked when the main task returns: if it names a host that
//! does not exist then, the run fails the same way ("never applied: due at
//! 60.000s, after the run ended; no host named `serverr`"), so a typo is
//! caught whatever the run's length. Unreached actions that name existing
//! hosts are fine: a plan may reach past a short run. Host slots (`@N`, used by random plans) always resolve once a
//! host exists; an action whose two slots land on the same host is skipped
//! (and traced as such). Before any host exists, slot actions are skipped.
//!
//! All fault randomness (random plans, buggify points) comes from the
//! seed's `FAULT` stream, apart from the network's and the scheduler's:
//! adding a `buggify!` point does not change which latencies are drawn.

use std::cell::RefCell;

use crate::check::{Failure, InvalidFaultReport};
use crate::net::{self, HostId, LinkFault};
use crate::runtime::context;
use crate::runtime::ext::Layer;
use crate::runtime::world::World;
use crate::time::{Instant, format_duration};
use crate::trace::EventKind;
use crate::{Sim, SimBuilder};

mod buggify;
mod plan;

#[doc(hidden)]
pub use crate::time::parse_duration;
pub use buggify::__buggify;
pub use plan::{FaultAction, FaultPlan, FaultPlanParseError, Timed};

/// Applies `plan` to the running simulation: each action runs `at` after
/// now. Actions due now run as soon as the calling task yields.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::fault::FaultPlan;
/// use lockstep::net::Host;
///
/// let outcome = Sim::new(1).run(async {
///     let server = Host::new("server", || async { Ok(()) });
///     lockstep::fault::apply(&"at 1s crash server\nat 2s restart server".parse().unwrap());
///     sleep(Duration::from_millis(1500)).await;
///     let down = !server.is_up();
///     sleep(Duration::from_secs(1)).await;
///     (down, server.is_up())
/// });
/// assert_eq!(outcome.into_result().unwrap(), (true, true));
/// ```
///
/// # Panics
///
/// Outside a simulation.
pub fn apply(plan: &FaultPlan) {
    context::with("lockstep::fault::apply", |w| install(w, plan));
}

/// The fault layer's hooks: the settings' plan is installed when the run
/// starts, and unapplied actions are checked when the main task returns.
pub(crate) const LAYER: Layer = Layer {
    start: Some(start),
    main_finished: Some(check_unapplied),
    ..Layer::NONE
};

impl SimBuilder {
    /// A fault plan to apply to every run, installed when the run starts
    /// (its times count from `0.000s`), exactly as if the main task called
    /// [`fault::apply`](crate::fault::apply) first.
    pub fn faults(mut self, plan: FaultPlan) -> Self {
        self.config.layers.set(plan);
        self
    }
}

impl Sim {
    /// The fault plan applied from the start of each run, if any.
    pub fn faults(&self) -> Option<&FaultPlan> {
        self.config.layers.get::<FaultPlan>()
    }
}

/// Installs the plan of the run's settings, if any.
fn start(w: &World) {
    if let Some(plan) = w.config.layers.get::<FaultPlan>() {
        install(w, plan);
    }
}

/// Fault plan actions scheduled and not yet applied, by the order they
/// were installed (checked when the main task returns).
#[derive(Default)]
pub(crate) struct Pending(RefCell<Vec<Option<(Instant, FaultAction)>>>);

/// The check when the main task returns: an action never applied that names
/// a host that does not exist fails the run.
pub(crate) fn check_unapplied(w: &World) {
    let Some(pending) = w.ext.try_get::<Pending>() else {
        return;
    };
    let pending = std::mem::take(&mut *pending.0.borrow_mut());
    let mut bad = pending.into_iter().flatten().filter_map(|(at, action)| {
        let unknown = names(&action)
            .into_iter()
            .find(|n| !n.starts_with('@') && net::host_id(w, n).is_err())?;
        let why = net::host_id(w, unknown).err().unwrap_or_default();
        Some((at, action, why))
    });
    let Some((at, action, why)) = bad.next() else {
        return;
    };
    let more = bad.count();
    let more = match more {
        0 => String::new(),
        1 => " (1 more unapplied action names an unknown host)".to_string(),
        n => format!(" ({n} more unapplied actions name unknown hosts)"),
    };
    w.fail(Failure::InvalidFault(InvalidFaultReport {
        action: action.to_string(),
        message: format!("never applied: due at {at}, after the run ended; {why}{more}"),
        at: w.point(),
    }));
}

/// Schedules every action of `plan` relative to now.
pub(crate) fn install(w: &World, plan: &FaultPlan) {
    let now = w.now();
    for timed in &plan.actions {
        let action = timed.action.clone();
        let at = now.saturating_add(timed.at);
        let index = {
            let mut p = w.ext.get::<Pending>().0.borrow_mut();
            p.push(Some((at, action.clone())));
            p.len() - 1
        };
        w.call_at(at, move |w| {
            if let Some(slot) = w.ext.get::<Pending>().0.borrow_mut().get_mut(index) {
                *slot = None;
            }
            if let Err(message) = act(w, &action) {
                w.fail(Failure::InvalidFault(InvalidFaultReport {
                    action: action.to_string(),
                    message,
                    at: w.point(),
                }));
            }
        });
    }
}

impl crate::explore::Swarm {
    /// Whether random fault plans may use the kind of `action` under this
    /// swarm configuration (actions of no kind, like `heal-all`, always).
    pub fn allows(&self, action: &FaultAction) -> bool {
        use FaultAction::*;
        let bit = match action {
            Partition { .. } | Heal { .. } => 0,
            PartitionOneWay { .. } | HealOneWay { .. } => 1,
            Crash { .. } | Restart { .. } => 2,
            Pause { .. } | Resume { .. } => 3,
            ClockSkew { .. } | ClockDrift { .. } => 4,
            LinkLoss { .. } => 5,
            LinkDelay { .. } => 6,
            LinkRestore { .. } => return self.kind_enabled(5) || self.kind_enabled(6),
            HealAll | Random { .. } => return true,
        };
        self.kind_enabled(bit)
    }
}

/// Resolves two hosts of a two-host action. Two slots that land on one
/// host resolve the second to another host (the next ones in creation
/// order, chosen by the slot), so random plans always name two distinct
/// hosts; `None` only when a single host exists (the action is skipped and
/// traced).
fn pair(
    w: &World,
    action: &FaultAction,
    a: &str,
    b: &str,
) -> Result<Option<(HostId, HostId)>, String> {
    let (x, mut y) = (net::host_id(w, a)?, net::host_id(w, b)?);
    if x == y && a.starts_with('@') && b.starts_with('@') {
        let n = net::fabric::with(w, |f| f.hosts.len());
        let slot: usize = b[1..].parse().unwrap_or(0);
        if n > 1 {
            y = HostId::new((x.index() + 1 + (slot / n) % (n - 1)) % n);
        }
    }
    if x == y {
        if a.starts_with('@') || b.starts_with('@') {
            skip(
                w,
                action,
                &format!("both slots are host {}", net::host_name(w, x)),
            );
            return Ok(None);
        }
        return Err(format!("both ends are the host `{a}`"));
    }
    Ok(Some((x, y)))
}

fn skip(w: &World, action: &FaultAction, why: &str) {
    w.record(EventKind::Fault {
        action: format!("skipped `{action}`: {why}"),
    });
}

fn no_hosts_yet(w: &World, names: &[&str]) -> bool {
    names.iter().any(|n| n.starts_with('@')) && net::fabric::with(w, |f| f.hosts.is_empty())
}

/// The host names (or `@N` slots) an action uses.
fn names(action: &FaultAction) -> Vec<&str> {
    use FaultAction::*;
    match action {
        Partition { a, b }
        | Heal { a, b }
        | LinkLoss { a, b, .. }
        | LinkDelay { a, b, .. }
        | LinkRestore { a, b } => {
            vec![a, b]
        }
        PartitionOneWay { from, to } | HealOneWay { from, to } => vec![from, to],
        Crash { host }
        | Restart { host }
        | Pause { host, .. }
        | Resume { host }
        | ClockSkew { host, .. }
        | ClockDrift { host, .. } => {
            vec![host]
        }
        HealAll | Random { .. } => vec![],
    }
}

/// Applies one action now.
pub(crate) fn act(w: &World, action: &FaultAction) -> Result<(), String> {
    use FaultAction::*;
    let names = names(action);
    if no_hosts_yet(w, &names) {
        skip(w, action, "no host exists yet");
        return Ok(());
    }
    let host = |name: &str| net::host_id(w, name);
    match action {
        Partition { a, b } => {
            if let Some((a, b)) = pair(w, action, a, b)? {
                net::cut(w, a, b, true);
            }
        }
        PartitionOneWay { from, to } => {
            if let Some((a, b)) = pair(w, action, from, to)? {
                net::cut(w, a, b, false);
            }
        }
        Heal { a, b } => {
            if let Some((a, b)) = pair(w, action, a, b)? {
                net::uncut(w, a, b, true);
            }
        }
        HealOneWay { from, to } => {
            if let Some((a, b)) = pair(w, action, from, to)? {
                net::uncut(w, a, b, false);
            }
        }
        HealAll => net::uncut_all(w),
        Crash { host: h } => {
            let h = host(h)?;
            if !net::crash(w, h) {
                skip(w, action, "the host is already down");
            }
        }
        Restart { host: h } => net::restart(w, host(h)?),
        Pause { host: h, duration } => net::pause(w, host(h)?, Some(*duration)),
        Resume { host: h } => net::resume(w, host(h)?),
        ClockSkew {
            host: h,
            offset_nanos,
        } => net::skew(w, host(h)?, *offset_nanos),
        ClockDrift { host: h, ppm } => {
            if *ppm <= -1_000_000 {
                return Err(format!("a drift of {ppm}ppm would stop the clock"));
            }
            net::drift(w, host(h)?, *ppm)
        }
        LinkLoss { a, b, loss } => {
            if !(0.0..=1.0).contains(loss) {
                return Err(format!("{loss} is not a probability"));
            }
            if let Some((a, b)) = pair(w, action, a, b)? {
                net::link_fault(w, a, b, LinkFault::Loss(*loss));
            }
        }
        LinkDelay { a, b, delay } => {
            if let Some((a, b)) = pair(w, action, a, b)? {
                net::link_fault(w, a, b, LinkFault::Delay(*delay));
            }
        }
        LinkRestore { a, b } => {
            if let Some((a, b)) = pair(w, action, a, b)? {
                net::link_fault(w, a, b, LinkFault::Restore);
            }
        }
        Random { intensity, horizon } => {
            if !(0.0..=1.0).contains(intensity) {
                return Err(format!("intensity {intensity} is not between 0 and 1"));
            }
            let seed = net::fabric::with(w, |f| {
                use rand_chacha::rand_core::Rng;
                f.fault_rng.next_u64()
            });
            w.mix(seed);
            // Swarm testing: this seed's fault kinds, at its intensity.
            let plan = match w.swarm {
                None => FaultPlan::generate(seed, *intensity, *horizon),
                Some(s) => {
                    let scaled = (intensity * s.intensity_factor()).min(1.0);
                    let mut plan = FaultPlan::generate(seed, scaled, *horizon);
                    plan.actions.retain(|t| s.allows(&t.action));
                    plan
                }
            };
            w.record(EventKind::Fault {
                action: format!(
                    "random {intensity} for {}: {} actions drawn (FaultPlan::generate({seed:#x}, ..))",
                    format_duration(*horizon),
                    plan.actions.len()
                ),
            });
            install(w, &plan);
        }
    }
    Ok(())
}
