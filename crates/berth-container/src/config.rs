//! Loading and validating a bundle's config.json.
//!
//! Everything that can be checked before any process exists is checked
//! here, so that a bad config fails in the parent with a message naming the
//! field, and nothing is left behind.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// The ociVersion range berth implements: 1.0.x to 1.3.x.
const SUPPORTED_MAJOR: u64 = 1;
const MAX_MINOR: u64 = 3;
/// A config.json larger than this is rejected before parsing.
const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// A parsed config.json with the bundle it came from.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    /// The root filesystem, absolute and canonical.
    pub rootfs: PathBuf,
    /// Per mount, its own id mappings (idmapped mounts), in config order.
    pub mount_idmaps: Vec<Option<crate::idmap::MountIdMap>>,
    /// What berth accepts but does not apply, for the caller to warn about
    /// (as runc warns): unknown capabilities, deprecated cgroup settings.
    pub warnings: Vec<String>,
}

impl Bundle {
    /// Reads `<dir>/config.json`, checks it, and resolves the rootfs.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::InvalidConfig {
            path: dir.to_path_buf(),
            message: format!("cannot open the bundle directory: {e}"),
        })?;
        let path = dir.join("config.json");
        let bytes = read_config(&path)?;
        let mut spec = parse_spec(&bytes).map_err(|message| Error::InvalidConfig {
            path: path.clone(),
            message,
        })?;
        validate(&spec, &path)?;
        let mount_idmaps =
            crate::idmap::mount_idmaps(&bytes).map_err(|message| Error::InvalidConfig {
                path: path.clone(),
                message,
            })?;
        let root = spec.root().as_ref().expect("validated: root is present");
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            dir.join(root.path())
        };
        let rootfs = std::fs::canonicalize(&rootfs).map_err(|e| Error::InvalidConfig {
            path: path.clone(),
            message: format!("root.path: rootfs {rootfs:?} cannot be used: {e}"),
        })?;
        if !rootfs.is_dir() {
            return Err(Error::InvalidConfig {
                path,
                message: format!("root.path: rootfs {rootfs:?} is not a directory"),
            });
        }
        let mut warnings = container_mount_destinations(&mut spec, &rootfs);
        if let Some(caps) = spec
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().as_ref())
        {
            warnings.extend(crate::caps::CapPlan::new(caps).unraisable_ambient());
        }
        let unknown = unknown_capabilities(&bytes);
        if !unknown.is_empty() {
            warnings.push(format!(
                "ignoring unknown or unavailable capabilities: {unknown:?}"
            ));
        }
        if let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            for field in berth_cgroups::ignored_settings(r) {
                warnings.push(format!("{field} is deprecated and ignored"));
            }
        }
        Ok(Bundle {
            dir,
            spec,
            rootfs,
            mount_idmaps,
            warnings,
        })
    }
}

/// Mount destinations as paths in the container, read as runc reads them:
/// one that already spells the rootfs's host path (`<rootfs>/mnt/x`) means
/// that place in the container (`/mnt/x`), and a relative one (`tmp/x`,
/// which the spec says should not be) is taken from `/`, with a warning.
/// Returns the warnings.
fn container_mount_destinations(spec: &mut Spec, rootfs: &Path) -> Vec<String> {
    let Some(mut mounts) = spec.mounts().clone() else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    for (i, m) in mounts.iter_mut().enumerate() {
        let dest = m.destination().clone();
        let lexical = !dest
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
        if let Some(inside) = dest.strip_prefix(rootfs).ok().filter(|_| lexical) {
            m.set_destination(Path::new("/").join(inside));
        } else if dest.is_relative() {
            warnings.push(format!(
                "mounts[{i}].destination {dest:?} is not absolute; mounting it at /{}",
                dest.display()
            ));
            m.set_destination(Path::new("/").join(&dest));
        }
    }
    spec.set_mounts(Some(mounts));
    warnings
}

