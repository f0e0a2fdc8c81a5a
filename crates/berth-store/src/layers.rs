//! The unpacked layers berth knows of (rows of the `layers` table).

use berth_image::layers::LayerMeta;
use berth_image::Digest;
use rusqlite::{params, OptionalExtension};

use crate::db::{now, sql, CachedStatements, Store, StoreError};
use crate::images::parse_digest;

/// An unpacked layer as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    pub tar_size: u64,
    pub created_at: i64,
}

impl Store {
    /// Records an unpacked layer (idempotent).
    pub fn record_layer(&self, meta: &LayerMeta) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute_cached(
            "INSERT INTO layers (chain_id, diff_id, parent, tar_size, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(chain_id) DO NOTHING",
            params![
                meta.chain_id.to_string(),
                meta.diff_id.to_string(),
                meta.parent.as_ref().map(ToString::to_string),
                meta.tar_size as i64,
                now()
            ],
        )
        .map_err(sql("record layer"))?;
        Ok(())
    }

    /// The record of one layer, if any.
    pub fn layer(&self, chain_id: &Digest) -> Result<Option<LayerRecord>, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row_cached(
                "SELECT diff_id, parent, tar_size, created_at FROM layers WHERE chain_id = ?1",
                [chain_id.to_string()],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(sql("read layer"))?;
        let Some((diff_id, parent, tar_size, created_at)) = row else {
            return Ok(None);
        };
        Ok(Some(LayerRecord {
            chain_id: chain_id.clone(),
            diff_id: parse_digest("diff id", &diff_id)?,
            parent: parent.map(|p| parse_digest("chain id", &p)).transpose()?,
            tar_size: tar_size as u64,
            created_at,
        }))
    }
}
