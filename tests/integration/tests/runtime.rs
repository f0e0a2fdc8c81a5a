//! berth-runtime end to end: real busybox containers on this kernel, each
//! feature checked from inside the container, a leak check after each test.

use berth_integration::require_root;
use berth_integration::runtime::TestEnv;
use serde_json::json;

#[test]
fn run_true_exits_zero() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("run_true");
    let b = env.bundle(&["true"]);
    let (code, _, err) = env.run(&b);
    assert_eq!(code, 0, "{err}");
    env.finish();
}

#[test]
fn exit_codes_propagate() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("exit_codes");
    let b = env.bundle(&["sh", "-c", "exit 42"]);
    assert_eq!(env.run(&b).0, 42);
    // A foreground `run` reports a container killed by a signal as 128 + signal.
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id();
    let mut run = env
        .rt_cmd(&["run", "--bundle", b.path(), &id])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    env.wait_status(&id, "running");
    env.rt_ok(&["kill", &id, "KILL"]);
    assert_eq!(run.wait().unwrap().code(), Some(137));
    // exec exits 255 when it cannot start the process, an unknown
    // container included (runc's tests check this), else the process's code.
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id();
    env.rt_ok(&["run", "-d", "--bundle", b.path(), &id]);
    assert_eq!(
        env.rt(&["exec", &id, "sh", "-c", "exit 42"]).status.code(),
        Some(42)
    );
    assert_eq!(
        env.rt(&["exec", &id, "no-such-binary"]).status.code(),
        Some(255)
    );
    let out = env.rt(&["exec", "no-such-container", "true"]);
    assert_eq!(
        out.status.code(),
        Some(255),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.rt_ok(&["kill", &id, "KILL"]);
    env.wait_status(&id, "stopped");
    // Signal 0 asks whether it runs; with -a a stopped container is no error.
    assert_eq!(env.rt(&["kill", &id, "0"]).status.code(), Some(1));
    env.rt_ok(&["kill", "-a", &id, "0"]);
    env.rt_ok(&["delete", &id]);
    env.finish();
}

#[test]
fn lifecycle_create_start_state_kill_delete() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("lifecycle");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id();
    let pid_file = env.dir.path().join("pid");
    env.rt_ok(&[
        "create",
        "--bundle",
        b.path(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(env.status(&id), "created");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let state: serde_json::Value = serde_json::from_str(&env.rt_ok(&["state", &id])).unwrap();
    assert_eq!(state["pid"], json!(pid));
    assert_eq!(state["id"], json!(id));
    assert_eq!(state["bundle"], json!(b.dir));
    env.rt_ok(&["start", &id]);
    assert_eq!(env.status(&id), "running");
    let list = env.rt_ok(&["list"]);
    assert!(
        list.starts_with("ID") && list.contains(&id) && list.contains("running"),
        "{list}"
    );
    env.rt_ok(&["pause", &id]);
    assert_eq!(env.status(&id), "paused");
    env.rt_ok(&["resume", &id]);
    assert_eq!(env.status(&id), "running");
    let out = env.rt(&["delete", &id]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "deleting a running container needs --force"
    );
    env.rt_ok(&["kill", &id, "KILL"]);
    env.wait_status(&id, "stopped");
    env.rt_ok(&["delete", &id]);
    assert_eq!(env.rt(&["state", &id]).status.code(), Some(1));
    env.finish();
}

#[test]
fn exec_joins_hostname_pid_namespace_and_cgroup() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("exec");
    let mut b = env.bundle(&["sleep", "1000"]);
    b.edit(|c| c["hostname"] = json!("berth-exec-test"));
    let id = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", b.path(), &id]);
    let out = env.rt_ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "berth-exec-test");
    assert_eq!(
        lines[1].trim(),
        "sleep 1000",
        "pid 1 of the exec'd process is the container's init"
    );
    assert_ne!(lines[2], "1");
    // The exec'd process is in the container's cgroup while it runs.
    let pids: Vec<i32> =
        serde_json::from_str(&env.rt_ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(pids.len(), 1, "only init remains after exec: {pids:?}");
    let out = env.rt_ok(&[
        "exec",
        "--user",
        "1000:1000",
        "--cwd",
        "/tmp",
        "-e",
        "X=y",
        &id,
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $X",
    ]);
    assert_eq!(out, "1000\n1000\n/tmp\ny\n");
    let out = env.rt(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    env.rt_ok(&["delete", "--force", &id]);
    env.finish();
}

#[test]
fn memory_limit_gets_an_allocator_oom_killed() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("oom");
    // `tail /dev/zero` buffers an endless line: it allocates until killed.
    let mut b = env.bundle(&["tail", "/dev/zero"]);
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 32 << 20, "swap": 32 << 20});
    });
    let (code, _, err) = env.run(&b);
    assert_eq!(code, 137, "expected the OOM killer's SIGKILL: {err}");
    env.finish();
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("pids");
    let mut b = env.bundle(&[
        "sh",
        "-c",
        "for i in $(seq 1 40); do sleep 30 & done 2>&1 | head -1; ps | grep -c '[s]leep 30'",
    ]);
    b.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 10}));
    let (code, out, err) = env.run(&b);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("can't fork"),
        "forks beyond the limit fail: {out}"
    );
    let sleeps: u32 = out.lines().last().unwrap().trim().parse().unwrap();
    assert!(
        sleeps <= 10,
        "the loop was stopped at the limit: {sleeps} sleeps ran"
    );
    env.finish();
}

#[test]
fn seccomp_denies_a_syscall_with_the_specs_errno() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("seccomp");
    let mut b = env.bundle(&["sh", "-c", "mkdir /tmp/x; echo rc=$?"]);
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}]
        });
    });
    let (code, out, err) = env.run(&b);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Disk quota exceeded") || out.contains("Disk quota exceeded"),
        "errno 122 (EDQUOT) expected: {out} {err}"
    );
    assert!(out.contains("rc=1"), "{out}");
    env.finish();
}

