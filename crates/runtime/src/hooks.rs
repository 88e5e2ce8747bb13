//! Running runtime-spec hooks: the state JSON on stdin, the hook's own args and env, and its
//! timeout. What a failure means (abort, or warn and go on) is the caller's decision, as the
//! spec gives it per hook kind.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Hook, Hooks};

use crate::error::{Error, Result};
use crate::state::SpecState;

/// The six hook points of the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

/// The hooks of one kind in `hooks`.
pub fn of_kind(hooks: Option<&Hooks>, kind: HookKind) -> &[Hook] {
    let Some(h) = hooks else { return &[] };
    #[allow(deprecated)]
    let list = match kind {
        HookKind::Prestart => h.prestart(),
        HookKind::CreateRuntime => h.create_runtime(),
        HookKind::CreateContainer => h.create_container(),
        HookKind::StartContainer => h.start_container(),
        HookKind::Poststart => h.poststart(),
        HookKind::Poststop => h.poststop(),
    };
    list.as_deref().unwrap_or_default()
}

/// The environment of a hook whose config has no `env`. A hook's `env`, when given (even
/// empty), is its whole environment; without one it inherits, as under runc (Go's exec
/// with a nil Env): the runtime's environment for the hooks the runtime runs, and the
/// container process's for those init runs in the container, whose environment runc sets
/// to `process.env` first.
#[derive(Debug, Clone, Copy)]
pub enum Inherit<'a> {
    /// prestart, createRuntime, poststart, poststop.
    Runtime,
    /// createContainer, startContainer: `process.env`.
    Process(&'a [String]),
}

/// Run `hooks` in order; stop at the first failure.
pub fn run_all(hooks: &[Hook], state: &SpecState, inherit: Inherit<'_>) -> Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).map_err(|e| Error::Init(format!("encode state: {e}")))?;
    for hook in hooks {
        run_one(hook, &json, inherit)?;
    }
    Ok(())
}

/// Run `hooks`, logging failures instead of returning them (poststart, poststop).
pub fn run_all_warn(hooks: &[Hook], state: &SpecState) {
    if hooks.is_empty() {
        return;
    }
    let Ok(json) = serde_json::to_vec(state) else {
        return;
    };
    for hook in hooks {
        if let Err(e) = run_one(hook, &json, Inherit::Runtime) {
            tracing::warn!("{e}");
        }
    }
}

/// Set `cmd`'s environment: the hook's own, or what it inherits.
fn set_env(cmd: &mut Command, hook: &Hook, inherit: Inherit<'_>) {
    let given = match (hook.env(), inherit) {
        (Some(env), _) => env,
        (None, Inherit::Process(env)) => env,
        (None, Inherit::Runtime) => return,
    };
    cmd.env_clear();
    for kv in given {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
}

fn run_one(hook: &Hook, state: &[u8], inherit: Inherit<'_>) -> Result<()> {
    let fail = |msg: String| Error::Hook {
        path: hook.path().clone(),
        msg,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
    }
    set_env(&mut cmd, hook, inherit);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so a timeout kills whatever the hook started too.
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that exits without reading its stdin is not an error.
        let _ = stdin.write_all(state);
    }
    let timeout = hook
        .timeout()
        .and_then(|t| u64::try_from(t).ok())
        .map(Duration::from_secs);
    let output = collect_output(&mut child, timeout);
    let status = child.wait().map_err(|e| fail(format!("wait: {e}")))?;
    let output = output.map_err(&fail)?;
    if status.success() {
        Ok(())
    } else {
        let detail = String::from_utf8_lossy(&output).trim().to_string();
        Err(fail(format!(
            "{status}{}{detail}",
            if detail.is_empty() { "" } else { ": " }
        )))
    }
}

