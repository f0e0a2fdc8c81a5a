//! Linking with static archives of the C toolchain, shared by the build
//! scripts of berth's binaries (each includes this file with `#[path]`).
//!
//! rustc names the C libraries of std and libc (`-lgcc_s -lc -lm ...`)
//! after `-Bdynamic`, and on stable Rust one package cannot switch them to
//! static ones (`+crt-static` applies to every crate of the target, proc
//! macros included). What works per binary is a directory, passed with
//! `-L`, in which each such name is a symlink to the static archive that
//! stands for it: the linker takes a `.a` found in an earlier directory
//! over a `.so` in a later one, and a `-L` applies to every `-l` wherever
//! it stands. Only the package's binaries get the directory
//! (`rustc-link-arg-bins`); its tests link as usual.

use std::path::{Path, PathBuf};
use std::process::Command;

/// gcc's unwinder as a static archive, for `-lgcc_s`: std needs only the
/// `_Unwind_*` functions of libgcc_s.so, and loading that library costs
/// every exec a mapping, its relocations and its constructor, which probes
/// the CPU with `cpuid` (each one traps to the hypervisor in a VM).
#[allow(dead_code)] // not every build script that includes this file uses it
pub const UNWINDER: (&str, &str) = ("gcc_s", "gcc_eh");

/// libseccomp's static archive (libseccomp-dev ships it), for the
/// `-lseccomp` of the libseccomp crate: one shared library less to load
/// and relocate at every start of a binary that embeds the runtime.
#[allow(dead_code)]
pub const SECCOMP: (&str, &str) = ("seccomp", "seccomp");

/// Makes `OUT_DIR/static-libs` with `lib<name>.a` -> the archive
/// `lib<archive>.a` for each pair, and hands it to the package's binaries.
/// `who` names the binary in the error that a missing archive gives.
pub fn link_bins_with(archives: &[(&str, &str)], who: &str) {
    // Every includer lives in crates/<name>/.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../build-support/static_archives.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = out.join("static-libs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    for (name, archive) in archives {
        let real = find_archive(&cc, archive, who);
        let link = dir.join(format!("lib{name}.a"));
        std::os::unix::fs::symlink(&real, &link)
            .unwrap_or_else(|e| panic!("linking {} to {}: {e}", link.display(), real.display()));
    }
    println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
}

/// How the binaries that embed the runtime and start per container
/// (berth-runtime, berth-shim) are linked: at a fixed address (`-no-pie`:
/// no relocation of their pointers at each start; the reasons are in
/// their build.rs), with the unwinder and libseccomp static.
#[allow(dead_code)]
pub fn link_runtime_bins(who: &str) {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    link_bins_with(&[UNWINDER, SECCOMP], who);
}

/// The path of `lib<name>.a` as the C compiler (the linker driver) finds it.
fn find_archive(cc: &str, name: &str, who: &str) -> PathBuf {
    let file = format!("lib{name}.a");
    let out = Command::new(cc)
        .arg(format!("-print-file-name={file}"))
        .output()
        .unwrap_or_else(|e| panic!("running {cc} to find {file}: {e}"));
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // Not found, the compiler echoes the bare name back.
    if !path.is_absolute() || !Path::new(&path).exists() {
        let packages = match name {
            "seccomp" => "libseccomp-dev",
            _ => "libc6-dev gcc",
        };
        panic!(
            "{who} is linked with {file}, which {cc} does not find; \
             install the static library (Debian: apt-get install {packages})"
        );
    }
    path
}
