//! Which namespaces a container joins (by path) and which it creates, and the id maps and
//! clock offsets that go with new user and time namespaces.

use std::fmt::Write as _;
use std::fs::File;
use std::os::fd::AsFd;

use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

use crate::error::{Error, Result, SysContext};

fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The namespace work of a container, with every path already opened by the runtime
/// process (so a path that vanishes fails before anything was forked).
pub(crate) struct NamespacePlan {
    join: Vec<(LinuxNamespaceType, File)>,
    create: CloneFlags,
    pub uid_map: String,
    pub gid_map: String,
    time_offsets: String,
}

fn id_map(maps: Option<&Vec<LinuxIdMapping>>) -> String {
    let mut out = String::new();
    for m in maps.into_iter().flatten() {
        let _ = writeln!(out, "{} {} {}", m.container_id(), m.host_id(), m.size());
    }
    out
}

impl NamespacePlan {
    pub fn from_spec(linux: &Linux) -> Result<Self> {
        let mut plan = NamespacePlan {
            join: Vec::new(),
            create: CloneFlags::empty(),
            uid_map: id_map(linux.uid_mappings().as_ref()),
            gid_map: id_map(linux.gid_mappings().as_ref()),
            time_offsets: String::new(),
        };
        for ns in linux.namespaces().iter().flatten() {
            match ns.path() {
                Some(path) => {
                    let file =
                        File::open(path).map_err(|e| Error::io("open namespace", path, e))?;
                    plan.join.push((ns.typ(), file));
                }
                None => plan.create |= clone_flag(ns.typ()),
            }
        }
        // Join the user namespace first: it decides what the other joins are allowed to do.
        plan.join
            .sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
        for (clock, off) in linux.time_offsets().iter().flatten() {
            let _ = writeln!(
                plan.time_offsets,
                "{clock} {} {}",
                off.secs().unwrap_or(0),
                off.nanosecs().unwrap_or(0)
            );
        }
        Ok(plan)
    }

    pub fn creates_user(&self) -> bool {
        self.create.contains(CloneFlags::CLONE_NEWUSER)
    }

