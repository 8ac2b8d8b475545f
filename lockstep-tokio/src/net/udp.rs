//! `UdpSocket`: tokio's, or lockstep's simulated datagram socket (loss,
//! duplication, reordering and partitions drawn from the seed).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;

use super::{Target, ToSocketAddrs, each_sim_addr, target};
use crate::local::Local;

/// A UDP socket.
pub struct UdpSocket {
    repr: Repr,
}

enum Repr {
    Real(tokio::net::UdpSocket),
    Sim {
        socket: Local<lockstep::net::UdpSocket>,
        /// The address given to `connect`, which lockstep's sockets do not
        /// keep themselves.
        peer: Mutex<Option<SocketAddr>>,
    },
}

fn not_connected() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the UDP socket is not connected",
    )
}

impl UdpSocket {
    /// Binds a socket (inside a simulation, on the calling task's host).
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let t = target(&addr);
        let repr = if crate::sim() {
            let socket = each_sim_addr(t, |a| {
                Local::new(
                    async move {
                        lockstep::net::UdpSocket::bind(a)
                            .await
                            .map(|s| Local::new(s, "tokio::net::UdpSocket"))
                    },
                    "tokio::net::UdpSocket::bind",
                )
            })
            .await?;
            Repr::Sim {
                socket,
                peer: Mutex::new(None),
            }
        } else {
            Repr::Real(match t {
                Target::Addr(a) => tokio::net::UdpSocket::bind(a).await?,
                Target::Addrs(a) => tokio::net::UdpSocket::bind(a).await?,
                Target::Str(s) => tokio::net::UdpSocket::bind(s).await?,
                Target::HostPort(h, p) => tokio::net::UdpSocket::bind((h, p)).await?,
            })
        };
        Ok(UdpSocket { repr })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.repr {
            Repr::Real(s) => s.local_addr(),
            Repr::Sim { socket, .. } => socket.get().local_addr(),
        }
    }

    /// Sends a datagram to `target`.
    pub async fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let t = target(&addr);
        match &self.repr {
            Repr::Real(s) => match t {
                Target::Addr(a) => s.send_to(buf, a).await,
                Target::Addrs(a) => s.send_to(buf, a).await,
                Target::Str(a) => s.send_to(buf, a).await,
                Target::HostPort(h, p) => s.send_to(buf, (h, p)).await,
            },
            Repr::Sim { socket, .. } => {
                let socket = socket.get();
                each_sim_addr(t, |a| {
                    Local::new(socket.send_to(buf, a), "tokio::net::UdpSocket::send_to")
                })
                .await
            }
        }
    }

    /// Receives a datagram and its sender's address.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match &self.repr {
            Repr::Real(s) => s.recv_from(buf).await,
            Repr::Sim { socket, .. } => {
                let socket = socket.get();
                std::future::poll_fn(|cx| socket.poll_recv_from(cx, buf)).await
            }
        }
    }

    /// Sets the default peer of `send` and `recv`. Inside a simulation,
    /// `recv` then drops datagrams from other addresses, as the kernel
    /// does.
    pub async fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        match &self.repr {
            Repr::Real(s) => match target(&addr) {
                Target::Addr(a) => s.connect(a).await,
                Target::Addrs(a) => s.connect(a).await,
                Target::Str(a) => s.connect(a).await,
                Target::HostPort(h, p) => s.connect((h, p)).await,
            },
            Repr::Sim { peer, .. } => {
                let resolved = super::lookup_host(addr).await?.next().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")
                })?;
                *peer.lock().unwrap_or_else(|e| e.into_inner()) = Some(resolved);
                Ok(())
            }
        }
    }

    /// The connected peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.repr {
            Repr::Real(s) => s.peer_addr(),
            Repr::Sim { peer, .. } => {
                (*peer.lock().unwrap_or_else(|e| e.into_inner())).ok_or_else(not_connected)
            }
        }
    }

    /// Sends to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        match &self.repr {
            Repr::Real(s) => s.send(buf).await,
            Repr::Sim { .. } => {
                let peer = self.peer_addr()?;
                self.send_to(buf, peer).await
            }
        }
    }

    /// Receives from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.repr {
            Repr::Real(s) => s.recv(buf).await,
            Repr::Sim { .. } => {
                let peer = self.peer_addr()?;
                loop {
                    let (n, from) = self.recv_from(buf).await?;
                    if same_peer(from, peer) {
                        return Ok(n);
                    }
                }
            }
        }
    }
}

/// Whether a datagram from `from` comes from the connected `peer` (a
/// loopback peer matches the host's own address).
fn same_peer(from: SocketAddr, peer: SocketAddr) -> bool {
    from == peer || (peer.ip().is_loopback() && from.port() == peer.port())
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Real(s) => fmt::Debug::fmt(s, f),
            Repr::Sim { socket, .. } => fmt::Debug::fmt(socket.get(), f),
        }
    }
}
