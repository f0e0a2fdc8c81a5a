//! Dockerfile builds through berthd (`POST /build`, docker's classic
//! builder), driven by the real docker CLI with `DOCKER_BUILDKIT=0` and by
//! the API: the built image runs and holds what the steps made, a second
//! build is taken from the cache, multi-stage targets, build args, a
//! failing RUN's error with no container left, and hostile contexts.

use berth_integration::daemon::{has_docker, Berthd};
use berth_integration::tarball::{end as tar_end, entry as tar_entry};
use berth_integration::{require_root, text};

fn build(d: &Berthd, ctx: &std::path::Path, args: &str) -> std::process::Output {
    let script = format!(
        "cd {} && DOCKER_BUILDKIT=0 timeout 300 docker build {args} . 2>&1",
        ctx.display()
    );
    std::process::Command::new("sh")
        .args(["-c", &script])
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .output()
        .expect("docker build")
}

/// Builds `dockerfile` in `ctx` as `never:1`, which must fail saying `want`
/// and leave no image.
fn failing_build(d: &Berthd, ctx: &std::path::Path, dockerfile: &str, want: &str) {
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let out = build(d, ctx, "-t never:1");
    let log = text(&out.stdout);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains(want), "{want:?} in {log}");
    assert!(!d.docker(&["inspect", "never:1"]).status.success());
}

