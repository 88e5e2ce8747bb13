//! Every difference between API versions in one place: a handler builds the newest shape
//! (API 1.50) from the typed models, and the functions here adapt it for an older client
//! (moby's routers do the same per route, in `adjustForAPIVersion`-style helpers).

use berth_api_types::container;
use serde_json::Value;

use crate::version::ApiVersion;

// ---- containers -------------------------------------------------------------------------

/// A create request from an older client: Annotations came with API 1.43, StartInterval
/// with 1.44, and an older client's are ignored, as dockerd ignores them (after decoding
/// them: a wrong type is still a 400).
pub(crate) fn create_request(req: &mut container::Config, v: ApiVersion) {
    // HostConfig.Annotations came with API 1.43.
    if !at_least(v, 1, 43) {
        req.host_config.annotations.clear();
    }
    if !at_least(v, 1, 44) {
        if let Some(check) = req.healthcheck.as_mut() {
            check.start_interval = 0;
        }
    }
}

/// A create body's top-level sysctls that name an interface (`net.X.Y.eth0.Z`): moby's
/// handleSysctlBC moves eth0's to its network's endpoint as interface sysctls (set when
/// the interface is made), with a warning, up to API 1.47; from 1.48 on they must come as
/// the endpoint's driver option. Another interface's is refused at any version (which
/// network's it is cannot be told). `none` gives no interface: its are left to the runtime.
pub(crate) fn migrate_interface_sysctls(
    req: &mut container::Config,
    v: ApiVersion,
) -> Result<Option<String>, String> {
    const KEY: &str = berth_engine::containers::net::ENDPOINT_SYSCTLS;
    let mode = match req.host_config.network_mode.as_str() {
        "" => "default",
        m => m,
    };
    if matches!(mode, "host" | "none") || mode.starts_with("container:") {
        return Ok(None);
    }
    let mut moved = Vec::new();
    let mut migrated = Vec::new();
    for (key, value) in &req.host_config.sysctls {
        let parts: Vec<&str> = key.splitn(5, '.').collect();
        if parts.len() != 5 || parts[0] != "net" || !parts[3].starts_with("eth") {
            continue;
        }
        if at_least(v, 1, 48) {
            return Err(format!(
                "interface specific sysctl setting {key:?} must be supplied using driver option '{KEY}'"
            ));
        }
        if parts[3] != "eth0" {
            return Err(format!(
                "unable to determine network endpoint for sysctl {key}, use driver option '{KEY}' to set per-interface sysctls"
            ));
        }
        moved.push(key.clone());
        migrated.push(format!(
            "net.{}.{}.IFNAME.{}={value}",
            parts[1], parts[2], parts[4]
        ));
    }
    if moved.is_empty() {
        return Ok(None);
    }
    let endpoints = &mut req.networking_config.endpoints_config;
    let name = if endpoints.is_empty() || endpoints.contains_key(mode) {
        mode.to_string()
    } else if mode == "default" && endpoints.contains_key("bridge") {
        "bridge".to_string()
    } else if !at_least(v, 1, 44) {
        // One entry at the most before 1.44: the network's, whatever its name.
        endpoints.keys().next().cloned().unwrap_or_default()
    } else {
        return Err(
            "HostConfig.NetworkMode must match the identity of a network in NetworkSettings.Networks"
                .into(),
        );
    };
    let mut value = migrated.join(",");
    let warning = format!(
        "Migrated sysctl {:?} to DriverOpts{{{KEY:?}:{value:?}}}.",
        moved.join(",")
    );
    let opts = endpoints
        .entry(name)
        .or_default()
        .driver_opts
        .get_or_insert_with(Default::default);
    // The endpoint's own come last: they win.
    if let Some(own) = opts.get(KEY) {
        value = format!("{value},{own}");
    }
    opts.insert(KEY.to_string(), value);
    for key in moved {
        req.host_config.sysctls.remove(&key);
    }
    Ok(Some(warning))
}

