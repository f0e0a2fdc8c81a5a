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

/// `message` with each OS error Rust formats (`No such file or directory
/// (os error 2)`) written as Go writes it (`no such file or directory`).
/// Docker's clients read its error texts: the docker CLI picks `run`'s exit
/// code 127 for "no such file or directory" and 126 for "permission
/// denied", case and all.
pub fn go_os_errors(message: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        let Some(close) = rest[at + MARK.len()..].find(')') else {
            break;
        };
        let digits = &rest[at + MARK.len()..at + MARK.len() + close];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&rest[..at + MARK.len()]);
            rest = &rest[at + MARK.len()..];
            continue;
        }
        // The error's text starts after the last ": " before it.
        let text_start = rest[..at].rfind(": ").map_or(0, |i| i + 2);
        out.push_str(&rest[..text_start]);
        let mut text = rest[text_start..at].chars();
        if let Some(first) = text.next() {
            out.extend(first.to_lowercase());
            out.push_str(text.as_str());
        }
        rest = &rest[at + MARK.len() + close + 1..];
    }
    out.push_str(rest);
    out
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

    #[test]
    fn os_errors_read_as_go_writes_them() {
        assert_eq!(
            go_os_errors("device \"/dev/x\": No such file or directory (os error 2)"),
            "device \"/dev/x\": no such file or directory"
        );
        assert_eq!(
            go_os_errors("Permission denied (os error 13); and: Is a directory (os error 21)"),
            "permission denied; and: is a directory"
        );
        assert_eq!(go_os_errors("nothing to change"), "nothing to change");
        assert_eq!(
            go_os_errors("odd (os error x) stays"),
            "odd (os error x) stays"
        );
    }
}
