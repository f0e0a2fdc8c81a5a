//! Volumes and mounts through berthd and the real docker CLI: named and
//! anonymous volumes (the image's VOLUME with copy-up), data across
//! container removal, daemon restarts and `kill -9`, sharing, `rm -v`,
//! volumes in use, read-only binds and rootfs, tmpfs volumes, `docker cp`
//! into and out of volumes (and a symlink that must stay inside),
//! `diff`/`export` leaving volumes out, `--volumes-from`, prune. Each test
//! ends with `Berthd::stop`, which checks that no mount, shim or cgroup is
//! left; the volume tests also check that removed volumes leave no
//! directory. Containers run with `--network none`: volumes need no
//! networking.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_integration::daemon::{has_docker, Berthd};
use berth_integration::fixtures::build_busybox_rootfs;
use berth_integration::{require_root, text};
use serde_json::Value;

/// A daemon with two images: `bb` (busybox) and `bbvol` (busybox with
/// `VOLUME /data`, whose /data holds `seed` and is 1000:1001, mode 0750).
fn daemon_with_images() -> Berthd {
    let d = Berthd::start(&[]);
    let rootfs = d.dir.path().join("img-rootfs");
    build_busybox_rootfs(&rootfs).expect("busybox rootfs");
    let data = rootfs.join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("seed"), b"from the image\n").unwrap();
    std::fs::write(data.join("sub/deep"), b"deep\n").unwrap();
    std::os::unix::fs::chown(&data, Some(1000), Some(1001)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
    let tar = d.dir.path().join("img.tar");
    let out = std::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["--numeric-owner", "-cf"])
        .arg(&tar)
        .arg(".")
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar: {}", text(&out.stderr));
    std::fs::remove_dir_all(&rootfs).unwrap();
    let t = tar.to_str().unwrap();
    d.docker_ok(&["import", "-c", "CMD [\"sh\"]", t, "bb"]);
    d.docker_ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "VOLUME /data",
        t,
        "bbvol",
    ]);
    std::fs::remove_file(&tar).unwrap();
    d
}

fn volumes_dir(d: &Berthd) -> PathBuf {
    d.data_root.join("volumes")
}

