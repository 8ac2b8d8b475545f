//! `JoinHandle` and `JoinError`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::TaskId;
use super::cell::{JoinRef, State};
use crate::check::Site;
use crate::runtime::context;
use crate::runtime::executor::Waiting;
use crate::runtime::waker::TaskKey;

/// Why a task produced no value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinError {
    /// The task was aborted ([`JoinHandle::abort`], [`JoinSet`](super::JoinSet)
    /// dropped, or its host crashed) before it finished. Its future was
    /// dropped, so its `Drop` guards ran.
    Cancelled,
    /// The task panicked.
    Panicked {
        /// The panic message.
        message: String,
        /// Where the panic was raised, when known.
        location: Option<Site>,
    },
}

impl JoinError {
    /// Whether the task was aborted.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked { .. })
    }

    /// The panic message, if the task panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked { message, .. } => Some(message),
            JoinError::Cancelled => None,
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("task was cancelled"),
            JoinError::Panicked {
                message,
                location: Some(loc),
            } => write!(f, "task panicked at {loc}: {message}"),
            JoinError::Panicked { message, .. } => write!(f, "task panicked: {message}"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> std::io::Error {
        std::io::Error::other(e)
    }
}

/// An owned permission to await a task's result; a future of
/// `Result<T, JoinError>`.
///
/// Dropping the handle detaches the task: it keeps running. If a detached
/// task panics, nobody can observe the panic, so the run fails (see
/// [`SimBuilder::unobserved_panics`](crate::SimBuilder::unobserved_panics)).
/// Likewise if it returns a `Result::Err` that nobody takes (asyncio's
/// "exception was never retrieved"; see
/// [`SimBuilder::unobserved_errors`](crate::SimBuilder::unobserved_errors)):
/// dropping the handle of a task that returned `Err`, or dropping it before
/// the task returns `Err`, fails the run. A handle still held, unawaited,
/// when the run ends is not reported.
pub struct JoinHandle<T> {
    raw: JoinRef<T>,
    key: TaskKey,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(raw: JoinRef<T>, key: TaskKey) -> JoinHandle<T> {
        JoinHandle { raw, key }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.key.id
    }

    /// Aborts the task: its future is dropped at once (so its `Drop` guards
    /// run now), and awaiting this handle yields [`JoinError::Cancelled`].
    /// A no-op if the task already finished. A task aborting itself is
    /// dropped as soon as its current poll returns.
    pub fn abort(&self) {
        // An ended task has nothing to abort; checked here, not only by the
        // executor, since a handle kept from an ended run may be used in a
        // later run, where another task may have this one's id and slot.
        if self.is_finished() {
            return;
        }
        context::try_with(|w| w.exec.abort(w, self.key));
    }

    /// Whether the task has ended (finished, panicked or been aborted).
    pub fn is_finished(&self) -> bool {
        self.raw.header().state() != State::Running
    }

    pub(crate) fn raw(&self) -> &JoinRef<T> {
        &self.raw
    }

    pub(crate) fn key(&self) -> TaskKey {
        self.key
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let poll = self.raw.poll_join(cx);
        if poll.is_pending() {
            context::try_with(|w| w.exec.note_waiting(Waiting::Join(self.key)));
        }
        poll
    }
}

/// Awaits `handle` on behalf of the user's code (the body of a
/// `#[tokio::test]`, which lockstep-tokio runs in a task of its own): if the
/// task panicked, the run fails with that panic as an observed one, the root
/// cause, and this future never completes (the run stops before the next
/// step). Otherwise it yields what the handle yields.
pub(crate) async fn propagate<T>(mut handle: JoinHandle<T>) -> Result<T, JoinError> {
    std::future::poll_fn(|cx| {
        if handle.raw.header().state() == State::Panicked
            && context::try_with(|w| w.exec.propagate_panic(w, handle.raw.task())).unwrap_or(false)
        {
            return Poll::Pending;
        }
        Pin::new(&mut handle).poll(cx)
    })
    .await
}

impl<T> JoinHandle<T> {
    /// `Ready` once the task has ended, without taking its output; else
    /// registers `cx` to be woken when it ends (for `future::wait`).
    pub(crate) fn poll_finished(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_finished() {
            return Poll::Ready(());
        }
        self.raw.header().register_joiner(cx.waker());
        context::try_with(|w| w.exec.note_waiting(Waiting::Join(self.key)));
        Poll::Pending
    }

    /// Whether the task ended with an error: a panic, a cancellation, or an
    /// output `failed` calls one. `None` while it runs (or once consumed).
    pub(crate) fn ended_in_failure(&self, failed: impl Fn(&T) -> bool) -> Option<bool> {
        self.raw.peek(&mut |out| match out {
            Ok(v) => failed(v),
            Err(_) => true,
        })
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let header = self.raw.header();
        header.set_handle_dropped();
        // A handle dropped while its holder unwinds from a panic is not
        // "unobserved": the panic in progress is the one that explains the
        // failure (typically `a.await.unwrap()` failing drops `b`'s handle).
        // The stored panic stays listed, so it is still reported at the end
        // of the run if nothing else fails it (the unwinding panic was
        // caught inside the program, say).
        if header.state() == State::Panicked && !std::thread::panicking() {
            // The panic was stored for this handle and is now out of reach.
            context::try_with(|w| w.exec.panic_unobserved(w, self.raw.task()));
        }
        if header.unobserved_err() && !std::thread::panicking() {
            // The task's `Err` was never taken, and now never will be.
            context::try_with(|w| w.exec.err_unobserved(w, self.raw.task()));
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.key.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}
