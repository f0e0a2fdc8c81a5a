//! berthd end to end: its own daemon per test, driven over the unix socket
//! with curl and with the real docker CLI; each test ends with
//! `Berthd::stop`, which checks that the daemon left nothing behind.

use berth_integration::daemon::{has_docker, Berthd, LoopbackRegistry};
use berth_integration::peers::busybox_tar;
use berth_integration::require_root;
use serde_json::Value;

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

#[test]
fn ping_version_info_and_negotiation() {
    if !require_root() {
        return;
    }
    let d = Berthd::start(&[]);
    let (status, body) = d.api("GET", "/_ping", None);
    assert_eq!((status, body.as_slice()), (200, b"OK".as_slice()));
    assert_eq!(d.api("HEAD", "/_ping", None).0, 200);
    for path in [
        "/version",
        "/v1.24/version",
        "/v1.41/version",
        "/v1.44/version",
    ] {
        let (status, body) = d.api("GET", path, None);
        assert_eq!(status, 200, "{path}");
        let v = json(&body);
        assert_eq!(v["ApiVersion"], "1.44");
        assert_eq!(v["MinAPIVersion"], "1.24");
        // What `docker version` prints of the engine: every detail
        // dockerd gives, as strings.
        let details = &v["Components"][0]["Details"];
        for key in [
            "ApiVersion",
            "GitCommit",
            "GoVersion",
            "Experimental",
            "BuildTime",
        ] {
            assert!(details[key].is_string(), "{key}: {details}");
        }
        assert_eq!(details["Experimental"], "false");
    }
    d.api_error("GET", "/v1.12/version", None, 400, "too old");
    d.api_error("GET", "/v1.99/version", None, 400, "too new");
    let (status, body) = d.api("GET", "/info", None);
    assert_eq!(status, 200);
    let info = json(&body);
    assert_eq!(info["Images"], 0);
    assert_eq!(info["OSType"], "linux");
    assert_eq!(
        info["DockerRootDir"].as_str(),
        Some(d.data_root.to_str().unwrap())
    );
    d.api_error("GET", "/nope", None, 404, "page not found");
    // The socket is root's, mode 0660 (group berth when it exists).
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o660);
    assert_eq!(meta.uid(), 0);
    d.stop();
}