fn inspect(d: &Berthd, what: &str, name: &str) -> Value {
    let out = d.docker_ok(&[what, "inspect", name]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect: {e}: {out}"));
    v[0].clone()
}

/// `docker run --rm --network none ARGS` and its stdout.
fn run(d: &Berthd, args: &[&str]) -> String {
    let mut all = vec!["run", "--rm", "--network", "none"];
    all.extend_from_slice(args);
    d.docker_ok(&all)
}

fn fails(d: &Berthd, args: &[&str]) -> String {
    let out = d.docker(args);
    assert!(
        !out.status.success(),
        "docker {args:?} succeeded: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

/// Mount points under `dir` in this (the host's) namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| Path::new(mp).starts_with(dir))
        .map(str::to_string)
        .collect()
}

fn volume_names(d: &Berthd) -> Vec<String> {
    d.docker_ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn named_volumes_keep_data_across_removal_restarts_and_kill_9() {
    if !require_root() || !has_docker() {
        return;
    }
    let mut d = daemon_with_images();
    assert_eq!(
        d.docker_ok(&["volume", "create", "--label", "k=v", "keep"])
            .trim(),
        "keep"
    );
    let v = inspect(&d, "volume", "keep");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["k"], "v");
    assert_eq!(v["Options"], Value::Null);
    let mountpoint = volumes_dir(&d).join("keep/_data");
    assert_eq!(v["Mountpoint"], mountpoint.to_str().unwrap());
    // Idempotent create.
    assert_eq!(d.docker_ok(&["volume", "create", "keep"]).trim(), "keep");

    run(
        &d,
        &["-v", "keep:/v", "bb", "sh", "-c", "echo one > /v/file"],
    );
    assert_eq!(std::fs::read(mountpoint.join("file")).unwrap(), b"one\n");
    assert_eq!(run(&d, &["-v", "keep:/v", "bb", "cat", "/v/file"]), "one\n");

    // Two containers share it at once.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "writer",
        "--network",
        "none",
        "-v",
        "keep:/v",
        "bb",
        "sh",
        "-c",
        "echo two > /v/shared; sleep 600",
    ]);
    let mut seen = String::new();
    for _ in 0..50 {
        seen = run(
            &d,
            &[
                "-v",
                "keep:/w:ro",
                "bb",
                "sh",
                "-c",
                "cat /w/shared 2>/dev/null || true",
            ],
        );
        if seen == "two\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(seen, "two\n");
    let c = inspect(&d, "container", "writer");
    let m = &c["Mounts"][0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Name"], "keep");
    assert_eq!(m["Source"], mountpoint.to_str().unwrap());
    assert_eq!(m["Destination"], "/v");
    assert_eq!(m["Driver"], "local");
    assert_eq!(m["Mode"], "z");
    assert_eq!(m["RW"], true);
    assert_eq!(c["HostConfig"]["Binds"][0], "keep:/v");
    // ps --filter volume=
    assert_eq!(
        d.docker_ok(&["ps", "-q", "--filter", "volume=keep"])
            .lines()
            .count(),
        1
    );

    // kill -9 of berthd, then a restart: the volume and its user are there.
    d.crash();
    d.restart();
    assert_eq!(
        run(&d, &["-v", "keep:/v", "bb", "cat", "/v/shared"]),
        "two\n"
    );
    let err = fails(&d, &["volume", "rm", "keep"]);
    assert!(err.contains("volume is in use"), "{err}");
    d.docker_ok(&["rm", "-f", "writer"]);
    // A graceful restart too.
    d.restart();
    assert_eq!(run(&d, &["-v", "keep:/v", "bb", "cat", "/v/file"]), "one\n");
    d.docker_ok(&["volume", "rm", "keep"]);
    assert!(!volumes_dir(&d).join("keep").exists());
    let err = fails(&d, &["volume", "inspect", "keep"]);
    assert!(err.contains("no such volume"), "{err}");
    d.stop();
}

#[test]
fn image_volumes_are_anonymous_filled_from_the_image_and_go_with_rm_v() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = daemon_with_images();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "img",
        "--network",
        "none",
        "-v",
        "named:/named-data",
        "bbvol",
        "sleep",
        "600",
    ]);
    let out = d.docker_ok(&[
        "exec",
        "img",
        "sh",
        "-c",
        "cat /data/seed /data/sub/deep; stat -c '%u:%g:%a' /data",
    ]);
    assert_eq!(out, "from the image\ndeep\n1000:1001:750\n");
    let c = inspect(&d, "container", "img");
    let mounts = c["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    let anon = mounts.iter().find(|m| m["Destination"] == "/data").unwrap();
    let anon_name = anon["Name"].as_str().unwrap().to_string();
    assert_eq!(anon_name.len(), 64);
    assert_eq!(anon["Mode"], "");
    assert_eq!(anon["Type"], "volume");
    let data = volumes_dir(&d).join(&anon_name).join("_data");
    let meta = std::fs::metadata(&data).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (1000, 1001, 0o750)
    );
    // The image's directory itself is untouched: the container writes to
    // the volume.
    d.docker_ok(&["exec", "img", "sh", "-c", "echo new > /data/new"]);
    assert!(data.join("new").exists());
    // diff leaves the volume out; export too.
    let diff = d.docker_ok(&["diff", "img"]);
    assert!(!diff.contains("/data"), "{diff}");
    let export = d.dir.path().join("export.tar");
    d.docker_ok(&["export", "-o", export.to_str().unwrap(), "img"]);
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&export)
        .output()
        .unwrap();
    let listing = text(&listing.stdout);
    assert!(
        listing.contains("data/seed"),
        "the image's files are exported"
    );
    assert!(
        !listing.contains("data/new"),
        "volume content must not be exported: {listing}"
    );
    std::fs::remove_file(&export).unwrap();

    // A named volume over a directory the image lacks: empty; over the
    // image's /data: filled, unless nocopy.
    assert_eq!(
        run(&d, &["-v", "filled:/data", "bbvol", "cat", "/data/seed"]),
        "from the image\n"
    );
    assert_eq!(
        run(
            &d,
            &["-v", "bare:/data:nocopy", "bbvol", "ls", "-A", "/data"]
        ),
        ""
    );
    assert_eq!(
        run(
            &d,
            &[
                "--mount",
                "type=volume,source=bare2,target=/data,volume-nocopy",
                "bbvol",
                "ls",
                "-A",
                "/data"
            ]
        ),
        ""
    );

    // rm -v removes the anonymous volume, not the named one.
    d.docker_ok(&["rm", "-f", "-v", "img"]);
    let names = volume_names(&d);
    assert!(!names.contains(&anon_name), "{names:?}");
    assert!(!volumes_dir(&d).join(&anon_name).exists());
    assert!(names.contains(&"named".to_string()), "{names:?}");
    // run --rm removes its anonymous volumes too.
    let before = volume_names(&d).len();
    run(&d, &["-v", "/scratch", "bbvol", "true"]);
    assert_eq!(volume_names(&d).len(), before);
    for v in ["named", "filled", "bare", "bare2"] {
        d.docker_ok(&["volume", "rm", v]);
    }
    assert!(volume_names(&d).is_empty());
    assert_eq!(std::fs::read_dir(volumes_dir(&d)).unwrap().count(), 0);
    d.stop();
}

