//! Hostile and corrupt layers: every one either fails with a clear error or
//! is confined to the destination, and nothing beside the destination (a
//! canary in the same parent, the host's /etc/passwd) changes.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use berth_archive::{apply_layer, compressor, decompressor, ApplyOptions, Compression, Error};
use berth_errdefs::{ErrorKind, HasKind};
use common::{passwd, RawTar, Sandbox};
use tar::EntryType;

fn apply(sb: &Sandbox, tar: &[u8]) -> Result<berth_archive::ApplyStats, Error> {
    apply_layer(tar, &sb.dest, &ApplyOptions::default())
}

#[test]
fn dotdot_entries_are_refused() {
    let before = passwd();
    for path in [
        "../escaped",
        "a/../../escaped",
        "./../escaped",
        "/../escaped",
    ] {
        let sb = Sandbox::new();
        let tar = RawTar::new().dir("a/").file(path, b"evil").finish();
        let err = apply(&sb, &tar).unwrap_err();
        assert!(matches!(err, Error::BadPath { .. }), "{path}: {err}");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            err.to_string().contains("escaped"),
            "error names the entry: {err}"
        );
        sb.assert_contained(&before);
    }
}

#[test]
fn absolute_paths_stay_inside_the_root() {
    let before = passwd();
    let sb = Sandbox::new();
    let outside = sb.parent().join("abs-escape");
    let tar = RawTar::new()
        .file("/etc/passwd", b"layer passwd\n")
        .file(outside.to_str().unwrap(), b"evil")
        .finish();
    apply(&sb, &tar).unwrap();
    assert_eq!(
        fs::read(sb.dest.join("etc/passwd")).unwrap(),
        b"layer passwd\n"
    );
    // The absolute path of the sandbox is recreated inside dest.
    let inside = sb.dest.join(outside.strip_prefix("/").unwrap());
    assert_eq!(fs::read(inside).unwrap(), b"evil");
    sb.assert_contained(&before);
}

#[test]
fn a_symlink_to_the_root_is_followed_inside_dest() {
    let before = passwd();
    let sb = Sandbox::new();
    let parent = sb.parent().to_str().unwrap().to_string();
    let tar = RawTar::new()
        .symlink("root", "/")
        .symlink("up", "../../../..")
        .file("root/etc/passwd", b"through root\n")
        .file("up/escaped", b"through up\n")
        .symlink("sandbox", &parent)
        .dir(&format!("{parent}/"))
        .file("sandbox/canary", b"overwritten?\n")
        .finish();
    apply(&sb, &tar).unwrap();
    assert_eq!(
        fs::read(sb.dest.join("etc/passwd")).unwrap(),
        b"through root\n"
    );
    assert_eq!(fs::read(sb.dest.join("escaped")).unwrap(), b"through up\n");
    // "sandbox" points at the sandbox's absolute path, which inside the root
    // is the directory the previous entry created.
    let inside = sb.dest.join(parent.trim_start_matches('/')).join("canary");
    assert_eq!(fs::read(inside).unwrap(), b"overwritten?\n");
    sb.assert_contained(&before);
}

