//! `exec`: run another process in a created or running container, with the container's
//! namespaces, cgroup and security (user, capabilities, rlimits, no_new_privs).
//!
//! ```text
//!  runtime ──fork──▶ joiner ── (born in the cgroup) joins every namespace of init
//!     │                 └─fork──▶ process ── in the pid namespace: tty, identity, exec
//!     └─ waits for the exec (channel closes on exec), then for the exit unless detached
//! ```

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::signal::SigSet;
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::{
    LinuxIntelRdt, LinuxMemoryPolicy, LinuxPersonality, LinuxSeccomp, Process,
};

use super::init::CgroupJoin;
use super::run::{size_like_our_terminal, supervise, FORWARDED};
use crate::error::{Error, Result, SysContext};
use crate::process::{self, ExecPlan, PassedFds};
use crate::state::{SpecState, StateRoot, Status};
use crate::sync::{Channel, ChildMsg, ParentMsg};
use crate::sys::proc;

pub struct ExecOptions {
    pub id: String,
    pub process: Process,
    /// A connected --console-socket.
    pub console_socket: Option<UnixStream>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// runc's --ignore-paused: exec into a paused container too. The process joins the
    /// frozen cgroup, so it (and this exec) waits for the container's resume, as under runc.
    pub ignore_paused: bool,
    /// runc's --cgroup arguments: `[<controller>[,<controller>]:]<path>`, existing
    /// sub-cgroups of the container's to put the process in.
    pub cgroups: Vec<String>,
}

/// What the exec'd process takes from the container besides its process.
struct FromContainer {
    seccomp: Option<crate::seccomp::Program>,
    /// Init's root, when the container has no mount namespace of its own: init entered its
    /// rootfs with chroot, which joining namespaces does not reproduce.
    root: Option<File>,
    personality: Option<LinuxPersonality>,
    memory_policy: Option<LinuxMemoryPolicy>,
    intel_rdt: Option<LinuxIntelRdt>,
    affinity: Option<process::ExecAffinity>,
    /// Where a seccomp notify listener goes, and the container's state to send with it.
    agent: Option<(LinuxSeccomp, SpecState)>,
}

/// Init's root directory if the container has no mount namespace of its own.
fn chroot_of(config: &oci_spec::runtime::Spec, init: i32) -> Result<Option<File>> {
    let own = config
        .linux()
        .iter()
        .flat_map(|l| l.namespaces().iter().flatten())
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Mount && n.path().is_none());
    if own {
        return Ok(None);
    }
    let path = format!("/proc/{init}/root");
    File::open(&path)
        .map(Some)
        .map_err(|e| Error::io("open the root of", path, e))
}

/// Namespace types in the order they are joined: user first (it grants the rights for the
/// others), mount last but one so /proc paths were all opened before.
const NAMESPACES: [(&str, CloneFlags); 8] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// The namespaces of `init` that differ from ours, opened.
fn namespaces_of(init: i32) -> Result<Vec<(CloneFlags, File, bool)>> {
    let mut out = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{init}/ns/{name}");
        let (Ok(a), Ok(b)) = (
            std::fs::read_link(&theirs),
            std::fs::read_link(format!("/proc/self/ns/{name}")),
        ) else {
            continue;
        };
        if a != b {
            let file = File::open(&theirs).map_err(|e| Error::io("open namespace", &theirs, e))?;
            out.push((flag, file, name == "user"));
        }
    }
    Ok(out)
}

