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

use std::ffi::OsString;
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

/// docker's (pflag's) boolean flags also take `--flag=true` and
/// `--flag=false` (`--rm=false`, `-d=true`, `--privileged=false`), which
/// clap's switches refuse: such a token becomes the bare switch or is
/// dropped. Only flags are rewritten: a container's own command (after
/// `run IMAGE`) and everything after `--` stay as typed.
fn pflag_bools(mut cmd: clap::Command, args: Vec<OsString>) -> Vec<OsString> {
    cmd.build();
    let switch = |a: &clap::Arg| matches!(a.get_action(), clap::ArgAction::SetTrue);
    let needs_value = |a: &clap::Arg| {
        a.get_action().takes_values() && a.get_num_args().is_none_or(|n| n.min_values() > 0)
    };
    let mut cur = &cmd;
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    out.extend(it.next());
    let mut verbatim = false;
    while let Some(tok) = it.next() {
        let Some(t) = tok.to_str().filter(|_| !verbatim).map(str::to_string) else {
            out.push(tok);
            continue;
        };
        if t == "--" {
            verbatim = true;
            out.push(tok);
            continue;
        }
        // (the flag, its inline value, whether it is long)
        let flag = if let Some(l) = t.strip_prefix("--") {
            let (name, v) = l.split_once('=').map_or((l, None), |(n, v)| (n, Some(v)));
            cur.get_arguments()
                .find(|a| a.get_long() == Some(name))
                .map(|a| (a, v))
        } else if t.len() > 1 && t.starts_with('-') {
            let body = &t[1..];
            let (shorts, v) = body
                .split_once('=')
                .map_or((body, None), |(s, v)| (s, Some(v)));
            // A cluster (`-it`): the last short decides about a value.
            let last = shorts.chars().last();
            let a = cur
                .get_arguments()
                .find(|a| a.get_short().is_some() && a.get_short() == last);
            match a {
                Some(a) if shorts.chars().count() == 1 => Some((a, v)),
                // `-ip 80:80`: no rewriting, but the value follows.
                Some(a) if needs_value(a) => {
                    out.push(tok);
                    out.extend(it.next());
                    continue;
                }
                _ => None,
            }
        } else {
            None
        };
        match flag {
            Some((a, Some(v))) if switch(a) => match v {
                "true" | "1" | "t" | "T" | "TRUE" | "True" => {
                    out.push(if t.starts_with("--") {
                        format!("--{}", a.get_long().unwrap_or_default()).into()
                    } else {
                        format!("-{}", a.get_short().unwrap_or_default()).into()
                    });
                }
                "false" | "0" | "f" | "F" | "FALSE" | "False" => {}
                _ => out.push(tok),
            },
            Some((a, None)) if needs_value(a) => {
                // The value is the next token, whatever it looks like.
                out.push(tok);
                out.extend(it.next());
            }
            Some(_) => out.push(tok),
            None if t.starts_with('-') => out.push(tok),
            None => {
                out.push(tok);
                if let Some(sub) = cur.find_subcommand(&t) {
                    cur = sub;
                } else if cur.is_trailing_var_arg_set()
                    || cur.get_arguments().any(|a| a.is_trailing_var_arg_set())
                {
                    // `run IMAGE CMD...`: the rest is the container's.
                    verbatim = true;
                }
            }
        }
    }
    out
}

fn real_main() -> anyhow::Result<()> {
    let argv = pflag_bools(
        <cli::Cli as clap::CommandFactory>::command(),
        std::env::args_os().collect(),
    );
    let args = match cli::Cli::try_parse_from(argv) {
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
    if let Some(c) = args.context.as_deref().filter(|c| *c != "default") {
        anyhow::bail!(
            "context \"{c}\" does not exist: berth has only the default context; \
             choose the daemon with -H or $BERTH_HOST / $DOCKER_HOST"
        );
    }
    if args.tls
        || args.tlsverify
        || args.tlscacert.is_some()
        || args.tlscert.is_some()
        || args.tlskey.is_some()
    {
        return Err(StatusError {
            code: 125,
            msg: "TLS to the daemon (--tls, --tlsverify, --tlscacert, --tlscert, --tlskey) \
                  is not supported: use a unix socket, or plain tcp:// on a trusted network"
                .into(),
        }
        .into());
    }
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
    // docker exits 64 (EX_USAGE) when a --format template does not parse.
    if e.chain().any(|c| {
        matches!(
            c.downcast_ref::<template::TemplateError>(),
            Some(template::TemplateError::Parse { .. })
        )
    }) {
        let _ = writeln!(std::io::stderr(), "berth: {e}");
        return 64;
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