#[test]
fn dockerfile_builds_run_cache_and_fail_cleanly() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let ctx = tempfile::tempdir().unwrap();
    let p = ctx.path();
    std::fs::create_dir_all(p.join("sub")).unwrap();
    std::fs::write(p.join("sub/a.txt"), "from the context\n").unwrap();
    std::fs::write(p.join("secret.txt"), "ignored\n").unwrap();
    std::fs::write(p.join(".dockerignore"), "secret.txt\n").unwrap();
    std::fs::write(
        p.join("Dockerfile"),
        "FROM bb:1 AS base\n\
         ARG GREETING=hi\n\
         ENV APP=/app \\\n    MODE=test TOOLS=/tools:$PATH\n\
         WORKDIR $APP\n\
         COPY sub/ ./data/\n\
         COPY . /ctx/\n\
         COPY sub/a.txt /tmp/copied.txt\n\
         RUN echo \"$GREETING from $MODE\" > greeting && >&2 echo to-stderr\n\
         LABEL built.by=berth\n\
         CMD [\"cat\", \"/app/greeting\"]\n\
         FROM base AS second\n\
         RUN echo second > /second && mkdir -p /out/deep && echo deep > /out/deep/f\n\
         FROM bb:1\n\
         COPY --from=second /second /got/\n\
         COPY --from=1 /out /tree\n\
         COPY --from=bb:1 /bin/busybox /bb-copy\n",
    )
    .unwrap();

    let out = build(
        &d,
        p,
        "-t built:1 --target base --build-arg GREETING=hey --build-arg NOTUSED=1 --build-arg HTTP_PROXY=none",
    );
    let log = text(&out.stdout);
    assert!(out.status.success(), "{log}\n{}", d.log());
    // A build-arg no ARG takes is reported, as docker does (the proxy ones
    // every build takes are not).
    assert!(
        log.contains("[Warning] One or more build-args [NOTUSED] were not consumed"),
        "{log}"
    );
    assert!(log.contains("Successfully tagged built:1"), "{log}");
    assert!(log.contains("\u{1b}[91mto-stderr"), "stderr in red: {log}");
    assert!(!log.contains("second"), "the target stops the build: {log}");
    assert_eq!(d.docker_ok(&["run", "--rm", "built:1"]), "hey from test\n");
    let files = d.docker_ok(&[
        "run",
        "--rm",
        "built:1",
        "sh",
        "-c",
        "cat /app/data/a.txt /tmp/copied.txt; ls /ctx; stat -c %a /tmp",
    ]);
    assert_eq!(
        files, "from the context\nfrom the context\nDockerfile\nsub\n1777\n",
        ".dockerignore'd files stay out; /tmp keeps its mode"
    );
    let label = d.docker_ok(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"built.by\"}}",
        "built:1",
    ]);
    assert_eq!(label.trim(), "berth");
    // bb:1 sets no PATH: the stage got docker's default one, which the
    // ENV saw and the image keeps.
    let env = d.docker_ok(&["inspect", "-f", "{{json .Config.Env}}", "built:1"]);
    let default = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    assert!(env.contains(&format!("\"PATH={default}\"")), "{env}");
    assert!(
        env.contains(&format!("\"TOOLS=/tools:{default}\"")),
        "{env}"
    );

    // The same build again: every step from the cache.
    let again = build(&d, p, "-t built:2 --target base --build-arg GREETING=hey");
    let log = text(&again.stdout);
    assert!(again.status.success(), "{log}");
    assert_eq!(log.matches("Using cache").count(), 8, "{log}");
    let id = |r: &str| d.docker_ok(&["inspect", "-f", "{{.Id}}", r]);
    assert_eq!(id("built:1"), id("built:2"));
    // Another build arg changes the RUN step: no cache from there on.
    let other = build(&d, p, "-t built:3 --target base --build-arg GREETING=yo");
    assert!(other.status.success(), "{}", text(&other.stdout));
    assert_eq!(d.docker_ok(&["run", "--rm", "built:3"]), "yo from test\n");

    // The last stage copies from the others and from an image.
    let out = build(&d, p, "-t multi:1");
    let log = text(&out.stdout);
    assert!(out.status.success(), "{log}");
    let got = d.docker_ok(&[
        "run",
        "--rm",
        "multi:1",
        "sh",
        "-c",
        "cat /got/second /tree/deep/f; test -x /bb-copy && echo exe",
    ]);
    assert_eq!(got, "second\ndeep\nexe\n");
    // Again: the COPY --from steps hit the cache too (their key named the
    // builder's staging directory, new every build), and the history names
    // the stage's path, not a path on the host.
    let again = build(&d, p, "-t multi:2");
    let log = text(&again.stdout);
    assert!(again.status.success(), "{log}");
    assert_eq!(id("multi:1"), id("multi:2"), "{log}");
    let history = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "multi:1",
    ]);
    assert!(history.contains("COPY second:/second:"), "{history}");
    assert!(
        !history.contains(&d.data_root.display().to_string()),
        "{history}"
    );

    // The proxy build-args reach RUN without an ARG, and neither the
    // history nor the image keeps them.
    let proxy_ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        proxy_ctx.path().join("Dockerfile"),
        "FROM bb:1\nRUN echo \"proxy=$HTTP_PROXY\" > /proxy\n",
    )
    .unwrap();
    let out = build(
        &d,
        proxy_ctx.path(),
        "-t proxied:1 --build-arg HTTP_PROXY=http://proxy.example:3128",
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert_eq!(
        d.docker_ok(&["run", "--rm", "proxied:1", "cat", "/proxy"]),
        "proxy=http://proxy.example:3128\n"
    );
    let history = d.docker_ok(&["history", "--no-trunc", "proxied:1"]);
    let env = d.docker_ok(&["inspect", "-f", "{{json .Config.Env}}", "proxied:1"]);
    assert!(
        !history.contains("proxy.example") && !env.contains("proxy.example"),
        "{history}{env}"
    );
    d.docker_ok(&["rmi", "proxied:1"]);

    // berth's own client: the same build, `-q` prints the id only.
    let out = std::process::Command::new(berth_integration::runtime::berth_binary("berth"))
        .args(["-H", &format!("unix://{}", d.socket.display())])
        // `image build` is docker's other name for it.
        .args([
            "image",
            "build",
            "-q",
            "-t",
            "viaberth:1",
            "--target",
            "base",
        ])
        .args(["--build-arg", "GREETING=cli", "--label", "via=berth"])
        .arg(p)
        .output()
        .expect("berth build");
    let id = text(&out.stdout);
    assert!(out.status.success(), "{id}{}", text(&out.stderr));
    assert!(
        id.trim().starts_with("sha256:") && id.lines().count() == 1,
        "{id}"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "viaberth:1"]),
        "cli from test\n"
    );
    let label = d.docker_ok(&["inspect", "-f", "{{.Config.Labels.via}}", "viaberth:1"]);
    assert_eq!(label.trim(), "berth");

    // A failing RUN: docker's message and exit code, no container left.
    let want = "The command '/bin/sh -c echo before && exit 3' returned a non-zero code: 3";
    failing_build(&d, p, "FROM bb:1\nRUN echo before && exit 3\n", want);
    assert_eq!(
        d.docker_ok(&["ps", "-aq"]),
        "",
        "no intermediate container remains"
    );
    // Sources are resolved inside the context: `..` stops at its root.
    let dockerfile = "FROM bb:1\nCOPY ../../../../etc/passwd /x\n";
    failing_build(&d, p, dockerfile, "file not found in build context");
    d.stop();
}

