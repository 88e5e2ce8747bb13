//! How a command ends when it is not plain success or failure: a container's own exit code
//! (printed by nobody), or docker's 125/126/127 for a `run` that could not get that far.

use std::fmt;

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
