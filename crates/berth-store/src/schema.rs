//! The database schema, as numbered migrations.
//!
//! Migration `n` (1-based) takes the schema from version `n-1` to `n`. A
//! released migration is never edited: a change is a new migration at the
//! end. The version lives in the one-row `schema_version` table, and the
//! file is marked as berth's with `PRAGMA application_id`, so that opening
//! some other SQLite file is refused instead of "migrated".
//!
//! Version 1 tables:
//!
//! - `images`: one row per image; `id` is the config digest (docker's image
//!   id). `manifest_digest`/`index_digest` name the manifest and index it
//!   came through, when known. `config` holds the raw config JSON (a copy
//!   of the config blob) so listings and filters need not touch files.
//! - `image_layers`: the image's layers, bottom first (`position` 0..n):
//!   diff id, chain id, and the compressed blob (if the store keeps it).
//! - `refs`: docker's reference store: a fully qualified `name:tag` or
//!   `name@digest` pointing at an image id.
//! - `layers`: the unpacked layer dirs berth knows of, by chain id.
//! - `leases` and `lease_resources`: what an operation in flight (a pull,
//!   a load) holds against garbage collection, with an optional expiry.
//!
//! Version 2 adds `containers`: one row per container. `name` is unique
//! (docker's names, without the leading `/`); `image_id` references
//! `images(id)`, so an image a container uses cannot be deleted. `config`
//! and `state` are the daemon's own JSON (the create request as docker sent
//! it, and the last recorded run state): the store keeps them whole and
//! atomic, and does not interpret them.
//!
//! Version 3 adds volumes. `volumes`: one row per volume (docker's
//! names; anonymous volumes have a 64-hex name and `anonymous = 1`);
//! `labels` and `options` are JSON objects of strings (the driver options,
//! `type`/`device`/`o` for the local driver). `volume_users` records which
//! containers mount which volumes; it references `volumes(name)` without a
//! cascade, so a volume in use cannot be deleted, and it goes away with its
//! container.
//!
//! Version 4 adds networks. `networks`: one row per network, `bridge` is
//! the Linux bridge's name (NULL for the `host` and `none` networks), and
//! `config` the daemon's own JSON (IPAM, options, labels, internal, ipv6).
//! `endpoints`: a container's attachment to a network, with the addresses
//! IPAM gave it; the unique indexes on (network, address) are what makes
//! IPAM never hand out one address twice, and the row (so the lease) goes
//! away with its container. An endpoint references `networks(id)` without
//! a cascade: a network with endpoints cannot be deleted. `port_bindings`:
//! the host ports a running container holds (docker allocates them at start
//! and releases them at stop); the primary key refuses a second holder of
//! one protocol, host address and port.
//!
//! Version 5 adds `plugins`: docker's managed plugins, one row per plugin.
//! `name` is the familiar reference with its tag (`vieux/sshfs:latest`),
//! unique; `config` is the plugin's configuration and `settings` what
//! `plugin set` changed of it (docker's `Config` and `Settings` JSON). The
//! plugin's files live in `<data-root>/plugins/<id>/rootfs`.

/// `PRAGMA application_id` of berth databases ("brth").
pub const APPLICATION_ID: i32 = 0x6272_7468;

