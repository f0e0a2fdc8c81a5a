//! Opening the database: pragmas, integrity, schema version, migrations.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::Duration;

use berth_errdefs::{ErrorKind, HasKind};
use rusqlite::{Connection, OptionalExtension, Params, Row};

use crate::schema::{APPLICATION_ID, LATEST, MIGRATIONS};

/// How many prepared statements a connection keeps (rusqlite's default
/// is 16): every statement berth-store runs fits, so none is parsed twice.
const STATEMENT_CACHE: usize = 128;

/// Statements through the connection's cache of prepared statements:
/// SQLite parses and plans each SQL text once per connection instead of
/// at every call (a `docker run -d` runs about 20, 0.2-0.3 ms of parsing
/// here).
pub(crate) trait CachedStatements {
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl CachedStatements for Connection {
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the metadata database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the metadata database {path} is corrupt ({detail}); move it aside and restart berthd to begin with an empty store (images can be pulled again), or restore a backup")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{path} is not a berth metadata database (application id {found:#x}); point --data-root elsewhere or move the file aside")]
    NotBerth { path: PathBuf, found: i32 },
    #[error("the metadata database {path} has schema version {found}, newer than this berth knows ({known}); run the newer berth that wrote it, or restore a backup from before the upgrade")]
    NewerSchema {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("migrating the metadata database {path} to schema version {version} failed: {source}")]
    Migration {
        path: PathBuf,
        version: u32,
        source: rusqlite::Error,
    },
    #[error("metadata database: {op}: {source}")]
    Sql {
        op: &'static str,
        source: rusqlite::Error,
    },
    #[error("metadata database holds an invalid {what} {value:?}; the database is corrupt")]
    BadRecord { what: &'static str, value: String },
    #[error("No such image: {reference}")]
    ImageNotFound { reference: String },
    #[error(
        "image id prefix {prefix:?} is ambiguous: it matches {count} images; give more digits"
    )]
    AmbiguousId { prefix: String, count: usize },
    #[error("reference {reference} does not exist")]
    ReferenceNotFound { reference: String },
    #[error("No such container: {name}")]
    ContainerNotFound { name: String },
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, holder: String },
    #[error("multiple containers found with provided prefix: {prefix}")]
    AmbiguousContainer { prefix: String },
    #[error("network {name} not found")]
    NetworkNotFound { name: String },
    #[error("network with name {name} already exists")]
    NetworkNameInUse { name: String },
    #[error("bridge {bridge} is already used by another network; choose another name with -o com.docker.network.bridge.name=NAME")]
    BridgeInUse { bridge: String },
    #[error("network id prefix {prefix:?} is ambiguous: it matches several networks; give more digits or the name")]
    AmbiguousNetwork { prefix: String },
    #[error("error while removing network: network {name} id {id} has active endpoints ({})", containers.iter().map(|c| &c[..12.min(c.len())]).collect::<Vec<_>>().join(", "))]
    NetworkInUse {
        name: String,
        id: String,
        containers: Vec<String>,
    },
    #[error("Address already in use: {address} is taken on network {network}")]
    AddressInUse { network: String, address: String },
    #[error("Bind for {host_ip}:{host_port} failed: port is already allocated ({protocol})")]
    PortAllocated {
        host_ip: String,
        host_port: u16,
        protocol: String,
    },
    #[error("no such lease: {id}")]
    LeaseNotFound { id: String },
    #[error("lease {id} already exists")]
    LeaseExists { id: String },
    #[error("plugin {name:?} not found")]
    PluginNotFound { name: String },
    #[error("plugin {name:?} already exists")]
    PluginExists { name: String },
    #[error("plugin id prefix {prefix:?} is ambiguous: it matches several plugins; give more digits or the name")]
    AmbiguousPlugin { prefix: String },
    #[error("get {name}: no such volume")]
    VolumeNotFound { name: String },
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    VolumeInUse {
        name: String,
        containers: Vec<String>,
    },
}

