//! The heap cell of one task: its future, then its output.
//!
//! A spawned task is one `Rc<TaskCell<F>>`, shared by the executor's task
//! table (as `Rc<dyn RawTask>`) and the task's `JoinHandle` (as
//! `Rc<dyn JoinTarget<T>>`): one allocation per spawn. The future stays in
//! place inside the `Rc` allocation from spawn to drop; it is dropped in
//! place (never moved) when the task finishes, panics or is aborted, which
//! is what makes pinning it sound.
//!
//! The future and the output share their bytes (a union, as a task never
//! holds both), and `Header::slot` says which of them is there. Every
//! access goes through four steps, each with its own argument: poll
//! (`Slot::Polling` while a `&mut` to the future is live, reset by a guard
//! also on unwind), drop the future (marked empty first, so an unwinding
//! `Drop` never leads to a second one), store the output (only into an
//! empty slot), take the output (once). This replaced a `RefCell<Option<F>>`
//! beside a `Cell<Option<output>>`: 32 bytes less per task, which a run of
//! 100,000 tasks faults in (see `Entry` in the executor for the same
//! reasoning).
//!
//! A task's link to its `JoinSet` does not live here either: few tasks have
//! one, and 16 bytes in every cell moved W1's cells from the allocator's
//! 64-byte chunks to its 80-byte ones. The executor keeps links beside its
//! task table and hands a task's link to `finish_with`, or notifies it when
//! the task's poll returns `Ready`, right after the joiner's wake, as the
//! cell did when it kept the link.

use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::JoinError;
use super::join_set::SetLink;
use crate::runtime::waker;

/// Where a task is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Running,
    Finished,
    Cancelled,
    Panicked,
    /// The output was taken by the `JoinHandle`.
    Consumed,
}

/// The part of a task cell that does not depend on the future's type.
pub(crate) struct Header {
    state: Cell<State>,
    /// What `TaskCell::stage` holds.
    slot: Cell<Slot>,
    join_waker: Cell<Option<Waker>>,
    handle_alive: Cell<bool>,
    /// The task returned a `Result::Err` (see `output.rs`).
    output_err: Cell<bool>,
    /// Whoever holds the handle takes responsibility for the output (a
    /// `JoinSet` dropped on purpose): an `Err` in it is not reported.
    quiet: Cell<bool>,
}

impl Header {
    fn new() -> Header {
        Header {
            state: Cell::new(State::Running),
            slot: Cell::new(Slot::Future),
            join_waker: Cell::new(None),
            handle_alive: Cell::new(true),
            output_err: Cell::new(false),
            quiet: Cell::new(false),
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state.get()
    }

    pub(crate) fn handle_alive(&self) -> bool {
        self.handle_alive.get()
    }

    pub(crate) fn set_handle_dropped(&self) {
        self.handle_alive.set(false);
    }

    /// Whether the task finished with a `Result::Err` that nobody took and
    /// nobody took responsibility for.
    pub(crate) fn unobserved_err(&self) -> bool {
        self.output_err.get() && !self.quiet.get() && self.state.get() == State::Finished
    }

    /// The output's `Err` is not to be reported (the handle is dropped by
    /// design).
    pub(crate) fn set_quiet(&self) {
        self.quiet.set(true);
    }

    /// Keeps the joiner's waker: a tracked copy, since the joiner notes
    /// `Waiting::Join` for the deadlock check.
    pub(crate) fn register_joiner(&self, waker: &Waker) {
        let new = match self.join_waker.take() {
            Some(old) if waker::same_task(&old, waker) => old,
            _ => waker::tracked_clone(waker),
        };
        self.join_waker.set(Some(new));
    }

    /// Records the end of the task and wakes its joiner (the task's
    /// `JoinSet`, if any, hears next).
    fn complete(&self, state: State) {
        self.state.set(state);
        if let Some(w) = self.join_waker.take() {
            w.wake();
        }
    }
}

/// A task as the executor sees it.
pub(crate) trait RawTask {
    fn header(&self) -> &Header;

    /// The output type, for reports (`Result<(), String>`).
    fn output_type(&self) -> String;

