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
    /// The process's program does not exist (`kind` NotFound, docker's
    /// 127) or cannot be executed (PermissionDenied, docker's 126).
    #[error("{message}")]
    CannotStart { kind: ErrorKind, message: String },
    /// An error a helper process reported (see `helper`), with its code.
    #[error("{message}")]
    Remote { code: ErrorCode, message: String },
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
            Error::Remote { code, .. } => *code,
            e => e.kind().into(),
        }
    }

    /// Reads a failure to start `program` as dockerd does (moby's
    /// `translateContainerdStartErr`), so the daemon need not: a message
    /// that names the program and says it was not found means exit code
    /// 127 (NotFound); one that says permission denied means 126
    /// (PermissionDenied; crun's "open executable: Permission denied"
    /// does not name the program). The embedded runtime, runc and crun
    /// all word these failures so.
    pub fn start_failure(self, program: &str) -> Error {
        let message = self.to_string();
        let lower = message.to_ascii_lowercase();
        let named = !program.is_empty() && lower.contains(&program.to_ascii_lowercase());
        let kind = if named
            && (lower.contains("executable file not found")
                || lower.contains("not found in $path")
                || lower.contains("no such file or directory"))
        {
            ErrorKind::NotFound
        } else if lower.contains("permission denied") {
            ErrorKind::PermissionDenied
        } else {
            return self;
        };
        Error::CannotStart { kind, message }
    }

    /// The launcher's exit code for a shim that could not start its
    /// container: docker's 127 and 126 for a program that is missing or
    /// not executable, else 1.
    pub fn launch_exit_code(&self) -> i32 {
        match self {
            Error::CannotStart {
                kind: ErrorKind::NotFound,
                ..
            } => 127,
            Error::CannotStart {
                kind: ErrorKind::PermissionDenied,
                ..
            } => 126,
            _ => 1,
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
            Error::CannotStart { kind, .. } => *kind,
            Error::Remote { code, .. } => code.kind(),
        }
    }
}
