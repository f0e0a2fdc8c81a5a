//! Layer snapshots: each layer unpacked once, shared by every image.
//!
//! ```text
//! layers/<chain-hex>/diff        the layer's files, overlayfs whiteouts included
//! layers/<chain-hex>/meta.json   chain id, diff id, parent, tar size
//! layers/l/<short>  ->  ../<chain-hex>/diff    short names for long lowerdir lists
//! layers/tmp/                    unpacks in progress and removals
//! ```
//!
//! A layer dir is named by its chain id (OCI image spec: the chain id of
//! the first layer is its diff id, of layer n it is
//! `sha256(chain(n-1) + " " + diff(n))`), so two images with a common base
//! share the base's dirs. An unpack writes into `tmp/` and renames the
//! finished dir into place, so a layer dir is either complete or absent.
//!
//! Mounts are described, never performed here: the container path mounts
//! them. When the absolute lowerdir list does not fit in one page of mount
//! options, the description uses the short `l/` links, relative to
//! `layers/`, and says so in [`Mount::chdir`]: the mounter must resolve
//! them from that directory (e.g. in a thread that did `unshare(CLONE_FS)`
//! and `chdir`, so that no other thread's working directory changes).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_errdefs::{ErrorKind, HasKind};
use rustix::fs::{renameat_with, RenameFlags, CWD};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// A chain id: names a layer together with everything below it.
pub type ChainId = Digest;

/// overlayfs stacks at most this many lower layers (OVL_MAX_STACK).
pub const MAX_LAYERS: usize = 500;

/// Why a layer operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer store: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("layer {chain_id} is not unpacked")]
    NotFound { chain_id: ChainId },
    #[error("unpacking layer {chain_id} failed: {source}")]
    Apply {
        chain_id: ChainId,
        diff_id: Option<Digest>,
        source: Box<berth_archive::Error>,
    },
    #[error("layer chain id {actual} does not match the expected {expected}: the parent given does not belong to this layer")]
    ChainMismatch { expected: ChainId, actual: ChainId },
    #[error("layer {chain_id}: the uncompressed layer has diff id {actual}, but the image config says {expected}; the blob is corrupt, remove it and pull again")]
    DiffIdMismatch {
        chain_id: ChainId,
        expected: Digest,
        actual: String,
    },
    #[error("layer {chain_id}: reading the blob failed: {source}")]
    Read {
        chain_id: ChainId,
        source: io::Error,
    },
    #[error(
        "an image with {count} layers cannot be mounted: overlayfs stacks at most {MAX_LAYERS}"
    )]
    TooManyLayers { count: usize },
    #[error("{path} cannot be used in overlay mount options: it contains ',' (or, for the layer store, ':' or '\\'); choose a data root without them")]
    UnsafePath { path: PathBuf },
    #[error("the overlay mount options for {count} layers need {length} bytes, more than the kernel's limit of {limit}")]
    OptionsTooLong {
        count: usize,
        length: usize,
        limit: usize,
    },
}

