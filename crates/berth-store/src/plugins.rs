//! Managed plugins (schema version 5).
//!
//! A row says that a plugin exists under its name; its configuration and
//! settings are the daemon's JSON, kept whole. Names are unique, so a
//! second plugin of one name is refused by the database itself.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::db::{sql, CachedStatements, Store, StoreError};

/// A plugin as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRow {
    /// 64 hex digits.
    pub id: String,
    /// The familiar reference with its tag (`vieux/sshfs:latest`).
    pub name: String,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    /// docker's `Config` of the plugin (JSON).
    pub config: Vec<u8>,
    /// docker's `Settings` of the plugin (JSON).
    pub settings: Vec<u8>,
}

const COLUMNS: &str = "id, name, created_at, config, settings";

fn read_row(r: &Row<'_>) -> rusqlite::Result<PluginRow> {
    Ok(PluginRow {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        config: r.get(3)?,
        settings: r.get(4)?,
    })
}

fn by(conn: &Connection, column: &str, value: &str) -> Result<Option<PluginRow>, StoreError> {
    conn.query_row_cached(
        &format!("SELECT {COLUMNS} FROM plugins WHERE {column} = ?1"),
        [value],
        read_row,
    )
    .optional()
    .map_err(sql("read plugin"))
}

impl Store {
    /// Records a new plugin; a name already taken is `PluginExists`.
    pub fn insert_plugin(&self, row: &PluginRow) -> Result<(), StoreError> {
        let conn = self.conn();
        let inserted = conn.execute_cached(
            &format!("INSERT INTO plugins ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![row.id, row.name, row.created_at, row.config, row.settings],
        );
        match inserted {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::PluginExists {
                    name: row.name.clone(),
                })
            }
            Err(e) => Err(sql("insert plugin")(e)),
        }
    }

    /// Every plugin, oldest first.
    pub fn plugins(&self) -> Result<Vec<PluginRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM plugins ORDER BY created_at, id"
            ))
            .map_err(sql("prepare list plugins"))?;
        let rows = stmt
            .query_map([], read_row)
            .map_err(sql("list plugins"))?
            .collect::<Result<_, _>>()
            .map_err(sql("read plugins"))?;
        Ok(rows)
    }

    /// The plugin named `name` (a familiar reference with its tag), or
    /// else the one whose id is or starts with `id_or_prefix`, as docker
    /// looks plugins up. `asked` is what the client wrote, for the error.
    pub fn resolve_plugin(
        &self,
        name: Option<&str>,
        id_or_prefix: &str,
        asked: &str,
    ) -> Result<PluginRow, StoreError> {
        let conn = self.conn();
        if let Some(row) = match name {
            Some(n) => by(&conn, "name", n)?,
            None => None,
        } {
            return Ok(row);
        }
        let not_found = || StoreError::PluginNotFound {
            name: asked.to_owned(),
        };
        let is_hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if id_or_prefix.is_empty() || id_or_prefix.len() > 64 || !is_hex(id_or_prefix) {
            return Err(not_found());
        }
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM plugins WHERE substr(id, 1, ?2) = ?1 LIMIT 2"
            ))
            .map_err(sql("prepare find plugin"))?;
        let mut found: Vec<PluginRow> = stmt
            .query_map(params![id_or_prefix, id_or_prefix.len() as i64], read_row)
            .map_err(sql("find plugin"))?
            .collect::<Result<_, _>>()
            .map_err(sql("read plugin"))?;
        match found.len() {
            0 => Err(not_found()),
            1 => Ok(found.remove(0)),
            _ => Err(StoreError::AmbiguousPlugin {
                prefix: id_or_prefix.to_owned(),
            }),
        }
    }

    /// Replaces plugin `id`'s settings.
    pub fn set_plugin_settings(&self, id: &str, settings: &[u8]) -> Result<(), StoreError> {
        let changed = self
            .conn()
            .execute_cached(
                "UPDATE plugins SET settings = ?2 WHERE id = ?1",
                params![id, settings],
            )
            .map_err(sql("update plugin settings"))?;
        if changed == 0 {
            return Err(StoreError::PluginNotFound {
                name: id.to_owned(),
            });
        }
        Ok(())
    }

    /// Forgets plugin `id`; its files are the caller's to remove after.
    pub fn delete_plugin(&self, id: &str) -> Result<(), StoreError> {
        let changed = self
            .conn()
            .execute_cached("DELETE FROM plugins WHERE id = ?1", [id])
            .map_err(sql("delete plugin"))?;
        if changed == 0 {
            return Err(StoreError::PluginNotFound {
                name: id.to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: char, name: &str, at: i64) -> PluginRow {
        PluginRow {
            id: id.to_string().repeat(64),
            name: name.to_owned(),
            created_at: at,
            config: br#"{"Entrypoint":["/x"]}"#.to_vec(),
            settings: br#"{"Env":[]}"#.to_vec(),
        }
    }

    #[test]
    fn plugins_are_found_by_name_id_and_prefix_and_names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .insert_plugin(&row('a', "vieux/sshfs:latest", 2))
            .unwrap();
        store.insert_plugin(&row('b', "me/dummy:1", 1)).unwrap();
        let again = store.insert_plugin(&row('c', "me/dummy:1", 3)).unwrap_err();
        assert!(matches!(again, StoreError::PluginExists { .. }), "{again}");

        let names: Vec<_> = store
            .plugins()
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["me/dummy:1", "vieux/sshfs:latest"]);
        let by_name = store
            .resolve_plugin(Some("me/dummy:1"), "me/dummy:1", "x")
            .unwrap();
        assert_eq!(by_name.id, "b".repeat(64));
        let by_prefix = store.resolve_plugin(None, "aaa", "aaa").unwrap();
        assert_eq!(by_prefix.name, "vieux/sshfs:latest");
        let missing = store
            .resolve_plugin(Some("no/such:latest"), "no/such", "no/such")
            .unwrap_err();
        assert_eq!(missing.to_string(), "plugin \"no/such\" not found");

        store.insert_plugin(&row('d', "other:latest", 4)).unwrap();
        store.set_plugin_settings(&"d".repeat(64), b"{}").unwrap();
        assert_eq!(
            store.resolve_plugin(None, "d", "d").unwrap().settings,
            b"{}"
        );
        store.delete_plugin(&"d".repeat(64)).unwrap();
        assert!(store.resolve_plugin(None, "d", "d").is_err());
        assert!(store.delete_plugin(&"d".repeat(64)).is_err());
    }

    #[test]
    fn an_id_prefix_two_plugins_share_is_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut a = row('a', "one:latest", 1);
        a.id = format!("ab{}", "0".repeat(62));
        let mut b = row('a', "two:latest", 2);
        b.id = format!("ab{}", "1".repeat(62));
        store.insert_plugin(&a).unwrap();
        store.insert_plugin(&b).unwrap();
        let e = store.resolve_plugin(None, "ab", "ab").unwrap_err();
        assert!(matches!(e, StoreError::AmbiguousPlugin { .. }), "{e}");
        assert_eq!(
            store.resolve_plugin(None, "ab0", "ab0").unwrap().name,
            "one:latest"
        );
    }
}
