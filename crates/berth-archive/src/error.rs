//! The one error type of this crate.
//!
//! Every failure names what it was working on: the tar entry (as written in
//! the archive, lossily decoded) when applying a layer, or the path under the
//! walked directory when writing one. Errors caused by the input (a hostile
//! or corrupt layer) are distinguished from local failures (disk full,
//! permissions) through [`HasKind`], so the image store can tell "bad blob,
//! pull again" from "fix the host".

use std::io;
use std::path::PathBuf;

use berth_errdefs::{ErrorKind, HasKind};

/// Everything that can go wrong while applying or writing a layer tar.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The destination or source directory itself could not be opened.
    #[error("cannot open layer directory {path}: {source}")]
    OpenRoot { path: PathBuf, source: io::Error },

    /// Reading the (decompressed) layer stream failed: a corrupt gzip/zstd
    /// stream or an I/O error of the underlying reader.
    #[error("reading the layer stream at byte {offset} (after entry {after:?}) failed: {source}; the blob is corrupt or unreadable, fetch it again")]
    Read {
        offset: u64,
        after: String,
        source: io::Error,
    },

    /// The stream ended inside a header, an entry's data or its padding,
    /// or right after an extended header.
    #[error("layer stream is truncated: it ended {what} (entry {entry:?}, byte {offset}); fetch the blob again")]
    Truncated {
        entry: String,
        offset: u64,
        what: &'static str,
    },

    /// A header block that is not a valid tar header.
    #[error("malformed tar header at byte {offset} (after entry {after:?}): {reason}")]
    MalformedHeader {
        offset: u64,
        after: String,
        reason: String,
    },

    /// An entry path or link target that is unusable: it escapes the layer
    /// root with `..`, contains NUL, is too long or too deep.
    #[error("entry {entry:?} has an unusable path {path:?}: {reason}")]
    BadPath {
        entry: String,
        path: String,
        reason: &'static str,
    },

    /// A single entry declares more data than [`crate::ApplyOptions::max_entry_size`].
    #[error(
        "entry {entry:?} declares {size} bytes, more than the limit of {limit} bytes per entry"
    )]
    EntryTooLarge {
        entry: String,
        size: u64,
        limit: u64,
    },

    /// The layer's entries add up to more than [`crate::ApplyOptions::max_total_size`].
    #[error("layer exceeds the limit of {limit} bytes of file data at entry {entry:?}")]
    TotalTooLarge { entry: String, limit: u64 },

    /// The layer has more entries than [`crate::ApplyOptions::max_entries`].
    #[error("layer exceeds the limit of {limit} entries at entry {entry:?}")]
    TooManyEntries { entry: String, limit: u64 },

    /// A PAX or GNU long-name record larger than we accept.
    #[error("entry {entry:?} has a {what} of {size} bytes, more than the limit of {limit} bytes")]
    MetadataTooLarge {
        entry: String,
        what: &'static str,
        size: u64,
        limit: u64,
    },

    /// A tar feature berth does not extract (sparse files, multi-volume, unknown types).
    #[error("entry {entry:?} uses an unsupported tar feature: {what}")]
    Unsupported { entry: String, what: String },

    /// A hard link whose target is not an existing non-directory in this layer.
    #[error(
        "hard link {entry:?} points at {target:?}, which is not a file in this layer: {source}"
    )]
    HardlinkTarget {
        entry: String,
        target: String,
        source: io::Error,
    },

    /// An owner id that the configured id mapping does not cover (an entry
    /// of a layer being applied, or a file of a tree being written).
    #[error("{entry:?} is owned by {which} {id}, which the id mapping does not cover")]
    UnmappedId {
        entry: String,
        which: &'static str,
        id: u64,
    },

    /// A file system operation on the destination failed.
    #[error("{op} for entry {entry:?} failed: {source}")]
    Apply {
        entry: String,
        op: &'static str,
        source: io::Error,
    },

    /// Reading the source tree failed while writing a tar.
    #[error("{op} {path:?} while writing a layer tar failed: {source}")]
    Walk {
        path: String,
        op: &'static str,
        source: io::Error,
    },

    /// The source tree uses an overlayfs feature that has no tar form.
    #[error("{path:?} in the upper directory uses overlayfs {what}, which cannot be expressed in a layer tar; mount overlays with redirect_dir=off,metacopy=off")]
    UnsupportedUpper { path: String, what: &'static str },

    /// Writing the produced tar to its sink failed.
    #[error("writing the layer tar failed at entry {entry:?}: {source}")]
    Write { entry: String, source: io::Error },
}

/// Lossy, printable form of raw tar path bytes for error messages.
pub(crate) fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => ErrorKind::DataLoss,
        _ => ErrorKind::Internal,
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::OpenRoot { source, .. } => io_kind(source),
            Error::Read { source, .. } => match source.kind() {
                io::ErrorKind::InvalidData
                | io::ErrorKind::InvalidInput
                | io::ErrorKind::UnexpectedEof => ErrorKind::DataLoss,
                _ => ErrorKind::Internal,
            },
            Error::Truncated { .. } => ErrorKind::DataLoss,
            Error::MalformedHeader { .. }
            | Error::BadPath { .. }
            | Error::EntryTooLarge { .. }
            | Error::TotalTooLarge { .. }
            | Error::TooManyEntries { .. }
            | Error::MetadataTooLarge { .. }
            | Error::HardlinkTarget { .. }
            | Error::UnmappedId { .. } => ErrorKind::InvalidArgument,
            Error::Unsupported { .. } => ErrorKind::NotImplemented,
            Error::UnsupportedUpper { .. } => ErrorKind::FailedPrecondition,
            Error::Apply { source, .. } | Error::Walk { source, .. } => io_kind(source),
            Error::Write { .. } => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_input_is_invalid_argument_and_corruption_is_data_loss() {
        let e = Error::BadPath {
            entry: "../x".into(),
            path: "../x".into(),
            reason: "escapes",
        };
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = Error::Truncated {
            entry: "a".into(),
            offset: 512,
            what: "inside the entry's data",
        };
        assert_eq!(e.kind(), ErrorKind::DataLoss);
        let e = Error::Read {
            offset: 0,
            after: String::new(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "corrupt deflate stream"),
        };
        assert_eq!(e.kind(), ErrorKind::DataLoss);
        let e = Error::Apply {
            entry: "a".into(),
            op: "create",
            source: io::Error::from_raw_os_error(28),
        };
        assert_eq!(e.kind(), ErrorKind::Internal);
    }
}
