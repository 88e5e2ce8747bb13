//! blockIO: weights and throttles, as v1's blkio files or v2's io.weight / io.max.
//!
//! Weights go to BFQ's files when the kernel has them (the scheduler that still honours
//! weights), else to the generic ones, as runc does.

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use super::{invalid, unsupported, w, Write};
use crate::error::Result;
use crate::layout::Version;

fn weight(field: &str, v: u16) -> Result<u16> {
    if (10..=1000).contains(&v) {
        Ok(v)
    } else {
        Err(invalid(field, format!("{v} is not between 10 and 1000")))
    }
}

/// runc's mapping of a blkio weight (10..1000) onto io.weight (1..10000).
pub fn blkio_weight_to_io_weight(v: u16) -> u64 {
    1 + (u64::from(v).saturating_sub(10)) * 9999 / 990
}

fn device(major: i64, minor: i64) -> Result<String> {
    if major < 0 || minor < 0 {
        return Err(invalid(
            "blockIO device",
            format!("{major}:{minor} is not a device number"),
        ));
    }
    Ok(format!("{major}:{minor}"))
}

type Throttles<'a> = [(
    &'a str,
    &'static str,
    &'static str,
    &'a Option<Vec<LinuxThrottleDevice>>,
); 4];

pub(super) fn blkio(
    b: &LinuxBlockIo,
    version: Option<Version>,
    out: &mut Vec<Write>,
) -> Result<()> {
    let throttles: Throttles = [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    match version {
        Some(Version::V1) => v1(b, &throttles, out),
        _ => v2(b, &throttles, out),
    }
}

fn v1(b: &LinuxBlockIo, throttles: &Throttles, out: &mut Vec<Write>) -> Result<()> {
    if let Some(v) = b.weight() {
        let v = weight("blockIO.weight", v)?;
        out.push(w("blkio", "blkio.weight", v).or_if_present("blkio.bfq.weight", v));
    }
    if let Some(v) = b.leaf_weight() {
        out.push(w(
            "blkio",
            "blkio.leaf_weight",
            weight("blockIO.leafWeight", v)?,
        ));
    }
    for d in b.weight_device().iter().flatten() {
        let dev = device(d.major(), d.minor())?;
        if let Some(v) = d.weight() {
            let line = format!("{dev} {}", weight("blockIO.weightDevice.weight", v)?);
            out.push(
                w("blkio", "blkio.weight_device", &line)
                    .or_if_present("blkio.bfq.weight_device", &line),
            );
        }
        if let Some(v) = d.leaf_weight() {
            let v = weight("blockIO.weightDevice.leafWeight", v)?;
            out.push(w("blkio", "blkio.leaf_weight_device", format!("{dev} {v}")));
        }
    }
    for (_, file, _, list) in throttles {
        for t in list.iter().flatten() {
            out.push(w(
                "blkio",
                *file,
                format!("{} {}", device(t.major(), t.minor())?, t.rate()),
            ));
        }
    }
    Ok(())
}

fn v2(b: &LinuxBlockIo, throttles: &Throttles, out: &mut Vec<Write>) -> Result<()> {
    if b.leaf_weight().is_some()
        || b.weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().is_some())
    {
        return Err(unsupported("blockIO.leafWeight", "on cgroup v2"));
    }
    if let Some(v) = b.weight() {
        let v = weight("blockIO.weight", v)?;
        out.push(
            w(
                "io",
                "io.weight",
                format!("default {}", blkio_weight_to_io_weight(v)),
            )
            .or_if_present("io.bfq.weight", v),
        );
    }
    for d in b.weight_device().iter().flatten() {
        let dev = device(d.major(), d.minor())?;
        if let Some(v) = d.weight() {
            let v = weight("blockIO.weightDevice.weight", v)?;
            out.push(
                w(
                    "io",
                    "io.weight",
                    format!("{dev} {}", blkio_weight_to_io_weight(v)),
                )
                .or_if_present("io.bfq.weight", format!("{dev} {v}")),
            );
        }
    }
    for (_, _, key, list) in throttles {
        for t in list.iter().flatten() {
            let rate = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            out.push(w(
                "io",
                "io.max",
                format!("{} {key}={rate}", device(t.major(), t.minor())?),
            ));
        }
    }
    Ok(())
}
