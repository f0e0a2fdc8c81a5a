//! berth-shim driven as berthd drives it: spawned with its command line,
//! reached with `berth-shim-proto`'s `ShimClient`, real busybox
//! containers, the embedded runtime and external ones (runc, crun). Every
//! test ends with `ShimTest::finish`: the shim exited, its state dir and
//! socket dir are empty, no cgroup, mount or process of the test remains.
//!
//! Needs `cargo build [--release] -p berth-shim -p berth-runtime` first
//! (the same profile as the test run).

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_integration::peers::ensure_installed;
use berth_integration::require_root;
use berth_integration::shim::*;
use berth_shim_proto::client::read_exit_record;
use berth_shim_proto::{stream, AttachOptions, ContainerStatus, Error, ErrorCode, ShimClient};
use serde_json::json;

fn attach_opts(stdin: bool, stdout: bool, stderr: bool, close_stdin: bool) -> AttachOptions {
    AttachOptions {
        stdin,
        stdout,
        stderr,
        close_stdin,
    }
}

fn all_output() -> AttachOptions {
    attach_opts(false, true, true, false)
}

/// An exec's process spec, typed as the client wants it.
macro_rules! process {
    ($($arg:expr),* $(,)?) => {
        serde_json::from_value(process_json(&[$($arg),*])).unwrap()
    };
}

/// The shim's error code, or a panic naming what came instead.
fn shim_error<T: std::fmt::Debug>(r: Result<T, Error>) -> (ErrorCode, String) {
    match r {
        Err(Error::Shim { code, message }) => (code, message),
        other => panic!("expected an error from the shim, got {other:?}"),
    }
}

/// Installs an external runtime if needed; false (test skipped) when apt cannot.
fn have_runtime(binary: &str, package: &str) -> bool {
    match ensure_installed(binary, package) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("skipped: {binary} is missing and apt failed: {e}");
            false
        }
    }
}

// 1. Spawning.

#[test]
fn spawn_prints_the_pid_and_detaches() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-spawn");
    let bundle = t.bundle(&["sleep", "1000"]);
    let shim = t.spawn(&bundle, &ShimOpts::default());

    // Detached: its own session and process group, not our child.
    let stat = stat_fields(shim.pid).expect("the shim runs");
    assert_ne!(stat[0], "Z");
    assert_ne!(
        stat[1].parse::<u32>().unwrap(),
        std::process::id(),
        "the shim is still the test's child"
    );
    assert_eq!(stat[2], shim.pid.to_string(), "process group");
    assert_eq!(stat[3], shim.pid.to_string(), "session");
    // Its stdin and stdout are /dev/null, so it holds nothing of its launcher's.
    for fd in [0, 1] {
        assert_eq!(
            std::fs::read_link(format!("/proc/{}/fd/{fd}", shim.pid)).unwrap(),
            std::path::Path::new("/dev/null")
        );
    }
    // The socket: bound, a socket, owner only.
    let meta = std::fs::metadata(&shim.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let mut c = shim.client();
    assert_eq!(c.shim_pid() as i32, shim.pid);
    assert_eq!(c.id(), shim.id);
    assert!(!c.shim_version().is_empty());
    let st = c.state().unwrap();
    assert_eq!(st.status, ContainerStatus::Created);
    assert_eq!(
        (st.shim_pid as i32, st.tty, st.started_at),
        (shim.pid, false, 0)
    );
    assert!(st.exit.is_none() && st.execs.is_empty());
    // The container's init is the shim's child, waiting for start.
    assert!(alive(st.pid as i32));
    assert_eq!(stat_fields(st.pid as i32).unwrap()[1], shim.pid.to_string());

    // A created container that never ran has no exit record to give.
    assert_eq!(c.delete(false).unwrap(), None);
    assert!(wait_gone(shim.pid, Duration::from_secs(10)));
    assert!(!alive(st.pid as i32));
    t.finish();
}

/// Breaks a bundle.
type Spoil = Box<dyn Fn(&mut berth_integration::runtime::Bundle)>;

#[test]
fn a_failed_create_exits_non_zero_with_the_runtimes_error_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-badbundle");
    let cases: Vec<(&str, Spoil, &str)> = vec![
        (
            "config.json is not JSON",
            Box::new(|b| std::fs::write(b.dir.join("config.json"), b"{not json").unwrap()),
            "config.json",
        ),
        (
            "the rootfs is missing",
            Box::new(|b| {
                b.edit(|c| c["root"]["path"] = json!("/nonexistent/rootfs"));
            }),
            "/nonexistent/rootfs",
        ),
        (
            "the program is missing (docker's 127)",
            Box::new(|b| {
                b.edit(|c| c["process"]["args"] = json!(["no-such-program"]));
            }),
            "no-such-program",
        ),
        (
            "the program cannot be executed (docker's 126)",
            Box::new(|b| {
                b.edit(|c| c["process"]["args"] = json!(["/etc/passwd"]));
            }),
            "/etc/passwd",
        ),
    ];
    for (what, spoil, mention) in cases {
        let mut bundle = t.bundle(&["true"]);
        spoil(&mut bundle);
        let (out, shim) = t.launch(&bundle, &ShimOpts::default());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = if what.contains("127") {
            127
        } else if what.contains("126") {
            126
        } else {
            1
        };
        assert_eq!(out.status.code(), Some(code), "{what}: {stderr}");
        assert!(out.stdout.is_empty(), "{what}: printed {:?}", out.stdout);
        assert!(
            stderr.starts_with("berth-shim: ") && stderr.contains(mention),
            "{what}: {stderr}"
        );
        assert!(!shim.socket.exists(), "{what}: the socket remains");
        let left: Vec<_> = std::fs::read_dir(&shim.state_dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{what}: the state dir holds {left:?}");
    }
    // A socket a live shim serves is not taken over.
    let bundle = t.bundle(&["sleep", "1000"]);
    let first = t.spawn(&bundle, &ShimOpts::default());
    let (cmd, _) = t.command(&bundle, &ShimOpts::default());
    let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into()).collect();
    let sock_at = args.iter().position(|a| a == "--socket").unwrap() + 1;
    let mut second = Command::new(cmd.get_program());
    for (i, a) in args.iter().enumerate() {
        second.arg(if i == sock_at {
            first.socket.to_str().unwrap()
        } else {
            a
        });
    }
    second.stdin(Stdio::null());
    let out = run_bounded(&mut second);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already serves"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        first.client().state().unwrap().status,
        ContainerStatus::Created
    );
    first.client().delete(true).unwrap();
    t.finish();
}

