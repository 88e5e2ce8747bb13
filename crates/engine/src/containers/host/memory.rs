//! linux.resources.memory from HostConfig: limit, swap, reservation, swappiness and the OOM
//! killer, with dockerd's checks, messages and warnings (daemon_unix.go's
//! verifyPlatformContainerResources, in its order).

use serde_json::{json, Map, Value};

use super::invalid;
use super::sysinfo::SysInfo;
use crate::containers::request::HostConfig;
use crate::error::Result;

/// dockerd's floor for memory limits and reservations.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The memory object (None when nothing is asked); warnings for what this host cannot do.
pub fn memory(h: &HostConfig, sys: &SysInfo, warnings: &mut Vec<String>) -> Result<Option<Value>> {
    let mut out = Map::new();
    limit_and_swap(h, &mut out)?;
    // -1 is "leave it as it is" (moby's fixMemorySwappiness).
    let mut swappiness = h.memory_swappiness.filter(|s| *s != -1);
    if swappiness.is_some() && !sys.memory_swappiness {
        warnings.push("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.".into());
        swappiness = None;
    }
    if let Some(s) = swappiness {
        if !(0..=100).contains(&s) {
            return Err(invalid(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            )));
        }
        out.insert("swappiness".into(), json!(s));
    }
    let mut reservation = h.memory_reservation;
    if reservation > 0 && !sys.memory_reservation {
        warnings.push("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
        reservation = 0;
    }
    if reservation > 0 && reservation < MIN_MEMORY {
        return Err(invalid("Minimum memory reservation allowed is 6MB".into()));
    }
    if h.memory > 0 && reservation > 0 && h.memory < reservation {
        return Err(invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        ));
    }
    if reservation > 0 {
        out.insert("reservation".into(), json!(reservation));
    }
    let mut oom_kill_disable = h.oom_kill_disable;
    if oom_kill_disable.is_some() && !sys.oom_kill_disable {
        if oom_kill_disable == Some(true) {
            warnings.push(
                "Your kernel does not support OomKillDisable. OomKillDisable discarded.".into(),
            );
        }
        oom_kill_disable = None;
    }
    if oom_kill_disable == Some(true) {
        if h.memory == 0 {
            warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
        }
        out.insert("disableOOMKiller".into(), json!(true));
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

/// The limit and the swap limit (memory plus swap; twice the limit by default).
fn limit_and_swap(h: &HostConfig, out: &mut Map<String, Value>) -> Result<()> {
    let (m, swap) = (h.memory, h.memory_swap);
    if m != 0 && m < MIN_MEMORY {
        return Err(invalid("Minimum memory limit allowed is 6MB".into()));
    }
    if swap < -1 {
        return Err(invalid(format!(
            "invalid MemorySwap {swap}: a size in bytes, or -1 for unlimited swap"
        )));
    }
    if m == 0 {
        if swap > 0 {
            return Err(invalid(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
                    .into(),
            ));
        }
        return Ok(());
    }
    let swap = match swap {
        0 => m.saturating_mul(2),
        -1 => -1,
        s if s < m => {
            return Err(invalid(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ))
        }
        s => s,
    };
    out.insert("limit".into(), json!(m));
    out.insert("swap".into(), json!(swap));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(v: Value) -> HostConfig {
        serde_json::from_value(v).expect("host config")
    }

    fn on(sys: &SysInfo, v: Value) -> (Result<Option<Value>>, Vec<String>) {
        let mut warnings = Vec::new();
        (memory(&host(v), sys, &mut warnings), warnings)
    }

    #[test]
    fn reservation_swappiness_and_the_oom_killer() {
        let (m, w) = on(
            &SysInfo::all_v1(),
            json!({"Memory": 67108864, "MemoryReservation": 33554432, "MemorySwappiness": 0, "OomKillDisable": true}),
        );
        assert_eq!(
            m.expect("memory"),
            Some(
                json!({"limit": 67108864, "swap": 134217728, "reservation": 33554432, "swappiness": 0, "disableOOMKiller": true})
            )
        );
        assert!(w.is_empty(), "{w:?}");
        // -1 and false ask for nothing.
        let (m, _) = on(
            &SysInfo::all_v1(),
            json!({"MemorySwappiness": -1, "OomKillDisable": false}),
        );
        assert_eq!(m.expect("memory"), None);
    }

    #[test]
    fn what_the_kernel_lacks_is_discarded_with_dockerd_warnings() {
        let (m, w) = on(
            &SysInfo::none(),
            json!({"MemoryReservation": 33554432, "MemorySwappiness": 10, "OomKillDisable": true}),
        );
        assert_eq!(m.expect("memory"), None);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("memory swappiness"));
        assert!(w[1].contains("memory soft limit"));
        assert!(w[2].contains("OomKillDisable discarded"));
        let (_, w) = on(&SysInfo::all_v1(), json!({"OomKillDisable": true}));
        assert!(w[0].starts_with("OOM killer is disabled"), "{w:?}");
    }

    #[test]
    fn out_of_range_values_are_refused_with_dockerd_messages() {
        for (bad, msg) in [
            (
                json!({"Memory": 1000}),
                "Minimum memory limit allowed is 6MB",
            ),
            (json!({"Memory": -5}), "Minimum memory limit"),
            (json!({"MemorySwap": 100}), "always set the Memory limit"),
            (json!({"MemorySwap": -2}), "MemorySwap"),
            (
                json!({"Memory": 67108864, "MemorySwap": 1000}),
                "Minimum memoryswap",
            ),
            (
                json!({"MemorySwappiness": 101}),
                "Invalid value: 101, valid memory swappiness range is 0-100",
            ),
            (
                json!({"MemorySwappiness": -2}),
                "valid memory swappiness range",
            ),
            (
                json!({"MemoryReservation": 1000}),
                "Minimum memory reservation allowed is 6MB",
            ),
            (
                json!({"Memory": 16777216, "MemoryReservation": 33554432}),
                "Minimum memory limit can not be less than memory reservation limit",
            ),
        ] {
            let (err, _) = on(&SysInfo::all_v1(), bad.clone());
            assert!(
                err.as_ref().is_err_and(|e| e.to_string().contains(msg)),
                "{bad}: {err:?}"
            );
        }
    }
}
