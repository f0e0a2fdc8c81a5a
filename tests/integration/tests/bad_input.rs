//! Bad input to berth-runtime: each case is a one-line error naming the
//! problem, exit status 1, and nothing left behind (the leak check).

use berth_integration::require_root;
use berth_integration::runtime::TestEnv;
use serde_json::json;

/// Asserts exit 1 and a single stderr line containing `want`.
fn assert_one_line_error(out: &std::process::Output, want: &str) {
    assert_one_line_error_with(out, want, 1);
}

/// Asserts exit status `code` and a single stderr line containing `want`.
fn assert_one_line_error_with(out: &std::process::Output, want: &str, code: i32) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line, got: {err}");
    assert!(err.contains(want), "expected {want:?} in: {err}");
}

/// A change that makes a config invalid.
type ConfigEdit = dyn Fn(&mut serde_json::Value);

#[test]
fn bad_configs_are_refused_by_name() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("badconfig");
    let cases: Vec<(&str, Box<ConfigEdit>)> = vec![
        (
            "process.user.uid: invalid type",
            Box::new(|c| c["process"]["user"]["uid"] = json!("root")),
        ),
        (
            "missing field `cwd`",
            Box::new(|c| {
                c["process"].as_object_mut().unwrap().remove("cwd");
            }),
        ),
        (
            "root.path: rootfs",
            Box::new(|c| c["root"]["path"] = json!("/nonexistent/rootfs")),
        ),
        (
            "ociVersion: \"2.0.0\" is not supported",
            Box::new(|c| c["ociVersion"] = json!("2.0.0")),
        ),
        (
            "linux.resources.memory.limit",
            Box::new(|c| c["linux"]["resources"]["memory"] = json!({"limit": -5})),
        ),
        (
            "linux.resources.cpu.cpus",
            Box::new(|c| c["linux"]["resources"]["cpu"] = json!({"cpus": "zero-to-one"})),
        ),
        (
            "linux.sysctl",
            Box::new(|c| c["linux"]["sysctl"] = json!({"vm.swappiness": "0"})),
        ),
        (
            "process.args",
            Box::new(|c| c["process"]["args"] = json!([])),
        ),
        (
            "linux.namespaces: cannot open net namespace",
            Box::new(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "network");
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "network", "path": "/nonexistent/ns"}));
            }),
        ),
    ];
    for (want, edit) in cases {
        let mut b = env.bundle(&["true"]);
        b.edit(|c| edit(c));
        let id = env.id();
        let out = env.rt(&["create", "--bundle", b.path(), &id]);
        assert_one_line_error(&out, want);
    }
    // Not JSON at all.
    let b = env.bundle(&["true"]);
    std::fs::write(b.dir.join("config.json"), "{ not json").unwrap();
    let id = env.id();
    assert_one_line_error(
        &env.rt(&["create", "--bundle", b.path(), &id]),
        "invalid JSON",
    );
    env.finish();
}

#[test]
fn a_duplicate_id_is_refused_and_the_first_container_survives() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("dupid");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", b.path(), &id]);
    let out = env.rt(&["create", "--bundle", b.path(), &id]);
    assert_one_line_error(&out, "already exists");
    assert_eq!(env.status(&id), "running");
    env.rt_ok(&["delete", "--force", &id]);
    env.finish();
}

#[test]
fn unknown_ids_and_bad_signals() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("unknown");
    for cmd in [
        vec!["start", "nope"],
        vec!["kill", "nope"],
        vec!["delete", "nope"],
        vec!["state", "nope"],
        vec!["pause", "nope"],
    ] {
        let out = env.rt(&cmd);
        assert_one_line_error(&out, "\"nope\" does not exist");
    }
    // exec is the one command runc exits 255 from on any failure of its
    // own, so a caller can tell it from the process's exit status (runc's
    // exec.bats checks it); berth follows runc here.
    let out = env.rt(&["exec", "nope", "true"]);
    assert_one_line_error_with(&out, "\"nope\" does not exist", 255);
    assert_one_line_error(&env.rt(&["start", "../etc"]), "invalid container id");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", b.path(), &id]);
    assert_one_line_error(&env.rt(&["kill", &id, "SIGNOPE"]), "invalid signal");
    assert_one_line_error(&env.rt(&["update", "--memory", "lots", &id]), "--memory");
    assert_one_line_error(&env.rt(&["update", "--cpuset-cpus", "x-y", &id]), "cpus");
    env.rt_ok(&["delete", "--force", &id]);
    env.finish();
}

#[test]
fn systemd_cgroups_are_a_clear_error() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("systemd");
    let out = env.rt(&["--systemd-cgroup", "list"]);
    assert_one_line_error(&out, "systemd cgroup management is not supported yet");
    env.finish();
}

#[test]
fn another_containers_cgroup_is_refused() {
    if !require_root() {
        return;
    }
    let mut env = TestEnv::new("sharedcg");
    let path = format!("/berth-it-shared-{}", std::process::id());
    let mut b = env.bundle(&["sleep", "1000"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
    let first = env.id();
    env.rt_ok(&["run", "--detach", "--bundle", b.path(), &first]);
    let second = env.id();
    let out = env.rt(&["run", "--detach", "--bundle", b.path(), &second]);
    assert_one_line_error(&out, "is not empty");
    assert_eq!(
        env.status(&first),
        "running",
        "the first container is untouched"
    );
    env.rt_ok(&["delete", "--force", &first]);
    for dir in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(dir.path().join(path.trim_start_matches('/')));
    }
    env.finish();
}
