#![forbid(unsafe_code)]
//! `berth-dns`: serves the network configs in one directory.
//!
//! `berth-dns --config-dir DIR [--log-level LEVEL] [--foreground]`
//!
//! berthd starts it through `berth_dns::notify`. The process forks: the
//! parent (the launcher) waits until the child serves, prints the child's
//! pid and exits 0 (or prints `berth-dns: <why>` on stderr and exits 1; 3
//! when another server holds DIR; 0 with a message when DIR has no
//! network config, as nothing is to be served). The child leaves the
//! caller's session, takes stdin from /dev/null, writes its log to
//! `DIR/berth-dns.log`, is reparented away from its caller, and serves
//! until SIGTERM or until a SIGHUP finds no config left. With
//! `--foreground` it serves in the calling process, logging to stderr.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_dns::server::{self, Start};

const USAGE: &str =
    "usage: berth-dns --config-dir DIR [--log-level error|warn|info|debug|trace] [--foreground]";
/// How long the launcher waits for the server to report.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// The exit code of a usage error.
const EXIT_USAGE: i32 = 2;

#[derive(Debug)]
struct Args {
    dir: PathBuf,
    level: tracing::Level,
    foreground: bool,
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
    let mut dir = None;
    let mut level = tracing::Level::INFO;
    let mut foreground = false;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("unknown argument {a:?}"))?;
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(OsString::from(v))),
            _ => (arg, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--config-dir" => dir = Some(PathBuf::from(value("--config-dir")?)),
            "--log-level" => {
                let v = value("--log-level")?;
                level = v.to_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
                    format!("--log-level {v:?}: use error, warn, info, debug or trace")
                })?;
            }
            "--foreground" => foreground = true,
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    let dir = dir.ok_or("--config-dir is required")?;
    // The server changes to / once detached: keep the directory's full path.
    let dir = std::path::absolute(&dir).map_err(|e| format!("--config-dir {dir:?}: {e}"))?;
    Ok(Args {
        dir,
        level,
        foreground,
    })
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-dns: {e}\n{USAGE}");
            std::process::exit(EXIT_USAGE);
        }
    };
    if let Err(e) = server::block_signals() {
        eprintln!("berth-dns: blocking signals: {e}");
        std::process::exit(1);
    }
    let code = if args.foreground {
        init_logging(args.level);
        server::run(&args.dir, |s| match s {
            Start::Serving => {}
            other => eprintln!("berth-dns: {}", describe(other, &args.dir)),
        })
    } else {
        launch(&args)
    };
    std::process::exit(code);
}

fn init_logging(level: tracing::Level) {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
}

fn describe(s: &Start, dir: &Path) -> String {
    match s {
        Start::Serving => format!("serving {dir:?}"),
        Start::Nothing => format!("no network config in {dir:?}; nothing to serve"),
        Start::Busy => format!("another berth-dns serves {dir:?}"),
        Start::Failed(why) => why.clone(),
    }
}

/// Forks the server off and reports how its start went.
fn launch(args: &Args) -> i32 {
    // Descriptors the caller leaked to us are not the server's to keep open.
    let _ = berth_sys::process::close_range(3, false);
    let (r, w) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth-dns: creating a pipe: {e}");
            return 1;
        }
    };
    // Single-threaded here: forking is safe.
    match berth_sys::process::clone3(berth_sys::process::CloneArgs::default()) {
        Err(e) => {
            eprintln!("berth-dns: forking the server: {e}");
            1
        }
        Ok(berth_sys::process::Forked::Parent { child }) => {
            drop(w);
            wait_ready(r, child, &args.dir)
        }
        Ok(berth_sys::process::Forked::Child) => {
            drop(r);
            daemon(args, w)
        }
    }
}

