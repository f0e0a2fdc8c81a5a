//! `berth login`/`logout` and authenticated `push`/`pull` through a real
//! berthd and a loopback docker-registry with htpasswd auth, with docker's
//! own client as the oracle: each step runs through both clients (each
//! with its own config directory) and must give the same stdout, exit code
//! and message, and the same config.json. Needs `cargo build --release -p
//! berthd -p berth -p berth-runtime` first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_integration::cli::Tmux;
use berth_integration::daemon::{Berthd, LoopbackRegistry};
use berth_integration::peers::DOCKER;
use berth_integration::runtime::berth_binary;

#[derive(Debug)]
struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

fn client(program: &Path, d: &Berthd, config: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new("timeout")
        .args(["--kill-after=10", "120"])
        .arg(program)
        .arg("--config")
        .arg(config)
        .args(["-H", &format!("unix://{}", d.socket.display())])
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the client");
    // Not a terminal: docker's non-interactive paths.
    let mut w = child.stdin.take().expect("piped stdin");
    w.write_all(stdin).expect("writing stdin");
    drop(w);
    let o = child.wait_with_output().expect("waiting for the client");
    Run {
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        code: o.status.code().unwrap_or(-1),
    }
}

/// stderr with each client's own prefix and name taken out, and each
/// client's config dir named alike.
fn message(r: &Run, config: &Path) -> String {
    r.stderr
        .lines()
        .map(|l| {
            let l = l.strip_prefix("berth: ").unwrap_or(l);
            let l = l.strip_prefix("Error response from daemon: ").unwrap_or(l);
            l.replace(&config.display().to_string(), "CONFIG")
                .replace("docker", "berth")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

struct Pair<'a> {
    d: &'a Berthd,
    berth: PathBuf,
    docker_cfg: PathBuf,
    berth_cfg: PathBuf,
    mismatches: Vec<String>,
}

impl Pair<'_> {
    /// Runs `args` through docker then berth; records any difference and
    /// returns berth's run.
    fn same(&mut self, args: &[&str], stdin: &[u8]) -> Run {
        let dk = client(Path::new(DOCKER), self.d, &self.docker_cfg, args, stdin);
        let b = client(&self.berth, self.d, &self.berth_cfg, args, stdin);
        if dk.stdout != b.stdout
            || dk.code != b.code
            || message(&dk, &self.docker_cfg) != message(&b, &self.berth_cfg)
        {
            self.mismatches.push(format!(
                "`{}`:\n--- docker (exit {}):\n{}{}\n--- berth (exit {}):\n{}{}",
                args.join(" "),
                dk.code,
                dk.stdout,
                dk.stderr,
                b.code,
                b.stdout,
                b.stderr
            ));
        }
        b
    }

    fn config(&self, dir: &Path) -> String {
        std::fs::read_to_string(dir.join("config.json")).unwrap_or_default()
    }
}

#[test]
fn login_push_pull_logout_against_an_htpasswd_registry() {
    let Some(reg) = LoopbackRegistry::with_htpasswd("alice", "wonderland") else {
        return;
    };
    let d = Berthd::with_busybox(&[]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut p = Pair {
        d: &d,
        berth: berth_binary("berth"),
        docker_cfg: tmp.path().join("docker"),
        berth_cfg: tmp.path().join("berth"),
        mismatches: Vec::new(),
    };
    let r = reg.addr.to_string();
    let image = format!("{r}/bb:1");
    d.docker_ok(&["tag", "bb:1", &image]);

    // Anonymous: the registry refuses.
    let b = p.same(&["push", &image], b"");
    assert_eq!(b.code, 1, "{b:?}");
    assert!(b.stderr.contains("unauthorized"), "{b:?}");
    // Wrong password: the daemon's refusal, exit 1, nothing stored.
    let b = p.same(&["login", "-u", "alice", "-p", "nope", &r], b"");
    assert_eq!(b.code, 1, "{b:?}");
    assert!(b.stderr.contains("refused"), "{b:?}");
    assert!(!p.berth_cfg.join("config.json").exists());
    // Usage errors and the non-interactive refusal.
    for args in [
        &["login", "-u", "alice", "-p", "x", "--password-stdin", &r][..],
        &["login", "--password-stdin", &r],
        &["login", &r],
        &["login", "-u", "alice", &r],
    ] {
        let b = p.same(args, b"");
        assert_eq!(b.code, 1, "{args:?}: {b:?}");
    }
    // On a terminal: prompts, the password not echoed.
    if berth_integration::peers::ensure_installed("/usr/bin/tmux", "tmux").is_ok() {
        let tmux = Tmux::new("login");
        tmux.session(
            150,
            &format!(
                "{} --config {} -H unix://{} login {r}",
                p.berth.display(),
                tmp.path().join("tty").display(),
                d.socket.display()
            ),
        );
        tmux.expect("Username:");
        tmux.cmd(&["send-keys", "-t", "t", "alice", "Enter"]);
        tmux.expect("Password:");
        tmux.cmd(&["send-keys", "-t", "t", "wonderland", "Enter"]);
        tmux.expect("EXITED-0");
        let screen = tmux.screen();
        assert!(screen.contains("Login Succeeded"), "{screen}");
        assert!(
            !screen.contains("wonderland"),
            "the password was echoed: {screen}"
        );
        let cfg = std::fs::read_to_string(tmp.path().join("tty/config.json")).expect("stored");
        assert!(cfg.contains("YWxpY2U6d29uZGVybGFuZA=="), "{cfg}");
    } else {
        eprintln!("skipped the terminal login: no tmux");
    }

    // The right password from stdin: stored, with docker's warning.
    let b = p.same(
        &["login", "-u", "alice", "--password-stdin", &r],
        b"wonderland\n",
    );
    assert_eq!(b.stdout, "Login Succeeded\n", "{b:?}");
    assert!(b.stderr.contains("stored unencrypted"), "{b:?}");
    let cfg = p.config(&p.berth_cfg);
    assert_eq!(cfg, p.config(&p.docker_cfg));
    let v: serde_json::Value = serde_json::from_str(&cfg).expect("config.json is JSON");
    assert_eq!(v["auths"][&r]["auth"], "YWxpY2U6d29uZGVybGFuZA==");
    let mode = std::fs::metadata(p.berth_cfg.join("config.json"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .expect("config.json");
    assert_eq!(mode, 0o600);
    // Again with -p, then with the stored ones.
    p.same(&["login", "-u", "alice", "-p", "wonderland", &r], b"");
    let b = p.same(&["login", &r], b"");
    assert_eq!(b.code, 0, "{b:?}");
    assert!(b.stdout.contains("existing credentials"), "{b:?}");

    // Push and pull through the registry with the stored credentials.
    let b = client(&p.berth, &d, &p.berth_cfg, &["push", &image], b"");
    assert_eq!(b.code, 0, "{b:?}");
    assert!(b.stdout.contains("digest: sha256:"), "{b:?}");
    p.same(&["push", &image], b"");
    d.docker_ok(&["rmi", &image]);
    let b = client(&p.berth, &d, &p.berth_cfg, &["pull", &image], b"");
    assert_eq!(b.code, 0, "{b:?}");
    assert!(b.stdout.contains("Downloaded newer image"), "{b:?}");
    d.docker_ok(&["rmi", &image]);
    // run pulls the missing image with them too.
    let b = client(
        &p.berth,
        &d,
        &p.berth_cfg,
        &["run", "--rm", &image, "true"],
        b"",
    );
    assert_eq!(b.code, 0, "{b:?}");

    // Other keys of the file survive a logout.
    let path = p.berth_cfg.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&p.config(&p.berth_cfg)).expect("config.json");
    v["psFormat"] = "table {{.ID}}".into();
    std::fs::write(&path, v.to_string()).expect("config.json");
    let b = p.same(&["logout", &r], b"");
    assert_eq!(b.stdout, format!("Removing login credentials for {r}\n"));
    let v: serde_json::Value = serde_json::from_str(&p.config(&p.berth_cfg)).expect("JSON");
    assert_eq!(v["psFormat"], "table {{.ID}}");
    assert_eq!(v["auths"], serde_json::json!({}));
    p.same(&["logout", &r], b"");
    p.same(&["logout"], b"");

    // Logged out: unauthorized again.
    d.docker_ok(&["rmi", &image]);
    let b = p.same(&["pull", &image], b"");
    assert_eq!(b.code, 1, "{b:?}");
    assert!(b.stderr.contains("unauthorized"), "{b:?}");

    // A configured helper that is missing is named.
    std::fs::write(&path, r#"{"credsStore":"berth-absent"}"#).expect("config.json");
    let b = client(
        &p.berth,
        &d,
        &p.berth_cfg,
        &["login", "-u", "alice", "-p", "wonderland", &r],
        b"",
    );
    assert_eq!(b.code, 1, "{b:?}");
    assert!(b.stderr.contains("docker-credential-berth-absent"), "{b:?}");

    let mismatches = std::mem::take(&mut p.mismatches);
    drop(reg);
    d.stop();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}