// 2. start and wait.

#[test]
fn start_and_wait_report_the_exit_and_write_exit_json() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-wait");
    let bundle = t.bundle(&["sh", "-c", "usleep 300000; exit 3"]);
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let mut c = shim.client();
    // A waiter before start, on its own connection.
    let waiter = {
        let mut w = shim.client();
        std::thread::spawn(move || w.wait().unwrap())
    };
    // Someone polling exit.json never sees half of it.
    let poller = {
        let socket = shim.socket.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match read_exit_record(&socket) {
                    Ok(Some(e)) => return e,
                    Ok(None) => {}
                    Err(e) => panic!("a torn exit record: {e}"),
                }
                assert!(Instant::now() < deadline, "no exit record");
            }
        })
    };
    let before = now_ns();
    c.start().unwrap();
    let after = now_ns();
    let st = c.state().unwrap();
    assert_eq!(st.status, ContainerStatus::Running);
    assert!(
        (before..=after).contains(&st.started_at),
        "started_at {} not within {before}..{after}",
        st.started_at
    );
    // Start twice is refused.
    assert_eq!(shim_error(c.start()).0, ErrorCode::FailedPrecondition);

    let exit = waiter.join().unwrap();
    assert_eq!((exit.code, exit.signal, exit.oom_killed), (3, None, false));
    assert_eq!(exit.started_at, st.started_at);
    // The shim records started_at once the start has released the
    // process, which may already be sleeping by then: allow it a little.
    assert!(
        exit.finished_at >= exit.started_at + 250_000_000 && exit.finished_at <= now_ns(),
        "{exit:?}"
    );
    assert_eq!(poller.join().unwrap(), exit);
    assert_eq!(read_exit_record(&shim.socket).unwrap(), Some(exit.clone()));
    // Written by rename: nothing else beside the socket.
    let mut beside: Vec<String> = std::fs::read_dir(shim.socket.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["exit.json", "shim.sock"]);

    // A wait after the exit answers at once.
    let mut late = shim.client();
    late.set_timeout(Some(Duration::from_secs(1))).unwrap();
    let t0 = Instant::now();
    assert_eq!(late.wait().unwrap(), exit);
    assert!(t0.elapsed() < Duration::from_millis(500));
    let st = c.state().unwrap();
    assert_eq!((st.status, st.pid), (ContainerStatus::Stopped, 0));
    assert_eq!(st.exit, Some(exit.clone()));
    assert_eq!(shim_error(c.start()).0, ErrorCode::FailedPrecondition);

    assert_eq!(c.delete(false).unwrap(), Some(exit));
    assert!(wait_gone(shim.pid, Duration::from_secs(10)));
    t.finish();
}

#[test]
fn delete_runs_the_poststop_hooks() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-poststop");
    let out = tempfile::tempdir().expect("temp dir");
    let marker = out.path().join("poststop");
    let mut bundle = t.bundle(&["true"]);
    // The hook runs on the host, with the container's state on stdin, and
    // waits for a child of its own (SIGCHLD must reach it).
    let script = format!(
        "cat > {m}.state; sleep 0.1 & wait; echo ran > {m}",
        m = marker.display()
    );
    bundle.edit(|c| {
        c["hooks"] = json!({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]})
    });
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let mut c = shim.client();
    c.start().unwrap();
    let exit = c.wait().unwrap();
    assert_eq!(exit.code, 0);
    assert!(!marker.exists(), "the hook ran before the delete");
    assert_eq!(c.delete(false).unwrap(), Some(exit));
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
    let state = std::fs::read_to_string(marker.with_extension("state")).unwrap();
    assert!(state.contains("\"status\":\"stopped\""), "{state}");
    assert!(wait_gone(shim.pid, Duration::from_secs(10)));
    t.finish();
}

#[test]
fn a_signal_exit_is_128_plus_the_signal() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-signal");
    // SIGKILL for a pid namespace's init.
    let bundle = t.bundle(&["sleep", "1000"]);
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let mut c = shim.client();
    c.start().unwrap();
    c.kill(9, false).unwrap();
    let exit = c.wait().unwrap();
    assert_eq!((exit.code, exit.signal), (137, Some(9)));
    // Signalling a stopped container is an error, not a crash.
    assert!(c.kill(9, false).is_err());
    assert_eq!(c.delete(false).unwrap(), Some(exit));

    // SIGTERM for an init without a pid namespace of its own (a pid
    // namespace's init ignores signals it has no handler for).
    let mut bundle = t.bundle(&["sleep", "1000"]);
    bundle.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let mut c = shim.client();
    c.start().unwrap();
    c.kill(15, false).unwrap();
    let exit = c.wait().unwrap();
    assert_eq!((exit.code, exit.signal), (143, Some(15)));
    assert_eq!(read_exit_record(&shim.socket).unwrap(), Some(exit.clone()));
    assert_eq!(c.delete(false).unwrap(), Some(exit));
    t.finish();
}

#[test]
fn an_oom_kill_is_recorded_and_a_plain_sigkill_is_not() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-oom");
    // `tail /dev/zero` buffers an endless line: it allocates until killed.
    let limited = |t: &ShimTest, args: &[&str]| {
        let mut bundle = t.bundle(args);
        bundle.edit(|c| {
            c["linux"]["resources"]["memory"] = json!({"limit": 32 << 20, "swap": 32 << 20});
        });
        bundle
    };
    let bundle = limited(&t, &["tail", "/dev/zero"]);
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let mut c = shim.client();
    c.start().unwrap();
    let exit = c.wait().unwrap();
    assert_eq!(
        (exit.code, exit.signal, exit.oom_killed),
        (137, Some(9), true)
    );
    assert_eq!(read_exit_record(&shim.socket).unwrap(), Some(exit.clone()));
    assert_eq!(c.delete(false).unwrap(), Some(exit));

    // The same limit, killed by hand: SIGKILL, but no OOM kill.
    let quiet = limited(&t, &["sleep", "1000"]);
    let shim = t.spawn(&quiet, &ShimOpts::default());
    let mut c = shim.client();
    c.start().unwrap();
    c.kill(9, false).unwrap();
    let exit = c.wait().unwrap();
    assert_eq!(
        (exit.code, exit.signal, exit.oom_killed),
        (137, Some(9), false)
    );
    c.delete(false).unwrap();
    t.finish();
}

