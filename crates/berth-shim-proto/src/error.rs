//! Errors of the protocol layer: transport, framing, and errors the shim
//! reported for a request.

use std::path::PathBuf;

use berth_errdefs::{ErrorKind, HasKind};

use crate::messages::ErrorCode;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to shim socket {path}: {source} (is the shim still running?)")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("shim connection failed while {op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the shim closed the connection while {op} (the shim may have exited)")]
    Closed { op: &'static str },
    #[error(
        "frame of {len} bytes exceeds the limit of {max} bytes; the peer is broken or hostile"
    )]
    FrameTooLarge { len: u64, max: u32 },
    #[error("malformed {what} frame: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("shim speaks protocol version {shim}, this client speaks {client}; restart the shim's container with a matching berth")]
    VersionMismatch { shim: u32, client: u32 },
    #[error("unexpected response to {request}: {got}")]
    Unexpected { request: &'static str, got: String },
    #[error("shim: {message}")]
    Shim { code: ErrorCode, message: String },
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Connect { .. } | Error::Io { .. } | Error::Closed { .. } => {
                ErrorKind::Unavailable
            }
            Error::FrameTooLarge { .. }
            | Error::Decode { .. }
            | Error::Encode { .. }
            | Error::Unexpected { .. } => ErrorKind::Internal,
            Error::VersionMismatch { .. } => ErrorKind::FailedPrecondition,
            Error::Shim { code, .. } => code.kind(),
        }
    }
}
