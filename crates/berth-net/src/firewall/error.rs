//! What can go wrong with berth's table, naming the table and nft's own words.

use berth_errdefs::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// The caller's table name or state cannot be turned into rules.
    #[error("firewall table {table:?}: {reason}")]
    Invalid { table: String, reason: String },

    #[error(
        "firewall table {table:?}: the nft command was not found: install the nftables package \
         (apt-get install nftables)"
    )]
    NftMissing { table: String },

    #[error("firewall table {table:?}: cannot run nft to {action}: {source}")]
    Spawn {
        table: String,
        action: &'static str,
        source: std::io::Error,
    },

    /// nft ran and refused; `stderr` is what it said.
    #[error("firewall table {table:?}: nft failed to {action} ({status}): {stderr}")]
    Nft {
        table: String,
        action: &'static str,
        status: String,
        stderr: String,
        kind: ErrorKind,
    },
}

impl HasKind for FirewallError {
    fn kind(&self) -> ErrorKind {
        match self {
            FirewallError::Invalid { .. } => ErrorKind::InvalidArgument,
            FirewallError::NftMissing { .. } => ErrorKind::FailedPrecondition,
            FirewallError::Spawn { .. } => ErrorKind::Internal,
            FirewallError::Nft { kind, .. } => *kind,
        }
    }
}
