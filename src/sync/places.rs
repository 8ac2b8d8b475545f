//! Where the handles of a channel are: which task holds a `Sender`, for
//! the early deadlock check.
//!
//! ## Why it is needed, and why it is hard
//!
//! A task waiting to receive can only be woken by a task that holds a
//! sender (it sends, or drops the last one). If every sender is held by a
//! task that is itself stuck, the receiver is stuck too: that is the edge a
//! wait-for cycle through channels needs. But handles are values: they
//! move into spawned tasks, through other channels, into shared structs,
//! and a move runs no code, so lockstep cannot see one happen.
//!
//! ## The rule: placed by use, unplaced by anything that could move it
//!
//! - A handle is **placed** in task T when T *uses* it: sends on a sender
//!   (`send`, `try_send`, `is_closed`), receives on a receiver (`recv`,
//!   `try_recv`). A handle made or cloned is placed nowhere: it is about to
//!   move (into a spawned task, a request, a shared map).
//! - A placement is **void** once T spawns a task or sends a value on a
//!   lockstep channel (mpsc, oneshot, broadcast, watch) whose type has drop
//!   glue (a spawned future or a message may carry the handle away; a type
//!   without drop glue, a `u32` or a `&str`, holds no `Rc` and so no
//!   handle; the handle used for that send is placed again right after),
//!   or once T has finished (the handle outlived it: a static, a shared
//!   struct, a task's output).
//! - A handle used by a second task while still placed in a first is
//!   **shared** (an `Rc<State>` that holds a sender, a `static`, a move
//!   through shared memory): it is never placed again.
//! - A wait is **certain** only if every handle alive on the other side is
//!   placed: its targets are then the tasks that hold them. One unplaced
//!   handle (held by no task that lockstep can name: made and never used,
//!   kept in a static or a struct) makes the wait uncertain, and it never
//!   takes part in an early report. Such waits still show in the report of
//!   a run where nothing at all can run.
//!
//! The one assumption, as for lock guards leaked to `'static`: a handle
//! reachable by several tasks (through an `Rc`, a `static`, a shared
//! struct) is used by a second one before the first blocks on the other
//! end. A sender in an `Rc<State>` that only the receiving task has used so
//! far, with the receiver then waiting for another task to send through
//! the same `Rc`, can be reported as a cycle of one that the other task
//! would break. `SimBuilder::deadlock_cycles(Severity::Warn)` turns early
//! reports into warnings for such programs; cloning the sender for each
//! task (the usual way) avoids the question.

use super::resource::Registry;
use crate::runtime::context;
use crate::runtime::waker::TaskKey;
use crate::runtime::world::World;

/// A task holding a handle, and that task's move count when it last used
/// it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    task: TaskKey,
    moves: u32,
    /// The run (a channel kept in a `static` across runs must not take a
    /// task of an earlier run for one of this run: ids start at 0 in every
    /// run). An identity only.
    run: u64,
}

impl Place {
    /// The calling task, if any.
    pub(crate) fn here(w: &World) -> Option<Place> {
        let task = w.exec.current_key()?;
        Some(Place {
            task,
            moves: w.exec.moves_of(task),
            run: w.run_id(),
        })
    }

    /// The holding task, if the placement still stands.
    pub(crate) fn task(self, w: &World) -> Option<TaskKey> {
        if self.run != w.run_id() {
            return None;
        }
        let live = w.exec.inspect(self.task, |_| ()).is_some();
        (live && w.exec.moves_of(self.task) == self.moves).then_some(self.task)
    }
}

/// Where one handle is.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum At {
    /// Made and not used yet, or used outside any task.
    #[default]
    Nowhere,
    /// Placed in a task.
    In(Place),
    /// Used by a second task while still placed in a first: the handle is
    /// shared by reference (an `Rc<State>` holding it, a `static`) or moved
    /// through shared memory. It is never placed again.
    Shared,
}

impl At {
    /// The calling task used the handle.
    #[inline]
    pub(crate) fn touch(&mut self) {
        context::try_with(|w| self.touch_in(w));
    }

