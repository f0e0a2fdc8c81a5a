//! A container's files and settings from outside, through berthd and the
//! real docker CLI: `docker cp` both ways (running and stopped containers,
//! symlinks that point out of the rootfs, hostile tars through the API),
//! `docker export`, `docker diff`, `docker update` (checked in the
//! container's cgroup) and healthchecks. Each test ends with
//! `Berthd::stop`, which checks that no shim, mount or cgroup is left.

use std::path::Path;
use std::time::Duration;

use berth_integration::daemon::{has_docker, Berthd};
use berth_integration::tarball::{end as tar_end, entry as tar_entry};
use berth_integration::{eventually, require_root, text};
use serde_json::Value;

fn exec(d: &Berthd, c: &str, script: &str) -> String {
    d.docker_ok(&["exec", c, "sh", "-c", script])
}

/// The names in a tar file (GNU tar's listing).
fn tar_names(tar: &Path) -> Vec<String> {
    let out = std::process::Command::new("tar")
        .arg("-tf")
        .arg(tar)
        .output()
        .expect("running tar");
    assert!(out.status.success(), "tar -tf: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

/// The decoded `X-Docker-Container-Path-Stat` of a HEAD answer (curl -I
/// writes the headers where the body would go).
fn path_stat(headers: &[u8]) -> Value {
    let h = text(headers);
    let line = h
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-docker-container-path-stat:")
        })
        .unwrap_or_else(|| panic!("no path stat header in {h}"));
    let b64 = line.split_once(':').unwrap().1.trim();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s '{b64}' | base64 -d"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("path stat {b64}: {e}: {}", text(&out.stdout)))
}

