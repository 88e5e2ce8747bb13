//! A container's place on a bridge: a network namespace of its own, held by a file (a bind
//! mount of the namespace) that the OCI config names, so the runtime joins a namespace that
//! is already set up; a veth pair between it and the bridge; the address and the route.

use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ipnet::{Ipv4Net, Ipv6Net};
use nix::mount::MntFlags;
use nix::sched::CloneFlags;

use crate::rtnl::{Rtnl, VethRequest, LOOPBACK_INDEX};
use crate::{Error, Result};

/// The container's end of the veth pair of its first network (eth1, eth2... for the
/// others, as Docker names them).
pub const CONTAINER_IFNAME: &str = "eth0";

/// What one container gets on a bridge.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// Where the namespace is held (a file that does not exist yet), or the namespace to
    /// join (`join`).
    pub netns: PathBuf,
    /// The namespace exists (the container is on another network already): the link is
    /// added to it.
    pub join: bool,
    pub bridge: String,
    /// The host's end of the veth pair (on the bridge).
    pub host_ifname: String,
    /// The container's end (`eth0`, `eth1`...).
    pub ifname: String,
    pub mac: [u8; 6],
    /// The container's address, with the subnet's prefix.
    pub address: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// The container's IPv6 address and its network's IPv6 gateway (an IPv6 network).
    pub address6: Option<(Ipv6Net, Ipv6Addr)>,
    /// The container's default route goes through this network's gateway.
    pub default_route: bool,
    pub mtu: u32,
    /// Sockets for the embedded DNS resolver (127.0.0.11:53, UDP and TCP) inside, for
    /// berthd to hold (only with a new namespace).
    pub dns: bool,
    /// Sysctls of the container's interface, `net.X.Y.IFNAME.Z=V` (the endpoint's
    /// `com.docker.network.endpoint.sysctls`), set before it comes up.
    pub sysctls: Vec<String>,
}

fn link_error<'a>(operation: &'static str, name: &'a str) -> impl FnOnce(nix::Error) -> Error + 'a {
    move |source| Error::Link {
        operation,
        name: name.to_string(),
        source,
    }
}

/// Docker's MAC address for an IPv4 address: 02:42 then the address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// A MAC address written as six hex pairs joined by `:` or `-` (the forms of Go's
/// net.ParseMAC for Ethernet).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let sep = if s.contains('-') { '-' } else { ':' };
    let mut mac = [0u8; 6];
    let mut parts = s.split(sep);
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Make the namespace (or join it, with `join`) and put the container on the bridge. On
/// failure, what was made is undone with [`detach`] by the caller (it knows the names).
///
/// One thread of its own does it all: it unshares a new namespace (only this thread moves),
/// binds it to `netns`, goes back to the host's to create the veth pair with the peer born
/// inside, then enters the new one to set it up. The thread then ends; the caller's threads
/// never leave the host's namespace.
pub fn attach(a: &Attachment) -> Result<Option<crate::dns::Sockets>> {
    let a = a.clone();
    let path = a.netns.clone();
    crate::netns::in_own_thread(&path, "netns-attach", move || attach_here(&a))
}

