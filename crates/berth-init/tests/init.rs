//! The berth-init binary, run for real on this machine (not as PID 1: it
//! is then a child subreaper, so orphans still come to it). The PID 1 case,
//! in a busybox container, is tests/integration/tests/init.rs.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const INIT: &str = env!("CARGO_BIN_EXE_berth-init");

fn init(args: &[&str]) -> Command {
    let mut c = Command::new(INIT);
    c.args(args).stdin(Stdio::null());
    c
}

fn status(args: &[&str]) -> ExitStatus {
    init(args).status().expect("running berth-init")
}

/// Waits up to 10 s for the child to end.
fn wait_for(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth-init {} did not exit within 10s", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pids of `pid`'s children.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// A process's state letter (R, S, Z, ...).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn is_static_so_it_runs_in_images_without_libc() {
    let elf = std::fs::read(INIT).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit ELF expected");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let p_type = u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
        assert!(
            p_type != PT_INTERP && p_type != PT_DYNAMIC,
            "{INIT} needs a dynamic loader (program header type {p_type}); see crates/berth-init/build.rs"
        );
    }
}

#[test]
fn exit_codes_pass_through() {
    assert_eq!(status(&["--", "sh", "-c", "exit 7"]).code(), Some(7));
    assert_eq!(status(&["true"]).code(), Some(0));
    // Killed by a signal: 128 + N, as a shell reports it.
    assert_eq!(status(&["--", "sh", "-c", "kill -9 $$"]).code(), Some(137));
    assert_eq!(status(&["--", "/nonexistent/program"]).code(), Some(127));
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        status(&["--", dir.path().to_str().unwrap()]).code(),
        Some(126)
    );
    assert_eq!(status(&["--"]).code(), Some(1));
    assert_eq!(status(&["-z", "true"]).code(), Some(1));
}

#[test]
fn arguments_and_environment_reach_the_program() {
    let out = init(&[
        "--",
        "sh",
        "-c",
        "echo \"$0|$1|$BERTH_INIT_TEST\"",
        "a b",
        "-g",
    ])
    .env("BERTH_INIT_TEST", "v")
    .output()
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a b|-g|v\n");
    let version = init(&["--version"]).output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("berth-init version "));
}

#[test]
fn signals_are_forwarded_to_the_program() {
    // The shell's trap only runs between commands: short sleeps.
    let mut child = init(&[
        "--",
        "sh",
        "-c",
        "trap 'exit 42' USR1; echo ready; while :; do sleep 0.05; done",
    ])
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut ready).unwrap();
    Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(wait_for(&mut child).code(), Some(42));

    // SIGTERM to a program with the default action ends it: 128 + 15.
    let mut child = init(&["--", "sleep", "30"]).spawn().unwrap();
    let pid = child.id();
    eventually("sleep runs", || children(pid).len() == 1);
    Command::new("kill").arg(pid.to_string()).status().unwrap();
    assert_eq!(wait_for(&mut child).code(), Some(143));
}

#[test]
fn group_mode_signals_the_whole_process_group() {
    // The shell survives TERM (a handler, which its sleep does not
    // inherit); only the sleep, reached through the group, dies of it, and
    // the shell goes on to exit 3. Without -g it would sleep 30 s.
    let mut child = init(&["-g", "--", "sh", "-c", "trap true TERM; sleep 30; exit 3"])
        .spawn()
        .unwrap();
    let pid = child.id();
    eventually("the shell started its sleep", || {
        children(pid)
            .first()
            .is_some_and(|sh| !children(*sh).is_empty())
    });
    let started = Instant::now();
    Command::new("kill").arg(pid.to_string()).status().unwrap();
    assert_eq!(wait_for(&mut child).code(), Some(3));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn orphans_are_reaped() {
    // The subshell exits at once, leaving its sleep to berth-init (the
    // subreaper); when that sleep ends, nothing else waits for it.
    let mut child = init(&["--", "sh", "-c", "(sleep 0.2 &); sleep 3"])
        .spawn()
        .unwrap();
    let pid = child.id();
    eventually("the orphan came to berth-init", || children(pid).len() == 2);
    eventually("the orphan was reaped", || children(pid).len() == 1);
    for c in children(pid) {
        assert_ne!(state(c), Some('Z'), "child {c} of berth-init is a zombie");
    }
    assert_eq!(wait_for(&mut child).code(), Some(0));
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}
