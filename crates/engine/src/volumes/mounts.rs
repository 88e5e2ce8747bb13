//! A container's volumes: what the create body asks for (`Binds` naming volumes or only a
//! destination, `Mounts` (`--mount`), `Config.Volumes` with the image's `VOLUME`s,
//! `VolumesFrom`), checked as moby's linux mount parser checks them, then the OCI mounts
//! they become at each start.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// One volume mounted in a container (its record keeps these).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VolumeMount {
    pub name: String,
    pub destination: String,
    /// The volume's `_data` (inspect's Source).
    pub source: PathBuf,
    pub read_only: bool,
    /// Not filled from the image at its first use (`nocopy`, `volume-nocopy`).
    #[serde(default)]
    pub nocopy: bool,
    /// Named by the user (`-v NAME:/path`, `--mount source=NAME`): `rm -v` keeps it.
    pub named: bool,
    /// The mode as given (`ro,nocopy`; inspect's Mode).
    #[serde(default)]
    pub mode: String,
}

/// A volume the container asks for, before it exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// Empty: an anonymous volume (a generated name).
    pub name: String,
    pub destination: String,
    pub read_only: bool,
    pub nocopy: bool,
    pub mode: String,
    /// For a volume made now (`--mount volume-opt=`, `volume-label=`).
    /// None when not given (a volume made for it shows null, as dockerd's).
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    /// Already recorded by another container (`--volumes-from`): the volume must exist.
    pub existing: bool,
}

/// What a create body's mount fields come to: volumes, and OCI mounts (binds and tmpfs
/// from `--mount`, binds from `--volumes-from`) beside the `-v`/`--tmpfs` ones.
#[derive(Debug, Default)]
pub struct Plan {
    pub volumes: Vec<Wanted>,
    pub oci: Vec<Value>,
}

/// moby's mount.Mount (the create body's `HostConfig.Mounts`), typed in berth-api-types.
pub use berth_api_types::container::{
    BindOptions, DriverConfig, Mount as MountSpec, TmpfsOptions, VolumeOptions,
};

fn invalid(m: String) -> Error {
    Error::InvalidArgument(m)
}

/// `p` cleaned lexically as Go's path.Clean does.
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

fn check_target(dest: &str) -> std::result::Result<String, String> {
    if !dest.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{dest}' mount path must be absolute"
        ));
    }
    let cleaned = clean(dest);
    if cleaned == "/" {
        return Err("invalid specification: destination can't be '/'".into());
    }
    Ok(cleaned)
}

const PROPAGATIONS: [&str; 6] = [
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// A `-v` mode list (`ro,nocopy`), as moby's ValidMountMode takes it: at most one of
/// ro/rw, of z/Z (SELinux labels: nothing to do on a host without SELinux, as dockerd
/// there), of nocopy, of a propagation.
#[derive(Debug, Default, PartialEq)]
pub struct Mode {
    pub read_only: bool,
    pub nocopy: bool,
    pub propagation: Option<String>,
}

pub fn parse_mode(mode: &str) -> Option<Mode> {
    let mut out = Mode::default();
    let (mut rw, mut label, mut copy) = (0, 0, 0);
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" | "rw" => {
                rw += 1;
                out.read_only = m == "ro";
            }
            "z" | "Z" => label += 1,
            "nocopy" => {
                copy += 1;
                out.nocopy = true;
            }
            p if PROPAGATIONS.contains(&p) => {
                if out.propagation.replace(p.to_string()).is_some() {
                    return None;
                }
            }
            _ => return None,
        }
    }
    (rw <= 1 && label <= 1 && copy <= 1).then_some(out)
}

