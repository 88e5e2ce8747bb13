//! Block I/O: `--blkio-weight`, `--blkio-weight-device` and the `--device-read/write-bps/iops`
//! throttles. Checked at create as dockerd checks them (what the kernel lacks is discarded
//! with its warning); the devices are named by path and turned into major:minor at each
//! start, as dockerd does (a device node's number can change between runs).

use std::os::unix::fs::FileTypeExt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::invalid;
use super::sysinfo::SysInfo;
use crate::containers::request::{HostConfig, ThrottleDevice, WeightDevice};
use crate::error::Result;

/// A device and a number (a weight, or a rate per second).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceValue {
    pub path: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Blkio {
    #[serde(default)]
    pub weight: u16,
    #[serde(default)]
    pub weight_devices: Vec<DeviceValue>,
    #[serde(default)]
    pub read_bps: Vec<DeviceValue>,
    #[serde(default)]
    pub write_bps: Vec<DeviceValue>,
    #[serde(default)]
    pub read_iops: Vec<DeviceValue>,
    #[serde(default)]
    pub write_iops: Vec<DeviceValue>,
}

/// The block device at `path` as (major, minor); Go's os.PathError text when it is missing.
fn device_number(path: &str) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| {
        let reason = e.raw_os_error().map_or_else(
            || e.to_string(),
            |n| nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        );
        invalid(format!("stat {path}: {reason}"))
    })?;
    if !meta.file_type().is_block_device() {
        return Err(invalid(format!("{path} is not a block device")));
    }
    let rdev = std::os::unix::fs::MetadataExt::rdev(&meta);
    Ok((u64::from(libc::major(rdev)), u64::from(libc::minor(rdev))))
}

/// A throttle list, checked; discarded with `warning` (dockerd's) when the kernel lacks it.
fn throttles(
    list: &[ThrottleDevice],
    supported: bool,
    warning: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<DeviceValue>> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    if !supported {
        warnings.push(warning.to_string());
        return Ok(Vec::new());
    }
    list.iter()
        .map(|d| {
            device_number(&d.path)?;
            Ok(DeviceValue {
                path: d.path.clone(),
                value: d.rate,
            })
        })
        .collect()
}

fn weight_devices(
    list: &[WeightDevice],
    sys: &SysInfo,
    warnings: &mut Vec<String>,
) -> Result<Vec<DeviceValue>> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    if !sys.blkio_weight_device {
        warnings.push("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.".into());
        return Ok(Vec::new());
    }
    list.iter()
        .map(|d| {
            if !(10..=1000).contains(&d.weight) {
                return Err(invalid(format!(
                    "invalid weight for device: {}:{}",
                    d.path, d.weight
                )));
            }
            device_number(&d.path)?;
            Ok(DeviceValue {
                path: d.path.clone(),
                value: u64::from(d.weight),
            })
        })
        .collect()
}

/// The block I/O options of `h`, checked against this host.
pub fn parse(h: &HostConfig, sys: &SysInfo, warnings: &mut Vec<String>) -> Result<Blkio> {
    if h.io_maximum_bandwidth != 0 {
        return Err(invalid(
            "invalid option: QoS maximum bandwidth configuration is not supported on linux".into(),
        ));
    }
    if h.io_maximum_iops != 0 {
        return Err(invalid(
            "invalid option: QoS maximum IOPs configuration is not supported on linux".into(),
        ));
    }
    let mut weight = h.blkio_weight;
    if weight > 0 && !sys.blkio_weight {
        warnings.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".into());
        weight = 0;
    }
    if weight > 0 && !(10..=1000).contains(&weight) {
        return Err(invalid("Range of blkio weight is from 10 to 1000".into()));
    }
    Ok(Blkio {
        weight,
        weight_devices: weight_devices(h.blkio_weight_device.as_deref().unwrap_or_default(), sys, warnings)?,
        read_bps: throttles(
            h.blkio_device_read_bps.as_deref().unwrap_or_default(),
            sys.blkio_read_bps,
            "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.",
            warnings,
        )?,
        write_bps: throttles(
            h.blkio_device_write_bps.as_deref().unwrap_or_default(),
            sys.blkio_write_bps,
            "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded.",
            warnings,
        )?,
        read_iops: throttles(
            h.blkio_device_read_iops.as_deref().unwrap_or_default(),
            sys.blkio_read_iops,
            "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded.",
            warnings,
        )?,
        write_iops: throttles(
            h.blkio_device_write_iops.as_deref().unwrap_or_default(),
            sys.blkio_write_iops,
            "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.",
            warnings,
        )?,
    })
}