#[test]
fn dropped_capabilities_stop_chown() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("caps");
    let script = "touch /tmp/f && chown 1000 /tmp/f && echo chowned";
    let with_tmp = |c: &mut serde_json::Value| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    };
    let mut b = env.bundle(&["sh", "-c", script]);
    b.edit(with_tmp);
    let (_, out, err) = env.run(&b);
    assert!(
        !out.contains("chowned") && err.contains("Operation not permitted"),
        "runc's default caps lack CAP_CHOWN: {out} {err}"
    );
    let mut b = env.bundle(&["sh", "-c", script]);
    b.edit(with_tmp).edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_CHOWN"));
        }
    });
    let (code, out, err) = env.run(&b);
    assert_eq!(
        (code, out.as_str()),
        (0, "chowned\n"),
        "with CAP_CHOWN it works: {err}"
    );
    env.finish();
}

/// Gives the config a new user namespace mapping container root (and the
/// 65536 ids after it) to `host_id`.
fn in_a_user_namespace(config: &mut serde_json::Value, host_id: u32) {
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": host_id, "size": 65536}]);
    config["linux"]["uidMappings"] = map.clone();
    config["linux"]["gidMappings"] = map;
}

#[test]
fn user_namespace_maps_root_to_an_unprivileged_host_id() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("userns");
    let mut b = env.bundle(&["sleep", "1000"]);
    b.edit(|c| {
        in_a_user_namespace(c, 200000);
    });
    let id = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", b.path(), &id]);
    let pid = env.init_pid(&id);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "200000"),
        "host sees uid 200000: {uid_line}"
    );
    let inside = env.rt_ok(&["exec", &id, "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    let mut lines = inside.lines();
    assert_eq!(lines.next(), Some("0"));
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["0", "200000", "65536"]
    );
    env.rt_ok(&["delete", "--force", &id]);
    env.finish();
}

#[test]
fn masked_and_readonly_paths_hold() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("masked");
    let b = env.bundle(&[
        "sh",
        "-c",
        "echo timer_list=$(wc -c < /proc/timer_list); echo keys=$(wc -c < /proc/keys); echo firmware=$(ls /sys/firmware | wc -l); \
         echo 1 > /proc/sys/kernel/ns_last_pid 2>&1 || echo sys-ro; echo x > /proc/sysrq-trigger || echo sysrq-ro; \
         touch /sys/x 2>/dev/null || echo sysfs-ro; touch /newfile 2>/dev/null || echo root-ro",
    ]);
    let (code, out, err) = env.run(&b);
    assert_eq!(code, 0, "{err}");
    for want in [
        "timer_list=0",
        "keys=0",
        "firmware=0",
        "sys-ro",
        "sysrq-ro",
        "sysfs-ro",
        "root-ro",
    ] {
        assert!(
            out.lines().any(|l| l == want),
            "missing {want:?} in:\n{out}\n{err}"
        );
    }
    env.finish();
}

#[test]
fn hostname_sysctl_rlimits_and_no_new_privileges() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("misc");
    let mut b = env.bundle(&["sh", "-c", "hostname; cat /proc/sys/kernel/domainname; cat /proc/sys/net/ipv4/ip_forward; ulimit -n; grep NoNewPrivs /proc/self/status"]);
    b.edit(|c| {
        c["hostname"] = json!("h1");
        c["domainname"] = json!("d1");
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 321}]);
        c["process"]["noNewPrivileges"] = json!(true);
    });
    let (code, out, err) = env.run(&b);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..4], ["h1", "d1", "1", "321"]);
    assert!(lines[4].ends_with('1'), "{}", lines[4]);
    env.finish();
}

#[test]
fn hooks_run_in_order_with_the_state() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("hooks");
    let log = env.dir.path().join("hooklog");
    std::fs::create_dir(&log).unwrap();
    let mut b = env.bundle(&["true"]);
    let host_hook = |stage: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {0}/{stage}.json; echo {stage} >> {0}/order", log.display())]});
    // startContainer runs inside the container: it writes to a bind mount.
    let in_container = json!({"path": "/bin/sh", "args": ["sh", "-c", "cat > /hooklog/startContainer.json; echo \"$HOME\" > /hooklog/home; echo startContainer >> /hooklog/order"]});
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/hooklog", "type": "bind", "source": log, "options": ["rbind", "rw"]}));
        c["hooks"] = json!({
            "prestart": [host_hook("prestart")],
            "createRuntime": [host_hook("createRuntime")],
            "createContainer": [host_hook("createContainer")],
            "startContainer": [in_container],
            "poststart": [host_hook("poststart")],
            "poststop": [host_hook("poststop")],
        });
    });
    let (code, _, err) = env.run(&b);
    assert_eq!(code, 0, "{err}");
    let order = std::fs::read_to_string(log.join("order")).unwrap();
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    // The spec sets no HOME: the hook gets the process's, from /etc/passwd.
    let home = std::fs::read_to_string(log.join("home")).unwrap();
    assert!(home.starts_with('/'), "startContainer's HOME: {home:?}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(log.join("createRuntime.json")).unwrap()).unwrap();
    assert_eq!(state["status"], json!("creating"));
    assert!(state["pid"].as_i64().unwrap() > 0);
    assert!(state["id"].as_str().unwrap().starts_with("it-hooks"));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(log.join("poststop.json")).unwrap()).unwrap();
    assert_eq!(state["status"], json!("stopped"));
    env.finish();
}

#[test]
fn a_failing_hook_fails_create_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("badhook");
    let mut b = env.bundle(&["true"]);
    b.edit(|c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]}));
    let id = env.id();
    let out = env.rt(&["create", "--bundle", b.path(), &id]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error running createRuntime hook #0"), "{err}");
    env.finish();
}

