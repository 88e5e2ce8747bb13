//! The two forked stages of `create`.
//!
//! Init cloned directly joins the network, IPC and UTS namespaces given by path itself; else
//! stage 1 joins namespaces by path, creates the user namespace (the runtime writes its id
//! maps) and then the others, and forks init so that new pid and time namespaces apply to
//! it. Init builds the rootfs, pivots, becomes the configured user, reports `Ready`, waits
//! on the exec barrier for `start`, runs the startContainer hooks and execs the program.

use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use berth_cgroups::Cgroup;
use nix::sched::CloneFlags;
use nix::unistd::{fork, setresgid, setresuid, ForkResult, Gid, Uid};
use oci_spec::runtime::Spec;

use crate::barrier;
use crate::console;
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, HookKind};
use crate::namespaces::NamespacePlan;
use crate::process::{self, ExecPlan, PassedFds};
use crate::rootfs::{self, RootfsConfig};
use crate::state::{SpecState, Status};
use crate::sync::{Channel, ChildMsg, ParentMsg};
use crate::sys::proc;

/// Everything the forked stages need, borrowed from the runtime process's memory.
pub(super) struct InitContext<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub plan: &'a NamespacePlan,
    pub cgroup: &'a berth_cgroups::Cgroup,
    pub channel: &'a Channel,
    pub barrier: &'a UnixListener,
    pub console: Option<&'a UnixStream>,
    pub no_pivot: bool,
    pub new_keyring: bool,
    pub fds: PassedFds,
    pub seccomp: Option<&'a crate::seccomp::Program>,
    pub idmapped: &'a crate::rootfs::IdmappedMounts,
}

/// Stage 1. Returns the exit code.
pub(super) fn stage1(ctx: &InitContext<'_>) -> i32 {
    match stage1_steps(ctx) {
        Ok(()) => 0,
        Err(e) => {
            let _ = ctx.channel.send(&ChildMsg::Failed(e.to_string()));
            1
        }
    }
}

/// Wait for the runtime's `want`.
fn expect(ch: &Channel, want: ParentMsg) -> Result<()> {
    match ch.recv::<ParentMsg>()? {
        Some(got) if got == want => Ok(()),
        Some(got) => Err(Error::Init(format!(
            "expected {want:?} from the runtime, got {got:?}"
        ))),
        None => Err(Error::Init(format!(
            "runtime went away while we waited for {want:?}"
        ))),
    }
}

/// In a new user namespace, have the runtime write its id maps, then become its root.
fn wait_for_id_maps(ctx: &InitContext<'_>) -> Result<()> {
    ctx.channel.send(&ChildMsg::MapIds)?;
    expect(ctx.channel, ParentMsg::IdsMapped)?;
    become_ns_root()
}

fn report(ctx: &InitContext<'_>, result: Result<()>) -> bool {
    if let Err(e) = result {
        let _ = ctx.channel.send(&ChildMsg::Failed(e.to_string()));
        return false;
    }
    true
}

/// Who puts init (or an exec's joiner) in its cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CgroupJoin {
    /// The runtime moves it (cgroup.procs), then says so: when init is in a new user
    /// namespace (it cannot write the host's cgroup files), comes from stage 1, or could
    /// not be born in its v2 cgroup.
    ByRuntime,
    /// Init was born in its v2 cgroup, if the host has one, and moves its own thread into
    /// the v1 hierarchies: no process move, so no grace period waited for (see
    /// `berth_cgroups::Cgroup::add`), which would be most of a container's start.
    BySelf,
}

/// Fork a child that creates the namespaces `flags`. If it may enter its cgroup itself
/// (`self_join`), it is born in the cgroup's v2 directory (clone3 CLONE_INTO_CGROUP) and
/// joins the v1 hierarchies through [`Cgroup::enter_v1_as_current_thread`]; otherwise, or
/// if the kernel could not place it, the runtime moves it. `what` names the fork in errors.
///
/// # Safety
/// The caller is single-threaded, so the child may run arbitrary code after the fork.
pub(super) unsafe fn fork_into_cgroup(
    cgroup: &Cgroup,
    flags: CloneFlags,
    self_join: bool,
    what: &str,
) -> Result<(ForkResult, CgroupJoin)> {
    let v2_dir = match self_join {
        true => cgroup.open_v2_dir()?,
        false => None,
    };
    let (forked, born_in_v2) = match &v2_dir {
        // SAFETY: the caller is single-threaded (this function's contract).
        Some(dir) => unsafe { proc::fork_with_namespaces_into(flags, dir.as_fd()) },
        // SAFETY: as above.
        None => unsafe { proc::fork_with_namespaces(flags) }.map(|f| (f, false)),
    }
    .ctx(|| what.into())?;
    let join = match self_join && (cgroup.layout().v2().is_none() || born_in_v2) {
        true => CgroupJoin::BySelf,
        false => CgroupJoin::ByRuntime,
    };
    Ok((forked, join))
}

