//! Container endpoints the way docker's API clients (docker-py, the CLI)
//! rely on them, through a real berthd with real containers: kill with
//! SIGKILL returns once the container has exited, the json-file log's
//! options are checked where and as docker checks them, the `none` log
//! driver, `wait` on a container that restarts, the runtime's name,
//! per-interface network stats, detaching from a hijacked attach or exec
//! stream with the detach keys, attach replaying the log without a
//! stream, attach and exec streams for clients that do not upgrade the
//! connection (dockerode), privileged containers where berthd holds fewer
//! capabilities than the kernel knows, and a bad image archive reported in
//! the load's stream, and a stop that races the container's own exit.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use berth_integration::daemon::{has_docker, Berthd};
use berth_integration::{eventually, require_root, text};

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(body)))
}

/// A POST that hijacks the connection (as docker-py's attach_socket and
/// exec_start(socket=True) do): returns the stream after the 101's
/// headers, and what of the stream came with them.
fn hijack(d: &Berthd, path: &str, body: &str) -> (UnixStream, Vec<u8>) {
    let mut s = UnixStream::connect(&d.socket).expect("connecting to berthd");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).expect("reading the 101");
        assert!(n > 0, "the connection ended in the headers: {}", text(&got));
        got.extend_from_slice(&buf[..n]);
    };
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{path}: not hijacked: {}",
        text(&got)
    );
    (s, got[end..].to_vec())
}

/// Reads until the peer ends the stream; `None` if it did not within the
/// read timeout.
fn read_to_end(s: &mut UnixStream, mut got: Vec<u8>) -> Option<Vec<u8>> {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(got),
            Err(_) => return None,
        }
    }
}

/// Types `keys` one per write, apart, as a person (and docker-py's tests)
/// do: the daemon only matches the detach keys one per read.
fn type_keys(s: &mut UnixStream, keys: &[u8]) {
    for k in keys {
        std::thread::sleep(Duration::from_millis(300));
        s.write_all(&[*k]).unwrap();
    }
}

/// An HTTP/1.1 chunked body, decoded (up to its last chunk).
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or_else(|| panic!("no chunk size line in {:?}", text(body)));
        let size = usize::from_str_radix(&text(&body[..line_end]), 16)
            .unwrap_or_else(|e| panic!("chunk size {:?}: {e}", text(&body[..line_end])));
        if size == 0 {
            return out;
        }
        let data = &body[line_end + 2..];
        out.extend_from_slice(&data[..size]);
        body = &data[size + 2..];
    }
}

fn running(d: &Berthd, name: &str) -> bool {
    d.inspect(name)["State"]["Running"] == true
}

#[test]
fn kill_waits_for_the_exit_of_sigkill() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    for round in 0..3 {
        let name = format!("k{round}");
        d.docker_ok(&["run", "-d", "--name", &name, "bb:1", "sleep", "600"]);
        // The API's default signal is SIGKILL: once it answers, the
        // container is stopped and can be removed without force.
        let (status, body) = d.api("POST", &format!("/containers/{name}/kill"), None);
        assert_eq!(status, 204, "{}", text(&body));
        let state = &d.inspect(&name)["State"];
        assert_eq!(state["Running"], false, "{state}");
        assert_eq!(state["ExitCode"], 137, "{state}");
        d.docker_ok(&["rm", &name]);
    }
    // Another signal returns at once; the container handles it.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "usr1",
        "bb:1",
        "sh",
        "-c",
        "trap 'exit 7' USR1; while :; do sleep 0.1; done",
    ]);
    d.docker_ok(&["kill", "-s", "USR1", "usr1"]);
    assert_eq!(d.docker_ok(&["wait", "usr1"]).trim(), "7");
    // A paused container is thawed to die.
    d.docker_ok(&["run", "-d", "--name", "frozen", "bb:1", "sleep", "600"]);
    d.docker_ok(&["pause", "frozen"]);
    d.docker_ok(&["kill", "frozen"]);
    assert!(!running(&d, "frozen"));
    d.docker_ok(&["rm", "usr1", "frozen"]);
    // And removed by force.
    d.docker_ok(&["run", "-d", "--name", "frozen", "bb:1", "sleep", "600"]);
    d.docker_ok(&["pause", "frozen"]);
    d.docker_ok(&["rm", "-f", "frozen"]);
    assert_eq!(
        d.docker_ok(&["ps", "-aq", "--filter", "name=frozen"])
            .trim(),
        ""
    );
    let err = d.docker(&["kill", "nope"]);
    assert!(!err.status.success());
    d.stop();
}

