//! Images as `docker images`, `import`, `rmi`, `prune` and `system df` see them.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use berth_image::config::{history_entry, rootfs};
use berth_image::{
    reference::familiar, Digest, DockerOCIImage, DockerOCIImageConfig, Image, ImageRecord,
    Reference, Removal,
};

use crate::error::{Error, Result};
use crate::filters::{glob_match, Filters};
use crate::Engine;

/// An image with the fields lists and filters need.
#[derive(Debug, Clone)]
pub struct ImageView {
    pub image: Image,
    pub created: Option<String>,
    /// Unix seconds (0 when the config has no valid `created`).
    pub created_unix: i64,
    pub labels: BTreeMap<String, String>,
}

pub const LIST_FILTERS: &[&str] = &["dangling", "label", "before", "since", "reference"];
pub const PRUNE_FILTERS: &[&str] = &["dangling", "label", "label!", "until"];

pub fn unix_time(rfc3339: Option<&str>) -> i64 {
    rfc3339
        .and_then(|s| humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

impl Engine {
    pub fn image_view(&self, image: Image) -> Result<ImageView> {
        let (created, labels) = self.images.summary_fields(&image.record)?;
        Ok(ImageView {
            created_unix: unix_time(created.as_deref()),
            created,
            labels,
            image,
        })
    }

    /// The image `name`, which must be of `platform` when one is asked (moby's GetImage
    /// with a platform: a 404 that names both platforms).
    pub fn image_of_platform(
        &self,
        name: &str,
        platform: Option<&berth_image::Platform>,
    ) -> Result<Image> {
        let image = self.images.resolve(name)?;
        if let Some(wanted) = platform {
            let actual = self.images.config(&image.record)?.platform();
            if !wanted.served_by(&actual) {
                let shown = Reference::parse(name)
                    .map_or_else(|_| name.to_string(), |r| r.familiar_string());
                return Err(Error::NotFound(format!(
                    "image with reference {shown} was found but its platform ({actual}) does not match the specified platform ({wanted})"
                )));
            }
        }
        Ok(image)
    }

    /// `docker images` with its filters, newest first.
    pub fn list_images(&self, filters: &Filters) -> Result<Vec<ImageView>> {
        let dangling = filters.bool("dangling")?;
        let bound = |key: &str| -> Result<Option<i64>> {
            match filters.get(key) {
                [] => Ok(None),
                [name] => Ok(Some(
                    self.image_view(self.images.resolve(name)?)?.created_unix,
                )),
                _ => Err(Error::InvalidArgument(format!(
                    "filter '{key}' takes one image"
                ))),
            }
        };
        let (before, since) = (bound("before")?, bound("since")?);
        let mut out = Vec::new();
        for image in self.images.list()? {
            let view = self.image_view(image)?;
            if dangling.is_some_and(|d| d != view.image.tags.is_empty()) {
                continue;
            }
            if !filters.labels_match(&view.labels) {
                continue;
            }
            if before.is_some_and(|b| view.created_unix >= b)
                || since.is_some_and(|s| view.created_unix <= s)
            {
                continue;
            }
            let patterns = filters.get("reference");
            let mut view = view;
            if !patterns.is_empty() {
                // Docker lists only the tags that matched.
                view.image.tags.retain(|t| reference_matches(patterns, t));
                if view.image.tags.is_empty() {
                    continue;
                }
            }
            out.push(view);
        }
        out.sort_by(|a, b| {
            b.created_unix
                .cmp(&a.created_unix)
                .then(a.image.record.id.cmp(&b.image.record.id))
        });
        Ok(out)
    }

    /// Import a rootfs tarball as an image, with `--change` lines and a commit message.
    pub fn import_image(
        &self,
        input: impl Read,
        tag: Option<Reference>,
        changes: &[String],
        message: &str,
        platform: &berth_image::Platform,
    ) -> Result<ImageRecord> {
        let mut config = DockerOCIImageConfig::default();
        crate::changes::apply_changes(&mut config, changes)?;
        let created = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let comment = if message.is_empty() {
            "Imported from -"
        } else {
            message
        };
        let make = |diff_id: &Digest| DockerOCIImage {
            created: Some(created.clone()),
            architecture: platform.architecture.as_str().into(),
            variant: platform.variant.clone(),
            os: platform.os.as_str().into(),
            config: Some(config),
            rootfs: rootfs(vec![diff_id.to_string()]),
            history: Some(vec![history_entry(&created, "", "", comment, false)]),
            ..DockerOCIImage::default()
        };
        let tags: Vec<Reference> = tag.into_iter().collect();
        Ok(berth_image::archive::import(
            &self.images,
            input,
            make,
            &tags,
        )?)
    }

    /// Image ids that containers use.
    fn images_in_use(&self) -> HashSet<String> {
        self.containers
            .list()
            .into_iter()
            .map(|c| c.image)
            .collect()
    }

    /// `docker rmi`. An image a container uses is not deleted: without `force` that is a
    /// conflict (when the name given is its last); with it, only its names go. `prune`: its
    /// untagged build parents go with it (`--no-prune` keeps them).
    pub fn remove_image(&self, name: &str, force: bool, prune: bool) -> Result<Vec<Removal>> {
        let image = self.images.resolve(name)?;
        let user = self
            .containers
            .list()
            .into_iter()
            .find(|c| c.image == image.record.id.as_str());
        let Some(user) = user else {
            let mut removed = self.images.remove(name, force)?;
            if prune {
                let parents = self.remove_build_parents(&removed);
                removed.extend(parents);
            }
            return Ok(removed);
        };
        let by_tag = Reference::parse(name)
            .ok()
            .map(Reference::with_default_tag)
            .and_then(|r| r.tagged())
            .filter(|t| image.tags.contains(t));
        let last_name = by_tag.is_none() || image.tags.len() == 1;
        if last_name && !force {
            return Err(Error::Conflict(format!(
                "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                &user.id[..12],
                image.record.id.short()
            )));
        }
        Ok(self.images.remove_keeping(name, true, true)?)
    }

    /// `docker image prune` (`dangling=false` removes every unused image).
    pub fn prune_images(&self, filters: &Filters) -> Result<(Vec<Removal>, u64)> {
        let all = filters.bool("dangling")? == Some(false);
        let until = match filters.get("until") {
            [] => None,
            [t] => Some(parse_until(t)?),
            _ => {
                return Err(Error::InvalidArgument(
                    "filter 'until' takes one time".into(),
                ))
            }
        };
        let in_use = self.images_in_use();
        let mut keep = HashSet::new();
        if !all {
            // Intermediate build images have children: not dangling, as in dockerd.
            keep.extend(self.builder.intermediate_images());
        }
        for image in self.images.list()? {
            if in_use.contains(image.record.id.as_str()) {
                keep.insert(image.record.id.clone());
                continue;
            }
            let view = self.image_view(image)?;
            if !filters.labels_match(&view.labels) || until.is_some_and(|u| view.created_unix >= u)
            {
                keep.insert(view.image.record.id.clone());
            }
        }
        Ok(self.images.prune(all, &keep)?)
    }
}

/// `until`: unix seconds, an RFC 3339 time, or a duration before now (`10m`, `24h`).
pub fn parse_until(v: &str) -> Result<i64> {
    if let Ok(n) = v.parse::<i64>() {
        return Ok(n);
    }
    if let Ok(d) = humantime::parse_duration(v) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        return Ok(now.saturating_sub(d.as_secs()) as i64);
    }
    match unix_time(Some(v)) {
        0 => Err(Error::InvalidArgument(format!(
            "invalid filter 'until={v}'"
        ))),
        t => Ok(t),
    }
}

/// Docker's reference filter: the pattern matches the familiar `repo:tag` or `repo`.
fn reference_matches(patterns: &[String], tag: &str) -> bool {
    let Ok(r) = Reference::parse(tag) else {
        return false;
    };
    let repo = familiar(&r.repository);
    let full = format!("{repo}:{}", r.tag.unwrap_or_default());
    patterns
        .iter()
        .any(|p| glob_match(p, &full) || glob_match(p, &repo))
}