    /// The calling task of `w` used the handle. Nothing changes, and
    /// nothing but the placement is looked at, when the handle is already
    /// placed in that task (the usual case: a task sending in a loop).
    #[inline]
    pub(crate) fn touch_in(&mut self, w: &World) {
        let here = Place::here(w);
        if let (At::In(p), Some(h)) = (*self, here) {
            if p == h {
                return;
            }
        }
        *self = match (*self, here) {
            (At::Shared, _) => At::Shared,
            (At::In(p), Some(here)) if p.task != here.task && p.task(w).is_some() => At::Shared,
            (_, Some(here)) => At::In(here),
            (_, None) => At::Nowhere,
        };
    }

    /// The holding task, if the handle is placed and the placement stands.
    fn task(self, w: &World) -> Option<TaskKey> {
        match self {
            At::In(p) => p.task(w),
            At::Nowhere | At::Shared => None,
        }
    }
}

/// The places of several handles (the senders of a channel), by slot.
#[derive(Default, Debug)]
pub(crate) struct Places {
    slots: Vec<Option<At>>,
    free: Vec<u32>,
}

impl Places {
    /// A new handle, placed nowhere.
    pub(crate) fn add(&mut self) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(At::Nowhere);
                i
            }
            None => {
                self.slots.push(Some(At::Nowhere));
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Handle `slot` is gone.
    pub(crate) fn remove(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = None;
            self.free.push(slot);
        }
    }

    /// Handle `slot` was used by the calling task.
    pub(crate) fn touch(&mut self, slot: u32) {
        if let Some(Some(at)) = self.slots.get_mut(slot as usize) {
            at.touch();
        }
    }

    /// Handle `slot` was used by the calling task of `w`.
    #[inline]
    pub(crate) fn touch_in(&mut self, slot: u32, w: &World) {
        if let Some(Some(at)) = self.slots.get_mut(slot as usize) {
            at.touch_in(w);
        }
    }

    /// Pushes the tasks that hold the handles, if every handle is placed;
    /// `false` (and `out` unspecified) otherwise.
    pub(crate) fn holders(&self, w: &World, out: &mut Vec<TaskKey>) -> bool {
        for at in self.slots.iter().flatten() {
            match at.task(w) {
                Some(t) => out.push(t),
                None => return false,
            }
        }
        true
    }

    /// How many handles task `task` holds (placed).
    pub(crate) fn count(&self, w: &World, task: TaskKey) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|at| at.task(w) == Some(task))
            .count()
    }
}

/// The calling task sent a value on a channel, or spawned a task: handles
/// it holds may have gone with it.
pub(crate) fn moved() {
    context::try_with(|w| {
        if let Some(k) = w.exec.current_key() {
            w.exec.bump_moves(k);
        }
    });
}

/// The calling task spawned `child`: handles it holds may have moved into
/// it. Also records who spawned whom.
pub(crate) fn task_spawned(w: &World, child: TaskKey) {
    let parent = w.exec.current_key();
    if let Some(k) = parent {
        w.exec.bump_moves(k);
    }
    Registry::of(w).note_parent(child, parent);
}

/// The calling task sent a `T` on a channel: handles it holds may have
/// gone with it, unless a `T` cannot hold one (a type without drop glue
/// holds no `Rc`, so no lockstep handle: `u32`, `&str`, `(u8, bool)`).
pub(crate) fn moved_with<T>() {
    if std::mem::needs_drop::<T>() {
        moved();
    }
}

/// How a task holding `held` of the `all` senders of `label` reads.
pub(crate) fn senders_held(label: &str, held: usize, all: usize) -> String {
    match (held, all) {
        (_, 1) => format!("the only sender of {label}"),
        (n, all) if n == all => format!("every sender of {label}"),
        (1, _) => format!("a sender of {label}"),
        (n, _) => format!("{n} senders of {label}"),
    }
}

/// The task of `place`, if it still stands (for a single handle: a
/// receiver).
pub(crate) fn holder(at: At, out: &mut Vec<TaskKey>) -> bool {
    match context::try_with(|w| at.task(w)).flatten() {
        Some(t) => {
            out.push(t);
            true
        }
        None => false,
    }
}

/// Every handle of `places` is placed: pushes their tasks.
pub(crate) fn holders(places: &Places, out: &mut Vec<TaskKey>) -> bool {
    context::try_with(|w| places.holders(w, out)).unwrap_or(false)
}

/// How many handles of `places` task `task` holds.
pub(crate) fn count(places: &Places, task: TaskKey) -> usize {
    context::try_with(|w| places.count(w, task)).unwrap_or(0)
}
