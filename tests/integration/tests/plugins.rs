//! Managed plugins through the docker CLI and the API: `plugin create`
//! from a directory, `ls` with filters, `inspect` in docker's shape,
//! `set` within what the config allows, `rm`; enabling one is refused by
//! name (berthd keeps plugins but does not run them). Hostile and broken
//! contexts are refused without leaving anything behind, and what a
//! daemon killed mid-create leaves is swept at start-up. A plugin's
//! privileges are read from its config in a (loopback) registry.

use std::path::Path;
use std::process::{Command, Stdio};

use berth_integration::daemon::{has_docker, Berthd, LoopbackRegistry};
use berth_integration::{require_root, tarball, text};
use serde_json::Value;

/// A plugin directory as `docker plugin create` takes it: config.json in
/// the documented lower camel case, a rootfs with a file and a symlink.
fn plugin_dir(at: &Path) {
    std::fs::create_dir_all(at.join("rootfs/bin")).unwrap();
    std::fs::write(at.join("rootfs/bin/driver"), b"#!/bin/sh\n").unwrap();
    std::os::unix::fs::symlink("driver", at.join("rootfs/bin/link")).unwrap();
    std::fs::write(
        at.join("config.json"),
        br#"{
            "description": "a test volume driver",
            "documentation": "https://example.com/doc",
            "entrypoint": ["/bin/driver", "--serve"],
            "interface": {"types": ["docker.volumedriver/1.0"], "socket": "drv.sock"},
            "network": {"type": "host"},
            "propagatedMount": "/data",
            "mounts": [{"name": "state", "settable": ["source"], "source": "/var/lib/drv",
                        "destination": "/state", "type": "bind", "options": ["rbind"]}],
            "env": [{"name": "DEBUG", "settable": ["value"], "value": "0"},
                    {"name": "MODE", "value": "fixed"}]
        }"#,
    )
    .unwrap();
}

fn inspect(d: &Berthd, name: &str) -> Value {
    let out = d.docker_ok(&["plugin", "inspect", name]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect: {e}: {out}"));
    v[0].clone()
}

fn fails(d: &Berthd, args: &[&str], needle: &str) {
    let out = d.docker(args);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "docker {args:?} succeeded");
    assert!(
        err.contains(needle),
        "docker {args:?}: {err:?} lacks {needle:?}"
    );
}