// 3. Output: attach and the json-file log.

#[test]
fn attach_is_multiplexed_and_the_log_has_every_line() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-output");
    let bundle = t.bundle(&[
        "sh",
        "-c",
        "echo early-out; echo early-err >&2; \
         while [ ! -e /dev/shm/go ]; do usleep 10000; done; \
         echo late-out; echo late-err >&2; echo late-out2",
    ]);
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let mut c = shim.client();
    c.start().unwrap();
    // Nobody is attached: the early lines reach the log only.
    eventually("the early lines in the log", || {
        (log_entries(&shim.log).len() == 2).then_some(())
    });
    let (tty, both) = shim.client().attach(all_output()).unwrap();
    assert!(!tty);
    let (_, errs) = shim
        .client()
        .attach(attach_opts(false, false, true, false))
        .unwrap();
    // A detached exec's output goes nowhere (docker discards it).
    c.exec(
        "go",
        process!(
            "sh",
            "-c",
            "echo exec-noise; echo exec-noise >&2; touch /dev/shm/go"
        ),
        false,
    )
    .unwrap();
    assert_eq!(c.exec_wait("go").unwrap().code, 0);

    let chunks = read_chunks(both);
    for (id, data) in &chunks {
        let text = String::from_utf8_lossy(data);
        let want = if text.contains("err") {
            stream::STDERR
        } else {
            stream::STDOUT
        };
        assert_eq!(*id, want, "chunk {text:?}");
    }
    let (out, err) = split(&chunks);
    assert_eq!(out, "late-out\nlate-out2\n");
    assert_eq!(err, "late-err\n");
    assert_eq!(read_muxed(errs), (String::new(), "late-err\n".to_string()));
    assert_eq!(c.wait().unwrap().code, 0);

    let mut log = log_entries(&shim.log);
    log.sort();
    let want: Vec<(String, String)> = [
        ("stderr", "early-err\n"),
        ("stderr", "late-err\n"),
        ("stdout", "early-out\n"),
        ("stdout", "late-out\n"),
        ("stdout", "late-out2\n"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(log, want);
    c.delete(false).unwrap();
    t.finish();
}

fn split(chunks: &[(u8, Vec<u8>)]) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for (id, d) in chunks {
        if *id == stream::STDERR {
            err.extend_from_slice(d)
        } else {
            out.extend_from_slice(d)
        }
    }
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn the_log_rotates_by_size_and_count() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-rotate");
    let bundle = t.bundle(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    let opts = ShimOpts {
        log_max_size: Some(2000),
        log_max_files: Some(3),
        ..Default::default()
    };
    let shim = t.spawn(&bundle, &opts);
    let mut c = shim.client();
    c.start().unwrap();
    assert_eq!(c.wait().unwrap().code, 0);
    let numbered = |n: u32| {
        let mut p = shim.log.clone().into_os_string();
        if n > 0 {
            p.push(format!(".{n}"));
        }
        std::path::PathBuf::from(p)
    };
    assert!(!numbered(3).exists(), "more than --log-max-files files");
    let mut lines = Vec::new();
    for n in [2, 1, 0] {
        let size = std::fs::metadata(numbered(n)).unwrap().len();
        assert!(size <= 2000 && size > 1000, "file {n} has {size} bytes");
        for (stream, line) in log_entries(&numbered(n)) {
            assert_eq!(stream, "stdout");
            lines.push(line);
        }
    }
    // What is kept is the newest output, in order, without gaps.
    let numbers: Vec<u32> = lines
        .iter()
        .map(|l| l.trim_end().strip_prefix("line-").unwrap().parse().unwrap())
        .collect();
    assert_eq!(*numbers.last().unwrap(), 299);
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    c.delete(false).unwrap();
    for n in [1, 2] {
        std::fs::remove_file(numbered(n)).unwrap();
    }
    t.finish();
}

// 4. stdin.

#[test]
fn stdin_reaches_cat_and_its_end_closes_it() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-stdin");
    let bundle = t.bundle(&["cat"]);
    let opts = ShimOpts {
        stdin: true,
        ..Default::default()
    };
    let shim = t.spawn(&bundle, &opts);
    let mut c = shim.client();
    // A first client sends a line and leaves without closing stdin.
    let (_, mut first) = shim
        .client()
        .attach(attach_opts(true, true, true, false))
        .unwrap();
    c.start().unwrap();
    first.write_all(b"one\n").unwrap();
    assert_eq!(read_until_muxed(&mut first, "one\n"), "one\n");
    drop(first);
    // cat still runs; the next client's end of input is stdin's end.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.state().unwrap().status, ContainerStatus::Running);
    let (_, mut second) = shim
        .client()
        .attach(attach_opts(true, true, true, true))
        .unwrap();
    second.write_all(b"two\nthree\n").unwrap();
    second.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_muxed(second), ("two\nthree\n".into(), String::new()));
    assert_eq!(c.wait().unwrap().code, 0);
    let log: Vec<String> = log_entries(&shim.log).into_iter().map(|e| e.1).collect();
    assert_eq!(log, ["one\n", "two\n", "three\n"]);
    c.delete(false).unwrap();
    t.finish();
}

/// Reads multiplexed stdout until it holds `needle`.
fn read_until_muxed(s: &mut UnixStream, needle: &str) -> String {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut out = String::new();
    while !out.contains(needle) {
        let (id, data) = stream::read_chunk(s, stream::MAX_CHUNK)
            .unwrap()
            .unwrap_or_else(|| panic!("the stream ended before {needle:?}: {out:?}"));
        assert_eq!(id, stream::STDOUT);
        out.push_str(&String::from_utf8_lossy(&data));
    }
    out
}

