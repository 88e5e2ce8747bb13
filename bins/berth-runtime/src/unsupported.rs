//! What runc's command line offers that berth-runtime refuses, with the reason found on this
//! host: `--systemd-cgroup` (needs a running systemd) and `checkpoint`/`restore` (need CRIU).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why `--systemd-cgroup` cannot be honoured here.
pub fn systemd_cgroup() -> anyhow::Error {
    // sd_booted(3): systemd is PID 1 exactly when this directory exists.
    let booted = Path::new("/run/systemd/system").is_dir();
    let pid1 = std::fs::read_to_string("/proc/1/comm")
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    if booted {
        anyhow::anyhow!(
            "--systemd-cgroup is not supported yet: systemd runs here (PID 1 is {pid1:?}) but \
             berth-runtime does not ask it for cgroups; leave the flag out to have \
             berth-runtime manage them through cgroupfs"
        )
    } else {
        anyhow::anyhow!(
            "--systemd-cgroup: systemd is not running on this host (PID 1 is {pid1:?} and \
             /run/systemd/system does not exist), so there is no systemd to manage the \
             container's cgroups; leave the flag out to have berth-runtime manage them \
             through cgroupfs"
        )
    }
}

/// Why `verb` (checkpoint or restore) cannot be done here: CRIU missing, CRIU unable to work
/// on this kernel (its own check says why), or berth-runtime's own lack of support.
pub fn checkpoint_restore(verb: &str) -> anyhow::Error {
    let Some(criu) = find_in_path(OsStr::new("criu")) else {
        return anyhow::anyhow!(
            "{verb} is not supported: it needs CRIU, and criu is not installed (not found in PATH)"
        );
    };
    let version = Command::new(&criu)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("Version:").map(|v| v.trim().to_string()))
        })
        .unwrap_or_else(|| "of unknown version".into());
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into());
    match Command::new(&criu).arg("check").output() {
        Ok(out) if out.status.success() => anyhow::anyhow!(
            "{verb} is not supported: berth-runtime does not drive CRIU yet (criu {version} \
             passes `criu check` on kernel {kernel})"
        ),
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            let first_error = text
                .lines()
                .find(|l| l.contains("Error"))
                .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
                .unwrap_or("no message")
                .trim()
                .to_string();
            anyhow::anyhow!(
                "{verb} is not supported: CRIU cannot work on this host: `criu check` fails \
                 with criu {version} on kernel {kernel}: {first_error}"
            )
        }
        Err(e) => anyhow::anyhow!(
            "{verb} is not supported: it needs CRIU, and {} cannot be run: {e}",
            criu.display()
        ),
    }
}

/// The first executable file called `name` in PATH.
fn find_in_path(name: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