impl HasKind for LayerError {
    fn kind(&self) -> ErrorKind {
        match self {
            LayerError::Io { .. } | LayerError::Read { .. } => ErrorKind::Internal,
            LayerError::NotFound { .. } => ErrorKind::NotFound,
            LayerError::Apply { source, .. } => source.kind(),
            LayerError::DiffIdMismatch { .. } => ErrorKind::DataLoss,
            LayerError::ChainMismatch { .. } => ErrorKind::InvalidArgument,
            LayerError::TooManyLayers { .. }
            | LayerError::OptionsTooLong { .. }
            | LayerError::UnsafePath { .. } => ErrorKind::InvalidArgument,
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LayerError + 'a {
    move |source| LayerError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// The chain ids of a stack of layers, bottom first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<ChainId> {
    let mut out: Vec<ChainId> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(parent) => Digest::sha256_of(format!("{parent} {diff}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// What is recorded beside each unpacked layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    pub chain_id: ChainId,
    pub diff_id: Digest,
    pub parent: Option<ChainId>,
    /// Bytes of the uncompressed tar.
    pub tar_size: u64,
    /// Bytes of file data in the layer (docker's layer size).
    pub size: u64,
}

/// The result of [`LayerStore::unpack`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub meta: LayerMeta,
    /// False if the layer was already there (by us earlier, or by a
    /// concurrent unpack that finished first); the blob was then not read
    /// to the end, or our copy was dropped.
    pub created: bool,
}

/// A mount to perform, in the form of mount(2)'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Filesystem type, e.g. `overlay`.
    pub fstype: String,
    /// The source argument, e.g. `overlay`.
    pub source: String,
    /// Mount options; join with `,` for mount(2)'s data.
    pub options: Vec<String>,
    /// If set, relative paths in the options are relative to this
    /// directory: mount with this as the working directory.
    pub chdir: Option<PathBuf>,
}

impl Mount {
    /// The options as mount(2)'s data string.
    pub fn data(&self) -> String {
        self.options.join(",")
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The layer store under `<data_root>/layers`.
#[derive(Debug, Clone)]
pub struct LayerStore {
    root: PathBuf,
}

impl LayerStore {
    pub fn open(data_root: &Path) -> Result<LayerStore, LayerError> {
        let root = data_root.join("layers");
        for dir in [root.join("l"), root.join("tmp"), root.join("empty")] {
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        Ok(LayerStore { root })
    }

    /// The `layers` directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The unpacked files of a layer.
    pub fn diff_path(&self, chain_id: &ChainId) -> PathBuf {
        self.layer_dir(chain_id).join("diff")
    }

    pub fn exists(&self, chain_id: &ChainId) -> bool {
        self.layer_dir(chain_id).join("meta.json").is_file()
    }

    pub fn meta(&self, chain_id: &ChainId) -> Result<LayerMeta, LayerError> {
        let path = self.layer_dir(chain_id).join("meta.json");
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => LayerError::NotFound {
                chain_id: chain_id.clone(),
            },
            _ => io_err("read", &path)(e),
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| io_err("parse", &path)(io::Error::new(io::ErrorKind::InvalidData, e)))
    }

    /// Unpacks a layer blob (plain, gzip or zstd: detected from its bytes)
    /// as `chain_id`, unless that layer is already there. The uncompressed
    /// stream must hash to `diff_id`, or nothing is kept.
    pub fn unpack<R: Read>(
        &self,
        chain_id: &ChainId,
        parent: Option<&ChainId>,
        diff_id: &Digest,
        blob: R,
        options: &berth_archive::ApplyOptions,
    ) -> Result<Unpacked, LayerError> {
        if self.exists(chain_id) {
            return Ok(Unpacked {
                meta: self.meta(chain_id)?,
                created: false,
            });
        }
        self.unpack_inner(parent, Some((chain_id, diff_id)), blob, options)
    }

    /// Unpacks a layer whose diff id is not known in advance (an imported
    /// tarball): the diff id and chain id are computed from the stream.
    /// The whole blob is always read.
    pub fn unpack_new<R: Read>(
        &self,
        parent: Option<&ChainId>,
        blob: R,
        options: &berth_archive::ApplyOptions,
    ) -> Result<Unpacked, LayerError> {
        self.unpack_inner(parent, None, blob, options)
    }

    fn unpack_inner<R: Read>(
        &self,
        parent: Option<&ChainId>,
        expected: Option<(&ChainId, &Digest)>,
        blob: R,
        options: &berth_archive::ApplyOptions,
    ) -> Result<Unpacked, LayerError> {
        let tmp = self.temp_dir("unpack")?;
        let meta = match self.unpack_into(&tmp, parent, expected, blob, options) {
            Ok(meta) => meta,
            Err(e) => {
                remove_tree(&tmp);
                return Err(e);
            }
        };
        let target = self.layer_dir(&meta.chain_id);
        let created = match renameat_with(CWD, &tmp, CWD, &target, RenameFlags::NOREPLACE) {
            Ok(()) => true,
            // The layer is there already (a concurrent unpack won, or an
            // import of a tarball we had): that copy is as good as ours.
            Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => {
                remove_tree(&tmp);
                false
            }
            Err(e) => {
                remove_tree(&tmp);
                return Err(io_err("rename into place", &target)(e.into()));
            }
        };
        crate::content::fsync_dir(&self.root).map_err(io_err("fsync", &self.root))?;
        self.short_link(&meta.chain_id)?;
        Ok(Unpacked { meta, created })
    }

    fn unpack_into<R: Read>(
        &self,
        tmp: &Path,
        parent: Option<&ChainId>,
        expected: Option<(&ChainId, &Digest)>,
        blob: R,
        options: &berth_archive::ApplyOptions,
    ) -> Result<LayerMeta, LayerError> {
        let diff = tmp.join("diff");
        fs::create_dir(&diff).map_err(io_err("create", &diff))?;
        // Errors name the layer by what we know of it before reading.
        let label = match expected {
            Some((c, _)) => c.clone(),
            None => parent.cloned().unwrap_or_else(|| Digest::sha256_of(b"")),
        };
        let read_err = |source| LayerError::Read {
            chain_id: label.clone(),
            source,
        };
        let (_, plain) = berth_archive::auto_decompressor(blob).map_err(read_err)?;
        // syncfs after applying: the rename that publishes the layer must
        // not survive a crash that loses its files.
        let options = berth_archive::ApplyOptions {
            sync: true,
            ..options.clone()
        };
        // apply_layer hashes the whole uncompressed stream, trailer included.
        let stats = berth_archive::apply_layer(plain, &diff, &options).map_err(|source| {
            LayerError::Apply {
                chain_id: label.clone(),
                diff_id: expected.map(|(_, d)| d.clone()),
                source: Box::new(source),
            }
        })?;
        let actual = Digest::parse(&stats.diff_id).map_err(|e| read_err(io::Error::other(e)))?;
        if let Some((chain_id, diff_id)) = expected {
            if &actual != diff_id {
                return Err(LayerError::DiffIdMismatch {
                    chain_id: chain_id.clone(),
                    expected: diff_id.clone(),
                    actual: stats.diff_id,
                });
            }
        }
        let chain_id = match parent {
            None => actual.clone(),
            Some(p) => Digest::sha256_of(format!("{p} {actual}").as_bytes()),
        };
        if let Some((expected_chain, _)) = expected {
            if expected_chain != &chain_id {
                return Err(LayerError::ChainMismatch {
                    expected: expected_chain.clone(),
                    actual: chain_id,
                });
            }
        }
        let meta = LayerMeta {
            chain_id,
            diff_id: actual,
            parent: parent.cloned(),
            tar_size: stats.tar_bytes,
            size: stats.bytes,
        };
        let meta_path = tmp.join("meta.json");
        let json = serde_json::to_vec(&meta).expect("layer meta serialises");
        write_synced(&meta_path, &json).map_err(io_err("write", &meta_path))?;
        crate::content::fsync_dir(tmp).map_err(io_err("fsync", tmp))?;
        Ok(meta)
    }

    /// Chain ids of all unpacked layers.
    pub fn list(&self) -> Result<Vec<ChainId>, LayerError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_err("list", &self.root))? {
            let entry = entry.map_err(io_err("list", &self.root))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if let Ok(d) = Digest::from_hex(crate::digest::Algorithm::Sha256, &name) {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a layer. It first moves out of sight (into `tmp/`), so a
    /// half-removed layer is never mistaken for an unpacked one.
    pub fn remove(&self, chain_id: &ChainId) -> Result<(), LayerError> {
        let dir = self.layer_dir(chain_id);
        let tmp = self.root.join("tmp").join(unique_name("remove"));
        match fs::rename(&dir, &tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LayerError::NotFound {
                    chain_id: chain_id.clone(),
                })
            }
            Err(e) => return Err(io_err("rename", &dir)(e)),
        }
        // Drop the short link if it points at this layer.
        for len in SHORT_LENGTHS {
            let link = self.root.join("l").join(&chain_id.hex()[..len]);
            if fs::read_link(&link).ok().as_deref() == Some(Path::new(&link_target(chain_id))) {
                let _ = fs::remove_file(&link);
            }
        }
        fs::remove_dir_all(&tmp).map_err(io_err("remove", &tmp))
    }

    /// Removes leftovers of interrupted unpacks and removals. Call it when
    /// no unpack runs (at start-up, under the GC lock).
    pub fn cleanup_temp(&self) -> Result<usize, LayerError> {
        let dir = self.root.join("tmp");
        let mut n = 0;
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            fs::remove_dir_all(entry.path()).map_err(io_err("remove", &entry.path()))?;
            n += 1;
        }
        // Dangling short links (their layer is gone).
        let l = self.root.join("l");
        for entry in fs::read_dir(&l).map_err(io_err("list", &l))? {
            let entry = entry.map_err(io_err("list", &l))?;
            if fs::metadata(entry.path()).is_err() {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(n)
    }

    /// The rootfs mount of a container: `chain` is the image's layers,
    /// bottom first; `upper` and `work` are the container's own dirs (on
    /// the same filesystem, absolute paths).
    pub fn container_mounts(
        &self,
        chain: &[ChainId],
        upper: &Path,
        work: &Path,
    ) -> Result<Mount, LayerError> {
        self.container_mounts_with_limit(chain, upper, work, option_limit())
    }

    /// As [`LayerStore::container_mounts`], with an explicit limit on the
    /// option string's length (exposed so tests can force the short form).
    pub fn container_mounts_with_limit(
        &self,
        chain: &[ChainId],
        upper: &Path,
        work: &Path,
        limit: usize,
    ) -> Result<Mount, LayerError> {
        if chain.len() > MAX_LAYERS {
            return Err(LayerError::TooManyLayers { count: chain.len() });
        }
        for c in chain {
            if !self.exists(c) {
                return Err(LayerError::NotFound {
                    chain_id: c.clone(),
                });
            }
        }
        // ',' separates mount options and ':' lower dirs; rather than rely
        // on the kernel's escaping, refuse such paths.
        for p in [upper, work] {
            if p.to_string_lossy().contains(',') {
                return Err(LayerError::UnsafePath { path: p.to_owned() });
            }
        }
        if self.root.to_string_lossy().contains([',', ':', '\\']) {
            return Err(LayerError::UnsafePath {
                path: self.root.clone(),
            });
        }
        let tail = [
            format!("upperdir={}", upper.display()),
            format!("workdir={}", work.display()),
        ];
        let build = |lowers: Vec<String>| {
            let mut options = vec![format!("lowerdir={}", lowers.join(":"))];
            options.extend(tail.iter().cloned());
            options
        };
        // overlayfs needs at least one lower: an image without layers gets
        // an empty one.
        let absolute: Vec<String> = if chain.is_empty() {
            vec![self.root.join("empty").display().to_string()]
        } else {
            chain
                .iter()
                .rev()
                .map(|c| self.diff_path(c).display().to_string())
                .collect()
        };
        let options = build(absolute);
        let length = options.join(",").len();
        if length <= limit {
            return Ok(Mount {
                fstype: "overlay".into(),
                source: "overlay".into(),
                options,
                chdir: None,
            });
        }
        let mut short = Vec::with_capacity(chain.len());
        for c in chain.iter().rev() {
            short.push(format!("l/{}", self.short_link(c)?));
        }
        let options = build(short);
        let length = options.join(",").len();
        if length > limit {
            return Err(LayerError::OptionsTooLong {
                count: chain.len(),
                length,
                limit,
            });
        }
        Ok(Mount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options,
            chdir: Some(self.root.clone()),
        })
    }

    /// Returns the name under `l/` of the short link to this layer's diff,
    /// creating it if needed. The name is a prefix of the chain id's hex,
    /// lengthened on the (rare) clash with another layer's link.
    fn short_link(&self, chain_id: &ChainId) -> Result<String, LayerError> {
        let target = link_target(chain_id);
        for len in SHORT_LENGTHS {
            let name = &chain_id.hex()[..len];
            let link = self.root.join("l").join(name);
            match fs::read_link(&link) {
                Ok(t) if t == Path::new(&target) => return Ok(name.to_owned()),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("readlink", &link)(e)),
            }
            match std::os::unix::fs::symlink(&target, &link) {
                Ok(()) => return Ok(name.to_owned()),
                // Raced with another creator: look again at this length.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if fs::read_link(&link).ok().as_deref() == Some(Path::new(&target)) {
                        return Ok(name.to_owned());
                    }
                }
                Err(e) => return Err(io_err("symlink", &link)(e)),
            }
        }
        unreachable!("the full 64-digit name is unique to this chain id")
    }

