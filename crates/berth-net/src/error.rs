//! The error of berth-net's plumbing (netns files, netlink, sysctls, IPAM):
//! each names what failed, on what (interface, netns file, address) and
//! what to do about it.

use std::io;
use std::path::{Path, PathBuf};

use berth_errdefs::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A name, address or subnet the caller gave cannot be used.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// What the value is ("interface name", "address", ...).
        what: &'static str,
        value: String,
        reason: String,
    },

    /// docker's IPAM checks failed (`network create --subnet/--gateway/--ip-range`);
    /// the problems are worded as docker words them.
    #[error("invalid network config:\n{}", join_problems(.problems))]
    InvalidConfig { problems: Vec<String> },

    /// A link the operation needs does not exist.
    #[error("link {name}{} does not exist: {hint}", in_netns(.netns))]
    LinkNotFound {
        name: String,
        netns: Option<PathBuf>,
        hint: &'static str,
    },

    /// A link of that name exists but is not what berth needs.
    #[error(
        "link {name} exists but is a {found}, not a {wanted}: delete it or choose another name"
    )]
    LinkConflict {
        name: String,
        found: String,
        wanted: &'static str,
    },

    /// The kernel refused a netlink request.
    #[error(
        "{op} {target}{}: {source}{}; {}",
        in_netns(.netns),
        kernel_says(.kernel),
        errno_hint(.source)
    )]
    Netlink {
        /// What was asked ("creating veth pair", "adding address", ...).
        op: &'static str,
        /// What it was asked of ("veth0123 (peer eth0)", "10.0.0.2/24 on eth0", ...).
        target: String,
        /// The network namespace it happened in, when not the host's.
        netns: Option<PathBuf>,
        source: io::Error,
        /// The kernel's extended-ack message, when it gave one.
        kernel: Option<String>,
    },

    /// Creating, entering or removing a network namespace file failed.
    #[error("network namespace {}: {op} failed: {source}; {}", path.display(), netns_hint(.source))]
    Netns {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },

    /// The file already holds a live network namespace.
    #[error(
        "network namespace {}: the file already holds a network namespace; remove it first \
         (berth_net::netns::remove)",
        path.display()
    )]
    NetnsExists { path: PathBuf },

    /// Reading or writing a sysctl under /proc/sys failed.
    #[error("sysctl {key}: cannot {op}: {source}; {}", sysctl_hint(.source))]
    Sysctl {
        key: String,
        op: &'static str,
        source: io::Error,
    },
}

impl NetError {
    pub(crate) fn netns(path: &Path, op: &'static str, source: io::Error) -> Self {
        NetError::Netns {
            path: path.to_path_buf(),
            op,
            source,
        }
    }

