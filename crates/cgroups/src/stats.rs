//! Usage statistics of a cgroup, in the JSON shape of runc's `events --stats` (its
//! `types.Stats`), read from whichever version of hierarchy holds each controller.
//!
//! A file that is missing (a controller the host does not mount, a kernel too old for it)
//! leaves its figures at zero rather than failing the whole report, as runc does.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::layout::Version;
use crate::Cgroup;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    /// By page size ("2MB").
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct CpuUsage {
    pub total: u64,
    /// Per CPU (cgroup v1 only).
    pub percpu: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    /// Nanoseconds.
    pub throttled_time: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Memory {
    /// Page cache bytes.
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    /// Every counter of memory.stat.
    pub raw: BTreeMap<String, u64>,
}

/// Bytes; `limit` is u64::MAX when there is none.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct MemoryEntry {
    pub limit: u64,
    pub usage: u64,
    pub max: u64,
    pub failcnt: u64,
}

/// `limit` is 0 when there is none.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Pids {
    pub current: u64,
    pub limit: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    /// "Read", "Write", ... as v1 names them.
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Hugetlb {
    pub usage: u64,
    pub max: u64,
    pub failcnt: u64,
}

/// The text of `dir/file`, or None if it does not exist.
fn read(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// A single number; "max" is u64::MAX.
fn number(dir: &Path, file: &str) -> Result<Option<u64>> {
    let Some(text) = read(dir, file)? else {
        return Ok(None);
    };
    match text.trim() {
        "max" => Ok(Some(u64::MAX)),
        t => t.parse().map(Some).map_err(|_| {
            Error::io(
                "parse",
                dir.join(file),
                std::io::Error::new(ErrorKind::InvalidData, format!("{t:?} is not a number")),
            )
        }),
    }
}

/// "key value" lines (memory.stat, cpu.stat, memory.events ...); other lines are skipped.
fn keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>> {
    Ok(read(dir, file)?
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect())
}

/// Nanoseconds per USER_HZ tick, the unit of v1's cpuacct.stat.
fn ns_per_tick() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1_000_000_000 / u64::try_from(hz).ok().filter(|h| *h > 0).unwrap_or(100)
}

impl Cgroup {
    /// The directory holding `controller`'s files, and that hierarchy's version.
    fn controller_dir(&self, controller: &str) -> Option<(Version, PathBuf)> {
        self.layout()
            .for_controller(controller)
            .map(|h| (h.version, h.dir_of(self.path())))
    }

    /// Current usage of every controller that has figures.
    pub fn stats(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        if let Some((v, dir)) = self.controller_dir("cpu") {
            cpu_stats(v, &dir, &mut stats.cpu)?;
        }
        if let Some((Version::V1, dir)) = self.controller_dir("cpuacct") {
            cpuacct_stats(&dir, &mut stats.cpu.usage)?;
        }
        if let Some((v, dir)) = self.controller_dir("memory") {
            stats.memory = memory_stats(v, &dir)?;
        }
        if let Some((_, dir)) = self.controller_dir("pids") {
            stats.pids = Pids {
                current: number(&dir, "pids.current")?.unwrap_or(0),
                limit: number(&dir, "pids.max")?
                    .filter(|m| *m != u64::MAX)
                    .unwrap_or(0),
            };
        }
        match self.controller_dir("blkio") {
            Some((Version::V1, dir)) => stats.blkio = blkio_v1(&dir)?,
            _ => {
                if let Some((Version::V2, dir)) = self.controller_dir("io") {
                    stats.blkio = io_v2(&dir)?;
                }
            }
        }
        if let Some((v, dir)) = self.controller_dir("hugetlb") {
            stats.hugetlb = hugetlb_stats(v, &dir)?;
        }
        Ok(stats)
    }
}