/// A create body's container-wide VolumeDriver with `--mount` volumes that name no driver:
/// from API 1.48 on, dockerd (rather than the CLI) warns that it does not apply to them.
pub(crate) fn volume_driver_warning(req: &container::Config, v: ApiVersion) -> Option<String> {
    let h = &req.host_config;
    let unnamed = h.mounts.iter().any(|m| {
        m.kind == "volume"
            && m.volume_options
                .as_ref()
                .and_then(|o| o.driver_config.as_ref())
                .is_none_or(|d| d.name.is_empty())
    });
    (at_least(v, 1, 48) && !h.volume_driver.is_empty() && unnamed).then(|| {
        "WARNING: the container-wide volume-driver configuration is ignored for volumes specified via 'mount'. Use '--mount type=volume,volume-driver=...' instead".to_string()
    })
}

/// Inspect for a client before API 1.45: on each user-defined network, Aliases also hold
/// the container's short id and its hostname, deduplicated (dockerd 26 no longer stores
/// them as aliases, and adds them back for older clients only).
pub(crate) fn inspect_response(resp: &mut container::InspectResponse, v: ApiVersion) {
    if at_least(v, 1, 45) {
        return;
    }
    let short_id: String = resp.id.chars().take(12).collect();
    let hostname = resp.config.hostname.clone();
    for (network, endpoint) in &mut resp.network_settings.networks {
        if !user_defined(network) {
            continue;
        }
        let given = endpoint.aliases.take().unwrap_or_default();
        let mut aliases: Vec<String> = Vec::new();
        for alias in given
            .into_iter()
            .chain([short_id.clone(), hostname.clone()])
        {
            if !aliases.contains(&alias) {
                aliases.push(alias);
            }
        }
        endpoint.aliases = Some(aliases);
    }
}

/// moby's NetworkMode.IsUserDefined: not default, bridge, host, none or container:ID.
fn user_defined(network: &str) -> bool {
    !matches!(network, "default" | "bridge" | "host" | "none") && !network.starts_with("container:")
}

/// A container in `GET /containers/json`: its annotations are listed from API 1.46 on.
pub(crate) fn container_summary(s: &mut container::Summary, v: ApiVersion) {
    if !at_least(v, 1, 46) {
        s.host_config.annotations.clear();
    }
}

/// Stats' `one-shot` came with API 1.41; an older client's is ignored, as dockerd does.
pub(crate) fn stats_one_shot(asked: bool, v: ApiVersion) -> bool {
    asked && at_least(v, 1, 41)
}

// ---- images and system ------------------------------------------------------------------

/// An image summary (GET /images/json, GET /system/df) for an older client: VirtualSize,
/// the same as Size, until API 1.44 (moby's image and system routers).
pub(crate) fn image_summary(s: &mut berth_api_types::image::Summary, v: ApiVersion) {
    if !at_least(v, 1, 44) {
        s.virtual_size = Some(s.size);
    }
}

/// Image inspect for an older client: VirtualSize until API 1.44; Container (berth keeps
/// none: empty) and the image config's `container_config` until API 1.45, as moby's
/// getImagesByName.
pub(crate) fn image_inspect(
    i: &mut berth_api_types::image::InspectResponse,
    v: ApiVersion,
    container_config: impl FnOnce() -> Value,
) {
    if !at_least(v, 1, 44) {
        i.virtual_size = Some(i.size);
    }
    if !at_least(v, 1, 45) {
        i.container = Some(String::new());
        i.container_config = Some(container_config());
    }
    image_config_members(&mut i.config, v);
}

