//! berth's NAT in nftables: one table of berth's own per bridge (`ip <table>`), replaced as
//! a whole in one nf_tables transaction each time the set of published ports changes. No
//! other table or chain is read or written, so the host's own rules are never touched.
//!
//! The messages are written here (a few attribute types, the layout of nf_tables.h):
//! rustables lacks the `fib` expression that `fib daddr type local` needs, and
//! netlink-packet-netfilter has no typed nat, masq, fib or ct expressions either.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use nix::errno::Errno;

// nf_tables.h / nfnetlink.h values (checked against the kernel's uapi headers).
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFT_JUMP: i32 = -3;
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_REG_2: u32 = 2;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_OIFNAME: u32 = 7;
const NFT_META_L4PROTO: u32 = 16;
const NFT_CT_STATUS: u32 = 2;
const IPS_DST_NAT: u32 = 0x20;
const NFT_NAT_DNAT: u32 = 1;
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_DADDR: u32 = 2;
const RTN_LOCAL: u32 = 2;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
/// The offset of saddr and daddr in an IPv6 header.
const IPV6_SADDR: u32 = 8;
const IPV6_DADDR: u32 = 24;
const NF_ACCEPT: u32 = 1;
const NF_DROP: u32 = 0;
const NF_INET_FORWARD: u32 = 2;
const NF_INET_PRE_ROUTING: u32 = 0;
const NF_INET_LOCAL_OUT: u32 = 3;
const NF_INET_POST_ROUTING: u32 = 4;
const NLA_F_NESTED: u16 = 0x8000;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_APPEND: u16 = 0x800;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
/// The offset of saddr and daddr in an IPv4 header.
const IPV4_SADDR: u32 = 12;
const IPV4_DADDR: u32 = 16;
/// The destination port's offset in TCP, UDP and SCTP headers alike.
const DPORT: u32 = 2;

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => libc::IPPROTO_TCP as u8,
            Proto::Udp => libc::IPPROTO_UDP as u8,
            Proto::Sctp => libc::IPPROTO_SCTP as u8,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }

    pub fn parse(s: &str) -> Option<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "sctp" => Some(Proto::Sctp),
            _ => None,
        }
    }
}

/// One published port: traffic to a local address (or `host_ip` only) on `host_port` goes
/// to `addr:port` in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub proto: Proto,
    pub addr: Ipv4Addr,
    pub port: u16,
}

/// One published port on IPv6: traffic to a local IPv6 address (or `host_ip` only) on
/// `host_port` goes to `[addr]:port` in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward6 {
    pub host_ip: Option<Ipv6Addr>,
    pub host_port: u16,
    pub proto: Proto,
    pub addr: Ipv6Addr,
    pub port: u16,
}

/// What berth's `ip6` table holds for an IPv6 network's bridge.
#[derive(Debug, Clone)]
pub struct Ruleset6<'a> {
    pub table: &'a str,
    pub bridge: &'a str,
    pub subnet: Ipv6Net,
    pub masquerade: bool,
    pub internal: bool,
    /// The IPv6 subnets of berth's other networks.
    pub isolated: &'a [Ipv6Net],
    pub forwards: &'a [Forward6],
}

/// What berth's table holds for one bridge.
#[derive(Debug, Clone)]
pub struct Ruleset<'a> {
    pub table: &'a str,
    pub bridge: &'a str,
    pub subnet: Ipv4Net,
    /// `ip-masq`: containers' outbound traffic leaves with the host's address.
    pub masquerade: bool,
    /// No forwarding between the bridge and any other interface (an internal network).
    pub internal: bool,
    /// The subnets of berth's other networks, which this one's containers do not reach.
    pub isolated: &'a [Ipv4Net],
    pub forwards: &'a [Forward],
}

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nftables: {0}")]
    Socket(Errno),
    #[error("nftables refused berth's table {table}: {errno}")]
    Refused { table: String, errno: Errno },
}

