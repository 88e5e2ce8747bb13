//! `docker commit`: the container's upper directory becomes a layer (whiteouts in their
//! `.wh.` form) on top of its image's layers; the config is the container's (with the
//! `--change` lines of `import` applied), the history the parent's plus one entry.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::containers::{ContainerRecord, Status};
use crate::error::{Error, Result};
use crate::Engine;
use berth_image::reference::Reference;
use berth_image::{Digest, ImageRecord};

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
/// over that, then the change lines.
fn new_config(
    parent: &Value,
    record: &ContainerRecord,
    opts: &CommitOptions,
) -> Result<Map<String, Value>> {
    let mut config = parent["config"].as_object().cloned().unwrap_or_default();
    let mut own = serde_json::to_value(&record.config)
        .map_err(|e| Error::Io(format!("container config: {e}")))?;
    if let Some(own) = own.as_object_mut() {
        own.insert("Hostname".into(), json!(record.hostname()));
        own.remove("StopTimeout");
        for (k, v) in std::mem::take(own) {
            if !v.is_null() {
                config.insert(k, v);
            }
        }
    }
    for (k, v) in opts.config.iter().flatten() {
        if !v.is_null() {
            config.insert(k.clone(), v.clone());
        }
    }
    config.insert("Image".into(), json!(record.image));
    crate::changes::apply_changes(&mut config, &opts.changes)?;
    Ok(config)
}

/// The image config for the new layer `diff_id`.
fn image_config(
    parent: &Value,
    record: &ContainerRecord,
    opts: &CommitOptions,
    config: Map<String, Value>,
    diff_id: &Digest,
) -> Vec<u8> {
    let created = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    let mut diff_ids = parent["rootfs"]["diff_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    diff_ids.push(json!(diff_id));
    let mut history = parent["history"].as_array().cloned().unwrap_or_default();
    let created_by = record
        .config
        .entrypoint
        .iter()
        .flatten()
        .chain(record.config.cmd.iter().flatten())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let mut entry = json!({"created": created, "created_by": created_by});
    if !opts.author.is_empty() {
        entry["author"] = json!(opts.author);
    }
    if !opts.comment.is_empty() {
        entry["comment"] = json!(opts.comment);
    }
    history.push(entry);
    let mut v = json!({
        "architecture": parent["architecture"],
        "os": parent["os"],
        "created": created,
        "container": record.id,
        "container_config": serde_json::to_value(&record.config).unwrap_or_default(),
        "config": Value::Object(config),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    if !parent["variant"].is_null() {
        v["variant"] = parent["variant"].clone();
    }
    if !opts.author.is_empty() {
        v["author"] = json!(opts.author);
    }
    if !opts.comment.is_empty() {
        v["comment"] = json!(opts.comment);
    }
    serde_json::to_vec(&v).unwrap_or_default()
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
/// that never started has none: an empty layer).
fn write_upper(
    upper: &Path,
    skip_empty: Vec<std::path::PathBuf>,
    out: &mut dyn std::io::Write,
) -> berth_image::Result<()> {
    let out = std::io::BufWriter::with_capacity(256 * 1024, out);
    berth_image::layer_from_dir::layer_from_dir(upper, skip_empty, out).map(drop)
}
