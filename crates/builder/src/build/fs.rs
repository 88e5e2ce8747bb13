//! Filesystem work of the steps that do not run a container (COPY, ADD, WORKDIR): the
//! parent's layers mounted as an overlay with a fresh upper directory (which becomes the
//! layer), paths resolved inside that root (symlinks never lead out), and users and groups
//! looked up in the image's own /etc/passwd and /etc/group.

use std::path::{Component, Path, PathBuf};

use nix::mount::{umount2, MntFlags};

use crate::error::{Error, Result};

/// An overlay of an image's layers with a private upper directory, unmounted on drop.
pub struct Overlay {
    pub merged: PathBuf,
    pub upper: PathBuf,
    mounted: bool,
}

impl Overlay {
    /// Mount `lower` (top layer first; none for `scratch`) under `dir`.
    pub fn mount(lower: &[PathBuf], dir: &Path) -> Result<Overlay> {
        let upper = dir.join("upper");
        let work = dir.join("work");
        let merged = dir.join("merged");
        let empty = dir.join("empty");
        for d in [&upper, &work, &merged, &empty] {
            std::fs::create_dir_all(d).map_err(|e| Error::io("create", d, e))?;
        }
        // overlayfs needs a lower layer: an empty one for `scratch`.
        let lowers = if lower.is_empty() {
            vec![empty]
        } else {
            lower.to_vec()
        };
        berth_image::overlay::mount_overlay(&lowers, &upper, &work, &merged)?;
        Ok(Overlay {
            merged,
            upper,
            mounted: true,
        })
    }

    /// Unmount now (the upper directory stays).
    pub fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            umount2(&self.merged, MntFlags::MNT_DETACH)
                .map_err(|e| Error::Step(format!("unmount {}: {e}", self.merged.display())))?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

/// Unmount whatever is mounted below `dir` (a crash left it), deepest first.
pub fn unmount_below(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .map(String::from)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = umount2(Path::new(&p), MntFlags::MNT_DETACH);
    }
}

/// `path` (absolute in the image) resolved inside `root`: symlinks are followed as the
/// container would see them, and never lead out of `root`. With `follow_last` false, a
/// final symlink is left as is.
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf> {
    let readlink = |rel: &str| -> Result<Option<String>> {
        let candidate = root.join(rel);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => std::fs::read_link(&candidate)
                .map(|t| Some(t.to_string_lossy().into_owned()))
                .map_err(|e| Error::io("readlink", &candidate, e)),
            _ => Ok(None),
        }
    };
    Ok(root.join(resolve_rel(path, follow_last, &readlink)?))
}

/// `path` resolved in a tree whose symlinks `readlink` gives (Some(target) for a symlink at
/// a relative path, None for anything else): the relative path it leads to, never above
/// the tree's root ("" is the root).
pub fn resolve_rel(
    path: &str,
    follow_last: bool,
    readlink: &dyn Fn(&str) -> Result<Option<String>>,
) -> Result<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut pending: Vec<String> = split(path);
    pending.reverse();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." | "" => continue,
            ".." => {
                parts.pop();
                continue;
            }
            _ => {}
        }
        parts.push(part);
        let is_last = pending.is_empty();
        if is_last && !follow_last {
            continue;
        }
        if let Some(target) = readlink(&parts.join("/"))? {
            hops += 1;
            if hops > 40 {
                return Err(Error::Step(format!(
                    "too many levels of symbolic links in {path}"
                )));
            }
            parts.pop();
            if target.starts_with('/') {
                parts.clear();
            }
            let mut more = split(&target);
            more.reverse();
            pending.extend(more);
        }
    }
    Ok(parts.join("/"))
}

fn split(p: &str) -> Vec<String> {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Create `path` (absolute in the image) and its missing parents inside `root`, owned by
/// `owner` (new directories only).
pub fn mkdir_all(root: &Path, path: &str, owner: Option<(u32, u32)>) -> Result<PathBuf> {
    let mut current = String::new();
    for part in split(path) {
        if part == ".." {
            continue;
        }
        current.push('/');
        current.push_str(&part);
        let resolved = resolve_in_root(root, &current, true)?;
        match std::fs::symlink_metadata(&resolved) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Step(format!(
                    "cannot create directory {current}: a file is in the way"
                )))
            }
            Err(_) => {
                std::fs::create_dir(&resolved).map_err(|e| Error::io("create", &resolved, e))?;
                std::fs::set_permissions(
                    &resolved,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
                .map_err(|e| Error::io("chmod", &resolved, e))?;
                if let Some((u, g)) = owner {
                    lchown(&resolved, u, g)?;
                }
            }
        }
    }
    resolve_in_root(root, path, true)
}

pub fn lchown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| Error::io("chown", path, e))
}

/// A name or number from the image's `file` (passwd or group): the id in field 3.
fn lookup(root: &Path, file: &str, name: &str) -> Option<u32> {
    let path = resolve_in_root(root, file, true).ok()?;
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2)?.parse().ok())
}

/// `--chown=user[:group]` (names or numbers) against the image at `root`. A user alone
/// takes its uid as the group, as BuildKit's chown does.
pub fn parse_chown(root: &Path, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => lookup(root, "/etc/passwd", user).ok_or_else(|| {
            Error::Step(format!("unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"))
        })?,
    };
    let gid = match group {
        None => uid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(root, "/etc/group", g).ok_or_else(|| {
                Error::Step(format!("unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"))
            })?,
        },
    };
    Ok((uid, gid))
}

/// `--chmod`: octal only (BuildKit's symbolic modes are refused by name).
pub fn parse_chmod(spec: &str) -> Result<u32> {
    u32::from_str_radix(spec, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| {
            Error::Step(format!(
                "invalid chmod parameter {spec:?}: berth takes an octal mode (like 0755)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside() {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/bin")).expect("mkdir");
        std::os::unix::fs::symlink("/usr/bin", r.join("bin")).expect("symlink");
        std::os::unix::fs::symlink("../../../../etc", r.join("usr/escape")).expect("symlink");
        assert_eq!(
            resolve_in_root(r, "/bin/sh", true).expect("resolve"),
            r.join("usr/bin/sh")
        );
        assert_eq!(
            resolve_in_root(r, "/usr/escape/passwd", true).expect("resolve"),
            r.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(r, "/bin", false).expect("resolve"),
            r.join("bin")
        );
        let made = mkdir_all(r, "/bin/new/dir", Some((1, 2))).expect("mkdir_all");
        assert_eq!(made, r.join("usr/bin/new/dir"));
        assert!(made.is_dir());
    }

    #[test]
    fn chown_by_name() {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        std::fs::create_dir_all(r.join("etc")).expect("mkdir");
        std::fs::write(
            r.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
        )
        .expect("w");
        std::fs::write(r.join("etc/group"), "root:x:0:\nstaff:x:50:\n").expect("w");
        assert_eq!(parse_chown(r, "app").expect("chown"), (1000, 1000));
        assert_eq!(parse_chown(r, "app:staff").expect("chown"), (1000, 50));
        assert_eq!(parse_chown(r, "7:8").expect("chown"), (7, 8));
        assert!(parse_chown(r, "nobody").is_err());
        assert_eq!(parse_chmod("755").expect("chmod"), 0o755);
        assert!(parse_chmod("u+x").is_err());
    }
}