#[test]
fn stdin_larger_than_a_pipe_flows_without_deadlock() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-bigstdin");
    let bundle = t.bundle(&["cat"]);
    let shim = t.spawn(
        &bundle,
        &ShimOpts {
            stdin: true,
            ..Default::default()
        },
    );
    let mut c = shim.client();
    let (_, s) = shim
        .client()
        .attach(attach_opts(true, true, false, true))
        .unwrap();
    c.start().unwrap();
    // 4 MiB of lines: cat's stdout fills while the shim still has stdin
    // to write, so the shim must keep both moving.
    let line = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
    let total = 4 << 20;
    let writer = {
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..total / line.len() {
                w.write_all(line).unwrap();
            }
            w.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    // Meanwhile the shim still answers others.
    let mut other = shim.client();
    assert_eq!(other.state().unwrap().status, ContainerStatus::Running);
    let (out, err) = read_muxed(s);
    writer.join().unwrap();
    assert_eq!(err, "");
    assert_eq!(out.len(), total / line.len() * line.len());
    assert!(out.lines().all(|l| l.as_bytes() == &line[..line.len() - 1]));
    assert_eq!(c.wait().unwrap().code, 0);
    c.delete(false).unwrap();
    t.finish();
}

// 5. tty.

#[test]
fn tty_attach_is_raw_and_resize_reaches_the_container() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-tty");
    let bundle = t.tty_bundle(&["sh", "-c", "read line; echo got-$line; stty size; exit 5"]);
    let shim = t.spawn(
        &bundle,
        &ShimOpts {
            tty: true,
            stdin: true,
            ..Default::default()
        },
    );
    let mut c = shim.client();
    assert!(c.state().unwrap().tty);
    let (tty, mut s) = shim
        .client()
        .attach(attach_opts(true, true, true, false))
        .unwrap();
    assert!(tty);
    c.resize(None, 100, 40).unwrap();
    c.start().unwrap();
    s.write_all(b"abc\n").unwrap();
    let out = read_raw(s);
    // Raw pty bytes: the terminal's echo of the input first, no stream
    // headers, and the pty's default ONLCR (runc leaves it on for a
    // console-socket caller: docker shows a tty container's lines as CRLF).
    assert!(out.starts_with("abc"), "{out:?}");
    assert!(out.contains("got-abc\r\n"), "{out:?}");
    assert!(out.contains("40 100"), "{out:?}");
    assert!(!out.as_bytes().starts_with(&[1, 0, 0, 0]), "{out:?}");
    assert_eq!(c.wait().unwrap().code, 5);
    let log: String = log_entries(&shim.log).into_iter().map(|e| e.1).collect();
    assert!(log.contains("got-abc"), "{log:?}");
    // No exec of that id, no pty for it.
    assert_eq!(
        shim_error(c.resize(Some("nope"), 1, 1)).0,
        ErrorCode::NotFound
    );
    c.delete(false).unwrap();
    t.finish();
}

#[test]
fn exec_with_a_tty_gets_its_own_pty_and_resize() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-exectty");
    let bundle = t.bundle(&["sleep", "1000"]);
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let mut c = shim.client();
    c.start().unwrap();
    // The container has no terminal to resize.
    assert!(c.resize(None, 80, 24).is_err());
    let (pid, mut s) = shim
        .client()
        .exec_attached(
            "t1",
            process!("sh", "-c", "tty; read x; stty size; exit 2"),
            true,
            true,
        )
        .unwrap();
    assert!(pid > 0);
    let first = read_until(&mut s, "/dev/pts/");
    c.resize(Some("t1"), 90, 30).unwrap();
    s.write_all(b"\n").unwrap();
    let rest = read_raw(s);
    assert!(rest.contains("30 90"), "{first:?} {rest:?}");
    assert_eq!(c.exec_wait("t1").unwrap().code, 2);
    // A finished exec's pty is gone.
    assert!(c.resize(Some("t1"), 80, 24).is_err());
    c.kill(9, false).unwrap();
    c.wait().unwrap();
    c.delete(false).unwrap();
    t.finish();
}

// 6. exec.

#[test]
fn exec_attached_detached_missing_and_killed() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-exec");
    let bundle = t.bundle(&["sleep", "1000"]);
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let mut c = shim.client();
    // Not yet running.
    assert_eq!(
        shim_error(c.exec("early", process!("true"), false)).0,
        ErrorCode::FailedPrecondition
    );
    c.start().unwrap();
    exec_cases(&shim, &mut c);
    // An exec with stdin: cat.
    let (_, mut s) = shim
        .client()
        .exec_attached("cat", process!("cat"), false, true)
        .unwrap();
    s.write_all(b"ping\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_muxed(s), ("ping\n".into(), String::new()));
    assert_eq!(c.exec_wait("cat").unwrap().code, 0);
    // Ids: reused, malformed, unknown.
    assert_eq!(
        shim_error(c.exec("cat", process!("true"), false)).0,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        shim_error(c.exec("a/b", process!("true"), false)).0,
        ErrorCode::InvalidArgument
    );
    assert_eq!(shim_error(c.exec_wait("never")).0, ErrorCode::NotFound);
    assert_eq!(shim_error(c.exec_kill("never", 9)).0, ErrorCode::NotFound);

    c.kill(9, false).unwrap();
    c.wait().unwrap();
    assert_eq!(
        shim_error(c.exec("late", process!("true"), false)).0,
        ErrorCode::FailedPrecondition
    );
    c.delete(false).unwrap();
    t.finish();
}

