//! `run`: create, start, and (in the foreground) wait for the container's exit, forwarding
//! signals to it and, with a terminal and no --console-socket, proxying our own terminal.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{BoxBuilder as ConsoleSizeBuilder, Process};

use super::delete::delete_container;
use super::start::start_container;
use super::{create, CreateOptions};
use crate::error::{Error, Result, SysContext};
use crate::state::{Container, StateRoot};
use crate::sys::tty;

pub struct RunOptions {
    pub create: CreateOptions,
    pub detach: bool,
    /// Keep the stopped container instead of deleting it (runc's --keep).
    pub keep: bool,
}

/// Signals a foreground `run` handles itself; the others keep their default action.
pub(super) const FORWARDED: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCHLD,
    Signal::SIGWINCH,
];

/// Returns the container's exit status (128+N if killed by signal N), or 0 when detached.
pub fn run(root: &StateRoot, mut opts: RunOptions) -> Result<i32> {
    if opts.detach {
        opts.create.foreground = false;
        let created = create(root, opts.create)?;
        return start_or_clean_up(&created.container).map(|()| 0);
    }
    let mut own_console = None;
    if opts.create.bundle.terminal() && opts.create.console_socket.is_none() {
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| Error::io("socketpair", "console", e))?;
        opts.create.console_socket = Some(theirs);
        own_console = Some(ours);
        if let Some(process) = opts.create.bundle.spec.process_mut().as_mut() {
            size_like_our_terminal(process);
        }
    }
    opts.create.foreground = true;
    let mask: SigSet = FORWARDED.iter().copied().collect();
    mask.thread_block().ctx(|| "block signals".into())?;
    let result = create(root, opts.create).and_then(|created| {
        let outcome = own_console
            .as_ref()
            .map(super::receive_master)
            .transpose()
            .and_then(|master| {
                start_or_clean_up(&created.container)?;
                supervise(Pid::from_raw(created.pid), &mask, master)
            });
        if outcome.is_err() || !opts.keep {
            delete_container(&created.container, true)?;
        }
        outcome
    });
    let _ = mask.thread_unblock();
    result
}

/// Give the container's pty our terminal's size from its birth (unless the config sets
/// one): sized only once the proxy runs, a process that asks first would see 0x0.
pub(super) fn size_like_our_terminal(process: &mut Process) {
    if process.console_size().is_some() {
        return;
    }
    if let Some((rows, cols)) = tty::winsize(std::io::stdin().as_fd()) {
        let size = ConsoleSizeBuilder::default()
            .height(u64::from(rows))
            .width(u64::from(cols))
            .build();
        process.set_console_size(size.ok());
    }
}

fn start_or_clean_up(container: &Container) -> Result<()> {
    start_container(container).inspect_err(|_| {
        let _ = delete_container(container, true);
    })
}

fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Wait for init, forwarding signals and proxying the terminal. Returns its exit code.
pub(super) fn supervise(init: Pid, mask: &SigSet, master: Option<OwnedFd>) -> Result<i32> {
    let signals = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC).ctx(|| "signalfd".into())?;
    let stdin = std::io::stdin();
    let raw = match &master {
        Some(_) => tty::make_raw(stdin.as_fd()).ok(),
        None => None,
    };
    let result = wait_loop(init, &signals, master.as_ref());
    if let Some(saved) = &raw {
        let _ = tty::restore(stdin.as_fd(), saved);
    }
    result
}

fn wait_loop(init: Pid, signals: &SignalFd, master: Option<&OwnedFd>) -> Result<i32> {
    let stdin = std::io::stdin();
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let (Some(m), true) = (master, master_open) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", e)),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut idx = 1;
        if let (Some(m), true) = (master, master_open) {
            if ready[idx] {
                master_open = copy(m.as_fd(), std::io::stdout().as_fd());
            }
            idx += 1;
        }
        if stdin_open && ready[idx] {
            if let Some(m) = master {
                stdin_open = copy(stdin.as_fd(), m.as_fd());
            }
        }
        if ready[0] {
            if let Some(code) = handle_signal(init, signals, master)? {
                if let Some(m) = master {
                    drain(m.as_fd());
                }
                return Ok(code);
            }
        }
    }
}

/// Copy what is readable from `from` to `to`, on the descriptors themselves (no buffering,
/// no duplicate per read). False once `from` is closed or `to` fails.
fn copy(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8192];
    let n = match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(_) => return false,
        Ok(n) => n,
    };
    let mut rest = &buf[..n];
    while !rest.is_empty() {
        match nix::unistd::write(to, rest) {
            Ok(w) => rest = &rest[w..],
            Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// After init exited: whatever output is still buffered in the pty.
fn drain(master: BorrowedFd<'_>) {
    loop {
        let mut fds = [PollFd::new(master, PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
            || !copy(master, std::io::stdout().as_fd())
        {
            return;
        }
    }
}

/// Handle one pending signal. Returns init's exit code once it has exited.
fn handle_signal(init: Pid, signals: &SignalFd, master: Option<&OwnedFd>) -> Result<Option<i32>> {
    let Some(info) = signals.read_signal().ctx(|| "read signalfd".into())? else {
        return Ok(None);
    };
    let signo = info.ssi_signo as i32;
    if signo == Signal::SIGCHLD as i32 {
        return Ok(reap(init));
    }
    if signo == Signal::SIGWINCH as i32 {
        if let (Some(m), Some((rows, cols))) = (master, tty::winsize(std::io::stdin().as_fd())) {
            let _ = tty::set_winsize(m.as_fd(), rows, cols);
        }
        return Ok(None);
    }
    if let Ok(sig) = Signal::try_from(signo) {
        let _ = nix::sys::signal::kill(init, sig);
    }
    Ok(None)
}

/// Reap every exited child (we are a subreaper); the code of init if it is among them.
fn reap(init: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(status) if status.pid() == Some(init) => code = exit_code(status).or(code),
            Ok(_) => {}
        }
    }
}
