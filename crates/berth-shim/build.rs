//! Links berth-shim as a non-PIE executable. A PIE's pointers in
//! `.data.rel.ro` are relocated at load, which makes those pages private
//! to every shim (about 200 KiB each); at a fixed address they stay clean
//! and are shared by all shims, like the code. One shim per container is
//! where that adds up (measured: 466 -> 195 KiB private per idle shim).
//! The price is a fixed load address for the shim's own image (its heap,
//! stack and libraries are still randomised); containerd's Go shim is
//! non-PIE too. Delete this file to go back to PIE.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
