//! Host ports of published ports, held by berthd: a socket bound to each (never listening)
//! keeps any other program, and any other container, from the port while the container
//! runs, as dockerd's port reservations do. The kernel's NAT (see `nft`) carries the traffic.

use std::net::{IpAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    bind, getsockname, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockProtocol,
    SockType, SockaddrIn, SockaddrIn6,
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

/// A socket of `proto` for `ip`'s family; an IPv6 one is IPv6-only, so that `[::]:P` and
/// `0.0.0.0:P` are held side by side, as dockerd holds them.
fn open(ip: IpAddr, proto: Proto) -> nix::Result<OwnedFd> {
    let (kind, protocol) = match proto {
        Proto::Tcp => (SockType::Stream, SockProtocol::Tcp),
        Proto::Udp => (SockType::Datagram, SockProtocol::Udp),
        Proto::Sctp => (SockType::Stream, SockProtocol::Sctp),
    };
    let family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(family, kind, SockFlag::SOCK_CLOEXEC, protocol)?;
    if ip.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    Ok(fd)
}

/// Bind `fd` to `ip:port`; the port it holds (the kernel's choice for 0).
fn bind_port(fd: &OwnedFd, ip: IpAddr, port: u16) -> nix::Result<u16> {
    let raw = fd.as_raw_fd();
    match ip {
        IpAddr::V4(ip) => {
            bind(raw, &SockaddrIn::from(SocketAddrV4::new(ip, port)))?;
            Ok(getsockname::<SockaddrIn>(raw)?.port())
        }
        IpAddr::V6(ip) => {
            bind(raw, &SockaddrIn6::from(SocketAddrV6::new(ip, port, 0, 0)))?;
            Ok(getsockname::<SockaddrIn6>(raw)?.port())
        }
    }
}

/// Reserve a port of `ports` on `ip` (either family) for `proto`; the port and the socket
/// that holds it. An SCTP port is not held where the kernel has no SCTP (the module is not
/// loaded): the NAT rule alone serves it then.
pub fn reserve_ip(
    ip: IpAddr,
    ports: HostPorts,
    proto: Proto,
) -> Result<(u16, Option<OwnedFd>), PortError> {
    let fail = |port, errno| PortError::Bind {
        ip,
        port,
        proto: proto.as_str(),
        errno,
    };
    let try_port = |port: u16| -> Result<(u16, Option<OwnedFd>), nix::Error> {
        let fd = match open(ip, proto) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::EPROTONOSUPPORT) if proto == Proto::Sctp => {
                return Ok((port, None))
            }
            Err(e) => return Err(e),
        };
        let port = bind_port(&fd, ip, port)?;
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
        ip,
        first: ports.first,
        last: ports.last,
        proto: proto.as_str(),
    })
}
