//! One plugin run: its binary from the bin dirs, the CNI_* environment, its configuration
//! (with name, cniVersion, prevResult and the runtime config it asks for) on stdin, the
//! result or the error object on stdout.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command as Process, Output, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use serde_json::{json, Value};

use super::{Attachment, Cni, CniError, NetworkList, Result};

#[derive(Debug, Clone, Copy)]
pub(super) enum Command {
    Add,
    Del,
    Check,
}

impl Command {
    fn name(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
        }
    }
}

fn find(cni: &Cni, plugin: &str) -> Result<PathBuf> {
    cni.bin_dirs
        .iter()
        .map(|d| d.join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| CniError::PluginMissing {
            plugin: plugin.to_string(),
            dirs: joined(&cni.bin_dirs),
        })
}

fn joined(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// The plugin's stdin: its own object with the list's name and version, the previous
/// result, and the runtime config of the capabilities it declares.
fn stdin_config(net: &NetworkList, plugin: &Value, a: &Attachment, prev: Option<&Value>) -> Value {
    let mut conf = plugin.clone();
    conf["name"] = json!(net.name);
    conf["cniVersion"] = json!(net.cni_version);
    if let Some(prev) = prev.filter(|p| !p.is_null()) {
        conf["prevResult"] = prev.clone();
    }
    if plugin["capabilities"]["portMappings"] == json!(true) && !a.port_mappings.is_empty() {
        conf["runtimeConfig"]["portMappings"] = json!(a.port_mappings);
    }
    conf
}

pub(super) fn run(
    cni: &Cni,
    net: &NetworkList,
    plugin: &Value,
    command: Command,
    a: &Attachment,
    prev: Option<&Value>,
) -> Result<Value> {
    let kind = plugin["type"].as_str().unwrap_or_default().to_string();
    let binary = find(cni, &kind)?;
    let args: Vec<String> = std::iter::once("IgnoreUnknown=1".to_string())
        .chain(a.args.iter().map(|(k, v)| format!("{k}={v}")))
        .collect();
    let input = stdin_config(net, plugin, a, prev).to_string();
    let spawn_error = |source| CniError::Spawn {
        plugin: kind.clone(),
        source,
    };
    let mut child = Process::new(&binary)
        .env("CNI_COMMAND", command.name())
        .env("CNI_CONTAINERID", &a.container_id)
        .env("CNI_NETNS", &a.netns)
        .env("CNI_IFNAME", &a.ifname)
        .env("CNI_ARGS", args.join(";"))
        .env("CNI_PATH", joined(&cni.bin_dirs))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, so a timeout kills what it started too (iptables, ...).
        .process_group(0)
        .spawn()
        .map_err(spawn_error)?;
    // From a thread: a plugin that does not read its input must not block us past the
    // deadline (its end closes the pipe, and the write fails).
    if let Some(mut stdin) = child.stdin.take() {
        std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
    }
    let out = match output_within(&mut child, cni.timeout).map_err(spawn_error)? {
        Some(out) => out,
        None => {
            return Err(CniError::Timeout {
                plugin: kind,
                command: command.name(),
                timeout: cni.timeout,
            })
        }
    };
    let failed = |message: String| CniError::Plugin {
        plugin: kind.clone(),
        command: command.name(),
        message,
    };
    if !out.status.success() {
        return Err(failed(error_message(&out.stdout, &out.stderr)));
    }
    match command {
        Command::Add => serde_json::from_slice(&out.stdout)
            .map_err(|e| failed(format!("its result is not JSON: {e}"))),
        Command::Del | Command::Check => Ok(Value::Null),
    }
}

/// The plugin's output once it has ended, or None when `timeout` passed first: then it is
/// killed (its process group, by its pid) and reaped. Its exit is known from a pidfd, not
/// from its pipes' end, which whatever it left running may hold open.
fn output_within(child: &mut Child, timeout: Duration) -> std::io::Result<Option<Output>> {
    let deadline = Instant::now() + timeout;
    let exited = pidfd(child.id());
    let mut pipes = [
        child
            .stdout
            .take()
            .map(|p| nonblocking(p.into()))
            .transpose()?,
        child
            .stderr
            .take()
            .map(|p| nonblocking(p.into()))
            .transpose()?,
    ];
    let mut outputs = [Vec::new(), Vec::new()];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            kill_group(child);
            return Ok(None);
        }
        let ended = {
            let mut fds: Vec<PollFd> = exited
                .iter()
                .map(AsFd::as_fd)
                .chain(pipes.iter().flatten().map(AsFd::as_fd))
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
                .collect();
            let wait = PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, wait) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            // Without a pidfd (kernels before 5.3), the pipes' end says it.
            match exited {
                Some(_) => fds[0].revents().is_some_and(|r| !r.is_empty()),
                None => false,
            }
        };
        for (pipe, out) in pipes.iter_mut().zip(outputs.iter_mut()) {
            read_available(pipe, out)?;
        }
        if ended || (exited.is_none() && pipes.iter().all(Option::is_none)) {
            let status = child.wait()?;
            let [stdout, stderr] = outputs;
            return Ok(Some(Output {
                status,
                stdout,
                stderr,
            }));
        }
    }
}

