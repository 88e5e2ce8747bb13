//! The bridge of berth's default network: made, or found and set right, over rtnetlink.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use netlink_packet_route::link::InfoKind;

use crate::rtnl::{self, Rtnl};
use crate::{Error, Result};

/// How the bridge is to be (daemon.json's `bridge`, `bip`, `fixed-cidr`, `mtu`,
/// `default-address-pools`).
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    pub name: String,
    /// The bridge's address with its prefix (`bip`): the containers' gateway and subnet.
    pub bip: Option<Ipv4Net>,
    /// Where containers' addresses come from (within the subnet); all of it when None.
    pub fixed_cidr: Option<Ipv4Net>,
    pub mtu: u32,
    /// Where a subnet is chosen from when there is no `bip` and the bridge has no address:
    /// (base, size of each subnet).
    pub pools: Vec<(Ipv4Net, u8)>,
}

/// dockerd's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<(Ipv4Net, u8)> {
    vec![
        (Ipv4Net::new_assert(Ipv4Addr::new(172, 17, 0, 0), 16), 16),
        (Ipv4Net::new_assert(Ipv4Addr::new(172, 18, 0, 0), 15), 16),
        (Ipv4Net::new_assert(Ipv4Addr::new(172, 20, 0, 0), 14), 16),
        (Ipv4Net::new_assert(Ipv4Addr::new(172, 24, 0, 0), 13), 16),
        (Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16), 20),
    ]
}

/// The bridge as it is once set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bridge {
    pub index: u32,
    /// The gateway (the bridge's own address) with the subnet's prefix.
    pub address: Ipv4Net,
    /// Where containers' addresses are taken from.
    pub range: Ipv4Net,
    pub mtu: u32,
}

impl Bridge {
    pub fn gateway(&self) -> Ipv4Addr {
        self.address.addr()
    }
    pub fn subnet(&self) -> Ipv4Net {
        self.address.trunc()
    }
}

fn fail<'a>(operation: &'static str, name: &'a str) -> impl FnOnce(nix::Error) -> Error + 'a {
    move |source| Error::Link {
        operation,
        name: name.to_string(),
        source,
    }
}

/// The first subnet of the pools that no route of the host overlaps.
fn free_subnet(pools: &[(Ipv4Net, u8)], routes: &[Ipv4Net]) -> Option<Ipv4Net> {
    pools.iter().find_map(|(base, size)| {
        base.subnets(*size).ok()?.find(|candidate| {
            !routes
                .iter()
                .any(|r| r.contains(&candidate.network()) || candidate.contains(&r.network()))
        })
    })
}

/// Give bridge `name` (made by [`ensure`]) its IPv6 gateway address (an IPv6 network's),
/// unless it has it.
pub fn ensure_ipv6(name: &str, address: ipnet::Ipv6Net) -> Result<()> {
    let rtnl = Rtnl::open().map_err(fail("open rtnetlink for", name))?;
    let index = rtnl
        .link(name)
        .map_err(fail("look up", name))?
        .ok_or_else(|| Error::Config(format!("the bridge {name} does not exist")))?
        .header
        .index;
    let have = rtnl
        .ipv6_addresses(index)
        .map_err(fail("read the IPv6 addresses of", name))?;
    if !have.contains(&address) {
        rtnl.add_ipv6(index, address)
            .map_err(fail("add the IPv6 address of", name))?;
    }
    Ok(())
}

