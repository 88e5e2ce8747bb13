//! One probe, as moby's cmdProbe: the health check's command exec'd in the container through
//! its shim (the container's process, user, working directory and environment, no
//! terminal, no input), its output (stdout and stderr together) kept up to 4096 bytes, and
//! the process killed once it outlasts the check's timeout.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_shim_protocol::{Request, EXIT};
use serde_json::Value;

use super::{go_duration, HealthConfig, HealthRules, MAX_OUTPUT};
use crate::containers::Containers;

/// How a probe ended.
pub(super) enum Outcome {
    /// The command ran and exited with this code (-1 for a timeout), writing this.
    Ended { exit_code: i64, output: String },
    /// It could not be run, or its end is unknown (moby's probe errors).
    Failed(String),
    /// The monitor stopped meanwhile (the container stopped or was paused).
    Cancelled,
}

/// moby's wait for an exec to start, apart from the check's own timeout.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a waiting probe looks whether its monitor was stopped.
const CANCEL_CHECK: Duration = Duration::from_millis(250);
/// How long a killed probe's end is waited for (moby waits for it, so that dying probes do
/// not pile up; bounded here as a frozen container may hold it).
const KILLED_WAIT: Duration = Duration::from_secs(10);

/// moby's limitedBuffer: the first 4096 bytes, "..." after them when more were written.
#[derive(Default)]
struct Output {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Output {
    fn write(&mut self, data: &[u8]) {
        let keep = MAX_OUTPUT.saturating_sub(self.bytes.len()).min(data.len());
        self.bytes.extend_from_slice(&data[..keep]);
        self.truncated |= keep < data.len();
    }

    fn text(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.truncated {
            out.push_str("...");
        }
        out
    }
}

/// Run the check of container `id` once.
pub(super) fn run(
    containers: &Containers,
    id: &str,
    config: &HealthConfig,
    cancel: &AtomicBool,
) -> Outcome {
    let Some(shell) = config.probe() else {
        return Outcome::Cancelled;
    };
    let mut cmd: Vec<String> = config.test.iter().skip(1).cloned().collect();
    if cmd.is_empty() {
        return Outcome::Failed(format!("healthcheck for container {id} has no command"));
    }
    if shell {
        cmd.splice(0..0, ["/bin/sh".to_string(), "-c".to_string()]);
    }
    let bundle = containers.bundle(id);
    let process = match process(&bundle, &cmd) {
        Ok(p) => p,
        Err(msg) => return Outcome::Failed(msg),
    };
    let exec_id = match crate::containers::random_id() {
        Ok(e) => e,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let command = cmd.join(" ");
    let exec_attr = [("execID", exec_id.clone())];
    containers.event(id, &format!("exec_create: {command}"), &exec_attr);
    let request = Request::Exec {
        id: exec_id.clone(),
        process,
        stdin: false,
    };
    let (reader, pid) =
        match berth_shim_protocol::request_within(&bundle, &request, Some(START_TIMEOUT)) {
            Ok((reader, Ok(pid))) => (reader, pid),
            Ok((_, Err(msg))) => return Outcome::Failed(msg),
            Err(e) if is_timeout(&e) => {
                return Outcome::Failed(format!(
                    "timed out starting health check for container {id}"
                ))
            }
            Err(e) => {
                return Outcome::Failed(format!("the container's shim is not reachable: {e}"))
            }
        };
    containers.event(id, &format!("exec_start: {command}"), &exec_attr);
    // The probe's own handle, to kill it at its timeout: its pid cannot be reused before
    // the shim has reaped it, and the shim reports the exit (which ends the wait) then.
    let pidfd = pid.parse().ok().and_then(|pid| {
        rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid)?,
            rustix::process::PidfdFlags::empty(),
        )
        .ok()
    });
    let leftover = reader.buffer().to_vec();
    let mut frames = Frames {
        stream: reader.into_inner(),
        pending: leftover,
        output: Output::default(),
    };
    let timeout = config.timeout();
    match frames.exit_code(Instant::now() + timeout, cancel) {
        Wait::Exited(code) => {
            exec_died(containers, id, &exec_id, code);
            Outcome::Ended {
                exit_code: i64::from(code),
                output: frames.output.text(),
            }
        }
        Wait::Cancelled => {
            kill(pidfd.as_ref());
            Outcome::Cancelled
        }
        Wait::Gone => Outcome::Failed(format!("healthcheck for container {id} has no exit code")),
        Wait::TimedOut => {
            tracing::debug!("Health check for container {id} taking too long");
            kill(pidfd.as_ref());
            // Its end is waited for, and what it wrote until then is part of the message.
            if let Wait::Exited(code) = frames.exit_code(Instant::now() + KILLED_WAIT, cancel) {
                exec_died(containers, id, &exec_id, code);
            }
            let out = frames.output.text();
            let limit = go_duration(i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX));
            let output = if out.is_empty() {
                format!("Health check exceeded timeout ({limit})")
            } else {
                format!("Health check exceeded timeout ({limit}): {out}")
            };
            Outcome::Ended {
                exit_code: -1,
                output,
            }
        }
    }
}

