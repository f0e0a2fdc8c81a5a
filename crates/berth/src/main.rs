#![forbid(unsafe_code)]
//! berth: docker's command line over the Engine API (berth-client), so it
//! drives berthd and dockerd alike.
//!
//! - `cli`: the clap definitions (docker's names and flags).
//! - `system`, `images`, `containers`, `run`, `network`: the commands.
//! - `login`: registry logins in docker's config.json, and the
//!   `X-Registry-Auth` header pulls and pushes send.
//! - `netflags`, `ports`, `network_create`: docker's networking flags and
//!   port syntax into API requests, and ports back into `ps` columns.
//! - `output`, `template`, `units`: docker's tables, `--format` and units.

mod build;
mod cli;
mod containers;
mod cpfrom;
mod hostflags;
mod images;
mod login;
mod manage;
mod netflags;
mod network;
mod network_create;
mod output;
mod ports;
mod progress;
mod run;
mod stats;
mod system;
mod template;
mod units;
mod volumes;

use std::io::Write;

use berth_client::{Client, Host};
use clap::Parser;

/// An exit status with an optional message: the container's code for
/// `run`, 125 for daemon errors on `run`/`create`, 126/127 when the command
/// cannot be run or is not found.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct StatusError {
    pub code: i32,
    pub msg: String,
}

impl StatusError {
    pub fn exit(code: i32) -> anyhow::Error {
        StatusError {
            code,
            msg: String::new(),
        }
        .into()
    }
}

/// Everything a command needs: the client and how stdout looks.
pub struct Ctx {
    pub client: Client,
    /// `--config DIR`: where config.json (registry logins) lives.
    pub config_dir: Option<String>,
}

impl Ctx {
    /// Locked stdout; commands write through it so a closed pipe is an
    /// error we can map to exit 0 rather than a panic.
    pub fn out(&self) -> std::io::StdoutLock<'static> {
        std::io::stdout().lock()
    }
}

fn main() {
    let code = match real_main() {
        Ok(()) => 0,
        Err(e) => report(&e),
    };
    std::process::exit(code);
}

fn real_main() -> anyhow::Result<()> {
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                // docker exits 125 on a usage error.
                _ => 125,
            };
            let _ = e.print();
            return Err(StatusError::exit(code));
        }
    };
    let host = match &args.host {
        Some(h) => Host::parse(h)?,
        None => Host::from_env()?,
    };
    let client = match std::env::var("DOCKER_API_VERSION") {
        Ok(v) if !v.is_empty() => Client::with_version(host, &v),
        _ => Client::new(host),
    };
    let ctx = Ctx {
        client,
        config_dir: args.config,
    };
    cli::dispatch(&ctx, args.command)
}

/// Prints the error as `berth: <message>` and returns the exit code; a
/// broken pipe (`berth ps | head`) is success, as in docker.
fn report(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return 0;
            }
        }
    }
    if let Some(s) = e.downcast_ref::<StatusError>() {
        if !s.msg.is_empty() {
            let _ = writeln!(std::io::stderr(), "berth: {}", s.msg);
        }
        return s.code;
    }
    // Our errors carry their cause in their own message: no chain.
    let _ = writeln!(std::io::stderr(), "berth: {e}");
    1
}
