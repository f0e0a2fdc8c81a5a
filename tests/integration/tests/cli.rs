//! The `berth` CLI against Debian's dockerd, with docker's own client as
//! the oracle: the same commands, the same daemon, the same output and
//! exit codes. Needs `cargo build -p berth -p berth-runtime` first.

use berth_integration::cli::{assert_agreed, Clients, Tmux};
use berth_integration::peers::Dockerd;

/// The state the comparisons look at: a running container with a label and
/// env, an exited one with output on both streams, a created one, and
/// extra tags.
fn setup(c: &Clients) {
    for args in [
        &[
            "run", "-d", "--name", "g-run", "-l", "a=b", "-l", "c=d", "-e", "X=1", "busybox",
            "sleep", "300",
        ][..],
        &[
            "run",
            "--name",
            "g-exit",
            "busybox",
            "sh",
            "-c",
            "echo out1; echo err1 >&2; echo out2; exit 3",
        ],
        &[
            "create",
            "--name",
            "g-created",
            "-w",
            "/tmp",
            "busybox",
            "true",
        ],
        &["tag", "busybox", "busybox:g1"],
        &["tag", "busybox", "example.com/team/app:2"],
        &["volume", "create", "gvol"],
    ] {
        let r = c.docker(args);
        assert!(
            r.code == 0 || args[0] == "run" && r.code == 3,
            "setup `docker {}` failed ({}): {}",
            args.join(" "),
            r.code,
            r.stderr
        );
    }
}

