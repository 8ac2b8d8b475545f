//! What every primitive shares: its name, and what it tells the deadlock
//! analysis and the reports.
//!
//! A primitive is split in two: its value or buffer (generic over `T`) and
//! a small non-generic *core* behind an `Rc` that holds its state (locked
//! or not, holders, the waiter list) and implements [`Tracked`]. When a task
//! blocks on a primitive it notes a [`LayerWait`] (an `Rc` of the core plus
//! what kind of wait it is) in its executor entry; reports and the early
//! deadlock check read the core through it (as the runtime's [`Awaited`]). So nothing is registered
//! anywhere on the fast path, and a primitive nobody waits on costs the
//! analysis nothing.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::task::Poll;

use crate::runtime::context;
use crate::runtime::executor::{Executor, Waiting, per_task};
use crate::runtime::ext::{Awaited, LayerWait, Op};
use crate::runtime::waker::TaskKey;
use crate::runtime::world::World;
use crate::task::TaskId;
use crate::trace::Verbosity;
use crate::trace::store::code;

/// The kinds of primitive, as labels name them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Mutex,
    RwLock,
    Semaphore,
    Event,
    Notify,
    Barrier,
    Channel,
    Oneshot,
    Broadcast,
    Watch,
}

impl Kind {
    const COUNT: usize = 10;

    fn word(self) -> &'static str {
        match self {
            Kind::Mutex => "mutex",
            Kind::RwLock => "rwlock",
            Kind::Semaphore => "semaphore",
            Kind::Event => "event",
            Kind::Notify => "notify",
            Kind::Barrier => "barrier",
            Kind::Channel => "channel",
            Kind::Oneshot => "oneshot",
            Kind::Broadcast => "broadcast",
            Kind::Watch => "watch",
        }
    }
}

/// A primitive's kind and name.
///
/// A primitive made with a name is labelled `mutex 'accounts'`. One made
/// without is numbered per kind, in creation order within the run
/// (`mutex#0`, `mutex#1`), so labels are the same in every run of a seed;
/// one made outside a simulation gets its number when first used in one.
pub(crate) struct Meta {
    kind: Kind,
    name: Option<Box<str>>,
    /// The auto-name number and the tag of the run it belongs to.
    number: Cell<Option<(u32, u32)>>,
    /// The label's interned id in a run's trace, and that trace's epoch.
    trace_label: Cell<(u64, u32)>,
    /// The last wait's detail (its address and length) and the interned
    /// pair of this primitive and that detail, in the trace of that epoch:
    /// a channel's waits repeat theirs, and this skips both look-ups.
    wait_pair: Cell<(u64, usize, usize, u32)>,
}

impl Meta {
    pub(crate) fn new(kind: Kind, name: Option<String>) -> Meta {
        let meta = Meta {
            kind,
            name: name.map(String::into_boxed_str),
            number: Cell::new(None),
            trace_label: Cell::new((0, 0)),
            wait_pair: Cell::new((0, 0, 0, 0)),
        };
        if meta.name.is_none() {
            context::try_with(|w| meta.number_in(w));
        }
        meta
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    fn number_in(&self, w: &World) -> u32 {
        match self.number.get() {
            Some((tag, n)) if tag == w.tag.0 => n,
            _ => {
                let n = Registry::of(w).next_number(self.kind);
                self.number.set(Some((w.tag.0, n)));
                n
            }
        }
    }

    /// `mutex 'accounts'`, or `mutex#3` for an unnamed one.
    pub(crate) fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{} '{name}'", self.kind.word()),
            None => match context::try_with(|w| self.number_in(w)) {
                Some(n) => format!("{}#{n}", self.kind.word()),
                None => format!("an unnamed {}", self.kind.word()),
            },
        }
    }

    /// Traces `ev` on this primitive, if its level is traced; `detail` is
    /// only formatted then. A no-op outside a simulation (a `Drop`).
    pub(crate) fn trace(&self, ev: Ev, detail: impl FnOnce() -> Option<String>) {
        self.trace_str(ev, || detail().map(std::borrow::Cow::Owned))
    }

    /// [`Meta::trace`] with a detail that may be a `&'static str` (no
    /// allocation per event).
    pub(crate) fn trace_str(
        &self,
        ev: Ev,
        detail: impl FnOnce() -> Option<std::borrow::Cow<'static, str>>,
    ) {
        context::try_with(|w| {
            if !w.tracing(ev.level()) {
                return;
            }
            let detail = detail();
            let (code, to) = match ev {
                Ev::Acquire => (code::ACQUIRE, None),
                Ev::Release(to) => (code::RELEASE, to.map(|k| k.id)),
                Ev::Wait => (code::WAIT, None),
                Ev::Notify => (code::NOTIFY, None),
                Ev::Send => (code::SEND, None),
                Ev::Recv => (code::RECV, None),
                Ev::Close => (code::CLOSE, None),
            };
            w.record_sync(
                ev.level(),
                code,
                &self.trace_label,
                || self.label(),
                detail,
                to,
            );
        });
    }

    /// Traces a wait whose detail is fixed (`a message`).
    pub(crate) fn trace_wait_static(&self, detail: &'static str) {
        context::try_with(|w| {
            if !w.tracing(Ev::Wait.level()) {
                return;
            }
            w.record_wait_static(&self.trace_label, &self.wait_pair, || self.label(), detail);
        });
    }

    /// Traces a wait for a lock held by `holder` (the detail, `held by
    /// #2 worker`, is built only when the trace is rendered).
    pub(crate) fn trace_wait_held_by(&self, holder: Option<TaskKey>) {
        context::try_with(|w| {
            if !w.tracing(Ev::Wait.level()) {
                return;
            }
            w.record_sync_held(&self.trace_label, || self.label(), holder.map(|k| k.id));
        });
    }
}