impl HasKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Open { .. } | StoreError::Sql { .. } | StoreError::Migration { .. } => {
                ErrorKind::Internal
            }
            StoreError::Corrupt { .. } | StoreError::BadRecord { .. } => ErrorKind::DataLoss,
            StoreError::NotBerth { .. } | StoreError::NewerSchema { .. } => {
                ErrorKind::FailedPrecondition
            }
            StoreError::ImageNotFound { .. }
            | StoreError::ReferenceNotFound { .. }
            | StoreError::LeaseNotFound { .. }
            | StoreError::ContainerNotFound { .. }
            | StoreError::NetworkNotFound { .. }
            | StoreError::VolumeNotFound { .. }
            | StoreError::PluginNotFound { .. } => ErrorKind::NotFound,
            StoreError::AmbiguousId { .. }
            | StoreError::AmbiguousContainer { .. }
            | StoreError::AmbiguousNetwork { .. }
            | StoreError::AmbiguousPlugin { .. } => ErrorKind::InvalidArgument,
            StoreError::LeaseExists { .. }
            | StoreError::NameInUse { .. }
            | StoreError::NetworkNameInUse { .. }
            | StoreError::BridgeInUse { .. }
            | StoreError::NetworkInUse { .. }
            | StoreError::AddressInUse { .. }
            | StoreError::PortAllocated { .. }
            | StoreError::VolumeInUse { .. }
            | StoreError::PluginExists { .. } => ErrorKind::Conflict,
        }
    }
}

pub(crate) fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { op, source }
}

/// How a write reaches the disk before its call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Synced (`synchronous=FULL`): it survives a power cut.
    Synced,
    /// Written to the WAL without an fsync (`synchronous=NORMAL` for the
    /// write): it survives a crash of berthd, but a power cut may lose it
    /// (and the other unsynced writes after the last synced one, never one
    /// without those before it). For rows whose loss in a power cut
    /// changes nothing the next start would not change anyway.
    CrashSafe,
}

/// The metadata database `<data_root>/berth.db`.
///
/// One connection behind a mutex: every method is short, and SQLite
/// serialises writers anyway. The daemon calls it from blocking threads.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Written for a whole garbage collection; read by operations that
    /// write blobs or layers before they can record them (see
    /// [`Store::hold_off_gc`]).
    pub(crate) gc_lock: RwLock<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) `<data_root>/berth.db` and brings its
    /// schema up to date. A corrupt file, a foreign SQLite file or a newer
    /// schema is an error; nothing is ever reset silently.
    pub fn open(data_root: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_root).map_err(|e| StoreError::Open {
            path: data_root.to_owned(),
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        })?;
        Self::open_file(&data_root.join("berth.db"))
    }

    /// Opens a database at an explicit path.
    pub fn open_file(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        let corrupt = |e: rusqlite::Error| classify(path, e);
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(corrupt)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // The first statement that reads the file: a non-database fails here.
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(corrupt)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "the metadata database is not in WAL mode");
        }
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(corrupt)?;
        // FULL: a committed transaction survives power loss, like the blobs.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(corrupt)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(corrupt)?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: path.to_owned(),
                detail: check,
            });
        }
        let store = Store {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            gc_lock: RwLock::new(()),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Keeps garbage collection from running while the guard lives. An
    /// operation that writes blobs or unpacks layers whose digests it does
    /// not know in advance (import, load) holds this from before its first
    /// write until the image is recorded; one that knows them (a pull)
    /// may instead add them to a lease before writing each. Do not take a
    /// second guard while holding one: a waiting GC blocks new readers.
    pub fn hold_off_gc(&self) -> RwLockReadGuard<'_, ()> {
        self.gc_lock.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the database file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let conn = self.conn();
        read_version(&conn, &self.path)
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (an open
        // transaction rolls back on drop), so a poisoned lock is usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f`'s writes with `synchronous=NORMAL`: in WAL mode their
    /// commit appends to the WAL without an fsync, then FULL is back for
    /// every other write. Only for rows whose loss in a power cut does no
    /// harm. What holds: a crash of berthd alone loses nothing (the WAL is
    /// written before the commit returns, only not synced); the WAL is
    /// append-only and a later FULL commit syncs it whole, so a power cut
    /// can lose only the relaxed commits after the last synced one, never
    /// a commit without those before it, and the database stays consistent
    /// (SQLite's WAL guarantees, synchronous=NORMAL documented as safe
    /// from corruption in WAL mode).
    pub(crate) fn without_sync<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql("set synchronous=NORMAL"))?;
        let result = f(&mut conn);
        // Under the same lock: no other write ever runs relaxed.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql("set synchronous=FULL back"))?;
        result
    }

    /// Runs `f`'s writes with the durability asked for.
    pub(crate) fn write<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match durability {
            Durability::Synced => f(&mut self.conn()),
            Durability::CrashSafe => self.without_sync(f),
        }
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let path = self.path.clone();
        let app_id: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| classify(&path, e))?;
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| classify(&path, e))?;
        let current = if tables == 0 && app_id == 0 {
            // A new file: claim it.
            conn.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID};
                 CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
                 INSERT INTO schema_version (id, version) VALUES (1, 0);"
            ))
            .map_err(|source| StoreError::Migration { path: path.clone(), version: 0, source })?;
            0
        } else if app_id != APPLICATION_ID {
            return Err(StoreError::NotBerth {
                path,
                found: app_id,
            });
        } else {
            read_version(&conn, &path)?
        };
        if current > LATEST {
            return Err(StoreError::NewerSchema {
                path,
                found: current,
                known: LATEST,
            });
        }
        for version in current + 1..=LATEST {
            let migration_err = |source| StoreError::Migration {
                path: path.clone(),
                version,
                source,
            };
            let tx = conn.transaction().map_err(migration_err)?;
            tx.execute_batch(MIGRATIONS[(version - 1) as usize])
                .map_err(migration_err)?;
            tx.execute(
                "UPDATE schema_version SET version = ?1 WHERE id = 1",
                [version],
            )
            .map_err(migration_err)?;
            tx.commit().map_err(migration_err)?;
            tracing::info!(path = %path.display(), version, "migrated the metadata database");
        }
        Ok(())
    }
}

