//! Mount options as runc reads them: flags, propagation, recursive attributes, and the rest
//! passed to the filesystem as data.

use nix::mount::MsFlags;

use crate::error::{Error, Result};
use crate::sys::mount::RecursiveAttrs;

const ATTR_RDONLY: u64 = 0x1;
const ATTR_NOSUID: u64 = 0x2;
const ATTR_NODEV: u64 = 0x4;
const ATTR_NOEXEC: u64 = 0x8;
const ATTR_ATIME_MASK: u64 = 0x70;
const ATTR_NOATIME: u64 = 0x10;
const ATTR_STRICTATIME: u64 = 0x20;
const ATTR_NODIRATIME: u64 = 0x80;
const ATTR_NOSYMFOLLOW: u64 = 0x200000;

/// Parsed `mounts[].options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub recursive: RecursiveAttrs,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive_bind: bool,
    /// `tmpcopyup`: a tmpfs gets a copy of what the directory it covers holds.
    pub tmpcopyup: bool,
    /// `idmap` / `ridmap`: an idmapped bind mount (runc 1.2's options).
    pub idmap: Option<Idmap>,
}

/// How an idmapped mount applies its mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idmap {
    /// The mount itself only (`idmap`; also what mappings alone ask for).
    Top,
    /// Every mount of the tree (`ridmap`).
    Recursive,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            recursive: RecursiveAttrs::default(),
            data: Vec::new(),
            bind: false,
            recursive_bind: false,
            tmpcopyup: false,
            idmap: None,
        }
    }
}

enum Opt {
    Set(MsFlags),
    Clear(MsFlags),
    Propagation(MsFlags),
    Recursive { set: u64, clear: u64 },
    Bind { recursive: bool },
    TmpCopyUp,
    IdMapped(Idmap),
}

fn lookup(name: &str) -> Option<Opt> {
    use MsFlags as F;
    use Opt::*;
    Some(match name {
        "async" => Clear(F::MS_SYNCHRONOUS),
        "atime" => Clear(F::MS_NOATIME),
        "bind" => Bind { recursive: false },
        "rbind" => Bind { recursive: true },
        "tmpcopyup" => TmpCopyUp,
        "idmap" => IdMapped(Idmap::Top),
        "ridmap" => IdMapped(Idmap::Recursive),
        "defaults" => Set(F::empty()),
        "dev" => Clear(F::MS_NODEV),
        "diratime" => Clear(F::MS_NODIRATIME),
        "dirsync" => Set(F::MS_DIRSYNC),
        "exec" => Clear(F::MS_NOEXEC),
        "mand" => Set(F::MS_MANDLOCK),
        "noatime" => Set(F::MS_NOATIME),
        "nodev" => Set(F::MS_NODEV),
        "nodiratime" => Set(F::MS_NODIRATIME),
        "noexec" => Set(F::MS_NOEXEC),
        "nomand" => Clear(F::MS_MANDLOCK),
        "norelatime" => Clear(F::MS_RELATIME),
        "nostrictatime" => Clear(F::MS_STRICTATIME),
        "nosuid" => Set(F::MS_NOSUID),
        "relatime" => Set(F::MS_RELATIME),
        "remount" => Set(F::MS_REMOUNT),
        "ro" => Set(F::MS_RDONLY),
        "rw" => Clear(F::MS_RDONLY),
        "strictatime" => Set(F::MS_STRICTATIME),
        "suid" => Clear(F::MS_NOSUID),
        "sync" => Set(F::MS_SYNCHRONOUS),
        "lazytime" => Set(F::MS_LAZYTIME),
        "nolazytime" => Clear(F::MS_LAZYTIME),
        "silent" => Set(F::MS_SILENT),
        "loud" => Clear(F::MS_SILENT),
        "private" => Propagation(F::MS_PRIVATE),
        "rprivate" => Propagation(F::MS_PRIVATE | F::MS_REC),
        "shared" => Propagation(F::MS_SHARED),
        "rshared" => Propagation(F::MS_SHARED | F::MS_REC),
        "slave" => Propagation(F::MS_SLAVE),
        "rslave" => Propagation(F::MS_SLAVE | F::MS_REC),
        "unbindable" => Propagation(F::MS_UNBINDABLE),
        "runbindable" => Propagation(F::MS_UNBINDABLE | F::MS_REC),
        "rro" => Recursive {
            set: ATTR_RDONLY,
            clear: 0,
        },
        "rrw" => Recursive {
            set: 0,
            clear: ATTR_RDONLY,
        },
        "rnosuid" => Recursive {
            set: ATTR_NOSUID,
            clear: 0,
        },
        "rsuid" => Recursive {
            set: 0,
            clear: ATTR_NOSUID,
        },
        "rnodev" => Recursive {
            set: ATTR_NODEV,
            clear: 0,
        },
        "rdev" => Recursive {
            set: 0,
            clear: ATTR_NODEV,
        },
        "rnoexec" => Recursive {
            set: ATTR_NOEXEC,
            clear: 0,
        },
        "rexec" => Recursive {
            set: 0,
            clear: ATTR_NOEXEC,
        },
        "rnodiratime" => Recursive {
            set: ATTR_NODIRATIME,
            clear: 0,
        },
        "rdiratime" => Recursive {
            set: 0,
            clear: ATTR_NODIRATIME,
        },
        "rrelatime" => Recursive {
            set: 0,
            clear: ATTR_ATIME_MASK,
        },
        "rnoatime" => Recursive {
            set: ATTR_NOATIME,
            clear: ATTR_ATIME_MASK,
        },
        "rstrictatime" => Recursive {
            set: ATTR_STRICTATIME,
            clear: ATTR_ATIME_MASK,
        },
        "rnosymfollow" => Recursive {
            set: ATTR_NOSYMFOLLOW,
            clear: 0,
        },
        "rsymfollow" => Recursive {
            set: 0,
            clear: ATTR_NOSYMFOLLOW,
        },
        _ => return None,
    })
}

