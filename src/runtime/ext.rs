//! The extension point: how the layers built on the runtime (`sync`, `net`,
//! `fault`) attach their per-run state and their hooks, so that the runtime
//! (and `task`, `time`, `trace`) never names them.
//!
//! ## Why
//!
//! The runtime is the ground floor: one seeded executor, a virtual clock,
//! the trace. The sync primitives' deadlock analysis, the network's hosts
//! and sockets and the fault plans all need a little of the run's life
//! (state that lives exactly as long as the run, a look after a task
//! blocks, a word when nothing can run, a check when the main task
//! returns), but the runtime must not depend on them: a reader learns the
//! runtime without learning the network, and a layer is changed without
//! touching the executor. So the dependency points one way: a layer
//! describes itself to the runtime as a [`Layer`] (a few optional hooks)
//! and keeps its state in [`Slots`]; the runtime calls what it is given.
//!
//! ## Per-run state
//!
//! [`Slots`] holds a few values of types the runtime does not know, one per
//! type, each created with `Default` the first time its layer asks for it
//! ([`Slots::get`]) and dropped with the run. A run that never touches the
//! network never creates its state. Creating one must not ask for another
//! (`Default` impls stay plain data).
//!
//! ## Hooks, and their order
//!
//! The layers of a run are a fixed list given by the crate root
//! (`crate::LAYERS`), so every run has the same hooks in the same order:
//! registration order, which is that list's order. Every hook of one kind
//! runs in that order; the kinds run at fixed points:
//!
//! - [`Layer::start`]: once, after the main task is spawned and before it
//!   is first polled (the fault plan of the settings is installed here).
//! - [`Layer::spawned`]: after every spawn (not the main task's), with the
//!   child's key, while the parent (if any) is still the current task.
//! - [`Layer::after_pending`]: after a spawned task's poll returned
//!   `Pending`, only when its waiting list holds a wait the analysis
//!   follows (a `JoinHandle` or a [`LayerWait`] marked `followed`): the
//!   uncontended path costs one look at the list, nothing more. After the
//!   main task's `Pending`, always (the drive loop does not look at its
//!   list; the hook does).
//! - [`Layer::stalled`]: nothing can run and no timer is pending. The first
//!   layer with this hook writes the deadlock report; without one the
//!   runtime lists the blocked tasks itself.
//! - [`Layer::main_finished`]: the main task returned and nothing failed
//!   yet: checks that may fail the run (unapplied faults), then
//!   [`Layer::leaks`] adds what a layer finds still open to the leak
//!   report (sockets).
//! - [`Layer::teardown`]: the run's tasks and timers are dropped; drop what
//!   else may hold user values (host factories, socket buffers) while the
//!   context is still entered, so their `Drop` may call lockstep.
//!
//! ## Waits owned by a layer
//!
//! A task blocked on a layer's resource notes a [`LayerWait`] in its
//! executor entry: the resource (an [`Awaited`]), the layer's own code for
//! the kind of wait, and whether the deadlock analysis follows it. The
//! executor only stores it, describes it in reports, and hands it back to
//! the layer's hooks, which walk it through [`Awaited`].
//!
//! What the analysis needs on every step stays in the executor, beside
//! the task it describes, so the hot path never searches the slots: per
//! task, the copies of its waker held outside tracked primitives, and how
//! many times it may have handed values to another task (spawned one, sent
//! a message): `Executor::untracked_wakers`, `Executor::moves_of`.
//!
//! ## Groups
//!
//! A task may belong to a [`Group`], inherited from the task that spawned
//! it: the executor can pause, resume and list a group's tasks, the trace
//! names the group, and poll cost gives each group a speed. The network
//! maps each host onto one group (same number); the runtime knows nothing
//! else about hosts.

use std::any::{Any, TypeId};
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::executor::{Executor, Waiting};
use super::waker::TaskKey;
use super::world::World;
use crate::check::{DeadlockReport, SocketLeak};
use crate::task::TaskId;

/// How many layers may attach state to one run.
const SLOTS: usize = 4;

