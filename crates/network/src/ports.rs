//! Host ports of published ports, held by berthd: a socket bound to each (never listening)
//! keeps any other program, and any other container, from the port while the container
//! runs, as dockerd's port reservations do. The kernel's NAT (see `nft`) carries the traffic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::OwnedFd;

use nix::sys::socket::{
    bind, socket, AddressFamily, SockFlag, SockProtocol, SockType, SockaddrIn, SockaddrIn6,
};

use crate::nft::Proto;

/// A host port asked for: one port, a range to pick from, or any (0: the kernel chooses an
/// ephemeral one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPorts {
    pub first: u16,
    pub last: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("failed to bind host port {ip}:{port}/{proto}: {}", lower(errno.desc()))]
    Bind {
        ip: IpAddr,
        port: u16,
        proto: &'static str,
        errno: nix::Error,
    },
    #[error("no free host port in {ip}:{first}-{last}/{proto}")]
    RangeFull {
        ip: IpAddr,
        first: u16,
        last: u16,
        proto: &'static str,
    },
}

/// dockerd's words: "address already in use".
fn lower(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

fn open(proto: Proto) -> nix::Result<OwnedFd> {
    let (kind, protocol) = match proto {
        Proto::Tcp => (SockType::Stream, SockProtocol::Tcp),
        Proto::Udp => (SockType::Datagram, SockProtocol::Udp),
        Proto::Sctp => (SockType::Stream, SockProtocol::Sctp),
    };
    socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, protocol)
}

fn bound_port(fd: &OwnedFd) -> nix::Result<u16> {
    let addr: SockaddrIn = nix::sys::socket::getsockname(std::os::fd::AsRawFd::as_raw_fd(fd))?;
    Ok(addr.port())
}

/// Reserve a port of `ports` on `ip` for `proto`; the port and the socket that holds it.
/// An SCTP port is not held where the kernel has no SCTP (the module is not loaded): the
/// NAT rule alone serves it then.
pub fn reserve(
    ip: Ipv4Addr,
    ports: HostPorts,
    proto: Proto,
) -> Result<(u16, Option<OwnedFd>), PortError> {
    let fail = |port, errno| PortError::Bind {
        ip: ip.into(),
        port,
        proto: proto.as_str(),
        errno,
    };
    let try_port = |port: u16| -> Result<(u16, Option<OwnedFd>), nix::Error> {
        let fd = match open(proto) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::EPROTONOSUPPORT) if proto == Proto::Sctp => {
                return Ok((port, None))
            }
            Err(e) => return Err(e),
        };
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &SockaddrIn::from(SocketAddrV4::new(ip, port)),
        )?;
        let port = bound_port(&fd)?;
        Ok((port, Some(fd)))
    };
    if ports.first == ports.last {
        return try_port(ports.first).map_err(|e| fail(ports.first, e));
    }
    for port in ports.first..=ports.last {
        match try_port(port) {
            Ok(held) => return Ok(held),
            Err(nix::errno::Errno::EADDRINUSE) => continue,
            Err(e) => return Err(fail(port, e)),
        }
    }
    Err(PortError::RangeFull {
        ip: ip.into(),
        first: ports.first,
        last: ports.last,
        proto: proto.as_str(),
    })
}

/// [`reserve`] on an address of either family (an IPv6 one: the socket is IPv6-only, so
/// that `[::]:P` and `0.0.0.0:P` are held side by side, as dockerd holds them).
pub fn reserve_ip(
    ip: IpAddr,
    ports: HostPorts,
    proto: Proto,
) -> Result<(u16, Option<OwnedFd>), PortError> {
    match ip {
        IpAddr::V4(ip) => reserve(ip, ports, proto),
        IpAddr::V6(ip) => reserve6(ip, ports, proto),
    }
}

fn open6(proto: Proto) -> nix::Result<OwnedFd> {
    let (kind, protocol) = match proto {
        Proto::Tcp => (SockType::Stream, SockProtocol::Tcp),
        Proto::Udp => (SockType::Datagram, SockProtocol::Udp),
        Proto::Sctp => (SockType::Stream, SockProtocol::Sctp),
    };
    let fd = socket(AddressFamily::Inet6, kind, SockFlag::SOCK_CLOEXEC, protocol)?;
    nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Ipv6V6Only, &true)?;
    Ok(fd)
}

fn reserve6(
    ip: Ipv6Addr,
    ports: HostPorts,
    proto: Proto,
) -> Result<(u16, Option<OwnedFd>), PortError> {
    let fail = |port, errno| PortError::Bind {
        ip: ip.into(),
        port,
        proto: proto.as_str(),
        errno,
    };
    let try_port = |port: u16| -> Result<(u16, Option<OwnedFd>), nix::Error> {
        let fd = match open6(proto) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::EPROTONOSUPPORT) if proto == Proto::Sctp => {
                return Ok((port, None))
            }
            Err(e) => return Err(e),
        };
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &SockaddrIn6::from(SocketAddrV6::new(ip, port, 0, 0)),
        )?;
        let addr: SockaddrIn6 =
            nix::sys::socket::getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
        Ok((addr.port(), Some(fd)))
    };
    if ports.first == ports.last {
        return try_port(ports.first).map_err(|e| fail(ports.first, e));
    }
    for port in ports.first..=ports.last {
        match try_port(port) {
            Ok(held) => return Ok(held),
            Err(nix::errno::Errno::EADDRINUSE) => continue,
            Err(e) => return Err(fail(port, e)),
        }
    }
    Err(PortError::RangeFull {
        ip: ip.into(),
        first: ports.first,
        last: ports.last,
        proto: proto.as_str(),
    })
}
