//! `--tmpfs` and `-v /host:/container` mounts, checked as moby's linux mount parser checks
//! them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use super::invalid;
use crate::error::Result;

/// `p` cleaned lexically as Go's path.Clean does (`/a/../` is `/`).
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A mount's destination must be absolute and must not be the root.
fn check_destination(dest: &str) -> std::result::Result<(), String> {
    if !dest.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{dest}' mount path must be absolute"
        ));
    }
    if clean(dest) == "/" {
        return Err("invalid specification: destination can't be '/'".into());
    }
    Ok(())
}

/// `--tmpfs /path[:options]`.
pub fn tmpfs_mounts(tmpfs: &BTreeMap<String, String>) -> Result<Vec<Value>> {
    tmpfs
        .iter()
        .map(|(dest, opts)| {
            check_destination(dest)
                .map_err(|e| invalid(format!("invalid tmpfs mount {dest:?}: {e}")))?;
            let mut options = vec![
                "nosuid".to_string(),
                "nodev".to_string(),
                "noexec".to_string(),
            ];
            options.extend(opts.split(',').filter(|o| !o.is_empty()).map(String::from));
            Ok(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}))
        })
        .collect()
}

/// `-v /host:/container[:mode]`: bind mounts of host paths (the entries that name volumes
/// are the volumes' to take: `crate::volumes::mounts`).
pub fn bind_mounts(binds: &[String]) -> Result<Vec<Value>> {
    binds
        .iter()
        .filter(|bind| crate::volumes::mounts::is_host_bind(bind))
        .map(|bind| bind_mount(bind))
        .collect()
}

fn bind_mount(bind: &str) -> Result<Value> {
    let spec_error =
        |why: String| invalid(format!("invalid volume specification: '{bind}': {why}"));
    let parts: Vec<&str> = bind.split(':').collect();
    let (src, dest, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid(format!("invalid volume specification: '{bind}'"))),
    };
    check_destination(dest)
        .map_err(|e| spec_error(format!("invalid mount config for type \"bind\": {e}")))?;
    let mut options = vec!["rbind".to_string()];
    // z/Z relabel for SELinux: nothing to do on a host without it, as dockerd there.
    match crate::volumes::mounts::parse_mode(mode) {
        Some(m) if m.nocopy => return Err(spec_error(format!("invalid mode: {mode}"))),
        Some(m) => {
            options.extend(m.propagation);
            if m.read_only {
                options.push("ro".into());
            } else if mode.split(',').any(|m| m == "rw") {
                options.push("rw".into());
            }
        }
        None => return Err(spec_error(format!("invalid mode: {mode}"))),
    }
    Ok(json!({"destination": dest, "type": "bind", "source": src, "options": options}))
}

/// Create the missing sources of bind mounts (dockerd does for `-v`), once the whole
/// request is known to be valid.
pub fn create_bind_sources(mounts: &[Value]) -> Result<()> {
    for m in mounts.iter().filter(|m| m["type"] == "bind") {
        let src = Path::new(m["source"].as_str().unwrap_or_default());
        if !src.as_os_str().is_empty() && !src.exists() {
            std::fs::create_dir_all(src)
                .map_err(|e| invalid(format!("create bind source {}: {e}", src.display())))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        for root in ["/", "//", "/.", "/..", "/a/..", "/./"] {
            assert!(check_destination(root).is_err(), "{root}");
        }
        assert!(check_destination("rel").is_err());
        assert!(check_destination("/data").is_ok());
    }

    #[test]
    fn binds() {
        let m = bind_mounts(&["/tmp:/host-tmp:ro".into()]).expect("bind");
        assert_eq!(m[0]["options"], json!(["rbind", "ro"]));
        for bad in ["/:/", "/tmp:/..", "/tmp:rel", "/a:/b:nocopy", "/a:/b:q"] {
            assert!(bind_mounts(&[bad.into()]).is_err(), "{bad}");
        }
        // Volumes are not host binds: left to the volumes.
        assert!(bind_mounts(&["vol:/data".into(), "/anon".into()]).is_ok_and(|m| m.is_empty()));
        let m = bind_mounts(&["/tmp:/t:z,rslave".into()]).expect("bind");
        assert_eq!(m[0]["options"], json!(["rbind", "rslave"]));
        let err = bind_mounts(&["/:/".into()]).map(drop);
        assert!(err.is_err_and(|e| e.to_string().contains("destination can't be '/'")));
    }

    #[test]
    fn tmpfs() {
        let m =
            tmpfs_mounts(&BTreeMap::from([("/scratch".into(), "size=1m".into())])).expect("tmpfs");
        assert_eq!(
            m[0]["options"],
            json!(["nosuid", "nodev", "noexec", "size=1m"])
        );
        assert!(tmpfs_mounts(&BTreeMap::from([("/".into(), String::new())])).is_err());
    }
}
