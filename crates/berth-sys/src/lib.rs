//! The only crate in berth that contains `unsafe`.
//!
//! Every other crate is `#![forbid(unsafe_code)]` and calls these wrappers
//! (or rustix, which is safe). Each wrapper is small, documents the
//! invariant that makes it sound, and returns `std::io::Result`.

pub mod activation;
pub mod bpf;
pub mod caps;
pub mod code_pages;
pub mod direct_io;
pub mod exe_copy;
pub mod ids;
pub mod malloc;
pub mod math;
pub mod mount;
pub mod process;
pub mod seccomp;
pub mod signalfd;
pub mod sysctl;
pub mod writeback;

pub use std::io::Result;

/// Converts a libc-style return value (-1 and errno on failure) into a Result.
fn check(ret: libc::c_long) -> Result<libc::c_long> {
    if ret == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
