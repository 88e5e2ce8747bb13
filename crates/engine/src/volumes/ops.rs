//! What berthd does with volumes: the `docker volume` operations with moby's rules (in use
//! means referenced by any container, running or not), and a container's volumes at its
//! create (made), its start (mounted, filled from the image) and its removal (`rm -v`,
//! `--rm`: its anonymous ones go).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use berth_image::DockerOCIImageConfig;

use super::mounts::{Plan, VolumeMount, Wanted};
use super::{Volume, VolumeRequest, Volumes, ANONYMOUS_LABEL};
use crate::containers::request::CreateBody;
use crate::containers::{ContainerRecord, Containers};
use crate::error::{Error, Result};
use crate::filters::Filters;
use crate::Engine;

/// A volume with what `system df -v` adds: its size and how many containers use it.
#[derive(Debug, Clone)]
pub struct Usage {
    pub volume: Volume,
    pub size: u64,
    pub ref_count: usize,
}

fn event(containers: &Containers, action: &str, name: &str, extra: &[(&str, &str)]) {
    let mut e = crate::events::Event::new("volume", action, name).with("driver", super::LOCAL);
    for (k, v) in extra {
        e = e.with(k, *v);
    }
    containers.events.publish(e);
}

impl Containers {
    /// The ids of the containers whose record references volume `name`.
    pub(crate) fn volume_users(&self, name: &str) -> Vec<String> {
        self.list()
            .into_iter()
            .filter(|r| r.host.volumes.iter().any(|v| v.name == name))
            .map(|r| r.id)
            .collect()
    }

    /// Container `id` is being removed with `rm -v` or `--rm`: its anonymous volumes go
    /// too, unless another container still uses them (`--volumes-from`), which is not an
    /// error (as moby).
    pub(crate) fn remove_anonymous_volumes(&self, id: &str, mounts: &[VolumeMount]) {
        let _held = self.volumes.changes();
        for m in mounts.iter().filter(|m| !m.named) {
            let others = self
                .volume_users(&m.name)
                .into_iter()
                .any(|user| user != id);
            if others || !self.volumes.exists(&m.name) {
                continue;
            }
            match self.volumes.remove_unused(&m.name) {
                Ok(_) => event(self, "destroy", &m.name, &[]),
                Err(e) => tracing::warn!("volume {}: {e}", m.name),
            }
        }
    }

    /// Container `id` has ended (or did not start): the volumes it held mounted are
    /// unmounted unless another running container holds them, and each of its volumes
    /// has an `unmount` event, as moby's.
    pub(crate) fn release_volumes(&self, id: &str) {
        self.volumes.release(id);
        let Ok(record) = self.resolve(id) else { return };
        for m in &record.host.volumes {
            event(self, "unmount", &m.name, &[("container", id)]);
        }
    }

    /// After a restart of berthd, once running containers are adopted: the mounted
    /// volumes of `running` are theirs; any other is unmounted.
    pub(crate) fn restore_volumes(&self, running: &std::collections::HashSet<String>) {
        for r in self.list().iter().filter(|r| running.contains(&r.id)) {
            for v in &r.host.volumes {
                self.volumes.adopt(&v.name, &r.id);
            }
        }
        self.volumes.unmount_unused();
    }
}

/// The image's `VOLUME`s and the request's `Config.Volumes`, by destination.
fn config_volumes(req: &CreateBody, image_config: &DockerOCIImageConfig) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = req.volumes.keys().cloned().collect();
    out.extend(image_config.oci.volumes().clone().unwrap_or_default());
    out
}

impl Engine {
    pub fn volumes(&self) -> &Volumes {
        &self.containers.volumes
    }

    /// `docker volume create`: an existing volume of that name is returned as it is.
    pub fn create_volume(&self, req: &VolumeRequest) -> Result<Volume> {
        let (volume, created) = self.volumes().create(req)?;
        if created {
            event(&self.containers, "create", &volume.name, &[]);
        }
        Ok(volume)
    }

    /// `docker volume inspect`.
    pub fn volume(&self, name: &str) -> Result<Volume> {
        self.volumes().get(name)
    }

    /// `docker volume ls` with moby's filters: `dangling`, `name` (a part of the name),
    /// `label` (`key` or `key=value`), `driver`.
    pub fn list_volumes(&self, filters: &Filters) -> Result<Vec<Volume>> {
        let dangling = filters.bool("dangling")?;
        let used: BTreeSet<String> = self
            .containers
            .list()
            .into_iter()
            .flat_map(|r| r.host.volumes.into_iter().map(|v| v.name))
            .collect();
        Ok(self
            .volumes()
            .list()
            .into_iter()
            .filter(|v| dangling.is_none_or(|d| d != used.contains(&v.name)))
            .filter(|v| filters.any_of("name", |n| v.name.contains(n)))
            .filter(|v| filters.any_of("driver", |d| d == v.driver))
            .filter(|v| filters.labels_match(v.labels()))
            .collect())
    }