#[test]
fn log_options_and_the_none_driver() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    // max-file without max-size is accepted (no rotation), as docker's
    // json-file driver takes it; an empty type is json-file.
    let create = br#"{"Image":"bb:1","Cmd":["echo","kept"],
        "HostConfig":{"LogConfig":{"Type":"","Config":{"max-file":"100"}}}}"#;
    let (status, body) = d.api("POST", "/containers/create?name=mf", Some(create));
    assert_eq!(status, 201, "{}", text(&body));
    d.docker_ok(&["start", "-a", "mf"]);
    let log = &d.inspect("mf")["HostConfig"]["LogConfig"];
    assert_eq!(log["Type"], "json-file", "{log}");
    assert_eq!(
        log["Config"],
        serde_json::json!({"max-file": "100"}),
        "{log}"
    );
    assert_eq!(d.docker_ok(&["logs", "mf"]), "kept\n");
    // A negative tail is all of it, as dockerd reads it (testcontainers
    // asks for tail=-1); text is refused, naming it.
    let (status, body) = d.api("GET", "/containers/mf/logs?stdout=1&tail=-1", None);
    assert_eq!(status, 200, "{}", text(&body));
    assert!(body.ends_with(b"kept\n"), "{:?}", text(&body));
    d.api_error(
        "GET",
        "/containers/mf/logs?stdout=1&tail=some",
        None,
        400,
        "invalid tail \"some\"",
    );
    // Option names are checked at create, values at start (docker's
    // "failed to initialize logging driver").
    let err = d.docker(&["create", "--log-opt", "bogus=1", "bb:1", "true"]);
    assert!(
        text(&err.stderr).contains("unknown log opt 'bogus' for json-file log driver"),
        "{}",
        text(&err.stderr)
    );
    let err = d.docker(&["create", "--log-driver", "asdf", "bb:1", "true"]);
    assert!(
        text(&err.stderr).contains("logger: no log driver named 'asdf' is registered"),
        "{}",
        text(&err.stderr)
    );
    d.docker_ok(&[
        "create",
        "--name",
        "badsize",
        "--log-opt",
        "max-size=lots",
        "bb:1",
        "true",
    ]);
    let err = d.docker(&["start", "badsize"]);
    assert!(
        text(&err.stderr).contains("failed to initialize logging driver"),
        "{}",
        text(&err.stderr)
    );
    assert!(!running(&d, "badsize"));
    let err = d.docker(&["run", "--rm", "--log-opt", "compress=true", "bb:1", "true"]);
    assert!(
        text(&err.stderr).contains("compress cannot be true"),
        "{}",
        text(&err.stderr)
    );
    // Rotation still works with both.
    d.docker_ok(&[
        "run",
        "--name",
        "rot",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "bb:1",
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    let logs = d.docker_ok(&["logs", "rot"]);
    assert!(
        logs.ends_with("line-199\n") && !logs.contains("line-0\n"),
        "{logs}"
    );

    // none: the attached client still sees the output, no log is kept,
    // and reading it is docker's 501.
    let out = d.docker_ok(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "bb:1",
        "echo",
        "hello",
    ]);
    assert_eq!(out, "hello\n");
    let id = d.inspect("quiet")["Id"].as_str().unwrap().to_string();
    assert_eq!(
        d.inspect("quiet")["HostConfig"]["LogConfig"]["Type"],
        "none"
    );
    let log_file = d
        .data_root
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    assert!(!log_file.exists(), "{} exists", log_file.display());
    d.api_error(
        "GET",
        "/containers/quiet/logs?stdout=1",
        None,
        501,
        "configured logging driver does not support reading",
    );
    let (mut s, early) = hijack(&d, "/containers/quiet/attach?logs=1&stdout=1", "");
    let out = read_to_end(&mut s, early).expect("the attach did not end");
    assert_eq!(
        text(&out),
        "Error attaching: configured logging driver does not support reading\n"
    );
    d.docker_ok(&["rm", "mf", "badsize", "rot", "quiet"]);
    d.stop();
}

