//! Layer store against the real filesystem and kernel: unpack once per
//! chain id, sharing between images, verification, and real overlay mounts
//! (these need root).

mod common;

use std::fs;

use berth_archive::{ApplyOptions, Compression};
use berth_image::layers::{chain_ids, LayerError, LayerStore};
use berth_image::Digest;
use common::{compress, layer_tar, mount};

fn unpack_all(store: &LayerStore, layers: &[(Vec<u8>, Digest)]) -> Vec<(Digest, bool)> {
    let diffs: Vec<Digest> = layers.iter().map(|(_, d)| d.clone()).collect();
    let chain = chain_ids(&diffs);
    let mut out = Vec::new();
    for (i, (tar, diff)) in layers.iter().enumerate() {
        let parent = if i == 0 { None } else { Some(&chain[i - 1]) };
        let u = store
            .unpack(&chain[i], parent, diff, &tar[..], &ApplyOptions::default())
            .unwrap();
        assert_eq!(u.meta.chain_id, chain[i]);
        out.push((chain[i].clone(), u.created));
    }
    out
}

#[test]
fn images_with_a_common_base_share_its_layer_dir() {
    let root = tempfile::tempdir().unwrap();
    let store = LayerStore::open(root.path()).unwrap();
    let base = layer_tar(&[("etc/os-release", b"base\n"), ("bin/sh", b"#!shell\n")]);
    let a = layer_tar(&[("app/a", b"a\n")]);
    let b = layer_tar(&[("app/b", b"b\n")]);

    let image_a = unpack_all(&store, &[base.clone(), a]);
    assert!(image_a.iter().all(|(_, created)| *created));
    let image_b = unpack_all(&store, &[base.clone(), b]);
    assert_eq!(
        image_b[0],
        (image_a[0].0.clone(), false),
        "the base is unpacked once"
    );
    assert!(image_b[1].1);

    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 3, "base + a + b: {listed:?}");
    assert_eq!(
        fs::read(store.diff_path(&image_a[0].0).join("etc/os-release")).unwrap(),
        b"base\n"
    );
    assert_eq!(
        fs::read(store.diff_path(&image_a[1].0).join("app/a")).unwrap(),
        b"a\n"
    );
    assert_eq!(
        fs::read(store.diff_path(&image_b[1].0).join("app/b")).unwrap(),
        b"b\n"
    );
    assert!(
        !store.diff_path(&image_b[1].0).join("etc").exists(),
        "a layer dir holds only its own diff"
    );
    let meta = store.meta(&image_b[1].0).unwrap();
    assert_eq!(meta.parent.as_ref(), Some(&image_a[0].0));
    assert_eq!(
        fs::read_dir(root.path().join("layers/tmp"))
            .unwrap()
            .count(),
        0
    );

    store.remove(&image_a[1].0).unwrap();
    assert!(!store.exists(&image_a[1].0));
    assert!(matches!(
        store.remove(&image_a[1].0),
        Err(LayerError::NotFound { .. })
    ));
}

#[test]
fn compressed_layers_unpack_to_the_same_diff() {
    let root = tempfile::tempdir().unwrap();
    let store = LayerStore::open(root.path()).unwrap();
    let (tar, diff) = layer_tar(&[("hello.txt", b"hello\n")]);
    for (i, c) in [Compression::Gzip, Compression::Zstd, Compression::None]
        .into_iter()
        .enumerate()
    {
        let blob = compress(&tar, c);
        let u = store
            .unpack(&diff, None, &diff, &blob[..], &ApplyOptions::default())
            .unwrap();
        assert_eq!(u.created, i == 0, "{c:?}");
        assert_eq!(u.meta.tar_size, tar.len() as u64);
    }
    assert_eq!(
        fs::read(store.diff_path(&diff).join("hello.txt")).unwrap(),
        b"hello\n"
    );
}