/// The bytes of a config.json, refusing one larger than the limit.
fn read_config(path: &Path) -> Result<Vec<u8>> {
    let invalid = |message: String| Error::InvalidConfig {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| invalid(format!("cannot read: {e}")))?;
    if meta.len() > MAX_CONFIG_SIZE {
        return Err(invalid(format!(
            "is {} bytes; the limit is {MAX_CONFIG_SIZE}",
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| invalid(format!("cannot read: {e}")))
}

/// Parses config.json bytes; the error names the field (`process.user.uid: ...`).
/// Capability names this build does not know are dropped, as runc drops
/// them (with a warning, see [`unknown_capabilities`]): profiles list
/// capabilities of newer kernels.
pub fn parse_spec(bytes: &[u8]) -> std::result::Result<Spec, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let first = serde_path_to_error::deserialize(&mut de);
    match first {
        Ok(spec) if !has_empty_page_size(&spec) => Ok(spec),
        // pageSize defaults to "" in oci-spec, so a differently cased key
        // parses but leaves it empty.
        Ok(_) => {
            let mut value: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
            normalise_hugepage_keys(&mut value);
            serde_path_to_error::deserialize(value).map_err(describe)
        }
        Err(e) if e.path().to_string().starts_with("process.scheduler.flags") => {
            let mut value: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
            if let Some(process) = value.get_mut("process") {
                spec_scheduler_flag_names(process);
            }
            serde_path_to_error::deserialize(value).map_err(describe)
        }
        Err(e) if e.path().to_string().starts_with("process.capabilities") => {
            let mut value: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
            drop_unknown_capabilities(&mut value);
            serde_path_to_error::deserialize(value).map_err(describe)
        }
        Err(e) => Err(describe(e)),
    }
}

fn describe(e: serde_path_to_error::Error<serde_json::Error>) -> String {
    let field = e.path().to_string();
    if field == "." || field == "?" {
        format!("invalid JSON: {}", e.inner())
    } else {
        format!("{field}: {}", e.inner())
    }
}

const CAPABILITY_SETS: [&str; 5] = [
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

/// Capability names in the config that berth does not know.
pub fn unknown_capabilities(bytes: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    let mut out: Vec<String> = CAPABILITY_SETS
        .iter()
        .filter_map(|set| value["process"]["capabilities"][set].as_array())
        .flatten()
        .filter_map(|c| c.as_str())
        .filter(|c| crate::caps::number(c).is_none())
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

fn drop_unknown_capabilities(value: &mut serde_json::Value) {
    for set in CAPABILITY_SETS {
        if let Some(list) = value["process"]["capabilities"][set].as_array_mut() {
            list.retain(|c| c.as_str().is_some_and(|c| crate::caps::number(c).is_some()));
        }
    }
}

/// The runtime spec names scheduler flags SCHED_FLAG_RESET_ON_FORK and
/// SCHED_FLAG_DL_OVERRUN; oci-spec's enum spells these two differently,
/// so a process object (config.json's or exec's --process) is rewritten
/// to oci-spec's names before it is decoded.
pub fn spec_scheduler_flag_names(process: &mut serde_json::Value) {
    let Some(flags) = process
        .pointer_mut("/scheduler/flags")
        .and_then(|f| f.as_array_mut())
    else {
        return;
    };
    for flag in flags {
        let renamed = match flag.as_str() {
            Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
            Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
            _ => continue,
        };
        *flag = renamed.into();
    }
}

fn has_empty_page_size(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.hugepage_limits().as_ref())
        .is_some_and(|l| l.iter().any(|h| h.page_size().is_empty()))
}

/// runc decodes config.json with Go's encoding/json, which matches keys
/// case-insensitively, and runc's own tests write hugepageLimits entries
/// with `pagesize`. Only this field's case variants are renamed to the
/// spec's `pageSize`; every other key keeps its exact spelling.
fn normalise_hugepage_keys(value: &mut serde_json::Value) {
    let Some(limits) = value
        .pointer_mut("/linux/resources/hugepageLimits")
        .and_then(|l| l.as_array_mut())
    else {
        return;
    };
    for limit in limits.iter_mut().filter_map(|l| l.as_object_mut()) {
        if limit.contains_key("pageSize") {
            continue;
        }
        let variant = limit
            .keys()
            .find(|k| k.eq_ignore_ascii_case("pageSize"))
            .cloned();
        if let Some(key) = variant {
            let size = limit.remove(&key).expect("key just found");
            limit.insert("pageSize".into(), size);
        }
    }
}

/// Checks what serde cannot: versions, required fields, values we cannot honour.
pub fn validate(spec: &Spec, path: &Path) -> Result<()> {
    let invalid = |message: String| Error::InvalidConfig {
        path: path.to_path_buf(),
        message,
    };
    check_version(spec.version()).map_err(invalid)?;
    if spec.root().is_none() {
        return Err(invalid(
            "root: missing; the bundle must name its root filesystem".into(),
        ));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process: missing; nothing to run".into()))?;
    match process.args() {
        Some(args) if !args.is_empty() => {}
        _ => {
            return Err(invalid(
                "process.args: must contain at least one element".into(),
            ))
        }
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(format!(
            "process.cwd: {:?} must be an absolute path",
            process.cwd()
        )));
    }
    if let Some(linux) = spec.linux() {
        let mut seen = Vec::new();
        for ns in linux.namespaces().iter().flatten() {
            if seen.contains(&ns.typ()) {
                return Err(invalid(format!(
                    "linux.namespaces: {} is listed twice",
                    ns.typ()
                )));
            }
            seen.push(ns.typ());
        }
        let has_userns = seen.contains(&LinuxNamespaceType::User);
        let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if has_maps && !has_userns {
            return Err(invalid(
                "linux.uidMappings: mappings are given but there is no user namespace".into(),
            ));
        }
        if linux.intel_rdt().is_some() {
            return Err(Error::unsupported(
                "linux.intelRdt",
                "Intel RDT is not supported",
            ));
        }
        if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
            return Err(Error::unsupported(
                "linux.netDevices",
                "moving net devices is not supported yet",
            ));
        }
        if linux.memory_policy().is_some() {
            return Err(Error::unsupported(
                "linux.memoryPolicy",
                "memory policies are not supported yet",
            ));
        }
        for clock in linux.time_offsets().iter().flat_map(|t| t.keys()) {
            if clock != "monotonic" && clock != "boottime" {
                return Err(invalid(format!(
                    "linux.timeOffsets: unknown clock {clock:?}; use monotonic or boottime"
                )));
            }
        }
        let new_timens = linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::Time && n.path().is_none());
        if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) && !new_timens {
            return Err(invalid(
                "linux.timeOffsets: offsets need a new time namespace in linux.namespaces".into(),
            ));
        }
        if linux.mount_label().as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(Error::unsupported(
                "linux.mountLabel",
                "SELinux is not supported",
            ));
        }
        if let Some(p) = linux.rootfs_propagation() {
            crate::mounts::propagation_flag(p)
                .ok_or_else(|| invalid(format!("linux.rootfsPropagation: unknown value {p:?}")))?;
        }
        for (key, _) in linux.sysctl().iter().flatten() {
            crate::sysctl::check_allowed(key, &seen).map_err(invalid)?;
        }
    }
    if process
        .selinux_label()
        .as_ref()
        .is_some_and(|l| !l.is_empty())
    {
        return Err(Error::unsupported(
            "process.selinuxLabel",
            "SELinux is not supported",
        ));
    }
    crate::affinity::ExecAffinity::of(process).map_err(|e| invalid(e.to_string()))?;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        crate::mounts::MountOptions::parse(m.options().as_deref().unwrap_or_default())
            .map_err(|e| invalid(format!("mounts[{i}].options: {e}")))?;
    }
    Ok(())
}

