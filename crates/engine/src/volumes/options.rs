//! The local driver's options (`--opt type=tmpfs|none|<fs> o=... device=...`): checked at
//! create as dockerd's local driver checks them, mounted with mount(2) as moby's
//! mount.Mount does (flags from `o`, the rest as the filesystem's data).

use std::collections::BTreeMap;
use std::path::Path;

use nix::mount::{mount as mount2, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result};

/// Options the local driver takes; `size` (a quota) needs a filesystem berth does not
/// manage quotas on.
const VALID: [&str; 4] = ["type", "o", "device", "size"];

/// Check `opts` as moby's local driver's validateOpts.
pub fn check_options(opts: &BTreeMap<String, String>) -> Result<()> {
    for key in opts.keys() {
        if !VALID.contains(&key.as_str()) {
            return Err(Error::InvalidArgument(format!("invalid option: {key:?}")));
        }
    }
    if opts.contains_key("size") {
        return Err(Error::InvalidArgument(
            "quota size requested but no quota support".into(),
        ));
    }
    // "type" and "o" need a "device", as in moby.
    if (opts.contains_key("type") || opts.contains_key("o")) && !opts.contains_key("device") {
        return Err(Error::InvalidArgument(
            "missing required option: \"device\"".into(),
        ));
    }
    if let Some(o) = opts.get("o") {
        parse(o)?;
    }
    Ok(())
}

/// mount(2) flags by option name: (clears the flag, flag), as moby/sys/mount's table.
fn flag(name: &str) -> Option<(bool, MsFlags)> {
    Some(match name {
        "defaults" => (false, MsFlags::empty()),
        "ro" => (false, MsFlags::MS_RDONLY),
        "rw" => (true, MsFlags::MS_RDONLY),
        "suid" => (true, MsFlags::MS_NOSUID),
        "nosuid" => (false, MsFlags::MS_NOSUID),
        "dev" => (true, MsFlags::MS_NODEV),
        "nodev" => (false, MsFlags::MS_NODEV),
        "exec" => (true, MsFlags::MS_NOEXEC),
        "noexec" => (false, MsFlags::MS_NOEXEC),
        "sync" => (false, MsFlags::MS_SYNCHRONOUS),
        "async" => (true, MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (false, MsFlags::MS_DIRSYNC),
        "mand" => (false, MsFlags::MS_MANDLOCK),
        "nomand" => (true, MsFlags::MS_MANDLOCK),
        "atime" => (true, MsFlags::MS_NOATIME),
        "noatime" => (false, MsFlags::MS_NOATIME),
        "diratime" => (true, MsFlags::MS_NODIRATIME),
        "nodiratime" => (false, MsFlags::MS_NODIRATIME),
        "bind" => (false, MsFlags::MS_BIND),
        "rbind" => (false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
        "relatime" => (false, MsFlags::MS_RELATIME),
        "norelatime" => (true, MsFlags::MS_RELATIME),
        "strictatime" => (false, MsFlags::MS_STRICTATIME),
        "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
        _ => return None,
    })
}

/// Propagation options, applied by a mount call of their own.
fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// An `o` string split into flags, propagation and the filesystem's own data.
#[derive(Debug, PartialEq)]
struct Parsed {
    flags: MsFlags,
    propagation: MsFlags,
    data: Vec<String>,
}

fn parse(o: &str) -> Result<Parsed> {
    let mut out = Parsed {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: Vec::new(),
    };
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        if opt == "remount" {
            return Err(Error::InvalidArgument(format!(
                "invalid option \"o\": {opt:?} cannot be given to a volume"
            )));
        }
        if let Some((clear, f)) = flag(opt) {
            if clear {
                out.flags.remove(f);
            } else {
                out.flags.insert(f);
            }
        } else if let Some(p) = propagation(opt) {
            out.propagation = p;
        } else {
            out.data.push(opt.to_string());
        }
    }
    Ok(out)
}

/// `addr=HOST` of an nfs or cifs mount given as a name: the kernel takes an address, so
/// the name is resolved first, as moby does.
fn resolve_addr(data: &mut [String]) -> Result<()> {
    for item in data.iter_mut() {
        let Some(host) = item.strip_prefix("addr=") else {
            continue;
        };
        if host.parse::<std::net::IpAddr>().is_ok() {
            continue;
        }
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, 0))
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| Error::Io(format!("failed to resolve the address {host:?}")))?;
        *item = format!("addr={}", addr.ip());
    }
    Ok(())
}

