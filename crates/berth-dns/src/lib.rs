#![forbid(unsafe_code)]
//! The embedded DNS server of berth's user-defined networks.
//!
//! # Why a process of its own
//! Containers must keep resolving names while berthd is down or
//! restarting (live restore), so the server is not in berthd: it is the
//! `berth-dns` process, which outlives berthd as the shims do.
//!
//! # How berthd drives it
//! berthd keeps one JSON file per user-defined network ([`NetworkDns`]) in
//! a directory under its exec root (`<exec-root>/dns/`), written with
//! [`write_network`] and removed with [`remove_network`] (temp file and
//! rename: the server never reads half a file), and then calls
//! [`notify`]: it sends SIGHUP to the live server of that directory, or,
//! when none runs and configs exist, starts `berth-dns --config-dir DIR`.
//! The process detaches itself (a new session, stdin `/dev/null`, stdout
//! and stderr to `DIR/berth-dns.log`, reparented away from berthd) and
//! holds an exclusive flock on `DIR/berth-dns.pid` (which has its pid in
//! it), so two never serve one directory. It exits by itself when a
//! reload finds no network config left, and on SIGTERM.
//! [`host_upstreams`] gives the host's resolvers for
//! [`NetworkDns::upstreams`]: the server runs in the host's network
//! namespace, so loopback resolvers (systemd-resolved's 127.0.0.53) work.
//!
//! # Where containers reach it
//! On port 53 (UDP and TCP) of each network's gateway addresses
//! ([`NetworkDns::listen`]), bound with `IP_FREEBIND` so binding works
//! before the bridge has the address. A container's `/etc/resolv.conf`
//! names its network's gateway. Docker answers on 127.0.0.11 inside each
//! container and needs NAT rules in every container's namespace for it;
//! answering on the gateway (as podman's aardvark-dns does) costs no
//! per-container firewall rule on the start path.
//!
//! # What it answers
//! Only clients whose source address is in one of the network's subnets
//! get answers (others get REFUSED: one network's containers cannot list
//! another's names). A and AAAA for each record's names (container name,
//! aliases, short id; case-insensitive, with or without the trailing dot,
//! also as `name.<network_name>`; a container on several networks also
//! gets the names of the others, found by the 12-character short id its
//! records share, as docker resolves every network a container is on);
//! names shared by several containers give
//! all their addresses, rotated on every query (docker's service-style
//! round robin); PTR for the records' addresses; a known name without the
//! asked type gets NOERROR and no answer. Other names are forwarded to the
//! upstreams (UDP, TCP when truncated; SERVFAIL when none answers) and the
//! answer is relayed. TTL 600, as docker's.
//!
//! # Modules
//! `config` (the files), `control` (pid file, [`notify`]), `resolv`
//! (the host's resolv.conf), `zone` (the name table), `answer` (one query
//! to one reply, no I/O), `forward` (asking the upstreams), `server` (the
//! sockets and the event loop, used by the binary).

// Public for the fuzz targets in fuzz/ only (one query to one reply, no
// I/O): not an API.
#[doc(hidden)]
pub mod answer;
mod config;
mod control;
mod forward;
mod resolv;
pub mod server;
mod zone;

use std::path::PathBuf;

pub use config::{
    config_path, read_network, read_networks, remove_network, write_network, NetworkDns, Record,
};
pub use control::{notify, EXIT_BUSY, LOG_FILE, PID_FILE};
pub use resolv::host_upstreams;

/// What went wrong, and on what.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid network id {0:?} for a DNS config file: use letters, digits, '-', '_' and '.'"
    )]
    InvalidNetworkId(String),
    #[error("{what} {path:?}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("DNS config {path:?} is not valid: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    #[error("starting {binary:?} for {dir:?}: {reason}")]
    Start {
        binary: PathBuf,
        dir: PathBuf,
        reason: String,
    },
    #[error("another berth-dns serves {0:?}")]
    Busy(PathBuf),
}

impl berth_errdefs::HasKind for Error {
    fn kind(&self) -> berth_errdefs::ErrorKind {
        use berth_errdefs::ErrorKind;
        match self {
            Error::InvalidNetworkId(_) => ErrorKind::InvalidArgument,
            Error::BadConfig { .. } => ErrorKind::DataLoss,
            Error::Start { .. } => ErrorKind::Unavailable,
            Error::Busy(_) => ErrorKind::Conflict,
            Error::Io { .. } => ErrorKind::Internal,
        }
    }
}