/// Returns the process's exit status, or 0 when detached.
pub fn exec(root: &StateRoot, mut opts: ExecOptions) -> Result<i32> {
    let container = root.load(&opts.id)?;
    let status = container.status();
    let stored = match (&container.stored, status) {
        (Some(s), Status::Created | Status::Running) => s,
        (Some(s), Status::Paused) if opts.ignore_paused => s,
        (Some(_), Status::Paused) => {
            return Err(Error::WrongState {
                id: opts.id.clone(),
                status: status.to_string(),
                action: "cannot exec in a paused container (use --ignore-paused to override)",
            })
        }
        _ => {
            return Err(Error::WrongState {
                id: opts.id.clone(),
                status: status.to_string(),
                action: "exec needs a created or running container",
            })
        }
    };
    if opts.process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Usage("exec: no command given".into()));
    }
    let sub_cgroups = berth_cgroups::SubCgroups::parse(&opts.cgroups)?;
    process::inherit_for_exec(&mut opts.process, stored.config.process().as_ref());
    let linux = stored.config.linux().as_ref();
    let personality = linux.and_then(|l| l.personality().clone());
    let memory_policy = linux.and_then(|l| l.memory_policy().clone());
    process::Attributes::for_exec(&opts.process, personality.as_ref(), memory_policy.as_ref())
        .check()?;
    let affinity = process::ExecAffinity::of(&opts.process)?;
    let terminal = opts.process.terminal().unwrap_or(false);
    if !terminal && opts.console_socket.is_some() {
        return Err(Error::Usage(
            "--console-socket was given but the process has no terminal (-t)".into(),
        ));
    }
    if terminal && opts.detach && opts.console_socket.is_none() {
        return Err(Error::Usage(
            "a detached exec with a terminal needs --console-socket".into(),
        ));
    }
    if !crate::sys::sealed_exe::running_sealed() {
        return Err(Error::Usage("exec joins the container's pid namespace: the runtime must run from a sealed copy of itself".into()));
    }
    let cgroup = container
        .cgroup()?
        .ok_or_else(|| Error::Init("the container has no cgroup".into()))?
        .clone();
    let namespaces = namespaces_of(stored.pid)?;
    let mut own_console = None;
    if terminal && opts.console_socket.is_none() {
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| Error::io("socketpair", "console", e))?;
        opts.console_socket = Some(theirs);
        own_console = Some(ours);
        size_like_our_terminal(&mut opts.process);
    }
    let fds = PassedFds {
        preserve: opts.preserve_fds,
        listen: 0,
    };
    let mask: SigSet = FORWARDED.iter().copied().collect();
    if !opts.detach {
        proc::set_child_subreaper(true).ctx(|| "become child subreaper".into())?;
        mask.thread_block().ctx(|| "block signals".into())?;
    }
    let seccomp = stored
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref());
    let inherited = FromContainer {
        seccomp: seccomp
            .map(|s| crate::seccomp::Program::compile(s, Some(&root.seccomp_cache())))
            .transpose()?,
        root: chroot_of(&stored.config, stored.pid)?,
        personality,
        memory_policy,
        intel_rdt: linux.and_then(|l| l.intel_rdt().clone()),
        affinity,
        agent: seccomp
            .filter(|s| s.listener_path().is_some())
            .map(|s| (s.clone(), container.spec_state(Status::Running))),
    };
    let target = (&cgroup, &sub_cgroups, status == Status::Paused);
    let result = spawn(&opts, &inherited, target, &namespaces, fds).and_then(|pid| {
        if let Some(path) = &opts.pid_file {
            std::fs::write(path, pid.to_string())
                .map_err(|e| Error::io("write pid file", path, e))?;
        }
        if opts.detach {
            return Ok(0);
        }
        let master = own_console
            .as_ref()
            .map(super::receive_master)
            .transpose()?;
        supervise(pid, &mask, master)
    });
    let _ = mask.thread_unblock();
    result
}

