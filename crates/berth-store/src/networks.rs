//! Networks, the endpoints that attach running containers to them, and
//! the host ports running containers hold.
//!
//! The database is what makes IPAM and port allocation safe: the unique
//! indexes on (network, address) and the primary key of `port_bindings`
//! refuse a second holder even if two callers raced past their own checks.

use std::net::IpAddr;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row};

use crate::db::{sql, CachedStatements, Store, StoreError};

/// A network as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRow {
    /// 64 lowercase hex digits.
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`, as docker names its drivers.
    pub driver: String,
    /// The Linux bridge's name; `None` for `host` and `none`.
    pub bridge: Option<String>,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    /// The daemon's own JSON (IPAM, options, labels, ...).
    pub config: Vec<u8>,
}

/// A running container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRow {
    pub network_id: String,
    pub container_id: String,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    /// The daemon's own JSON (aliases, MAC, interface names, ...).
    pub config: Vec<u8>,
}

/// A host port a running container holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBindingRow {
    pub container_id: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// The host address, `0.0.0.0` or `::` for every address.
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

const NETWORK_COLUMNS: &str = "id, name, driver, bridge, created_at, config";
const ENDPOINT_COLUMNS: &str = "network_id, container_id, ipv4, ipv6, config";
const PORT_COLUMNS: &str = "container_id, protocol, host_ip, host_port, container_port";

fn read_network(r: &Row<'_>) -> rusqlite::Result<NetworkRow> {
    Ok(NetworkRow {
        id: r.get(0)?,
        name: r.get(1)?,
        driver: r.get(2)?,
        bridge: r.get(3)?,
        created_at: r.get(4)?,
        config: r.get(5)?,
    })
}

type RawEndpoint = (String, String, Option<String>, Option<String>, Vec<u8>);

fn read_endpoint(r: &Row<'_>) -> rusqlite::Result<RawEndpoint> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn parse_address(value: Option<String>) -> Result<Option<IpAddr>, StoreError> {
    value
        .map(|v| {
            v.parse().map_err(|_| StoreError::BadRecord {
                what: "endpoint address",
                value: v.clone(),
            })
        })
        .transpose()
}

fn to_endpoint(
    (network_id, container_id, ipv4, ipv6, config): RawEndpoint,
) -> Result<EndpointRow, StoreError> {
    Ok(EndpointRow {
        network_id,
        container_id,
        ipv4: parse_address(ipv4)?,
        ipv6: parse_address(ipv6)?,
        config,
    })
}

fn read_port(r: &Row<'_>) -> rusqlite::Result<PortBindingRow> {
    Ok(PortBindingRow {
        container_id: r.get(0)?,
        protocol: r.get(1)?,
        host_ip: r.get(2)?,
        host_port: r.get(3)?,
        container_port: r.get(4)?,
    })
}

/// Whether `e` is a uniqueness or primary-key violation.
/// The inserts of [`Store::attach_container`], in one transaction.
fn attach_rows(
    conn: &mut Connection,
    endpoints: &[EndpointRow],
    ports: &[PortBindingRow],
) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(sql("begin attach"))?;
    for e in endpoints {
        tx.execute_cached(
            &format!("INSERT INTO endpoints ({ENDPOINT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![
                e.network_id,
                e.container_id,
                e.ipv4.map(|a| a.to_string()),
                e.ipv6.map(|a| a.to_string()),
                e.config
            ],
        )
        .map_err(|err| {
            if is_unique_violation(&err) {
                StoreError::AddressInUse {
                    network: e.network_id.clone(),
                    address: [e.ipv4, e.ipv6]
                        .iter()
                        .flatten()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            } else {
                sql("insert endpoint")(err)
            }
        })?;
    }
    for p in ports {
        tx.execute_cached(
            &format!("INSERT INTO port_bindings ({PORT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![
                p.container_id,
                p.protocol,
                p.host_ip,
                p.host_port,
                p.container_port
            ],
        )
        .map_err(|err| {
            if is_unique_violation(&err) {
                StoreError::PortAllocated {
                    host_ip: p.host_ip.clone(),
                    host_port: p.host_port,
                    protocol: p.protocol.clone(),
                }
            } else {
                sql("insert port binding")(err)
            }
        })?;
    }
    tx.commit().map_err(sql("commit attach"))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

fn query_all<T>(
    conn: &Connection,
    query: &str,
    args: impl rusqlite::Params,
    read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    op: &'static str,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(query).map_err(sql(op))?;
    let rows = stmt
        .query_map(args, read)
        .map_err(sql(op))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql(op))?;
    Ok(rows)
}

impl Store {
    /// Records a new network. A name in use is docker's conflict error.
    pub fn insert_network(&self, row: &NetworkRow) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("begin insert network"))?;
        let taken: Option<String> = tx
            .query_row_cached(
                "SELECT id FROM networks WHERE name = ?1",
                [&row.name],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("look up a network name"))?;
        if taken.is_some() {
            return Err(StoreError::NetworkNameInUse {
                name: row.name.clone(),
            });
        }
        tx.execute_cached(
            &format!("INSERT INTO networks ({NETWORK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![
                row.id,
                row.name,
                row.driver,
                row.bridge,
                row.created_at,
                row.config
            ],
        )
        .map_err(|e| match &row.bridge {
            Some(bridge) if is_unique_violation(&e) => StoreError::BridgeInUse {
                bridge: bridge.clone(),
            },
            _ => sql("insert network")(e),
        })?;
        tx.commit().map_err(sql("commit insert network"))
    }

    /// Every network, oldest first.
    pub fn networks(&self) -> Result<Vec<NetworkRow>, StoreError> {
        let conn = self.conn();
        query_all(
            &conn,
            &format!("SELECT {NETWORK_COLUMNS} FROM networks ORDER BY created_at, id"),
            [],
            read_network,
            "list networks",
        )
    }

    /// Finds a network as docker's CLI names it: its full id, its name, or
    /// a unique prefix of its id. A full id or a name wins over a prefix.
    pub fn resolve_network(&self, name: &str) -> Result<NetworkRow, StoreError> {
        let not_found = || StoreError::NetworkNotFound {
            name: name.to_owned(),
        };
        if name.is_empty() {
            return Err(not_found());
        }
        let conn = self.conn();
        let exact = conn
            .query_row_cached(
                &format!("SELECT {NETWORK_COLUMNS} FROM networks WHERE id = ?1 OR name = ?1"),
                [name],
                read_network,
            )
            .optional()
            .map_err(sql("find network"))?;
        if let Some(row) = exact {
            return Ok(row);
        }
        if !name.bytes().all(|b| b.is_ascii_hexdigit()) || name.len() > 64 {
            return Err(not_found());
        }
        let prefix = name.to_ascii_lowercase();
        let rows = query_all(
            &conn,
            &format!("SELECT {NETWORK_COLUMNS} FROM networks WHERE substr(id, 1, ?1) = ?2 LIMIT 2"),
            params![prefix.len() as i64, prefix],
            read_network,
            "find network by prefix",
        )?;
        match rows.len() {
            0 => Err(not_found()),
            1 => Ok(rows.into_iter().next().expect("one row")),
            _ => Err(StoreError::AmbiguousNetwork {
                prefix: name.to_owned(),
            }),
        }
    }

    /// Removes a network. One with endpoints (running containers attached)
    /// is refused with the holders named.
    pub fn delete_network(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("begin delete network"))?;
        let holders = query_all(
            &tx,
            "SELECT container_id FROM endpoints WHERE network_id = ?1 ORDER BY container_id",
            [id],
            |r| r.get::<_, String>(0),
            "list a network's endpoints",
        )?;
        if !holders.is_empty() {
            let name: String = tx
                .query_row_cached("SELECT name FROM networks WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .map_err(sql("read network name"))?;
            return Err(StoreError::NetworkInUse {
                name,
                id: id.to_owned(),
                containers: holders,
            });
        }
        let n = tx
            .execute_cached("DELETE FROM networks WHERE id = ?1", [id])
            .map_err(sql("delete network"))?;
        if n == 0 {
            return Err(StoreError::NetworkNotFound {
                name: id.to_owned(),
            });
        }
        tx.commit().map_err(sql("commit delete network"))
    }

    /// Every endpoint, by network then container.
    pub fn endpoints(&self) -> Result<Vec<EndpointRow>, StoreError> {
        let conn = self.conn();
        query_all(
            &conn,
            &format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints ORDER BY network_id, container_id"),
            [],
            read_endpoint,
            "list endpoints",
        )?
        .into_iter()
        .map(to_endpoint)
        .collect()
    }

    /// Records endpoints and host ports of a container being started, all
    /// or none. An address or a port someone else holds is refused.
    ///
    /// Committed without an fsync ([`Store::without_sync`]): the rows
    /// describe kernel state (veths, namespaces, NAT rules) that a power
    /// loss takes with them, and the container's `running` state, saved
    /// with a full sync after this, makes them durable too.
    pub fn attach_container(
        &self,
        endpoints: &[EndpointRow],
        ports: &[PortBindingRow],
    ) -> Result<(), StoreError> {
        self.without_sync(|conn| attach_rows(conn, endpoints, ports))
    }

    /// Forgets a container's endpoints and host ports (it stopped): its
    /// addresses and ports are free again. Committed without an fsync
    /// ([`Store::without_sync`]): rows this loses to a power loss belong
    /// to a container that is not running after it, and berthd releases
    /// such rows at start-up.
    pub fn detach_container(&self, container_id: &str) -> Result<(), StoreError> {
        self.without_sync(|conn| {
            let tx = conn.transaction().map_err(sql("begin detach"))?;
            tx.execute_cached(
                "DELETE FROM endpoints WHERE container_id = ?1",
                [container_id],
            )
            .map_err(sql("delete endpoints"))?;
            tx.execute_cached(
                "DELETE FROM port_bindings WHERE container_id = ?1",
                [container_id],
            )
            .map_err(sql("delete port bindings"))?;
            tx.commit().map_err(sql("commit detach"))
        })
    }

    /// Forgets one endpoint (a running container left one network).
    pub fn delete_endpoint(&self, network_id: &str, container_id: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute_cached(
            "DELETE FROM endpoints WHERE network_id = ?1 AND container_id = ?2",
            [network_id, container_id],
        )
        .map_err(sql("delete endpoint"))?;
        Ok(())
    }

    /// Every host port held, by protocol and port.
    pub fn port_bindings(&self) -> Result<Vec<PortBindingRow>, StoreError> {
        let conn = self.conn();
        query_all(
            &conn,
            &format!(
                "SELECT {PORT_COLUMNS} FROM port_bindings ORDER BY protocol, host_port, host_ip"
            ),
            [],
            read_port,
            "list port bindings",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn network(n: u8, name: &str, bridge: &str) -> NetworkRow {
        NetworkRow {
            id: format!("{n:02x}").repeat(32),
            name: name.into(),
            driver: "bridge".into(),
            bridge: Some(bridge.into()),
            created_at: n as i64,
            config: b"{}".to_vec(),
        }
    }

    #[test]
    fn names_bridges_and_prefixes() {
        let (_d, s) = store();
        s.insert_network(&network(1, "a", "br-a")).unwrap();
        s.insert_network(&network(2, "b", "br-b")).unwrap();
        assert!(matches!(
            s.insert_network(&network(3, "a", "br-c")),
            Err(StoreError::NetworkNameInUse { .. })
        ));
        assert!(matches!(
            s.insert_network(&network(4, "d", "br-a")),
            Err(StoreError::BridgeInUse { .. })
        ));
        assert_eq!(s.resolve_network("b").unwrap().name, "b");
        assert_eq!(s.resolve_network("0101").unwrap().name, "a");
        assert!(matches!(
            s.resolve_network("zz"),
            Err(StoreError::NetworkNotFound { .. })
        ));
        assert_eq!(s.networks().unwrap().len(), 2);
        s.delete_network(&network(2, "b", "br-b").id).unwrap();
        assert_eq!(s.networks().unwrap().len(), 1);
    }
}