fn pidfd(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the descriptor was just made, and is ours alone.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn nonblocking(fd: OwnedFd) -> std::io::Result<File> {
    let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL)?);
    fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(File::from(fd))
}

/// Read what the pipe holds now; at its end, forget it.
fn read_available(pipe: &mut Option<File>, out: &mut Vec<u8>) -> std::io::Result<()> {
    let Some(file) = pipe else {
        return Ok(());
    };
    let mut buf = [0u8; 16 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => {
                *pipe = None;
                return Ok(());
            }
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// SIGKILL the plugin's process group (its pid: it leads the group it was started in,
/// and is not reaped yet, so the pid is still its own) and reap it.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.wait();
}

/// The CNI error object's message (and details), else what the plugin wrote.
fn error_message(stdout: &[u8], stderr: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(stdout) {
        if let Some(msg) = v["msg"].as_str() {
            return match v["details"].as_str().filter(|d| !d.is_empty()) {
                Some(d) => format!("{msg}: {d}"),
                None => msg.to_string(),
            };
        }
    }
    let text = String::from_utf8_lossy(if stdout.is_empty() { stderr } else { stdout });
    text.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment() -> Attachment {
        Attachment {
            container_id: "abc".into(),
            netns: "/run/x".into(),
            ifname: "eth0".into(),
            args: vec![],
            port_mappings: vec![super::super::PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: "tcp".into(),
                host_ip: String::new(),
            }],
        }
    }

    #[test]
    fn runtime_config_only_for_declared_capabilities() {
        let net = NetworkList {
            name: "pods".into(),
            cni_version: "1.0.0".into(),
            disable_check: false,
            plugins: vec![],
        };
        let portmap = json!({"type": "portmap", "capabilities": {"portMappings": true}});
        let conf = stdin_config(&net, &portmap, &attachment(), Some(&json!({"ips": []})));
        assert_eq!(conf["name"], "pods");
        assert_eq!(conf["cniVersion"], "1.0.0");
        assert_eq!(conf["prevResult"], json!({"ips": []}));
        assert_eq!(
            conf["runtimeConfig"]["portMappings"],
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}])
        );
        let bridge = json!({"type": "bridge"});
        let conf = stdin_config(&net, &bridge, &attachment(), None);
        assert!(conf.get("runtimeConfig").is_none());
        assert!(conf.get("prevResult").is_none());
    }

    #[test]
    fn plugin_errors_give_their_message() {
        assert_eq!(
            error_message(br#"{"code": 7, "msg": "bad", "details": "why"}"#, b""),
            "bad: why"
        );
        assert_eq!(error_message(b"", b"crashed\n"), "crashed");
    }

    /// Whether `pid` ends within 5 s (gone, or a zombie nobody reaps): a SIGKILL to a
    /// process group returns before its members have died.
    fn ended(pid: &str) -> bool {
        let gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            })
        };
        (0..500).any(|_| {
            gone() || {
                std::thread::sleep(Duration::from_millis(10));
                false
            }
        })
    }

    /// One test for both plugins: a script written while another test thread forks can
    /// fail to execute (ETXTBSY).
    #[test]
    fn plugin_runs_end_at_the_plugins_exit_or_the_deadline() {
        let dir = tempfile::tempdir().expect("tmp");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        let d = dir.path().display();
        let scripts = [
            // Hangs, and with it a process it started.
            ("hang", format!("#!/bin/sh\necho $$ > {d}/hang.pid\nsleep 1000 &\necho $! > {d}/hang.child\nwait\n")),
            // Answers, leaving a process behind that holds its output open.
            ("leave", format!("#!/bin/sh\nsleep 1000 &\necho $! > {d}/leave.child\necho '{{\"ips\": []}}'\n")),
        ];
        for (name, script) in &scripts {
            let path = bin.join(name);
            std::fs::write(&path, script).expect("script");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .expect("chmod");
        }
        let cni = Cni::new(dir.path(), &[bin]).with_timeout(Duration::from_millis(500));
        let net = NetworkList {
            name: "pods".into(),
            cni_version: "1.0.0".into(),
            disable_check: false,
            plugins: vec![],
        };
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();

        let err = run(
            &cni,
            &net,
            &json!({"type": "hang"}),
            Command::Check,
            &attachment(),
            None,
        )
        .expect_err("a hung plugin fails");
        assert!(
            matches!(
                err,
                CniError::Timeout {
                    command: "CHECK",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("did not finish CHECK"), "{err}");
        let (plugin, child) = (read("hang.pid"), read("hang.child"));
        assert!(!plugin.trim().is_empty() && !child.trim().is_empty());
        assert!(ended(plugin.trim()), "the plugin {plugin} still runs");
        assert!(ended(child.trim()), "the plugin's child {child} still runs");

        let result = run(
            &cni,
            &net,
            &json!({"type": "leave"}),
            Command::Add,
            &attachment(),
            None,
        )
        .expect("its result, though its pipe stays open");
        assert_eq!(result, json!({"ips": []}));
        let left = read("leave.child");
        if let Ok(pid) = left.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    #[test]
    fn a_missing_plugin_names_the_dirs() {
        let cni = Cni::new("/nonexistent".as_ref(), &["/nonexistent/bin".into()]);
        let err = find(&cni, "bridge").expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/bin"), "{err}");
    }
}
