//! The issue-5 audit of the `berth` CLI, kept as golden cases: for each
//! item found different from docker's CLI (and fixed), the same command
//! through both clients against one Debian dockerd, compared on stdout and
//! exit code (stderr where the daemon's message matters). Needs
//! `cargo build -p berth -p berth-runtime` with the test's profile first.

use berth_integration::cli::{assert_agreed, Clients, Run};
use berth_integration::peers::Dockerd;

/// Ids and digests vary between two runs of the same command.
fn without_ids(s: &str) -> String {
    let mut lines: Vec<String> = s
        .lines()
        .map(|l| {
            l.split(' ')
                .map(|w| {
                    let hex = w.trim_start_matches("sha256:");
                    if hex.len() >= 12 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                        "<id>"
                    } else {
                        w
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

fn setup(c: &Clients) {
    c.docker_exits(
        0,
        &[
            "run", "-d", "--name", "a-run", "-l", "a=b", "-e", "X=1", "busybox", "sleep", "3000",
        ],
    );
    let script = "echo '<out1> & more'; echo err1 >&2; exit 3";
    c.docker_exits(
        3,
        &["run", "--name", "a-exit", "busybox", "sh", "-c", script],
    );
    c.docker_exits(0, &["create", "--name", "a-created", "busybox", "true"]);
}

#[test]
fn audit_against_dockerd() {
    let Some(daemon) = Dockerd::start("cli_audit") else {
        return;
    };
    let mut c = Clients::new(&daemon);
    setup(&c);

    // Item 3: Go template functions and docker's formats.
    for args in [
        &["inspect", "-f", "{{slice .Id 0 5}}", "a-run"][..],
        &[
            "inspect",
            "-f",
            "{{lt 1 2}} {{le 2 2}} {{gt .State.ExitCode 2}} {{ge 1 2}}",
            "a-exit",
        ],
        &[
            "inspect",
            "-f",
            "{{.State.StartedAt | printf \"%.4s\"}}|{{printf \"%-6s|%5.1f\" .State.Status 2.5}}",
            "a-run",
        ],
        &[
            "inspect",
            "-f",
            "{{json .Path}} {{json \"<a&b>\"}}",
            "a-exit",
        ],
        &["inspect", "-f", "{{.bad", "a-run"],
        &["ps", "-a", "--format", "{{.Names}} [{{.Label \"a\"}}]"],
        &["ps", "-a", "--format", "raw"],
        &["ps", "-a", "-q", "--format", "raw"],
        &["ps", "-a", "--format", "{{.Names}}", "-q"],
        &["ps", "-a", "-q", "--format", "table"],
        &["ps", "-a", "--format", "{{.Names}} {{.Size}}"],
        &["images", "--format", "{{.Repository}} {{.VirtualSize}}"],
        &["history", "--human=false", "busybox"],
        &[
            "history",
            "--human=false",
            "--format",
            "{{.CreatedAt}} {{.Size}}",
            "busybox",
        ],
        &["container", "inspect", "-s", "-f", "{{.SizeRw}}", "a-exit"],
        // pflag's --flag=bool forms.
        &[
            "ps",
            "-a=true",
            "-q=false",
            "--no-trunc=false",
            "--format",
            "{{.Names}}",
        ],
        &[
            "-l",
            "error",
            "version",
            "--format",
            "{{.Server.APIVersion}}",
        ],
    ] {
        c.same(args, false);
    }
    // Logs between times, in docker's short forms.
    for args in [
        &["logs", "--since", "2020-01-01", "a-exit"][..],
        &["logs", "--since", "2099-01-01T10", "a-exit"],
        &["logs", "--until", "2099-01-01T10:00Z", "a-exit"],
        &["logs", "--until", "2020-01-01T10:00:00+01:00", "a-exit"],
        &[
            "logs",
            "--since",
            "1h",
            "--until",
            "2099-01-01",
            "-t",
            "a-exit",
        ],
    ] {
        c.same(args, true);
    }
    let since = c
        .docker(&["inspect", "-f", "{{.Created}}", "a-run"])
        .stdout
        .trim()
        .to_string();
    // A future --until would stream until then: one second from now.
    let until = (berth_integration::unix_secs() + 1).to_string();
    for (filters, format) in [
        (
            ["type=container", "event=create"],
            "{{.Actor.Attributes.name}}",
        ),
        (
            ["container=a-exit", "event=die"],
            "{{.Action}} {{.Actor.Attributes.exitCode}}",
        ),
    ] {
        c.same(
            &[
                "events", "--since", &since, "--until", &until, "--filter", filters[0], "--filter",
                filters[1], "--format", format,
            ],
            false,
        );
    }

    // Items 4 and 6: exit codes and errors.
    for args in [
        &["run", "--rm", "busybox", "sh", "-c", "exit 7"][..],
        &["run", "--rm", "busybox", "/nosuch"],
        &["run", "--rm", "busybox", "/etc/passwd"],
        &["run", "--rm", "busybox", "/etc"],
        &["run", "--rm", "--pull", "never", "nosuchimage:1", "true"],
        &["run", "--rm", "--nosuchflag", "busybox"],
        &["run", "--rm", "-d", "-a", "stdout", "busybox", "true"],
        &["run", "--rm", "-it", "busybox", "true"],
        &[
            "run",
            "--rm=true",
            "--privileged=false",
            "busybox",
            "echo",
            "--rm=false",
        ],
        &["create", "--name", "a-nocmd", "--entrypoint", "", "busybox"],
        &["start", "-a", "a-created", "a-exit"],
        &["exec", "-it", "a-run", "true"],
        &["exec", "a-run", "/etc"],
        &["exec", "a-run", "nosuch"],
        &["rm", "-f", "nosuch"],
        &["rmi", "-f", "nosuch"],
        &["rm", "nosuch"],
        &["kill", "a-exit"],
        &[
            "run",
            "--rm",
            "-eA=1",
            "-e=B=2",
            "-it=false",
            "busybox",
            "sh",
            "-c",
            "echo $A$B",
        ],
    ] {
        // stdout and exit code: berth words its errors `berth: <daemon's
        // message>`, without docker's "See 'docker run --help'." line.
        c.same(args, false);
    }

    // cp -L to a tar stream follows the link, as docker's.
    c.same(&["cp", "-L", "a-exit:/bin/sh", "-"], false);
    c.same(&["cp", "a-exit:/bin/sh", "-"], false);
    // update: names, then the daemon's warnings, on stdout.
    c.same(&["update", "--blkio-weight", "300", "a-run"], false);

    run_flags_as_docker(&mut c);
    state_changes_as_docker(&mut c);
    signals_proxied_as_docker(&mut c);
    prunes_as_docker(&mut c);

    c.docker_exits(0, &["rm", "-f", "a-run"]);
    let mismatches = c.mismatches().to_vec();
    let compared = c.compared;
    daemon.finish();
    assert_agreed(&mismatches, compared);
}

/// Item 2: the `run` flags that land in the container's config; the
/// container berth's CLI creates must read back through docker's inspect
/// as the one docker's CLI creates from the same flags.
fn run_flags_as_docker(c: &mut Clients) {
    let dir = tempfile::tempdir().expect("temp dir");
    let env_file = dir.path().join("env.list");
    std::fs::write(&env_file, "A=1\n# comment\nB=two words\n").unwrap();
    let label_file = dir.path().join("labels.list");
    std::fs::write(&label_file, "lk=lv\n# c\nlk2=\n").unwrap();
    let (env_file, label_file) = (env_file.to_str().unwrap(), label_file.to_str().unwrap());
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "--memory",
            "64m",
            "--memory-swap",
            "128m",
            "--cpus",
            "1.5",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "50",
            "--ulimit",
            "nofile=1024:2048",
            "--ulimit",
            "nproc=100",
            "--tmpfs",
            "/run:rw,size=64k",
            "--tmpfs",
            "/t2",
            "--shm-size",
            "32m",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--device",
            "/dev/null:/dev/xnull:r",
            "--health-cmd",
            "true",
            "--health-interval",
            "5s",
            "--health-timeout",
            "2s",
            "--health-retries",
            "4",
            "--health-start-period",
            "1s",
            "--stop-signal",
            "SIGUSR1",
            "--stop-timeout",
            "7",
            "--restart",
            "on-failure:3",
            "-l",
            "a=b",
            "--label-file",
            label_file,
            "--env-file",
            env_file,
            "-e",
            "D=4",
            "--security-opt",
            "no-new-privileges",
            "--read-only",
            "--init",
            "--platform",
            "linux/amd64",
            "--pull",
            "never",
            "-a",
            "stdout",
            "-i",
            "-t",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "all",
            "--hostname",
            "hh",
            "--add-host",
            "h1:1.2.3.4",
            "-w",
            "/tmp",
            "-u",
            "1:2",
            "--entrypoint",
            "/bin/sh",
            "--privileged",
            "--runtime",
            "berth",
        ],
        vec![],
        vec!["--no-healthcheck", "--restart", "no", "-a", "stdin"],
        vec!["--restart", "always", "--health-cmd", "echo hi", "-i"],
    ];
    let fields = "{{json .Config}} {{json .HostConfig}}";
    for (i, flags) in cases.iter().enumerate() {
        let mut made = Vec::new();
        for client in ["docker", "berth"] {
            let name = format!("a-flags-{i}-{client}");
            let mut args = vec!["create", "--name", &name];
            args.extend(flags.iter().copied());
            args.extend(["busybox", "-c", "true"]);
            let r = if client == "docker" {
                c.docker(&args)
            } else {
                c.berth(&args)
            };
            if r.code != 0 {
                c.mismatch(format!("{client} create {flags:?}: {r:?}"));
            }
            made.push(name);
        }
        let seen: Vec<Run> = made
            .iter()
            .map(|n| c.docker(&["inspect", "-f", fields, n]))
            .collect();
        // The hostname is the container's id unless given.
        let strip = |s: &str, n: &str| -> String {
            let id = c.docker(&["inspect", "-f", "{{slice .Id 0 12}}", n]).stdout;
            s.replace(id.trim(), "<id>")
        };
        let (d, b) = (
            strip(&seen[0].stdout, &made[0]),
            strip(&seen[1].stdout, &made[1]),
        );
        c.compared += 1;
        if seen[0].code != 0 || d != b {
            c.mismatch(format!(
                "config from create {flags:?}:\n--- docker's CLI:\n{d}\n--- berth's CLI:\n{b}"
            ));
        }
        c.docker_exits(0, &["rm", &made[0], &made[1]]);
    }
}

/// `container prune`, `image prune`, `volume prune`, `network prune`,
/// `builder prune`, `system prune` (with and without `-a --volumes`): the
/// same state made twice, pruned once by each client; the same output up
/// to ids.
fn prunes_as_docker(c: &mut Clients) {
    // Only a-run stays: the first prune must not find more than the second.
    c.docker_exits(0, &["rm", "a-exit", "a-created"]);
    // prune -a untags all but one name of an image in use: put busybox
    // back after each round.
    let busybox = c.docker(&["inspect", "-f", "{{.Id}}", "busybox"]).stdout;
    let busybox = busybox.trim().to_string();
    let make = |c: &Clients| {
        for args in [
            &[
                "create", "--name", "p-c1", "-l", "keep=no", "busybox", "true",
            ][..],
            &["create", "--name", "p-c2", "busybox", "true"],
            &["tag", "busybox", "p-img:1"],
            &["volume", "create", "p-vol"],
            &["network", "create", "p-net"],
        ] {
            c.docker_exits(0, args);
        }
    };
    for args in [
        &["container", "prune", "-f", "--filter", "label=keep=no"][..],
        &["container", "prune", "-f"],
        &["image", "prune", "-f"],
        &["volume", "prune", "-f"],
        &["network", "prune", "-f"],
        &["builder", "prune", "-f"],
        &["builder", "prune", "-a", "-f", "--keep-storage", "1GB"],
        &["system", "prune", "-f"],
        &["system", "prune", "-a", "-f", "--volumes"],
    ] {
        let mut outs = Vec::new();
        for client in ["docker", "berth"] {
            make(c);
            let r = if client == "docker" {
                c.docker(args)
            } else {
                c.berth(args)
            };
            outs.push((r.code, without_ids(&r.stdout)));
            // What the prune left: the next round starts from scratch
            // (the busybox image is in use by a-run, so it stays).
            let _ = c.docker(&["rm", "-f", "p-c1", "p-c2"]);
            c.docker_exits(0, &["tag", &busybox, "busybox:latest"]);
            let _ = c.docker(&["rmi", "p-img:1"]);
            let _ = c.docker(&["volume", "rm", "p-vol"]);
            let _ = c.docker(&["network", "rm", "p-net"]);
        }
        c.compared += 1;
        if outs[0] != outs[1] {
            c.mismatch(format!(
                "`{}`:\n--- docker:\n{:?}\n--- berth:\n{:?}",
                args.join(" "),
                outs[0],
                outs[1]
            ));
        }
    }
}

/// Item 2's commands that change a container (pause, unpause, exec -d,
/// diff, top, restart, attach, wait): each client acts on a container of
/// its own made the same way, and their answers must agree once the
/// container's name is taken out.
fn state_changes_as_docker(c: &mut Clients) {
    let script = "trap 'exit 0' TERM; while true; do sleep 0.1; done";
    let names = [("s-docker", false), ("s-berth", true)];
    for (name, _) in names {
        c.docker_exits(
            0,
            &["run", "-d", "--name", name, "busybox", "sh", "-c", script],
        );
    }
    let steps: &[&[&str]] = &[
        &["pause", "NAME"],
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Paused}}",
            "NAME",
        ],
        &[
            "ps",
            "--filter",
            "name=NAME",
            "--format",
            "{{.Names}} {{.State}}",
        ],
        &["unpause", "NAME"],
        &["unpause", "NAME"],
        &["exec", "-d", "NAME", "sh", "-c", "echo made > /tmp/f"],
        &["exec", "NAME", "sh", "-c", "sleep 0.3; cat /tmp/f"],
        &["diff", "NAME"],
        &["top", "NAME", "-o", "comm,args"],
        &["restart", "-t", "5", "NAME"],
        &[
            "inspect",
            "-f",
            "{{.State.Running}} {{.RestartCount}}",
            "NAME",
        ],
        &["exec", "NAME", "ls", "/tmp"],
        &["kill", "-s", "TERM", "NAME"],
        &["wait", "NAME"],
        &["start", "NAME"],
        // (docker 20.10's CLI has no `stop -s` to compare berth's with.)
        &["stop", "-t", "5", "NAME"],
        &["wait", "NAME"],
    ];
    for step in steps {
        let mut answers = Vec::new();
        for (name, berth) in names {
            let args: Vec<&str> = step
                .iter()
                .map(|a| if *a == "NAME" { name } else { a })
                .collect();
            let r = if berth {
                c.berth(&args)
            } else {
                c.docker(&args)
            };
            answers.push((r.stdout.replace(name, "NAME"), r.code));
        }
        c.compared += 1;
        if answers[0] != answers[1] {
            c.mismatch(format!(
                "{}: docker {:?}, berth {:?}",
                step.join(" "),
                answers[0],
                answers[1]
            ));
        }
    }
    // attach --no-stdin to a container that prints, then exits 3.
    for (name, _) in names {
        c.docker_exits(0, &["rm", "-f", name]);
        c.docker_exits(
            0,
            &[
                "create",
                "--name",
                name,
                "busybox",
                "sh",
                "-c",
                "sleep 1; echo late; exit 3",
            ],
        );
    }
    let mut answers = Vec::new();
    for (name, berth) in names {
        // Attaching needs a running container: it prints after a second.
        c.docker_exits(0, &["start", name]);
        let mut attach = c.client_command(berth);
        attach.args(["attach", "--no-stdin", name]);
        attach.stdout(std::process::Stdio::piped());
        let child = attach.spawn().expect("starting the client");
        let out = child.wait_with_output().expect("waiting for attach");
        answers.push((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.code(),
        ));
    }
    c.compared += 1;
    if answers[0] != answers[1] || answers[0] != ("late\n".to_string(), Some(3)) {
        c.mismatch(format!(
            "attach --no-stdin: docker {:?}, berth {:?}",
            answers[0], answers[1]
        ));
    }
    for (name, _) in names {
        c.docker_exits(0, &["rm", "-f", name]);
    }
}

