//! The OCI runtime's command line as the shim uses it (runc's flags).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

pub struct Runtime {
    pub binary: PathBuf,
    /// A sealed in-memory copy of `binary` (close-on-exec) to start it from.
    pub sealed: Option<OwnedFd>,
    pub root: PathBuf,
    pub id: String,
    /// The container's cgroupsPath.
    pub cgroups_path: PathBuf,
    /// The runtime's JSON log (in the bundle), read for error messages.
    pub log: PathBuf,
}

impl Runtime {
    pub fn command(&self) -> Command {
        let mut cmd = match &self.sealed {
            // The child resolves this path at its exec, while it still holds the descriptor
            // (close-on-exec closes it only once the new image is loaded).
            Some(fd) => {
                let mut cmd = Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                cmd.arg0(&self.binary);
                cmd
            }
            None => Command::new(&self.binary),
        };
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json");
        cmd
    }

    /// The last error the runtime logged, for a failure message.
    fn last_error(&self) -> String {
        std::fs::read_to_string(&self.log)
            .ok()
            .and_then(|text| {
                text.lines()
                    .rev()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .find(|v| v["level"] == "error")
                    .and_then(|v| v["msg"].as_str().map(String::from))
            })
            .unwrap_or_else(|| "the runtime failed (no message)".into())
    }

    /// Run `cmd` to completion; a failure carries the runtime's own message.
    pub fn run(&self, mut cmd: Command, what: &str) -> Result<()> {
        let status = cmd
            .status()
            .with_context(|| format!("run {} {what}", self.binary.display()))?;
        if !status.success() {
            bail!("{}", self.last_error());
        }
        Ok(())
    }

    pub fn start(&self) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("start").arg(&self.id).stdin(Stdio::null());
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        self.run(cmd, "start")
    }

    /// Whether the OOM killer struck in the container's cgroup (read before delete removes
    /// it). The cgroup is where the config's cgroupsPath put it, as every runtime places it.
    pub fn oom_killed(&self) -> bool {
        berth_cgroups::Layout::detect()
            .and_then(|layout| {
                berth_cgroups::Cgroup::for_container(layout, Some(&self.cgroups_path), &self.id)
            })
            .and_then(|cgroup| cgroup.oom_kills())
            .is_ok_and(|kills| kills > 0)
    }

    /// SIGKILL every process of the container (through its cgroup).
    pub fn kill_all(&self) {
        let _ = self
            .command()
            .args(["kill", "--all", &self.id, "KILL"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Kill whatever is left and forget the container.
    pub fn delete(&self) {
        let _ = self
            .command()
            .args(["delete", "--force", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether the bundle's config gives the container no pid namespace of its own: none
/// listed (the host's) or one joined by path (another container's).
pub fn shares_pid_namespace(bundle: &Path) -> bool {
    let config: serde_json::Value = match std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(c) => c,
        // Unreadable: the runtime's create fails on it first.
        None => return false,
    };
    let own = config["linux"]["namespaces"]
        .as_array()
        .is_some_and(|list| {
            list.iter()
                .any(|ns| ns["type"] == "pid" && ns["path"].as_str().is_none_or(str::is_empty))
        });
    !own
}

/// The pid the runtime wrote to `path`.
pub fn read_pid(path: &Path) -> Result<i32> {
    std::fs::read_to_string(path)
        .with_context(|| format!("read {}", path.display()))?
        .trim()
        .parse()
        .with_context(|| format!("the runtime's pid file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_namespace_of_the_bundle() {
        let dir = tempfile::tempdir().expect("tmp");
        let shares = |namespaces: serde_json::Value| {
            let config = serde_json::json!({"linux": {"namespaces": namespaces}});
            std::fs::write(dir.path().join("config.json"), config.to_string()).expect("config");
            shares_pid_namespace(dir.path())
        };
        assert!(!shares(
            serde_json::json!([{"type": "pid"}, {"type": "mount"}])
        ));
        assert!(shares(serde_json::json!([{"type": "mount"}])));
        assert!(shares(
            serde_json::json!([{"type": "pid", "path": "/proc/1/ns/pid"}])
        ));
    }
}