    /// Polls the future. `Ready` means it finished: the output is stored and
    /// the joiner woken (the caller then notifies the task's `JoinSet`).
    fn poll(&self, cx: &mut Context<'_>) -> Poll<()>;

    /// Ends a running task with `err` (cancelled or panicked) and drops its
    /// future in place; wakes the joiner, then notifies `link` (the task's
    /// `JoinSet`). Returns `false` if the task had already ended. The
    /// future's `Drop` runs here, so it may panic: the caller catches that.
    fn finish_with(&self, err: JoinError, link: Option<SetLink>) -> bool;
}

/// A task as its `JoinHandle` sees it.
pub(crate) trait JoinTarget<T> {
    fn header(&self) -> &Header;
    /// `Ready` once the task ended; takes the output.
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    /// Applies `f` to the output of an ended task without taking it.
    fn peek(&self, f: &mut dyn FnMut(Result<&T, &JoinError>) -> bool) -> Option<bool>;
}

/// Which of a cell's two occupants is in `TaskCell::stage`, if either.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Slot {
    /// The future, not borrowed.
    Future,
    /// The future, being polled (a `&mut` to it is live).
    Polling,
    /// The output, until the `JoinHandle` takes it.
    Output,
    /// Neither: the output was taken, or is about to be written.
    Empty,
}

/// A task's future, then its output, in the same bytes: a task never holds
/// both (W1's cells: 112 -> 80 bytes with the allocator's header). Which one
/// is there is `Header::slot`.
union Stage<F, O> {
    future: ManuallyDrop<F>,
    output: ManuallyDrop<O>,
}

/// What a task's `JoinHandle` yields. The error is boxed: it is rare (an
/// abort, a panic), and a `JoinError` inline (56 bytes) made every task's
/// allocation that much bigger (W1's tasks: 144 -> 96 bytes).
type Output<T> = Result<T, Box<JoinError>>;

pub(crate) struct TaskCell<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F, Output<F::Output>>>,
}

impl<F: Future> TaskCell<F> {
    pub(crate) fn new(future: F) -> Rc<TaskCell<F>> {
        Rc::new(TaskCell {
            header: Header::new(),
            stage: UnsafeCell::new(Stage {
                future: ManuallyDrop::new(future),
            }),
        })
    }

    /// Drops the future in place and leaves the slot empty (also if its
    /// `Drop` panics: it is never dropped twice).
    ///
    /// # Safety
    ///
    /// The slot holds the future, not borrowed (`Slot::Future`).
    unsafe fn drop_future(&self) {
        debug_assert_eq!(self.header.slot.get(), Slot::Future);
        self.header.slot.set(Slot::Empty);
        // SAFETY: the slot held the future and nothing borrows it (the
        // caller's promise); it is marked empty before the drop, so no path
        // reads or drops it again, even if this drop unwinds. Dropping in
        // place, without moving it, is what its pinning allows.
        unsafe { ManuallyDrop::drop(&mut (*self.stage.get()).future) }
    }

    /// Stores the output.
    ///
    /// # Safety
    ///
    /// The slot is empty (`Slot::Empty`).
    unsafe fn put_output(&self, out: Output<F::Output>) {
        debug_assert_eq!(self.header.slot.get(), Slot::Empty);
        // SAFETY: the slot is empty (the caller's promise): nothing live is
        // overwritten, and nothing borrows the bytes.
        unsafe { (*self.stage.get()).output = ManuallyDrop::new(out) };
        self.header.slot.set(Slot::Output);
    }

    /// Takes the output out, leaving the slot empty; `None` if it holds
    /// none.
    fn take_output(&self) -> Option<Output<F::Output>> {
        if self.header.slot.get() != Slot::Output {
            return None;
        }
        self.header.slot.set(Slot::Empty);
        // SAFETY: the slot held the output, now marked empty: it is read
        // out once and never read or dropped again.
        Some(unsafe { ManuallyDrop::take(&mut (*self.stage.get()).output) })
    }
}

impl<F: Future> Drop for TaskCell<F> {
    fn drop(&mut self) {
        match self.header.slot.get() {
            // SAFETY: the slot holds the future, and `&mut self` means
            // nothing borrows it.
            Slot::Future => unsafe { self.drop_future() },
            Slot::Output => drop(self.take_output()),
            // A cell is only dropped with its last `Rc`, and a poll holds
            // one: never while it is polled.
            Slot::Polling | Slot::Empty => {}
        }
    }
}

/// Marks the end of a poll, also when the poll unwinds.
struct PollGuard<'a>(&'a Header);

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.0.slot.set(Slot::Future);
    }
}

