//! Which containers' shims still run. A shim reports its container's exit first and has the
//! runtime delete the container afterwards, off the path of whoever waits for the exit; so
//! the next start of that container waits here until the old shim has ended (the runtime's
//! state and the shim's socket must be gone before a new shim makes them again).

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::RawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Shims {
    live: Mutex<HashSet<String>>,
    ended: Condvar,
    /// berth-runtime's sealed copy, which shims start it from.
    pub sealed_runtime: SealedRuntime,
}

/// One sealed in-memory copy of berth-runtime for every shim to start the runtime from
/// (the CVE-2019-5736 defence, see `berth_runtime::sys::sealed_exe`), so the runtime does
/// not copy its own binary at each create that joins a pid namespace or each exec. Made
/// again when the binary on disk changes (an upgrade), known by its inode, size and mtime.
#[derive(Default)]
pub(crate) struct SealedRuntime {
    copy: Mutex<Option<(Identity, Arc<File>)>>,
}

#[derive(Clone, PartialEq, Eq)]
struct Identity {
    path: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl Identity {
    fn of(path: &Path) -> std::io::Result<Identity> {
        let meta = std::fs::metadata(path)?;
        Ok(Identity {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        })
    }
}

impl SealedRuntime {
    /// The sealed copy of `binary`, made on first use. None when it cannot be made: the
    /// runtime then copies itself where it needs to, as it does when run by hand.
    pub fn get(&self, binary: &Path) -> Option<Arc<File>> {
        let identity = match Identity::of(binary) {
            Ok(identity) => identity,
            Err(e) => {
                tracing::warn!("stat {}: {e}", binary.display());
                return None;
            }
        };
        let mut copy = self.copy.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known, file)) = copy.as_ref() {
            if *known == identity {
                return Some(file.clone());
            }
        }
        match berth_runtime::sys::sealed_exe::sealed_copy(binary) {
            Ok(file) => {
                tracing::debug!("made a sealed copy of {}", binary.display());
                let file = Arc::new(file);
                *copy = Some((identity, file.clone()));
                Some(file)
            }
            Err(e) => {
                tracing::warn!("a sealed copy of {}: {e}", binary.display());
                None
            }
        }
    }
}

impl Shims {
    fn lock(&self) -> MutexGuard<'_, HashSet<String>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shim of container `id` runs.
    pub fn started(&self, id: &str) {
        self.lock().insert(id.to_string());
    }

    /// The shim of container `id` has ended.
    pub fn ended(&self, id: &str) {
        self.lock().remove(id);
        self.ended.notify_all();
    }

    pub fn running(&self, id: &str) -> bool {
        self.lock().contains(id)
    }

    /// Wait up to `timeout` for the shim of `id` to end; whether it has.
    pub fn wait_ended(&self, id: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut live = self.lock();
        while live.contains(id) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            live = self
                .ended
                .wait_timeout(live, deadline - now)
                .map(|(l, _)| l)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        true
    }
}

/// In the shim's child between fork and exec: the ready pipe becomes fd 3 and the sealed
/// runtime, if any, fd 4, both inherited. Only async-signal-safe calls (dup2, fcntl).
pub(crate) fn place_shim_fds(ready: RawFd, sealed: Option<RawFd>) -> std::io::Result<()> {
    let failed = |r: libc::c_int| r < 0;
    // Moved out of the way first if it sits where the ready pipe goes.
    let sealed = match sealed {
        // SAFETY: fcntl on a descriptor this process holds.
        Some(3) => Some(unsafe { libc::fcntl(3, libc::F_DUPFD_CLOEXEC, 5) }),
        other => other,
    };
    // SAFETY: dup2 and fcntl on descriptors this process holds.
    unsafe {
        // dup2 onto itself would keep close-on-exec.
        let ready_placed = match ready {
            3 => libc::fcntl(3, libc::F_SETFD, 0),
            _ => libc::dup2(ready, 3),
        };
        if failed(ready_placed) || sealed.is_some_and(failed) {
            return Err(std::io::Error::last_os_error());
        }
        let placed = match sealed {
            Some(4) => libc::fcntl(4, libc::F_SETFD, 0),
            Some(fd) => libc::dup2(fd, 4),
            None => 0,
        };
        if failed(placed) {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn one_sealed_copy_until_the_binary_changes() {
        use std::io::Read;
        let dir = tempfile::tempdir().expect("tmp");
        let binary = dir.path().join("berth-runtime");
        std::fs::write(&binary, b"one").expect("write");
        let sealed = SealedRuntime::default();
        let first = sealed.get(&binary).expect("a copy");
        let again = sealed.get(&binary).expect("a copy");
        assert!(Arc::ptr_eq(&first, &again));
        // Replaced as an upgrade does: a new file renamed over the old one.
        let next = dir.path().join("next");
        std::fs::write(&next, b"two!").expect("write");
        std::fs::rename(&next, &binary).expect("rename");
        let mut text = String::new();
        (&*sealed.get(&binary).expect("a copy"))
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "two!");
        std::fs::remove_file(&binary).expect("remove");
        assert!(sealed.get(&binary).is_none());
    }

    #[test]
    fn the_ready_pipe_is_inherited_even_when_it_is_fd_3_already() {
        use std::io::Read;
        use std::os::unix::process::CommandExt;
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        let w_raw = std::os::fd::AsRawFd::as_raw_fd(&w);
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "echo ready >&3"]);
        // SAFETY: dup3 and place_shim_fds are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                // The pipe sits at fd 3, close-on-exec, as pipe2 could have made it.
                if libc::dup3(w_raw, 3, libc::O_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                place_shim_fds(3, None)
            });
        }
        let status = cmd.status().expect("sh");
        drop(w);
        assert!(status.success());
        let mut got = String::new();
        std::fs::File::from(r)
            .read_to_string(&mut got)
            .expect("read");
        assert_eq!(got, "ready\n");
    }

    #[test]
    fn waits_for_the_shim_to_end() {
        let shims = Arc::new(Shims::default());
        assert!(shims.wait_ended("a", Duration::ZERO));
        shims.started("a");
        assert!(shims.running("a"));
        assert!(!shims.wait_ended("a", Duration::from_millis(10)));
        let other = shims.clone();
        let ender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.ended("a");
        });
        assert!(shims.wait_ended("a", Duration::from_secs(10)));
        assert!(!shims.running("a"));
        let _ = ender.join();
    }
}
