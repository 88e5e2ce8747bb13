//! moby's api/types/container: what a client sends to create and update a container, and
//! what berthd answers about containers.

// The create and update requests (config.rs, with mount.rs for HostConfig.Mounts) and the
// rules they are decoded by (decode.rs, unsupported.rs).
mod config;
pub mod decode;
mod mount;
mod unsupported;

pub use config::*;
pub use decode::DecodeError;
pub use mount::*;

// Responses (GET /containers/json, inspect, stats, and the smaller ones). The network
// endpoint and port binding types stay under `inspect::` (the request models have theirs).
pub mod inspect;
pub mod responses;
pub mod stats;
pub mod summary;

pub use inspect::{Health, HealthcheckResult, InspectResponse, MountPoint, NetworkSettings, State};
pub use responses::{
    ChangeType, CommitResponse, CreateResponse, FilesystemChange, PathStat, PruneReport,
    TopResponse, WaitExitError, WaitResponse,
};
pub use stats::StatsResponse;
pub use summary::Summary;