#[test]
fn volumes_from_and_in_use_conflicts() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = daemon_with_images();
    d.docker_ok(&[
        "create",
        "--name",
        "data",
        "--network",
        "none",
        "-v",
        "shared:/shared",
        "bbvol",
    ]);
    run(
        &d,
        &[
            "--volumes-from",
            "data",
            "bb",
            "sh",
            "-c",
            "echo hi > /shared/x; cat /data/seed",
        ],
    );
    assert_eq!(run(&d, &["-v", "shared:/s", "bb", "cat", "/s/x"]), "hi\n");
    let err = fails(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--volumes-from",
            "data:ro",
            "bb",
            "touch",
            "/shared/y",
        ],
    );
    assert!(err.contains("Read-only file system"), "{err}");
    let (status, body) = d.api("DELETE", "/volumes/shared", None);
    assert_eq!(status, 409, "{}", text(&body));
    let message = serde_json::from_slice::<Value>(&body).unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    let id = inspect(&d, "container", "data")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(message, format!("remove shared: volume is in use - [{id}]"));
    // force does not override "in use"; it forgives a missing volume.
    let (status, _) = d.api("DELETE", "/volumes/shared?force=1", None);
    assert_eq!(status, 409);
    let (status, _) = d.api("DELETE", "/volumes/nope?force=1", None);
    assert_eq!(status, 204);
    d.api_error(
        "DELETE",
        "/volumes/nope",
        None,
        404,
        "get nope: no such volume",
    );
    d.api_error(
        "POST",
        "/volumes/create",
        Some(br#"{"Name":"a/b"}"#),
        400,
        "includes invalid characters for a local volume name",
    );
    d.api_error(
        "POST",
        "/volumes/create",
        Some(br#"{"Name":"x1","DriverOpts":{"type":"tmpfs"}}"#),
        400,
        "missing required option: \"device\"",
    );
    d.api_error(
        "POST",
        "/volumes/create",
        Some(br#"{"Name":"x2","Driver":"nope"}"#),
        404,
        "plugin \"nope\" not found",
    );
    let err = fails(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "bad name:/x",
            "bb",
            "true",
        ],
    );
    assert!(
        err.contains("includes invalid characters for a local volume name"),
        "{err}"
    );
    let err = fails(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--volumes-from",
            "ghost",
            "bb",
            "true",
        ],
    );
    assert!(err.contains("No such container: ghost"), "{err}");
    d.docker_ok(&["rm", "-v", "data"]);
    // `shared` is named: rm -v keeps it; the image's anonymous one went.
    assert_eq!(volume_names(&d), ["shared"]);
    d.docker_ok(&["volume", "rm", "shared"]);
    d.stop();
}

#[test]
fn binds_read_only_rootfs_and_missing_sources() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = daemon_with_images();
    let host = d.dir.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), b"host\n").unwrap();
    let h = host.to_str().unwrap();
    assert_eq!(
        run(&d, &["-v", &format!("{h}:/h:ro"), "bb", "cat", "/h/f"]),
        "host\n"
    );
    let err = fails(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &format!("{h}:/h:ro"),
            "bb",
            "touch",
            "/h/g",
        ],
    );
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!host.join("g").exists());
    let c = {
        d.docker_ok(&[
            "create",
            "--name",
            "bc",
            "--network",
            "none",
            "-v",
            &format!("{h}:/h:ro"),
            "bb",
        ]);
        inspect(&d, "container", "bc")
    };
    let m = &c["Mounts"][0];
    assert_eq!(
        (
            m["Type"].as_str(),
            m["Source"].as_str(),
            m["RW"].as_bool(),
            m["Mode"].as_str(),
            m["Propagation"].as_str()
        ),
        (
            Some("bind"),
            Some(h),
            Some(false),
            Some("ro"),
            Some("rprivate")
        )
    );
    d.docker_ok(&["rm", "bc"]);

    // --read-only with a writable volume.
    let out = run(
        &d,
        &[
            "--read-only",
            "-v",
            "rw:/data",
            "bb",
            "sh",
            "-c",
            "echo ok > /data/f && cat /data/f; touch /etc/x 2>&1 || true",
        ],
    );
    assert!(out.starts_with("ok\n"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");

    // -v creates a missing host directory; --mount refuses it.
    let missing = d.dir.path().join("made/by/-v");
    run(
        &d,
        &["-v", &format!("{}:/m", missing.display()), "bb", "true"],
    );
    assert!(missing.is_dir());
    let absent = d.dir.path().join("absent");
    let err = fails(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--mount",
            &format!("type=bind,source={},target=/m", absent.display()),
            "bb",
            "true",
        ],
    );
    assert!(
        err.contains(&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            absent.display()
        )),
        "{err}"
    );
    assert!(!absent.exists());
    d.docker_ok(&["volume", "rm", "rw"]);
    d.stop();
}

