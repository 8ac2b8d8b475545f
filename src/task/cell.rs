//! The heap cell of one task: its future, then its output.
//!
//! A spawned task is one heap cell, `TaskCell<F>`, shared by the executor's
//! task table and the task's `JoinHandle`: one block per spawn, from the
//! thread's pool of task cells (`task::slab`), freed by the last holder. Both
//! hold a [`TaskRef`], a thin pointer to the cell's header, which counts
//! the references and points to the cell's vtable (its operations for its
//! future's type), as tokio's task cells do. A fat `Rc<dyn ...>` took 16
//! bytes in every table entry and every handle and 16 more for its counts
//! in every cell; a `TaskRef` takes 8, and its count 4 inside the header.
//! The future stays in place inside the cell from spawn to drop; it is
//! dropped in place (never moved) when the task finishes, panics or is
//! aborted, which is what makes pinning it sound.
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

use std::alloc::Layout;
use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::task::{Context, Poll, Waker};

use super::JoinError;
use super::join_set::SetLink;
use super::slab;
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

/// The part of a task cell that does not depend on the future's type, at
/// the start of every cell: what a [`TaskRef`] points to.
#[repr(C)]
pub(crate) struct Header {
    /// The cell's operations, for its future's type.
    vtable: &'static Vtable,
    /// How many [`TaskRef`]s point here; the last one frees the cell.
    refs: Cell<u32>,
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
    fn new(vtable: &'static Vtable, refs: u32) -> Header {
        Header {
            vtable,
            refs: Cell::new(refs),
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

/// A task's heap cell: the header first (`repr(C)`), so that a pointer to
/// the cell is a pointer to its header, which is what [`TaskRef`] keeps.
#[repr(C)]
struct TaskCell<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F, Output<F::Output>>>,
}

impl<F: Future> TaskCell<F> {
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
        // this cell, which is never moved (its block is freed only after it
        // is dropped), and it is only ever dropped in place (`drop_future`):
        // its address is stable from the first poll until it is dropped,
        // which is the pinning guarantee.
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

    fn peek(&self, f: PeekFn<'_, F::Output>) -> Option<bool> {
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

impl<F: Future> Drop for TaskCell<F> {
    fn drop(&mut self) {
        match self.header.slot.get() {
            // SAFETY: the slot holds the future, and `&mut self` means
            // nothing borrows it.
            Slot::Future => unsafe { self.drop_future() },
            Slot::Output => drop(self.take_output()),
            // A cell is only dropped with its last `TaskRef`, and a poll
            // holds one: never while it is polled.
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

/// A cell's operations, by its future's type: one static table per future
/// type, pointed to from each cell's header, so that the executor and the
/// `JoinHandle` each hold one thin pointer to a task instead of a fat
/// `Rc<dyn ...>` (8 bytes less in every table entry and every handle).
struct Vtable {
    poll: unsafe fn(NonNull<Header>, &mut Context<'_>) -> Poll<()>,
    finish_with: unsafe fn(NonNull<Header>, JoinError, Option<SetLink>) -> bool,
    output_type: fn() -> String,
    /// Writes `poll_join`'s result to a `*mut Poll<Result<F::Output,
    /// JoinError>>`.
    poll_join: unsafe fn(NonNull<Header>, &mut Context<'_>, *mut ()),
    /// Calls a `*mut &mut dyn FnMut(Result<&F::Output, &JoinError>) ->
    /// bool` on the output.
    peek: unsafe fn(NonNull<Header>, *mut ()) -> Option<bool>,
    /// Drops the cell (what its stage holds) and frees it.
    free: unsafe fn(NonNull<Header>),
}

/// The vtable of `TaskCell<F>`.
fn vtable<F: Future>() -> &'static Vtable {
    // A constant expression with no interior mutability and no `Drop`: it
    // is promoted to a `'static`, one per `F`.
    &Vtable {
        poll: poll::<F>,
        finish_with: finish_with::<F>,
        output_type: super::output::type_label::<F::Output>,
        poll_join: poll_join::<F>,
        peek: peek::<F>,
        free: free::<F>,
    }
}

/// The cell behind `ptr`.
///
/// # Safety
///
/// `ptr` points to the header of a live `TaskCell<F>` (the header's vtable
/// is `vtable::<F>()`, which only `TaskRef::new::<F>` sets).
unsafe fn cell<'a, F: Future>(ptr: NonNull<Header>) -> &'a TaskCell<F> {
    // SAFETY: the caller's promise; the header is the cell's first field
    // (`repr(C)`), and `ptr` came from the whole cell's allocation.
    unsafe { ptr.cast::<TaskCell<F>>().as_ref() }
}

/// # Safety
///
/// As [`cell`].
unsafe fn poll<F: Future>(ptr: NonNull<Header>, cx: &mut Context<'_>) -> Poll<()> {
    // SAFETY: the caller's promise.
    unsafe { cell::<F>(ptr) }.poll(cx)
}

/// # Safety
///
/// As [`cell`].
unsafe fn finish_with<F: Future>(ptr: NonNull<Header>, err: JoinError, l: Option<SetLink>) -> bool {
    // SAFETY: the caller's promise.
    unsafe { cell::<F>(ptr) }.finish_with(err, l)
}

/// # Safety
///
/// As [`cell`], and `out` points to a `Poll<Result<F::Output,
/// JoinError>>`.
unsafe fn poll_join<F: Future>(ptr: NonNull<Header>, cx: &mut Context<'_>, out: *mut ()) {
    // SAFETY: the caller's promises.
    unsafe {
        let out = &mut *out.cast::<Poll<Result<F::Output, JoinError>>>();
        *out = cell::<F>(ptr).poll_join(cx);
    }
}

/// A check of a task's output, as `peek` passes it through the vtable.
type PeekFn<'f, T> = &'f mut dyn FnMut(Result<&T, &JoinError>) -> bool;

/// # Safety
///
/// As [`cell`], and `f` points to a `PeekFn<F::Output>`.
unsafe fn peek<F: Future>(ptr: NonNull<Header>, f: *mut ()) -> Option<bool> {
    // SAFETY: the caller's promises.
    unsafe {
        let f = &mut *f.cast::<PeekFn<'_, F::Output>>();
        cell::<F>(ptr).peek(&mut **f)
    }
}

/// # Safety
///
/// `ptr` points to the header of a `TaskCell<F>` that `TaskRef::new::<F>`
/// allocated, and nothing points to it any more (its last `TaskRef` is
/// being dropped).
unsafe fn free<F: Future>(ptr: NonNull<Header>) {
    /// Gives the cell's room back, also if its `Drop` unwinds.
    struct Release(NonNull<u8>, Layout);
    impl Drop for Release {
        fn drop(&mut self) {
            // SAFETY: `TaskRef::new` took this room from the slab with this
            // layout, and the cell in it is dropped.
            unsafe { slab::free(self.0, self.1) }
        }
    }
    let cell = ptr.cast::<TaskCell<F>>();
    let _release = Release(cell.cast(), Layout::new::<TaskCell<F>>());
    // SAFETY: the caller's promise: the cell is live and nothing refers to
    // it or will. Its `Drop` drops the future or the output.
    unsafe { ptr::drop_in_place(cell.as_ptr()) };
}

/// A counted pointer to a task's cell, as the executor holds it: the
/// cell's type is behind its header's vtable. The last `TaskRef` to go
/// frees the cell. Not `Send`: tasks stay on their run's thread.
pub(crate) struct TaskRef {
    /// Points into a live cell: each `TaskRef` holds one of `Header::refs`.
    ptr: NonNull<Header>,
}

impl TaskRef {
    /// Allocates a task's cell for `future`: a reference for the executor,
    /// and one for the task's `JoinHandle`.
    pub(crate) fn new<F: Future + 'static>(future: F) -> (TaskRef, JoinRef<F::Output>) {
        let cell = slab::alloc(Layout::new::<TaskCell<F>>()).cast::<TaskCell<F>>();
        // SAFETY: fresh room for a `TaskCell<F>`, aligned for it.
        unsafe {
            cell.as_ptr().write(TaskCell {
                header: Header::new(vtable::<F>(), 2),
                stage: UnsafeCell::new(Stage {
                    future: ManuallyDrop::new(future),
                }),
            });
        }
        let ptr = cell.cast::<Header>();
        let join = JoinRef {
            task: TaskRef { ptr },
            _output: PhantomData,
        };
        (TaskRef { ptr }, join)
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: `ptr` points into a live cell (this reference holds it),
        // and a header is only ever shared (its fields are `Cell`s).
        unsafe { self.ptr.as_ref() }
    }

    /// Where the cell starts (for a prefetch).
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr().cast()
    }

    /// Whether `other` points to the same task (a live cell's address is
    /// its own: both references keep it live).
    pub(crate) fn same(&self, other: &TaskRef) -> bool {
        self.ptr == other.ptr
    }

    /// The output type, for reports (`Result<(), String>`).
    pub(crate) fn output_type(&self) -> String {
        (self.header().vtable.output_type)()
    }

    /// Polls the future. `Ready` means it finished: the output is stored and
    /// the joiner woken (the caller then notifies the task's `JoinSet`).
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the header's vtable is that of the cell's future type.
        unsafe { (self.header().vtable.poll)(self.ptr, cx) }
    }

    /// Ends a running task with `err` (cancelled or panicked) and drops its
    /// future in place; wakes the joiner, then notifies `link` (the task's
    /// `JoinSet`). Returns `false` if the task had already ended. The
    /// future's `Drop` runs here, so it may panic: the caller catches that.
    pub(crate) fn finish_with(&self, err: JoinError, link: Option<SetLink>) -> bool {
        // SAFETY: as in `poll`.
        unsafe { (self.header().vtable.finish_with)(self.ptr, err, link) }
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> TaskRef {
        let refs = &self.header().refs;
        // As `Rc` does: a count about to wrap can only come from leaked
        // references, and wrapping would free a cell still in use.
        if refs.get() == u32::MAX {
            std::process::abort();
        }
        refs.set(refs.get() + 1);
        TaskRef { ptr: self.ptr }
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        let refs = &self.header().refs;
        let left = refs.get() - 1;
        refs.set(left);
        if left == 0 {
            let free = self.header().vtable.free;
            // SAFETY: this was the last reference: nothing points to the
            // cell any more, and its vtable is that of its future type.
            unsafe { free(self.ptr) };
        }
    }
}

/// A task's cell as its `JoinHandle` holds it: a [`TaskRef`] that knows
/// the output type.
pub(crate) struct JoinRef<T> {
    task: TaskRef,
    /// The output type (the cell holds the `T`; a handle is `Unpin`
    /// whatever `T` is, as it was as an `Rc`).
    _output: PhantomData<fn() -> T>,
}

impl<T> JoinRef<T> {
    pub(crate) fn header(&self) -> &Header {
        self.task.header()
    }

    /// The task, untyped.
    pub(crate) fn task(&self) -> &TaskRef {
        &self.task
    }

    /// `Ready` once the task ended; takes the output.
    pub(crate) fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let mut out: Poll<Result<T, JoinError>> = Poll::Pending;
        let f = self.header().vtable.poll_join;
        // SAFETY: a `JoinRef<T>` is only made by `TaskRef::new::<F>` with
        // `F::Output = T`, so the vtable's `poll_join` writes a
        // `Poll<Result<T, JoinError>>`, which `out` is.
        unsafe { f(self.task.ptr, cx, (&raw mut out).cast()) };
        out
    }

    /// Applies `f` to the output of an ended task without taking it.
    pub(crate) fn peek(&self, mut f: PeekFn<'_, T>) -> Option<bool> {
        let peek = self.header().vtable.peek;
        // SAFETY: as in `poll_join`: the vtable's `peek` reads a
        // `PeekFn<T>`, which `f` is.
        unsafe { peek(self.task.ptr, (&raw mut f).cast()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task's future and its output share their bytes, its `JoinSet` link
    /// lives with the executor, and its references are counted in its
    /// header: W1's cell (a future holding a `u64`, a `u64` output) is 56
    /// bytes, which the allocator serves from 64-byte chunks.
    #[test]
    fn a_small_task_cell_takes_56_bytes() {
        fn size<F: Future>(_: &F) -> usize {
            size_of::<TaskCell<F>>()
        }
        let i = 7u64;
        assert_eq!(size(&async move { i }), 56);
        assert_eq!(size_of::<Option<TaskRef>>(), 8);
    }

    /// The last reference frees the cell, dropping what it holds exactly
    /// once; a `JoinRef` reads the output through the vtable.
    #[test]
    fn the_last_reference_frees_the_cell() {
        use std::rc::Rc;
        let held = Rc::new(());
        let mine = held.clone();
        let (task, join) = TaskRef::new(async move {
            let _held = mine;
            7u64
        });
        let extra = task.clone();
        assert_eq!(task.header().refs.get(), 3);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(task.poll(&mut cx).is_ready());
        // The future (and what it held) went when it returned.
        assert_eq!(Rc::strong_count(&held), 1);
        drop(task);
        drop(extra);
        assert_eq!(join.peek(&mut |out| out == Ok(&7)), Some(true));
        assert_eq!(join.poll_join(&mut cx), Poll::Ready(Ok(7)));
        assert_eq!(join.header().refs.get(), 1);
        drop(join);
    }
}
