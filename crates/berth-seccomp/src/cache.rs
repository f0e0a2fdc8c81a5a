//! The on-disk cache of compiled filters, so that starting many containers
//! with the same profile pays for libseccomp once.
//!
//! One file per profile, named by the hex SHA-256 of everything the BPF
//! depends on: the profile (without the listener fields, which do not
//! change the program), the libseccomp version, the CPU architecture and the
//! kernel release (libseccomp probes the kernel while compiling). An entry
//! carries its key and a SHA-256 of its own bytes; anything that does not
//! verify is recompiled and rewritten, never loaded.
//!
//! Entry layout (little-endian):
//! `magic[8] | key[32] | flags u32 | count u32 | count × (code u16, jt u8, jf u8, k u32) | sha256[32]`

use std::fs::{self, DirBuilder, File};
use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use berth_sys::seccomp::SockFilter;
use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

use crate::compile::{kernel_release, INSTRUCTION_BYTES, MAX_INSTRUCTIONS};
use crate::{compile, CompiledFilter, Error};

const MAGIC: &[u8; 8] = b"BSCMPv1\0";
const DIGEST_LEN: usize = 32;
const HEADER_LEN: usize = MAGIC.len() + DIGEST_LEN + 4 + 4;
const MAX_ENTRY_LEN: usize = HEADER_LEN + MAX_INSTRUCTIONS * INSTRUCTION_BYTES + DIGEST_LEN;
/// Every `SECCOMP_FILTER_FLAG_*` bit berth may store.
const KNOWN_FLAGS: u32 = 0x3f;

/// Like [`compile`], but reuses a verified entry in `cache_dir` when there is
/// one, and stores the result when there was none.
///
/// `cache_dir` is created (mode 0700) if missing and must not be writable by
/// anyone but the current user: a filter read from it is trusted.
pub fn compile_cached(profile: &LinuxSeccomp, cache_dir: &Path) -> Result<CompiledFilter, Error> {
    prepare_dir(cache_dir)?;
    let key = cache_key(profile)?;
    let path = cache_dir.join(format!("{}.bpf", hex::encode(key)));
    match read_entry(&path, &key) {
        Ok(Some(filter)) => return Ok(filter),
        Ok(None) => {}
        Err(reason) => {
            tracing::warn!(path = %path.display(), %reason, "corrupt seccomp cache entry; recompiling");
        }
    }
    let filter = compile(profile)?;
    if let Err(e) = write_entry(cache_dir, &path, &key, &filter) {
        // The filter is good; only the next start will be slower.
        tracing::warn!(error = %e, "could not store the compiled seccomp filter in the cache");
    }
    Ok(filter)
}

fn cache_error(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Cache { path, op, source }
}

/// Creates the directory and refuses one that others could write to.
fn prepare_dir(dir: &Path) -> Result<(), Error> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(cache_error(dir, "creating the directory"))?;
    let st = rustix::fs::stat(dir)
        .map_err(|e| cache_error(dir, "inspecting the directory")(e.into()))?;
    let euid = rustix::process::geteuid().as_raw();
    if st.st_uid != euid || st.st_mode & 0o022 != 0 {
        return Err(cache_error(dir, "checking the directory's owner and mode")(
            std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                "owned by uid {} with mode {:o}, but cached filters are trusted, so it must be \
                 owned by uid {euid} and not writable by group or others (chmod 700)",
                st.st_uid,
                st.st_mode & 0o7777
            ),
            ),
        ));
    }
    Ok(())
}

