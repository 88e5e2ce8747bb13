//! Network devices: the loopback of a new network namespace, which init sets up; and
//! linux.netDevices: move network devices of the runtime's network namespace into the
//! container's, renamed if asked, with their permanent global addresses, and up
//! (runtime-spec 1.2). Done by the runtime during create, once init exists, before the
//! createRuntime hooks and init's sysctls (which may name the device). Nothing moves them
//! back: when the container's namespace dies the kernel returns physical devices to the
//! host's initial namespace and destroys virtual ones, as the spec says.
//!
//! Plain rtnetlink over a blocking socket: one request, one acknowledgement (or a dump).

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use oci_spec::runtime::LinuxNetDevice;

use crate::error::{Error, Result, SysContext};

/// The longest interface name (IFNAMSIZ less its NUL).
const MAX_NAME: usize = 15;

/// Check a device name as the kernel will (dev_valid_name); `field` names it in the error.
pub(crate) fn check_name(field: &str, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > MAX_NAME
        || name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.chars().any(char::is_whitespace);
    if bad {
        return Err(Error::config(format!(
            "{field} {name:?} is not a valid network device name (1 to {MAX_NAME} bytes, no '/', ':' or spaces, not . or ..)"
        )));
    }
    Ok(())
}

/// Init, in the network namespace it created: set its loopback up, as runc (a "loopback"
/// network for a new namespace) and crun do; a new namespace's `lo` is down. A container
/// without other interfaces (Docker's `--network none`) still reaches its own 127.0.0.1.
pub(crate) fn loopback_up() -> Result<()> {
    Rtnl::open()?
        .set_up(LOOPBACK_INDEX, true)
        .ctx(|| "set the loopback up".into())
}

/// The index the kernel gives `lo` in every network namespace (the first device made).
const LOOPBACK_INDEX: u32 = 1;

/// Move every device of `devices` into the network namespace of process `init`.
pub(crate) fn move_all(devices: &HashMap<String, LinuxNetDevice>, init: i32) -> Result<()> {
    let ns_path = format!("/proc/{init}/ns/net");
    let target = File::open(&ns_path).map_err(|e| Error::io("open", &ns_path, e))?;
    let host = Rtnl::open()?;
    let inside = Rtnl::open_in(&target)?;
    // Sorted, so that the same config moves (and fails) in the same order every time.
    let mut names: Vec<&String> = devices.keys().collect();
    names.sort();
    for name in names {
        let new_name = devices[name].name().as_deref().unwrap_or(name);
        move_one(&host, &inside, &target, name, new_name)?;
    }
    Ok(())
}

fn move_one(host: &Rtnl, inside: &Rtnl, target: &File, name: &str, new_name: &str) -> Result<()> {
    let field = format!("linux.netDevices[{name:?}]");
    let index = host.index_of(name).map_err(|e| match e {
        Errno::ENODEV => Error::config(format!(
            "{field}: the runtime's network namespace has no device {name:?}"
        )),
        e => Error::sys(format!("{field}: look up device {name:?}"), e),
    })?;
    // The kernel moves first and renames after, so a clash would leave the device in the
    // container under its old name, to be destroyed with it when the create fails.
    if !new_name.contains('%') && inside.index_of(new_name).is_ok() {
        return Err(already_there(&field, new_name));
    }
    // Down first, so nothing on the host uses it half-moved (as runc does).
    host.set_up(index, false)
        .ctx(|| format!("{field}: set {name:?} down"))?;
    let addresses = host
        .permanent_global_addresses(index)
        .ctx(|| format!("{field}: list the addresses of {name:?}"))?;
    host.move_to(index, new_name, target).map_err(|e| match e {
        Errno::EEXIST => already_there(&field, new_name),
        e => Error::sys(
            format!("{field}: move {name:?} into the container as {new_name:?}"),
            e,
        ),
    })?;
    let moved = inside
        .find_moved(index, new_name)
        .ctx(|| format!("{field}: find {new_name:?} in the container"))?;
    for address in addresses {
        inside
            .add_address(moved, address)
            .ctx(|| format!("{field}: restore an address of {name:?} in the container"))?;
    }
    inside
        .set_up(moved, true)
        .ctx(|| format!("{field}: set {new_name:?} up in the container"))
}

fn already_there(field: &str, new_name: &str) -> Error {
    Error::config(format!(
        "{field}.name {new_name:?}: the container's network namespace already has a device of that name (end the name with %d to let the kernel number it)"
    ))
}

/// A NETLINK_ROUTE socket, bound to the network namespace it was created in.
struct Rtnl {
    socket: Socket,
}

