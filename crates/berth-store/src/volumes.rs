//! Volumes and the containers that use them (schema version 3).
//!
//! A volume row says that a volume exists; its files are the daemon's
//! business. `volume_users` references `volumes(name)` without a cascade,
//! so a volume some container uses cannot be deleted: removal checks the
//! users and deletes in one transaction, and the foreign key catches what
//! a check could miss. A container's rows go with it (`ON DELETE
//! CASCADE`).

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use crate::db::{sql, CachedStatements, Store, StoreError};

/// A volume as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRow {
    /// docker's volume name (64 hex digits for an anonymous one).
    pub name: String,
    /// `local` for every volume berth makes.
    pub driver: String,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    /// Made for a container (`-v /path`, an image's VOLUME) rather than by
    /// name.
    pub anonymous: bool,
    pub labels: BTreeMap<String, String>,
    /// The driver's options (`type`, `device`, `o` for `local`).
    pub options: BTreeMap<String, String>,
}

const COLUMNS: &str = "name, driver, created_at, anonymous, labels, options";

/// A row, its JSON columns decoded (a bad one is a conversion error of
/// its column, so the query reports it).
fn read_row(r: &Row<'_>) -> rusqlite::Result<VolumeRow> {
    let map = |i: usize| -> rusqlite::Result<BTreeMap<String, String>> {
        let bytes: Vec<u8> = r.get(i)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, Box::new(e))
        })
    };
    Ok(VolumeRow {
        name: r.get(0)?,
        driver: r.get(1)?,
        created_at: r.get(2)?,
        anonymous: r.get::<_, i64>(3)? != 0,
        labels: map(4)?,
        options: map(5)?,
    })
}

fn encode_map(m: &BTreeMap<String, String>) -> Vec<u8> {
    serde_json::to_vec(m).expect("a map of strings serialises")
}

fn get(conn: &Connection, name: &str) -> Result<Option<VolumeRow>, StoreError> {
    conn.query_row_cached(
        &format!("SELECT {COLUMNS} FROM volumes WHERE name = ?1"),
        [name],
        read_row,
    )
    .optional()
    .map_err(sql("read volume"))
}

/// Inserts `row` unless its name exists. Returns the stored row and
/// whether it was made now.
fn get_or_insert(tx: &Transaction<'_>, row: &VolumeRow) -> Result<(VolumeRow, bool), StoreError> {
    if let Some(existing) = get(tx, &row.name)? {
        return Ok((existing, false));
    }
    tx.execute_cached(
        &format!("INSERT INTO volumes ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            row.name,
            row.driver,
            row.created_at,
            i64::from(row.anonymous),
            encode_map(&row.labels),
            encode_map(&row.options)
        ],
    )
    .map_err(sql("insert volume"))?;
    Ok((row.clone(), true))
}

fn users(conn: &Connection, name: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT u.container_id FROM volume_users u JOIN containers c ON c.id = u.container_id \
             WHERE u.volume = ?1 ORDER BY c.created_at, c.id",
        )
        .map_err(sql("prepare volume users"))?;
    let ids = stmt
        .query_map([name], |r| r.get(0))
        .map_err(sql("volume users"))?
        .collect::<Result<_, _>>()
        .map_err(sql("read volume users"))?;
    Ok(ids)
}

