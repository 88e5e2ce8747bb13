//! berth-shim: started by berthd for one container, in its own session so that berthd can
//! stop and start while the container runs. It creates and starts the container with the
//! OCI runtime (the container's stdout and stderr are pipes the shim holds), tells berthd the
//! outcome on an inherited descriptor, copies the output to a json-file log, reaps the
//! container's init (the shim is a subreaper), records the exit status in a file, and has the
//! runtime delete the container.

mod log;

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "berth-shim",
    version,
    about = "berth's per-container supervisor (started by berthd)"
)]
struct Args {
    #[arg(long)]
    id: String,
    #[arg(long)]
    bundle: PathBuf,
    /// The OCI runtime binary (runc's command line).
    #[arg(long)]
    runtime: PathBuf,
    /// The runtime's --root.
    #[arg(long)]
    runtime_root: PathBuf,
    /// The container's json-file log.
    #[arg(long)]
    log: PathBuf,
    /// Where the exit status is written (JSON), atomically.
    #[arg(long)]
    exit_file: PathBuf,
    /// A descriptor to report "started PID" or "failed MESSAGE" on, then closed.
    #[arg(long)]
    ready_fd: i32,
}

fn runtime(args: &Args) -> Command {
    let mut cmd = Command::new(&args.runtime);
    cmd.arg("--root")
        .arg(&args.runtime_root)
        .arg("--log")
        .arg(args.bundle.join("runtime.log"))
        .arg("--log-format")
        .arg("json");
    cmd
}

/// The last error the runtime logged (its JSON log), for a failure message.
fn runtime_error(args: &Args) -> String {
    std::fs::read_to_string(args.bundle.join("runtime.log"))
        .ok()
        .and_then(|text| {
            text.lines()
                .rev()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| v["level"] == "error")
                .and_then(|v| v["msg"].as_str().map(String::from))
        })
        .unwrap_or_else(|| "the runtime failed (no message)".into())
}

fn run_checked(mut cmd: Command, args: &Args, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("run {} {what}", args.runtime.display()))?;
    if !status.success() {
        bail!("{}", runtime_error(args));
    }
    Ok(())
}

/// Create and start; returns init's pid.
fn start(args: &Args, out: &OwnedFd, err: &OwnedFd) -> Result<i32> {
    let pid_file = args.bundle.join("init.pid");
    let mut create = runtime(args);
    create
        .arg("create")
        .arg("--bundle")
        .arg(&args.bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&args.id)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(err.try_clone()?));
    run_checked(create, args, "create")?;
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("read {}", pid_file.display()))?
        .trim()
        .parse()
        .context("the runtime's pid file")?;
    let mut start = runtime(args);
    start
        .arg("start")
        .arg(&args.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Err(e) = run_checked(start, args, "start") {
        let _ = runtime(args).args(["delete", "--force", &args.id]).status();
        return Err(e);
    }
    Ok(pid)
}

/// Reap children until `pid` exits; its status as a shell reports it.
fn wait_for(pid: i32) -> i32 {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return code,
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => return 128 + sig as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            // No child left: the init is gone without us seeing it (should not happen).
            Err(_) => return 255,
        }
    }
}

fn write_exit(path: &std::path::Path, code: i32, error: Option<&str>) -> Result<()> {
    let finished = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    let v = serde_json::json!({"exit_code": code, "finished_at": finished, "error": error});
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&v)?)
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
    match supervise(&args, &mut ready) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}");
            let _ = writeln!(ready, "failed {msg}");
            let _ = write_exit(&args.exit_file, 255, Some(&msg));
            std::process::ExitCode::FAILURE
        }
    }
}

fn supervise(args: &Args, ready: &mut std::fs::File) -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true).context("become a subreaper")?;
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let writer = log::Writer::open(&args.log)?;
    let pumps = [
        log::pump(out_r, "stdout", writer.clone()),
        log::pump(err_r, "stderr", writer),
    ];
    let pid = start(args, &out_w, &err_w)?;
    // Only the container holds the write ends now: the pumps end when it is gone.
    drop((out_w, err_w));
    writeln!(ready, "started {pid}").context("report to berthd")?;
    let code = wait_for(pid);
    // Whatever is left in the container's cgroup goes with it.
    let _ = runtime(args)
        .args(["delete", "--force", &args.id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    for p in pumps {
        let _ = p.join();
    }
    write_exit(&args.exit_file, code, None)
}
