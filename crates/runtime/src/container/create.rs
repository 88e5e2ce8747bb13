//! `create`: set the container up and park its init on the exec barrier.

use std::os::fd::{AsFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::Spec;

use super::cleanup::CreateGuard;
use super::init::{self, CgroupJoin, InitContext};
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, HookKind};
use crate::namespaces::{write_id_maps, write_time_offsets, NamespacePlan};
use crate::process::PassedFds;
use crate::spec::Bundle;
use crate::state::{process_stat, Container, StateRoot, Status, Stored};
use crate::sync::{Channel, ChildMsg, ParentMsg};
use crate::sys::proc;
use berth_cgroups::{resources, Cgroup, Layout};

/// What `create` is asked to do (runc's flags).
pub struct CreateOptions {
    pub id: String,
    pub bundle: Bundle,
    pub pid_file: Option<PathBuf>,
    /// A connected --console-socket.
    pub console_socket: Option<UnixStream>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Foreground `run`: become a subreaper so init is our child and can be waited for.
    pub foreground: bool,
}

/// A created container, as recorded in its state directory.
#[derive(Debug)]
pub struct Created {
    pub pid: i32,
    pub container: Container,
}

/// The number of systemd socket-activation descriptors passed to us (LISTEN_FDS).
fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Every descriptor 3..3+n to be passed must be open: a hole would be filled by one of the
/// runtime's own descriptors, which would then leak into the container.
fn check_passed_fds_open(n: u32) -> Result<()> {
    for fd in 3..3 + n as RawFd {
        if !proc::is_open(fd) {
            return Err(Error::Usage(format!(
                "descriptor {fd} is to be passed to the container but is not open"
            )));
        }
    }
    Ok(())
}

/// What `create` works out before it touches anything.
struct Checked {
    rootfs: PathBuf,
    fds: PassedFds,
    plan: NamespacePlan,
    cgroup: Cgroup,
    limits: resources::Plan,
    seccomp: Option<crate::seccomp::Program>,
    idmapped: crate::rootfs::IdmappedMounts,
}

/// The cgroup path of a container without `cgroupsPath`. runc uses `/<id>`, which makes
/// two state roots with the same id share a cgroup (and kill each other's processes); the
/// root's tag keeps them apart. One level, so delete leaves no parent behind.
fn default_cgroup_path(root: &StateRoot, id: &str) -> PathBuf {
    // FNV-1a: stable across runs and builds, unlike std's hasher.
    let tag = root
        .path()
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
        });
    PathBuf::from(format!("/berth-{:08x}-{id}", tag as u32))
}

fn check(root: &StateRoot, opts: &CreateOptions) -> Result<Checked> {
    let (bundle, spec) = (&opts.bundle.dir, &opts.bundle.spec);
    crate::spec::validate(spec)?;
    if crate::spec::joins_pid_namespace(spec) && !crate::sys::sealed_exe::running_sealed() {
        return Err(Error::Usage(
            "joining a pid namespace needs the runtime to run from a sealed copy of itself (sys::sealed_exe)".into(),
        ));
    }
    let rootfs = crate::spec::rootfs_path(bundle, spec)?;
    if !rootfs.is_dir() {
        return Err(Error::config(format!(
            "rootfs {} does not exist",
            rootfs.display()
        )));
    }
    let rootfs =
        std::fs::canonicalize(&rootfs).map_err(|e| Error::io("resolve rootfs", &rootfs, e))?;
    check_terminal(spec, opts)?;
    let fds = PassedFds {
        preserve: opts.preserve_fds,
        listen: listen_fds(),
    };
    check_passed_fds_open(fds.count())?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::config("linux is missing"))?;
    let plan = NamespacePlan::from_spec(linux)?;
    let cgroups_path = match linux.cgroups_path() {
        Some(p) if !p.as_os_str().is_empty() => p.clone(),
        _ => default_cgroup_path(root, &opts.id),
    };
    let cgroup = Cgroup::for_container(Layout::detect()?, Some(&cgroups_path), &opts.id)?;
    let limits = match linux.resources() {
        Some(r) => resources::plan(r, cgroup.layout())?,
        None => resources::Plan::default(),
    };
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(|s| crate::seccomp::Program::compile(s, Some(&root.seccomp_cache())))
        .transpose()?;
    // SAFETY: berth-runtime is single-threaded here (no thread was spawned).
    let idmapped = unsafe { crate::rootfs::prepare_idmapped(spec, bundle) }?;
    Ok(Checked {
        rootfs,
        fds,
        plan,
        cgroup,
        limits,
        seccomp,
        idmapped,
    })
}