#[test]
fn namespaces_are_joined_by_path() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("nsjoin");
    let mut first = env.bundle(&["sleep", "1000"]);
    first.edit(|c| c["hostname"] = json!("shared-uts"));
    let id = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", first.path(), &id]);
    let pid = env.init_pid(&id);
    let mut second = env.bundle(&[
        "sh",
        "-c",
        "hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/uts",
    ]);
    second.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network" && n["type"] != "uts");
        ns.push(json!({"type": "network", "path": format!("/proc/{pid}/ns/net")}));
        ns.push(json!({"type": "uts", "path": format!("/proc/{pid}/ns/uts")}));
        c.as_object_mut().unwrap().remove("hostname");
    });
    let (code, out, err) = env.run(&second);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "shared-uts");
    assert_eq!(
        lines[1],
        std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .unwrap()
            .to_str()
            .unwrap()
    );
    assert_eq!(
        lines[2],
        std::fs::read_link(format!("/proc/{pid}/ns/uts"))
            .unwrap()
            .to_str()
            .unwrap()
    );
    env.rt_ok(&["delete", "--force", &id]);
    env.finish();
}

#[test]
fn no_pivot_and_preserved_fds() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("nopivot");
    let b = env.bundle(&["sh", "-c", "cat /proc/self/mountinfo | wc -l; cat <&3"]);
    let id = env.id();
    let payload = env.dir.path().join("payload");
    std::fs::write(&payload, "passed-through\n").unwrap();
    let file = std::fs::File::open(&payload).unwrap();
    // Put the file at fd 3 of the runtime with a shell redirection.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 3<{} && exec \"$0\" --root \"$1\" run --no-pivot --preserve-fds 1 --bundle \"$2\" \"$3\"",
            payload.display()
        ))
        .arg(&env.binary)
        .arg(&env.state_root)
        .arg(b.path())
        .arg(&id)
        .output()
        .unwrap();
    drop(file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed-through"), "{stdout}");
    env.finish();
}

/// `--no-pivot` keeps the host's mounts below the chroot: a process that
/// makes its own user and pid namespaces must still not be able to mount a
/// new procfs (the kernel allows that only beside a fully visible one),
/// exactly as under pivot_root.
#[test]
fn no_pivot_leaves_no_full_proc_to_mount_beside() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("nopivotproc");
    let mut b = env.bundle(&[
        "unshare",
        "-mrpf",
        "sh",
        "-c",
        "mount -t proc none /proc && echo mounted",
    ]);
    b.edit(|c| {
        for set in ["bounding", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SETFCAP"));
        }
    });
    for no_pivot in [false, true] {
        let id = env.id();
        let mut args = vec!["run", "--bundle", b.path()];
        if no_pivot {
            args.push("--no-pivot");
        }
        args.push(&id);
        let out = env.rt(&args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            !out.status.success()
                && !stdout.contains("mounted")
                && stderr.contains("permission denied"),
            "no_pivot={no_pivot}: {}\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
    }
    env.finish();
}

/// A mount destination that spells the rootfs's host path means that
/// place inside the container, as runc reads it (its mount-order tests
/// rely on it).
#[test]
fn a_destination_spelled_with_the_rootfs_path_lands_inside() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("rootfsdest");
    let source = env.dir.path().join("src");
    std::fs::create_dir(&source).unwrap();
    std::fs::write(source.join("file"), "from-the-host\n").unwrap();
    let mut b = env.bundle(&["cat", "/tmp/file"]);
    let rootfs = std::fs::canonicalize(b.config["root"]["path"].as_str().unwrap()).unwrap();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "source": source,
            "destination": rootfs.join("tmp"),
            "type": "bind",
            "options": ["rbind", "ro"],
        }))
    });
    let id = env.id();
    let out = env.rt_ok(&["run", "--bundle", b.path(), &id]);
    assert_eq!(out, "from-the-host\n");
    env.finish();
}

#[test]
fn update_and_stats_reach_the_cgroup() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("update");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", b.path(), &id]);
    env.rt_ok(&["update", "--memory", "64m", "--pids-limit", "20", &id]);
    let stats: serde_json::Value =
        serde_json::from_str(&env.rt_ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(stats["type"], json!("stats"));
    assert_eq!(
        stats["data"]["memory"]["usage"]["limit"],
        json!(64u64 << 20),
        "{stats}"
    );
    assert_eq!(stats["data"]["pids"]["limit"], json!(20), "{stats}");
    assert!(stats["data"]["pids"]["current"].as_u64().unwrap() >= 1);
    // With a memory+swap limit set, --memory -1 alone lifts both.
    if std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        env.rt_ok(&["update", "--memory-swap", "96m", &id]);
        env.rt_ok(&["update", "--memory", "-1", &id]);
        let stats: serde_json::Value =
            serde_json::from_str(&env.rt_ok(&["events", "--stats", &id])).unwrap();
        let raw = &stats["data"]["memory"]["raw"];
        for key in ["hierarchical_memory_limit", "hierarchical_memsw_limit"] {
            let limit = raw[key].as_u64().unwrap();
            assert!(limit > 1 << 40, "{key} still {limit}: {stats}");
        }
    }
    env.rt_ok(&["delete", "--force", &id]);
    env.finish();
}

#[test]
fn a_detached_exec_outlives_the_runtime() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("execdetach");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", b.path(), &id]);
    let pid = exec_detached_sleep(&env, &id);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the exec'd process is alive");
    assert!(
        !stat.contains(") Z "),
        "the exec'd process died with the runtime: {stat}"
    );
    let pids: Vec<i32> =
        serde_json::from_str(&env.rt_ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(pids.contains(&pid), "{pids:?} lacks {pid}");
    env.rt_ok(&["delete", "--force", &id]);
    env.finish();
}

/// `exec --detach` of a `sleep` in container `id`; its host pid.
fn exec_detached_sleep(env: &TestEnv, id: &str) -> i32 {
    let pid_file = env.dir.path().join("exec.pid");
    env.rt_ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        id,
        "sleep",
        "1000",
    ]);
    std::fs::read_to_string(&pid_file).unwrap().parse().unwrap()
}

