//! Writing a synced layer's small files back while the layer is still
//! being unpacked.
//!
//! A synced unpack ends with a syncfs, which must wait until every file is
//! on the disk. Large files are queued for writeback one by one as they
//! are written (`berth_sys::writeback`), but doing that per small file
//! costs a syscall that submits a page or two in the unpacking thread:
//! measured slower (bench/RESULTS.md). Instead, every [`FLUSH_EVERY`] bytes
//! of small files, a thread of the layer's own calls syncfs, so the disk
//! writes them while the unpack goes on and the final syncfs finds little
//! left. Its syncfs is only a head start: errors are the final one's to
//! report.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::mpsc::{channel, Sender};
use std::thread::JoinHandle;

/// Bytes of small files (their data plus a block for their metadata)
/// between two early syncfs calls.
pub(crate) const FLUSH_EVERY: u64 = 16 << 20;

/// What a small file counts for beyond its data: its inode and directory
/// entry, written back too.
pub(crate) const METADATA_BYTES: u64 = 4096;

/// Counts the small files' bytes and starts (on the first threshold: a
/// small layer never gets a thread) and nudges the flushing thread.
#[derive(Default)]
pub(crate) struct EarlyFlush {
    unflushed: u64,
    thread: Option<Flusher>,
}

impl EarlyFlush {
    /// Records `bytes` written to small files under `root`.
    pub(crate) fn wrote(&mut self, root: BorrowedFd<'_>, bytes: u64) {
        self.unflushed += bytes + METADATA_BYTES;
        if self.unflushed < FLUSH_EVERY {
            return;
        }
        self.unflushed = 0;
        if self.thread.is_none() {
            // Without a thread (no descriptor, no thread to be had) the
            // final syncfs simply does all the work.
            self.thread = root
                .try_clone_to_owned()
                .ok()
                .and_then(|fd| Flusher::start(fd).ok());
        }
        if let Some(t) = &self.thread {
            t.nudge();
        }
    }

    /// Waits for the thread's syncfs in progress, if any, and ends it.
    pub(crate) fn stop(&mut self) {
        self.thread.take();
    }
}

/// The thread: one syncfs per batch of nudges that arrived while the
/// previous one ran.
struct Flusher {
    nudges: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    fn start(fs: OwnedFd) -> std::io::Result<Flusher> {
        let (nudges, inbox) = channel::<()>();
        let thread = std::thread::Builder::new()
            .name("layer-flush".into())
            .spawn(move || {
                while inbox.recv().is_ok() {
                    while inbox.try_recv().is_ok() {}
                    let _ = rustix::fs::syncfs(&fs);
                }
            })?;
        Ok(Flusher {
            nudges: Some(nudges),
            thread: Some(thread),
        })
    }

    fn nudge(&self) {
        if let Some(n) = &self.nudges {
            let _ = n.send(());
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.nudges.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_starts_at_the_first_threshold_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        let root = std::os::fd::AsFd::as_fd(&root);
        let mut early = EarlyFlush::default();
        early.wrote(root, FLUSH_EVERY / 2);
        assert!(early.thread.is_none());
        early.wrote(root, FLUSH_EVERY / 2);
        assert!(early.thread.is_some());
        assert_eq!(early.unflushed, 0);
        early.stop();
        assert!(early.thread.is_none());
    }
}