/// Options runc knows that this runtime does not implement: refused by name.
const REFUSED: [&str; 1] = ["copy-symlink"];

impl MountOptions {
    pub fn parse(options: &[String]) -> Result<Self> {
        let mut out = MountOptions::default();
        for option in options {
            if REFUSED.contains(&option.as_str()) {
                return Err(Error::Unsupported {
                    field: format!("mount option {option:?}"),
                    why: "not implemented by berth-runtime".into(),
                });
            }
            match lookup(option) {
                Some(Opt::Set(f)) => out.flags |= f,
                Some(Opt::Clear(f)) => out.flags &= !f,
                Some(Opt::Propagation(f)) => out.propagation.push(f),
                Some(Opt::Recursive { set, clear }) => {
                    out.recursive.set = (out.recursive.set & !clear) | set;
                    out.recursive.clear |= clear;
                }
                Some(Opt::Bind { recursive }) => {
                    out.bind = true;
                    out.recursive_bind |= recursive;
                }
                Some(Opt::TmpCopyUp) => out.tmpcopyup = true,
                Some(Opt::IdMapped(how)) => out.idmap = Some(how),
                None => out.data.push(option.clone()),
            }
        }
        Ok(out)
    }

    /// The filesystem data string, or None.
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    /// Whether a bind mount needs a remount to apply flags (bind ignores them).
    pub fn needs_remount(&self) -> bool {
        !(self.flags & !(MsFlags::MS_REC | MsFlags::MS_REMOUNT | MsFlags::MS_BIND)).is_empty()
    }
}

/// The mount_setattr(2) form of a bind remount with `flags`: the mount ends with exactly
/// the per-mount flags given (its atime mode kept unless one is given), as
/// `MS_BIND | MS_REMOUNT` leaves it. In a user namespace the kernel locks the flags the
/// source mount had, which a remount must repeat: here they are simply not cleared.
pub fn bind_remount_attrs(flags: MsFlags, in_user_ns: bool) -> RecursiveAttrs {
    const LOCKABLE: [(MsFlags, u64); 4] = [
        (MsFlags::MS_RDONLY, ATTR_RDONLY),
        (MsFlags::MS_NOSUID, ATTR_NOSUID),
        (MsFlags::MS_NODEV, ATTR_NODEV),
        (MsFlags::MS_NOEXEC, ATTR_NOEXEC),
    ];
    // No mount option sets nosymfollow (only rnosymfollow), so a remount always drops it.
    let mut out = RecursiveAttrs {
        set: 0,
        clear: ATTR_NOSYMFOLLOW,
    };
    for (flag, attr) in LOCKABLE {
        match flags.contains(flag) {
            true => out.set |= attr,
            false if in_user_ns => {}
            false => out.clear |= attr,
        }
    }
    // The kernel keeps the atime mode and nodiratime on a remount that names none of the
    // four; one that names any gets relatime unless noatime or strictatime (which wins).
    let atime_flags = MsFlags::MS_NOATIME
        | MsFlags::MS_NODIRATIME
        | MsFlags::MS_RELATIME
        | MsFlags::MS_STRICTATIME;
    if flags.intersects(atime_flags) {
        out.clear |= ATTR_ATIME_MASK | ATTR_NODIRATIME;
        out.set |= if flags.contains(MsFlags::MS_STRICTATIME) {
            ATTR_STRICTATIME
        } else if flags.contains(MsFlags::MS_NOATIME) {
            ATTR_NOATIME
        } else {
            0
        };
        if flags.contains(MsFlags::MS_NODIRATIME) {
            out.set |= ATTR_NODIRATIME;
            out.clear &= !ATTR_NODIRATIME;
        }
    }
    out
}

