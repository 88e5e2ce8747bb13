//! `--user name[:group]` resolved in the image's /etc/passwd and /etc/group, read inside the
//! container's root (a symlink in the image cannot point the lookup at the host's files).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};

/// The contents of `path` inside `root`, or None if it does not exist.
fn read_in_root(root: &Path, path: &str) -> Result<Option<String>> {
    let dir: OwnedFd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Io(format!("open {}: {e}", root.display())))?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(&dir, path, how) {
        Ok(fd) => {
            let mut text = String::new();
            std::fs::File::from(fd)
                .take(4 * 1024 * 1024)
                .read_to_string(&mut text)
                .map_err(|e| Error::Io(format!("read {path}: {e}")))?;
            Ok(Some(text))
        }
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => Err(Error::Io(format!("open {path} in the container: {e}"))),
    }
}

/// A process's identity as the OCI config takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// The primary group, the user's supplementary groups from /etc/group (when no group
    /// was given, as libcontainer finds them), then `--group-add`'s.
    pub additional_gids: Vec<u32>,
}

impl User {
    pub fn to_oci(&self) -> serde_json::Value {
        serde_json::json!({"uid": self.uid, "gid": self.gid, "additionalGids": self.additional_gids})
    }
}

/// uid and gid of `spec` (`user`, `user:group`, numbers or names) for the rootfs at `root`.
#[cfg(test)]
fn resolve(root: &Path, spec: &str) -> Result<(u32, u32)> {
    resolve_user(root, spec, &[]).map(|u| (u.uid, u.gid))
}

/// The user of `spec` in the rootfs at `root`, with its groups and `group_add` (names or
/// numbers; a number need not be in /etc/group), as dockerd's getUser finds them.
pub fn resolve_user(root: &Path, spec: &str, group_add: &[String]) -> Result<User> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_in_root(root, "/etc/passwd")?;
    let entry = |pred: &dyn Fn(&[&str]) -> bool| {
        passwd.as_deref().and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 4 && pred(&f))
                    .then(|| (f[0].to_string(), f[2].parse().ok(), f[3].parse().ok()))
            })
        })
    };
    let (uid, primary, name) = if user.is_empty() {
        let (name, _, gid) = entry(&|f| f[2] == "0").unwrap_or_default();
        (0, gid, name)
    } else if let Ok(n) = user.parse::<u32>() {
        // A number needs no entry; its entry, if any, gives the primary group and name.
        let (name, _, gid) = entry(&|f| f[2].parse() == Ok(n)).unwrap_or_default();
        (n, gid, name)
    } else {
        match entry(&|f| f[0] == user) {
            Some((name, Some(uid), gid)) => (uid, gid, name),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unable to find user {user}: no matching entries in passwd file"
                )))
            }
        }
    };
    let groups = if group.is_some() || !name.is_empty() || !group_add.is_empty() {
        read_in_root(root, "/etc/group")?
    } else {
        None
    };
    let group_lines: Vec<Vec<&str>> = groups
        .as_deref()
        .map(|t| {
            t.lines()
                .map(|l| l.split(':').collect::<Vec<&str>>())
                .filter(|f| f.len() >= 3)
                .collect()
        })
        .unwrap_or_default();
    let gid = match group {
        None => primary.unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_lines
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        },
    };
    let mut additional_gids = vec![gid];
    // Supplementary groups only in the implicit form (libcontainer's rule).
    if group.is_none() && !name.is_empty() {
        additional_gids.extend(group_lines.iter().filter_map(|f| {
            let members = f.get(3).copied().unwrap_or_default();
            members
                .split(',')
                .any(|m| m == name)
                .then(|| f[2].parse::<u32>().ok())
                .flatten()
        }));
    }
    for wanted in group_add {
        let found = group_lines
            .iter()
            .find(|f| f[0] == wanted.as_str() || f[2] == wanted.as_str())
            .and_then(|f| f[2].parse::<u32>().ok());
        let gid = match found {
            Some(g) => g,
            None => check_group_add(wanted)?.ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "Unable to find group {wanted}: no matching entries in group file"
                ))
            })?,
        };
        if !additional_gids[1..].contains(&gid) {
            additional_gids.push(gid);
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids,
    })
}

/// A `--group-add` entry by number, checked as libcontainer checks it (Ok(None): a name).
pub fn check_group_add(entry: &str) -> Result<Option<u32>> {
    match entry.parse::<i64>() {
        Ok(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(u32::try_from(n).ok()),
        Ok(_) => Err(Error::InvalidArgument(
            "uids and gids must be in range 0-2147483647".into(),
        )),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supplementary_groups_and_group_add() {
        let root = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(root.path().join("etc")).expect("etc");
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(
            root.path().join("etc/group"),
            "root:x:0:\nwheel:x:10:root,app\naudio:x:29:app\nstaff:x:50:\n",
        )
        .expect("group");
        let user = |spec: &str, add: &[&str]| {
            let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
            resolve_user(root.path(), spec, &add).map(|u| u.additional_gids)
        };
        assert_eq!(user("app", &[]).expect("app"), [1001, 10, 29]);
        // An explicit group drops the implicit ones (libcontainer's rule).
        assert_eq!(user("app:staff", &[]).expect("app:staff"), [50]);
        assert_eq!(
            user("", &["staff", "4242", "10"]).expect("add"),
            [0, 10, 50, 4242]
        );
        assert!(user("", &["nosuch"]).is_err_and(|e| e
            .to_string()
            .contains("Unable to find group nosuch: no matching entries in group file")));
        assert!(user("", &["-1"]).is_err_and(|e| e.to_string().contains("must be in range")));
    }

    #[test]
    fn names_numbers_and_escapes() {
        let root = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(root.path().join("etc")).expect("etc");
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(root.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").expect("group");
        assert_eq!(resolve(root.path(), "app").expect("app"), (1000, 1001));
        assert_eq!(
            resolve(root.path(), "app:staff").expect("app:staff"),
            (1000, 50)
        );
        assert_eq!(resolve(root.path(), "1000").expect("1000"), (1000, 1001));
        assert_eq!(resolve(root.path(), "7:8").expect("7:8"), (7, 8));
        assert!(resolve(root.path(), "nobody").is_err());
        assert_eq!(resolve(root.path(), "").expect("root"), (0, 0));
        // A passwd that is a symlink out of the root resolves inside it (and is missing).
        std::fs::remove_file(root.path().join("etc/passwd")).expect("rm");
        std::os::unix::fs::symlink("/etc/passwd", root.path().join("etc/passwd")).expect("symlink");
        std::fs::write(root.path().join("etc/passwd-inside"), "").expect("x");
        assert!(
            resolve(root.path(), "root").is_err(),
            "the host's passwd must not be read"
        );
    }
}
