//! Links berth-runtime with gcc's unwinder as a static archive instead of
//! libgcc_s.so (build-support/static_archives.rs): a runtime is started
//! three or four times per container (create and its re-exec, start,
//! delete), and the shared library cost each start about 0.14 ms of CPU
//! here (`--version`: 0.90 -> 0.76 ms, 300 runs each, alternating).
//! glibc stays dynamic and the binary stays position-independent.
//! tests/integration/tests/linking.rs checks that the binary does not need
//! libgcc_s.

#[path = "../../build-support/static_archives.rs"]
mod static_archives;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../build-support/static_archives.rs");
    static_archives::link_bins_with(static_archives::STATIC_UNWINDER, "berth-runtime");
}
