//! The runtime's error type. Every message names the operation and the value it failed on.

use std::path::PathBuf;

/// Errors of the OCI runtime library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container id {0:?} is invalid: use letters, digits, '_', '+', '-' and '.' only")]
    InvalidId(String),
    #[error("container with id {0:?} already exists")]
    AlreadyExists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {id:?} is {status}: {action}")]
    WrongState {
        id: String,
        status: String,
        action: &'static str,
    },
    #[error("config.json: {0}")]
    InvalidConfig(String),
    #[error("{field} is not supported yet: {why}")]
    Unsupported { field: String, why: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: nix::Error,
    },
    #[error("hook {path}: {msg}")]
    Hook { path: PathBuf, msg: String },
    #[error("{0}")]
    Init(String),
    #[error("invalid signal {0:?}")]
    InvalidSignal(String),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(op: impl Into<String>, source: nix::Error) -> Self {
        Error::Sys {
            op: op.into(),
            source,
        }
    }

    pub(crate) fn config(msg: impl Into<String>) -> Self {
        Error::InvalidConfig(msg.into())
    }
}

/// Attach an operation name to a `nix` result.
pub(crate) trait SysContext<T> {
    fn ctx(self, op: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn ctx(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(op(), e))
    }
}