/// The members of container.Config that moby's image inspect always wrote up to API 1.49
/// (its Config was a container.Config), with their zero values.
const CONFIG_MEMBERS_1_49: [(&str, Value); 17] = [
    ("AttachStderr", Value::Bool(false)),
    ("AttachStdin", Value::Bool(false)),
    ("AttachStdout", Value::Bool(false)),
    ("Cmd", Value::Null),
    ("Domainname", Value::String(String::new())),
    ("Entrypoint", Value::Null),
    ("Env", Value::Null),
    ("Hostname", Value::String(String::new())),
    ("Image", Value::String(String::new())),
    ("Labels", Value::Null),
    ("OnBuild", Value::Null),
    ("OpenStdin", Value::Bool(false)),
    ("StdinOnce", Value::Bool(false)),
    ("Tty", Value::Bool(false)),
    ("User", Value::String(String::new())),
    ("Volumes", Value::Null),
    ("WorkingDir", Value::String(String::new())),
];

/// Those API 1.50 dropped (deprecated in 1.46: they were never the image's).
const CONFIG_MEMBERS_DROPPED_1_50: [&str; 9] = [
    "AttachStderr",
    "AttachStdin",
    "AttachStdout",
    "Domainname",
    "Hostname",
    "Image",
    "OpenStdin",
    "StdinOnce",
    "Tty",
];

/// An image inspect's Config for the client: up to API 1.49 every container.Config member
/// is there; from 1.50 the deprecated ones go and the rest are still always written
/// (moby's legacyConfigFields).
fn image_config_members(config: &mut Value, v: ApiVersion) {
    let Some(members) = config.as_object_mut() else {
        return;
    };
    let newer = at_least(v, 1, 50);
    if newer {
        for name in CONFIG_MEMBERS_DROPPED_1_50 {
            members.remove(name);
        }
    }
    for (name, zero) in CONFIG_MEMBERS_1_49 {
        if !(newer && CONFIG_MEMBERS_DROPPED_1_50.contains(&name)) {
            members.entry(name).or_insert(zero);
        }
    }
}

/// Push's `platform` (JSON) came with API 1.46; an older client's is ignored unparsed, as
/// moby's image router ignores it.
pub(crate) fn push_platform(v: ApiVersion) -> bool {
    at_least(v, 1, 46)
}

/// An event for this client: an image's `create` (a commit, a build step) came with API
/// 1.46, and an older client does not get it, as moby's events route.
pub(crate) fn event_shown(kind: &str, action: &str, v: ApiVersion) -> bool {
    at_least(v, 1, 46) || !(kind == "image" && action == "create")
}

/// Build prune's `reserved-space` (keep-storage's new name), `max-used-space` and
/// `min-free-space` came with API 1.48; before, only `keep-storage` is read, as moby's
/// build router.
pub(crate) fn build_prune_limits(v: ApiVersion) -> bool {
    at_least(v, 1, 48)
}

/// History's, save's and load's `platform` (JSON; save and load may repeat it) came with
/// API 1.48; an older client's is ignored.
pub(crate) fn image_platform(v: ApiVersion) -> bool {
    at_least(v, 1, 48)
}

/// `GET /info` for the client's version: BridgeNfIptables and BridgeNfIp6tables always
/// false from API 1.48 (deprecated: dockerd loads br_netfilter when it needs it) and
/// omitted from 1.50; FirewallBackend from 1.49.
pub(crate) fn info(i: &mut berth_api_types::system::Info, v: ApiVersion) {
    if at_least(v, 1, 50) {
        i.bridge_nf_iptables = None;
        i.bridge_nf_ip6tables = None;
    } else if at_least(v, 1, 48) {
        i.bridge_nf_iptables = Some(false);
        i.bridge_nf_ip6tables = Some(false);
    }
    if !at_least(v, 1, 49) {
        i.firewall_backend = None;
    }
}

/// Image inspect's `platform` (JSON) came with API 1.49.
pub(crate) fn inspect_platform(v: ApiVersion) -> bool {
    at_least(v, 1, 49)
}

