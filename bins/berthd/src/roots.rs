//! The data root and the exec root, private to root as dockerd keeps them: the data root
//! holds image layers (setuid binaries, device nodes) and containers' records, logs and
//! upper layers (their environment, secrets passed with -e); the exec root holds bundles and
//! runtime state. Both are 0710, so that only root (and, for the exec root, the socket's
//! group, which must reach the socket inside it) can traverse them. The modes are set at
//! every start, so a data root made by an older berthd is fixed too.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// Only the owner and the group may traverse; nobody lists.
const ROOT_MODE: u32 = 0o710;

fn private_dir(dir: &Path, group: Option<u32>) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(ROOT_MODE))
        .with_context(|| format!("chmod {}", dir.display()))?;
    nix::unistd::chown(
        dir,
        None,
        Some(nix::unistd::Gid::from_raw(group.unwrap_or(0))),
    )
    .with_context(|| format!("chown {}", dir.display()))
}

/// Create the roots (or fix their modes); `socket_group` may traverse the exec root.
pub fn prepare(data_root: &Path, exec_root: &Path, socket_group: Option<u32>) -> Result<()> {
    private_dir(data_root, None)?;
    private_dir(exec_root, socket_group)
}
