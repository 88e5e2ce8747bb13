//! The host's cgroup hierarchies, read from /proc/self/mountinfo and /proc/self/cgroup.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// One mounted hierarchy under /sys/fs/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: Version,
    /// Name under /sys/fs/cgroup: "memory", "cpu,cpuacct", "unified", "systemd"; "" for a
    /// cgroup2 mount at /sys/fs/cgroup itself.
    pub name: String,
    /// v1 controllers of this hierarchy ("name=systemd" for a named one); empty for v2.
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    /// The cgroup path the mount's root corresponds to (not "/" inside a cgroup namespace).
    pub mount_root: String,
    /// The caller's cgroup path in this hierarchy (from /proc/self/cgroup).
    pub own_path: String,
}

impl Hierarchy {
    /// The host directory of cgroup `path` (absolute within the hierarchy).
    pub fn dir_of(&self, path: &str) -> PathBuf {
        let rel = path
            .strip_prefix(self.mount_root.as_str())
            .unwrap_or(path)
            .trim_start_matches('/');
        self.mountpoint.join(rel)
    }

    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// All hierarchies of the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub hierarchies: Vec<Hierarchy>,
}

impl Layout {
    pub fn detect() -> Result<Self> {
        let mountinfo = read_proc("/proc/self/mountinfo")?;
        let cgroup = read_proc("/proc/self/cgroup")?;
        Ok(Self::parse(&mountinfo, &cgroup))
    }

    /// Pure cgroup v2: one cgroup2 hierarchy at /sys/fs/cgroup.
    pub fn unified_only(&self) -> bool {
        matches!(self.hierarchies.as_slice(), [h] if h.version == Version::V2 && h.name.is_empty())
    }

    /// The hierarchy that holds `controller`: the v1 one if it is there, else v2 (where the
    /// controller must also be enabled, which `Cgroup` checks when it writes).
    pub fn for_controller(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.version == Version::V1 && h.has(controller))
            .or_else(|| self.v2())
    }

    pub fn v2(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.version == Version::V2)
    }

    pub fn parse(mountinfo: &str, cgroup: &str) -> Self {
        let mut out = Layout::default();
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            let (Some(root), Some(point), Some(fstype), Some(opts)) =
                (pre.get(3), pre.get(4), post.first(), post.get(2))
            else {
                continue;
            };
            let Some(name) = point.strip_prefix("/sys/fs/cgroup") else {
                continue;
            };
            let (version, controllers) = match *fstype {
                "cgroup2" => (Version::V2, Vec::new()),
                "cgroup" => (
                    Version::V1,
                    opts.split(',')
                        .filter(|o| is_controller(o))
                        .map(String::from)
                        .collect(),
                ),
                _ => continue,
            };
            let Some(own_path) = own_path(cgroup, version, &controllers) else {
                continue;
            };
            out.hierarchies.push(Hierarchy {
                version,
                name: name.trim_start_matches('/').to_string(),
                controllers,
                mountpoint: PathBuf::from(point),
                mount_root: root.to_string(),
                own_path,
            });
        }
        out
    }
}

/// A /proc file, read into a buffer big enough for a typical one at once: procfs reports
/// no size, and std's reads of a file without one start at 32 bytes and double (nine reads
/// for this host's mountinfo instead of one or two).
fn read_proc(path: &str) -> Result<String> {
    use std::io::Read;
    let mut out = String::with_capacity(16 * 1024);
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut out))
        .map_err(|e| Error::io("read", path, e))?;
    Ok(out)
}

fn is_controller(opt: &str) -> bool {
    !matches!(
        opt,
        "rw" | "ro"
            | "relatime"
            | "noatime"
            | "nosuid"
            | "nodev"
            | "noexec"
            | "xattr"
            | "noprefix"
            | "cpuset_v2_mode"
            | "favordynmods"
    ) && !opt.starts_with("release_agent=")
        && !opt.starts_with("clone_children")
}

/// Our cgroup path in the hierarchy with exactly these controllers (v1) or the v2 one.
fn own_path(cgroup: &str, version: Version, controllers: &[String]) -> Option<String> {
    let mut want: Vec<&str> = controllers.iter().map(String::as_str).collect();
    want.sort_unstable();
    cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match version {
            Version::V2 => ctrls.is_empty(),
            Version::V1 => {
                let mut have: Vec<&str> = ctrls.split(',').collect();
                have.sort_unstable();
                !ctrls.is_empty() && have == want
            }
        };
        matches.then(|| path.to_string())
    })
}

/// Where a container's cgroup goes, as runc places it: `cgroupsPath` (absolute or relative,
/// both from the hierarchy's root), or `/<id>` when empty.
pub fn container_path(cgroups_path: Option<&Path>, id: &str) -> Result<String> {
    let raw = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_string_lossy().into_owned(),
        _ => id.to_string(),
    };
    if raw.split('/').any(|c| c == "..") {
        return Err(Error::InvalidPath(raw));
    }
    let parts: Vec<&str> = raw
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    Ok(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
";
    const HYBRID_CGROUP: &str =
        "12:memory:/user/1\n11:cpuacct,cpu:/user/1\n1:name=systemd:/user/1\n0::/user/1\n";

    #[test]
    fn hybrid_layout_finds_every_hierarchy() {
        let l = Layout::parse(HYBRID_MOUNTINFO, HYBRID_CGROUP);
        assert!(!l.unified_only());
        let names: Vec<&str> = l.hierarchies.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["unified", "memory", "cpu,cpuacct", "systemd"]);
        assert_eq!(
            l.for_controller("memory").map(|h| h.name.as_str()),
            Some("memory")
        );
        assert_eq!(
            l.for_controller("cpu").map(|h| h.name.as_str()),
            Some("cpu,cpuacct")
        );
        // Not bound to v1 here: goes to the v2 hierarchy (which must have it enabled).
        assert_eq!(
            l.for_controller("hugetlb").map(|h| h.name.as_str()),
            Some("unified")
        );
        assert_eq!(
            l.hierarchies[1].dir_of("/c1"),
            Path::new("/sys/fs/cgroup/memory/c1")
        );
    }

    #[test]
    fn pure_v2_with_a_nested_mount_root() {
        let l = Layout::parse(
            "30 24 0:26 /outer /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "0::/outer/inner\n",
        );
        assert!(l.unified_only());
        assert_eq!(
            l.hierarchies[0].dir_of("/outer/inner"),
            Path::new("/sys/fs/cgroup/inner")
        );
    }

    #[test]
    fn container_paths_follow_runc() {
        assert_eq!(container_path(None, "c1").ok().as_deref(), Some("/c1"));
        assert_eq!(
            container_path(Some(Path::new("rel/path")), "c1")
                .ok()
                .as_deref(),
            Some("/rel/path")
        );
        assert_eq!(
            container_path(Some(Path::new("/abs//x/")), "c1")
                .ok()
                .as_deref(),
            Some("/abs/x")
        );
        assert!(container_path(Some(Path::new("/a/../../etc")), "c1").is_err());
    }
}