/// Entries of `<data-root>/plugins` (plugin ids and staging dirs).
fn plugin_dirs(d: &Berthd) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(d.data_root.join("plugins"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn plugins_are_created_listed_inspected_set_and_removed() {
    if !require_root() || !has_docker() {
        return;
    }
    let d = Berthd::start(&[]);
    let src = d.dir.path().join("plugin-src");
    plugin_dir(&src);
    let src = src.to_str().unwrap();
    d.docker_ok(&["plugin", "create", "example/drv", src]);
    fails(
        &d,
        &["plugin", "create", "example/drv:latest", src],
        "already exists",
    );

    let p = inspect(&d, "example/drv");
    let id = p["Id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64);
    assert_eq!(p["Name"], "example/drv:latest");
    assert_eq!(p["PluginReference"], "docker.io/example/drv:latest");
    assert_eq!(p["Enabled"], false);
    let c = &p["Config"];
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/bin/driver", "--serve"])
    );
    assert_eq!(c["Interface"]["Types"][0], "docker.volumedriver/1.0");
    assert_eq!(c["PropagatedMount"], "/data");
    assert_eq!(c["Network"]["Type"], "host");
    let diff_id = c["rootfs"]["diff_ids"][0].as_str().unwrap();
    assert!(
        diff_id.starts_with("sha256:") && diff_id.len() == 71,
        "{diff_id}"
    );
    assert_eq!(
        p["Settings"]["Env"],
        serde_json::json!(["DEBUG=0", "MODE=fixed"])
    );
    assert_eq!(p["Settings"]["Mounts"][0]["Source"], "/var/lib/drv");
    // By id prefix too, and the files are where the id says.
    assert_eq!(inspect(&d, &id[..12])["Name"], "example/drv:latest");
    let rootfs = d.data_root.join("plugins").join(&id).join("rootfs");
    assert_eq!(
        std::fs::read(rootfs.join("bin/driver")).unwrap(),
        b"#!/bin/sh\n"
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("bin/link")).unwrap(),
        Path::new("driver")
    );

    let ls = d.docker_ok(&["plugin", "ls", "--format", "{{.Name}} {{.Enabled}}"]);
    assert_eq!(ls.trim(), "example/drv:latest false");
    let names = |filter: &str| d.docker_ok(&["plugin", "ls", "-q", "--filter", filter]);
    assert_eq!(names("capability=volumedriver").trim(), &id[..12]);
    assert_eq!(names("capability=authz").trim(), "");
    assert_eq!(names("enabled=true").trim(), "");
    assert_eq!(names("enabled=false").trim(), &id[..12]);
    d.api_error(
        "GET",
        "/plugins?filters=%7B%22color%22%3A%5B%22x%22%5D%7D",
        None,
        400,
        "color",
    );

    d.docker_ok(&[
        "plugin",
        "set",
        "example/drv",
        "DEBUG=1",
        "state.source=/srv/drv",
    ]);
    let s = &inspect(&d, "example/drv")["Settings"];
    assert_eq!(s["Env"], serde_json::json!(["DEBUG=1", "MODE=fixed"]));
    assert_eq!(s["Mounts"][0]["Source"], "/srv/drv");
    fails(
        &d,
        &["plugin", "set", "example/drv", "DEBUG=2", "MODE=x"],
        "\"MODE\" is not settable",
    );
    fails(
        &d,
        &["plugin", "set", "example/drv", "NOPE=1"],
        "not found in the plugin configuration",
    );
    assert_eq!(inspect(&d, "example/drv")["Settings"]["Env"][0], "DEBUG=1");

    fails(
        &d,
        &["plugin", "enable", "example/drv"],
        "does not run them",
    );
    fails(
        &d,
        &["plugin", "disable", "example/drv"],
        "already disabled",
    );
    fails(&d, &["plugin", "inspect", "example/other"], "not found");
    d.api_error(
        "POST",
        "/plugins/pull?remote=example/drv",
        None,
        501,
        "/plugins/pull",
    );

    d.docker_ok(&["plugin", "rm", "example/drv"]);
    fails(&d, &["plugin", "inspect", "example/drv"], "not found");
    assert!(plugin_dirs(&d).is_empty(), "{:?}", plugin_dirs(&d));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let now = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
    let type_plugin = "%7B%22type%22%3A%5B%22plugin%22%5D%7D";
    let (status, events) = d.api(
        "GET",
        &format!("/events?since=0&until={now}&filters={type_plugin}"),
        None,
    );
    assert_eq!(status, 200);
    let actions: Vec<String> = text(&events)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["Action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(actions, ["create", "remove"]);
    d.stop();
}

#[test]
fn bad_plugin_contexts_are_refused_and_leave_nothing() {
    if !require_root() {
        return;
    }
    let mut d = Berthd::start(&[]);
    let config = br#"{"entrypoint": ["/x"], "interface": {"types": ["docker.authz/1.0"], "socket": "a.sock"}}"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "escape",
            {
                let mut t = Vec::new();
                tarball::entry(&mut t, "config.json", b'0', "", config);
                tarball::entry(&mut t, "rootfs/", b'5', "", b"");
                tarball::entry(&mut t, "rootfs/../../../escaped", b'0', "", b"x");
                tarball::end(&mut t);
                t
            },
            "invalid plugin context",
        ),
        (
            "no config",
            {
                let mut t = Vec::new();
                tarball::entry(&mut t, "rootfs/", b'5', "", b"");
                tarball::end(&mut t);
                t
            },
            "no config.json",
        ),
        (
            "bad config",
            {
                let mut t = Vec::new();
                tarball::entry(&mut t, "config.json", b'0', "", b"{\"entrypoint\": 1}");
                tarball::entry(&mut t, "rootfs/", b'5', "", b"");
                tarball::end(&mut t);
                t
            },
            "config.json",
        ),
        (
            "no rootfs",
            {
                let mut t = Vec::new();
                tarball::entry(&mut t, "config.json", b'0', "", config);
                tarball::end(&mut t);
                t
            },
            "no rootfs directory",
        ),
        ("not a tar", b"hello".repeat(200), "invalid plugin context"),
    ];
    for (what, body, needle) in &cases {
        d.api_error(
            "POST",
            "/plugins/create?name=bad/one",
            Some(body),
            400,
            needle,
        );
        assert!(plugin_dirs(&d).is_empty(), "{what}: {:?}", plugin_dirs(&d));
    }
    assert!(!d.data_root.join("escaped").exists() && !d.dir.path().join("escaped").exists());
    d.api_error(
        "POST",
        "/plugins/create?name=Bad/Name",
        Some(b""),
        400,
        "invalid plugin name",
    );
    d.api_error("POST", "/plugins/create", Some(b""), 400, "needs a name");
    let (status, list) = d.api("GET", "/plugins", None);
    assert_eq!((status, text(&list).trim()), (200, "[]"));

    // A good one survives a kill; what a killed create or remove leaves
    // (a staging dir, a dir without a row) is swept at start-up.
    let mut good = Vec::new();
    tarball::entry(&mut good, "config.json", b'0', "", config);
    tarball::entry(&mut good, "rootfs/", b'5', "", b"");
    tarball::entry(&mut good, "rootfs/file", b'0', "", b"data");
    tarball::end(&mut good);
    let (status, body) = d.api("POST", "/plugins/create?name=good/one:2", Some(&good));
    assert_eq!(status, 204, "{}", text(&body));
    let plugins = d.data_root.join("plugins");
    std::fs::create_dir_all(plugins.join(".create-0123/rootfs")).unwrap();
    std::fs::create_dir_all(plugins.join("f".repeat(64)).join("rootfs")).unwrap();
    d.restart();
    let (status, list) = d.api("GET", "/plugins", None);
    assert_eq!(status, 200);
    let list: Value = serde_json::from_slice(&list).unwrap();
    let id = list[0]["Id"].as_str().unwrap().to_owned();
    assert_eq!(
        (list.as_array().unwrap().len(), list[0]["Name"].as_str()),
        (1, Some("good/one:2"))
    );
    assert_eq!(plugin_dirs(&d), std::slice::from_ref(&id));
    assert_eq!(
        std::fs::read(plugins.join(&id).join("rootfs/file")).unwrap(),
        b"data"
    );
    let (status, _) = d.api("DELETE", &format!("/plugins/{}", &id[..8]), None);
    assert_eq!(status, 200);
    assert!(plugin_dirs(&d).is_empty());
    d.stop();
}