#[test]
fn tcp_only_on_loopback_when_asked() {
    if !require_root() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let d = Berthd::start(&["-H", &tcp]);
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            &format!("http://127.0.0.1:{port}/v1.41/_ping"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK");
    // The unix socket is served too.
    assert_eq!(d.api("GET", "/_ping", None).0, 200);
    d.stop();
    // Anything beyond loopback is refused at start-up.
    let out = std::process::Command::new(berth_integration::runtime::berth_binary("berthd"))
        .args([
            "--config-file",
            "/nonexistent/daemon.json",
            "-H",
            "tcp://0.0.0.0:2375",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn socket_activation_serves_the_socket_systemd_passes() {
    if !require_root() {
        return;
    }
    // systemd-socket-activate plays systemd's part (berthd.socket):
    // it listens, and starts berthd with the socket on the first connection.
    let Some(d) = Berthd::start_activated(&[]) else {
        eprintln!("skipped: systemd-socket-activate is not installed");
        return;
    };
    let out = d.docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(out.trim(), "1.44");
    assert!(
        d.log().contains("serving the API on an activated socket"),
        "{}",
        d.log()
    );
    d.stop();
    // fd:// without a service manager's sockets is a clear error.
    let out = std::process::Command::new(berth_integration::runtime::berth_binary("berthd"))
        .args(["--config-file", "/nonexistent/daemon.json", "-H", "fd://"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no sockets were passed"), "{err}");
}

#[test]
fn docker_cli_images_round_trip() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::start(&[]);
    let version = d.docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(version.trim(), "1.44");
    let info = d.docker_ok(&["info", "--format", "{{.Images}} {{.Driver}}"]);
    assert_eq!(info.trim(), "0 overlay2");

    let tar = busybox_tar(d.dir.path());
    let tar = tar.to_str().unwrap();
    let id = d.docker_ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "LABEL stage=test",
        "-m",
        "from test",
        tar,
        "bb:1",
    ]);
    let id = id.trim().to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_eq!(images.trim(), format!("bb:1 {}", &id[7..19]));

    let inspect: Value = json(d.docker_ok(&["image", "inspect", "bb:1"]).as_bytes());
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert_eq!(inspect[0]["Config"]["Cmd"][0], "sh");
    assert_eq!(inspect[0]["Config"]["Labels"]["stage"], "test");
    assert_eq!(inspect[0]["Comment"], "from test");
    assert_eq!(inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);

    d.docker_ok(&["tag", "bb:1", "example.com/team/bb:2"]);
    let filtered = d.docker_ok(&[
        "images",
        "--filter",
        "reference=example.com/*/*",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(filtered.trim(), "example.com/team/bb:2");
    let labelled = d.docker_ok(&["images", "-q", "--filter", "label=stage=test"]);
    assert_eq!(labelled.lines().count(), 2, "{labelled}");
    let history = d.docker_ok(&["history", "--format", "{{.Comment}}", "bb:1"]);
    assert_eq!(history.trim(), "from test");

    // Removing one of two names untags; the image stays.
    let out = d.docker_ok(&["rmi", "example.com/team/bb:2"]);
    assert!(out.contains("Untagged: example.com/team/bb:2"), "{out}");
    assert!(!out.contains("Deleted"), "{out}");

    // save | load after removing the image brings the same id back.
    let archive = d.dir.path().join("saved.tar");
    d.docker_ok(&["save", "-o", archive.to_str().unwrap(), "bb:1"]);
    let out = d.docker_ok(&["rmi", "bb:1"]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    let loaded = d.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains("Loaded image: bb:1"), "{loaded}");
    assert_eq!(
        d.docker_ok(&["images", "-q", "--no-trunc"]).trim(),
        id.as_str()
    );
    // And through a pipe, as users do it.
    let piped = d.sh_ok("docker save bb:1 | docker load");
    assert!(piped.contains("Loaded image: bb:1"), "{piped}");
    // A tar reader stops at the end-of-archive blocks; the daemon still
    // reads the record padding after them (here a generous 4 MiB, more
    // than a socket buffer holds), so the client is not cut off mid-write.
    let padded = d.dir.path().join("padded.tar");
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes.resize(bytes.len() + 4 * 1024 * 1024, 0);
    std::fs::write(&padded, bytes).unwrap();
    let loaded = d.docker_ok(&["load", "-i", padded.to_str().unwrap()]);
    assert!(loaded.contains("Loaded image: bb:1"), "{loaded}");
    // A bad archive is refused with the daemon's reason, which the client
    // reads only if the daemon takes the rest of its body first.
    let garbage = d.dir.path().join("garbage.tar");
    let mut bytes = b"not a tar archive".to_vec();
    bytes.resize(4 * 1024 * 1024, b'x');
    std::fs::write(&garbage, bytes).unwrap();
    let err = d.docker(&["load", "-i", garbage.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(!err.status.success());
    assert!(
        stderr.contains("reading the image archive failed"),
        "{stderr}"
    );

    let err = d.docker(&["rmi", "nope:1"]);
    assert!(!err.status.success());
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("No such image: nope:1"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );

    // Everything above is in the event log, in order.
    let now = berth_integration::unix_secs() + 1;
    let events = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &now.to_string(),
        "--format",
        "{{.Type}} {{.Action}} {{index .Actor.Attributes \"name\"}}",
    ]);
    let events: Vec<&str> = events.lines().collect();
    // Untag and delete name the image by its id, as dockerd's do (the
    // names removed are in rmi's answer).
    let untag = format!("image untag {id}");
    let delete = format!("image delete {id}");
    for want in [
        "image import bb:1",
        "image tag example.com/team/bb:2",
        untag.as_str(),
        delete.as_str(),
        "image load bb:1",
    ] {
        assert!(events.contains(&want), "{want:?} not in {events:?}");
    }
    assert_eq!(
        events.iter().filter(|e| **e == untag).count(),
        2,
        "{events:?}"
    );
    let filtered = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &now.to_string(),
        "--filter",
        "event=delete",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(filtered.lines().collect::<Vec<_>>(), ["delete"]);
    d.api_error("GET", "/events?since=yesterday", None, 400, "invalid since");

    let df = d.docker_ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.contains("Images 1"), "{df}");
    d.docker_ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    // Nothing of the image is left on disk once it is pruned.
    let blobs = d.data_root.join("content/blobs/sha256");
    let left: Vec<_> = std::fs::read_dir(&blobs)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "blobs left after prune: {left:?}");
    d.stop();
}

/// Serves `file` as `/<its name>` on a loopback port (404 for any other
/// path) until the test ends; returns the port.
fn serve_file(file: &std::path::Path) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let name = format!("/{}", file.file_name().unwrap().to_str().unwrap());
    let data = std::fs::read(file).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut request_line = String::new();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let _ = reader.read_line(&mut request_line);
            // The headers, up to the blank line.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = if path == name {
                ("200 OK", data.as_slice())
            } else {
                ("404 Not Found", b"not here".as_slice())
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(body);
        }
    });
    port
}

