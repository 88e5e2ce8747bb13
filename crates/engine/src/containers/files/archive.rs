//! `/containers/{id}/archive` (HEAD: stat, GET: a tar of a path, PUT: extract a tar into a
//! directory) and `/containers/{id}/export` (the whole tree as a tar).

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;

use berth_image::graft::Grafts;
use nix::sys::stat::{fstat, SFlag};

use super::root::{ContainerRoot, Lookup, Resolved};
use crate::error::{Error, Result};
use crate::Engine;

/// moby's ContainerPathStat (the `X-Docker-Container-Path-Stat` header, base64 JSON).
pub use berth_api_types::container::PathStat;

/// Go's os.FileMode of a stat mode.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut mode = st_mode & 0o777;
    match SFlag::from_bits_truncate(st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => mode |= 1 << 31,
        SFlag::S_IFLNK => mode |= 1 << 27,
        SFlag::S_IFIFO => mode |= 1 << 25,
        SFlag::S_IFSOCK => mode |= 1 << 24,
        SFlag::S_IFBLK => mode |= 1 << 26,
        SFlag::S_IFCHR => mode |= (1 << 26) | (1 << 21),
        _ => {}
    }
    if st_mode & 0o4000 != 0 {
        mode |= 1 << 23;
    }
    if st_mode & 0o2000 != 0 {
        mode |= 1 << 22;
    }
    if st_mode & 0o1000 != 0 {
        mode |= 1 << 20;
    }
    mode
}

/// Go's filepath.Base of the container path as moby keeps it (`/etc/` → `etc`, `/etc/.`
/// → `.`, `/` → `/`): the name the entry gets in the archive.
fn base_name(path: &str) -> String {
    let abs = format!("/{path}");
    if abs.ends_with("/.") {
        return ".".into();
    }
    let trimmed = abs.trim_end_matches('/');
    match trimmed.rsplit('/').next() {
        Some(b) if !b.is_empty() => b.to_string(),
        _ => "/".into(),
    }
}

/// A path of a container, found and ready to be archived (the stat goes in the header
/// before the body is streamed).
pub struct Archive {
    root: ContainerRoot,
    entry: Resolved,
    name: String,
    /// A stopped container's binds and volumes below the path, archived from their sources.
    grafts: Grafts,
    pub stat: PathStat,
}

impl Archive {
    /// Write the tar stream of the path (its entries named after the path's base name, or
    /// without a prefix for `/`).
    pub fn write_to(self, out: impl Write) -> Result<()> {
        let opts = berth_image::tarball::TreeOptions {
            pseudo_fs_empty: true,
            ..Default::default()
        };
        let mut w = berth_image::tarball::TreeWriter::new(out, opts).with_grafts(self.grafts);
        if self.name == "/" {
            w.append_children(&self.entry.entry, Path::new(""))?;
        } else {
            w.append_fd(&self.entry.entry, Path::new(&self.name))?;
        }
        let mut out = w.finish()?;
        drop(self.root);
        out.flush()
            .map_err(|e| Error::Io(format!("send the archive: {e}")))
    }
}

fn stat_of(root: &ContainerRoot, path: &str, found: &Resolved) -> Result<PathStat> {
    let st = fstat(&found.entry).map_err(|e| Error::Io(format!("stat {path}: {e}")))?;
    let link_target = if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() {
        root.resolve(path, true).map(|r| r.path).unwrap_or_default()
    } else {
        String::new()
    };
    let mtime = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(st.st_mtime).unwrap_or(0),
            u32::try_from(st.st_mtime_nsec).unwrap_or(0),
        );
    Ok(PathStat {
        name: base_name(path),
        size: st.st_size,
        mode: go_file_mode(st.st_mode),
        mtime: humantime::format_rfc3339_nanos(mtime).to_string(),
        link_target,
    })
}

impl Engine {
    /// `HEAD /containers/{id}/archive`: the stat of `path` (a symlink is not followed; its
    /// target resolved in the container is `link_target`).
    pub fn container_stat_path(&self, name: &str, path: &str) -> Result<PathStat> {
        let (_, root) = self.container_root(name, true)?;
        let found = root.resolve(path, false)?;
        stat_of(&root, path, &found)
    }

    /// `GET /containers/{id}/archive`: `path` found, to be streamed.
    pub fn container_archive(&self, name: &str, path: &str) -> Result<Archive> {
        let (_, root) = self.container_root(name, true)?;
        let entry = root.resolve(path, false)?;
        let stat = stat_of(&root, path, &entry)?;
        let name = base_name(path);
        // Tar paths begin with the base name, but for `/` and `dir/.` (the content only).
        let prefix = (name != "/" && name != ".").then(|| OsStr::new(name.as_str()));
        let grafts = root.grafts_below(&entry, prefix)?;
        Ok(Archive {
            name,
            root,
            entry,
            stat,
            grafts,
        })
    }

    /// `PUT /containers/{id}/archive`: extract the tar `input` into the directory `path`
    /// (symlinks on the way followed inside the container). `copy_uid_gid` (`docker cp
    /// -a`) gives every entry the container's user as owner.
    pub fn container_extract(
        &self,
        name: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
        input: impl Read,
    ) -> Result<()> {
        let (record, root) = self.container_root(name, true)?;
        let dest = match root.lookup(path, true)? {
            Lookup::Found(r) => r,
            Lookup::Missing => return Err(root.not_found(path)),
        };
        let st = fstat(&dest.entry).map_err(|e| Error::Io(format!("stat {path}: {e}")))?;
        if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFDIR.bits() {
            return Err(Error::InvalidArgument(
                "extraction point is not a directory".into(),
            ));
        }
        root.check_writable(&dest)?;
        root.refuse_pseudo(&dest.entry, path)?;
        let user = record.config.user.clone().unwrap_or_default();
        let owner = if copy_uid_gid && !user.is_empty() {
            let u = crate::containers::user::resolve_user(&root.proc_path(), &user, &[])?;
            Some((u.uid, u.gid))
        } else {
            None
        };
        let opts = berth_image::unpack::CopyOptions {
            no_overwrite_dir_non_dir,
            owner,
        };
        // A stopped container's binds and volumes below `dest` take their entries, as
        // dockerd's view with the container's mounts does.
        let grafts = root.grafts_below(&dest, None)?;
        berth_image::unpack::extract_grafted(input, &dest.entry, &opts, &grafts)
            .map_err(super::copy_error)?;
        Ok(())
    }

    /// `GET /containers/{id}/export`: the container's tree (its overlay, without its
    /// mounts) as a tar stream.
    pub fn container_export(&self, name: &str) -> Result<Archive> {
        let (_, root) = self.container_root(name, false)?;
        let entry = root.resolve("/", false)?;
        let stat = stat_of(&root, "/", &entry)?;
        // Without the container's binds and volumes, as dockerd's export.
        Ok(Archive {
            name: "/".into(),
            root,
            entry,
            stat,
            grafts: Grafts::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names_as_moby() {
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("etc/passwd"), "passwd");
        assert_eq!(base_name("/etc/."), ".");
        assert_eq!(base_name("/"), "/");
    }

    #[test]
    fn go_modes() {
        assert_eq!(go_file_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_file_mode(0o104755), (1 << 23) | 0o755);
    }
}