    pub(crate) fn invalid(
        what: &'static str,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        NetError::Invalid {
            what,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

impl HasKind for NetError {
    fn kind(&self) -> ErrorKind {
        match self {
            NetError::Invalid { .. } | NetError::InvalidConfig { .. } => ErrorKind::InvalidArgument,
            NetError::LinkNotFound { .. } => ErrorKind::NotFound,
            NetError::LinkConflict { .. } | NetError::NetnsExists { .. } => ErrorKind::Conflict,
            NetError::Netlink { source, .. } => errno_kind(source),
            NetError::Netns { source, .. } | NetError::Sysctl { source, .. } => {
                match source.raw_os_error() {
                    Some(libc::ENOENT) => ErrorKind::NotFound,
                    Some(libc::EPERM | libc::EACCES) => ErrorKind::PermissionDenied,
                    _ => ErrorKind::Internal,
                }
            }
        }
    }
}

fn errno_kind(e: &io::Error) -> ErrorKind {
    match e.raw_os_error() {
        Some(libc::EEXIST | libc::EADDRINUSE | libc::EBUSY) => ErrorKind::Conflict,
        Some(libc::ENODEV | libc::ENOENT | libc::ESRCH) => ErrorKind::NotFound,
        Some(libc::EPERM | libc::EACCES) => ErrorKind::PermissionDenied,
        Some(libc::EINVAL | libc::ERANGE) => ErrorKind::InvalidArgument,
        Some(libc::EOPNOTSUPP) => ErrorKind::FailedPrecondition,
        _ => ErrorKind::Internal,
    }
}

/// docker joins one problem bare and several as a `* ` list.
fn join_problems(problems: &[String]) -> String {
    match problems {
        [one] => one.clone(),
        many => format!("* {}", many.join("\n* ")),
    }
}

fn in_netns(netns: &Option<PathBuf>) -> String {
    match netns {
        Some(p) => format!(" in network namespace {}", p.display()),
        None => String::new(),
    }
}

fn kernel_says(kernel: &Option<String>) -> String {
    match kernel {
        Some(m) => format!(" (kernel: {m})"),
        None => String::new(),
    }
}

fn errno_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => {
            "berth needs CAP_NET_ADMIN (run berthd as root), and IPv6 must not be disabled on the interface"
        }
        Some(libc::EEXIST) => "something of that name already exists: remove it or choose another name",
        Some(libc::ENODEV) => "the interface is gone: was it deleted behind berth's back?",
        Some(libc::EBUSY) => "the interface is in use: retry, or remove what holds it",
        Some(libc::EINVAL | libc::ERANGE) => {
            "the kernel rejected a value: check the MTU (68..65535), the MAC and the addresses"
        }
        Some(libc::EOPNOTSUPP) => "this kernel lacks the feature: load the bridge and veth modules",
        Some(libc::ENETUNREACH) => "the gateway is not inside a subnet of the interface's addresses",
        Some(libc::ENOMEM | libc::ENOBUFS) => "the kernel is short of memory: retry later",
        _ => "see the kernel log (dmesg) for details",
    }
}

fn netns_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => "berth needs CAP_SYS_ADMIN (run berthd as root)",
        Some(libc::ENOENT) => {
            "the file does not exist: was the container's network torn down already?"
        }
        Some(libc::EINVAL) => "the file is not a network namespace (is it still bind-mounted?)",
        Some(libc::EBUSY) => "something still uses the mount: retry",
        _ => "check the exec root's file system",
    }
}

fn sysctl_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOENT) => "the interface is gone or the kernel lacks this setting",
        Some(libc::EPERM | libc::EACCES | libc::EROFS) => {
            "berth needs root and a writable /proc/sys (is berthd itself in a container?)"
        }
        _ => "check /proc/sys",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_object_and_a_remedy() {
        let e = NetError::Netlink {
            op: "creating veth pair",
            target: "vethab12 (peer eth0)".into(),
            netns: None,
            source: io::Error::from_raw_os_error(libc::EEXIST),
            kernel: None,
        };
        let s = e.to_string();
        assert!(
            s.starts_with("creating veth pair vethab12 (peer eth0): "),
            "{s}"
        );
        assert!(s.contains("remove it or choose another name"), "{s}");
        assert_eq!(e.kind(), ErrorKind::Conflict);

        let e = NetError::LinkNotFound {
            name: "br0".into(),
            netns: Some("/run/berth/netns/x".into()),
            hint: "create the bridge first",
        };
        assert_eq!(
            e.to_string(),
            "link br0 in network namespace /run/berth/netns/x does not exist: create the bridge first"
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn config_problems_are_joined_as_docker_does() {
        let one = NetError::InvalidConfig {
            problems: vec!["invalid gateway 10.0.0.1: parent subnet 172.20.0.0/16 doesn't contain this address".into()],
        };
        assert_eq!(
            one.to_string(),
            "invalid network config:\ninvalid gateway 10.0.0.1: parent subnet 172.20.0.0/16 doesn't contain this address"
        );
        let two = NetError::InvalidConfig {
            problems: vec!["a".into(), "b".into()],
        };
        assert_eq!(two.to_string(), "invalid network config:\n* a\n* b");
        assert_eq!(two.kind(), ErrorKind::InvalidArgument);
    }
}