/// A context tar of regular files, names as given (`..` included).
/// A context holding device nodes and a fifo (a root file system's /dev):
/// the cache key and COPY must never read them (reading /dev/console
/// blocks, /dev/zero never ends; a build hung on both), and the build
/// finishes with the regular files copied.
#[test]
fn contexts_with_device_nodes_and_fifos_build() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let ctx = tempfile::tempdir().unwrap();
    let p = ctx.path();
    std::fs::create_dir_all(p.join("root/dev")).unwrap();
    std::fs::write(p.join("root/hello"), "hello\n").unwrap();
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mknod {0}/root/dev/zero c 1 5 && mknod {0}/root/dev/console c 5 1 && mkfifo {0}/root/dev/fifo",
            p.display()
        ))
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::write(
        p.join("Dockerfile"),
        "FROM bb:1\nCOPY root/ /copied/\nADD root/dev/zero /added\nRUN cat /copied/hello\n",
    )
    .unwrap();
    let out = build(&d, p, "-t devs:1");
    let log = text(&out.stdout);
    assert!(out.status.success(), "{log}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "devs:1", "cat", "/copied/hello"]),
        "hello\n"
    );
    d.docker_ok(&["rmi", "devs:1"]);
    d.stop();
}

fn context_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut t = Vec::new();
    for (name, data) in files {
        tar_entry(&mut t, name, b'0', "", data);
    }
    tar_end(&mut t);
    t
}

#[test]
fn hostile_contexts_and_scratch_images_through_the_api() {
    if !require_root() {
        return;
    }
    let d = Berthd::start(&[]);
    // An entry that climbs out of the context: the build fails naming it
    // and nothing is written outside.
    let victim = tempfile::tempdir().unwrap();
    let climb = format!(
        "../../../../../../../../../..{}/pwned",
        victim.path().display()
    );
    let t = context_tar(&[
        ("Dockerfile", &b"FROM scratch\nUSER nobody\n"[..]),
        (&climb, &b"pwned\n"[..]),
    ]);
    let (status, body) = d.api("POST", "/build?t=hostile:1", Some(&t));
    let body = text(&body);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("errorDetail") && body.contains("pwned"),
        "{body}"
    );
    assert!(!victim.path().join("pwned").exists());
    assert_eq!(d.api("GET", "/images/hostile:1/json", None).0, 404);

    // FROM scratch with build args and labels: a config-only image.
    let t = context_tar(&[(
        "df",
        &b"FROM scratch\nARG who\nUSER $who\nCMD [\"/x\"]\n"[..],
    )]);
    let (status, body) = d.api(
        "POST",
        "/build?t=scratchy:1&dockerfile=df&buildargs=%7B%22who%22%3A%22OK%22%7D&labels=%7B%22k%22%3A%22v%22%7D",
        Some(&t),
    );
    assert_eq!(status, 200, "{}", text(&body));
    assert!(!text(&body).contains("errorDetail"), "{}", text(&body));
    let (_, info) = d.api("GET", "/images/scratchy:1/json", None);
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["Config"]["User"], "OK");
    assert_eq!(info["Config"]["Labels"]["k"], "v");
    assert_eq!(info["Config"]["Cmd"][0], "/x");
    assert_eq!(
        info["RootFS"]["Layers"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0),
        0
    );

    // An unknown instruction and a missing Dockerfile: errors naming them.
    let t = context_tar(&[("Dockerfile", &b"FROM scratch\nFROBNICATE x\n"[..])]);
    let (_, body) = d.api("POST", "/build", Some(&t));
    assert!(
        text(&body).contains("unknown instruction: FROBNICATE"),
        "{}",
        text(&body)
    );
    let (_, body) = d.api("POST", "/build?dockerfile=nope", Some(&t));
    assert!(
        text(&body).contains("Cannot locate specified Dockerfile: nope"),
        "{}",
        text(&body)
    );
    let builds = d.data_root.join("builds");
    let left = std::fs::read_dir(&builds).map(|r| r.count()).unwrap_or(0);
    assert_eq!(left, 0, "build contexts are removed after each build");
    d.stop();
}
