//! Round trips: a tree with every file type, owners, modes, xattrs, hard
//! links and mtimes -> write_tree -> (compress) -> apply_layer gives the
//! same tree, and writing is deterministic.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use berth_archive::{
    apply_layer, auto_decompressor, compressor, write_tree, write_tree_with, ApplyOptions,
    Compression, IdMap, IdRange, WriteOptions,
};
use common::snapshot;
use common::tree::{build_tree, chown};

#[test]
fn every_file_type_survives_write_then_apply() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let before = snapshot(src.path());
    assert!(before.len() > 30);

    let mut tar = Vec::new();
    let written = write_tree(src.path(), &mut tar).unwrap();
    assert_eq!(written.tar_bytes, tar.len() as u64);
    assert_eq!(written.entries as usize, before.len());

    let dest = tempfile::tempdir().unwrap();
    let stats = apply_layer(&tar[..], dest.path(), &ApplyOptions::default()).unwrap();
    assert_eq!(stats.diff_id, written.diff_id);
    assert_eq!(stats.entries, written.entries);
    assert_eq!(stats.tar_bytes, tar.len() as u64);
    let after = snapshot(dest.path());
    for (path, node) in &before {
        assert_eq!(after.get(path), Some(node), "{path:?} differs");
    }
    assert_eq!(before, after);

    // Deterministic: the applied copy writes the same bytes.
    let mut again = Vec::new();
    let rewritten = write_tree(dest.path(), &mut again).unwrap();
    assert_eq!(rewritten.diff_id, written.diff_id);
    assert!(again == tar, "write_tree is not deterministic");
}

#[test]
fn a_synced_apply_writes_large_files_directly_and_gives_the_same_tree() {
    // With `sync`, files of 256 KiB and more are written with O_DIRECT in
    // aligned blocks and their tail through the page cache: the tree's
    // 3 MB file (not a multiple of the block size), with its owner, mode
    // and mtime, must come out the same as without.
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let before = snapshot(src.path());
    let mut tar = Vec::new();
    write_tree(src.path(), &mut tar).unwrap();
    // On a disk file system (tmpfs may refuse O_DIRECT and fall back).
    let dest = tempfile::tempdir_in("/var/tmp").unwrap();
    let opts = ApplyOptions {
        sync: true,
        ..ApplyOptions::default()
    };
    apply_layer(&tar[..], dest.path(), &opts).unwrap();
    assert_eq!(snapshot(dest.path()), before);
}

#[test]
fn gzip_zstd_and_none_round_trip() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let want = snapshot(src.path());
    let mut tar = Vec::new();
    let written = write_tree(src.path(), &mut tar).unwrap();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mut enc = compressor(Vec::new(), c).unwrap();
        enc.write_all(&tar).unwrap();
        let blob = enc.finish().unwrap();
        if c != Compression::None {
            assert!(blob.len() < tar.len() / 2, "{c:?} did not compress");
        }
        let (found, r) = auto_decompressor(&blob[..]).unwrap();
        assert_eq!(found, c);
        let dest = tempfile::tempdir().unwrap();
        let stats = apply_layer(r, dest.path(), &ApplyOptions::default()).unwrap();
        assert_eq!(stats.diff_id, written.diff_id, "{c:?}");
        assert_eq!(snapshot(dest.path()), want, "{c:?}");
    }
}

#[test]
fn layers_merge_and_replace_by_the_layer_rules() {
    let dest = tempfile::tempdir().unwrap();
    let first = common::RawTar::new()
        .dir("d/")
        .file("d/keep", b"keep")
        .dir("was-dir/")
        .file("was-dir/inner", b"inner")
        .file("was-file", b"file")
        .symlink("was-link", "d")
        .finish();
    apply_layer(&first[..], dest.path(), &ApplyOptions::default()).unwrap();
    let second = common::RawTar::new()
        .dir("d/")
        .file("d/new", b"new")
        .file("was-dir", b"now a file")
        .dir("was-file/")
        .file("was-link", b"no longer a link")
        .file("d/keep", b"replaced")
        .finish();
    apply_layer(&second[..], dest.path(), &ApplyOptions::default()).unwrap();
    let p = dest.path();
    assert_eq!(fs::read(p.join("d/keep")).unwrap(), b"replaced");
    assert_eq!(fs::read(p.join("d/new")).unwrap(), b"new");
    assert_eq!(fs::read(p.join("was-dir")).unwrap(), b"now a file");
    assert!(fs::symlink_metadata(p.join("was-file")).unwrap().is_dir());
    assert!(fs::symlink_metadata(p.join("was-link")).unwrap().is_file());
    assert!(p.join("d").is_dir());
}