/// A netlink attribute tree, written as the kernel reads it.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new() -> Msg {
        Msg {
            buf: Vec::with_capacity(256),
            nests: Vec::new(),
        }
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = (4 + value.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
        self
    }

    fn str(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v)
    }

    /// nf_tables' integers are big-endian.
    fn be32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attr(kind, &value.to_be_bytes())
    }

    fn begin(&mut self, kind: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    fn end(&mut self) -> &mut Self {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }
}

/// The expressions of one rule.
struct Rule {
    exprs: Msg,
}

impl Rule {
    fn new() -> Rule {
        Rule { exprs: Msg::new() }
    }

    fn expr(&mut self, name: &str, data: impl FnOnce(&mut Msg)) -> &mut Self {
        self.exprs.begin(NFTA_LIST_ELEM).str(NFTA_EXPR_NAME, name);
        self.exprs.begin(NFTA_EXPR_DATA);
        data(&mut self.exprs);
        self.exprs.end().end();
        self
    }

    fn payload(&mut self, base: u32, offset: u32, len: u32) -> &mut Self {
        self.expr("payload", |m| {
            m.be32(1, NFT_REG_1)
                .be32(2, base)
                .be32(3, offset)
                .be32(4, len);
        })
    }

    fn cmp(&mut self, op: u32, value: &[u8]) -> &mut Self {
        self.expr("cmp", |m| {
            m.be32(1, NFT_REG_1).be32(2, op).begin(3);
            m.attr(NFTA_DATA_VALUE, value).end();
        })
    }

    fn meta(&mut self, key: u32) -> &mut Self {
        self.expr("meta", |m| {
            m.be32(1, NFT_REG_1).be32(2, key);
        })
    }

    /// `ip saddr|daddr` within `net`.
    fn ip_in(&mut self, offset: u32, net: Ipv4Net) -> &mut Self {
        self.payload(NFT_PAYLOAD_NETWORK_HEADER, offset, 4);
        if net.prefix_len() < 32 {
            let mask = net.netmask().octets();
            self.expr("bitwise", |m| {
                m.be32(1, NFT_REG_1).be32(2, NFT_REG_1).be32(3, 4).begin(4);
                m.attr(NFTA_DATA_VALUE, &mask).end().begin(5);
                m.attr(NFTA_DATA_VALUE, &[0; 4]).end();
            });
        }
        self.cmp(NFT_CMP_EQ, &net.network().octets())
    }

    /// `ip6 saddr|daddr` within `net`.
    fn ip6_in(&mut self, offset: u32, net: Ipv6Net) -> &mut Self {
        self.payload(NFT_PAYLOAD_NETWORK_HEADER, offset, 16);
        if net.prefix_len() < 128 {
            let mask = net.netmask().octets();
            self.expr("bitwise", |m| {
                m.be32(1, NFT_REG_1).be32(2, NFT_REG_1).be32(3, 16).begin(4);
                m.attr(NFTA_DATA_VALUE, &mask).end().begin(5);
                m.attr(NFTA_DATA_VALUE, &[0; 16]).end();
            });
        }
        self.cmp(NFT_CMP_EQ, &net.network().octets())
    }

    /// `meta l4proto P th dport HP [ip6 daddr H] dnat to [A]:P`.
    fn dnat6(&mut self, f: &Forward6) -> &mut Self {
        if let Some(ip) = f.host_ip {
            self.ip6_in(IPV6_DADDR, Ipv6Net::from(ip));
        }
        self.meta(NFT_META_L4PROTO)
            .cmp(NFT_CMP_EQ, &[f.proto.number()]);
        self.payload(NFT_PAYLOAD_TRANSPORT_HEADER, DPORT, 2)
            .cmp(NFT_CMP_EQ, &f.host_port.to_be_bytes());
        self.expr("immediate", |m| {
            m.be32(1, NFT_REG_1).begin(2);
            m.attr(NFTA_DATA_VALUE, &f.addr.octets()).end();
        });
        self.expr("immediate", |m| {
            m.be32(1, NFT_REG_2).begin(2);
            m.attr(NFTA_DATA_VALUE, &f.port.to_be_bytes()).end();
        });
        self.expr("nat", |m| {
            m.be32(1, NFT_NAT_DNAT)
                .be32(2, NFPROTO_IPV6.into())
                .be32(3, NFT_REG_1)
                .be32(5, NFT_REG_2);
        })
    }

