//! (filled in by the typed-models work)

// Responses (GET /containers/json, inspect, stats, and the smaller ones). The network
// endpoint and port binding types stay under `inspect::` (the request models have theirs).
pub mod inspect;
pub mod responses;
pub mod stats;
pub mod summary;

pub use inspect::{
    GraphDriverData, Health, HealthcheckResult, InspectResponse, MountPoint, NetworkSettings, State,
};
pub use responses::{
    ChangeType, CommitResponse, CreateResponse, FilesystemChange, PathStat, PruneReport,
    TopResponse, WaitExitError, WaitResponse,
};
pub use stats::StatsResponse;
pub use summary::Summary;
