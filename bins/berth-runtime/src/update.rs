//! `update`'s flags and --resources file, as one LinuxResources.

use std::io::Read;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use crate::cli::UpdateArgs;

/// Bytes from "100", "64k", "512m", "2g" (runc's suffixes), or -1.
pub fn bytes(flag: &str, value: &str) -> Result<i64> {
    let v = value.trim().to_ascii_lowercase();
    if v == "-1" {
        return Ok(-1);
    }
    let v = v.strip_suffix('b').unwrap_or(&v);
    let (digits, scale) = match v.chars().last() {
        Some('k') => (&v[..v.len() - 1], 1i64 << 10),
        Some('m') => (&v[..v.len() - 1], 1 << 20),
        Some('g') => (&v[..v.len() - 1], 1 << 30),
        Some('t') => (&v[..v.len() - 1], 1 << 40),
        _ => (v, 1),
    };
    match digits.parse::<i64>() {
        Ok(n) if n >= 0 => n
            .checked_mul(scale)
            .with_context(|| format!("--{flag} {value}: too large")),
        _ => bail!("--{flag} {value:?} is not a size like 100m, 1g or -1"),
    }
}

fn set(obj: &mut Value, path: &[&str], v: Value) {
    let mut cur = obj;
    for key in path {
        if !cur.is_object() {
            *cur = json!({});
        }
        cur = &mut cur[*key];
    }
    *cur = v;
}

pub fn resources(args: &UpdateArgs) -> Result<LinuxResources> {
    let mut r: Value = match &args.resources {
        None => json!({}),
        Some(p) => {
            let mut text = String::new();
            if p.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("read resources from stdin")?;
            } else {
                text =
                    std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?;
            }
            serde_json::from_str(&text).context("--resources is not valid LinuxResources JSON")?
        }
    };
    let sizes = [
        ("memory", &args.memory, ["memory", "limit"]),
        (
            "memory-reservation",
            &args.memory_reservation,
            ["memory", "reservation"],
        ),
        ("memory-swap", &args.memory_swap, ["memory", "swap"]),
    ];
    for (flag, value, path) in sizes {
        if let Some(v) = value {
            set(&mut r, &path, json!(bytes(flag, v)?));
        }
    }
    let numbers = [
        (args.cpu_share.map(|v| json!(v)), ["cpu", "shares"]),
        (args.cpu_period.map(|v| json!(v)), ["cpu", "period"]),
        (args.cpu_quota.map(|v| json!(v)), ["cpu", "quota"]),
        (
            args.cpu_rt_period.map(|v| json!(v)),
            ["cpu", "realtimePeriod"],
        ),
        (
            args.cpu_rt_runtime.map(|v| json!(v)),
            ["cpu", "realtimeRuntime"],
        ),
        (args.cpuset_cpus.as_ref().map(|v| json!(v)), ["cpu", "cpus"]),
        (args.cpuset_mems.as_ref().map(|v| json!(v)), ["cpu", "mems"]),
        (args.pids_limit.map(|v| json!(v)), ["pids", "limit"]),
        (args.blkio_weight.map(|v| json!(v)), ["blockIO", "weight"]),
    ];
    for (value, path) in numbers {
        if let Some(v) = value {
            set(&mut r, &path, v);
        }
    }
    if r.as_object().is_some_and(|o| o.is_empty()) {
        bail!("nothing to update: give --resources or a resource flag");
    }
    serde_json::from_value(r).context("the resources do not form valid LinuxResources")
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn sizes_like_runc() {
        assert_eq!(bytes("memory", "100").ok(), Some(100));
        assert_eq!(bytes("memory", "64k").ok(), Some(65536));
        assert_eq!(bytes("memory", "512M").ok(), Some(512 << 20));
        assert_eq!(bytes("memory", "1g").ok(), Some(1 << 30));
        assert_eq!(bytes("memory", "-1").ok(), Some(-1));
        assert!(bytes("memory", "abc").is_err());
        assert!(bytes("memory", "-5").is_err());
    }
}