#[test]
fn a_wrong_diff_id_or_a_broken_stream_keeps_nothing() {
    let root = tempfile::tempdir().unwrap();
    let store = LayerStore::open(root.path()).unwrap();
    let (tar, _) = layer_tar(&[("x", b"x")]);
    let wrong = Digest::sha256_of(b"not this layer");
    let err = store
        .unpack(&wrong, None, &wrong, &tar[..], &ApplyOptions::default())
        .unwrap_err();
    assert!(matches!(err, LayerError::DiffIdMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&wrong.to_string()), "{err}");

    let gz = compress(&tar, Compression::Gzip);
    let truncated = &gz[..gz.len() / 2];
    let err = store
        .unpack(&wrong, None, &wrong, truncated, &ApplyOptions::default())
        .unwrap_err();
    assert!(matches!(err, LayerError::Apply { .. }), "{err}");

    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        fs::read_dir(root.path().join("layers/tmp"))
            .unwrap()
            .count(),
        0,
        "temp dirs are removed"
    );
}

#[test]
fn unpack_new_computes_the_ids() {
    let root = tempfile::tempdir().unwrap();
    let store = LayerStore::open(root.path()).unwrap();
    let (base, base_diff) = layer_tar(&[("a", b"a")]);
    let (top, top_diff) = layer_tar(&[("b", b"b")]);
    let u = store
        .unpack_new(None, &base[..], &ApplyOptions::default())
        .unwrap();
    assert_eq!(u.meta.diff_id, base_diff);
    assert_eq!(u.meta.chain_id, base_diff);
    let u2 = store
        .unpack_new(
            Some(&u.meta.chain_id),
            &compress(&top, Compression::Zstd)[..],
            &ApplyOptions::default(),
        )
        .unwrap();
    assert_eq!(u2.meta.chain_id, chain_ids(&[base_diff, top_diff])[1]);
}

#[test]
fn concurrent_unpacks_of_one_layer_agree() {
    let root = tempfile::tempdir().unwrap();
    let store = LayerStore::open(root.path()).unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..200)
        .map(|i| (format!("d/f{i}"), vec![i as u8; 4096]))
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let (tar, diff) = layer_tar(&refs);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (store, tar, diff) = (store.clone(), tar.clone(), diff.clone());
            std::thread::spawn(move || {
                store
                    .unpack(&diff, None, &diff, &tar[..], &ApplyOptions::default())
                    .unwrap()
            })
        })
        .collect();
    let created = handles
        .into_iter()
        .map(|h| h.join().unwrap().created)
        .filter(|c| *c)
        .count();
    assert!(created >= 1);
    assert_eq!(store.list().unwrap(), vec![diff.clone()]);
    assert_eq!(
        fs::read_dir(store.diff_path(&diff).join("d"))
            .unwrap()
            .count(),
        200
    );
    assert_eq!(
        fs::read_dir(root.path().join("layers/tmp"))
            .unwrap()
            .count(),
        0
    );
}

fn require_root() -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipping: overlay mounts need root");
        return false;
    }
    true
}

#[test]
fn a_two_layer_image_mounts_with_absolute_paths_and_whiteouts_hide_files() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let store = LayerStore::open(root.path()).unwrap();
    let base = layer_tar(&[("keep", b"keep\n"), ("gone", b"gone\n"), ("over", b"old\n")]);
    let top = layer_tar(&[(".wh.gone", b""), ("over", b"new\n")]);
    let chain: Vec<Digest> = unpack_all(&store, &[base, top])
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let (upper, work, merged) = (
        root.path().join("upper"),
        root.path().join("work"),
        root.path().join("merged"),
    );
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    let m = store.container_mounts(&chain, &upper, &work).unwrap();
    assert_eq!(m.chdir, None, "two absolute lowerdirs fit in a page");
    assert!(
        m.options[0].starts_with(&format!(
            "lowerdir={}",
            store.diff_path(&chain[1]).display()
        )),
        "top layer first"
    );
    let _mounted = mount(&m, &merged).unwrap();
    assert_eq!(fs::read(merged.join("keep")).unwrap(), b"keep\n");
    assert_eq!(fs::read(merged.join("over")).unwrap(), b"new\n");
    assert!(
        !merged.join("gone").exists(),
        "the whiteout hides the base's file"
    );
    fs::write(merged.join("written"), b"by the container").unwrap();
    assert!(
        upper.join("written").exists(),
        "writes land in the upper dir"
    );
    assert!(
        !store.diff_path(&chain[1]).join("written").exists(),
        "layers stay untouched"
    );
}

