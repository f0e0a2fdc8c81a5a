//! Garbage collection over a real database, content store and layer store.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_archive::ApplyOptions;
use berth_image::{import, ContentStore, Digest, ImageParts, ImportOptions, LayerStore, Reference};
use berth_store::{GcOptions, ImageRecord, LeaseResource, Store};

struct Engine {
    _root: tempfile::TempDir,
    store: Arc<Store>,
    content: ContentStore,
    layers: LayerStore,
}

fn engine() -> Engine {
    let root = tempfile::tempdir().unwrap();
    Engine {
        store: Arc::new(Store::open(root.path()).unwrap()),
        content: ContentStore::open(root.path()).unwrap(),
        layers: LayerStore::open(root.path()).unwrap(),
        _root: root,
    }
}

fn tarball(files: &[(&str, &[u8])]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    for (p, d) in files {
        std::fs::write(dir.path().join(p), d).unwrap();
    }
    let mut out = Vec::new();
    berth_archive::write_tree(dir.path(), &mut out).unwrap();
    out
}

impl Engine {
    /// Imports and records an image, as the daemon would.
    fn add_image(&self, tar: &[u8], cmd: &str, tag: &str) -> ImageParts {
        let _guard = self.store.hold_off_gc();
        let opts = ImportOptions {
            changes: vec![format!("CMD {cmd}")],
            ..ImportOptions::default()
        };
        let parts = import(&self.content, &self.layers, tar, &opts).unwrap();
        self.store
            .put_image(&ImageRecord::from_parts(&parts, None))
            .unwrap();
        self.store
            .set_reference(&Reference::parse(tag).unwrap(), &parts.id)
            .unwrap();
        parts
    }

    fn blobs(&self) -> BTreeSet<Digest> {
        self.content
            .list()
            .unwrap()
            .into_iter()
            .map(|b| b.digest)
            .collect()
    }

    fn gc(&self) -> berth_store::GcReport {
        let opts = GcOptions {
            ingest_max_age: Duration::ZERO,
            startup: true,
        };
        self.store.gc(&self.content, &self.layers, &opts).unwrap()
    }
}

fn image_blobs(p: &ImageParts) -> Vec<Digest> {
    let mut v = vec![p.id.clone(), p.manifest_digest.clone()];
    v.extend(p.layers.iter().map(|l| l.blob.digest.clone()));
    v
}