#[test]
fn cp_both_ways() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    std::fs::write(host.join("tree/a.txt"), "alpha\n").unwrap();
    std::fs::write(host.join("tree/sub/b.txt"), "beta\n").unwrap();
    std::fs::write(host.join("single.txt"), "single\n").unwrap();
    d.docker_ok(&["run", "-d", "--name", "files", "bb:1", "sleep", "1000"]);

    // host -> container: a directory into an existing one, a file under a
    // new name.
    let tree = host.join("tree");
    d.docker_ok(&["cp", tree.to_str().unwrap(), "files:/tmp/"]);
    assert_eq!(
        exec(&d, "files", "cat /tmp/tree/a.txt /tmp/tree/sub/b.txt"),
        "alpha\nbeta\n"
    );
    let single = host.join("single.txt");
    d.docker_ok(&["cp", single.to_str().unwrap(), "files:/tmp/renamed.txt"]);
    assert_eq!(exec(&d, "files", "cat /tmp/renamed.txt"), "single\n");
    // No staging directory is left behind.
    assert_eq!(
        exec(&d, "files", "ls -a /tmp | grep -c berth-cp || true").trim(),
        "0"
    );

    // container -> host: a directory with a symlink, a single file.
    exec(
        &d,
        "files",
        "mkdir -p /data/x && echo hi > /data/x/f && ln -s /etc /data/etclink && chmod 0751 /data/x",
    );
    let out = d.dir.path().join("out");
    d.docker_ok(&["cp", "files:/data", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("x/f")).unwrap(), "hi\n");
    assert_eq!(
        std::fs::read_link(out.join("etclink")).unwrap(),
        Path::new("/etc")
    );
    let out_file = d.dir.path().join("f-copy");
    d.docker_ok(&["cp", "files:/data/x/f", out_file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "hi\n");
    // `docker cp c:/dir/. existing` copies the contents.
    let contents = d.dir.path().join("contents");
    std::fs::create_dir_all(&contents).unwrap();
    d.docker_ok(&["cp", "files:/data/x/.", contents.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(contents.join("f")).unwrap(), "hi\n");
    // ... and into a new directory (docker names the entries `./...`).
    let fresh = d.dir.path().join("fresh");
    d.docker_ok(&["cp", "files:/data/x/.", fresh.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(fresh.join("f")).unwrap(), "hi\n");
    // The whole root (entries named `/...`).
    let whole = d.dir.path().join("whole");
    d.docker_ok(&["cp", "files:/", whole.to_str().unwrap()]);
    assert!(whole.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_to_string(whole.join("data/x/f")).unwrap(),
        "hi\n"
    );
    // The tar's entries are named after the requested path.
    let (status, body) = d.api("GET", "/containers/files/archive?path=/data/x", None);
    assert_eq!(status, 200, "{}", text(&body));
    let tarfile = d.dir.path().join("x.tar");
    std::fs::write(&tarfile, &body).unwrap();
    let mut names = tar_names(&tarfile);
    names.sort();
    assert_eq!(names, ["x", "x/f"]);

    // Symlinks pointing out of the rootfs resolve inside it.
    let canary = d.dir.path().join("host-canary");
    std::fs::write(&canary, "HOST SECRET\n").unwrap();
    let canary_s = canary.to_str().unwrap();
    exec(
        &d,
        "files",
        &format!(
            "ln -s {canary_s} /data/abs && ln -s ../../../../../../../../../..{canary_s} /data/rel && ln -s / /data/root"
        ),
    );
    // The link itself is archived, with its target resolved in the root.
    let (status, hdrs) = d.api("HEAD", "/containers/files/archive?path=/data/abs", None);
    assert_eq!(status, 200, "{}", text(&hdrs));
    let st = path_stat(&hdrs);
    assert_eq!(st["name"], "abs");
    assert_eq!(st["linkTarget"], canary_s);
    assert_ne!(st["mode"].as_u64().unwrap() & (1 << 27), 0, "{st}");
    // Following it finds nothing: the host file is not in the container.
    for p in ["/data/abs/", "/data/rel/", &format!("/data/root{canary_s}")] {
        d.api_error(
            "GET",
            &format!("/containers/files/archive?path={p}"),
            None,
            404,
            "Could not find the file",
        );
    }
    let out = d.docker(&[
        "cp",
        "-L",
        "files:/data/abs",
        d.dir.path().join("followed").to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(!d.dir.path().join("followed").exists());
    // Once the container has a file there, that one is what comes out.
    exec(
        &d,
        "files",
        &format!("mkdir -p $(dirname {canary_s}) && echo CONTAINER > {canary_s}"),
    );
    let followed = d.dir.path().join("followed");
    d.docker_ok(&["cp", "-L", "files:/data/rel", followed.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&followed).unwrap(), "CONTAINER\n");
    let (status, body) = d.api(
        "GET",
        &format!("/containers/files/archive?path=/data/root{canary_s}"),
        None,
    );
    assert_eq!(status, 200);
    assert!(text(&body).contains("CONTAINER") && !text(&body).contains("HOST SECRET"));
    // Copying *into* a path through such a link stays inside too.
    d.docker_ok(&["cp", single.to_str().unwrap(), "files:/data/root/tmp/"]);
    assert_eq!(exec(&d, "files", "cat /tmp/single.txt"), "single\n");

    // Errors in docker's words.
    let (status, _) = d.api("HEAD", "/containers/files/archive?path=/nope", None);
    assert_eq!(status, 404);
    d.api_error(
        "GET",
        "/containers/files/archive?path=/nope",
        None,
        404,
        "Could not find the file /nope in container files",
    );
    d.api_error("GET", "/containers/files/archive?path=", None, 400, "path");
    d.api_error(
        "PUT",
        "/containers/files/archive?path=/data/x/f",
        Some(b""),
        400,
        "extraction point is not a directory",
    );
    d.api_error(
        "PUT",
        "/containers/files/archive?path=/nowhere",
        Some(b""),
        404,
        "Could not find the file /nowhere",
    );
    d.api_error(
        "GET",
        "/containers/nosuch/archive?path=/",
        None,
        404,
        "No such container",
    );
    // noOverwriteDirNonDir: a file may not replace a directory (the CLI
    // always asks for it).
    let mut t = Vec::new();
    tar_entry(&mut t, "x", b'0', "", b"not a dir\n");
    tar_end(&mut t);
    d.api_error(
        "PUT",
        "/containers/files/archive?path=/data&noOverwriteDirNonDir=1",
        Some(&t),
        400,
        "cannot overwrite directory",
    );
    assert_eq!(exec(&d, "files", "cat /data/x/f"), "hi\n");
    // Without the flag it does, as docker's untar.
    let (status, body) = d.api("PUT", "/containers/files/archive?path=/data", Some(&t));
    assert_eq!(status, 200, "{}", text(&body));
    assert_eq!(exec(&d, "files", "cat /data/x"), "not a dir\n");

    // The /etc files the container sees bind-mounted are what comes out.
    let id = d.inspect("files")["Id"].as_str().unwrap().to_string();
    let hostname = d.dir.path().join("hostname");
    d.docker_ok(&["cp", "files:/etc/hostname", hostname.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&hostname).unwrap(),
        format!("{}\n", &id[..12])
    );
    // -a (copyUIDGID) gives the files to the container's user.
    d.docker_ok(&[
        "run", "-d", "--name", "owned", "-u", "nobody", "bb:1", "sleep", "1000",
    ]);
    d.docker_ok(&["cp", "-a", single.to_str().unwrap(), "owned:/tmp/"]);
    assert_eq!(
        exec(&d, "owned", "stat -c %u:%g /tmp/single.txt").trim(),
        "65534:65534"
    );
    d.docker_ok(&["rm", "-f", "owned"]);

    // A stopped container: its rootfs is mounted for the copy only.
    d.docker_ok(&["stop", "-t", "1", "files"]);
    d.docker_ok(&["cp", single.to_str().unwrap(), "files:/root/"]);
    let back = d.dir.path().join("back.txt");
    d.docker_ok(&["cp", "files:/tmp/renamed.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "single\n");
    let rootfs = d
        .data_root
        .join("containers")
        .join(d.inspect("files")["Id"].as_str().unwrap())
        .join("rootfs");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(rootfs.to_str().unwrap()),
        "the rootfs stayed mounted"
    );
    d.docker_ok(&["start", "files"]);
    assert_eq!(exec(&d, "files", "cat /root/single.txt"), "single\n");
    d.docker_ok(&["rm", "-f", "files"]);
    d.stop();
}

#[test]
fn hostile_archives_are_refused() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&["run", "-d", "--name", "target", "bb:1", "sleep", "1000"]);
    let victim_dir = d.dir.path().join("victim");
    std::fs::create_dir_all(&victim_dir).unwrap();
    std::fs::write(victim_dir.join("keep"), "untouched\n").unwrap();
    let victim = victim_dir
        .to_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    let before = std::fs::read_dir(&victim_dir).unwrap().count();

    // `..` that climbs out of the root: refused, naming the entry.
    let mut t = Vec::new();
    tar_entry(&mut t, "ok.txt", b'0', "", b"fine\n");
    let climb = format!("../../../../../../../../../../{victim}/pwned");
    tar_entry(&mut t, &climb, b'0', "", b"pwned\n");
    tar_end(&mut t);
    d.api_error(
        "PUT",
        "/containers/target/archive?path=/tmp",
        Some(&t),
        400,
        "pwned",
    );
    // An absolute symlink, then a file written through it.
    let mut t = Vec::new();
    tar_entry(&mut t, "evil", b'2', &format!("/{victim}"), b"");
    tar_entry(&mut t, "evil/pwned", b'0', "", b"pwned\n");
    tar_end(&mut t);
    let (status, body) = d.api("PUT", "/containers/target/archive?path=/tmp", Some(&t));
    assert!(status == 400 || status == 200, "{status}: {}", text(&body));
    // A symlink to / and a file through it; a hard link to a host file.
    let mut t = Vec::new();
    tar_entry(&mut t, "up", b'2', "/", b"");
    tar_entry(&mut t, &format!("up/{victim}/pwned"), b'0', "", b"pwned\n");
    tar_end(&mut t);
    let (status, body) = d.api("PUT", "/containers/target/archive?path=/tmp", Some(&t));
    assert!(status == 400 || status == 200, "{status}: {}", text(&body));
    let mut t = Vec::new();
    tar_entry(&mut t, "passwd-link", b'1', &format!("/{victim}/keep"), b"");
    tar_end(&mut t);
    d.api_error(
        "PUT",
        "/containers/target/archive?path=/tmp",
        Some(&t),
        400,
        "passwd-link",
    );
    // Garbage is a 400 too.
    d.api_error(
        "PUT",
        "/containers/target/archive?path=/tmp",
        Some(&[0x42u8; 3000]),
        400,
        "tar",
    );

    // Nothing outside the rootfs changed.
    assert_eq!(std::fs::read_dir(&victim_dir).unwrap().count(), before);
    assert_eq!(
        std::fs::read_to_string(victim_dir.join("keep")).unwrap(),
        "untouched\n"
    );
    assert!(!Path::new("/pwned").exists());
    // The refused archive left nothing in the container either (the first
    // entry of the `..` tar was valid), and no staging directory.
    let listing = exec(&d, "target", "ls -a /tmp");
    assert!(!listing.contains("ok.txt"), "{listing}");
    assert!(!listing.contains("berth-cp"), "{listing}");
    d.docker_ok(&["rm", "-f", "target"]);
    d.stop();
}

#[test]
fn export_and_diff() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&["run", "-d", "--name", "changed", "bb:1", "sleep", "1000"]);
    // Nothing changed yet: the runtime's mount points and docker's
    // /.dockerenv marker (an empty 0755 file) do not count.
    assert_eq!(d.docker_ok(&["diff", "changed"]), "");
    assert_eq!(
        exec(&d, "changed", "stat -c '%a %s' /.dockerenv"),
        "755 0\n"
    );
    exec(
        &d,
        "changed",
        "touch /newfile && mkdir -p /newdir/deep && echo x > /newdir/deep/f && \
         rm /bin/yes && echo more >> /etc/group && \
         rm -rf /usr && mkdir -p /usr/bin && touch /usr/bin/fresh",
    );
    let out = d.docker_ok(&["diff", "changed"]);
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "A /newfile",
        "A /newdir",
        "A /newdir/deep",
        "A /newdir/deep/f",
        "C /bin",
        "D /bin/yes",
        "C /etc/group",
        "C /usr",
        "A /usr/bin/fresh",
    ] {
        assert!(
            lines.contains(&want),
            "{want:?} missing from docker diff:\n{out}"
        );
    }
    // Runtime mount points are not the container's changes.
    for not in [
        "A /proc",
        "A /sys",
        "A /etc/hosts",
        "A /etc/hostname",
        "A /etc/resolv.conf",
    ] {
        assert!(!lines.contains(&not), "{not:?} in docker diff:\n{out}");
    }
    // The API's shape.
    let (status, body) = d.api("GET", "/containers/changed/changes", None);
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["Path"] == "/bin/yes" && c["Kind"] == 2));

    // export: the whole filesystem as the container sees it.
    let tarfile = d.dir.path().join("export.tar");
    d.sh_ok(&format!("docker export changed > {}", tarfile.display()));
    let names = tar_names(&tarfile);
    for want in [
        "bin/busybox",
        "newfile",
        "newdir/deep/f",
        "usr/bin/fresh",
        "etc/group",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from the export"
        );
    }
    assert!(
        !names.iter().any(|n| n == "bin/yes"),
        "a deleted file was exported"
    );
    // A stopped container exports too.
    d.docker_ok(&["stop", "-t", "1", "changed"]);
    let listing = d.sh_ok("docker export changed | tar -t | grep -c newdir/deep/f");
    assert_eq!(listing.trim(), "1");
    d.docker_ok(&["rm", "-f", "changed"]);
    d.stop();
}

