//! Docker-format seccomp profiles (`docker run --security-opt
//! seccomp=FILE`, whose contents the docker CLI sends) and their
//! resolution into an OCI `linux.seccomp` for one container.
//!
//! A Docker profile is a template: `archMap` lists the architectures to
//! filter on each host architecture, and each rule may apply only to some
//! architectures, capabilities or kernel versions (`includes`) or be
//! skipped for them (`excludes`). [`resolve`] decides them for the
//! container's bounding set and the host, as moby's profiles/seccomp does.

mod default;

use std::path::PathBuf;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSyscall,
};
use serde::Deserialize;

use super::SpecError;

pub(crate) use default::profile as default_profile;

/// Largest profile accepted; docker's default is about 14 KiB.
const MAX_PROFILE_BYTES: usize = 4 << 20;

/// A Docker seccomp profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DockerProfile {
    /// None with no syscalls means "no filter", as in moby.
    pub default_action: Option<LinuxSeccompAction>,
    pub default_errno_ret: Option<u32>,
    /// Fixed architectures (`architectures`), or the map (`archMap`).
    pub architectures: Vec<String>,
    pub arch_map: Vec<ArchMap>,
    pub flags: Vec<LinuxSeccompFilterFlag>,
    pub listener_path: Option<PathBuf>,
    pub listener_metadata: Option<String>,
    pub syscalls: Vec<Rule>,
}

/// The architectures filtered on a host of `arch` (libseccomp names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArchMap {
    pub arch: String,
    pub sub: Vec<String>,
}

/// One rule: an OCI syscall entry with conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub names: Vec<String>,
    pub action: LinuxSeccompAction,
    pub errno_ret: Option<u32>,
    pub args: Vec<LinuxSeccompArg>,
    pub includes: Filter,
    pub excludes: Filter,
}

/// Capabilities (CAP_*), moby architecture names, a kernel (major, minor).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    pub caps: Vec<String>,
    pub arches: Vec<String>,
    pub min_kernel: Option<(u32, u32)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProfile {
    #[serde(default)]
    default_action: Option<String>,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<RawArchMap>>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    listener_path: Option<PathBuf>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Option<Vec<RawRule>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Option<RawFilter>,
    #[serde(default)]
    excludes: Option<RawFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFilter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

fn decode_error(e: impl std::fmt::Display) -> SpecError {
    SpecError::invalid(format!("Decoding seccomp profile failed: {e}"))
}

fn action(name: &str) -> Result<LinuxSeccompAction, SpecError> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| decode_error(format!("unknown action {name:?}")))
}

/// moby's KernelVersion: exactly "<kernel>.<major>", 8-bit numbers, not 0.0.
fn kernel_version(text: &str) -> Result<Option<(u32, u32)>, SpecError> {
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || {
        decode_error(format!(
            "invalid kernel version: {text:?}, expected \"<kernel>.<major>\""
        ))
    };
    let (a, b) = text.split_once('.').ok_or_else(bad)?;
    let a: u8 = a.parse().map_err(|_| bad())?;
    let b: u8 = b.parse().map_err(|_| bad())?;
    if a == 0 && b == 0 {
        return Err(bad());
    }
    Ok(Some((a.into(), b.into())))
}

fn filter(raw: Option<RawFilter>) -> Result<Filter, SpecError> {
    let Some(raw) = raw else {
        return Ok(Filter::default());
    };
    Ok(Filter {
        caps: raw.caps.unwrap_or_default(),
        arches: raw.arches.unwrap_or_default(),
        min_kernel: match raw.min_kernel {
            Some(v) => kernel_version(&v)?,
            None => None,
        },
    })
}

