//! The CRI's errors and the gRPC status codes they become (kubelet retries on some codes
//! and treats NotFound on removals as done).

use berth_engine::error_kind::Kind;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error(transparent)]
    Engine(#[from] berth_engine::Error),
    #[error(transparent)]
    Registry(#[from] berth_registry::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Network(String),
    #[error("{0}")]
    DeadlineExceeded(String),
}

impl From<berth_image::Error> for CriError {
    fn from(e: berth_image::Error) -> CriError {
        CriError::Engine(berth_engine::Error::Image(e))
    }
}

pub type Result<T, E = CriError> = std::result::Result<T, E>;

impl From<CriError> for Status {
    fn from(e: CriError) -> Status {
        let code = match &e {
            CriError::Engine(e) => match e.kind() {
                Kind::NotFound => Code::NotFound,
                Kind::InvalidArgument => Code::InvalidArgument,
                Kind::Conflict => Code::FailedPrecondition,
                Kind::Forbidden => Code::PermissionDenied,
                Kind::Internal => Code::Internal,
            },
            CriError::Registry(_) => Code::Unknown,
            CriError::Io { .. } | CriError::Network(_) => Code::Internal,
            CriError::InvalidArgument(_) => Code::InvalidArgument,
            CriError::NotFound(_) => Code::NotFound,
            CriError::FailedPrecondition(_) => Code::FailedPrecondition,
            CriError::DeadlineExceeded(_) => Code::DeadlineExceeded,
        };
        Status::new(code, e.to_string())
    }
}