#[test]
fn wait_returns_at_the_exit_of_a_restarting_container() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "sleep 1; exit 3",
    ]);
    // docker counts a restarting container as running: the wait ends at
    // its first exit, with that exit's code.
    let (status, body) = d.api("POST", "/containers/again/wait", None);
    assert_eq!(status, 200, "{}", text(&body));
    assert_eq!(json(&body)["StatusCode"], 3, "{}", text(&body));
    let err = d.docker(&["rm", "again"]);
    assert!(
        text(&err.stderr).contains("Stop the container before attempting removal or force remove"),
        "{}",
        text(&err.stderr)
    );
    eventually(10, "a restart", || {
        d.inspect("again")["RestartCount"].as_i64().unwrap_or(0) >= 1
    });
    d.docker_ok(&["rm", "-f", "again"]);
    // A stopped container's wait answers at once; next-exit waits.
    d.docker_ok(&["run", "--name", "done", "bb:1", "true"]);
    assert_eq!(d.docker_ok(&["wait", "done"]).trim(), "0");
    d.docker_ok(&["rm", "done"]);
    d.stop();
}

#[test]
fn the_stock_runtime_is_called_runc() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let info = json(&d.api("GET", "/info", None).1);
    assert_eq!(info["DefaultRuntime"], "runc", "{info}");
    assert!(info["Runtimes"]["runc"].is_object(), "{info}");
    d.docker_ok(&["create", "--name", "dflt", "bb:1", "true"]);
    assert_eq!(d.inspect("dflt")["HostConfig"]["Runtime"], "runc");
    // Both names run the embedded runtime, and inspect echoes the one asked.
    for rt in ["runc", "berth-runtime"] {
        let name = format!("rt-{rt}");
        let out = d.docker_ok(&["run", "--name", &name, "--runtime", rt, "bb:1", "echo", rt]);
        assert_eq!(out.trim(), rt);
        assert_eq!(d.inspect(&name)["HostConfig"]["Runtime"], rt);
        d.docker_ok(&["rm", &name]);
    }
    let err = d.docker(&["create", "--runtime", "nope", "bb:1", "true"]);
    assert!(
        text(&err.stderr).contains("unknown or invalid runtime name: nope"),
        "{}",
        text(&err.stderr)
    );
    d.docker_ok(&["rm", "dflt"]);
    d.stop();
}

#[test]
fn stats_count_the_container_interfaces() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&["run", "-d", "--name", "net", "bb:1", "sleep", "600"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "nonet",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "600",
    ]);
    // Traffic the container sends shows in its counters.
    let gateway = d.net.bip.split('/').next().unwrap().to_string();
    d.docker(&["exec", "net", "ping", "-c", "2", "-W", "1", &gateway]);
    let (status, body) = d.api("GET", "/containers/net/stats?stream=false", None);
    assert_eq!(status, 200, "{}", text(&body));
    let v = json(&body);
    let eth0 = &v["networks"]["eth0"];
    for key in [
        "rx_bytes",
        "rx_packets",
        "rx_errors",
        "rx_dropped",
        "tx_bytes",
        "tx_packets",
        "tx_errors",
        "tx_dropped",
    ] {
        assert!(eth0[key].is_u64(), "{key} in {eth0}");
    }
    assert!(eth0["tx_packets"].as_u64().unwrap() >= 2, "{eth0}");
    assert!(v["networks"].get("lo").is_none(), "{}", v["networks"]);
    // stream=false without one-shot: the second of two samples, the first
    // as precpu_stats, so that a client can compute CPU use between them.
    let (pre, now) = (&v["precpu_stats"], &v["cpu_stats"]);
    let system = |s: &serde_json::Value| s["system_cpu_usage"].as_u64().unwrap_or(0);
    assert!(system(pre) > 0 && system(pre) < system(now), "{pre} {now}");
    assert_eq!(pre["online_cpus"], now["online_cpus"], "{pre}");
    // No interface of its own but the loopback: docker leaves it out.
    let v = json(&d.api("GET", "/containers/nonet/stats?stream=false", None).1);
    assert!(v.get("networks").is_none(), "{v}");
    d.docker_ok(&["rm", "-f", "net", "nonet"]);
    d.stop();
}

