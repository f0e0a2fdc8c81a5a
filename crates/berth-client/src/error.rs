//! The client's one error type.

use berth_errdefs::{ErrorKind, HasKind};

/// What went wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No daemon answers on the host: the message says how to start one.
    #[error("Cannot connect to the daemon at {host}: {source}. Is berthd running? Start it with `berthd &` or `systemctl start berthd`, or point -H / BERTH_HOST / DOCKER_HOST at a running daemon")]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The host string is not one we can dial.
    #[error(
        "invalid daemon host {host:?}: {reason} (use unix:///path/to.sock or tcp://host:port)"
    )]
    InvalidHost { host: String, reason: &'static str },
    /// The daemon answered with an error status and (usually) a JSON message.
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    /// Reading or writing the connection failed mid-request.
    #[error("{what} {path} on {host}: {source}")]
    Io {
        what: &'static str,
        path: String,
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The daemon sent something that is not HTTP/1.1 as we know it.
    #[error("malformed response to {path} from {host}: {reason}")]
    Protocol {
        path: String,
        host: String,
        reason: String,
    },
    /// A JSON body did not decode.
    #[error("decoding the response to {path}: {source}")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// The HTTP status the daemon answered with, when this is a daemon error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Connect { .. } => ErrorKind::Unavailable,
            Error::InvalidHost { .. } => ErrorKind::InvalidArgument,
            Error::Daemon { status, .. } => match status {
                400 => ErrorKind::InvalidArgument,
                403 => ErrorKind::PermissionDenied,
                404 => ErrorKind::NotFound,
                409 => ErrorKind::Conflict,
                501 => ErrorKind::NotImplemented,
                503 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            Error::Io { .. } => ErrorKind::Unavailable,
            Error::Protocol { .. } | Error::Decode { .. } => ErrorKind::Internal,
        }
    }
}
