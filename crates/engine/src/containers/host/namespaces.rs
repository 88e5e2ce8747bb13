//! The namespace options: `--pid`, `--ipc`, `--uts`, `--cgroupns`, with `--shm-size` (the
//! IPC mode decides where /dev/shm comes from), checked at create with dockerd's messages.
//! A `container:NAME` mode is recorded with the container's id, as dockerd records it; the
//! namespace is joined through that container's init at each start (joins.rs).

use serde::{Deserialize, Serialize};

use super::invalid;
use super::sysinfo::SysInfo;
use crate::containers::request::HostConfig;
use crate::error::Result;

/// Docker's default /dev/shm size (64 MiB).
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// `--pid`: the container's own namespace, the host's, or another container's.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum PidMode {
    #[default]
    Private,
    Host,
    /// The id of the container whose namespace is joined.
    Container(String),
}

/// `--ipc` (dockerd's default is private).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum IpcMode {
    #[default]
    Private,
    /// Private, with a /dev/shm other containers can join (a tmpfs berthd mounts).
    Shareable,
    /// Private, without /dev/shm.
    None,
    Host,
    Container(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Namespaces {
    #[serde(default)]
    pub pid: PidMode,
    #[serde(default)]
    pub ipc: IpcMode,
    /// `--uts host`: no UTS namespace (the host's name).
    #[serde(default)]
    pub uts_host: bool,
    /// `--cgroupns private`: a cgroup namespace rooted at the container's cgroup.
    #[serde(default)]
    pub cgroupns_private: bool,
    /// /dev/shm's size in bytes (0 in records older than --shm-size: the default).
    #[serde(default)]
    pub shm_size: i64,
}

impl Namespaces {
    /// The bytes /dev/shm may hold.
    pub fn shm_bytes(&self) -> i64 {
        if self.shm_size > 0 {
            self.shm_size
        } else {
            DEFAULT_SHM_SIZE
        }
    }

    /// `PidMode` as inspect shows it (dockerd's, with a container's id).
    pub fn pid_mode(&self) -> String {
        match &self.pid {
            PidMode::Private => String::new(),
            PidMode::Host => "host".into(),
            PidMode::Container(id) => format!("container:{id}"),
        }
    }

    /// `IpcMode` as inspect shows it.
    pub fn ipc_mode(&self) -> String {
        match &self.ipc {
            IpcMode::Private => "private".into(),
            IpcMode::Shareable => "shareable".into(),
            IpcMode::None => "none".into(),
            IpcMode::Host => "host".into(),
            IpcMode::Container(id) => format!("container:{id}"),
        }
    }

    /// The container has an IPC namespace (its own or a joined one).
    pub fn has_ipc(&self) -> bool {
        self.ipc != IpcMode::Host
    }
}

/// The NAME of `container:NAME`.
fn container_ref(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

/// The options of `h`; `hostname` is the one asked for (Config.Hostname), `resolve` gives
/// the id of a container by name or id.
pub fn parse(
    h: &HostConfig,
    hostname: &str,
    sys: &SysInfo,
    warnings: &mut Vec<String>,
    resolve: &dyn Fn(&str) -> Result<String>,
) -> Result<Namespaces> {
    let ipc = match h.ipc_mode.as_str() {
        "" | "private" => IpcMode::Private,
        "shareable" => IpcMode::Shareable,
        "none" => IpcMode::None,
        "host" => IpcMode::Host,
        other => match container_ref(other) {
            Some(name) => IpcMode::Container(resolve(name)?),
            None => return Err(invalid(format!("invalid IPC mode: {other}"))),
        },
    };
    let pid = match h.pid_mode.as_str() {
        "" => PidMode::Private,
        "host" => PidMode::Host,
        other => match container_ref(other).filter(|n| !n.is_empty()) {
            Some(name) => PidMode::Container(resolve(name)?),
            None => return Err(invalid(format!("invalid PID mode: {other}"))),
        },
    };
    if h.shm_size < 0 {
        return Err(invalid("SHM size can not be less than 0".into()));
    }
    let uts_host = match h.uts_mode.as_str() {
        "" => false,
        "host" => true,
        other => return Err(invalid(format!("invalid UTS mode: {other}"))),
    };
    if uts_host && !hostname.is_empty() {
        return Err(invalid(
            "conflicting options: hostname and the UTS mode".into(),
        ));
    }
    let mut cgroupns_private = match h.cgroupns_mode.as_str() {
        // dockerd's default: private on pure cgroup v2 hosts, the host's otherwise.
        "" => sys.unified,
        "private" => true,
        "host" => false,
        other => return Err(invalid(format!("invalid cgroup namespace mode: {other}"))),
    };
    if cgroupns_private && !sys.cgroup_namespaces {
        warnings.push(
            "Your kernel does not support cgroup namespaces.  Cgroup namespace setting discarded."
                .into(),
        );
        cgroupns_private = false;
    }
    Ok(Namespaces {
        pid,
        ipc,
        uts_host,
        cgroupns_private,
        shm_size: if h.shm_size == 0 {
            DEFAULT_SHM_SIZE
        } else {
            h.shm_size
        },
    })
}

/// `--oom-score-adj`: the kernel's range.
pub fn oom_score_adj(v: i64) -> Result<i64> {
    if !(-1000..=1000).contains(&v) {
        return Err(invalid(format!(
            "Invalid value {v}, range for oom score adj is [-1000, 1000]"
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use serde_json::json;

    fn host(v: serde_json::Value) -> HostConfig {
        serde_json::from_value(v).expect("host config")
    }

    fn ids(name: &str) -> Result<String> {
        match name {
            "web" => Ok("f00d".repeat(16)),
            other => Err(Error::NotFound(format!("No such container: {other}"))),
        }
    }

    fn modes(v: serde_json::Value, hostname: &str) -> Result<Namespaces> {
        parse(
            &host(v),
            hostname,
            &SysInfo::all_v1(),
            &mut Vec::new(),
            &ids,
        )
    }

    #[test]
    fn modes_as_dockerd_reads_them() {
        let n = modes(
            json!({"PidMode": "container:web", "IpcMode": "shareable", "UTSMode": "host", "CgroupnsMode": "private", "ShmSize": 1048576}),
            "",
        )
        .expect("modes");
        assert_eq!(n.pid, PidMode::Container("f00d".repeat(16)));
        assert_eq!(n.pid_mode(), format!("container:{}", "f00d".repeat(16)));
        assert_eq!(n.ipc, IpcMode::Shareable);
        assert!(n.uts_host && n.cgroupns_private);
        assert_eq!(n.shm_bytes(), 1048576);
        let d = modes(json!({}), "").expect("defaults");
        assert_eq!(
            (d.pid.clone(), d.ipc.clone(), d.uts_host, d.cgroupns_private),
            (PidMode::Private, IpcMode::Private, false, false)
        );
        assert_eq!(d.shm_size, DEFAULT_SHM_SIZE);
        assert_eq!(d.ipc_mode(), "private");
        // dockerd's default on a pure cgroup v2 host.
        let v2 = SysInfo {
            unified: true,
            ..SysInfo::all_v1()
        };
        let n = parse(&host(json!({})), "", &v2, &mut Vec::new(), &ids).expect("v2");
        assert!(n.cgroupns_private);
    }

    #[test]
    fn bad_modes_are_refused_with_dockerd_messages() {
        for (bad, hostname, msg) in [
            (json!({"IpcMode": "bogus"}), "", "invalid IPC mode: bogus"),
            (
                json!({"PidMode": "container:"}),
                "",
                "invalid PID mode: container:",
            ),
            (json!({"PidMode": "bogus"}), "", "invalid PID mode: bogus"),
            (
                json!({"UTSMode": "private"}),
                "",
                "invalid UTS mode: private",
            ),
            (
                json!({"CgroupnsMode": "shared"}),
                "",
                "invalid cgroup namespace mode: shared",
            ),
            (
                json!({"ShmSize": -1}),
                "",
                "SHM size can not be less than 0",
            ),
            (
                json!({"UTSMode": "host"}),
                "box",
                "conflicting options: hostname and the UTS mode",
            ),
            (
                json!({"IpcMode": "container:nope"}),
                "",
                "No such container: nope",
            ),
        ] {
            let err = modes(bad.clone(), hostname);
            assert!(
                err.as_ref().is_err_and(|e| e.to_string() == msg),
                "{bad}: {err:?}"
            );
        }
        assert!(oom_score_adj(1001).is_err_and(|e| e
            .to_string()
            .contains("range for oom score adj is [-1000, 1000]")));
        assert_eq!(oom_score_adj(-1000).ok(), Some(-1000));
    }
}
