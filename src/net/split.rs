//! The halves of a [`TcpStream`]: one task reads while another writes.
//!
//! A stream's state lives in the simulation, so reading and writing
//! through `&TcpStream` already work from two places at once; the halves
//! give that a name and a type, as tokio's do. [`TcpStream::split`] borrows
//! the stream; [`TcpStream::into_split`] gives two owned halves that can
//! move to two tasks. Dropping the owned write half closes the write side
//! (the peer reads `0` after the data), as tokio's does; the stream itself
//! closes when both halves are gone.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

use super::tcp::TcpStream;

/// The read half of a borrowed stream ([`TcpStream::split`]).
#[derive(Debug)]
pub struct ReadHalf<'a>(pub(crate) &'a TcpStream);

/// The write half of a borrowed stream ([`TcpStream::split`]).
#[derive(Debug)]
pub struct WriteHalf<'a>(pub(crate) &'a TcpStream);

/// The owned read half of a stream ([`TcpStream::into_split`]).
#[derive(Debug)]
pub struct OwnedReadHalf(pub(crate) Rc<TcpStream>);

/// The owned write half of a stream ([`TcpStream::into_split`]). Dropping
/// it closes the write side.
#[derive(Debug)]
pub struct OwnedWriteHalf(pub(crate) Rc<TcpStream>);

impl OwnedReadHalf {
    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl OwnedWriteHalf {
    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if crate::in_simulation() {
            let _ = self.0.shutdown(Shutdown::Write);
        }
    }
}

macro_rules! read_half {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut &*self.0).poll_read(cx, buf)
            }
        }
    };
}

macro_rules! write_half {
    ($t:ty) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut &*self.0).poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut &*self.0).poll_flush(cx)
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut &*self.0).poll_close(cx)
            }
        }
    };
}

read_half!(ReadHalf<'_>);
read_half!(OwnedReadHalf);
write_half!(WriteHalf<'_>);
write_half!(OwnedWriteHalf);
