//! The device cgroup rules a container gets on top of its spec's: the
//! devices every container needs (as runc and docker allow them). The
//! devices `linux.devices` creates are not allowed by that alone: as in
//! runc, the spec's `resources.devices` must allow them (docker's and
//! berthd's `--device` adds both).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec};

/// (type, major, minor, access); -1 is a wildcard.
const ALWAYS_ALLOWED: &[(LinuxDeviceType, i64, i64, &str)] = &[
    // mknod of any device is allowed; using one is not.
    (LinuxDeviceType::C, -1, -1, "m"),
    (LinuxDeviceType::B, -1, -1, "m"),
    (LinuxDeviceType::C, 1, 3, "rwm"),    // null
    (LinuxDeviceType::C, 1, 5, "rwm"),    // zero
    (LinuxDeviceType::C, 1, 7, "rwm"),    // full
    (LinuxDeviceType::C, 1, 8, "rwm"),    // random
    (LinuxDeviceType::C, 1, 9, "rwm"),    // urandom
    (LinuxDeviceType::C, 5, 0, "rwm"),    // tty
    (LinuxDeviceType::C, 5, 1, "rwm"),    // console
    (LinuxDeviceType::C, 5, 2, "rwm"),    // ptmx
    (LinuxDeviceType::C, 136, -1, "rwm"), // pts/*
];

fn rule(typ: LinuxDeviceType, major: i64, minor: i64, access: &str) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(typ));
    r.set_major((major >= 0).then_some(major));
    r.set_minor((minor >= 0).then_some(minor));
    r.set_access(Some(access.to_string()));
    r
}

/// The spec's resources with the always-allowed devices appended after its
/// own rules (later rules win, as in the kernel's list).
pub fn effective_resources(spec: &Spec) -> Option<LinuxResources> {
    let linux = spec.linux().as_ref()?;
    let mut res = linux.resources().clone()?;
    let mut rules = res.devices().clone().unwrap_or_default();
    if rules.is_empty() {
        // No device rules at all means no device restriction: leave it so.
        return Some(res);
    }
    for (t, major, minor, access) in ALWAYS_ALLOWED {
        rules.push(rule(*t, *major, *minor, access));
    }
    res.set_devices(Some(rules));
    Some(res)
}
