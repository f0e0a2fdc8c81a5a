//! `save` and `load` with real stores: round trips, old and new
//! docker-archives, OCI layouts with nested indexes, and hostile archives.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use berth_archive::Compression;
use berth_image::manifest::media_type;
use berth_image::{
    import, load, save, ArchiveError, AssembleError, ContentStore, Digest, ImageConfig,
    ImportOptions, LayerStore, LoadOptions, Platform, Reference, SaveItem,
};
use common::{compress, layer_tar};

struct Stores {
    root: tempfile::TempDir,
    content: ContentStore,
    layers: LayerStore,
}

fn stores() -> Stores {
    let root = tempfile::tempdir().unwrap();
    Stores {
        content: ContentStore::open(root.path()).unwrap(),
        layers: LayerStore::open(root.path()).unwrap(),
        root,
    }
}

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

/// A tar of a directory tree (symlinks kept), as a test archive.
fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    berth_archive::write_tree(dir, &mut out).unwrap();
    out
}

fn entry_names(archive: &[u8]) -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let stats =
        berth_archive::apply_layer(archive, dir.path(), &berth_archive::ApplyOptions::default())
            .unwrap();
    assert!(stats.entries > 0);
    let mut names = BTreeSet::new();
    for e in fs::read_dir(dir.path()).unwrap() {
        names.insert(e.unwrap().file_name().to_string_lossy().into_owned());
    }
    names
}

#[test]
fn save_then_load_round_trips_several_images() {
    let src = stores();
    let (tar_a, _) = layer_tar(&[("bin/a", b"a\n")]);
    let (tar_b, _) = layer_tar(&[("bin/b", b"b\n")]);
    let opts = |cmd: &str| ImportOptions {
        changes: vec![format!("CMD [\"{cmd}\"]")],
        ..ImportOptions::default()
    };
    let a = import(
        &src.content,
        &src.layers,
        &compress(&tar_a, Compression::Gzip)[..],
        &opts("a"),
    )
    .unwrap();
    let b = import(&src.content, &src.layers, &tar_b[..], &opts("b")).unwrap();
    let items = vec![
        SaveItem {
            manifest_digest: a.manifest_digest.clone(),
            tags: vec![r("app:a"), r("localhost:5000/team/app:a")],
        },
        SaveItem {
            manifest_digest: b.manifest_digest.clone(),
            tags: vec![],
        },
    ];
    let archive = save(&src.content, &items, Vec::new()).unwrap();

    // The layout docker load and OCI tools expect.
    let names = entry_names(&archive);
    for n in [
        "manifest.json",
        "repositories",
        "index.json",
        "oci-layout",
        "blobs",
    ] {
        assert!(names.contains(n), "{n} missing from {names:?}");
    }

    for compressed in [false, true] {
        let dst = stores();
        let input = if compressed {
            compress(&archive, Compression::Gzip)
        } else {
            archive.clone()
        };
        let mut loaded = load(
            &dst.content,
            &dst.layers,
            &input[..],
            &LoadOptions::default(),
        )
        .unwrap();
        loaded.sort_by_key(|l| l.references.len());
        assert_eq!(loaded.len(), 2);
        let (lb, la) = (&loaded[0], &loaded[1]);
        assert_eq!(la.image.id, a.id);
        assert_eq!(lb.image.id, b.id);
        assert_eq!(
            la.image.manifest_digest, a.manifest_digest,
            "the archive's own manifest is reused"
        );
        let names: BTreeSet<String> = la.references.iter().map(|r| r.familiar()).collect();
        assert_eq!(
            names,
            ["app:a".to_owned(), "localhost:5000/team/app:a".to_owned()].into()
        );
        assert!(lb.references.is_empty());
        assert_eq!(
            fs::read(
                dst.layers
                    .diff_path(&la.image.layers[0].chain_id)
                    .join("bin/a")
            )
            .unwrap(),
            b"a\n"
        );
        assert_eq!(
            fs::read(
                dst.layers
                    .diff_path(&lb.image.layers[0].chain_id)
                    .join("bin/b")
            )
            .unwrap(),
            b"b\n"
        );
        assert_eq!(
            la.image.config_bytes,
            src.content.read(&a.id, 1 << 20).unwrap()
        );
        assert!(dst.content.list_ingests().unwrap().is_empty());
    }
}

