//! Answers that follow the client's API version, as dockerd's router
//! gives them between 1.41 (what docker-py and dockerd 20.10 speak) and
//! 1.44 (berthd's newest, what a current docker CLI negotiates): the
//! ping's headers, images without names, `VirtualSize`, the kernel
//! memory fields, the stream media type, df's `type`, the fields create
//! drops or refuses, the container-wide MAC address, a user network's
//! names, and recursively read-only binds.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use berth_integration::daemon::Berthd;
use berth_integration::{require_root, text};

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(body)))
}

/// A GET's response headers (lower-cased names) and body.
fn get_with_headers(d: &Berthd, path: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let mut s = UnixStream::connect(&d.socket).expect("connecting to berthd");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head")
        + 4;
    let head = text(&got[..end]);
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (headers, got[end..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Creates a container at API `version`; returns the response's status
/// and body.
fn create(d: &Berthd, version: &str, name: &str, body: serde_json::Value) -> (u16, Vec<u8>) {
    d.api(
        "POST",
        &format!("/v{version}/containers/create?name={name}"),
        Some(&serde_json::to_vec(&body).unwrap()),
    )
}

fn created(d: &Berthd, version: &str, name: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, out) = create(d, version, name, body);
    assert_eq!(status, 201, "create {name} at {version}: {}", text(&out));
    json(&out)
}

#[test]
fn answers_follow_the_clients_api_version() {
    if !require_root() {
        return;
    }
    let d = Berthd::with_busybox(&[]);

    // The ping advises the classic builder and says no swarm, at any
    // version; the version is the newest berthd speaks.
    let (headers, _) = get_with_headers(&d, "/_ping");
    assert_eq!(header(&headers, "api-version"), Some("1.44"), "{headers:?}");
    assert_eq!(
        header(&headers, "builder-version"),
        Some("1"),
        "{headers:?}"
    );
    assert_eq!(header(&headers, "swarm"), Some("inactive"), "{headers:?}");
    let (_, body) = d.api("GET", "/version", None);
    assert_eq!(json(&body)["ApiVersion"], "1.44");
    d.api_error(
        "GET",
        "/v1.45/version",
        None,
        400,
        "Maximum supported API version is 1.44",
    );

    // An image without names: docker's placeholders before 1.43, and
    // VirtualSize before 1.44.
    d.docker_ok(&["create", "--name", "src", "bb:1", "true"]);
    let (status, body) = d.api("POST", "/commit?container=src", Some(b"{}"));
    assert_eq!(status, 201, "{}", text(&body));
    let unnamed = json(&body)["Id"].as_str().unwrap().to_string();
    let listed = |version: &str| -> serde_json::Value {
        let (_, body) = d.api("GET", &format!("/v{version}/images/json"), None);
        json(&body)
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["Id"] == unnamed.as_str())
            .cloned()
            .expect("the committed image is listed")
    };
    let old = listed("1.41");
    assert_eq!(
        old["RepoTags"],
        serde_json::json!(["<none>:<none>"]),
        "{old}"
    );
    assert_eq!(
        old["RepoDigests"],
        serde_json::json!(["<none>@<none>"]),
        "{old}"
    );
    assert_eq!(old["VirtualSize"], old["Size"], "{old}");
    let v43 = listed("1.43");
    assert_eq!(v43["RepoTags"], serde_json::json!([]), "{v43}");
    assert_eq!(v43["VirtualSize"], v43["Size"], "{v43}");
    let new = listed("1.44");
    assert!(new.get("VirtualSize").is_none(), "{new}");
    // shared-size from 1.42: the committed image shares bb:1's layers.
    let (_, body) = d.api("GET", "/v1.44/images/json?shared-size=1", None);
    let shared = json(&body)
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["Id"] == unnamed.as_str())
        .map(|i| i["SharedSize"].as_i64().unwrap())
        .unwrap();
    assert!(shared > 0, "{}", text(&body));
    assert_eq!(listed("1.41")["SharedSize"], -1);
    let (_, body) = d.api("GET", "/v1.41/images/bb:1/json", None);
    let inspect = json(&body);
    assert_eq!(inspect["VirtualSize"], inspect["Size"], "{inspect}");
    let (_, body) = d.api("GET", "/v1.44/images/bb:1/json", None);
    assert!(json(&body).get("VirtualSize").is_none());

    // Kernel memory limits: 0 before 1.42, left out after.
    let (_, body) = d.api("GET", "/v1.41/containers/src/json", None);
    assert_eq!(json(&body)["HostConfig"]["KernelMemory"], 0);
    let (_, body) = d.api("GET", "/v1.44/containers/src/json", None);
    assert!(json(&body)["HostConfig"].get("KernelMemory").is_none());

    // The log stream's media type names the multiplexed stream from 1.42.
    d.docker_ok(&["start", "-a", "src"]);
    let logs = |version: &str| {
        let path = format!("/v{version}/containers/src/logs?stdout=1");
        let (headers, _) = get_with_headers(&d, &path);
        header(&headers, "content-type")
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(logs("1.41"), "application/vnd.docker.raw-stream");
    assert_eq!(logs("1.42"), "application/vnd.docker.multiplexed-stream");

    // df's `type` (1.42): only what was asked; before, all of it.
    let (_, body) = d.api("GET", "/v1.44/system/df?type=image", None);
    let df = json(&body);
    assert!(
        df["Images"].is_array() && df["Containers"].is_null(),
        "{df}"
    );
    assert!(df.get("BuilderSize").is_none(), "{df}");
    let (_, body) = d.api("GET", "/v1.41/system/df?type=image", None);
    let df = json(&body);
    assert!(
        df["Containers"].is_array() && df["BuilderSize"] == 0,
        "{df}"
    );
    d.api_error(
        "GET",
        "/v1.44/system/df?type=bogus",
        None,
        400,
        "unknown object type: bogus",
    );

    // Create: fields newer than the client's version are dropped...
    let with_annotations = serde_json::json!({
        "Image": "bb:1", "Cmd": ["true"], "HostConfig": {"Annotations": {"org.example": "x"}}
    });
    created(&d, "1.42", "a42", with_annotations.clone());
    created(&d, "1.43", "a43", with_annotations);
    assert!(d.inspect("a42")["HostConfig"]["Annotations"].is_null());
    assert_eq!(
        d.inspect("a43")["HostConfig"]["Annotations"]["org.example"],
        "x"
    );
    // ...what they cannot mean is refused...
    let two_networks = serde_json::json!({
        "Image": "bb:1",
        "NetworkingConfig": {"EndpointsConfig": {"bridge": {}, "other": {}}}
    });
    let (status, body) = create(&d, "1.43", "two", two_networks);
    assert_eq!(status, 400, "{}", text(&body));
    assert!(
        text(&body).contains("cannot be created with multiple network endpoints"),
        "{}",
        text(&body)
    );
    // ...and the container-wide MAC address is deprecated from 1.44.
    let mac = serde_json::json!({"Image": "bb:1", "MacAddress": "02:42:ac:11:00:33"});
    assert_eq!(
        created(&d, "1.41", "mac41", mac.clone())["Warnings"],
        serde_json::json!([])
    );
    let warnings = created(&d, "1.44", "mac44", mac)["Warnings"].to_string();
    assert!(
        warnings.contains("MacAddress field is now deprecated"),
        "{warnings}"
    );
    for name in ["mac41", "mac44"] {
        let ep = &d.inspect(name)["NetworkSettings"]["Networks"]["bridge"];
        assert_eq!(ep["MacAddress"], "02:42:ac:11:00:33", "{name}: {ep}");
    }

    // On a user-defined network, a connected container's entry lists its
    // names: the aliases with its short id and hostname, and DNSNames.
    d.docker_ok(&["network", "create", "apiv"]);
    let body = serde_json::json!({
        "Image": "bb:1", "Cmd": ["sleep", "60"], "Hostname": "hh",
        "HostConfig": {"NetworkMode": "apiv"},
        "NetworkingConfig": {"EndpointsConfig": {"apiv": {"Aliases": ["web"]}}}
    });
    let id = created(&d, "1.44", "named", body)["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let entry = || d.inspect("named")["NetworkSettings"]["Networks"]["apiv"].clone();
    assert_eq!(
        entry()["Aliases"],
        serde_json::json!(["web"]),
        "before start"
    );
    d.docker_ok(&["start", "named"]);
    let short = &id[..12];
    assert_eq!(entry()["Aliases"], serde_json::json!(["web", short, "hh"]));
    assert_eq!(
        entry()["DNSNames"],
        serde_json::json!(["named", "web", short, "hh"])
    );
    d.docker_ok(&["rm", "-f", "named"]);
    d.docker_ok(&["network", "rm", "apiv"]);

    // berth's CLI sends annotations from 1.43 and refuses them, as
    // docker's CLI does, to a daemon (here: a pinned version) before it.
    let berth = |version: Option<&str>| {
        let mut cmd = std::process::Command::new(berth_integration::runtime::berth_binary("berth"));
        cmd.args(["-H", &format!("unix://{}", d.socket.display())])
            .args([
                "run",
                "--rm",
                "--annotation",
                "org.example=y",
                "bb:1",
                "true",
            ])
            .env_remove("DOCKER_HOST")
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_API_VERSION");
        if let Some(v) = version {
            cmd.env("DOCKER_API_VERSION", v);
        }
        cmd.output().expect("running berth")
    };
    let out = berth(None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = berth(Some("1.42"));
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains(
            "\"--annotation\" requires API version 1.43, but the Docker daemon API version is 1.42"
        ),
        "{}",
        text(&out.stderr)
    );

    d.docker_ok(&["rm", "src", "a42", "a43", "mac41", "mac44"]);
    d.docker_ok(&["rmi", &unnamed]);
    d.stop();
}

/// A read-only bind of a directory with a mount inside it: the submount
/// stays writable for a container created at 1.43 (the top mount only, as
/// docker's older API made it), and is read-only too from 1.44, unless
/// the bind asks for the top mount only.
#[test]
fn read_only_binds_cover_their_submounts_from_api_1_44() {
    if !require_root() {
        return;
    }
    let d = Berthd::with_busybox(&[]);
    let host = d.dir.path().join("shared");
    let sub = host.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "berth-test-sub"])
        .arg(&sub)
        .status()
        .unwrap();
    assert!(mounted.success());
    let probe = "touch /x/sub/probe 2>/dev/null && echo writable || echo read-only";
    let run = |version: &str, name: &str, host_config: serde_json::Value| -> String {
        let body = serde_json::json!({
            "Image": "bb:1", "Cmd": ["sh", "-c", probe], "HostConfig": host_config
        });
        created(&d, version, name, body);
        d.docker_ok(&["start", "-a", name]).trim().to_string()
    };
    let bind = serde_json::json!({"Binds": [format!("{}:/x:ro", host.display())]});
    let top_only = serde_json::json!({"Mounts": [{
        "Type": "bind", "Source": host.display().to_string(), "Target": "/x", "ReadOnly": true,
        "BindOptions": {"ReadOnlyNonRecursive": true}
    }]});
    let results = [
        run("1.43", "old", bind.clone()),
        run("1.44", "new", bind),
        run("1.44", "top", top_only),
    ];
    let _ = std::fs::remove_file(sub.join("probe"));
    let unmounted = std::process::Command::new("umount")
        .arg(&sub)
        .status()
        .unwrap();
    assert!(unmounted.success());
    assert_eq!(results, ["writable", "read-only", "writable"]);
    d.docker_ok(&["rm", "old", "new", "top"]);
    d.stop();
}
