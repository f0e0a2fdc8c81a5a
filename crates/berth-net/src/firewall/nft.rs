//! Running the `nft` binary: one process per call, the JSON on its stdin.

use std::io::Write;
use std::process::{Command, Stdio};

use berth_errdefs::ErrorKind;

use super::FirewallError;

/// Runs `nft ARGS` (with `stdin` written to it) and returns its stdout.
/// `action` says what the call was for, in the error.
pub(super) fn run(
    table: &str,
    action: &'static str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<Vec<u8>, FirewallError> {
    let spawn_error = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            FirewallError::NftMissing {
                table: table.to_string(),
            }
        } else {
            FirewallError::Spawn {
                table: table.to_string(),
                action,
                source,
            }
        }
    };
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // nft reads all of stdin before it answers, so writing first cannot
        // deadlock on a full stdout pipe. A write error (nft died early)
        // shows in its exit status and stderr below.
        let _ = pipe.write_all(input);
    }
    let out = child.wait_with_output().map_err(spawn_error)?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(FirewallError::Nft {
        table: table.to_string(),
        action,
        status: out.status.to_string(),
        kind: kind_of(args, &stderr),
        stderr,
    })
}

/// Classifies nft's complaint by its (stable, kernel-errno) wording.
fn kind_of(args: &[&str], stderr: &str) -> ErrorKind {
    if stderr.contains("Operation not permitted") {
        ErrorKind::PermissionDenied
    } else if args.first() == Some(&"list") && stderr.contains("No such file or directory") {
        // ENOENT from a transaction means a missing kernel module, not a
        // missing table: apply and remove create the table first.
        ErrorKind::NotFound
    } else {
        ErrorKind::Internal
    }
}
