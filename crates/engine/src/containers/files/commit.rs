//! `docker commit`: the container's upper directory becomes a layer (whiteouts in their
//! `.wh.` form) on top of its image's layers; the config is the container's (with the
//! `--change` lines of `import` applied), the history the parent's plus one entry.

use std::path::Path;

use serde_json::{Map, Value};

use crate::containers::{ContainerRecord, Status};
use crate::error::{Error, Result};
use crate::Engine;
use berth_image::config::{history_entry, rootfs};
use berth_image::reference::Reference;
use berth_image::{Digest, DockerOCIImage, DockerOCIImageConfig, ImageRecord};

/// What `POST /commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub tag: Option<Reference>,
    /// `-m`.
    pub comment: String,
    /// `-a`.
    pub author: String,
    /// `-c`, as `import --change`.
    pub changes: Vec<String>,
    /// Freeze the container while its files are read (Docker's default).
    pub pause: bool,
    /// The request body's container config, over the container's own.
    pub config: Option<Map<String, Value>>,
}

/// The image config's `config`: the parent's, the container's over it, the request's
/// over that, then the change lines. The container's config and the request's are JSON
/// objects of moby's container.Config: merged member by member as objects (members the image
/// config does not know stay as its extras), then read as the typed config.
fn new_config(
    parent: &DockerOCIImage,
    record: &ContainerRecord,
    opts: &CommitOptions,
) -> Result<DockerOCIImageConfig> {
    let as_object = |v: std::result::Result<Value, serde_json::Error>, what: &str| match v {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Ok(Map::new()),
        Err(e) => Err(Error::Io(format!("{what}: {e}"))),
    };
    let mut config = as_object(serde_json::to_value(parent.exec_config()), "image config")?;
    let mut own = as_object(serde_json::to_value(&record.config), "container config")?;
    own.insert("Hostname".into(), Value::String(record.hostname()));
    own.remove("StopTimeout");
    for (k, v) in own {
        if !v.is_null() {
            config.insert(k, v);
        }
    }
    for (k, v) in opts.config.iter().flatten() {
        if !v.is_null() {
            config.insert(k.clone(), v.clone());
        }
    }
    config.insert("Image".into(), Value::String(record.image.clone()));
    let mut config: DockerOCIImageConfig = serde_json::from_value(Value::Object(config))
        .map_err(|e| Error::InvalidArgument(format!("commit config: {e}")))?;
    crate::changes::apply_changes(&mut config, &opts.changes)?;
    Ok(config)
}

/// The image config for the new layer `diff_id`.
fn image_config(
    parent: &DockerOCIImage,
    record: &ContainerRecord,
    opts: &CommitOptions,
    config: DockerOCIImageConfig,
    diff_id: &Digest,
) -> DockerOCIImage {
    let created = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    let mut diff_ids = parent.rootfs.diff_ids().clone();
    diff_ids.push(diff_id.to_string());
    let mut history = parent.history_entries().to_vec();
    let created_by = record
        .config
        .entrypoint
        .iter()
        .flatten()
        .chain(record.config.cmd.iter().flatten())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    history.push(history_entry(
        &created,
        &created_by,
        &opts.author,
        &opts.comment,
        false,
    ));
    let mut extra = Map::new();
    extra.insert("container".into(), Value::String(record.id.clone()));
    extra.insert(
        "container_config".into(),
        serde_json::to_value(&record.config).unwrap_or_default(),
    );
    if !opts.comment.is_empty() {
        extra.insert("comment".into(), Value::String(opts.comment.clone()));
    }
    DockerOCIImage {
        created: Some(created),
        author: Some(opts.author.clone()).filter(|a| !a.is_empty()),
        architecture: parent.architecture.clone(),
        variant: parent.variant.clone(),
        os: parent.os.clone(),
        config: Some(config),
        rootfs: rootfs(diff_ids),
        history: Some(history),
        extra,
        ..DockerOCIImage::default()
    }
}

impl Engine {
    /// `docker commit`: the new image.
    pub fn commit_container(&self, name: &str, opts: &CommitOptions) -> Result<ImageRecord> {
        let record = self.containers.resolve(name)?;
        let image = self.images.resolve(&record.image)?;
        let parent = self.images.config(&image.record)?;
        // Checked before anything is written: a bad change line is the client's error.
        let config = new_config(&parent, &record, opts)?;
        let pause = opts.pause && record.state.status == Status::Running && !record.state.paused;
        if pause {
            self.pause_container(&record.id)?;
        }
        let upper = self.containers.dir(&record.id).join("upper");
        let committed = berth_image::layer::commit_layer(
            &self.images,
            &image.record.layers,
            |out| write_upper(&upper, super::mount_points(&record), out),
            |diff_id| image_config(&parent, &record, opts, config, diff_id),
            opts.tag.as_slice(),
        );
        if pause {
            if let Err(e) = self.unpause_container(&record.id) {
                tracing::warn!("container {}: unpause after commit: {e}", record.id);
            }
        }
        let committed = committed?;
        let id = committed.id.to_string();
        // As dockerd's commit: the image's create, its tag, then the container's commit.
        self.image_event("create", &id, &id);
        if let Some(tag) = &opts.tag {
            let name = tag.clone().with_default_tag().familiar_string();
            self.image_event("tag", &id, &name);
        }
        let tag = opts.tag.as_ref().map(|t| t.to_string()).unwrap_or_default();
        self.containers.event(
            &record.id,
            "commit",
            &[
                ("comment", opts.comment.clone()),
                ("imageID", committed.id.to_string()),
                ("imageRef", tag),
            ],
        );
        Ok(committed)
    }
}

/// The tar stream of the upper directory at `upper` in the layer's form (a container
/// that never started has none: an empty layer); its bytes of file content.
fn write_upper(
    upper: &Path,
    skip_empty: Vec<std::path::PathBuf>,
    out: &mut dyn std::io::Write,
) -> berth_image::Result<u64> {
    let out = std::io::BufWriter::with_capacity(256 * 1024, out);
    berth_image::layer_from_dir::layer_from_dir(upper, skip_empty, out)
}
