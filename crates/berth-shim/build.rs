//! Links berth-shim as a non-PIE executable. A PIE's pointers in
//! `.data.rel.ro` are relocated at load, which makes those pages private
//! to every shim (about 200 KiB each); at a fixed address they stay clean
//! and are shared by all shims, like the code. One shim per container is
//! where that adds up (measured: 466 -> 195 KiB private per idle shim).
//! The price is a fixed load address for the shim's own image (its heap,
//! stack and libraries are still randomised); containerd's Go shim is
//! non-PIE too.
//!
//! It is also linked with gcc's unwinder and libseccomp as static archives
//! instead of libgcc_s.so and libseccomp.so
//! (build-support/static_archives.rs), as berth-runtime is: two libraries
//! less to load and relocate at every shim's start.

#[path = "../../build-support/static_archives.rs"]
mod static_archives;

fn main() {
    static_archives::link_runtime_bins("berth-shim");
}