impl<F: Future> RawTask for TaskCell<F> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn output_type(&self) -> String {
        super::output::type_label::<F::Output>()
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        match self.header.slot.get() {
            Slot::Future => {}
            Slot::Polling => panic!("a lockstep task was polled from inside its own poll"),
            Slot::Output | Slot::Empty => return Poll::Ready(()),
        }
        self.header.slot.set(Slot::Polling);
        let guard = PollGuard(&self.header);
        // SAFETY: the slot holds the future, and `Slot::Polling` keeps every
        // other path off it until the guard marks it back (also on unwind),
        // so this `&mut` is the only reference. The future lives inside
        // this cell, inside an `Rc` allocation that is never moved, and it
        // is only ever dropped in place (`drop_future`): its address is
        // stable from the first poll until it is dropped, which is the
        // pinning guarantee.
        let future = unsafe { Pin::new_unchecked(&mut *(*self.stage.get()).future) };
        let poll = future.poll(cx);
        drop(guard);
        match poll {
            Poll::Pending => Poll::Pending,
            Poll::Ready(value) => {
                self.header.output_err.set(super::output::is_err(&value));
                // The task still counts as running while its spent future
                // drops: if that `Drop` panics, the panic ends the task
                // (`finish_with`), and its joiner gets that.
                // SAFETY: the guard marked the slot as the future again, and
                // the poll that borrowed it has returned.
                unsafe { self.drop_future() };
                // SAFETY: `drop_future` left the slot empty.
                unsafe { self.put_output(Ok(value)) };
                self.header.complete(State::Finished);
                Poll::Ready(())
            }
        }
    }

    fn finish_with(&self, err: JoinError, link: Option<SetLink>) -> bool {
        if self.header.state.get() != State::Running {
            return false;
        }
        if self.header.slot.get() == Slot::Polling {
            // The executor defers a task's abort of itself until its poll
            // returns, and nothing else ends a task mid-poll: unreachable.
            // Ending it would drop a future that is borrowed.
            debug_assert!(false, "a task was ended while its poll ran");
            return false;
        }
        let state = match err {
            JoinError::Cancelled => State::Cancelled,
            JoinError::Panicked { .. } => State::Panicked,
        };
        // The joiner is woken first, then the future's `Drop` runs (its
        // effects follow the wake in the trace), then the output is stored,
        // also if that `Drop` panics; the joiner runs in a later step.
        self.header.complete(state);
        if let Some(link) = link {
            link.notify();
        }
        struct Store<'a, F: Future>(&'a TaskCell<F>, Option<JoinError>);
        impl<F: Future> Drop for Store<'_, F> {
            fn drop(&mut self) {
                if let Some(err) = self.1.take() {
                    // SAFETY: the future was dropped (or its drop unwound),
                    // which left the slot empty.
                    unsafe { self.0.put_output(Err(Box::new(err))) };
                }
            }
        }
        let store = Store(self, Some(err));
        if self.header.slot.get() == Slot::Future {
            // SAFETY: the slot holds the future, not borrowed (checked just
            // above: not `Polling`).
            unsafe { self.drop_future() };
        }
        drop(store);
        true
    }
}

impl<F: Future> JoinTarget<F::Output> for TaskCell<F> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, JoinError>> {
        match self.header.state.get() {
            State::Running => {
                self.header.register_joiner(cx.waker());
                Poll::Pending
            }
            State::Consumed => panic!("a lockstep JoinHandle was polled after it completed"),
            _ => {
                self.header.state.set(State::Consumed);
                match self.take_output() {
                    Some(out) => Poll::Ready(out.map_err(|e| *e)),
                    // Only between an abort's wake and its storing of the
                    // output: while the aborted future's `Drop` runs.
                    None => panic!(
                        "a lockstep JoinHandle was polled while its task's future was being \
                         dropped (from that future's own `Drop`)"
                    ),
                }
            }
        }
    }

    fn peek(&self, f: &mut dyn FnMut(Result<&F::Output, &JoinError>) -> bool) -> Option<bool> {
        if self.header.slot.get() != Slot::Output {
            return None;
        }
        // SAFETY: the slot holds the output; `f` gets a shared reference
        // that does not outlive this call, and nothing in this cell writes
        // the slot while `f` runs (only this task's own poll, its end, or
        // its handle does, and `f` is a report's check of the value).
        let out = unsafe { &*(*self.stage.get()).output };
        Some(f(out.as_ref().map_err(|e| &**e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task's future and its output share their bytes, and its `JoinSet`
    /// link lives with the executor: W1's cell (a future holding a `u64`, a
    /// `u64` output) is 40 bytes, 56 with the reference counts, which the
    /// allocator serves from 64-byte chunks.
    #[test]
    fn a_small_task_cell_takes_40_bytes() {
        fn size<F: Future>(_: &F) -> usize {
            size_of::<TaskCell<F>>()
        }
        let i = 7u64;
        assert_eq!(size(&async move { i }), 40);
    }
}
