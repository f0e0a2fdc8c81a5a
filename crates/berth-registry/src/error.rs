//! Errors of registry operations. Every message names the registry and the
//! repository (and the digest or tag where there is one) and says what to do.

use berth_errdefs::{ErrorKind, HasKind};
use berth_image::digest::Digest;

use crate::credentials::CredentialsError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("unauthorized: authentication required for {registry}/{repository}{detail}; log in with `berth login {registry}`")]
    Unauthorized {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error("login to {registry} failed: {message}; check the username and password")]
    LoginFailed { registry: String, message: String },
    #[error("denied: access to {registry}/{repository} is forbidden{detail}; check that your account may use this repository")]
    Denied {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error("{what} not found in {registry}/{repository}{detail}; check the name, tag and digest")]
    NotFound {
        registry: String,
        repository: String,
        what: String,
        detail: String,
    },
    #[error("{registry}/{repository}: content for {expected} has digest {actual}; refusing it (corrupt or tampered with in transit)")]
    DigestMismatch {
        registry: String,
        repository: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{registry}/{repository}@{digest}: expected {expected} bytes but got {actual}; refusing it (truncated or wrong descriptor)")]
    SizeMismatch {
        registry: String,
        repository: String,
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{what} from {registry}/{repository} is larger than the {limit}-byte limit; refusing it"
    )]
    TooLarge {
        registry: String,
        repository: String,
        what: String,
        limit: u64,
    },
    #[error("{registry}/{repository}: {what} has media type {media_type}, which berth does not support: {hint}")]
    Unsupported {
        registry: String,
        repository: String,
        what: String,
        media_type: String,
        hint: &'static str,
    },
    #[error("registry {registry} answered {method} for {registry}/{repository} with HTTP {status}{detail}")]
    Status {
        registry: String,
        repository: String,
        method: String,
        status: u16,
        detail: String,
    },
    #[error("cannot reach registry {registry}: {message}; check the address and the network (a registry without TLS must be listed as insecure)")]
    Unreachable { registry: String, message: String },
    #[error("invalid response from registry {registry} for {repository}: {reason}")]
    Protocol {
        registry: String,
        repository: String,
        reason: String,
    },
    #[error("token server {realm} for registry {registry} failed: {message}")]
    Token {
        registry: String,
        realm: String,
        message: String,
    },
    #[error("cannot store {digest} from {registry}/{repository}: {source}")]
    Sink {
        registry: String,
        repository: String,
        digest: String,
        source: std::io::Error,
    },
    #[error("cannot read {digest} to push to {registry}/{repository}: {source}")]
    Source {
        registry: String,
        repository: String,
        digest: String,
        source: std::io::Error,
    },
    #[error("invalid request for {registry}/{repository}: {reason}")]
    InvalidArgument {
        registry: String,
        repository: String,
        reason: String,
    },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
}

impl HasKind for RegistryError {
    fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::Unauthorized { .. }
            | RegistryError::LoginFailed { .. }
            | RegistryError::Denied { .. } => ErrorKind::PermissionDenied,
            RegistryError::NotFound { .. } => ErrorKind::NotFound,
            RegistryError::DigestMismatch { .. }
            | RegistryError::SizeMismatch { .. }
            | RegistryError::TooLarge { .. } => ErrorKind::DataLoss,
            RegistryError::Unsupported { .. } => ErrorKind::NotImplemented,
            RegistryError::Status { status, .. } if *status >= 500 => ErrorKind::Unavailable,
            RegistryError::Status { .. } | RegistryError::InvalidArgument { .. } => {
                ErrorKind::InvalidArgument
            }
            RegistryError::Unreachable { .. }
            | RegistryError::Protocol { .. }
            | RegistryError::Token { .. } => ErrorKind::Unavailable,
            RegistryError::Sink { .. } | RegistryError::Source { .. } => ErrorKind::Internal,
            RegistryError::Credentials(e) => e.kind(),
        }
    }
}

/// The `errors` array registries put in error bodies, rendered as one line.
pub(crate) fn describe_body(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) if !b.errors.is_empty() => {
            let parts: Vec<String> = b
                .errors
                .iter()
                .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                    (false, false) => format!("{}: {}", e.code, e.message),
                    (false, true) => e.code.clone(),
                    _ => e.message.clone(),
                })
                .collect();
            format!(" ({})", parts.join("; "))
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                String::new()
            } else {
                // Bound what reaches the user; some servers send whole HTML pages.
                let short: String = text.chars().take(200).collect();
                format!(" ({short})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_bodies() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(describe_body(body), " (MANIFEST_UNKNOWN: manifest unknown)");
        assert_eq!(describe_body(b""), "");
        assert_eq!(describe_body(b"oops"), " (oops)");
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = RegistryError::Unauthorized {
            registry: "localhost:5000".into(),
            repository: "foo".into(),
            detail: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "unauthorized: authentication required for localhost:5000/foo; log in with `berth login localhost:5000`"
        );
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    }
}
