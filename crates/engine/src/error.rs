/// Engine errors; `kind` says which HTTP status the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A request dockerd refuses with a 403 (an endpoint that exists already).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Io(String),
}

/// A request body refused by its decoder is a bad parameter (a 400).
impl From<berth_api_types::container::DecodeError> for Error {
    fn from(e: berth_api_types::container::DecodeError) -> Error {
        Error::InvalidArgument(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure, for status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NotFound,
    InvalidArgument,
    Conflict,
    Forbidden,
    Internal,
}

impl Error {
    pub fn kind(&self) -> Kind {
        use berth_image::Error as I;
        match self {
            Error::InvalidArgument(_) => Kind::InvalidArgument,
            Error::NotFound(_) => Kind::NotFound,
            Error::Conflict(_) => Kind::Conflict,
            Error::Forbidden(_) => Kind::Forbidden,
            Error::Io(_) => Kind::Internal,
            Error::Image(e) => match e {
                I::ImageNotFound(_) => Kind::NotFound,
                I::InvalidReference { .. }
                | I::InvalidDigest(_)
                | I::InvalidPlatform(_)
                | I::DigestMismatch { .. }
                | I::InvalidArchive(_)
                | I::UnsafeEntry { .. }
                | I::InvalidEntry { .. }
                | I::Overlay(_) => Kind::InvalidArgument,
                I::Conflict(_) => Kind::Conflict,
                I::Io { .. } | I::Meta(_) => Kind::Internal,
            },
        }
    }
}
