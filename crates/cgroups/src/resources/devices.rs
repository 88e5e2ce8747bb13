//! devices: the config's rules followed by the devices every container needs (runc's
//! list), as v1 devices.allow/deny writes or, on v2, the rules of an eBPF filter.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::{invalid, w, Write};
use crate::devices::{Access, DeviceKind, DeviceRule};
use crate::error::Result;
use crate::layout::Version;

/// (kind, major, minor, access) of every device allowed after the config's rules.
pub(super) const DEFAULT_ALLOWED: [(DeviceKind, Option<u32>, Option<u32>, &str); 12] = [
    (DeviceKind::Char, None, None, "m"),
    (DeviceKind::Block, None, None, "m"),
    (DeviceKind::Char, Some(1), Some(3), "rwm"),
    (DeviceKind::Char, Some(1), Some(5), "rwm"),
    (DeviceKind::Char, Some(1), Some(7), "rwm"),
    (DeviceKind::Char, Some(1), Some(8), "rwm"),
    (DeviceKind::Char, Some(1), Some(9), "rwm"),
    (DeviceKind::Char, Some(5), Some(0), "rwm"),
    (DeviceKind::Char, Some(5), Some(1), "rwm"),
    (DeviceKind::Char, Some(5), Some(2), "rwm"),
    (DeviceKind::Char, Some(136), None, "rwm"),
    (DeviceKind::Char, Some(10), Some(200), "rwm"),
];

fn number(field: &str, n: Option<i64>) -> Result<Option<u32>> {
    match n {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| invalid(field, format!("{n} is not a device number"))),
    }
}

fn rule(r: &LinuxDeviceCgroup) -> Result<DeviceRule> {
    let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => DeviceKind::All,
        LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
        LinuxDeviceType::B => DeviceKind::Block,
        LinuxDeviceType::P => {
            return Err(invalid(
                "devices.type",
                "\"p\" cannot be controlled by the devices cgroup",
            ))
        }
    };
    let letters = r.access().clone().unwrap_or_else(|| "rwm".into());
    let access = Access::parse(&letters).ok_or_else(|| {
        invalid(
            "devices.access",
            format!("{letters:?} is not made of r, w and m"),
        )
    })?;
    Ok(DeviceRule {
        allow: r.allow(),
        kind,
        major: number("devices.major", r.major())?,
        minor: number("devices.minor", r.minor())?,
        access,
    })
}

fn defaults() -> impl Iterator<Item = DeviceRule> {
    DEFAULT_ALLOWED
        .iter()
        .map(|(kind, major, minor, access)| DeviceRule {
            allow: true,
            kind: *kind,
            major: *major,
            minor: *minor,
            access: Access::parse(access).unwrap_or(Access::ALL),
        })
}

/// v1's "c 1:3 rw" form.
fn v1_line(r: &DeviceRule) -> String {
    let kind = match r.kind {
        DeviceKind::All => "a",
        DeviceKind::Char => "c",
        DeviceKind::Block => "b",
    };
    let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
    let mut access = String::new();
    for (bit, letter) in [
        (Access::READ, 'r'),
        (Access::WRITE, 'w'),
        (Access::MKNOD, 'm'),
    ] {
        if r.access.0 & bit != 0 {
            access.push(letter);
        }
    }
    format!("{kind} {}:{} {access}", num(r.major), num(r.minor))
}

/// The rules to enforce, or None when the config has none.
pub(super) fn devices(
    rules: &[LinuxDeviceCgroup],
    version: Option<Version>,
    out: &mut Vec<Write>,
) -> Result<Option<Vec<DeviceRule>>> {
    if rules.is_empty() {
        return Ok(None);
    }
    let all: Vec<DeviceRule> = rules
        .iter()
        .map(rule)
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .chain(defaults())
        .collect();
    if version == Some(Version::V1) {
        for r in &all {
            let file = if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            out.push(w("devices", file, v1_line(r)));
        }
        return Ok(None);
    }
    Ok(Some(all))
}
