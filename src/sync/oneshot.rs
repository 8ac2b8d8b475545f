//! [`oneshot`](self): a channel for exactly one value, with tokio's API.
//!
//! The [`Receiver`] is itself a future: it yields the value, or
//! [`RecvError`] if the [`Sender`] was dropped without sending. A send
//! fails, giving the value back, once the receiver is dropped or closed.
//! Awaiting the receiver is cancel-safe (poll it by `&mut` to keep it).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::resource::{Ev, Kind, Meta, Tracked, WaitOp, block};
use crate::runtime::context;
use crate::runtime::executor::Executor;
use crate::runtime::waker;

/// A one-value channel; reports call it `oneshot#N`.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::sync::oneshot;
///
/// let outcome = Sim::new(1).run(async {
///     let (tx, rx) = oneshot::channel_named("reply");
///     spawn(async move {
///         sleep(Duration::from_millis(5)).await;
///         tx.send("pong").unwrap();
///     });
///     rx.await
/// });
/// assert_eq!(outcome.into_result().unwrap(), Ok("pong"));
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    make(None)
}

/// A one-value channel that traces and reports call `oneshot '<name>'`.
pub fn channel_named<T>(name: impl Into<String>) -> (Sender<T>, Receiver<T>) {
    make(Some(name.into()))
}

fn make<T>(name: Option<String>) -> (Sender<T>, Receiver<T>) {
    let inner = Rc::new(Inner {
        core: Rc::new(OneshotCore {
            meta: Meta::new(Kind::Oneshot, name),
            state: RefCell::new(OneshotState {
                tx_alive: true,
                rx_open: true,
                rx_waker: None,
                rx_waiting: false,
            }),
        }),
        value: RefCell::new(None),
    });
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner },
    )
}

struct Inner<T> {
    core: Rc<OneshotCore>,
    value: RefCell<Option<T>>,
}

struct OneshotCore {
    meta: Meta,
    state: RefCell<OneshotState>,
}

struct OneshotState {
    tx_alive: bool,
    /// Neither dropped nor closed.
    rx_open: bool,
    rx_waker: Option<Waker>,
    rx_waiting: bool,
}

/// The receiver's error: the sender was dropped without sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError(());

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the sender was dropped without sending")
    }
}

impl std::error::Error for RecvError {}

/// The error of [`Receiver::try_recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing sent yet.
    Empty,
    /// The sender was dropped without sending, or the value was taken.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "nothing sent yet",
            TryRecvError::Closed => "the sender is gone",
        })
    }
}

impl std::error::Error for TryRecvError {}

impl Tracked for OneshotCore {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn describe(&self, _: WaitOp, _: &Executor) -> String {
        format!(
            "a value on {} (nothing sent yet; the sender is alive)",
            self.meta.label()
        )
    }
}

/// Sends the value.
pub struct Sender<T> {
    inner: Rc<Inner<T>>,
}

impl<T> Sender<T> {
    /// Sends the value; gives it back if the receiver is gone or closed.
    pub fn send(self, value: T) -> Result<(), T> {
        let core = &self.inner.core;
        if !core.state.borrow().rx_open {
            return Err(value);
        }
        // The value may carry channel handles to the receiver's task.
        super::places::moved_with::<T>();
        *self.inner.value.borrow_mut() = Some(value);
        let waker = core.state.borrow_mut().rx_waker.take();
        core.meta.trace(Ev::Send, || None);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Whether the receiver is gone or closed.
    pub fn is_closed(&self) -> bool {
        !self.inner.core.state.borrow().rx_open
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let core = &self.inner.core;
        let waker = {
            let mut st = core.state.borrow_mut();
            st.tx_alive = false;
            st.rx_waker.take()
        };
        if self.inner.value.borrow().is_none() {
            core.meta.trace(Ev::Close, || {
                Some("sender dropped without sending".to_string())
            });
        }
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("oneshot", &self.inner.core.meta)
            .finish()
    }
}

/// Receives the value: await it.
pub struct Receiver<T> {
    inner: Rc<Inner<T>>,
}

impl<T> Receiver<T> {
    /// The value if it was sent.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if let Some(v) = self.take() {
            return Ok(v);
        }
        if self.inner.core.state.borrow().tx_alive {
            Err(TryRecvError::Empty)
        } else {
            Err(TryRecvError::Closed)
        }
    }

    fn take(&self) -> Option<T> {
        let v = self.inner.value.borrow_mut().take()?;
        self.inner.core.state.borrow_mut().rx_waiting = false;
        self.inner.core.meta.trace(Ev::Recv, || None);
        Some(v)
    }

    /// Refuses the value from now on: a later send fails. A value already
    /// sent can still be received.
    pub fn close(&mut self) {
        self.inner.core.state.borrow_mut().rx_open = false;
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let core = &self.inner.core;
        context::with("lockstep::sync::oneshot::Receiver", |w| {
            if let Some(v) = self.take() {
                return Poll::Ready(Ok(v));
            }
            let mut st = core.state.borrow_mut();
            if !st.tx_alive {
                return Poll::Ready(Err(RecvError(())));
            }
            match &st.rx_waker {
                Some(old) if waker::same_task(old, cx.waker()) => {}
                _ => st.rx_waker = Some(waker::tracked_clone(cx.waker())),
            }
            let first = !std::mem::replace(&mut st.rx_waiting, true);
            drop(st);
            block(w, core.clone(), WaitOp::Recv, first, || {
                Some("a value".to_string())
            })
        })
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.inner.core.state.borrow_mut().rx_open = false;
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("oneshot", &self.inner.core.meta)
            .finish()
    }
}
