//! Image references with docker's grammar and normalisation.
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path
//! domain     := host [ ":" port ]          host: DNS name or [IPv6]
//! path       := component ( "/" component )*
//! component  := [a-z0-9]+ ( ( [._] | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! ```
//!
//! Normalisation is docker's: the first path element is a domain only if
//! it contains `.` or `:`, is `localhost`, or has an uppercase letter;
//! otherwise the domain is `docker.io`, and a one-element path on Docker Hub
//! gets the `library/` prefix. `index.docker.io` is an old name of
//! `docker.io`. A reference is always stored fully qualified; `familiar()`
//! gives the short form docker prints.

use std::fmt;
use std::str::FromStr;

use berth_errdefs::{ErrorKind, HasKind};

use crate::digest::{Digest, DigestError};

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's old domain, normalised to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Namespace of Docker Hub's official images.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag used when a reference names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest allowed `domain/path`, as docker enforces.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest allowed tag.
pub const TAG_LENGTH_MAX: usize = 128;

/// Why a string is not a valid image reference. Every message quotes the input.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: an image reference cannot be empty")]
    Empty,
    #[error("invalid reference format: {input:?}: {reason}")]
    Invalid { input: String, reason: &'static str },
    #[error(
        "invalid reference format: {input:?}: repository name ({repository}) must be lowercase"
    )]
    Uppercase { input: String, repository: String },
    #[error("invalid reference format: {input:?}: repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters (it has {length})")]
    NameTooLong { input: String, length: usize },
    #[error("invalid repository name {input:?}: cannot specify 64-byte hexadecimal strings (that is an image id)")]
    HexIdentifier { input: String },
    #[error("invalid reference format: {input:?}: {source}")]
    Digest { input: String, source: DigestError },
}