/// Accepts ociVersion 1.0.x up to 1.3.x (with pre-release suffixes such as "1.0.2-dev").
pub fn check_version(version: &str) -> std::result::Result<(), String> {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<Option<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [Some(SUPPORTED_MAJOR), Some(minor), Some(_)] if *minor <= MAX_MINOR => Ok(()),
        _ => Err(format!(
            "ociVersion: {version:?} is not supported; berth implements 1.0.0 to 1.{MAX_MINOR}.x"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_destinations_become_container_paths() {
        let mut spec = parse_spec(
            br#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"mounts":[
                {"destination":"/r/rootfs/mnt/x","type":"bind","source":"/a"},
                {"destination":"tmp/m","type":"bind","source":"/b"},
                {"destination":"/r/rootfs/../etc","type":"bind","source":"/c"},
                {"destination":"/r/rootfsx/y","type":"bind","source":"/d"}]}"#,
        )
        .unwrap();
        let warnings = container_mount_destinations(&mut spec, Path::new("/r/rootfs"));
        let dests: Vec<_> = spec
            .mounts()
            .iter()
            .flatten()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(
            dests,
            ["/mnt/x", "/tmp/m", "/r/rootfs/../etc", "/r/rootfsx/y"]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("mounts[1]"), "{warnings:?}");
    }

    #[test]
    fn versions() {
        for ok in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.3.0-rc.1"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", "2.0.0", "1.4.0", "0.9.0", "one"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scheduler_flags_take_the_runtime_specs_names() {
        let spec = parse_spec(
            br#"{"ociVersion":"1.0.0","process":{"user":{"uid":0,"gid":0},"cwd":"/","scheduler":{"policy":"SCHED_DEADLINE","flags":["SCHED_FLAG_RESET_ON_FORK","SCHED_FLAG_DL_OVERRUN","SCHED_FLAG_RECLAIM"]}}}"#,
        )
        .unwrap();
        let sched = spec
            .process()
            .as_ref()
            .unwrap()
            .scheduler()
            .clone()
            .unwrap();
        assert_eq!(sched.flags().as_ref().unwrap().len(), 3);
    }

    #[test]
    fn hugepage_limits_accept_gos_case_variants_of_page_size() {
        for key in ["pageSize", "pagesize", "PageSize"] {
            let json = format!(
                r#"{{"ociVersion":"1.0.0","linux":{{"resources":{{"hugepageLimits":[{{"{key}":"2MB","limit":4}}]}}}}}}"#
            );
            let spec = parse_spec(json.as_bytes()).unwrap_or_else(|e| panic!("{key}: {e}"));
            let limits = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
            let limit = &limits.hugepage_limits().as_ref().unwrap()[0];
            assert_eq!(
                (limit.page_size().as_str(), limit.limit()),
                ("2MB", 4),
                "{key}"
            );
        }
    }

    #[test]
    fn type_errors_name_the_field() {
        let err = parse_spec(
            br#"{"ociVersion":"1.0.0","process":{"user":{"uid":"root","gid":0},"cwd":"/"}}"#,
        )
        .unwrap_err();
        assert!(err.starts_with("process.user.uid: invalid type"), "{err}");
    }

    #[test]
    fn missing_required_field_is_named() {
        let err = parse_spec(br#"{"ociVersion":"1.0.0","process":{"cwd":"/"}}"#).unwrap_err();
        assert!(err.contains("missing field `user`"), "{err}");
    }

    #[test]
    fn unknown_capabilities_are_dropped() {
        let json = br#"{"ociVersion":"1.0.0","process":{"user":{"uid":0,"gid":0},"cwd":"/",
            "capabilities":{"bounding":["CAP_UNKNOWN","CAP_KILL"]}}}"#;
        let spec = parse_spec(json).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
        assert_eq!(unknown_capabilities(json), ["CAP_UNKNOWN"]);
    }

    #[test]
    fn bad_json_is_reported() {
        let err = parse_spec(b"{not json").unwrap_err();
        assert!(err.starts_with("invalid JSON"), "{err}");
    }
}