/// A `Binds` entry that names a volume (`NAME:/path[:mode]`) or only a destination
/// (`/path`, an anonymous volume); None for a host bind (`/host:/path`), which the host
/// options take.
pub fn bind_volume(spec: &str) -> Result<Option<Wanted>> {
    let bad = |why: &str| invalid(format!("invalid volume specification: '{spec}'{why}"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (name, dest, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, _] | [s, _, _] if s.starts_with('/') => return Ok(None),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad("")),
    };
    if name.is_empty() && parts.len() > 1 {
        return Err(bad(""));
    }
    if !name.is_empty() {
        super::check_name(name).map_err(|e| invalid(format!("create {name}: {e}")))?;
    }
    let destination = check_target(dest).map_err(|e| bad(&format!(": {e}")))?;
    let parsed = parse_mode(mode).ok_or_else(|| bad(&format!(": invalid mode: {mode}")))?;
    if parsed.propagation.is_some() {
        return Err(bad(": invalid mode: propagation is for bind mounts only"));
    }
    Ok(Some(Wanted {
        name: name.to_string(),
        destination,
        read_only: parsed.read_only,
        nocopy: parsed.nocopy,
        // What inspect shows for a volume given without a mode, as moby's parser sets it.
        mode: if mode.is_empty() && !name.is_empty() {
            "z"
        } else {
            mode
        }
        .to_string(),
        options: None,
        labels: None,
        existing: false,
    }))
}

/// Whether a `Binds` entry is a host bind (`/host:/path[:mode]`).
pub fn is_host_bind(spec: &str) -> bool {
    let parts = spec.split(':').count();
    spec.starts_with('/') && (2..=3).contains(&parts)
}

fn mount_error(m: &MountSpec, why: impl std::fmt::Display) -> Error {
    invalid(format!("invalid mount config for type {:?}: {why}", m.kind))
}

/// A recursive bind's read-only flavour, as `bind-recursive` asks.
fn bind_options(m: &MountSpec) -> Result<Vec<String>> {
    let b = m.bind_options.clone().unwrap_or_default();
    let mut options = vec![if b.non_recursive { "bind" } else { "rbind" }.to_string()];
    match b.propagation.as_str() {
        "" => options.push("rprivate".into()),
        p if PROPAGATIONS.contains(&p) => options.push(p.into()),
        p => return Err(mount_error(m, format!("invalid propagation mode: {p}"))),
    }
    if b.read_only_non_recursive && b.read_only_force_recursive {
        return Err(mount_error(
            m,
            "ReadOnlyNonRecursive and ReadOnlyForceRecursive are exclusive",
        ));
    }
    if (b.read_only_non_recursive || b.read_only_force_recursive) && !m.read_only {
        return Err(mount_error(
            m,
            "bind-recursive=readonly and writable need a read-only mount",
        ));
    }
    if m.read_only {
        // ro applies to the top mount only with writable; rro (mount_setattr, Linux 5.12+)
        // makes sub-mounts read-only too, which the CLI's default `enabled` leaves as they
        // are (as moby does when the kernel lacks it).
        options.push(
            if b.read_only_force_recursive {
                "rro"
            } else {
                "ro"
            }
            .into(),
        );
    }
    Ok(options)
}

