//! One conformance suite, run against every cgroup backend usable on this
//! machine, on the real kernel (needs root).
//!
//! Backends, from the detected layout:
//! - pure v1 host: "v1";
//! - pure v2 host: "v2";
//! - hybrid host: "hybrid" (the v1 manager, with the cgroup2 part for the
//!   controllers attached there), "v1" (the same host seen without its
//!   cgroup2 mount) and "v2" (only the cgroup2 mount, seen as a pure v2
//!   host: this is how the v2 backend runs for real on a hybrid machine).
//!
//! Where a backend lacks a controller a check needs, the check asserts that
//! apply() fails with a precise error naming the field, and prints why it
//! skipped the rest: a skip is never a silent pass.
//!
//! Every test uses its own cgroup (`/berth-test-<test>-<pid>-<n>/c`), and a
//! guard kills what the test started and removes the whole tree, even when
//! an assertion fails.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth_cgroups::{detect, manager, CgroupManager, Error, FreezerState, Layout};
use berth_errdefs::{ErrorKind, HasKind};
use oci_spec::runtime::LinuxResources;

struct Backend {
    name: &'static str,
    layout: Layout,
}

fn backends() -> Vec<Backend> {
    let host = detect().expect("detecting the cgroup layout");
    match &host {
        Layout::V1 { .. } => vec![Backend {
            name: "v1",
            layout: host,
        }],
        Layout::V2 { .. } => vec![Backend {
            name: "v2",
            layout: host,
        }],
        Layout::Hybrid { .. } => vec![
            Backend {
                name: "hybrid",
                layout: host.clone(),
            },
            Backend {
                name: "v1",
                layout: host.v1_only().expect("hybrid has v1"),
            },
            Backend {
                name: "v2",
                layout: host.unified_only().expect("hybrid has cgroup2"),
            },
        ],
    }
}

/// Whether `controller` is usable on this backend.
fn has(layout: &Layout, controller: &str) -> bool {
    layout.v1_hierarchy(controller).is_some() || layout.unified().is_some_and(|u| u.has(controller))
}

