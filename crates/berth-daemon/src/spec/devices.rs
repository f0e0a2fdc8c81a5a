//! Devices: docker's default cgroup rules, HostConfig.Devices (stat'ed on
//! the host at start), HostConfig.DeviceCgroupRules, and every host device
//! for privileged containers.

use std::path::{Path, PathBuf};

use berth_api::models::HostConfig;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};
use rustix::fs::FileType;

use super::plan::Plan;
use super::SpecError;

/// One HostConfig.Devices entry, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub host: String,
    pub container: String,
    pub permissions: String,
}

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(typ);
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

/// docker's default device cgroup (moby's oci.DefaultLinuxSpec): deny
/// everything, allow zero, null, urandom, random, tty and console, deny
/// fuse; then what runc and berth-runtime add on their own (creating any
/// device node, full, ptmx, the pts), so that the spec does not depend on
/// the runtime adding them. The denials come before any wildcard rule:
/// runc's cgroup v1 emulator refuses to punch a hole into a wildcard.
pub(crate) fn default_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let allow = |t, major, minor: Option<i64>| rule(true, Some(t), major, minor, "rwm");
    vec![
        rule(false, None, None, None, "rwm"),
        allow(C, Some(1), Some(5)),                       // zero
        allow(C, Some(1), Some(3)),                       // null
        allow(C, Some(1), Some(9)),                       // urandom
        allow(C, Some(1), Some(8)),                       // random
        allow(C, Some(5), Some(0)),                       // tty
        allow(C, Some(5), Some(1)),                       // console
        rule(false, Some(C), Some(10), Some(229), "rwm"), // fuse
        rule(true, Some(C), None, None, "m"),
        rule(true, Some(B), None, None, "m"),
        allow(C, Some(1), Some(7)), // full
        allow(C, Some(5), Some(2)), // ptmx
        allow(C, Some(136), None),  // pts/*
    ]
}

fn valid_permissions(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 3
        && p.chars().all(|c| "rwm".contains(c))
        && p.chars().collect::<std::collections::HashSet<_>>().len() == p.len()
}

pub(crate) fn parse_mappings(hc: &HostConfig) -> Result<Vec<Mapping>, SpecError> {
    let mut out = Vec::new();
    for d in hc.devices.iter().flatten() {
        let host = d.path_on_host.clone().unwrap_or_default();
        if !host.starts_with('/') {
            return Err(SpecError::invalid(format!(
                "invalid device path on host: {host:?} must be an absolute path"
            )));
        }
        let container = d
            .path_in_container
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| host.clone());
        if !container.starts_with('/') || container.split('/').any(|c| c == "..") {
            return Err(SpecError::invalid(format!(
                "{container} is not an absolute path"
            )));
        }
        let permissions = d
            .cgroup_permissions
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "rwm".to_string());
        if !valid_permissions(&permissions) {
            return Err(SpecError::invalid(format!(
                "bad mode specified: {permissions}"
            )));
        }
        out.push(Mapping {
            host,
            container: super::env::clean(&container),
            permissions,
        });
    }
    Ok(out)
}

/// HostConfig.DeviceCgroupRules: "c 1:3 rwm", "b *:* m", "a 7:* r".
pub(crate) fn parse_rules(hc: &HostConfig) -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    let mut out = Vec::new();
    for text in hc.device_cgroup_rules.iter().flatten() {
        let bad = || SpecError::invalid(format!("invalid device cgroup rule format: '{text}'"));
        let parts: Vec<&str> = text.split(' ').collect();
        let [typ, numbers, access] = parts.as_slice() else {
            return Err(bad());
        };
        let typ = match *typ {
            "a" => LinuxDeviceType::A,
            "b" => LinuxDeviceType::B,
            "c" => LinuxDeviceType::C,
            _ => return Err(bad()),
        };
        let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
        let number = |s: &str| -> Result<Option<i64>, SpecError> {
            if s == "*" {
                return Ok(None);
            }
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse().map(Some).map_err(|_| bad())
        };
        if !valid_permissions(access) {
            return Err(bad());
        }
        out.push(rule(
            true,
            Some(typ),
            number(major)?,
            number(minor)?,
            access,
        ));
    }
    Ok(out)
}