    fn layer_dir(&self, chain_id: &ChainId) -> PathBuf {
        self.root.join(chain_id.hex())
    }

    fn temp_dir(&self, kind: &str) -> Result<PathBuf, LayerError> {
        let dir = self.root.join("tmp").join(unique_name(kind));
        fs::create_dir(&dir).map_err(io_err("create", &dir))?;
        Ok(dir)
    }
}

/// Lengths of short link names tried in order.
const SHORT_LENGTHS: [usize; 4] = [10, 16, 32, 64];

fn link_target(chain_id: &ChainId) -> String {
    format!("../{}/diff", chain_id.hex())
}

/// The most bytes of mount data the kernel accepts: one page, with its NUL.
fn option_limit() -> usize {
    rustix::param::page_size() - 1
}

fn unique_name(kind: &str) -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{kind}-{}-{n}", std::process::id())
}

fn remove_tree(path: &Path) {
    if let Err(e) = fs::remove_dir_all(path) {
        tracing::warn!(path = %path.display(), error = %e, "could not remove a temporary layer dir; the next cleanup will");
    }
}

fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_spec() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let c = Digest::sha256_of(b"c");
        let ids = chain_ids(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(ids[0], a);
        let ab = Digest::sha256_of(format!("{a} {b}").as_bytes());
        assert_eq!(ids[1], ab);
        assert_eq!(ids[2], Digest::sha256_of(format!("{ab} {c}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
        // A different base gives a different chain for the same top layer.
        assert_ne!(chain_ids(&[b.clone(), c.clone()])[1], ids[2]);
    }
}