#[test]
fn golden_against_dockerd() {
    let Some(daemon) = Dockerd::start("cli_golden") else {
        return;
    };
    let mut c = Clients::new(&daemon);
    setup(&c);

    // ps
    for args in [
        &["ps"][..],
        &["ps", "-a"],
        &["ps", "-q"],
        &["ps", "-aq"],
        &["ps", "-a", "--no-trunc"],
        &["ps", "-n", "2"],
        &["ps", "-l"],
        &["ps", "-a", "-s"],
        &["ps", "-a", "--filter", "status=exited"],
        &["ps", "-a", "--filter", "name=g-run", "-q"],
        &["ps", "-a", "--filter", "label=a=b"],
        &[
            "ps",
            "-a",
            "--format",
            "{{.Names}}\t{{.Status}}\t{{.State}}",
        ],
        &[
            "ps",
            "-a",
            "--format",
            "table {{.ID}}\t{{.Names}}\t{{.Labels}}",
        ],
        &[
            "ps",
            "-a",
            "--format",
            "table {{.Names}}\\t{{.Command}}\\t{{.Image}}",
        ],
        &[
            "ps",
            "-a",
            "--format",
            "{{json .Names}} {{.Command}} {{lower .State}}",
        ],
        &["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}"],
        &[
            "ps",
            "--format",
            "{{if eq .State \"running\"}}up{{else}}down{{end}} {{.Names}}",
        ],
    ] {
        c.same(args, false);
    }

    // images
    for args in [
        &["images"][..],
        &["images", "-q"],
        &["images", "-a"],
        &["images", "--digests"],
        &["images", "--no-trunc"],
        &["images", "busybox"],
        &["images", "busybox:g1"],
        &["images", "--filter", "reference=example.com/*/*"],
        &[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}",
        ],
        &[
            "images",
            "--format",
            "table {{.Repository}}\t{{.Tag}}\t{{.Size}}",
        ],
        &["image", "ls", "-q", "--no-trunc"],
    ] {
        c.same(args, false);
    }

    // inspect
    for args in [
        &["inspect", "g-run"][..],
        &["inspect", "busybox"],
        &["inspect", "g-run", "g-exit"],
        &["inspect", "-f", "{{.State.Status}}", "g-run"],
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "g-exit",
        ],
        &["inspect", "-f", "{{.Config.Cmd}}", "g-exit"],
        &["inspect", "-f", "{{json .Config.Cmd}}", "g-exit"],
        &["inspect", "-f", "{{join .Config.Cmd \" \"}}", "g-exit"],
        &[
            "inspect",
            "-f",
            "{{.Name}} {{.Config.WorkingDir}}",
            "g-created",
        ],
        &["inspect", "-f", "{{index .Config.Labels \"a\"}}", "g-run"],
        &["inspect", "-f", "{{json .Config.Labels}}", "g-run"],
        &[
            "inspect",
            "-f",
            "{{range .Config.Env}}[{{.}}]{{end}}",
            "g-run",
        ],
        &[
            "inspect",
            "-f",
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}",
            "g-run",
        ],
        &["inspect", "-f", "{{upper .State.Status}}", "g-run"],
        &["inspect", "-f", "{{.Id}}", "busybox"],
        &[
            "inspect",
            "--type",
            "image",
            "-f",
            "{{.Size}} {{.Os}}",
            "busybox",
        ],
        &[
            "inspect",
            "--type",
            "image",
            "-f",
            "{{.RepoTags}}",
            "busybox",
        ],
        &["inspect", "-f", "{{.Name}}", "g-run", "g-exit", "g-created"],
        &[
            "container",
            "inspect",
            "-f",
            "{{.HostConfig.AutoRemove}}",
            "g-run",
        ],
        &["image", "inspect", "-f", "{{.Architecture}}", "busybox"],
        &["inspect", "nosuch"],
        &["inspect", "-f", "{{.Id}}", "nosuch"],
        &["inspect", "--type", "container", "busybox"],
        // Volumes and networks: by --type and found without it.
        &["inspect", "--type", "volume", "gvol"],
        &[
            "inspect",
            "--type",
            "volume",
            "-f",
            "{{.Name}} {{.Driver}}",
            "gvol",
        ],
        &["inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}}", "gvol"],
        &["inspect", "--type", "volume", "nosuch"],
        &["inspect", "--type", "volume", "busybox"],
        &[
            "inspect",
            "--type",
            "network",
            "-f",
            "{{.Name}} {{.Driver}}",
            "none",
        ],
        &["inspect", "-f", "{{.Name}} {{.Scope}}", "host"],
        &["inspect", "--type", "network", "gvol"],
    ] {
        c.same(args, false);
    }

    // version
    for args in [
        &["version", "--format", "{{.Server.Version}}"][..],
        &[
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}",
        ],
        &[
            "version",
            "--format",
            "{{.Server.Os}}/{{.Server.Arch}} {{.Server.KernelVersion}}",
        ],
        &[
            "version",
            "--format",
            "{{range .Server.Components}}{{.Name}} {{.Version}};{{end}}",
        ],
        &["version", "-f", "{{.Client.Os}}"],
    ] {
        c.same(args, false);
    }

    // logs (stdout and stderr kept apart, as docker does)
    for args in [
        &["logs", "g-exit"][..],
        &["logs", "--tail", "1", "g-exit"],
        &["logs", "-n", "0", "g-exit"],
        &["logs", "-t", "g-exit"],
        &["logs", "--since", "0", "g-exit"],
        &["logs", "g-created"],
        &["logs", "nosuch"],
    ] {
        c.same(args, true);
    }

    // Small commands on the same state.
    for args in [
        &["top", "g-run"][..],
        &["port", "g-run"],
        &["wait", "g-exit"],
        &["system", "df"],
        &["system", "df", "-v"],
        &["history", "busybox"],
        &[
            "events",
            "--since",
            "0",
            "--until",
            "1",
            "--format",
            "{{.Type}}",
        ],
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.Container}} {{.PIDs}} {{.NetIO}}",
            "g-run",
        ],
        &[
            "stats",
            "--no-stream",
            "--format",
            "table {{.Name}}\t{{.PIDs}}\t{{.CPUPerc}}",
        ],
        &["stats", "--no-stream", "--format", "{{.ID}} {{.Container}}"],
        &["stats", "--no-stream", "nosuch"],
        &["rm", "nosuch"],
        &["stop", "nosuch"],
        &["rmi", "nosuch:latest"],
    ] {
        c.same(args, false);
    }

    // The events of one container, in order, through a template.
    let since = c
        .docker(&["inspect", "-f", "{{.Created}}", "g-exit"])
        .stdout;
    let until = (berth_integration::unix_secs() + 1).to_string();
    c.same(
        &[
            "events",
            "--since",
            since.trim(),
            "--until",
            &until,
            "--filter",
            "container=g-exit",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ],
        false,
    );

    run_and_exec(&mut c);
    lifecycle(&mut c);
    create_flags_as_docker(&mut c);
    images_roundtrip(&mut c);

    for args in [
        &["rm", "-f", "g-run", "g-exit", "g-created"][..],
        &["rmi", "busybox:g1", "example.com/team/app:2"],
        &["volume", "rm", "gvol"],
    ] {
        let r = c.docker(args);
        assert_eq!(r.code, 0, "cleanup `docker {args:?}`: {}", r.stderr);
    }
    let mismatches = c.mismatches().to_vec();
    let compared = c.compared;
    daemon.finish();
    assert_agreed(&mismatches, compared);
}

