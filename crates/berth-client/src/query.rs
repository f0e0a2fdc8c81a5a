//! Query strings, percent-encoded as Go's `url.Values.Encode` does.

/// An ordered list of query parameters.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn new() -> Query {
        Query::default()
    }

    pub fn push(mut self, k: &str, v: impl Into<String>) -> Query {
        self.0.push((k.to_string(), v.into()));
        self
    }

    /// Adds `k=1` only when `flag` is set, as docker's client does.
    pub fn flag(self, k: &str, flag: bool) -> Query {
        if flag {
            self.push(k, "1")
        } else {
            self
        }
    }

    /// Adds `k=v` only when `v` is non-empty.
    pub fn opt(self, k: &str, v: &str) -> Query {
        if v.is_empty() {
            self
        } else {
            self.push(k, v)
        }
    }

    /// `?a=b&c=d`, or the empty string.
    pub fn encode(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let mut out = String::from("?");
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(&escape(k));
            out.push('=');
            out.push_str(&escape(v));
        }
        out
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes a path segment (an image name keeps its slashes: the daemon
/// routes `/images/{name}/json` with names that contain `/`).
pub fn escape_path(s: &str) -> String {
    s.split('/').map(escape).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        let q = Query::new()
            .push("filters", r#"{"a":{"b":true}}"#)
            .flag("all", true)
            .flag("size", false)
            .opt("x", "");
        assert_eq!(
            q.encode(),
            "?filters=%7B%22a%22%3A%7B%22b%22%3Atrue%7D%7D&all=1"
        );
        assert_eq!(Query::new().encode(), "");
        assert_eq!(
            escape_path("library/busybox:1 x"),
            "library/busybox%3A1%20x"
        );
    }
}