#[test]
fn tmpfs_volumes_live_while_a_container_uses_them() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = daemon_with_images();
    d.docker_ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m,uid=1000",
        "tv",
    ]);
    let v = inspect(&d, "volume", "tv");
    assert_eq!(v["Options"]["type"], "tmpfs");
    let data = volumes_dir(&d).join("tv/_data");
    assert!(mounts_under(&data).is_empty(), "mounted before any use");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "tc",
        "--network",
        "none",
        "-v",
        "tv:/t",
        "bb",
        "sleep",
        "600",
    ]);
    let inside = d.docker_ok(&[
        "exec",
        "tc",
        "sh",
        "-c",
        "grep ' /t ' /proc/mounts; echo x > /t/f; stat -c %u /t",
    ]);
    assert!(inside.starts_with("tmpfs /t tmpfs "), "{inside}");
    assert!(inside.contains("size=1024k"), "{inside}");
    assert!(inside.ends_with("1000\n"), "{inside}");
    assert_eq!(mounts_under(&data), [data.to_str().unwrap()]);
    assert_eq!(std::fs::read(data.join("f")).unwrap(), b"x\n");
    // A second user shares the same tmpfs.
    assert_eq!(run(&d, &["-v", "tv:/t", "bb", "cat", "/t/f"]), "x\n");
    assert_eq!(
        mounts_under(&data).len(),
        1,
        "still mounted for the first user"
    );
    d.docker_ok(&["rm", "-f", "tc"]);
    assert!(
        mounts_under(&data).is_empty(),
        "unmounted after the last user"
    );
    assert_eq!(run(&d, &["-v", "tv:/t", "bb", "ls", "-A", "/t"]), "");
    d.docker_ok(&["volume", "rm", "tv"]);
    d.stop();
}