/// A sync event to trace (see [`EventKind`] for what each records).
#[derive(Copy, Clone, Debug)]
pub(crate) enum Ev {
    Acquire,
    /// Released, handed to this waiter if any.
    Release(Option<TaskKey>),
    Wait,
    Notify,
    Send,
    Recv,
    Close,
}

impl Ev {
    /// Waits and closes shape a run; the rest is detail.
    fn level(self) -> Verbosity {
        match self {
            Ev::Wait | Ev::Close => Verbosity::Summary,
            _ => Verbosity::Full,
        }
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// Per-run state of the sync module, kept in the world's extension slots
/// (`runtime::ext`), created on first use.
#[derive(Default)]
pub(crate) struct Registry {
    numbers: [Cell<u32>; Kind::COUNT],
    pub(crate) deadlock: super::deadlock::State,
    /// Per task id: the id of the task that spawned it (`u32::MAX`: none).
    /// Ids count up from 0 in every run, so this is a dense table.
    parents: RefCell<Vec<u32>>,
}

impl Registry {
    /// The run's registry (created on first use).
    #[inline]
    pub(crate) fn of(w: &World) -> &Registry {
        w.ext.get::<Registry>()
    }

    pub(crate) fn note_parent(&self, child: TaskKey, parent: Option<TaskKey>) {
        let mut p = self.parents.borrow_mut();
        // Ids past the last spawn read as "no parent", as a missing entry.
        *per_task(&mut p, child.id.0 as usize, || u32::MAX) = parent.map_or(u32::MAX, |k| k.id.0);
    }

    /// Whether `ancestor` spawned `task`, directly or through its children.
    pub(crate) fn descends_from(&self, task: TaskId, ancestor: TaskId) -> bool {
        let p = self.parents.borrow();
        let mut at = task.0;
        // Parents have smaller ids than their children: the walk ends.
        while let Some(&up) = p.get(at as usize) {
            if up == ancestor.0 {
                return true;
            }
            if up >= at {
                return false;
            }
            at = up;
        }
        false
    }

    fn next_number(&self, kind: Kind) -> u32 {
        let c = &self.numbers[kind as usize];
        let n = c.get();
        c.set(n + 1);
        n
    }
}

/// What kind of wait a task is in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum WaitOp {
    Lock,
    Read,
    Write,
    Acquire(u32),
    /// An event, a notify or a barrier.
    Signal,
    Recv,
    Send,
    Changed,
}

/// Who can end a wait on a primitive.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Release {
    /// Only the holders (listed), by releasing: locks and semaphores whose
    /// every holder is a known task.
    Holders,
    /// Anyone, or someone lockstep cannot name: a signal, a channel, a
    /// permit held outside a task.
    Anyone,
}

/// A primitive's core, as the deadlock analysis and the reports see it.
pub(crate) trait Tracked {
    fn meta(&self) -> &Meta;

    /// Who can end a wait of kind `op`. For [`Release::Holders`], pushes
    /// the holders (in the order they acquired) onto `out`. By default
    /// anyone: signals and channels.
    fn release(&self, op: WaitOp, out: &mut Vec<TaskKey>) -> Release {
        let _ = (op, out);
        Release::Anyone
    }

    /// For reports only: tasks that are likely to end the wait, when no
    /// holder can be named for sure (a channel's recent senders). Defaults
    /// to the holders.
    fn likely(&self, op: WaitOp, out: &mut Vec<TaskKey>) {
        self.release(op, out);
    }

    /// How a wait of kind `op` reads in a report: `mutex 'lock2', held by
    /// #2 task-b`.
    fn describe(&self, op: WaitOp, exec: &Executor) -> String;

