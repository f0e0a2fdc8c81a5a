//! Docker's seccomp profile format (moby's `profiles/seccomp/default.json`
//! and `docker run --security-opt seccomp=FILE`) turned into an OCI section.
//!
//! Docker profiles are templates: `archMap` lists the architectures to
//! filter for each host architecture, and each rule may be limited to some
//! host architectures, capabilities or kernel versions (`includes`) or
//! skipped for them (`excludes`). The conversion resolves them for one
//! container the way moby's `setupSeccomp` does.

use std::collections::BTreeSet;

use oci_spec::runtime::LinuxSeccomp;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::json::check_syscall;
use crate::{parse_profile, Error};

/// Largest profile accepted; Docker's default is about 20 KiB.
const MAX_PROFILE_BYTES: usize = 4 << 20;

/// What the rules of a Docker profile are resolved against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerTarget {
    /// Go's name of the host architecture (`amd64`, `arm64`, ...), the
    /// spelling Docker profiles use in `includes.arches`.
    pub goarch: String,
    /// Kernel version as (major, minor), for `minKernel`.
    pub kernel: (u32, u32),
}

impl DockerTarget {
    /// The machine this runs on.
    pub fn host() -> Self {
        let goarch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "loongarch64" => "loong64",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            "mips" if cfg!(target_endian = "little") => "mipsle",
            other => other,
        };
        DockerTarget {
            goarch: goarch.to_string(),
            kernel: parse_kernel_version(&crate::compile::kernel_release()).unwrap_or((0, 0)),
        }
    }

    /// The libseccomp architecture matching `goarch`, as named in `archMap`.
    fn scmp_arch(&self) -> Option<&'static str> {
        Some(match self.goarch.as_str() {
            "amd64" => "SCMP_ARCH_X86_64",
            "386" => "SCMP_ARCH_X86",
            "arm64" => "SCMP_ARCH_AARCH64",
            "arm" => "SCMP_ARCH_ARM",
            "ppc64le" => "SCMP_ARCH_PPC64LE",
            "ppc64" => "SCMP_ARCH_PPC64",
            "s390x" => "SCMP_ARCH_S390X",
            "riscv64" => "SCMP_ARCH_RISCV64",
            "loong64" => "SCMP_ARCH_LOONGARCH64",
            "mips64" => "SCMP_ARCH_MIPS64",
            "mips64le" => "SCMP_ARCH_MIPSEL64",
            "mips" => "SCMP_ARCH_MIPS",
            "mipsle" => "SCMP_ARCH_MIPSEL",
            _ => return None,
        })
    }
}

