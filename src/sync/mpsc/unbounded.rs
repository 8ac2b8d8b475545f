//! The halves of an unbounded channel: the bounded channel's machinery
//! with no capacity, so a send never waits.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{Receiver, SendError, Sender, TryRecvError};

/// The sending half of an unbounded channel.
pub struct UnboundedSender<T>(pub(super) Sender<T>);

impl<T> UnboundedSender<T> {
    /// Sends a message at once; fails, giving it back, if the receiver is
    /// gone or closed.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.0.is_closed() {
            return Err(SendError(value));
        }
        self.0.chan.push(value, false, self.0.slot);
        Ok(())
    }

    /// Whether the receiver is gone or closed.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

impl<T> Clone for UnboundedSender<T> {
    fn clone(&self) -> Self {
        UnboundedSender(self.0.clone())
    }
}

impl<T> fmt::Debug for UnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnboundedSender")
            .field("channel", &self.0.chan.core.meta)
            .finish()
    }
}

/// The receiving half of an unbounded channel.
pub struct UnboundedReceiver<T>(pub(super) Receiver<T>);

impl<T> UnboundedReceiver<T> {
    /// The next message; `None` once every sender is gone (or the receiver
    /// closed) and the buffer is empty. Cancel-safe.
    ///
    /// # Panics
    ///
    /// When polled outside a simulation.
    pub async fn recv(&mut self) -> Option<T> {
        self.0.recv().await
    }

    /// Polls for the next message.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(cx)
    }

    /// The next message if one is buffered.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.0.try_recv()
    }

    /// Stops the channel: sends fail from now on; what is buffered can
    /// still be received.
    pub fn close(&mut self) {
        self.0.close();
    }

    /// Messages buffered.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T> futures::Stream for UnboundedReceiver<T> {
    type Item = T;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T> fmt::Debug for UnboundedReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnboundedReceiver")
            .field("channel", &self.0.chan.core.meta)
            .finish()
    }
}