#[test]
fn missing_parents_are_created_and_the_root_entry_sets_root_metadata() {
    let dest = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o751);
    h.set_mtime(1_234_567_890);
    h.set_uid(7);
    h.set_gid(8);
    h.set_size(0);
    b.append_data(&mut h, "./", &b""[..]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o640);
    h.set_size(4);
    b.append_data(&mut h, "x/y/z/file", &b"data"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    apply_layer(&tar[..], dest.path(), &ApplyOptions::default()).unwrap();
    use std::os::unix::fs::MetadataExt;
    let root = fs::metadata(dest.path()).unwrap();
    assert_eq!(
        (root.mode() & 0o7777, root.uid(), root.gid(), root.mtime()),
        (0o751, 7, 8, 1_234_567_890)
    );
    let x = fs::metadata(dest.path().join("x/y")).unwrap();
    assert_eq!((x.mode() & 0o7777, x.uid()), (0o755, 0));
    assert_eq!(fs::read(dest.path().join("x/y/z/file")).unwrap(), b"data");
}

#[test]
fn id_mapping_shifts_owners() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("f"), b"f").unwrap();
    chown(&src.path().join("f"), 1000, 1001);
    fs::create_dir(src.path().join("d")).unwrap();
    let mut tar = Vec::new();
    write_tree(src.path(), &mut tar).unwrap();

    let map = IdMap {
        uids: vec![IdRange {
            container: 0,
            host: 100_000,
            size: 65_536,
        }],
        gids: vec![IdRange {
            container: 0,
            host: 200_000,
            size: 65_536,
        }],
    };
    let dest = tempfile::tempdir().unwrap();
    let opts = ApplyOptions {
        id_map: Some(map.clone()),
        ..Default::default()
    };
    apply_layer(&tar[..], dest.path(), &opts).unwrap();
    use std::os::unix::fs::MetadataExt;
    let f = fs::metadata(dest.path().join("f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (101_000, 201_001));
    let d = fs::metadata(dest.path().join("d")).unwrap();
    assert_eq!((d.uid(), d.gid()), (100_000, 200_000));

    // Writing the shifted tree back with the same map gives the original
    // owners (and the same tar).
    let mut back = Vec::new();
    write_tree_with(
        dest.path(),
        &mut back,
        &WriteOptions {
            id_map: Some(map.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(back == tar, "mapping back does not restore the owners");
    let err = write_tree_with(
        dest.path(),
        &mut Vec::new(),
        &WriteOptions {
            id_map: Some(IdMap {
                uids: map.uids.clone(),
                gids: vec![],
            }),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, berth_archive::Error::UnmappedId { which: "gid", .. }),
        "{err}"
    );

    let narrow = IdMap {
        uids: vec![IdRange {
            container: 0,
            host: 100_000,
            size: 10,
        }],
        gids: map.gids,
    };
    let dest = tempfile::tempdir().unwrap();
    let err = apply_layer(
        &tar[..],
        dest.path(),
        &ApplyOptions {
            id_map: Some(narrow),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, berth_archive::Error::UnmappedId { id: 1000, .. }),
        "{err}"
    );
}

#[test]
fn non_utf8_names_round_trip() {
    let src = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"\xff\xfe-name");
    fs::write(src.path().join(name), b"x").unwrap();
    let mut tar = Vec::new();
    write_tree(src.path(), &mut tar).unwrap();
    let dest = tempfile::tempdir().unwrap();
    apply_layer(&tar[..], dest.path(), &ApplyOptions::default()).unwrap();
    assert_eq!(fs::read(dest.path().join(name)).unwrap(), b"x");
}

#[test]
fn owners_are_exact_even_in_setgid_directories() {
    use std::os::unix::fs::MetadataExt;
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o2775);
    h.set_gid(50);
    h.set_size(0);
    b.append_data(&mut h, "sg/", &b""[..]).unwrap();
    for (name, gid) in [("sg/root-group", 0), ("sg/other", 7)] {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_gid(gid);
        h.set_size(1);
        b.append_data(&mut h, name, &b"x"[..]).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let dest = tempfile::tempdir().unwrap();
    apply_layer(&tar[..], dest.path(), &ApplyOptions::default()).unwrap();
    let gid = |p: &str| fs::metadata(dest.path().join(p)).unwrap().gid();
    assert_eq!(
        (gid("sg"), gid("sg/root-group"), gid("sg/other")),
        (50, 0, 7)
    );
    let mode = fs::metadata(dest.path().join("sg")).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o2775);
}

#[test]
fn excluded_paths_are_left_out_with_their_subtrees() {
    let src = tempfile::tempdir().unwrap();
    for d in ["a/b", "etc"] {
        fs::create_dir_all(src.path().join(d)).unwrap();
    }
    for f in ["a/b/c", "etc/hosts", "etc/x", "ab"] {
        fs::write(src.path().join(f), f).unwrap();
    }
    let mut tar = Vec::new();
    let opts = WriteOptions {
        exclude: vec!["a".into(), "etc/hosts".into()],
        ..Default::default()
    };
    let stats = write_tree_with(src.path(), &mut tar, &opts).unwrap();
    let names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
        .collect();
    assert_eq!(names, ["ab", "etc/", "etc/x"]);
    assert_eq!(stats.entries, 3);
}
