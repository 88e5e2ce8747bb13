//! Every difference between API versions in one place: a handler builds the newest shape
//! (API 1.45) from the typed models, and the functions here adapt it for an older client
//! (moby's routers do the same per route, in `adjustForAPIVersion`-style helpers).

use serde_json::Value;

use crate::version::ApiVersion;

// ---- containers -------------------------------------------------------------------------

/// A create body from an older client: StartInterval came with API 1.44, and an older
/// client's is ignored, as dockerd ignores it.
pub(crate) fn create_request(body: &mut Value, v: ApiVersion) {
    if !at_least(v, 1, 44) {
        if let Some(check) = body.get_mut("Healthcheck").and_then(Value::as_object_mut) {
            check.remove("StartInterval");
        }
    }
}

// ---- images and system ------------------------------------------------------------------

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
