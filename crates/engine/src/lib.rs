//! The engine: what berthd does, independent of HTTP. The API crate turns requests into
//! calls here; the stores below hold the data.

mod changes;
mod error;
pub mod filters;
pub mod images;

use std::path::{Path, PathBuf};

pub use changes::apply_changes;
pub use error::{Error, Result};

/// The kinds of failure (for the API's status codes).
pub mod error_kind {
    pub use crate::error::Kind;
}

/// The daemon's state: today, its images.
pub struct Engine {
    pub images: berth_image::ImageStore,
    pub data_root: PathBuf,
}

impl Engine {
    /// Open (and repair) the stores under `data_root`.
    pub fn open(data_root: &Path) -> Result<Engine> {
        Ok(Engine {
            images: berth_image::ImageStore::open(&data_root.join("image"))?,
            data_root: data_root.to_path_buf(),
        })
    }
}