/// The launcher: waits for the server's one status message.
fn wait_ready(r: OwnedFd, child: i32, dir: &Path) -> i32 {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let log = dir.join(berth_dns::LOG_FILE);
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut status = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            if let Some(pid) = rustix::process::Pid::from_raw(child) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            eprintln!(
                "berth-dns: the server did not report within {}s (killed); see {log:?}",
                READY_TIMEOUT.as_secs()
            );
            return 1;
        }
        let ts = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let mut fds = [PollFd::new(&r, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                eprintln!("berth-dns: waiting for the server: {e}");
                return 1;
            }
        }
        if fds[0].revents().is_empty() {
            continue;
        }
        match rustix::io::read(&r, &mut chunk) {
            Ok(0) => break,
            Ok(n) if status.len() < 4096 => status.extend_from_slice(&chunk[..n]),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
    }
    let start = match status.split_first() {
        Some((b'R', _)) => {
            println!("{child}");
            return 0;
        }
        Some((b'N', _)) => Start::Nothing,
        Some((b'B', _)) => Start::Busy,
        Some((b'E', msg)) => Start::Failed(String::from_utf8_lossy(msg).into_owned()),
        _ => Start::Failed(format!(
            "the server exited before it was ready; see {log:?}"
        )),
    };
    eprintln!("berth-dns: {}", describe(&start, dir));
    match start {
        Start::Nothing => 0,
        Start::Busy => berth_dns::EXIT_BUSY,
        _ => 1,
    }
}

/// The server's side of the fork: detach, then serve.
fn daemon(args: &Args, status: OwnedFd) -> i32 {
    let mut status = std::fs::File::from(status);
    if let Err(e) = detach(&args.dir) {
        let _ = status.write_all(format!("E{e}").as_bytes());
        return 1;
    }
    init_logging(args.level);
    tracing::info!(pid = std::process::id(), dir = ?args.dir, "berth-dns starting");
    server::run(&args.dir, move |s| {
        let msg = match s {
            Start::Serving => "R".to_string(),
            Start::Nothing => "N".to_string(),
            Start::Busy => "B".to_string(),
            Start::Failed(why) => format!("E{why}"),
        };
        if !matches!(s, Start::Serving) {
            tracing::info!("{}", describe(s, &args.dir));
        }
        let _ = status.write_all(msg.as_bytes());
        // `status` closes here: the launcher sees the end and exits.
    })
}

/// A session of our own (the caller's signals and terminal are not ours),
/// stdin from /dev/null, stdout and stderr to the log, cwd `/`.
fn detach(dir: &Path) -> Result<(), String> {
    berth_sys::process::setsid().map_err(|e| format!("setsid: {e}"))?;
    let log_path = dir.join(berth_dns::LOG_FILE);
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("opening /dev/null: {e}"))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| format!("opening the log {log_path:?}: {e}"))?;
    rustix::stdio::dup2_stdin(&null).map_err(|e| format!("redirecting stdin: {e}"))?;
    rustix::stdio::dup2_stdout(&log).map_err(|e| format!("redirecting stdout: {e}"))?;
    rustix::stdio::dup2_stderr(&log).map_err(|e| format!("redirecting stderr: {e}"))?;
    let _ = std::env::set_current_dir("/");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn command_line() {
        let a = parse(&["--config-dir", "/run/berth/dns"]).unwrap();
        assert_eq!(a.dir, Path::new("/run/berth/dns"));
        assert_eq!(a.level, tracing::Level::INFO);
        assert!(!a.foreground);
        let a = parse(&["--config-dir=/d", "--log-level", "debug", "--foreground"]).unwrap();
        assert_eq!(
            (a.dir.as_path(), a.level, a.foreground),
            (Path::new("/d"), tracing::Level::DEBUG, true)
        );
        assert!(parse(&["--config-dir", "rel"]).unwrap().dir.is_absolute());
        assert!(parse(&[]).unwrap_err().contains("--config-dir"));
        assert!(parse(&["--config-dir"])
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse(&["--config-dir", "/d", "--log-level", "loud"]).is_err());
        assert!(parse(&["--config-dir", "/d", "--bogus"]).is_err());
    }
}
