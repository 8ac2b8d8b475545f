//! Addresses and name resolution (the simulation's DNS).
//!
//! Each host gets an IPv4 address when it is created, in creation order:
//! the first host is `10.0.0.1`, the second `10.0.0.2`, and so on
//! (`10.0.1.0` follows `10.0.0.255`). A host's name resolves to its
//! address; `localhost` and `127.0.0.1` mean the calling task's own host.
//!
//! Errors are the `std::io::Error` kinds a real stack returns:
//!
//! | input | kind |
//! |---|---|
//! | no `:port`, a port that is not a number below 65536 | `InvalidInput` (as std's "invalid socket address") |
//! | a name no host has | `NotFound` (a resolver's "no such host"; the message lists the hosts) |
//! | an IP address no host has | `HostUnreachable` |
//! | binding an address that is not the host's | `AddrNotAvailable` |

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use super::fabric::Fabric;
use super::host::HostId;

/// Where an address points before resolution.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct AddrSpec<'a> {
    host: Target<'a>,
    port: u16,
}

/// A host to resolve: borrowed, so that sending to `"server:7"` copies no
/// string.
#[derive(Clone, Debug)]
enum Target<'a> {
    Name(&'a str),
    Ip(IpAddr),
}

mod sealed {
    pub trait Sealed {}
}

/// Anything that names one socket address: `"server:80"`, `"10.0.0.2:80"`,
/// `"0.0.0.0:0"`, `("server", 80)`, a [`SocketAddr`].
///
/// Sealed: lockstep implements it for the types above (and references to
/// them).
pub trait ToAddr: sealed::Sealed {
    #[doc(hidden)]
    fn to_addr_spec(&self) -> io::Result<AddrSpec<'_>>;
}

fn invalid(input: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "invalid socket address `{input}`: {why}; expected `host:port` (`server:80`, \
             `10.0.0.1:80`, `0.0.0.0:0`)"
        ),
    )
}

fn parse(s: &str) -> io::Result<AddrSpec<'_>> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(AddrSpec {
            host: Target::Ip(addr.ip()),
            port: addr.port(),
        });
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(invalid(s, "no port"));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(s, "the port is not a number from 0 to 65535"))?;
    if host.is_empty() {
        return Err(invalid(s, "no host"));
    }
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => Target::Ip(ip),
        Err(_) => Target::Name(host),
    };
    Ok(AddrSpec { host, port })
}

impl sealed::Sealed for str {}
impl ToAddr for str {
    fn to_addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        parse(self)
    }
}

impl sealed::Sealed for String {}
impl ToAddr for String {
    fn to_addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        parse(self)
    }
}

fn ip_spec(addr: SocketAddr) -> io::Result<AddrSpec<'static>> {
    Ok(AddrSpec {
        host: Target::Ip(addr.ip()),
        port: addr.port(),
    })
}

impl sealed::Sealed for SocketAddr {}
impl ToAddr for SocketAddr {
    fn to_addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        ip_spec(*self)
    }
}

impl sealed::Sealed for SocketAddrV4 {}
impl ToAddr for SocketAddrV4 {
    fn to_addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        ip_spec(SocketAddr::V4(*self))
    }
}

impl sealed::Sealed for (&str, u16) {}
impl ToAddr for (&str, u16) {
    fn to_addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        let host = match self.0.parse::<IpAddr>() {
            Ok(ip) => Target::Ip(ip),
            Err(_) => Target::Name(self.0),
        };
        Ok(AddrSpec { host, port: self.1 })
    }
}

impl sealed::Sealed for (IpAddr, u16) {}
impl ToAddr for (IpAddr, u16) {
    fn to_addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        ip_spec(SocketAddr::from(*self))
    }
}

impl sealed::Sealed for (Ipv4Addr, u16) {}
impl ToAddr for (Ipv4Addr, u16) {
    fn to_addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        ip_spec(SocketAddr::from(*self))
    }
}

impl<T: ToAddr + ?Sized> sealed::Sealed for &T {}
impl<T: ToAddr + ?Sized> ToAddr for &T {
    fn to_addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        (**self).to_addr_spec()
    }
}

/// The address of the `index`-th host (from 0).
pub(crate) fn host_ip(index: usize) -> Ipv4Addr {
    let n = index as u32 + 1;
    Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

/// The host with this address, if any.
fn host_of_ip(f: &Fabric, ip: IpAddr) -> Option<HostId> {
    let IpAddr::V4(v4) = ip else { return None };
    let [a, b, c, d] = v4.octets();
    if a != 10 {
        return None;
    }
    let n = u32::from_be_bytes([0, b, c, d]);
    let index = n.checked_sub(1)? as usize;
    (index < f.hosts.len()).then(|| HostId::new(index))
}

/// The names of all hosts, for "no such host" messages.
pub(crate) fn known_hosts(f: &Fabric) -> String {
    if f.hosts.is_empty() {
        return "no host exists yet".to_string();
    }
    let names: Vec<&str> = f.hosts.iter().map(|h| &*h.name).collect();
    format!("hosts: {}", names.join(", "))
}

/// Resolves a host name (or address) seen from `here`.
pub(crate) fn resolve_host(f: &Fabric, name: &str, here: Option<HostId>) -> io::Result<HostId> {
    let target = match name.parse::<IpAddr>() {
        Ok(ip) => Target::Ip(ip),
        Err(_) => Target::Name(name),
    };
    resolve_target(f, &target, here)
}

fn resolve_target(f: &Fabric, target: &Target, here: Option<HostId>) -> io::Result<HostId> {
    match target {
        Target::Name("localhost") => here.ok_or_else(|| no_host_for_loopback("localhost")),
        Target::Name(n) => f.names.get(*n).copied().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no host named `{n}` ({})", known_hosts(f)),
            )
        }),
        Target::Ip(ip) if ip.is_loopback() || ip.is_unspecified() => {
            here.ok_or_else(|| no_host_for_loopback(&ip.to_string()))
        }
        Target::Ip(ip) => host_of_ip(f, *ip).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::HostUnreachable,
                format!("no host has the address {ip} ({})", known_hosts(f)),
            )
        }),
    }
}

fn no_host_for_loopback(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!("`{what}` means the calling task's own host, but this task runs on no host"),
    )
}

/// Resolves a destination: the host and port.
pub(crate) fn resolve(
    f: &Fabric,
    spec: &AddrSpec,
    here: Option<HostId>,
) -> io::Result<(HostId, u16)> {
    Ok((resolve_target(f, &spec.host, here)?, spec.port))
}

/// Checks that `spec` names an address of `here` (for `bind`): its name, its
/// address, a loopback or the unspecified address. Returns the port.
pub(crate) fn local_port(f: &Fabric, spec: &AddrSpec, here: HostId) -> io::Result<u16> {
    let ok = match &spec.host {
        Target::Ip(ip) => {
            ip.is_unspecified() || ip.is_loopback() || host_of_ip(f, *ip) == Some(here)
        }
        Target::Name(n) => *n == "localhost" || f.names.get(*n) == Some(&here),
    };
    if ok {
        Ok(spec.port)
    } else {
        let what = match &spec.host {
            Target::Ip(ip) => ip.to_string(),
            Target::Name(n) => n.to_string(),
        };
        Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!(
                "cannot bind `{what}:{}` on host {}: a socket binds an address of its own \
                 host (`0.0.0.0`, `127.0.0.1`, `{}` or the host's name)",
                spec.port,
                f.host(here).name,
                f.host(here).ip
            ),
        ))
    }
}
