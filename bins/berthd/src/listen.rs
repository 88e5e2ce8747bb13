//! The daemon's sockets and pid file, and its stable id.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Removes the socket file when the daemon stops.
pub struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The group that may use the daemon's sockets, when it exists (as dockerd's `docker`).
pub const SOCKET_GROUP: &str = "berth";

/// Listen on `path`: mode 0660, group `berth` when that group exists. A socket file left by
/// a daemon that died is replaced; one a live daemon answers on is an error.
pub fn unix_socket(path: &Path) -> Result<(tokio::net::UnixListener, SocketGuard)> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("{}: another daemon is listening there", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("remove stale socket {}", path.display()))?;
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod {}", path.display()))?;
    if let Some(gid) = group_id(SOCKET_GROUP) {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
            .with_context(|| format!("chown {}", path.display()))?;
    }
    Ok((listener, SocketGuard(path.to_path_buf())))
}

/// The gid of `name` from /etc/group. Read directly: the release binary is static, and
/// glibc's NSS (getgrnam) cannot load its modules there.
pub fn group_id(name: &str) -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// The pid file, removed when the daemon stops.
pub struct PidFile(PathBuf);

impl PidFile {
    /// Refuses to start when the pid file names a running berthd.
    pub fn create(path: &Path) -> Result<PidFile> {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                if pid != std::process::id() as i32 && is_running_berthd(pid) {
                    bail!(
                        "pid file {} names a running process ({pid}): is berthd already running?",
                        path.display()
                    );
                }
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("write {}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

/// Whether `pid` is a running berthd: not a zombie (a killed berthd whose parent has not
/// reaped it yet), nor another program that got the pid of a berthd long gone.
fn is_running_berthd(pid: i32) -> bool {
    let comm = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/comm"));
    let (Ok(stat), Ok(theirs), Ok(mine)) = (
        std::fs::read_to_string(format!("/proc/{pid}/stat")),
        comm(&pid.to_string()),
        comm("self"),
    ) else {
        // No such process, or no /proc to tell: a live pid counts.
        return nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    };
    theirs == mine && !matches!(process_state(&stat), Some('Z' | 'X'))
}

/// The state letter of a /proc/PID/stat line (after the command name, which may hold ')').
fn process_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A random id made once per data root (Docker's engine ID).
pub fn daemon_id(data_root: &Path) -> Result<String> {
    let path = data_root.join("engine-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        return Ok(id.trim().to_string());
    }
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("read /dev/urandom")?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..]
    );
    std::fs::create_dir_all(data_root)
        .with_context(|| format!("create {}", data_root.display()))?;
    std::fs::write(&path, &id).with_context(|| format!("write {}", path.display()))?;
    Ok(id)
}