/// `run` and `exec`: output, stream separation, stdin, exit codes.
fn run_and_exec(c: &mut Clients) {
    let marker = ["-e", "BERTH_IT=cli"];
    let run = |extra: &[&'static str], cmd: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["run", "--rm"];
        v.extend_from_slice(&marker);
        v.extend_from_slice(extra);
        v.push("busybox");
        v.extend_from_slice(cmd);
        v
    };
    for args in [
        run(&[], &["echo", "hello"]),
        run(&[], &["sh", "-c", "echo out; echo err >&2; exit 3"]),
        run(
            &["-e", "A=1", "-w", "/tmp", "-u", "1:2"],
            &["sh", "-c", "echo $A $(pwd) $(id -u):$(id -g)"],
        ),
        run(&["--entrypoint", "echo"], &["from", "entrypoint"]),
        run(
            &[
                "-l",
                "x=y",
                "-m",
                "64m",
                "--cpus",
                "0.5",
                "--hostname",
                "box",
            ],
            &["hostname"],
        ),
        run(&[], &["nosuchcommand"]),
        run(&[], &["/etc"]),
        run(&["--pull", "never"], &[]),
        run(&["--restart", "always"], &["true"]),
        run(&["-a", "stderr"], &["sh", "-c", "echo out; echo err >&2"]),
    ] {
        c.same(&args, false);
    }
    // An image that is not there and may not be pulled: 125.
    c.same(
        &["run", "--rm", "--pull", "never", "nosuchimage:1", "true"],
        false,
    );

    // Piped stdin reaches the container and its EOF ends it.
    let d = c.docker_with_stdin(
        &["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"],
        Some(b"line1\nline2\n"),
    );
    let b = c.berth_with_stdin(
        &["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"],
        Some(b"line1\nline2\n"),
    );
    if d.stdout != b.stdout || d.code != b.code {
        c.mismatch(format!(
            "run -i with piped stdin: docker {d:?}, berth {b:?}"
        ));
    }

    // -d prints the id, which docker can see.
    let b = c.berth(&[
        "run",
        "-d",
        "--name",
        "g-detached",
        "busybox",
        "sleep",
        "300",
    ]);
    let id = b.stdout.trim().to_string();
    let seen = c.docker(&["inspect", "-f", "{{.Id}} {{.State.Running}}", "g-detached"]);
    if b.code != 0 || seen.stdout.trim() != format!("{id} true") {
        c.mismatch(format!("run -d: berth {b:?}, docker inspect {seen:?}"));
    }
    for args in [
        &["exec", "g-detached", "echo", "hi"][..],
        &[
            "exec",
            "g-detached",
            "sh",
            "-c",
            "echo o; echo e >&2; exit 5",
        ],
        &[
            "exec",
            "-e",
            "V=2",
            "-w",
            "/tmp",
            "g-detached",
            "sh",
            "-c",
            "echo $V $(pwd)",
        ],
        &["exec", "-u", "7", "g-detached", "id", "-u"],
        &["exec", "g-detached", "nosuchcommand"],
        &["exec", "nosuch", "true"],
    ] {
        c.same(args, false);
    }
    let d = c.docker_with_stdin(&["exec", "-i", "g-detached", "cat"], Some(b"via stdin\n"));
    let b = c.berth_with_stdin(&["exec", "-i", "g-detached", "cat"], Some(b"via stdin\n"));
    if d != b {
        c.mismatch(format!(
            "exec -i with piped stdin: docker {d:?}, berth {b:?}"
        ));
    }
    // cp into the container (a file and a tree), out as a tar stream;
    // update; prune.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("f.txt");
    std::fs::write(&file, "copied\n").unwrap();
    std::fs::create_dir_all(dir.path().join("tree/sub")).unwrap();
    std::fs::write(dir.path().join("tree/sub/y"), "deep\n").unwrap();
    for src in [file.clone(), dir.path().join("tree")] {
        let b = c.berth(&["cp", src.to_str().unwrap(), "g-detached:/"]);
        if b.code != 0 {
            c.mismatch(format!("berth cp {}: {b:?}", src.display()));
        }
    }
    let seen = c.docker(&["exec", "g-detached", "cat", "/f.txt", "/tree/sub/y"]);
    if seen.stdout != "copied\ndeep\n" {
        c.mismatch(format!("after berth cp, docker exec cat: {seen:?}"));
    }
    c.same(&["cp", "g-detached:/f.txt", "-"], false);
    // docker's own update first, to other values: the daemon's warnings,
    // which depend on the host (as "IPv4 forwarding is disabled"), follow
    // the name in both outputs; berth's values are the ones that stay.
    let update = |memory, swap| {
        [
            "update",
            "--memory",
            memory,
            "--memory-swap",
            swap,
            "g-detached",
        ]
    };
    let d = c.docker(&update("32m", "64m"));
    let b = c.berth(&update("64m", "128m"));
    let seen = c.docker(&["inspect", "-f", "{{.HostConfig.Memory}}", "g-detached"]);
    if b.code != 0
        || !b.stdout.starts_with("g-detached\n")
        || b.stdout != d.stdout
        || seen.stdout != "67108864\n"
    {
        c.mismatch(format!(
            "berth update: {b:?}, docker's update printed {d:?}, docker sees {seen:?}"
        ));
    }
    // This also removes g-exit and g-created: nothing after needs them.
    let made = c.docker(&["create", "--name", "g-prune", "busybox", "true"]);
    let b = c.berth(&["container", "prune", "-f"]);
    if b.code != 0 || !b.stdout.contains(made.stdout.trim()) {
        c.mismatch(format!("berth container prune -f: {b:?}"));
    }
    let b = c.berth(&["rm", "-f", "g-detached"]);
    if b.stdout != "g-detached\n" || b.code != 0 {
        c.mismatch(format!("rm -f: {b:?}"));
    }
}

