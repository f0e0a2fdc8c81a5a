//! `docker commit` through berthd with the real docker CLI: the committed
//! image runs with the container's changes (added files, a deleted image
//! file carried as a whiteout, a replaced directory as an opaque one), its
//! config has the `--change`s merged over the container's, `history` and
//! `inspect` show the new layer and the parent, and `save`/`load` carry it.

use berth_integration::daemon::{has_docker, Berthd};
use berth_integration::{require_root, text};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// The names in a tar file's member `member` of archive `tar`.
fn tar_names(d: &Berthd, tar: &str, member: &str) -> String {
    d.sh_ok(&format!("tar -xOf {tar} {member} | tar -t"))
}

#[test]
fn commit_makes_an_image_of_the_changes() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let base = d.inspect("bb:1");
    d.docker_ok(&[
        "run",
        "--name",
        "changer",
        "bb:1",
        "sh",
        "-c",
        "echo hi > /f && rm /bin/vi && rm -r /usr && mkdir -p /usr/x",
    ]);
    let id = d.docker_ok(&[
        "commit",
        "-c",
        r#"CMD ["cat","/f"]"#,
        "-c",
        "ENV A=1",
        "-c",
        "EXPOSE 8000",
        "-c",
        "ONBUILD run echo later",
        "-m",
        "a message",
        "-a",
        "someone",
        "changer",
        "img:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");

    // It runs, with the changes.
    assert_eq!(d.docker_ok(&["run", "--rm", "img:1"]), "hi\n");
    let probe = "for p in /bin/vi /usr/bin /usr/x /bin/ls; do test -e $p && echo $p; done";
    assert_eq!(
        d.docker_ok(&["run", "--rm", "img:1", "sh", "-c", probe]),
        "/usr/x\n/bin/ls\n",
        "the deleted file and the replaced directory's old content are gone"
    );

    let img = d.inspect("img:1");
    assert_eq!(img["Id"], id.trim());
    assert_eq!(img["Parent"], base["Id"]);
    assert_eq!(img["Comment"], "a message");
    assert_eq!(img["Author"], "someone");
    assert_eq!(img["Container"], d.inspect("changer")["Id"]);
    assert_eq!(img["Config"]["Cmd"], json(r#"["cat","/f"]"#));
    assert_eq!(img["Config"]["OnBuild"], json(r#"["RUN echo later"]"#));
    assert!(
        img["Config"]["ExposedPorts"]["8000/tcp"].is_object(),
        "{img}"
    );
    let env = img["Config"]["Env"].as_array().unwrap();
    assert!(env.contains(&json(r#""A=1""#)), "{img}");
    let layers = img["RootFS"]["Layers"].as_array().unwrap();
    let base_layers = base["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), base_layers.len() + 1);
    assert_eq!(&layers[..base_layers.len()], &base_layers[..]);

    // history: the new layer on top, made by the container's command.
    let history = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
        "img:1",
    ]);
    let top = history.lines().next().unwrap();
    assert!(top.starts_with(id.trim()), "{history}");
    assert!(top.contains("sh -c echo hi > /f"), "{history}");
    assert!(top.ends_with("|a message"), "{history}");
    assert_eq!(history.lines().count(), 2, "{history}");

    // save: the layer tar has docker's whiteouts; load brings it back.
    let tar = d.dir.path().join("img.tar");
    let tar = tar.to_str().unwrap();
    d.docker_ok(&["save", "-o", tar, "img:1"]);
    let manifest = json(&d.sh_ok(&format!("tar -xOf {tar} manifest.json")));
    let top_layer = manifest[0]["Layers"].as_array().unwrap().last().unwrap();
    let names = tar_names(&d, tar, top_layer.as_str().unwrap());
    for entry in ["f", "bin/.wh.vi", "usr/", "usr/.wh..wh..opq", "usr/x/"] {
        assert!(
            names.lines().any(|l| l == entry),
            "{entry} not in:\n{names}"
        );
    }
    for mount_point in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
        assert!(!names.lines().any(|l| l == mount_point), "{names}");
    }
    d.docker_ok(&["rmi", "img:1"]);
    d.docker_ok(&["load", "-i", tar]);
    assert_eq!(d.docker_ok(&["run", "--rm", "img:1"]), "hi\n");

    d.docker_ok(&["rm", "changer"]);
    d.docker_ok(&["rmi", "img:1"]);
    d.stop();
}

#[test]
fn commit_of_a_running_container_and_of_no_changes() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let base = d.inspect("bb:1");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "runner",
        "bb:1",
        "sh",
        "-c",
        "echo up > /up; sleep 60",
    ]);
    berth_integration::eventually(10, "the file is written", || {
        d.docker(&["exec", "runner", "cat", "/up"]).status.success()
    });
    // Paused during the commit (the default), running again after.
    d.docker_ok(&["commit", "runner", "img:run"]);
    assert_eq!(d.inspect("runner")["State"]["Status"], "running");
    let now = berth_integration::unix_secs() + 1;
    let events = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &now.to_string(),
        "--filter",
        "container=runner",
        "--format",
        "{{.Action}}",
    ]);
    assert!(events.contains("pause\nunpause\ncommit"), "{events}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "img:run", "cat", "/up"]),
        "up\n"
    );
    // The container's Cmd comes along when the commit sets none.
    let img = d.inspect("img:run");
    assert_eq!(
        img["Config"]["Cmd"],
        json(r#"["sh","-c","echo up > /up; sleep 60"]"#)
    );
    // --pause=false leaves it running throughout.
    d.docker_ok(&["commit", "--pause=false", "runner", "img:nopause"]);

    // No changes: no new layer, only a history entry.
    d.docker_ok(&["run", "--name", "same", "bb:1", "true"]);
    let (status, body) = d.api("POST", "/commit?container=same", Some(b"{}"));
    assert_eq!(status, 201, "{}", text(&body));
    let id = json(&text(&body))["Id"].as_str().unwrap().to_string();
    let img = d.inspect(&id);
    assert_eq!(img["RootFS"]["Layers"], base["RootFS"]["Layers"]);
    assert_eq!(img["Parent"], base["Id"]);

    // What the client gets wrong.
    let (status, body) = d.api("POST", "/commit?container=nope", None);
    assert_eq!(status, 404, "{}", text(&body));
    let (status, body) = d.api("POST", "/commit?container=same&changes=RUN+rm+-rf+/", None);
    assert_eq!(status, 400, "{}", text(&body));
    let (status, body) = d.api("POST", "/commit?container=same&repo=Bad:Name", None);
    assert_eq!(status, 400, "{}", text(&body));

    d.docker_ok(&["rm", "-f", "runner", "same"]);
    d.docker_ok(&["rmi", "img:run", "img:nopause", &id]);
    d.stop();
}
