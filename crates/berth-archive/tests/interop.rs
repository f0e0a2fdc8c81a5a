//! Interoperability with GNU tar in both directions: what GNU tar writes
//! (POSIX format, xattrs) applies to the same tree, and GNU tar extracts
//! what we write to the same tree. Needs root and GNU tar.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use berth_archive::{apply_layer, write_tree, ApplyOptions};
use common::snapshot;
use common::tree::build_tree;

const XATTR_FLAGS: [&str; 2] = ["--xattrs", "--xattrs-include=*"];

#[test]
fn gnu_tar_posix_archives_apply_to_the_same_tree() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let out = Command::new("tar")
        .args(["--format=posix", "--numeric-owner"])
        .args(XATTR_FLAGS)
        .arg("-C")
        .arg(src.path())
        .args(["-cf", "-", "."])
        .output()
        .expect("run GNU tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dest = tempfile::tempdir().unwrap();
    apply_layer(&out.stdout[..], dest.path(), &ApplyOptions::default()).unwrap();
    let (want, got) = (snapshot(src.path()), snapshot(dest.path()));
    for (path, node) in &want {
        assert_eq!(got.get(path), Some(node), "{path:?} differs");
    }
    assert_eq!(want, got);
}

#[test]
fn gnu_tar_extracts_what_we_write() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let mut tar = Vec::new();
    write_tree(src.path(), &mut tar).unwrap();

    let dest = tempfile::tempdir().unwrap();
    let mut child = Command::new("tar")
        .args(["--numeric-owner", "--same-owner", "--same-permissions"])
        .args(XATTR_FLAGS)
        .arg("-C")
        .arg(dest.path())
        .args(["-xf", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run GNU tar");
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "GNU tar complained: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (want, got) = (snapshot(src.path()), snapshot(dest.path()));
    for (path, node) in &want {
        assert_eq!(got.get(path), Some(node), "{path:?} differs");
    }
    assert_eq!(want, got);
}
