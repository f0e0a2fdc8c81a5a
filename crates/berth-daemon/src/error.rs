//! The error every handler returns: docker's status code and `{"message"}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::ErrorBody;
use berth_errdefs::{ErrorKind, HasKind};

/// An error on its way to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            status: kind.http_status(),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// A 500: the daemon or the host failed, not the request.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// 501 naming what is missing, so a client's user knows it is berth's
    /// gap and not their mistake.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            ErrorKind::NotImplemented,
            format!("{what} is not implemented by berthd yet"),
        )
    }
}

impl<E: HasKind + std::fmt::Display> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(status = self.status, message = %self.message, "request failed");
        } else {
            tracing::debug!(status = self.status, message = %self.message, "request refused");
        }
        // OS errors as Go writes them: docker's clients read the text
        // (the CLI's `run` exits 127 on "no such file or directory").
        let message = berth_errdefs::go_os_errors(&self.message);
        let mut resp = (status, ErrorBody::new(message).to_json()).into_response();
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}