/// Fork the joiner and the process; returns the process's pid once it has exec'd.
fn spawn(
    opts: &ExecOptions,
    inherited: &FromContainer,
    (cgroup, sub, frozen): (&berth_cgroups::Cgroup, &berth_cgroups::SubCgroups, bool),
    namespaces: &[(CloneFlags, File, bool)],
    fds: PassedFds,
) -> Result<Pid> {
    let (parent_end, child_end) = Channel::pair()?;
    proc::set_dumpable(false).ctx(|| "set non-dumpable".into())?;
    // The joiner is born with it (this runtime only waits from here on).
    if let Some(affinity) = &inherited.affinity {
        affinity.apply_initial()?;
    }
    let (forked, join) = fork_joiner(cgroup, sub, frozen, inherited)?;
    let joiner = match forked {
        ForkResult::Child => {
            drop(parent_end);
            let code =
                match join_and_fork(opts, inherited, (cgroup, join), namespaces, fds, &child_end) {
                    Ok(()) => 0,
                    Err(e) => {
                        let _ = child_end.send(&ChildMsg::Failed(e.to_string()));
                        1
                    }
                };
            std::process::exit(code);
        }
        ForkResult::Parent { child } => child,
    };
    drop(child_end);
    let reap_joiner = || nix::sys::wait::waitpid(joiner, None);
    let joined = match join {
        CgroupJoin::BySelf => Ok(()),
        CgroupJoin::ByRuntime => cgroup
            .add_in(joiner.as_raw(), sub)
            .map_err(Error::from)
            .and_then(|()| match &inherited.intel_rdt {
                Some(rdt) => crate::intel_rdt::join(rdt, &opts.id, joiner.as_raw()),
                None => Ok(()),
            })
            .and_then(|()| parent_end.send(&ParentMsg::CgroupJoined)),
    };
    if let Err(e) = joined {
        let _ = nix::sys::signal::kill(joiner, nix::sys::signal::Signal::SIGKILL);
        let _ = reap_joiner();
        return Err(e);
    }
    let mut pid = None;
    let mut ready = false;
    // The process's listener may arrive before the joiner reports the process's pid.
    let mut listener: Option<std::os::fd::OwnedFd> = None;
    loop {
        // Sent once both are in (the pid is checked first: `take` only then).
        let ready_to_send = pid.and_then(|p| listener.take().map(|fd| (p, fd)));
        if let Some((p, fd)) = ready_to_send {
            if let Err(e) = send_listener(inherited, p, fd.as_fd()) {
                // Its notify rules would wait for an agent that never gets the listener.
                let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(p, None);
                return Err(e);
            }
        }
        let (msg, fd) = match parent_end.recv_with_fd::<ChildMsg>()? {
            Some((msg, fd)) => (Some(msg), fd),
            None => (None, None),
        };
        match msg {
            Some(ChildMsg::SeccompListener) => {
                listener = Some(
                    fd.ok_or_else(|| Error::Init("the seccomp listener did not arrive".into()))?,
                )
            }
            Some(ChildMsg::InitPid(p)) => {
                pid = Some(Pid::from_raw(p));
                let _ = reap_joiner();
            }
            Some(ChildMsg::Ready) => ready = true,
            Some(ChildMsg::Failed(msg)) => {
                let _ = reap_joiner();
                if let Some(p) = pid {
                    let _ = nix::sys::wait::waitpid(p, None);
                }
                return Err(Error::Init(format!("exec failed: {msg}")));
            }
            Some(other) => {
                return Err(Error::Init(format!(
                    "unexpected message from the exec process: {other:?}"
                )))
            }
            // Closed: the process exec'd (its end is close-on-exec) or died.
            None => {
                return match (pid, ready) {
                    (Some(p), true) => Ok(p),
                    _ => Err(Error::Init("the exec process exited during setup".into())),
                }
            }
        }
    }
}

/// Fork the joiner: born in the container's v2 cgroup, entering the v1 hierarchies itself,
/// as create's init is (no process move, whose grace period was most of an exec's time);
/// moved by the runtime when it goes to sub-cgroups or an Intel RDT group, when it could
/// not be born in its v2 cgroup, or into a frozen container (`--ignore-paused`): a joiner
/// entering the hierarchies one by one would freeze in the first frozen one, outside the
/// others.
fn fork_joiner(
    cgroup: &berth_cgroups::Cgroup,
    sub: &berth_cgroups::SubCgroups,
    frozen: bool,
    inherited: &FromContainer,
) -> Result<(ForkResult, CgroupJoin)> {
    let self_join = !frozen && sub.is_empty() && inherited.intel_rdt.is_none();
    // SAFETY: berth-runtime is single-threaded here, so the child may run any code.
    unsafe { super::init::fork_into_cgroup(cgroup, CloneFlags::empty(), self_join, "fork") }
}

/// Pass the process's seccomp notify listener on to the agent (runc reports the container
/// as `running`, with the exec'd process's pid).
fn send_listener(inherited: &FromContainer, pid: Pid, listener: BorrowedFd<'_>) -> Result<()> {
    let (config, state) = inherited.agent.as_ref().ok_or_else(|| {
        Error::Init("a seccomp listener without linux.seccomp.listenerPath".into())
    })?;
    crate::seccomp_notify::send_to_agent(config, state, pid.as_raw(), listener)
}

