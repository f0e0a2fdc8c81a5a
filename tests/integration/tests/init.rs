//! `docker run --init` through berthd: berth-init (built beside berthd) is
//! bind-mounted at /sbin/docker-init and runs the command as its child.
//! Each check has a control without the init where the difference shows,
//! so the test cannot pass without the init doing its work.

use std::time::{Duration, Instant};

use berth_integration::daemon::{has_docker, Berthd};
use berth_integration::runtime::berth_binary;
use berth_integration::{eventually, require_root, text};

/// Whether any process in container `name` is a zombie (state Z).
fn zombies(d: &Berthd, name: &str) -> Vec<String> {
    let stats = d.docker_ok(&["exec", name, "sh", "-c", "cat /proc/[0-9]*/stat"]);
    stats
        .lines()
        .filter(|l| {
            l.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .map(String::from)
        .collect()
}

#[test]
fn init_is_pid_1_forwards_signals_and_reaps() {
    if !require_root() || !has_docker() {
        return;
    }
    berth_binary("berth-init");
    let d = Berthd::with_busybox(&[]);

    // PID 1 is the init, the command its child.
    let ps = d.docker_ok(&["run", "--rm", "--init", "bb:1", "ps"]);
    let pid1 = ps
        .lines()
        .find(|l| l.split_whitespace().next() == Some("1"))
        .unwrap_or_else(|| panic!("no PID 1 in:\n{ps}"));
    assert!(pid1.ends_with("/sbin/docker-init -- ps"), "{ps}");
    let ids = d.docker_ok(&["run", "--rm", "--init", "bb:1", "sh", "-c", "echo $$ $PPID"]);
    let (pid, ppid) = ids.trim().split_once(' ').unwrap();
    assert_ne!(pid, "1", "{ids}");
    assert_eq!(ppid, "1", "{ids}");
    let ids = d.docker_ok(&["run", "--rm", "bb:1", "sh", "-c", "echo $$ $PPID"]);
    assert_eq!(ids.trim(), "1 0", "without --init the command is PID 1");

    // Exit codes pass through; a signal's death is 128 + N.
    let out = d.docker(&["run", "--rm", "--init", "bb:1", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let out = d.docker(&["run", "--rm", "--init", "bb:1", "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));

    // Orphans are reaped. The command execs a sleep that never waits, so
    // without an init the orphaned child stays a zombie under it.
    for (name, init) in [("reaped", true), ("control", false)] {
        let mut args = vec!["run", "-d", "--name", name];
        if init {
            args.push("--init");
        }
        args.extend(["bb:1", "sh", "-c", "(sleep 0.2 &); exec sleep 60"]);
        d.docker_ok(&args);
    }
    eventually(10, "the control's orphan is a zombie", || {
        !zombies(&d, "control").is_empty()
    });
    assert_eq!(zombies(&d, "reaped"), Vec::<String>::new());

    // docker stop's SIGTERM reaches a shell that is not PID 1 (and so
    // dies of it) at once; as PID 1 the shell ignores it until the timeout.
    let loop_cmd = "while :; do sleep 1; done";
    d.docker_ok(&[
        "run", "-d", "--init", "--name", "looper", "bb:1", "sh", "-c", loop_cmd,
    ]);
    let started = Instant::now();
    d.docker_ok(&["stop", "-t", "30", "looper"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        started.elapsed()
    );
    let inspect = d.inspect("looper");
    assert_eq!(inspect["State"]["ExitCode"], 143, "{inspect}");
    assert_eq!(inspect["HostConfig"]["Init"], true);
    // Inspect shows the command, not the init.
    assert_eq!(inspect["Path"], "sh");
    d.docker_ok(&[
        "run", "-d", "--name", "stubborn", "bb:1", "sh", "-c", loop_cmd,
    ]);
    let started = Instant::now();
    d.docker_ok(&["stop", "-t", "2", "stubborn"]);
    assert!(started.elapsed() >= Duration::from_secs(2));

    for name in ["reaped", "control", "looper", "stubborn"] {
        d.docker_ok(&["rm", "-f", name]);
    }
    d.stop();
}

#[test]
fn the_daemon_default_and_a_missing_init() {
    if !require_root() || !has_docker() {
        return;
    }
    let init = berth_binary("berth-init");
    // `--init` makes it the default; --init-path names the binary.
    let d = Berthd::with_busybox(&["--init", "--init-path", init.to_str().unwrap()]);
    let ids = d.docker_ok(&["run", "--rm", "bb:1", "sh", "-c", "echo $PPID"]);
    assert_eq!(ids.trim(), "1", "the daemon's default init is PID 1");
    let ids = d.docker_ok(&[
        "run",
        "--rm",
        "--init=false",
        "bb:1",
        "sh",
        "-c",
        "echo $PPID",
    ]);
    assert_eq!(ids.trim(), "0", "--init=false wins over the default");
    // No init without a PID namespace of the container's own.
    let out = d.docker_ok(&[
        "run", "--rm", "--pid", "host", "bb:1", "sh", "-c", "echo $$",
    ]);
    assert_ne!(out.trim(), "1");
    let info = d.docker_ok(&["info", "--format", "{{.InitBinary}}"]);
    assert_eq!(info.trim(), init.to_str().unwrap());
    d.stop();

    let d = Berthd::with_busybox(&["--init-path", "/nonexistent/berth-init"]);
    let out = d.docker(&["run", "--rm", "--init", "bb:1", "true"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("/nonexistent/berth-init") && err.contains("init-path"),
        "{err}"
    );
    // Containers without --init are not affected.
    d.docker_ok(&["run", "--rm", "bb:1", "true"]);
    assert_eq!(
        d.docker_ok(&["ps", "-aq"]),
        "",
        "--rm removed the failed one"
    );
    d.stop();
}