/// "6.18.0-1-amd64" -> (6, 18); "4.8" -> (4, 8).
fn parse_kernel_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile {
    default_action: Value,
    #[serde(default)]
    default_errno_ret: Option<Value>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    flags: Option<Value>,
    #[serde(default)]
    listener_path: Option<Value>,
    #[serde(default)]
    listener_metadata: Option<Value>,
    #[serde(default)]
    syscalls: Vec<DockerSyscall>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerSyscall {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    action: Value,
    #[serde(default)]
    errno_ret: Option<Value>,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Resolves a Docker-format profile for a container whose bounding
/// capability set is `capabilities` (`CAP_*` names), on `target`.
pub fn docker_to_oci(
    json: &[u8],
    capabilities: &[String],
    target: &DockerTarget,
) -> Result<LinuxSeccomp, Error> {
    const ROOT: &str = "seccomp profile";
    if json.len() > MAX_PROFILE_BYTES {
        return Err(Error::invalid(
            ROOT,
            format!("{} bytes", json.len()),
            format!("larger than the {MAX_PROFILE_BYTES}-byte limit"),
        ));
    }
    let profile: DockerProfile = serde_json::from_slice(json).map_err(|e| {
        Error::invalid(
            ROOT,
            "<json>",
            format!("is not a Docker seccomp profile: {e}"),
        )
    })?;
    let caps: BTreeSet<&str> = capabilities.iter().map(String::as_str).collect();

    let mut out = Map::new();
    out.insert("defaultAction".into(), profile.default_action);
    let architectures = match (&profile.architectures, &profile.arch_map) {
        (Some(a), Some(m)) if !a.is_empty() && !m.is_empty() => {
            return Err(Error::invalid(
                format!("{ROOT}.architectures"),
                a.join(","),
                "a profile may set either architectures or archMap, not both",
            ))
        }
        (Some(a), _) if !a.is_empty() => a.clone(),
        (_, Some(map)) => {
            let native = target.scmp_arch();
            map.iter()
                .filter(|m| Some(m.architecture.as_str()) == native)
                .flat_map(|m| {
                    std::iter::once(m.architecture.clone())
                        .chain(m.sub_architectures.iter().flatten().cloned())
                })
                .collect()
        }
        _ => Vec::new(),
    };
    if !architectures.is_empty() {
        out.insert("architectures".into(), json!(architectures));
    }
    for (key, value) in [
        ("defaultErrnoRet", profile.default_errno_ret),
        ("flags", profile.flags),
        ("listenerPath", profile.listener_path),
        ("listenerMetadata", profile.listener_metadata),
    ] {
        if let Some(v) = value.filter(|v| !v.is_null()) {
            out.insert(key.into(), v);
        }
    }

    let mut syscalls = Vec::new();
    for (i, call) in profile.syscalls.into_iter().enumerate() {
        let names = match call.name {
            Some(name) if !call.names.is_empty() => {
                return Err(Error::invalid(
                    format!("{ROOT}.syscalls[{i}].name"),
                    name,
                    "use either name or names, not both",
                ))
            }
            Some(name) => vec![name],
            None => call.names,
        };
        // Check every rule, even one this container skips, and name it by
        // its place in the Docker profile rather than in the output.
        let mut shape = Map::new();
        shape.insert("action".into(), call.action.clone());
        if let Some(args) = &call.args {
            shape.insert("args".into(), args.clone());
        }
        check_syscall(&Value::Object(shape), &format!("{ROOT}.syscalls[{i}]"))?;
        if !applies(
            &call.includes,
            &call.excludes,
            &caps,
            target,
            &format!("{ROOT}.syscalls[{i}]"),
        )? {
            continue;
        }
        let mut rule = Map::new();
        rule.insert("names".into(), json!(names));
        rule.insert("action".into(), call.action);
        if let Some(v) = call.errno_ret.filter(|v| !v.is_null()) {
            rule.insert("errnoRet".into(), v);
        }
        if let Some(v) = call.args.filter(|v| !v.is_null()) {
            rule.insert("args".into(), v);
        }
        syscalls.push(Value::Object(rule));
    }
    out.insert("syscalls".into(), Value::Array(syscalls));
    parse_profile(&Value::Object(out))
}

/// moby's rule: skip on any excluded arch, any excluded capability present,
/// or a kernel at least excludes.minKernel; keep only if the arch is
/// included, every included capability is present and the kernel is at
/// least includes.minKernel.
fn applies(
    includes: &Filter,
    excludes: &Filter,
    caps: &BTreeSet<&str>,
    target: &DockerTarget,
    field: &str,
) -> Result<bool, Error> {
    let min_kernel = |f: &Filter, which: &str| -> Result<Option<(u32, u32)>, Error> {
        f.min_kernel
            .as_deref()
            .map(|v| {
                parse_kernel_version(v).ok_or_else(|| {
                    Error::invalid(
                        format!("{field}.{which}.minKernel"),
                        v,
                        "is not a kernel version like 4.8",
                    )
                })
            })
            .transpose()
    };
    if excludes.arches.contains(&target.goarch)
        || excludes.caps.iter().any(|c| caps.contains(c.as_str()))
    {
        return Ok(false);
    }
    if let Some(v) = min_kernel(excludes, "excludes")? {
        if target.kernel >= v {
            return Ok(false);
        }
    }
    if !includes.arches.is_empty() && !includes.arches.contains(&target.goarch) {
        return Ok(false);
    }
    if !includes.caps.iter().all(|c| caps.contains(c.as_str())) {
        return Ok(false);
    }
    if let Some(v) = min_kernel(includes, "includes")? {
        if target.kernel < v {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amd64() -> DockerTarget {
        DockerTarget {
            goarch: "amd64".into(),
            kernel: (6, 1),
        }
    }

    fn names_of(p: &LinuxSeccomp) -> Vec<String> {
        p.syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel_version("6.18.0-1-amd64"), Some((6, 18)));
        assert_eq!(parse_kernel_version("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_version("5"), Some((5, 0)));
        assert_eq!(parse_kernel_version("x"), None);
    }

    #[test]
    fn includes_and_excludes_follow_moby() {
        let profile = br#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
                {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
                {"names": ["future"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "9.0"}},
                {"name": "write", "action": "SCMP_ACT_ALLOW"}
            ]
        }"#;
        let plain = docker_to_oci(profile, &[], &amd64()).unwrap();
        assert_eq!(
            names_of(&plain),
            ["read", "arch_prctl", "clone3", "ptrace", "write"]
        );
        let arches: Vec<String> = plain
            .architectures()
            .iter()
            .flatten()
            .map(|a| {
                serde_json::to_value(a)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(arches, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);

        let admin = docker_to_oci(profile, &["CAP_SYS_ADMIN".to_string()], &amd64()).unwrap();
        assert_eq!(
            names_of(&admin),
            ["read", "arch_prctl", "mount", "ptrace", "write"]
        );
    }

    #[test]
    fn name_and_names_together_are_refused() {
        let profile = br#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}]}"#;
        let err = docker_to_oci(profile, &[], &amd64())
            .unwrap_err()
            .to_string();
        assert!(err.contains("syscalls[0].name"), "{err}");
    }

    #[test]
    fn unknown_action_names_the_rule() {
        let profile = br#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
                         {"names": ["b"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["c"], "action": "SCMP_ACT_EXPLODE", "includes": {"arches": ["s390x"]}}]}"#;
        let err = docker_to_oci(profile, &[], &amd64())
            .unwrap_err()
            .to_string();
        // Index 2 in the Docker profile, although the rule would be skipped on amd64.
        assert!(
            err.contains("seccomp profile.syscalls[2].action = SCMP_ACT_EXPLODE"),
            "{err}"
        );
    }
}
