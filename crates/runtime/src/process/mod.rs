//! The container's process, set up by init after pivot_root and before the exec barrier:
//! rlimits, keyring, cwd, identity, capabilities, umask, no_new_privs, descriptors, and
//! finally the exec of the user's program.

mod affinity;
mod attributes;
mod caps;
mod exec;
pub(crate) mod id_list;
mod rlimits;
mod user;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use oci_spec::runtime::Process;

use crate::error::{Error, Result, SysContext};
use crate::sys::fs::{create_in_root, open_in_root, Leaf};
use crate::sys::proc;

pub(crate) use affinity::ExecAffinity;
pub(crate) use attributes::{check_nodes_exist, inherit_for_exec, Attributes};
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

/// The steps of the process's setup that the configured identity does not change: run
/// before the seccomp filter is loaded, which happens right after them when
/// no_new_privileges is off (the kernel then wants CAP_SYS_ADMIN for the load). What runs
/// under the filter must be what any profile allows a process to do to itself, never the
/// runtime's own housekeeping: profiles written for other runtimes (the suite's default,
/// Docker's and podman's older ones) do not list close_range, for one.
///
/// Returns the cwd if the process could not enter it yet (see [`enter_cwd`]); it is closed
/// otherwise, so that the close is not left for after the filter.
pub(crate) fn before_filter(
    process: &Process,
    cwd: OwnedFd,
    fds: PassedFds,
) -> Result<Option<OwnedFd>> {
    if let Some(c) = process.capabilities().as_ref() {
        // Needs CAP_SETPCAP; the effective set (and so the filter's load) is unchanged.
        caps::drop_bounding(c)?;
    }
    proc::set_umask(process.user().umask().unwrap_or(0o022));
    let entered = enter_cwd(process, &cwd, true)?;
    seal_descriptors(fds)?;
    Ok((!entered).then_some(cwd))
}

/// Become the configured user with the configured capabilities, then lock things down.
/// `cwd`: what [`before_filter`] returned.
pub(crate) fn become_user(process: &Process, cwd: Option<OwnedFd>) -> Result<()> {
    let capabilities = process.capabilities().as_ref();
    user::switch(process.user())?;
    if let Some(c) = capabilities {
        caps::apply(c)?;
    }
    if process.no_new_privileges() == Some(true) {
        proc::set_no_new_privs().ctx(|| "set no_new_privs".into())?;
    }
    if let Some(cwd) = cwd {
        enter_cwd(process, &cwd, false)?;
    }
    Ok(())
}

/// chdir to the container's cwd. As root first, as runc does: that always works unless the
/// root of a user namespace may not search the directory (a volume owned by the container's
/// user), in which case `as_root` returns false and the user tries again after the switch.
fn enter_cwd(process: &Process, cwd: &OwnedFd, as_root: bool) -> Result<bool> {
    match nix::unistd::fchdir(cwd) {
        Ok(()) => {}
        Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) if as_root => return Ok(false),
        Err(e) => {
            return Err(Error::sys(
                format!("chdir to {}", process.cwd().display()),
                e,
            ))
        }
    }
    // A cwd outside the root shows as "(unreachable)": getcwd fails with ENOENT.
    std::env::current_dir().map_err(|_| {
        Error::Init(format!(
            "cwd {} is outside the container",
            process.cwd().display()
        ))
    })?;
    Ok(true)
}

/// Mark every descriptor of the runtime close-on-exec and clear the flag on the ones passed
/// to the container (3.. up to 3 + count).
fn seal_descriptors(fds: PassedFds) -> Result<()> {
    proc::cloexec_from(3).ctx(|| "mark descriptors close-on-exec".into())?;
    for fd in 3..3 + fds.count() as i32 {
        proc::keep_across_exec(fd).ctx(|| format!("keep descriptor {fd}"))?;
    }
    Ok(())
}
