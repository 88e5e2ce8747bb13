//! Image archives: docker-archive (`docker save`) and OCI image layout tars.

mod import;
mod load;
mod save;
mod spool;

use serde::{Deserialize, Serialize};

pub use import::import;
pub use load::{load, Progress};
pub use save::save;

/// An entry of a docker-archive's `manifest.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveManifest {
    /// The config's path in the archive.
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    /// Each layer's path in the archive.
    layers: Vec<String>,
}
