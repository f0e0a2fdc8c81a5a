//! Which sysctls a container may set (as runc decides), and setting them.

use berth_sys::sysctl::{self, Scope};
use oci_spec::runtime::LinuxNamespaceType;

/// Refuses a sysctl that would change the host rather than the container.
pub fn check_allowed(key: &str, namespaces: &[LinuxNamespaceType]) -> Result<(), String> {
    let needs = |t, ns: &str| {
        if namespaces.contains(&t) {
            Ok(())
        } else {
            Err(format!(
                "linux.sysctl: {key:?} needs {ns} of the container's own"
            ))
        }
    };
    match sysctl::scope(key) {
        Scope::Ipc => needs(LinuxNamespaceType::Ipc, "an IPC namespace"),
        Scope::Network => needs(LinuxNamespaceType::Network, "a network namespace"),
        Scope::Uts => Err(format!(
            "linux.sysctl: {key:?} cannot be set as a sysctl; use the hostname/domainname fields"
        )),
        Scope::Host => Err(format!(
            "linux.sysctl: {key:?} is not namespaced and would change the host; it is not allowed"
        )),
    }
}

/// Writes one sysctl through /proc/sys (called inside the container).
pub fn write(key: &str, value: &str) -> std::io::Result<()> {
    if !sysctl::is_valid_name(key) {
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
