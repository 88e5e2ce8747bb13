//! berth-shim: started by berthd for one container, in its own session so that berthd can
//! stop and start (or be killed) while the container runs.
//!
//! It creates the container with the OCI runtime (the container's stdio are pipes or a pty
//! the shim holds), reports "created PID" (or "failed MESSAGE") to berthd on an inherited
//! descriptor (with `--start`: creates and starts it in one runtime call, "started PID"),
//! then serves berthd on `<bundle>/shim.sock` (see berth-shim-protocol): start,
//! attach (output and input), resize, exec and wait. It copies the output to the json-file
//! log, reaps the container's processes (it is a subreaper), records the exit status in a
//! file and tells the waiting clients, and only then has the runtime delete the container,
//! so that nobody waits for the delete. One thread and one poll loop: the shim stays small
//! however many clients come and go.

mod exec;
mod log;
mod runtime;
mod server;
mod stdio;

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;

use crate::runtime::Runtime;
use crate::stdio::Plumbing;

#[derive(Debug, Parser)]
#[command(
    name = "berth-shim",
    version,
    about = "berth's per-container supervisor (started by berthd)"
)]
pub struct Args {
    #[arg(long)]
    id: String,
    #[arg(long)]
    bundle: PathBuf,
    /// The OCI runtime binary (runc's command line).
    #[arg(long)]
    runtime: PathBuf,
    /// An inherited descriptor of a sealed in-memory copy of the runtime binary, which the
    /// runtime is started from (so it need not copy itself; see berth-runtime's sealed_exe).
    #[arg(long)]
    runtime_fd: Option<i32>,
    /// The runtime's --root.
    #[arg(long)]
    runtime_root: PathBuf,
    /// The container's cgroup (its config's linux.cgroupsPath), where the OOM count is read.
    #[arg(long)]
    cgroups_path: PathBuf,
    /// The container's json-file log (none: the output is not kept, `--log-driver none`).
    #[arg(long)]
    log: Option<PathBuf>,
    /// The log's format: Docker's json-file, or the kubelet's CRI format.
    #[arg(long, value_enum, default_value_t = log::Format::JsonFile)]
    log_format: log::Format,
    /// Rotate the log when it would grow past this many bytes (0: never).
    #[arg(long, default_value_t = 0)]
    log_max_size: u64,
    /// How many log files rotation keeps (the live one included).
    #[arg(long, default_value_t = 1)]
    log_max_files: u32,
    /// Where the exit status is written (JSON), atomically.
    #[arg(long)]
    exit_file: PathBuf,
    /// A descriptor to report "created PID" or "failed MESSAGE" on, then closed.
    #[arg(long)]
    ready_fd: i32,
    /// The container has a terminal (its config says process.terminal).
    #[arg(long)]
    tty: bool,
    /// Keep the container's standard input open for attach clients.
    #[arg(long)]
    stdin: bool,
    /// Close the container's input when the first attach client closes its own.
    #[arg(long)]
    stdin_once: bool,
    /// Start the container at once (the runtime's `run --detach`: one runtime process, no
    /// start request) and report "started PID": for a container nothing attaches to
    /// before it starts and whose network needs nothing between create and start.
    #[arg(long)]
    start: bool,
}

/// The exit record berthd reads: code, time, and why the container never ran, if so.
pub fn exit_record(code: i32, error: Option<&str>) -> serde_json::Value {
    let finished = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    serde_json::json!({"exit_code": code, "finished_at": finished, "error": error})
}

