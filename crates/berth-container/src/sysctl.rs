//! Which sysctls a container may set (as runc decides), and setting them.

use oci_spec::runtime::LinuxNamespaceType;

/// IPC sysctls need an IPC namespace of the container's own.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Refuses a sysctl that would change the host rather than the container.
pub fn check_allowed(key: &str, namespaces: &[LinuxNamespaceType]) -> Result<(), String> {
    let has = |t| namespaces.contains(&t);
    let what = if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        has(LinuxNamespaceType::Ipc)
            .then_some(())
            .ok_or("an IPC namespace")
    } else if key.starts_with("net.") {
        has(LinuxNamespaceType::Network)
            .then_some(())
            .ok_or("a network namespace")
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        return Err(format!(
            "linux.sysctl: {key:?} cannot be set as a sysctl; use the hostname/domainname fields"
        ));
    } else {
        return Err(format!(
            "linux.sysctl: {key:?} is not namespaced and would change the host; it is not allowed"
        ));
    };
    what.map_err(|ns| format!("linux.sysctl: {key:?} needs {ns} of the container's own"))
}

/// Writes one sysctl through /proc/sys (called inside the container).
pub fn write(key: &str, value: &str) -> std::io::Result<()> {
    if key.contains("..") || key.contains('/') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("invalid sysctl name {key:?}"),
        ));
    }
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(path, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinuxNamespaceType as T;

    #[test]
    fn namespaced_sysctls_need_their_namespace() {
        assert!(check_allowed("net.ipv4.ip_forward", &[T::Network]).is_ok());
        assert!(check_allowed("net.ipv4.ip_forward", &[T::Ipc]).is_err());
        assert!(check_allowed("kernel.shmmax", &[T::Ipc]).is_ok());
        assert!(check_allowed("fs.mqueue.msg_max", &[]).is_err());
        assert!(check_allowed("vm.swappiness", &[T::Network, T::Ipc]).is_err());
    }
}
