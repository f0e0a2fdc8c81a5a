//! glibc malloc's tuning knobs, for a long-running daemon that should
//! give memory back when it goes idle.
//!
//! glibc gives each thread that allocates its own arena (up to eight per
//! CPU), and an arena keeps the memory freed into it. A daemon whose
//! requests run on a pool of threads thus holds, long after a burst, the
//! peak of every thread's arena. Fewer arenas (the threads then share
//! them, with a lock) and a trim when work stops keep its resident size
//! near what it uses.

/// Caps the number of malloc arenas at `n` (`M_ARENA_MAX`). Call it
/// before the process starts threads.
pub fn limit_arenas(n: i32) -> bool {
    // SAFETY: mallopt only sets a tunable of the allocator; it takes two
    // integers and is safe to call at any time.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, n) == 1 }
}

/// Returns freed memory at the top of every arena, and whole free pages
/// inside them, to the kernel (`malloc_trim(0)`). Returns whether any
/// memory was released.
pub fn trim() -> bool {
    // SAFETY: malloc_trim walks the allocator's own lists under its locks;
    // it takes a plain integer.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(test)]
mod tests {
    #[test]
    fn arenas_can_be_limited() {
        assert!(super::limit_arenas(8));
    }

    #[test]
    fn trim_gives_back_freed_pages_below_a_live_block() {
        // Small blocks (under the mmap threshold) come from the arena; with
        // a live block above them, freeing them leaves free pages that only
        // a trim hands back.
        let blocks: Vec<Vec<u8>> = (0..4096).map(|i| vec![i as u8; 4000]).collect();
        let pin = vec![1u8; 4000];
        drop(blocks);
        assert!(
            super::trim(),
            "16 MB freed under a live block, nothing trimmed"
        );
        assert_eq!(pin[0], 1);
    }
}
