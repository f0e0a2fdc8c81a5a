#![forbid(unsafe_code)]
//! Test kit for berth's root integration tests: fixtures made at test time
//! from Debian packages, a runner for the berth binaries, and a leak check
//! that every test ends with.

pub mod cli;
pub mod daemon;
pub mod dns;
pub mod fixtures;
pub mod leaks;
pub mod netcheck;
pub mod netlab;
pub mod peers;
pub mod runtime;
pub mod shim;
pub mod tarball;

/// Skips (with a message on stderr) when not root: these tests run real containers.
pub fn require_root() -> bool {
    if rustix::process::geteuid().is_root() {
        true
    } else {
        eprintln!("skipped: needs root (run the suite as root)");
        false
    }
}

/// Seconds since the epoch, as `docker events --since/--until` take them.
pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// Command output as text, for assertions and messages.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Polls `f` until it is true, panicking after `secs` seconds.
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