#[test]
fn detach_keys_end_an_attach_or_exec_and_leave_it_running() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&["run", "-d", "-it", "--name", "cat", "bb:1", "cat"]);
    // The default sequence, ctrl-p ctrl-q; a broken sequence is typed
    // through (cat echoes it on the tty).
    let (mut s, early) = hijack(&d, "/containers/cat/attach?stream=1&stdin=1&stdout=1", "");
    type_keys(&mut s, &[0x10, b'x']);
    type_keys(&mut s, &[0x10, 0x11]);
    let out = read_to_end(&mut s, early).expect("the attach did not end after ctrl-p ctrl-q");
    assert!(out.windows(2).any(|w| w == b"^P"), "{:?}", text(&out));
    assert!(running(&d, "cat"), "detaching stopped the container");
    // detachKeys in the query; the container's stdin is still open.
    let (mut s, early) = hijack(
        &d,
        "/containers/cat/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-x",
        "",
    );
    s.write_all(b"still here\n").unwrap();
    type_keys(&mut s, &[0x18]);
    let out = read_to_end(&mut s, early).expect("the attach did not end after ctrl-x");
    assert!(text(&out).contains("still here"), "{:?}", text(&out));
    assert!(running(&d, "cat"));
    d.api_error(
        "POST",
        "/containers/cat/attach?stream=1&stdin=1&detachKeys=ctrl-shift",
        None,
        400,
        "Invalid detach keys (ctrl-shift) provided",
    );
    // An exec with a tty, its keys from its config (docker-py spells the
    // field detachKeys); it runs on after the detach.
    let (status, body) = d.api(
        "POST",
        "/containers/cat/exec",
        Some(br#"{"Cmd":["cat"],"AttachStdin":true,"AttachStdout":true,"Tty":true,"detachKeys":"ctrl-p"}"#),
    );
    assert_eq!(status, 201, "{}", text(&body));
    let exec = json(&body)["Id"].as_str().unwrap().to_string();
    let (mut s, early) = hijack(&d, &format!("/exec/{exec}/start"), r#"{"Tty":true}"#);
    type_keys(&mut s, &[0x10]);
    read_to_end(&mut s, early).expect("the exec's stream did not end after ctrl-p");
    let e = json(&d.api("GET", &format!("/exec/{exec}/json"), None).1);
    assert_eq!(e["Running"], true, "{e}");
    d.docker_ok(&["rm", "-f", "cat"]);
    d.stop();
}

#[test]
fn attach_without_a_stream_replays_the_log() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&[
        "run",
        "--name",
        "said",
        "bb:1",
        "sh",
        "-c",
        "echo hello; echo oops >&2",
    ]);
    let (mut s, early) = hijack(
        &d,
        "/containers/said/attach?logs=1&stream=0&stdout=1&stderr=1",
        "",
    );
    let out = read_to_end(&mut s, early).expect("the attach did not end");
    // docker's frames: stdout's then stderr's.
    let mut want = vec![1, 0, 0, 0, 0, 0, 0, 6];
    want.extend_from_slice(b"hello\n");
    want.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 5]);
    want.extend_from_slice(b"oops\n");
    assert_eq!(out, want, "{:?}", text(&out));
    d.docker_ok(&["rm", "said"]);
    d.stop();
}