/// SHA-256 over everything the compiled program depends on.
fn cache_key(profile: &LinuxSeccomp) -> Result<[u8; DIGEST_LEN], Error> {
    let mut canonical = profile.clone();
    canonical.set_listener_path(None);
    canonical.set_listener_metadata(None);
    // Serializing the typed profile (not the user's JSON text) makes the key
    // independent of whitespace and key order.
    let json = serde_json::to_vec(&canonical).map_err(|e| {
        Error::invalid(
            "linux.seccomp",
            "<profile>",
            format!("cannot be serialized for hashing: {e}"),
        )
    })?;
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .map_err(|source| Error::Libseccomp {
            what: "report its version".into(),
            source,
        })?;
    let mut h = Sha256::new();
    h.update(MAGIC);
    for part in [version.as_str(), std::env::consts::ARCH, &kernel_release()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(&json);
    Ok(h.finalize().into())
}

/// Ok(None) when there is no entry; Err(reason) when there is one that does not verify.
fn read_entry(path: &Path, key: &[u8; DIGEST_LEN]) -> Result<Option<CompiledFilter>, String> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let mut bytes = Vec::new();
    file.take(MAX_ENTRY_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    decode(&bytes, key).map(Some)
}

fn decode(bytes: &[u8], key: &[u8; DIGEST_LEN]) -> Result<CompiledFilter, String> {
    if bytes.len() < HEADER_LEN + DIGEST_LEN || bytes.len() > MAX_ENTRY_LEN {
        return Err(format!("{} bytes is not a valid entry size", bytes.len()));
    }
    let (body, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
    if Sha256::digest(body).as_slice() != digest {
        return Err("checksum mismatch".into());
    }
    if &body[..MAGIC.len()] != MAGIC {
        return Err("unknown format".into());
    }
    let mut at = MAGIC.len();
    if &body[at..at + DIGEST_LEN] != key {
        return Err("entry belongs to another profile".into());
    }
    at += DIGEST_LEN;
    let u32_at = |i: usize| u32::from_le_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
    let flags = u32_at(at);
    let count = u32_at(at + 4) as usize;
    at += 8;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(format!("unknown load flags {flags:#x}"));
    }
    if count == 0 || count > MAX_INSTRUCTIONS || body.len() != at + count * INSTRUCTION_BYTES {
        return Err(format!(
            "instruction count {count} does not match the entry size"
        ));
    }
    let program = body[at..]
        .chunks_exact(INSTRUCTION_BYTES)
        .map(|c| SockFilter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Ok(CompiledFilter::new(program, flags))
}

fn encode(key: &[u8; DIGEST_LEN], filter: &CompiledFilter) -> Vec<u8> {
    let program = filter.program();
    let mut out = Vec::with_capacity(HEADER_LEN + program.len() * INSTRUCTION_BYTES + DIGEST_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(key);
    out.extend_from_slice(&filter.flags().to_le_bytes());
    out.extend_from_slice(&(program.len() as u32).to_le_bytes());
    for ins in program {
        out.extend_from_slice(&ins.code.to_le_bytes());
        out.extend_from_slice(&[ins.jt, ins.jf]);
        out.extend_from_slice(&ins.k.to_le_bytes());
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// Writes the entry atomically: temporary file, fsync, rename, fsync of the directory.
fn write_entry(
    dir: &Path,
    path: &PathBuf,
    key: &[u8; DIGEST_LEN],
    filter: &CompiledFilter,
) -> Result<(), Error> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".bpf")
        .tempfile_in(dir)
        .map_err(cache_error(dir, "creating a temporary file"))?;
    tmp.write_all(&encode(key, filter))
        .map_err(cache_error(tmp.path(), "writing"))?;
    tmp.as_file()
        .sync_all()
        .map_err(cache_error(tmp.path(), "syncing"))?;
    tmp.persist(path)
        .map_err(|e| cache_error(path, "renaming into place")(e.error))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(cache_error(dir, "syncing the directory"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CompiledFilter {
        CompiledFilter::new(
            vec![
                SockFilter {
                    code: 0x20,
                    jt: 0,
                    jf: 0,
                    k: 4,
                },
                SockFilter {
                    code: 0x06,
                    jt: 1,
                    jf: 2,
                    k: 0x7fff_0000,
                },
            ],
            berth_sys::seccomp::FLAG_LOG,
        )
    }

    #[test]
    fn entries_round_trip() {
        let key = [7u8; DIGEST_LEN];
        let bytes = encode(&key, &sample());
        assert_eq!(decode(&bytes, &key).unwrap(), sample());
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let key = [7u8; DIGEST_LEN];
        let bytes = encode(&key, &sample());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(
                decode(&bad, &key).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn truncated_and_foreign_entries_are_refused() {
        let key = [7u8; DIGEST_LEN];
        let bytes = encode(&key, &sample());
        assert!(decode(&bytes[..bytes.len() - 1], &key).is_err());
        assert!(decode(&[], &key).is_err());
        let err = decode(&bytes, &[8u8; DIGEST_LEN]).unwrap_err();
        assert!(err.contains("another profile"), "{err}");
    }
}
