//! The crate's error type.
//!
//! Every variant carries what failed and on what (a path, a spec field, a
//! controller), so a message printed by the runtime is enough to act on.
//! Resource errors always start with the OCI field name, e.g.
//! `linux.resources.memory.limit: ...`, because that is what the user wrote.

use std::io;
use std::path::PathBuf;

use berth_errdefs::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A cgroup file or directory could not be read, written or created.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The kernel refused a value while applying resources.
    #[error("{field}: writing {value:?} to {path}: {source}{hint}")]
    Write {
        field: String,
        path: PathBuf,
        value: String,
        hint: String,
        #[source]
        source: io::Error,
    },

    /// Loading or attaching the cgroup v2 device eBPF program failed.
    #[error("{field}: {op} for {path}: {source}{}", if detail.is_empty() { String::new() } else { format!(" (verifier: {detail})") })]
    DeviceProgram {
        field: String,
        op: &'static str,
        path: PathBuf,
        detail: String,
        #[source]
        source: io::Error,
    },

    /// A resource value in the spec is malformed or out of range.
    #[error("{field}: {reason}")]
    InvalidResource { field: String, reason: String },

    /// A resource needs a controller or kernel file this host does not offer.
    #[error("{field}: {reason}")]
    ControllerUnavailable { field: String, reason: String },

    /// A resource berth cannot apply on this cgroup version (yet).
    #[error("{field}: {reason}")]
    Unsupported { field: String, reason: String },

    /// The container's `cgroupsPath` (or id) cannot be used.
    #[error("cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },

    /// `slice:prefix:name` paths need the systemd driver, which berth lacks.
    #[error("cgroupsPath {path:?}: systemd cgroups are not supported yet; use a plain path such as /berth/<id>")]
    Systemd { path: String },

    /// /proc/self/mountinfo or /proc/self/cgroup has a line we cannot read.
    #[error("parsing {file} line {line}: {reason}")]
    Parse {
        file: &'static str,
        line: usize,
        reason: String,
    },

    /// A cgroup file had content this crate does not understand.
    #[error("reading {path}: unexpected content {content:?}: {reason}")]
    BadContent {
        path: PathBuf,
        content: String,
        reason: String,
    },

    /// No cgroup v1 hierarchy or cgroup2 mount was found.
    #[error("no cgroup filesystem is mounted (looked in /proc/self/mountinfo); mount cgroup2 at /sys/fs/cgroup")]
    NoCgroups,

    /// An operation needs a controller that this layout does not have.
    #[error("{op}: the {controller} controller is not available on this host ({layout})")]
    MissingController {
        op: &'static str,
        controller: &'static str,
        layout: String,
    },

    /// The cgroup directory does not exist (create() was not called, or it was destroyed).
    #[error("cgroup {path} does not exist; create it first")]
    NotCreated { path: PathBuf },

    /// rmdir kept failing with EBUSY: processes are still inside.
    #[error("removing cgroup {path}: still busy after {attempts} attempts; kill the processes in it first")]
    Busy { path: PathBuf, attempts: u32 },

    /// The freezer did not reach the requested state in time.
    #[error("{op} cgroup {path}: state is still {state:?} after {waited_ms} ms")]
    FreezeTimeout {
        op: &'static str,
        path: PathBuf,
        state: String,
        waited_ms: u128,
    },

    /// add_process was given something that is not a process id.
    #[error("adding process {pid} to cgroup: not a valid pid")]
    InvalidPid { pid: i32 },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidResource {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unavailable(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::ControllerUnavailable {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Unsupported {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => ErrorKind::NotFound,
                io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::Internal,
            },
            Error::Write { source, .. } => match source.kind() {
                io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::InvalidArgument,
            },
            Error::DeviceProgram { source, .. } => match source.kind() {
                io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::Internal,
            },
            Error::InvalidResource { .. }
            | Error::InvalidPath { .. }
            | Error::InvalidPid { .. } => ErrorKind::InvalidArgument,
            Error::ControllerUnavailable { .. } | Error::MissingController { .. } => {
                ErrorKind::FailedPrecondition
            }
            Error::Unsupported { .. } | Error::Systemd { .. } => ErrorKind::NotImplemented,
            Error::NotCreated { .. } => ErrorKind::NotFound,
            Error::Busy { .. } | Error::FreezeTimeout { .. } => ErrorKind::Conflict,
            Error::Parse { .. } | Error::BadContent { .. } | Error::NoCgroups => {
                ErrorKind::Internal
            }
        }
    }
}
