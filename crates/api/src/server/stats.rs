//! GET /containers/{id}/stats: moby's StatsResponse, streamed every second or sent once.
//!
//! Each message carries the previous sample as `precpu_stats` (the docker CLI's CPU % is
//! the ratio of the two deltas). `stream=false` primes that previous sample over a short
//! window instead of dockerd's full second, so `docker stats --no-stream` answers quickly;
//! `one-shot=true` sends a single sample without one, as dockerd does.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use berth_api_types::container::stats::{
    BlkioStatEntry, BlkioStats, CpuStats, CpuUsage, MemoryStats, NetworkStats, PidsStats,
    StatsResponse, StorageStats, ThrottlingData,
};
use berth_engine::containers::stats::{BlkioEntry, NetCounters, Sample};
use hyper::{Response, StatusCode};

use super::body::{self, Body};
use super::error::ApiResult;
use super::Ctx;

/// Between two streamed samples, as dockerd's collector.
const STREAM_INTERVAL: Duration = Duration::from_secs(1);
/// The window `stream=false` measures CPU use over.
const PRIME_WINDOW: Duration = Duration::from_millis(200);

/// Go's zero time, which dockerd sends for a sample it does not have.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time(t: Option<SystemTime>) -> String {
    t.map_or_else(
        || ZERO_TIME.to_string(),
        |t| humantime::format_rfc3339_nanos(t).to_string(),
    )
}

fn cpu_stats(s: &Sample) -> CpuStats {
    let Some(u) = &s.usage else {
        return CpuStats::default();
    };
    let c = &u.cgroup.cpu;
    CpuStats {
        cpu_usage: CpuUsage {
            total_usage: c.usage.total,
            percpu_usage: c.usage.percpu.clone(),
            usage_in_kernelmode: c.usage.kernel,
            usage_in_usermode: c.usage.user,
        },
        system_cpu_usage: u.host.system_cpu_ns,
        online_cpus: u.host.online_cpus,
        throttling_data: ThrottlingData {
            periods: c.throttling.periods,
            throttled_periods: c.throttling.throttled_periods,
            throttled_time: c.throttling.throttled_time,
        },
    }
}

fn memory_stats(s: &Sample) -> MemoryStats {
    let Some(u) = &s.usage else {
        return MemoryStats::default();
    };
    let m = &u.cgroup.memory;
    // No limit of its own: the host's memory is the limit, as dockerd reports it.
    let limit = match u.host.memory_bytes {
        0 => m.usage.limit,
        host => m.usage.limit.min(host),
    };
    MemoryStats {
        usage: m.usage.usage,
        max_usage: m.usage.max,
        stats: m.raw.clone(),
        failcnt: m.usage.failcnt,
        limit,
        ..MemoryStats::default()
    }
}

fn blkio_entries(entries: &[BlkioEntry]) -> Option<Vec<BlkioStatEntry>> {
    (!entries.is_empty()).then(|| {
        entries
            .iter()
            .map(|e| BlkioStatEntry {
                major: e.major,
                minor: e.minor,
                op: e.op.clone(),
                value: e.value,
            })
            .collect()
    })
}

/// The message for `now`, with `before` as its previous sample.
pub fn response(now: &Sample, before: Option<&Sample>) -> StatsResponse {
    let usage = now.usage.as_ref();
    StatsResponse {
        name: now.name.clone(),
        id: now.id.clone(),
        read: time(usage.map(|_| now.read)),
        preread: time(before.filter(|b| b.usage.is_some()).map(|b| b.read)),
        pids_stats: usage.map_or_else(PidsStats::default, |u| PidsStats {
            current: u.cgroup.pids.current,
            limit: u.cgroup.pids.limit,
        }),
        blkio_stats: usage.map_or_else(BlkioStats::default, |u| BlkioStats {
            io_service_bytes_recursive: blkio_entries(&u.cgroup.blkio.io_service_bytes_recursive),
            io_serviced_recursive: blkio_entries(&u.cgroup.blkio.io_serviced_recursive),
            ..BlkioStats::default()
        }),
        num_procs: 0,
        storage_stats: StorageStats::default(),
        cpu_stats: cpu_stats(now),
        precpu_stats: before.map(cpu_stats).unwrap_or_default(),
        memory_stats: memory_stats(now),
        networks: usage
            .filter(|u| !u.networks.is_empty())
            .map(|u| networks(&u.networks)),
    }
}

