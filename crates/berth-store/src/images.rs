//! Images, their layers, and references (tags and digest references).

use std::collections::BTreeMap;

use berth_image::{Digest, ImageParts, Reference};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::db::{now, sql, CachedStatements, Store, StoreError};

/// A layer of an image, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    pub diff_id: Digest,
    pub chain_id: Digest,
    /// The compressed blob in the content store, if berth keeps it (pulled
    /// and loaded images do; it is what `push` and `save` send).
    pub blob: Option<LayerBlob>,
}

/// A layer blob as a manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// An image as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// The config digest: docker's image id.
    pub id: Digest,
    pub manifest_digest: Option<Digest>,
    pub manifest_media_type: Option<String>,
    /// The index (manifest list) it was pulled through, if any.
    pub index_digest: Option<Digest>,
    /// Bytes of the image's uncompressed layers.
    pub size: u64,
    /// The config's `created`, as written there (RFC 3339).
    pub created: Option<String>,
    /// When berth stored the image (seconds since the epoch).
    pub added_at: i64,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The raw config JSON.
    pub config: Vec<u8>,
    pub layers: Vec<ImageLayer>,
}

impl ImageRecord {
    /// The record of an image berth-image stored (import, load, pull).
    /// `index_digest` names the index it was chosen from, if any.
    pub fn from_parts(parts: &ImageParts, index_digest: Option<Digest>) -> ImageRecord {
        ImageRecord {
            id: parts.id.clone(),
            manifest_digest: Some(parts.manifest_digest.clone()),
            manifest_media_type: Some(parts.manifest_media_type.clone()),
            index_digest,
            size: parts.size(),
            created: parts.config.created.clone(),
            added_at: now(),
            platform: parts.config.platform().to_string(),
            config: parts.config_bytes.clone(),
            layers: parts
                .layers
                .iter()
                .map(|l| ImageLayer {
                    diff_id: l.diff_id.clone(),
                    chain_id: l.chain_id.clone(),
                    blob: Some(LayerBlob {
                        digest: l.blob.digest.clone(),
                        media_type: l.blob.media_type.clone(),
                        size: l.blob.size,
                    }),
                })
                .collect(),
        }
    }

    /// Chain ids, bottom first.
    pub fn chain(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.chain_id.clone()).collect()
    }
}

/// What kind of reference a stored reference is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Tag,
    Digest,
}

