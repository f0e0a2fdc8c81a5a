//! The shim's errors. Each maps to a protocol [`ErrorCode`] through its
//! kind, so the daemon can answer with the right HTTP status.

use std::path::PathBuf;

use berth_errdefs::{ErrorKind, HasKind};
use berth_shim_proto::ErrorCode;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}\n{usage}", usage = crate::config::USAGE)]
    Usage(String),
    #[error("{op} {path}: {source}")]
    Path {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("container {id}: {source}")]
    Container {
        id: String,
        #[source]
        source: berth_container::Error,
    },
    #[error("runtime {runtime} {command} failed: {message}")]
    Runtime {
        runtime: PathBuf,
        command: &'static str,
        message: String,
    },
    #[error("no exec {0:?} in this container")]
    NoExec(String),
    #[error("exec id {0:?} is invalid or already used; use [A-Za-z0-9_.-], at most 64 bytes, once per container")]
    BadExecId(String),
    #[error("{0}")]
    State(String),
    #[error("the first request on a connection must be hello")]
    NoHello,
    #[error("protocol version {client} is not this shim's {shim}")]
    Version { client: u32, shim: u32 },
}

impl Error {
    pub fn sys(op: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Sys { op, source }
    }

    pub fn path(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Path { op, path, source }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Version { .. } => ErrorCode::VersionMismatch,
            e => e.kind().into(),
        }
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Usage(_) | Error::BadExecId(_) | Error::NoHello => ErrorKind::InvalidArgument,
            Error::Path { .. } | Error::Sys { .. } => ErrorKind::Internal,
            Error::Container { source, .. } => source.kind(),
            Error::Runtime { .. } => ErrorKind::Unavailable,
            Error::NoExec(_) => ErrorKind::NotFound,
            Error::State(_) => ErrorKind::FailedPrecondition,
            Error::Version { .. } => ErrorKind::FailedPrecondition,
        }
    }
}