/// Without a pid namespace of its own, a container's other processes
/// outlive its init: `kill ID KILL` must still reach every one of them once
/// the init is gone and the container counts as stopped (runc 1.2).
#[test]
fn kill_reaches_the_processes_an_init_in_the_host_pidns_left() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("hostpidkill");
    let mut b = env.bundle(&["sleep", "1000"]);
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    let id = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", b.path(), &id]);
    let init = env.init_pid(&id);
    let left = exec_detached_sleep(&env, &id);
    // Dead means gone or a zombie (this machine's pid 1 may not reap).
    let dead = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    };
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(init).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    env.wait_status(&id, "stopped");
    assert!(!dead(left), "the exec'd process went with the init");
    env.rt_ok(&["kill", &id, "KILL"]);
    let start = std::time::Instant::now();
    while !dead(left) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "pid {left} survived kill KILL"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    env.rt_ok(&["delete", &id]);
    env.finish();
}

/// A paused container refuses exec unless `--ignore-paused`: then the
/// process joins the frozen cgroup and finishes once the container resumes.
#[test]
fn exec_ignore_paused_runs_after_resume() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("execpaused");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", b.path(), &id]);
    env.rt_ok(&["pause", &id]);
    let refused = env.rt(&["exec", &id, "echo", "ok"]);
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr)
                .contains("cannot exec in a paused container"),
        "{refused:?}"
    );
    let exec = env
        .rt_cmd(&["exec", "--ignore-paused", &id, "echo", "ok"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("running berth-runtime exec");
    std::thread::sleep(std::time::Duration::from_millis(500));
    env.rt_ok(&["resume", &id]);
    let out = exec.wait_with_output().expect("waiting for exec");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    env.rt_ok(&["delete", "--force", &id]);
    env.finish();
}

/// `process.execCPUAffinity`: the exec'd process ends on its `final`
/// CPUs, from `exec --process` or the config's process; a bad list is
/// refused naming the field.
#[test]
fn exec_cpu_affinity_pins_the_process() {
    if !require_root() {
        return;
    }
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    if online.trim() == "0" {
        eprintln!("skipped: one CPU");
        return;
    }
    let mut env = TestEnv::new("affinity");
    let mut b = env.bundle(&["sleep", "1000"]);
    b.edit(|c| c["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "1"}));
    let id = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", b.path(), &id]);
    let allowed = |out: String| {
        out.lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(|v| v.trim().to_string())
    };
    let from_config = env.rt_ok(&["exec", &id, "cat", "/proc/self/status"]);
    assert_eq!(allowed(from_config).as_deref(), Some("1"));
    for (list, want) in [("0", "0"), ("0-1", "0-1")] {
        let process = env.dir.path().join("process.json");
        std::fs::write(
            &process,
            json!({"terminal": false, "cwd": "/", "args": ["cat", "/proc/self/status"],
                   "execCPUAffinity": {"initial": "1", "final": list}})
            .to_string(),
        )
        .unwrap();
        let out = env.rt_ok(&["exec", "--process", process.to_str().unwrap(), &id]);
        assert_eq!(allowed(out).as_deref(), Some(want), "final {list}");
    }
    let process = env.dir.path().join("bad.json");
    std::fs::write(
        &process,
        json!({"terminal": false, "cwd": "/", "args": ["true"],
               "execCPUAffinity": {"initial": "3-1"}})
        .to_string(),
    )
    .unwrap();
    let bad = env.rt(&["exec", "--process", process.to_str().unwrap(), &id]);
    assert!(!bad.status.success(), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("execCPUAffinity"),
        "{bad:?}"
    );
    env.rt_ok(&["delete", "--force", &id]);
    env.finish();
}

/// A device the spec creates is usable only if the device rules allow it
/// (runc's rule): under deny-all, /dev/kmsg exists but cannot be read;
/// allowed, it can.
#[test]
fn spec_devices_obey_the_device_rules() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("devdeny");
    for (extra_rule, want_ok) in [
        (None, false),
        (
            Some(json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwm"})),
            true,
        ),
    ] {
        let mut b = env.bundle(&[
            "sh",
            "-c",
            "test -c /dev/kmsg && head -c 1 /dev/kmsg >/dev/null",
        ]);
        b.edit(|c| {
            let mut rules = vec![json!({"allow": false, "access": "rwm"})];
            rules.extend(extra_rule.clone());
            c["linux"]["resources"]["devices"] = json!(rules);
            c["linux"]["devices"] =
                json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]);
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_SYSLOG"));
            }
        });
        let (code, _, err) = env.run(&b);
        assert_eq!(
            code == 0,
            want_ok,
            "rule {extra_rule:?}: exit {code}, {err}"
        );
        if !want_ok {
            assert!(err.contains("Operation not permitted"), "{err}");
        }
    }
    env.finish();
}

/// An ambient capability outside the inheritable set cannot be raised:
/// the others are, and the skipped one is named in a warning.
#[test]
fn unraisable_ambient_caps_are_skipped_with_a_warning() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("ambient");
    let mut b = env.bundle(&["grep", "CapAmb", "/proc/self/status"]);
    b.edit(|c| {
        c["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
        c["process"]["capabilities"]["ambient"] = json!(["CAP_KILL", "CAP_CHOWN"]);
    });
    let (code, out, err) = env.run(&b);
    assert_eq!(
        (code, out.as_str()),
        (0, "CapAmb:\t0000000000000020\n"),
        "{err}"
    );
    assert!(
        err.contains(
            "can't raise ambient capability CAP_CHOWN: it is not in the process's permitted and inheritable sets"
        ),
        "{err}"
    );
    env.finish();
}

