//! Idmapped bind mounts: `uidMappings`/`gidMappings` on a mount, or its `idmap`/`ridmap`
//! options, with runc 1.2's meaning. A file owned by `containerID + n` in the source is seen
//! as owned by `hostID + n` (in the host's ids, like the container's own maps); `idmap`
//! without maps takes the container's user namespace maps; `ridmap` maps every mount of an
//! rbind tree, `idmap` (and maps alone) only its top mount.
//!
//! The runtime clones each source as a detached mount tree and sets the mapping on it
//! (MOUNT_ATTR_IDMAP) before init is forked; init attaches the tree where the bind would
//! go. The runtime does it because setting a mapping needs CAP_SYS_ADMIN over the
//! mapping's user namespace, which an init in a user namespace of its own lacks. A config
//! without idmapped mounts costs nothing here.

use std::collections::hash_map::{Entry, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use super::options::{Idmap, MountOptions};
use crate::error::{Error, Result};
use crate::sys::{mount as m, userns};

/// The detached, idmapped trees to attach, by index in `mounts`.
#[derive(Default)]
pub(crate) struct IdmappedMounts(Vec<(usize, OwnedFd)>);

impl IdmappedMounts {
    /// The tree prepared for `mounts[index]`, if it is idmapped.
    pub(crate) fn tree(&self, index: usize) -> Option<BorrowedFd<'_>> {
        self.0
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, fd)| fd.as_fd())
    }
}

/// What gives an idmapped mount its mapping.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Mapping {
    /// uid_map and gid_map contents for a user namespace made for it.
    Maps { uid: String, gid: String },
    /// The user namespace the container joins by path.
    Joined(std::path::PathBuf),
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    let mut out = String::new();
    for m in maps {
        let _ = writeln!(out, "{} {} {}", m.container_id(), m.host_id(), m.size());
    }
    out
}

/// The fields of a mount's id maps, checked: sizes above 0, ranges inside 32 bits.
fn check_maps(field: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    const LIMIT: u64 = 1 << 32;
    for (j, m) in maps.iter().enumerate() {
        let (c, h, s) = (m.container_id(), m.host_id(), m.size());
        let why = if s == 0 {
            "size must be above 0"
        } else if u64::from(c) + u64::from(s) > LIMIT || u64::from(h) + u64::from(s) > LIMIT {
            "the range goes past the last 32-bit id"
        } else {
            continue;
        };
        return Err(Error::config(format!(
            "{field}[{j}] (containerID {c}, hostID {h}, size {s}): {why}"
        )));
    }
    Ok(())
}

/// The mapping of `mounts[index]`, or None when it is not idmapped. Errors name the field
/// and its value.
fn mapping(
    spec: &Spec,
    index: usize,
    mount: &Mount,
    opts: &MountOptions,
) -> Result<Option<Mapping>> {
    let (uids, gids) = (mount.uid_mappings().as_ref(), mount.gid_mappings().as_ref());
    if uids.is_none() && gids.is_none() && opts.idmap.is_none() {
        return Ok(None);
    }
    let at = format!("mounts[{index}] ({})", mount.destination().display());
    let typ = mount.typ().as_deref().unwrap_or("");
    if !(opts.bind || typ == "bind") {
        return Err(Error::config(format!(
            "{at}: an idmapped mount must be a bind mount, not type {typ:?} (runc refuses it too)"
        )));
    }
    let namespaces = spec
        .linux()
        .iter()
        .flat_map(|l| l.namespaces().iter().flatten());
    let mut userns = None;
    for ns in namespaces {
        match (ns.typ(), ns.path()) {
            (LinuxNamespaceType::Mount, Some(path)) => {
                return Err(Error::config(format!(
                    "{at}: an idmapped mount needs a mount namespace of the container's own, \
                     not one joined by path ({})",
                    path.display()
                )))
            }
            (LinuxNamespaceType::User, path) => userns = Some(path.clone()),
            _ => {}
        }
    }
    if uids.is_some() || gids.is_some() {
        let (Some(uids), Some(gids)) = (
            uids.filter(|m| !m.is_empty()),
            gids.filter(|m| !m.is_empty()),
        ) else {
            return Err(Error::config(format!(
                "{at}: an idmapped mount needs both uidMappings and gidMappings (runc refuses one alone too)"
            )));
        };
        check_maps(&format!("mounts[{index}].uidMappings"), uids)?;
        check_maps(&format!("mounts[{index}].gidMappings"), gids)?;
        return Ok(Some(Mapping::Maps {
            uid: map_text(uids),
            gid: map_text(gids),
        }));
    }
    // "idmap"/"ridmap" alone: the container's user namespace gives the mapping.
    let linux = spec.linux().as_ref();
    match userns {
        Some(Some(path)) => Ok(Some(Mapping::Joined(path))),
        Some(None) => Ok(Some(Mapping::Maps {
            uid: map_text(
                linux
                    .and_then(|l| l.uid_mappings().as_deref())
                    .unwrap_or_default(),
            ),
            gid: map_text(
                linux
                    .and_then(|l| l.gid_mappings().as_deref())
                    .unwrap_or_default(),
            ),
        })),
        None => Err(Error::config(format!(
            "{at}: option {:?} without uidMappings and gidMappings maps the mount as the \
             container's user namespace does, and the container has no user namespace",
            match opts.idmap {
                Some(Idmap::Recursive) => "ridmap",
                _ => "idmap",
            }
        ))),
    }
}