pub fn create(root: &StateRoot, opts: CreateOptions) -> Result<Created> {
    let checked = check(root, &opts)?;
    let dir = root.claim(&opts.id)?;
    let mut guard = CreateGuard::new(dir.clone(), opts.foreground);
    Container::record_cgroup(&dir, checked.cgroup.path())?;
    checked.cgroup.create()?;
    guard.cgroup = Some(checked.cgroup.clone());
    checked.cgroup.apply(&checked.limits)?;
    if checked.plan.shares_our_mounts() {
        guard.host_mounts = Some(super::host_mounts::Before::take(&checked.rootfs)?);
    }
    let listener = crate::barrier::listen(&dir)?;
    if opts.foreground {
        proc::set_child_subreaper(true).ctx(|| "become child subreaper".into())?;
    }
    let (parent_end, child_end) = Channel::pair()?;
    let ctx = InitContext {
        id: &opts.id,
        spec: &opts.bundle.spec,
        bundle: &opts.bundle.dir,
        rootfs: &checked.rootfs,
        plan: &checked.plan,
        cgroup: &checked.cgroup,
        channel: &child_end,
        barrier: &listener,
        console: opts.console_socket.as_ref(),
        no_pivot: opts.no_pivot,
        new_keyring: !opts.no_new_keyring,
        fds: checked.fds,
        seccomp: checked.seccomp.as_ref(),
        idmapped: &checked.idmapped,
    };
    let forked = fork_init(&ctx, parent_end, &mut guard)?;
    let parent_end = forked.1;
    drop(child_end);
    drop(listener);
    drop(opts.console_socket);

    let partial = Container::new(opts.id.clone(), dir.clone(), None);
    if let Forked::Init(pid, CgroupJoin::ByRuntime) = forked.0 {
        join_cgroup(&checked.cgroup, pid, &parent_end)?;
    }
    let init_pid = drive_setup(
        &parent_end,
        &checked.plan,
        &checked.cgroup,
        forked.0,
        &opts.bundle,
        &partial,
        &mut guard,
    )?;
    if let Some(before) = &guard.host_mounts {
        before.record(&dir)?;
    }
    if let Some(rdt) = opts
        .bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.intel_rdt().as_ref())
    {
        crate::intel_rdt::apply(rdt, &opts.id, init_pid.as_raw(), &dir)?;
    }
    let (_, init_start_time) = process_stat(init_pid.as_raw())
        .ok_or_else(|| Error::Init("container init exited during setup".into()))?;
    let stored = Stored {
        id: opts.id.clone(),
        bundle: opts.bundle.dir.clone(),
        rootfs: checked.rootfs,
        pid: init_pid.as_raw(),
        init_start_time,
        created: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        annotations: opts.bundle.spec.annotations().clone().unwrap_or_default(),
        cgroup_path: checked.cgroup.path().to_string(),
        config: opts.bundle.spec,
    };
    Container::save(&dir, &stored)?;
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, init_pid.as_raw())?;
    }
    guard.disarm();
    Ok(Created {
        pid: init_pid.as_raw(),
        container: Container::new(opts.id, dir, Some(stored)).with_cgroup(checked.cgroup),
    })
}

