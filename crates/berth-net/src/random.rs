//! Random bytes for bridge MACs and ULA prefixes: the kernel's CSPRNG
//! through getrandom(2), which blocks only until the pool is first seeded
//! at boot.

use std::io::Read;

/// Fills `buf` from getrandom(2), or /dev/urandom if the call is missing.
pub(crate) fn fill(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        match rustix::rand::getrandom(&mut buf[done..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
    }
    if done < buf.len() {
        let read =
            std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf[done..]));
        // Neither source: no kernel berth can run on; say so loudly.
        read.expect("no randomness: both getrandom(2) and /dev/urandom failed");
    }
}
