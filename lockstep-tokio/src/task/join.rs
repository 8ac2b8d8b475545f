//! `JoinHandle`, `AbortHandle`, `JoinError` and `Id`, each either tokio's
//! or lockstep's.
//!
//! A simulated task is spawned wrapped in [`Abortable`], which shares an
//! [`AbortState`] with the task's handles: `JoinHandle::abort` aborts
//! through lockstep (the future is dropped at once, as lockstep does),
//! while an [`AbortHandle`], which must be `Send + Sync` and outlive the
//! handle, sets a flag and wakes the task, whose next poll drops the future
//! and ends the task as cancelled (tokio's own abort works that way too).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;

use crate::local::Local;

/// A task's id: tokio's, or the lockstep task's number in spawn order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id(IdRepr);

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum IdRepr {
    Real(tokio::task::Id),
    Sim(lockstep::task::TaskId),
}

impl Id {
    pub(crate) fn real(id: tokio::task::Id) -> Id {
        Id(IdRepr::Real(id))
    }

    pub(crate) fn sim(id: lockstep::task::TaskId) -> Id {
        Id(IdRepr::Sim(id))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IdRepr::Real(id) => fmt::Display::fmt(&id, f),
            IdRepr::Sim(id) => fmt::Display::fmt(&id.as_u32(), f),
        }
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IdRepr::Real(id) => fmt::Debug::fmt(&id, f),
            IdRepr::Sim(id) => write!(f, "Id({})", id.as_u32()),
        }
    }
}

/// Why a task produced no value: it was cancelled, or it panicked.
pub struct JoinError {
    repr: ErrorRepr,
}

enum ErrorRepr {
    Real(tokio::task::JoinError),
    Cancelled(Id),
    Panicked {
        id: Id,
        message: String,
        location: Option<String>,
    },
}

impl JoinError {
    pub(crate) fn real(e: tokio::task::JoinError) -> JoinError {
        JoinError {
            repr: ErrorRepr::Real(e),
        }
    }

    pub(crate) fn sim(id: Id, e: lockstep::task::JoinError) -> JoinError {
        let repr = match e {
            lockstep::task::JoinError::Panicked { message, location } => ErrorRepr::Panicked {
                id,
                message,
                location: location.map(|l| l.to_string()),
            },
            _ => ErrorRepr::Cancelled(id),
        };
        JoinError { repr }
    }

    pub(crate) fn cancelled(id: Id) -> JoinError {
        JoinError {
            repr: ErrorRepr::Cancelled(id),
        }
    }

    /// Whether the task was cancelled (aborted, or dropped with its
    /// runtime, or its simulated host crashed).
    pub fn is_cancelled(&self) -> bool {
        match &self.repr {
            ErrorRepr::Real(e) => e.is_cancelled(),
            ErrorRepr::Cancelled(_) => true,
            ErrorRepr::Panicked { .. } => false,
        }
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        match &self.repr {
            ErrorRepr::Real(e) => e.is_panic(),
            ErrorRepr::Cancelled(_) => false,
            ErrorRepr::Panicked { .. } => true,
        }
    }

