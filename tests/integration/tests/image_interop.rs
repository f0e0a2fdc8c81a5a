//! Images cross between berthd and Debian's dockerd as archives: a
//! multi-layer image that dockerd built (with a whiteout: a file the second
//! layer deletes) goes through `docker save` into berthd's `load` and runs
//! there; an image berthd holds goes through berthd's `save` into dockerd's
//! `load` and runs there. Both keep their image id (the config's digest),
//! as a faithful archive must. skopeo's `docker-daemon:` transport copies
//! out of berthd and back in.

use std::path::Path;

use berth_integration::daemon::{has_docker, Berthd};
use berth_integration::peers::{ensure_installed, Dockerd};
use berth_integration::{require_root, text};

/// The full image id of `image` as a daemon reports it.
fn image_id(out: String) -> String {
    let id = out.trim().to_string();
    assert!(id.starts_with("sha256:"), "not an image id: {id:?}");
    id
}

/// A build context: busybox plus a layer that adds /hi and removes
/// /bin/ls (a whiteout in the layer), and a label.
fn write_context(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\n\
         RUN echo hi > /hi && rm /bin/ls\n\
         LABEL interop=yes\n\
         CMD [\"cat\", \"/hi\"]\n",
    )
    .unwrap();
}

#[test]
fn archives_cross_between_berthd_and_dockerd() {
    if !require_root() || !has_docker() {
        return;
    }
    let Some(docker) = Dockerd::start("interop") else {
        return;
    };
    let berth = Berthd::with_busybox(&[]);
    let work = berth.dir.path();

    // dockerd builds a multi-layer image (the legacy builder: no BuildKit
    // here) and saves it.
    let context = work.join("context");
    write_context(&context);
    std::env::set_var("DOCKER_BUILDKIT", "0");
    docker.docker_ok(&[
        "build",
        "--network",
        "none",
        "-t",
        "interop:1",
        context.to_str().unwrap(),
    ]);
    let built = image_id(docker.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "interop:1"]));
    let layers = docker.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{len .RootFS.Layers}}",
        "interop:1",
    ]);
    assert_eq!(layers.trim(), "2", "the built image's layers");
    let from_docker = work.join("from-docker.tar");
    docker.docker_ok(&["save", "-o", from_docker.to_str().unwrap(), "interop:1"]);

    // berthd loads it with the same id, and the whiteout holds.
    let loaded = berth.docker_ok(&["load", "-i", from_docker.to_str().unwrap()]);
    assert!(loaded.contains("Loaded image: interop:1"), "{loaded}");
    let in_berth = image_id(berth.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "interop:1"]));
    assert_eq!(in_berth, built, "berthd's id of docker's image");
    let label = berth.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"interop\"}}",
        "interop:1",
    ]);
    assert_eq!(label.trim(), "yes");
    let out = berth.docker_ok(&["run", "--rm", "--network", "none", "interop:1"]);
    assert_eq!(out, "hi\n");
    let out = berth.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "interop:1",
        "test",
        "-e",
        "/bin/ls",
    ]);
    assert_eq!(out.status.code(), Some(1), "/bin/ls came back in berthd");

    // berthd saves its own image (imported there) and docker's, in one
    // archive; dockerd loads both with the same ids and runs them.
    let own = image_id(berth.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "bb:1"]));
    let from_berth = work.join("from-berth.tar");
    berth.docker_ok(&[
        "save",
        "-o",
        from_berth.to_str().unwrap(),
        "bb:1",
        "interop:1",
    ]);
    docker.docker_ok(&["rmi", "interop:1"]);
    let loaded = docker.docker_ok(&["load", "-i", from_berth.to_str().unwrap()]);
    assert!(loaded.contains("Loaded image: bb:1"), "{loaded}");
    assert!(loaded.contains("Loaded image: interop:1"), "{loaded}");
    for (name, want) in [("bb:1", &own), ("interop:1", &built)] {
        let id = image_id(docker.docker_ok(&["image", "inspect", "-f", "{{.Id}}", name]));
        assert_eq!(&id, want, "dockerd's id of berthd's {name}");
    }
    let out = docker.docker_ok(&["run", "--rm", "--network", "none", "bb:1", "echo", "ok"]);
    assert_eq!(out, "ok\n");
    let out = docker.docker_ok(&["run", "--rm", "--network", "none", "interop:1"]);
    assert_eq!(out, "hi\n");

    berth.stop();
    docker.finish();
}

/// skopeo's `docker-daemon:` transport (Debian's skopeo 1.9 pins API
/// version 1.22) reads an image out of berthd (`GET /images/{name}/get`)
/// and writes one in (`POST /images/load`) once berthd is started with
/// dockerd's `DOCKER_MIN_API_VERSION=1.22`; without it, berthd refuses the
/// version in dockerd's words.
#[test]
fn skopeo_copies_through_the_docker_daemon_transport() {
    if !require_root() || !has_docker() {
        return;
    }
    if let Err(reason) = ensure_installed("/usr/bin/skopeo", "skopeo") {
        eprintln!("skipped: {reason}");
        return;
    }
    let host = |d: &Berthd| format!("unix://{}", d.socket.display());
    let skopeo = |args: &[&str]| {
        std::process::Command::new("skopeo")
            .args(["--insecure-policy"])
            .args(args)
            .output()
            .expect("running skopeo")
    };
    let d = Berthd::with_busybox(&[]);
    let out = skopeo(&["inspect", "--daemon-host", &host(&d), "docker-daemon:bb:1"]);
    assert!(
        text(&out.stderr)
            .contains("client version 1.22 is too old. Minimum supported API version is 1.24"),
        "{}",
        text(&out.stderr)
    );
    d.stop();

    let d = Berthd::with_busybox_env(&[], &[("DOCKER_MIN_API_VERSION", "1.22")]);
    let min = d.docker_ok(&["version", "--format", "{{.Server.MinAPIVersion}}"]);
    assert_eq!(min.trim(), "1.22");
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("copy");
    let copy_ref = format!("dir:{}", copy.display());
    let out = skopeo(&[
        "copy",
        "--src-daemon-host",
        &host(&d),
        "docker-daemon:bb:1",
        &copy_ref,
    ]);
    assert!(out.status.success(), "copy out: {}", text(&out.stderr));
    let out = skopeo(&[
        "copy",
        "--dest-daemon-host",
        &host(&d),
        &copy_ref,
        "docker-daemon:copied:2",
    ]);
    assert!(out.status.success(), "copy in: {}", text(&out.stderr));
    let id = |name: &str| d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", name]);
    assert_eq!(
        id("copied:2"),
        id("bb:1"),
        "the round trip keeps the image id"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "copied:2", "echo", "ran"]),
        "ran\n"
    );
    d.stop();
}