    /// Init can be cloned directly into all its namespaces: what it joins by path it may
    /// join itself once cloned ([`Self::join_after_clone`]), a pid namespace the runtime
    /// enters for its children around the clone ([`Self::enter_pid_for_children`]), and no
    /// time namespace needs its clock offsets written before init exists.
    pub fn single_stage(&self) -> bool {
        let joinable = |t: &LinuxNamespaceType| {
            matches!(
                t,
                LinuxNamespaceType::Network | LinuxNamespaceType::Ipc | LinuxNamespaceType::Uts
            ) || (*t == LinuxNamespaceType::Pid && !self.in_user_ns())
        };
        // In a new user namespace init would lack the rights over namespaces the host's owns.
        (self.join.is_empty() || !self.creates_user())
            && self.join.iter().all(|(t, _)| joinable(t))
            && self.time_offsets.is_empty()
            && !self
                .create
                .contains(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
    }

    /// Runtime side, single stage: the pid namespace given by path becomes the one the
    /// runtime's next child is born in (setns applies it to children only), until the
    /// returned guard is dropped. A pod's containers join the pod's pid namespace: without
    /// this they need a stage 1, whose init the runtime must move into its cgroup, which
    /// waits for an RCU grace period (~9 ms of a ~15 ms create here).
    pub fn enter_pid_for_children(&self) -> Result<Option<PidNsForChildren>> {
        let Some((_, target)) = self
            .join
            .iter()
            .find(|(t, _)| *t == LinuxNamespaceType::Pid)
        else {
            return Ok(None);
        };
        let own = File::open("/proc/self/ns/pid")
            .map_err(|e| Error::io("open namespace", "/proc/self/ns/pid", e))?;
        nix::sched::setns(target.as_fd(), CloneFlags::CLONE_NEWPID)
            .ctx(|| "join pid namespace".into())?;
        Ok(Some(PidNsForChildren { own: Some(own) }))
    }

    /// Every namespace to create, for a single-stage clone. Not the cgroup namespace: init
    /// creates that once it is in its cgroup, so the namespace is rooted there.
    pub fn new_flags(&self) -> CloneFlags {
        self.create - CloneFlags::CLONE_NEWCGROUP
    }

    /// Init: create the cgroup namespace, if asked, now that init is in its cgroup.
    pub fn unshare_cgroup(&self) -> Result<()> {
        if self.create.contains(CloneFlags::CLONE_NEWCGROUP) {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
                .ctx(|| "unshare cgroup namespace".into())?;
        }
        Ok(())
    }

    /// The container gets a network namespace of its own (not one given by path).
    pub fn creates_network(&self) -> bool {
        self.create.contains(CloneFlags::CLONE_NEWNET)
    }

    /// The container gets a mount namespace of its own (else it joins one by path, or
    /// shares the runtime's).
    pub fn creates_mount(&self) -> bool {
        self.create.contains(CloneFlags::CLONE_NEWNS)
    }

    /// The container shares the runtime's mount namespace: its config lists none.
    pub fn shares_our_mounts(&self) -> bool {
        !self.creates_mount()
            && !self
                .join
                .iter()
                .any(|(t, _)| *t == LinuxNamespaceType::Mount)
    }

    pub fn in_user_ns(&self) -> bool {
        self.creates_user()
            || self
                .join
                .iter()
                .any(|(t, _)| *t == LinuxNamespaceType::User)
    }

    /// Init cloned directly: join the namespaces given by path, before anything else. Only
    /// network, IPC and UTS namespaces (see [`Self::single_stage`]), which apply to the
    /// caller at once. This spares a stage 1, whose init the runtime must then move into
    /// its cgroup: a process move waits for an RCU grace period (~10 ms here), so a
    /// container on a bridge (its network namespace is made beforehand and joined by path)
    /// started that much later than one with a namespace of its own. A pid namespace given
    /// by path is not among them: the runtime entered it for init's birth.
    pub fn join_after_clone(&self) -> Result<()> {
        self.join_where(|t| t != LinuxNamespaceType::Pid)
    }

    /// Stage 1: setns into every namespace given by path.
    pub fn join_all(&self) -> Result<()> {
        self.join_where(|_| true)
    }

    fn join_where(&self, wanted: impl Fn(LinuxNamespaceType) -> bool) -> Result<()> {
        for (typ, file) in self.join.iter().filter(|(t, _)| wanted(*t)) {
            nix::sched::setns(file.as_fd(), clone_flag(*typ))
                .ctx(|| format!("join {typ} namespace"))?;
        }
        Ok(())
    }

    /// Stage 1: create the user namespace alone, so its maps can be written before the
    /// other namespaces are created (and owned by it).
    pub fn unshare_user(&self) -> Result<()> {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER).ctx(|| "unshare user namespace".into())
    }

    /// Stage 1: create every other new namespace. Pid and time namespaces apply to the
    /// next child, which is init.
    pub fn unshare_rest(&self) -> Result<()> {
        let rest = self.create - CloneFlags::CLONE_NEWUSER - CloneFlags::CLONE_NEWCGROUP;
        if !rest.is_empty() {
            nix::sched::unshare(rest).ctx(|| format!("unshare namespaces {rest:?}"))?;
        }
        Ok(())
    }

    /// The new time namespace has clock offsets, which the runtime writes (see
    /// [`write_time_offsets`]) before init is forked into it.
    pub fn has_time_offsets(&self) -> bool {
        !self.time_offsets.is_empty()
    }
}

/// The runtime's children are born in a joined pid namespace until this is dropped (see
/// [`NamespacePlan::enter_pid_for_children`]); then in the runtime's own again.
pub(crate) struct PidNsForChildren {
    own: Option<File>,
}

impl PidNsForChildren {
    /// In the child: let go of the runtime's pid namespace without going back to it (init
    /// could not: it is an ancestor of init's namespace).
    pub fn forget_in_child(mut self) {
        self.own = None;
    }
}

impl Drop for PidNsForChildren {
    fn drop(&mut self) {
        if let Some(own) = self.own.take() {
            // Our own active namespace is always allowed; failing, later children (hooks)
            // would be born in the container's namespace: better to stop there.
            if let Err(e) = nix::sched::setns(own.as_fd(), CloneFlags::CLONE_NEWPID) {
                eprintln!("berth-runtime: cannot return to its own pid namespace: {e}");
                std::process::abort();
            }
        }
    }
}

