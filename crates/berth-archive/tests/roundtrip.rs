//! Round trips: a tree with every file type, owners, modes, xattrs, hard
//! links and mtimes -> write_tree -> (compress) -> apply_layer gives the
//! same tree, and writing is deterministic.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use berth_archive::{
    apply_layer, auto_decompressor, compressor, write_tree, write_tree_with, ApplyOptions,
    Compression, IdMap, IdRange, WriteOptions,
};
use common::{bpath, snapshot};
use rustix::fs::{
    chownat, lsetxattr, makedev, mknodat, utimensat, AtFlags, FileType, Gid, Mode, Timespec,
    Timestamps, Uid, XattrFlags, CWD,
};

fn chown(p: &Path, uid: u32, gid: u32) {
    chownat(
        CWD,
        p,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn set_mtime(p: &Path, sec: i64) {
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: 0,
    };
    utimensat(
        CWD,
        p,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds a tree with everything a layer can hold. Needs root (devices,
/// owners, trusted xattrs).
fn build_tree(root: &Path) {
    let p = |s: &str| root.join(s);
    fs::create_dir_all(p("usr/bin")).unwrap();
    fs::create_dir_all(p("tmp")).unwrap();
    fs::create_dir_all(p("home/user/.cache")).unwrap();
    fs::create_dir_all(p("dev")).unwrap();
    fs::create_dir_all(p("empty-dir")).unwrap();

    fs::write(p("usr/bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    chmod(&p("usr/bin/tool"), 0o4755);
    fs::write(p("usr/bin/sgid"), b"sgid").unwrap();
    chmod(&p("usr/bin/sgid"), 0o2711);
    chmod(&p("tmp"), 0o1777);
    chmod(&p("home/user"), 0o700);
    fs::write(p("empty"), b"").unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    fs::write(p("home/user/big.bin"), &big).unwrap();
    fs::write(p("home/user/.cache/note"), b"note").unwrap();
    chown(&p("home/user"), 1000, 1000);
    chown(&p("home/user/big.bin"), 1000, 100);
    chown(&p("home/user/.cache/note"), 12_345, 54_321);
    // An id above the ustar octal limit goes through PAX.
    fs::write(p("huge-id"), b"id").unwrap();
    chown(&p("huge-id"), 3_000_000, 4_000_000);

    // Hard links: a pair and a triple across directories.
    fs::write(p("usr/bin/busybox"), b"busybox binary").unwrap();
    fs::hard_link(p("usr/bin/busybox"), p("usr/bin/sh")).unwrap();
    fs::hard_link(p("usr/bin/busybox"), p("home/ls")).unwrap();
    fs::write(p("pair-a"), b"pair").unwrap();
    fs::hard_link(p("pair-a"), p("pair-b")).unwrap();

    // Symlinks, relative, absolute, dangling, owned, with a long target.
    symlink("busybox", p("usr/bin/cat")).unwrap();
    symlink("/etc/does-not-exist", p("dangling")).unwrap();
    symlink("../usr/bin", p("home/bin")).unwrap();
    chown(&p("home/bin"), 1000, 1000);
    let long_target = format!("/{}", "t".repeat(150));
    symlink(&long_target, p("long-link")).unwrap();

    // Devices and a FIFO.
    let dev = p("dev");
    mknodat(
        CWD,
        dev.join("null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        makedev(1, 3),
    )
    .unwrap();
    mknodat(
        CWD,
        dev.join("loop0"),
        FileType::BlockDevice,
        Mode::from_raw_mode(0o660),
        makedev(7, 0),
    )
    .unwrap();
    mknodat(
        CWD,
        dev.join("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    chmod(&dev.join("null"), 0o666);
    chmod(&dev.join("loop0"), 0o660);
    chmod(&dev.join("fifo"), 0o640);
    chown(&dev.join("loop0"), 0, 6);

    // xattrs, including binary values and one on a symlink.
    lsetxattr(
        p("usr/bin/tool"),
        "user.origin",
        b"berth",
        XattrFlags::empty(),
    )
    .unwrap();
    let cap = [
        1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    lsetxattr(
        p("usr/bin/tool"),
        "security.capability",
        &cap,
        XattrFlags::empty(),
    )
    .unwrap();
    lsetxattr(
        p("home"),
        "trusted.berth.test",
        b"\0bin\xffary",
        XattrFlags::empty(),
    )
    .unwrap();
    lsetxattr(
        p("dangling"),
        "trusted.link",
        b"on a symlink",
        XattrFlags::empty(),
    )
    .unwrap();

    // Long names: over 100 bytes (ustar prefix) and over 256 (PAX path).
    let mid = p(&"m".repeat(90));
    fs::create_dir(&mid).unwrap();
    fs::write(mid.join("f".repeat(60)), b"prefix split").unwrap();
    let deep = p(&format!("{}/{}", "a".repeat(200), "b".repeat(200)));
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("c".repeat(200)), b"pax path").unwrap();
    // A name that is not UTF-8.
    fs::write(root.join(bpath(b"latin1-\xe9t\xe9")), b"bytes").unwrap();

    // mtimes last, children before parents (creating a child bumps the
    // parent's mtime).
    let mut all = Vec::new();
    collect(root, &mut all);
    all.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for (i, path) in all.iter().enumerate() {
        set_mtime(path, 1_500_000_000 + i as i64 * 3_600);
    }
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        out.push(e.path());
        if e.file_type().unwrap().is_dir() {
            collect(&e.path(), out);
        }
    }
}

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
