//! Containers: one row each, with the daemon's config and state as opaque
//! JSON. Names are unique by a database constraint, so two concurrent
//! creates with one name cannot both win.

use berth_image::Digest;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::db::{sql, CachedStatements, Durability, Store, StoreError};

/// A container as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRow {
    /// 64 lowercase hex digits.
    pub id: String,
    /// Docker's name without the leading `/`.
    pub name: String,
    pub image_id: Digest,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    /// The daemon's config JSON (what the container was created with).
    pub config: Vec<u8>,
    /// The daemon's last recorded run state JSON.
    pub state: Vec<u8>,
}

const COLUMNS: &str = "id, name, image_id, created_at, config, state";

/// A row's columns as SQLite gives them, before the image id is parsed.
type RawRow = (String, String, String, i64, Vec<u8>, Vec<u8>);

fn read_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn to_row(
    (id, name, image_id, created_at, config, state): RawRow,
) -> Result<ContainerRow, StoreError> {
    let image_id = Digest::parse(&image_id).map_err(|_| StoreError::BadRecord {
        what: "container image id",
        value: image_id.clone(),
    })?;
    Ok(ContainerRow {
        id,
        name,
        image_id,
        created_at,
        config,
        state,
    })
}

fn name_taken(conn: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    conn.query_row_cached("SELECT id FROM containers WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
    .map_err(sql("look up a container name"))
}

impl Store {
    /// Records a new container. A name in use is docker's conflict error.
    pub fn insert_container(
        &self,
        row: &ContainerRow,
        durability: Durability,
    ) -> Result<(), StoreError> {
        self.write(durability, |conn| {
            let tx = conn.transaction().map_err(sql("begin insert container"))?;
            if let Some(holder) = name_taken(&tx, &row.name)? {
                return Err(StoreError::NameInUse {
                    name: row.name.clone(),
                    holder,
                });
            }
            tx.execute_cached(
                &format!("INSERT INTO containers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    row.id,
                    row.name,
                    row.image_id.to_string(),
                    row.created_at,
                    row.config,
                    row.state
                ],
            )
            .map_err(sql("insert container"))?;
            tx.commit().map_err(sql("commit insert container"))
        })
    }

    /// One container by its full id.
    pub fn container(&self, id: &str) -> Result<ContainerRow, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row_cached(
                &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"),
                [id],
                read_row,
            )
            .optional()
            .map_err(sql("read container"))?;
        match row {
            Some(r) => to_row(r),
            None => Err(StoreError::ContainerNotFound {
                name: id.to_owned(),
            }),
        }
    }

    /// Finds a container as docker's CLI names it: its full id, its name
    /// (with or without the leading `/`), or a unique prefix of its id.
    /// A name wins over an id prefix, as in docker.
    pub fn resolve_container(&self, name: &str) -> Result<ContainerRow, StoreError> {
        let not_found = || StoreError::ContainerNotFound {
            name: name.to_owned(),
        };
        if name.is_empty() {
            return Err(not_found());
        }
        let bare = name.strip_prefix('/').unwrap_or(name);
        let conn = self.conn();
        let by_name = conn
            .query_row_cached(
                &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1 OR name = ?2"),
                params![name, bare],
                read_row,
            )
            .optional()
            .map_err(sql("find container"))?;
        if let Some(r) = by_name {
            return to_row(r);
        }
        if !name.bytes().all(|b| b.is_ascii_hexdigit()) || name.len() > 64 {
            return Err(not_found());
        }
        let prefix = name.to_ascii_lowercase();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM containers WHERE substr(id, 1, ?1) = ?2 LIMIT 2"
            ))
            .map_err(sql("prepare container prefix"))?;
        let rows: Vec<_> = stmt
            .query_map(params![prefix.len() as i64, prefix], read_row)
            .map_err(sql("query container prefix"))?
            .collect::<Result<_, _>>()
            .map_err(sql("read container prefix"))?;
        match rows.len() {
            0 => Err(not_found()),
            1 => to_row(rows.into_iter().next().expect("one row")),
            _ => Err(StoreError::AmbiguousContainer {
                prefix: name.to_owned(),
            }),
        }
    }

    /// Every container, oldest first.
    pub fn containers(&self) -> Result<Vec<ContainerRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM containers ORDER BY created_at, id"
            ))
            .map_err(sql("prepare list containers"))?;
        let rows: Vec<_> = stmt
            .query_map([], read_row)
            .map_err(sql("list containers"))?
            .collect::<Result<_, _>>()
            .map_err(sql("read containers"))?;
        rows.into_iter().map(to_row).collect()
    }

    /// Replaces a container's recorded state.
    pub fn set_container_state(
        &self,
        id: &str,
        state: &[u8],
        durability: Durability,
    ) -> Result<(), StoreError> {
        self.update_container(id, "state", state, durability)
    }

    /// Replaces a container's config (`update`, `rename` of the config's
    /// own fields).
    pub fn set_container_config(&self, id: &str, config: &[u8]) -> Result<(), StoreError> {
        self.update_container(id, "config", config, Durability::Synced)
    }

    fn update_container(
        &self,
        id: &str,
        column: &str,
        value: &[u8],
        durability: Durability,
    ) -> Result<(), StoreError> {
        let n = self.write(durability, |conn| {
            conn.execute_cached(
                &format!("UPDATE containers SET {column} = ?1 WHERE id = ?2"),
                params![value, id],
            )
            .map_err(sql("update container"))
        })?;
        if n == 0 {
            return Err(StoreError::ContainerNotFound {
                name: id.to_owned(),
            });
        }
        Ok(())
    }

    /// Renames a container; the new name must be free.
    pub fn rename_container(&self, id: &str, new_name: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("begin rename container"))?;
        if let Some(holder) = name_taken(&tx, new_name)? {
            return Err(StoreError::NameInUse {
                name: new_name.to_owned(),
                holder,
            });
        }
        let n = tx
            .execute_cached(
                "UPDATE containers SET name = ?1 WHERE id = ?2",
                params![new_name, id],
            )
            .map_err(sql("rename container"))?;
        if n == 0 {
            return Err(StoreError::ContainerNotFound {
                name: id.to_owned(),
            });
        }
        tx.commit().map_err(sql("commit rename container"))
    }

    /// Removes a container's row.
    pub fn delete_container(&self, id: &str, durability: Durability) -> Result<(), StoreError> {
        let n = self.write(durability, |conn| {
            conn.execute_cached("DELETE FROM containers WHERE id = ?1", [id])
                .map_err(sql("delete container"))
        })?;
        if n == 0 {
            return Err(StoreError::ContainerNotFound {
                name: id.to_owned(),
            });
        }
        Ok(())
    }

    /// The ids of the containers created from `image`.
    pub fn containers_using(&self, image: &Digest) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT id FROM containers WHERE image_id = ?1 ORDER BY created_at")
            .map_err(sql("prepare containers using"))?;
        let ids = stmt
            .query_map([image.to_string()], |r| r.get(0))
            .map_err(sql("containers using"))?
            .collect::<Result<_, _>>()
            .map_err(sql("read containers using"))?;
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_errdefs::HasKind;

    fn store_with_image() -> (tempfile::TempDir, Store, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let image = crate::images::tests::image(1, &[1]);
        store.put_image(&image).unwrap();
        (dir, store, image.id)
    }

    fn row(id_char: char, name: &str, image: &Digest) -> ContainerRow {
        ContainerRow {
            id: std::iter::repeat_n(id_char, 64).collect(),
            name: name.into(),
            image_id: image.clone(),
            created_at: 1,
            config: b"{}".to_vec(),
            state: b"{\"s\":1}".to_vec(),
        }
    }

    #[test]
    fn names_are_unique_and_resolve_like_docker() {
        let (_d, store, image) = store_with_image();
        store
            .insert_container(&row('a', "web", &image), Durability::Synced)
            .unwrap();
        let err = store
            .insert_container(&row('b', "web", &image), Durability::Synced)
            .unwrap_err();
        assert!(
            err.to_string().contains("is already in use by container"),
            "{err}"
        );
        assert_eq!(err.kind(), berth_errdefs::ErrorKind::Conflict);
        store
            .insert_container(&row('b', "db", &image), Durability::Synced)
            .unwrap();
        assert_eq!(store.resolve_container("/web").unwrap().name, "web");
        assert_eq!(store.resolve_container("web").unwrap().name, "web");
        assert_eq!(store.resolve_container("bbb").unwrap().name, "db");
        assert_eq!(
            store.resolve_container(&"a".repeat(64)).unwrap().name,
            "web"
        );
        let missing = store.resolve_container("nope").unwrap_err();
        assert_eq!(missing.to_string(), "No such container: nope");
        assert_eq!(missing.kind(), berth_errdefs::ErrorKind::NotFound);
        assert_eq!(store.containers().unwrap().len(), 2);
        assert_eq!(store.containers_using(&image).unwrap().len(), 2);
    }

    #[test]
    fn state_rename_and_delete() {
        let (_d, store, image) = store_with_image();
        let id = "c".repeat(64);
        store
            .insert_container(&row('c', "one", &image), Durability::Synced)
            .unwrap();
        store
            .set_container_state(&id, b"{\"x\":2}", Durability::Synced)
            .unwrap();
        assert_eq!(store.container(&id).unwrap().state, b"{\"x\":2}");
        // A write without an fsync reads back as any other, and leaves the
        // connection syncing again.
        store
            .insert_container(&row('d', "two", &image), Durability::CrashSafe)
            .unwrap();
        let synchronous: i64 = store
            .conn()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "FULL");
        assert!(store.rename_container(&id, "two").is_err());
        store.rename_container(&id, "three").unwrap();
        assert_eq!(store.resolve_container("three").unwrap().id, id);
        // The image cannot go while a container uses it.
        assert!(store.delete_image(&image).is_err());
        store.delete_container(&id, Durability::Synced).unwrap();
        store
            .delete_container(&"d".repeat(64), Durability::CrashSafe)
            .unwrap();
        assert!(store.delete_container(&id, Durability::Synced).is_err());
        store.delete_image(&image).unwrap();
    }
}