/// create/start/stop/kill/rename/wait/rm through berth, checked by docker.
fn lifecycle(c: &mut Clients) {
    let steps: &[(&[&str], &str)] = &[
        (
            &[
                "create",
                "--name",
                "g-life",
                "-e",
                "BERTH_IT=cli",
                "busybox",
                "sleep",
                "300",
            ],
            "",
        ),
        (&["start", "g-life"], "g-life\n"),
        (&["rename", "g-life", "g-life2"], ""),
        // sleep as pid 1 ignores SIGTERM: KILL it.
        (&["kill", "-s", "KILL", "g-life2"], "g-life2\n"),
        (&["wait", "g-life2"], "137\n"),
        (&["start", "g-life2"], "g-life2\n"),
        (&["stop", "-t", "1", "g-life2"], "g-life2\n"),
        (&["rm", "g-life2"], "g-life2\n"),
    ];
    for (args, want) in steps {
        let b = c.berth(args);
        let ok = b.code == 0 && (want.is_empty() || b.stdout == *want);
        if !ok {
            c.mismatch(format!("berth {}: {b:?}, wanted {want:?}", args.join(" ")));
        }
    }
    let left = c.docker(&["ps", "-aq", "--filter", "name=g-life"]);
    if !left.stdout.is_empty() {
        c.mismatch(format!("g-life remains after berth rm: {left:?}"));
    }
}

/// `create` with the HostConfig flags (namespaces, cgroup limits, block
/// I/O, logging, OOM): the container berth's CLI creates must carry the
/// same settings as docker's CLI gives the same flags, read back through
/// docker's inspect; `--cidfile` holds each one's id; a flag berth cannot
/// honour (`--gpus`) is refused with 125 and nothing created.
fn create_flags_as_docker(c: &mut Clients) {
    let dir = tempfile::tempdir().expect("temp dir");
    let flags = [
        "--cgroup-parent",
        "/g-parent",
        "--cgroupns",
        "private",
        "--domainname",
        "example.com",
        "--group-add",
        "audio",
        "--group-add",
        "27",
        "--ipc",
        "private",
        "--pid",
        "host",
        "--uts",
        "host",
        "--userns",
        "host",
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=1m",
        "--oom-score-adj",
        "5",
        "--oom-kill-disable",
        "--memory-reservation",
        "64m",
        "--memory-swappiness",
        "10",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "--cpuset-mems",
        "0",
        "--blkio-weight",
        "300",
        "--blkio-weight-device",
        "/dev/null:200",
        "--device-read-bps",
        "/dev/null:1mb",
        "--device-write-iops",
        "/dev/null:100",
        "--device-cgroup-rule",
        "c 1:3 rwm",
        "--isolation",
        "default",
        "--volume-driver",
        "local",
    ];
    let mut ids = Vec::new();
    for (client, name) in [("docker", "g-flags-d"), ("berth", "g-flags-b")] {
        let cidfile = dir.path().join(name);
        let mut args = vec![
            "create",
            "--name",
            name,
            "--cidfile",
            cidfile.to_str().unwrap(),
        ];
        args.extend(flags);
        args.extend(["busybox", "true"]);
        let r = if client == "docker" {
            c.docker(&args)
        } else {
            c.berth(&args)
        };
        let written = std::fs::read_to_string(&cidfile).unwrap_or_default();
        if r.code != 0 || written != r.stdout.trim() {
            c.mismatch(format!(
                "{client} create with flags: {r:?}; cidfile {written:?}"
            ));
        }
        ids.push(name);
    }
    let fields = "{{json .HostConfig.CgroupParent}} {{json .HostConfig.CgroupnsMode}} \
        {{json .Config.Domainname}} {{json .HostConfig.GroupAdd}} {{json .HostConfig.IpcMode}} \
        {{json .HostConfig.PidMode}} {{json .HostConfig.UTSMode}} {{json .HostConfig.UsernsMode}} \
        {{json .HostConfig.LogConfig}} {{json .HostConfig.OomScoreAdj}} \
        {{json .HostConfig.OomKillDisable}} {{json .HostConfig.MemoryReservation}} \
        {{json .HostConfig.MemorySwappiness}} {{json .HostConfig.CpuPeriod}} \
        {{json .HostConfig.CpuQuota}} {{json .HostConfig.CpusetMems}} \
        {{json .HostConfig.BlkioWeight}} {{json .HostConfig.BlkioWeightDevice}} \
        {{json .HostConfig.BlkioDeviceReadBps}} {{json .HostConfig.BlkioDeviceWriteIOps}} \
        {{json .HostConfig.DeviceCgroupRules}} {{json .HostConfig.Isolation}} \
        {{json .HostConfig.VolumeDriver}}";
    let d = c.docker(&["inspect", "-f", fields, ids[0]]);
    let b = c.docker(&["inspect", "-f", fields, ids[1]]);
    c.compared += 1;
    if d.code != 0 || d.stdout != b.stdout {
        c.mismatch(format!(
            "HostConfig from the same create flags:\n--- docker's CLI:\n{d:?}\n--- berth's CLI:\n{b:?}"
        ));
    }
    let refused = c.berth(&[
        "create",
        "--name",
        "g-flags-gpu",
        "--gpus",
        "all",
        "busybox",
    ]);
    if refused.code != 125 || !refused.stderr.contains("--gpus is not supported") {
        c.mismatch(format!("berth create --gpus: {refused:?}"));
    }
    let r = c.docker(&["rm", "g-flags-d", "g-flags-b"]);
    if r.code != 0 {
        c.mismatch(format!("removing the flag containers: {r:?}"));
    }
    if c.docker(&["inspect", "g-flags-gpu"]).code == 0 {
        c.mismatch("berth create --gpus made a container".into());
    }
}

