//! Filters loaded into a real kernel.
//!
//! Each test re-runs this test binary as a child (`helper_load_and_exec`,
//! ignored in normal runs) that compiles the profile through the cache
//! the parent filled, loads it with `CompiledFilter::load`, and then either
//! execs busybox or hands its listener to an agent socket. The parent looks
//! at what busybox could and could not do.

use std::io::{IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use berth_seccomp::{compile_cached, parse_profile, send_listener};
use serde_json::{json, Value};

const HELPER_ENV: &str = "BERTH_SECCOMP_TEST_HELPER";
const BUSYBOX: &str = "/bin/busybox";
const CHILD_TIMEOUT: Duration = Duration::from_secs(30);
const SIGSYS: i32 = 31;

/// Runs in the child: load the filter described by $BERTH_SECCOMP_TEST_HELPER, then act.
#[test]
#[ignore = "helper: the other tests run it in a child process"]
fn helper_load_and_exec() {
    let spec: Value =
        serde_json::from_str(&std::env::var(HELPER_ENV).expect("run only by the kernel tests"))
            .unwrap();
    let profile = parse_profile(&spec["profile"]).unwrap();
    let filter = compile_cached(&profile, Path::new(spec["cache"].as_str().unwrap())).unwrap();
    // Unprivileged-style loading, as a container without CAP_SYS_ADMIN would.
    rustix::thread::set_no_new_privs(true).unwrap();
    let listener = filter.load().unwrap();
    if let Some(argv) = spec["exec"].as_array() {
        let argv: Vec<&str> = argv.iter().map(|a| a.as_str().unwrap()).collect();
        let err = Command::new(argv[0]).args(&argv[1..]).exec();
        panic!("exec {argv:?}: {err}");
    }
    let socket = spec["listener"].as_str().expect("exec or listener");
    let listener = listener.expect("a NOTIFY profile yields a listener");
    let state = json!({
        "ociVersion": "1.2.0",
        "id": "kernel-test",
        "status": "creating",
        "pid": std::process::id(),
        "bundle": "/",
    });
    send_listener(
        Path::new(socket),
        Some("agent-metadata"),
        &state,
        listener.as_fd(),
    )
    .unwrap();
}

struct Outcome {
    status: ExitStatus,
    stderr: String,
}

/// A private temporary directory, removed on drop.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-seccomp-test-")
        .tempdir()
        .unwrap()
}