#[test]
fn saving_an_image_without_its_blobs_names_the_missing_one() {
    let s = stores();
    let (tar, _) = layer_tar(&[("f", b"f")]);
    let img = import(&s.content, &s.layers, &tar[..], &ImportOptions::default()).unwrap();
    s.content.delete(&img.layers[0].blob.digest).unwrap();
    let err = save(
        &s.content,
        &[SaveItem {
            manifest_digest: img.manifest_digest,
            tags: vec![],
        }],
        Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(err, ArchiveError::MissingBlob { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&img.layers[0].blob.digest.to_string()),
        "{err}"
    );
}

/// An image config for hand-made archives.
fn config_json(diff_ids: &[&Digest], arch: &str) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        r#"{{"architecture":"{arch}","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        ids.join(",")
    )
    .into_bytes()
}

#[test]
fn loads_an_old_style_docker_archive_with_symlinked_layers() {
    let (l1, d1) = layer_tar(&[("etc/base", b"base\n")]);
    let (l2, d2) = layer_tar(&[("etc/top", b"top\n")]);
    let cfg1 = config_json(&[&d1, &d2], "amd64");
    let cfg2 = config_json(&[&d1], "amd64");
    let (c1, c2) = (Digest::sha256_of(&cfg1), Digest::sha256_of(&cfg2));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::write(p.join(format!("{}.json", c1.hex())), &cfg1).unwrap();
    fs::write(p.join(format!("{}.json", c2.hex())), &cfg2).unwrap();
    for (id, data) in [("1111", &l1), ("2222", &l2)] {
        fs::create_dir(p.join(id)).unwrap();
        fs::write(p.join(id).join("layer.tar"), data).unwrap();
        fs::write(p.join(id).join("VERSION"), "1.0").unwrap();
        fs::write(p.join(id).join("json"), "{}").unwrap();
    }
    // docker save deduplicated a layer with a symlink.
    fs::create_dir(p.join("3333")).unwrap();
    std::os::unix::fs::symlink("../1111/layer.tar", p.join("3333/layer.tar")).unwrap();
    let manifest = format!(
        r#"[{{"Config":"{}.json","RepoTags":["busybox:latest"],"Layers":["1111/layer.tar","2222/layer.tar"]}},
           {{"Config":"{}.json","RepoTags":null,"Layers":["3333/layer.tar"]}}]"#,
        c1.hex(),
        c2.hex()
    );
    fs::write(p.join("manifest.json"), manifest).unwrap();
    fs::write(p.join("repositories"), r#"{"busybox":{"latest":"2222"}}"#).unwrap();
    let archive = tar_dir(p);

    let s = stores();
    let loaded = load(&s.content, &s.layers, &archive[..], &LoadOptions::default()).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].image.id, c1);
    assert_eq!(loaded[0].references, vec![r("busybox:latest")]);
    assert_eq!(loaded[0].image.layers.len(), 2);
    assert_eq!(
        loaded[0].image.layers[0].blob.media_type,
        media_type::OCI_LAYER
    );
    assert_eq!(loaded[1].image.id, c2);
    assert!(loaded[1].references.is_empty());
    assert_eq!(
        loaded[1].image.layers[0].chain_id, loaded[0].image.layers[0].chain_id,
        "one shared base layer"
    );
    assert_eq!(s.layers.list().unwrap().len(), 2);
    let top = &loaded[0].image.layers[1].chain_id;
    assert_eq!(
        fs::read(s.layers.diff_path(top).join("etc/top")).unwrap(),
        b"top\n"
    );
    // The synthesised manifest is stored and describes the image.
    assert!(s.content.exists(&loaded[0].image.manifest_digest));
}

/// Writes `data` as a blob of an OCI layout and returns its descriptor JSON.
fn put_blob(layout: &Path, mt: &str, data: &[u8], extra: &str) -> (Digest, String) {
    let d = Digest::sha256_of(data);
    fs::write(layout.join("blobs/sha256").join(d.hex()), data).unwrap();
    (
        d.clone(),
        format!(
            r#"{{"mediaType":"{mt}","digest":"{d}","size":{}{extra}}}"#,
            data.len()
        ),
    )
}