#[test]
fn images_are_imported_from_a_url() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::start(&[]);
    let tar = busybox_tar(d.dir.path());
    let gz = d.dir.path().join("busybox.tar.gz");
    let ok = std::process::Command::new("gzip")
        .arg("-k")
        .arg(&tar)
        .status()
        .unwrap();
    assert!(ok.success());
    let port = serve_file(&gz);

    // The docker CLI passes a URL through as fromSrc; the daemon fetches it.
    let url = format!("http://127.0.0.1:{port}/busybox.tar.gz");
    let id = d.docker_ok(&["import", "-c", "CMD [\"sh\"]", &url, "fromurl:1"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let out = d.docker_ok(&["run", "--rm", "fromurl:1", "sh", "-c", "echo imported"]);
    assert_eq!(out.trim(), "imported");

    // Without a scheme, http:// (docker's reading; only the API sends it).
    let path = format!("/images/create?fromSrc=127.0.0.1:{port}/busybox.tar.gz&repo=fromurl&tag=2");
    let (status, body) = d.api("POST", &path, None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let images = d.docker_ok(&["images", "-q", "fromurl"]);
    assert_eq!(images.lines().count(), 2, "{images}");

    // A missing file and a scheme that is not http(s): clear errors.
    let missing = d.docker(&["import", &format!("http://127.0.0.1:{port}/missing.tar")]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(err.contains("404") && err.contains("missing.tar"), "{err}");
    let path = format!("/images/create?fromSrc=http://127.0.0.1:{port}/missing.tar");
    assert_eq!(d.api("POST", &path, None).0, 404, "as dockerd");
    let (status, body) = d.api("POST", "/images/create?fromSrc=file:///etc/passwd", None);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("is not http or https"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    d.docker_ok(&["rmi", "fromurl:1", "fromurl:2"]);
    d.stop();
}

#[test]
fn docker_cli_push_and_pull_through_a_loopback_registry() {
    if !require_root() || !has_docker() {
        return;
    }
    let Some(registry) = LoopbackRegistry::start() else {
        return;
    };
    let host = registry.addr.to_string();
    let d = Berthd::start(&["--insecure-registry", &host]);
    let tar = busybox_tar(d.dir.path());
    let id = d.docker_ok(&["import", tar.to_str().unwrap(), "bb:1"]);
    let remote = format!("{host}/test/bb:1");
    d.docker_ok(&["tag", "bb:1", &remote]);
    let pushed = d.docker_ok(&["push", &remote]);
    assert!(pushed.contains("digest: sha256:"), "{pushed}");
    // The registry's view of the name, without a pull: the manifest's
    // descriptor (the digest push printed) and its platform.
    let digest = pushed
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap();
    let (status, body) = d.api("GET", &format!("/distribution/{remote}/json"), None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let inspected = json(&body);
    assert_eq!(inspected["Descriptor"]["digest"], digest, "{inspected}");
    assert!(
        inspected["Descriptor"]["size"].as_u64().unwrap() > 0,
        "{inspected}"
    );
    assert_eq!(inspected["Platforms"][0]["os"], "linux", "{inspected}");
    let (status, _) = d.api(
        "GET",
        &format!("/distribution/{host}/test/absent:1/json"),
        None,
    );
    assert_eq!(status, 404);
    d.docker_ok(&["rmi", "bb:1", &remote]);
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    let pulled = d.docker_ok(&["pull", &remote]);
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    assert_eq!(
        d.docker_ok(&["images", "-q", "--no-trunc"]).trim(),
        id.trim()
    );
    let again = d.docker_ok(&["pull", &remote]);
    assert!(again.contains("Image is up to date"), "{again}");
    let missing = d.docker(&["pull", &format!("{host}/test/absent:1")]);
    assert!(!missing.status.success());
    // A pull that fails before any layer answers with its own status.
    let (status, body) = d.api(
        "POST",
        &format!("/images/create?fromImage={host}/test/absent&tag=1"),
        None,
    );
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    // The streamed progress is docker's JSON lines.
    let (status, body) = d.api(
        "POST",
        &format!("/images/create?fromImage={host}/test/bb&tag=1"),
        None,
    );
    assert_eq!(status, 200);
    let lines: Vec<Value> = String::from_utf8_lossy(&body)
        .lines()
        .map(|l| json(l.as_bytes()))
        .collect();
    assert!(
        lines[0]["status"]
            .as_str()
            .unwrap()
            .starts_with("Pulling from test/bb"),
        "{lines:?}"
    );
    assert!(
        lines.last().unwrap()["status"]
            .as_str()
            .unwrap()
            .contains("up to date"),
        "{lines:?}"
    );
    d.stop();
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    if !require_root() {
        return;
    }
    let d = Berthd::start(&[]);
    d.api_error(
        "POST",
        "/auth",
        Some(b"{\"username\":"),
        400,
        "invalid JSON",
    );
    d.api_error(
        "POST",
        "/auth",
        Some(b"{\"username\": 5}"),
        400,
        "invalid JSON",
    );
    let huge = vec![b' '; 3 * 1024 * 1024];
    d.api_error("POST", "/auth", Some(&huge), 400, "limit");
    d.api_error("GET", "/images/nope/json", None, 404, "No such image: nope");
    d.api_error("GET", "/images/nope/history", None, 404, "No such image");
    d.api_error("DELETE", "/images/nope", None, 404, "No such image");
    d.api_error(
        "POST",
        "/images/nope/tag?repo=x",
        None,
        404,
        "No such image",
    );
    d.api_error("GET", "/images/get?names=nope", None, 404, "No such image");
    d.api_error(
        "GET",
        "/images/json?filters=%7Bbad",
        None,
        400,
        "invalid filters",
    );
    d.api_error(
        "GET",
        "/images/json?filters=%7B%22color%22%3A%5B%22red%22%5D%7D",
        None,
        400,
        "invalid filter 'color'",
    );
    d.api_error("POST", "/images/create", None, 400, "fromImage");
    d.api_error(
        "POST",
        "/images/create?fromSrc=-&repo=UPPER",
        Some(b"x"),
        400,
        "UPPER",
    );
    // Not a tarball: refused, nothing stored.
    let (status, _) = d.api(
        "POST",
        "/images/create?fromSrc=-&repo=junk",
        Some(&[7u8; 4096]),
    );
    assert!((400..600).contains(&status), "{status}");
    // docker answers a load 200 and reports the failure in the stream.
    let (status, body) = d.api("POST", "/images/load", Some(b"definitely not an archive"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        json(&body)["errorDetail"]["message"].is_string(),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (_, list) = d.api("GET", "/images/json", None);
    assert_eq!(json(&list), serde_json::json!([]));
    // Container requests: malformed, mistyped, incomplete, unknown ids.
    d.api_error(
        "POST",
        "/containers/create",
        Some(b"{"),
        400,
        "invalid container config",
    );
    d.api_error(
        "POST",
        "/containers/create",
        Some(br#"{"Image":"x","Cmd":42}"#),
        400,
        "invalid container config",
    );
    d.api_error(
        "POST",
        "/containers/create",
        Some(b"{}"),
        400,
        "Config.Image is required",
    );
    d.api_error(
        "POST",
        "/containers/nope/start",
        None,
        404,
        "No such container: nope",
    );
    d.api_error(
        "GET",
        "/containers/nope/json",
        None,
        404,
        "No such container: nope",
    );
    d.api_error(
        "POST",
        "/exec/nope/start",
        Some(b"{}"),
        404,
        "No such exec instance",
    );
    // Outside a swarm, as docker answers there; starting one is berth's gap.
    d.api_error(
        "POST",
        "/swarm/leave?force=1",
        None,
        503,
        "not part of a swarm",
    );
    d.api_error("GET", "/services", None, 503, "not a swarm manager");
    d.api_error("POST", "/swarm/init", Some(b"{}"), 501, "swarm mode");
    // No managed plugins: an empty list, no such plugin, installing refused.
    let (status, body) = d.api("GET", "/plugins", None);
    assert_eq!((status, json(&body)), (200, serde_json::json!([])));
    d.api_error(
        "GET",
        "/plugins/vieux/sshfs:latest/json",
        None,
        404,
        "not found",
    );
    d.api_error(
        "POST",
        "/plugins/pull?remote=vieux/sshfs",
        Some(b"[]"),
        501,
        "POST /plugins/pull",
    );
    d.api_error("GET", "/images/search?term=x", None, 501, "search");
    d.stop();
}

#[test]
fn sighup_reloads_and_a_second_daemon_is_refused() {
    if !require_root() {
        return;
    }
    let d = Berthd::start(&[]);
    std::fs::write(
        d.dir.path().join("daemon.json"),
        r#"{"registry-mirrors": ["https://mirror.example"]}"#,
    )
    .unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(d.pid() as i32).unwrap(),
        rustix::process::Signal::HUP,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, body) = d.api("GET", "/info", None);
        if json(&body)["RegistryConfig"]["Mirrors"][0] == "https://mirror.example" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload:\n{}",
            d.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A second daemon on the same socket refuses to start.
    let out = std::process::Command::new(berth_integration::runtime::berth_binary("berthd"))
        .arg("--config-file")
        .arg(d.dir.path().join("none.json"))
        .arg("--data-root")
        .arg(d.dir.path().join("data2"))
        .arg("--exec-root")
        .arg(d.dir.path().join("exec2"))
        .arg("-H")
        .arg(format!("unix://{}", d.socket.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already serving"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d.api("GET", "/_ping", None).0, 200);
    // An open `docker events` does not hold the daemon up when it stops.
    let mut events = std::process::Command::new("curl")
        .args([
            "-sN",
            "--unix-socket",
            d.socket.to_str().unwrap(),
            "http://berth/events",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    d.stop();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "stopping took {:?} with an events stream open",
        started.elapsed()
    );
    let status = events.wait().unwrap();
    assert!(
        status.success(),
        "the events stream did not end cleanly: {status}"
    );
}