/// Init cloned directly into all its new namespaces (no stage 1). Returns the exit code if
/// it does not exec.
pub(super) fn direct(ctx: &InitContext<'_>, join: CgroupJoin) -> i32 {
    if !report(ctx, ctx.plan.join_after_clone()) {
        return 1;
    }
    let ready = match join {
        CgroupJoin::BySelf => ctx
            .cgroup
            .enter_v1_as_current_thread()
            .map_err(Error::from)
            .and_then(|()| ctx.plan.unshare_cgroup()),
        CgroupJoin::ByRuntime => expect(ctx.channel, ParentMsg::CgroupJoined).and_then(|()| {
            if ctx.plan.creates_user() {
                wait_for_id_maps(ctx)?;
            }
            ctx.plan.unshare_cgroup()
        }),
    };
    if !report(ctx, ready) {
        return 1;
    }
    init(ctx)
}

/// Init forked by stage 1.
fn forked(ctx: &InitContext<'_>) -> i32 {
    let ready =
        expect(ctx.channel, ParentMsg::CgroupJoined).and_then(|()| ctx.plan.unshare_cgroup());
    if !report(ctx, ready) {
        return 1;
    }
    init(ctx)
}

fn become_ns_root() -> Result<()> {
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .ctx(|| "setgid 0 in user namespace".into())?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .ctx(|| "setuid 0 in user namespace".into())
}

fn stage1_steps(ctx: &InitContext<'_>) -> Result<()> {
    ctx.plan.join_all()?;
    if ctx.plan.creates_user() {
        ctx.plan.unshare_user()?;
        wait_for_id_maps(ctx)?;
    }
    ctx.plan.unshare_rest()?;
    if ctx.plan.has_time_offsets() {
        ctx.channel.send(&ChildMsg::SetTimeOffsets)?;
        expect(ctx.channel, ParentMsg::TimeOffsetsSet)?;
    }
    // SAFETY: stage 1 is single-threaded (forked from the single-threaded runtime).
    match unsafe { fork() }.ctx(|| "fork init".into())? {
        ForkResult::Child => std::process::exit(forked(ctx)),
        ForkResult::Parent { child } => ctx.channel.send(&ChildMsg::InitPid(child.as_raw())),
    }
}

/// Init. Returns the exit code if it does not exec.
fn init(ctx: &InitContext<'_>) -> i32 {
    let prepared = match setup(ctx) {
        Ok(p) => p,
        Err(e) => {
            let _ = ctx.channel.send(&ChildMsg::Failed(e.to_string()));
            return 1;
        }
    };
    if ctx.channel.send(&ChildMsg::Ready).is_err() {
        return 1;
    }
    let mut conn = match barrier::wait_for_start(ctx.barrier) {
        Ok(c) => c,
        Err(_) => return 1,
    };
    let failure = start_steps(ctx, &prepared);
    barrier::report_failure(&mut conn, &failure.to_string());
    127
}

/// What `setup` leaves for the start phase.
struct Prepared {
    exec: ExecPlan,
    seccomp: crate::seccomp::Pending,
    /// Our pid in the container (asked before the filter, which may refuse getpid).
    pid: i32,
}

