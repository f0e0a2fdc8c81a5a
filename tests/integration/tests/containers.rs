//! Containers through berthd, driven by the real docker CLI: run (attached,
//! detached, --rm), ps, logs, exec, inspect, top, stats, stop, kill, wait,
//! rm, restart policies, and live restore after `kill -9` of the daemon.
//! Each test ends with `Berthd::stop`, which checks that no shim, mount or
//! container cgroup is left.

use std::time::{Duration, Instant};

use berth_integration::daemon::{has_docker, Berthd};
use berth_integration::{eventually, require_root, text};

#[test]
fn run_attached_and_removed() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let out = d.docker(&["run", "--rm", "bb:1", "echo", "hello from berth"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), d.log());
    assert_eq!(text(&out.stdout), "hello from berth\n");
    // stderr is its own stream, the exit code is the container's.
    let out = d.docker(&[
        "run",
        "--rm",
        "bb:1",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err"), "{}", text(&out.stderr));
    // stdin reaches the container with -i.
    let out = d.sh_ok("echo piped | docker run --rm -i bb:1 cat");
    assert_eq!(out, "piped\n");
    // --device: the node and its cgroup permission (write to the kernel
    // log, which needs no capability); without it, there is no node.
    let out = d.sh_ok("docker run --rm --device /dev/kmsg:/dev/berth-kmsg bb:1 sh -c 'echo berth-device-test > /dev/berth-kmsg && echo wrote'");
    assert_eq!(out, "wrote\n");
    let out = d.docker(&["run", "--rm", "bb:1", "test", "-e", "/dev/berth-kmsg"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // --rm removed them all.
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
    // A missing command is docker's 127, an unexecutable one 126.
    let out = d.docker(&["run", "--rm", "bb:1", "/no/such/binary"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    let out = d.docker(&["run", "--rm", "bb:1", "/etc"]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    // A missing image is a 404 (the CLI then tries to pull it).
    let out = d.docker(&["create", "nope:1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Unable to find image 'nope:1' locally"),
        "{}",
        text(&out.stderr)
    );
    let (status, body) = d.api("POST", "/containers/create", Some(br#"{"Image":"nope:1"}"#));
    assert_eq!(status, 404, "{}", text(&body));
    assert!(
        text(&body).contains("No such image: nope:1"),
        "{}",
        text(&body)
    );
    for id in d.docker_ok(&["ps", "-aq"]).lines() {
        d.docker_ok(&["rm", "-f", id]);
    }
    d.stop();
}

#[test]
fn detached_lifecycle() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--label",
        "tier=front",
        "-e",
        "GREETING=hi",
        "bb:1",
        "sh",
        "-c",
        "echo started; echo $GREETING; exec sleep 1000",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}} {{.Labels}}"]);
    assert!(ps.starts_with("web Up"), "{ps}");
    assert!(ps.contains("tier=front"), "{ps}");
    eventually(10, "the container's output in its log", || {
        d.docker_ok(&["logs", "web"]) == "started\nhi\n"
    });
    let v = d.inspect("web");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["Name"], "/web");
    assert_eq!(v["State"]["Status"], "running");
    assert!(v["State"]["Pid"].as_i64().unwrap() > 0);
    assert!(v["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "GREETING=hi"));
    // exec joins it.
    assert_eq!(
        d.docker_ok(&["exec", "web", "echo", "in", "there"]),
        "in there\n"
    );
    let out = d.docker(&["exec", "web", "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4));
    let out = d.docker(&["exec", "web", "/no/such/tool"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    // A detached exec runs on its own.
    d.docker_ok(&["exec", "-d", "web", "sh", "-c", "echo detached > /tmp/mark"]);
    eventually(10, "the detached exec's file", || {
        d.docker(&["exec", "web", "cat", "/tmp/mark"]).stdout == b"detached\n"
    });
    // top lists its processes.
    let top = d.docker_ok(&["top", "web"]);
    assert!(top.contains("sleep 1000"), "{top}");
    // One stats sample with real numbers.
    let stats = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "web",
    ]);
    assert!(stats.starts_with("web "), "{stats}");
    // The image of a running container cannot go, not even forced.
    let out = d.docker(&["rmi", "-f", "bb:1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("(cannot be forced) - image is being used by running container"),
        "{}",
        text(&out.stderr)
    );
    let info = d.docker_ok(&["info", "--format", "{{.Containers}} {{.ContainersRunning}}"]);
    assert_eq!(info.trim(), "1 1");
    // Name lookup by prefix of the id works like docker.
    assert_eq!(d.inspect(&id[..10])["Name"], "/web");
    // pause/unpause through the freezer.
    d.docker_ok(&["pause", "web"]);
    assert_eq!(d.inspect("web")["State"]["Status"], "paused");
    d.docker_ok(&["unpause", "web"]);
    assert_eq!(d.inspect("web")["State"]["Status"], "running");
    // A running container cannot be removed without -f.
    let out = d.docker(&["rm", "web"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot remove a running container"),
        "{}",
        text(&out.stderr)
    );
    // rename, then stop: sleep as pid 1 ignores SIGTERM, so SIGKILL after 1s.
    d.docker_ok(&["rename", "web", "web2"]);
    let started = Instant::now();
    d.docker_ok(&["stop", "-t", "1", "web2"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    let v = d.inspect("web2");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 137);
    assert_eq!(d.docker_ok(&["wait", "web2"]).trim(), "137");
    // Start again: the same container runs and logs append.
    d.docker_ok(&["start", "web2"]);
    eventually(10, "the second run's output", || {
        d.docker_ok(&["logs", "web2"]) == "started\nhi\nstarted\nhi\n"
    });
    d.docker_ok(&["kill", "web2"]);
    eventually(10, "the kill to land", || {
        d.inspect("web2")["State"]["Status"] == "exited"
    });
    // A stopped container's image needs force, and then only loses its name.
    let out = d.docker(&["rmi", "bb:1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is using its referenced image"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker_ok(&["image", "prune", "-af"]);
    assert!(!out.contains("Deleted"), "{out}");
    d.docker_ok(&["rm", "web2"]);
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
    d.stop();
}

#[test]
fn restart_policy_and_live_restore() {
    if !require_root() || !has_docker() {
        return;
    }
    let mut d = Berthd::with_busybox(&[]);
    // on-failure:2 restarts a failing container twice, then leaves it.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "bb:1",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    eventually(30, "two restarts", || {
        let v = d.inspect("flaky");
        v["State"]["Status"] == "exited" && v["RestartCount"] == 2
    });
    assert_eq!(d.docker_ok(&["logs", "flaky"]), "run\nrun\nrun\n");
    // A counter survives the daemon's death.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "bb:1",
        "sh",
        "-c",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    ]);
    eventually(10, "a few ticks", || {
        d.docker_ok(&["logs", "ticker"]).lines().count() >= 3
    });
    let pid_before = d.inspect("ticker")["State"]["Pid"].clone();
    // One that exits while the daemon is down shows its real exit code.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "brief",
        "bb:1",
        "sh",
        "-c",
        "sleep 2; exit 7",
    ]);
    d.crash();
    std::thread::sleep(Duration::from_secs(3));
    d.restart();
    let v = d.inspect("ticker");
    assert_eq!(v["State"]["Status"], "running", "{v}");
    assert_eq!(v["State"]["Pid"], pid_before);
    let before = d.docker_ok(&["logs", "ticker"]).lines().count();
    eventually(10, "ticks after the restart", || {
        d.docker_ok(&["logs", "ticker"]).lines().count() > before + 2
    });
    eventually(10, "brief's exit", || {
        d.inspect("brief")["State"]["Status"] == "exited"
    });
    assert_eq!(d.inspect("brief")["State"]["ExitCode"], 7);
    // exec and stop work on the restored container.
    assert_eq!(
        d.docker_ok(&["exec", "ticker", "echo", "still", "here"]),
        "still here\n"
    );
    d.docker_ok(&["stop", "-t", "1", "ticker"]);
    assert_eq!(d.inspect("ticker")["State"]["Status"], "exited");
    d.docker_ok(&["rm", "-f", "flaky", "ticker", "brief"]);
    d.stop();
}

/// `--pid container:<name>`: the joiner sees the other container's
/// processes in the other's PID namespace (debugging a running container
/// from a toolbox one); the other must exist at create and run at start.
#[test]
fn pid_namespace_of_another_container() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&["run", "-d", "--name", "app", "bb:1", "sleep", "600"]);
    let seen = d.docker_ok(&[
        "run",
        "--rm",
        "--pid",
        "container:app",
        "bb:1",
        "sh",
        "-c",
        "ps -o comm | grep -c '^sleep'; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert_eq!(seen, "1\nsleep 600 ", "app's sleep is pid 1 here");
    let ns = |c: &str, kind: &str| {
        d.docker_ok(&["exec", c, "readlink", &format!("/proc/self/ns/{kind}")])
    };
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "joiner",
        "--pid",
        "container:app",
        "bb:1",
        "sleep",
        "600",
    ]);
    assert_eq!(ns("app", "pid"), ns("joiner", "pid"));
    assert_ne!(ns("app", "mnt"), ns("joiner", "mnt"));
    assert_ne!(ns("app", "ipc"), ns("joiner", "ipc"));
    // A missing container fails the create (without a pull attempt); a
    // stopped one the start.
    let out = d.docker(&["run", "--rm", "--pid", "container:nosuch", "bb:1", "true"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("No such container: nosuch") && !err.contains("Unable to find image"),
        "{err}"
    );
    d.docker_ok(&["rm", "-f", "joiner"]);
    d.docker_ok(&["stop", "-t", "1", "app"]);
    let out = d.docker(&["run", "--rm", "--pid", "container:app", "bb:1", "true"]);
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot join PID of a non running container"),
        "{err}"
    );
    d.docker_ok(&["rm", "app"]);
    d.stop();
}

/// `--ipc shareable` and `--ipc container:<name>` (docker's, e.g. a
/// sidecar reading an app's shared memory): the joiner shares the donor's
/// IPC namespace and its /dev/shm, which berthd mounts on the host for the
/// donor's run; a donor that is not shareable is refused, as a missing
/// one; the mount goes when the donor's run ends.
#[test]
fn ipc_namespace_and_shm_of_a_shareable_container() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let id = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "donor",
            "--ipc",
            "shareable",
            "--shm-size",
            "8m",
            "bb:1",
            "sh",
            "-c",
            "echo from-donor > /dev/shm/note; sleep 600",
        ])
        .trim()
        .to_string();
    let shm = d.dir.path().join("data/containers").join(&id).join("shm");
    eventually(10, "the donor's note", || shm.join("note").exists());
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:donor",
        "bb:1",
        "sh",
        "-c",
        "cat /dev/shm/note; echo from-joiner > /dev/shm/reply; df -k /dev/shm | tail -1 | awk '{print $2}'",
    ]);
    assert_eq!(out, "from-donor\n8192\n");
    let reply = d.docker_ok(&["exec", "donor", "cat", "/dev/shm/reply"]);
    assert_eq!(reply, "from-joiner\n");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "joiner",
        "--ipc",
        "container:donor",
        "bb:1",
        "sleep",
        "600",
    ]);
    let ns = |c: &str| d.docker_ok(&["exec", c, "readlink", "/proc/self/ns/ipc"]);
    assert_eq!(ns("donor"), ns("joiner"));
    let inspect = d.inspect("joiner");
    assert_eq!(inspect["HostConfig"]["IpcMode"], "container:donor");

    // A donor that is not shareable, and one that is missing.
    d.docker_ok(&["run", "-d", "--name", "private", "bb:1", "sleep", "600"]);
    let out = d.docker(&["run", "--rm", "--ipc", "container:private", "bb:1", "true"]);
    let err = text(&out.stderr);
    assert!(err.contains("non-shareable IPC"), "{err}");
    let out = d.docker(&["run", "--rm", "--ipc", "container:nosuch", "bb:1", "true"]);
    let err = text(&out.stderr);
    assert!(err.contains("No such container: nosuch"), "{err}");

    // The donor's run ends: its /dev/shm is unmounted on the host.
    d.docker_ok(&["rm", "-f", "joiner", "private"]);
    d.docker_ok(&["stop", "-t", "1", "donor"]);
    assert!(!shm.join("note").exists(), "the shm tmpfs is still mounted");
    d.docker_ok(&["rm", "donor"]);
    d.stop();
}
