//! Networking: [`TcpListener`], [`TcpStream`], [`UdpSocket`],
//! [`lookup_host`].
//!
//! Inside a simulation the sockets are lockstep's: they live on the
//! simulated host of the task that makes them (a `#[tokio::test]` body
//! runs on a host named `main`), addresses are the hosts' (`10.0.0.N`, a
//! host's name, `localhost` and `127.0.0.1` for the host itself), and
//! every byte crosses a simulated link, with its latency, partitions and
//! crashes drawn from the seed. Outside a simulation they are tokio's.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

mod tcp_socket;
mod udp;

pub use tcp_socket::{TcpListener, TcpStream};
pub use udp::UdpSocket;

/// The halves of a split [`TcpStream`], at tokio's paths.
pub mod tcp {
    pub use super::tcp_socket::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
}

/// One address or several, as tokio's `ToSocketAddrs` takes them:
/// `"host:port"`, `("host", port)`, a `SocketAddr`, an `(IpAddr, port)`,
/// a slice of `SocketAddr`s, and references to those.
pub trait ToSocketAddrs: sealed::Sealed {}

mod sealed {
    pub trait Sealed {
        fn target(&self) -> Target<'_>;
    }

    /// An address before resolution.
    #[derive(Clone, Copy, Debug)]
    pub enum Target<'a> {
        Addr(std::net::SocketAddr),
        Addrs(&'a [std::net::SocketAddr]),
        Str(&'a str),
        HostPort(&'a str, u16),
    }
}

pub(crate) use sealed::Target;

pub(crate) fn target<A: ToSocketAddrs + ?Sized>(a: &A) -> Target<'_> {
    sealed::Sealed::target(a)
}

macro_rules! addr_impls {
    ($($t:ty => |$s:ident| $e:expr;)*) => {$(
        impl sealed::Sealed for $t {
            fn target(&self) -> Target<'_> {
                let $s = self;
                $e
            }
        }
        impl ToSocketAddrs for $t {}
    )*};
}

addr_impls! {
    SocketAddr => |s| Target::Addr(*s);
    SocketAddrV4 => |s| Target::Addr(SocketAddr::V4(*s));
    SocketAddrV6 => |s| Target::Addr(SocketAddr::V6(*s));
    (IpAddr, u16) => |s| Target::Addr(SocketAddr::from(*s));
    (Ipv4Addr, u16) => |s| Target::Addr(SocketAddr::from(*s));
    (Ipv6Addr, u16) => |s| Target::Addr(SocketAddr::from(*s));
    [SocketAddr] => |s| Target::Addrs(s);
    str => |s| Target::Str(s);
    String => |s| Target::Str(s);
    (&str, u16) => |s| Target::HostPort(s.0, s.1);
    (String, u16) => |s| Target::HostPort(&s.0, s.1);
}

impl<T: ToSocketAddrs + ?Sized> sealed::Sealed for &T {
    fn target(&self) -> Target<'_> {
        sealed::Sealed::target(&**self)
    }
}
impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}

impl<const N: usize> sealed::Sealed for [SocketAddr; N] {
    fn target(&self) -> Target<'_> {
        Target::Addrs(self)
    }
}
impl<const N: usize> ToSocketAddrs for [SocketAddr; N] {}

impl sealed::Sealed for Vec<SocketAddr> {
    fn target(&self) -> Target<'_> {
        Target::Addrs(self)
    }
}
impl ToSocketAddrs for Vec<SocketAddr> {}

/// Runs `op` on each address of `target` in turn (as tokio does), the
/// first success winning; lockstep addresses are tried as lockstep
/// resolves them (host names, `localhost`, `10.0.0.N`).
pub(crate) async fn each_sim_addr<T, F, Fut>(target: Target<'_>, mut op: F) -> io::Result<T>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = io::Result<T>>,
{
    let addrs: Vec<String> = match target {
        Target::Addr(a) => vec![a.to_string()],
        Target::Addrs(list) => list.iter().map(|a| a.to_string()).collect(),
        Target::Str(s) => vec![s.to_string()],
        Target::HostPort(h, p) => vec![host_port(h, p)],
    };
    let mut last = None;
    for a in addrs {
        match op(a).await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Resolves `host` to socket addresses.
///
/// Inside a simulation names resolve through the simulation's hosts: a
/// host's name gives its `10.0.0.N` address, `localhost` gives
/// `127.0.0.1` (the calling task's own host), an IP address gives itself;
/// an unknown name is `NotFound`, naming the hosts that exist.
pub async fn lookup_host<A: ToSocketAddrs>(host: A) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    let t = target(&host);
    if !crate::sim() {
        let addrs: Vec<SocketAddr> = match t {
            Target::Addr(a) => tokio::net::lookup_host(a).await?.collect(),
            Target::Addrs(list) => list.to_vec(),
            Target::Str(s) => tokio::net::lookup_host(s).await?.collect(),
            Target::HostPort(h, p) => tokio::net::lookup_host((h, p)).await?.collect(),
        };
        return Ok(addrs.into_iter());
    }
    let (name, port) = match t {
        Target::Addr(a) => return Ok(vec![a].into_iter()),
        Target::Addrs(list) => return Ok(Vec::from(list).into_iter()),
        Target::Str(s) => match s.parse::<SocketAddr>() {
            Ok(a) => return Ok(vec![a].into_iter()),
            Err(_) => {
                let (h, p) = s.rsplit_once(':').ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "invalid socket address")
                })?;
                let p: u16 = p.parse().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "invalid port value")
                })?;
                (h, p)
            }
        },
        Target::HostPort(h, p) => (h, p),
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)].into_iter());
    }
    if name == "localhost" {
        return Ok(vec![SocketAddr::from((Ipv4Addr::LOCALHOST, port))].into_iter());
    }
    match lockstep::net::Host::lookup(name) {
        Some(host) => Ok(vec![SocketAddr::new(host.addr(), port)].into_iter()),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("failed to lookup address information: no simulated host is named `{name}`"),
        )),
    }
}