/// Read stdout and stderr until both close or the deadline passes (then kill the hook).
fn collect_output(
    child: &mut Child,
    timeout: Option<Duration>,
) -> std::result::Result<Vec<u8>, String> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut out = Vec::new();
    let mut pipes: Vec<Box<dyn ReadFd>> = Vec::new();
    if let Some(s) = child.stdout.take() {
        pipes.push(Box::new(s));
    }
    if let Some(s) = child.stderr.take() {
        pipes.push(Box::new(s));
    }
    while !pipes.is_empty() {
        let wait = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
                    let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
                    return Err(format!(
                        "timed out after {}s",
                        timeout.map_or(0, |t| t.as_secs())
                    ));
                }
                PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = pipes
                .iter()
                .map(|p| PollFd::new(p.fd(), PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, wait) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(format!("poll: {e}")),
            }
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        let mut i = 0;
        pipes.retain_mut(|p| {
            let keep = !ready[i] || {
                let mut buf = [0u8; 4096];
                match p.read(&mut buf) {
                    Ok(0) | Err(_) => false,
                    Ok(n) => {
                        if out.len() < 64 * 1024 {
                            out.extend_from_slice(&buf[..n]);
                        }
                        true
                    }
                }
            };
            i += 1;
            keep
        });
    }
    Ok(out)
}

trait ReadFd: Read {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_>;
}

impl<T: Read + AsFd> ReadFd for T {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;
    use std::collections::HashMap;

    fn state() -> SpecState {
        SpecState {
            oci_version: "1.2.0".into(),
            id: "c1".into(),
            status: crate::state::Status::Creating,
            pid: Some(42),
            bundle: "/b".into(),
            annotations: HashMap::new(),
        }
    }

    fn hook(script: &str, timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".to_string(), "-c".to_string(), script.to_string()])
            .env(vec!["HOOKVAR=yes".to_string()]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().expect("hook")
    }

    #[test]
    fn hook_reads_state_and_sees_only_its_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let script = format!(
            "cat > {0}; echo \"$HOOKVAR/${{HOME:-nohome}}\" >> {0}",
            out.display()
        );
        run_all(&[hook(&script, None)], &state(), Inherit::Runtime).expect("hook runs");
        let text = std::fs::read_to_string(&out).expect("hook output");
        assert!(
            text.contains("\"id\":\"c1\"") && text.contains("\"pid\":42"),
            "{text}"
        );
        assert!(text.ends_with("yes/nohome\n"), "{text}");
    }

    #[test]
    fn hook_without_env_inherits_the_runtimes_or_the_processs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let script = format!(
            "echo \"${{CARGO_MANIFEST_DIR:-none}}/${{CONTAINER_VAR:-none}}\" > {}",
            out.display()
        );
        let bare = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".to_string(), "-c".to_string(), script])
            .build()
            .expect("hook");
        let ours = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| "none".into());
        run_all(std::slice::from_ref(&bare), &state(), Inherit::Runtime).expect("runs");
        let text = std::fs::read_to_string(&out).expect("output");
        assert_eq!(text, format!("{ours}/none\n"));
        let process_env = ["CONTAINER_VAR=c".to_string()];
        run_all(&[bare], &state(), Inherit::Process(&process_env)).expect("runs");
        let text = std::fs::read_to_string(&out).expect("output");
        assert_eq!(text, "none/c\n");
    }

    #[test]
    fn failing_hook_reports_status_and_stderr() {
        let err = run_all(
            &[hook("echo broken >&2; exit 3", None)],
            &state(),
            Inherit::Runtime,
        )
        .expect_err("fails");
        let msg = err.to_string();
        assert!(
            msg.contains("exit status: 3") && msg.contains("broken"),
            "{msg}"
        );
    }

    #[test]
    fn hook_past_its_timeout_is_killed_with_its_children() {
        // The hook's child is orphaned when the hook dies: adopt it, to reap it below.
        crate::sys::proc::set_child_subreaper(true).expect("subreaper");
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("child.pid");
        let started = Instant::now();
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let err =
            run_all(&[hook(&script, Some(1))], &state(), Inherit::Runtime).expect_err("times out");
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let child: i32 = std::fs::read_to_string(&pid_file)
            .expect("pid")
            .trim()
            .parse()
            .expect("int");
        let status =
            nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None).expect("reap child");
        assert!(
            matches!(
                status,
                nix::sys::wait::WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)
            ),
            "the hook's child outlived the timeout: {status:?}"
        );
    }
}
