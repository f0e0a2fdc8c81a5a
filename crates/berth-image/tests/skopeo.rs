//! Interoperability with skopeo (containers/image): skopeo reads the
//! archives berth saves, and berth loads the OCI and docker archives skopeo
//! writes. Debian's skopeo is installed when missing, as the registry
//! tests install docker-registry.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use berth_archive::Compression;
use berth_image::{
    import, load, save, ContentStore, ImportOptions, LayerStore, LoadOptions, Reference, SaveItem,
};
use common::{compress, layer_tar};

fn ensure_skopeo() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if Command::new("skopeo")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return;
        }
        for args in [
            &["update", "-qq"][..],
            &["install", "-y", "-qq", "skopeo"][..],
        ] {
            let st = Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .expect("running apt-get");
            assert!(st.success(), "apt-get {args:?} failed");
        }
    });
}

/// Runs skopeo with a policy that accepts anything (these are local files).
fn skopeo(dir: &Path, args: &[&str]) -> String {
    let policy = dir.join("policy.json");
    fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(&policy)
        .args(args)
        .env("TMPDIR", dir)
        .output()
        .expect("running skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn skopeo_reads_what_berth_saves_and_berth_loads_what_skopeo_writes() {
    ensure_skopeo();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src_root = w.join("src");
    let (content, layers) = (
        ContentStore::open(&src_root).unwrap(),
        LayerStore::open(&src_root).unwrap(),
    );
    let (tar, _) = layer_tar(&[
        ("bin/hello", b"#!/bin/sh\necho hello\n"),
        ("etc/motd", b"berth\n"),
    ]);
    let opts = ImportOptions {
        changes: vec!["CMD [\"/bin/hello\"]".to_owned()],
        ..ImportOptions::default()
    };
    let image = import(
        &content,
        &layers,
        &compress(&tar, Compression::Gzip)[..],
        &opts,
    )
    .unwrap();

    let saved = w.join("saved.tar");
    let tag = Reference::parse("localhost/berth/app:1").unwrap();
    let item = SaveItem {
        manifest_digest: image.manifest_digest.clone(),
        tags: vec![tag],
    };
    save(&content, &[item], fs::File::create(&saved).unwrap()).unwrap();

    // skopeo understands berth's docker-archive and finds the same config.
    let config = skopeo(
        w,
        &[
            "inspect",
            "--config",
            &format!("docker-archive:{}", saved.display()),
        ],
    );
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["config"]["Cmd"][0], "/bin/hello");

    // skopeo converts it to an OCI archive, and that to a docker-archive
    // of its own making; berth loads both back.
    let oci = w.join("oci.tar");
    let docker = w.join("docker.tar");
    skopeo(
        w,
        &[
            "copy",
            &format!("docker-archive:{}:localhost/berth/app:1", saved.display()),
            &format!("oci-archive:{}:example.com/app:2", oci.display()),
        ],
    );
    skopeo(
        w,
        &[
            "copy",
            &format!("oci-archive:{}", oci.display()),
            &format!("docker-archive:{}:example.com/app:3", docker.display()),
        ],
    );
    for (archive, name) in [(&oci, "example.com/app:2"), (&docker, "example.com/app:3")] {
        let dst_root = w.join(format!("dst-{name}").replace(['/', ':'], "_"));
        let (c, l) = (
            ContentStore::open(&dst_root).unwrap(),
            LayerStore::open(&dst_root).unwrap(),
        );
        let loaded = load(
            &c,
            &l,
            fs::File::open(archive).unwrap(),
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(loaded.len(), 1, "{name}");
        // skopeo rewrites the config into OCI form (a new image id), but
        // what it says and the layers' content must survive.
        let cfg = &loaded[0].image.config;
        assert_eq!(cfg.rootfs.diff_ids, image.config.rootfs.diff_ids, "{name}");
        assert_eq!(
            cfg.config.as_ref().unwrap().cmd,
            Some(vec!["/bin/hello".to_owned()]),
            "{name}"
        );
        assert_eq!(loaded[0].references, vec![Reference::parse(name).unwrap()]);
        let top = &loaded[0].image.layers[0].chain_id;
        assert_eq!(
            fs::read(l.diff_path(top).join("etc/motd")).unwrap(),
            b"berth\n"
        );
    }
}