fn attach_here(a: &Attachment) -> Result<Option<crate::dns::Sockets>> {
    let enter = |ns: &File| {
        nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).map_err(|source| Error::EnterNamespace {
            path: a.netns.clone(),
            source,
        })
    };
    let open_ns = |path: &Path| {
        File::open(path).map_err(|source| Error::OpenNamespace {
            path: a.netns.clone(),
            source,
        })
    };
    let ns = if a.join {
        open_ns(&a.netns)?
    } else {
        let host_ns = open_ns(Path::new("/proc/thread-self/ns/net"))?;
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|source| Error::EnterNamespace {
            path: a.netns.clone(),
            source,
        })?;
        bind_namespace(&a.netns)?;
        let ns = open_ns(Path::new("/proc/thread-self/ns/net"))?;
        // Back in the host's namespace to make the pair (a netlink socket answers only in
        // the namespace it was opened in, and the kernel refuses requests from another one).
        enter(&host_ns)?;
        ns
    };
    let host = Rtnl::open().map_err(link_error("open rtnetlink for", &a.bridge))?;
    let bridge = host
        .link(&a.bridge)
        .map_err(link_error("look up", &a.bridge))?
        .ok_or_else(|| Error::Config(format!("the bridge {} does not exist", a.bridge)))?;
    host.create_veth(&VethRequest {
        host_name: &a.host_ifname,
        bridge_index: bridge.header.index,
        mtu: a.mtu,
        peer_name: &a.ifname,
        peer_mac: a.mac,
        peer_netns: ns.as_raw_fd(),
    })
    .map_err(link_error("create the veth pair", &a.host_ifname))?;
    let host_end = host
        .link(&a.host_ifname)
        .map_err(link_error("look up", &a.host_ifname))?
        .ok_or_else(|| Error::Config(format!("{} did not arrive", a.host_ifname)))?;
    host.set_up(host_end.header.index)
        .map_err(link_error("bring up", &a.host_ifname))?;
    enter(&ns)?;
    let inside = Rtnl::open().map_err(link_error("open rtnetlink for", &a.ifname))?;
    inside
        .set_up(LOOPBACK_INDEX)
        .map_err(link_error("bring up", "lo"))?;
    let eth = inside
        .link(&a.ifname)
        .map_err(link_error("look up", &a.ifname))?
        .ok_or_else(|| Error::Config(format!("{} did not arrive", a.ifname)))?
        .header
        .index;
    set_interface_sysctls(&a.ifname, &a.sysctls)?;
    inside
        .set_up(eth)
        .map_err(link_error("bring up", &a.ifname))?;
    inside
        .add_ipv4(eth, a.address)
        .map_err(link_error("add the address of", &a.ifname))?;
    if let Some((address, _)) = a.address6 {
        inside
            .add_ipv6(eth, address)
            .map_err(link_error("add the IPv6 address of", &a.ifname))?;
    }
    if a.default_route {
        inside
            .set_default_route(a.gateway, eth)
            .map_err(link_error("add the default route through", &a.ifname))?;
        if let Some((_, gateway)) = a.address6 {
            inside
                .set_default_route6(gateway, eth)
                .map_err(link_error("add the IPv6 default route through", &a.ifname))?;
        }
    }
    if !a.dns || a.join {
        return Ok(None);
    }
    crate::dns::bind_here()
        .map(Some)
        .map_err(|source| Error::NamespaceFile {
            path: a.netns.clone(),
            source,
        })
}

/// In the container's namespace (this thread has entered it: /proc/sys/net is the
/// namespace of the thread that opens it): each `net.X.Y.IFNAME.Z=V` written as
/// `/proc/sys/net/X/Y/<ifname>/Z`, left alone when it holds V already, as libnetwork's
/// setSysctls.
fn set_interface_sysctls(ifname: &str, sysctls: &[String]) -> Result<()> {
    for sysctl in sysctls {
        let (key, value) = sysctl.split_once('=').ok_or_else(|| {
            Error::Config(format!(
                "expected sysctl '{sysctl}' to have format name=value"
            ))
        })?;
        let parts: Vec<&str> = key.split('.').collect();
        // Each part one file name under /proc/sys/net: no '/' may lead elsewhere.
        let plain = parts.iter().all(|p| !p.is_empty() && !p.contains('/'));
        let [net @ "net", x, y, _, z] = parts.as_slice() else {
            return Err(bad_sysctl(sysctl));
        };
        if !plain {
            return Err(bad_sysctl(sysctl));
        }
        let path = Path::new("/proc/sys")
            .join(net)
            .join(x)
            .join(y)
            .join(ifname)
            .join(z);
        if !path.is_file() {
            return Err(Error::Config(format!(
                "{} is not a sysctl file",
                path.display()
            )));
        }
        let current = std::fs::read_to_string(&path).map_err(|source| Error::Sysctl {
            path: path.clone(),
            source,
        })?;
        if current.trim() != value {
            std::fs::write(&path, value).map_err(|source| Error::Sysctl { path, source })?;
        }
    }
    Ok(())
}

fn bad_sysctl(sysctl: &str) -> Error {
    Error::Config(format!(
        "expected sysctl '{sysctl}' to have format net.X.Y.IFNAME.Z"
    ))
}

