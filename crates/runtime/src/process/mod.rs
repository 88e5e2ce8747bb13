//! The container's process, set up by init after pivot_root and before the exec barrier:
//! rlimits, keyring, cwd, identity, capabilities, umask, no_new_privs, descriptors, and
//! finally the exec of the user's program.

mod caps;
mod exec;
mod rlimits;
mod user;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use oci_spec::runtime::Process;

use crate::error::{Error, Result, SysContext};
use crate::sys::fs::{create_in_root, open_in_root, Leaf};
use crate::sys::proc;

pub(crate) use exec::ExecPlan;

/// Descriptors that must reach the user's program: 3.. up to 3 + count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PassedFds {
    pub preserve: u32,
    pub listen: u32,
}

impl PassedFds {
    pub fn count(&self) -> u32 {
        self.preserve + self.listen
    }
}

/// Steps that still need root: run before the identity changes.
pub(crate) fn prepare_as_root(
    process: &Process,
    container_id: &str,
    new_keyring: bool,
) -> Result<()> {
    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    if new_keyring {
        match proc::join_session_keyring(container_id) {
            // Keyrings may be unavailable (ENOSYS) or forbidden by a seccomp filter of the
            // caller; runc carries on in both cases.
            Ok(()) | Err(nix::errno::Errno::ENOSYS) | Err(nix::errno::Errno::EACCES) => {}
            Err(e) => return Err(Error::sys("join session keyring", e)),
        }
    }
    Ok(())
}

/// Resolve cwd inside the container's root, creating it as runc does (so before the root
/// is made read-only).
pub(crate) fn open_cwd(cwd: &Path) -> Result<OwnedFd> {
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "open /".into())?;
    match open_in_root(root.as_fd(), cwd, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Ok(fd) => Ok(fd),
        Err(nix::errno::Errno::ENOENT) => create_in_root(root.as_fd(), cwd, Leaf::Dir)
            .ctx(|| format!("create cwd {}", cwd.display())),
        Err(e) => Err(Error::sys(format!("open cwd {}", cwd.display()), e)),
    }
}

/// Become the configured user with the configured capabilities, then lock things down.
pub(crate) fn become_user(process: &Process, cwd: &OwnedFd, fds: PassedFds) -> Result<()> {
    let capabilities = process.capabilities().as_ref();
    if let Some(c) = capabilities {
        caps::drop_bounding(c)?;
    }
    user::switch(process.user())?;
    if let Some(c) = capabilities {
        caps::apply(c)?;
    }
    proc::set_umask(process.user().umask().unwrap_or(0o022));
    if process.no_new_privileges() == Some(true) {
        proc::set_no_new_privs().ctx(|| "set no_new_privs".into())?;
    }
    nix::unistd::fchdir(cwd).ctx(|| format!("chdir to {}", process.cwd().display()))?;
    // A cwd outside the root shows as "(unreachable)": getcwd fails with ENOENT.
    std::env::current_dir().map_err(|_| {
        Error::Init(format!(
            "cwd {} is outside the container",
            process.cwd().display()
        ))
    })?;
    proc::cloexec_from(3).ctx(|| "mark descriptors close-on-exec".into())?;
    for fd in 3..3 + fds.count() as i32 {
        proc::keep_across_exec(fd).ctx(|| format!("keep descriptor {fd}"))?;
    }
    Ok(())
}
