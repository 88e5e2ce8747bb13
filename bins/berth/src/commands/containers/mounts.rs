//! `--mount type=bind|volume|tmpfs,...` as the docker CLI parses it into moby's
//! mount.Mount (HostConfig.Mounts).

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

/// A boolean option: alone it is true, else true/1/false/0.
fn boolean(key: &str, value: Option<&str>) -> Result<bool> {
    match value {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => bail!("invalid value for {key}: {v}"),
    }
}

/// A size with docker's units (`64m`); bytes.
fn size(value: &str) -> Result<i64> {
    let lower = value.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches('b');
    let (num, mult) = match digits.chars().last() {
        Some('k') => (&digits[..digits.len() - 1], 1i64 << 10),
        Some('m') => (&digits[..digits.len() - 1], 1 << 20),
        Some('g') => (&digits[..digits.len() - 1], 1 << 30),
        _ => (digits, 1),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid value for tmpfs-size: {value}"))?;
    Ok((n * mult as f64) as i64)
}

/// One `--mount` value.
pub fn parse(spec: &str) -> Result<Value> {
    let mut m = Map::new();
    m.insert("Type".into(), json!("volume"));
    let (mut bind, mut volume, mut tmpfs) = (Map::new(), Map::new(), Map::new());
    let (mut labels, mut driver, mut driver_opts) = (Map::new(), Map::new(), Map::new());
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need =
            || value.with_context(|| format!("invalid field '{field}' must be a key=value pair"));
        match key.as_str() {
            "type" => {
                m.insert("Type".into(), json!(need()?));
            }
            "source" | "src" => {
                m.insert("Source".into(), json!(need()?));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(need()?));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), json!(boolean(&key, value)?));
            }
            "consistency" => {
                m.insert("Consistency".into(), json!(need()?));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(need()?));
            }
            "bind-nonrecursive" => {
                bind.insert("NonRecursive".into(), json!(boolean(&key, value)?));
            }
            "bind-recursive" => {
                let b = &mut bind;
                match need()? {
                    "enabled" => {}
                    "disabled" => {
                        b.insert("NonRecursive".into(), json!(true));
                    }
                    "writable" => {
                        b.insert("ReadOnlyNonRecursive".into(), json!(true));
                    }
                    "readonly" => {
                        b.insert("ReadOnlyForceRecursive".into(), json!(true));
                    }
                    other => bail!("invalid value for {key}: {other} (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"),
                }
            }
            "volume-nocopy" => {
                volume.insert("NoCopy".into(), json!(boolean(&key, value)?));
            }
            "volume-subpath" => {
                volume.insert("Subpath".into(), json!(need()?));
            }
            "volume-label" => {
                let (k, v) = need()?.split_once('=').unwrap_or((need()?, ""));
                labels.insert(k.into(), json!(v));
            }
            "volume-driver" => {
                driver.insert("Name".into(), json!(need()?));
            }
            "volume-opt" => {
                let (k, v) = need()?.split_once('=').with_context(|| {
                    format!("invalid value for {key}: {}", need().unwrap_or_default())
                })?;
                driver_opts.insert(k.into(), json!(v));
            }
            "tmpfs-size" => {
                tmpfs.insert("SizeBytes".into(), json!(size(need()?)?));
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(need()?, 8).with_context(|| {
                    format!("invalid value for {key}: {}", need().unwrap_or_default())
                })?;
                tmpfs.insert("Mode".into(), json!(mode));
            }
            _ => bail!("unexpected key '{key}' in '{field}'"),
        }
    }
    if !driver_opts.is_empty() {
        driver.insert("Options".into(), Value::Object(driver_opts));
    }
    if !labels.is_empty() {
        volume.insert("Labels".into(), Value::Object(labels));
    }
    if !driver.is_empty() {
        volume.insert("DriverConfig".into(), Value::Object(driver));
    }
    for (key, section) in [
        ("BindOptions", bind),
        ("VolumeOptions", volume),
        ("TmpfsOptions", tmpfs),
    ] {
        if !section.is_empty() {
            m.insert(key.into(), Value::Object(section));
        }
    }
    if m.get("Target")
        .is_none_or(|t| t.as_str().is_none_or(str::is_empty))
    {
        bail!("target is required");
    }
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_as_the_docker_cli_parses_them() {
        let v = parse(
            "type=volume,src=data,dst=/d,ro,volume-nocopy,volume-label=a=b,volume-opt=type=tmpfs",
        )
        .expect("volume");
        assert_eq!(v["Source"], "data");
        assert_eq!(v["ReadOnly"], true);
        assert_eq!(v["VolumeOptions"]["NoCopy"], true);
        assert_eq!(v["VolumeOptions"]["Labels"]["a"], "b");
        assert_eq!(
            v["VolumeOptions"]["DriverConfig"]["Options"]["type"],
            "tmpfs"
        );
        let t = parse("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770").expect("tmpfs");
        assert_eq!(t["TmpfsOptions"]["SizeBytes"], 1 << 20);
        assert_eq!(t["TmpfsOptions"]["Mode"], 0o1770);
        let b = parse("type=bind,src=/x,dst=/y,bind-propagation=rslave,bind-recursive=disabled")
            .expect("bind");
        assert_eq!(b["BindOptions"]["NonRecursive"], true);
        assert!(parse("type=volume,dst=/a,bogus=1")
            .is_err_and(|e| e.to_string().contains("unexpected key 'bogus'")));
        assert!(parse("type=volume,src=x").is_err());
        assert!(parse("type=tmpfs,dst=/t,tmpfs-mode=9").is_err());
    }
}
