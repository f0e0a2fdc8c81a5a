//! API versions: parsing `1.NN`, the `/v1.NN` path prefix, negotiation.
//!
//! Docker clients either pin a version in the path (`/v1.41/images/json`) or
//! send none and get the server's newest. A version older than the
//! daemon's minimum ([`ApiVersion::MIN`] unless `DOCKER_MIN_API_VERSION`
//! lowers it, as dockerd's) or newer than [`ApiVersion::MAX`] is refused
//! with docker's own wording, so clients that parse it (docker-py does)
//! behave.

use std::fmt;
use std::str::FromStr;

use berth_errdefs::{ErrorKind, HasKind};

/// A Docker Engine API version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u16,
    pub minor: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("invalid API version {input:?}: expected MAJOR.MINOR, e.g. 1.41")]
    Malformed { input: String },
    #[error("client version {requested} is too old. Minimum supported API version is {min}, please upgrade your client to a newer version")]
    TooOld {
        requested: ApiVersion,
        min: ApiVersion,
    },
    #[error("client version {requested} is too new. Maximum supported API version is {max}")]
    TooNew {
        requested: ApiVersion,
        max: ApiVersion,
    },
}

impl HasKind for VersionError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

impl ApiVersion {
    /// The oldest version berth accepts by default (docker's own minimum).
    pub const MIN: ApiVersion = ApiVersion::new(1, 24);
    /// The oldest a daemon may be told to accept (dockerd's floor for
    /// `DOCKER_MIN_API_VERSION`): clients that pin an old version, such as
    /// skopeo before 1.14 (1.22), work once it is lowered.
    pub const OLDEST: ApiVersion = ApiVersion::new(1, 12);
    /// The newest version berth implements; also the default when a request
    /// names none.
    pub const MAX: ApiVersion = ApiVersion::new(1, 44);

    pub const fn new(major: u16, minor: u16) -> Self {
        ApiVersion { major, minor }
    }

    /// The version a request is served at: the one it asked for, or
    /// [`ApiVersion::MAX`], refused outside `min..=MAX`.
    pub fn negotiate(
        requested: Option<ApiVersion>,
        min: ApiVersion,
    ) -> Result<ApiVersion, VersionError> {
        match requested {
            None => Ok(Self::MAX),
            Some(v) if v < min => Err(VersionError::TooOld { requested: v, min }),
            Some(v) if v > Self::MAX => Err(VersionError::TooNew {
                requested: v,
                max: Self::MAX,
            }),
            Some(v) => Ok(v),
        }
    }

    /// A daemon's minimum version as dockerd reads `DOCKER_MIN_API_VERSION`:
    /// from [`ApiVersion::OLDEST`] to [`ApiVersion::MAX`].
    pub fn parse_minimum(s: &str) -> Result<ApiVersion, String> {
        let v: ApiVersion = s.trim().parse().map_err(|e: VersionError| e.to_string())?;
        if v < Self::OLDEST {
            return Err(format!(
                "minimum supported API version is {}: {v}",
                Self::OLDEST
            ));
        }
        if v > Self::MAX {
            return Err(format!(
                "maximum supported API version is {}: {v}",
                Self::MAX
            ));
        }
        Ok(v)
    }

    /// Splits an optional `/v1.NN` prefix off a request path.
    ///
    /// `/v1.41/images/json` gives `(Some(1.41), "/images/json")`;
    /// `/images/json` gives `(None, "/images/json")`. A first segment that
    /// starts with `v` and a digit but is not a version is an error (docker
    /// answers those with 400, not 404).
    pub fn split_path(path: &str) -> Result<(Option<ApiVersion>, &str), VersionError> {
        let Some(rest) = path.strip_prefix("/v") else {
            return Ok((None, path));
        };
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            return Ok((None, path));
        }
        let end = rest.find('/').unwrap_or(rest.len());
        let version: ApiVersion = rest[..end].parse()?;
        let tail = &rest[end..];
        Ok((Some(version), if tail.is_empty() { "/" } else { tail }))
    }

    /// `/v1.NN` for building request paths.
    pub fn path_prefix(self) -> String {
        format!("/v{self}")
    }
}