/// `exec --cap` adds to bounding, effective and permitted, and to ambient
/// only when the process has an inheritable set to raise it from (runc).
#[test]
fn exec_cap_adds_ambient_only_with_an_inheritable_set() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("execcap");
    let status_line = |out: &str, key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    for (inheritable, want_amb) in [
        (None, "0000000000000000"),
        (Some(json!(["CAP_SYSLOG"])), "0000000400000000"),
    ] {
        let mut b = env.bundle(&["sleep", "1000"]);
        b.edit(|c| {
            if let Some(set) = &inheritable {
                // (inheritable may not reach beyond the bounding set)
                c["process"]["capabilities"]["inheritable"] = set.clone();
                c["process"]["capabilities"]["bounding"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_SYSLOG"));
            }
        });
        let id = env.id();
        env.rt_ok(&["run", "--detach", "--bundle", b.path(), &id]);
        let out = env.rt_ok(&[
            "exec",
            "--cap",
            "CAP_SYSLOG",
            &id,
            "cat",
            "/proc/self/status",
        ]);
        let prm = u64::from_str_radix(&status_line(&out, "CapPrm:"), 16).unwrap();
        assert_ne!(prm & (1 << 34), 0, "{out}");
        assert_eq!(
            status_line(&out, "CapAmb:"),
            want_amb,
            "{inheritable:?}: {out}"
        );
        env.rt_ok(&["delete", "--force", &id]);
    }
    env.finish();
}

#[test]
fn time_namespace_with_offsets() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("timens");
    let mut b = env.bundle(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000000, "nanosecs": 0}});
    });
    let id = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", b.path(), &id]);
    // exec joins the time namespace too: its uptime carries the offset.
    let out = env.rt_ok(&["exec", &id, "cat", "/proc/uptime"]);
    let uptime: f64 = out.split_whitespace().next().unwrap().parse().unwrap();
    assert!(uptime > 864000000.0, "boottime offset not applied: {out}");
    env.rt_ok(&["delete", "--force", &id]);
    env.finish();
}

/// The cgroup mount without a cgroup namespace (docker's on cgroup v1):
/// the container's own cgroup directories, bound on a tmpfs, all of them
/// read-only, nosuid, nodev and noexec as the spec says; without `ro`,
/// writable, so the container can make a cgroup below its own.
#[test]
fn cgroup_binds_take_the_mounts_flags() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("cgmount");
    let script = "awk '$5 ~ \"^/sys/fs/cgroup\" { print $5, $6 }' /proc/self/mountinfo; \
                  d=$(ls -d /sys/fs/cgroup/pids /sys/fs/cgroup/unified 2>/dev/null | head -1); \
                  mkdir $d/sub 2>/dev/null && rmdir $d/sub && echo made-sub; exit 0";
    for ro in [true, false] {
        let mut b = env.bundle(&["sh", "-c", script]);
        b.edit(|c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "cgroup");
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["type"] == "cgroup" {
                    let opts = m["options"].as_array_mut().unwrap();
                    opts.retain(|o| o != "ro");
                    if ro {
                        opts.push(json!("ro"));
                    }
                }
            }
        });
        let (code, out, err) = env.run(&b);
        assert_eq!(code, 0, "{err}");
        let mounts: Vec<&str> = out.lines().filter(|l| l.starts_with('/')).collect();
        assert!(
            mounts.len() >= 2,
            "the tmpfs and a hierarchy at least:\n{out}"
        );
        for line in &mounts {
            let opts: Vec<&str> = line.split(' ').nth(1).unwrap().split(',').collect();
            for want in ["nosuid", "nodev", "noexec", if ro { "ro" } else { "rw" }] {
                assert!(opts.contains(&want), "{want} missing: {line}\n{out}");
            }
        }
        assert_eq!(out.lines().any(|l| l == "made-sub"), !ro, "ro {ro}:\n{out}");
    }
    env.finish();
}

#[test]
fn a_read_only_dev_tmpfs_still_gets_its_devices_and_mounts() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("rodev");
    let mut b = env.bundle(&[
        "sh",
        "-c",
        "ls /dev/null /dev/pts/ptmx >/dev/null && touch /dev/x 2>/dev/null || echo dev-ro",
    ]);
    b.edit(|c| {
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev" {
                m["options"].as_array_mut().unwrap().push(json!("ro"));
            }
        }
    });
    let (code, out, err) = env.run(&b);
    assert_eq!((code, out.as_str()), (0, "dev-ro\n"), "{err}");
    env.finish();
}

#[test]
fn idmapped_bind_mounts_with_their_own_mappings() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("idmap");
    let source = env.dir.path().join("source");
    std::fs::create_dir(&source).unwrap();
    std::fs::write(source.join("foo.txt"), "x").unwrap();
    let mount = json!({
        "source": source, "destination": "/tmp/mount-1", "options": ["bind"],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
    });
    // Without a user namespace the root-owned file shows as the mapped host id.
    let mut b = env.bundle(&["stat", "-c", "%u:%g", "/tmp/mount-1/foo.txt"]);
    b.edit(|c| c["mounts"].as_array_mut().unwrap().push(mount.clone()));
    let (code, out, err) = env.run(&b);
    assert_eq!((code, out.as_str()), (0, "100000:100000\n"), "{err}");
    // In a user namespace with the same mapping it shows as the container's root.
    let mut b = env.bundle(&["stat", "-c", "%u:%g", "/tmp/mount-1/foo.txt"]);
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(mount.clone());
        in_a_user_namespace(c, 100000);
    });
    let (code, out, err) = env.run(&b);
    assert_eq!((code, out.as_str()), (0, "0:0\n"), "{err}");
    env.finish();
}