fn cpu_stats(version: Version, dir: &Path, cpu: &mut Cpu) -> Result<()> {
    let stat = keyed(dir, "cpu.stat")?;
    let get = |k: &str| stat.get(k).copied().unwrap_or(0);
    cpu.throttling.periods = get("nr_periods");
    cpu.throttling.throttled_periods = get("nr_throttled");
    match version {
        Version::V1 => cpu.throttling.throttled_time = get("throttled_time"),
        Version::V2 => {
            cpu.throttling.throttled_time = get("throttled_usec") * 1000;
            cpu.usage.total = get("usage_usec") * 1000;
            cpu.usage.user = get("user_usec") * 1000;
            cpu.usage.kernel = get("system_usec") * 1000;
        }
    }
    Ok(())
}

fn cpuacct_stats(dir: &Path, usage: &mut CpuUsage) -> Result<()> {
    usage.total = number(dir, "cpuacct.usage")?.unwrap_or(0);
    usage.percpu = read(dir, "cpuacct.usage_percpu")?
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let ticks = keyed(dir, "cpuacct.stat")?;
    let tick = ns_per_tick();
    usage.user = ticks.get("user").copied().unwrap_or(0) * tick;
    usage.kernel = ticks.get("system").copied().unwrap_or(0) * tick;
    Ok(())
}

fn memory_stats(version: Version, dir: &Path) -> Result<Memory> {
    let raw = keyed(dir, "memory.stat")?;
    let n = |file: &str| -> Result<u64> { Ok(number(dir, file)?.unwrap_or(0)) };
    Ok(match version {
        Version::V1 => Memory {
            cache: raw
                .get("total_cache")
                .or_else(|| raw.get("cache"))
                .copied()
                .unwrap_or(0),
            usage: MemoryEntry {
                limit: n("memory.limit_in_bytes")?,
                usage: n("memory.usage_in_bytes")?,
                max: n("memory.max_usage_in_bytes")?,
                failcnt: n("memory.failcnt")?,
            },
            swap: MemoryEntry {
                limit: n("memory.memsw.limit_in_bytes")?,
                usage: n("memory.memsw.usage_in_bytes")?,
                max: n("memory.memsw.max_usage_in_bytes")?,
                failcnt: n("memory.memsw.failcnt")?,
            },
            raw,
        },
        Version::V2 => {
            let events = keyed(dir, "memory.events")?;
            Memory {
                cache: raw.get("file").copied().unwrap_or(0),
                usage: MemoryEntry {
                    limit: n("memory.max")?,
                    usage: n("memory.current")?,
                    max: n("memory.peak")?,
                    failcnt: events.get("max").copied().unwrap_or(0),
                },
                swap: MemoryEntry {
                    limit: n("memory.swap.max")?,
                    usage: n("memory.swap.current")?,
                    max: n("memory.swap.peak")?,
                    failcnt: 0,
                },
                raw,
            }
        }
    })
}

/// v1 "8:0 Read 4096" lines (the "Total" line is dropped).
fn blkio_entries(dir: &Path, file: &str) -> Result<Vec<BlkioEntry>> {
    Ok(read(dir, file)?
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (major, minor) = parts.next()?.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: parts.next()?.to_string(),
                value: parts.next()?.parse().ok()?,
            })
        })
        .collect())
}

fn blkio_v1(dir: &Path) -> Result<Blkio> {
    Ok(Blkio {
        io_service_bytes_recursive: blkio_entries(
            dir,
            "blkio.throttle.io_service_bytes_recursive",
        )?,
        io_serviced_recursive: blkio_entries(dir, "blkio.throttle.io_serviced_recursive")?,
    })
}

