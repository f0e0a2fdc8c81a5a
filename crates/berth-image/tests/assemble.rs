//! `assemble`: what a pull does once the blobs are in the content store.

mod common;

use std::fs;

use berth_archive::{ApplyOptions, Compression};
use berth_image::manifest::media_type;
use berth_image::{
    assemble, AssembleError, ContentStore, Descriptor, Digest, LayerStore, Manifest,
};
use common::{compress, layer_tar};

/// Stores a two-layer image's blobs as a pull would and returns its manifest.
fn pulled(content: &ContentStore, diff_ids_override: Option<Vec<Digest>>) -> Manifest {
    let (l1, d1) = layer_tar(&[("base", b"base")]);
    let (l2, d2) = layer_tar(&[("top", b"top")]);
    let mut layers = Vec::new();
    for (tar, c, mt) in [
        (l1, Compression::Gzip, media_type::DOCKER_LAYER_GZIP),
        (l2, Compression::Zstd, media_type::OCI_LAYER_ZSTD),
    ] {
        let blob = compress(&tar, c);
        let committed = content.write_blob(&blob).unwrap();
        layers.push(Descriptor::new(mt, committed.digest, committed.size));
    }
    let diff_ids = diff_ids_override.unwrap_or(vec![d1, d2]);
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        ids.join(",")
    );
    let c = content.write_blob(config.as_bytes()).unwrap();
    Manifest {
        schema_version: 2,
        media_type: Some(media_type::DOCKER_MANIFEST.to_owned()),
        artifact_type: None,
        config: Descriptor::new(media_type::DOCKER_CONFIG, c.digest, c.size),
        layers,
        subject: None,
        annotations: Default::default(),
    }
}

#[test]
fn assembles_a_pulled_image() {
    let root = tempfile::tempdir().unwrap();
    let content = ContentStore::open(root.path()).unwrap();
    let layers = LayerStore::open(root.path()).unwrap();
    let m = pulled(&content, None);
    let md = content.write_blob(&m.to_json()).unwrap().digest;
    let image = assemble(
        &content,
        &layers,
        m.clone(),
        md.clone(),
        &ApplyOptions::default(),
    )
    .unwrap();
    assert_eq!(image.id, m.config.digest);
    assert_eq!(image.manifest_digest, md);
    assert_eq!(image.manifest_media_type, media_type::DOCKER_MANIFEST);
    assert_eq!(image.layers.len(), 2);
    assert_eq!(
        fs::read(layers.diff_path(&image.layers[1].chain_id).join("top")).unwrap(),
        b"top"
    );
    assert_eq!(image.size(), 7);
    // A second assemble finds the layers unpacked.
    let again = assemble(&content, &layers, m, md, &ApplyOptions::default()).unwrap();
    assert_eq!(again, image);
    assert_eq!(layers.list().unwrap().len(), 2);
}

#[test]
fn missing_blobs_and_inconsistent_configs_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let content = ContentStore::open(root.path()).unwrap();
    let layers = LayerStore::open(root.path()).unwrap();
    let m = pulled(&content, None);
    content.delete(&m.layers[1].digest).unwrap();
    let err = assemble(
        &content,
        &layers,
        m.clone(),
        Digest::sha256_of(b"m"),
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            AssembleError::MissingBlob {
                what: "layer blob",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        layers.list().unwrap().is_empty(),
        "nothing is unpacked when a blob is missing"
    );

    let m = pulled(&content, Some(vec![Digest::sha256_of(b"only one")]));
    let err = assemble(
        &content,
        &layers,
        m,
        Digest::sha256_of(b"m"),
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            AssembleError::LayerCount {
                layers: 2,
                diff_ids: 1,
                ..
            }
        ),
        "{err}"
    );

    let (_, d1) = layer_tar(&[("base", b"base")]);
    let m = pulled(&content, Some(vec![d1, Digest::sha256_of(b"wrong")]));
    let err = assemble(
        &content,
        &layers,
        m,
        Digest::sha256_of(b"m"),
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, AssembleError::Layer(_)), "{err}");
    assert_eq!(
        layers.list().unwrap().len(),
        1,
        "the good base layer is kept for the next try; the bad one is not"
    );
}
