//! berth-pause: the one process a pod with a shared pid namespace needs. A pid namespace
//! cannot be held by a file alone (once its pid 1 is gone no process can enter it), so
//! this makes a new pid namespace, forks its pid 1 and prints that process's pid (in the
//! caller's namespace) on stdout; the pid 1 reaps what is re-parented to it, as a pause
//! container does, and ends on SIGTERM, SIGINT or SIGHUP. The other namespaces of a pod
//! are held by files (berth's CRI), so no pause process exists for them.

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{fork, ForkResult, Pid};

/// The caller reads our stdout to its end: the holder keeps none of its pipes.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

fn hold() -> ! {
    detach_stdio();
    let mut ending = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGCHLD,
    ] {
        ending.add(s);
    }
    // Blocked, then taken one at a time: pid 1 of a namespace ignores signals it has no
    // handler for, and a handler is not needed to wait for them.
    if ending.thread_block().is_err() {
        std::process::exit(1);
    }
    loop {
        match ending.wait() {
            Ok(Signal::SIGCHLD) => {
                while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    if status == nix::sys::wait::WaitStatus::StillAlive {
                        break;
                    }
                }
            }
            Ok(_) => std::process::exit(0),
            Err(_) => std::process::exit(1),
        }
    }
}

fn main() -> std::process::ExitCode {
    if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWPID) {
        eprintln!("berth-pause: a new pid namespace: {e}");
        return std::process::ExitCode::FAILURE;
    }
    // SAFETY: single-threaded here; the child only blocks signals and waits.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => hold(),
        Ok(ForkResult::Parent { child }) => {
            println!("{child}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("berth-pause: fork: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
