//! A NETLINK_ROUTE socket: one request, then its acknowledgement or its answer (a dump's
//! messages), over a plain blocking socket. The socket belongs to the network namespace of
//! the thread that opened it, whichever thread uses it later.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

use ipnet::{Ipv4Net, Ipv6Net};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;

/// The loopback's index in every network namespace.
pub(crate) const LOOPBACK_INDEX: u32 = 1;

pub(crate) struct Rtnl {
    socket: Socket,
}

/// The veth pair of a container: the host's end on a bridge, the other end created
/// directly in the container's namespace (one request: no moment with both ends on the
/// host, so nothing to leak if berthd dies half-way).
pub(crate) struct VethRequest<'a> {
    pub host_name: &'a str,
    pub bridge_index: u32,
    pub mtu: u32,
    pub peer_name: &'a str,
    pub peer_mac: [u8; 6],
    pub peer_netns: RawFd,
}

fn errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

impl Rtnl {
    pub(crate) fn open() -> nix::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(errno)?;
        socket.bind_auto().map_err(errno)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(errno)?;
        Ok(Rtnl { socket })
    }

    /// Send one request; the messages of the answer (a dump's, or none for an ack).
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
        self.socket.send(&buf, 0).map_err(errno)?;
        let mut out = Vec::new();
        let mut rx: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            rx.clear();
            self.socket.recv(&mut rx, 0).map_err(errno)?;
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

    fn ack(&self, flags: u16, msg: RouteNetlinkMessage) -> nix::Result<()> {
        self.request(NLM_F_ACK | flags, msg).map(drop)
    }

    /// The link named `name`, if there is one.
    pub(crate) fn link(&self, name: &str) -> nix::Result<Option<LinkMessage>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(0, RouteNetlinkMessage::GetLink(msg)) {
            Ok(answer) => Ok(answer.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(link),
                _ => None,
            })),
            Err(Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A new bridge named `name`, down.
    pub(crate) fn create_bridge(&self, name: &str, mtu: u32) -> nix::Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.ack(NLM_F_CREATE | NLM_F_EXCL, RouteNetlinkMessage::NewLink(msg))
    }

    pub(crate) fn set_up(&self, index: u32) -> nix::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.change_mask = LinkFlags::Up;
        msg.header.flags = LinkFlags::Up;
        self.ack(0, RouteNetlinkMessage::SetLink(msg))
    }

    pub(crate) fn set_mtu(&self, index: u32, mtu: u32) -> nix::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.ack(0, RouteNetlinkMessage::SetLink(msg))
    }

    /// The IPv4 addresses of link `index`, with their prefix lengths.
    pub(crate) fn ipv4_addresses(&self, index: u32) -> nix::Result<Vec<Ipv4Net>> {
        self.addresses(index, AddressFamily::Inet, |attr, prefix| match attr {
            AddressAttribute::Local(IpAddr::V4(ip)) => Ipv4Net::new(ip, prefix).ok(),
            _ => None,
        })
    }

    /// The addresses of `family` on link `index`: what `pick` makes of each address's
    /// attributes and prefix length (the first attribute it takes).
    fn addresses<T>(
        &self,
        index: u32,
        family: AddressFamily,
        pick: impl Fn(AddressAttribute, u8) -> Option<T>,
    ) -> nix::Result<Vec<T>> {
        let mut query = AddressMessage::default();
        query.header.family = family;
        let answer = self.request(NLM_F_DUMP, RouteNetlinkMessage::GetAddress(query))?;
        Ok(answer
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => Some(a),
                _ => None,
            })
            .filter_map(|a| {
                let prefix = a.header.prefix_len;
                a.attributes.into_iter().find_map(|attr| pick(attr, prefix))
            })
            .collect())
    }

    fn address_message(index: u32, net: Ipv4Net) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = net.prefix_len();
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Local(IpAddr::V4(net.addr())));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(net.addr())));
        if net.prefix_len() < 31 {
            msg.attributes
                .push(AddressAttribute::Broadcast(net.broadcast()));
        }
        msg
    }

    pub(crate) fn add_ipv4(&self, index: u32, net: Ipv4Net) -> nix::Result<()> {
        self.ack(
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewAddress(Self::address_message(index, net)),
        )
    }

    /// The destinations of the main table's IPv4 routes, the default route left out.
    pub(crate) fn ipv4_routes(&self) -> nix::Result<Vec<Ipv4Net>> {
        let mut query = RouteMessage::default();
        query.header.address_family = AddressFamily::Inet;
        let answer = self.request(NLM_F_DUMP, RouteNetlinkMessage::GetRoute(query))?;
        Ok(answer
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r)
                    if r.header.table == RouteHeader::RT_TABLE_MAIN
                        && r.header.destination_prefix_length > 0 =>
                {
                    let prefix = r.header.destination_prefix_length;
                    r.attributes.into_iter().find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                            Ipv4Net::new(ip, prefix).ok().map(|n| n.trunc())
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    pub(crate) fn create_veth(&self, veth: &VethRequest) -> nix::Result<()> {
        // Both ends are created down: a veth comes up only once its peer is linked, which
        // the kernel does after configuring both (up at creation is ENOTCONN).
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(veth.peer_name.to_string()));
        peer.attributes.push(LinkAttribute::Mtu(veth.mtu));
        peer.attributes
            .push(LinkAttribute::Address(veth.peer_mac.to_vec()));
        peer.attributes
            .push(LinkAttribute::NetNsFd(veth.peer_netns));
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(veth.host_name.to_string()));
        msg.attributes.push(LinkAttribute::Mtu(veth.mtu));
        msg.attributes
            .push(LinkAttribute::Controller(veth.bridge_index));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.ack(NLM_F_CREATE | NLM_F_EXCL, RouteNetlinkMessage::NewLink(msg))
    }

    /// Delete the link named `name`; false if there was none.
    pub(crate) fn delete_link(&self, name: &str) -> nix::Result<bool> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.ack(0, RouteNetlinkMessage::DelLink(msg)) {
            Ok(()) => Ok(true),
            Err(Errno::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The default route through `gateway` on link `oif`, in place of any other (a
    /// container on several networks has one, through the network chosen for it).
    /// An IPv6 address, without duplicate address detection: the IPAM made it unique on
    /// its bridge, and a tentative address could not be used for the first second.
    pub(crate) fn add_ipv6(&self, index: u32, net: Ipv6Net) -> nix::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet6;
        msg.header.prefix_len = net.prefix_len();
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V6(net.addr())));
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        self.ack(
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewAddress(msg),
        )
    }

    /// The IPv6 addresses of link `index`.
    pub(crate) fn ipv6_addresses(&self, index: u32) -> nix::Result<Vec<Ipv6Net>> {
        self.addresses(index, AddressFamily::Inet6, |attr, prefix| match attr {
            AddressAttribute::Address(IpAddr::V6(ip)) => Ipv6Net::new(ip, prefix).ok(),
            _ => None,
        })
    }

    /// The IPv6 default route through `gateway` on link `oif` (replacing one there is).
    pub(crate) fn set_default_route6(&self, gateway: Ipv6Addr, oif: u32) -> nix::Result<()> {
        self.set_default_route_via(AddressFamily::Inet6, RouteAddress::Inet6(gateway), oif)
    }

    pub(crate) fn set_default_route(&self, gateway: Ipv4Addr, oif: u32) -> nix::Result<()> {
        self.set_default_route_via(AddressFamily::Inet, RouteAddress::Inet(gateway), oif)
    }

    fn set_default_route_via(
        &self,
        family: AddressFamily,
        gateway: RouteAddress,
        oif: u32,
    ) -> nix::Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes.push(RouteAttribute::Gateway(gateway));
        msg.attributes.push(RouteAttribute::Oif(oif));
        self.ack(
            NLM_F_CREATE | NLM_F_REPLACE,
            RouteNetlinkMessage::NewRoute(msg),
        )
    }
}

/// The kind of a link (`bridge`, `veth`...), from its link info.
pub(crate) fn kind(link: &LinkMessage) -> Option<&InfoKind> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k),
            _ => None,
        }),
        _ => None,
    })
}

pub(crate) fn mtu(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    })
}