/// The container's cgroup v1 (or v2) file for `controller`.
fn cgroup_file(pid: u64, controller: &str, file: &str) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cg.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        if ctrls.split(',').any(|c| c == controller) {
            let p = format!("/sys/fs/cgroup/{controller}{path}/{file}");
            return std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
        if ctrls.is_empty() && Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            let p = format!("/sys/fs/cgroup{path}/{file}");
            return std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    }
    panic!("no {controller} cgroup for {pid}: {cg}");
}

#[test]
fn update_resources() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    d.docker_ok(&["run", "-d", "--name", "limited", "bb:1", "sleep", "1000"]);
    let pid = d.inspect("limited")["State"]["Pid"].as_u64().unwrap();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let (mem_file, pids_file) = if v2 {
        ("memory.max", "pids.max")
    } else {
        ("memory.limit_in_bytes", "pids.max")
    };
    d.docker_ok(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--pids-limit",
        "50",
        "--cpu-shares",
        "512",
        "limited",
    ]);
    assert_eq!(
        cgroup_file(pid, "memory", mem_file).trim(),
        (64u64 << 20).to_string()
    );
    assert_eq!(cgroup_file(pid, "pids", pids_file).trim(), "50");
    let hc = &d.inspect("limited")["HostConfig"];
    assert_eq!(hc["Memory"], 64 << 20);
    assert_eq!(hc["MemorySwap"], 128 << 20);
    assert_eq!(hc["PidsLimit"], 50);
    assert_eq!(hc["CpuShares"], 512);
    // The limit holds inside: the 50th process cannot be forked.
    let out = d.docker(&[
        "exec",
        "limited",
        "sh",
        "-c",
        "for i in $(seq 1 60); do sleep 3 & done; wait",
    ]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("fork"), "{all}");
    // Unlimited again with -1.
    d.docker_ok(&["update", "--pids-limit", "-1", "limited"]);
    assert_eq!(cgroup_file(pid, "pids", pids_file).trim(), "max");
    // docker's checks and words.
    let out = d.docker(&["update", "--memory", "1m", "limited"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Minimum memory limit allowed is 6MB"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["update", "--memory", "256m", "limited"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("update the memoryswap at the same time"),
        "{}",
        text(&out.stderr)
    );
    // The restart policy too.
    d.docker_ok(&["update", "--restart", "on-failure:3", "limited"]);
    let rp = &d.inspect("limited")["HostConfig"]["RestartPolicy"];
    assert_eq!(rp["Name"], "on-failure");
    assert_eq!(rp["MaximumRetryCount"], 3);
    // A stopped container keeps the update for its next start.
    d.docker_ok(&["stop", "-t", "1", "limited"]);
    d.docker_ok(&[
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "192m",
        "--pids-limit",
        "30",
        "limited",
    ]);
    d.docker_ok(&["start", "limited"]);
    let pid = d.inspect("limited")["State"]["Pid"].as_u64().unwrap();
    assert_eq!(
        cgroup_file(pid, "memory", mem_file).trim(),
        (96u64 << 20).to_string()
    );
    assert_eq!(cgroup_file(pid, "pids", pids_file).trim(), "30");
    // The API's answer.
    let (status, body) = d.api(
        "POST",
        "/containers/limited/update",
        Some(br#"{"CpuShares": 256}"#),
    );
    assert_eq!(status, 200, "{}", text(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["Warnings"], serde_json::json!([]));
    d.api_error(
        "POST",
        "/containers/nosuch/update",
        Some(b"{}"),
        404,
        "No such container",
    );
    d.docker_ok(&["rm", "-f", "limited"]);
    d.stop();
}

#[test]
fn healthchecks() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let t0 = berth_integration::unix_secs();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "good",
        "--health-cmd",
        "test -e /tmp/ready && echo ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        // Failures while starting within the start period do not count.
        "--health-start-period",
        "30s",
        "bb:1",
        "sh",
        "-c",
        "sleep 2; touch /tmp/ready; exec sleep 1000",
    ]);
    // Starting first: its probe fails for two seconds, within the start
    // period, so the streak stays at 0.
    let h = &d.inspect("good")["State"]["Health"];
    assert_eq!(h["Status"], "starting", "{h}");
    std::thread::sleep(Duration::from_millis(800));
    let h = &d.inspect("good")["State"]["Health"];
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1, "{h}");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "bad",
        "--health-cmd",
        "echo failing; exit 1",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "bb:1",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "sleep 10",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "bb:1",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "none",
        "--no-healthcheck",
        "bb:1",
        "sleep",
        "1000",
    ]);
    eventually(20, "good to be healthy", || {
        d.inspect("good")["State"]["Health"]["Status"] == "healthy"
    });
    let h = d.inspect("good")["State"]["Health"].clone();
    assert_eq!(h["FailingStreak"], 0);
    let log = h["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    let last = log.last().unwrap();
    assert_eq!(last["ExitCode"], 0);
    assert_eq!(last["Output"], "ok\n");
    eventually(20, "bad to be unhealthy", || {
        d.inspect("bad")["State"]["Health"]["Status"] == "unhealthy"
    });
    let h = d.inspect("bad")["State"]["Health"].clone();
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    assert_eq!(h["Log"].as_array().unwrap().last().unwrap()["ExitCode"], 1);
    assert_eq!(
        h["Log"].as_array().unwrap().last().unwrap()["Output"],
        "failing\n"
    );
    eventually(20, "slow to time out", || {
        d.inspect("slow")["State"]["Health"]["Status"] == "unhealthy"
    });
    let h = d.inspect("slow")["State"]["Health"].clone();
    let out = h["Log"].as_array().unwrap()[0]["Output"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(out, "Health check exceeded timeout (300ms)");
    assert_eq!(h["Log"].as_array().unwrap()[0]["ExitCode"], -1);
    assert!(d.inspect("none")["State"].get("Health").is_none());
    // docker ps shows it, and filters on it.
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with("good Up") && l.ends_with("(healthy)")),
        "{ps}"
    );
    assert!(
        ps.lines()
            .any(|l| l.starts_with("bad Up") && l.ends_with("(unhealthy)")),
        "{ps}"
    );
    assert!(
        ps.lines()
            .any(|l| l.starts_with("none Up") && !l.contains('(')),
        "{ps}"
    );
    let healthy = d.docker_ok(&["ps", "--filter", "health=healthy", "--format", "{{.Names}}"]);
    assert_eq!(healthy.trim(), "good");
    // Events.
    let t1 = t0 + 120;
    let ev = d.docker_ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &t1.min(berth_integration::unix_secs() + 1).to_string(),
        "--format",
        "{{.Actor.Attributes.name}} {{.Action}}",
    ]);
    assert!(
        ev.lines().any(|l| l == "good health_status: healthy"),
        "{ev}"
    );
    assert!(
        ev.lines().any(|l| l == "bad health_status: unhealthy"),
        "{ev}"
    );
    // A stop keeps the last state, a start begins again.
    d.docker_ok(&["stop", "-t", "1", "bad"]);
    assert_eq!(d.inspect("bad")["State"]["Health"]["Status"], "unhealthy");
    d.docker_ok(&["start", "bad"]);
    let h = d.inspect("bad")["State"]["Health"].clone();
    assert!(
        h["Status"] == "starting" || h["Status"] == "unhealthy",
        "{h}"
    );
    // After a daemon restart the checks go on (starting over, as docker).
    let mut d = d;
    d.crash();
    d.restart();
    let h = d.inspect("good")["State"]["Health"].clone();
    assert_eq!(h["Status"], "starting", "{h}");
    eventually(20, "good to be healthy again", || {
        d.inspect("good")["State"]["Health"]["Status"] == "healthy"
    });
    eventually(20, "bad to be unhealthy again", || {
        d.inspect("bad")["State"]["Health"]["Status"] == "unhealthy"
    });
    d.docker_ok(&["rm", "-f", "good", "bad", "slow", "none"]);
    d.stop();
}
