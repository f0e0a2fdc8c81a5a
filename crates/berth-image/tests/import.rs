//! `import` end to end: real tarballs into a real content and layer store.

mod common;

use std::fs;

use berth_archive::Compression;
use berth_image::manifest::{self, media_type, Document};
use berth_image::{
    import, ContentStore, Digest, ImageConfig, ImportError, ImportOptions, LayerStore, Platform,
};
use common::{compress, layer_tar};

fn stores() -> (tempfile::TempDir, ContentStore, LayerStore) {
    let root = tempfile::tempdir().unwrap();
    let content = ContentStore::open(root.path()).unwrap();
    let layers = LayerStore::open(root.path()).unwrap();
    (root, content, layers)
}

#[test]
fn import_with_changes_and_message() {
    let (_root, content, layers) = stores();
    let (tar, diff_id) = layer_tar(&[
        ("bin/app", b"#!/bin/sh\necho hi\n"),
        ("etc/app.conf", b"x=1\n"),
    ]);
    let gz = compress(&tar, Compression::Gzip);
    let options = ImportOptions {
        changes: [
            r#"ENTRYPOINT ["/bin/app"]"#,
            "CMD --serve",
            "ENV MODE=prod GREETING=\"hello world\"",
            "WORKDIR /srv",
            "USER 1000:1000",
            "LABEL maintainer=me",
            "EXPOSE 8080/tcp",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        message: Some("my rootfs".to_owned()),
        platform: Some(Platform::parse("linux/arm64").unwrap()),
        ..ImportOptions::default()
    };
    let image = import(&content, &layers, &gz[..], &options).unwrap();

    // The image id is the digest of the stored config blob.
    let config_bytes = content.read(&image.id, 1 << 20).unwrap();
    assert_eq!(Digest::sha256_of(&config_bytes), image.id);
    let config = ImageConfig::parse(&config_bytes).unwrap();
    assert_eq!(config, image.config);
    assert_eq!(config.platform().to_string(), "linux/arm64");
    assert_eq!(config.rootfs.diff_ids, vec![diff_id.clone()]);
    assert_eq!(config.comment.as_deref(), Some("my rootfs"));
    assert_eq!(config.history[0].comment.as_deref(), Some("my rootfs"));
    assert!(config.created.as_deref().unwrap().ends_with('Z'));
    let run = config.config.unwrap();
    assert_eq!(run.entrypoint, Some(vec!["/bin/app".to_owned()]));
    assert_eq!(
        run.cmd,
        Some(vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            "--serve".to_owned()
        ])
    );
    assert_eq!(
        run.env,
        Some(vec![
            "MODE=prod".to_owned(),
            "GREETING=hello world".to_owned()
        ])
    );
    assert_eq!(run.working_dir.as_deref(), Some("/srv"));
    assert_eq!(run.user.as_deref(), Some("1000:1000"));
    assert_eq!(run.labels.unwrap()["maintainer"], "me");
    assert!(run.exposed_ports.unwrap().contains_key("8080/tcp"));
    assert!(run.volumes.unwrap().contains_key("/data"));
    assert_eq!(run.stop_signal.as_deref(), Some("SIGINT"));

    // The layer blob is the tarball as given, described by its media type.
    let layer = &image.layers[0];
    assert_eq!(layer.blob.media_type, media_type::OCI_LAYER_GZIP);
    assert_eq!(layer.blob.digest, Digest::sha256_of(&gz));
    assert_eq!(fs::read(content.blob_path(&layer.blob.digest)).unwrap(), gz);
    assert_eq!(layer.diff_id, diff_id);
    assert_eq!(layer.chain_id, diff_id, "one layer: chain id = diff id");
    assert_eq!(
        fs::read(layers.diff_path(&layer.chain_id).join("etc/app.conf")).unwrap(),
        b"x=1\n"
    );
    assert_eq!(image.size(), 22);

    // The manifest is stored, parses, and names config and layer.
    let manifest_bytes = content
        .read(&image.manifest_digest, manifest::MAX_MANIFEST_SIZE)
        .unwrap();
    let Document::Manifest(m) =
        manifest::parse(&manifest_bytes, Some(media_type::OCI_MANIFEST)).unwrap()
    else {
        panic!("expected a manifest")
    };
    m.validate_image().unwrap();
    assert_eq!(m.config.digest, image.id);
    assert_eq!(m.layers, vec![layer.blob.clone()]);
    assert!(content.list_ingests().unwrap().is_empty());
}

#[test]
fn defaults_match_docker() {
    let (_root, content, layers) = stores();
    let (tar, _) = layer_tar(&[("f", b"f")]);
    let zst = compress(&tar, Compression::Zstd);
    let image = import(&content, &layers, &zst[..], &ImportOptions::default()).unwrap();
    assert_eq!(image.config.comment.as_deref(), Some("Imported from -"));
    assert_eq!(image.config.platform(), Platform::host());
    assert_eq!(image.layers[0].blob.media_type, media_type::OCI_LAYER_ZSTD);
    let plain = import(&content, &layers, &tar[..], &ImportOptions::default()).unwrap();
    assert_eq!(plain.layers[0].blob.media_type, media_type::OCI_LAYER);
    assert_eq!(
        plain.layers[0].chain_id, image.layers[0].chain_id,
        "the same files: one layer dir"
    );
    assert_eq!(layers.list().unwrap().len(), 1);
}

#[test]
fn bad_input_stores_nothing() {
    let (root, content, layers) = stores();
    let (tar, _) = layer_tar(&[("f", b"f")]);
    let opts = ImportOptions {
        changes: vec!["RUN true".to_owned()],
        ..ImportOptions::default()
    };
    let err = import(&content, &layers, &tar[..], &opts).unwrap_err();
    assert!(matches!(err, ImportError::Change(_)), "{err}");

    let gz = compress(&tar, Compression::Gzip);
    let err = import(
        &content,
        &layers,
        &gz[..gz.len() - 12],
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::Layer(_)), "{err}");
    let err = import(
        &content,
        &layers,
        &b"definitely not a tar archive, just text"[..],
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::Layer(_)), "{err}");

    assert!(content.list().unwrap().is_empty());
    assert!(content.list_ingests().unwrap().is_empty());
    assert!(layers.list().unwrap().is_empty());
    assert_eq!(
        fs::read_dir(root.path().join("layers/tmp"))
            .unwrap()
            .count(),
        0
    );
}
