//! Golden tests of the `berth` CLI: the same command through berth and
//! through Debian's docker client, against one private dockerd, compared
//! on stdout, stderr (where asked) and exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::peers::{Dockerd, DOCKER};
use crate::runtime::berth_binary;

/// Any one client call taking longer than this is a hang.
const CLIENT_TIMEOUT_SECS: &str = "120";

/// A finished command: what the comparison looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            code: o.status.code().unwrap_or(-1),
        }
    }
}

/// Both clients, pointed at one dockerd.
pub struct Clients<'a> {
    pub daemon: &'a Dockerd,
    pub berth: PathBuf,
    pub host: String,
    mismatches: Vec<String>,
    pub compared: usize,
}

impl<'a> Clients<'a> {
    pub fn new(daemon: &'a Dockerd) -> Clients<'a> {
        Clients {
            daemon,
            berth: berth_binary("berth"),
            host: format!("unix://{}", daemon.dir.path().join("docker.sock").display()),
            mismatches: Vec::new(),
            compared: 0,
        }
    }

    fn run(&self, program: &str, pre: &[String], args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut cmd = Command::new("timeout");
        cmd.args(["--kill-after=10", CLIENT_TIMEOUT_SECS, program])
            .args(pre)
            .args(args)
            // Neither client may pick up the host's daemon or config.
            .env_remove("DOCKER_HOST")
            .env_remove("BERTH_HOST")
            .env("TZ", "UTC")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("running {program}: {e}"));
        if let Some(input) = stdin {
            let mut w = child.stdin.take().expect("piped stdin");
            w.write_all(input).expect("writing the client's stdin");
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("waiting for {program}: {e}"))
            .into()
    }

    pub fn docker(&self, args: &[&str]) -> Run {
        self.docker_with_stdin(args, None)
    }

    pub fn docker_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let pre = vec![
            "--config".to_string(),
            self.daemon.dir.path().join("client").display().to_string(),
            "-H".to_string(),
            self.host.clone(),
        ];
        self.run(DOCKER, &pre, args, stdin)
    }

    pub fn berth(&self, args: &[&str]) -> Run {
        self.berth_with_stdin(args, None)
    }

    pub fn berth_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let pre = vec!["-H".to_string(), self.host.clone()];
        self.run(self.berth.to_str().expect("UTF-8 path"), &pre, args, stdin)
    }

    /// Runs `args` through both clients and records a mismatch of stdout
    /// or exit code (and of stderr when `stderr` is set, with `docker`
    /// read as `berth`). Times in tables move with the clock, so a
    /// mismatch is retried a few times before it counts.
    pub fn same(&mut self, args: &[&str], stderr: bool) {
        self.compared += 1;
        let mut last = None;
        for _ in 0..3 {
            let d = self.docker(args);
            let b = self.berth(args);
            if agree(&d, &b, stderr) {
                return;
            }
            last = Some((d, b));
        }
        let (d, b) = last.expect("at least one attempt");
        self.mismatches.push(format!(
            "`{}`:\n--- docker (exit {}):\n{}{}\n--- berth (exit {}):\n{}{}",
            args.join(" "),
            d.code,
            d.stdout,
            d.stderr,
            b.code,
            b.stdout,
            b.stderr
        ));
    }

    /// Records a mismatch found by a test's own check.
    pub fn mismatch(&mut self, what: String) {
        self.mismatches.push(what);
    }

    /// Every mismatch so far (empty when berth matched docker everywhere).
    pub fn mismatches(&self) -> &[String] {
        &self.mismatches
    }
}

/// Fails the test with every mismatch a comparison run recorded, or says
/// how many comparisons agreed. Called after the daemon has finished, with
/// what [`Clients::mismatches`] and [`Clients::compared`] held.
pub fn assert_agreed(mismatches: &[String], compared: usize) {
    assert!(
        mismatches.is_empty(),
        "{} of {compared} comparisons differ from docker:\n\n{}",
        mismatches.len(),
        mismatches.join("\n\n")
    );
    eprintln!("{compared} comparisons with docker agree");
}

fn agree(d: &Run, b: &Run, stderr: bool) -> bool {
    d.stdout == b.stdout
        && d.code == b.code
        && (!stderr || message(&d.stderr) == message(&b.stderr))
}

/// An error line without the client's own prefix: docker writes `Error: `
/// or `Error response from daemon: `, berth `berth: ` plus the daemon's
/// wording; the daemon's message itself must be the same.
fn message(stderr: &str) -> String {
    stderr
        .lines()
        .map(|l| {
            let l = l.strip_prefix("berth: ").unwrap_or(l);
            let l = l.strip_prefix("docker: ").unwrap_or(l);
            let l = l.strip_prefix("Error response from daemon: ").unwrap_or(l);
            l.strip_prefix("Error: ").unwrap_or(l).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
