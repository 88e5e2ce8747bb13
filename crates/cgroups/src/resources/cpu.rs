//! cpu and cpuset: shares/weight, quota/period/burst, realtime, idle, cpus and mems.

use oci_spec::runtime::LinuxCpu;

use super::{invalid, unsupported, w, Write};
use crate::error::Result;
use crate::layout::Version;

/// runc's mapping of cpu.shares (2..262144) onto cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        0
    } else {
        1 + (shares.clamp(2, 262144) - 2) * 9999 / 262142
    }
}

pub(super) fn cpu(c: &LinuxCpu, version: Option<Version>, out: &mut Vec<Write>) -> Result<()> {
    if let Some(q) = c.quota() {
        if q == 0 || q < -1 {
            return Err(invalid(
                "cpu.quota",
                format!("{q} is not a positive number of microseconds or -1"),
            ));
        }
    }
    if c.period().is_some_and(|p| !(1000..=1_000_000).contains(&p)) {
        return Err(invalid(
            "cpu.period",
            "must be between 1000 and 1000000 microseconds",
        ));
    }
    match version {
        Some(Version::V1) => {
            if let Some(s) = c.shares() {
                out.push(w("cpu", "cpu.shares", s));
            }
            if let Some(p) = c.period() {
                out.push(w("cpu", "cpu.cfs_period_us", p));
            }
            if let Some(q) = c.quota() {
                out.push(w("cpu", "cpu.cfs_quota_us", q));
            }
            if let Some(p) = c.realtime_period() {
                out.push(w("cpu", "cpu.rt_period_us", p));
            }
            if let Some(r) = c.realtime_runtime() {
                out.push(w("cpu", "cpu.rt_runtime_us", r));
            }
            if let Some(b) = c.burst() {
                out.push(w("cpu", "cpu.cfs_burst_us", b));
            }
            if let Some(i) = c.idle() {
                out.push(w("cpu", "cpu.idle", i));
            }
        }
        _ => {
            if let Some(s) = c.shares() {
                out.push(w("cpu", "cpu.weight", shares_to_weight(s)));
            }
            if c.quota().is_some() || c.period().is_some() {
                let quota = c
                    .quota()
                    .filter(|q| *q > 0)
                    .map_or("max".to_string(), |q| q.to_string());
                out.push(w(
                    "cpu",
                    "cpu.max",
                    format!("{quota} {}", c.period().unwrap_or(100_000)),
                ));
            }
            if let Some(b) = c.burst() {
                out.push(w("cpu", "cpu.max.burst", b));
            }
            if let Some(i) = c.idle() {
                out.push(w("cpu", "cpu.idle", i));
            }
            if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
                return Err(unsupported("cpu.realtimeRuntime", "on cgroup v2"));
            }
        }
    }
    for (field, file, value) in [
        ("cpu.cpus", "cpuset.cpus", c.cpus()),
        ("cpu.mems", "cpuset.mems", c.mems()),
    ] {
        if let Some(v) = value {
            if !v
                .chars()
                .all(|ch| ch.is_ascii_digit() || ch == ',' || ch == '-')
            {
                return Err(invalid(field, format!("{v:?} is not a list like 0-2,4")));
            }
            out.push(w("cpuset", file, v));
        }
    }
    Ok(())
}