    /// `oifname [!=] NAME`: the name as the kernel holds it, NUL-padded to IFNAMSIZ.
    fn oifname(&mut self, op: u32, name: &str) -> &mut Self {
        self.ifname(NFT_META_OIFNAME, op, name)
    }

    /// `iifname|oifname [!=] NAME` (`key`: the meta key).
    fn ifname(&mut self, key: u32, op: u32, name: &str) -> &mut Self {
        let mut v = [0u8; 16];
        let n = name.len().min(15);
        v[..n].copy_from_slice(&name.as_bytes()[..n]);
        self.meta(key).cmp(op, &v)
    }

    fn drop(&mut self) -> &mut Self {
        self.expr("immediate", |m| {
            m.be32(1, NFT_REG_VERDICT).begin(2).begin(NFTA_DATA_VERDICT);
            m.be32(NFTA_VERDICT_CODE, NF_DROP).end().end();
        })
    }

    /// `fib daddr type local`.
    fn daddr_local(&mut self) -> &mut Self {
        self.expr("fib", |m| {
            m.be32(1, NFT_REG_1)
                .be32(2, NFT_FIB_RESULT_ADDRTYPE)
                .be32(3, NFTA_FIB_F_DADDR);
        });
        self.cmp(NFT_CMP_EQ, &RTN_LOCAL.to_ne_bytes())
    }

    /// `ct status dnat`.
    fn ct_dnat(&mut self) -> &mut Self {
        self.expr("ct", |m| {
            m.be32(1, NFT_REG_1).be32(2, NFT_CT_STATUS);
        });
        self.expr("bitwise", |m| {
            m.be32(1, NFT_REG_1).be32(2, NFT_REG_1).be32(3, 4).begin(4);
            m.attr(NFTA_DATA_VALUE, &IPS_DST_NAT.to_ne_bytes())
                .end()
                .begin(5);
            m.attr(NFTA_DATA_VALUE, &[0; 4]).end();
        });
        self.cmp(NFT_CMP_NEQ, &[0; 4])
    }

    fn jump(&mut self, chain: &str) -> &mut Self {
        self.expr("immediate", |m| {
            m.be32(1, NFT_REG_VERDICT).begin(2).begin(NFTA_DATA_VERDICT);
            m.be32(NFTA_VERDICT_CODE, NFT_JUMP as u32)
                .str(NFTA_VERDICT_CHAIN, chain)
                .end()
                .end();
        })
    }

    fn masquerade(&mut self) -> &mut Self {
        self.expr("masq", |_| {})
    }

    /// `meta l4proto P th dport HP [ip daddr H] dnat to A:P`.
    fn dnat(&mut self, f: &Forward) -> &mut Self {
        if let Some(ip) = f.host_ip {
            self.ip_in(IPV4_DADDR, Ipv4Net::from(ip));
        }
        self.meta(NFT_META_L4PROTO)
            .cmp(NFT_CMP_EQ, &[f.proto.number()]);
        self.payload(NFT_PAYLOAD_TRANSPORT_HEADER, DPORT, 2)
            .cmp(NFT_CMP_EQ, &f.host_port.to_be_bytes());
        self.expr("immediate", |m| {
            m.be32(1, NFT_REG_1).begin(2);
            m.attr(NFTA_DATA_VALUE, &f.addr.octets()).end();
        });
        self.expr("immediate", |m| {
            m.be32(1, NFT_REG_2).begin(2);
            m.attr(NFTA_DATA_VALUE, &f.port.to_be_bytes()).end();
        });
        self.expr("nat", |m| {
            m.be32(1, NFT_NAT_DNAT)
                .be32(2, NFPROTO_IPV4.into())
                .be32(3, NFT_REG_1)
                .be32(5, NFT_REG_2);
        })
    }
}