/// Item 4: `run` without -t passes the signals it gets to the container
/// (the container's trap answers and its code is the client's), and
/// `--sig-proxy=false` does not: the client dies, the container runs on.
fn signals_proxied_as_docker(c: &mut Clients) {
    let script = "trap 'echo got-term; exit 5' TERM; echo ready; while true; do sleep 0.1; done";
    for proxy in ["--sig-proxy=true", "--sig-proxy=false"] {
        let mut answers = Vec::new();
        for berth in [false, true] {
            let name = if berth { "p-berth" } else { "p-docker" };
            let mut run = c.client_command(berth);
            run.args(["run", proxy, "--name", name, "busybox", "sh", "-c", script])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null());
            let mut child = run.spawn().expect("starting the client");
            let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
            let mut first = String::new();
            std::io::BufRead::read_line(&mut stdout, &mut first).expect("reading the client");
            let pid = rustix::process::Pid::from_child(&child);
            rustix::process::kill_process(pid, rustix::process::Signal::TERM)
                .expect("signalling the client");
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut rest).expect("reading the client");
            let status = child.wait().expect("waiting for the client");
            let running = c
                .docker(&["inspect", "-f", "{{.State.Running}}", name])
                .stdout;
            answers.push((first + &rest, status.code(), running));
            c.docker_exits(0, &["rm", "-f", name]);
        }
        c.compared += 1;
        let want = if proxy == "--sig-proxy=true" {
            (
                "ready\ngot-term\n".to_string(),
                Some(5),
                "false\n".to_string(),
            )
        } else {
            ("ready\n".to_string(), None, "true\n".to_string())
        };
        if answers[0] != answers[1] || answers[0] != want {
            c.mismatch(format!(
                "run {proxy} and SIGTERM: docker {:?}, berth {:?}",
                answers[0], answers[1]
            ));
        }
    }
}