/// A client that does not ask to upgrade the connection (dockerode's
/// `exec.start()` and `attach()`, which testcontainers uses) gets the
/// stream as a 200's body, as dockerd gives it, instead of an error; and
/// resizing a process without a terminal is the no-op it is in dockerd.
#[test]
fn hijacking_endpoints_answer_a_plain_request_with_the_stream() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&["run", "-d", "--name", "box", "bb:1", "sleep", "600"]);
    let (status, body) = d.api(
        "POST",
        "/containers/box/exec",
        Some(br#"{"Cmd":["sh","-c","echo out; echo err >&2; exit 3"],"AttachStdout":true,"AttachStderr":true}"#),
    );
    assert_eq!(status, 201, "{}", text(&body));
    let id = json(&body)["Id"].as_str().unwrap().to_string();
    let (status, out) = d.api(
        "POST",
        &format!("/exec/{id}/start"),
        Some(br#"{"Detach":false,"Tty":false}"#),
    );
    assert_eq!(status, 200, "{}", text(&out));
    let mut want = vec![1, 0, 0, 0, 0, 0, 0, 4];
    want.extend_from_slice(b"out\n");
    want.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 4]);
    want.extend_from_slice(b"err\n");
    assert_eq!(out, want, "{:?}", text(&out));
    let (_, body) = d.api("GET", &format!("/exec/{id}/json"), None);
    assert_eq!(json(&body)["ExitCode"], 3, "{}", text(&body));
    // Resizing what has no terminal is a no-op, as in dockerd (dockerode
    // resizes what it attaches to); a container that is not running is a
    // conflict.
    for path in [
        "/containers/box/resize?h=40&w=100".to_string(),
        format!("/exec/{id}/resize?h=40&w=100"),
    ] {
        let (status, body) = d.api("POST", &path, Some(b""));
        assert_eq!(status, 200, "{path}: {}", text(&body));
    }
    // attach: the 200 comes once the attach is registered, and the body
    // runs until the container exits.
    d.docker_ok(&[
        "create",
        "--name",
        "talker",
        "bb:1",
        "sh",
        "-c",
        "echo hello",
    ]);
    let mut s = UnixStream::connect(&d.socket).expect("connecting to berthd");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(
        b"POST /containers/talker/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n\
          Host: berth\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "headers: {}", text(&head));
        head.push(byte[0]);
    }
    let head = text(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("application/vnd.docker.raw-stream"), "{head}");
    d.docker_ok(&["start", "talker"]);
    let body = read_to_end(&mut s, Vec::new()).expect("the attach did not end");
    let mut want = vec![1, 0, 0, 0, 0, 0, 0, 6];
    want.extend_from_slice(b"hello\n");
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(&body)
    } else {
        body
    };
    assert_eq!(body, want, "{:?}", text(&body));
    // The stream ends with the output; the exit is recorded a moment later.
    d.docker_ok(&["wait", "talker"]);
    d.api_error(
        "POST",
        "/containers/talker/resize?h=4&w=4",
        Some(b""),
        409,
        "is not running",
    );
    d.docker_ok(&["rm", "-f", "box", "talker"]);
    d.stop();
}

/// Create with a platform: an image for another one is a 404 in dockerd's
/// words (docker's CLI then pulls the platform's image and tries again);
/// one the host runs (the same, or an older variant) is created.
#[test]
fn create_checks_the_image_is_for_the_platform_asked() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let (native, other) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", "arm64"),
        _ => ("arm64", "amd64"),
    };
    let create = |platform: &str| {
        d.api(
            "POST",
            &format!("/containers/create?platform={platform}"),
            Some(br#"{"Image":"bb:1","Cmd":["true"]}"#),
        )
    };
    for ok in [format!("linux/{native}"), native.to_string()] {
        let (status, body) = create(&ok);
        assert_eq!(status, 201, "{ok}: {}", text(&body));
    }
    let (status, body) = create(&format!("linux/{other}"));
    assert_eq!(status, 404, "{}", text(&body));
    assert_eq!(
        json(&body)["message"],
        format!(
            "image with reference bb:1 was found but does not match the specified platform: wanted linux/{other}, actual: linux/{native}"
        )
    );
    d.api_error(
        "POST",
        "/containers/create?platform=windows/amd64",
        Some(br#"{"Image":"bb:1"}"#),
        400,
        "berthd runs linux containers",
    );
    d.api_error(
        "POST",
        "/containers/create?platform=linux//x",
        Some(br#"{"Image":"bb:1"}"#),
        400,
        "linux//x",
    );
    d.docker_ok(&["container", "prune", "-f"]);
    d.stop();
}

/// `--privileged` (and `--cap-add ALL`) give every capability berthd
/// holds, so they run where the engine has fewer than the kernel knows
/// (this VM withholds CAP_SYS_RESOURCE); one that cannot be given is
/// refused at create, by name.
#[test]
fn privileged_containers_get_every_capability_berthd_holds() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    // berthd is this test's child: its bounding set is ours.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    let caps = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "bb:1",
            "sh",
            "-c",
            "grep -E 'Cap(Eff|Prm|Bnd)' /proc/self/status",
        ]);
        d.docker_ok(&all)
    };
    for args in [&["--privileged"][..], &["--cap-add", "ALL"]] {
        let out = caps(args);
        for set in ["CapEff", "CapPrm", "CapBnd"] {
            assert!(
                out.contains(&format!("{set}:\t{bounding}")),
                "{args:?}: {out}"
            );
        }
    }
    d.docker_ok(&["run", "-d", "--name", "box", "bb:1", "sleep", "600"]);
    let out = d.docker_ok(&[
        "exec",
        "--privileged",
        "box",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(out.contains(&bounding), "exec --privileged: {out}");
    d.docker_ok(&["rm", "-f", "box"]);
    let held = u64::from_str_radix(&bounding, 16).unwrap();
    if held & (1 << 24) == 0 {
        let out = d.docker(&["run", "--rm", "--cap-add", "SYS_RESOURCE", "bb:1", "true"]);
        assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr)
                .contains("not available in the current environment: \"CAP_SYS_RESOURCE\""),
            "{}",
            text(&out.stderr)
        );
        // Dropping it is fine: the kernel knows it.
        d.docker_ok(&["run", "--rm", "--cap-drop", "SYS_RESOURCE", "bb:1", "true"]);
    }
    d.stop();
}

