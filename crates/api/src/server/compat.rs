//! Every difference between API versions in one place: a handler builds the newest shape
//! (API 1.47) from the typed models, and the functions here adapt it for an older client
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
