#![forbid(unsafe_code)]
//! Images for berth: references, digests, the content store, manifests,
//! layer snapshots, and import/save/load.
//!
//! Everything here is synchronous; the daemon calls it from blocking threads.

pub mod content;
pub mod digest;
pub mod reference;

pub use content::{BlobInfo, Committed, ContentError, ContentStore, IngestStatus, Writer};
pub use digest::{Algorithm, Digest, DigestError, Digester, HashingWriter, VerifyingReader};
pub use reference::{Reference, ReferenceError};