/// What a step's output must satisfy.
type OutputCheck = Box<dyn Fn(&berth_integration::cli::Run) -> bool>;

/// tag, rmi, save, load, import through berth, checked by docker.
fn images_roundtrip(c: &mut Clients) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tar = dir.path().join("saved.tar");
    let tar_s = tar.to_str().unwrap();
    let checks: Vec<(Vec<&str>, OutputCheck)> = vec![
        (
            vec!["tag", "busybox", "busybox:bt"],
            Box::new(|r| r.stdout.is_empty()),
        ),
        (
            vec!["save", "-o", tar_s, "busybox:bt"],
            Box::new(|r| r.stdout.is_empty()),
        ),
        (
            vec!["rmi", "busybox:bt"],
            Box::new(|r| r.stdout == "Untagged: busybox:bt\n"),
        ),
        (
            vec!["load", "-i", tar_s],
            Box::new(|r| r.stdout.contains("Loaded image: busybox:bt")),
        ),
        (
            vec!["rmi", "busybox:bt"],
            Box::new(|r| r.stdout == "Untagged: busybox:bt\n"),
        ),
    ];
    for (args, ok) in checks {
        let b = c.berth(&args);
        if b.code != 0 || !ok(&b) {
            c.mismatch(format!("berth {}: {b:?}", args.join(" ")));
        }
    }
    // import: a rootfs from the busybox image's own export.
    let rootfs = dir.path().join("rootfs.tar");
    let r = c.docker(&["create", "--name", "g-export", "busybox", "true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let b = c.berth(&["export", "-o", rootfs.to_str().unwrap(), "g-export"]);
    if b.code != 0 || std::fs::metadata(&rootfs).map(|m| m.len()).unwrap_or(0) < 1024 {
        c.mismatch(format!("berth export: {b:?}"));
    }
    // A save that fails leaves nothing: no -o file, no temporary beside it.
    let failed = dir.path().join("failed.tar");
    let b = c.berth(&["save", "-o", failed.to_str().unwrap(), "no-such-image:1"]);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read the temp dir")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("failed.tar"))
        .collect();
    if b.code == 0 || !left.is_empty() {
        c.mismatch(format!(
            "berth save of a missing image: {b:?}, left {left:?}"
        ));
    }
    // -o naming a pipe writes into it (a rename would replace it).
    let b = c.berth(&["save", "-o", "/dev/stdout", "busybox"]);
    if b.code != 0 || !b.stdout.contains("manifest.json") {
        c.mismatch(format!(
            "berth save -o /dev/stdout: code {}, {} bytes, stderr {}",
            b.code,
            b.stdout.len(),
            b.stderr
        ));
    }
    let b = c.berth(&[
        "import",
        "-c",
        "CMD [\"echo\", \"imported\"]",
        rootfs.to_str().unwrap(),
        "g-imported:1",
    ]);
    if b.code != 0 || !b.stdout.starts_with("sha256:") {
        c.mismatch(format!("berth import: {b:?}"));
    }
    let d = c.docker(&["run", "--rm", "g-imported:1"]);
    if d.stdout != "imported\n" {
        c.mismatch(format!("docker run of berth's import: {d:?}"));
    }
    // commit: the author, message and changes reach docker's image.
    let b = c.berth(&[
        "commit",
        "-a",
        "someone <s@example.com>",
        "-m",
        "a message",
        "-c",
        "ENV COMMITTED=1",
        "--pause=false",
        "g-export",
        "g-committed:1",
    ]);
    if b.code != 0 || !b.stdout.starts_with("sha256:") {
        c.mismatch(format!("berth commit: {b:?}"));
    }
    let d = c.docker(&[
        "image",
        "inspect",
        "-f",
        "{{.Author}}|{{.Comment}}|{{.Config.Env}}",
        "g-committed:1",
    ]);
    if !(d.stdout.starts_with("someone <s@example.com>|a message|")
        && d.stdout.contains("COMMITTED=1"))
    {
        c.mismatch(format!("docker's view of berth's commit: {d:?}"));
    }
    for args in [
        &["rm", "g-export"][..],
        &["rmi", "g-imported:1"],
        &["rmi", "g-committed:1"],
    ] {
        let r = c.docker(args);
        assert_eq!(r.code, 0, "cleanup {args:?}: {}", r.stderr);
    }
}

/// Without a daemon the error names the socket and how to start berthd.
#[test]
fn no_daemon_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("none.sock");
    let berth = berth_integration::runtime::berth_binary("berth");
    for (env, args) in [
        (
            None,
            vec![
                "-H".to_string(),
                format!("unix://{}", sock.display()),
                "ps".into(),
            ],
        ),
        (
            Some(("BERTH_HOST", format!("unix://{}", sock.display()))),
            vec!["images".into()],
        ),
        (
            Some(("DOCKER_HOST", format!("unix://{}", sock.display()))),
            vec!["info".into()],
        ),
    ] {
        let mut cmd = std::process::Command::new(&berth);
        cmd.args(&args)
            .env_remove("DOCKER_HOST")
            .env_remove("BERTH_HOST");
        if let Some((k, v)) = &env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("running berth");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(&sock.display().to_string()), "{args:?}: {err}");
        assert!(err.contains("berthd"), "{args:?}: {err}");
    }
    // `run` exits 125 when it cannot create, and names the cause once.
    let out = std::process::Command::new(&berth)
        .args(["-H", &format!("unix://{}", sock.display())])
        .args(["run", "busybox", "true"])
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .output()
        .expect("running berth");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("berthd"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    // Later commands say so; unknown ones are usage errors.
    let out = std::process::Command::new(&berth)
        .args(["compose", "up"])
        .output()
        .expect("running berth");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("not available yet"), "{err}");
    // Completion and the man page come from the same definitions.
    for (args, want) in [
        (&["completion", "bash"][..], "complete -F _berth_dynamic"),
        (&["completion", "zsh"], "#compdef berth"),
        (&["completion", "fish"], "complete -c berth"),
        (&["man"], ".TH berth 1"),
    ] {
        let out = std::process::Command::new(&berth)
            .args(args)
            .output()
            .expect("running berth");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(want),
            "{args:?}: {text}"
        );
    }
    let out = std::process::Command::new(&berth)
        .args(["run", "--no-such-flag", "busybox"])
        .output()
        .expect("running berth");
    assert_eq!(out.status.code(), Some(125));
}