#[test]
fn a_symlink_chain_and_a_replaced_parent_stay_inside() {
    let before = passwd();
    let sb = Sandbox::new();
    let tar = RawTar::new()
        .dir("d/")
        .file("d/f", b"in d")
        // A chain: l1 -> l2 -> ../.. -> (clamped) root.
        .symlink("l1", "l2")
        .symlink("l2", "../..")
        .file("l1/chained", b"via chain")
        // Replace the directory d (the cached parent) by a symlink up and out.
        .symlink("d", "../../..")
        .file("d/after", b"after replace")
        .finish();
    apply(&sb, &tar).unwrap();
    assert_eq!(fs::read(sb.dest.join("chained")).unwrap(), b"via chain");
    assert!(fs::symlink_metadata(sb.dest.join("d"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(sb.dest.join("after")).unwrap(), b"after replace");
    sb.assert_contained(&before);
}

#[test]
fn a_dangling_absolute_symlink_parent_is_an_error() {
    let before = passwd();
    let sb = Sandbox::new();
    let parent = sb.parent().to_str().unwrap().to_string();
    let tar = RawTar::new()
        .symlink("out", &parent)
        .file("out/evil", b"evil")
        .finish();
    let err = apply(&sb, &tar).unwrap_err();
    assert!(matches!(err, Error::Apply { .. }), "{err}");
    assert!(err.to_string().contains("out/evil"), "{err}");
    sb.assert_contained(&before);
}

#[test]
fn hardlinks_to_host_files_are_refused() {
    let before = passwd();
    for target in ["/etc/passwd", "etc/passwd"] {
        let sb = Sandbox::new();
        let tar = RawTar::new().hardlink("stolen", target).finish();
        let err = apply(&sb, &tar).unwrap_err();
        assert!(
            matches!(err, Error::HardlinkTarget { .. }),
            "{target}: {err}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(!sb.dest.join("stolen").exists());
        sb.assert_contained(&before);
    }
    let sb = Sandbox::new();
    let tar = RawTar::new()
        .hardlink("stolen", "../../../../etc/passwd")
        .finish();
    assert!(matches!(
        apply(&sb, &tar).unwrap_err(),
        Error::BadPath { .. }
    ));
    sb.assert_contained(&before);
}

#[test]
fn hardlinks_through_symlinks_are_refused_or_link_the_symlink() {
    let before = passwd();
    let sb = Sandbox::new();
    // The parent of the target is a symlink to the host's /etc: resolved in
    // the root it is dest/etc, which has no passwd.
    let tar = RawTar::new()
        .symlink("hostetc", "/etc")
        .hardlink("stolen", "hostetc/passwd")
        .finish();
    let err = apply(&sb, &tar).unwrap_err();
    assert!(matches!(err, Error::HardlinkTarget { .. }), "{err}");
    assert!(!sb.dest.join("stolen").exists());
    sb.assert_contained(&before);

    // The target itself is a symlink to the host file: the link is to the
    // symlink, never to what it points at.
    let sb = Sandbox::new();
    let tar = RawTar::new()
        .symlink("pw", "/etc/passwd")
        .hardlink("stolen", "pw")
        .finish();
    apply(&sb, &tar).unwrap();
    let md = fs::symlink_metadata(sb.dest.join("stolen")).unwrap();
    assert!(md.file_type().is_symlink());
    assert_eq!(md.nlink(), 2);
    sb.assert_contained(&before);
}

#[test]
fn hardlinks_to_directories_and_forward_references_are_refused() {
    let before = passwd();
    for (tar, what) in [
        (
            RawTar::new().dir("d/").hardlink("l", "d").finish(),
            "a directory",
        ),
        (
            RawTar::new()
                .hardlink("l", "later")
                .file("later", b"x")
                .finish(),
            "a later entry",
        ),
        (
            RawTar::new().file("f", b"x").hardlink("f", "f").finish(),
            "itself",
        ),
        (RawTar::new().hardlink("l", "./").finish(), "the root"),
    ] {
        let sb = Sandbox::new();
        let err = apply(&sb, &tar).unwrap_err();
        assert!(matches!(err, Error::HardlinkTarget { .. }), "{what}: {err}");
        sb.assert_contained(&before);
    }
}

#[test]
fn whiteouts_through_symlinked_parents_stay_inside() {
    let before = passwd();
    let sb = Sandbox::new();
    fs::create_dir(sb.dest.join("keep")).unwrap();
    let tar = RawTar::new()
        .symlink("root", "/")
        .file("root/.wh.canary", b"")
        .file("root/keep/.wh..wh..opq", b"")
        .finish();
    apply(&sb, &tar).unwrap();
    let wh = fs::symlink_metadata(sb.dest.join("canary")).unwrap();
    assert_eq!((wh.file_type().is_char_device(), wh.rdev()), (true, 0));
    assert_eq!(
        common::xattrs(&sb.dest.join("keep")),
        vec![(b"trusted.overlay.opaque".to_vec(), b"y".to_vec())]
    );
    sb.assert_contained(&before);
}

#[test]
fn giant_declared_sizes_hit_the_limits() {
    let before = passwd();
    let sb = Sandbox::new();
    // 1 TiB declared, nothing follows: refused before any byte is read.
    let mut t = RawTar::new();
    t.header_only("huge", EntryType::Regular, 1 << 40);
    let err = apply(&sb, &t.out).unwrap_err();
    assert!(
        matches!(err, Error::EntryTooLarge { size, .. } if size == 1 << 40),
        "{err}"
    );
    assert!(err.to_string().contains("huge"));

    let small = ApplyOptions {
        max_entry_size: 1000,
        max_total_size: 1500,
        max_entries: 3,
        ..Default::default()
    };
    let sb2 = Sandbox::new();
    let tar = RawTar::new()
        .file("a", &[1; 800])
        .file("b", &[2; 800])
        .finish();
    let err = apply_layer(&tar[..], &sb2.dest, &small).unwrap_err();
    assert!(
        matches!(err, Error::TotalTooLarge { ref entry, .. } if entry == "b"),
        "{err}"
    );
    let tar = RawTar::new()
        .dir("a/")
        .dir("b/")
        .dir("c/")
        .dir("d/")
        .finish();
    let err = apply_layer(&tar[..], &sb2.dest, &small).unwrap_err();
    assert!(
        matches!(err, Error::TooManyEntries { ref entry, .. } if entry == "d/"),
        "{err}"
    );

    // A GNU long name record of 1 GiB is refused before it is buffered.
    let mut t = RawTar::new();
    t.header_only("././@LongLink", EntryType::GNULongName, 1 << 30);
    let err = apply(&sb, &t.out).unwrap_err();
    assert!(matches!(err, Error::MetadataTooLarge { .. }), "{err}");
    sb.assert_contained(&before);
    sb2.assert_contained(&before);
}

#[test]
fn truncated_streams_are_data_loss() {
    let before = passwd();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let tar = RawTar::new()
        .dir("d/")
        .file("d/big", &big)
        .file("d/after", b"x")
        .finish();

    // Cut inside the data of d/big.
    let sb = Sandbox::new();
    let err = apply(&sb, &tar[..100_000]).unwrap_err();
    assert!(
        matches!(err, Error::Truncated { ref entry, .. } if entry == "d/big"),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::DataLoss);
    sb.assert_contained(&before);

    // Cut inside a header.
    let sb = Sandbox::new();
    let err = apply(&sb, &tar[..tar.len() - 1024 - 512 - 100]).unwrap_err();
    assert!(
        matches!(err, Error::Truncated { ref entry, .. } if entry == "d/big"),
        "{err}"
    );
    sb.assert_contained(&before);

    // Cut exactly before the end-of-archive marker: like Go's reader and
    // GNU tar, accepted (the blob digest catches such a cut).
    let sb = Sandbox::new();
    let stats = apply(&sb, &tar[..tar.len() - 1024]).unwrap();
    assert_eq!(stats.entries, 3);
    assert_eq!(fs::read(sb.dest.join("d/after")).unwrap(), b"x");
    sb.assert_contained(&before);

    // A truncated gzip stream.
    let mut gz = compressor(Vec::new(), Compression::Gzip).unwrap();
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let sb = Sandbox::new();
    let err = apply_layer(
        decompressor(&gz[..gz.len() / 2], Compression::Gzip),
        &sb.dest,
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataLoss, "{err}");
    sb.assert_contained(&before);

    // A corrupted gzip stream (flipped bytes in the middle).
    let mut bad = gz.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let sb = Sandbox::new();
    let err = apply_layer(
        decompressor(&bad[..], Compression::Gzip),
        &sb.dest,
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataLoss, "{err}");
    sb.assert_contained(&before);
}

#[test]
fn garbage_is_a_malformed_header() {
    let before = passwd();
    let sb = Sandbox::new();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let err = apply(&sb, &garbage).unwrap_err();
    assert!(matches!(err, Error::MalformedHeader { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    // A valid entry followed by a corrupted header names the previous entry.
    let mut tar = RawTar::new().file("good", b"ok").finish();
    tar[1024] = b'x';
    let err = apply(&sb, &tar).unwrap_err();
    assert!(
        matches!(err, Error::MalformedHeader { ref after, .. } if after == "good"),
        "{err}"
    );

    // An empty stream is an empty layer (as for Go's reader), but a stream
    // that ends after an extended header is cut.
    assert_eq!(apply(&sb, b"").unwrap().entries, 0);
    let mut t = tar::Builder::new(Vec::new());
    t.append_pax_extensions([("path", &b"long"[..])]).unwrap();
    let cut = t.into_inner().unwrap();
    let err = apply(&sb, &cut[..1024]).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    sb.assert_contained(&before);
}

#[test]
fn unsupported_and_odd_entries() {
    let before = passwd();
    let sb = Sandbox::new();
    let tar = RawTar::new()
        .entry("sparse", EntryType::GNUSparse, "", b"")
        .finish();
    let err = apply(&sb, &tar).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotImplemented);

    let tar = RawTar::new().file(".wh..", b"").finish();
    assert!(matches!(
        apply(&sb, &tar).unwrap_err(),
        Error::BadPath { .. }
    ));

    // aufs bookkeeping is skipped, a path under a whiteout refused.
    let tar = RawTar::new()
        .dir(".wh..wh.plnk/")
        .file(".wh..wh.plnk/1.2", b"x")
        .finish();
    apply(&sb, &tar).unwrap();
    assert!(!sb.dest.join(".wh..wh.plnk").exists());
    let tar = RawTar::new().file(".wh.x/inner", b"").finish();
    assert!(matches!(
        apply(&sb, &tar).unwrap_err(),
        Error::BadPath { .. }
    ));
    assert!(!sb.dest.join(".wh.x").exists());

    let tar = RawTar::new().symlink("./", "elsewhere").finish();
    assert!(matches!(
        apply(&sb, &tar).unwrap_err(),
        Error::BadPath { .. }
    ));

    // Overlay xattrs in a layer would forge redirects: they are dropped.
    let mut t = tar::Builder::new(Vec::new());
    t.append_pax_extensions([("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..])])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("f").unwrap();
    h.set_size(0);
    h.set_mode(0o644);
    h.set_cksum();
    t.append(&h, &b""[..]).unwrap();
    let tar = t.into_inner().unwrap();
    apply(&sb, &tar).unwrap();
    assert!(common::xattrs(&sb.dest.join("f")).is_empty());
    sb.assert_contained(&before);
}