pub fn write_exit(path: &Path, record: &serde_json::Value) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(record)?)
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // SAFETY: berthd passed this descriptor for us alone; nothing else in this process owns it.
    let ready_fd = unsafe { OwnedFd::from_raw_fd(args.ready_fd) };
    // Not for the runtime or the container.
    let _ = nix::fcntl::fcntl(
        &ready_fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    let mut ready = std::fs::File::from(ready_fd);
    // SAFETY: as the ready descriptor, berthd passed it for us alone.
    let sealed_runtime = args
        .runtime_fd
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    if let Some(fd) = &sealed_runtime {
        // Not for the container: the runtime is started from it by path and closes it.
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    match create(&args, sealed_runtime) {
        Ok(mut shim) if args.start => {
            shim.started_at_once();
            let _ = writeln!(ready, "started {}", shim.init_pid());
            drop(ready);
            serve(shim)
        }
        Ok(mut shim) => {
            let _ = writeln!(ready, "created {}", shim.init_pid());
            shim.hold_until_start(ready);
            serve(shim)
        }
        Err(e) => {
            let msg = format!("{e:#}");
            let _ = writeln!(ready, "failed {msg}");
            let _ = write_exit(&args.exit_file, &exit_record(255, Some(&msg)));
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve(shim: server::Shim<'_>) -> std::process::ExitCode {
    match shim.serve() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-shim: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Everything up to a created container and a listening socket.
fn create(args: &Args, sealed_runtime: Option<OwnedFd>) -> Result<server::Shim<'_>> {
    nix::sys::prctl::set_child_subreaper(true).context("become a subreaper")?;
    // Children's exits arrive on a signalfd, read by the poll loop.
    let mut mask = nix::sys::signal::SigSet::empty();
    mask.add(nix::sys::signal::Signal::SIGCHLD);
    mask.thread_block().context("block SIGCHLD")?;
    let signals = nix::sys::signalfd::SignalFd::with_flags(
        &mask,
        nix::sys::signalfd::SfdFlags::SFD_NONBLOCK | nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
    )
    .context("signalfd")?;
    // Socket names are relative to the bundle: their full paths can be too long to bind.
    std::env::set_current_dir(&args.bundle)
        .with_context(|| format!("enter {}", args.bundle.display()))?;
    let _ = std::fs::remove_file(berth_shim_protocol::SOCKET);
    let listener = UnixListener::bind(berth_shim_protocol::SOCKET).context("bind shim.sock")?;
    listener.set_nonblocking(true).context("shim.sock")?;
    let runtime = Runtime {
        binary: args.runtime.clone(),
        sealed: sealed_runtime,
        root: args.runtime_root.clone(),
        id: args.id.clone(),
        cgroups_path: args.cgroups_path.clone(),
        log: args.bundle.join("runtime.log"),
    };
    let log = match &args.log {
        Some(path) => {
            log::Writer::open(path, args.log_format, args.log_max_size, args.log_max_files)?
        }
        None => log::Writer::none(),
    };
    let pid_file = args.bundle.join("init.pid");
    let mut create = runtime.command();
    let what = if args.start { "run" } else { "create" };
    create.arg(what);
    if args.start {
        create.arg("--detach");
    }
    create
        .arg("--bundle")
        .arg(&args.bundle)
        .arg("--pid-file")
        .arg(&pid_file);
    let stdio = if args.tty {
        const CONSOLE: &str = "console.sock";
        let _ = std::fs::remove_file(CONSOLE);
        let console = UnixListener::bind(CONSOLE).context("bind the console socket")?;
        create.arg("--console-socket").arg(CONSOLE).arg(&args.id);
        create
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let ran = runtime.run(create, what);
        let _ = std::fs::remove_file(CONSOLE);
        ran?;
        Plumbing::terminal(&console)
    } else {
        let mut plumbing = Plumbing::pipes(args.stdin)?;
        create.arg(&args.id);
        plumbing.give(&mut create);
        runtime.run(create, what)?;
        Ok(plumbing)
    };
    // The container exists from here: a failure must not leave it behind.
    match stdio.and_then(|stdio| Ok((stdio, runtime::read_pid(&pid_file)?))) {
        Ok((stdio, init)) => Ok(server::Shim::new(
            args, runtime, listener, signals, log, init, stdio,
        )),
        Err(e) => {
            runtime.delete();
            Err(e)
        }
    }
}