fn setup(ctx: &InitContext<'_>) -> Result<Prepared> {
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    if ctx.plan.creates_network() {
        crate::netdev::loopback_up()?;
    }
    // Device nodes and mount points get exactly the modes the config asks for.
    proc::set_umask(0);
    let process = ctx
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process is missing"))?;
    if let Some(score) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", score.to_string())
            .map_err(|e| Error::io("write", "/proc/self/oom_score_adj", e))?;
    }
    let host_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<i32>().ok()));
    let cfg = RootfsConfig {
        spec: ctx.spec,
        bundle: ctx.bundle,
        rootfs: ctx.rootfs,
        in_user_ns: ctx.plan.in_user_ns(),
        new_mount_ns: ctx.plan.creates_mount(),
        no_pivot: ctx.no_pivot,
        cgroup: ctx.cgroup,
        idmapped: ctx.idmapped,
    };
    let root = rootfs::prepare(&cfg)?;

    if needs_runtime_steps(ctx.spec) {
        ctx.channel.send(&ChildMsg::RunRuntimeHooks)?;
        expect(ctx.channel, ParentMsg::HooksDone)?;
    }
    // After the environment was created (lifecycle step 2): runtime-spec's `created`.
    let state = spec_state(ctx, Status::Created, host_pid);
    hooks::run_all(
        hooks::of_kind(ctx.spec.hooks().as_ref(), HookKind::CreateContainer),
        &state,
        hooks::Inherit::Process(process.env().as_deref().unwrap_or_default()),
    )?;

    let pty = match ctx.console {
        Some(socket) => {
            let pty = console::open(root.as_fd(), process)?;
            console::bind_console(root.as_fd(), &pty)?;
            console::send_master(socket, &pty)?;
            Some(pty)
        }
        None => None,
    };
    rootfs::enter(&cfg)?;
    drop(root);
    let cwd = process::open_cwd(process.cwd())?;
    write_sysctls(ctx.spec)?;
    set_names(ctx.spec)?;
    rootfs::finalize(&cfg)?;
    if let Some(pty) = &pty {
        console::attach_stdio(pty)?;
    }
    process::prepare_as_root(process, ctx.id, ctx.new_keyring)?;
    process::Attributes::of(process, ctx.spec.linux().as_ref()).apply()?;
    let mut extra_env = Vec::new();
    if ctx.fds.listen > 0 {
        extra_env.push(format!("LISTEN_FDS={}", ctx.fds.listen));
        extra_env.push(format!("LISTEN_PID={}", nix::unistd::getpid()));
    }
    let exec = ExecPlan::new(process, &extra_env)?;
    let pid = nix::unistd::getpid().as_raw();
    let cwd = process::before_filter(process, cwd, ctx.fds)?;
    let nnp = process.no_new_privileges() == Some(true);
    let mut seccomp = crate::seccomp::prepare(ctx.seccomp, nnp, ctx.channel)?;
    process::become_user(process, cwd)?;
    seccomp.load_listener(ctx.channel)?;
    Ok(Prepared { exec, seccomp, pid })
}

/// Whether the runtime has work to do between the mounts and the pivot: prestart and
/// createRuntime hooks, or host interfaces to move in. Without any, init does not ask (the
/// round trip would be two process switches for nothing).
fn needs_runtime_steps(spec: &Spec) -> bool {
    let h = spec.hooks().as_ref();
    !hooks::of_kind(h, HookKind::Prestart).is_empty()
        || !hooks::of_kind(h, HookKind::CreateRuntime).is_empty()
        || spec
            .linux()
            .as_ref()
            .and_then(|l| l.net_devices().as_ref())
            .is_some_and(|d| !d.is_empty())
}

/// After `start`: the startContainer hooks, then exec. Returns only the failure.
fn start_steps(ctx: &InitContext<'_>, prepared: &Prepared) -> Error {
    let state = spec_state(ctx, Status::Created, Some(prepared.pid));
    let process_env = ctx
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.env().as_deref())
        .unwrap_or_default();
    if let Err(e) = hooks::run_all(
        hooks::of_kind(ctx.spec.hooks().as_ref(), HookKind::StartContainer),
        &state,
        hooks::Inherit::Process(process_env),
    ) {
        return e;
    }
    // The runtime blocked nothing for us; start the program with a clean signal mask.
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
    if let Err(e) = prepared.seccomp.load() {
        return e;
    }
    prepared.exec.exec()
}

fn spec_state(ctx: &InitContext<'_>, status: Status, pid: Option<i32>) -> SpecState {
    SpecState {
        oci_version: crate::spec::OCI_VERSION.into(),
        id: ctx.id.to_string(),
        status,
        pid,
        bundle: ctx.bundle.to_path_buf(),
        annotations: ctx.spec.annotations().clone().unwrap_or_default(),
    }
}

/// linux.sysctl, through the container's own /proc/sys (validated at create).
fn write_sysctls(spec: &Spec) -> Result<()> {
    for (key, value) in spec
        .linux()
        .iter()
        .flat_map(|l| l.sysctl().iter().flatten())
    {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| Error::io("write sysctl", &path, e))?;
    }
    Ok(())
}

fn set_names(spec: &Spec) -> Result<()> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("sethostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        proc::set_domainname(d).ctx(|| format!("setdomainname {d:?}"))?;
    }
    Ok(())
}
