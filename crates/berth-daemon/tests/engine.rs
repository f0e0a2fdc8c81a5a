//! The engine's image services on real stores in a temp dir: docker's
//! `rmi` rules, list filters, tags, save/load, prune, reload.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use berth_api::Filters;
use berth_daemon::{DaemonConfig, Engine};

fn engine(dir: &Path) -> Arc<Engine> {
    // No default bridge, firewall table or forwarding: these tests are
    // about images, and the defaults (berth0, `inet berth`) would be left
    // on the host.
    Engine::open(DaemonConfig {
        data_root: dir.join("data"),
        exec_root: dir.join("exec"),
        bridge: "none".into(),
        iptables: false,
        ip_forward: false,
        ..DaemonConfig::default()
    })
    .expect("opening the engine")
}

/// A small rootfs tarball made with the system's tar (one file, `content`).
fn rootfs_tar(dir: &Path, content: &str) -> Vec<u8> {
    let root = dir.join(format!("rootfs-{content}"));
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/hello"), content).unwrap();
    let out = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["--numeric-owner", "-cf", "-", "."])
        .output()
        .expect("running tar");
    assert!(out.status.success());
    std::fs::remove_dir_all(&root).unwrap();
    out.stdout
}

fn tags(e: &Engine) -> Vec<String> {
    let mut t: Vec<String> = e
        .list_images(&Filters::new(), false)
        .unwrap()
        .into_iter()
        .flat_map(|i| i.repo_tags)
        .collect();
    t.sort();
    t
}

#[test]
fn rmi_untags_before_it_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let tar = rootfs_tar(dir.path(), "a");
    let id = e
        .import_image(&tar[..], Some("one"), Some("1"), None, vec![], None)
        .unwrap();
    e.tag_image("one:1", "two", None).unwrap();
    e.tag_image("one:1", "example.com/x/three", Some("3"))
        .unwrap();
    assert_eq!(tags(&e), ["example.com/x/three:3", "one:1", "two:latest"]);

    // By name: untag only while other tags remain.
    let r = e.remove_image("two", false, true).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].untagged.as_deref(), Some("two:latest"));
    // By id across repositories: refused without force.
    let err = e.remove_image(&id.to_string(), false, true).unwrap_err();
    assert!(err.to_string().contains("must be forced"), "{err}");
    let r = e.remove_image(&id.hex()[..12], true, true).unwrap();
    assert_eq!(
        r.last().unwrap().deleted.as_deref(),
        Some(id.to_string().as_str())
    );
    assert!(tags(&e).is_empty());
    let err = e.inspect_image("one:1").unwrap_err();
    assert!(err.to_string().contains("No such image"), "{err}");
}

#[test]
fn list_filters_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    e.import_image(
        &rootfs_tar(dir.path(), "a")[..],
        Some("keep"),
        None,
        None,
        vec!["LABEL tier=gold".into()],
        None,
    )
    .unwrap();
    let dangling = e
        .import_image(
            &rootfs_tar(dir.path(), "b")[..],
            None,
            None,
            None,
            vec![],
            None,
        )
        .unwrap();
    let f = Filters::parse(r#"{"dangling":["true"]}"#).unwrap();
    let d: Vec<String> = e
        .list_images(&f, false)
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(d, [dangling.to_string()]);
    let f = Filters::parse(r#"{"label":["tier=gold"]}"#).unwrap();
    assert_eq!(e.list_images(&f, false).unwrap().len(), 1);
    let f = Filters::parse(r#"{"label":["tier=silver"]}"#).unwrap();
    assert!(e.list_images(&f, false).unwrap().is_empty());
    assert!(e
        .list_images(&Filters::parse(r#"{"colour":["x"]}"#).unwrap(), false)
        .is_err());

    let pruned = e.prune_images(&Filters::new()).unwrap();
    let deleted: Vec<_> = pruned
        .images_deleted
        .unwrap()
        .into_iter()
        .filter_map(|d| d.deleted)
        .collect();
    assert_eq!(deleted, [dangling.to_string()]);
    assert!(pruned.space_reclaimed.unwrap() > 0);
    assert_eq!(tags(&e), ["keep:latest"]);
}

#[test]
fn save_then_load_into_another_engine() {
    let dir = tempfile::tempdir().unwrap();
    let a = engine(&dir.path().join("a"));
    let id = a
        .import_image(
            &rootfs_tar(dir.path(), "a")[..],
            Some("img"),
            Some("v1"),
            None,
            vec![],
            None,
        )
        .unwrap();
    let items = a.save_items(&["img:v1".to_string()]).unwrap();
    assert_eq!(items[0].tags.len(), 1);
    let archive = a.save_images(&items, Vec::new()).unwrap();
    assert!(a.save_items(&["absent".to_string()]).is_err());

    let b = engine(&dir.path().join("b"));
    let lines = b.load_images(&archive[..]).unwrap();
    assert_eq!(lines, ["Loaded image: img:v1\n"]);
    let v = b.inspect_image("img:v1").unwrap();
    assert_eq!(v["Id"], id.to_string());
    let history = b.image_history("img:v1").unwrap();
    assert_eq!(history[0]["Id"], id.to_string());
    assert!(b.load_images(&b"garbage"[..]).is_err());
    assert_eq!(tags(&b), ["img:v1"]);
}

#[test]
fn reload_keeps_roots_and_takes_registry_settings() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let before = e.config();
    e.reload(DaemonConfig {
        data_root: "/elsewhere".into(),
        registry_mirrors: vec!["https://mirror.example".into()],
        ..DaemonConfig::default()
    })
    .unwrap();
    let after = e.config();
    assert_eq!(after.data_root, before.data_root);
    assert_eq!(after.registry_mirrors, ["https://mirror.example"]);
    assert!(e
        .reload(DaemonConfig {
            registry_mirrors: vec!["not a url".into()],
            ..DaemonConfig::default()
        })
        .is_err());
    assert_eq!(e.config().registry_mirrors, ["https://mirror.example"]);
    // The engine id survives a restart.
    let id = e.info().unwrap()["ID"].clone();
    drop(e);
    assert_eq!(engine(dir.path()).info().unwrap()["ID"], id);
}
