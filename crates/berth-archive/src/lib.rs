#![forbid(unsafe_code)]
//! Layer tarballs for berth's image store.
//!
//! - [`apply_layer`] unpacks an (uncompressed) OCI layer tar into a layer
//!   directory, confined to it whatever the tar contains, and turns OCI
//!   whiteouts into overlayfs whiteouts. It returns the stream's diff ID.
//! - [`write_diff`] turns an overlay upper directory back into an OCI layer
//!   tar; [`write_tree`] writes a whole directory (export, save).
//! - [`decompressor`], [`auto_decompressor`] and [`compressor`] handle gzip
//!   and zstd streams.
//!
//! Everything is synchronous and streaming: callers in async code run it on
//! a blocking thread. The `tar` crate is used to decode and encode single
//! header blocks only; walking the stream and creating files is done here,
//! with `openat2(RESOLVE_IN_ROOT)` (see `root.rs` for the confinement model).

mod apply;
mod compression;
mod digest;
mod error;
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
