#![forbid(unsafe_code)]
//! Error kinds shared by all berth crates.
//!
//! Every library error type implements [`HasKind`], so that the layers above
//! (the API server, the CLI, the runtime binary) can decide what to do with a
//! failure without matching on another crate's enums. The one mapping from a
//! kind to an HTTP status lives here, so the daemon and any test agree on it.

use std::fmt;

/// What kind of failure an error is, independent of which crate raised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The named object (container, image, blob, ...) does not exist.
    NotFound,
    /// The caller passed something malformed or out of range.
    InvalidArgument,
    /// The request conflicts with the current state (duplicate name, running container, ...).
    Conflict,
    /// The operation is valid but berth does not implement it yet.
    NotImplemented,
    /// The caller is not allowed to do this.
    PermissionDenied,
    /// The operation is not possible in the object's current state.
    FailedPrecondition,
    /// Data on disk or from a peer failed verification.
    DataLoss,
    /// A peer (registry, runtime binary) failed or could not be reached.
    Unavailable,
    /// Everything else: a bug or an unexpected system failure.
    Internal,
}

impl ErrorKind {
    /// The HTTP status code the Docker Engine API uses for this kind of error.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::InvalidArgument => 400,
            ErrorKind::Conflict | ErrorKind::FailedPrecondition => 409,
            ErrorKind::NotImplemented => 501,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::Unavailable => 503,
            ErrorKind::DataLoss | ErrorKind::Internal => 500,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::Conflict => "conflict",
            ErrorKind::NotImplemented => "not implemented",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::FailedPrecondition => "failed precondition",
            ErrorKind::DataLoss => "data loss",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        };
        f.write_str(name)
    }
}

/// Implemented by every library error so callers can classify it.
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_docker() {
        assert_eq!(ErrorKind::NotFound.http_status(), 404);
        assert_eq!(ErrorKind::InvalidArgument.http_status(), 400);
        assert_eq!(ErrorKind::Conflict.http_status(), 409);
        assert_eq!(ErrorKind::NotImplemented.http_status(), 501);
        assert_eq!(ErrorKind::Internal.http_status(), 500);
    }
}