/// Fork init: directly into its namespaces when possible, else through stage 1. Returns
/// what was forked and the runtime's end of the channel (the child dropped its copy).
fn fork_init(
    ctx: &InitContext<'_>,
    parent_end: Channel,
    guard: &mut CreateGuard,
) -> Result<(Forked, Channel)> {
    // Nothing in the container may open /proc/<init>/exe or ptrace init before it execs;
    // forks inherit this.
    proc::set_dumpable(false).ctx(|| "set non-dumpable".into())?;
    let forked = if ctx.plan.single_stage() {
        // In a new user namespace init cannot write the host's cgroup files itself.
        let self_join = !ctx.plan.creates_user();
        let pid_ns = ctx.plan.enter_pid_for_children()?;
        // SAFETY: berth-runtime is single-threaded here (no thread was spawned).
        let (result, join) = unsafe {
            init::fork_into_cgroup(ctx.cgroup, ctx.plan.new_flags(), self_join, "clone init")
        }?;
        match result {
            ForkResult::Child => {
                if let Some(pid_ns) = pid_ns {
                    pid_ns.forget_in_child();
                }
                drop(parent_end);
                std::process::exit(init::direct(ctx, join));
            }
            ForkResult::Parent { child } => {
                drop(pid_ns);
                Forked::Init(child, join)
            }
        }
    } else {
        // SAFETY: as above.
        match unsafe { fork() }.ctx(|| "fork".into())? {
            ForkResult::Child => {
                drop(parent_end);
                std::process::exit(init::stage1(ctx));
            }
            ForkResult::Parent { child } => Forked::Stage1(child),
        }
    };
    match forked {
        Forked::Init(pid, _) => {
            guard.init = Some(pid);
            guard.init_is_child = true;
        }
        Forked::Stage1(pid) => guard.stage1 = Some(pid),
    }
    Ok((forked, parent_end))
}

fn check_terminal(spec: &Spec, opts: &CreateOptions) -> Result<()> {
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    match (terminal, opts.console_socket.is_some()) {
        (true, false) => Err(Error::Usage(
            "process.terminal is true: pass --console-socket to receive the terminal".into(),
        )),
        (false, true) => Err(Error::Usage(
            "--console-socket was given but process.terminal is false".into(),
        )),
        _ => Ok(()),
    }
}

/// Put init in the container's cgroup, then let it go on (it creates its cgroup namespace
/// only after this, so the namespace is rooted at its cgroup).
fn join_cgroup(cgroup: &Cgroup, init: Pid, ch: &Channel) -> Result<()> {
    cgroup.add(init.as_raw())?;
    ch.send(&ParentMsg::CgroupJoined)
}

/// What `create` forked first.
#[derive(Clone, Copy)]
enum Forked {
    /// Stage 1, which creates the namespaces and forks init.
    Stage1(Pid),
    /// Init itself, cloned into all its namespaces; and who puts it in its cgroup.
    Init(Pid, CgroupJoin),
}