/// The messages of one nf_tables transaction.
struct Batch {
    buf: Vec<u8>,
    seq: u32,
    acked: u32,
    /// The tables' family (`ip`, or `ip6` for an IPv6 network's).
    family: u8,
}

impl Batch {
    fn new() -> Batch {
        Batch::of(NFPROTO_IPV4)
    }

    fn of(family: u8) -> Batch {
        let mut b = Batch {
            buf: Vec::with_capacity(4096),
            seq: 0,
            acked: 0,
            family,
        };
        b.message(NFNL_MSG_BATCH_BEGIN, 0, 0, &[]);
        b
    }

    /// One message: nlmsghdr, nfgenmsg, attributes.
    fn message(&mut self, kind: u16, flags: u16, family: u8, attrs: &[u8]) {
        self.seq += 1;
        let control = kind == NFNL_MSG_BATCH_BEGIN || kind == NFNL_MSG_BATCH_END;
        let (kind, flags) = if control {
            (kind, NLM_F_REQUEST)
        } else {
            self.acked += 1;
            (
                (NFNL_SUBSYS_NFTABLES << 8) | kind,
                NLM_F_REQUEST | NLM_F_ACK | flags,
            )
        };
        let len = (16 + 4 + attrs.len()) as u32;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        // nfgenmsg: family, version, res_id (the subsystem, for batch messages).
        self.buf.push(family);
        self.buf.push(0);
        let res_id = if control { NFNL_SUBSYS_NFTABLES } else { 0 };
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        self.buf.extend_from_slice(attrs);
    }

    fn table(&mut self, kind: u16, name: &str) {
        let mut m = Msg::new();
        m.str(NFTA_TABLE_NAME, name);
        let flags = if kind == NFT_MSG_NEWTABLE {
            NLM_F_CREATE
        } else {
            0
        };
        self.message(kind, flags, self.family, &m.buf);
    }

    /// A chain; a base chain of type nat with `hook` (hook number, priority).
    /// A chain; a base chain of `kind` (nat, filter) with `hook` (number, priority).
    fn chain(&mut self, table: &str, name: &str, hook: Option<(u32, i32, &str)>) {
        let mut m = Msg::new();
        m.str(NFTA_CHAIN_TABLE, table).str(NFTA_CHAIN_NAME, name);
        if let Some((number, priority, kind)) = hook {
            m.begin(NFTA_CHAIN_HOOK)
                .be32(NFTA_HOOK_HOOKNUM, number)
                .be32(NFTA_HOOK_PRIORITY, priority as u32)
                .end();
            m.be32(NFTA_CHAIN_POLICY, NF_ACCEPT)
                .str(NFTA_CHAIN_TYPE, kind);
        }
        self.message(NFT_MSG_NEWCHAIN, NLM_F_CREATE, self.family, &m.buf);
    }

    fn rule(&mut self, table: &str, chain: &str, rule: &Rule) {
        let mut m = Msg::new();
        m.str(NFTA_RULE_TABLE, table).str(NFTA_RULE_CHAIN, chain);
        m.begin(NFTA_RULE_EXPRESSIONS);
        m.buf.extend_from_slice(&rule.exprs.buf);
        m.end();
        self.message(
            NFT_MSG_NEWRULE,
            NLM_F_CREATE | NLM_F_APPEND,
            self.family,
            &m.buf,
        );
    }

    /// All the rules of `chain` go (a rule message without a handle).
    fn flush(&mut self, table: &str, chain: &str) {
        let mut m = Msg::new();
        m.str(NFTA_RULE_TABLE, table).str(NFTA_RULE_CHAIN, chain);
        self.message(NFT_MSG_DELRULE, 0, self.family, &m.buf);
    }

