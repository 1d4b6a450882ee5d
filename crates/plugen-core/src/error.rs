//! One error type for the whole library: every failure says what went wrong and,
//! where a file is involved, which file.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in plugen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed at the operating-system level.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file was read but its content is not what plugen expects.
    #[error("{}: {message}", path.display())]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A user-supplied argument or value is invalid.
    #[error("{0}")]
    Invalid(String),
    /// A tensor computation failed.
    #[error("compute error: {}", first_line(.0))]
    Compute(#[from] candle_core::Error),
    /// The user cancelled a long-running operation.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A content error in the file at `path`.
    pub fn format(path: &Path, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// An invalid argument or value.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }
}

/// The first line of an error's text (candle appends backtraces on later lines).
fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Result with plugen's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Attaches a file path to errors from tensor code that reads a file.
pub(crate) trait WithPath<T> {
    /// Turns any error into [`Error::Format`] naming `path`.
    fn with_path(self, path: &Path) -> Result<T>;
}

impl<T, E: std::fmt::Display> WithPath<T> for std::result::Result<T, E> {
    fn with_path(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::format(path, first_line(&e)))
    }
}