/// Per-run state of the layers, one value per type, created on first use.
#[derive(Default)]
pub(crate) struct Slots {
    slots: [OnceCell<(TypeId, Box<dyn Any>)>; SLOTS],
}

impl Slots {
    /// The run's `T`, created with `Default` on first use. Slots are
    /// searched in creation order, by a comparison of type ids each.
    #[inline]
    pub(crate) fn get<T: Any + Default>(&self) -> &T {
        for slot in &self.slots {
            match slot.get() {
                Some((id, b)) if *id == TypeId::of::<T>() => return cast(&**b),
                Some(_) => {}
                None => return Self::create(slot),
            }
        }
        panic!("lockstep: more than {SLOTS} layers attach state to a run")
    }

    #[cold]
    fn create<T: Any + Default>(slot: &OnceCell<(TypeId, Box<dyn Any>)>) -> &T {
        let (_, b) = slot.get_or_init(|| (TypeId::of::<T>(), Box::<T>::default()));
        b.downcast_ref::<T>()
            .expect("a slot holds the type it was created for")
    }

    /// The run's `T`, if it was created.
    #[inline]
    pub(crate) fn try_get<T: Any>(&self) -> Option<&T> {
        self.slots
            .iter()
            .map_while(OnceCell::get)
            .find(|(id, _)| *id == TypeId::of::<T>())
            .map(|(_, b)| cast(&**b))
    }
}

/// The `T` in a slot whose type id is `T`'s.
///
/// `<dyn Any>::downcast_ref` would ask the box for its type id through
/// its vtable on every look-up; the id stored beside the box answers the
/// same question with a comparison against a constant. This is the sync
/// layer's hot path (a channel send looks at its per-run state a few
/// times), measured at about 6% of a channel ping-pong with the vtable
/// call.
#[inline]
fn cast<T: Any>(b: &dyn Any) -> &T {
    debug_assert!(b.is::<T>(), "a slot holds the type it was created for");
    // SAFETY: callers pass the box of a slot whose stored type id is
    // `TypeId::of::<T>()`, and a slot's id is set once, together with its
    // box, from the type of the value boxed (`Slots::create`): the box
    // holds a `T`. Casting the fat `*const dyn Any` to a thin `*const T`
    // keeps its data pointer, which points at that `T`, and the borrow's
    // lifetime is the box's.
    unsafe { &*(b as *const dyn Any).cast::<T>() }
}

/// For reports: what each task holds that some task waits on, by holder.
pub(crate) type Holdings = BTreeMap<TaskId, Vec<String>>;

/// A layer's [`Holdings`], given every live task's waiting list in id
/// order.
pub(crate) type HoldingsHook = fn(&[&[Waiting]]) -> Holdings;

/// A layer built on the runtime, as the runtime sees it: the hooks it
/// wants (see the module docs for when each runs).
pub(crate) struct Layer {
    /// The run starts.
    pub(crate) start: Option<fn(&World)>,
    /// A task was spawned (the parent is still current).
    pub(crate) spawned: Option<fn(&World, TaskKey)>,
    /// A task returned `Pending` while waiting on something followed.
    pub(crate) after_pending: Option<fn(&World, TaskKey)>,
    /// Nothing can run and no timer is pending: the deadlock report.
    pub(crate) stalled: Option<fn(&World) -> DeadlockReport>,
    /// For reports: which task holds what some task waits on, by holder,
    /// given every live task's waiting list in id order.
    pub(crate) holdings: Option<HoldingsHook>,
    /// The main task returned: checks that may fail the run.
    pub(crate) main_finished: Option<fn(&World)>,
    /// The main task returned: resources still open, for the leak report.
    pub(crate) leaks: Option<fn(&World) -> Vec<SocketLeak>>,
    /// The run ends: drop what may hold user values, inside the context.
    pub(crate) teardown: Option<fn(&World)>,
}

impl Layer {
    /// A layer with no hooks (fill in the ones it needs).
    pub(crate) const NONE: Layer = Layer {
        start: None,
        spawned: None,
        after_pending: None,
        stalled: None,
        holdings: None,
        main_finished: None,
        leaks: None,
        teardown: None,
    };
}

