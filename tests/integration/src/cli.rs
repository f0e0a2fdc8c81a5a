//! Golden tests of the `berth` CLI: the same command through berth and
//! through docker's client, against one private daemon (Debian's dockerd
//! with Debian's client, or a berthd with the newer client in PATH, as the
//! daemon tests drive it), compared on stdout, stderr (where asked) and
//! exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::daemon::Berthd;
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

/// Both clients, pointed at one daemon.
pub struct Clients {
    /// docker's client program.
    docker: &'static str,
    /// Its config directory (berth's reads none here).
    docker_config: PathBuf,
    pub berth: PathBuf,
    pub host: String,
    mismatches: Vec<String>,
    pub compared: usize,
}

impl Clients {
    /// Debian's client and berth against a private dockerd.
    pub fn new(daemon: &Dockerd) -> Clients {
        Clients::at(
            DOCKER,
            daemon.dir.path().join("client"),
            daemon.dir.path().join("docker.sock"),
        )
    }

    /// docker's client in PATH (the one [`Berthd::docker`] runs) and berth
    /// against a test berthd.
    pub fn for_berthd(daemon: &Berthd) -> Clients {
        Clients::at(
            "docker",
            daemon.dir.path().join("docker-config"),
            daemon.socket.clone(),
        )
    }

    fn at(docker: &'static str, docker_config: PathBuf, socket: PathBuf) -> Clients {
        Clients {
            docker,
            docker_config,
            berth: berth_binary("berth"),
            host: format!("unix://{}", socket.display()),
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

    /// `docker args` that must exit with `code` (setup and cleanup steps).
    pub fn docker_exits(&self, code: i32, args: &[&str]) -> Run {
        let r = self.docker(args);
        assert_eq!(
            r.code,
            code,
            "`docker {}` failed: {}",
            args.join(" "),
            r.stderr
        );
        r
    }

    pub fn docker_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let pre = vec![
            "--config".to_string(),
            self.docker_config.display().to_string(),
            "-H".to_string(),
            self.host.clone(),
        ];
        self.run(self.docker, &pre, args, stdin)
    }

    pub fn berth(&self, args: &[&str]) -> Run {
        self.berth_with_stdin(args, None)
    }

    pub fn berth_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let pre = vec!["-H".to_string(), self.host.clone()];
        self.run(self.berth.to_str().expect("UTF-8 path"), &pre, args, stdin)
    }

    /// berth (or docker) pointed at the daemon, not yet given its command:
    /// for tests that signal or watch the client process itself.
    pub fn client_command(&self, berth: bool) -> Command {
        let mut cmd = if berth {
            Command::new(&self.berth)
        } else {
            let mut cmd = Command::new(self.docker);
            cmd.arg("--config").arg(&self.docker_config);
            cmd
        };
        cmd.args(["-H", &self.host])
            .env_remove("DOCKER_HOST")
            .env_remove("BERTH_HOST")
            .env("TZ", "UTC");
        cmd
    }

    /// What a terminal shows once `args` has run through berth (or docker)
    /// in tmux: the final screen, ending in `EXITED-<code>`, blank lines
    /// dropped.
    pub fn terminal_screen(&self, tmux: &Tmux, berth: bool, args: &[&str]) -> String {
        let mut line = if berth {
            format!("{} -H {}", self.berth.display(), self.host)
        } else {
            format!(
                "{} --config {} -H {}",
                self.docker,
                self.docker_config.display(),
                self.host
            )
        };
        for a in args {
            line.push_str(&format!(" '{}'", a.replace('\'', r"'\''")));
        }
        tmux.session(100, &line);
        tmux.expect("EXITED-");
        tmux.screen()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("{}\n", l.trim_end()))
            .collect()
    }

    /// Runs `args` through both clients and records a mismatch of stdout
    /// or exit code (and of stderr when `stderr` is set, with `docker`
    /// read as `berth`). Times in tables move with the clock, so a
    /// mismatch is retried a few times before it counts.
    pub fn same(&mut self, args: &[&str], stderr: bool) {
        self.compared += 1;
        let mut last = None;
        // docker's image table walks a Go map of each image's repositories,
        // so an image tagged in two repositories lists them in either
        // order, run to run: its rows are compared as a set.
        let rows_unordered = matches!(args, ["images", ..] | ["image", "ls", ..]);
        for _ in 0..3 {
            let d = self.docker(args);
            let b = self.berth(args);
            if agree(&d, &b, stderr) || (rows_unordered && agree_unordered(&d, &b)) {
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

/// The same exit code and the same stdout lines, in any order.
fn agree_unordered(d: &Run, b: &Run) -> bool {
    fn sorted(s: &str) -> Vec<&str> {
        let mut lines: Vec<&str> = s.lines().collect();
        lines.sort_unstable();
        lines
    }
    d.code == b.code && sorted(&d.stdout) == sorted(&b.stdout)
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

/// A tmux server of its own (a real terminal for a client), killed when
/// the test ends however it ends. Its one window is named `t`.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A server named after `name` and this process.
    pub fn new(name: &str) -> Tmux {
        Tmux {
            socket: format!("berth-it-{name}-{}", std::process::id()),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("running tmux")
    }

    /// (Re)starts window `t`, WIDTH columns by 30 lines, running `cmd`
    /// in a shell that then prints `EXITED-<code>` and stays a while.
    pub fn session(&self, width: u16, cmd: &str) {
        // Killing the server's last session makes it exit, and a
        // `new-session` that reaches it while it exits fails with "server
        // exited unexpectedly". A session that idles for the server's life
        // (it fails harmlessly once it exists) keeps the server up.
        let _ = self.cmd(&["new-session", "-d", "-s", "idle", "sleep 86400"]);
        let _ = self.cmd(&["kill-session", "-t", "t"]);
        let out = self.cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            "30",
            &format!("{cmd}; echo EXITED-$?; sleep 120"),
        ]);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// Waits up to 20 s for `text` on the screen.
    pub fn expect(&self, text: &str) {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(20) {
            if self.screen().contains(text) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{text:?} did not appear; the screen:\n{}", self.screen());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}
