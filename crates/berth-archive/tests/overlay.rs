//! Whiteouts against a real overlayfs. Mounts happen in a child in its own
//! private mount namespace (`unshare -m`), so they vanish with the child even
//! if a test fails halfway. Needs root.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use berth_archive::{apply_layer, write_diff, ApplyOptions, OpaqueXattr};
use common::RawTar;

/// Runs `script` with `sh -e` in a new private mount namespace; returns its
/// stdout and panics with its stderr on failure.
fn in_mount_ns(script: &str) -> String {
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-ec", script])
        .output()
        .expect("run unshare");
    assert!(
        out.status.success(),
        "script failed: {script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Lists a merged view as "path kind content" lines, sorted.
const LIST: &str = r#"cd "$M" && find . -mindepth 1 | sort | while read -r p; do
  if [ -d "$p" ]; then echo "$p dir"; else echo "$p file $(cat "$p")"; fi
done"#;

fn lower_tar() -> Vec<u8> {
    RawTar::new()
        .dir("keep/")
        .file("keep/a", b"a")
        .file("gone", b"gone")
        .dir("dir/")
        .file("dir/old1", b"old1")
        .dir("dir/sub/")
        .file("dir/sub/old2", b"old2")
        .dir("gone-dir/")
        .file("gone-dir/x", b"x")
        .finish()
}

fn merged_listing(lowers: &[&Path]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let merged = tmp.path().join("merged");
    fs::create_dir(&merged).unwrap();
    // Read-only overlay of lowers only (first is the top layer).
    let lowerdir: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    let script = format!(
        "M={m}; mount -t overlay overlay -o lowerdir={l} \"$M\"; {LIST}",
        m = merged.display(),
        l = lowerdir.join(":")
    );
    in_mount_ns(&script)
}

#[test]
fn oci_whiteouts_hide_lower_files_in_a_real_overlay() {
    let l1 = tempfile::tempdir().unwrap();
    let l2 = tempfile::tempdir().unwrap();
    apply_layer(&lower_tar()[..], l1.path(), &ApplyOptions::default()).unwrap();
    let upper = RawTar::new()
        .file(".wh.gone", b"")
        .file(".wh.gone-dir", b"")
        .dir("dir/")
        .file("dir/.wh..wh..opq", b"")
        .file("dir/new", b"new")
        .dir("keep/")
        .file("keep/b", b"b")
        .finish();
    let stats = apply_layer(&upper[..], l2.path(), &ApplyOptions::default()).unwrap();
    assert_eq!(stats.entries, 7);

    // On disk: overlay whiteouts, an opaque xattr, no .wh. files.
    let gone = fs::symlink_metadata(l2.path().join("gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(fs::symlink_metadata(l2.path().join("gone-dir"))
        .unwrap()
        .file_type()
        .is_char_device());
    let opaque = common::xattrs(&l2.path().join("dir"));
    assert_eq!(
        opaque,
        vec![(b"trusted.overlay.opaque".to_vec(), b"y".to_vec())]
    );
    assert!(!l2.path().join(".wh.gone").exists());
    assert!(!l2.path().join("dir/.wh..wh..opq").exists());

    let listing = merged_listing(&[l2.path(), l1.path()]);
    assert_eq!(
        listing, "./dir dir\n./dir/new file new\n./keep dir\n./keep/a file a\n./keep/b file b\n",
        "merged view"
    );
}

#[test]
fn write_diff_turns_an_upper_dir_into_oci_whiteouts() {
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper, work, merged) = (
        tmp.path().join("lower"),
        tmp.path().join("upper"),
        tmp.path().join("work"),
        tmp.path().join("merged"),
    );
    for d in [&lower, &upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    apply_layer(&lower_tar()[..], &lower, &ApplyOptions::default()).unwrap();

    // Change the container's view: delete a file and a directory, replace a
    // directory (overlay makes it opaque), add files.
    let script = format!(
        "M={m}; mount -t overlay overlay -o lowerdir={l},upperdir={u},workdir={w},redirect_dir=off,index=off,metacopy=off \"$M\"
         rm \"$M/gone\"; rm -r \"$M/gone-dir\" \"$M/dir\"; mkdir \"$M/dir\"; echo fresh > \"$M/dir/n\"; echo c > \"$M/keep/c\"",
        m = merged.display(),
        l = lower.display(),
        u = upper.display(),
        w = work.display()
    );
    in_mount_ns(&script);

    let mut tar = Vec::new();
    let stats = write_diff(&upper, &mut tar).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(&tar[..]).entries().unwrap() {
        let e = e.unwrap();
        names.push(String::from_utf8(e.path_bytes().into_owned()).unwrap());
    }
    assert_eq!(
        names,
        [
            ".wh.gone",
            ".wh.gone-dir",
            "dir/",
            "dir/.wh..wh..opq",
            "dir/n",
            "keep/",
            "keep/c"
        ],
        "entries of the diff"
    );
    assert_eq!(stats.entries, 7);
    // No overlay bookkeeping xattrs leak into the tar.
    assert!(!tar
        .windows(b"trusted.overlay".len())
        .any(|w| w == b"trusted.overlay"));

    // Full circle: the diff applied as a layer over the lower gives the
    // same view the container had.
    let layer = tmp.path().join("layer");
    fs::create_dir(&layer).unwrap();
    apply_layer(&tar[..], &layer, &ApplyOptions::default()).unwrap();
    let listing = merged_listing(&[&layer, &lower]);
    assert_eq!(
        listing,
        "./dir dir\n./dir/n file fresh\n./keep dir\n./keep/a file a\n./keep/c file c\n"
    );

    // Deterministic.
    let mut again = Vec::new();
    write_diff(&upper, &mut again).unwrap();
    assert!(again == tar);
}

#[test]
fn userxattr_overlays_use_the_user_opaque_xattr() {
    let layer = tempfile::tempdir().unwrap();
    let tar = RawTar::new()
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/f", b"f")
        .finish();
    let opts = ApplyOptions {
        opaque_xattr: OpaqueXattr::User,
        ..Default::default()
    };
    apply_layer(&tar[..], layer.path(), &opts).unwrap();
    assert_eq!(
        common::xattrs(&layer.path().join("d")),
        vec![(b"user.overlay.opaque".to_vec(), b"y".to_vec())]
    );
    // write_diff recognises either form.
    let mut out = Vec::new();
    write_diff(layer.path(), &mut out).unwrap();
    let names: Vec<String> = tar::Archive::new(&out[..])
        .entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
        .collect();
    assert_eq!(names, ["d/", "d/.wh..wh..opq", "d/f"]);
}

#[test]
fn write_diff_refuses_redirected_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    fs::create_dir_all(upper.join("moved")).unwrap();
    rustix::fs::lsetxattr(
        upper.join("moved"),
        "trusted.overlay.redirect",
        b"/orig",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let err = write_diff(&upper, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(err, berth_archive::Error::UnsupportedUpper { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("redirect_dir=off"));
}
