//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

use berth_errdefs::{ErrorKind, HasKind};
use libseccomp::error::SeccompError;

/// What went wrong while compiling, caching, loading or handing over a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile says something berth cannot turn into a filter.
    #[error("invalid seccomp profile: {field} = {value}: {reason}")]
    Invalid {
        /// JSON path of the offending field, e.g. `linux.seccomp.syscalls[3].args[0].index`.
        field: String,
        /// The value found there.
        value: String,
        /// Why it is refused and what would be accepted.
        reason: String,
    },

    /// The profile asks for a filter flag this kernel does not have.
    #[error(
        "seccomp filter flag {flag} is not supported by the running kernel {kernel}; \
         remove it from linux.seccomp.flags or use a newer kernel"
    )]
    FlagUnsupported { flag: &'static str, kernel: String },

    /// libseccomp refused one rule (typically two rules that conflict).
    #[error(
        "libseccomp rejected linux.seccomp.syscalls[{index}] for syscall {syscall}: {source}; \
         check this rule against other rules for the same syscall"
    )]
    Rule {
        index: usize,
        syscall: String,
        #[source]
        source: SeccompError,
    },

    /// libseccomp failed outside of one rule (setup, architectures, export).
    #[error("libseccomp failed to {what}: {source}")]
    Libseccomp {
        what: String,
        #[source]
        source: SeccompError,
    },

    /// Writing or reading the exported BPF program failed.
    #[error("exporting the compiled seccomp program failed while {what}: {source}")]
    Export {
        what: &'static str,
        #[source]
        source: io::Error,
    },

    /// The program is larger than the kernel accepts (BPF_MAXINSNS).
    #[error(
        "the compiled seccomp program has {instructions} instructions, more than the kernel's \
         limit of {limit}; shorten the profile or merge rules"
    )]
    TooLarge { instructions: usize, limit: usize },

    /// The cache directory could not be created, read or written.
    #[error("seccomp cache {path}: {op} failed: {source}; check that the directory is writable by berth")]
    Cache {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },

    /// seccomp(2) refused the filter in the child.
    #[error(
        "loading the seccomp filter failed: {source} (without CAP_SYS_ADMIN the process must \
         set no_new_privs first)"
    )]
    Load {
        #[source]
        source: io::Error,
    },

    /// Sending the notification listener to the seccomp agent failed.
    #[error("seccomp listener {path}: {op} failed: {source}; is the seccomp agent listening on this socket?")]
    Listener {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },

    /// The container state handed to [`crate::send_listener`] is unusable.
    #[error("container state for the seccomp agent at {path}: {reason}")]
    State { path: PathBuf, reason: String },
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid { .. }
            | Error::Rule { .. }
            | Error::TooLarge { .. }
            | Error::State { .. } => ErrorKind::InvalidArgument,
            Error::FlagUnsupported { .. } => ErrorKind::FailedPrecondition,
            Error::Load { source } => match source.raw_os_error() {
                Some(code) if code == rustix::io::Errno::ACCESS.raw_os_error() => {
                    ErrorKind::PermissionDenied
                }
                Some(code) if code == rustix::io::Errno::PERM.raw_os_error() => {
                    ErrorKind::PermissionDenied
                }
                _ => ErrorKind::Internal,
            },
            Error::Listener { .. } => ErrorKind::Unavailable,
            Error::Libseccomp { .. } | Error::Export { .. } | Error::Cache { .. } => {
                ErrorKind::Internal
            }
        }
    }
}

impl Error {
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
