//! How berthd is linked, for a small resident set (the goal: 15 MiB
//! RSS idle). berthd stays a position-independent executable: it is
//! long-lived and parses untrusted API input, so its code and data keep
//! a randomised address (unlike the runtime and the shim, see their
//! build.rs).
//!
//! - gcc's unwinder as a static archive instead of libgcc_s.so
//!   (build-support/static_archives.rs): one shared library less mapped,
//!   relocated and kept resident.
//! - `-z pack-relative-relocs` (DT_RELR) where glibc supports it (2.36 and
//!   later): the PIE's 22,000 relative relocations are stored as bitmaps
//!   (6.7 KB) instead of 24-byte entries (535 KB), which the dynamic
//!   loader reads at every start and which then stay resident. The pages
//!   it writes (`.data.rel.ro`, the GOT) are the same either way.
//!
//! Measured in bench/engine/ANALYSIS.md.

#[path = "../../build-support/static_archives.rs"]
mod static_archives;

use std::process::Command;

fn main() {
    static_archives::link_bins_with(&[static_archives::UNWINDER], "berthd");
    if glibc_has_dt_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// glibc loads DT_RELR relocations from 2.36 on; an older one would refuse
/// to start a binary that has them, so they are used only when the glibc
/// the binary is built against (and, on this host, runs with) has them.
fn glibc_has_dt_relr() -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    // "glibc 2.36"
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.split_whitespace().nth(1) else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 36)
}