fn exec_died(containers: &Containers, id: &str, exec_id: &str, code: i32) {
    containers.event(
        id,
        "exec_die",
        &[
            ("execID", exec_id.to_string()),
            ("exitCode", code.to_string()),
        ],
    );
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn kill(pidfd: Option<&OwnedFd>) {
    if let Some(fd) = pidfd {
        // It may have ended meanwhile: nothing to do then.
        let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL);
    }
}

/// The probe's process: the container's own (its user, working directory, environment,
/// capabilities) running `cmd`, without a terminal.
fn process(bundle: &Path, cmd: &[String]) -> Result<Value, String> {
    let config: Value = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| "the container is not running".to_string())?;
    let mut process = config["process"].clone();
    let Some(p) = process.as_object_mut() else {
        return Err("the container's config has no process".into());
    };
    p.insert("args".into(), Value::from(cmd.to_vec()));
    p.insert("terminal".into(), Value::Bool(false));
    p.remove("consoleSize");
    Ok(process)
}

enum Wait {
    Exited(i32),
    TimedOut,
    Cancelled,
    /// The stream ended without an exit (the shim went away).
    Gone,
}

/// The probe's stream from the shim: output frames, then its exit frame.
struct Frames {
    stream: UnixStream,
    /// Bytes read but not yet a whole frame.
    pending: Vec<u8>,
    output: Output,
}

impl Frames {
    /// Take the whole frames in `pending`: the exit code if the exit frame is among them.
    fn take_frames(&mut self) -> Option<i32> {
        let mut used = 0;
        let mut exit = None;
        while let Some(header) = self.pending.get(used..used + 8) {
            let header: [u8; 8] = header.try_into().unwrap_or_default();
            let (kind, len) = berth_shim_protocol::parse_header(&header);
            let Some(payload) = self.pending.get(used + 8..used + 8 + len) else {
                break;
            };
            if kind == EXIT {
                exit = Some(
                    payload
                        .get(..4)
                        .and_then(|b| b.try_into().ok())
                        .map_or(255, i32::from_be_bytes),
                );
            } else {
                self.output.write(payload);
            }
            used += 8 + len;
            if exit.is_some() {
                break;
            }
        }
        self.pending.drain(..used);
        exit
    }

    /// Read until the exit frame, the deadline, the end of the stream or a cancel.
    fn exit_code(&mut self, deadline: Instant, cancel: &AtomicBool) -> Wait {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(code) = self.take_frames() {
                return Wait::Exited(code);
            }
            if cancel.load(Ordering::Relaxed) {
                return Wait::Cancelled;
            }
            let now = Instant::now();
            if now >= deadline {
                return Wait::TimedOut;
            }
            let slice = (deadline - now).min(CANCEL_CHECK);
            if self.stream.set_read_timeout(Some(slice)).is_err() {
                return Wait::Gone;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Wait::Gone,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if is_timeout(&e) || e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Wait::Gone,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_capped_as_mobys_limited_buffer() {
        let mut out = Output::default();
        out.write(b"hello ");
        out.write(&[b'x'; MAX_OUTPUT]);
        let text = out.text();
        assert_eq!(text.len(), MAX_OUTPUT + 3);
        assert!(text.starts_with("hello xx") && text.ends_with("x..."));
        let mut exact = Output::default();
        exact.write(&[b'y'; MAX_OUTPUT]);
        assert!(!exact.text().ends_with("..."));
    }

    #[test]
    fn frames_split_across_reads_are_joined() {
        let (a, mut b) = UnixStream::pair().expect("pair");
        let mut bytes = berth_shim_protocol::frame(1, b"out");
        bytes.extend(berth_shim_protocol::frame(2, b"err"));
        bytes.extend(berth_shim_protocol::frame(EXIT, &3i32.to_be_bytes()));
        let mut frames = Frames {
            stream: a,
            pending: bytes[..5].to_vec(),
            output: Output::default(),
        };
        std::io::Write::write_all(&mut b, &bytes[5..]).expect("write");
        let cancel = AtomicBool::new(false);
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(matches!(
            frames.exit_code(deadline, &cancel),
            Wait::Exited(3)
        ));
        assert_eq!(frames.output.text(), "outerr");
        // A stream that ends without an exit, and one that says nothing in time.
        drop(b);
        assert!(matches!(frames.exit_code(deadline, &cancel), Wait::Gone));
        let (a, _b) = UnixStream::pair().expect("pair");
        let mut quiet = Frames {
            stream: a,
            pending: Vec::new(),
            output: Output::default(),
        };
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(matches!(quiet.exit_code(soon, &cancel), Wait::TimedOut));
        cancel.store(true, Ordering::Relaxed);
        assert!(matches!(
            quiet.exit_code(deadline, &cancel),
            Wait::Cancelled
        ));
    }
}
