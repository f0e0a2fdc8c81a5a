//! Links berth-init statically: it is bind-mounted into containers whose
//! images may have no libc at all (busybox, distroless, scratch), so it
//! must not need a dynamic loader or any shared library.
//!
//! Rust's own static mode (`-C target-feature=+crt-static`) cannot be set
//! for one package of a workspace (only for every crate built for the
//! target, proc macros included, which then fail), so this does it at the
//! link: `-static -no-pie`, and, because rustc passes the libraries of std
//! and libc (`-lgcc_s -lc -lm ...`) after `-Bdynamic`, a directory searched
//! first in which each of those names is glibc's or gcc's static archive
//! (`libgcc_s.a` -> `libgcc_eh.a`, the unwinder). The linker takes a `.a`
//! found in an earlier directory over a `.so` in a later one. Only the
//! binary gets these arguments; the crate's tests link as usual.
//! `tests/static.rs` checks the result has no interpreter and no dynamic
//! section.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Each library rustc names for std and libc on linux-gnu, and the static
/// archive that stands for it.
const ARCHIVES: &[(&str, &str)] = &[
    ("gcc_s", "gcc_eh"),
    ("c", "c"),
    ("m", "m"),
    ("rt", "rt"),
    ("pthread", "pthread"),
    ("dl", "dl"),
    ("util", "util"),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = out.join("static-libs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    for (name, archive) in ARCHIVES {
        let real = find_archive(&cc, archive);
        let link = dir.join(format!("lib{name}.a"));
        std::os::unix::fs::symlink(&real, &link)
            .unwrap_or_else(|e| panic!("linking {} to {}: {e}", link.display(), real.display()));
    }
    println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
    println!("cargo:rustc-link-arg-bins=-static");
    println!("cargo:rustc-link-arg-bins=-no-pie");
}

/// The path of `lib<name>.a` as the C compiler (the linker driver) finds it.
fn find_archive(cc: &str, name: &str) -> PathBuf {
    let file = format!("lib{name}.a");
    let out = Command::new(cc)
        .arg(format!("-print-file-name={file}"))
        .output()
        .unwrap_or_else(|e| panic!("running {cc} to find {file}: {e}"));
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // Not found, the compiler echoes the bare name back.
    if !path.is_absolute() || !Path::new(&path).exists() {
        panic!(
            "berth-init is linked statically and needs {file}, which {cc} does not find; \
             install glibc's and gcc's static libraries (Debian: apt-get install libc6-dev gcc)"
        );
    }
    path
}
