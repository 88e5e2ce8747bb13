use std::path::PathBuf;

/// Errors of the cgroups crate; each names the file or field concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("linux.resources.{field}: {why}")]
    Invalid { field: String, why: String },
    #[error("linux.resources.{field} is not supported {why}")]
    Unsupported { field: String, why: String },
    #[error("cgroupsPath {0:?} is invalid: it must not contain \"..\"")]
    InvalidPath(String),
    #[error("no cgroup hierarchy is mounted under /sys/fs/cgroup")]
    NoHierarchy,
    #[error("{0}")]
    SubCgroup(String),
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
}
