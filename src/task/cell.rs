//! The heap cell of one task: its future, then its output.
//!
//! A spawned task is one `Rc<TaskCell<F>>`, shared by the executor's task
//! table (as `Rc<dyn RawTask>`) and the task's `JoinHandle` (as
//! `Rc<dyn JoinTarget<T>>`): one allocation per spawn. The future stays in
//! place inside the `Rc` allocation from spawn to drop; it is dropped in
//! place (never moved) when the task finishes, panics or is aborted, which
//! is what makes pinning it sound.

use std::cell::{Cell, RefCell};
use std::future::Future;
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
    join_waker: Cell<Option<Waker>>,
    handle_alive: Cell<bool>,
    set_link: Cell<Option<SetLink>>,
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
            join_waker: Cell::new(None),
            handle_alive: Cell::new(true),
            set_link: Cell::new(None),
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

    /// Links the task to a `JoinSet`; if it already finished, tells the set
    /// at once.
    pub(crate) fn link_to_set(&self, link: SetLink) {
        if self.state.get() == State::Running {
            self.set_link.set(Some(link));
        } else {
            link.notify();
        }
    }

    pub(crate) fn unlink_from_set(&self) {
        self.set_link.take();
    }

    /// Records the end of the task and wakes whoever waits for it.
    fn complete(&self, state: State) {
        self.state.set(state);
        if let Some(w) = self.join_waker.take() {
            w.wake();
        }
        if let Some(link) = self.set_link.take() {
            link.notify();
        }
    }
}

/// A task as the executor sees it.
pub(crate) trait RawTask {
    fn header(&self) -> &Header;

    /// The output type, for reports (`Result<(), String>`).
    fn output_type(&self) -> String;

    /// Polls the future. `Ready` means it finished: the output is stored and
    /// the joiner woken.
    fn poll(&self, cx: &mut Context<'_>) -> Poll<()>;

    /// Ends a running task with `err` (cancelled or panicked) and drops its
    /// future in place; wakes the joiner. Returns `false` if the task had
    /// already ended. The future's `Drop` runs here, so it may panic: the
    /// caller catches that.
    fn finish_with(&self, err: JoinError) -> bool;
}

/// A task as its `JoinHandle` sees it.
pub(crate) trait JoinTarget<T> {
    fn header(&self) -> &Header;
    /// `Ready` once the task ended; takes the output.
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    /// Applies `f` to the output of an ended task without taking it.
    fn peek(&self, f: &mut dyn FnMut(Result<&T, &JoinError>) -> bool) -> Option<bool>;
}

pub(crate) struct TaskCell<F: Future> {
    header: Header,
    future: RefCell<Option<F>>,
    /// The error is boxed: it is rare (an abort, a panic), and a
    /// `JoinError` inline (56 bytes) made every task's allocation that much
    /// bigger (W1's tasks: 144 -> 96 bytes with the allocator's header).
    output: Cell<Option<Result<F::Output, Box<JoinError>>>>,
}

impl<F: Future> TaskCell<F> {
    pub(crate) fn new(future: F) -> Rc<TaskCell<F>> {
        Rc::new(TaskCell {
            header: Header::new(),
            future: RefCell::new(Some(future)),
            output: Cell::new(None),
        })
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
        let mut slot = self.future.borrow_mut();
        let Some(future) = slot.as_mut() else {
            return Poll::Ready(());
        };
        // SAFETY: the future lives inside this cell, which lives inside an
        // `Rc` allocation that is never moved; the future is never moved out
        // of its `Option` either: it is only ever dropped in place, by
        // assigning `None` to the slot (here and in `finish_with`). So its
        // address is stable from the first poll until it is dropped, which
        // is the pinning guarantee.
        let future = unsafe { Pin::new_unchecked(future) };
        match future.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(value) => {
                self.header.output_err.set(super::output::is_err(&value));
                self.output.set(Some(Ok(value)));
                self.header.state.set(State::Finished);
                *slot = None;
                drop(slot);
                self.header.complete(State::Finished);
                Poll::Ready(())
            }
        }
    }

    fn finish_with(&self, err: JoinError) -> bool {
        if self.header.state.get() != State::Running {
            return false;
        }
        let state = match err {
            JoinError::Cancelled => State::Cancelled,
            JoinError::Panicked { .. } => State::Panicked,
        };
        self.output.set(Some(Err(Box::new(err))));
        self.header.complete(state);
        // Drop in place. A task aborting itself is never dropped here while
        // its own poll runs: the executor defers that abort until the poll
        // returns, so this borrow cannot fail.
        if let Ok(mut slot) = self.future.try_borrow_mut() {
            *slot = None;
        }
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
                match self.output.take() {
                    Some(out) => Poll::Ready(out.map_err(|e| *e)),
                    None => unreachable!("an ended task has an output until it is consumed"),
                }
            }
        }
    }

    fn peek(&self, f: &mut dyn FnMut(Result<&F::Output, &JoinError>) -> bool) -> Option<bool> {
        let out = self.output.take()?;
        let r = f(out.as_ref().map_err(|e| &**e));
        self.output.set(Some(out));
        Some(r)
    }
}
