#![forbid(unsafe_code)]
//! Images for berth: references, digests, the content store, manifests,
//! layer snapshots, and import/save/load.
//!
//! Everything here is synchronous; the daemon calls it from blocking threads.

pub mod archive;
pub mod changes;
pub mod commit;
pub mod config;
pub mod content;
pub mod digest;
pub mod image;
pub mod import;
pub mod layers;
pub mod manifest;
pub mod platform;
pub mod reference;
mod tarfmt;
pub mod time;

pub use archive::{load, save, ArchiveError, LoadOptions, Loaded, SaveItem};
pub use commit::{commit, CommitError, CommitOptions};
pub use config::{ConfigError, ImageConfig};
pub use content::{BlobInfo, Committed, ContentError, ContentStore, IngestStatus, Writer};
pub use digest::{Algorithm, Digest, DigestError, Digester, HashingWriter, VerifyingReader};
pub use image::{assemble, AssembleError, ImageParts, LayerParts};
pub use import::{import, ImportError, ImportOptions};
pub use layers::{chain_ids, ChainId, LayerError, LayerStore, Mount};
pub use manifest::{Descriptor, Document, Index, Manifest, ManifestError};
pub use platform::{Platform, PlatformError};
pub use reference::{Reference, ReferenceError};