/// The migrations, in order. `MIGRATIONS[i]` produces version `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: images, references, layers, leases.
    r#"
    CREATE TABLE images (
        id                  TEXT PRIMARY KEY NOT NULL,
        manifest_digest     TEXT,
        manifest_media_type TEXT,
        index_digest        TEXT,
        size                INTEGER NOT NULL CHECK (size >= 0),
        created             TEXT,
        added_at            INTEGER NOT NULL,
        platform            TEXT NOT NULL,
        config              BLOB NOT NULL
    ) STRICT;

    CREATE TABLE image_layers (
        image_id        TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        position        INTEGER NOT NULL CHECK (position >= 0),
        diff_id         TEXT NOT NULL,
        chain_id        TEXT NOT NULL,
        blob_digest     TEXT,
        blob_media_type TEXT,
        blob_size       INTEGER,
        PRIMARY KEY (image_id, position)
    ) STRICT;
    CREATE INDEX image_layers_by_chain ON image_layers(chain_id);
    CREATE INDEX image_layers_by_blob ON image_layers(blob_digest);

    CREATE TABLE refs (
        reference  TEXT PRIMARY KEY NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('tag', 'digest')),
        image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX refs_by_image ON refs(image_id);

    CREATE TABLE layers (
        chain_id   TEXT PRIMARY KEY NOT NULL,
        diff_id    TEXT NOT NULL,
        parent     TEXT,
        tar_size   INTEGER NOT NULL CHECK (tar_size >= 0),
        created_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE leases (
        id         TEXT PRIMARY KEY NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER
    ) STRICT;

    CREATE TABLE lease_resources (
        lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
        kind     TEXT NOT NULL CHECK (kind IN ('blob', 'layer', 'ingest')),
        resource TEXT NOT NULL,
        PRIMARY KEY (lease_id, kind, resource)
    ) STRICT;
    "#,
    // 2: containers.
    r#"
    CREATE TABLE containers (
        id         TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 64),
        name       TEXT NOT NULL UNIQUE,
        image_id   TEXT NOT NULL REFERENCES images(id),
        created_at INTEGER NOT NULL,
        config     BLOB NOT NULL,
        state      BLOB NOT NULL
    ) STRICT;
    CREATE INDEX containers_by_image ON containers(image_id);
    "#,
    // 3: volumes.
    r#"
    CREATE TABLE volumes (
        name       TEXT PRIMARY KEY NOT NULL,
        driver     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        anonymous  INTEGER NOT NULL CHECK (anonymous IN (0, 1)),
        labels     BLOB NOT NULL,
        options    BLOB NOT NULL
    ) STRICT;

    CREATE TABLE volume_users (
        volume       TEXT NOT NULL REFERENCES volumes(name),
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        PRIMARY KEY (volume, container_id)
    ) STRICT;
    CREATE INDEX volume_users_by_container ON volume_users(container_id);
    "#,
    // 4: networks, endpoints, published ports.
    r#"
    CREATE TABLE networks (
        id         TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 64),
        name       TEXT NOT NULL UNIQUE,
        driver     TEXT NOT NULL,
        bridge     TEXT UNIQUE,
        created_at INTEGER NOT NULL,
        config     BLOB NOT NULL
    ) STRICT;

    CREATE TABLE endpoints (
        network_id   TEXT NOT NULL REFERENCES networks(id),
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        ipv4         TEXT,
        ipv6         TEXT,
        config       BLOB NOT NULL,
        PRIMARY KEY (network_id, container_id)
    ) STRICT;
    CREATE UNIQUE INDEX endpoints_by_ipv4 ON endpoints(network_id, ipv4);
    CREATE UNIQUE INDEX endpoints_by_ipv6 ON endpoints(network_id, ipv6);
    CREATE INDEX endpoints_by_container ON endpoints(container_id);

    CREATE TABLE port_bindings (
        container_id   TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        protocol       TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp', 'sctp')),
        host_ip        TEXT NOT NULL,
        host_port      INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
        container_port INTEGER NOT NULL CHECK (container_port BETWEEN 1 AND 65535),
        PRIMARY KEY (protocol, host_ip, host_port)
    ) STRICT;
    CREATE INDEX port_bindings_by_container ON port_bindings(container_id);
    "#,
    // 5: managed plugins.
    r#"
    CREATE TABLE plugins (
        id         TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 64),
        name       TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        config     BLOB NOT NULL,
        settings   BLOB NOT NULL
    ) STRICT;
    "#,
];

/// The schema version this code writes.
pub const LATEST: u32 = MIGRATIONS.len() as u32;
