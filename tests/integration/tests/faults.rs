//! berthd under faults, driven by the real docker CLI: many concurrent
//! `run --rm`, `kill -9` of the daemon in the middle of creates, starts,
//! removals and pulls, and `kill -9` of a container's shim. After each
//! fault every container must be in a state the daemon can explain
//! (listed, inspectable, removable; a running one has a live init, a
//! stopped one has no process left in its cgroup), and once everything is
//! removed nothing may remain: `Berthd::stop` checks shims, mounts and the
//! daemon's cgroup parent; these tests also check the container and shim
//! directories.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_integration::daemon::{cgroup_parent_of, has_docker, Berthd, LoopbackRegistry};
use berth_integration::{eventually, require_root, text};
use serde_json::Value;

/// What a docker command needs to reach a daemon, without borrowing it:
/// client threads keep running while the main thread kills the daemon.
#[derive(Clone)]
struct Client {
    socket: PathBuf,
    config: PathBuf,
    cwd: PathBuf,
}

impl Client {
    fn of(d: &Berthd) -> Client {
        Client {
            socket: d.socket.clone(),
            config: d.dir.path().join("docker-config"),
            cwd: d.dir.path().to_path_buf(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.args(["--kill-after=10", "120", "docker"])
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.config)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .current_dir(&self.cwd)
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running docker")
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting docker")
    }
}

/// A small xorshift generator seeded from the clock; the seed is printed
/// so a failing interleaving can be named.
struct Rng(u64);

impl Rng {
    fn new(what: &str) -> Rng {
        let seed = std::env::var("BERTH_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        eprintln!("{what}: seed {seed} (BERTH_FAULT_SEED={seed} repeats it)");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Whether `pid` is a process that has not exited (a zombie has: on a
/// machine whose pid 1 does not reap, an orphaned init stays one).
fn alive(pid: i64) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// Live processes in container `id`'s cgroup, in any hierarchy.
fn cgroup_processes(d: &Berthd, id: &str) -> Vec<i64> {
    let parent = cgroup_parent_of(d.dir.path());
    let mut pids = Vec::new();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return pids;
    };
    let mut roots: Vec<PathBuf> = hierarchies.flatten().map(|h| h.path()).collect();
    roots.push(PathBuf::from("/sys/fs/cgroup"));
    for h in roots {
        let procs = h
            .join(parent.trim_start_matches('/'))
            .join(id)
            .join("cgroup.procs");
        if let Ok(list) = std::fs::read_to_string(procs) {
            for p in list.lines().filter_map(|l| l.trim().parse::<i64>().ok()) {
                if alive(p) && !pids.contains(&p) {
                    pids.push(p);
                }
            }
        }
    }
    pids
}

/// berth-shim processes serving container `id`.
fn shims_of(id: &str) -> Vec<i32> {
    berth_integration::leaks::processes_where("cmdline", |c| {
        let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
        args.first().is_some_and(|a0| a0.ends_with(b"berth-shim"))
            && args
                .windows(2)
                .any(|w| w[0] == b"--id" && w[1] == id.as_bytes())
    })
    .into_iter()
    .filter(|p| alive(i64::from(*p)))
    .collect()
}

fn kill9(pid: i32) {
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .unwrap_or_else(|e| panic!("kill -9 {pid}: {e}"));
}

/// Every container the daemon lists must be consistent: inspectable, in
/// a state docker knows, a running one with a live init, a stopped one
/// with nothing left in its cgroup. Returns the ids.
fn check_consistent(d: &Berthd) -> Vec<String> {
    let listed = d.docker_ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Labels}}"]);
    let mut ids = Vec::new();
    for line in listed.lines() {
        let (id, labels) = line.split_once(' ').unwrap_or((line, ""));
        let (status, body) = d.api("GET", &format!("/containers/{id}/json"), None);
        if status == 404 && labels.contains("autoremove=1") {
            // A `run --rm` container the restore found running, which
            // has exited and been removed since the listing.
            continue;
        }
        assert_eq!(status, 200, "inspect {id}: {}\n{}", text(&body), d.log());
        let v: Value = serde_json::from_slice(&body).expect("inspect JSON");
        let id = &id.to_string();
        ids.push(id.clone());
        let state = &v["State"];
        let status = state["Status"].as_str().unwrap_or_default().to_string();
        let pid = state["Pid"].as_i64().unwrap_or(-1);
        match status.as_str() {
            "running" | "paused" => {
                assert!(
                    alive(pid),
                    "{id} is {status} but its pid {pid} is gone: {state}"
                );
                assert!(
                    !shims_of(id).is_empty(),
                    "{id} is {status} but has no shim: {state}"
                );
            }
            "created" | "exited" => {
                assert_eq!(pid, 0, "{id} is {status} with pid {pid}: {state}");
                let left = cgroup_processes(d, id);
                assert!(
                    left.is_empty(),
                    "{id} is {status} but processes {left:?} remain in its cgroup"
                );
                assert!(
                    shims_of(id).is_empty(),
                    "{id} is {status} but shims {:?} remain",
                    shims_of(id)
                );
            }
            other => panic!("{id} is in state {other:?} after a restart: {state}"),
        }
    }
    ids
}

/// Removes every container and checks that nothing of them remains on
/// disk: no container dir, no shim dir.
fn remove_all(d: &Berthd) {
    for id in d.docker_ok(&["ps", "-aq", "--no-trunc"]).lines() {
        d.docker_ok(&["rm", "-f", id]);
    }
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
    let left = |dir: PathBuf| -> Vec<String> {
        std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path().display().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    // A `run --rm` container's files go just after its removal is
    // reported (its monitor unmounts and deletes them): allow a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dirs = left(d.data_root.join("containers"));
        let shims = left(d.exec_root.join("c"));
        if dirs.is_empty() && shims.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "container dirs {dirs:?} and shim dirs {shims:?} remain\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn fifty_concurrent_run_rm() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let client = Client::of(&d);
    let started = Instant::now();
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let c = client.clone();
                s.spawn(move || c.run(&["run", "--rm", "bb:1", "true"]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("50 concurrent run --rm took {:?}", started.elapsed());
    let failed: Vec<String> = outs
        .iter()
        .filter(|o| !o.status.success())
        .map(|o| format!("{}: {}", o.status, text(&o.stderr)))
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed: {failed:#?}\n{}",
        failed.len(),
        d.log()
    );
    // --rm removes after the client saw the exit: give the last ones a moment.
    eventually(30, "every container removed", || {
        d.docker_ok(&["ps", "-aq"]).trim().is_empty()
    });
    remove_all(&d);
    d.stop();
}

/// One client's mix of operations, in a loop until `stop` is set: each
/// iteration makes a container and runs, starts or removes something.
fn churn(c: &Client, seed: u64, stop: &std::sync::atomic::AtomicBool) {
    let mut rng = Rng(seed | 1);
    let mut mine: Vec<String> = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match rng.below(5) {
            0 => {
                let _ = c.run(&["run", "--rm", "--label", "autoremove=1", "bb:1", "true"]);
            }
            1 => {
                let out = c.run(&[
                    "run",
                    "-d",
                    "bb:1",
                    "sh",
                    "-c",
                    "sleep 1000 & exec sleep 1000",
                ]);
                if out.status.success() {
                    mine.push(text(&out.stdout).trim().to_string());
                }
            }
            2 => {
                let out = c.run(&["create", "bb:1", "sleep", "1000"]);
                if out.status.success() {
                    let id = text(&out.stdout).trim().to_string();
                    let _ = c.run(&["start", &id]);
                    mine.push(id);
                }
            }
            3 => {
                let out = c.run(&["run", "-d", "bb:1", "sh", "-c", "exit 3"]);
                if out.status.success() {
                    mine.push(text(&out.stdout).trim().to_string());
                }
            }
            _ => {
                if !mine.is_empty() {
                    let id = mine.swap_remove(rng.below(mine.len() as u64) as usize);
                    let _ = c.run(&["rm", "-f", &id]);
                }
            }
        }
    }
}

#[test]
fn daemon_killed_during_create_start_and_rm() {
    if !require_root() || !has_docker() {
        return;
    }
    let mut d = Berthd::with_busybox(&[]);
    let mut rng = Rng::new("daemon_killed_during_create_start_and_rm");
    // A container that runs through every crash.
    let steady = d.docker_ok(&["run", "-d", "--name", "steady", "bb:1", "sleep", "1000"]);
    let steady = steady.trim().to_string();
    let steady_pid = d.inspect("steady")["State"]["Pid"].clone();
    for round in 0..4 {
        let client = Client::of(&d);
        let stop = std::sync::atomic::AtomicBool::new(false);
        let delay = Duration::from_millis(300 + rng.below(1500));
        let seeds: Vec<u64> = (0..6).map(|_| rng.next()).collect();
        std::thread::scope(|s| {
            for seed in &seeds {
                let (c, stop) = (&client, &stop);
                s.spawn(move || churn(c, *seed, stop));
            }
            std::thread::sleep(delay);
            eprintln!("round {round}: kill -9 of berthd after {delay:?}");
            d.crash();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            // The clients' commands fail now; the scope waits for them.
        });
        d.restart();
        let ids = check_consistent(&d);
        eprintln!("round {round}: {} containers after the restart", ids.len());
        let v = d.inspect("steady");
        assert_eq!(v["State"]["Status"], "running", "{v}");
        assert_eq!(v["State"]["Pid"], steady_pid);
        // Everything can still be driven: stop some, start a stopped one.
        for id in ids.iter().filter(|id| **id != steady) {
            let v = d.inspect(id);
            if v["State"]["Status"] == "running" && rng.below(2) == 0 {
                d.docker_ok(&["rm", "-f", id]);
            } else if v["State"]["Status"] == "created" {
                d.docker_ok(&["start", id]);
                // `sh -c "exit 3"` exits at once; the others sleep.
                let exits = v["Config"]["Cmd"].to_string().contains("exit 3");
                eventually(10, "the started container's state", || {
                    let s = d.inspect(id)["State"].clone();
                    if exits {
                        s["Status"] == "exited" && s["ExitCode"] == 3
                    } else {
                        s["Status"] == "running"
                    }
                });
            }
        }
        check_consistent(&d);
    }
    // And everything can be removed, leaving nothing.
    remove_all(&d);
    d.docker_ok(&["run", "--rm", "bb:1", "true"]);
    d.stop();
}

#[test]
fn removed_files_go_after_the_reply_or_at_the_next_start() {
    if !require_root() || !has_docker() {
        return;
    }
    let mut d = Berthd::with_busybox(&[]);
    let containers = d.data_root.join("containers");
    let mounts_under = |dir: &Path| {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        info.lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|mp| Path::new(mp).starts_with(dir))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // Running (its exit leaves the rootfs to the removal), restarting
    // (its exit unmounts, the restart mounts again) and `--rm`.
    let running = d.docker_ok(&["run", "-d", "bb:1", "sleep", "1000"]);
    let restarting = d.docker_ok(&["run", "-d", "--restart", "always", "bb:1", "sleep", "1000"]);
    for id in [running.trim(), restarting.trim()] {
        assert_eq!(mounts_under(&containers.join(id)).len(), 1, "{}", d.log());
        d.docker_ok(&["rm", "-f", id]);
        // Unmounted and deleted on a thread after the reply: the directory
        // goes under another name at once, then entirely.
        assert!(!containers.join(id).exists(), "the directory kept its name");
    }
    d.docker_ok(&["run", "--rm", "bb:1", "true"]);
    eventually(10, "the removed containers' mounts and files gone", || {
        mounts_under(&containers).is_empty()
            && std::fs::read_dir(&containers).unwrap().next().is_none()
    });

    // A rootfs and files a killed daemon had not removed yet go at its
    // next start.
    let trash = containers.join(format!(".removing-{}", running.trim()));
    for sub in ["upper/etc", "work", "rootfs", "lower"] {
        std::fs::create_dir_all(trash.join(sub)).unwrap();
    }
    std::fs::write(trash.join("upper/etc/hostname"), "x\n").unwrap();
    let options = format!(
        "lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work",
        trash.display()
    );
    let mounted = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(trash.join("rootfs"))
        .output()
        .unwrap();
    assert!(mounted.status.success(), "{}", text(&mounted.stderr));
    d.crash();
    d.restart();
    assert!(!trash.exists(), "{}", d.log());
    assert_eq!(mounts_under(&containers), Vec::<String>::new());
    d.stop();
}

/// A rootfs tarball of busybox plus `mb` MiB of incompressible data, so
/// pulling it takes long enough to be interrupted.
fn big_tar(dir: &Path, mb: usize) -> PathBuf {
    let rootfs = dir.join("big-rootfs");
    berth_integration::fixtures::build_busybox_rootfs(&rootfs).expect("busybox rootfs");
    let data = rootfs.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..mb {
        let chunk: Vec<u8> = (0..(1 << 17))
            .flat_map(|_| rng.next().to_le_bytes())
            .collect();
        std::fs::write(data.join(format!("f{i}")), chunk).unwrap();
    }
    let tar = dir.join("big.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["--numeric-owner", "-cf"])
        .arg(&tar)
        .arg(".")
        .output()
        .expect("tar");
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&rootfs).unwrap();
    tar
}

#[test]
fn daemon_killed_during_pull() {
    if !require_root() || !has_docker() {
        return;
    }
    let Some(registry) = LoopbackRegistry::start() else {
        return;
    };
    let host = registry.addr.to_string();
    let mut d = Berthd::start(&["--insecure-registry", &host]);
    let mut rng = Rng::new("daemon_killed_during_pull");
    let tar = big_tar(d.dir.path(), 96);
    let id = d.docker_ok(&["import", tar.to_str().unwrap(), "big:1"]);
    let id = id.trim().to_string();
    let remote = format!("{host}/test/big:1");
    d.docker_ok(&["tag", "big:1", &remote]);
    d.docker_ok(&["push", &remote]);
    d.docker_ok(&["rmi", "big:1", &remote]);
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    // How long one whole pull takes here, to aim the crashes inside it.
    let t = Instant::now();
    d.docker_ok(&["pull", &remote]);
    let full = t.elapsed();
    eprintln!("one pull takes {full:?}");
    let blob_dir = d.data_root.join("content/blobs/sha256");
    let list_blobs = || -> Vec<String> {
        std::fs::read_dir(&blob_dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    // Every blob a whole pull stores (import and push made some too).
    let pulled_blobs = list_blobs();
    d.docker_ok(&["rmi", &remote]);
    for round in 0..5 {
        let client = Client::of(&d);
        let mut pull = client.spawn(&["pull", &remote]);
        let delay = Duration::from_millis(20 + rng.below(full.as_millis().max(40) as u64));
        std::thread::sleep(delay);
        eprintln!("round {round}: kill -9 of berthd {delay:?} into a pull");
        d.crash();
        let _ = pull.wait();
        d.restart();
        // The store answers, and whatever it holds is whole.
        let images = d.docker_ok(&["images", "-q", "--no-trunc"]);
        let images = images.trim();
        assert!(
            images.is_empty() || images == id,
            "images after a crash: {images:?}"
        );
        if !images.is_empty() {
            // The pull finished before the crash: the image must run.
            d.docker_ok(&["run", "--rm", &remote, "true"]);
        }
        let out = d.docker_ok(&["pull", &remote]);
        assert!(
            out.contains("Downloaded newer image") || out.contains("Image is up to date"),
            "{out}"
        );
        assert_eq!(d.docker_ok(&["images", "-q", "--no-trunc"]).trim(), id);
        let out = d.docker_ok(&["run", "--rm", &remote, "sh", "-c", "ls /data | wc -l"]);
        assert_eq!(out.trim(), "96");
        d.docker_ok(&["rmi", &remote]);
        assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    }
    // No blob that a whole pull would not have stored: a cut download
    // stays an ingest (a crashed pull's lease may keep its blobs until it
    // expires, so they need not be gone).
    d.restart();
    let stray: Vec<String> = list_blobs()
        .into_iter()
        .filter(|b| !pulled_blobs.contains(b))
        .collect();
    assert!(stray.is_empty(), "blobs no pull made: {stray:?}");
    d.stop();
}

fn shim_of(d: &Berthd, name: &str) -> i32 {
    let id = d.inspect(name)["Id"].as_str().unwrap().to_string();
    let shims = shims_of(&id);
    assert_eq!(shims.len(), 1, "shims of {name}: {shims:?}");
    shims[0]
}

#[test]
fn shim_killed() {
    if !require_root() || !has_docker() {
        return;
    }
    let mut d = Berthd::with_busybox(&[]);
    // 1. A running container whose shim dies under a live daemon: the
    // daemon notices, the container's processes (init, a child, an exec)
    // go with it.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "sa",
        "bb:1",
        "sh",
        "-c",
        "sleep 1000 & exec sleep 1001",
    ]);
    d.docker_ok(&["exec", "-d", "sa", "sleep", "1002"]);
    let id_a = d.inspect("sa")["Id"].as_str().unwrap().to_string();
    eventually(10, "three processes in a", || {
        cgroup_processes(&d, &id_a).len() == 3
    });
    let pid_a = d.inspect("sa")["State"]["Pid"].as_i64().unwrap();
    kill9(shim_of(&d, "sa"));
    eventually(20, "a to be seen exited", || {
        d.inspect("sa")["State"]["Status"] == "exited"
    });
    let v = d.inspect("sa");
    assert_eq!(v["State"]["ExitCode"], 255, "{v}");
    assert!(
        v["State"]["Error"]
            .as_str()
            .unwrap_or_default()
            .contains("shim"),
        "{v}"
    );
    assert!(!alive(pid_a), "a's init {pid_a} survived its shim");
    let left = cgroup_processes(&d, &id_a);
    assert!(
        left.is_empty(),
        "processes of a survived its shim: {left:?}"
    );
    check_consistent(&d);
    // It can be started again, and removed.
    d.docker_ok(&["start", "sa"]);
    assert_eq!(d.inspect("sa")["State"]["Status"], "running");
    d.docker_ok(&["rm", "-f", "sa"]);

    // 2. A shim killed while the daemon is down: restore finds it gone.
    d.docker_ok(&["run", "-d", "--name", "sb", "bb:1", "sleep", "1000"]);
    let id_b = d.inspect("sb")["Id"].as_str().unwrap().to_string();
    let pid_b = d.inspect("sb")["State"]["Pid"].as_i64().unwrap();
    let shim_b = shim_of(&d, "sb");
    // 3. A container that exited while the daemon was down, then lost its
    // shim: its real exit code is on record.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "sc",
        "bb:1",
        "sh",
        "-c",
        "sleep 1; exit 7",
    ]);
    let shim_c = shim_of(&d, "sc");
    d.crash();
    kill9(shim_b);
    std::thread::sleep(Duration::from_secs(2));
    kill9(shim_c);
    d.restart();
    let v = d.inspect("sb");
    assert_eq!(v["State"]["Status"], "exited", "{v}");
    assert_eq!(v["State"]["ExitCode"], 255, "{v}");
    assert!(!alive(pid_b), "b's init {pid_b} survived its shim");
    assert!(cgroup_processes(&d, &id_b).is_empty());
    let v = d.inspect("sc");
    assert_eq!(v["State"]["Status"], "exited", "{v}");
    assert_eq!(v["State"]["ExitCode"], 7, "{v}");
    check_consistent(&d);
    remove_all(&d);
    d.stop();
}
