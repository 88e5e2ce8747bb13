//! The engine: what berthd does, independent of HTTP. The API crate turns requests into
//! calls here; the stores below hold the data.

mod build;
mod changes;
pub mod containers;
mod error;
pub mod events;
pub mod filters;
pub mod images;
pub mod volumes;

use std::path::{Path, PathBuf};

pub use changes::apply_changes;
pub use error::{Error, Result};

/// The kinds of failure (for the API's status codes).
pub mod error_kind {
    pub use crate::error::Kind;
}

/// The daemon's state: its images and containers.
pub struct Engine {
    pub images: std::sync::Arc<berth_image::ImageStore>,
    pub containers: std::sync::Arc<containers::Containers>,
    pub data_root: PathBuf,
    /// The shim and runtime binaries; without them containers cannot start.
    pub paths: Option<containers::Paths>,
    /// The seccomp profile (Docker's format) containers get unless they ask otherwise.
    pub default_seccomp: Option<serde_json::Value>,
    /// daemon.json's `log-opts` for the json-file driver.
    pub default_log: containers::LogLimits,
    /// daemon.json's `cgroup-parent`: where containers that name none get their cgroup.
    pub default_cgroup_parent: String,
    /// Exec instances (in memory, as Docker keeps them).
    pub execs: std::sync::Arc<containers::exec::Execs>,
    /// The Dockerfile builder (its cache and scratch space under `<data-root>/builder`).
    pub builder: berth_builder::Builder,
}

impl Engine {
    /// The event log (`docker events`).
    pub fn events(&self) -> &events::Events {
        &self.containers.events
    }

    /// Publish an event about an image: its labels are attributes too (so `--filter
    /// label=` finds it), then its name, as moby's LogImageEvent.
    pub fn image_event(&self, action: &str, id: &str, name: &str) {
        let mut e = events::Event::new("image", action, id);
        // A deleted image has none left.
        let labels = self
            .images
            .resolve(id)
            .and_then(|image| self.images.config(&image.record))
            .map(|config| config.labels())
            .unwrap_or_default();
        for (key, value) in labels {
            e = e.with(&key, value);
        }
        if !name.is_empty() {
            e = e.with("name", name);
        }
        self.events().publish(e);
    }

    /// Open (and repair) the stores under `data_root`; what lives only while berthd runs
    /// its containers (their bundles) goes under `exec_root`.
    pub fn open(
        data_root: &Path,
        exec_root: &Path,
        paths: Option<containers::Paths>,
    ) -> Result<Engine> {
        let containers = std::sync::Arc::new(containers::Containers::open(
            &data_root.join("containers"),
            &exec_root.join("containers"),
        )?);
        let images = std::sync::Arc::new(berth_image::ImageStore::open(&data_root.join("image"))?);
        // Layers a crash (or a stop) left to be unpacked after their commit.
        images.unpack_in_background(images.missing_snapshots()?);
        let builder = berth_builder::Builder::open(images.clone(), &data_root.join("builder"))
            .map_err(|e| Error::Io(format!("the builder: {e}")))?;
        Ok(Engine {
            images,
            builder,
            execs: std::sync::Arc::new(containers::exec::Execs::new(containers.clone())),
            containers,
            data_root: data_root.to_path_buf(),
            paths,
            default_seccomp: None,
            default_log: containers::LogLimits::default(),
            default_cgroup_parent: String::new(),
        })
    }
}