/// The flags for `linux.rootfsPropagation`.
pub fn propagation_flags(name: &str) -> Result<MsFlags> {
    match lookup(name) {
        Some(Opt::Propagation(f)) => Ok(f),
        _ => Err(Error::config(format!(
            "linux.rootfsPropagation {name:?} is not one of private, rprivate, shared, rshared, slave, rslave, unbindable, runbindable"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> MountOptions {
        let opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        MountOptions::parse(&opts).expect("parse")
    }

    #[test]
    fn flags_data_and_propagation_are_split() {
        let o = parse(&[
            "nosuid",
            "noexec",
            "ro",
            "mode=755",
            "size=65536k",
            "rslave",
        ]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert!(!o.bind);
    }

    #[test]
    fn later_options_override_earlier() {
        let o = parse(&["ro", "rw", "nodev", "dev"]);
        assert!(o.flags.is_empty());
    }

    #[test]
    fn rbind_and_recursive_attributes() {
        let o = parse(&["rbind", "rro", "rnoatime"]);
        assert!(o.bind && o.recursive_bind);
        assert_eq!(o.recursive.set, ATTR_RDONLY | ATTR_NOATIME);
        assert_eq!(o.recursive.clear, ATTR_ATIME_MASK);
        assert!(!o.needs_remount());
        assert!(parse(&["bind", "ro"]).needs_remount());
    }

    #[test]
    fn unimplemented_options_are_named() {
        let err = MountOptions::parse(&["copy-symlink".to_string()]).expect_err("refused");
        assert!(err.to_string().contains("copy-symlink"));
    }

    #[test]
    fn copy_up_and_idmap_are_options_not_data() {
        let o = parse(&["tmpcopyup", "size=1m"]);
        assert!(o.tmpcopyup && o.idmap.is_none());
        assert_eq!(o.data_string().as_deref(), Some("size=1m"));
        assert_eq!(parse(&["rbind", "idmap"]).idmap, Some(Idmap::Top));
        assert_eq!(parse(&["idmap", "ridmap"]).idmap, Some(Idmap::Recursive));
        assert!(!parse(&["rbind", "ridmap"]).needs_remount());
    }

    #[test]
    fn rootfs_propagation_names() {
        assert_eq!(
            propagation_flags("rprivate").ok(),
            Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC)
        );
        assert!(propagation_flags("bogus").is_err());
    }

    #[test]
    fn bind_remount_attrs_leave_what_a_bind_remount_leaves() {
        let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        // ro, and the flags not asked for cleared; no atime flag: the atime mode is kept.
        let ro = bind_remount_attrs(base | MsFlags::MS_RDONLY, false);
        assert_eq!(ro.set, ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC);
        assert_eq!(ro.clear, ATTR_NOSYMFOLLOW);
        let rw = bind_remount_attrs(base, false);
        assert_eq!(rw.clear, ATTR_RDONLY | ATTR_NOSYMFOLLOW);
        // An atime flag replaces the mode (relatime is 0) and nodiratime unless given.
        let relatime = bind_remount_attrs(base | MsFlags::MS_RELATIME, false);
        assert_eq!(relatime.set & ATTR_ATIME_MASK, 0);
        assert_eq!(
            relatime.clear & (ATTR_ATIME_MASK | ATTR_NODIRATIME),
            ATTR_ATIME_MASK | ATTR_NODIRATIME
        );
        let noatime =
            bind_remount_attrs(base | MsFlags::MS_NOATIME | MsFlags::MS_NODIRATIME, false);
        assert_eq!(
            noatime.set & (ATTR_ATIME_MASK | ATTR_NODIRATIME),
            ATTR_NOATIME | ATTR_NODIRATIME
        );
        assert_eq!(noatime.clear & ATTR_NODIRATIME, 0);
        let strict = bind_remount_attrs(MsFlags::MS_NOATIME | MsFlags::MS_STRICTATIME, false);
        assert_eq!(strict.set & ATTR_ATIME_MASK, ATTR_STRICTATIME);
        // In a user namespace the locked flags are never cleared (a remount repeats them).
        let userns = bind_remount_attrs(MsFlags::empty(), true);
        assert_eq!(userns.set, 0);
        assert_eq!(userns.clear, ATTR_NOSYMFOLLOW);
    }
}