/// An rbind with `idmap` (or mappings alone) id-maps only its top mount;
/// `ridmap` maps the mounts below it too (runc's semantics).
#[test]
fn idmap_maps_an_rbinds_submounts_only_with_ridmap() {
    if !require_root() {
        return;
    }
    /// Unmounts the host-side submount however the test ends.
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
        }
    }
    let mut env = TestEnv::new("ridmap");
    let source = env.dir.path().join("source");
    let other = env.dir.path().join("other");
    for dir in [source.join("sub"), other.clone()] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(source.join("top.txt"), "x").unwrap();
    std::fs::write(other.join("sub.txt"), "x").unwrap();
    rustix::mount::mount_bind(&other, source.join("sub")).unwrap();
    let _submount = Unmount(source.join("sub"));
    for (option, want) in [
        ("idmap", "100000:100000\n0:0\n"),
        ("ridmap", "100000:100000\n100000:100000\n"),
    ] {
        let mut b = env.bundle(&[
            "stat",
            "-c",
            "%u:%g",
            "/tmp/m/top.txt",
            "/tmp/m/sub/sub.txt",
        ]);
        b.edit(|c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "source": source, "destination": "/tmp/m", "options": ["rbind", option],
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
            }))
        });
        let (code, out, err) = env.run(&b);
        assert_eq!((code, out.as_str()), (0, want), "{option}: {err}");
    }
    // Joining another container's user namespace, `idmap` alone takes
    // that namespace's mappings: root's files are root's inside, and the
    // unmapped submount shows as the overflow id.
    let mut owner = env.bundle(&["sleep", "1000"]);
    owner.edit(|c| {
        in_a_user_namespace(c, 100000);
    });
    let owner_id = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", owner.path(), &owner_id]);
    let owner_pid = env.init_pid(&owner_id);
    let mut b = env.bundle(&[
        "stat",
        "-c",
        "%u:%g",
        "/tmp/m/top.txt",
        "/tmp/m/sub/sub.txt",
    ]);
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user", "path": format!("/proc/{owner_pid}/ns/user")}));
        c["mounts"].as_array_mut().unwrap().push(json!({
            "source": source, "destination": "/tmp/m", "options": ["rbind", "idmap"]
        }))
    });
    let (code, out, err) = env.run(&b);
    assert_eq!(
        (code, out.as_str()),
        (0, "0:0\n65534:65534\n"),
        "joined userns: {err}"
    );
    env.rt_ok(&["delete", "--force", &owner_id]);
    drop(_submount);
    env.finish();
}

#[test]
fn a_profile_denying_fd_syscalls_still_starts() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("seccompfds");
    // berth marks inherited fds close-on-exec before loading the filter.
    let mut b = env.bundle(&["echo", "ok"]);
    b.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(true);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["close_range", "fcntl", "socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    let (code, out, err) = env.run(&b);
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");
    env.finish();
}

#[test]
fn exec_into_a_sub_cgroup() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("execcg");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", b.path(), &id]);
    let out = env.rt(&["exec", "--cgroup", "..", &id, "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a sub cgroup path"));
    let out = env.rt(&["exec", "--cgroup", "whaaat:/", &id, "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown controller"));
    let out = env.rt(&["exec", "--cgroup", "pids:missing", &id, "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing/cgroup.procs"));
    // A sub-cgroup that exists (on the pids hierarchy) takes the process.
    let sub = format!("/sys/fs/cgroup/pids/berth/{id}/sub");
    std::fs::create_dir(&sub).unwrap();
    let out = env.rt_ok(&[
        "exec",
        "--cgroup",
        "pids:sub",
        &id,
        "cat",
        "/proc/self/cgroup",
    ]);
    assert!(
        out.lines()
            .any(|l| l.contains(":pids:") && l.ends_with("/sub")),
        "{out}"
    );
    std::fs::remove_dir(&sub).unwrap();
    env.rt_ok(&["delete", "--force", &id]);
    env.finish();
}

#[test]
fn a_bind_source_only_the_host_root_can_reach_works_in_a_user_namespace() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("userbind");
    let locked = env.dir.path().join("locked");
    std::fs::create_dir_all(locked.join("dir")).unwrap();
    std::fs::write(locked.join("dir/file"), "reachable\n").unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut b = env.bundle(&["cat", "/tmp/mount-1/file"]);
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"source": locked.join("dir"), "destination": "/tmp/mount-1", "options": ["bind"]}));
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    let (code, out, err) = env.run(&b);
    assert_eq!((code, out.as_str()), (0, "reachable\n"), "{err}");
    env.finish();
}

#[test]
fn recursive_read_only_bind_mounts() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("rro");
    let source = env.dir.path().join("rro-source");
    std::fs::create_dir(&source).unwrap();
    let mut b = env.bundle(&[
        "sh",
        "-c",
        "touch /mnt/x 2>/dev/null && echo writable || echo read-only",
    ]);
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"source": source, "destination": "/mnt", "type": "bind", "options": ["rbind", "rro"]}));
    });
    let (code, out, err) = env.run(&b);
    assert_eq!((code, out.as_str()), (0, "read-only\n"), "{err}");
    env.finish();
}

#[test]
fn the_process_starts_with_default_signal_dispositions() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("sigdfl");
    // The runtime (a Rust program) ignores SIGPIPE; the container must not.
    // (grep directly: busybox sh as pid 1 ignores some signals for its children.)
    let b = env.bundle(&["grep", "-E", "SigIgn|SigBlk", "/proc/self/status"]);
    let (code, out, err) = env.run(&b);
    assert_eq!(code, 0, "{err}");
    for line in out.lines() {
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
    env.finish();
}