/// The runtime's half of the setup protocol. Returns init's pid once it is parked.
fn drive_setup(
    ch: &Channel,
    plan: &NamespacePlan,
    cgroup: &Cgroup,
    forked: Forked,
    bundle: &Bundle,
    partial: &Container,
    guard: &mut CreateGuard,
) -> Result<Pid> {
    let spec = &bundle.spec;
    // The process that creates the user and time namespaces: stage 1 if there is one.
    let (mut init_pid, ns_creator) = match forked {
        Forked::Stage1(pid) => (None, pid),
        Forked::Init(pid, _) => (Some(pid), pid),
    };
    let mut hooks_requested = false;
    loop {
        let (msg, fd) = match ch.recv_with_fd::<ChildMsg>()? {
            Some((msg, fd)) => (Some(msg), fd),
            None => (None, None),
        };
        match msg {
            Some(ChildMsg::SeccompListener) => {
                let pid = init_pid
                    .ok_or_else(|| Error::Init("seccomp listener before init's pid".into()))?;
                hand_listener_to_agent(spec, partial, bundle, pid, fd)?;
            }
            Some(ChildMsg::MapIds) => {
                write_id_maps(ns_creator.as_raw(), plan)?;
                ch.send(&ParentMsg::IdsMapped)?;
            }
            Some(ChildMsg::SetTimeOffsets) => {
                write_time_offsets(ns_creator.as_raw(), plan)?;
                ch.send(&ParentMsg::TimeOffsetsSet)?;
            }
            Some(ChildMsg::InitPid(pid)) => {
                let Forked::Stage1(stage1) = forked else {
                    return Err(Error::Init("unexpected init pid report".into()));
                };
                let pid = Pid::from_raw(pid);
                init_pid = Some(pid);
                guard.init = Some(pid);
                let status =
                    nix::sys::wait::waitpid(stage1, None).ctx(|| "wait for stage 1".into())?;
                guard.stage1 = None;
                if !matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)) {
                    return Err(Error::Init(format!("stage 1 failed: {status:?}")));
                }
                join_cgroup(cgroup, pid, ch)?;
            }
            Some(ChildMsg::RunRuntimeHooks) => hooks_requested = true,
            Some(ChildMsg::Ready) => {
                return init_pid
                    .ok_or_else(|| Error::Init("init ready before its pid was known".into()));
            }
            Some(ChildMsg::Failed(msg)) => {
                return Err(Error::Init(format!("container init failed: {msg}")))
            }
            None => return Err(Error::Init("container init exited during setup".into())),
        }
        // Stage 1 and init share the socket, so init's request may arrive before stage 1
        // reports init's pid, which the hooks need: answer once both are in.
        if let (true, Some(pid)) = (hooks_requested, init_pid) {
            hooks_requested = false;
            // Before the hooks and init's sysctls, which may name the devices.
            if let Some(devices) = spec.linux().as_ref().and_then(|l| l.net_devices().as_ref()) {
                crate::netdev::move_all(devices, pid.as_raw())?;
            }
            // The environment exists (lifecycle step 2): runtime-spec's `created`.
            let mut state = partial.spec_state(Status::Created);
            state.pid = Some(pid.as_raw());
            state.bundle = bundle.dir.clone();
            state.annotations = spec.annotations().clone().unwrap_or_default();
            if let Err(e) = run_create_hooks(spec, &state) {
                // runtime-spec: stop the container and continue at delete (poststop).
                state.status = Status::Stopped;
                let poststop = hooks::of_kind(spec.hooks().as_ref(), HookKind::Poststop);
                hooks::run_all_warn(poststop, &state);
                return Err(e);
            }
            ch.send(&ParentMsg::HooksDone)?;
        }
    }
}

/// Pass init's seccomp notify listener on to the agent (runtime-spec: while `creating`).
fn hand_listener_to_agent(
    spec: &Spec,
    partial: &Container,
    bundle: &Bundle,
    pid: Pid,
    listener: Option<std::os::fd::OwnedFd>,
) -> Result<()> {
    let listener =
        listener.ok_or_else(|| Error::Init("the seccomp listener did not arrive".into()))?;
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .ok_or_else(|| Error::Init("a seccomp listener without linux.seccomp".into()))?;
    let mut state = partial.spec_state(Status::Creating);
    state.pid = Some(pid.as_raw());
    state.bundle = bundle.dir.clone();
    state.annotations = spec.annotations().clone().unwrap_or_default();
    crate::seccomp_notify::send_to_agent(seccomp, &state, pid.as_raw(), listener.as_fd())
}

fn run_create_hooks(spec: &Spec, state: &crate::state::SpecState) -> Result<()> {
    let h = spec.hooks().as_ref();
    let inherit = hooks::Inherit::Runtime;
    hooks::run_all(hooks::of_kind(h, HookKind::Prestart), state, inherit)?;
    hooks::run_all(hooks::of_kind(h, HookKind::CreateRuntime), state, inherit)
}

/// Write the pid file atomically, as runc does.
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::io("write pid file", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("write pid file", path, e))
}