/// Compiles `profile` into `cache` in this process (as the runtime's parent
/// does), then runs the helper child with `action` merged into its spec.
fn run_child(profile: Value, cache: &Path, action: Value) -> Outcome {
    compile_cached(&parse_profile(&profile).unwrap(), cache).unwrap();
    let mut spec = json!({"profile": profile, "cache": cache});
    spec.as_object_mut()
        .unwrap()
        .extend(action.as_object().unwrap().clone());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_load_and_exec",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, spec.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("helper child did not finish within {CHILD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Outcome { status, stderr }
}

fn exec(argv: &[&str]) -> Value {
    json!({ "exec": argv })
}

fn allow_all_but(rules: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
}

#[test]
fn denied_mkdir_returns_the_profile_errno() {
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    let target = tmp.path().join("made");
    let target_s = target.to_str().unwrap();
    let profile = allow_all_but(json!([
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
    ]));
    let out = run_child(profile, &cache, exec(&[BUSYBOX, "mkdir", target_s]));
    assert_eq!(out.status.code(), Some(1), "stderr: {}", out.stderr);
    // errno 38 is ENOSYS.
    assert!(
        out.stderr.contains("Function not implemented"),
        "stderr: {}",
        out.stderr
    );
    assert!(!target.exists());

    // The same child with a filter that leaves mkdir alone creates the directory.
    let control = allow_all_but(json!([{"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}]));
    let out = run_child(control, &cache, exec(&[BUSYBOX, "mkdir", target_s]));
    assert!(out.status.success(), "stderr: {}", out.stderr);
    assert!(target.is_dir());
}

/// `busybox linux32` calls personality(PER_LINUX32 = 8), `linux64` personality(PER_LINUX = 0).
fn personality_outcomes(args: Value) -> (Outcome, Outcome) {
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    let profile = allow_all_but(json!([
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": args}
    ]));
    let linux32 = run_child(
        profile.clone(),
        &cache,
        exec(&[BUSYBOX, "linux32", BUSYBOX, "true"]),
    );
    let linux64 = run_child(
        profile,
        &cache,
        exec(&[BUSYBOX, "linux64", BUSYBOX, "true"]),
    );
    (linux32, linux64)
}

fn denied(o: &Outcome) -> bool {
    !o.status.success() && o.stderr.contains("Permission denied")
}

#[test]
fn argument_condition_denies_only_the_matching_call() {
    let (linux32, linux64) =
        personality_outcomes(json!([{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]));
    assert!(
        denied(&linux32),
        "linux32 should be denied; stderr: {}",
        linux32.stderr
    );
    assert!(
        linux64.status.success(),
        "linux64 should pass; stderr: {}",
        linux64.stderr
    );
}

#[test]
fn masked_eq_uses_value_as_mask_and_value_two_as_result() {
    let (linux32, linux64) = personality_outcomes(json!([
        {"index": 0, "value": 0xff, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}
    ]));
    assert!(denied(&linux32), "stderr: {}", linux32.stderr);
    assert!(linux64.status.success(), "stderr: {}", linux64.stderr);
}

#[test]
fn repeated_argument_index_means_any_condition_matches() {
    // runc's semantics: two conditions on arg 0 become two rules (OR).
    let (linux32, linux64) = personality_outcomes(json!([
        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}
    ]));
    assert!(denied(&linux32), "stderr: {}", linux32.stderr);
    assert!(denied(&linux64), "stderr: {}", linux64.stderr);
}

#[test]
fn distinct_argument_indexes_must_all_match() {
    // personality has one argument; rdx (arg 2) is never 0xdeadbeef in busybox's
    // call, so the AND of both conditions never holds and nothing is denied.
    let (linux32, _) = personality_outcomes(json!([
        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
        {"index": 2, "value": 0xdead_beef_u64, "op": "SCMP_CMP_EQ"}
    ]));
    assert!(linux32.status.success(), "stderr: {}", linux32.stderr);
}

fn killed_by_sigsys(action: &str) {
    let tmp = scratch();
    let profile = allow_all_but(json!([{"names": ["uname"], "action": action}]));
    let out = run_child(
        profile,
        &tmp.path().join("cache"),
        exec(&[BUSYBOX, "uname"]),
    );
    assert_eq!(
        out.status.signal(),
        Some(SIGSYS),
        "{action}: status {:?}, stderr: {}",
        out.status,
        out.stderr
    );
}

#[test]
fn kill_actions_end_the_process_with_sigsys() {
    killed_by_sigsys("SCMP_ACT_KILL");
    killed_by_sigsys("SCMP_ACT_KILL_PROCESS");
    killed_by_sigsys("SCMP_ACT_KILL_THREAD");
    // TRAP sends SIGSYS, which busybox does not handle.
    killed_by_sigsys("SCMP_ACT_TRAP");
}

#[test]
fn log_action_allows_the_call() {
    let tmp = scratch();
    let profile = allow_all_but(json!([{"names": ["uname"], "action": "SCMP_ACT_LOG"}]));
    let out = run_child(
        profile,
        &tmp.path().join("cache"),
        exec(&[BUSYBOX, "uname"]),
    );
    assert!(out.status.success(), "stderr: {}", out.stderr);
}

#[test]
fn docker_default_profile_runs_busybox_and_blocks_unshare() {
    let tmp = scratch();
    let docker = std::fs::read("/work/shared/testdata/seccomp/docker-default.json")
        .or_else(|_| std::fs::read(workspace_testdata()))
        .unwrap();
    let target = berth_seccomp::DockerTarget::host();
    // Docker's default capabilities: no CAP_SYS_ADMIN, so unshare is not allowed.
    let oci = berth_seccomp::docker_to_oci(&docker, &["CAP_CHOWN".to_string()], &target).unwrap();
    let profile = serde_json::to_value(&oci).unwrap();
    let ok = run_child(
        profile.clone(),
        &tmp.path().join("cache"),
        exec(&[BUSYBOX, "true"]),
    );
    assert!(ok.status.success(), "stderr: {}", ok.stderr);
    let blocked = run_child(
        profile,
        &tmp.path().join("cache"),
        exec(&[BUSYBOX, "unshare", "-U", BUSYBOX, "true"]),
    );
    assert!(!blocked.status.success(), "unshare passed Docker's profile");
    assert!(
        blocked.stderr.contains("Operation not permitted"),
        "stderr: {}",
        blocked.stderr
    );
}

fn workspace_testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/seccomp/docker-default.json")
}

#[test]
fn notify_listener_reaches_the_agent_with_the_process_state() {
    let tmp = scratch();
    let socket = tmp.path().join("agent.sock");
    let agent = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    agent.set_nonblocking(true).unwrap();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": socket,
        "listenerMetadata": "agent-metadata",
        "syscalls": [{"names": ["mknodat", "mknod"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let out = run_child(
        profile,
        &tmp.path().join("cache"),
        json!({"listener": socket}),
    );
    assert!(out.status.success(), "helper failed: {}", out.stderr);

    let deadline = Instant::now() + CHILD_TIMEOUT;
    let (conn, _) = loop {
        match agent.accept() {
            Ok(c) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("agent accept: {e}"),
        }
    };
    conn.set_nonblocking(false).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        &conn,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    )
    .unwrap();
    let mut fds = Vec::new();
    for m in control.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    let mut payload = buf[..msg.bytes].to_vec();
    // The rest, if the runtime needed more than one sendmsg.
    (&conn).read_to_end(&mut payload).unwrap();
    let doc: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(doc["fds"], json!(["seccompFd"]));
    assert_eq!(doc["metadata"], "agent-metadata");
    assert_eq!(doc["ociVersion"], "1.2.0");
    assert_eq!(doc["state"]["id"], "kernel-test");
    assert!(doc["pid"].as_i64().unwrap() > 0);
    assert_eq!(fds.len(), 1, "exactly one fd travels with the state");
    let link = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        rustix::fd::AsRawFd::as_raw_fd(&fds[0])
    ))
    .unwrap();
    assert!(
        link.to_string_lossy().contains("seccomp notify"),
        "received fd is {link:?}, not a seccomp listener"
    );
}