/// One `Mounts` entry, checked as moby's validateMountConfig.
fn from_mount(m: &MountSpec, plan: &mut Plan) -> Result<()> {
    let target = check_target(&m.target).map_err(|e| mount_error(m, e))?;
    let not_for = |field: &str| mount_error(m, format!("field {field} must not be specified"));
    if !m.consistency.is_empty()
        && !["default", "consistent", "cached", "delegated"].contains(&m.consistency.as_str())
    {
        return Err(mount_error(
            m,
            format!("invalid consistency: {}", m.consistency),
        ));
    }
    match m.kind.as_str() {
        "bind" => {
            if m.volume_options.is_some() {
                return Err(not_for("VolumeOptions"));
            }
            if m.tmpfs_options.is_some() {
                return Err(not_for("TmpfsOptions"));
            }
            if m.source.is_empty() {
                return Err(mount_error(m, "field Source must not be empty"));
            }
            if !m.source.starts_with('/') {
                return Err(mount_error(
                    m,
                    format!(
                        "invalid mount path: '{}' mount path must be absolute",
                        m.source
                    ),
                ));
            }
            let create = m.bind_options.as_ref().is_some_and(|b| b.create_mountpoint);
            if !create && std::fs::symlink_metadata(&m.source).is_err() {
                return Err(mount_error(
                    m,
                    format!("bind source path does not exist: {}", m.source),
                ));
            }
            let options = bind_options(m)?;
            plan.oci.push(json!({"destination": target, "type": "bind", "source": m.source, "options": options}));
        }
        "volume" => {
            if m.bind_options.is_some() {
                return Err(not_for("BindOptions"));
            }
            if m.tmpfs_options.is_some() {
                return Err(not_for("TmpfsOptions"));
            }
            let v = m.volume_options.clone().unwrap_or_default();
            if !v.subpath.is_empty() {
                return Err(mount_error(
                    m,
                    "volume subpaths are not supported by berth yet",
                ));
            }
            if !m.source.is_empty() {
                super::check_name(&m.source)
                    .map_err(|e| invalid(format!("create {}: {e}", m.source)))?;
            }
            let (driver, options) = v
                .driver_config
                .map(|d| (d.name, d.options))
                .unwrap_or_default();
            super::check_driver(&driver)?;
            super::check_options(&options)?;
            plan.volumes.push(Wanted {
                name: m.source.clone(),
                destination: target,
                read_only: m.read_only,
                nocopy: v.no_copy,
                mode: String::new(),
                options: (!options.is_empty()).then_some(options),
                labels: (!v.labels.is_empty()).then_some(v.labels),
                existing: false,
            });
        }
        "tmpfs" => {
            if !m.source.is_empty() {
                return Err(not_for("Source"));
            }
            if m.bind_options.is_some() {
                return Err(not_for("BindOptions"));
            }
            if m.volume_options.is_some() {
                return Err(not_for("VolumeOptions"));
            }
            let t = m.tmpfs_options.clone().unwrap_or_default();
            if t.size_bytes < 0 {
                return Err(mount_error(m, "invalid tmpfs size: must not be negative"));
            }
            let mut options: Vec<String> = ["nosuid", "nodev", "noexec"].map(String::from).into();
            if t.size_bytes > 0 {
                options.push(format!("size={}k", (t.size_bytes + 1023) / 1024));
            }
            if t.mode != 0 {
                options.push(format!("mode={:o}", t.mode & 0o7777));
            }
            for opt in &t.options {
                match opt.as_slice() {
                    [flag] if ["exec", "noexec"].contains(&flag.as_str()) => {
                        options.retain(|o| o != "exec" && o != "noexec");
                        options.push(flag.clone());
                    }
                    other => {
                        return Err(mount_error(
                            m,
                            format!("unsupported tmpfs option {other:?}"),
                        ))
                    }
                }
            }
            if m.read_only {
                options.push("ro".into());
            }
            plan.oci.push(json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": options}));
        }
        "" => return Err(invalid("invalid mount config: mount type unknown".into())),
        // API 1.48's: an image's files mounted read-only.
        "image" => {
            return Err(invalid(
                "mount type \"image\" is not supported by berth yet".into(),
            ))
        }
        other => {
            return Err(invalid(format!(
                "invalid mount config for type {other:?}: mount type unknown"
            )))
        }
    }
    Ok(())
}

/// `VolumesFrom` entries: `CONTAINER[:ro|rw]`.
pub fn volumes_from_spec(spec: &str) -> Result<(&str, Option<bool>)> {
    match spec.split_once(':') {
        None => Ok((spec, None)),
        Some((c, "ro")) => Ok((c, Some(true))),
        Some((c, "rw")) => Ok((c, Some(false))),
        Some((_, mode)) => Err(invalid(format!("invalid mode for volumes-from: {mode}"))),
    }
}

/// What the container asks for, given: the `Binds`, `Mounts`, the destinations of
/// `Config.Volumes` with the image's, the mounts of each `--volumes-from` container (its
/// volumes and its OCI binds, with the mode asked for), and the destinations the host
/// options already mount (`-v /host:/path`, `--tmpfs`). Duplicates are refused as moby
/// refuses them; an image volume under a destination given otherwise is dropped.
pub fn plan(
    binds: &[String],
    mounts: &[MountSpec],
    config_volumes: &BTreeSet<String>,
    from: Vec<(Vec<VolumeMount>, Vec<Value>)>,
    host_destinations: &[String],
) -> Result<Plan> {
    let mut plan = Plan::default();
    for spec in binds {
        if let Some(w) = bind_volume(spec)? {
            plan.volumes.push(w);
        }
    }
    for m in mounts {
        from_mount(m, &mut plan)?;
    }
    let mut taken: BTreeSet<String> = host_destinations.iter().map(|d| clean(d)).collect();
    let oci_destinations: Vec<String> = plan
        .oci
        .iter()
        .map(|m| m["destination"].as_str().unwrap_or_default().to_string())
        .collect();
    for dest in plan
        .volumes
        .iter()
        .map(|w| w.destination.clone())
        .chain(oci_destinations)
    {
        if !taken.insert(dest.clone()) {
            return Err(invalid(format!("Duplicate mount point: {dest}")));
        }
    }
    // --volumes-from first in moby, so that the container's own mounts win over them.
    for (volumes, binds) in from {
        for v in volumes {
            if taken.insert(v.destination.clone()) {
                plan.volumes.push(Wanted {
                    name: v.name,
                    destination: v.destination,
                    read_only: v.read_only,
                    nocopy: v.nocopy,
                    mode: v.mode,
                    options: None,
                    labels: None,
                    existing: true,
                });
            }
        }
        for b in binds {
            let dest = b["destination"].as_str().unwrap_or_default().to_string();
            if taken.insert(clean(&dest)) {
                plan.oci.push(b);
            }
        }
    }
    for dest in config_volumes {
        let destination = check_target(dest)
            .map_err(|e| invalid(format!("invalid volume specification: '{dest}': {e}")))?;
        if taken.insert(destination.clone()) {
            plan.volumes.push(Wanted {
                name: String::new(),
                destination,
                read_only: false,
                nocopy: false,
                mode: String::new(),
                options: None,
                labels: None,
                existing: false,
            });
        }
    }
    Ok(plan)
}

/// The mounts of a `--volumes-from` source with the mode asked for (`ro`/`rw`; None keeps
/// each mount's own): its volumes, and its binds (not its tmpfs mounts, as moby).
pub fn inherited(
    volumes: &[VolumeMount],
    host_mounts: &[Value],
    read_only: Option<bool>,
) -> (Vec<VolumeMount>, Vec<Value>) {
    let volumes = volumes
        .iter()
        .map(|v| {
            let mut v = v.clone();
            if let Some(ro) = read_only {
                v.read_only = ro;
                v.mode = if ro { "ro" } else { "rw" }.to_string();
            }
            v
        })
        .collect();
    let binds = host_mounts
        .iter()
        .filter(|m| m["type"] == "bind")
        .map(|m| {
            let mut m = m.clone();
            if let (Some(ro), Some(opts)) = (read_only, m["options"].as_array_mut()) {
                opts.retain(|o| o != "ro" && o != "rw" && o != "rro");
                opts.push(json!(if ro { "ro" } else { "rw" }));
            }
            m
        })
        .collect();
    (volumes, binds)
}

/// The OCI mount of a volume in a container.
pub fn oci_mount(v: &VolumeMount) -> Value {
    let mut options = vec!["rbind", "rprivate"];
    if v.read_only {
        options.push("ro");
    }
    json!({"destination": v.destination, "type": "bind", "source": v.source, "options": options})
}

/// Add `extra` to the config's mounts, then order them all parents first (fewer path
/// components first, stably), as dockerd sorts them: a mount inside a volume comes after
/// the volume.
pub fn add_to_spec(config: &mut Value, extra: Vec<Value>) {
    if let Some(mounts) = config["mounts"].as_array_mut() {
        mounts.extend(extra);
        mounts.sort_by_key(|m| {
            clean(m["destination"].as_str().unwrap_or_default())
                .split('/')
                .filter(|p| !p.is_empty())
                .count()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(
            parse_mode("ro,nocopy"),
            Some(Mode {
                read_only: true,
                nocopy: true,
                propagation: None
            })
        );
        assert!(parse_mode("z").is_some());
        for bad in ["ro,rw", "q", "z,Z", "nocopy,nocopy", "shared,slave"] {
            assert!(parse_mode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn binds_that_name_volumes() {
        let w = bind_volume("data:/srv/data:ro")
            .expect("ok")
            .expect("volume");
        assert_eq!(
            (w.name.as_str(), w.destination.as_str(), w.read_only),
            ("data", "/srv/data", true)
        );
        let anon = bind_volume("/cache").expect("ok").expect("volume");
        assert!(anon.name.is_empty());
        assert!(bind_volume("/host:/ctr").expect("ok").is_none());
        for bad in [
            "../x:/a",
            "a/b:/c",
            "x:/",
            "x:rel",
            "vol:/a:bogus",
            "vol:/a:shared",
            "a:b:c:d",
            ":/a",
        ] {
            assert!(bind_volume(bad).is_err(), "{bad}");
        }
        assert!(bind_volume("a/b:/c").is_err_and(|e| e.to_string().contains("invalid characters")));
    }

    fn mount(v: Value) -> MountSpec {
        serde_json::from_value(v).expect("mount")
    }

    #[test]
    fn mounts_checked_as_moby() {
        let plan = plan(
            &[],
            &[
                mount(json!({"Type": "volume", "Source": "v1", "Target": "/v", "VolumeOptions": {"NoCopy": true, "Labels": {"a": "b"}}})),
                mount(json!({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1777}})),
                mount(json!({"Type": "bind", "Source": "/tmp", "Target": "/b", "ReadOnly": true, "BindOptions": {"Propagation": "rslave"}})),
            ],
            &BTreeSet::from(["/img".to_string(), "/v".to_string()]),
            vec![],
            &[],
        )
        .expect("plan");
        assert_eq!(plan.volumes.len(), 2);
        assert!(plan.volumes[0].nocopy && plan.volumes[1].name.is_empty());
        assert_eq!(
            plan.oci[0]["options"],
            json!(["nosuid", "nodev", "noexec", "size=1024k", "mode=1777"])
        );
        assert_eq!(plan.oci[1]["options"], json!(["rbind", "rslave", "ro"]));
        for bad in [
            json!({"Type": "bind", "Source": "/does/not/exist/x", "Target": "/b"}),
            json!({"Type": "bind", "Target": "/b"}),
            json!({"Type": "volume", "Source": "../x", "Target": "/b"}),
            json!({"Type": "volume", "Target": "/b", "BindOptions": {}}),
            json!({"Type": "tmpfs", "Source": "x", "Target": "/b"}),
            json!({"Type": "bogus", "Target": "/b"}),
            json!({"Type": "volume", "Target": "/"}),
            json!({"Type": "volume", "Target": "/b", "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"what": "x"}}}}),
        ] {
            assert!(
                super::plan(&[], &[mount(bad.clone())], &BTreeSet::new(), vec![], &[]).is_err(),
                "{bad}"
            );
        }
        let dup = super::plan(
            &["a1:/d".into(), "a2:/d/".into()],
            &[],
            &BTreeSet::new(),
            vec![],
            &[],
        );
        assert!(dup.is_err_and(|e| e.to_string().contains("Duplicate mount point: /d")));
        let over_host = super::plan(
            &["a1:/h".into()],
            &[],
            &BTreeSet::new(),
            vec![],
            &["/h".into()],
        );
        assert!(over_host.is_err());
    }

    #[test]
    fn mounts_sorted_parents_first() {
        let mut config =
            json!({"mounts": [{"destination": "/proc"}, {"destination": "/data/sub"}]});
        add_to_spec(&mut config, vec![json!({"destination": "/data"})]);
        let order: Vec<&str> = config["mounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .map(|m| m["destination"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(order, ["/proc", "/data", "/data/sub"]);
    }
}