fn read_version(conn: &Connection, path: &Path) -> Result<u32, StoreError> {
    let v: Option<i64> = conn
        .query_row("SELECT version FROM schema_version WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(_, Some(ref msg)) if msg.contains("no such table") => {
                StoreError::Corrupt {
                    path: path.to_owned(),
                    detail: "the schema_version table is missing".to_owned(),
                }
            }
            e => classify(path, e),
        })?;
    match v {
        Some(v) if (0..=i64::from(u32::MAX)).contains(&v) => Ok(v as u32),
        Some(v) => Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail: format!("schema version {v}"),
        }),
        None => Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail: "the schema_version row is missing".to_owned(),
        }),
    }
}

/// Tells a corrupt or foreign file apart from other failures.
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_owned(),
            detail: e.to_string(),
        },
        _ => StoreError::Open {
            path: path.to_owned(),
            source: e,
        },
    }
}

/// Seconds since the epoch, for timestamps in the database.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_is_migrated_to_the_latest_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), LATEST);
        let mode: String = store
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(store);
        // Reopening is a no-op.
        assert_eq!(
            Store::open(dir.path()).unwrap().schema_version().unwrap(),
            LATEST
        );
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("berth.db")).unwrap();
        conn.execute("UPDATE schema_version SET version = ?1", [LATEST + 1])
            .unwrap();
        drop(conn);
        let err = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found, known, .. } if found == LATEST + 1 && known == LATEST),
            "{err}"
        );
        assert!(
            err.to_string().contains("newer than this berth knows"),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
        // And nothing was changed by the refusal.
        let conn = Connection::open(dir.path().join("berth.db")).unwrap();
        let v: u32 = conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, LATEST + 1);
    }

    #[test]
    fn a_corrupt_file_is_refused_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let junk = b"this is not an sqlite database, it is junk ".repeat(200);
        std::fs::write(&path, &junk).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            junk,
            "the file must be left as it was"
        );
    }

    #[test]
    fn a_damaged_database_page_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut conn = store.conn();
            let tx = conn.transaction().unwrap();
            // Enough rows to spread the table over several pages.
            for i in 0..2000 {
                tx.execute(
                    "INSERT INTO leases (id, created_at) VALUES (?1, 0)",
                    [format!("lease-{i:05}-padding-padding-padding-padding")],
                )
                .unwrap();
            }
            tx.commit().unwrap();
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
        }
        let path = dir.path().join("berth.db");
        let mut bytes = std::fs::read(&path).unwrap();
        // Overwrite the middle of the file (b-tree pages) with garbage.
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 4096] {
            *b = 0xa5;
        }
        std::fs::write(&path, &bytes).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn a_foreign_sqlite_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("berth.db")).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT)")
            .unwrap();
        drop(conn);
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::NotBerth { .. }), "{err}");
    }

    #[test]
    fn an_older_schema_is_migrated_forward() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        // A database at version 0: claimed, but with no tables yet, as an
        // interrupted first start would leave it.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID};
             CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
             INSERT INTO schema_version VALUES (1, 0);"
        ))
        .unwrap();
        drop(conn);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), LATEST);
        let n: i64 = store
            .conn()
            .query_row("SELECT count(*) FROM images", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
