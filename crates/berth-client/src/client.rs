//! The API client: one connection per request, paths prefixed with the
//! negotiated API version, error statuses turned into [`Error::Daemon`].

use std::cell::OnceCell;
use std::io::{BufReader, Read};

use serde_json::Value;

use crate::host::{Conn, Host};
use crate::http::{roundtrip, Body, Response};
use crate::Error;

/// The newest API version this client speaks; the daemon's, if older, wins.
pub const MAX_API_VERSION: &str = "1.44";

/// Most bytes of a JSON (or error) body we read into memory.
const MAX_JSON: u64 = 256 * 1024 * 1024;

/// A client for one daemon.
pub struct Client {
    host: Host,
    /// Fixed by the caller, or negotiated on first use with `/_ping`.
    version: OnceCell<String>,
}

/// An upgraded connection (attach, exec start): a reader that may already
/// hold bytes sent right after the headers, and a writer for stdin.
pub struct Hijacked {
    pub reader: BufReader<Conn>,
    pub writer: Conn,
}

impl Client {
    pub fn new(host: Host) -> Client {
        Client {
            host,
            version: OnceCell::new(),
        }
    }

    /// A client that skips negotiation and uses `version` (`DOCKER_API_VERSION`).
    pub fn with_version(host: Host, version: &str) -> Client {
        let c = Client::new(host);
        let _ = c.version.set(version.trim_start_matches('v').to_string());
        c
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The API version in use, negotiating it first if needed: the lower of
    /// the daemon's `API-Version` header and [`MAX_API_VERSION`].
    pub fn api_version(&self) -> Result<&str, Error> {
        if let Some(v) = self.version.get() {
            return Ok(v);
        }
        let resp = self.raw("GET", "/_ping", &[], Body::Empty)?;
        let server = resp.header("API-Version").map(str::to_string);
        let _ = resp.read_to_vec(4096);
        let v = match server {
            Some(s) if version_lt(&s, MAX_API_VERSION) => s,
            _ => MAX_API_VERSION.to_string(),
        };
        Ok(self.version.get_or_init(|| v))
    }

    /// Sends a request to an unversioned path and returns the response
    /// whatever its status.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Response, Error> {
        let conn = self.host.connect()?;
        roundtrip(conn, method, path, headers, body).map_err(|source| Error::Io {
            what: "requesting",
            path: path.to_string(),
            host: self.host.to_string(),
            source,
        })
    }

    /// Sends a request to `/v<version><path>`; error statuses become errors.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Response, Error> {
        let full = format!("/v{}{}", self.api_version()?, path);
        let resp = self.raw(method, &full, headers, body)?;
        if resp.status >= 400 {
            return Err(self.daemon_error(path, resp));
        }
        Ok(resp)
    }

    fn daemon_error(&self, path: &str, resp: Response) -> Error {
        let status = resp.status;
        let body = match resp.read_to_vec(1024 * 1024) {
            Ok(b) => b,
            Err(source) => {
                return Error::Io {
                    what: "reading the error body of",
                    path: path.to_string(),
                    host: self.host.to_string(),
                    source,
                }
            }
        };
        Error::Daemon {
            status,
            message: error_message(status, &body),
        }
    }

    /// GET and decode a JSON body.
    pub fn get_json(&self, path: &str) -> Result<Value, Error> {
        let resp = self.request("GET", path, &[], Body::Empty)?;
        self.decode(path, resp)
    }

    /// POST a JSON body (or none) and decode the JSON answer (`null` when empty).
    pub fn post_json(&self, path: &str, body: Option<&Value>) -> Result<Value, Error> {
        let body = match body {
            Some(v) => Body::Json(serde_json::to_vec(v).map_err(|source| Error::Decode {
                path: path.to_string(),
                source,
            })?),
            None => Body::Empty,
        };
        let resp = self.request("POST", path, &[], body)?;
        self.decode(path, resp)
    }

    /// DELETE; the JSON answer (`null` when empty).
    pub fn delete(&self, path: &str) -> Result<Value, Error> {
        let resp = self.request("DELETE", path, &[], Body::Empty)?;
        self.decode(path, resp)
    }

    /// Decodes a body as JSON; an empty body is `null`.
    pub fn decode(&self, path: &str, resp: Response) -> Result<Value, Error> {
        let bytes = resp.read_to_vec(MAX_JSON).map_err(|source| Error::Io {
            what: "reading the response to",
            path: path.to_string(),
            host: self.host.to_string(),
            source,
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|source| Error::Decode {
            path: path.to_string(),
            source,
        })
    }

    /// POST with `Upgrade: tcp` and return the raw connection (attach, exec
    /// start). dockerd answers 101; older daemons answer 200 and stream anyway.
    pub fn hijack(&self, path: &str, body: Option<&Value>) -> Result<Hijacked, Error> {
        let body = match body {
            Some(v) => Body::Json(serde_json::to_vec(v).map_err(|source| Error::Decode {
                path: path.to_string(),
                source,
            })?),
            None => Body::Empty,
        };
        let resp = self.request(
            "POST",
            path,
            &[("Connection", "Upgrade"), ("Upgrade", "tcp")],
            body,
        )?;
        if resp.status != 101 && resp.status != 200 {
            return Err(Error::Protocol {
                path: path.to_string(),
                host: self.host.to_string(),
                reason: format!("expected 101 Switching Protocols, got {}", resp.status),
            });
        }
        let reader = resp.into_conn();
        let writer = reader.get_ref().try_clone().map_err(|source| Error::Io {
            what: "cloning the hijacked connection of",
            path: path.to_string(),
            host: self.host.to_string(),
            source,
        })?;
        Ok(Hijacked { reader, writer })
    }

    /// Reads a whole body into a reader-consuming callback, mapping I/O
    /// errors to this request.
    pub fn io_error(&self, what: &'static str, path: &str, source: std::io::Error) -> Error {
        Error::Io {
            what,
            path: path.to_string(),
            host: self.host.to_string(),
            source,
        }
    }

    /// Streams a body into `sink`.
    pub fn copy_body(
        &self,
        path: &str,
        resp: Response,
        sink: &mut dyn std::io::Write,
    ) -> Result<u64, Error> {
        let mut body = resp.body();
        std::io::copy(&mut body, sink)
            .map_err(|e| self.io_error("streaming the response to", path, e))
    }
}

/// The daemon's message: `{"message": "..."}`, else the body as text, else
/// the status.
pub fn error_message(status: u16, body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(m) = v.get("message").and_then(Value::as_str) {
            return m.to_string();
        }
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    if text.is_empty() {
        format!("HTTP status {status}")
    } else {
        text
    }
}

/// `a < b` for dotted API versions (`1.9 < 1.41`).
pub fn version_lt(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) < parse(b)
}

/// Used by tests and the CLI to read a body fully.
pub fn read_all(r: &mut dyn Read) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_lt("1.9", "1.41"));
        assert!(version_lt("1.41", "1.43"));
        assert!(!version_lt("1.43", "1.43"));
        assert!(!version_lt("1.44", "1.43"));
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_message(404, br#"{"message":"No such container: x"}"#),
            "No such container: x"
        );
        assert_eq!(error_message(500, b"boom\n"), "boom");
        assert_eq!(error_message(502, b""), "HTTP status 502");
    }
}
