//! Links the berth CLI with gcc's unwinder as a static archive instead of
//! libgcc_s.so (build-support/static_archives.rs): every command is a new
//! process, and that shared library cost each start about 0.14 ms of CPU
//! (measured on berth-runtime, which links the same way).

#[path = "../../build-support/static_archives.rs"]
mod static_archives;

fn main() {
    static_archives::link_bins_with(&[static_archives::UNWINDER], "berth");
}
