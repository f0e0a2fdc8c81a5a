#![forbid(unsafe_code)]
//! Layer tarballs for berth's image store.
//!
//! - [`apply_layer`] unpacks an (uncompressed) OCI layer tar into a layer
//!   directory, confined to it whatever the tar contains, turns OCI
//!   whiteouts into overlayfs whiteouts, and returns the stream's diff ID.
//! - [`write_diff`] turns an overlay upper directory back into an OCI layer
//!   tar; [`write_tree`] writes a whole directory (export, save). Both are
//!   deterministic and return the diff ID of what they wrote.
//! - [`decompressor`], [`auto_decompressor`] and [`compressor`] handle gzip
//!   and zstd streams.
//!
//! Everything is synchronous and streaming: callers in async code run it on
//! a blocking thread (`apply_layer` starts one helper thread of its own for
//! the file system work). The `tar` crate is used to decode and encode
//! single header blocks only; walking the stream and creating files is done
//! here, with `openat2(RESOLVE_IN_ROOT)` (Linux 5.6+).
//!
//! What hostile input gets:
//! - `..` that climbs above the root: [`Error::BadPath`]. Absolute names are
//!   taken relative to the root, as docker, containerd and GNU tar do.
//! - Symlinks (absolute, relative, chained, planted by earlier entries,
//!   replacing directories) are resolved by the kernel as if the layer
//!   directory were `/`; a parent that is a dangling symlink is an error.
//! - Hard links can only point at a non-directory already in the layer
//!   directory: anything else is [`Error::HardlinkTarget`].
//! - Sizes, entry counts and extension records are bounded
//!   ([`ApplyOptions`]); truncated, corrupt or non-tar streams are errors
//!   naming the entry and byte offset.
//! - `trusted.overlay.*` / `user.overlay.*` xattrs in a layer are dropped.

mod apply;
mod compression;
mod digest;
mod error;
mod flusher;
mod fsops;
mod idmap;
mod path;
mod reader;
mod root;
mod tarwrite;
mod unpack;
mod write;

pub use apply::{
    apply_layer, ApplyOptions, ApplyStats, OpaqueXattr, OPAQUE_MARKER, WHITEOUT_PREFIX,
};
pub use compression::{
    auto_decompressor, compressor, decompressor, detect_compression, Compression, Compressor,
    MAGIC_LEN,
};
pub use error::Error;
pub use idmap::{IdMap, IdRange};
pub use write::{write_diff, write_diff_with, write_tree, write_tree_with, TarStats, WriteOptions};
