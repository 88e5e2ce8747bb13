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

/// `-v /host:/container[:ro|rw]`: bind mounts of host paths. Named volumes come later.
pub fn bind_mounts(binds: &[String]) -> Result<Vec<Value>> {
    binds.iter().map(|bind| bind_mount(bind)).collect()
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
    if !src.starts_with('/') {
        return Err(invalid(format!(
            "named volumes ({src:?}) are not supported by berth yet: bind a host path"
        )));
    }
    check_destination(dest)
        .map_err(|e| spec_error(format!("invalid mount config for type \"bind\": {e}")))?;
    let mut options = vec!["rbind".to_string()];
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" | "rw" => options.push(m.to_string()),
            "z" | "Z" => return Err(spec_error("SELinux relabeling is not supported".into())),
            other => return Err(spec_error(format!("invalid mode: {other}"))),
        }
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
        for bad in [
            "/:/",
            "/tmp:/..",
            "vol:/data",
            "/tmp:rel",
            "/a:/b:q",
            "/a",
            "/a:/b:ro:x",
        ] {
            assert!(bind_mounts(&[bad.into()]).is_err(), "{bad}");
        }
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