/// Exec cases every runtime must pass; `c` is a client of a running
/// container of `sleep 1000`.
fn exec_cases(shim: &Shim, c: &mut ShimClient) {
    // Attached: output multiplexed, then the exit code.
    let (pid, s) = shim
        .client()
        .exec_attached(
            "a1",
            process!("sh", "-c", "echo out; echo err >&2; exit 4"),
            false,
            false,
        )
        .unwrap();
    assert!(pid > 0);
    assert_eq!(read_muxed(s), ("out\n".into(), "err\n".into()));
    let e = c.exec_wait("a1").unwrap();
    assert_eq!((e.code, e.signal), (4, None));
    assert!(e.finished_at >= e.started_at && e.started_at > 0);
    // Detached.
    let pid = c
        .exec("d1", process!("sh", "-c", "usleep 100000; exit 6"), false)
        .unwrap();
    assert!(pid > 0);
    assert_eq!(c.exec_wait("d1").unwrap().code, 6);
    // Killed: listed while it runs, 128 + 15 after.
    let pid = c.exec("k1", process!("sleep", "1000"), false).unwrap();
    assert!(alive(pid as i32));
    assert_eq!(c.state().unwrap().execs, ["k1"]);
    c.exec_kill("k1", 15).unwrap();
    let e = c.exec_wait("k1").unwrap();
    assert_eq!((e.code, e.signal), (143, Some(15)));
    assert!(c.state().unwrap().execs.is_empty());
    assert_eq!(
        shim_error(c.exec_kill("k1", 9)).0,
        ErrorCode::FailedPrecondition
    );
    // A program that does not exist (docker: 127) and one that cannot be
    // executed (docker: 126) are told apart by the error code.
    let (code, message) = shim_error(c.exec("nf", process!("no-such-program"), false));
    assert_eq!(code, ErrorCode::NotFound, "{message}");
    assert!(message.contains("no-such-program"), "{message}");
    let (code, message) = shim_error(c.exec("nf2", process!("/no/such/path"), false));
    assert_eq!(code, ErrorCode::NotFound, "{message}");
    // (crun's message does not name the program: "open executable:
    // Permission denied".)
    let (code, message) = shim_error(c.exec("nx", process!("/etc/passwd"), false));
    assert_eq!(code, ErrorCode::PermissionDenied, "{message}");
    assert!(
        message.to_lowercase().contains("permission denied"),
        "{message}"
    );
    // A failed exec leaves nothing running and its id unused by a process.
    assert!(c.state().unwrap().execs.is_empty());
}

// 7. kill, pause, stats, update, delete.

/// The pids in the container's cgroup, once there are `n`.
fn container_pids(shim: &Shim, init: u32, n: usize) -> Vec<i32> {
    let procs = shim.cgroup_dir(init, "pids").join("cgroup.procs");
    eventually("the container's processes", || {
        let text = std::fs::read_to_string(&procs).unwrap();
        let pids: Vec<i32> = text.lines().map(|l| l.parse().unwrap()).collect();
        (pids.len() == n).then_some(pids)
    })
}

/// Runs `bundle` (an init with two children), SIGKILLs it (`all` or the
/// init alone) and checks that none of the three outlives it.
fn sigkill_ends_every_process(
    t: &mut ShimTest,
    bundle: &berth_integration::runtime::Bundle,
    all: bool,
) {
    let shim = t.spawn(bundle, &ShimOpts::default());
    let mut c = shim.client();
    c.start().unwrap();
    let init = c.state().unwrap().pid;
    let pids = container_pids(&shim, init, 3);
    c.kill(9, all).unwrap();
    let exit = c.wait().unwrap();
    assert_eq!((exit.code, exit.signal), (137, Some(9)));
    for pid in pids {
        assert!(
            wait_gone(pid, Duration::from_secs(10)),
            "pid {pid} outlived the SIGKILL"
        );
    }
    c.delete(false).unwrap();
    assert!(wait_gone(shim.pid, Duration::from_secs(10)));
}

