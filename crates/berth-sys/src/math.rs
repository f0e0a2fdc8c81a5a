//! The C `pow`, for a binary that should not load glibc's libm.so.
//!
//! berthd's one call into libm is tokio's: its multi-threaded scheduler
//! weighs its poll-time average with `f64::powf`, which compiles to a call
//! of the C `pow`. A binary that links this module's definition (berthd
//! does, with a reference from its `main.rs`) binds that call here at
//! link time, and the linker's `--as-needed` then drops libm.so: one
//! shared library less mapped, relocated and resident (about 0.7 MiB of
//! berthd's RSS, bench/engine/ANALYSIS.md). The definition is the libm
//! crate's, a port of musl's `pow`. rustc puts a `#[no_mangle]` function
//! of an executable in its dynamic symbol table, so a library calling
//! `pow` would bind here too; libc, the one library berth's binaries
//! load, does not call it. (With the release profile's fat LTO every
//! binary that links berth-sys keeps the definition, a few KiB; a cargo
//! feature could not keep it out of them, since one workspace build
//! unifies the features of a crate across all its users.)

/// `pow(3)`: `x` raised to the power `y`.
#[no_mangle]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

#[cfg(test)]
mod tests {
    use super::pow;

    /// Exact values (a test binary's own `f64::powf` may bind to this very
    /// function, so std is no reference here).
    #[test]
    fn pow_gives_exact_results_where_they_exist() {
        assert_eq!(pow(2.0, 10.0), 1024.0);
        assert_eq!(pow(10.0, -2.0), 0.01);
        assert_eq!(pow(0.25, 0.5), 0.5);
        assert_eq!(pow(-2.0, 3.0), -8.0);
        assert_eq!(pow(7.0, 0.0), 1.0);
        assert_eq!(pow(0.0, -1.0), f64::INFINITY);
        assert!(pow(-2.0, 0.5).is_nan());
        // tokio's use: the weight of n polls at an alpha of 0.1.
        assert!((pow(0.9, 3.0) - 0.729).abs() < 1e-15);
    }
}
