//! The command line. Hand-parsed: the shim stays small, and its only
//! caller is berthd.

use std::path::PathBuf;

use crate::error::{Error, Result};

pub const USAGE: &str =
    "usage: berth-shim --id ID --bundle DIR --state-dir DIR --socket PATH (--log PATH | --no-log) \
[--log-max-size BYTES] [--log-max-files N] [--runtime PATH] [--tty] [--stdin]";

/// What the daemon tells one shim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub id: String,
    pub bundle: PathBuf,
    /// The shim's own directory: the embedded runtime's state root
    /// (`runtime/`), the console socket, `shim.log`.
    pub state_dir: PathBuf,
    /// The protocol socket; `exit.json` is written beside it.
    pub socket: PathBuf,
    /// The container's json-file log; `None` (`--no-log`) keeps none
    /// (docker's `none` log driver).
    pub log: Option<PathBuf>,
    /// Rotate the log when it would grow past this many bytes (0: never).
    pub log_max_size: u64,
    /// Keep at most this many log files, the live one included (docker's
    /// `max-file`, at least 1).
    pub log_max_files: u32,
    /// An external OCI runtime with runc's command line, instead of the
    /// embedded one.
    pub runtime: Option<PathBuf>,
    pub tty: bool,
    pub stdin: bool,
}

impl Config {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Config> {
        let mut id = None;
        let mut bundle = None;
        let mut state_dir = None;
        let mut socket = None;
        let mut log = None;
        let mut no_log = false;
        let mut log_max_size = 0;
        let mut log_max_files = 1;
        let mut runtime = None;
        let mut tty = false;
        let mut stdin = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| -> Result<String> {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| Error::Usage(format!("{name} needs a value")))
            };
            match flag.as_str() {
                "--id" => id = Some(value("--id")?),
                "--bundle" => bundle = Some(PathBuf::from(value("--bundle")?)),
                "--state-dir" => state_dir = Some(PathBuf::from(value("--state-dir")?)),
                "--socket" => socket = Some(PathBuf::from(value("--socket")?)),
                "--log" => log = Some(PathBuf::from(value("--log")?)),
                "--no-log" => no_log = true,
                "--log-max-size" => {
                    log_max_size = number(&value("--log-max-size")?, "--log-max-size")?
                }
                "--log-max-files" => {
                    log_max_files = number(&value("--log-max-files")?, "--log-max-files")?
                        .try_into()
                        .map_err(|_| Error::Usage("--log-max-files is too large".into()))?
                }
                "--runtime" => runtime = Some(PathBuf::from(value("--runtime")?)),
                "--tty" => tty = true,
                "--stdin" => stdin = true,
                other => return Err(Error::Usage(format!("unknown argument {other:?}"))),
            }
        }
        let log = match (log, no_log) {
            (Some(_), true) => {
                return Err(Error::Usage("--log and --no-log exclude each other".into()))
            }
            (log, true) => log,
            (log, false) => Some(need(log, "--log (or --no-log)")?),
        };
        let cfg = Config {
            id: need(id, "--id")?,
            bundle: need(bundle, "--bundle")?,
            state_dir: need(state_dir, "--state-dir")?,
            socket: need(socket, "--socket")?,
            log,
            log_max_size,
            log_max_files: log_max_files.max(1),
            runtime,
            tty,
            stdin,
        };
        berth_container::state::check_id(&cfg.id)
            .map_err(|e| Error::Usage(format!("--id: {e}")))?;
        Ok(cfg)
    }
}

fn need<T>(v: Option<T>, name: &str) -> Result<T> {
    v.ok_or_else(|| Error::Usage(format!("{name} is required")))
}

fn number(s: &str, name: &str) -> Result<u64> {
    s.parse()
        .map_err(|_| Error::Usage(format!("{name} {s:?} is not a number of bytes or files")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_every_flag() {
        let c = Config::parse(args(
            "--id c1 --bundle /b --state-dir /s --socket /s/shim.sock --log /l/json.log \
             --log-max-size=1000 --log-max-files 3 --runtime /usr/bin/runc --tty --stdin",
        ))
        .unwrap();
        assert_eq!(c.id, "c1");
        assert_eq!((c.log_max_size, c.log_max_files), (1000, 3));
        assert_eq!(
            c.runtime.as_deref(),
            Some(std::path::Path::new("/usr/bin/runc"))
        );
        assert!(c.tty && c.stdin);
        let none = Config::parse(args(
            "--id c1 --bundle /b --state-dir /s --socket /x --no-log",
        ))
        .unwrap();
        assert_eq!(none.log, None);
    }

    #[test]
    fn refuses_missing_and_unknown_flags() {
        assert!(Config::parse(args("--id c1")).is_err());
        assert!(Config::parse(args(
            "--id c1 --bundle /b --state-dir /s --socket /x --log /l --bogus"
        ))
        .is_err());
        assert!(Config::parse(args(
            "--id ../x --bundle /b --state-dir /s --socket /x --log /l"
        ))
        .is_err());
        assert!(Config::parse(args(
            "--id c1 --bundle /b --state-dir /s --socket /x --log /l --log-max-size lots"
        ))
        .is_err());
        assert!(Config::parse(args(
            "--id c1 --bundle /b --state-dir /s --socket /x --log /l --no-log"
        ))
        .is_err());
    }
}
