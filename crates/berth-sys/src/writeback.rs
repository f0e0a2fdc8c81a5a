//! Starting a file's writeback early, so that a later fsync or syncfs
//! finds its data already on its way to the disk.
//!
//! A pull writes hundreds of megabytes (blobs and unpacked layers) and
//! makes them durable before it records them. Left alone, the kernel
//! writes dirty pages back only when a threshold of memory is dirty or
//! they are 30 s old, so the final sync would start the whole write at
//! the end and wait for it. `sync_file_range(SYNC_FILE_RANGE_WRITE)`
//! queues the range for writeback and returns without waiting: the disk
//! then works while the CPU decompresses the next file. It is no
//! durability guarantee (no metadata, no flush): the fsync or syncfs
//! that follows still is.

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::Result;

/// Queues `len` bytes of `fd` from `offset` (0 = to the end of the file)
/// for writeback, without waiting for it.
pub fn start(fd: BorrowedFd<'_>, offset: u64, len: u64) -> Result<()> {
    let off = i64::try_from(offset).unwrap_or(i64::MAX);
    let len = i64::try_from(len).unwrap_or(0);
    // SAFETY: sync_file_range takes a descriptor the caller borrows for the
    // call and plain integers; it touches no memory of ours.
    let rc =
        unsafe { libc::sync_file_range(fd.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE) };
    crate::check(rc.into()).map(drop)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn starts_writeback_of_a_written_file_and_refuses_a_pipe() {
        let mut f = tempfile_in_tmp();
        f.write_all(&[7u8; 1 << 16]).unwrap();
        super::start(f.as_fd(), 0, 0).unwrap();
        super::start(f.as_fd(), 4096, 8192).unwrap();
        let (r, _w) = rustix::pipe::pipe().unwrap();
        let err = super::start(r.as_fd(), 0, 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESPIPE));
    }

    fn tempfile_in_tmp() -> std::fs::File {
        let path = std::env::temp_dir().join(format!("berth-sys-writeback-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }
}