#[test]
fn loads_an_oci_layout_choosing_the_platform_from_a_nested_index() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::create_dir_all(p.join("blobs/sha256")).unwrap();
    fs::write(p.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut platform_manifests = Vec::new();
    let mut configs = Vec::new();
    for arch in ["amd64", "arm64"] {
        let (tar, diff) = layer_tar(&[("arch", arch.as_bytes())]);
        let (_, layer_desc) = put_blob(
            p,
            media_type::OCI_LAYER_ZSTD,
            &compress(&tar, Compression::Zstd),
            "",
        );
        let (cfg, cfg_desc) = put_blob(p, media_type::OCI_CONFIG, &config_json(&[&diff], arch), "");
        configs.push(cfg);
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{cfg_desc},"layers":[{layer_desc}]}}"#,
            media_type::OCI_MANIFEST
        );
        let platform = format!(r#","platform":{{"os":"linux","architecture":"{arch}"}}"#);
        platform_manifests
            .push(put_blob(p, media_type::OCI_MANIFEST, manifest.as_bytes(), &platform).1);
    }
    let nested = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}}"#,
        media_type::OCI_INDEX,
        platform_manifests.join(",")
    );
    let (_, nested_desc) = put_blob(
        p,
        media_type::OCI_INDEX,
        nested.as_bytes(),
        r#","annotations":{"org.opencontainers.image.ref.name":"example.com/multi:1"}"#,
    );
    fs::write(
        p.join("index.json"),
        format!(r#"{{"schemaVersion":2,"manifests":[{nested_desc}]}}"#),
    )
    .unwrap();
    let archive = tar_dir(p);

    let s = stores();
    let opts = LoadOptions {
        platform: Some(Platform::parse("linux/arm64").unwrap()),
        ..LoadOptions::default()
    };
    let loaded = load(&s.content, &s.layers, &archive[..], &opts).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].image.id, configs[1]);
    assert_eq!(loaded[0].references, vec![r("example.com/multi:1")]);
    let config = ImageConfig::parse(&loaded[0].image.config_bytes).unwrap();
    assert_eq!(config.architecture, "arm64");
    assert_eq!(
        fs::read(
            s.layers
                .diff_path(&loaded[0].image.layers[0].chain_id)
                .join("arch")
        )
        .unwrap(),
        b"arm64"
    );

    let s390 = LoadOptions {
        platform: Some(Platform::parse("linux/s390x").unwrap()),
        ..LoadOptions::default()
    };
    let err = load(&s.content, &s.layers, &archive[..], &s390).unwrap_err();
    assert!(
        err.to_string()
            .contains("no matching manifest for linux/s390x"),
        "{err}"
    );
}

#[test]
fn hostile_archives_are_refused_and_confined() {
    let s = stores();
    // A blob whose content does not match its name.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::create_dir_all(p.join("blobs/sha256")).unwrap();
    let lie = Digest::sha256_of(b"what the name promises");
    fs::write(p.join("blobs/sha256").join(lie.hex()), b"something else").unwrap();
    fs::write(
        p.join("index.json"),
        r#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    let err = load(
        &s.content,
        &s.layers,
        &tar_dir(p)[..],
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        berth_errdefs::HasKind::kind(&err),
        berth_errdefs::ErrorKind::DataLoss,
        "{err}"
    );
    assert!(!s.content.exists(&lie));

    // manifest.json naming files that are not there.
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("manifest.json"),
        r#"[{"Config":"../../../etc/shadow","Layers":[]}]"#,
    )
    .unwrap();
    let err = load(
        &s.content,
        &s.layers,
        &tar_dir(dir.path())[..],
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ArchiveError::Invalid { .. }), "{err}");

    // Not an archive at all, and an archive of neither kind.
    assert!(load(
        &s.content,
        &s.layers,
        &b"garbage garbage garbage"[..],
        &LoadOptions::default()
    )
    .is_err());
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("hello"), "x").unwrap();
    let err = load(
        &s.content,
        &s.layers,
        &tar_dir(dir.path())[..],
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("neither manifest.json"), "{err}");

    // A layer whose content does not match the config's diff id.
    let dir = tempfile::tempdir().unwrap();
    let (tar, _) = layer_tar(&[("f", b"f")]);
    let wrong = Digest::sha256_of(b"another layer");
    let cfg = config_json(&[&wrong], "amd64");
    fs::write(dir.path().join("config.json"), &cfg).unwrap();
    fs::write(dir.path().join("layer.tar"), &tar).unwrap();
    fs::write(
        dir.path().join("manifest.json"),
        r#"[{"Config":"config.json","Layers":["layer.tar"]}]"#,
    )
    .unwrap();
    let err = load(
        &s.content,
        &s.layers,
        &tar_dir(dir.path())[..],
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ArchiveError::Assemble(AssembleError::Layer(_))),
        "{err}"
    );
    assert!(s.layers.list().unwrap().is_empty());

    // Nothing was written outside the data root.
    let parent = s.root.path().parent().unwrap();
    assert!(!parent.join("etc").join("shadow").exists());
    assert!(s.content.list_ingests().unwrap().is_empty());
}