/// v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0", as v1's entries.
fn io_v2(dir: &Path) -> Result<Blkio> {
    let mut out = Blkio::default();
    for line in read(dir, "io.stat")?.unwrap_or_default().lines() {
        let mut parts = line.split_whitespace();
        let Some((major, minor)) = parts.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in parts {
            let Some((key, value)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = value.parse() else { continue };
            let (list, op) = match key {
                "rbytes" => (&mut out.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut out.io_service_bytes_recursive, "Write"),
                "dbytes" => (&mut out.io_service_bytes_recursive, "Discard"),
                "rios" => (&mut out.io_serviced_recursive, "Read"),
                "wios" => (&mut out.io_serviced_recursive, "Write"),
                "dios" => (&mut out.io_serviced_recursive, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    Ok(out)
}

fn hugetlb_stats(version: Version, dir: &Path) -> Result<BTreeMap<String, Hugetlb>> {
    let mut sizes: Vec<String> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let size = name.strip_prefix("hugetlb.")?.split_once('.')?.0;
                Some(size.to_string())
            })
            .collect(),
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io("read", dir, e)),
    };
    sizes.sort();
    sizes.dedup();
    let mut out = BTreeMap::new();
    for size in sizes {
        let n = |file: String| -> Result<u64> { Ok(number(dir, &file)?.unwrap_or(0)) };
        let entry = match version {
            Version::V1 => Hugetlb {
                usage: n(format!("hugetlb.{size}.usage_in_bytes"))?,
                max: n(format!("hugetlb.{size}.max_usage_in_bytes"))?,
                failcnt: n(format!("hugetlb.{size}.failcnt"))?,
            },
            Version::V2 => Hugetlb {
                usage: n(format!("hugetlb.{size}.current"))?,
                max: n(format!("hugetlb.{size}.max"))?,
                failcnt: keyed(dir, &format!("hugetlb.{size}.events"))?
                    .get("max")
                    .copied()
                    .unwrap_or(0),
            },
        };
        out.insert(size, entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Hierarchy, Layout};

    /// A pure v2 layout mounted at `dir` (Layout::parse only looks under /sys/fs/cgroup).
    fn v2_layout_at(dir: &Path) -> Layout {
        Layout {
            hierarchies: vec![Hierarchy {
                version: Version::V2,
                name: String::new(),
                controllers: Vec::new(),
                mountpoint: dir.to_path_buf(),
                mount_root: "/".into(),
                own_path: "/".into(),
            }],
        }
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        fs::create_dir_all(dir).expect("mkdir");
        for (f, v) in files {
            fs::write(dir.join(f), v).expect("write");
        }
    }

    #[test]
    fn v2_files_in_runc_units() {
        let tmp = tempfile::tempdir().expect("tmp");
        let cg = Cgroup::at(v2_layout_at(tmp.path()), "/c".into());
        write(
            &tmp.path().join("c"),
            &[
                ("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 2\nthrottled_usec 7\n"),
                ("memory.current", "4096\n"),
                ("memory.max", "max\n"),
                ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
                ("memory.stat", "anon 100\nfile 200\n"),
                ("pids.current", "2\n"),
                ("pids.max", "max\n"),
                ("io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"),
                ("hugetlb.2MB.current", "0\n"),
                ("hugetlb.2MB.max", "2097152\n"),
                ("hugetlb.2MB.events", "max 1\n"),
            ],
        );
        let s = cg.stats().expect("stats");
        assert_eq!(s.cpu.usage.total, 1_500_000);
        assert_eq!(s.cpu.usage.kernel, 500_000);
        assert_eq!(s.cpu.throttling.throttled_time, 7000);
        assert_eq!(s.memory.usage.usage, 4096);
        assert_eq!(s.memory.usage.limit, u64::MAX);
        assert_eq!(s.memory.usage.failcnt, 3);
        assert_eq!(s.memory.cache, 200);
        assert_eq!((s.pids.current, s.pids.limit), (2, 0));
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 3);
        assert_eq!(s.blkio.io_serviced_recursive[1].value, 2);
        assert_eq!(s.hugetlb["2MB"].max, 2097152);
        assert_eq!(s.hugetlb["2MB"].failcnt, 1);
    }

    #[test]
    fn missing_files_are_zero_and_garbage_is_an_error() {
        let tmp = tempfile::tempdir().expect("tmp");
        let cg = Cgroup::at(v2_layout_at(tmp.path()), "/c".into());
        write(&tmp.path().join("c"), &[]);
        assert_eq!(cg.stats().expect("stats"), Stats::default());
        write(&tmp.path().join("c"), &[("memory.current", "lots\n")]);
        let err = cg.stats().expect_err("garbage");
        assert!(err.to_string().contains("memory.current"), "{err}");
    }
}