    /// Send the transaction; the first error the kernel reports (it applies all or none).
    fn commit(mut self) -> Result<(), Errno> {
        self.message(NFNL_MSG_BATCH_END, 0, 0, &[]);
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(errno)?;
        socket.bind_auto().map_err(errno)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(errno)?;
        // Never block for ever on a kernel that does not answer.
        let timeout = nix::sys::time::TimeVal::new(5, 0);
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::ReceiveTimeout, &timeout)?;
        socket.send(&self.buf, 0).map_err(errno)?;
        let mut answers = 0;
        let mut first_error = None;
        let mut rx: Vec<u8> = Vec::with_capacity(64 * 1024);
        while answers < self.acked {
            rx.clear();
            socket.recv(&mut rx, 0).map_err(errno)?;
            let mut offset = 0;
            while offset + 16 <= rx.len() {
                let word = |at: usize| {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(&rx[at..at + 4]);
                    b
                };
                let len = u32::from_ne_bytes(word(offset)) as usize;
                let kind = u16::from_ne_bytes([rx[offset + 4], rx[offset + 5]]);
                if len < 16 {
                    return Err(Errno::EBADMSG);
                }
                if kind == NLMSG_ERROR && offset + 20 <= rx.len() {
                    answers += 1;
                    let code = i32::from_ne_bytes(word(offset + 16));
                    if code != 0 && first_error.is_none() {
                        first_error = Some(Errno::from_raw(-code));
                    }
                }
                offset += (len + 3) & !3;
            }
            if first_error.is_some() {
                // The transaction was aborted as a whole; the rest of the answers say no more.
                break;
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Send `b`; a refusal names `table`.
fn commit(b: Batch, table: &str) -> Result<(), NftError> {
    b.commit().map_err(|errno| NftError::Refused {
        table: table.to_string(),
        errno,
    })
}

/// A table `table` built anew in `b` (created if absent, so that the delete cannot fail),
/// with the chains both families' tables have.
fn begin_table(b: &mut Batch, table: &str) {
    b.table(NFT_MSG_NEWTABLE, table);
    b.table(NFT_MSG_DELTABLE, table);
    b.table(NFT_MSG_NEWTABLE, table);
    b.chain(
        table,
        "prerouting",
        Some((NF_INET_PRE_ROUTING, -100, "nat")),
    );
    b.chain(table, "output", Some((NF_INET_LOCAL_OUT, -100, "nat")));
    b.chain(
        table,
        "postrouting",
        Some((NF_INET_POST_ROUTING, 100, "nat")),
    );
    b.chain(table, "ports", None);
    b.chain(table, "forward", Some((NF_INET_FORWARD, 0, "filter")));
}

/// An internal network reaches nothing but itself, and nothing else reaches it.
fn internal_only(b: &mut Batch, table: &str, bridge: &str) {
    for (key, other) in [
        (NFT_META_IIFNAME, NFT_META_OIFNAME),
        (NFT_META_OIFNAME, NFT_META_IIFNAME),
    ] {
        let mut r = Rule::new();
        r.ifname(key, NFT_CMP_EQ, bridge)
            .ifname(other, NFT_CMP_NEQ, bridge)
            .drop();
        b.rule(table, "forward", &r);
    }
}

/// Published ports answer on the host's own addresses, from outside, from the host
/// itself (127.0.0.1 included) and from containers (hairpin).
fn jump_to_ports(b: &mut Batch, table: &str) {
    for chain in ["prerouting", "output"] {
        let mut r = Rule::new();
        r.daddr_local().jump("ports");
        b.rule(table, chain, &r);
    }
}

/// Replace berth's table with `rules`, atomically: packets see the old table or the new one.
pub fn apply(rules: &Ruleset) -> Result<(), NftError> {
    let table = rules.table;
    let mut b = Batch::new();
    begin_table(&mut b, table);
    b.chain(table, "guard", Some((NF_INET_PRE_ROUTING, -300, "filter")));
    // route_localnet (for published ports on 127.0.0.1) would otherwise let containers
    // reach the host's loopback-only services through the bridge (CVE-2020-8558): packets
    // from the bridge to 127.0.0.0/8 are dropped, as Docker drops them.
    let mut r = Rule::new();
    r.ifname(NFT_META_IIFNAME, NFT_CMP_EQ, rules.bridge)
        .ip_in(
            IPV4_DADDR,
            Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8),
        )
        .drop();
    b.rule(table, "guard", &r);
    // Other berth networks are not reached from this one (as Docker isolates its bridges),
    // and an internal network reaches nothing but itself.
    for other in rules.isolated {
        let mut r = Rule::new();
        r.ifname(NFT_META_IIFNAME, NFT_CMP_EQ, rules.bridge)
            .ip_in(IPV4_DADDR, *other)
            .drop();
        b.rule(table, "forward", &r);
    }
    if rules.internal {
        internal_only(&mut b, table, rules.bridge);
    }
    jump_to_ports(&mut b, table);
    for f in rules.forwards {
        let mut r = Rule::new();
        r.dnat(f);
        b.rule(table, "ports", &r);
    }
    if rules.masquerade {
        let mut r = Rule::new();
        r.ip_in(IPV4_SADDR, rules.subnet)
            .oifname(NFT_CMP_NEQ, rules.bridge)
            .masquerade();
        b.rule(table, "postrouting", &r);
    }
    // Connections to a published port from the host's loopback (route_localnet lets them
    // leave through the bridge) and from a container come back through the host.
    let mut r = Rule::new();
    r.ip_in(
        IPV4_SADDR,
        Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8),
    )
    .oifname(NFT_CMP_EQ, rules.bridge)
    .masquerade();
    b.rule(table, "postrouting", &r);
    let mut r = Rule::new();
    r.ip_in(IPV4_SADDR, rules.subnet)
        .oifname(NFT_CMP_EQ, rules.bridge)
        .ct_dnat()
        .masquerade();
    b.rule(table, "postrouting", &r);
    commit(b, table)
}

/// Replace berth's `ip6` table of an IPv6 network with `rules`, atomically: as [`apply`]'s
/// table without what loopback needs (IPv6 has no route_localnet: a packet from ::1 never
/// leaves the host's loopback, so ports on ::1 cannot be NAT and are refused earlier).
pub fn apply6(rules: &Ruleset6) -> Result<(), NftError> {
    let table = rules.table;
    let mut b = Batch::of(NFPROTO_IPV6);
    begin_table(&mut b, table);
    for other in rules.isolated {
        let mut r = Rule::new();
        r.ifname(NFT_META_IIFNAME, NFT_CMP_EQ, rules.bridge)
            .ip6_in(IPV6_DADDR, *other)
            .drop();
        b.rule(table, "forward", &r);
    }
    if rules.internal {
        internal_only(&mut b, table, rules.bridge);
    }
    jump_to_ports(&mut b, table);
    for f in rules.forwards {
        let mut r = Rule::new();
        r.dnat6(f);
        b.rule(table, "ports", &r);
    }
    if rules.masquerade {
        let mut r = Rule::new();
        r.ip6_in(IPV6_SADDR, rules.subnet)
            .oifname(NFT_CMP_NEQ, rules.bridge)
            .masquerade();
        b.rule(table, "postrouting", &r);
    }
    let mut r = Rule::new();
    r.ip6_in(IPV6_SADDR, rules.subnet)
        .oifname(NFT_CMP_EQ, rules.bridge)
        .ct_dnat()
        .masquerade();
    b.rule(table, "postrouting", &r);
    commit(b, table)
}

/// Delete berth's `ip6` table `table`, if it exists.
pub fn remove6(table: &str) -> Result<(), NftError> {
    let mut b = Batch::of(NFPROTO_IPV6);
    b.table(NFT_MSG_NEWTABLE, table);
    b.table(NFT_MSG_DELTABLE, table);
    commit(b, table)
}

/// Replace the published ports of berth's table (made by [`apply`]) in one transaction.
pub fn set_forwards(table: &str, forwards: &[Forward]) -> Result<(), NftError> {
    let mut b = Batch::new();
    b.flush(table, "ports");
    for f in forwards {
        let mut r = Rule::new();
        r.dnat(f);
        b.rule(table, "ports", &r);
    }
    commit(b, table)
}

/// Delete berth's table (and its chains and rules), if it exists.
pub fn remove(table: &str) -> Result<(), NftError> {
    let mut b = Batch::new();
    b.table(NFT_MSG_NEWTABLE, table);
    b.table(NFT_MSG_DELTABLE, table);
    commit(b, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel takes an IPv6 network's `ip6` table, and `nft` reads it back as meant.
    #[test]
    fn the_kernel_takes_the_ipv6_table() {
        let table = format!("berth-unit6-{}", std::process::id());
        let forwards = [Forward6 {
            host_ip: None,
            host_port: 18081,
            proto: Proto::Tcp,
            addr: "fd42:b0e7:250::2".parse().expect("address"),
            port: 80,
        }];
        let rules = Ruleset6 {
            table: &table,
            bridge: "btunit6",
            subnet: "fd42:b0e7:250::/64".parse().expect("net"),
            masquerade: true,
            internal: false,
            isolated: &["fd42:b0e7:249::/64".parse().expect("net")],
            forwards: &forwards,
        };
        apply6(&rules).expect("apply");
        let listed = std::process::Command::new("nft")
            .args(["list", "table", "ip6", &table])
            .output()
            .expect("nft");
        remove6(&table).expect("remove");
        let text = String::from_utf8_lossy(&listed.stdout);
        for needle in [
            "fib daddr type local jump ports",
            "tcp dport 18081 dnat to [fd42:b0e7:250::2]:80",
            "ip6 saddr fd42:b0e7:250::/64 oifname != \"btunit6\" masquerade",
            "ct status dnat masquerade",
            "iifname \"btunit6\" ip6 daddr fd42:b0e7:249::/64 drop",
        ] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
    }

    /// The kernel takes the table (root: the tests run as root), `nft` reads it back as
    /// meant, and it goes again.
    #[test]
    fn the_kernel_takes_the_table() {
        let table = format!("berth-unit-{}", std::process::id());
        let forwards = [
            Forward {
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 18080,
                proto: Proto::Tcp,
                addr: Ipv4Addr::new(10, 213, 250, 2),
                port: 80,
            },
            Forward {
                host_ip: None,
                host_port: 15353,
                proto: Proto::Udp,
                addr: Ipv4Addr::new(10, 213, 250, 3),
                port: 53,
            },
        ];
        let rules = Ruleset {
            table: &table,
            bridge: "btunit0",
            subnet: "10.213.250.0/24".parse().expect("net"),
            masquerade: true,
            internal: true,
            isolated: &["10.213.249.0/24".parse().expect("net")],
            forwards: &forwards,
        };
        apply(&rules).expect("apply");
        apply(&rules).expect("apply again (replaces)");
        set_forwards(&table, &forwards[1..]).expect("set forwards");
        let only_udp = std::process::Command::new("nft")
            .args(["list", "chain", "ip", &table, "ports"])
            .output()
            .expect("nft");
        let only_udp = String::from_utf8_lossy(&only_udp.stdout).into_owned();
        assert!(
            !only_udp.contains("18080") && only_udp.contains("15353"),
            "{only_udp}"
        );
        set_forwards(&table, &forwards).expect("set forwards");
        let listed = std::process::Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .expect("nft");
        remove(&table).expect("remove");
        let text = String::from_utf8_lossy(&listed.stdout);
        for needle in [
            "fib daddr type local jump ports",
            "ip daddr 127.0.0.1 tcp dport 18080 dnat to 10.213.250.2:80",
            "udp dport 15353 dnat to 10.213.250.3:53",
            "ip saddr 10.213.250.0/24 oifname != \"btunit0\" masquerade",
            "ip saddr 127.0.0.0/8 oifname \"btunit0\" masquerade",
            "ct status dnat masquerade",
            "iifname \"btunit0\" ip daddr 10.213.249.0/24 drop",
            "iifname \"btunit0\" ip daddr 127.0.0.0/8 drop",
            "iifname \"btunit0\" oifname != \"btunit0\" drop",
            "oifname \"btunit0\" iifname != \"btunit0\" drop",
        ] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
        let gone = std::process::Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .expect("nft");
        assert!(!gone.status.success());
    }
}