/// Check `mounts[index]` if it is idmapped (for `validate`: nothing is created).
pub(crate) fn check(spec: &Spec, index: usize, mount: &Mount, opts: &MountOptions) -> Result<()> {
    mapping(spec, index, mount, opts).map(drop)
}

/// Whether `mount` may be idmapped, seen without parsing its options.
fn may_be_idmapped(mount: &Mount) -> bool {
    mount.uid_mappings().is_some()
        || mount.gid_mappings().is_some()
        || mount
            .options()
            .iter()
            .flatten()
            .any(|o| o == "idmap" || o == "ridmap")
}

/// Runtime side, before init is forked: clone and map the source of every idmapped mount.
///
/// # Safety
/// The caller must be single-threaded (a user namespace is made by forking).
pub(crate) unsafe fn prepare(spec: &Spec, bundle: &Path) -> Result<IdmappedMounts> {
    let mut out = IdmappedMounts::default();
    let mut namespaces: HashMap<Mapping, File> = HashMap::new();
    for (i, mount) in spec.mounts().iter().flatten().enumerate() {
        if !may_be_idmapped(mount) {
            continue;
        }
        let opts = MountOptions::parse(mount.options().as_deref().unwrap_or_default())?;
        let Some(mapping) = mapping(spec, i, mount, &opts)? else {
            continue;
        };
        let source = super::mounts::source_path(bundle, mount)?;
        let at = || format!("mounts[{i}] ({})", mount.destination().display());
        let ns = match namespaces.entry(mapping) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => {
                let file = match new.key() {
                    // SAFETY: the caller is single-threaded.
                    Mapping::Maps { uid, gid } => unsafe { userns::with_maps(uid, gid) }
                        .map_err(|e| Error::Init(format!("{}: id maps: {e}", at())))?,
                    Mapping::Joined(path) => {
                        File::open(path).map_err(|e| Error::io("open user namespace", path, e))?
                    }
                };
                new.insert(file)
            }
        };
        let tree = m::clone_tree(&source, opts.recursive_bind).map_err(|e| {
            Error::sys(
                format!("{}: clone the mount tree of {}", at(), source.display()),
                e,
            )
        })?;
        m::set_idmap(
            tree.as_fd(),
            ns.as_fd(),
            opts.idmap == Some(Idmap::Recursive),
        )
        .map_err(|e| {
            let hint = match e {
                Errno::EINVAL => " (the filesystem may not support idmapped mounts)",
                _ => "",
            };
            Error::Init(format!(
                "{}: map the ids of {}: {e}{hint}",
                at(),
                source.display()
            ))
        })?;
        out.0.push((i, tree));
    }
    Ok(out)
}
