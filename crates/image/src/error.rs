use std::path::PathBuf;

/// Errors of the image store; each names the value or path it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid reference format: {reference:?}: {why}")]
    InvalidReference {
        reference: String,
        why: &'static str,
    },
    #[error("invalid digest {0:?}: expected sha256: and 64 lowercase hex digits")]
    InvalidDigest(String),
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    InvalidPlatform(String),
    #[error("No such image: {0}")]
    ImageNotFound(String),
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    #[error("unsafe layer entry {path:?}: {why}")]
    UnsafeEntry { path: String, why: &'static str },
    /// An entry the layer cannot have (a hard link to what it lacks, a name too long...).
    #[error("invalid layer entry {path:?}: {why}")]
    InvalidEntry { path: String, why: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata store: {0}")]
    Meta(String),
    /// Layers that cannot be mounted as one overlay.
    #[error("{0}")]
    Overlay(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn archive(msg: impl Into<String>) -> Self {
        Error::InvalidArchive(msg.into())
    }
}

macro_rules! meta_error {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Meta(e.to_string())
            }
        }
    )*};
}
meta_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
