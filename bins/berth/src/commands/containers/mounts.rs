//! `--mount type=bind|volume|tmpfs,...` as the docker CLI parses it into moby's
//! mount.Mount (HostConfig.Mounts).

use anyhow::{bail, Context, Result};
use berth_api_types::container::{BindOptions, DriverConfig, Mount, TmpfsOptions, VolumeOptions};

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
pub fn parse(spec: &str) -> Result<Mount> {
    let mut m = Mount {
        kind: "volume".into(),
        ..Mount::default()
    };
    let (mut bind, mut volume) = (BindOptions::default(), VolumeOptions::default());
    let (mut tmpfs, mut driver) = (TmpfsOptions::default(), DriverConfig::default());
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need =
            || value.with_context(|| format!("invalid field '{field}' must be a key=value pair"));
        match key.as_str() {
            "type" => m.kind = need()?.into(),
            "source" | "src" => m.source = need()?.into(),
            "target" | "dst" | "destination" => m.target = need()?.into(),
            "readonly" | "ro" => m.read_only = boolean(&key, value)?,
            "consistency" => m.consistency = need()?.into(),
            "bind-propagation" => bind.propagation = need()?.into(),
            "bind-nonrecursive" => bind.non_recursive = boolean(&key, value)?,
            "bind-recursive" => match need()? {
                "enabled" => {}
                "disabled" => bind.non_recursive = true,
                "writable" => bind.read_only_non_recursive = true,
                "readonly" => bind.read_only_force_recursive = true,
                other => bail!("invalid value for {key}: {other} (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"),
            },
            "volume-nocopy" => volume.no_copy = boolean(&key, value)?,
            "volume-subpath" => volume.subpath = need()?.into(),
            "volume-label" => {
                let (k, v) = need()?.split_once('=').unwrap_or((need()?, ""));
                volume.labels.insert(k.into(), v.into());
            }
            "volume-driver" => driver.name = need()?.into(),
            "volume-opt" => {
                let (k, v) = need()?.split_once('=').with_context(|| {
                    format!("invalid value for {key}: {}", need().unwrap_or_default())
                })?;
                driver.options.insert(k.into(), v.into());
            }
            "tmpfs-size" => tmpfs.size_bytes = size(need()?)?,
            "tmpfs-mode" => {
                tmpfs.mode = u32::from_str_radix(need()?, 8).with_context(|| {
                    format!("invalid value for {key}: {}", need().unwrap_or_default())
                })?;
            }
            _ => bail!("unexpected key '{key}' in '{field}'"),
        }
    }
    if driver != DriverConfig::default() {
        volume.driver_config = Some(driver);
    }
    // An options section is sent only when one of its flags was given (as before the types).
    m.bind_options = given(bind);
    m.volume_options = given(volume);
    m.tmpfs_options = given(tmpfs);
    if m.target.is_empty() {
        bail!("target is required");
    }
    Ok(m)
}

/// `section` unless nothing in it was set.
fn given<T: Default + PartialEq>(section: T) -> Option<T> {
    (section != T::default()).then_some(section)
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
        let v = serde_json::to_value(v).expect("json");
        assert_eq!(v["Source"], "data");
        assert_eq!(v["ReadOnly"], true);
        assert_eq!(v["VolumeOptions"]["NoCopy"], true);
        assert_eq!(v["VolumeOptions"]["Labels"]["a"], "b");
        assert_eq!(
            v["VolumeOptions"]["DriverConfig"]["Options"]["type"],
            "tmpfs"
        );
        let t = parse("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770").expect("tmpfs");
        let t = serde_json::to_value(t).expect("json");
        assert_eq!(t["TmpfsOptions"]["SizeBytes"], 1 << 20);
        assert_eq!(t["TmpfsOptions"]["Mode"], 0o1770);
        let b = parse("type=bind,src=/x,dst=/y,bind-propagation=rslave,bind-recursive=disabled")
            .expect("bind");
        let b = serde_json::to_value(b).expect("json");
        assert_eq!(b["BindOptions"]["NonRecursive"], true);
        assert!(parse("type=volume,dst=/a,bogus=1")
            .is_err_and(|e| e.to_string().contains("unexpected key 'bogus'")));
        assert!(parse("type=volume,src=x").is_err());
        assert!(parse("type=tmpfs,dst=/t,tmpfs-mode=9").is_err());
    }
}