#[test]
fn kill_signals_the_init_and_a_host_pid_sigkill_reaches_every_process() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-kill");
    // Its own pid namespace: the shim signals the init itself.
    let bundle = t.bundle(&[
        "sh",
        "-c",
        "trap 'exit 7' TERM; echo trapped; sleep 1000 & wait",
    ]);
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let mut c = shim.client();
    c.start().unwrap();
    c.kill(0, false).unwrap();
    let (code, message) = shim_error(c.kill(99, false));
    assert_eq!(code, ErrorCode::InvalidArgument, "{message}");
    assert!(message.contains("invalid signal 99"), "{message}");
    // The TERM must come after the shell has set its trap, which it does
    // after its exec: a pid namespace's init drops a signal it has no
    // handler for.
    eventually("the shell's trap", || {
        log_entries(&shim.log)
            .iter()
            .any(|(_, line)| line == "trapped\n")
            .then_some(())
    });
    c.kill(15, false).unwrap();
    let exit = c.wait().unwrap();
    assert_eq!((exit.code, exit.signal), (7, None));
    assert!(
        c.kill(15, false).is_err(),
        "a stopped container took a signal"
    );
    c.delete(false).unwrap();
    assert!(wait_gone(shim.pid, Duration::from_secs(10)));

    // Its own pid namespace, SIGKILL to all (`docker rm -f`): the init's
    // death takes the others.
    let bundle = t.bundle(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    sigkill_ends_every_process(&mut t, &bundle, true);

    // The host's pid namespace: the init's death leaves its children
    // running, so a SIGKILL means every process of the container (the
    // runtime's part).
    let mut bundle = t.bundle(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    bundle.edit(|cfg| {
        let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    sigkill_ends_every_process(&mut t, &bundle, false);
    t.finish();
}

#[test]
fn kill_all_pause_resume_stats_update_and_forced_delete() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-control");
    let bundle = t.bundle(&["sh", "-c", "sleep 1000 & sleep 1000 & wait; exit 9"]);
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let mut c = shim.client();
    c.start().unwrap();
    let init = c.state().unwrap().pid;

    let stats = eventually("three processes", || {
        let s = c.stats().unwrap();
        (s.pids.current == 3).then_some(s)
    });
    assert!(stats.memory.usage.usage > 0, "{stats:?}");

    let freezer = shim.cgroup_dir(init, "freezer").join("freezer.state");
    c.pause().unwrap();
    assert_eq!(c.state().unwrap().status, ContainerStatus::Paused);
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    assert!(c.pause().is_err() || c.state().unwrap().status == ContainerStatus::Paused);
    c.resume().unwrap();
    assert_eq!(c.state().unwrap().status, ContainerStatus::Running);
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "THAWED");
    assert!(c.resume().is_err());

    let resources = json!({"pids": {"limit": 42}, "memory": {"limit": 64 << 20}});
    c.update(serde_json::from_value(resources).unwrap())
        .unwrap();
    let pids_max = shim.cgroup_dir(init, "pids").join("pids.max");
    assert_eq!(std::fs::read_to_string(pids_max).unwrap().trim(), "42");
    let mem = shim
        .cgroup_dir(init, "memory")
        .join("memory.limit_in_bytes");
    assert_eq!(
        std::fs::read_to_string(mem).unwrap().trim(),
        (64u64 << 20).to_string()
    );
    assert_eq!(c.stats().unwrap().pids.limit, 42);

    // Not while it runs, without force.
    assert_eq!(
        shim_error(shim.client().delete(false)).0,
        ErrorCode::FailedPrecondition
    );
    assert_eq!(c.state().unwrap().status, ContainerStatus::Running);

    // SIGTERM to all: the sleeps die, the init (a pid namespace's init
    // without a handler) does not, and exits on its own.
    c.kill(15, true).unwrap();
    let exit = c.wait().unwrap();
    assert_eq!((exit.code, exit.signal), (9, None));

    c.delete(false).unwrap();
    assert!(wait_gone(shim.pid, Duration::from_secs(10)));

    // A forced delete of a running (and paused) container.
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let mut c = shim.client();
    c.start().unwrap();
    let init = c.state().unwrap().pid as i32;
    c.pause().unwrap();
    let waiter = {
        let mut w = shim.client();
        std::thread::spawn(move || w.wait())
    };
    // Let the wait arrive first (a request still unread when the shim
    // exits gets a reset connection, as with any server that is gone).
    std::thread::sleep(Duration::from_millis(200));
    let exit = c.delete(true).unwrap().expect("it ran");
    assert_eq!((exit.code, exit.signal), (137, Some(9)));
    assert!(!alive(init));
    // A waiter learns the exit too, before the shim goes.
    assert_eq!(waiter.join().unwrap().unwrap(), exit);
    assert!(wait_gone(shim.pid, Duration::from_secs(10)));
    assert!(!shim.socket.exists());
    assert!(ShimClient::connect(&shim.socket).is_err());
    t.finish();
}

// 8. Outliving the spawner; concurrent clients.

#[test]
fn the_shim_outlives_its_spawner_and_serves_clients_side_by_side() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-outlive");
    let bundle = t.bundle(&["sh", "-c", "while :; do echo tick; usleep 50000; done"]);
    let (cmd, mut shim) = t.command(&bundle, &ShimOpts::default());
    // A short-lived intermediate: a shell that runs the launcher and exits.
    let line = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut envs = cmd.get_envs();
    let (k, v) = envs.next().unwrap();
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!("{line}; exit 0"))
        .env(k, v.unwrap())
        .stdin(Stdio::null());
    let sh_out = run_bounded(&mut sh);
    assert!(sh_out.status.success());
    let pid = parse_pid(&sh_out.stdout);
    t.set_pid(&mut shim, pid);
    let stat = stat_fields(pid).unwrap();
    assert!(alive(pid));
    assert_ne!(stat[1].parse::<u32>().unwrap(), std::process::id());
    assert_eq!(stat[3], pid.to_string());

    let mut c = shim.client();
    c.start().unwrap();
    // One client attached, others work meanwhile.
    let (_, mut a) = shim.client().attach(all_output()).unwrap();
    assert!(read_until_muxed(&mut a, "tick\n").contains("tick"));
    let (_, mut b) = shim.client().attach(all_output()).unwrap();
    assert!(read_until_muxed(&mut b, "tick\n").contains("tick"));
    drop(b); // a client that leaves mid-stream harms no one
    assert_eq!(
        shim.client().state().unwrap().status,
        ContainerStatus::Running
    );
    assert!(shim.client().stats().unwrap().pids.current >= 1);
    let (_, s) = shim
        .client()
        .exec_attached("e", process!("echo", "side"), false, false)
        .unwrap();
    assert_eq!(read_muxed(s).0, "side\n");
    // A client that gives up on a wait leaves the shim serving.
    {
        let mut w = shim.client();
        w.set_timeout(Some(Duration::from_millis(100))).unwrap();
        assert!(w.wait().is_err());
    }
    assert!(read_until_muxed(&mut a, "tick\n").contains("tick"));
    c.kill(9, false).unwrap();
    let exit = c.wait().unwrap();
    assert_eq!(exit.code, 137);
    // The attached client's stream ends after the exit.
    let rest = read_chunks(a);
    assert!(rest.iter().all(|(id, _)| *id == stream::STDOUT));
    c.delete(false).unwrap();
    t.finish();
}

// 9. Every runtime: the basics.

