//! Garbage collection: mark what images and live leases reach, sweep the rest.
//!
//! Order matters for safety beside a running pull: the disk is listed
//! first, the database read second (in one read transaction). A blob or
//! layer that appears after the listing is not a candidate; one that was
//! there before is, by the lease protocol, already recorded in a lease or
//! an image when the database is read. Leases past their expiry are
//! deleted first, so a crashed pull's leftovers are collected.

use std::collections::BTreeSet;
use std::time::Duration;

use berth_errdefs::{ErrorKind, HasKind};
use berth_image::{ContentError, ContentStore, Digest, LayerError, LayerStore};

use crate::db::{sql, Store, StoreError};
use crate::images::parse_digest;

/// Why a garbage collection stopped.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("garbage collection: {0}")]
    Store(#[from] StoreError),
    #[error("garbage collection: {0}")]
    Content(#[from] ContentError),
    #[error("garbage collection: {0}")]
    Layer(#[from] LayerError),
}

impl HasKind for GcError {
    fn kind(&self) -> ErrorKind {
        match self {
            GcError::Store(e) => e.kind(),
            GcError::Content(e) => e.kind(),
            GcError::Layer(e) => e.kind(),
        }
    }
}

/// How a collection runs.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Partial downloads untouched for this long are removed (unless leased).
    pub ingest_max_age: Duration,
    /// Also remove leftovers of interrupted unpacks (`layers/tmp`). Only
    /// safe when no unpack runs: at start-up, before serving requests.
    pub startup: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            ingest_max_age: Duration::from_secs(24 * 3600),
            startup: false,
        }
    }
}

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: Vec<Digest>,
    pub layers_removed: Vec<Digest>,
    pub ingests_removed: Vec<String>,
    pub leases_expired: Vec<String>,
    /// Bytes of blobs removed (layer dirs are not measured).
    pub bytes_freed: u64,
}

/// Everything reachable from images and live leases.
#[derive(Default)]
struct Marked {
    blobs: BTreeSet<Digest>,
    layers: BTreeSet<Digest>,
    ingests: BTreeSet<String>,
}

impl Store {
    /// Removes blobs, layer dirs and stale ingests that no image and no
    /// live lease references.
    pub fn gc(
        &self,
        content: &ContentStore,
        layers: &LayerStore,
        options: &GcOptions,
    ) -> Result<GcReport, GcError> {
        let _guard = self.gc_lock.write().unwrap_or_else(|p| p.into_inner());
        let mut report = GcReport {
            leases_expired: self.expire_leases()?,
            ..GcReport::default()
        };

        // 1. List the disk.
        let blobs = content.list()?;
        let layer_dirs = layers.list()?;

        // 2. Mark from the database.
        let marked = self.mark()?;

        // 3. Sweep.
        for blob in blobs {
            if marked.blobs.contains(&blob.digest) {
                continue;
            }
            match content.delete(&blob.digest) {
                Ok(()) => {
                    report.bytes_freed += blob.size;
                    report.blobs_removed.push(blob.digest);
                }
                Err(ContentError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for chain in layer_dirs {
            if marked.layers.contains(&chain) {
                continue;
            }
            match layers.remove(&chain) {
                Ok(()) => report.layers_removed.push(chain),
                Err(LayerError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !report.layers_removed.is_empty() {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached("DELETE FROM layers WHERE chain_id = ?1")
                .map_err(sql("prepare forget layer"))?;
            for chain in &report.layers_removed {
                stmt.execute([chain.to_string()])
                    .map_err(sql("forget layer"))?;
            }
        }
        report.ingests_removed =
            content.cleanup_ingests(options.ingest_max_age, &marked.ingests)?;
        if options.startup {
            layers.cleanup_temp()?;
        }
        if report != GcReport::default() {
            tracing::info!(
                blobs = report.blobs_removed.len(),
                layers = report.layers_removed.len(),
                ingests = report.ingests_removed.len(),
                bytes = report.bytes_freed,
                "garbage collected"
            );
        }
        Ok(report)
    }

    fn mark(&self) -> Result<Marked, StoreError> {
        let mut conn = self.conn();
        // One read transaction: a consistent snapshot of images and leases.
        let tx = conn.transaction().map_err(sql("begin mark"))?;
        let mut m = Marked::default();
        {
            let mut stmt = tx
                .prepare_cached("SELECT id, manifest_digest, index_digest FROM images")
                .map_err(sql("prepare mark images"))?;
            let mut rows = stmt.query([]).map_err(sql("mark images"))?;
            while let Some(row) = rows.next().map_err(sql("mark images"))? {
                for i in 0..3 {
                    if let Some(d) = row
                        .get::<_, Option<String>>(i)
                        .map_err(sql("mark images"))?
                    {
                        m.blobs.insert(parse_digest("image digest", &d)?);
                    }
                }
            }
            let mut stmt = tx
                .prepare_cached("SELECT chain_id, blob_digest FROM image_layers")
                .map_err(sql("prepare mark layers"))?;
            let mut rows = stmt.query([]).map_err(sql("mark layers"))?;
            while let Some(row) = rows.next().map_err(sql("mark layers"))? {
                let chain: String = row.get(0).map_err(sql("mark layers"))?;
                m.layers.insert(parse_digest("chain id", &chain)?);
                if let Some(d) = row
                    .get::<_, Option<String>>(1)
                    .map_err(sql("mark layers"))?
                {
                    m.blobs.insert(parse_digest("layer digest", &d)?);
                }
            }
            let mut stmt = tx
                .prepare_cached(
                    "SELECT r.kind, r.resource FROM lease_resources r JOIN leases l ON l.id = r.lease_id
                     WHERE l.expires_at IS NULL OR l.expires_at > ?1",
                )
                .map_err(sql("prepare mark leases"))?;
            let mut rows = stmt.query([crate::db::now()]).map_err(sql("mark leases"))?;
            while let Some(row) = rows.next().map_err(sql("mark leases"))? {
                let kind: String = row.get(0).map_err(sql("mark leases"))?;
                let value: String = row.get(1).map_err(sql("mark leases"))?;
                match kind.as_str() {
                    "blob" => {
                        m.blobs.insert(parse_digest("leased blob", &value)?);
                    }
                    "layer" => {
                        m.layers.insert(parse_digest("leased layer", &value)?);
                    }
                    _ => {
                        m.ingests.insert(value);
                    }
                }
            }
        }
        tx.commit().map_err(sql("end mark"))?;
        Ok(m)
    }
}