fn networks(counters: &BTreeMap<String, NetCounters>) -> BTreeMap<String, NetworkStats> {
    counters
        .iter()
        .map(|(name, c)| {
            let stats = NetworkStats {
                rx_bytes: c.rx_bytes,
                rx_packets: c.rx_packets,
                rx_errors: c.rx_errors,
                rx_dropped: c.rx_dropped,
                tx_bytes: c.tx_bytes,
                tx_packets: c.tx_packets,
                tx_errors: c.tx_errors,
                tx_dropped: c.tx_dropped,
                ..NetworkStats::default()
            };
            (name.clone(), stats)
        })
        .collect()
}

/// GET /containers/{id}/stats?stream=&one-shot=
pub(super) async fn stats(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let stream = ctx.query.get("stream").is_none() || ctx.query.bool("stream");
    let one_shot = super::compat::stats_one_shot(ctx.query.bool("one-shot"), ctx.version);
    let first = {
        let name = name.clone();
        ctx.blocking(move |e| Ok(e.container_stats(&name)?)).await?
    };
    if !stream {
        let message = if one_shot || first.usage.is_none() {
            response(&first, None)
        } else {
            tokio::time::sleep(PRIME_WINDOW).await;
            let now = ctx.blocking(move |e| Ok(e.container_stats(&name)?)).await?;
            response(&now, Some(&first))
        };
        return Ok(one(&message));
    }
    let (mut resp, out) = body::streamed_async("application/json");
    let engine = ctx.state.engine.clone();
    tokio::spawn(async move {
        let mut before: Option<Sample> = None;
        let mut now = first;
        loop {
            if out
                .send(Ok(body::message_line(&response(&now, before.as_ref()))))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(STREAM_INTERVAL).await;
            let engine = engine.clone();
            let name = now.id.clone();
            let next = tokio::task::spawn_blocking(move || engine.container_stats(&name)).await;
            match next {
                Ok(Ok(next)) => before = Some(std::mem::replace(&mut now, next)),
                // Removed meanwhile (or the worker failed): the stream ends, as dockerd's.
                _ => return,
            }
        }
    });
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}

fn one(r: &StatsResponse) -> Response<Body> {
    body::full(StatusCode::OK, "application/json", body::message_line(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_engine::containers::stats::{HostFigures, Usage};

    fn sample(total: u64, system: u64, running: bool) -> Sample {
        let mut cgroup = berth_engine::containers::stats::Stats::default();
        cgroup.cpu.usage.total = total;
        cgroup.memory.usage.usage = 64 << 20;
        cgroup.memory.usage.limit = u64::MAX;
        cgroup.memory.raw.insert("inactive_file".into(), 1 << 20);
        Sample {
            id: "abc".into(),
            name: "/web".into(),
            read: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            usage: running.then(|| Usage {
                cgroup,
                host: HostFigures {
                    system_cpu_ns: system,
                    online_cpus: 2,
                    memory_bytes: 8 << 30,
                },
                networks: BTreeMap::new(),
            }),
        }
    }

    #[test]
    fn a_sample_has_the_previous_as_precpu_and_the_host_memory_as_limit() {
        let v = serde_json::to_value(response(
            &sample(200, 2000, true),
            Some(&sample(100, 1000, true)),
        ))
        .expect("json");
        assert_eq!(v["name"], "/web");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 200);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 100);
        assert_eq!(v["precpu_stats"]["system_cpu_usage"], 1000);
        assert_eq!(v["cpu_stats"]["online_cpus"], 2);
        assert_eq!(v["memory_stats"]["limit"], 8u64 << 30);
        assert_eq!(v["memory_stats"]["stats"]["inactive_file"], 1 << 20);
        assert!(v.get("networks").is_none());
        assert_ne!(v["preread"], ZERO_TIME);
    }

    #[test]
    fn a_stopped_container_has_zero_figures_and_zero_times() {
        let v = serde_json::to_value(response(&sample(0, 0, false), None)).expect("json");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["read"], ZERO_TIME);
        assert_eq!(v["preread"], ZERO_TIME);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert!(v["memory_stats"].as_object().expect("an object").is_empty());
    }
}