/// The device node at `path` (not following a final symlink), or None when
/// it is not a device.
fn device_at(path: &Path, container: &Path) -> Result<Option<LinuxDevice>, rustix::io::Errno> {
    let st = rustix::fs::lstat(path)?;
    let typ = match FileType::from_raw_mode(st.st_mode) {
        FileType::CharacterDevice => LinuxDeviceType::C,
        FileType::BlockDevice => LinuxDeviceType::B,
        FileType::Fifo => LinuxDeviceType::P,
        _ => return Ok(None),
    };
    let mut d = LinuxDevice::default();
    d.set_path(container.to_path_buf());
    d.set_typ(typ);
    d.set_major(rustix::fs::major(st.st_rdev) as i64);
    d.set_minor(rustix::fs::minor(st.st_rdev) as i64);
    d.set_file_mode(Some(st.st_mode & 0o7777));
    d.set_uid(Some(st.st_uid));
    d.set_gid(Some(st.st_gid));
    Ok(Some(d))
}

fn gather_error(host: &str, e: impl std::fmt::Display) -> SpecError {
    SpecError::invalid(format!(
        "error gathering device information while adding custom device {host:?}: {e}"
    ))
}

/// docker's DevicesFromPath: a device node, or every device under a
/// directory (mapped to the same place under the container path).
fn devices_from_path(m: &Mapping) -> Result<Vec<LinuxDevice>, SpecError> {
    let mut resolved = PathBuf::from(&m.host);
    if std::fs::symlink_metadata(&resolved).is_ok_and(|md| md.file_type().is_symlink()) {
        if let Ok(p) = std::fs::canonicalize(&resolved) {
            resolved = p;
        }
    }
    match device_at(&resolved, Path::new(&m.container)) {
        Ok(Some(d)) => return Ok(vec![d]),
        Err(e) => return Err(gather_error(&m.host, std::io::Error::from(e))),
        Ok(None) => {}
    }
    let mut out = Vec::new();
    if resolved.is_dir() {
        walk(&resolved, &resolved, Path::new(&m.container), &mut out, 0);
    }
    if out.is_empty() {
        return Err(gather_error(&m.host, "not a device node"));
    }
    Ok(out)
}

fn walk(dir: &Path, base: &Path, container: &Path, out: &mut Vec<LinuxDevice>, depth: u32) {
    if depth > 16 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        let target = container.join(path.strip_prefix(base).unwrap_or(&path));
        if ft.is_dir() {
            walk(&path, base, container, out, depth + 1);
        } else if let Ok(Some(d)) = device_at(&path, &target) {
            out.push(d);
        }
    }
}