/// Uploads `bytes` as a blob of `repo` on the loopback registry `reg`
/// (the Distribution API's POST then PUT); returns its digest.
fn push_blob(reg: &str, repo: &str, bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
    let out = Command::new("curl")
        .args(["-sS", "-i", "-X", "POST"])
        .arg(format!("http://{reg}/v2/{repo}/blobs/uploads/"))
        .output()
        .expect("curl");
    let head = text(&out.stdout);
    let location = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or(l.strip_prefix("location: "))
        })
        .unwrap_or_else(|| panic!("no upload location: {head}"))
        .trim()
        .to_string();
    let location = if location.starts_with('/') {
        format!("http://{reg}{location}")
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    curl_put(
        &format!("{location}{sep}digest={digest}"),
        "application/octet-stream",
        bytes,
    );
    digest
}

/// `PUT url` with `body`; panics unless the registry answers 201.
fn curl_put(url: &str, content_type: &str, body: &[u8]) {
    use std::io::Write;
    let mut child = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
        .args(["-H", &format!("Content-Type: {content_type}")])
        .args(["--data-binary", "@-", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "201", "PUT {url}");
}

/// Pushes a manifest of `repo:tag` with `config` (of `config_type`) and
/// one small layer.
fn push_artifact(reg: &str, repo: &str, tag: &str, config_type: &str, config: &[u8]) {
    let config_digest = push_blob(reg, repo, config);
    let layer = b"not read by anything here";
    let layer_digest = push_blob(reg, repo, layer);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": config_type, "size": config.len(), "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": layer.len(), "digest": layer_digest}],
    });
    curl_put(
        &format!("http://{reg}/v2/{repo}/manifests/{tag}"),
        "application/vnd.docker.distribution.manifest.v2+json",
        manifest.to_string().as_bytes(),
    );
}

