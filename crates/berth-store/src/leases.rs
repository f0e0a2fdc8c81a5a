//! Leases: what an operation in flight holds against garbage collection.
//!
//! A pull creates a lease, adds each blob, ingest and layer to it *before*
//! writing that thing, and deletes the lease when the image is recorded
//! (or lets it expire if the pull dies). GC lists the disk first and reads
//! the database second, so anything written after the listing is not a
//! candidate, and anything written before it is already in a lease.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_image::Digest;
use rusqlite::{params, OptionalExtension};

use crate::db::{now, sql, CachedStatements, Store, StoreError};
use crate::images::parse_digest;

/// Something a lease keeps alive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeaseResource {
    /// A committed blob in the content store.
    Blob(Digest),
    /// An unpacked layer dir, by chain id.
    Layer(Digest),
    /// A partial write in the content store, by ingest ref.
    Ingest(String),
}

impl LeaseResource {
    fn parts(&self) -> (&'static str, String) {
        match self {
            LeaseResource::Blob(d) => ("blob", d.to_string()),
            LeaseResource::Layer(d) => ("layer", d.to_string()),
            LeaseResource::Ingest(r) => ("ingest", r.clone()),
        }
    }
}

/// A lease and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: String,
    pub created_at: i64,
    /// Seconds since the epoch after which the lease no longer protects
    /// anything; `None` never expires.
    pub expires_at: Option<i64>,
    pub resources: Vec<LeaseResource>,
}

static LEASE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Creates a lease with a fresh id, expiring after `ttl` if given.
    pub fn create_lease(&self, ttl: Option<Duration>) -> Result<String, StoreError> {
        let n = LEASE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let seed = format!("{}-{nanos}-{n}", std::process::id());
        let id = format!("lease-{}", &Digest::sha256_of(seed.as_bytes()).hex()[..16]);
        self.create_lease_with_id(&id, ttl)?;
        Ok(id)
    }

    /// Creates a lease with a chosen id.
    pub fn create_lease_with_id(&self, id: &str, ttl: Option<Duration>) -> Result<(), StoreError> {
        let created = now();
        let expires = ttl.map(|t| created.saturating_add(t.as_secs().min(i64::MAX as u64) as i64));
        let conn = self.conn();
        let res = conn.execute_cached(
            "INSERT INTO leases (id, created_at, expires_at) VALUES (?1, ?2, ?3)",
            params![id, created, expires],
        );
        match res {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::LeaseExists { id: id.to_owned() })
            }
            Err(e) => Err(sql("create lease")(e)),
        }
    }

    /// Adds a resource to a lease (idempotent).
    pub fn lease_add(&self, lease: &str, resource: &LeaseResource) -> Result<(), StoreError> {
        let (kind, value) = resource.parts();
        let conn = self.conn();
        let exists: Option<i64> = conn
            .query_row_cached("SELECT 1 FROM leases WHERE id = ?1", [lease], |r| r.get(0))
            .optional()
            .map_err(sql("find lease"))?;
        if exists.is_none() {
            return Err(StoreError::LeaseNotFound {
                id: lease.to_owned(),
            });
        }
        conn.execute_cached(
            "INSERT OR IGNORE INTO lease_resources (lease_id, kind, resource) VALUES (?1, ?2, ?3)",
            params![lease, kind, value],
        )
        .map_err(sql("add lease resource"))?;
        Ok(())
    }

    /// Drops a resource from a lease.
    pub fn lease_remove(&self, lease: &str, resource: &LeaseResource) -> Result<(), StoreError> {
        let (kind, value) = resource.parts();
        let conn = self.conn();
        conn.execute_cached(
            "DELETE FROM lease_resources WHERE lease_id = ?1 AND kind = ?2 AND resource = ?3",
            params![lease, kind, value],
        )
        .map_err(sql("remove lease resource"))?;
        Ok(())
    }

    /// Deletes a lease; what it held becomes collectable unless an image holds it.
    pub fn delete_lease(&self, lease: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        let n = conn
            .execute_cached("DELETE FROM leases WHERE id = ?1", [lease])
            .map_err(sql("delete lease"))?;
        if n == 0 {
            return Err(StoreError::LeaseNotFound {
                id: lease.to_owned(),
            });
        }
        Ok(())
    }

    /// All leases, expired ones included.
    pub fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT id, created_at, expires_at FROM leases ORDER BY id")
            .map_err(sql("prepare leases"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })
            .map_err(sql("query leases"))?;
        let mut leases = Vec::new();
        for row in rows {
            let (id, created_at, expires_at) = row.map_err(sql("read leases"))?;
            leases.push(Lease {
                id,
                created_at,
                expires_at,
                resources: Vec::new(),
            });
        }
        let mut stmt = conn
            .prepare_cached("SELECT lease_id, kind, resource FROM lease_resources ORDER BY lease_id, kind, resource")
            .map_err(sql("prepare lease resources"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(sql("query lease resources"))?;
        for row in rows {
            let (lease, kind, value) = row.map_err(sql("read lease resources"))?;
            let resource = match kind.as_str() {
                "blob" => LeaseResource::Blob(parse_digest("leased blob", &value)?),
                "layer" => LeaseResource::Layer(parse_digest("leased layer", &value)?),
                _ => LeaseResource::Ingest(value),
            };
            if let Some(l) = leases.iter_mut().find(|l| l.id == lease) {
                l.resources.push(resource);
            }
        }
        Ok(leases)
    }

    /// Deletes leases whose expiry has passed; returns their ids.
    pub fn expire_leases(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "DELETE FROM leases WHERE expires_at IS NOT NULL AND expires_at <= ?1 RETURNING id",
            )
            .map_err(sql("prepare expire leases"))?;
        let rows = stmt
            .query_map([now()], |r| r.get::<_, String>(0))
            .map_err(sql("expire leases"))?;
        let mut ids = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("expire leases"))?;
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = store.create_lease(None).unwrap();
        let blob = LeaseResource::Blob(Digest::sha256_of(b"x"));
        store.lease_add(&id, &blob).unwrap();
        store.lease_add(&id, &blob).unwrap();
        store
            .lease_add(&id, &LeaseResource::Ingest("pull-1".into()))
            .unwrap();
        let leases = store.leases().unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[0].resources.len(), 2);
        store.lease_remove(&id, &blob).unwrap();
        assert_eq!(
            store.leases().unwrap()[0].resources,
            vec![LeaseResource::Ingest("pull-1".into())]
        );
        assert!(matches!(
            store.create_lease_with_id(&id, None),
            Err(StoreError::LeaseExists { .. })
        ));
        store.delete_lease(&id).unwrap();
        assert!(matches!(
            store.lease_add(&id, &blob),
            Err(StoreError::LeaseNotFound { .. })
        ));
        assert!(store.leases().unwrap().is_empty());
    }

    #[test]
    fn expired_leases_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .create_lease_with_id("old", Some(Duration::ZERO))
            .unwrap();
        store
            .create_lease_with_id("young", Some(Duration::from_secs(3600)))
            .unwrap();
        store.create_lease_with_id("forever", None).unwrap();
        assert_eq!(store.expire_leases().unwrap(), vec!["old".to_owned()]);
        let ids: Vec<String> = store.leases().unwrap().into_iter().map(|l| l.id).collect();
        assert_eq!(ids, ["forever", "young"]);
    }
}