/// `run -it` in a real terminal: typed commands, a window resize seen by
/// the container, detach with ctrl-p ctrl-q, re-attach with other detach
/// keys, detach with those, re-attach and exit code; after every exit the
/// terminal's settings are the ones it had before (raw mode undone).
#[test]
fn tty_session_in_tmux() {
    if let Err(e) = berth_integration::peers::ensure_installed("/usr/bin/tmux", "tmux") {
        eprintln!("skipped: {e}");
        return;
    }
    let Some(daemon) = Dockerd::start("cli_tty") else {
        return;
    };
    let c = Clients::new(&daemon);
    let berth = format!("{} -H {}", c.berth.display(), c.host);
    let tmux = Tmux::new("cli");
    // The client between two readings of the terminal's settings.
    let session = |args: &str| {
        tmux.session(
            100,
            &format!(
                "S=$(stty -g); {berth} {args}; R=$?; \
                 [ \"$S\" = \"$(stty -g)\" ] && echo TERMINAL-RESTORED; (exit $R)"
            ),
        )
    };
    session("run -it --name tty1 -e BERTH_IT=cli busybox sh");
    tmux.expect("/ #");
    tmux.cmd(&["send-keys", "-t", "t", "echo hi-$((1+2))", "Enter"]);
    tmux.expect("hi-3");
    tmux.cmd(&["send-keys", "-t", "t", "stty size", "Enter"]);
    tmux.expect("30 100");
    tmux.cmd(&["resize-window", "-t", "t", "-x", "120", "-y", "40"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    tmux.cmd(&["send-keys", "-t", "t", "stty size", "Enter"]);
    tmux.expect("40 120");
    tmux.cmd(&["send-keys", "-t", "t", "C-p", "C-q"]);
    tmux.expect("EXITED-0");
    tmux.expect("TERMINAL-RESTORED");
    let running = || {
        c.docker(&["inspect", "-f", "{{.State.Running}}", "tty1"])
            .stdout
    };
    assert_eq!(
        running(),
        "true\n",
        "detaching must leave the container running"
    );

    // The live stats table redraws in place: after several refreshes the
    // screen still holds one header and one row (the next session ends it).
    session("stats tty1");
    tmux.expect("tty1");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let screen = tmux.screen();
    assert_eq!(screen.matches("CONTAINER ID").count(), 1, "{screen}");
    assert_eq!(screen.matches(" tty1 ").count(), 1, "{screen}");

    session("attach --detach-keys ctrl-x,x tty1");
    std::thread::sleep(std::time::Duration::from_millis(500));
    tmux.cmd(&["send-keys", "-t", "t", "echo keys-$((3+3))", "Enter"]);
    tmux.expect("keys-6");
    // ctrl-p is an ordinary key now; ctrl-x x detaches.
    tmux.cmd(&["send-keys", "-t", "t", "C-p", "C-x", "x"]);
    tmux.expect("EXITED-0");
    tmux.expect("TERMINAL-RESTORED");
    assert_eq!(
        running(),
        "true\n",
        "detaching must leave the container running"
    );

    session("attach tty1");
    std::thread::sleep(std::time::Duration::from_millis(500));
    tmux.cmd(&["send-keys", "-t", "t", "echo back-$((2+2))", "Enter"]);
    tmux.expect("back-4");
    tmux.cmd(&["send-keys", "-t", "t", "exit 4", "Enter"]);
    tmux.expect("EXITED-4");
    tmux.expect("TERMINAL-RESTORED");
    drop(tmux);
    let r = c.docker(&["rm", "-f", "tty1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    daemon.finish();
}

/// `berth completion` loaded in bash, zsh and fish in a real terminal: a
/// container's and an image's name, typed in part, are completed from the
/// daemon.
#[test]
fn completion_offers_the_daemons_names() {
    for (binary, package) in [
        ("/usr/bin/tmux", "tmux"),
        ("/usr/bin/zsh", "zsh"),
        ("/usr/bin/fish", "fish"),
    ] {
        if let Err(e) = berth_integration::peers::ensure_installed(binary, package) {
            eprintln!("skipped: {e}");
            return;
        }
    }
    let Some(daemon) = Dockerd::start("cli_completion") else {
        return;
    };
    let c = Clients::new(&daemon);
    let r = c.docker(&["create", "--name", "compl-target", "busybox", "true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The scripts call `berth` by name; HOME keeps the shells' history
    // files out of the real one.
    let home = tempfile::tempdir().expect("temp dir");
    let env = format!(
        "env -i TERM=xterm PATH={}:/usr/bin:/bin BERTH_HOST={} HOME={}",
        c.berth.parent().expect("berth's dir").display(),
        c.host,
        home.path().display()
    );
    let tmux = Tmux::new("completion");
    for (shell, load) in [
        ("bash --norc --noprofile", "source <(berth completion bash)"),
        (
            "zsh -f",
            "autoload -U compinit && compinit -u && source <(berth completion zsh)",
        ),
        ("fish --no-config", "berth completion fish | source"),
    ] {
        tmux.session(120, &format!("{env} {shell}"));
        tmux.cmd(&["send-keys", "-t", "t", load, "Enter"]);
        for (typed, completed) in [
            ("berth rm compl-ta", "berth rm compl-target"),
            ("berth history busyb", "berth history busybox:latest"),
        ] {
            // Printed for the failure's context: expect() shows the screen.
            eprintln!("{shell}: {typed:?} and Tab should give {completed:?}");
            tmux.cmd(&["send-keys", "-t", "t", typed, "Tab"]);
            tmux.expect(completed);
            // Clear the line with C-u, an editing key read in order: C-c
            // is a signal, and the next keys could reach the old line
            // before the shell handled it (zsh once showed "... compl-target b").
            tmux.cmd(&["send-keys", "-t", "t", "C-u"]);
        }
    }
    drop(tmux);
    let r = c.docker(&["rm", "compl-target"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    daemon.finish();
}

/// Distribution's registry on a loopback port, stopped when dropped.
struct Registry {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    addr: String,
}

impl Registry {
    fn start() -> Option<Registry> {
        if let Err(e) = berth_integration::peers::ensure_installed(
            "/usr/bin/docker-registry",
            "docker-registry",
        ) {
            eprintln!("skipped: {e}");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        // A free port: bind, read it, release it for the registry.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("writing the registry config");
        let child = std::process::Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "the registry did not listen on {addr}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(Registry {
            child,
            _dir: dir,
            addr,
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// pull and push with plain progress lines (not a terminal), as docker's.
#[test]
fn pull_push_against_a_loopback_registry() {
    let Some(daemon) = Dockerd::start("cli_pull") else {
        return;
    };
    let Some(registry) = Registry::start() else {
        daemon.finish();
        return;
    };
    let mut c = Clients::new(&daemon);
    let image = format!("{}/bb:1", registry.addr);
    let missing = format!("{}/nope:1", registry.addr);
    let r = c.berth(&["tag", "busybox", &image]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = c.berth(&["push", &image]);
    if first.code != 0
        || !first.stdout.contains("Pushed")
        || !first.stdout.contains("digest: sha256:")
    {
        c.mismatch(format!("first berth push: {first:?}"));
    }
    // Both see the layers already there now.
    c.same(&["push", &image], false);
    // A fresh pull each: the same lines.
    assert_eq!(c.docker(&["rmi", &image]).code, 0);
    let b = c.berth(&["pull", &image]);
    assert_eq!(c.docker(&["rmi", &image]).code, 0);
    let d = c.docker(&["pull", &image]);
    if b != d {
        c.mismatch(format!("fresh pull: docker {d:?}, berth {b:?}"));
    }
    for args in [
        &["pull", image.as_str()][..],
        &["pull", "-q", image.as_str()],
        &["pull", missing.as_str()],
        &["images", "--digests"],
    ] {
        c.same(args, true);
    }
    // pull -a: every tag of the repository, and --platform.
    let repo = format!("{}/bb", registry.addr);
    let second = format!("{repo}:2");
    c.docker_exits(0, &["tag", &image, &second]);
    c.docker_exits(0, &["push", &second]);
    let mut pulls = Vec::new();
    for berth in [false, true] {
        c.docker_exits(0, &["rmi", &image, &second]);
        let args = ["pull", "-a", repo.as_str()];
        pulls.push(if berth {
            c.berth(&args)
        } else {
            c.docker(&args)
        });
    }
    if pulls[0] != pulls[1] {
        c.mismatch(format!(
            "pull -a: docker {:?}, berth {:?}",
            pulls[0], pulls[1]
        ));
    }
    c.same(&["images", "--format", "{{.Tag}}", repo.as_str()], false);
    c.docker_exits(0, &["rmi", &second]);
    c.same(&["pull", "--platform", "linux/amd64", image.as_str()], true);
    // On a terminal: progress lines redrawn in place (bars while bytes
    // move), and the same final screen as docker's.
    if berth_integration::peers::ensure_installed("/usr/bin/tmux", "tmux").is_ok() {
        let tmux = Tmux::new("progress");
        let archive = daemon.dir.path().join("bb.tar");
        let archive = archive.to_str().expect("UTF-8 path");
        c.docker_exits(0, &["save", "-o", archive, &image]);
        for (what, args) in [
            ("pull", &["pull", image.as_str()][..]),
            ("load", &["load", "-i", archive]),
        ] {
            let mut screens = Vec::new();
            for berth in [false, true] {
                c.docker_exits(0, &["rmi", &image]);
                screens.push(c.terminal_screen(&tmux, berth, args));
            }
            if screens[0] != screens[1] || !screens[0].ends_with("EXITED-0\n") {
                c.mismatch(format!(
                    "{what} on a terminal: docker's screen\n{}berth's\n{}",
                    screens[0], screens[1]
                ));
            }
        }
        let screens: Vec<String> = [false, true]
            .map(|berth| c.terminal_screen(&tmux, berth, &["push", &image]))
            .into();
        if screens[0] != screens[1] {
            c.mismatch(format!(
                "push on a terminal: docker's screen\n{}berth's\n{}",
                screens[0], screens[1]
            ));
        }
    }
    assert_eq!(c.docker(&["rmi", &image]).code, 0);
    let mismatches = c.mismatches().to_vec();
    drop(registry);
    daemon.finish();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}
