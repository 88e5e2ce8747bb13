//! The builder's errors.

/// What can go wrong in a build, with where in the Dockerfile when there is a line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A syntax or instruction error at a line of the Dockerfile.
    #[error("{file}:{line}: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    /// A bad `.dockerignore` pattern.
    #[error(".dockerignore:{line}: {message}")]
    Ignore { line: usize, message: String },
    /// A step that failed while it ran (the message is what the user sees).
    #[error("{0}")]
    Step(String),
    /// A RUN whose command exited non-zero (the legacy builder's message and code).
    #[error("The command '{command}' returned a non-zero code: {code}")]
    Command { command: String, code: i32 },
    /// Bad input outside the Dockerfile (the context, the request).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] berth_image::Error),
}

impl Error {
    pub fn io(
        what: &'static str,
        path: impl AsRef<std::path::Path>,
        source: std::io::Error,
    ) -> Error {
        Error::Io {
            what,
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