impl FromStr for ApiVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || VersionError::Malformed {
            input: s.to_string(),
        };
        let (major, minor) = s.split_once('.').ok_or_else(malformed)?;
        let number = |part: &str| -> Result<u16, VersionError> {
            if part.is_empty() || part.len() > 4 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            part.parse().map_err(|_| malformed())
        };
        Ok(ApiVersion::new(number(major)?, number(minor)?))
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl serde::Serialize for ApiVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ApiVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_numerically() {
        let v: ApiVersion = "1.41".parse().unwrap();
        assert_eq!(v, ApiVersion::new(1, 41));
        assert!(ApiVersion::new(1, 9) < ApiVersion::new(1, 10));
        assert_eq!(v.to_string(), "1.41");
        for bad in [
            "", "1", "1.", ".4", "1.4.1", "a.b", "1.-4", "1.99999", "+1.2",
        ] {
            assert!(bad.parse::<ApiVersion>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn splits_path_prefixes() {
        assert_eq!(
            ApiVersion::split_path("/v1.41/images/json").unwrap(),
            (Some(ApiVersion::new(1, 41)), "/images/json")
        );
        assert_eq!(
            ApiVersion::split_path("/images/json").unwrap(),
            (None, "/images/json")
        );
        assert_eq!(
            ApiVersion::split_path("/v1.30").unwrap(),
            (Some(ApiVersion::new(1, 30)), "/")
        );
        // `/volumes` starts with `/v` but is no version.
        assert_eq!(
            ApiVersion::split_path("/volumes").unwrap(),
            (None, "/volumes")
        );
        assert!(ApiVersion::split_path("/v1x/_ping").is_err());
    }

    #[test]
    fn negotiates_within_bounds() {
        let min = ApiVersion::MIN;
        assert_eq!(ApiVersion::negotiate(None, min).unwrap(), ApiVersion::MAX);
        assert_eq!(
            ApiVersion::negotiate(Some(ApiVersion::new(1, 24)), min).unwrap(),
            ApiVersion::new(1, 24)
        );
        let old = ApiVersion::negotiate(Some(ApiVersion::new(1, 22)), min).unwrap_err();
        assert_eq!(
            old.to_string(),
            "client version 1.22 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
        );
        let new = ApiVersion::negotiate(Some(ApiVersion::new(1, 99)), min).unwrap_err();
        assert!(new.to_string().contains("too new"), "{new}");
        assert_eq!(new.kind().http_status(), 400);
        // A lowered minimum (DOCKER_MIN_API_VERSION=1.22) lets it in.
        assert_eq!(
            ApiVersion::negotiate(Some(ApiVersion::new(1, 22)), ApiVersion::new(1, 22)).unwrap(),
            ApiVersion::new(1, 22)
        );
    }

    #[test]
    fn minimums_as_dockerd_takes_them() {
        assert_eq!(
            ApiVersion::parse_minimum("1.22"),
            Ok(ApiVersion::new(1, 22))
        );
        assert_eq!(ApiVersion::parse_minimum("1.44"), Ok(ApiVersion::MAX));
        assert_eq!(
            ApiVersion::parse_minimum("1.11"),
            Err("minimum supported API version is 1.12: 1.11".to_string())
        );
        assert_eq!(
            ApiVersion::parse_minimum("1.50"),
            Err("maximum supported API version is 1.44: 1.50".to_string())
        );
        assert!(ApiVersion::parse_minimum("one")
            .unwrap_err()
            .contains("MAJOR.MINOR"));
    }

    #[test]
    fn serde_as_string() {
        let v: ApiVersion = serde_json::from_str("\"1.24\"").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"1.24\"");
    }
}