#[test]
fn privileges_are_read_from_a_plugins_config_in_the_registry() {
    if !require_root() {
        return;
    }
    let Some(registry) = LoopbackRegistry::start() else {
        return;
    };
    let reg = registry.addr.to_string();
    // As `docker plugin push` stores it: Go's field names.
    let config = br#"{"Description": "sshfs", "Entrypoint": ["/sshfs"],
        "Interface": {"Types": ["docker.volumedriver/1.0"], "Socket": "sshfs.sock"},
        "Network": {"Type": "host"}, "IpcHost": true,
        "Mounts": [{"Name": "state", "Source": "/var/lib/sshfs", "Destination": "/state", "Type": "bind"},
                   {"Destination": "/mnt", "Type": "tmpfs"}],
        "Linux": {"Capabilities": ["CAP_SYS_ADMIN"], "AllowAllDevices": true,
                  "Devices": [{"Path": "/dev/fuse"}]}}"#;
    push_artifact(
        &reg,
        "test/sshfs",
        "1",
        "application/vnd.docker.plugin.v1+json",
        config,
    );
    push_artifact(
        &reg,
        "test/image",
        "1",
        "application/vnd.docker.container.image.v1+json",
        br#"{"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}"#,
    );
    let d = Berthd::start(&[]);
    let ask = |remote: &str| {
        let (status, body) = d.api("GET", &format!("/plugins/privileges?remote={remote}"), None);
        (status, serde_json::from_slice::<Value>(&body).unwrap())
    };
    let (status, list) = ask(&format!("{reg}/test/sshfs:1"));
    assert_eq!(status, 200, "{list}");
    let pairs: Vec<(String, Value)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["Name"].as_str().unwrap().to_string(), p["Value"].clone()))
        .collect();
    let v = |s: &[&str]| serde_json::json!(s);
    assert_eq!(
        pairs,
        [
            ("network".to_string(), v(&["host"])),
            ("host ipc namespace".to_string(), v(&["true"])),
            ("mount".to_string(), v(&["/var/lib/sshfs"])),
            ("device".to_string(), v(&["/dev/fuse"])),
            ("allow-all-devices".to_string(), v(&["true"])),
            ("capabilities".to_string(), v(&["CAP_SYS_ADMIN"])),
        ]
    );
    assert_eq!(list[0]["Description"], "permissions to access a network");
    // An image is not a plugin.
    let (status, err) = ask(&format!("{reg}/test/image:1"));
    assert_eq!(status, 400, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("not a plugin"),
        "{err}"
    );
    // What cannot be fetched has none, as dockerd answers (moby's
    // Privileges ignores its fetch's error): an unknown name, a registry
    // that does not answer.
    for remote in [format!("{reg}/test/nothing:1"), "127.0.0.1:1/x/y:1".into()] {
        assert_eq!(ask(&remote), (200, serde_json::json!([])), "{remote}");
    }
    let (status, err) = ask("");
    assert_eq!(status, 400, "{err}");
    d.stop();
}
