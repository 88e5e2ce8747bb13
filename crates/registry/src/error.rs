/// Errors of the registry client; each names the registry, repository or blob it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry could not be reached or the exchange broke off.
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    /// The registry answered with an error status.
    #[error("{what}: {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
    },
    /// Missing or refused credentials.
    #[error("{0}")]
    Unauthorized(String),
    #[error("{what}: {why}")]
    InvalidManifest { what: String, why: String },
    #[error("{what}: unsupported media type {media_type:?}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("{0}")]
    NotFound(String),
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Image(#[from] berth_image::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn http(url: &str, e: &reqwest::Error) -> Error {
        let message = if e.is_redirect() {
            "too many redirects or a redirect loop".to_string()
        } else {
            // reqwest's Display leaves out the cause (refused, TLS...): give the chain.
            let mut m = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                m.push_str(": ");
                m.push_str(&s.to_string());
                source = s.source();
            }
            m
        };
        Error::Http {
            url: url.to_string(),
            message,
        }
    }
}