    /// The panic's payload. Inside a simulation lockstep keeps the panic's
    /// message, not its payload: the payload is that message, a `String`.
    ///
    /// # Panics
    ///
    /// If the task did not panic.
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.try_into_panic() {
            Ok(payload) => payload,
            Err(e) => panic!("`JoinError::into_panic` on an error that is not a panic: {e}"),
        }
    }

    /// The panic's payload, or the error back if the task did not panic.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            ErrorRepr::Real(e) => e.try_into_panic().map_err(JoinError::real),
            ErrorRepr::Panicked { message, .. } => Ok(Box::new(message)),
            repr @ ErrorRepr::Cancelled(_) => Err(JoinError { repr }),
        }
    }

    /// The id of the task that failed.
    pub fn id(&self) -> Id {
        match &self.repr {
            ErrorRepr::Real(e) => Id::real(e.id()),
            ErrorRepr::Cancelled(id) | ErrorRepr::Panicked { id, .. } => *id,
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            ErrorRepr::Real(e) => fmt::Display::fmt(e, f),
            ErrorRepr::Cancelled(id) => write!(f, "task {id} was cancelled"),
            ErrorRepr::Panicked {
                id,
                message,
                location: Some(at),
            } => write!(f, "task {id} panicked at {at}: {message}"),
            ErrorRepr::Panicked { id, message, .. } => write!(f, "task {id} panicked: {message}"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            ErrorRepr::Real(e) => fmt::Debug::fmt(e, f),
            ErrorRepr::Cancelled(id) => write!(f, "JoinError::Cancelled({id:?})"),
            ErrorRepr::Panicked { id, message, .. } => {
                write!(f, "JoinError::Panic({id:?}, {message:?})")
            }
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for io::Error {
    fn from(e: JoinError) -> io::Error {
        io::Error::other(e.to_string())
    }
}

/// The abort flag and waker shared by a simulated task and its handles.
#[derive(Default)]
pub(crate) struct AbortState {
    aborted: AtomicBool,
    finished: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl AbortState {
    fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

pin_project! {
    /// A simulated task's future: `None` once aborted through an
    /// `AbortHandle`.
    pub(crate) struct Abortable<F> {
        #[pin]
        future: F,
        state: Arc<AbortState>,
    }

    impl<F> PinnedDrop for Abortable<F> {
        fn drop(this: Pin<&mut Self>) {
            this.state.finished.store(true, Ordering::SeqCst);
        }
    }
}

impl<F: Future> Future for Abortable<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.state.aborted.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        {
            let mut slot = this.state.waker.lock().unwrap_or_else(|e| e.into_inner());
            match &*slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        this.future.poll(cx).map(Some)
    }
}

pub(crate) fn abortable<F: Future>(future: F) -> (Abortable<F>, Arc<AbortState>) {
    let state = Arc::new(AbortState::default());
    let fut = Abortable {
        future,
        state: state.clone(),
    };
    (fut, state)
}

/// An owned permission to await a task: a future of `Result<T,
/// JoinError>`. Dropping it detaches the task.
pub struct JoinHandle<T> {
    repr: HandleRepr<T>,
}

enum HandleRepr<T> {
    Real(tokio::task::JoinHandle<T>),
    Sim {
        handle: Local<lockstep::task::JoinHandle<Option<T>>>,
        state: Arc<AbortState>,
        id: Id,
    },
}

impl<T> JoinHandle<T> {
    pub(crate) fn real(handle: tokio::task::JoinHandle<T>) -> JoinHandle<T> {
        JoinHandle {
            repr: HandleRepr::Real(handle),
        }
    }

    /// Spawns `future` as a lockstep task (named `name`, if given) with
    /// the caller's spawn site.
    #[track_caller]
    pub(crate) fn spawn_sim<F>(future: F, name: Option<&str>) -> JoinHandle<T>
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        let (future, state) = abortable(future);
        let mut builder = lockstep::task::Builder::new();
        if let Some(name) = name {
            builder = builder.name(name);
        }
        let handle = builder.spawn(future);
        JoinHandle::from_sim(handle, state)
    }

    pub(crate) fn from_sim(
        handle: lockstep::task::JoinHandle<Option<T>>,
        state: Arc<AbortState>,
    ) -> JoinHandle<T> {
        let id = Id::sim(handle.id());
        JoinHandle {
            repr: HandleRepr::Sim {
                handle: Local::new(handle, "tokio::task::JoinHandle"),
                state,
                id,
            },
        }
    }

    /// Aborts the task. Inside a simulation its future is dropped at once
    /// (lockstep's abort); awaiting the handle then gives a cancelled
    /// [`JoinError`]. A no-op if the task already finished.
    pub fn abort(&self) {
        match &self.repr {
            HandleRepr::Real(h) => h.abort(),
            HandleRepr::Sim { handle, .. } => handle.get().abort(),
        }
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        match &self.repr {
            HandleRepr::Real(h) => h.is_finished(),
            HandleRepr::Sim { handle, .. } => handle.get().is_finished(),
        }
    }

    /// A handle that can abort the task from anywhere, without awaiting it.
    pub fn abort_handle(&self) -> AbortHandle {
        match &self.repr {
            HandleRepr::Real(h) => AbortHandle(AbortRepr::Real(h.abort_handle())),
            HandleRepr::Sim { state, id, .. } => AbortHandle(AbortRepr::Sim {
                state: state.clone(),
                id: *id,
            }),
        }
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        match &self.repr {
            HandleRepr::Real(h) => Id::real(h.id()),
            HandleRepr::Sim { id, .. } => *id,
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().repr {
            HandleRepr::Real(h) => Pin::new(h).poll(cx).map(|r| r.map_err(JoinError::real)),
            HandleRepr::Sim { handle, id, .. } => {
                let id = *id;
                Pin::new(handle.get_mut()).poll(cx).map(|r| match r {
                    Ok(Some(v)) => Ok(v),
                    Ok(None) => Err(JoinError::cancelled(id)),
                    Err(e) => Err(JoinError::sim(id, e)),
                })
            }
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .finish()
    }
}

/// Aborts a task without owning its [`JoinHandle`]. `Send + Sync` and
/// cloneable, as tokio's.
#[derive(Clone)]
pub struct AbortHandle(AbortRepr);

#[derive(Clone)]
enum AbortRepr {
    Real(tokio::task::AbortHandle),
    Sim { state: Arc<AbortState>, id: Id },
}

impl AbortHandle {
    pub(crate) fn sim(state: Arc<AbortState>, id: Id) -> AbortHandle {
        AbortHandle(AbortRepr::Sim { state, id })
    }

    pub(crate) fn real(h: tokio::task::AbortHandle) -> AbortHandle {
        AbortHandle(AbortRepr::Real(h))
    }

    /// Aborts the task: it is cancelled at its next turn (its future is
    /// dropped without being polled again). A no-op if it has finished.
    pub fn abort(&self) {
        match &self.0 {
            AbortRepr::Real(h) => h.abort(),
            AbortRepr::Sim { state, .. } => state.abort(),
        }
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        match &self.0 {
            AbortRepr::Real(h) => h.is_finished(),
            AbortRepr::Sim { state, .. } => state.finished.load(Ordering::SeqCst),
        }
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        match &self.0 {
            AbortRepr::Real(h) => Id::real(h.id()),
            AbortRepr::Sim { id, .. } => *id,
        }
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.id())
            .finish()
    }
}