/// Where `controller`'s files for the absolute cgroups path `path` live.
fn dir_for(layout: &Layout, path: &str, controller: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    match layout.v1_hierarchy(controller) {
        Some(h) => h.mount_point.join(rel),
        None => layout
            .unified()
            .expect("controller somewhere")
            .mount_point
            .join(rel),
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_string()
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test JSON {json}: {e}"))
}

fn skip(backend: &Backend, what: &str, why: &str) {
    eprintln!("[{}] skipped {what}: {why}", backend.name);
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A test's cgroup, its processes, and their cleanup.
struct Case {
    path: String,
    top: String,
    cg: Box<dyn CgroupManager>,
    top_cg: Box<dyn CgroupManager>,
    children: Vec<Child>,
}

impl Case {
    fn new(b: &Backend, test: &str) -> Case {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let top = format!("/berth-test-{test}-{}-{}-{n}", b.name, std::process::id());
        let path = format!("{top}/c");
        let cg = manager(&b.layout, Some(&path), "unused").expect("manager");
        let top_cg = manager(&b.layout, Some(&top), "unused").expect("manager");
        cg.create()
            .unwrap_or_else(|e| panic!("[{}] create {path}: {e}", b.name));
        Case {
            path,
            top,
            cg,
            top_cg,
            children: Vec::new(),
        }
    }

    /// `sh -c "read _; <script>"` inside the cgroup: the shell joins the
    /// cgroup before it runs the script, so everything the script does is
    /// accounted there. Call `release` to let it go.
    fn spawn_gated(&mut self, script: &str) -> usize {
        let child = self.spawn_sh(script);
        self.cg.add_process(child.id() as i32).expect("add_process");
        self.children.push(child);
        self.children.len() - 1
    }

    /// Like `spawn_gated`, into another cgroup (below this case's).
    fn spawn_gated_in(&mut self, cg: &dyn CgroupManager, script: &str) -> usize {
        let child = self.spawn_sh(script);
        cg.add_process(child.id() as i32).expect("add_process");
        self.children.push(child);
        self.children.len() - 1
    }

    fn spawn_sh(&self, script: &str) -> Child {
        Command::new("sh")
            .arg("-c")
            .arg(format!("read _; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning sh")
    }

    fn release(&mut self, i: usize) {
        let stdin = self.children[i].stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").expect("releasing the gated shell");
    }

    /// Waits for child `i`, returning its exit status, stdout and stderr.
    fn wait(&mut self, i: usize) -> (std::process::ExitStatus, String, String) {
        let child = &mut self.children[i];
        drop(child.stdin.take());
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut o) = child.stdout.take() {
            o.read_to_string(&mut out).unwrap();
        }
        if let Some(mut e) = child.stderr.take() {
            e.read_to_string(&mut err).unwrap();
        }
        (child.wait().expect("wait"), out, err)
    }

    fn pid(&self, i: usize) -> i32 {
        self.children[i].id() as i32
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        // A frozen v1 task does not die until thawed.
        let _ = self.cg.thaw();
        let ours: Vec<i32> = self.children.iter().map(|c| c.id() as i32).collect();
        // Grandchildren first, so their parent shell reaps them.
        for pid in self.top_cg.pids().unwrap_or_default() {
            if !ours.contains(&pid) {
                if let Some(p) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Err(e) = self.top_cg.destroy() {
            eprintln!("cleanup of {} failed: {e}", self.top);
        }
        for p in self.top_cg.paths() {
            if p.exists() && !std::thread::panicking() {
                panic!("{} was left behind", p.display());
            }
        }
    }
}

/// `pid` is in the cgroup `leaf` in every hierarchy the backend uses.
fn assert_in_every_hierarchy(b: &Backend, pid: i32, leaf: &str) {
    let proc_cgroup = read(Path::new(&format!("/proc/{pid}/cgroup")));
    for line in proc_cgroup.lines() {
        let ctrls = line.split(':').nth(1).unwrap();
        let in_use = if ctrls.is_empty() {
            b.layout.unified().is_some()
        } else {
            ctrls.split(',').any(|c| b.layout.v1_hierarchy(c).is_some())
        };
        if in_use {
            assert!(line.ends_with(leaf), "[{}] {line} is not in {leaf}", b.name);
        }
    }
}

/// utime+stime of a process, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = read(Path::new(&format!("/proc/{pid}/stat")));
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_comm.split(' ').collect();
    // fields 14 and 15 of stat; after "pid (comm) " they are at 11 and 12
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn lifecycle_create_join_list_destroy() {
    for b in backends() {
        let mut case = Case::new(&b, "life");
        case.cg.create().expect("create is idempotent");
        for p in case.cg.paths() {
            assert!(
                p.is_dir(),
                "[{}] {} missing after create",
                b.name,
                p.display()
            );
        }
        let a = case.spawn_gated("sleep 1000");
        let bpid = case.spawn_gated("sleep 1000"); // a second join, as `exec` does
        let mut want = vec![case.pid(a), case.pid(bpid)];
        want.sort();
        assert_eq!(case.cg.pids().unwrap(), want, "[{}]", b.name);
        assert_in_every_hierarchy(&b, case.pid(a), &case.path);
        assert_eq!(case.cg.freezer_state().unwrap(), FreezerState::Thawed);
        // destroy with processes inside is refused, and says why
        let err = case.cg.destroy().unwrap_err();
        assert!(matches!(err, Error::Busy { .. }), "[{}] {err}", b.name);
        for c in &mut case.children {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        case.cg.destroy().expect("destroy");
        for p in case.cg.paths() {
            assert!(!p.exists(), "[{}] {} still there", b.name, p.display());
        }
        case.cg.destroy().expect("destroying twice is fine");
        assert!(matches!(
            case.cg.apply(&resources("{}")),
            Err(Error::NotCreated { .. })
        ));
        assert!(matches!(
            case.cg.add_process(1),
            Err(Error::NotCreated { .. })
        ));
    }
}

#[test]
fn freeze_stops_the_processes_and_thaw_resumes_them() {
    for b in backends() {
        let mut case = Case::new(&b, "frz");
        let i = case.spawn_gated("while :; do :; done");
        case.release(i);
        let pid = case.pid(i);
        case.cg
            .freeze()
            .unwrap_or_else(|e| panic!("[{}] freeze: {e}", b.name));
        assert_eq!(case.cg.freezer_state().unwrap(), FreezerState::Frozen);
        let t0 = cpu_ticks(pid);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(cpu_ticks(pid), t0, "[{}] a frozen process used CPU", b.name);
        case.cg.freeze().expect("freezing twice is fine");
        case.cg
            .thaw()
            .unwrap_or_else(|e| panic!("[{}] thaw: {e}", b.name));
        assert_eq!(case.cg.freezer_state().unwrap(), FreezerState::Thawed);
        let start = Instant::now();
        while cpu_ticks(pid) == t0 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "[{}] thawed process does not run",
                b.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Applies `json`; when the backend lacks `controller`, asserts the precise
/// error (naming `field`) and returns false.
fn apply_or_explain(case: &Case, b: &Backend, controller: &str, field: &str, json: &str) -> bool {
    let r = resources(json);
    if has(&b.layout, controller) {
        case.cg
            .apply(&r)
            .unwrap_or_else(|e| panic!("[{}] applying {json}: {e}", b.name));
        return true;
    }
    let err = case
        .cg
        .apply(&r)
        .expect_err("apply without the controller must fail");
    assert!(
        err.to_string().starts_with(field),
        "[{}] error for a missing {controller} should name {field}: {err}",
        b.name
    );
    assert_eq!(
        err.kind(),
        ErrorKind::FailedPrecondition,
        "[{}] {err}",
        b.name
    );
    skip(
        b,
        &format!("{controller} limits"),
        &format!("no {controller} controller ({err})"),
    );
    false
}

#[test]
fn limits_are_written_to_the_kernel() {
    for b in backends() {
        let case = Case::new(&b, "lim");
        let l = &b.layout;
        let p = case.path.clone();
        let v2_for = |c: &str| l.v1_hierarchy(c).is_none();

        if apply_or_explain(
            &case,
            &b,
            "pids",
            "linux.resources.pids.limit",
            r#"{"pids":{"limit":20}}"#,
        ) {
            assert_eq!(read(&dir_for(l, &p, "pids").join("pids.max")), "20");
            case.cg
                .apply(&resources(r#"{"pids":{"limit":-1}}"#))
                .unwrap();
            assert_eq!(read(&dir_for(l, &p, "pids").join("pids.max")), "max");
        }

        let mem = r#"{"memory":{"limit":67108864,"reservation":33554432,"swap":67108864}}"#;
        if apply_or_explain(&case, &b, "memory", "linux.resources.memory.limit", mem) {
            let d = dir_for(l, &p, "memory");
            if v2_for("memory") {
                assert_eq!(read(&d.join("memory.max")), "67108864");
                assert_eq!(read(&d.join("memory.low")), "33554432");
            } else {
                assert_eq!(read(&d.join("memory.limit_in_bytes")), "67108864");
                assert_eq!(read(&d.join("memory.memsw.limit_in_bytes")), "67108864");
                assert_eq!(read(&d.join("memory.soft_limit_in_bytes")), "33554432");
                // raising both limits needs memsw first; the planner orders it
                case.cg
                    .apply(&resources(
                        r#"{"memory":{"limit":134217728,"swap":268435456,"swappiness":10}}"#,
                    ))
                    .unwrap();
                assert_eq!(read(&d.join("memory.limit_in_bytes")), "134217728");
                assert_eq!(read(&d.join("memory.memsw.limit_in_bytes")), "268435456");
                assert_eq!(read(&d.join("memory.swappiness")), "10");
                // and lowering both needs memory first
                case.cg
                    .apply(&resources(
                        r#"{"memory":{"limit":16777216,"swap":16777216}}"#,
                    ))
                    .unwrap();
                assert_eq!(read(&d.join("memory.memsw.limit_in_bytes")), "16777216");
                // -1 lifts both
                case.cg
                    .apply(&resources(r#"{"memory":{"limit":-1}}"#))
                    .unwrap();
                assert!(
                    read(&d.join("memory.memsw.limit_in_bytes"))
                        .parse::<u64>()
                        .unwrap()
                        > 1 << 62
                );
            }
        }

        let cpu = r#"{"cpu":{"shares":512,"quota":50000,"period":100000}}"#;
        if apply_or_explain(&case, &b, "cpu", "linux.resources.cpu.shares", cpu) {
            let d = dir_for(l, &p, "cpu");
            if v2_for("cpu") {
                let w = berth_cgroups::convert::cpu_shares_to_weight(512).to_string();
                assert_eq!(read(&d.join("cpu.weight")), w);
                assert_eq!(read(&d.join("cpu.max")), "50000 100000");
            } else {
                assert_eq!(read(&d.join("cpu.shares")), "512");
                assert_eq!(read(&d.join("cpu.cfs_quota_us")), "50000");
                assert_eq!(read(&d.join("cpu.cfs_period_us")), "100000");
            }
        }

        let rt = r#"{"cpu":{"realtimePeriod":500000,"realtimeRuntime":0}}"#;
        if !has(l, "cpu") || v2_for("cpu") {
            let err = case
                .cg
                .apply(&resources(rt))
                .expect_err("real-time without v1 cpu");
            assert!(
                err.to_string().starts_with("linux.resources.cpu.realtime"),
                "[{}] {err}",
                b.name
            );
            skip(&b, "real-time limits", &err.to_string());
        } else if dir_for(l, &p, "cpu").join("cpu.rt_runtime_us").exists() {
            case.cg.apply(&resources(rt)).unwrap();
            let d = dir_for(l, &p, "cpu");
            assert_eq!(read(&d.join("cpu.rt_period_us")), "500000");
            assert_eq!(read(&d.join("cpu.rt_runtime_us")), "0");
            // The parent has no real-time budget, so the kernel refuses a
            // runtime; the error names the field and says why.
            let err = case
                .cg
                .apply(&resources(r#"{"cpu":{"realtimeRuntime":10000}}"#))
                .expect_err("no rt budget in the parent");
            let msg = err.to_string();
            assert!(
                msg.starts_with("linux.resources.cpu.realtimeRuntime:") && msg.contains("budget"),
                "{msg}"
            );
        } else {
            skip(
                &b,
                "real-time limits",
                "kernel without CONFIG_RT_GROUP_SCHED",
            );
        }
        if apply_or_explain(
            &case,
            &b,
            "cpuset",
            "linux.resources.cpu.cpus",
            r#"{"cpu":{"cpus":"0","mems":"0"}}"#,
        ) {
            let d = dir_for(l, &p, "cpuset");
            assert_eq!(read(&d.join("cpuset.cpus")), "0");
            assert_eq!(read(&d.join("cpuset.mems")), "0");
        }

        // The root disk, whatever it is here: throttles need a real device.
        let root_dev = std::fs::metadata("/").map(|m| {
            use std::os::unix::fs::MetadataExt;
            let d = m.dev();
            (rustix::fs::major(d), rustix::fs::minor(d))
        });
        let disk = std::fs::read_dir("/sys/dev/block")
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|d| !d.starts_with("7:"))
            .or_else(|| root_dev.ok().map(|(a, b)| format!("{a}:{b}")));
        let ctrl = if l.v1_hierarchy("blkio").is_some() {
            "blkio"
        } else {
            "io"
        };
        match disk {
            Some(dev) => {
                let (maj, min) = dev.split_once(':').unwrap();
                let json = format!(
                    r#"{{"blockIO":{{"throttleReadBpsDevice":[{{"major":{maj},"minor":{min},"rate":1048576}}]}}}}"#
                );
                if apply_or_explain(
                    &case,
                    &b,
                    ctrl,
                    "linux.resources.blockIO.throttleReadBpsDevice[0]",
                    &json,
                ) {
                    let d = dir_for(l, &p, ctrl);
                    let file = if ctrl == "blkio" {
                        "blkio.throttle.read_bps_device"
                    } else {
                        "io.max"
                    };
                    let text = read(&d.join(file));
                    assert!(
                        text.contains(&format!("{dev} ")) && text.contains("1048576"),
                        "[{}] {text}",
                        b.name
                    );
                }
            }
            None => skip(&b, "block I/O throttling", "no block device on this host"),
        }

        let weight = r#"{"blockIO":{"weight":500}}"#;
        if apply_or_explain(&case, &b, ctrl, "linux.resources.blockIO.weight", weight) {
            let d = dir_for(l, &p, ctrl);
            let (file, want) = match ctrl {
                "blkio" if d.join("blkio.weight").exists() => ("blkio.weight", "500".to_string()),
                "blkio" => ("blkio.bfq.weight", "500".to_string()),
                _ if d.join("io.bfq.weight").exists() => {
                    ("io.bfq.weight", "default 500".to_string())
                }
                _ => (
                    "io.weight",
                    format!(
                        "default {}",
                        berth_cgroups::convert::blkio_weight_to_io_weight(500)
                    ),
                ),
            };
            let got = read(&d.join(file));
            assert!(
                got.starts_with(&want) || got == want.trim_start_matches("default "),
                "[{}] {file}: {got}",
                b.name
            );
        }

        let net = if has(l, "net_prio") {
            r#"{"network":{"classID":1048577,"priorities":[{"name":"lo","priority":5}]}}"#
        } else {
            r#"{"network":{"classID":1048577}}"#
        };
        if b.layout.v1_hierarchies().is_empty() {
            let err = case
                .cg
                .apply(&resources(net))
                .expect_err("no net_cls on cgroup v2");
            assert!(
                err.to_string()
                    .starts_with("linux.resources.network.classID:"),
                "{err}"
            );
            assert_eq!(err.kind(), ErrorKind::NotImplemented);
            skip(&b, "network classes", "cgroup v2 has no net_cls/net_prio");
        } else if apply_or_explain(&case, &b, "net_cls", "linux.resources.network.classID", net) {
            assert_eq!(
                read(&dir_for(l, &p, "net_cls").join("net_cls.classid")),
                "1048577"
            );
            if has(l, "net_prio") {
                let map = read(&dir_for(l, &p, "net_prio").join("net_prio.ifpriomap"));
                assert!(map.lines().any(|line| line == "lo 5"), "{map}");
            }
        }

        if has(l, "rdma") {
            skip(
                &b,
                "rdma limits",
                "needs a real RDMA device to write rdma.max",
            );
        } else {
            apply_or_explain(
                &case,
                &b,
                "rdma",
                "linux.resources.rdma.mlx5_0",
                r#"{"rdma":{"mlx5_0":{"hcaHandles":2}}}"#,
            );
        }

        let huge = r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#;
        if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
            skip(&b, "hugetlb limits", "this kernel has no 2MB huge pages");
        } else if apply_or_explain(
            &case,
            &b,
            "hugetlb",
            "linux.resources.hugepageLimits[0]",
            huge,
        ) {
            let d = dir_for(l, &p, "hugetlb");
            let file = if v2_for("hugetlb") {
                "hugetlb.2MB.max"
            } else {
                "hugetlb.2MB.limit_in_bytes"
            };
            assert_eq!(read(&d.join(file)), "4194304", "[{}]", b.name);
        }
    }
}

#[test]
fn invalid_values_name_the_field_and_write_nothing() {
    for b in backends() {
        let case = Case::new(&b, "inv");
        // a sentinel that a half-applied plan would have changed
        let sentinel = if has(&b.layout, "pids") {
            Some((
                dir_for(&b.layout, &case.path, "pids").join("pids.max"),
                r#""pids":{"limit":7}"#,
            ))
        } else if has(&b.layout, "hugetlb") {
            let file = if b.layout.v1_hierarchy("hugetlb").is_some() {
                "hugetlb.2MB.limit_in_bytes"
            } else {
                "hugetlb.2MB.max"
            };
            Some((
                dir_for(&b.layout, &case.path, "hugetlb").join(file),
                r#""hugepageLimits":[{"pageSize":"2MB","limit":2097152}]"#,
            ))
        } else {
            None
        };
        let before = sentinel.as_ref().map(|(f, _)| read(f));
        let cases = [
            (r#""memory":{"limit":-5}"#, "linux.resources.memory.limit:"),
            (r#""cpu":{"shares":1}"#, "linux.resources.cpu.shares:"),
            (r#""cpu":{"period":10}"#, "linux.resources.cpu.period:"),
            (r#""cpu":{"cpus":"3-1"}"#, "linux.resources.cpu.cpus:"),
            (
                r#""devices":[{"allow":true,"access":"xa"}]"#,
                "linux.resources.devices[0].access:",
            ),
            (
                r#""hugepageLimits":[{"pageSize":"3MB","limit":1}]"#,
                "linux.resources.hugepageLimits[0].pageSize:",
            ),
            (
                r#""blockIO":{"throttleReadBpsDevice":[{"major":4095,"minor":4095,"rate":1}]}"#,
                "linux.resources.blockIO.throttleReadBpsDevice[0]:",
            ),
            (
                r#""network":{"priorities":[{"name":"bad name","priority":1}]}"#,
                "linux.resources.network.priorities",
            ),
        ];
        for (bad, field) in cases {
            let same_key = |ok: &str| ok.split(':').next() == bad.split(':').next();
            let json = match &sentinel {
                Some((_, ok)) if !same_key(ok) => format!("{{{ok},{bad}}}"),
                _ => format!("{{{bad}}}"),
            };
            let err = case.cg.apply(&resources(&json)).expect_err(&json);
            // Either the value is refused as invalid, or (for a controller the
            // backend lacks) as unavailable; both must name the field.
            assert!(
                err.to_string().starts_with(field),
                "[{}] {json}: {err}",
                b.name
            );
            if let (Some((file, _)), Some(before)) = (&sentinel, &before) {
                assert_eq!(&read(file), before, "[{}] {json} was half-applied", b.name);
            }
        }
        if sentinel.is_none() {
            skip(
                &b,
                "the half-applied check",
                "no pids or hugetlb controller to watch",
            );
        }
    }
}

#[test]
fn pids_limit_stops_forks() {
    for b in backends() {
        if !has(&b.layout, "pids") {
            skip(&b, "fork limit", "no pids controller");
            continue;
        }
        let mut case = Case::new(&b, "pids");
        case.cg
            .apply(&resources(r#"{"pids":{"limit":3}}"#))
            .unwrap();
        let i = case.spawn_gated("for n in 1 2 3 4 5 6; do sleep 30 & done; wait");
        case.release(i);
        // the shell plus two sleeps fit; the other forks fail
        let start = Instant::now();
        loop {
            let n = case.cg.pids().unwrap().len();
            assert!(n <= 3, "[{}] {n} processes despite a limit of 3", b.name);
            let events = dir_for(&b.layout, &case.path, "pids").join("pids.events");
            let refused = read(&events);
            if refused.split_whitespace().nth(1).is_some_and(|v| v != "0") {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "[{}] no fork was refused: {refused}",
                b.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let stats = case.cg.stats().unwrap();
        assert_eq!(stats.pids.limit, 3);
        assert!((1..=3).contains(&stats.pids.current), "{:?}", stats.pids);
    }
}

#[test]
fn memory_limit_oom_kills_and_is_counted() {
    for b in backends() {
        if !has(&b.layout, "memory") {
            let case = Case::new(&b, "oom");
            let err = case.cg.oom_kill_count().expect_err("no memory controller");
            assert!(
                matches!(err, Error::MissingController { .. }),
                "[{}] {err}",
                b.name
            );
            skip(&b, "OOM kill", "no memory controller");
            continue;
        }
        let mut case = Case::new(&b, "oom");
        case.cg
            .apply(&resources(
                r#"{"memory":{"limit":33554432,"swap":33554432}}"#,
            ))
            .unwrap();
        assert_eq!(case.cg.oom_kill_count().unwrap(), 0);
        // dd allocates (and fills) one 256 MiB buffer: 8x the limit
        let i = case.spawn_gated("exec dd if=/dev/zero of=/dev/null bs=256M count=1");
        case.release(i);
        let (status, _, err) = case.wait(i);
        assert_eq!(
            status.signal(),
            Some(9),
            "[{}] dd was not OOM-killed: {status:?} {err}",
            b.name
        );
        assert!(case.cg.oom_kill_count().unwrap() >= 1, "[{}]", b.name);
        let stats = case.cg.stats().unwrap();
        // The peak reached the limit (this kernel leaves v1 failcnt at 0).
        assert_eq!(
            stats.memory.usage.max, 33_554_432,
            "[{}] {:?}",
            b.name, stats.memory.usage
        );
        assert_eq!(stats.memory.usage.limit, 33_554_432);
    }
}

/// Device programs attached directly to a cgroup2 directory.
fn attached_device_programs(dir: &Path) -> usize {
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .expect("opening the cgroup");
    berth_sys::bpf::prog_query(
        std::os::fd::AsFd::as_fd(&fd),
        berth_sys::bpf::ATTACH_CGROUP_DEVICE,
    )
    .expect("querying device programs")
    .len()
}

#[test]
fn device_rules_are_enforced() {
    let probe = "echo x > /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null && echo zero-ok";
    for b in backends() {
        let mut case = Case::new(&b, "dev");
        let rules = r#"{"devices":[{"allow":false,"access":"rwm"},
                                  {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#;
        case.cg
            .apply(&resources(rules))
            .unwrap_or_else(|e| panic!("[{}] {e}", b.name));
        let v2_dir = if has(&b.layout, "devices") {
            let list = read(&dir_for(&b.layout, &case.path, "devices").join("devices.list"));
            assert_eq!(list, "c 1:3 rwm", "[{}]", b.name);
            None
        } else {
            // cgroup v2: an eBPF program on the cgroup directory
            let dir = b
                .layout
                .unified()
                .unwrap()
                .mount_point
                .join(case.path.trim_start_matches('/'));
            assert_eq!(attached_device_programs(&dir), 1, "[{}]", b.name);
            // applying again replaces the program rather than stacking another
            case.cg.apply(&resources(rules)).unwrap();
            assert_eq!(attached_device_programs(&dir), 1, "[{}]", b.name);
            Some(dir)
        };
        let i = case.spawn_gated(probe);
        case.release(i);
        let (_, out, err) = case.wait(i);
        assert!(
            out.contains("null-ok"),
            "[{}] /dev/null should be allowed: {out} {err}",
            b.name
        );
        assert!(
            !out.contains("zero-ok"),
            "[{}] /dev/zero should be denied: {out}",
            b.name
        );
        assert!(
            err.contains("Operation not permitted"),
            "[{}] {err}",
            b.name
        );

        // Relaxing to allow-all lifts the restriction again.
        case.cg
            .apply(&resources(r#"{"devices":[{"allow":true,"access":"rwm"}]}"#))
            .unwrap();
        if let Some(dir) = &v2_dir {
            assert_eq!(attached_device_programs(dir), 0, "[{}]", b.name);
        }
        let i = case.spawn_gated(probe);
        case.release(i);
        let (_, out, err) = case.wait(i);
        assert!(
            out.contains("zero-ok"),
            "[{}] /dev/zero should be allowed again: {out} {err}",
            b.name
        );
    }
}

#[test]
fn stats_report_usage_in_runc_shape() {
    for b in backends() {
        let mut case = Case::new(&b, "st");
        let i = case.spawn_gated("n=0; while [ $n -lt 200000 ]; do n=$((n+1)); done");
        case.release(i);
        let (status, _, _) = case.wait(i);
        assert!(status.success());
        let s = case
            .cg
            .stats()
            .unwrap_or_else(|e| panic!("[{}] stats: {e}", b.name));
        let cpu_accounted = has(&b.layout, "cpuacct") || b.layout.unified().is_some();
        if cpu_accounted {
            assert!(s.cpu.usage.total > 0, "[{}] {:?}", b.name, s.cpu);
            assert!(
                s.cpu.usage.user + s.cpu.usage.kernel > 0,
                "[{}] {:?}",
                b.name,
                s.cpu
            );
        }
        if has(&b.layout, "memory") {
            assert!(
                s.memory.usage.max > 0 || s.memory.usage.usage > 0,
                "[{}] {:?}",
                b.name,
                s.memory
            );
            assert!(!s.memory.raw.is_empty());
        } else {
            skip(&b, "memory stats", "no memory controller");
        }
        if has(&b.layout, "hugetlb")
            && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
        {
            assert!(
                s.hugetlb.contains_key("2MB"),
                "[{}] {:?}",
                b.name,
                s.hugetlb
            );
        }
        let json = serde_json::to_value(&s).unwrap();
        assert!(json.get("hugetlb").is_some() && json.get("memory").is_some());
        if cpu_accounted {
            assert!(json["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
        }
    }
}

#[test]
fn unified_keys() {
    for b in backends() {
        let case = Case::new(&b, "uni");
        let ok = r#"{"unified":{"hugetlb.2MB.max":"2097152"}}"#;
        match (&b.layout, has(&b.layout, "hugetlb")) {
            (Layout::V1 { .. }, _) => {
                let err = case.cg.apply(&resources(ok)).expect_err("unified on v1");
                assert!(
                    err.to_string().starts_with("linux.resources.unified:"),
                    "{err}"
                );
                assert_eq!(err.kind(), ErrorKind::NotImplemented);
            }
            (_, true) if b.layout.unified().is_some_and(|u| u.has("hugetlb")) => {
                case.cg.apply(&resources(ok)).unwrap();
                let d = b
                    .layout
                    .unified()
                    .unwrap()
                    .mount_point
                    .join(case.path.trim_start_matches('/'));
                assert_eq!(read(&d.join("hugetlb.2MB.max")), "2097152");
            }
            _ => skip(
                &b,
                "unified write",
                "no controller on the cgroup2 mount to write to",
            ),
        }
        if b.layout.unified().is_some() {
            for bad in [
                r#"{"cgroup.procs":"1"}"#,
                r#"{"../../x.max":"1"}"#,
                r#"{"memory.bogus_file":"1"}"#,
            ] {
                let err = case
                    .cg
                    .apply(&resources(&format!(r#"{{"unified":{bad}}}"#)))
                    .expect_err(bad);
                assert!(
                    err.to_string().starts_with("linux.resources.unified."),
                    "[{}] {err}",
                    b.name
                );
            }
        }
    }
}

#[test]
fn pids_include_nested_cgroups_and_destroy_removes_them() {
    for b in backends() {
        let mut case = Case::new(&b, "nest");
        let inner = manager(&b.layout, Some(&format!("{}/inner", case.path)), "x").unwrap();
        inner.create().unwrap();
        // Only the leaf holds processes: on cgroup v2 a cgroup whose
        // children have controllers enabled cannot (no internal processes).
        let i = case.spawn_gated_in(inner.as_ref(), "sleep 1000");
        let pid = case.pid(i);
        assert_eq!(case.cg.pids().unwrap(), vec![pid], "[{}]", b.name);
        case.children[i].kill().unwrap();
        case.children[i].wait().unwrap();
        case.cg.destroy().unwrap();
        for p in inner.paths() {
            assert!(!p.exists(), "[{}] {}", b.name, p.display());
        }
    }
}

#[test]
fn relative_and_default_paths() {
    for b in backends() {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let rel = format!("berth-test-rel-{}-{n}", std::process::id());
        let cg = manager(&b.layout, Some(&rel), "x").unwrap();
        for h in b.layout.v1_hierarchies() {
            let own = h.own_path.strip_prefix(&h.mount_root).unwrap();
            let want = h.mount_point.join(own).join(&rel);
            assert!(
                cg.paths().contains(&want),
                "[{}] {} not in {:?}",
                b.name,
                want.display(),
                cg.paths()
            );
        }
        cg.create().unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for p in cg.paths() {
                assert!(p.is_dir(), "{}", p.display());
            }
        }));
        cg.destroy().unwrap();
        result.unwrap();

        let id = format!("berth-test-default-{}-{n}", std::process::id());
        let cg = manager(&b.layout, None, &id).unwrap();
        for p in cg.paths() {
            assert!(p.ends_with(format!("berth/{id}")), "{}", p.display());
        }
    }
}

#[test]
fn apply_after_destroy_is_not_found() {
    for b in backends() {
        let case = Case::new(&b, "gone");
        case.cg.destroy().unwrap();
        let err = case
            .cg
            .apply(&resources(r#"{"pids":{"limit":5}}"#))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "[{}] {err}", b.name);
        assert!(case.cg.stats().is_err());
    }
}

#[test]
fn kill_all_takes_every_process_even_while_forking() {
    for b in backends() {
        let mut case = Case::new(&b, "kill");
        // A shell that keeps forking: kill_all must not let a child escape.
        let i = case.spawn_gated("while :; do sleep 100 & done");
        case.release(i);
        let start = Instant::now();
        while case.cg.pids().unwrap().len() < 10 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "[{}] the shell did not fork",
                b.name
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        case.cg
            .kill_all()
            .unwrap_or_else(|e| panic!("[{}] kill_all: {e}", b.name));
        let (status, _, _) = case.wait(i);
        assert_eq!(status.signal(), Some(9), "[{}]", b.name);
        let start = Instant::now();
        loop {
            let left = case.cg.pids().unwrap();
            if left.is_empty() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "[{}] still there: {left:?}",
                b.name
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        case.cg.destroy().unwrap();
    }
}

/// The resources dockerd puts in config.json for a plain `docker run`.
const DOCKER_DEFAULT: &str = r#"{
  "devices": [
    {"allow": false, "access": "rwm"},
    {"allow": true, "type": "c", "major": -1, "minor": -1, "access": "m"},
    {"allow": true, "type": "b", "major": -1, "minor": -1, "access": "m"},
    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": true, "type": "c", "major": 136, "minor": -1, "access": "rwm"},
    {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
    {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
  ],
  "memory": {"disableOOMKiller": false},
  "cpu": {"shares": 0},
  "pids": {"limit": 0},
  "blockIO": {"weight": 0}
}"#;

#[test]
fn docker_default_resources_apply_on_every_backend() {
    for b in backends() {
        let mut case = Case::new(&b, "dock");
        case.cg
            .apply(&resources(DOCKER_DEFAULT))
            .unwrap_or_else(|e| panic!("[{}] docker's defaults: {e}", b.name));
        // /dev/zero (1:5) is allowed; /dev/kmsg (1:11) is not listed and
        // /dev/fuse (10:229) is denied explicitly.
        let i = case.spawn_gated(
            "head -c1 /dev/zero >/dev/null && echo zero-ok; true </dev/kmsg && echo kmsg-ok; true </dev/fuse && echo fuse-ok",
        );
        case.release(i);
        let (_, out, err) = case.wait(i);
        assert!(out.contains("zero-ok"), "[{}] {out} {err}", b.name);
        assert!(
            !out.contains("kmsg-ok"),
            "[{}] /dev/kmsg must be denied: {out}",
            b.name
        );
        assert!(
            !out.contains("fuse-ok"),
            "[{}] /dev/fuse must be denied: {out}",
            b.name
        );
        assert_eq!(
            err.matches("Operation not permitted").count(),
            2,
            "[{}] {err}",
            b.name
        );
    }
}

#[test]
fn a_limit_below_usage_is_refused_with_the_reason() {
    for b in backends() {
        if b.layout.v1_hierarchy("memory").is_none() {
            skip(
                &b,
                "limit below usage",
                "only cgroup v1 refuses (v2 reclaims or OOM-kills instead)",
            );
            continue;
        }
        let mut case = Case::new(&b, "busy");
        // ~20 MB of anonymous memory that cannot be reclaimed (no swap here)
        let i = case
            .spawn_gated(r#"x=$(head -c 20000000 /dev/zero | tr '\0' a); echo ready; sleep 100"#);
        case.release(i);
        let mut ready = [0u8; 6];
        case.children[i]
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut ready)
            .unwrap();
        let err = case
            .cg
            .apply(&resources(r#"{"memory":{"limit":4194304}}"#))
            .expect_err("limit below usage");
        let msg = err.to_string();
        assert!(
            msg.starts_with("linux.resources.memory.limit:"),
            "[{}] {msg}",
            b.name
        );
        assert!(
            msg.contains("already uses more memory"),
            "[{}] {msg}",
            b.name
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
}

#[test]
fn a_forked_child_enters_by_itself() {
    use berth_sys::process::{clone3, exit_now, CloneArgs, Forked};
    for b in backends() {
        let case = Case::new(&b, "entry");
        let entry = case
            .cg
            .entry()
            .unwrap_or_else(|e| panic!("[{}] entry: {e}", b.name));
        let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let (joined_r, joined_w) = pipe();
        let (hold_r, hold_w) = pipe();
        // This test process has threads: the child makes raw system calls only.
        let forked = clone3(CloneArgs {
            flags: 0,
            into_cgroup: entry.clone_into(),
        })
        .unwrap_or_else(|e| panic!("[{}] clone3 into the cgroup: {e}", b.name));
        let child = match forked {
            Forked::Child => {
                drop(hold_w); // so that the parent's close ends the read below
                let status = [u8::from(entry.join_v1().is_err())];
                let _ = rustix::io::write(&joined_w, &status);
                let _ = rustix::io::read(&hold_r, &mut [0u8; 1]);
                exit_now(0)
            }
            Forked::Parent { child } => child,
        };
        drop(joined_w);
        drop(hold_r);
        let mut status = [9u8; 1];
        let n = rustix::io::read(&joined_r, &mut status).unwrap();
        let pid = rustix::process::Pid::from_raw(child).unwrap();
        if n == 1 && status[0] == 0 {
            assert_in_every_hierarchy(&b, child, &case.path);
            assert_eq!(case.cg.pids().unwrap(), vec![child], "[{}]", b.name);
        }
        drop(hold_w);
        rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()).unwrap();
        assert_eq!(
            (n, status[0]),
            (1, 0),
            "[{}] the child could not join",
            b.name
        );
        case.cg.destroy().expect("destroy");
        assert!(
            matches!(case.cg.entry(), Err(Error::NotCreated { .. })),
            "[{}] an entry to a removed cgroup",
            b.name
        );
    }
}
