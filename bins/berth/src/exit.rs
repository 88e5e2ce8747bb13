//! How a command ends when it is not plain success or failure: a container's own exit code
//! (printed by nobody), docker's 125/126/127 for a `run` that could not get that far, or
//! death by SIGPIPE when standard output is closed (`berth logs -f | head`), as docker.

use std::fmt;

use berth_api::client::ClientError;

#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    /// What to print, if anything.
    pub error: Option<anyhow::Error>,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            Some(e) => write!(f, "{e:#}"),
            None => write!(f, "exit status {}", self.code),
        }
    }
}

impl std::error::Error for Exit {}

/// End silently with a container's exit code (0-255 as the shell sees it).
pub fn with_code(code: i64) -> anyhow::Error {
    Exit {
        code: (code & 0xff) as u8,
        error: None,
    }
    .into()
}

/// End with `error` printed and `code` (docker: 125 daemon error, 126 cannot invoke, 127
/// not found).
pub fn failed(code: u8, error: impl Into<anyhow::Error>) -> anyhow::Error {
    Exit {
        code,
        error: Some(error.into()),
    }
    .into()
}

/// docker run's code for a start that failed: 127 for a missing command, 126 for one that
/// cannot run, else 125.
pub fn start_failure(error: impl Into<anyhow::Error>) -> anyhow::Error {
    let error = error.into();
    let text = error.to_string();
    let code = if text.contains("not found") || text.contains("no such file or directory") {
        127
    } else if text.contains("permission denied") {
        126
    } else {
        125
    };
    failed(code, error)
}

/// Whether `error` comes from writing to a standard output nobody reads any more: a
/// broken pipe in its chain, and standard output is a pipe without a reader (a broken pipe
/// of the daemon's socket is an error to report).
pub fn stdout_was_closed(error: &anyhow::Error) -> bool {
    let broken = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    let broken_pipe = error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(broken)
            || matches!(cause.downcast_ref::<ClientError>(), Some(ClientError::Io(e)) if broken(e))
    });
    broken_pipe && stdout_has_no_reader()
}

/// A pipe whose reader has gone polls as POLLERR for its writer.
fn stdout_has_no_reader() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one pollfd, valid for the call; a zero timeout never blocks.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    ready == 1 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// End as the docker CLI ends when its standard output closes: killed by SIGPIPE, without
/// a word (the shell sees 141). Rust ignores SIGPIPE, so its default comes back first.
pub fn by_sigpipe() -> std::process::ExitCode {
    // SAFETY: signal(2) with SIG_DFL installs no handler; raise(2) then ends the process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Not reached: the signal's default action ends the process.
    std::process::ExitCode::from(141)
}

/// `print!` panics when standard output has closed: end by SIGPIPE then too, quietly.
pub fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && stdout_has_no_reader() {
            by_sigpipe();
        }
        default(info);
    }));
}
