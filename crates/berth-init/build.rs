//! Links berth-init statically: it is bind-mounted into containers whose
//! images may have no libc at all (busybox, distroless, scratch), so it
//! must not need a dynamic loader or any shared library.
//!
//! Rust's own static mode (`-C target-feature=+crt-static`) cannot be set
//! for one package of a workspace, so this does it at the link:
//! `-static -no-pie`, and a directory searched first in which each library
//! rustc names for std and libc is glibc's or gcc's static archive
//! (build-support/static_archives.rs). Only the binary gets these
//! arguments; the crate's tests link as usual.
//! `tests/init.rs` checks the result has no interpreter and no dynamic
//! section.

#[path = "../../build-support/static_archives.rs"]
mod static_archives;

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
    static_archives::link_bins_with(ARCHIVES, "berth-init");
    println!("cargo:rustc-link-arg-bins=-static");
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
