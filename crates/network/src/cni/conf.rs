//! The network configuration list: `*.conflist`, or a single plugin's `*.conf`/`*.json`
//! wrapped into a list, the first valid one by file name.

use std::path::Path;

use serde_json::Value;

use super::{CniError, Result};

#[derive(Debug, Clone)]
pub struct NetworkList {
    pub name: String,
    pub cni_version: String,
    /// The list's `disableCheck`: the runtime must not run CHECK on it.
    pub disable_check: bool,
    /// Each plugin's configuration object (with its `type`).
    pub plugins: Vec<Value>,
}

pub(super) fn load(dir: &Path) -> Result<NetworkList> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("conflist" | "conf" | "json")
                )
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(CniError::Config {
                path: dir.to_path_buf(),
                message: e.to_string(),
            })
        }
    };
    files.sort();
    for path in files {
        match read(&path) {
            Ok(list) => return Ok(list),
            Err(e) => tracing::warn!(error = %e, "skipped an invalid CNI configuration"),
        }
    }
    Err(CniError::NoNetwork(dir.to_path_buf()))
}

fn read(path: &Path) -> Result<NetworkList> {
    let bad = |message: String| CniError::Config {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let name = v["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("no \"name\"".into()))?
        .to_string();
    let cni_version = v["cniVersion"].as_str().unwrap_or("0.2.0").to_string();
    let disable_check = disable_check(&v["disableCheck"]);
    let is_list = path.extension().and_then(|e| e.to_str()) == Some("conflist");
    let plugins = if is_list {
        v["plugins"]
            .as_array()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| bad("no \"plugins\"".into()))?
            .clone()
    } else {
        vec![v.clone()]
    };
    if let Some(p) = plugins.iter().find(|p| p["type"].as_str().is_none()) {
        return Err(bad(format!("a plugin without \"type\": {p}")));
    }
    Ok(NetworkList {
        name,
        cni_version,
        disable_check,
        plugins,
    })
}

/// libcni takes `disableCheck` as a boolean or a string that parses as one.
fn disable_check(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// CHECK came with CNI 0.4.0.
pub(super) fn supports_check(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (0, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_valid_file_by_name_is_the_network() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("00-broken.conflist"), "{").expect("write");
        std::fs::write(
            dir.path().join("10-pods.conflist"),
            r#"{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge"},{"type":"portmap"}]}"#,
        )
        .expect("write");
        std::fs::write(
            dir.path().join("20-other.conf"),
            r#"{"cniVersion":"0.3.1","name":"other","type":"bridge"}"#,
        )
        .expect("write");
        let net = load(dir.path()).expect("load");
        assert_eq!(net.name, "pods");
        assert_eq!(net.plugins.len(), 2);
        std::fs::remove_file(dir.path().join("10-pods.conflist")).expect("rm");
        let net = load(dir.path()).expect("load");
        assert_eq!((net.name.as_str(), net.plugins.len()), ("other", 1));
    }

    #[test]
    fn an_empty_or_missing_dir_has_no_network() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(load(dir.path()), Err(CniError::NoNetwork(_))));
        assert!(matches!(
            load(&dir.path().join("absent")),
            Err(CniError::NoNetwork(_))
        ));
    }

    #[test]
    fn disable_check_is_read_as_libcni_reads_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("10-pods.conflist");
        for (value, disabled) in [("true", true), ("\"true\"", true), ("false", false)] {
            let text = format!(
                r#"{{"cniVersion":"1.0.0","name":"p","disableCheck":{value},"plugins":[{{"type":"bridge"}}]}}"#
            );
            std::fs::write(&path, text).expect("write");
            assert_eq!(
                load(dir.path()).expect("load").disable_check,
                disabled,
                "{value}"
            );
        }
        std::fs::write(
            &path,
            r#"{"cniVersion":"1.0.0","name":"p","plugins":[{"type":"bridge"}]}"#,
        )
        .expect("write");
        assert!(!load(dir.path()).expect("load").disable_check);
    }

    #[test]
    fn check_needs_version_0_4() {
        assert!(!supports_check("0.3.1"));
        assert!(supports_check("0.4.0"));
        assert!(supports_check("1.0.0"));
    }
}
