//! Switching to the configured uid, gid and supplementary groups, keeping capabilities
//! across the uid change so that the configured sets can be applied after it.

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::User;

use crate::error::{Result, SysContext};
use crate::sys::proc::set_keepcaps;

pub(super) fn switch(user: &User) -> Result<()> {
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    setgroups(&groups).ctx(|| format!("setgroups {:?}", user.additional_gids()))?;
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).ctx(|| format!("setgid {}", user.gid()))?;
    set_keepcaps(true).ctx(|| "keep capabilities".into())?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).ctx(|| format!("setuid {}", user.uid()))?;
    set_keepcaps(false).ctx(|| "clear keep capabilities".into())
}