fn basics(name: &str, runtime: Option<&str>) {
    let mut t = ShimTest::new(name);
    let runtime = runtime.map(|r| external_runtime(r, t.env().dir.path()));
    let opts = ShimOpts {
        runtime: runtime.clone(),
        ..Default::default()
    };
    if runtime.is_some() {
        // crun 1.8 knows the runtime spec up to 1.1.
        t.oci_version = Some("1.0.2".into());
    }

    // Run to completion: output and exit code.
    let bundle = t.bundle(&["sh", "-c", "echo hi; echo oops >&2; exit 3"]);
    let shim = t.spawn(&bundle, &opts);
    let mut c = shim.client();
    let (_, s) = shim.client().attach(all_output()).unwrap();
    c.start().unwrap();
    assert_eq!(read_muxed(s), ("hi\n".into(), "oops\n".into()));
    let exit = c.wait().unwrap();
    assert_eq!((exit.code, exit.signal), (3, None));
    assert_eq!(read_exit_record(&shim.socket).unwrap(), Some(exit.clone()));
    let mut log = log_entries(&shim.log);
    log.sort();
    assert_eq!(
        log,
        [
            ("stderr".to_string(), "oops\n".to_string()),
            ("stdout".to_string(), "hi\n".to_string())
        ]
    );
    assert_eq!(c.delete(false).unwrap(), Some(exit));
    assert!(wait_gone(shim.pid, Duration::from_secs(10)));

    // A long-running one: exec, kill, wait, delete.
    let bundle = t.bundle(&["sleep", "1000"]);
    let shim = t.spawn(&bundle, &opts);
    let mut c = shim.client();
    c.start().unwrap();
    assert_eq!(c.state().unwrap().status, ContainerStatus::Running);
    exec_cases(&shim, &mut c);
    let stats = c.stats().unwrap();
    assert!(stats.pids.current >= 1, "{stats:?}");
    c.kill(9, false).unwrap();
    let exit = c.wait().unwrap();
    assert_eq!((exit.code, exit.signal), (137, Some(9)));
    c.delete(false).unwrap();

    // Forced delete of a running container.
    let shim = t.spawn(&bundle, &opts);
    let mut c = shim.client();
    c.start().unwrap();
    let exit = c.delete(true).unwrap().expect("it ran");
    assert_eq!(exit.code, 137);
    assert!(wait_gone(shim.pid, Duration::from_secs(10)));

    // Creates that fail: the runtime's words, docker's exit codes, nothing left.
    for (program, code) in [("no-such-program", 127), ("/etc/passwd", 126)] {
        let bundle = t.bundle(&[program]);
        let (out, shim) = t.launch(&bundle, &opts);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        // (crun: "open executable: Permission denied", without the name.)
        assert!(
            stderr.contains(program) || stderr.contains("Permission denied"),
            "{stderr}"
        );
        assert!(!shim.socket.exists());
    }
    let mut bundle = t.bundle(&["true"]);
    bundle.edit(|c| c["root"]["path"] = json!("/nonexistent/rootfs"));
    let (out, shim) = t.launch(&bundle, &opts);
    assert_eq!(out.status.code(), Some(1));
    assert!(!shim.socket.exists());
    t.finish();
}

#[test]
fn basics_with_the_embedded_runtime() {
    if !require_root() {
        return;
    }
    basics("shim-basic", None);
}

#[test]
fn basics_with_runc() {
    if !require_root() || !have_runtime(RUNC, "runc") {
        return;
    }
    basics("shim-runc", Some(RUNC));
}

#[test]
fn basics_with_crun() {
    if !require_root() || !have_runtime(CRUN, "crun") {
        return;
    }
    basics("shim-crun", Some(CRUN));
}

#[test]
fn tty_with_an_external_runtime() {
    if !require_root() || !have_runtime(RUNC, "runc") {
        return;
    }
    let mut t = ShimTest::new("shim-runc-tty");
    let bundle = t.tty_bundle(&["sh", "-c", "read line; echo got-$line; stty size"]);
    let shim = t.spawn(
        &bundle,
        &ShimOpts {
            tty: true,
            stdin: true,
            runtime: Some(RUNC.into()),
            ..Default::default()
        },
    );
    let mut c = shim.client();
    let (_, mut s) = shim
        .client()
        .attach(attach_opts(true, true, true, false))
        .unwrap();
    c.resize(None, 70, 20).unwrap();
    c.start().unwrap();
    s.write_all(b"xyz\n").unwrap();
    let out = read_raw(s);
    // runc, too, leaves the pty's ONLCR on for its console-socket caller.
    assert!(
        out.contains("got-xyz\r\n") && out.contains("20 70"),
        "{out:?}"
    );
    assert_eq!(c.wait().unwrap().code, 0);
    c.delete(false).unwrap();
    t.finish();
}

// Memory.

/// PSS of idle shims holding `sleep` (sum of Pss in smaps_rollup), once
/// they rest (see the next test): one alone, and the mean of four (their
/// binary's pages are shared, so this is nearer the cost of one more
/// container). Bounds only for release builds, which is what runs in
/// production.
#[test]
fn idle_shims_are_small() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-pss");
    t.run_from_read_only_copy();
    let bundle = t.bundle(&["sleep", "1000"]);
    let mut shims = Vec::new();
    let mut alone = 0;
    for i in 0..4 {
        let shim = t.spawn(&bundle, &ShimOpts::default());
        let mut c = shim.client();
        c.start().unwrap();
        c.state().unwrap();
        wait_for_rest(&shim);
        if i == 0 {
            alone = pss_kib(shim.pid).unwrap();
        }
        shims.push(shim);
    }
    for shim in &shims {
        wait_for_rest(shim);
    }
    let mean = shims.iter().map(|s| pss_kib(s.pid).unwrap()).sum::<u64>() / 4;
    eprintln!("berth-shim PSS, idle with `sleep`: {alone} KiB alone, {mean} KiB each of four");
    for shim in &shims {
        shim.client().delete(true).unwrap();
    }
    if cfg!(debug_assertions) {
        eprintln!("(a debug build: no bounds checked)");
    } else {
        assert!(alone < 1024, "one idle shim: {alone} KiB");
        assert!(mean < 512, "four idle shims: {mean} KiB each");
    }
    t.finish();
}

/// Waits until the shim rests: a quarter of its code or less mapped.
/// Right after a start, what the create ran is mapped: 40-50% of the code
/// (in 64 KiB fault-around blocks, or whole large folios of the page
/// cache). At rest only the few blocks the loop ran after unmapping: under
/// 5% in a release build, 15% in a debug one. Returns the KiB mapped.
fn wait_for_rest(shim: &Shim) -> u64 {
    eventually("the shim to rest", || {
        let (mapped, size) = code_kib(shim.pid).expect("the shim runs");
        (mapped < size / 4).then_some(mapped)
    })
}

/// A shim that has had nothing to do for a second unmaps its code (the
/// start-up's is most of what it has mapped, see berth_sys::code_pages),
/// and works as before once woken: exec, output, kill and exit code.
#[test]
fn a_resting_shim_unmaps_its_code_and_still_serves() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-rest");
    t.run_from_read_only_copy();
    let bundle = t.bundle(&["sleep", "1000"]);
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let mut c = shim.client();
    c.start().unwrap();
    let resting = wait_for_rest(&shim);
    eprintln!("berth-shim: {resting} KiB of code mapped at rest");
    let (_, s) = shim
        .client()
        .exec_attached(
            "e1",
            process!("sh", "-c", "echo woke; exit 3"),
            false,
            false,
        )
        .unwrap();
    assert_eq!(read_muxed(s), ("woke\n".into(), String::new()));
    assert_eq!(c.exec_wait("e1").unwrap().code, 3);
    assert!(
        code_kib(shim.pid).unwrap().0 > resting,
        "serving the exec mapped no code again"
    );
    // (SIGKILL: the container's init, pid 1 there, ignores SIGTERM.)
    c.kill(9, false).unwrap();
    let exit = c.wait().unwrap();
    assert_eq!((exit.code, exit.signal), (137, Some(9)));
    c.delete(false).unwrap();
    assert!(wait_gone(shim.pid, Duration::from_secs(10)));
    t.finish();
}