/// Image delete's `platforms` (JSON, repeated) came with API 1.50.
pub(crate) fn delete_platforms(v: ApiVersion) -> bool {
    at_least(v, 1, 50)
}

// ---- networks and volumes ---------------------------------------------------------------

/// `GET /networks`: before API 1.28 each network came with its containers (dockerd's
/// "detailed" list); from 1.28 on a list's entries have no Containers member.
pub(crate) fn network_list(list: &mut [berth_api_types::network::NetworkResource], v: ApiVersion) {
    if at_least(v, 1, 28) {
        for n in list {
            n.containers = None;
        }
    }
}

/// A network create body: EnableIPv4 came with API 1.48, and an older client's is
/// ignored, as moby's network router ignores it.
pub(crate) fn network_create_request(
    req: &mut berth_api_types::network::CreateRequest,
    v: ApiVersion,
) {
    if !at_least(v, 1, 48) {
        req.enable_ipv4 = None;
    }
}

/// A volume create body: cluster volumes came with API 1.42, and an older client's
/// ClusterVolumeSpec is ignored (the volume is a local one), as dockerd ignores it.
pub(crate) fn volume_create_request(
    req: &mut berth_api_types::volume::CreateOptions,
    v: ApiVersion,
) {
    if !at_least(v, 1, 42) {
        req.cluster_volume_spec = None;
    }
}

/// Whether a client speaks at least `major.minor`.
pub(crate) fn at_least(v: ApiVersion, major: u32, minor: u32) -> bool {
    v >= ApiVersion(major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> container::Config {
        container::decode::create_request(&v).expect("body")
    }

    #[test]
    fn an_eth0_sysctl_moves_to_its_endpoint_and_others_are_refused() {
        let sysctls = json!({"net.ipv4.conf.eth0.log_martians": "1", "kernel.shmmax": "1"});
        let mut req = body(
            json!({"HostConfig": {"NetworkMode": "net1", "Sysctls": sysctls},
            "NetworkingConfig": {"EndpointsConfig": {"net1": {"DriverOpts":
                {"com.docker.network.endpoint.sysctls": "net.ipv4.conf.IFNAME.forwarding=0"}}}}}),
        );
        let warning = migrate_interface_sysctls(&mut req, ApiVersion(1, 47)).expect("moved");
        assert!(warning.is_some_and(|w| w.starts_with("Migrated sysctl")));
        assert_eq!(
            req.networking_config.endpoints_config["net1"].driver_opts,
            Some(
                [(
                    "com.docker.network.endpoint.sysctls".to_string(),
                    "net.ipv4.conf.IFNAME.log_martians=1,net.ipv4.conf.IFNAME.forwarding=0"
                        .to_string()
                )]
                .into()
            )
        );
        assert_eq!(
            req.host_config.sysctls.keys().collect::<Vec<_>>(),
            ["kernel.shmmax"]
        );

        let sysctls = json!({"net.ipv4.conf.eth0.log_martians": "1"});
        let mut newer = body(json!({"HostConfig": {"NetworkMode": "net1", "Sysctls": sysctls}}));
        assert!(migrate_interface_sysctls(&mut newer, ApiVersion(1, 48))
            .is_err_and(|e| e.contains("must be supplied using driver option")));
        let mut elsewhere = body(
            json!({"HostConfig": {"NetworkMode": "net1", "Sysctls": sysctls},
            "NetworkingConfig": {"EndpointsConfig": {"net2": {}}}}),
        );
        assert!(migrate_interface_sysctls(&mut elsewhere, ApiVersion(1, 47))
            .is_err_and(|e| e.contains("must match the identity of a network")));
        let mut none = body(json!({"HostConfig": {"NetworkMode": "none", "Sysctls": sysctls}}));
        assert_eq!(
            migrate_interface_sysctls(&mut none, ApiVersion(1, 47)),
            Ok(None)
        );
        assert_eq!(none.host_config.sysctls.len(), 1);
    }
}
