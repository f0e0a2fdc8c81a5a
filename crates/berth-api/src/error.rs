//! The body docker sends with every error status.

use serde::{Deserialize, Serialize};

/// `{"message": "..."}`: what docker answers with any 4xx/5xx status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
}

impl ErrorBody {
    pub fn new(message: impl Into<String>) -> Self {
        ErrorBody {
            message: message.into(),
        }
    }

    /// The JSON bytes of this body (serialising a single string cannot fail).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| b"{\"message\":\"\"}".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_docker_shape() {
        let body = ErrorBody::new("No such image: busybox:latest");
        let json = String::from_utf8(body.to_json()).unwrap();
        assert_eq!(json, r#"{"message":"No such image: busybox:latest"}"#);
        let back: ErrorBody = serde_json::from_str(&json).unwrap();
        assert_eq!(back, body);
    }
}