impl Store {
    /// Stores an image and its layers in one transaction. Storing an image
    /// that exists (same id) refreshes its manifest, index and layer rows.
    pub fn put_image(&self, image: &ImageRecord) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("begin put image"))?;
        tx.execute_cached(
            "INSERT INTO images (id, manifest_digest, manifest_media_type, index_digest, size, created, added_at, platform, config)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(id) DO UPDATE SET
                manifest_digest = coalesce(excluded.manifest_digest, manifest_digest),
                manifest_media_type = coalesce(excluded.manifest_media_type, manifest_media_type),
                index_digest = coalesce(excluded.index_digest, index_digest),
                size = excluded.size, created = excluded.created, platform = excluded.platform,
                config = excluded.config",
            params![
                image.id.to_string(),
                image.manifest_digest.as_ref().map(ToString::to_string),
                image.manifest_media_type,
                image.index_digest.as_ref().map(ToString::to_string),
                image.size as i64,
                image.created,
                image.added_at,
                image.platform,
                image.config,
            ],
        )
        .map_err(sql("insert image"))?;
        tx.execute_cached(
            "DELETE FROM image_layers WHERE image_id = ?1",
            [image.id.to_string()],
        )
        .map_err(sql("replace image layers"))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO image_layers (image_id, position, diff_id, chain_id, blob_digest, blob_media_type, blob_size)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(sql("prepare insert layer"))?;
            for (i, l) in image.layers.iter().enumerate() {
                stmt.execute(params![
                    image.id.to_string(),
                    i as i64,
                    l.diff_id.to_string(),
                    l.chain_id.to_string(),
                    l.blob.as_ref().map(|b| b.digest.to_string()),
                    l.blob.as_ref().map(|b| b.media_type.clone()),
                    l.blob.as_ref().map(|b| b.size as i64),
                ])
                .map_err(sql("insert image layer"))?;
            }
        }
        tx.commit().map_err(sql("commit put image"))
    }

    /// The image with this id.
    pub fn image(&self, id: &Digest) -> Result<ImageRecord, StoreError> {
        let conn = self.conn();
        let mut images = load_images(&conn, Some(id))?;
        images.pop().ok_or_else(|| StoreError::ImageNotFound {
            reference: id.to_string(),
        })
    }

    /// All images, newest first.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let conn = self.conn();
        load_images(&conn, None)
    }

    /// Finds an image as docker's CLI names it: a full id (`sha256:...`),
    /// a reference (`busybox`, `busybox:1`, `name@sha256:...`; no tag means
    /// `latest`), or a unique prefix of the id's hex.
    pub fn resolve_image(&self, name: &str) -> Result<ImageRecord, StoreError> {
        let not_found = || StoreError::ImageNotFound {
            reference: name.to_owned(),
        };
        if let Ok(d) = Digest::parse(name) {
            return self.image(&d).map_err(|_| not_found());
        }
        if let Ok(r) = Reference::parse(name) {
            if let Some(id) = self.lookup_reference(&r.clone().with_default_tag())? {
                return self.image(&id);
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.is_empty()
            || hex.len() > 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(not_found());
        }
        let ids: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached("SELECT id FROM images WHERE substr(id, 8, ?1) = ?2 LIMIT 2")
                .map_err(sql("prepare id prefix"))?;
            let rows = stmt
                .query_map(params![hex.len() as i64, hex], |r| r.get(0))
                .map_err(sql("query id prefix"))?;
            rows.collect::<Result<_, _>>()
                .map_err(sql("read id prefix"))?
        };
        match ids.as_slice() {
            [one] => self.image(&parse_digest("image id", one)?),
            [] => Err(not_found()),
            _ => {
                let conn = self.conn();
                let count: i64 = conn
                    .query_row_cached(
                        "SELECT count(*) FROM images WHERE substr(id, 8, ?1) = ?2",
                        params![hex.len() as i64, hex],
                        |r| r.get(0),
                    )
                    .map_err(sql("count id prefix"))?;
                Err(StoreError::AmbiguousId {
                    prefix: name.to_owned(),
                    count: count as usize,
                })
            }
        }
    }

    /// Removes an image, its layer rows and every reference to it, in one
    /// transaction. Returns the references removed. Deciding whether this
    /// is allowed (docker's `rmi` rules, containers using it) is the
    /// caller's job; blobs and layer dirs go at the next GC.
    pub fn delete_image(&self, id: &Digest) -> Result<Vec<Reference>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("begin delete image"))?;
        let refs = references_of(&tx, id)?;
        let n = tx
            .execute_cached("DELETE FROM images WHERE id = ?1", [id.to_string()])
            .map_err(sql("delete image"))?;
        if n == 0 {
            return Err(StoreError::ImageNotFound {
                reference: id.to_string(),
            });
        }
        tx.commit().map_err(sql("commit delete image"))?;
        Ok(refs)
    }

    /// Points `reference` at `image`, replacing what it pointed at before.
    /// Returns the previous image if it was a different one (which may now
    /// be dangling). A reference with a digest is stored as a digest
    /// reference; one with neither tag nor digest gets `latest`.
    pub fn set_reference(
        &self,
        reference: &Reference,
        image: &Digest,
    ) -> Result<Option<Digest>, StoreError> {
        let (key, kind) = reference_key(reference);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("begin tag"))?;
        let exists: Option<i64> = tx
            .query_row_cached(
                "SELECT 1 FROM images WHERE id = ?1",
                [image.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("find image"))?;
        if exists.is_none() {
            return Err(StoreError::ImageNotFound {
                reference: image.to_string(),
            });
        }
        let previous: Option<String> = tx
            .query_row_cached(
                "SELECT image_id FROM refs WHERE reference = ?1",
                [&key],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("find reference"))?;
        tx.execute_cached(
            "INSERT INTO refs (reference, kind, image_id, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(reference) DO UPDATE SET image_id = excluded.image_id, created_at = excluded.created_at",
            params![key, kind_name(kind), image.to_string(), now()],
        )
        .map_err(sql("set reference"))?;
        tx.commit().map_err(sql("commit tag"))?;
        let previous = previous.map(|p| parse_digest("image id", &p)).transpose()?;
        Ok(previous.filter(|p| p != image))
    }

    /// Removes a reference; returns the image it pointed at.
    pub fn remove_reference(&self, reference: &Reference) -> Result<Digest, StoreError> {
        let (key, _) = reference_key(reference);
        let conn = self.conn();
        let id: Option<String> = conn
            .query_row_cached(
                "DELETE FROM refs WHERE reference = ?1 RETURNING image_id",
                [&key],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("remove reference"))?;
        match id {
            Some(id) => parse_digest("image id", &id),
            None => Err(StoreError::ReferenceNotFound {
                reference: reference.familiar(),
            }),
        }
    }

    /// The image a reference points at (no default tag is added here).
    pub fn lookup_reference(&self, reference: &Reference) -> Result<Option<Digest>, StoreError> {
        let (key, _) = reference_key(reference);
        let conn = self.conn();
        let id: Option<String> = conn
            .query_row_cached(
                "SELECT image_id FROM refs WHERE reference = ?1",
                [&key],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("lookup reference"))?;
        id.map(|id| parse_digest("image id", &id)).transpose()
    }

    /// The references to one image, tags first, then digest references.
    pub fn references(&self, image: &Digest) -> Result<Vec<Reference>, StoreError> {
        let conn = self.conn();
        references_of(&conn, image)
    }

    /// Images without a tag (docker's "dangling" images, `<none>:<none>`);
    /// digest references do not count as tags, as in docker.
    pub fn dangling_images(&self) -> Result<Vec<Digest>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id FROM images i WHERE NOT EXISTS
                   (SELECT 1 FROM refs r WHERE r.image_id = i.id AND r.kind = 'tag')
                 ORDER BY added_at DESC, id",
            )
            .map_err(sql("prepare dangling"))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(sql("query dangling"))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(parse_digest("image id", &r.map_err(sql("read dangling"))?)?);
        }
        Ok(out)
    }

    /// Every reference, with its kind and image.
    pub fn all_references(&self) -> Result<Vec<(Reference, RefKind, Digest)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT reference, kind, image_id FROM refs ORDER BY reference")
            .map_err(sql("prepare refs"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(sql("query refs"))?;
        let mut out = Vec::new();
        for row in rows {
            let (reference, kind, id) = row.map_err(sql("read refs"))?;
            let kind = if kind == "digest" {
                RefKind::Digest
            } else {
                RefKind::Tag
            };
            out.push((
                parse_reference(&reference)?,
                kind,
                parse_digest("image id", &id)?,
            ));
        }
        Ok(out)
    }
}