impl Blkio {
    fn is_empty(&self) -> bool {
        *self == Blkio::default()
    }

    /// The OCI blockIO object, with the devices' numbers as they are now (None: nothing).
    pub fn for_container(&self) -> Result<Option<Value>> {
        if self.is_empty() {
            return Ok(None);
        }
        let mut out = Map::new();
        if self.weight > 0 {
            out.insert("weight".into(), json!(self.weight));
        }
        let entries = |list: &[DeviceValue], key: &str| -> Result<Vec<Value>> {
            list.iter()
                .map(|d| {
                    let (major, minor) = device_number(&d.path)?;
                    Ok(json!({"major": major, "minor": minor, key: d.value}))
                })
                .collect()
        };
        for (field, list, key) in [
            ("weightDevice", &self.weight_devices, "weight"),
            ("throttleReadBpsDevice", &self.read_bps, "rate"),
            ("throttleWriteBpsDevice", &self.write_bps, "rate"),
            ("throttleReadIOPSDevice", &self.read_iops, "rate"),
            ("throttleWriteIOPSDevice", &self.write_iops, "rate"),
        ] {
            if !list.is_empty() {
                out.insert(field.into(), Value::Array(entries(list, key)?));
            }
        }
        Ok(Some(Value::Object(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(v: Value) -> HostConfig {
        serde_json::from_value(v).expect("host config")
    }

    /// A block device every test machine has (the loop control's siblings may not exist).
    fn block_device() -> Option<String> {
        std::fs::read_dir("/dev")
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.file_type().is_block_device()))
            .map(|p| p.display().to_string())
    }

    #[test]
    fn weights_and_throttles_become_device_numbers() {
        let Some(dev) = block_device() else { return };
        let b = parse(
            &host(
                json!({"BlkioWeight": 300, "BlkioDeviceReadBps": [{"Path": dev, "Rate": 1048576}],
                         "BlkioWeightDevice": [{"Path": dev, "Weight": 200}]}),
            ),
            &SysInfo::all_v1(),
            &mut Vec::new(),
        )
        .expect("blkio");
        let oci = b.for_container().expect("numbers").expect("blockIO");
        assert_eq!(oci["weight"], 300);
        assert_eq!(oci["throttleReadBpsDevice"][0]["rate"], 1048576);
        assert_eq!(oci["weightDevice"][0]["weight"], 200);
        assert!(oci["throttleReadBpsDevice"][0]["major"].as_u64().is_some());
    }

    #[test]
    fn dockerd_messages_and_warnings() {
        let sys = SysInfo::all_v1();
        for (bad, msg) in [
            (
                json!({"BlkioWeight": 5}),
                "Range of blkio weight is from 10 to 1000",
            ),
            (json!({"BlkioWeight": 1001}), "Range of blkio weight"),
            (
                json!({"BlkioDeviceReadBps": [{"Path": "/dev/no-such-disk", "Rate": 1}]}),
                "stat /dev/no-such-disk: no such file or directory",
            ),
            (
                json!({"BlkioDeviceWriteIOps": [{"Path": "/dev/null", "Rate": 1}]}),
                "/dev/null is not a block device",
            ),
            (
                json!({"BlkioWeightDevice": [{"Path": "/dev/null", "Weight": 5}]}),
                "invalid weight for device: /dev/null:5",
            ),
            (json!({"IOMaximumBandwidth": 1}), "QoS maximum bandwidth"),
            (json!({"IOMaximumIOps": 1}), "QoS maximum IOPs"),
        ] {
            let err = parse(&host(bad.clone()), &sys, &mut Vec::new());
            assert!(
                err.as_ref().is_err_and(|e| e.to_string().contains(msg)),
                "{bad}: {err:?}"
            );
        }
        // Without the kernel's support a weight is dropped, range or not, as dockerd does.
        let mut w = Vec::new();
        let b =
            parse(&host(json!({"BlkioWeight": 5})), &SysInfo::none(), &mut w).expect("discarded");
        assert_eq!(b, Blkio::default());
        assert_eq!(
            w,
            ["Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."]
        );
    }
}