// The event loop never waits on a peer.

#[test]
fn a_container_that_does_not_read_its_stdin_blocks_nobody() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-stdinwait");
    let bundle = t.bundle(&[
        "sh",
        "-c",
        "while [ ! -e /dev/shm/go ]; do usleep 10000; done; exec cat",
    ]);
    let shim = t.spawn(
        &bundle,
        &ShimOpts {
            stdin: true,
            ..Default::default()
        },
    );
    let mut c = shim.client();
    let (_, s) = shim
        .client()
        .attach(attach_opts(true, true, false, true))
        .unwrap();
    c.start().unwrap();
    let total = 2 << 20;
    let writer = {
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || {
            w.write_all(&vec![b'x'; total]).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    // The pipe to cat is full and cat does not read: the shim still answers.
    std::thread::sleep(Duration::from_millis(300));
    let mut other = shim.client();
    other.set_timeout(Some(Duration::from_secs(2))).unwrap();
    let t0 = Instant::now();
    assert_eq!(other.state().unwrap().status, ContainerStatus::Running);
    assert!(other.stats().unwrap().pids.current >= 1);
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    other
        .exec("go", process!("touch", "/dev/shm/go"), false)
        .unwrap();
    let (out, _) = read_muxed(s);
    writer.join().unwrap();
    assert_eq!(out.len(), total);
    assert!(out.bytes().all(|b| b == b'x'));
    assert_eq!(c.wait().unwrap().code, 0);
    c.delete(false).unwrap();
    t.finish();
}

#[test]
fn a_client_that_does_not_read_holds_back_only_its_container() {
    if !require_root() {
        return;
    }
    let mut t = ShimTest::new("shim-slowclient");
    let total = 4_000_000;
    let script = format!("head -c {total} /dev/zero | tr '\\0' y; echo; echo done");
    let bundle = t.bundle(&["sh", "-c", &script]);
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let mut c = shim.client();
    let (_, slow) = shim
        .client()
        .attach(attach_opts(false, true, false, false))
        .unwrap();
    c.start().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    // Its output is not read while the client lags: it is still running,
    // and the log has only part of it.
    let mut other = shim.client();
    other.set_timeout(Some(Duration::from_secs(2))).unwrap();
    let t0 = Instant::now();
    assert_eq!(other.state().unwrap().status, ContainerStatus::Running);
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    let logged: usize = log_entries(&shim.log).iter().map(|e| e.1.len()).sum();
    assert!(
        logged < total / 2,
        "{logged} bytes logged: output was not held back"
    );
    // The client catches up and gets every byte.
    let (out, _) = read_muxed(slow);
    assert_eq!(out.len(), total + "\ndone\n".len());
    assert!(out.ends_with("\ndone\n"));
    assert_eq!(c.wait().unwrap().code, 0);
    let logged: String = log_entries(&shim.log).into_iter().map(|e| e.1).collect();
    assert_eq!(logged, out);
    c.delete(false).unwrap();
    t.finish();
}

#[test]
fn hostile_clients_get_errors_and_the_shim_keeps_serving() {
    if !require_root() {
        return;
    }
    use berth_shim_proto::frame::{encode, read_frame};
    use berth_shim_proto::{Request, Response, MAX_FRAME, PROTOCOL_VERSION};
    let mut t = ShimTest::new("shim-hostile");
    let bundle = t.bundle(&["sleep", "1000"]);
    let shim = t.spawn(&bundle, &ShimOpts::default());
    let raw = || {
        let s = UnixStream::connect(&shim.socket).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    };
    let answer = |s: &mut UnixStream| read_frame::<Response, _>(s, "response");
    // A request before the hello: an error, then the end.
    let mut s = raw();
    s.write_all(&encode(&Request::State, "request").unwrap())
        .unwrap();
    match answer(&mut s).unwrap() {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::InvalidArgument),
        other => panic!("{other:?}"),
    }
    assert!(answer(&mut s).is_err());
    // Another protocol version.
    let mut s = raw();
    let hello = Request::Hello {
        version: PROTOCOL_VERSION + 1,
    };
    s.write_all(&encode(&hello, "request").unwrap()).unwrap();
    match answer(&mut s).unwrap() {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::VersionMismatch),
        other => panic!("{other:?}"),
    }
    // Malformed JSON after a good hello: an error, and the connection goes on.
    let mut s = raw();
    let hello = Request::Hello {
        version: PROTOCOL_VERSION,
    };
    s.write_all(&encode(&hello, "request").unwrap()).unwrap();
    assert!(matches!(answer(&mut s).unwrap(), Response::Hello { .. }));
    s.write_all(&5u32.to_be_bytes()).unwrap();
    s.write_all(b"{nope").unwrap();
    match answer(&mut s).unwrap() {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::InvalidArgument),
        other => panic!("{other:?}"),
    }
    s.write_all(&encode(&Request::State, "request").unwrap())
        .unwrap();
    assert!(matches!(answer(&mut s).unwrap(), Response::State(_)));
    // An oversized frame: the connection is dropped.
    s.write_all(&(MAX_FRAME + 1).to_be_bytes()).unwrap();
    assert!(answer(&mut s).is_err());
    // A client that sends half a frame and vanishes.
    let mut s = raw();
    s.write_all(&100u32.to_be_bytes()).unwrap();
    s.write_all(b"{\"type\"").unwrap();
    drop(s);
    // Nothing of that hurt the shim.
    let mut c = shim.client();
    assert_eq!(c.state().unwrap().status, ContainerStatus::Created);
    c.start().unwrap();
    c.delete(true).unwrap();
    t.finish();
}