#[test]
fn a_bad_image_archive_is_reported_in_the_load_stream() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::start(&[]);
    // docker answers 200 and reports the failure in the stream, where
    // docker-py raises ImageLoadError from.
    let (status, body) = d.api("POST", "/images/load", Some(b"abc"));
    assert_eq!(status, 200, "{}", text(&body));
    let line = json(text(&body).lines().next().unwrap_or_default().as_bytes());
    assert!(
        line["errorDetail"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("reading the image archive failed")),
        "{line}"
    );
    assert_eq!(line["error"], line["errorDetail"]["message"]);
    d.stop();
}

#[test]
fn an_exec_stream_is_framed_as_its_start_asks() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&["run", "-d", "--name", "box", "bb:1", "sleep", "600"]);
    let exec = |config: &str| {
        let (status, body) = d.api("POST", "/containers/box/exec", Some(config.as_bytes()));
        assert_eq!(status, 201, "{}", text(&body));
        json(&body)["Id"].as_str().unwrap().to_string()
    };
    // A terminal (its \r\n) in stdout frames: the start did not ask for a
    // raw stream (docker-py's exec_create(tty=True) then exec_start()).
    let id = exec(
        r#"{"Cmd":["sh","-c","echo out; echo err >&2"],"AttachStdout":true,"AttachStderr":true,"Tty":true}"#,
    );
    let (mut s, early) = hijack(&d, &format!("/exec/{id}/start"), r#"{"Tty":false}"#);
    let out = read_to_end(&mut s, early).expect("the exec's stream did not end");
    // docker's frames: stream byte, three zeros, big-endian length.
    let mut stdout = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        assert!(
            rest.len() >= 8 && rest[0] == 1,
            "not stdout frames: {out:?}"
        );
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        stdout.extend_from_slice(&rest[8..8 + len]);
        rest = &rest[8 + len..];
    }
    assert_eq!(text(&stdout), "out\r\nerr\r\n");
    // Pipes, unframed: the start asked for a raw stream.
    let id = exec(r#"{"Cmd":["sh","-c","echo out"],"AttachStdout":true,"AttachStderr":true}"#);
    let (mut s, early) = hijack(&d, &format!("/exec/{id}/start"), r#"{"Tty":true}"#);
    let out = read_to_end(&mut s, early).expect("the exec's stream did not end");
    assert_eq!(text(&out), "out\n");
    d.docker_ok(&["rm", "-f", "box"]);
    d.stop();
}

/// Inspect says what the container runs with, in docker's shape: the
/// defaults docker's create fills in (ShmSize, MemorySwap as twice Memory,
/// IpcMode, CgroupnsMode, the masked and read-only paths) rather than the
/// zeros the client sent, and docker's null for what is unset. The masked
/// paths listed are the ones the container finds masked.
#[test]
fn inspect_reports_the_applied_defaults() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&[
        "run", "-d", "--name", "dflts", "--memory", "64m", "bb:1", "sleep", "100",
    ]);
    let c = d.inspect("dflts");
    let hc = &c["HostConfig"];
    assert_eq!(hc["ShmSize"], 64 << 20, "{hc}");
    assert_eq!(hc["MemorySwap"], 128 << 20, "{hc}");
    assert_eq!(hc["IpcMode"], "private", "{hc}");
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert_eq!(
        hc["CgroupnsMode"],
        if v2 { "private" } else { "host" },
        "{hc}"
    );
    for unset in [
        "PidsLimit",
        "MemorySwappiness",
        "SecurityOpt",
        "ExtraHosts",
        "GroupAdd",
    ] {
        assert!(hc[unset].is_null(), "{unset}: {hc}");
    }
    assert!(
        hc.get("Init").is_none(),
        "Init is left out when unset: {hc}"
    );
    assert!(c["Config"]["Volumes"].is_null(), "{}", c["Config"]);
    let masked: Vec<String> = hc["MaskedPaths"]
        .as_array()
        .expect("MaskedPaths is a list")
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert!(masked.iter().any(|p| p == "/proc/keys"), "{masked:?}");
    let readonly = hc["ReadonlyPaths"]
        .as_array()
        .expect("ReadonlyPaths is a list");
    assert!(readonly.iter().any(|p| p == "/proc/sys"), "{readonly:?}");
    // (The host's /proc/keys is never empty: it lists the keyrings.)
    let keys = d.docker_ok(&["exec", "dflts", "sh", "-c", "wc -c < /proc/keys"]);
    assert_eq!(
        keys.trim(),
        "0",
        "/proc/keys is listed as masked and reads empty"
    );
    // A privileged container has none, as docker reports it.
    d.docker_ok(&["create", "--name", "priv", "--privileged", "bb:1", "true"]);
    let hc = &d.inspect("priv")["HostConfig"];
    assert!(
        hc["MaskedPaths"].is_null() && hc["ReadonlyPaths"].is_null(),
        "{hc}"
    );
    // system df counts both containers (one running) and the image's users.
    let df = d.docker_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert!(df.contains("Containers 2 1"), "{df}");
    assert!(df.contains("Images 1 1"), "{df}");
    // An imported image's Config is docker's whole Config, zero-valued
    // where unset, and so is its ContainerConfig.
    let (_, body) = d.api("GET", "/images/bb:1/json", None);
    let image = json(&body);
    for section in ["Config", "ContainerConfig"] {
        let cfg = &image[section];
        for key in ["Env", "Entrypoint", "Volumes", "Labels", "OnBuild"] {
            assert!(cfg.get(key).is_some(), "{section}.{key}: {cfg}");
        }
        assert_eq!(cfg["User"], "", "{section}: {cfg}");
    }
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["sh"]));
    d.docker_ok(&["rm", "-f", "dflts", "priv"]);
    d.stop();
}