/// The layers of every run, in registration order.
#[inline]
pub(crate) fn layers() -> &'static [&'static Layer] {
    crate::LAYERS
}

/// What a task waits on, when a layer owns it: a resource whose waits the
/// layer's hooks can walk (who can end the wait), and reports describe.
/// `op` is the layer's own code for the kind of wait ([`Op`]).
pub(crate) trait Awaited: 'static {
    /// How a wait of kind `op` reads in a report (`mutex 'lock2', held by
    /// #2 task-b`).
    fn describe(&self, op: Op, exec: &Executor) -> String;

    /// Its label (`mutex 'lock2'`).
    fn label(&self) -> String;

    /// Whether only the tasks holding it can end a wait of kind `op`; if
    /// so, pushes them (in the order they acquired) onto `out`.
    fn holders(&self, op: Op, out: &mut Vec<TaskKey>) -> bool {
        let _ = (op, out);
        false
    }

    /// For reports: tasks likely to end the wait when no holder can be
    /// named for sure. Defaults to the holders.
    fn likely(&self, op: Op, out: &mut Vec<TaskKey>) {
        self.holders(op, out);
    }

    /// How holder `task`'s hold, which a wait of kind `op` waits on, reads
    /// in a report.
    fn held_as(&self, task: TaskKey, op: Op) -> String {
        let _ = (task, op);
        self.label()
    }

    /// What a wait of kind `op` is for, briefly, in a cycle's link
    /// (`a message on channel 'jobs'`).
    fn short(&self, op: Op) -> String {
        let _ = op;
        self.label()
    }
}

/// A layer's own code for a kind of wait (sync: lock, read, acquire `n`
/// permits, ...): a kind and an argument, small enough that a noted wait
/// stays small.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Op {
    pub(crate) kind: u8,
    pub(crate) arg: u32,
}

/// One wait of a task on a layer's resource, noted in its executor entry.
#[derive(Clone)]
pub(crate) struct LayerWait {
    pub(crate) on: Rc<dyn Awaited>,
    /// The [`Op`], in two fields so that the flag below shares its word
    /// (a `Waiting` stays three words).
    arg: u32,
    kind: u8,
    /// Whether the deadlock analysis follows it ([`Layer::after_pending`]).
    pub(crate) followed: bool,
}

impl LayerWait {
    /// A wait of kind `op` on `on`.
    #[inline]
    pub(crate) fn new(on: Rc<dyn Awaited>, op: Op, followed: bool) -> LayerWait {
        LayerWait {
            on,
            arg: op.arg,
            kind: op.kind,
            followed,
        }
    }

    /// The kind of wait.
    #[inline]
    pub(crate) fn op(&self) -> Op {
        Op {
            kind: self.kind,
            arg: self.arg,
        }
    }

    /// The resource's address: an identity for de-duplication only, never
    /// for ordering, so it cannot reach a trace or a report.
    pub(crate) fn address(&self) -> usize {
        Rc::as_ptr(&self.on).cast::<()>().addr()
    }
}

impl std::fmt::Debug for LayerWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} on {}", self.op(), self.on.label())
    }
}

/// A group of tasks (the network's host): paused, resumed and listed
/// together by the executor, named in the trace.
///
/// It holds its index plus one, so that an `Option<Group>` (a task's host)
/// takes 4 bytes, not 8: every task entry holds one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Group(std::num::NonZeroU32);

impl Group {
    pub(crate) fn new(index: usize) -> Group {
        let n = u32::try_from(index + 1).expect("fewer than 2^32 groups");
        Group(std::num::NonZeroU32::new(n).expect("index + 1 is not 0"))
    }

    pub(crate) fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

impl World {
    /// Runs every `start` hook.
    pub(crate) fn layers_start(&self) {
        for l in layers() {
            if let Some(f) = l.start {
                f(self);
            }
        }
    }

    /// Runs every `spawned` hook.
    #[inline]
    pub(crate) fn layers_spawned(&self, child: TaskKey) {
        for l in layers() {
            if let Some(f) = l.spawned {
                f(self, child);
            }
        }
    }

    /// Runs every `after_pending` hook.
    pub(crate) fn layers_after_pending(&self, key: TaskKey) {
        for l in layers() {
            if let Some(f) = l.after_pending {
                f(self, key);
            }
        }
    }