/// A minimal seccomp agent for `seccomp_notify_hands_the_listener_to_the_agent`:
/// takes one connection at `socket`, returns the state it was sent and how
/// many notifications it answered, mkdir(at) with EDQUOT, every other
/// syscall let through. It stops once no process uses the filter any more.
fn seccomp_agent(socket: &std::path::Path) -> std::thread::JoinHandle<(serde_json::Value, u32)> {
    use std::io::{IoSliceMut, Read};
    use std::mem::MaybeUninit;
    use std::time::{Duration, Instant};
    let agent = std::os::unix::net::UnixListener::bind(socket).expect("binding the agent socket");
    agent.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let conn = loop {
            match agent.accept() {
                Ok((c, _)) => break c,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("the runtime never connected to the agent: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            &conn,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            rustix::net::RecvFlags::CMSG_CLOEXEC,
        )
        .expect("receiving the state and the listener");
        let mut fds = Vec::new();
        for m in control.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(rights) = m {
                fds.extend(rights);
            }
        }
        // Read until the state parses, not to EOF: the runtime's close of
        // the connection may itself be a notified syscall waiting for us.
        let mut payload = buf[..got.bytes].to_vec();
        let state: serde_json::Value = loop {
            if let Ok(v) = serde_json::from_slice(&payload) {
                break v;
            }
            let n = (&conn).read(&mut buf).expect("reading the state");
            assert!(n > 0, "the connection ended inside the state: {payload:?}");
            payload.extend_from_slice(&buf[..n]);
        };
        assert_eq!(fds.len(), 1, "one fd with the state: {state}");
        let listener = fds.pop().unwrap();

        // struct seccomp_notif and struct seccomp_notif_resp (linux/seccomp.h).
        #[repr(C)]
        struct Notif {
            id: u64,
            pid: u32,
            flags: u32,
            nr: i32,
            arch: u32,
            ip: u64,
            args: [u64; 6],
        }
        #[repr(C)]
        struct Resp {
            id: u64,
            val: i64,
            error: i32,
            flags: u32,
        }
        const RECV: rustix::ioctl::Opcode = rustix::ioctl::opcode::read_write::<Notif>(b'!', 0);
        const SEND: rustix::ioctl::Opcode = rustix::ioctl::opcode::read_write::<Resp>(b'!', 1);
        const CONTINUE: u32 = 1; // SECCOMP_USER_NOTIF_FLAG_CONTINUE
        const MKDIR: i32 = 83; // x86_64
        const MKDIRAT: i32 = 258;
        let mut answered = 0;
        while Instant::now() < deadline {
            let mut pfd = [rustix::event::PollFd::new(
                &listener,
                rustix::event::PollFlags::IN,
            )];
            let timeout = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            };
            if rustix::event::poll(&mut pfd, Some(&timeout)).unwrap_or(0) == 0 {
                continue;
            }
            let revents = pfd[0].revents();
            if !revents.contains(rustix::event::PollFlags::IN) {
                break; // HUP: every process under the filter is gone
            }
            let mut n: Notif = unsafe { std::mem::zeroed() };
            let recv = unsafe {
                rustix::ioctl::ioctl(
                    &listener,
                    rustix::ioctl::Updater::<RECV, Notif>::new(&mut n),
                )
            };
            if recv.is_err() {
                continue; // the caller went away (ENOENT) or a signal came
            }
            let mut resp = if n.nr == MKDIR || n.nr == MKDIRAT {
                Resp {
                    id: n.id,
                    val: 0,
                    error: -rustix::io::Errno::DQUOT.raw_os_error(),
                    flags: 0,
                }
            } else {
                Resp {
                    id: n.id,
                    val: 0,
                    error: 0,
                    flags: CONTINUE,
                }
            };
            let sent = unsafe {
                rustix::ioctl::ioctl(
                    &listener,
                    rustix::ioctl::Updater::<SEND, Resp>::new(&mut resp),
                )
            };
            if sent.is_ok() {
                answered += 1;
            }
        }
        (state, answered)
    })
}

#[test]
fn seccomp_notify_hands_the_listener_to_the_agent() {
    if !require_root() {
        return;
    }
    for no_new_privileges in [false, true] {
        let mut env = TestEnv::new("seccompnotify");
        let socket = env.dir.path().join("agent.sock");
        let agent = seccomp_agent(&socket);
        let mut b = env.bundle(&["sh", "-c", "mkdir /tmp/x; echo rc=$?"]);
        b.edit(|c| {
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
            c["process"]["noNewPrivileges"] = json!(no_new_privileges);
            // The runtime's own syscalls after loading (open, read, close,
            // fcntl) go to the agent too: it must hold the fd by then.
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": socket,
                "listenerMetadata": "agent-metadata",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["mkdir", "mkdirat", "openat", "open", "read", "close", "fcntl"], "action": "SCMP_ACT_NOTIFY"}]
            });
        });
        let id = env.id();
        // A runtime stuck before the agent holds the listener is killed
        // (its init dies with it) so the test fails instead of hanging.
        // Output goes to files: a stuck init would hold pipes open forever.
        let (out_path, err_path) = (env.dir.path().join("out"), env.dir.path().join("err"));
        let status = std::process::Command::new("timeout")
            .args(["-s", "KILL", "60"])
            .arg(&env.binary)
            .arg("--root")
            .arg(&env.state_root)
            .args(["run", "--bundle", b.path(), &id])
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .unwrap();
        let stdout = std::fs::read_to_string(&out_path).unwrap();
        let stderr = std::fs::read_to_string(&err_path).unwrap();
        assert!(
            status.success(),
            "noNewPrivileges {no_new_privileges}: {status}: {stderr}"
        );
        assert!(
            stdout.contains("rc=1"),
            "the agent's EDQUOT reached mkdir: {stdout} {stderr}"
        );
        assert!(
            stderr.contains("Disk quota exceeded") || stdout.contains("Disk quota exceeded"),
            "{stdout} {stderr}"
        );
        let (state, answered) = agent.join().expect("agent thread");
        assert_eq!(state["metadata"], "agent-metadata");
        assert_eq!(state["state"]["id"], id.as_str());
        assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{state}");
        assert!(
            answered > 1,
            "the agent answered mkdir and the loader's own calls: {answered}"
        );
        env.finish();
    }
}

#[test]
fn seccomp_notify_without_an_agent_fails_with_runcs_text() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("seccompnoagent");
    let socket = env.dir.path().join("nobody.sock");
    let mut b = env.bundle(&["true"]);
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": socket,
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let (code, _, err) = env.run(&b);
    assert_ne!(code, 0);
    assert!(
        err.contains("failed to connect with seccomp agent"),
        "{err}"
    );
    b.edit(|c| {
        c["linux"]["seccomp"]["syscalls"] =
            json!([{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]);
    });
    let (code, _, err) = env.run(&b);
    assert_ne!(code, 0);
    assert!(
        err.contains("SCMP_ACT_NOTIFY cannot be used for the write syscall"),
        "{err}"
    );
    env.finish();
}

