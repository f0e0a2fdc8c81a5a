//! Which namespace a sysctl belongs to: the kernel's split, which decides
//! whether a container may set it (as runc and docker decide it). The
//! daemon checks a request against it at create time, the runtime a spec
//! at create.

/// What setting a sysctl changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The IPC namespace's: System V IPC limits, POSIX message queues.
    Ipc,
    /// The network namespace's (`net.*`).
    Network,
    /// The UTS namespace's host or domain name, which a container gets
    /// from fields of their own, never as a sysctl.
    Uts,
    /// Not namespaced: the host's own, shared by every container.
    Host,
}

/// The IPC namespace's sysctls besides `fs.mqueue.*`.
const IPC: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The scope of sysctl `key` (dotted, as `net.ipv4.ip_forward`).
pub fn scope(key: &str) -> Scope {
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Scope::Ipc
    } else if key.starts_with("net.") {
        Scope::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Scope::Uts
    } else {
        Scope::Host
    }
}

/// True when `key` names a file below /proc/sys and nothing else: dotted
/// components, none empty (so no `..`), no `/`.
pub fn is_valid_name(key: &str) -> bool {
    !key.is_empty() && !key.contains('/') && !key.split('.').any(str::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctls_belong_to_their_namespace() {
        assert_eq!(scope("kernel.shmmax"), Scope::Ipc);
        assert_eq!(scope("fs.mqueue.msg_max"), Scope::Ipc);
        assert_eq!(scope("net.ipv4.ip_forward"), Scope::Network);
        assert_eq!(scope("kernel.domainname"), Scope::Uts);
        assert_eq!(scope("kernel.shm_next_id"), Scope::Host);
        assert_eq!(scope("vm.swappiness"), Scope::Host);
        assert_eq!(scope("network.x"), Scope::Host);
    }

    #[test]
    fn names_stay_below_proc_sys() {
        assert!(is_valid_name("net.ipv4.ip_forward"));
        for bad in ["", "net/../x", "net..x", ".net", "net.", "../etc"] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }
}
