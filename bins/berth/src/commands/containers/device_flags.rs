//! `--device` and `--device-cgroup-rule`, parsed and checked as the docker CLI does
//! (opts/parse.go's parseLinuxDevice and validateDeviceCgroupRule), with its messages.

use anyhow::{bail, Result};
use berth_api_types::container::{DeviceMapping, HostConfig};
use clap::Args;

#[derive(Debug, Args)]
pub struct DeviceFlags {
    /// Add a host device: HOST[:CONTAINER][:PERMISSIONS] (permissions from r, w, m).
    #[arg(long)]
    pub device: Vec<String>,
    /// A rule for the device cgroup: TYPE MAJOR:MINOR PERMISSIONS (e.g. 'c 1:3 rwm').
    #[arg(long)]
    pub device_cgroup_rule: Vec<String>,
}

impl DeviceFlags {
    pub fn apply(&self, host: &mut HostConfig) -> Result<()> {
        host.devices = self
            .device
            .iter()
            .map(|d| device(d))
            .collect::<Result<_>>()?;
        for rule in &self.device_cgroup_rule {
            check_cgroup_rule(rule)?;
        }
        host.device_cgroup_rules
            .clone_from(&self.device_cgroup_rule);
        Ok(())
    }
}

/// Permissions: one to three of r, w, m, none twice.
fn valid_mode(mode: &str) -> bool {
    !mode.is_empty()
        && mode.len() <= 3
        && mode.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && mode.char_indices().all(|(i, c)| !mode[..i].contains(c))
}

fn device(spec: &str) -> Result<DeviceMapping> {
    let parts: Vec<&str> = spec.splitn(4, ':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [src] => (*src, *src, "rwm"),
        [src, second] if valid_mode(second) => (*src, *src, *second),
        [src, dst] => (*src, *dst, "rwm"),
        [src, dst, mode] => (*src, *dst, *mode),
        _ => bail!("invalid argument \"{spec}\" for \"--device\" flag: invalid device specification: {spec}"),
    };
    if !valid_mode(mode) {
        bail!("invalid argument \"{spec}\" for \"--device\" flag: invalid device mode: {mode}");
    }
    for path in [src, dst] {
        if !path.starts_with('/') {
            bail!("invalid argument \"{spec}\" for \"--device\" flag: bad format for path: {path}");
        }
    }
    Ok(DeviceMapping {
        path_on_host: src.to_string(),
        path_in_container: dst.to_string(),
        cgroup_permissions: mode.to_string(),
    })
}

/// `TYPE MAJOR:MINOR PERMISSIONS`, TYPE one of a, b, c and a number or `*` each side.
fn check_cgroup_rule(rule: &str) -> Result<()> {
    let number = |s: &str| s == "*" || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    let valid = match rule.split(' ').collect::<Vec<_>>().as_slice() {
        [kind, numbers, mode] => {
            matches!(*kind, "a" | "b" | "c")
                && numbers
                    .split_once(':')
                    .is_some_and(|(major, minor)| number(major) && number(minor))
                && mode.len() <= 3
                && !mode.is_empty()
                && mode.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        }
        _ => false,
    };
    if !valid {
        bail!("invalid argument \"{rule}\" for \"--device-cgroup-rule\" flag: invalid device cgroup format '{rule}'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(spec: &str) -> (String, String, String) {
        let d = device(spec).expect(spec);
        (d.path_on_host, d.path_in_container, d.cgroup_permissions)
    }

    #[test]
    fn devices_as_the_docker_cli_reads_them() {
        let own = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(parts("/dev/fuse"), own("/dev/fuse", "/dev/fuse", "rwm"));
        assert_eq!(parts("/dev/fuse:r"), own("/dev/fuse", "/dev/fuse", "r"));
        assert_eq!(
            parts("/dev/sda:/dev/xvda"),
            own("/dev/sda", "/dev/xvda", "rwm")
        );
        assert_eq!(
            parts("/dev/sda:/dev/xvda:rw"),
            own("/dev/sda", "/dev/xvda", "rw")
        );
        for (bad, message) in [
            ("/dev/a:/dev/b:rwm:x", "invalid device specification"),
            ("/dev/a:/dev/b:rr", "invalid device mode: rr"),
            ("/dev/a:xvda", "bad format for path: xvda"),
            ("fuse", "bad format for path: fuse"),
        ] {
            let err = device(bad).expect_err(bad).to_string();
            assert!(err.contains(message), "{bad}: {err}");
        }
        assert!(check_cgroup_rule("c 1:3 rwm").is_ok());
        assert!(check_cgroup_rule("a *:* r").is_ok());
        assert!(check_cgroup_rule("x 1:3 rwm").is_err());
        assert!(check_cgroup_rule("c 1 rwm").is_err());
    }
}
