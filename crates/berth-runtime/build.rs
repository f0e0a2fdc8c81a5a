//! Links berth-runtime with gcc's unwinder and libseccomp as static
//! archives instead of libgcc_s.so and libseccomp.so
//! (build-support/static_archives.rs): a runtime is started three or four
//! times per container (create and its re-exec, start, delete), and each
//! shared library costs every start its loading and relocation (libgcc_s
//! also its CPU-probing constructor): `--version` 0.96 -> 0.78 ms of CPU
//! without libgcc_s, then 1.26 -> 1.17 ms wall-clock without libseccomp
//! (300 runs each, alternating). glibc stays shared and the binary a PIE.
//! tests/integration/tests/linking.rs checks that the binary does not need
//! libgcc_s.

#[path = "../../build-support/static_archives.rs"]
mod static_archives;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../build-support/static_archives.rs");
    static_archives::link_bins_with(
        &[static_archives::UNWINDER, static_archives::SECCOMP],
        "berth-runtime",
    );
}
