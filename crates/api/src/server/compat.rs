//! Every difference between API versions in one place: a handler builds the newest shape
//! (API 1.45) from the typed models, and the functions here adapt it for an older client
//! (moby's routers do the same per route, in `adjustForAPIVersion`-style helpers).

use berth_api_types::container;

use crate::version::ApiVersion;

// ---- containers -------------------------------------------------------------------------

/// A create request from an older client: StartInterval came with API 1.44, and an older
/// client's is ignored, as dockerd ignores it (after decoding it: a wrong type is still a 400).
pub(crate) fn create_request(req: &mut container::Config, v: ApiVersion) {
    if !at_least(v, 1, 44) {
        if let Some(check) = req.healthcheck.as_mut() {
            check.start_interval = 0;
        }
    }
}

// ---- images and system ------------------------------------------------------------------

// ---- networks and volumes ---------------------------------------------------------------

/// Whether a client speaks at least `major.minor`.
pub(crate) fn at_least(v: ApiVersion, major: u32, minor: u32) -> bool {
    v >= ApiVersion(major, minor)
}
