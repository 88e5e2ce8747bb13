//! One container's cgroup: the same path in every hierarchy of the host.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::layout::{Hierarchy, Layout, Version};
use crate::resources::{Plan, Write};

#[derive(Debug, Clone)]
pub struct Cgroup {
    layout: Layout,
    path: String,
}

fn write_file(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(|e| Error::io("write", path, e))
}

impl Cgroup {
    /// The cgroup for a container: `cgroups_path` as runc places it, or `/<id>`.
    pub fn for_container(layout: Layout, cgroups_path: Option<&Path>, id: &str) -> Result<Self> {
        if layout.hierarchies.is_empty() {
            return Err(Error::NoHierarchy);
        }
        let path = crate::layout::container_path(cgroups_path, id)?;
        Ok(Cgroup { layout, path })
    }

    /// The cgroup at `path` (as recorded at create).
    pub fn at(layout: Layout, path: String) -> Self {
        Cgroup { layout, path }
    }

    /// The cgroup path, the same in every hierarchy.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// This cgroup's directory in each hierarchy.
    pub fn dirs(&self) -> impl Iterator<Item = (&Hierarchy, PathBuf)> + '_ {
        self.layout
            .hierarchies
            .iter()
            .map(|h| (h, h.dir_of(&self.path)))
    }

    /// Create the directories (and ancestors), making each level usable.
    pub fn create(&self) -> Result<()> {
        for (h, dir) in self.dirs() {
            if h.version == Version::V2 {
                enable_v2_controllers(&h.mountpoint, &dir);
            }
            let fresh = create_dir(&dir)?;
            if h.has("cpuset") {
                let parent = dir.parent().filter(|_| fresh);
                if !parent.is_some_and(|p| copy_cpuset(p, &dir).unwrap_or(false)) {
                    inherit_cpuset(&h.mountpoint, &dir)?;
                }
            }
        }
        Ok(())
    }

    /// Move process `pid` into the cgroup.
    ///
    /// A process move takes the kernel's global threadgroup lock, and the first writer of
    /// that lock waits for an RCU grace period (10-20 ms on an idle VM): see
    /// [`Cgroup::enter_v1_as_current_thread`] and [`Cgroup::open_v2_dir`] for the ways
    /// around it.
    pub fn add(&self, pid: i32) -> Result<()> {
        for (_, dir) in self.dirs() {
            write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// [`Cgroup::add`], into the existing sub-cgroups `sub` names (runc's `exec --cgroup`).
    pub fn add_in(&self, pid: i32, sub: &crate::SubCgroups) -> Result<()> {
        if sub.is_empty() {
            return self.add(pid);
        }
        sub.check(self.layout.hierarchies.iter())?;
        for (h, dir) in self.dirs() {
            let dir = match sub.in_hierarchy(h)? {
                "" => dir,
                rel => {
                    let dir = dir.join(rel);
                    if !dir.is_dir() {
                        return Err(Error::SubCgroup(format!(
                            "sub-cgroup {rel} does not exist: no {}",
                            dir.display()
                        )));
                    }
                    dir
                }
            };
            write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Move the calling thread into the cgroup in every v1 hierarchy, through their `tasks`
    /// files (a single-threaded caller moves whole). The kernel (since 6.0) moves the
    /// current thread without its global threadgroup lock, so this costs microseconds where
    /// [`Cgroup::add`] waits for a grace period.
    pub fn enter_v1_as_current_thread(&self) -> Result<()> {
        for (_, dir) in self.dirs().filter(|(h, _)| h.version == Version::V1) {
            write_file(&dir.join("tasks"), "0")?;
        }
        Ok(())
    }

    /// The cgroup's v2 directory, opened for clone3's CLONE_INTO_CGROUP (a child born there
    /// needs no move at all); None on a host without a v2 hierarchy.
    pub fn open_v2_dir(&self) -> Result<Option<std::os::fd::OwnedFd>> {
        let Some(h) = self.layout.v2() else {
            return Ok(None);
        };
        let dir = h.dir_of(&self.path);
        nix::fcntl::open(
            &dir,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map(Some)
        .map_err(|e| Error::io("open", &dir, std::io::Error::from(e)))
    }

    /// Enforce what `resources::plan` worked out.
    pub fn apply(&self, plan: &Plan) -> Result<()> {
        self.write_all(&plan.writes)?;
        if let Some(rules) = &plan.device_filter {
            let v2 = self.layout.v2().ok_or(Error::NoHierarchy)?;
            crate::devices::attach_filter(&v2.dir_of(&self.path), rules)?;
        }
        Ok(())
    }

    fn write_all(&self, writes: &[Write]) -> Result<()> {
        for w in writes {
            let hierarchy = if w.controller.is_empty() {
                self.layout.v2()
            } else {
                self.layout.for_controller(w.controller)
            };
            let Some(h) = hierarchy else {
                return Err(Error::Unsupported {
                    field: w.controller.to_string(),
                    why: "on this host: the controller is not mounted".into(),
                });
            };
            let dir = h.dir_of(&self.path);
            let (file, value) = match &w.preferred {
                Some((file, value)) if dir.join(file).exists() => (file, value),
                _ => (&w.file, &w.value),
            };
            let path = dir.join(file);
            if w.optional && !path.exists() {
                tracing::warn!(
                    "{file} is not written: this kernel does not have it; the setting is ignored"
                );
                continue;
            }
            if let Err(e) = write_file(&path, value) {
                // cgroupfs answers EACCES for a file it does not have (a kernel feature that
                // is off, such as blkio weights without the BFQ scheduler): say that instead.
                if !path.exists() {
                    return Err(Error::Unsupported {
                        field: file.clone(),
                        why: format!("by this kernel: {} has no such file", dir.display()),
                    });
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Pids of every process in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let Some((_, dir)) = self
            .dirs()
            .find(|(h, _)| h.has("pids") || h.version == Version::V2)
        else {
            return Err(Error::NoHierarchy);
        };
        let path = dir.join("cgroup.procs");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// The freezer: v1's freezer hierarchy if mounted, else v2's cgroup.freeze.
    fn freezer(&self) -> Result<(Version, PathBuf)> {
        let h = self
            .layout
            .hierarchies
            .iter()
            .find(|h| h.version == Version::V1 && h.has("freezer"))
            .or_else(|| self.layout.v2())
            .ok_or(Error::NoHierarchy)?;
        Ok((h.version, h.dir_of(&self.path)))
    }

    /// Freeze every process of the cgroup, and wait until the kernel says it is frozen.
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Thaw the cgroup.
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let (version, dir) = self.freezer()?;
        let (file, value) = match (version, frozen) {
            (Version::V1, true) => ("freezer.state", "FROZEN"),
            (Version::V1, false) => ("freezer.state", "THAWED"),
            (Version::V2, true) => ("cgroup.freeze", "1"),
            (Version::V2, false) => ("cgroup.freeze", "0"),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // v1 may stop at FREEZING while tasks are in uninterruptible sleep: write again.
            write_file(&dir.join(file), value)?;
            if self.is_frozen()? == frozen {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::io(
                    "wait for the freezer of",
                    &dir,
                    std::io::Error::from(ErrorKind::TimedOut),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Whether the cgroup is frozen (not merely freezing).
    pub fn is_frozen(&self) -> Result<bool> {
        let (version, dir) = self.freezer()?;
        let (file, frozen_when): (&str, fn(&str) -> bool) = match version {
            Version::V1 => ("freezer.state", |s| s.trim() == "FROZEN"),
            Version::V2 => ("cgroup.events", |s| {
                s.lines().any(|l| l.trim() == "frozen 1")
            }),
        };
        match fs::read_to_string(dir.join(file)) {
            Ok(s) => Ok(frozen_when(&s)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("read", dir.join(file), e)),
        }
    }

    /// Remove the cgroup's directories (not its ancestors, as runc), with the sub-cgroups
    /// made under them (for `exec --cgroup`), as runc's removal does. The processes must
    /// be gone; a directory still busy with exiting tasks is retried for a moment.
    pub fn remove(&self) -> Result<()> {
        for (_, dir) in self.dirs() {
            remove_dir(&dir)?;
        }
        Ok(())
    }
}

/// rmdir a cgroup directory; on EBUSY, its sub-cgroups first (looked for only then, so a
/// cgroup without any costs no directory read).
fn remove_dir(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut children_removed = false;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                if !children_removed {
                    children_removed = true;
                    for child in fs::read_dir(dir).into_iter().flatten().flatten() {
                        if child.file_type().is_ok_and(|t| t.is_dir()) {
                            remove_dir(&child.path())?;
                        }
                    }
                    continue;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(Error::io("remove cgroup", dir, e)),
        }
    }
}

/// Create a cgroup directory and its missing ancestors. Returns whether only the last
/// level was missing, the usual case: then the caller knows what the new directory holds.
fn create_dir(dir: &Path) -> Result<bool> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(_) => fs::create_dir_all(dir)
            .map(|()| false)
            .map_err(|e| Error::io("create cgroup", dir, e)),
    }
}

/// v1 cpuset of a cgroup just created under `parent`: its cpus and mems start empty (or,
/// with clone_children, as the parent's), so they are set from the parent without being
/// read first. Returns false, having changed nothing, when the parent has none to give
/// (an ancestor left unset: `inherit_cpuset` fills the whole path then).
fn copy_cpuset(parent: &Path, dir: &Path) -> Result<bool> {
    let mut values = Vec::with_capacity(2);
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let from = fs::read_to_string(parent.join(file))
            .map_err(|e| Error::io("read", parent.join(file), e))?;
        if from.trim().is_empty() {
            return Ok(false);
        }
        values.push((file, from));
    }
    for (file, value) in values {
        write_file(&dir.join(file), value.trim())?;
    }
    Ok(true)
}

/// v1 cpuset: a new cgroup starts with empty cpus and mems, which refuses every task. Fill
/// each new level from its parent, top down.
fn inherit_cpuset(mountpoint: &Path, dir: &Path) -> Result<()> {
    let Ok(rel) = dir.strip_prefix(mountpoint) else {
        return Ok(());
    };
    let mut current = mountpoint.to_path_buf();
    for part in rel.components() {
        let parent = current.clone();
        current.push(part);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = fs::read_to_string(current.join(file))
                .map_err(|e| Error::io("read", current.join(file), e))?;
            if own.trim().is_empty() {
                let from = fs::read_to_string(parent.join(file))
                    .map_err(|e| Error::io("read", parent.join(file), e))?;
                write_file(&current.join(file), from.trim())?;
            }
        }
    }
    Ok(())
}

/// v2: a controller is usable in a cgroup only if every ancestor delegates it. Best effort:
/// a controller the host keeps for itself shows up later as a write error naming its file.
fn enable_v2_controllers(mountpoint: &Path, dir: &Path) {
    let Ok(rel) = dir.strip_prefix(mountpoint) else {
        return;
    };
    let mut current = mountpoint.to_path_buf();
    for part in rel.components() {
        let available = fs::read_to_string(current.join("cgroup.controllers")).unwrap_or_default();
        for c in available.split_whitespace() {
            let _ = fs::write(current.join("cgroup.subtree_control"), format!("+{c}"));
        }
        current.push(part);
        if !current.exists() {
            let _ = fs::create_dir(&current);
        }
    }
}