/// Prunes read `until` as docker's daemon does: a time, or a Go duration
/// back from now (`until=24h`); anything else is a 400 naming the value.
#[test]
fn prune_until_takes_durations_and_refuses_garbage() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&["create", "--name", "old", "bb:1", "true"]);
    d.docker_ok(&["container", "prune", "-f", "--filter", "until=24h"]);
    assert!(
        d.docker(&["inspect", "old"]).status.success(),
        "made less than 24h ago: kept"
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    d.docker_ok(&["container", "prune", "-f", "--filter", "until=1s"]);
    assert!(
        !d.docker(&["inspect", "old"]).status.success(),
        "made over 1s ago: pruned"
    );
    for args in [
        &["container", "prune", "-f", "--filter", "until=bad"][..],
        &["network", "prune", "-f", "--filter", "until=bad"],
    ] {
        let out = d.docker(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.contains("failed to parse value as time or duration: \"bad\""),
            "{args:?}: {err}"
        );
    }
    d.stop();
}

/// A start that fails answers as dockerd's does, so that the docker CLI
/// exits as it does with dockerd: 127 for what is missing (the CLI matches
/// Go's lower-case "no such file or directory", so OS errors are written as
/// Go writes them), and no "Error waiting for container" on top (a wait
/// ended by a failed start or by the removal carries no error).
#[test]
fn failed_starts_exit_as_the_docker_cli_expects() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    for args in [
        &["run", "--rm", "bb:1", "/nonexistent"][..],
        &["run", "--name", "kept", "bb:1", "/nonexistent"],
        &[
            "run",
            "--rm",
            "--device",
            "/dev/berth-no-such-device",
            "bb:1",
            "true",
        ],
    ] {
        let out = d.docker(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(127), "{args:?}: {err}");
        assert!(!err.contains("Error waiting"), "{args:?}: {err}");
        assert!(!err.contains("(os error"), "{args:?}: {err}");
    }
    let state = &d.inspect("kept")["State"];
    assert_eq!(state["ExitCode"], 127, "{state}");
    assert!(
        state["Error"]
            .as_str()
            .unwrap_or_default()
            .contains("no such file or directory"),
        "{state}"
    );
    d.docker_ok(&["rm", "kept"]);
    // An exec that cannot be set up (no such user) says why on its stream
    // and exits 126, as docker's; it printed nothing and exited 0.
    d.docker_ok(&["run", "-d", "--name", "up", "bb:1", "sleep", "100"]);
    let out = d.docker(&["exec", "-u", "nosuchuser", "up", "id"]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(126), "{said}");
    assert!(said.contains("unable to find user nosuchuser"), "{said}");
    d.docker_ok(&["rm", "-f", "up"]);
    d.stop();
}