#[test]
fn an_image_of_128_layers_mounts_with_overlayfs() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let store = LayerStore::open(root.path()).unwrap();
    let layers: Vec<(Vec<u8>, Digest)> = (0..128)
        .map(|i| {
            let name = format!("layer-{i:03}");
            let version = format!("{i}\n");
            layer_tar(&[(name.as_str(), b"x"), ("version", version.as_bytes())])
        })
        .collect();
    let chain: Vec<Digest> = unpack_all(&store, &layers)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let (upper, work, merged) = (
        root.path().join("upper"),
        root.path().join("work"),
        root.path().join("merged"),
    );
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    let m = store.container_mounts(&chain, &upper, &work).unwrap();
    let absolute_len: usize = chain
        .iter()
        .map(|c| store.diff_path(c).as_os_str().len() + 1)
        .sum();
    assert!(
        absolute_len > 4096,
        "the absolute form must not fit, or this test proves nothing"
    );
    assert_eq!(
        m.chdir.as_deref(),
        Some(store.root()),
        "too long for one page: short links"
    );
    assert!(m.data().len() < rustix::param::page_size());

    let _mounted = mount(&m, &merged).unwrap();
    for i in 0..128 {
        assert!(
            merged.join(format!("layer-{i:03}")).exists(),
            "layer {i} is visible"
        );
    }
    assert_eq!(
        fs::read(merged.join("version")).unwrap(),
        b"127\n",
        "the top layer wins"
    );
    fs::write(merged.join("new"), b"x").unwrap();
    assert!(upper.join("new").exists());
}

#[test]
fn mount_descriptions_check_their_layers() {
    let root = tempfile::tempdir().unwrap();
    let store = LayerStore::open(root.path()).unwrap();
    let missing = Digest::sha256_of(b"missing");
    let (u, w) = (root.path().join("u"), root.path().join("w"));
    assert!(matches!(
        store.container_mounts(&[missing], &u, &w),
        Err(LayerError::NotFound { .. })
    ));
    // No layers: an empty lower keeps overlayfs happy.
    let m = store.container_mounts(&[], &u, &w).unwrap();
    assert!(m.options[0].ends_with("/layers/empty"), "{:?}", m.options);
    // Paths that would break the option string are refused.
    let comma = root.path().join("a,b");
    assert!(matches!(
        store.container_mounts(&[], &comma, &w),
        Err(LayerError::UnsafePath { .. })
    ));
    let odd_root = root.path().join("x:y");
    let odd = LayerStore::open(&odd_root).unwrap();
    assert!(matches!(
        odd.container_mounts(&[], &u, &w),
        Err(LayerError::UnsafePath { .. })
    ));
    // A limit nothing fits in is a clear error, not a broken mount.
    let layer = layer_tar(&[("f", b"f")]);
    let chain: Vec<Digest> = unpack_all(&store, &[layer])
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let err = store
        .container_mounts_with_limit(&chain, &u, &w, 10)
        .unwrap_err();
    assert!(matches!(err, LayerError::OptionsTooLong { .. }), "{err}");
    // A small limit forces the short form; the link resolves to the layer.
    let m = store
        .container_mounts_with_limit(&chain, &u, &w, 200)
        .unwrap();
    let short = m.options[0].strip_prefix("lowerdir=").unwrap();
    assert_eq!(
        fs::canonicalize(store.root().join(short)).unwrap(),
        fs::canonicalize(store.diff_path(&chain[0])).unwrap()
    );
}
