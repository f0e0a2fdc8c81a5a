//! Platforms (`os/arch[/variant]`): parsing, normalisation and matching.
//!
//! Normalisation follows containerd's platforms package, so that
//! `linux/aarch64`, `linux/arm64/v8` and `linux/arm64` are one platform and
//! `linux/armhf` is `linux/arm/v7`. Matching for pulls uses an ordered list
//! of platforms the host can run, best first (e.g. an amd64 host runs 386
//! images, an arm64 host runs arm/v7 ones), as containerd's `Only` matcher.

use std::fmt;
use std::str::FromStr;

use berth_errdefs::{ErrorKind, HasKind};
use serde::{Deserialize, Serialize};

/// Why a platform string was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error(
        "invalid platform {input:?}: {reason}; expected os[/arch[/variant]], e.g. linux/arm64/v8"
    )]
    Invalid { input: String, reason: &'static str },
}

impl HasKind for PlatformError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// A platform as it appears in an image index or an image config.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        default,
        rename = "os.features",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// A normalised platform from its parts.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_owned),
            os_version: None,
            os_features: None,
        }
        .normalized()
    }

    /// The platform this process runs on.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            "loongarch64" => "loong64",
            other => other,
        };
        // 32-bit arm hosts are taken as v7, the common case; containerd
        // reads /proc/cpuinfo for this, which we can add when we run there.
        Platform::new("linux", arch, None)
    }

    /// Parses `os`, `arch` (with the host's os), `os/arch` or
    /// `os/arch/variant`, as `--platform` takes them.
    pub fn parse(input: &str) -> Result<Platform, PlatformError> {
        let invalid = |reason| PlatformError::Invalid {
            input: input.to_owned(),
            reason,
        };
        let parts: Vec<&str> = input.split('/').collect();
        if parts.len() > 3 {
            return Err(invalid("too many '/'-separated parts"));
        }
        for p in &parts {
            if p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            {
                return Err(invalid(
                    "each part must be non-empty letters, digits, '_', '-' or '.'",
                ));
            }
        }
        let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
        let host = Platform::host();
        let p = match lower.as_slice() {
            [one] if is_known_os(one) => {
                Platform::new(one, &host.architecture, host.variant.as_deref())
            }
            [one] if is_known_arch(one) => Platform::new(&host.os, one, None),
            [_] => return Err(invalid("unknown operating system or architecture")),
            [os, arch] => Platform::new(os, arch, None),
            [os, arch, variant] => Platform::new(os, arch, Some(variant)),
            _ => unreachable!("split yields 1 to 3 parts here"),
        };
        Ok(p)
    }

    /// This platform with containerd's normalisation applied.
    pub fn normalized(mut self) -> Platform {
        self.os = self.os.to_ascii_lowercase();
        if self.os == "macos" {
            self.os = "darwin".to_owned();
        }
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self
            .variant
            .take()
            .map(|v| v.to_ascii_lowercase())
            .unwrap_or_default();
        let (arch, variant) = normalize_arch(&arch, &variant);
        self.architecture = arch;
        self.variant = if variant.is_empty() {
            None
        } else {
            Some(variant)
        };
        self
    }

    /// True if both are the same platform after normalisation. A platform
    /// without os.version matches any os.version (it only matters on Windows).
    pub fn same_as(&self, other: &Platform) -> bool {
        let a = self.clone().normalized();
        let b = other.clone().normalized();
        a.os == b.os && a.architecture == b.architecture && a.variant == b.variant
    }

    /// Platforms this one can run, best first: itself, then older variants of
    /// its architecture, then 32-bit relatives.
    pub fn compatible(&self) -> Vec<Platform> {
        let me = self.clone().normalized();
        let os = me.os.clone();
        let mut out = vec![me.clone()];
        let push = |out: &mut Vec<Platform>, arch: &str, v: Option<&str>| {
            out.push(Platform::new(&os, arch, v))
        };
        let variant_number = |v: &Option<String>| {
            v.as_deref()
                .and_then(|v| v.strip_prefix('v'))
                .and_then(|n| n.parse::<u32>().ok())
        };
        match me.architecture.as_str() {
            "amd64" => {
                // amd64 microarchitecture levels v1 (no variant) to v4.
                let level = variant_number(&me.variant).unwrap_or(1);
                for l in (2..level).rev() {
                    push(&mut out, "amd64", Some(&format!("v{l}")));
                }
                if level > 1 {
                    push(&mut out, "amd64", None);
                }
                push(&mut out, "386", None);
            }
            "arm64" => {
                for v in ["v8", "v7", "v6", "v5"] {
                    push(&mut out, "arm", Some(v));
                }
            }
            "arm" => {
                let level = variant_number(&me.variant).unwrap_or(7);
                for l in (5..level).rev() {
                    push(&mut out, "arm", Some(&format!("v{l}")));
                }
            }
            _ => {}
        }
        out
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

fn is_known_os(s: &str) -> bool {
    matches!(
        s,
        "aix"
            | "android"
            | "darwin"
            | "dragonfly"
            | "freebsd"
            | "illumos"
            | "ios"
            | "js"
            | "linux"
            | "netbsd"
            | "openbsd"
            | "plan9"
            | "solaris"
            | "wasip1"
            | "windows"
            | "macos"
    )
}

fn is_known_arch(s: &str) -> bool {
    matches!(
        s,
        "386"
            | "amd64"
            | "arm"
            | "arm64"
            | "loong64"
            | "mips"
            | "mipsle"
            | "mips64"
            | "mips64le"
            | "ppc64"
            | "ppc64le"
            | "riscv64"
            | "s390x"
            | "wasm"
            | "x86_64"
            | "x86-64"
            | "aarch64"
            | "armhf"
            | "armel"
            | "i386"
    )
}

/// containerd's architecture and variant normalisation.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (a, v) = match arch {
        "i386" => ("386", ""),
        "x86_64" | "x86-64" | "amd64" => ("amd64", if variant == "v1" { "" } else { variant }),
        "aarch64" | "arm64" => (
            "arm64",
            if matches!(variant, "8" | "v8" | "v8.0") {
                ""
            } else {
                variant
            },
        ),
        "armhf" => ("arm", "v7"),
        "armel" => ("arm", "v6"),
        "arm" => {
            let v = match variant {
                "" | "7" => "v7",
                "5" => "v5",
                "6" => "v6",
                "8" => "v8",
                other => other,
            };
            ("arm", v)
        }
        other => (other, variant),
    };
    (a.to_owned(), v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parse_and_normalise() {
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("Linux/AMD64/v1").to_string(), "linux/amd64");
        assert_eq!(p("linux/amd64/v3").to_string(), "linux/amd64/v3");
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64");
        assert_eq!(p("linux/aarch64").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/arm/6").to_string(), "linux/arm/v6");
        assert_eq!(p("linux/armhf").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/armel").to_string(), "linux/arm/v6");
        assert_eq!(p("linux/i386").to_string(), "linux/386");
        assert_eq!(p("macos/arm64").os, "darwin");
        assert_eq!(p("linux/riscv64").to_string(), "linux/riscv64");
        // One part: an os takes the host's arch, an arch the host's os.
        assert_eq!(p("linux"), Platform::host());
        assert_eq!(p("arm64").to_string(), "linux/arm64");
    }

    #[test]
    fn invalid_platforms() {
        for bad in [
            "",
            "/",
            "linux/",
            "linux/amd64/v8/x",
            "linux/am d64",
            "nonsense",
        ] {
            let err = Platform::parse(bad).expect_err(bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn host_is_normalised() {
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        assert_eq!(h.clone().normalized(), h);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(h.to_string(), "linux/amd64");
    }

    #[test]
    fn equality_after_normalisation() {
        assert!(Platform::new("linux", "aarch64", Some("8"))
            .same_as(&Platform::new("linux", "arm64", None)));
        assert!(
            !Platform::new("linux", "arm", Some("v6")).same_as(&Platform::new(
                "linux",
                "arm",
                Some("v7")
            ))
        );
    }

    #[test]
    fn compatibility_order() {
        let names = |p: &Platform| {
            p.compatible()
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&p("linux/amd64")), ["linux/amd64", "linux/386"]);
        assert_eq!(
            names(&p("linux/amd64/v3")),
            [
                "linux/amd64/v3",
                "linux/amd64/v2",
                "linux/amd64",
                "linux/386"
            ]
        );
        assert_eq!(
            names(&p("linux/arm/v7")),
            ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
        );
        assert_eq!(
            names(&p("linux/arm64"))[..3],
            ["linux/arm64", "linux/arm/v8", "linux/arm/v7"]
        );
        assert_eq!(names(&p("linux/s390x")), ["linux/s390x"]);
    }

    #[test]
    fn serde_uses_oci_field_names() {
        let json = r#"{"architecture":"arm","os":"linux","variant":"v7","os.version":"1"}"#;
        let p: Platform = serde_json::from_str(json).unwrap();
        assert_eq!(p.os_version.as_deref(), Some("1"));
        assert_eq!(p.to_string(), "linux/arm/v7");
    }
}
