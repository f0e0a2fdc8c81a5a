//! sha256 of the uncompressed tar stream (the layer's diff ID), computed
//! while the stream passes through, so no second read is needed.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

/// Bytes hashed on the reading thread before the rest goes to a helper
/// thread: small layers (most of them) never pay for the thread.
const OFFLOAD_AFTER: u64 = 4 << 20;
/// Bytes collected per message to the helper thread.
const SEND_AT: usize = 256 << 10;
/// Messages in flight to the helper thread (bounds the memory held).
const IN_FLIGHT: usize = 4;

/// Counts and hashes every byte read through it.
///
/// Past the first [`OFFLOAD_AFTER`] bytes the hashing moves to a helper
/// thread, fed copies of what was read, in order: in a layer's unpack the
/// reading thread (inflate, hash, tar parsing) is the bottleneck and the
/// file-writing thread waits for it, so a copy (a fraction of the cost of
/// sha256) takes the hash off the critical path onto time the other core
/// had idle.
pub(crate) struct HashingReader<R> {
    inner: R,
    count: u64,
    state: HashState,
    /// Starting the helper thread failed once; do not try again.
    no_helper: bool,
}

enum HashState {
    Inline(Sha256),
    Offloaded(Offload),
}

struct Offload {
    pending: Vec<u8>,
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    /// Buffers the helper is done with, for reuse.
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    helper: std::thread::JoinHandle<Sha256>,
}

impl Offload {
    fn start(hasher: Sha256) -> io::Result<Offload> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (spare_tx, spare) = std::sync::mpsc::channel();
        let helper = std::thread::Builder::new()
            .name("berth-hash".into())
            .spawn(move || {
                let mut hasher = hasher;
                for mut chunk in rx {
                    hasher.update(&chunk);
                    chunk.clear();
                    // The reader may be gone already; the buffer just drops.
                    let _ = spare_tx.send(chunk);
                }
                hasher
            })?;
        Ok(Offload {
            pending: Vec::with_capacity(SEND_AT * 2),
            tx,
            spare,
            helper,
        })
    }

    fn send_pending(&mut self) -> io::Result<()> {
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(SEND_AT * 2));
        let full = std::mem::replace(&mut self.pending, next);
        self.tx
            .send(full)
            .map_err(|_| io::Error::other("the hashing thread stopped"))
    }

    fn finish(mut self) -> io::Result<Sha256> {
        if !self.pending.is_empty() {
            self.send_pending()?;
        }
        drop(self.tx);
        self.helper
            .join()
            .map_err(|_| io::Error::other("the hashing thread panicked"))
    }
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            count: 0,
            state: HashState::Inline(Sha256::new()),
            no_helper: false,
        }
    }

    /// `sha256:<hex>` of everything read, and the byte count.
    pub(crate) fn finish(self) -> io::Result<(String, u64)> {
        let hasher = match self.state {
            HashState::Inline(h) => h,
            HashState::Offloaded(o) => o.finish()?,
        };
        Ok((
            format!("sha256:{}", hex::encode(hasher.finalize())),
            self.count,
        ))
    }

    fn hash(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let HashState::Inline(h) = &mut self.state {
            if self.count <= OFFLOAD_AFTER || self.no_helper {
                h.update(bytes);
                return Ok(());
            }
            // A host that cannot start a thread just now still unpacks:
            // the hash stays inline.
            match Offload::start(h.clone()) {
                Ok(o) => self.state = HashState::Offloaded(o),
                Err(e) => {
                    tracing::debug!(error = %e, "hashing inline: no helper thread");
                    self.no_helper = true;
                    h.update(bytes);
                    return Ok(());
                }
            }
        }
        if let HashState::Offloaded(o) = &mut self.state {
            o.pending.extend_from_slice(bytes);
            if o.pending.len() >= SEND_AT {
                o.send_pending()?;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.hash(&buf[..n])?;
        Ok(n)
    }
}

/// Counts and hashes every byte written through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// `sha256:<hex>` of everything written, the byte count, and the sink.
    pub(crate) fn finish(self) -> (String, u64, W) {
        (
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
            self.inner,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_both_ways() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let mut r = HashingReader::new(&b""[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.finish().unwrap(), (empty.to_string(), 0));
        let abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (d, n, inner) = w.finish();
        assert_eq!((d.as_str(), n, inner.as_slice()), (abc, 3, &b"abc"[..]));
    }

    #[test]
    fn a_long_stream_hashed_on_the_helper_thread_matches_one_hashed_inline() {
        // Past OFFLOAD_AFTER, in reads of odd sizes, ending mid-chunk.
        let data: Vec<u8> = (0..(OFFLOAD_AFTER as usize * 3 + 12_345))
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        let want = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
        let mut r = HashingReader::new(&data[..]);
        let mut buf = vec![0u8; 100_003];
        while r.read(&mut buf).unwrap() > 0 {}
        assert!(matches!(r.state, HashState::Offloaded(_)));
        assert_eq!(r.finish().unwrap(), (want, data.len() as u64));
    }
}