/// The key a reference is stored under, and its kind.
fn reference_key(reference: &Reference) -> (String, RefKind) {
    if let Some(d) = reference.digest() {
        // A tag beside a digest does not name anything more: the digest pins it.
        (
            reference
                .repository_only()
                .with_digest(d.clone())
                .to_string(),
            RefKind::Digest,
        )
    } else {
        (
            reference.clone().with_default_tag().to_string(),
            RefKind::Tag,
        )
    }
}

fn kind_name(kind: RefKind) -> &'static str {
    match kind {
        RefKind::Tag => "tag",
        RefKind::Digest => "digest",
    }
}

fn references_of(conn: &Connection, image: &Digest) -> Result<Vec<Reference>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT reference FROM refs WHERE image_id = ?1 ORDER BY kind DESC, reference",
        )
        .map_err(sql("prepare references"))?;
    let rows = stmt
        .query_map([image.to_string()], |r| r.get::<_, String>(0))
        .map_err(sql("query references"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(parse_reference(&r.map_err(sql("read references"))?)?);
    }
    Ok(out)
}

fn load_images(conn: &Connection, only: Option<&Digest>) -> Result<Vec<ImageRecord>, StoreError> {
    let filter = only.map(ToString::to_string);
    let mut layers: BTreeMap<String, Vec<ImageLayer>> = BTreeMap::new();
    {
        let mut stmt = conn
            .prepare_cached(
                "SELECT image_id, diff_id, chain_id, blob_digest, blob_media_type, blob_size FROM image_layers
                 WHERE ?1 IS NULL OR image_id = ?1 ORDER BY image_id, position",
            )
            .map_err(sql("prepare layers"))?;
        let mut rows = stmt.query([&filter]).map_err(sql("query layers"))?;
        while let Some(row) = rows.next().map_err(sql("read layers"))? {
            let image_id: String = row.get(0).map_err(sql("read layer"))?;
            let layer = layer_from_row(row)?;
            layers.entry(image_id).or_default().push(layer);
        }
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, manifest_digest, manifest_media_type, index_digest, size, created, added_at, platform, config
             FROM images WHERE ?1 IS NULL OR id = ?1 ORDER BY added_at DESC, id",
        )
        .map_err(sql("prepare images"))?;
    let mut rows = stmt.query([&filter]).map_err(sql("query images"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql("read images"))? {
        let get =
            |i| -> Result<Option<String>, StoreError> { row.get(i).map_err(sql("read image")) };
        let id_s: String = row.get(0).map_err(sql("read image"))?;
        let opt_digest = |s: Option<String>| s.map(|s| parse_digest("digest", &s)).transpose();
        out.push(ImageRecord {
            id: parse_digest("image id", &id_s)?,
            manifest_digest: opt_digest(get(1)?)?,
            manifest_media_type: get(2)?,
            index_digest: opt_digest(get(3)?)?,
            size: row.get::<_, i64>(4).map_err(sql("read image"))? as u64,
            created: get(5)?,
            added_at: row.get(6).map_err(sql("read image"))?,
            platform: row.get(7).map_err(sql("read image"))?,
            config: row.get(8).map_err(sql("read image"))?,
            layers: layers.remove(&id_s).unwrap_or_default(),
        });
    }
    Ok(out)
}

fn layer_from_row(row: &Row<'_>) -> Result<ImageLayer, StoreError> {
    let s = |i| -> Result<Option<String>, StoreError> { row.get(i).map_err(sql("read layer")) };
    let diff_id = parse_digest("diff id", &s(1)?.unwrap_or_default())?;
    let chain_id = parse_digest("chain id", &s(2)?.unwrap_or_default())?;
    let blob = match s(3)? {
        Some(d) => Some(LayerBlob {
            digest: parse_digest("layer digest", &d)?,
            media_type: s(4)?.unwrap_or_default(),
            size: row
                .get::<_, Option<i64>>(5)
                .map_err(sql("read layer"))?
                .unwrap_or(0) as u64,
        }),
        None => None,
    };
    Ok(ImageLayer {
        diff_id,
        chain_id,
        blob,
    })
}

pub(crate) fn parse_digest(what: &'static str, s: &str) -> Result<Digest, StoreError> {
    Digest::parse(s).map_err(|_| StoreError::BadRecord {
        what,
        value: s.to_owned(),
    })
}

fn parse_reference(s: &str) -> Result<Reference, StoreError> {
    Reference::parse(s).map_err(|_| StoreError::BadRecord {
        what: "reference",
        value: s.to_owned(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use super::*;

    pub(crate) fn image(n: u8, layers: &[u8]) -> ImageRecord {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::sha256_of(&[*l])).collect();
        let chains = berth_image::layers::chain_ids(&diff_ids);
        ImageRecord {
            id: Digest::sha256_of(format!("config {n}").as_bytes()),
            manifest_digest: Some(Digest::sha256_of(format!("manifest {n}").as_bytes())),
            manifest_media_type: Some(berth_image::manifest::media_type::OCI_MANIFEST.to_owned()),
            index_digest: None,
            size: 1000,
            created: Some("2024-01-01T00:00:00Z".to_owned()),
            added_at: now(),
            platform: "linux/amd64".to_owned(),
            config: format!("config {n}").into_bytes(),
            layers: diff_ids
                .iter()
                .zip(chains)
                .map(|(d, c)| ImageLayer {
                    diff_id: d.clone(),
                    chain_id: c,
                    blob: Some(LayerBlob {
                        digest: Digest::sha256_of(format!("blob {d}").as_bytes()),
                        media_type: berth_image::manifest::media_type::OCI_LAYER_GZIP.to_owned(),
                        size: 10,
                    }),
                })
                .collect(),
        }
    }

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn images_round_trip_with_layers_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let img = image(1, &[3, 1, 2]);
        store.put_image(&img).unwrap();
        assert_eq!(store.image(&img.id).unwrap(), img);
        // Storing it again is idempotent.
        store.put_image(&img).unwrap();
        assert_eq!(store.images().unwrap(), vec![img.clone()]);
        assert!(matches!(
            store.image(&image(2, &[]).id),
            Err(StoreError::ImageNotFound { .. })
        ));
    }

    #[test]
    fn tags_and_digest_references() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (image(1, &[1]), image(2, &[1, 2]));
        store.put_image(&a).unwrap();
        store.put_image(&b).unwrap();
        assert_eq!(store.set_reference(&r("busybox"), &a.id).unwrap(), None);
        assert_eq!(
            store.lookup_reference(&r("busybox:latest")).unwrap(),
            Some(a.id.clone())
        );
        // Retagging reports the image that lost the tag.
        assert_eq!(
            store
                .set_reference(&r("docker.io/library/busybox:latest"), &b.id)
                .unwrap(),
            Some(a.id.clone())
        );
        assert_eq!(
            store.set_reference(&r("busybox:latest"), &b.id).unwrap(),
            None
        );
        let pinned =
            r("busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        store.set_reference(&pinned, &b.id).unwrap();
        let refs: Vec<String> = store
            .references(&b.id)
            .unwrap()
            .iter()
            .map(|r| r.familiar())
            .collect();
        assert_eq!(
            refs,
            [
                "busybox:latest",
                "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            ]
        );
        assert_eq!(
            store
                .all_references()
                .unwrap()
                .iter()
                .filter(|(_, k, _)| *k == RefKind::Digest)
                .count(),
            1
        );
        assert_eq!(store.remove_reference(&r("busybox")).unwrap(), b.id);
        assert!(matches!(
            store.remove_reference(&r("busybox")),
            Err(StoreError::ReferenceNotFound { .. })
        ));
        assert!(matches!(
            store.set_reference(&r("x"), &image(9, &[]).id),
            Err(StoreError::ImageNotFound { .. })
        ));
    }

    #[test]
    fn resolve_like_docker() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = image(1, &[1]);
        store.put_image(&a).unwrap();
        store
            .set_reference(&r("localhost:5000/app:v1"), &a.id)
            .unwrap();
        assert_eq!(
            store.resolve_image("localhost:5000/app:v1").unwrap().id,
            a.id
        );
        assert_eq!(store.resolve_image(&a.id.to_string()).unwrap().id, a.id);
        assert_eq!(store.resolve_image(a.id.short()).unwrap().id, a.id);
        assert_eq!(store.resolve_image(&a.id.hex()[..3]).unwrap().id, a.id);
        let err = store.resolve_image("nothere").unwrap_err();
        assert_eq!(err.to_string(), "No such image: nothere");
        // Find two ids sharing a first digit, to make a prefix ambiguous.
        let mut others = (2..100u8).map(|n| image(n, &[]));
        let b = others.find(|b| b.id.hex()[..1] == a.id.hex()[..1]).unwrap();
        store.put_image(&b).unwrap();
        assert!(matches!(
            store.resolve_image(&a.id.hex()[..1]),
            Err(StoreError::AmbiguousId { count: 2, .. })
        ));
    }

    #[test]
    fn dangling_means_untagged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b, c) = (image(1, &[]), image(2, &[]), image(3, &[]));
        for i in [&a, &b, &c] {
            store.put_image(i).unwrap();
        }
        store.set_reference(&r("a:1"), &a.id).unwrap();
        let by_digest =
            r("b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        store.set_reference(&by_digest, &b.id).unwrap();
        let dangling: BTreeSet<Digest> = store.dangling_images().unwrap().into_iter().collect();
        assert_eq!(dangling, [b.id.clone(), c.id.clone()].into_iter().collect());
        // Moving the tag away makes a dangling.
        store.set_reference(&r("a:1"), &c.id).unwrap();
        let dangling: BTreeSet<Digest> = store.dangling_images().unwrap().into_iter().collect();
        assert_eq!(dangling, [a.id, b.id].into_iter().collect());
    }

    #[test]
    fn deleting_an_image_removes_its_rows_and_references() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = image(1, &[1, 2]);
        store.put_image(&a).unwrap();
        store.set_reference(&r("a:1"), &a.id).unwrap();
        store.set_reference(&r("b:2"), &a.id).unwrap();
        let removed = store.delete_image(&a.id).unwrap();
        assert_eq!(removed.len(), 2);
        assert!(store.all_references().unwrap().is_empty());
        let n: i64 = store
            .conn()
            .query_row("SELECT count(*) FROM image_layers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        assert!(matches!(
            store.delete_image(&a.id),
            Err(StoreError::ImageNotFound { .. })
        ));
    }
}
