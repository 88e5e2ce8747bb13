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

/// The id (third field) and the fourth field as a number, of the `key:x:id:...` line.
fn find(text: &str, key: &str) -> Option<(u32, Option<u32>)> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 3 && f[0] == key {
            Some((f[2].parse().ok()?, f.get(3).and_then(|g| g.parse().ok())))
        } else {
            None
        }
    })
}

/// uid and gid of `spec` (`user`, `user:group`, numbers or names) for the rootfs at `root`.
pub fn resolve(root: &Path, spec: &str) -> Result<(u32, u32)> {
    if spec.is_empty() {
        return Ok((0, 0));
    }
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_in_root(root, "/etc/passwd")?;
    let (uid, primary) = match user.parse::<u32>() {
        // A number needs no entry; its entry, if any, gives the primary group.
        Ok(n) => {
            let gid = passwd.as_deref().and_then(|p| {
                p.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 4 && f[2].parse() == Ok(n))
                        .then(|| f[3].parse().ok())
                        .flatten()
                })
            });
            (n, gid)
        }
        Err(_) => {
            let found = passwd.as_deref().and_then(|p| find(p, user));
            let (uid, gid) = found.ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unable to find user {user}: no matching entries in passwd file"
                ))
            })?;
            (uid, gid)
        }
    };
    let gid = match group {
        None => primary.unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let groups = read_in_root(root, "/etc/group")?;
                groups
                    .as_deref()
                    .and_then(|t| find(t, g))
                    .map(|(id, _)| id)
                    .ok_or_else(|| {
                        Error::InvalidArgument(format!(
                            "unable to find group {g}: no matching entries in group file"
                        ))
                    })?
            }
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

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