/// Make the bridge as `config` says, or set an existing one right (reused when its address
/// fits): up, its MTU, route_localnet (so that published ports answer on 127.0.0.1).
pub fn ensure(config: &BridgeConfig) -> Result<Bridge> {
    let name = config.name.as_str();
    let rtnl = Rtnl::open().map_err(fail("open rtnetlink for", name))?;
    let existing = rtnl.link(name).map_err(fail("look up", name))?;
    let link = match existing {
        Some(link) => {
            if rtnl::kind(&link) != Some(&InfoKind::Bridge) {
                return Err(Error::Config(format!("{name} exists and is not a bridge")));
            }
            link
        }
        None => {
            rtnl.create_bridge(name, config.mtu)
                .map_err(fail("create the bridge", name))?;
            rtnl.link(name)
                .map_err(fail("look up", name))?
                .ok_or_else(|| Error::Config(format!("the bridge {name} vanished")))?
        }
    };
    let index = link.header.index;
    let have = rtnl
        .ipv4_addresses(index)
        .map_err(fail("read the addresses of", name))?;
    let address = match (config.bip, have.first()) {
        (Some(bip), _) => {
            if !have.contains(&bip) {
                rtnl.add_ipv4(index, bip)
                    .map_err(fail("add the address of", name))?;
            }
            bip
        }
        (None, Some(a)) => *a,
        (None, None) => {
            let routes = rtnl
                .ipv4_routes()
                .map_err(fail("read the routes for", name))?;
            let subnet = free_subnet(&config.pools, &routes).ok_or_else(|| {
                Error::Config(
                    "no free subnet in the default address pools for the bridge (set bip)".into(),
                )
            })?;
            let gateway = subnet.hosts().next().unwrap_or(subnet.network());
            let address = Ipv4Net::new(gateway, subnet.prefix_len())
                .map_err(|e| Error::Config(e.to_string()))?;
            rtnl.add_ipv4(index, address)
                .map_err(fail("add the address of", name))?;
            address
        }
    };
    let range = match config.fixed_cidr {
        Some(r) if address.contains(&r.network()) && r.prefix_len() >= address.prefix_len() => r,
        Some(r) => {
            return Err(Error::Config(format!(
                "fixed-cidr {r} is not within the bridge's subnet {}",
                address.trunc()
            )))
        }
        None => address.trunc(),
    };
    if rtnl::mtu(&link) != Some(config.mtu) {
        rtnl.set_mtu(index, config.mtu)
            .map_err(fail("set the MTU of", name))?;
    }
    rtnl.set_up(index).map_err(fail("bring up", name))?;
    write_sysctl(&format!("net/ipv4/conf/{name}/route_localnet"), "1")?;
    Ok(Bridge {
        index,
        address,
        range,
        mtu: config.mtu,
    })
}

/// Whether a link named `name` exists (a bridge made by an earlier run, to set right).
pub fn ensure_exists(name: &str) -> bool {
    Rtnl::open()
        .and_then(|r| r.link(name))
        .is_ok_and(|l| l.is_some())
}

/// Whether a route of the host overlaps `subnet` (it is in use on this machine).
pub fn routed(subnet: &Ipv4Net) -> bool {
    Rtnl::open()
        .and_then(|r| r.ipv4_routes())
        .map(|routes| {
            routes
                .iter()
                .any(|r| r.contains(&subnet.network()) || subnet.contains(&r.network()))
        })
        .unwrap_or(false)
}

/// Delete the bridge (tests, and `bridge: none` after a bridge was in use, are the callers).
pub fn remove(name: &str) -> Result<bool> {
    let rtnl = Rtnl::open().map_err(fail("open rtnetlink for", name))?;
    rtnl.delete_link(name).map_err(fail("delete", name))
}

/// Write a sysctl under /proc/sys (the bridge's own settings, and ip_forward as dockerd).
pub fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let path = std::path::Path::new("/proc/sys").join(key);
    std::fs::write(&path, value).map_err(|source| Error::Sysctl { path, source })
}

/// `ip-forward` with an IPv6 network: dockerd turns IPv6 forwarding on (`all` and
/// `default`) when one is made; so does berthd, only where it is off.
pub fn enable_forwarding6() -> Result<()> {
    for key in [
        "net/ipv6/conf/default/forwarding",
        "net/ipv6/conf/all/forwarding",
    ] {
        let current = std::fs::read_to_string(std::path::Path::new("/proc/sys").join(key))
            .unwrap_or_default();
        if current.trim() != "1" {
            write_sysctl(key, "1")?;
        }
    }
    Ok(())
}

/// `ip-forward`: dockerd turns IPv4 forwarding on when it starts; so does berthd, only if
/// it is off (the host's setting is left as it is otherwise).
pub fn enable_forwarding() -> Result<()> {
    let key = "net/ipv4/ip_forward";
    let current =
        std::fs::read_to_string(std::path::Path::new("/proc/sys").join(key)).unwrap_or_default();
    if current.trim() != "1" {
        write_sysctl(key, "1")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_pool_subnet_no_route_overlaps() {
        let routes: Vec<Ipv4Net> = vec!["172.17.0.0/16".parse().expect("net")];
        assert_eq!(
            free_subnet(&default_pools(), &routes),
            Some("172.18.0.0/16".parse().expect("net"))
        );
        let wide: Vec<Ipv4Net> = vec!["172.16.0.0/12".parse().expect("net")];
        assert_eq!(
            free_subnet(&default_pools(), &wide),
            Some("192.168.0.0/20".parse().expect("net"))
        );
    }
}