/// The joiner: into the cgroup (done by the runtime), then every namespace, then fork the
/// process so that it is inside the pid namespace.
fn join_and_fork(
    opts: &ExecOptions,
    inherited: &FromContainer,
    (cgroup, join): (&berth_cgroups::Cgroup, CgroupJoin),
    namespaces: &[(CloneFlags, File, bool)],
    fds: PassedFds,
    ch: &Channel,
) -> Result<()> {
    match join {
        CgroupJoin::BySelf => cgroup.enter_v1_as_current_thread()?,
        CgroupJoin::ByRuntime => match ch.recv::<ParentMsg>()? {
            Some(ParentMsg::CgroupJoined) => {}
            other => {
                return Err(Error::Init(format!(
                    "expected CgroupJoined from the runtime, got {other:?}"
                )))
            }
        },
    }
    // In the cgroup now (whose cpuset, on v1, has just reset the affinity).
    if let Some(affinity) = &inherited.affinity {
        affinity.apply_final()?;
    }
    for (flag, file, is_user) in namespaces {
        nix::sched::setns(file.as_fd(), *flag).ctx(|| format!("join namespace {flag:?}"))?;
        if *is_user {
            let zero = nix::unistd::Gid::from_raw(0);
            nix::unistd::setresgid(zero, zero, zero)
                .ctx(|| "setgid 0 in the user namespace".into())?;
            let root = nix::unistd::Uid::from_raw(0);
            nix::unistd::setresuid(root, root, root)
                .ctx(|| "setuid 0 in the user namespace".into())?;
        }
    }
    if let Some(root) = &inherited.root {
        nix::unistd::fchdir(root).ctx(|| "chdir to init's root".into())?;
        nix::unistd::chroot(".").ctx(|| "chroot to init's root".into())?;
        nix::unistd::chdir("/").ctx(|| "chdir /".into())?;
    }
    // SAFETY: the joiner is single-threaded (forked from the single-threaded runtime).
    match unsafe { fork() }.ctx(|| "fork the exec process".into())? {
        ForkResult::Child => {
            let err = run_process(opts, inherited, fds, ch);
            let _ = ch.send(&ChildMsg::Failed(err.to_string()));
            std::process::exit(127);
        }
        ForkResult::Parent { child } => ch.send(&ChildMsg::InitPid(child.as_raw())),
    }
}

/// The process: terminal, identity, exec. Returns only the failure.
fn run_process(
    opts: &ExecOptions,
    inherited: &FromContainer,
    fds: PassedFds,
    ch: &Channel,
) -> Error {
    let steps = || -> Result<(ExecPlan, crate::seccomp::Pending)> {
        nix::unistd::setsid().ctx(|| "setsid".into())?;
        let process = &opts.process;
        if let Some(socket) = &opts.console_socket {
            let root = nix::fcntl::open(
                "/",
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ctx(|| "open /".into())?;
            let pty = crate::console::open(root.as_fd(), process)?;
            crate::console::send_master(socket, &pty)?;
            crate::console::attach_stdio(&pty)?;
        }
        process::prepare_as_root(process, &opts.id, false)?;
        process::Attributes::for_exec(
            process,
            inherited.personality.as_ref(),
            inherited.memory_policy.as_ref(),
        )
        .apply()?;
        let cwd = process::open_cwd(process.cwd())?;
        let plan = ExecPlan::new(process, &[])?;
        let cwd = process::before_filter(process, cwd, fds)?;
        let mut seccomp = crate::seccomp::prepare(
            inherited.seccomp.as_ref(),
            process.no_new_privileges() == Some(true),
            ch,
        )?;
        process::become_user(process, cwd)?;
        seccomp.load_listener(ch)?;
        Ok((plan, seccomp))
    };
    let (plan, seccomp) = match steps() {
        Ok(p) => p,
        Err(e) => return e,
    };
    if let Err(e) = ch.send(&ChildMsg::Ready) {
        return e;
    }
    let _ = SigSet::empty().thread_set_mask();
    if let Err(e) = seccomp.load() {
        return e;
    }
    plan.exec()
}