#[test]
fn gc_keeps_what_images_and_leases_reference_and_removes_the_rest() {
    let e = engine();
    let base = tarball(&[("shared", b"same files in both images")]);
    let a = e.add_image(&base, "a", "app:a");
    let b = e.add_image(&base, "b", "app:b");
    assert_eq!(
        a.layers[0].chain_id, b.layers[0].chain_id,
        "same tarball, same layer"
    );

    // Garbage: an orphan blob, an orphan layer, a stale partial download.
    let orphan_blob = e.content.write_blob(b"nobody wants me").unwrap().digest;
    let orphan_meta = e
        .layers
        .unpack_new(
            None,
            &tarball(&[("orphan", b"o")])[..],
            &ApplyOptions::default(),
        )
        .unwrap()
        .meta;
    e.store.record_layer(&orphan_meta).unwrap();
    let recorded = e.store.layer(&orphan_meta.chain_id).unwrap().unwrap();
    assert_eq!(recorded.diff_id, orphan_meta.diff_id);
    assert_eq!(recorded.tar_size, orphan_meta.tar_size);
    let orphan_layer = orphan_meta.chain_id;
    let mut stale = e.content.writer("stale-download").unwrap();
    stale.write_all(b"partial").unwrap();
    drop(stale);

    // Leased, not referenced by any image: kept while the lease lives.
    let lease = e.store.create_lease(None).unwrap();
    let leased_blob = Digest::sha256_of(b"being pulled");
    e.store
        .lease_add(&lease, &LeaseResource::Blob(leased_blob.clone()))
        .unwrap();
    e.content.write_blob(b"being pulled").unwrap();
    let leased_tar = tarball(&[("pulled", b"p")]);
    let leased_layer = Digest::sha256_of(&leased_tar);
    e.store
        .lease_add(&lease, &LeaseResource::Layer(leased_layer.clone()))
        .unwrap();
    e.layers
        .unpack(
            &leased_layer,
            None,
            &leased_layer,
            &leased_tar[..],
            &ApplyOptions::default(),
        )
        .unwrap();
    e.store
        .lease_add(&lease, &LeaseResource::Ingest("leased-download".into()))
        .unwrap();
    let mut leased_ingest = e.content.writer("leased-download").unwrap();
    leased_ingest.write_all(b"half").unwrap();
    drop(leased_ingest);

    let report = e.gc();
    assert_eq!(report.blobs_removed, vec![orphan_blob.clone()]);
    assert_eq!(report.layers_removed, vec![orphan_layer.clone()]);
    assert_eq!(
        e.store.layer(&orphan_layer).unwrap(),
        None,
        "the row goes with the dir"
    );
    assert_eq!(report.ingests_removed, vec!["stale-download".to_owned()]);
    assert_eq!(report.bytes_freed, b"nobody wants me".len() as u64);
    let blobs = e.blobs();
    for d in image_blobs(&a)
        .iter()
        .chain(image_blobs(&b).iter())
        .chain([&leased_blob])
    {
        assert!(blobs.contains(d), "{d} must be kept");
    }
    assert!(e.layers.exists(&a.layers[0].chain_id) && e.layers.exists(&leased_layer));
    assert_eq!(
        e.content.list_ingests().unwrap().len(),
        1,
        "the leased ingest stays"
    );
    assert_eq!(
        e.gc(),
        berth_store::GcReport::default(),
        "a second run finds nothing"
    );

    // Deleting image b frees its own blobs but not the layer a still uses.
    e.store.delete_image(&b.id).unwrap();
    let report = e.gc();
    let freed: BTreeSet<Digest> = report.blobs_removed.iter().cloned().collect();
    assert_eq!(
        freed,
        [b.id.clone(), b.manifest_digest.clone()]
            .into_iter()
            .collect()
    );
    assert!(report.layers_removed.is_empty());
    assert!(e.content.exists(&a.layers[0].blob.digest));

    // Ending the lease releases what it held.
    e.store.delete_lease(&lease).unwrap();
    let report = e.gc();
    assert_eq!(report.blobs_removed, vec![leased_blob]);
    assert_eq!(report.layers_removed, vec![leased_layer]);
    assert_eq!(report.ingests_removed, vec!["leased-download".to_owned()]);

    // Deleting the last image leaves an empty store.
    e.store.delete_image(&a.id).unwrap();
    e.gc();
    assert!(e.content.list().unwrap().is_empty());
    assert!(e.layers.list().unwrap().is_empty());
}

#[test]
fn expired_leases_protect_nothing() {
    let e = engine();
    let lease = e.store.create_lease(Some(Duration::ZERO)).unwrap();
    let d = e.content.write_blob(b"abandoned pull").unwrap().digest;
    e.store
        .lease_add(&lease, &LeaseResource::Blob(d.clone()))
        .unwrap();
    let report = e.gc();
    assert_eq!(report.leases_expired, vec![lease]);
    assert_eq!(report.blobs_removed, vec![d]);
}

#[test]
fn gc_waits_for_operations_that_hold_it_off() {
    let e = engine();
    let orphan = e
        .content
        .write_blob(b"written before recording")
        .unwrap()
        .digest;
    let guard = e.store.hold_off_gc();
    let done = Arc::new(AtomicBool::new(false));
    let (store, content, layers, flag) = (
        e.store.clone(),
        e.content.clone(),
        e.layers.clone(),
        done.clone(),
    );
    let gc = std::thread::spawn(move || {
        let r = store.gc(&content, &layers, &GcOptions::default()).unwrap();
        flag.store(true, Ordering::SeqCst);
        r
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !done.load(Ordering::SeqCst),
        "gc must wait while an import is in flight"
    );
    assert!(e.content.exists(&orphan));
    drop(guard);
    let report = gc.join().unwrap();
    assert_eq!(report.blobs_removed, vec![orphan]);
}