#[test]
fn cp_reaches_volumes_and_symlinks_stay_inside() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = daemon_with_images();
    let file = d.dir.path().join("in.txt");
    std::fs::write(&file, b"copied in\n").unwrap();
    let f = file.to_str().unwrap();
    d.docker_ok(&[
        "create",
        "--name",
        "cpc",
        "--network",
        "none",
        "-v",
        "cpv:/vol",
        "bb",
        "sleep",
        "600",
    ]);
    let data = volumes_dir(&d).join("cpv/_data");
    // Stopped: into the volume, and out of it.
    d.docker_ok(&["cp", f, "cpc:/vol/in.txt"]);
    assert_eq!(std::fs::read(data.join("in.txt")).unwrap(), b"copied in\n");
    let out = d.dir.path().join("out.txt");
    d.docker_ok(&["cp", "cpc:/vol/in.txt", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), b"copied in\n");
    std::fs::remove_file(&out).unwrap();
    // Running: the same, and the container sees it.
    d.docker_ok(&["start", "cpc"]);
    d.docker_ok(&["cp", f, "cpc:/vol/second.txt"]);
    assert_eq!(
        d.docker_ok(&["exec", "cpc", "cat", "/vol/second.txt"]),
        "copied in\n"
    );
    // A symlink in the volume pointing at the host's /etc: resolved in the
    // container's root, so it names the container's /etc.
    let canary = format!("berth-canary-{}", std::process::id());
    d.docker_ok(&[
        "exec",
        "cpc",
        "sh",
        "-c",
        "ln -s /etc /vol/evil && ln -s ../../../../../../../etc /vol/up",
    ]);
    for link in ["evil", "up"] {
        d.docker_ok(&["cp", f, &format!("cpc:/vol/{link}/{canary}")]);
        assert!(
            !Path::new("/etc").join(&canary).exists(),
            "cp through /vol/{link} wrote a host file"
        );
        let got = d.docker_ok(&["exec", "cpc", "cat", &format!("/etc/{canary}")]);
        assert_eq!(got, "copied in\n");
        d.docker_ok(&["exec", "cpc", "rm", &format!("/etc/{canary}")]);
        let passwd = d.dir.path().join(format!("passwd-{link}"));
        d.docker_ok(&[
            "cp",
            &format!("cpc:/vol/{link}/passwd"),
            passwd.to_str().unwrap(),
        ]);
        let container_passwd = d.docker_ok(&["exec", "cpc", "cat", "/etc/passwd"]);
        assert_eq!(std::fs::read_to_string(&passwd).unwrap(), container_passwd);
        std::fs::remove_file(&passwd).unwrap();
    }
    d.docker_ok(&["stop", "-t", "0", "cpc"]);
    // Stopped again: the symlinks still resolve inside.
    d.docker_ok(&["cp", f, &format!("cpc:/vol/evil/{canary}")]);
    assert!(!Path::new("/etc").join(&canary).exists());
    // A read-only container takes files into its writable volume only.
    d.docker_ok(&[
        "create",
        "--name",
        "ro",
        "--network",
        "none",
        "--read-only",
        "-v",
        "cpv:/vol",
        "bb",
    ]);
    d.docker_ok(&["cp", f, "ro:/vol/ro.txt"]);
    assert!(data.join("ro.txt").exists());
    let err = fails(&d, &["cp", f, "ro:/etc/x"]);
    assert!(err.contains("read-only"), "{err}");
    let err = fails(&d, &["cp", f, "ro:/vol/evil/x"]);
    assert!(
        err.contains("read-only"),
        "a symlink out of the volume must not bypass --read-only: {err}"
    );
    d.docker_ok(&["rm", "-f", "cpc", "ro"]);
    d.docker_ok(&["volume", "rm", "cpv"]);
    assert!(!volumes_dir(&d).join("cpv").exists());
    d.stop();
}

#[test]
fn prune_removes_unused_volumes() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = daemon_with_images();
    for v in ["p1", "p2"] {
        d.docker_ok(&["volume", "create", v]);
    }
    d.docker_ok(&["volume", "create", "--label", "keep=1", "p3"]);
    d.docker_ok(&[
        "create",
        "--name",
        "user",
        "--network",
        "none",
        "-v",
        "p1:/x",
        "bbvol",
    ]);
    let anon = inspect(&d, "container", "user")["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/data")
        .unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(volumes_dir(&d).join("p2/_data/f"), vec![7u8; 5000]).unwrap();
    // dangling filter.
    let dangling = d.docker_ok(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling, "p2\np3\n");
    // Label filters narrow the prune (API 1.41: named volumes too).
    let prune = |path: &str| -> Value {
        let (status, body) = d.api("POST", path, None);
        assert_eq!(status, 200, "{path}: {}", text(&body));
        serde_json::from_slice(&body).unwrap()
    };
    let r = prune("/v1.41/volumes/prune?filters=%7B%22label!%22%3A%7B%22keep%22%3Atrue%7D%7D");
    assert_eq!(r["VolumesDeleted"], serde_json::json!(["p2"]));
    assert_eq!(r["SpaceReclaimed"], 5000);
    // From API 1.42 only anonymous volumes go, unless `all` says so.
    let r = prune("/v1.42/volumes/prune");
    assert!(
        r["VolumesDeleted"].as_array().is_none_or(Vec::is_empty),
        "{r}"
    );
    let r = prune("/v1.44/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D");
    assert_eq!(r["VolumesDeleted"], serde_json::json!(["p3"]));
    let mut left = volume_names(&d);
    left.sort();
    let mut want = vec![anon.clone(), "p1".to_string()];
    want.sort();
    assert_eq!(left, want);
    let df = d.docker_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert!(df.contains("Local Volumes 2 2"), "{df}");
    d.docker_ok(&["rm", "user"]);
    // At 1.41 (docker's CLI before 23), `system prune --volumes` takes
    // named volumes too.
    let out = d.sh_ok("DOCKER_API_VERSION=1.41 docker system prune -f --volumes");
    assert!(out.contains("Deleted Volumes:"), "{out}");
    assert!(volume_names(&d).is_empty());
    assert_eq!(std::fs::read_dir(volumes_dir(&d)).unwrap().count(), 0);
    d.stop();
}
