//! docker-compose (Debian's, 1.29: a docker-py client) driving berthd
//! unchanged: a two-service project on its own network, resolved by
//! service name, with a named volume, a published port, a healthcheck and
//! `init`; `ps`, `exec`, `port`, one-off `run --rm`; a recreate after a
//! config change that keeps the volume's data and the port; a service
//! built from a Dockerfile whose exit code `up --exit-code-from` returns;
//! and `down -v --rmi all`, after which nothing of the project is left
//! (`Berthd::stop` checks the host).

use std::path::Path;

use berth_integration::daemon::{has_docker, Berthd};
use berth_integration::netcheck::{curl, poll};
use berth_integration::peers::ensure_installed;
use berth_integration::require_root;

const COMPOSE: &str = "/usr/bin/docker-compose";

const PROJECT: &str = r#"version: "3.8"
services:
  web:
    image: bb:1
    init: true
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: ["8080"]
    volumes: ["data:/data"]
    environment:
      GREETING: GREETING_VALUE
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      retries: 10
  client:
    image: bb:1
    depends_on: [web]
    stop_grace_period: 1s
    command: ["sh", "-c", "until wget -q -O - http://web:8080/; do sleep 0.2; done; sleep 300"]
volumes:
  data: {}
"#;

const JOB: &str = r#"version: "3.8"
services:
  job:
    build: ./app
    image: compose-job:1
"#;

const DOCKERFILE: &str = r#"FROM bb:1
ENV MSG=built
RUN echo from-build > /built.txt
CMD ["sh", "-c", "cat /built.txt; echo $MSG; exit 3"]
"#;

fn write_project(dir: &Path, greeting: &str) {
    std::fs::write(
        dir.join("docker-compose.yml"),
        PROJECT.replace("GREETING_VALUE", greeting),
    )
    .expect("writing docker-compose.yml");
}

/// `docker-compose ARGS` for the project in `dir` (named after it),
/// through the daemon's socket.
fn compose(d: &Berthd, dir: &Path, args: &str) -> String {
    d.sh_ok(&format!(
        "cd {} && {COMPOSE} --ansi never {args} 2>&1",
        dir.display()
    ))
}

/// The project's web page through the published port, once it answers.
fn page(d: &Berthd, dir: &Path) -> String {
    let port = compose(d, dir, "port web 8080");
    let port = port
        .trim()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    poll(20, "the published port", || {
        curl(&format!("http://127.0.0.1:{port}/"))
    })
}

#[test]
fn docker_compose_runs_a_project_end_to_end() {
    if !require_root() || !has_docker() {
        return;
    }
    if let Err(reason) = ensure_installed(COMPOSE, "docker-compose") {
        eprintln!("skipped: {reason}");
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = &tmp.path().join("demo");
    std::fs::create_dir(dir).expect("project dir");
    write_project(dir, "first");
    compose(&d, dir, "up -d");

    // Each container once, numbered 1: compose finds its containers by
    // several label filters, all of which must hold.
    let ids = compose(&d, dir, "ps -q");
    assert_eq!(ids.lines().count(), 2, "ps -q: {ids}");
    let names = d.docker_ok(&["ps", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["demo_client_1", "demo_web_1"]);

    // The client reached the web service by its name on the project's network.
    poll(30, "the client's fetch by service name", || {
        compose(&d, dir, "logs client")
            .contains("hello-from-web")
            .then_some(())
    });
    assert_eq!(page(&d, dir), "hello-from-web\n");
    poll(30, "the healthcheck", || {
        let s = d.docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", "demo_web_1"]);
        (s.trim() == "healthy").then_some(())
    });
    compose(&d, dir, "exec -T web sh -c 'echo kept > /data/file'");
    let one_off = compose(&d, dir, "run --rm client echo one-off");
    assert!(one_off.contains("one-off"), "{one_off}");

    // A changed environment recreates web: the old container is stopped
    // and renamed, the new one takes its port and its volume.
    write_project(dir, "second");
    let up = compose(&d, dir, "up -d");
    assert!(up.contains("Recreating demo_web_1"), "{up}");
    let seen = compose(
        &d,
        dir,
        "exec -T web sh -c 'echo $GREETING; cat /data/file'",
    );
    assert_eq!(seen, "second\nkept\n");
    assert_eq!(page(&d, dir), "hello-from-web\n");
    assert_eq!(compose(&d, dir, "ps -q").lines().count(), 2);

    // A built service: its build steps' images go with it.
    let job = tmp.path().join("job");
    std::fs::create_dir_all(job.join("app")).expect("job dir");
    std::fs::write(job.join("docker-compose.yml"), JOB).expect("job compose file");
    std::fs::write(job.join("app/Dockerfile"), DOCKERFILE).expect("Dockerfile");
    compose(&d, &job, "build");
    let listed = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        !listed.contains("<none>"),
        "build steps are listed: {listed}"
    );
    let out = d.sh_ok(&format!(
        "cd {} && {COMPOSE} --ansi never up --abort-on-container-exit --exit-code-from job 2>&1; echo exit=$?",
        job.display()
    ));
    assert!(out.contains("from-build") && out.contains("built"), "{out}");
    assert!(out.trim_end().ends_with("exit=3"), "{out}");
    compose(&d, &job, "down --rmi all");
    let images = d.docker_ok(&["images", "-a", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images.trim(), "bb:1", "images left by the built service");

    compose(&d, dir, "down -v");
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(d.docker_ok(&["volume", "ls", "-q"]).trim(), "");
    let networks = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        !networks.contains("demo") && !networks.contains("job"),
        "{networks}"
    );
    d.stop();
}
