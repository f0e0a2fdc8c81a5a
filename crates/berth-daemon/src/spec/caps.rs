//! Capabilities: docker's default set, CapAdd/CapDrop ("ALL", with or
//! without "CAP_", any case), everything available when privileged.
//!
//! [`Available`] says what the kernel knows and what berthd's bounding set
//! holds: docker offers every capability the kernel knows and its runtime
//! then fails to apply those it cannot grant ("unable to apply caps"), so
//! `--privileged` fails wherever the engine itself runs with fewer; berth,
//! as podman, gives privileged containers (and `--cap-add ALL`) all it
//! holds, and names a capability it cannot give when one is asked for.
//! Dropping one it does not hold is fine, as long as the kernel knows it.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use super::SpecError;

/// Every capability berth knows, by number.
const KNOWN: &[(&str, Capability)] = &[
    ("CAP_CHOWN", Capability::Chown),
    ("CAP_DAC_OVERRIDE", Capability::DacOverride),
    ("CAP_DAC_READ_SEARCH", Capability::DacReadSearch),
    ("CAP_FOWNER", Capability::Fowner),
    ("CAP_FSETID", Capability::Fsetid),
    ("CAP_KILL", Capability::Kill),
    ("CAP_SETGID", Capability::Setgid),
    ("CAP_SETUID", Capability::Setuid),
    ("CAP_SETPCAP", Capability::Setpcap),
    ("CAP_LINUX_IMMUTABLE", Capability::LinuxImmutable),
    ("CAP_NET_BIND_SERVICE", Capability::NetBindService),
    ("CAP_NET_BROADCAST", Capability::NetBroadcast),
    ("CAP_NET_ADMIN", Capability::NetAdmin),
    ("CAP_NET_RAW", Capability::NetRaw),
    ("CAP_IPC_LOCK", Capability::IpcLock),
    ("CAP_IPC_OWNER", Capability::IpcOwner),
    ("CAP_SYS_MODULE", Capability::SysModule),
    ("CAP_SYS_RAWIO", Capability::SysRawio),
    ("CAP_SYS_CHROOT", Capability::SysChroot),
    ("CAP_SYS_PTRACE", Capability::SysPtrace),
    ("CAP_SYS_PACCT", Capability::SysPacct),
    ("CAP_SYS_ADMIN", Capability::SysAdmin),
    ("CAP_SYS_BOOT", Capability::SysBoot),
    ("CAP_SYS_NICE", Capability::SysNice),
    ("CAP_SYS_RESOURCE", Capability::SysResource),
    ("CAP_SYS_TIME", Capability::SysTime),
    ("CAP_SYS_TTY_CONFIG", Capability::SysTtyConfig),
    ("CAP_MKNOD", Capability::Mknod),
    ("CAP_LEASE", Capability::Lease),
    ("CAP_AUDIT_WRITE", Capability::AuditWrite),
    ("CAP_AUDIT_CONTROL", Capability::AuditControl),
    ("CAP_SETFCAP", Capability::Setfcap),
    ("CAP_MAC_OVERRIDE", Capability::MacOverride),
    ("CAP_MAC_ADMIN", Capability::MacAdmin),
    ("CAP_SYSLOG", Capability::Syslog),
    ("CAP_WAKE_ALARM", Capability::WakeAlarm),
    ("CAP_BLOCK_SUSPEND", Capability::BlockSuspend),
    ("CAP_AUDIT_READ", Capability::AuditRead),
    ("CAP_PERFMON", Capability::Perfmon),
    ("CAP_BPF", Capability::Bpf),
    ("CAP_CHECKPOINT_RESTORE", Capability::CheckpointRestore),
];

/// docker's default capabilities, in docker's order.
pub(crate) const DEFAULT: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const ALL: &str = "ALL";

/// Capability sets as bit masks (bit N: capability N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Available {
    /// Those the kernel knows (up to its cap_last_cap).
    pub known: u64,
    /// Those a container can have: known and in berthd's bounding set.
    pub held: u64,
}

fn has(mask: u64, number: usize) -> bool {
    number < 64 && mask & (1 << number) != 0
}

/// Every capability in `mask`.
pub(crate) fn all(mask: u64) -> Vec<String> {
    KNOWN
        .iter()
        .enumerate()
        .filter(|(i, _)| has(mask, *i))
        .map(|(_, (n, _))| n.to_string())
        .collect()
}

/// docker's NormalizeLegacyCapabilities: upper-cased, "CAP_" added, known
/// to berth and in `mask`; "ALL" kept as is.
fn normalize(list: &[String], mask: u64) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for c in list {
        let mut c = c.to_ascii_uppercase();
        if c == ALL {
            out.push(c);
            continue;
        }
        if !c.starts_with("CAP_") {
            c = format!("CAP_{c}");
        }
        match KNOWN.iter().position(|(n, _)| *n == c) {
            None => return Err(format!("unknown capability: {c:?}")),
            Some(i) if !has(mask, i) => {
                return Err(format!(
                    "capability not supported by your kernel or not available in the current environment: {c:?}"
                ))
            }
            Some(_) => out.push(c),
        }
    }
    Ok(out)
}