impl Store {
    /// Records a volume unless one of that name exists (docker's create is
    /// idempotent). Returns the stored row and whether it is new.
    pub fn create_volume(&self, row: &VolumeRow) -> Result<(VolumeRow, bool), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("begin create volume"))?;
        let out = get_or_insert(&tx, row)?;
        tx.commit().map_err(sql("commit create volume"))?;
        Ok(out)
    }

    /// One volume by its exact name.
    pub fn volume(&self, name: &str) -> Result<VolumeRow, StoreError> {
        get(&self.conn(), name)?.ok_or_else(|| StoreError::VolumeNotFound {
            name: name.to_owned(),
        })
    }

    /// Every volume, by name.
    pub fn volumes(&self) -> Result<Vec<VolumeRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM volumes ORDER BY name"))
            .map_err(sql("prepare list volumes"))?;
        let rows = stmt
            .query_map([], read_row)
            .map_err(sql("list volumes"))?
            .collect::<Result<_, _>>()
            .map_err(sql("read volumes"))?;
        Ok(rows)
    }

    /// The containers that use volume `name`, oldest first.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>, StoreError> {
        users(&self.conn(), name)
    }

    /// Every volume in use, with its users (oldest first).
    pub fn all_volume_users(&self) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT u.volume, u.container_id FROM volume_users u \
                 JOIN containers c ON c.id = u.container_id ORDER BY c.created_at, c.id",
            )
            .map_err(sql("prepare all volume users"))?;
        let pairs: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql("all volume users"))?
            .collect::<Result<_, _>>()
            .map_err(sql("read all volume users"))?;
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (volume, container) in pairs {
            out.entry(volume).or_default().push(container);
        }
        Ok(out)
    }

    /// The volumes container `id` uses, by name.
    pub fn container_volumes(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT volume FROM volume_users WHERE container_id = ?1 ORDER BY volume",
            )
            .map_err(sql("prepare container volumes"))?;
        let names = stmt
            .query_map([id], |r| r.get(0))
            .map_err(sql("container volumes"))?
            .collect::<Result<_, _>>()
            .map_err(sql("read container volumes"))?;
        Ok(names)
    }

    /// In one transaction: makes each of `volumes` that does not exist yet
    /// and records container `id` as their user. Returns each stored row
    /// and whether it is new. Repeating it changes nothing.
    pub fn use_volumes(
        &self,
        id: &str,
        volumes: &[VolumeRow],
    ) -> Result<Vec<(VolumeRow, bool)>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("begin use volumes"))?;
        let known: Option<i64> = tx
            .query_row_cached("SELECT 1 FROM containers WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(sql("find the container of volume users"))?;
        if known.is_none() {
            return Err(StoreError::ContainerNotFound {
                name: id.to_owned(),
            });
        }
        let mut out = Vec::with_capacity(volumes.len());
        for v in volumes {
            let stored = get_or_insert(&tx, v)?;
            tx.execute_cached(
                "INSERT OR IGNORE INTO volume_users (volume, container_id) VALUES (?1, ?2)",
                params![v.name, id],
            )
            .map_err(sql("record a volume user"))?;
            out.push(stored);
        }
        tx.commit().map_err(sql("commit use volumes"))?;
        Ok(out)
    }

    /// Deletes volume `name` if no container uses it; a volume in use is
    /// docker's conflict naming the containers. Returns the deleted row.
    pub fn delete_volume(&self, name: &str) -> Result<VolumeRow, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("begin delete volume"))?;
        let Some(row) = get(&tx, name)? else {
            return Err(StoreError::VolumeNotFound {
                name: name.to_owned(),
            });
        };
        let in_use = |tx: &Transaction<'_>| -> StoreError {
            match users(tx, name) {
                Ok(containers) => StoreError::VolumeInUse {
                    name: name.to_owned(),
                    containers,
                },
                Err(e) => e,
            }
        };
        let holders = users(&tx, name)?;
        if !holders.is_empty() {
            return Err(StoreError::VolumeInUse {
                name: name.to_owned(),
                containers: holders,
            });
        }
        match tx.execute_cached("DELETE FROM volumes WHERE name = ?1", [name]) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(in_use(&tx));
            }
            Err(e) => return Err(sql("delete volume")(e)),
        }
        tx.commit().map_err(sql("commit delete volume"))?;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_errdefs::{ErrorKind, HasKind};

    fn volume(name: &str, anonymous: bool) -> VolumeRow {
        VolumeRow {
            name: name.into(),
            driver: "local".into(),
            created_at: 7,
            anonymous,
            labels: [("a".to_string(), "b".to_string())].into(),
            options: BTreeMap::new(),
        }
    }

    fn container(store: &Store, c: char, image: &berth_image::Digest) -> String {
        let id: String = std::iter::repeat_n(c, 64).collect();
        store
            .insert_container(
                &crate::ContainerRow {
                    id: id.clone(),
                    name: format!("c{c}"),
                    image_id: image.clone(),
                    created_at: c as i64,
                    config: b"{}".to_vec(),
                    state: b"{}".to_vec(),
                },
                crate::Durability::Synced,
            )
            .unwrap();
        id
    }

    #[test]
    fn create_is_idempotent_and_keeps_labels() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (row, new) = store.create_volume(&volume("data", false)).unwrap();
        assert!(new);
        assert_eq!(row.labels["a"], "b");
        let mut other = volume("data", false);
        other.labels.clear();
        let (again, new) = store.create_volume(&other).unwrap();
        assert!(!new);
        assert_eq!(again, row);
        assert_eq!(store.volume("data").unwrap(), row);
        assert_eq!(store.volumes().unwrap().len(), 1);
        let e = store.volume("nope").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.to_string(), "get nope: no such volume");
    }

    #[test]
    fn a_volume_in_use_cannot_go_until_its_containers_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let image = crate::images::tests::image(1, &[1]);
        store.put_image(&image).unwrap();
        let a = container(&store, 'a', &image.id);
        let b = container(&store, 'b', &image.id);
        let made = store
            .use_volumes(
                &a,
                &[volume("shared", false), volume(&"f".repeat(64), true)],
            )
            .unwrap();
        assert!(made.iter().all(|(_, new)| *new));
        let made = store.use_volumes(&b, &[volume("shared", false)]).unwrap();
        assert!(!made[0].1);
        assert_eq!(
            store.volume_users("shared").unwrap(),
            [a.clone(), b.clone()]
        );
        assert_eq!(store.container_volumes(&a).unwrap().len(), 2);
        let e = store.delete_volume("shared").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(
            e.to_string(),
            format!("remove shared: volume is in use - [{a}, {b}]")
        );
        store
            .delete_container(&a, crate::Durability::Synced)
            .unwrap();
        assert_eq!(store.volume_users("shared").unwrap(), vec![b.clone()]);
        store.delete_volume(&"f".repeat(64)).unwrap();
        store
            .delete_container(&b, crate::Durability::Synced)
            .unwrap();
        assert!(store.all_volume_users().unwrap().is_empty());
        store.delete_volume("shared").unwrap();
        assert_eq!(
            store.delete_volume("shared").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        // No user rows for a container that does not exist.
        assert_eq!(
            store
                .use_volumes(&a, &[volume("x", false)])
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        assert!(store.volumes().unwrap().is_empty());
    }

    #[test]
    fn the_foreign_key_guards_what_a_check_could_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let image = crate::images::tests::image(1, &[1]);
        store.put_image(&image).unwrap();
        let a = container(&store, 'a', &image.id);
        store.use_volumes(&a, &[volume("v", false)]).unwrap();
        let conn = store.conn();
        let e = conn
            .execute("DELETE FROM volumes WHERE name = 'v'", [])
            .unwrap_err();
        assert!(e.to_string().contains("FOREIGN KEY"), "{e}");
    }
}