    /// `docker volume rm [-f]`: a volume that any container references is a conflict (-f
    /// does not change that; it only makes a missing volume no error, as dockerd).
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let volumes = self.volumes();
        let _held = volumes.changes();
        if !volumes.exists(name) {
            if force {
                return Ok(());
            }
            return Err(Error::NotFound(format!("get {name}: no such volume")));
        }
        let users = self.containers.volume_users(name);
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        volumes.remove_unused(name)?;
        event(&self.containers, "destroy", name, &[]);
        Ok(())
    }

    /// `docker volume prune`: unused anonymous volumes, or every unused one with `all`,
    /// that match the label filters. The names removed and the bytes they held.
    pub fn prune_volumes(&self, filters: &Filters) -> Result<(Vec<String>, u64)> {
        let all = filters.bool("all")?.unwrap_or(false);
        let volumes = self.volumes();
        let _held = volumes.changes();
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for v in volumes.list() {
            if (!all && !v.anonymous())
                || !filters.labels_match(v.labels())
                || !self.containers.volume_users(&v.name).is_empty()
            {
                continue;
            }
            match volumes.remove_unused(&v.name) {
                Ok(bytes) => {
                    reclaimed += bytes;
                    event(&self.containers, "destroy", &v.name, &[]);
                    removed.push(v.name);
                }
                Err(e) => tracing::warn!("prune: volume {}: {e}", v.name),
            }
        }
        event(
            &self.containers,
            "prune",
            "",
            &[("reclaimed", &reclaimed.to_string())],
        );
        Ok((removed, reclaimed))
    }

    /// Every volume with its size and users (`system df`).
    pub fn volume_usage(&self) -> Vec<Usage> {
        let records = self.containers.list();
        self.volumes()
            .list()
            .into_iter()
            .map(|volume| Usage {
                size: self.volumes().size(&volume.name),
                ref_count: records
                    .iter()
                    .filter(|r| r.host.volumes.iter().any(|m| m.name == volume.name))
                    .count(),
                volume,
            })
            .collect()
    }

    /// The volumes and mounts a create body asks for, checked (nothing is made yet).
    /// `host_destinations`: where the `-v /host:/path` and `--tmpfs` mounts go.
    pub(crate) fn plan_volumes(
        &self,
        req: &CreateBody,
        image_config: &DockerOCIImageConfig,
        host_destinations: &[String],
    ) -> Result<Plan> {
        let host = &req.host_config;
        super::check_driver(&host.volume_driver)?;
        let mut from = Vec::new();
        for spec in &host.volumes_from {
            let (name, read_only) = super::mounts::volumes_from_spec(spec)?;
            let source = self.containers.resolve(name).map_err(|e| match e {
                Error::NotFound(m) => Error::InvalidArgument(m),
                other => other,
            })?;
            from.push(super::mounts::inherited(
                &source.host.volumes,
                &source.host.mounts,
                read_only,
            ));
        }
        super::mounts::plan(
            &host.binds,
            &host.mounts,
            &config_volumes(req, image_config),
            from,
            host_destinations,
        )
    }

    /// Make the volumes of `wanted` that do not exist (hold [`Volumes::changes`] until the
    /// container's record is saved). The mounts and the names of the volumes made now
    /// (for [`Engine::unmake_volumes`] if the create fails after).
    pub(crate) fn make_volumes(
        &self,
        wanted: &[Wanted],
    ) -> Result<(Vec<VolumeMount>, Vec<String>)> {
        let volumes = self.volumes();
        let mut mounts = Vec::new();
        let mut made = Vec::new();
        for w in wanted {
            let result = if w.existing {
                volumes.get(&w.name).map(|v| (v, false))
            } else {
                let mut labels = w.labels.clone();
                if w.name.is_empty() {
                    labels
                        .get_or_insert_with(Default::default)
                        .insert(ANONYMOUS_LABEL.to_string(), String::new());
                }
                volumes.create(&VolumeRequest {
                    name: w.name.clone(),
                    driver: String::new(),
                    options: w.options.clone(),
                    labels,
                })
            };
            let (volume, created) = match result {
                Ok(r) => r,
                Err(e) => {
                    self.unmake_volumes(&made);
                    return Err(e);
                }
            };
            if created {
                event(&self.containers, "create", &volume.name, &[]);
                made.push(volume.name.clone());
            }
            mounts.push(VolumeMount {
                source: volumes.data_path(&volume.name),
                name: volume.name,
                destination: w.destination.clone(),
                read_only: w.read_only,
                nocopy: w.nocopy,
                named: !w.name.is_empty(),
                mode: w.mode.clone(),
            });
        }
        Ok((mounts, made))
    }

    /// Undo [`Engine::make_volumes`] for a create that failed after it.
    pub(crate) fn unmake_volumes(&self, made: &[String]) {
        for name in made {
            if let Err(e) = self.volumes().remove_unused(name) {
                tracing::warn!("volume {name}: {e}");
            } else {
                event(&self.containers, "destroy", name, &[]);
            }
        }
    }

    /// At a start, the rootfs mounted: each volume mounted if it has driver options, an
    /// empty one filled from the image unless `nocopy`; their OCI mounts.
    pub(crate) fn start_volumes(
        &self,
        record: &ContainerRecord,
        rootfs: &Path,
    ) -> Result<Vec<Value>> {
        let volumes = self.volumes();
        let mut out = Vec::new();
        for m in &record.host.volumes {
            volumes.acquire(&m.name, &record.id)?;
            let data = volumes.data_path(&m.name);
            if !m.nocopy {
                super::copy_up(rootfs, &m.destination, &data)?;
            }
            event(
                &self.containers,
                "mount",
                &m.name,
                &[
                    ("container", &record.id),
                    ("destination", &m.destination),
                    ("read/write", if m.read_only { "false" } else { "true" }),
                ],
            );
            out.push(super::mounts::oci_mount(m));
        }
        Ok(out)
    }
}
