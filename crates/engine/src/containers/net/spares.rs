//! The default bridge's spare places (`berth_network::pool`): a container that starts on
//! the bridge alone, with no address asked for, takes a namespace whose veth, address and
//! route were made ahead of time; the pool is refilled in the background after each start.
//! The spares' addresses are held from the IPAM as the records' are.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_network::endpoint::CONTAINER_IFNAME;
use berth_network::pool::{self, Pool, Shape, Spare};
use berth_network::{bridge, dns};

use super::{Containers, Endpoint, Join, Net, Placement};
use crate::error::{Error, Result};

/// Spares kept ready: enough for a few starts in a row while the refill catches up.
const SPARES: usize = 3;

/// How long a stopping berthd waits for spares still being made before it destroys them.
const DRAIN_WAIT: Duration = Duration::from_secs(3);

/// Where a daemon's spares are held: beside its containers' namespace files, not among
/// them (those are swept by container).
fn dir_of(netns_dir: &Path) -> PathBuf {
    let mut dir = netns_dir.as_os_str().to_owned();
    dir.push("-spares");
    PathBuf::from(dir)
}

/// Destroy a spare taken out of the pool and not used, in the background (deleting its
/// veth waits for an RCU grace period).
pub(super) fn discard(spare: Option<&Spare>) {
    if let Some(spare) = spare.cloned() {
        std::thread::spawn(move || pool::destroy(&spare));
    }
}

impl Net {
    /// This network keeps spares (the default bridge).
    pub(crate) fn with_spares(mut self) -> Net {
        self.spares = Some(Pool::new(dir_of(&self.config.netns_dir), SPARES));
        self
    }

    /// The addresses the spares hold.
    pub(super) fn reserved(&self) -> Vec<Ipv4Addr> {
        self.spares
            .as_ref()
            .map(|p| p.reserved())
            .unwrap_or_default()
    }

    /// A spare for a container's first network, made as `attach` would make its place:
    /// a new namespace, `eth0`, the default route, an address of the IPAM's choice. A
    /// spare holding an address the container asks for gives it up.
    pub(super) fn take_spare(&self, place: &Placement, join: &Join) -> Option<Spare> {
        let pool = self.spares.as_ref()?;
        if join.mac.is_some() || !join.sysctls.is_empty() {
            // A spare's MAC is Docker's for its address; its interface is up already.
            return None;
        }
        if let Some(ip) = join.ip {
            discard(pool.take_ip(ip).as_ref());
            return None;
        }
        let fits = place.join.is_none() && place.default_route && place.ifname == CONTAINER_IFNAME;
        fits.then(|| pool.take()).flatten()
    }

    /// The container's namespace and veth: the spare's, or made now.
    pub(super) fn place(
        &self,
        bridge: &bridge::Bridge,
        config: &bridge::BridgeConfig,
        ep: &Endpoint,
        place: &Placement,
        spare: Option<&Spare>,
        sysctls: &[String],
    ) -> Result<Option<dns::Sockets>> {
        match spare {
            Some(spare) => pool::claim(spare, &ep.netns)
                .map(|()| None)
                .map_err(|e| Error::Io(e.to_string())),
            None => self.attach(bridge, config, ep, place, sysctls),
        }
    }

    /// Make the missing spares in the background, with the first free addresses (the
    /// caller holds `held`, which serializes the IPAM, and its container's record holds
    /// its own address already).
    pub(super) fn refill(
        &self,
        containers: &Containers,
        bridge: &bridge::Bridge,
        config: &bridge::BridgeConfig,
    ) {
        let Some(pool) = &self.spares else {
            return;
        };
        let wanted = pool.wanted();
        if wanted == 0 {
            return;
        }
        let used = super::held_addresses(containers, &self.config.id, "", &pool.reserved());
        let ips: Vec<Ipv4Addr> = super::free_addresses(bridge, &used).take(wanted).collect();
        let shape = Shape {
            bridge: config.name.clone(),
            mtu: bridge.mtu,
            prefix: bridge.address.prefix_len(),
            gateway: bridge.gateway(),
        };
        pool.fill(shape, ips);
    }

    /// At berthd's start: spares a killed berthd left are destroyed.
    pub(crate) fn sweep_spares(&self) {
        if self.spares.is_some() {
            pool::sweep(&dir_of(&self.config.netns_dir));
        }
    }

    /// At berthd's stop: every spare is destroyed (and none made afterwards).
    pub(crate) fn drain_spares(&self) {
        if let Some(pool) = &self.spares {
            pool.drain(DRAIN_WAIT);
        }
    }
}

impl Containers {
    /// At berthd's stop: the default bridge's spares are destroyed.
    pub fn drain_network_spares(&self) {
        if let Some(networks) = self.net.get() {
            networks.drain_spares();
        }
    }
}