/// Parses a Docker-format profile (the text the docker CLI sends).
pub(crate) fn parse(json: &[u8]) -> Result<DockerProfile, SpecError> {
    if json.len() > MAX_PROFILE_BYTES {
        return Err(decode_error(format!(
            "the profile is {} bytes, more than {MAX_PROFILE_BYTES}",
            json.len()
        )));
    }
    let raw: RawProfile = serde_json::from_slice(json).map_err(decode_error)?;
    let architectures = raw.architectures.unwrap_or_default();
    let arch_map: Vec<ArchMap> = raw
        .arch_map
        .unwrap_or_default()
        .into_iter()
        .map(|m| ArchMap {
            arch: m.architecture,
            sub: m.sub_architectures.unwrap_or_default(),
        })
        .collect();
    if !architectures.is_empty() && !arch_map.is_empty() {
        return Err(SpecError::invalid(
            "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'",
        ));
    }
    let mut syscalls = Vec::new();
    for r in raw.syscalls.unwrap_or_default() {
        let names = match (r.name.filter(|n| !n.is_empty()), r.names) {
            (Some(_), Some(names)) if !names.is_empty() => {
                return Err(SpecError::invalid(
                    "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'",
                ))
            }
            (Some(name), _) => vec![name],
            (None, names) => names.unwrap_or_default(),
        };
        syscalls.push(Rule {
            names,
            action: action(&r.action)?,
            errno_ret: r.errno_ret,
            args: r.args.unwrap_or_default(),
            includes: filter(r.includes)?,
            excludes: filter(r.excludes)?,
        });
    }
    Ok(DockerProfile {
        default_action: match raw.default_action.as_deref() {
            None | Some("") => None,
            Some(a) => Some(action(a)?),
        },
        default_errno_ret: raw.default_errno_ret,
        architectures,
        arch_map,
        flags: raw.flags.unwrap_or_default(),
        listener_path: raw.listener_path,
        listener_metadata: raw.listener_metadata,
        syscalls,
    })
}

/// libseccomp's name for the native architecture of a host whose moby
/// name is `arch`.
fn scmp_arch(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "amd64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "ppc64" => "SCMP_ARCH_PPC64",
        "ppc" => "SCMP_ARCH_PPC",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "loongarch64" => "SCMP_ARCH_LOONGARCH64",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mipsel64" => "SCMP_ARCH_MIPSEL64",
        "mips" => "SCMP_ARCH_MIPS",
        "mipsel" => "SCMP_ARCH_MIPSEL",
        _ => return None,
    })
}

fn oci_arch(name: &str) -> Result<Arch, SpecError> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|_| {
        SpecError::invalid(format!(
            "seccomp profile: architecture {name} is not supported by berthd"
        ))
    })
}

/// Whether a rule applies to a container with bounding set `caps` on a
/// host of `arch` running kernel `kernel` (moby's rules: any exclusion
/// skips it; every inclusion must hold).
fn applies(rule: &Rule, caps: &[String], arch: &str, kernel: (u32, u32)) -> bool {
    let ex = &rule.excludes;
    if ex.arches.iter().any(|a| a == arch)
        || ex.caps.iter().any(|c| caps.contains(c))
        || ex.min_kernel.is_some_and(|v| kernel >= v)
    {
        return false;
    }
    let inc = &rule.includes;
    (inc.arches.is_empty() || inc.arches.iter().any(|a| a == arch))
        && inc.caps.iter().all(|c| caps.contains(c))
        && inc.min_kernel.is_none_or(|v| kernel >= v)
}

/// The OCI profile for a container whose bounding set is `caps`, on a host
/// whose moby architecture name is `arch` with kernel `kernel`. None when
/// the profile has neither a default action nor rules (no filter).
pub(crate) fn resolve(
    profile: &DockerProfile,
    caps: &[String],
    arch: &str,
    kernel: (u32, u32),
) -> Result<Option<LinuxSeccomp>, SpecError> {
    let Some(default_action) = profile.default_action else {
        if profile.syscalls.is_empty() {
            return Ok(None);
        }
        return Err(SpecError::invalid(
            "seccomp profile: defaultAction is missing",
        ));
    };
    let mut architectures = Vec::new();
    for a in &profile.architectures {
        architectures.push(oci_arch(a)?);
    }
    if let Some(native) = scmp_arch(arch) {
        if let Some(m) = profile.arch_map.iter().find(|m| m.arch == native) {
            architectures.push(oci_arch(&m.arch)?);
            for s in &m.sub {
                architectures.push(oci_arch(s)?);
            }
        }
    }
    let syscalls: Vec<LinuxSyscall> = profile
        .syscalls
        .iter()
        .filter(|r| applies(r, caps, arch, kernel))
        .map(|r| {
            let mut s = LinuxSyscall::default();
            s.set_names(r.names.clone());
            s.set_action(r.action);
            s.set_errno_ret(r.errno_ret);
            s.set_args((!r.args.is_empty()).then(|| r.args.clone()));
            s
        })
        .collect();
    let mut out = LinuxSeccomp::default();
    out.set_default_action(default_action);
    out.set_default_errno_ret(profile.default_errno_ret);
    out.set_architectures((!architectures.is_empty()).then_some(architectures));
    out.set_flags((!profile.flags.is_empty()).then(|| profile.flags.clone()));
    out.set_listener_path(profile.listener_path.clone());
    out.set_listener_metadata(profile.listener_metadata.clone());
    out.set_syscalls((!syscalls.is_empty()).then_some(syscalls));
    Ok(Some(out))
}

#[cfg(test)]
mod tests;
