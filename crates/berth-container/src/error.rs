//! The one error type of berth-container.
//!
//! Messages are complete sentences for the runtime's one-line error output:
//! what failed, on what, and what to do where that is not obvious.

use std::path::PathBuf;

use berth_errdefs::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {id:?} does not exist")]
    NotFound { id: String },

    #[error("container with id {id:?} already exists")]
    AlreadyExists { id: String },

    #[error("invalid container id {id:?}: use letters, digits, '_', '+', '-' and '.' only")]
    InvalidId { id: String },

    #[error("{path}: {message}")]
    InvalidConfig { path: PathBuf, message: String },

    #[error("{field}: {message}")]
    Unsupported { field: String, message: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error("container {id:?} is {status}: {message}")]
    WrongState {
        id: String,
        status: String,
        message: String,
    },

    /// The io error is part of the message, not a `source`: callers print
    /// the chain (`{:#}`), which would say it twice.
    #[error("{context}: {cause}")]
    Io {
        context: String,
        cause: std::io::Error,
    },

    #[error("{0}")]
    Cgroup(String),

    #[error("seccomp: {0}")]
    Seccomp(String),

    #[error("container init failed: {0}")]
    Init(String),

    #[error("exec in container {id:?} failed: {message}")]
    Exec { id: String, message: String },

    #[error("error running {stage} hook #{index}: {path:?}: {message}")]
    Hook {
        stage: &'static str,
        /// The hook's position in its stage, from 0, as runc numbers them.
        index: usize,
        path: PathBuf,
        message: String,
    },
}

impl Error {
    /// Wraps an io::Error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            cause: source,
        }
    }

    pub fn unsupported(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Unsupported {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<rustix::io::Errno> for Error {
    fn from(e: rustix::io::Errno) -> Self {
        Error::io("system call failed", e.into())
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::Conflict,
            Error::InvalidId { .. } | Error::InvalidConfig { .. } | Error::InvalidArgument(_) => {
                ErrorKind::InvalidArgument
            }
            Error::Unsupported { .. } => ErrorKind::NotImplemented,
            Error::WrongState { .. } => ErrorKind::FailedPrecondition,
            Error::Io { .. }
            | Error::Cgroup(_)
            | Error::Seccomp(_)
            | Error::Init(_)
            | Error::Exec { .. }
            | Error::Hook { .. } => ErrorKind::Internal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to io results: `fs::read(p).ctx(|| format!("reading {p:?}"))?`.
pub trait IoContext<T> {
    fn ctx<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::io(context(), e.into()))
    }
}
