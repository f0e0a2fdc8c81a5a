//! How berth-runtime is linked, for a cheap start: a runtime is started
//! three or four times per container (create and its re-exec, start,
//! delete), so what every exec pays adds up.
//!
//! - gcc's unwinder and libseccomp as static archives instead of
//!   libgcc_s.so and libseccomp.so (build-support/static_archives.rs): each
//!   shared library costs every start its loading and relocation (libgcc_s
//!   also its CPU-probing constructor). `--version` 0.96 -> 0.78 ms of CPU
//!   without libgcc_s, then 1.26 -> 1.17 ms wall-clock without libseccomp.
//! - Not position-independent (`-no-pie`), as berth-shim: a PIE's 8,800
//!   pointers are relocated at every start, which copies ~45 pages per
//!   exec. `--version` 1.12 -> 0.97 ms wall-clock, 185 -> 138 page faults;
//!   lifecycle A/B 9.04 -> 8.37 and 8.91 -> 8.17 ms. The price is a fixed
//!   address for the runtime's own code and data; its libraries, heap and
//!   stack are still randomised. The runtime is short-lived and parses
//!   only its caller's input (config.json, its state dir) in Rust; runc
//!   and crun are PIEs, containerd's Go shim is not. Delete the line to go
//!   back to a PIE.
//!
//! (300 runs each, alternating; lifecycles 150 alternating beside crun.)
//! tests/integration/tests/linking.rs checks the shared libraries.

#[path = "../../build-support/static_archives.rs"]
mod static_archives;

fn main() {
    static_archives::link_runtime_bins("berth-runtime");
}