    /// How holder `task`'s hold, which a wait of kind `op` waits on, reads
    /// in a report (`semaphore 'pool' (2 permits)`, `the only sender of
    /// channel 'jobs'`).
    fn held_as(&self, task: TaskKey, op: WaitOp) -> String {
        let _ = (task, op);
        self.meta().label()
    }
}

impl WaitOp {
    /// The code of this kind of wait in a [`LayerWait`].
    #[inline]
    pub(crate) fn code(self) -> Op {
        let (kind, arg) = match self {
            WaitOp::Lock => (0, 0),
            WaitOp::Read => (1, 0),
            WaitOp::Write => (2, 0),
            WaitOp::Acquire(n) => (3, n),
            WaitOp::Signal => (4, 0),
            WaitOp::Recv => (5, 0),
            WaitOp::Send => (6, 0),
            WaitOp::Changed => (7, 0),
        };
        Op { kind, arg }
    }

    /// The kind of wait of a [`LayerWait`]'s code.
    #[inline]
    pub(crate) fn from_code(op: Op) -> WaitOp {
        match op.kind {
            0 => WaitOp::Lock,
            1 => WaitOp::Read,
            2 => WaitOp::Write,
            3 => WaitOp::Acquire(op.arg),
            4 => WaitOp::Signal,
            5 => WaitOp::Recv,
            6 => WaitOp::Send,
            _ => WaitOp::Changed,
        }
    }
}

/// What the runtime and the deadlock analysis see of a primitive a task
/// waits on (a wait is noted as a [`LayerWait`] of the primitive's core).
impl<T: Tracked + 'static> Awaited for T {
    fn describe(&self, op: Op, exec: &Executor) -> String {
        Tracked::describe(self, WaitOp::from_code(op), exec)
    }

    fn label(&self) -> String {
        self.meta().label()
    }

    fn holders(&self, op: Op, out: &mut Vec<TaskKey>) -> bool {
        self.release(WaitOp::from_code(op), out) == Release::Holders
    }

    fn likely(&self, op: Op, out: &mut Vec<TaskKey>) {
        Tracked::likely(self, WaitOp::from_code(op), out);
    }

    fn held_as(&self, task: TaskKey, op: Op) -> String {
        Tracked::held_as(self, task, WaitOp::from_code(op))
    }

    fn short(&self, op: Op) -> String {
        super::deadlock::short_sync(&self.meta().label(), WaitOp::from_code(op))
    }
}

/// Notes that the current task waits on `res` (a wait of kind `op`).
#[inline]
fn note<C: Tracked + 'static>(w: &World, res: Rc<C>, op: WaitOp) {
    w.exec.note_waiting(Waiting::Layer(LayerWait::new(
        res,
        op.code(),
        super::deadlock::followed(op),
    )));
}

/// How every waiting future's poll ends when it must wait: traces the wait
/// the first time (`first`), and notes it in the task's entry for reports
/// and the deadlock check (on every `Pending`).
pub(crate) fn block<T, C: Tracked + 'static>(
    w: &World,
    res: Rc<C>,
    op: WaitOp,
    first: bool,
    detail: impl FnOnce() -> Option<String>,
) -> Poll<T> {
    if first {
        res.meta().trace(Ev::Wait, detail);
    }
    note(w, res, op);
    Poll::Pending
}

/// [`block`] with a fixed detail (no allocation per wait).
pub(crate) fn block_str<T, C: Tracked + 'static>(
    w: &World,
    res: Rc<C>,
    op: WaitOp,
    first: bool,
    detail: &'static str,
) -> Poll<T> {
    if first {
        res.meta().trace_wait_static(detail);
    }
    note(w, res, op);
    Poll::Pending
}

/// [`block`] for a lock wait whose detail is its holder.
pub(crate) fn block_held<T, C: Tracked + 'static>(
    w: &World,
    res: Rc<C>,
    op: WaitOp,
    first: bool,
    holder: Option<TaskKey>,
) -> Poll<T> {
    if first {
        res.meta().trace_wait_held_by(holder);
    }
    note(w, res, op);
    Poll::Pending
}

/// `#1 a, #2 b` for a list of tasks.
pub(crate) fn task_list(exec: &Executor, tasks: &[TaskKey]) -> String {
    let labels: Vec<String> = tasks.iter().map(|k| exec.label_of(*k)).collect();
    labels.join(", ")
}

/// `, held by #1 a` (or nothing when nobody is named).
pub(crate) fn held_by(exec: &Executor, holders: &[TaskKey]) -> String {
    if holders.is_empty() {
        String::new()
    } else {
        format!(", held by {}", task_list(exec, holders))
    }
}
