//! Kernel settings under /proc/sys/net, by dotted key. /proc/sys/net shows
//! the network namespace of the thread that opens the file, so these act on
//! the caller's namespace (the host's, for berthd).

use std::path::PathBuf;

use crate::NetError;

fn path_of(key: &str) -> PathBuf {
    // Interface names may contain dots; the key's dots between known parts
    // are slashes, so callers build keys from parts instead.
    PathBuf::from("/proc/sys").join(key)
}

/// Reads a sysctl given as path parts (`["net", "ipv4", "ip_forward"]`).
pub(crate) fn read(parts: &[&str]) -> Result<String, NetError> {
    let key = parts.join("/");
    std::fs::read_to_string(path_of(&key))
        .map(|s| s.trim().to_string())
        .map_err(|source| NetError::Sysctl {
            key: parts.join("."),
            op: "read it",
            source,
        })
}

/// Sets a sysctl, writing only when it differs; returns the previous value.
pub(crate) fn set(parts: &[&str], value: &str) -> Result<String, NetError> {
    let was = read(parts)?;
    if was != value {
        std::fs::write(path_of(&parts.join("/")), value).map_err(|source| NetError::Sysctl {
            key: parts.join("."),
            op: "write it",
            source,
        })?;
    }
    Ok(was)
}