/// Point the default route of the namespace at `netns` through `gateway` on `ifname` (the
/// network that gives it changed: one was connected or disconnected).
pub fn set_default_route(netns: &Path, gateway: Ipv4Addr, ifname: &str) -> Result<()> {
    route_in(
        netns,
        ifname,
        "set the default route through",
        move |rtnl, eth| rtnl.set_default_route(gateway, eth),
    )
}

/// Point the IPv6 default route of the namespace at `netns` through `gateway` on `ifname`.
pub fn set_default_route6(netns: &Path, gateway: Ipv6Addr, ifname: &str) -> Result<()> {
    route_in(
        netns,
        ifname,
        "set the IPv6 default route through",
        move |rtnl, eth| rtnl.set_default_route6(gateway, eth),
    )
}

/// `set` (`what` in its error) with link `ifname`'s index, inside the namespace at `netns`.
fn route_in(
    netns: &Path,
    ifname: &str,
    what: &'static str,
    set: impl FnOnce(&Rtnl, u32) -> nix::Result<()> + Send + 'static,
) -> Result<()> {
    let ifname = ifname.to_string();
    crate::netns::run_in(netns, "netns-route", move |_| {
        let inside = Rtnl::open().map_err(link_error("open rtnetlink for", &ifname))?;
        let eth = inside
            .link(&ifname)
            .map_err(link_error("look up", &ifname))?
            .ok_or_else(|| Error::Config(format!("{ifname} is not in the container")))?
            .header
            .index;
        set(&inside, eth).map_err(link_error(what, &ifname))
    })
}

/// The resolver's sockets in the namespace held at `netns` (a restarted berthd's, for the
/// containers that kept running), made by a thread of its own that enters it.
pub fn dns_socket_in(netns: &Path) -> Result<crate::dns::Sockets> {
    crate::netns::run_in(netns, "netns-dns", |inside| {
        crate::dns::bind_here().map_err(|source| Error::NamespaceFile {
            path: inside.to_path_buf(),
            source,
        })
    })
}

/// Bind the calling thread's network namespace onto `path` (a new empty file).
fn bind_namespace(path: &Path) -> Result<()> {
    crate::pin::bind_current(crate::pin::Kind::Net, path)
}

/// Undo [`attach`]: the host's veth (its peer goes with it) and the namespace's file (the
/// namespace itself ends with the last process in it). Each part may already be gone.
pub fn detach(netns: &Path, host_ifname: &str) -> Result<()> {
    delete_veth(host_ifname)?;
    release_namespace(netns)
}

/// Delete a veth pair by its host end's name (absent: nothing to do).
pub fn delete_veth(host_ifname: &str) -> Result<()> {
    let rtnl = Rtnl::open().map_err(link_error("open rtnetlink for", host_ifname))?;
    rtnl.delete_link(host_ifname)
        .map(drop)
        .map_err(link_error("delete", host_ifname))
}

/// Unmount and remove a namespace file, if it is there.
pub fn release_namespace(netns: &Path) -> Result<()> {
    match nix::mount::umount2(netns, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(source) => {
            return Err(Error::EnterNamespace {
                path: netns.to_path_buf(),
                source,
            })
        }
    }
    match std::fs::remove_file(netns) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::NamespaceFile {
            path: netns.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sysctl: &str) -> String {
        match set_interface_sysctls("no-such-if0", &[sysctl.to_string()]) {
            Err(e) => e.to_string(),
            Ok(()) => panic!("{sysctl} was taken"),
        }
    }

    #[test]
    fn interface_sysctls_stay_under_proc_sys_net() {
        for bad in [
            "net.ipv4.conf.IFNAME.forwarding",
            "net.ipv4.conf.IFNAME",
            "kernel.x.y.IFNAME.z=1",
            "net.ipv4./etc.IFNAME.passwd=1",
            "net.ipv4.conf.IFNAME./=1",
            "net.ipv4..IFNAME.forwarding=1",
        ] {
            assert!(refused(bad).starts_with("expected sysctl"), "{bad}");
        }
        // A well-formed one names this interface's file, which does not exist here.
        assert_eq!(
            refused("net.ipv4.conf.IFNAME.forwarding=1"),
            "/proc/sys/net/ipv4/conf/no-such-if0/forwarding is not a sysctl file"
        );
    }
}