/// Runtime side: write the clock offsets of the time namespace that process `pid` created
/// for its children. Not `pid` itself: in a new user namespace it is that namespace's root,
/// but its /proc files belong to the host's root (it is not dumpable), so it may not open
/// them; the runtime holds CAP_SYS_TIME over every namespace it created.
pub(crate) fn write_time_offsets(pid: i32, plan: &NamespacePlan) -> Result<()> {
    let path = format!("/proc/{pid}/timens_offsets");
    std::fs::write(&path, &plan.time_offsets).map_err(|e| Error::io("write", path, e))
}

/// Runtime side: write the id maps of the user namespace that process `pid` created.
pub(crate) fn write_id_maps(pid: i32, plan: &NamespacePlan) -> Result<()> {
    for (file, map) in [("uid_map", &plan.uid_map), ("gid_map", &plan.gid_map)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, map).map_err(|e| Error::io("write", path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, LinuxNamespaceBuilder};

    fn plan(joined: &[LinuxNamespaceType], created: &[LinuxNamespaceType]) -> NamespacePlan {
        let path = |t: &LinuxNamespaceType| match t {
            LinuxNamespaceType::Network => "/proc/self/ns/net",
            LinuxNamespaceType::Ipc => "/proc/self/ns/ipc",
            LinuxNamespaceType::Uts => "/proc/self/ns/uts",
            LinuxNamespaceType::Pid => "/proc/self/ns/pid",
            _ => "/proc/self/ns/mnt",
        };
        let mut namespaces = Vec::new();
        for t in joined {
            namespaces.push(
                LinuxNamespaceBuilder::default()
                    .typ(*t)
                    .path(path(t))
                    .build()
                    .expect("namespace"),
            );
        }
        for t in created {
            namespaces.push(
                LinuxNamespaceBuilder::default()
                    .typ(*t)
                    .build()
                    .expect("namespace"),
            );
        }
        let linux = LinuxBuilder::default()
            .namespaces(namespaces)
            .build()
            .expect("linux");
        NamespacePlan::from_spec(&linux).expect("plan")
    }

    #[test]
    fn init_joins_network_ipc_and_uts_namespaces_itself() {
        use LinuxNamespaceType::*;
        // A bridge's network namespace, made beforehand: no stage 1.
        assert!(plan(&[Network], &[Mount, Pid, Ipc, Uts]).single_stage());
        assert!(plan(&[Network, Ipc, Uts], &[Mount, Pid]).single_stage());
        assert!(plan(&[], &[Mount, Pid, Network]).single_stage());
        // A pid namespace applies to children only; a new user namespace has no rights
        // over the host's namespaces: stage 1 joins those.
        assert!(!plan(&[Mount], &[Pid]).single_stage());
        assert!(!plan(&[Network], &[Mount, User]).single_stage());
    }

    #[test]
    fn a_joined_pid_namespace_is_entered_for_the_clone_unless_a_user_namespace_is_made() {
        use LinuxNamespaceType::*;
        // A pod's container: the runtime enters the pod's pid namespace for its child.
        assert!(plan(&[Pid], &[Mount]).single_stage());
        assert!(plan(&[Pid, Network, Ipc, Uts], &[Mount]).single_stage());
        assert!(!plan(&[Pid], &[Mount, User]).single_stage());
    }

    #[test]
    fn children_are_born_in_the_runtime_s_own_pid_namespace_again_after_the_guard() {
        let plan = plan(&[LinuxNamespaceType::Pid], &[]);
        let own = std::fs::read_link("/proc/thread-self/ns/pid_for_children").expect("readlink");
        let guard = plan.enter_pid_for_children().expect("enter");
        assert!(guard.is_some());
        drop(guard);
        assert_eq!(
            std::fs::read_link("/proc/thread-self/ns/pid_for_children").expect("readlink"),
            own
        );
        assert!(self::plan(&[], &[LinuxNamespaceType::Pid])
            .enter_pid_for_children()
            .expect("nothing to enter")
            .is_none());
    }
}