#[test]
fn personality_and_io_priority_reach_init_and_exec() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("persona_ioprio");
    let mut b = env.bundle(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 4});
    });
    let id = env.id();
    env.rt_ok(&["run", "-d", "--bundle", b.path(), &id]);
    // exec copies config.json's process, so both settings carry over.
    let out = env.rt_ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "uname -m; ionice -p 1; ionice -p $$",
    ]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["i686", "best-effort: prio 4", "best-effort: prio 4"],
        "{out}"
    );
    env.rt_ok(&["kill", &id, "KILL"]);
    env.wait_status(&id, "stopped");
    env.rt_ok(&["delete", &id]);
    // Unknown personality flags are refused by name, not ignored.
    let mut b = env.bundle(&["true"]);
    b.edit(|c| c["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["NO_SUCH"]}));
    let (code, _, err) = env.run(&b);
    assert_ne!(code, 0);
    assert!(err.contains("linux.personality.flags"), "{err}");
    env.finish();
}

#[test]
fn scheduler_policy_and_nice_reach_init_and_exec() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("scheduler");
    let mut b = env.bundle(&["sleep", "1000"]);
    b.edit(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 19, "priority": 0});
    });
    let id = env.id();
    env.rt_ok(&["run", "-d", "--bundle", b.path(), &id]);
    // /proc/PID/stat: field 19 is nice, field 41 the policy (3 = SCHED_BATCH).
    let out = env.rt_ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "awk '{print $19, $41}' /proc/1/stat /proc/self/stat",
    ]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["19 3", "19 3"], "{out}");
    env.rt_ok(&["kill", &id, "KILL"]);
    env.wait_status(&id, "stopped");
    env.rt_ok(&["delete", &id]);
    env.finish();
}

#[test]
fn time_offsets_apply_in_a_user_namespace() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("timens_userns");
    let mut b = env.bundle(&["cat", "/proc/self/timens_offsets"]);
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "user"}));
        ns.push(json!({"type": "time"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        c["linux"]["timeOffsets"] = json!({
            "monotonic": {"secs": 7881, "nanosecs": 2718281},
            "boottime": {"secs": 1337, "nanosecs": 3141519}
        });
    });
    let (code, out, err) = env.run(&b);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        lines.contains(&vec!["monotonic", "7881", "2718281"]),
        "{out}"
    );
    assert!(
        lines.contains(&vec!["boottime", "1337", "3141519"]),
        "{out}"
    );
    env.finish();
}

#[test]
fn rootfs_propagation_applies_under_a_shared_parent_mount() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("propagation");
    // pivot_root refuses a new root whose parent mount is shared: the
    // runtime must cut the rootfs off a shared parent, whether by the
    // default recursive slave or, for a shared or non-recursive
    // rootfsPropagation, by making that parent private in its namespace.
    let parent = env.dir.path().join("shared");
    std::fs::create_dir(&parent).unwrap();
    rustix::mount::mount_bind(&parent, &parent).unwrap();
    rustix::mount::mount_change(&parent, rustix::mount::MountPropagationFlags::SHARED).unwrap();
    env.watch_path(&parent);
    let rootfs = berth_integration::fixtures::private_busybox_rootfs(&parent);
    for (propagation, root_shared) in [
        (None, false),
        (Some("rshared"), true),
        (Some("shared"), true),
        (Some("private"), false),
        (Some("rprivate"), false),
        (Some("rslave"), false),
    ] {
        // The root mount's optional fields: "shared:N" when it is shared, "-" when none.
        let mut b = env.bundle(&["awk", "$5 == \"/\" { print $7 }", "/proc/self/mountinfo"]);
        b.edit(|c| {
            c["root"]["path"] = json!(rootfs);
            match propagation {
                Some(p) => c["linux"]["rootfsPropagation"] = json!(p),
                None => {
                    c["linux"]
                        .as_object_mut()
                        .unwrap()
                        .remove("rootfsPropagation");
                }
            }
        });
        let (code, out, err) = env.run(&b);
        assert_eq!(code, 0, "rootfsPropagation {propagation:?}: {err}");
        assert_eq!(
            out.trim().starts_with("shared:"),
            root_shared,
            "rootfsPropagation {propagation:?}: the root's optional fields are {out:?}"
        );
    }
    rustix::mount::unmount(&parent, rustix::mount::UnmountFlags::DETACH).unwrap();
    env.finish();
}

/// `cmd` will run with clone3 failing as ENOSYS, as on kernels before 5.3
/// and under seccomp profiles that hide it (docker's default profile does).
fn without_clone3(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // if (nr == clone3) return ERRNO(ENOSYS); return ALLOW;
    static FILTER: [libc::sock_filter; 4] = [
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0, // offsetof(struct seccomp_data, nr)
        },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_clone3 as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    // SAFETY: between fork and exec the hook makes two system calls on a
    // static program, allocating nothing.
    unsafe {
        cmd.pre_exec(|| {
            let prog = libc::sock_fprog {
                len: FILTER.len() as u16,
                filter: FILTER.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// The cgroup of `pid` in every hierarchy, as /proc/PID/cgroup lists them.
fn cgroups_of(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn without_clone3_the_container_still_enters_every_cgroup() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("no_clone3");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id();
    let run = env.output_of(without_clone3(&mut env.rt_cmd(&[
        "run",
        "--detach",
        "--bundle",
        b.path(),
        &id,
    ])));
    assert!(
        run.status.success(),
        "run without clone3: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let leaf = format!("/berth/{id}");
    let init = env.init_pid(&id);
    let pid_file = env.dir.path().join("exec.pid");
    let exec = env.output_of(without_clone3(&mut env.rt_cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ])));
    assert!(
        exec.status.success(),
        "exec without clone3: {}",
        String::from_utf8_lossy(&exec.stderr)
    );
    let exec_pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for pid in [init, exec_pid] {
        let cgroups = cgroups_of(pid);
        // Every hierarchy: the v1 ones and the cgroup2 one ("0::").
        assert!(
            cgroups.iter().all(|l| l.ends_with(&leaf)),
            "{pid} is not in {leaf} everywhere: {cgroups:#?}"
        );
    }
    env.rt_ok(&["delete", "--force", &id]);
    env.finish();
}