impl Rtnl {
    fn open() -> Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)
            .map_err(|e| Error::io("open", "a NETLINK_ROUTE socket", e))?;
        socket
            .bind_auto()
            .map_err(|e| Error::io("bind", "a NETLINK_ROUTE socket", e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::io("connect", "a NETLINK_ROUTE socket", e))?;
        Ok(Rtnl { socket })
    }

    /// A socket in the network namespace `ns`: the runtime (single-threaded) enters it for
    /// the socket's creation only.
    fn open_in(ns: &File) -> Result<Self> {
        let ours = File::open("/proc/self/ns/net")
            .map_err(|e| Error::io("open", "/proc/self/ns/net", e))?;
        nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
            .ctx(|| "enter the container's network namespace".into())?;
        let socket = Rtnl::open();
        nix::sched::setns(ours.as_fd(), CloneFlags::CLONE_NEWNET)
            .ctx(|| "return to the runtime's network namespace".into())?;
        socket
    }

    /// Send one request; return the messages of the answer (a dump's, or none for an ack).
    fn request(
        &self,
        flags: u16,
        msg: RouteNetlinkMessage,
    ) -> nix::Result<Vec<RouteNetlinkMessage>> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        let mut out = Vec::new();
        let mut rx: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            rx.clear();
            self.socket
                .recv(&mut rx, 0)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            let mut offset = 0;
            while offset < rx.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[offset..])
                    .map_err(|_| Errno::EBADMSG)?;
                let len = reply.header.length as usize;
                match reply.payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(code) => Err(Errno::from_raw(-code.get())),
                        }
                    }
                    _ => {}
                }
                if len == 0 {
                    return Err(Errno::EBADMSG);
                }
                offset += (len + 3) & !3;
            }
            // A plain get is answered with one message, without NLMSG_DONE.
            if flags & NLM_F_DUMP == 0 && !out.is_empty() {
                return Ok(out);
            }
        }
    }

    fn index_of(&self, name: &str) -> nix::Result<u32> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let answer = self.request(0, RouteNetlinkMessage::GetLink(msg))?;
        match answer.into_iter().next() {
            Some(RouteNetlinkMessage::NewLink(link)) => Ok(link.header.index),
            _ => Err(Errno::ENODEV),
        }
    }

    /// The name of device `index`, if there is one.
    fn name_of(&self, index: u32) -> nix::Result<Option<String>> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        let answer = match self.request(0, RouteNetlinkMessage::GetLink(msg)) {
            Err(Errno::ENODEV) => return Ok(None),
            other => other?,
        };
        Ok(answer.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewLink(link) => {
                link.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                })
            }
            _ => None,
        }))
    }

    fn set_up(&self, index: u32, up: bool) -> nix::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.change_mask = LinkFlags::Up;
        if up {
            msg.header.flags = LinkFlags::Up;
        }
        self.request(NLM_F_ACK, RouteNetlinkMessage::SetLink(msg))
            .map(drop)
    }

    /// Rename and move in one request, so the name never clashes on the host.
    fn move_to(&self, index: u32, new_name: &str, ns: &File) -> nix::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::IfName(new_name.to_string()));
        msg.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        self.request(NLM_F_ACK, RouteNetlinkMessage::SetLink(msg))
            .map(drop)
    }

    /// The index of the device just moved here. A device keeps its index when the
    /// namespace has it free (always so in a new namespace, whose only device is lo); a
    /// name template ("eth%d") is only known once the kernel has numbered it.
    fn find_moved(&self, old_index: u32, new_name: &str) -> nix::Result<u32> {
        if !new_name.contains('%') {
            return self.index_of(new_name);
        }
        let (prefix, suffix) = new_name.split_once("%d").unwrap_or((new_name, ""));
        match self.name_of(old_index)? {
            Some(n) if n.starts_with(prefix) && n.ends_with(suffix) => Ok(old_index),
            _ => Err(Errno::ENODEV),
        }
    }

    /// runtime-spec keeps the addresses the user configured: permanent, of global scope.
    fn permanent_global_addresses(&self, index: u32) -> nix::Result<Vec<AddressMessage>> {
        let answer = self.request(
            NLM_F_DUMP,
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        )?;
        Ok(answer
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => Some(a),
                _ => None,
            })
            .filter(|a| a.header.index == index && a.header.scope == AddressScope::Universe)
            .filter(|a| {
                let permanent = a.attributes.iter().find_map(|attr| match attr {
                    AddressAttribute::Flags(f) => Some(f.contains(AddressFlags::Permanent)),
                    _ => None,
                });
                permanent.unwrap_or(a.header.flags.contains(AddressHeaderFlags::Permanent))
            })
            .collect())
    }

    /// Add an address found on the host to device `index`: its prefix, local and peer
    /// addresses and broadcast; not its label (which carries the old name) nor its
    /// lifetimes.
    fn add_address(&self, index: u32, found: AddressMessage) -> nix::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = found.header.family;
        msg.header.prefix_len = found.header.prefix_len;
        msg.header.scope = found.header.scope;
        msg.header.index = index;
        msg.attributes = found
            .attributes
            .into_iter()
            .filter(|a| {
                matches!(
                    a,
                    AddressAttribute::Address(_)
                        | AddressAttribute::Local(_)
                        | AddressAttribute::Broadcast(_)
                )
            })
            .collect();
        self.request(
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewAddress(msg),
        )
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn device_names_are_checked_as_the_kernel_does() {
        for good in ["eth0", "ctr_0", "x", "a234567890abcde", "eth%d"] {
            assert!(super::check_name("n", good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a:1", "a b", "a234567890abcdef"] {
            let err = super::check_name("linux.netDevices", bad)
                .expect_err(bad)
                .to_string();
            assert!(err.contains("linux.netDevices"), "{err}");
        }
    }
}