/// `docker start -a` attaches, then starts: on a container that has run
/// before too, each run's output and exit code reach the client. An
/// attachment that waits for a start ends when the container is removed.
#[test]
fn start_attach_again_gets_every_runs_output() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&[
        "create",
        "--name",
        "again",
        "bb:1",
        "sh",
        "-c",
        "echo run; exit 4",
    ]);
    for _ in 0..3 {
        let out = d.docker(&["start", "-a", "again"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "run\n");
        assert_eq!(out.status.code(), Some(4));
    }
    // A stream attachment to the exited container waits for its start;
    // removing the container ends it.
    let mut waiting = std::process::Command::new("curl")
        .args(["-s", "--no-buffer", "--max-time", "20"])
        .args([
            "-H",
            "Upgrade: tcp",
            "-H",
            "Connection: Upgrade",
            "--unix-socket",
        ])
        .arg(&d.socket)
        .args([
            "-X",
            "POST",
            "http://berth/containers/again/attach?stream=1&stdout=1",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("curl");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "the attachment waits"
    );
    d.docker_ok(&["rm", "again"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while waiting.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the attachment outlived the removal"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.stop();
}

/// The events of `docker run` and of removing a tag, as dockerd sends
/// them: attach, the network's connect and disconnect around start and
/// die, the legacy `from` field, and untag naming the image by its id.
#[test]
fn events_are_the_ones_dockerd_sends() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let t0 = berth_integration::unix_secs().to_string();
    d.docker_ok(&["run", "--name", "ev", "--network", "none", "bb:1", "true"]);
    d.docker_ok(&["rm", "ev"]);
    d.docker_ok(&["tag", "bb:1", "evtag:1"]);
    d.docker_ok(&["rmi", "evtag:1"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let t1 = berth_integration::unix_secs().to_string();
    let events = d.docker_ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    // (bb:1's import may fall in the same second.)
    let lines: Vec<&str> = events
        .lines()
        .filter(|l| !l.starts_with("image import"))
        .collect();
    let image_id = d.docker_ok(&["inspect", "-f", "{{.Id}}", "bb:1"]);
    let untag = format!("image untag {}", image_id.trim());
    assert_eq!(
        lines,
        [
            "container create ev",
            "container attach ev",
            "network connect none",
            "container start ev",
            "container die ev",
            "network disconnect none",
            "container destroy ev",
            "image tag evtag:1",
            untag.as_str(),
        ],
        "{events}"
    );
    let json = d.docker_ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "event=create",
        "--format",
        "{{json .}}",
    ]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("one event");
    assert_eq!(v["from"], "bb:1", "{v}");
    d.stop();
}

#[test]
fn stopping_a_container_as_it_exits_is_a_stop_not_a_conflict() {
    if !require_root() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    // Each container prints a line and exits; the stop goes out right as
    // it does, as testcontainers stops one once its log line was seen.
    // Whether the exit is recorded before the stop looks or between its
    // look and its signal, the answer is 204 or 304, never 409.
    let create = br#"{"Image":"bb:1","Cmd":["echo","done"]}"#;
    for round in 0..40 {
        let (status, body) = d.api("POST", "/containers/create", Some(create));
        assert_eq!(status, 201, "{}", text(&body));
        let id = json(&body)["Id"].as_str().unwrap().to_owned();
        let (status, body) = d.api("POST", &format!("/containers/{id}/start"), None);
        assert_eq!(status, 204, "{}", text(&body));
        let (status, body) = d.api("POST", &format!("/containers/{id}/stop?t=1"), None);
        assert!(
            status == 204 || status == 304,
            "round {round}: stop answered {status}: {}",
            text(&body)
        );
        let (status, body) = d.api("DELETE", &format!("/containers/{id}"), None);
        assert_eq!(status, 204, "round {round}: {}", text(&body));
    }
    d.stop();
}