/// containerd's HostDevices: every device under /dev but the pts, shm,
/// mqueue and fd trees, /dev/console and FIFOs.
fn host_devices() -> Vec<LinuxDevice> {
    fn scan(dir: &Path, out: &mut Vec<LinuxDevice>, depth: u32) {
        if depth > 16 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let path = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                let skip = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
                if !skip.iter().any(|s| name == *s) {
                    scan(&path, out, depth + 1);
                }
            } else if name != "console" {
                if let Ok(Some(d)) = device_at(&path, &path) {
                    if d.typ() != LinuxDeviceType::P {
                        out.push(d);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    scan(Path::new("/dev"), &mut out, 0);
    out
}

/// The spec's devices and device cgroup rules.
pub(crate) fn devices(
    plan: &Plan,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecError> {
    let mut devs = Vec::new();
    let mut granted = Vec::new();
    if plan.privileged {
        devs.extend(host_devices());
        for m in &plan.devices {
            // The host's /dev is there already; only other paths are added.
            if m.host != m.container {
                devs.extend(devices_from_path(m)?);
            }
        }
    } else {
        for m in &plan.devices {
            for d in devices_from_path(m)? {
                granted.push(rule(
                    true,
                    Some(d.typ()),
                    Some(d.major()),
                    Some(d.minor()),
                    &m.permissions,
                ));
                devs.push(d);
            }
        }
    }
    Ok((devs, cgroup_rules(plan, granted)))
}

/// The device cgroup rules: every device for a privileged container; else
/// docker's defaults, then `granted` (an allow per device node the request
/// maps), then the request's DeviceCgroupRules.
pub(crate) fn cgroup_rules(plan: &Plan, granted: Vec<LinuxDeviceCgroup>) -> Vec<LinuxDeviceCgroup> {
    if plan.privileged {
        return vec![rule(true, None, None, None, "rwm")];
    }
    let mut rules = default_rules();
    rules.extend(granted);
    rules.extend(plan.device_rules.iter().cloned());
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::DeviceMapping;

    fn mapping(host: &str, ctr: &str, perms: &str) -> HostConfig {
        HostConfig {
            devices: Some(vec![DeviceMapping {
                path_on_host: Some(host.into()),
                path_in_container: Some(ctr.into()),
                cgroup_permissions: Some(perms.into()),
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn mappings_are_checked() {
        let m = parse_mappings(&mapping("/dev/null", "", "")).unwrap();
        assert_eq!(
            m,
            vec![Mapping {
                host: "/dev/null".into(),
                container: "/dev/null".into(),
                permissions: "rwm".into()
            }]
        );
        assert_eq!(
            parse_mappings(&mapping("/dev/null", "/dev/x", "rwx"))
                .unwrap_err()
                .to_string(),
            "bad mode specified: rwx"
        );
        assert!(parse_mappings(&mapping("dev/null", "/x", "r")).is_err());
        assert!(parse_mappings(&mapping("/dev/null", "x", "r")).is_err());
    }

    #[test]
    fn devices_are_stated_on_the_host() {
        let m = Mapping {
            host: "/dev/null".into(),
            container: "/dev/mynull".into(),
            permissions: "rw".into(),
        };
        let d = devices_from_path(&m).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path(), Path::new("/dev/mynull"));
        assert_eq!(
            (d[0].typ(), d[0].major(), d[0].minor()),
            (LinuxDeviceType::C, 1, 3)
        );
        let missing = Mapping {
            host: "/dev/does-not-exist".into(),
            container: "/dev/x".into(),
            permissions: "rwm".into(),
        };
        let e = devices_from_path(&missing).unwrap_err().to_string();
        assert!(
            e.starts_with("error gathering device information while adding custom device \"/dev/does-not-exist\": "),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let not_dev = Mapping {
            host: dir.path().to_str().unwrap().into(),
            container: "/dev/x".into(),
            permissions: "rwm".into(),
        };
        assert!(devices_from_path(&not_dev)
            .unwrap_err()
            .to_string()
            .ends_with("not a device node"));
    }

    #[test]
    fn cgroup_rules_parse() {
        let hc = HostConfig {
            device_cgroup_rules: Some(vec!["c 1:3 rwm".into(), "b *:* m".into(), "a 7:* r".into()]),
            ..Default::default()
        };
        let r = parse_rules(&hc).unwrap();
        assert_eq!(
            r[0],
            rule(true, Some(LinuxDeviceType::C), Some(1), Some(3), "rwm")
        );
        assert_eq!(r[1], rule(true, Some(LinuxDeviceType::B), None, None, "m"));
        assert_eq!(
            r[2],
            rule(true, Some(LinuxDeviceType::A), Some(7), None, "r")
        );
        for bad in [
            "c 1:3",
            "x 1:3 r",
            "c 1 r",
            "c a:1 r",
            "c 1:3 rwx",
            "c  1:3 r",
        ] {
            let hc = HostConfig {
                device_cgroup_rules: Some(vec![bad.into()]),
                ..Default::default()
            };
            assert_eq!(
                parse_rules(&hc).unwrap_err().to_string(),
                format!("invalid device cgroup rule format: '{bad}'")
            );
        }
    }

    #[test]
    fn host_devices_include_null_but_not_the_console() {
        let d = host_devices();
        assert!(d.iter().any(|d| d.path() == Path::new("/dev/null")));
        assert!(!d.iter().any(|d| d.path() == Path::new("/dev/console")));
        assert!(!d.iter().any(|d| d.path().starts_with("/dev/pts")));
    }
}
