//! Mounts of a container that does not run, laid over the tree a copy walks.
//!
//! A stopped container's files are its overlay, without the binds and volumes mounted in it
//! when it runs. dockerd mounts those into its private view for `docker cp`; berth reaches
//! them without mounting: a [`Graft`] names a path of the walk (relative to the copied
//! directory) and a descriptor of the mount's source, and the tar writer and the extractor
//! continue from that descriptor when they reach the path. Below it the walk is the same
//! descriptor-based one (nothing followed out of the source).

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

/// One mount point below the copied directory.
#[derive(Debug)]
pub struct Graft {
    /// Its path relative to the copied directory, one name per component.
    pub path: Vec<OsString>,
    /// An O_PATH descriptor of the mount's source (a directory, or a file for a file bind).
    pub source: OwnedFd,
    pub read_only: bool,
}

/// Mount points below a copied directory, the last listed winning where two share a path
/// (it is mounted last).
#[derive(Debug, Default)]
pub struct Grafts(Vec<Graft>);

impl Grafts {
    pub fn new(list: Vec<Graft>) -> Grafts {
        Grafts(list)
    }

    pub const fn empty() -> Grafts {
        Grafts(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The graft at exactly `comps`.
    pub fn at(&self, comps: &[OsString]) -> Option<&Graft> {
        if self.0.is_empty() {
            return None;
        }
        self.0.iter().rev().find(|g| g.path == comps)
    }

    /// The graft at the archive path `path` (its `./` and `/` components ignored).
    pub fn at_path(&self, path: &Path) -> Option<&Graft> {
        if self.0.is_empty() {
            return None;
        }
        let comps: Vec<OsString> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
            .collect();
        self.at(&comps)
    }

    /// The names of grafts directly inside the directory at `dir` (relative components).
    pub fn children_of(&self, dir: &Path) -> Vec<OsString> {
        if self.0.is_empty() {
            return Vec::new();
        }
        let comps: Vec<OsString> = dir
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
            .collect();
        self.0
            .iter()
            .filter(|g| g.path.len() == comps.len() + 1 && g.path.starts_with(&comps))
            .filter_map(|g| g.path.last().cloned())
            .collect()
    }

    /// The deepest graft on the way to `comps` (itself included) and how many of its
    /// components it covers.
    pub fn deepest_on(&self, comps: &[OsString]) -> Option<(&Graft, usize)> {
        (1..=comps.len())
            .rev()
            .find_map(|n| self.at(&comps[..n]).map(|g| (g, n)))
    }
}
