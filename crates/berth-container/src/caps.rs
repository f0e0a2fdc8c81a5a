//! Linux capabilities: names, and applying the five OCI sets.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// Capability names in kernel number order (CAP_CHOWN is 0).
pub const NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The kernel number of a capability name (with or without the CAP_ prefix).
pub fn number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    NAMES.iter().position(|n| *n == full).map(|i| i as u32)
}

fn cap_number(cap: &Capability) -> Option<u32> {
    let name = serde_json::to_value(cap).ok()?;
    number(name.as_str()?)
}

/// A set as a bit mask, ignoring capabilities this kernel does not have.
pub fn mask(set: &Option<Capabilities>, last_cap: u32) -> u64 {
    set.iter()
        .flatten()
        .filter_map(cap_number)
        .filter(|n| *n <= last_cap)
        .fold(0u64, |m, n| m | (1u64 << n))
}

/// The five sets as masks, computed in the parent so the child only makes syscalls.
#[derive(Debug, Clone, Copy, Default)]
pub struct CapPlan {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    pub last_cap: u32,
}

impl CapPlan {
    pub fn new(caps: &LinuxCapabilities) -> CapPlan {
        let last_cap = berth_sys::caps::last_cap();
        CapPlan {
            bounding: mask(caps.bounding(), last_cap),
            effective: mask(caps.effective(), last_cap),
            permitted: mask(caps.permitted(), last_cap),
            inheritable: mask(caps.inheritable(), last_cap),
            ambient: mask(caps.ambient(), last_cap),
            last_cap,
        }
    }

    /// Drops everything outside the bounding set; needs CAP_SETPCAP, so it
    /// runs before the identity change.
    pub fn apply_bounding(&self) -> std::io::Result<()> {
        for cap in 0..=self.last_cap {
            if self.bounding & (1 << cap) == 0 {
                berth_sys::caps::drop_bounding(cap)?;
            }
        }
        Ok(())
    }

    /// Sets effective/permitted/inheritable and raises the ambient set.
    pub fn apply_sets(&self) -> std::io::Result<()> {
        berth_sys::caps::capset(self.effective, self.permitted, self.inheritable)?;
        berth_sys::caps::clear_ambient()?;
        for cap in 0..=self.last_cap {
            if self.ambient & (1 << cap) != 0 {
                // Raising fails unless the cap is permitted and inheritable;
                // runc ignores such entries, and so do we.
                let _ = berth_sys::caps::raise_ambient(cap);
            }
        }
        Ok(())
    }
}

impl CapPlan {
    /// Ambient capabilities the kernel will not raise, because they are not
    /// both permitted and inheritable: skipped at start, as runc skips them,
    /// and reported here (one warning each) so the skip is not silent.
    pub fn unraisable_ambient(&self) -> Vec<String> {
        let raisable = self.permitted & self.inheritable;
        (0..=self.last_cap)
            .filter(|cap| self.ambient & !raisable & (1 << cap) != 0)
            .map(|cap| {
                let name = NAMES.get(cap as usize).copied().unwrap_or("(unnamed)");
                let missing = match (
                    self.permitted & (1 << cap) != 0,
                    self.inheritable & (1 << cap) != 0,
                ) {
                    (false, false) => "permitted and inheritable sets",
                    (false, true) => "permitted set",
                    _ => "inheritable set",
                };
                format!(
                    "can't raise ambient capability {name}: it is not in the process's {missing}"
                )
            })
            .collect()
    }
}

/// This process's permitted set (CapPrm in /proc/self/status).
pub fn own_permitted() -> std::io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    parse_cap_prm(&status).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "/proc/self/status has no CapPrm line",
        )
    })
}

fn parse_cap_prm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// Refuses capabilities the runtime does not hold itself. Outside a new
/// user namespace a process can only keep what its creator holds, and
/// capset would refuse the rest only after `start`, where the failure
/// looks like the program's own exit status 1; runc fails at create too.
pub fn check_held(plan: Option<&CapPlan>, in_userns: bool) -> crate::error::Result<()> {
    let Some(plan) = plan else {
        return Ok(());
    };
    if in_userns {
        // A process entering a user namespace holds every capability in it.
        return Ok(());
    }
    let held = own_permitted()
        .map_err(|e| crate::error::Error::io("reading the runtime's own capabilities", e))?;
    let missing: Vec<&str> = (0..=plan.last_cap)
        .filter(|c| (plan.effective | plan.permitted) & !held & (1 << c) != 0)
        .filter_map(|c| NAMES.get(c as usize).copied())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(crate::error::Error::unsupported(
        "process.capabilities",
        format!(
            "{} not held by the runtime itself (its permitted set lacks it), so no \
             process it starts can have it; remove it from the effective and permitted \
             sets or run the runtime with it",
            missing.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("net_raw"), Some(13));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
    }

    #[test]
    fn cap_prm_is_parsed() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\n";
        assert_eq!(parse_cap_prm(status), Some(0x1fffeffffff));
        assert_eq!(parse_cap_prm("Name:\tx\n"), None);
    }

    #[test]
    fn caps_the_runtime_lacks_are_refused_by_name_outside_a_userns() {
        let held = own_permitted().unwrap();
        let Some(lacking) = (0..=berth_sys::caps::last_cap()).find(|c| held & (1 << c) == 0) else {
            return; // this runtime holds every capability: nothing to refuse
        };
        let plan = CapPlan {
            permitted: 1 << lacking,
            effective: 1 << lacking,
            last_cap: berth_sys::caps::last_cap(),
            ..CapPlan::default()
        };
        let err = check_held(Some(&plan), false).unwrap_err().to_string();
        assert!(err.contains(NAMES[lacking as usize]), "{err}");
        assert!(check_held(Some(&plan), true).is_ok());
        let held_plan = CapPlan {
            permitted: held,
            effective: held,
            ..plan
        };
        assert!(check_held(Some(&held_plan), false).is_ok());
    }

    #[test]
    fn ambient_caps_outside_inheritable_are_named() {
        let plan = CapPlan {
            permitted: 0b10_0001,
            inheritable: 0b10_0000,
            ambient: 0b10_0001,
            last_cap: 40,
            ..CapPlan::default()
        };
        assert_eq!(
            plan.unraisable_ambient(),
            ["can't raise ambient capability CAP_CHOWN: it is not in the process's inheritable set"]
        );
    }

    #[test]
    fn masks_use_kernel_numbers() {
        let set: Capabilities = [Capability::Chown, Capability::Kill].into_iter().collect();
        assert_eq!(mask(&Some(set), 40), 0b100001);
    }
}