    /// The deadlock report of a run where nothing can run.
    pub(crate) fn layers_stalled(&self) -> DeadlockReport {
        match layers().iter().find_map(|l| l.stalled) {
            Some(f) => f(self),
            None => DeadlockReport {
                kind: crate::check::DeadlockKind::Stalled,
                cycle: Vec::new(),
                blocked: self.exec.blocked(),
                at: self.point(),
            },
        }
    }

    /// Runs every `main_finished` hook, until the run fails.
    pub(crate) fn layers_main_finished(&self) {
        for l in layers() {
            if let Some(f) = l.main_finished {
                f(self);
                if self.failed() {
                    return;
                }
            }
        }
    }

    /// What every layer finds still open when the main task returned.
    pub(crate) fn layers_leaks(&self) -> Vec<SocketLeak> {
        let mut out = Vec::new();
        for l in layers() {
            if let Some(f) = l.leaks {
                out.extend(f(self));
            }
        }
        out
    }

    /// Runs every `teardown` hook.
    pub(crate) fn layers_teardown(&self) {
        for l in layers() {
            if let Some(f) = l.teardown {
                f(self);
            }
        }
    }
}

/// Which task holds what, from every layer with a `holdings` hook.
pub(crate) fn holdings(waits: &[&[Waiting]]) -> Holdings {
    let mut out = Holdings::new();
    for l in layers() {
        if let Some(f) = l.holdings {
            for (k, v) in f(waits) {
                out.entry(k).or_default().extend(v);
            }
        }
    }
    out
}

/// A layer's setting of a run (a fault plan), carried by the run's
/// settings without the runtime knowing its type.
pub(crate) trait Setting: Any + Send + Sync + std::fmt::Debug {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any + Send + Sync + std::fmt::Debug> Setting for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The layers' settings of a run, one value per type.
#[derive(Clone, Default)]
pub(crate) struct Settings(Vec<std::sync::Arc<dyn Setting>>);

impl Settings {
    /// Sets the run's `T`, replacing any earlier one.
    pub(crate) fn set<T: Setting>(&mut self, value: T) {
        self.0.retain(|s| !Setting::as_any(&**s).is::<T>());
        self.0.push(std::sync::Arc::new(value));
    }

    /// The run's `T`, if set.
    pub(crate) fn get<T: Any>(&self) -> Option<&T> {
        self.0
            .iter()
            .find_map(|s| Setting::as_any(&**s).downcast_ref::<T>())
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Default)]
    struct A(Cell<u32>);
    #[derive(Default)]
    struct B(Cell<u32>);
    #[derive(Default)]
    struct C;
    #[derive(Default)]
    struct D;
    #[derive(Default)]
    struct E;

    #[test]
    fn a_slot_is_made_on_first_use_and_found_again_by_type() {
        let slots = Slots::default();
        assert!(slots.try_get::<A>().is_none());
        slots.get::<B>().0.set(7);
        slots.get::<A>().0.set(3);
        assert_eq!(slots.get::<B>().0.get(), 7);
        assert_eq!(slots.get::<A>().0.get(), 3);
        assert_eq!(slots.try_get::<A>().map(|a| a.0.get()), Some(3));
        assert!(slots.try_get::<C>().is_none());
    }

    #[test]
    #[should_panic(expected = "more than 4 layers attach state to a run")]
    fn more_types_than_slots_is_a_clear_panic() {
        let slots = Slots::default();
        slots.get::<A>();
        slots.get::<B>();
        slots.get::<C>();
        slots.get::<D>();
        slots.get::<E>();
    }

    #[test]
    fn a_setting_replaces_one_of_its_type_only() {
        let mut settings = Settings::default();
        assert_eq!(settings.get::<u32>(), None);
        settings.set(1u32);
        settings.set("plan");
        settings.set(2u32);
        assert_eq!(settings.get::<u32>(), Some(&2));
        assert_eq!(settings.get::<&str>(), Some(&"plan"));
        assert_eq!(format!("{settings:?}"), "[\"plan\", 2]");
    }
}
