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
mod completion;
mod containers;
mod cpfrom;
mod download;
mod hostflags;
mod images;
mod login;
mod manage;
mod netflags;
mod network;
mod network_create;
mod output;
mod plugins;
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
///
/// In `run`, `create` and `exec`, where the first word that is not a flag
/// starts the container's part, an unknown flag before it is refused here
/// (clap would take it for the image), as docker's "unknown flag".
fn is_true(v: &str) -> bool {
    matches!(v, "true" | "1" | "t" | "T" | "TRUE" | "True")
}

fn pflag_bools(cmd: clap::Command, args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    // Not `cmd.build()` (it costs start-up time on every call): the derive
    // sets switches' actions itself, and the globals are looked up at the
    // root. Subcommands' flags are deferred (cli.rs): each one the words
    // enter is built on its own.
    let globals: Vec<&clap::Arg> = cmd.get_arguments().filter(|a| a.is_global_set()).collect();
    let switch = |a: &clap::Arg| matches!(a.get_action(), clap::ArgAction::SetTrue);
    let needs_value = |a: &clap::Arg| {
        a.get_action().takes_values() && a.get_num_args().is_none_or(|n| n.min_values() > 0)
    };
    // `run IMAGE CMD...`: commands whose last argument takes the rest.
    let trailing = |c: &clap::Command| {
        c.is_trailing_var_arg_set() || c.get_arguments().any(|a| a.is_trailing_var_arg_set())
    };
    let mut entered: Option<clap::Command> = None;
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    out.extend(it.next());
    let mut verbatim = false;
    while let Some(tok) = it.next() {
        let cur = entered.as_ref().unwrap_or(&cmd);
        let Some(t) = tok.to_str().filter(|_| !verbatim).map(str::to_string) else {
            out.push(tok);
            continue;
        };
        if t == "--" {
            verbatim = true;
            out.push(tok);
            continue;
        }
        // clap adds `-h`/`--help` only when it builds the tree, so they are
        // not among `cur`'s arguments here; `run` and `create` define their
        // own (`-h` is their hostname there).
        if (t == "--help" || t == "-h") && !cur.get_arguments().any(|a| a.get_id() == "help") {
            let taken = t == "-h" && cur.get_arguments().any(|a| a.get_short() == Some('h'));
            if !taken {
                out.push(tok);
                continue;
            }
        }
        // (the flag, its inline value, whether it is long)
        let flag = if let Some(l) = t.strip_prefix("--") {
            let (name, v) = l.split_once('=').map_or((l, None), |(n, v)| (n, Some(v)));
            cur.get_arguments()
                .chain(globals.iter().copied())
                .find(|a| a.get_long() == Some(name))
                .map(|a| (a, v))
        } else if t.len() > 1 && t.starts_with('-') {
            let body: Vec<char> = t[1..].chars().collect();
            let short = |ch: char| {
                cur.get_arguments()
                    .chain(globals.iter().copied())
                    .find(|a| a.get_short() == Some(ch))
            };
            if body.len() > 2 && body[1] == '=' {
                // `-d=false`, `-e=A=1`: one short and its inline value.
                short(body[0]).map(|a| (a, Some(&t[3..])))
            } else {
                // A cluster (`-it`, `-ip 80:80`, `-p8080:80`, `-eA=1`):
                // switches up to one that takes a value, which is the rest
                // of the token or the next one; split the way pflag reads it.
                let mut split = false;
                for (i, ch) in body.iter().enumerate() {
                    if *ch == '=' && i > 0 {
                        // `-it=false`: the value is the last switch's.
                        let on = is_true(&body[i + 1..].iter().collect::<String>());
                        let switches: String = body[..if on { i } else { i - 1 }].iter().collect();
                        if !switches.is_empty() {
                            out.push(format!("-{switches}").into());
                        }
                        split = true;
                        break;
                    }
                    match short(*ch) {
                        None if trailing(cur) => {
                            return Err(format!("unknown shorthand flag: '{ch}' in {t}"))
                        }
                        None => break,
                        Some(a) if a.get_action().takes_values() && !switch(a) => {
                            if i > 0 {
                                let switches: String = body[..i].iter().collect();
                                out.push(format!("-{switches}").into());
                            }
                            out.push(format!("-{ch}").into());
                            let rest: String = body[i + 1..].iter().collect();
                            if !rest.is_empty() {
                                out.push(rest.into());
                            } else if needs_value(a) {
                                out.extend(it.next());
                            }
                            split = true;
                            break;
                        }
                        Some(_) => {}
                    }
                }
                if !split {
                    // Switches only, or something clap will explain.
                    out.push(tok);
                }
                continue;
            }
        } else {
            None
        };
        match flag {
            Some((a, Some(v))) if switch(a) => match v {
                v if is_true(v) => {
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
            // `-e=A=1`: pflag's value is `A=1`.
            Some((a, Some(v))) if !t.starts_with("--") => {
                out.push(format!("-{}", a.get_short().unwrap_or_default()).into());
                out.push(v.into());
            }
            Some(_) => out.push(tok),
            None if t.starts_with("--") && trailing(cur) => {
                return Err(format!(
                    "unknown flag: {}",
                    t.split('=').next().unwrap_or(&t)
                ));
            }
            None if t.starts_with('-') => out.push(tok),
            None => {
                out.push(tok);
                if let Some(sub) = cur.find_subcommand(&t) {
                    let mut sub = sub.clone();
                    sub.build();
                    entered = Some(sub);
                } else if trailing(cur) {
                    // `run IMAGE CMD...`: the rest is the container's.
                    verbatim = true;
                }
            }
        }
    }
    Ok(out)
}

fn real_main() -> anyhow::Result<()> {
    let argv = pflag_bools(
        <cli::Cli as clap::CommandFactory>::command(),
        std::env::args_os().collect(),
    )
    .map_err(|msg| StatusError { code: 125, msg })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &str) -> Result<String, String> {
        let v = std::iter::once("berth")
            .chain(args.split(' '))
            .map(OsString::from)
            .collect();
        let out = pflag_bools(<cli::Cli as clap::CommandFactory>::command(), v)?;
        Ok(out[1..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// `berth CMD --help` prints CMD's help for every command and
    /// subcommand, through the same pre-pass and parser as a real call.
    #[test]
    fn every_command_answers_help() {
        fn paths(c: &clap::Command, prefix: &mut Vec<String>, all: &mut Vec<Vec<String>>) {
            for sub in c.get_subcommands() {
                prefix.push(sub.get_name().to_string());
                all.push(prefix.clone());
                paths(sub, prefix, all);
                prefix.pop();
            }
        }
        let mut all = Vec::new();
        paths(
            &<cli::Cli as clap::CommandFactory>::command(),
            &mut Vec::new(),
            &mut all,
        );
        assert!(all.len() > 60, "only {} commands found", all.len());
        for path in all {
            let line = format!("{} --help", path.join(" "));
            let v = argv(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let parsed = cli::Cli::try_parse_from(std::iter::once("berth").chain(v.split(' ')));
            let kind = parsed.map(|_| "parsed").map_err(|e| e.kind());
            assert_eq!(kind, Err(clap::error::ErrorKind::DisplayHelp), "{line}");
        }
    }

    #[test]
    fn pflag_forms_become_clap_forms() {
        assert_eq!(
            argv("run --rm=false -d=true -it=false -eA=1 -e=B=2 -ip8080 busybox sh --rm=false"),
            Ok("run -d -i -e A=1 -e B=2 -i -p 8080 busybox sh --rm=false".into())
        );
        assert_eq!(
            argv("-H unix:///x ps -a=true -q=false -n=2"),
            Ok("-H unix:///x ps -a -n 2".into())
        );
        assert_eq!(
            argv("exec -e X g-run true"),
            Ok("exec -e X g-run true".into())
        );
        assert_eq!(
            argv("run --nosuch busybox"),
            Err("unknown flag: --nosuch".into())
        );
        assert_eq!(
            argv("create -x busybox"),
            Err("unknown shorthand flag: 'x' in -x".into())
        );
        // Every command answers -h/--help (clap's own flag, not in the tree
        // before it is built); run's -h stays the hostname.
        assert_eq!(argv("exec --help"), Ok("exec --help".into()));
        assert_eq!(argv("top -h"), Ok("top -h".into()));
        assert_eq!(argv("run -h box busybox"), Ok("run -h box busybox".into()));
        // After `--` and after the image, everything is the container's.
        assert_eq!(argv("run -- -x"), Ok("run -- -x".into()));
    }
}