impl HasKind for ReferenceError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// A parsed, normalised image reference: `domain/path[:tag][@digest]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference as `docker pull` does. No default
    /// tag is added; see [`Reference::with_default_tag`].
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if is_image_id(input) {
            return Err(ReferenceError::HexIdentifier {
                input: input.to_owned(),
            });
        }
        let invalid = |reason| ReferenceError::Invalid {
            input: input.to_owned(),
            reason,
        };

        // A digest cannot contain '@', and nothing before it can either.
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = Digest::parse(d).map_err(|source| ReferenceError::Digest {
                    input: input.to_owned(),
                    source,
                })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };

        let (domain, remainder) = split_domain(rest);
        // The tag follows the last ':' that comes after the last '/'; earlier
        // colons belong to a host:port.
        let (path, tag) = match remainder.rfind(':') {
            Some(i) if !remainder[i..].contains('/') => {
                (&remainder[..i], Some(&remainder[i + 1..]))
            }
            _ => (remainder.as_str(), None),
        };
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                input: input.to_owned(),
                repository: path.to_owned(),
            });
        }
        if !valid_domain(&domain) {
            return Err(invalid("the registry host is not a valid host[:port]"));
        }
        if path.is_empty() {
            return Err(invalid("the repository name is empty"));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(invalid(
                "each repository path component must be lowercase letters and digits, separated by '.', '_', '__' or '-'",
            ));
        }
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(invalid("a tag must be 1 to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'"));
            }
        }
        let length = domain.len() + 1 + path.len();
        if length > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong {
                input: input.to_owned(),
                length,
            });
        }
        Ok(Reference {
            domain,
            path: path.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry host, e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path without the domain, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.path
    }

    /// `domain/path`, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// True for references on Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.domain == DEFAULT_DOMAIN
    }

    /// The short name docker prints: no `docker.io/`, no `library/`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// The familiar form with tag and digest, e.g. `busybox:1.36`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    /// Adds `latest` when the reference has neither a tag nor a digest, as
    /// `docker pull busybox` does.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_owned());
        }
        self
    }

    /// What `docker pull` fetches: a reference with both a tag and a digest
    /// loses the tag (the digest pins the content); one with neither gets
    /// `latest`.
    pub fn pull_target(&self) -> Reference {
        match &self.digest {
            Some(d) => self.repository_only().with_digest(d.clone()),
            None => self.clone().with_default_tag(),
        }
    }

    /// Replaces the tag (validated with docker's tag rule).
    pub fn with_tag(mut self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::Invalid {
                input: tag.to_owned(),
                reason: "a tag must be 1 to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'",
            });
        }
        self.tag = Some(tag.to_owned());
        Ok(self)
    }

    /// Replaces the digest.
    pub fn with_digest(mut self, digest: Digest) -> Reference {
        self.digest = Some(digest);
        self
    }

    /// The repository alone, without tag or digest.
    pub fn repository_only(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form, e.g. `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// True if `s` is a full 64-hex-digit image id (docker refuses it as a name).
pub fn is_image_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True if `tag` is a valid tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty()
        && b.len() <= TAG_LENGTH_MAX
        && word(b[0])
        && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// Splits off the domain with docker's rule and applies Docker Hub's
/// normalisation. Returns the domain and the rest (`path[:tag]`).
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_owned();
    }
    if domain == DEFAULT_DOMAIN && !rest.contains('/') {
        rest = format!("{OFFICIAL_REPO_PREFIX}{rest}");
    }
    (domain, rest)
}

/// `host[:port]` where host is a DNS-style name or a bracketed IPv6 address.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if domain.starts_with('[') {
        return true;
    }
    !host.is_empty() && host.split('.').all(valid_domain_component)
}

/// `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

/// `[a-z0-9]+ ( ([._] | "__" | "-"+) [a-z0-9]+ )*`.
fn valid_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A run of separators between two alphanumerics.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[track_caller]
    fn check(input: &str, domain: &str, path: &str, tag: Option<&str>, full: &str, familiar: &str) {
        let r = parse(input);
        assert_eq!(r.domain(), domain, "domain of {input}");
        assert_eq!(r.repository(), path, "path of {input}");
        assert_eq!(r.tag(), tag, "tag of {input}");
        assert_eq!(r.to_string(), full, "display of {input}");
        assert_eq!(r.familiar(), familiar, "familiar of {input}");
        // The fully qualified and familiar forms parse back to the same value.
        assert_eq!(parse(full), r);
        assert_eq!(parse(familiar), r);
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        check(
            "alpine",
            "docker.io",
            "library/alpine",
            None,
            "docker.io/library/alpine",
            "alpine",
        );
        check(
            "alpine:3.19",
            "docker.io",
            "library/alpine",
            Some("3.19"),
            "docker.io/library/alpine:3.19",
            "alpine:3.19",
        );
        check(
            "bitnami/redis:7",
            "docker.io",
            "bitnami/redis",
            Some("7"),
            "docker.io/bitnami/redis:7",
            "bitnami/redis:7",
        );
        check(
            "docker.io/alpine",
            "docker.io",
            "library/alpine",
            None,
            "docker.io/library/alpine",
            "alpine",
        );
        check(
            "index.docker.io/library/alpine",
            "docker.io",
            "library/alpine",
            None,
            "docker.io/library/alpine",
            "alpine",
        );
        check(
            "docker.io/library/alpine:edge",
            "docker.io",
            "library/alpine",
            Some("edge"),
            "docker.io/library/alpine:edge",
            "alpine:edge",
        );
        // Nested paths under library/ keep the prefix in the familiar form.
        check(
            "library/a/b",
            "docker.io",
            "library/a/b",
            None,
            "docker.io/library/a/b",
            "library/a/b",
        );
        check(
            "a/b/c/d",
            "docker.io",
            "a/b/c/d",
            None,
            "docker.io/a/b/c/d",
            "a/b/c/d",
        );
    }

    #[test]
    fn other_registries_keep_their_domain() {
        check(
            "localhost/app",
            "localhost",
            "app",
            None,
            "localhost/app",
            "localhost/app",
        );
        check(
            "localhost:5000/app:v1",
            "localhost:5000",
            "app",
            Some("v1"),
            "localhost:5000/app:v1",
            "localhost:5000/app:v1",
        );
        check(
            "quay.io/coreos/etcd",
            "quay.io",
            "coreos/etcd",
            None,
            "quay.io/coreos/etcd",
            "quay.io/coreos/etcd",
        );
        check(
            "127.0.0.1:5000/x/y:z",
            "127.0.0.1:5000",
            "x/y",
            Some("z"),
            "127.0.0.1:5000/x/y:z",
            "127.0.0.1:5000/x/y:z",
        );
        check(
            "[::1]:5000/app:1",
            "[::1]:5000",
            "app",
            Some("1"),
            "[::1]:5000/app:1",
            "[::1]:5000/app:1",
        );
        check(
            "[fe80::1]/app",
            "[fe80::1]",
            "app",
            None,
            "[fe80::1]/app",
            "[fe80::1]/app",
        );
        check(
            "my-registry.example.com:443/team/app",
            "my-registry.example.com:443",
            "team/app",
            None,
            "my-registry.example.com:443/team/app",
            "my-registry.example.com:443/team/app",
        );
        // An uppercase first element is a domain (hosts are case-insensitive).
        check(
            "Registry/app",
            "Registry",
            "app",
            None,
            "Registry/app",
            "Registry/app",
        );
    }

    #[test]
    fn host_forms_docker_accepts_and_refuses() {
        // Accepted: IPv4 with and without a port, bracketed IPv6 with a
        // port, punycode names, a dash in a bare host with a port.
        for ok in [
            "10.1.2.3/app",
            "10.1.2.3:5000/team/app",
            "[2001:db8::7]:443/app",
            "xn--bcher-kva.example/app",
            "reg-01:8443/app",
            "registry.local/a_b/c__d/e-f",
        ] {
            parse(ok);
        }
        // Without a '/', what looks like an address is a repository (and tag).
        let r = parse("10.1.2.3:5000");
        assert_eq!(
            (r.repository(), r.tag()),
            ("library/10.1.2.3", Some("5000"))
        );
        // Refused: URLs, unbracketed IPv6, zone ids, embedded IPv4 in IPv6,
        // a bracketed address with no repository.
        for bad in [
            "http://registry.local/app",
            "2001:db8::7:5000/app",
            "[fe80::7%eth1]:5000/app",
            "[::ffff:10.1.2.3]:5000/app",
            "[2001:db8::7]",
            "[2001:db8::7]:443",
            "a_b_/c",
            "__/app",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn a_port_without_a_path_is_a_tag() {
        // No '/': "foo:5000" is the image foo with tag 5000.
        check(
            "foo:5000",
            "docker.io",
            "library/foo",
            Some("5000"),
            "docker.io/library/foo:5000",
            "foo:5000",
        );
    }

    #[test]
    fn digests_and_tags_together() {
        let r = parse(&format!("busybox@{D}"));
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.familiar(), format!("busybox@{D}"));
        let r = parse(&format!("localhost:5000/busybox:1.36@{D}"));
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.tag(), Some("1.36"));
        assert_eq!(r.to_string(), format!("localhost:5000/busybox:1.36@{D}"));
        // A digest reference gets no default tag.
        assert_eq!(
            r.repository_only()
                .with_digest(r.digest().unwrap().clone())
                .with_default_tag()
                .tag(),
            None
        );
    }

    #[test]
    fn pull_target_prefers_the_digest() {
        let r = parse(&format!("busybox:1.36@{D}"));
        assert_eq!(
            r.pull_target().to_string(),
            format!("docker.io/library/busybox@{D}")
        );
        assert_eq!(parse("busybox").pull_target().familiar(), "busybox:latest");
        assert_eq!(parse("busybox:1").pull_target().familiar(), "busybox:1");
    }

    #[test]
    fn default_tag_is_latest() {
        assert_eq!(
            parse("busybox").with_default_tag().to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(parse("busybox:1").with_default_tag().tag(), Some("1"));
    }

    #[test]
    fn separators_in_path_components() {
        for ok in [
            "a.b", "a_b", "a__b", "a-b", "a--b", "a---b", "a.b_c-d", "0", "a0/b1",
        ] {
            parse(ok);
        }
        for bad in [
            "a..b", "a___b", "a_.b", "-a", "a-", ".a", "a.", "_a", "a/", "/a", "a//b", "a/-b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn invalid_references_quote_the_input() {
        let err = Reference::parse("Foo:1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid reference format: \"Foo:1\": repository name (library/Foo) must be lowercase"
        );
        assert!(matches!(
            Reference::parse("docker.io/Foo/bar"),
            Err(ReferenceError::Uppercase { .. })
        ));
        let err = Reference::parse("busybox:").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid reference format: \"busybox:\""),
            "{err}"
        );
        assert!(matches!(Reference::parse(""), Err(ReferenceError::Empty)));
        assert_eq!(
            Reference::parse("").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        for bad in [
            "busybox:-x",
            "busybox:.x",
            "busybox:a/b",
            "busybox@sha256:abc",
            "busybox@",
            "a@b@c",
            "bad host/app",
            "-bad.host/app",
            "host.-x/app",
            "localhost:/app",
            "localhost:50a0/app",
            "[::1/app",
            "[zz]:5000/app",
            "[::1]x/app",
            ":tag",
            "a b",
            "app:tag:other",
        ] {
            let err = Reference::parse(bad).expect_err(bad);
            assert!(
                err.to_string().contains(&format!("{bad:?}")),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn image_ids_are_not_names() {
        let id = &D[7..];
        assert!(is_image_id(id));
        assert!(matches!(
            Reference::parse(id),
            Err(ReferenceError::HexIdentifier { .. })
        ));
        // With a namespace, 64 hex digits are a legitimate repository name.
        parse(&format!("someone/{id}"));
    }

    #[test]
    fn unsupported_digest_algorithms_are_rejected() {
        let err = Reference::parse("busybox@md5:d41d8cd98f00b204e9800998ecf8427e").unwrap_err();
        assert!(matches!(err, ReferenceError::Digest { .. }), "{err}");
    }

    #[test]
    fn length_limits() {
        let tag = "t".repeat(128);
        assert_eq!(parse(&format!("a:{tag}")).tag(), Some(tag.as_str()));
        assert!(Reference::parse(&format!("a:{tag}t")).is_err());
        // docker.io/ + 245 = 255 characters: the limit.
        let path = format!("x/{}", "a".repeat(243));
        parse(&path);
        let err = Reference::parse(&format!("{path}a")).unwrap_err();
        assert!(
            matches!(err, ReferenceError::NameTooLong { length: 256, .. }),
            "{err}"
        );
    }

    #[test]
    fn with_tag_validates() {
        assert_eq!(
            parse("busybox").with_tag("v2").unwrap().familiar(),
            "busybox:v2"
        );
        assert!(parse("busybox").with_tag("").is_err());
        assert!(parse("busybox").with_tag("a b").is_err());
    }

    #[test]
    fn serde_uses_the_qualified_string() {
        let r = parse("busybox:1");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"docker.io/library/busybox:1\"");
        assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
    }
}