/// docker's TweakCapabilities over the default set.
pub(crate) fn effective(
    add: &[String],
    drop: &[String],
    privileged: bool,
    available: Available,
) -> Result<Vec<String>, SpecError> {
    let drop = normalize(drop, available.known)
        .map_err(|e| SpecError::invalid(format!("invalid CapDrop: {e}")))?;
    let add = normalize(add, available.held)
        .map_err(|e| SpecError::invalid(format!("invalid CapAdd: {e}")))?;
    if privileged {
        return Ok(all(available.held));
    }
    let mut caps: Vec<String> = if add.iter().any(|c| c == ALL) {
        all(available.held)
            .into_iter()
            .filter(|c| !drop.contains(c))
            .collect()
    } else if drop.iter().any(|c| c == ALL) {
        add
    } else {
        let mut caps: Vec<String> = DEFAULT
            .iter()
            .filter(|c| !drop.iter().any(|d| d == *c))
            .map(|c| c.to_string())
            .collect();
        caps.extend(add);
        caps
    };
    let mut seen = std::collections::HashSet::new();
    caps.retain(|c| seen.insert(c.clone()));
    Ok(caps)
}

/// The process capabilities docker writes: bounding, effective and
/// permitted are the set; inheritable and ambient stay empty (docker
/// 20.10.14+, CVE-2022-24769).
pub(crate) fn oci(names: &[String]) -> LinuxCapabilities {
    let set: Capabilities = names
        .iter()
        .filter_map(|n| KNOWN.iter().find(|(k, _)| k == n).map(|(_, c)| *c))
        .collect();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(None);
    caps.set_ambient(None);
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a kernel whose last capability is `last` offers a process that
    /// holds every one.
    fn upto(last: u32) -> Available {
        let known = (1 << (last + 1)) - 1;
        Available { known, held: known }
    }

    /// As `upto(40)`, but berthd's bounding set lacks CAP_SYS_RESOURCE.
    fn without_sys_resource() -> Available {
        Available {
            known: upto(40).known,
            held: upto(40).held & !(1 << 24),
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_table_is_in_kernel_order() {
        assert_eq!(KNOWN.len(), 41);
        assert_eq!(KNOWN[21].0, "CAP_SYS_ADMIN");
        assert_eq!(KNOWN[40].0, "CAP_CHECKPOINT_RESTORE");
        for (name, cap) in KNOWN {
            assert_eq!(serde_json::to_value(cap).unwrap(), serde_json::json!(name));
        }
    }

    #[test]
    fn defaults_add_and_drop() {
        assert_eq!(effective(&[], &[], false, upto(40)).unwrap(), s(DEFAULT));
        let caps = effective(
            &s(&["sys_admin", "CAP_NET_ADMIN"]),
            &s(&["chown", "Cap_Kill"]),
            false,
            upto(40),
        )
        .unwrap();
        assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert!(!caps.contains(&"CAP_KILL".to_string()));
        assert_eq!(caps.len(), DEFAULT.len());
        // Adding a default one does not repeat it.
        assert_eq!(
            effective(&s(&["chown"]), &[], false, upto(40)).unwrap(),
            s(DEFAULT)
        );
        assert_eq!(
            effective(&s(&["chown"]), &s(&["all"]), false, upto(40)).unwrap(),
            s(&["CAP_CHOWN"])
        );
        let all_but = effective(&s(&["ALL"]), &s(&["SYS_ADMIN"]), false, upto(40)).unwrap();
        assert_eq!(all_but.len(), 40);
        assert!(!all_but.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(effective(&[], &[], true, upto(40)).unwrap().len(), 41);
        assert_eq!(effective(&[], &[], true, upto(37)).unwrap().len(), 38);
    }

    #[test]
    fn unknown_capabilities_are_refused_in_dockers_words() {
        let err = effective(&s(&["CAP_FOO"]), &[], false, upto(40)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid CapAdd: unknown capability: \"CAP_FOO\""
        );
        let err = effective(&[], &s(&["foo"]), false, upto(40)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid CapDrop: unknown capability: \"CAP_FOO\""
        );
        let err = effective(&s(&["checkpoint_restore"]), &[], false, upto(39)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid CapAdd: capability not supported by your kernel or not available in the current environment: \"CAP_CHECKPOINT_RESTORE\""
        );
        // A capability outside berthd's bounding set: as one the kernel
        // lacks, since no container can have it.
        let err = effective(&s(&["sys_resource"]), &[], false, without_sys_resource()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid CapAdd: capability not supported by your kernel or not available in the current environment: \"CAP_SYS_RESOURCE\""
        );
        // Dropping it is fine: the kernel knows it.
        let caps = effective(&[], &s(&["sys_resource"]), false, without_sys_resource()).unwrap();
        assert_eq!(caps, s(DEFAULT));
        // Even privileged containers get their lists checked, as docker does.
        assert!(effective(&s(&["nope"]), &[], true, upto(40)).is_err());
    }

    #[test]
    fn privileged_and_all_get_what_berthd_has() {
        let privileged = effective(&[], &[], true, without_sys_resource()).unwrap();
        assert_eq!(privileged.len(), 40);
        assert!(!privileged.contains(&"CAP_SYS_RESOURCE".to_string()));
        assert!(privileged.contains(&"CAP_SYS_ADMIN".to_string()));
        let all_but =
            effective(&s(&["ALL"]), &s(&["kill"]), false, without_sys_resource()).unwrap();
        assert_eq!(all_but.len(), 39);
        assert!(!all_but.contains(&"CAP_SYS_RESOURCE".to_string()));
    }

    #[test]
    fn oci_sets() {
        let c = oci(&s(&["CAP_CHOWN", "CAP_KILL"]));
        assert_eq!(c.bounding().as_ref().unwrap().len(), 2);
        assert_eq!(c.bounding(), c.effective());
        assert_eq!(c.bounding(), c.permitted());
        assert!(c.inheritable().is_none());
        assert!(c.ambient().is_none());
    }
}