/// Mount the volume described by `opts` on `target` (its `_data`).
pub fn mount(opts: &BTreeMap<String, String>, target: &Path) -> Result<()> {
    let device = opts.get("device").map(String::as_str).unwrap_or_default();
    let fstype = opts.get("type").map(String::as_str).unwrap_or("none");
    let mut parsed = parse(opts.get("o").map(String::as_str).unwrap_or_default())?;
    if matches!(fstype, "nfs" | "nfs4" | "cifs") {
        resolve_addr(&mut parsed.data)?;
    }
    let data = parsed.data.join(",");
    let failed = |e: nix::Error| {
        Error::Io(format!(
            "failed to mount local volume: mount {device}:{}, flags: {:#x}, data: {data}: {e}",
            target.display(),
            parsed.flags.bits()
        ))
    };
    mount2(
        Some(device),
        target,
        Some(fstype),
        parsed.flags,
        (!data.is_empty()).then_some(data.as_str()),
    )
    .map_err(failed)?;
    // A bind ignores its read-only flag until a remount, as moby's mount.Mount remounts.
    let bind_ro = MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    let done = if parsed.flags.contains(bind_ro) {
        mount2(
            None::<&str>,
            target,
            None::<&str>,
            parsed.flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(failed)
    } else {
        Ok(())
    };
    let done = done.and_then(|()| {
        if parsed.propagation.is_empty() {
            return Ok(());
        }
        mount2(
            None::<&str>,
            target,
            None::<&str>,
            parsed.propagation,
            None::<&str>,
        )
        .map_err(failed)
    });
    if done.is_err() {
        let _ = umount2(target, MntFlags::MNT_DETACH);
    }
    done
}

/// Unmount what is mounted on `target` (nothing mounted is fine).
pub fn unmount(target: &Path) -> Result<()> {
    while super::tree::is_mount_point(target) {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => break,
            Err(e) => return Err(Error::Io(format!("unmount {}: {e}", target.display()))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_as_the_local_driver_checks_them() {
        assert!(check_options(&opts(&[])).is_ok());
        assert!(check_options(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m")
        ]))
        .is_ok());
        assert!(check_options(&opts(&[("type", "tmpfs")])).is_err_and(|e| e
            .to_string()
            .contains("missing required option: \"device\"")));
        assert!(check_options(&opts(&[("bogus", "1")]))
            .is_err_and(|e| e.to_string() == "invalid option: \"bogus\""));
        assert!(check_options(&opts(&[("size", "1g")])).is_err());
        assert!(check_options(&opts(&[("device", "/x"), ("o", "remount")])).is_err());
    }

    #[test]
    fn o_splits_into_flags_and_data() {
        let p = parse("bind,ro,nosuid,size=10m,uid=1000,rprivate").expect("parse");
        assert_eq!(
            p.flags,
            MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID
        );
        assert_eq!(p.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(p.data, ["size=10m", "uid=1000"]);
        assert_eq!(parse("ro,rw").expect("parse").flags, MsFlags::empty());
        let mut data = vec!["addr=127.0.0.1".to_string(), "addr=localhost".to_string()];
        resolve_addr(&mut data).expect("resolve");
        assert_eq!(data[0], "addr=127.0.0.1");
        assert!(
            data[1] == "addr=127.0.0.1" || data[1] == "addr=::1",
            "{}",
            data[1]
        );
    }
}
