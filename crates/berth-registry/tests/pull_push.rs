//! Whole images through a real Debian `docker-registry` on a loopback port:
//! berth pushes what it imported, pulls it back into an empty store
//! (unpacking while downloading) and runs it with berth-runtime; skopeo
//! and umoci read what berth pushes; multi-platform indexes; cross-repo
//! mounts; and hostile registries (corrupt, truncated, lying configs) that
//! must leave nothing stored.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use berth_archive::Compression;
use berth_errdefs::{ErrorKind, HasKind};
use berth_image::manifest::media_type;
use berth_image::{
    assemble, import, ContentStore, Descriptor, Digest, ImageParts, ImportOptions, LayerStore,
    Manifest, Platform, Reference,
};
use berth_registry::{
    pull, pull_all_tags, push, Client, LayerStatus, Progress, ProgressEvent, PullError,
    PullOptions, PushOptions, RegistryConfig, RegistryError, RetryPolicy, MEDIA_TYPE_OCI_INDEX,
};
use berth_store::{GcOptions, ImageRecord, Store};
use bytes::Bytes;
use common::{Action, Auth, FaultProxy, Registry};

/// One data root: database, content store and layer store.
struct Stores {
    _dir: tempfile::TempDir,
    db: Arc<Store>,
    content: ContentStore,
    layers: LayerStore,
}

impl Stores {
    fn new() -> Stores {
        let dir = tempfile::tempdir().unwrap();
        Stores {
            db: Arc::new(Store::open(dir.path()).unwrap()),
            content: ContentStore::open(dir.path()).unwrap(),
            layers: LayerStore::open(dir.path()).unwrap(),
            _dir: dir,
        }
    }

    /// Records an image and tags it.
    fn record(&self, parts: &ImageParts, tag: &Reference) {
        self.db
            .put_image(&ImageRecord::from_parts(parts, None))
            .unwrap();
        self.db.set_reference(tag, &parts.id).unwrap();
    }

    /// Asserts that no blob, ingest, layer, image, reference or lease is stored.
    fn assert_empty(&self, why: &str) {
        assert_eq!(self.content.list().unwrap(), vec![], "{why}: blobs");
        assert_eq!(
            self.content.list_ingests().unwrap(),
            vec![],
            "{why}: ingests"
        );
        assert_eq!(self.layers.list().unwrap(), vec![], "{why}: layers");
        assert!(self.db.images().unwrap().is_empty(), "{why}: images");
        assert!(self.db.all_references().unwrap().is_empty(), "{why}: refs");
        assert!(self.db.leases().unwrap().is_empty(), "{why}: leases");
    }

    async fn pull(&self, c: &Client, r: &Reference, options: &PullOptions) -> PullResult {
        let (progress, mut rx) = Progress::channel();
        let res = pull(
            c,
            &self.db,
            &self.content,
            &self.layers,
            r,
            options,
            &progress,
        )
        .await;
        drop(progress);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        (res, events)
    }

    async fn push(
        &self,
        c: &Client,
        r: &Reference,
    ) -> (berth_registry::PushedImage, Vec<ProgressEvent>) {
        let (progress, mut rx) = Progress::channel();
        let pushed = push(
            c,
            &self.db,
            &self.content,
            r,
            &PushOptions::default(),
            &progress,
        )
        .await
        .unwrap();
        drop(progress);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        (pushed, events)
    }
}

type PullResult = (
    Result<berth_registry::PulledImage, PullError>,
    Vec<ProgressEvent>,
);

/// A client that never reads the real user's docker config, with quick retries.
fn client(dir: &Path) -> Client {
    let mut config = RegistryConfig::new();
    config.docker_config = Some(dir.join("config.json"));
    config.helper_path = Some(dir.as_os_str().to_owned());
    config.retry = RetryPolicy {
        attempts: 2,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    };
    Client::new(config).unwrap()
}

fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

/// The statuses a layer went through, in order.
fn statuses(events: &[ProgressEvent], layer: &Digest) -> Vec<LayerStatus> {
    events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::Layer { id, status } if id == layer => Some(status.clone()),
            _ => None,
        })
        .collect()
}

/// A busybox rootfs from Debian's busybox-static: /bin with every applet.
fn busybox_rootfs(dir: &Path) {
    for sub in ["bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    fs::copy("/bin/busybox", dir.join("bin/busybox"))
        .expect("copying /bin/busybox (install busybox-static)");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
    fs::write(dir.join("etc/motd"), "pulled by berth\n").unwrap();
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = berth_archive::compressor(Vec::new(), Compression::Gzip).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

/// A gzipped tar of `dir` and its diff id.
fn tar_gz(dir: &Path) -> (Vec<u8>, Digest) {
    let mut tar = Vec::new();
    let stats = berth_archive::write_tree(dir, &mut tar).unwrap();
    (gzip(&tar), Digest::parse(&stats.diff_id).unwrap())
}

/// Imports a busybox rootfs (gzipped) as an image with `CMD ["/bin/sh"]`.
fn import_busybox(s: &Stores) -> ImageParts {
    let tree = tempfile::tempdir().unwrap();
    busybox_rootfs(tree.path());
    let (gz, _) = tar_gz(tree.path());
    let options = ImportOptions {
        changes: vec![r#"CMD ["/bin/sh"]"#.to_owned()],
        ..ImportOptions::default()
    };
    import(&s.content, &s.layers, &gz[..], &options).unwrap()
}

/// Gives every entry under `dir` one fixed mtime, so equal trees make
/// equal layers (and share a chain id) whenever they are built.
fn fixed_mtimes(dir: &Path) {
    use rustix::fs::{utimensat, AtFlags, Timespec, Timestamps, CWD};
    let t = Timespec {
        tv_sec: 1_700_000_000,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            fixed_mtimes(&p);
        }
        utimensat(CWD, &p, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
    }
    utimensat(CWD, dir, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// Builds a multi-layer image by hand in `s`: each layer is a tree of
/// `(path, contents)` files; the config names `platform`.
fn make_image(s: &Stores, layers: &[&[(&str, &[u8])]], platform: &Platform) -> ImageParts {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for files in layers {
        let dir = tempfile::tempdir().unwrap();
        for (path, data) in *files {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, data).unwrap();
        }
        fixed_mtimes(dir.path());
        let (gz, diff_id) = tar_gz(dir.path());
        let c = s.content.write_blob(&gz).unwrap();
        descs.push(Descriptor::new(
            media_type::OCI_LAYER_GZIP,
            c.digest,
            c.size,
        ));
        diff_ids.push(diff_id);
    }
    let config = serde_json::json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "variant": platform.variant,
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let c = s.content.write_blob(&config).unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: Descriptor::new(media_type::OCI_CONFIG, c.digest, c.size),
        layers: descs,
        subject: None,
        annotations: Default::default(),
    };
    let m = s.content.write_blob(&manifest.to_json()).unwrap();
    assemble(
        &s.content,
        &s.layers,
        manifest,
        m.digest,
        &berth_archive::ApplyOptions::default(),
    )
    .unwrap()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The berth-runtime binary of this build profile, built when missing.
fn berth_runtime() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_owned();
    let bin = profile_dir.join("berth-runtime");
    if !bin.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "berth-runtime"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("running cargo build -p berth-runtime");
        assert!(st.success(), "cargo build -p berth-runtime failed");
    }
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

/// An overlay mount, undone on drop even when the test fails.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

fn mount_overlay(m: &berth_image::Mount, target: &Path) -> Mounted {
    assert!(m.chdir.is_none(), "a short layer list needs no working dir");
    let data = std::ffi::CString::new(m.data()).unwrap();
    rustix::mount::mount(
        m.source.as_str(),
        target,
        m.fstype.as_str(),
        rustix::mount::MountFlags::empty(),
        data.as_c_str(),
    )
    .unwrap();
    Mounted(target.to_owned())
}

/// Runs `args` in a container whose root is `rootfs`: (exit code, stdout).
fn run_container(rootfs: &Path, work: &Path, args: &[&str]) -> (i32, String, String) {
    let rt = berth_runtime();
    let bundle = work.join("bundle");
    let state = work.join("state");
    fs::create_dir_all(&bundle).unwrap();
    let out = Command::new(&rt)
        .args(["spec", "--bundle"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "spec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
    cfg["root"]["path"] = serde_json::json!(rootfs);
    cfg["root"]["readonly"] = serde_json::json!(false);
    cfg["process"]["terminal"] = serde_json::json!(false);
    cfg["process"]["args"] = serde_json::json!(args);
    // A cgroup of its own, not under the runtime's shared default parent,
    // so nothing of it stays.
    let id = format!("berth-registry-test-{}", std::process::id());
    cfg["linux"]["cgroupsPath"] = serde_json::json!(format!("/{id}"));
    fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    // Output through files: a container's init inherits stdio.
    let stdout = tempfile::NamedTempFile::new().unwrap();
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let st = Command::new(&rt)
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(stdout.reopen().unwrap())
        .stderr(stderr.reopen().unwrap())
        .status()
        .unwrap();
    // `run` deletes the container when it exits; make sure, and leave no state.
    let _ = Command::new(&rt)
        .arg("--root")
        .arg(&state)
        .args(["delete", "--force", &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    // The runtime's read-only copy of itself (the only test here that runs it).
    berth_sys::exe_copy::remove_copy(&rt);
    (
        st.code().unwrap_or(-1),
        fs::read_to_string(stdout.path()).unwrap(),
        fs::read_to_string(stderr.path()).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busybox_push_delete_pull_and_run() {
    let reg = Registry::start(Auth::None);
    let work = tempfile::tempdir().unwrap();
    let c = client(work.path());
    let s = Stores::new();
    let image = import_busybox(&s);
    let tag = reference(&format!("{}/berth/busybox:1", reg.host()));
    s.record(&image, &tag);

    // Push: the layer is uploaded, the digest is the stored manifest's.
    let (pushed, events) = s.push(&c, &tag).await;
    assert_eq!(pushed.digest, image.manifest_digest);
    assert_eq!(pushed.tag, "1");
    let layer = &image.layers[0].blob.digest;
    let st = statuses(&events, layer);
    assert_eq!(st.first(), Some(&LayerStatus::Preparing), "{st:?}");
    assert_eq!(st.last(), Some(&LayerStatus::Pushed), "{st:?}");
    assert!(st.iter().any(|s| matches!(s, LayerStatus::Pushing { .. })));
    assert!(events.contains(&ProgressEvent::PushDigest {
        tag: "1".into(),
        digest: pushed.digest.clone(),
        size: pushed.size,
    }));
    // A second push finds everything there.
    let (again, events) = s.push(&c, &tag).await;
    assert_eq!(again.digest, pushed.digest);
    assert_eq!(
        statuses(&events, layer).last(),
        Some(&LayerStatus::AlreadyExists)
    );

    // Delete locally and collect: the stores are empty.
    s.db.delete_image(&image.id).unwrap();
    s.db.gc(&s.content, &s.layers, &GcOptions::default())
        .unwrap();
    s.assert_empty("after rmi and gc");

    // Pull it back.
    let (res, events) = s.pull(&c, &tag, &PullOptions::default()).await;
    let pulled = res.unwrap();
    assert_eq!(pulled.id, image.id);
    assert_eq!(pulled.manifest_digest, image.manifest_digest);
    assert_eq!(pulled.digest, image.manifest_digest);
    assert_eq!(pulled.layers_downloaded, 1);
    assert!(!pulled.up_to_date);
    let st = statuses(&events, layer);
    assert_eq!(st.first(), Some(&LayerStatus::Waiting), "{st:?}");
    assert_eq!(st.last(), Some(&LayerStatus::PullComplete), "{st:?}");
    assert!(st.contains(&LayerStatus::DownloadComplete), "{st:?}");
    assert!(
        st.iter()
            .any(|s| matches!(s, LayerStatus::Downloading { current, total } if current == total)),
        "{st:?}"
    );
    assert_eq!(s.db.lookup_reference(&tag).unwrap(), Some(image.id.clone()));
    let by_digest = tag.repository_only().with_digest(pulled.digest.clone());
    assert_eq!(
        s.db.lookup_reference(&by_digest).unwrap(),
        Some(image.id.clone())
    );
    assert!(
        s.db.leases().unwrap().is_empty(),
        "the pull's lease is gone"
    );
    assert!(s.content.list_ingests().unwrap().is_empty());
    let record = s.db.image(&image.id).unwrap();
    assert_eq!(record.chain(), image.chain());
    // Stored blobs are exactly config, manifest and layer.
    let mut blobs: Vec<Digest> = s
        .content
        .list()
        .unwrap()
        .into_iter()
        .map(|b| b.digest)
        .collect();
    blobs.sort();
    let mut want = vec![
        image.id.clone(),
        image.manifest_digest.clone(),
        layer.clone(),
    ];
    want.sort();
    assert_eq!(blobs, want);

    // Again: nothing to download, and the tag was already there.
    let (res, events) = s.pull(&c, &tag, &PullOptions::default()).await;
    let again = res.unwrap();
    assert!(again.up_to_date);
    assert_eq!(again.layers_downloaded, 0);
    // No layer lines for an image that is here, as docker's pull.
    assert_eq!(statuses(&events, layer), vec![]);

    // Run the pulled rootfs: an overlay of its layers with berth-runtime.
    if !is_root() {
        eprintln!("skipping the container run: overlay mounts need root");
        return;
    }
    let ctr = work.path().join("ctr");
    let (upper, wdir, merged) = (ctr.join("upper"), ctr.join("work"), ctr.join("merged"));
    for d in [&upper, &wdir, &merged] {
        fs::create_dir_all(d).unwrap();
    }
    let m = s
        .layers
        .container_mounts(&record.chain(), &upper, &wdir)
        .unwrap();
    let mounted = mount_overlay(&m, &merged);
    let (code, out, err) = run_container(
        &merged,
        &ctr,
        &[
            "/bin/sh",
            "-c",
            "cat /etc/motd && echo hi > /root/x && ls /bin/busybox",
        ],
    );
    drop(mounted);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out, "pulled by berth\n/bin/busybox\n");
    // The write went to the container's upper dir, not the shared layer.
    assert_eq!(fs::read_to_string(upper.join("root/x")).unwrap(), "hi\n");
    assert!(!s
        .layers
        .diff_path(&record.chain()[0])
        .join("root/x")
        .exists());
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&merged.display().to_string()),
        "mount left behind"
    );
}

/// skopeo + umoci, installed from Debian when missing.
fn ensure_tools() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let have = |p: &str| {
            Command::new(p)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if have("skopeo") && have("umoci") {
            return;
        }
        for args in [
            &["update", "-qq"][..],
            &["install", "-y", "-qq", "skopeo", "umoci"][..],
        ] {
            let st = Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .expect("running apt-get");
            assert!(st.success(), "apt-get {args:?} failed");
        }
    });
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every entry under `root`: relative path -> (kind, mode, size or target, content hash).
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let md = fs::symlink_metadata(&p).unwrap();
            let mode = md.mode() & 0o7777;
            let desc = if md.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&p).unwrap().display())
            } else if md.is_dir() {
                walk(root, &p, out);
                format!("dir {mode:o} {}:{}", md.uid(), md.gid())
            } else {
                format!(
                    "file {mode:o} {}:{} {}",
                    md.uid(),
                    md.gid(),
                    Digest::sha256_of(&fs::read(&p).unwrap())
                )
            };
            out.insert(rel, desc);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copies_what_berth_pushes_and_umoci_agrees_on_the_files() {
    ensure_tools();
    let reg = Registry::start(Auth::None);
    let work = tempfile::tempdir().unwrap();
    let c = client(work.path());
    let s = Stores::new();
    let image = import_busybox(&s);
    let tag = reference(&format!("{}/interop/busybox:v1", reg.host()));
    s.record(&image, &tag);
    s.push(&c, &tag).await;

    let w = work.path();
    let policy = w.join("policy.json");
    fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let layout = w.join("oci");
    run_ok(
        Command::new("skopeo")
            .arg("--policy")
            .arg(&policy)
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{tag}"))
            .arg(format!("oci:{}:v1", layout.display()))
            .env("TMPDIR", w),
    );
    // skopeo kept our blobs as they are: the manifest digest is ours.
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"],
        serde_json::json!(image.manifest_digest.to_string())
    );
    let bundle = w.join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:v1", layout.display()))
            .arg(&bundle),
    );
    let theirs = tree(&bundle.join("rootfs"));
    let ours = tree(&s.layers.diff_path(&image.layers[0].chain_id));
    assert!(ours.len() > 100, "busybox has its applets: {}", ours.len());
    assert_eq!(theirs, ours);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_platform_index_pulls_the_requested_platform() {
    let reg = Registry::start(Auth::None);
    let work = tempfile::tempdir().unwrap();
    let c = client(work.path());
    let src = Stores::new();
    let amd64 = Platform::parse("linux/amd64").unwrap();
    let arm64 = Platform::parse("linux/arm64/v8").unwrap();
    let common: &[(&str, &[u8])] = &[("etc/os-release", b"berth test\n")];
    let img_amd = make_image(&src, &[common, &[("arch", b"amd64\n")]], &amd64);
    let img_arm = make_image(&src, &[common, &[("arch", b"arm64\n")]], &arm64);
    let repo = format!("{}/multi/app", reg.host());
    for (img, t) in [(&img_amd, "amd64"), (&img_arm, "arm64")] {
        let r = reference(&format!("{repo}:{t}"));
        src.record(img, &r);
        src.push(&c, &r).await;
    }
    // The index, by hand.
    let entry = |img: &ImageParts, p: &Platform| {
        let size = src.content.info(&img.manifest_digest).unwrap().size;
        serde_json::json!({
            "mediaType": media_type::OCI_MANIFEST,
            "digest": img.manifest_digest.to_string(),
            "size": size,
            "platform": p,
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": [entry(&img_amd, &amd64), entry(&img_arm, &arm64)],
    });
    let index = Bytes::from(serde_json::to_vec(&index).unwrap());
    let multi = reference(&format!("{repo}:multi"));
    let index_digest = c
        .put_manifest(&multi, MEDIA_TYPE_OCI_INDEX, index.clone())
        .await
        .unwrap();

    let dst = Stores::new();
    for (platform, img, arch) in [(&arm64, &img_arm, "arm64"), (&amd64, &img_amd, "amd64")] {
        let options = PullOptions {
            platform: Some(platform.clone()),
            ..PullOptions::default()
        };
        let (res, events) = dst.pull(&c, &multi, &options).await;
        let pulled = res.unwrap();
        assert_eq!(pulled.id, img.id, "{platform}");
        assert_eq!(pulled.index_digest.as_ref(), Some(&index_digest));
        assert_eq!(pulled.digest, index_digest);
        assert_eq!(pulled.manifest_digest, img.manifest_digest);
        assert!(events.contains(&ProgressEvent::PullDigest {
            digest: index_digest.clone()
        }));
        let record = dst.db.image(&img.id).unwrap();
        assert_eq!(record.platform, platform.to_string());
        assert_eq!(record.index_digest.as_ref(), Some(&index_digest));
        assert_eq!(
            dst.db.lookup_reference(&multi).unwrap(),
            Some(img.id.clone())
        );
        assert!(dst.content.exists(&index_digest), "the index blob is kept");
        let top = record.chain().last().unwrap().clone();
        assert_eq!(
            fs::read_to_string(dst.layers.diff_path(&top).join("arch")).unwrap(),
            format!("{arch}\n")
        );
    }
    // The shared base layer was unpacked once and reused by the second pull.
    assert_eq!(dst.layers.list().unwrap().len(), 3);

    // A platform the index lacks: a clear error naming what it has, nothing stored.
    let empty = Stores::new();
    let options = PullOptions {
        platform: Some(Platform::parse("linux/s390x").unwrap()),
        ..PullOptions::default()
    };
    let (res, _) = empty.pull(&c, &multi, &options).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("linux/amd64"), "{err}");
    empty.assert_empty("after a platform miss");

    // An explicit platform that a single-platform image does not match is refused.
    let (res, _) = empty
        .pull(
            &c,
            &reference(&format!("{repo}:arm64")),
            &PullOptions {
                platform: Some(amd64.clone()),
                ..PullOptions::default()
            },
        )
        .await;
    assert!(
        matches!(res, Err(PullError::PlatformMismatch { .. })),
        "{res:?}"
    );
    empty.assert_empty("after a platform mismatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_repository_mounts_and_all_tags() {
    let reg = Registry::start(Auth::None);
    let work = tempfile::tempdir().unwrap();
    let c = client(work.path());
    let s = Stores::new();
    let image = import_busybox(&s);
    let a = reference(&format!("{}/team/a:latest", reg.host()));
    s.record(&image, &a);
    s.push(&c, &a).await;
    // The same image under another repository: its layer is mounted from a.
    let b = reference(&format!("{}/team/b:latest", reg.host()));
    s.db.set_reference(&b, &image.id).unwrap();
    let (pushed, events) = s.push(&c, &b).await;
    assert_eq!(pushed.digest, image.manifest_digest);
    assert_eq!(
        statuses(&events, &image.layers[0].blob.digest).last(),
        Some(&LayerStatus::Mounted {
            from: "team/a".into()
        })
    );
    // Two more tags of b, one of another image.
    let other = make_image(&s, &[&[("hello", b"world\n")]], &Platform::host());
    let b2 = reference(&format!("{}/team/b:2", reg.host()));
    s.record(&other, &b2);
    s.push(&c, &b2).await;
    let dst = Stores::new();
    let (progress, _rx) = Progress::channel();
    let pulled = pull_all_tags(
        &c,
        &dst.db,
        &dst.content,
        &dst.layers,
        &b.repository_only(),
        &PullOptions::default(),
        &progress,
    )
    .await
    .unwrap();
    assert_eq!(pulled.len(), 2);
    assert_eq!(dst.db.lookup_reference(&b).unwrap(), Some(image.id.clone()));
    assert_eq!(
        dst.db.lookup_reference(&b2).unwrap(),
        Some(other.id.clone())
    );
    // Pulling a tag with -a is refused, as docker does.
    let err = pull_all_tags(
        &c,
        &dst.db,
        &dst.content,
        &dst.layers,
        &b,
        &PullOptions::default(),
        &progress,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_truncated_and_lying_images_leave_nothing_stored() {
    let reg = Registry::start(Auth::None);
    let proxy = FaultProxy::start(reg.addr).await;
    let work = tempfile::tempdir().unwrap();
    let c = client(work.path());
    let src = Stores::new();
    // Two layers, so the good one is committed (and must be removed again)
    // while the other fails.
    let big = common::blob(7, 600_000);
    let image = make_image(
        &src,
        &[&[("small", b"ok\n")], &[("big", &big)]],
        &Platform::host(),
    );
    let repo = format!("{}/hostile/app", reg.host());
    let tag = reference(&format!("{repo}:1"));
    src.record(&image, &tag);
    src.push(&c, &tag).await;
    let via_proxy = reference(&format!("{}/hostile/app:1", proxy.host()));
    let big_layer = image.layers[1].blob.digest.clone();
    let dst = Stores::new();

    // A flipped byte in the big layer: its digest does not match.
    proxy.add(
        "GET",
        &format!("/blobs/{big_layer}"),
        Action::Corrupt(5_000),
    );
    let (res, _) = dst.pull(&c, &via_proxy, &PullOptions::default()).await;
    let err = res.unwrap_err();
    assert!(
        matches!(
            err,
            PullError::Registry(RegistryError::DigestMismatch { .. })
        ),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::DataLoss);
    assert_eq!(proxy.pending(), 0);
    dst.assert_empty("after a corrupt layer");

    // A stream cut short more often than the client retries.
    for _ in 0..3 {
        proxy.add(
            "GET",
            &format!("/blobs/{big_layer}"),
            Action::CutAfter(100_000),
        );
    }
    let (res, _) = dst.pull(&c, &via_proxy, &PullOptions::default()).await;
    let err = res.unwrap_err();
    assert!(
        matches!(err, PullError::Registry(RegistryError::Unreachable { .. })),
        "{err}"
    );
    dst.assert_empty("after a truncated layer");

    // A corrupt config.
    proxy.add("GET", &format!("/blobs/{}", image.id), Action::Corrupt(3));
    let (res, _) = dst.pull(&c, &via_proxy, &PullOptions::default()).await;
    assert_eq!(res.unwrap_err().kind(), ErrorKind::DataLoss);
    dst.assert_empty("after a corrupt config");

    // A config that lies about a layer's diff id: the blob is what the
    // manifest says, but its contents are not what the config promises.
    let mut cfg: serde_json::Value = serde_json::from_slice(&image.config_bytes).unwrap();
    cfg["rootfs"]["diff_ids"][1] = serde_json::json!(Digest::sha256_of(b"not this").to_string());
    let cfg = serde_json::to_vec(&cfg).unwrap();
    let cfg_digest = Digest::sha256_of(&cfg);
    let lying_repo = reference(&format!("{repo}:lying"));
    c.push_blob(&lying_repo, &cfg_digest, cfg.len() as u64, &cfg[..], None)
        .await
        .unwrap();
    let mut m = image.manifest.clone();
    m.config = Descriptor::new(media_type::OCI_CONFIG, cfg_digest, cfg.len() as u64);
    c.put_manifest(
        &lying_repo,
        media_type::OCI_MANIFEST,
        Bytes::from(m.to_json()),
    )
    .await
    .unwrap();
    let (res, _) = dst.pull(&c, &lying_repo, &PullOptions::default()).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataLoss, "{err}");
    assert!(err.to_string().contains("diff id"), "{err}");
    dst.assert_empty("after a lying config");

    // And the honest image still pulls through the proxy afterwards.
    let (res, _) = dst.pull(&c, &via_proxy, &PullOptions::default()).await;
    assert_eq!(res.unwrap().id, image.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_image_share_its_blobs() {
    let reg = Registry::start(Auth::None);
    let work = tempfile::tempdir().unwrap();
    let c = client(work.path());
    let src = Stores::new();
    let layers: Vec<Vec<u8>> = (0..5).map(|i| common::blob(i, 300_000)).collect();
    let files: Vec<[(&str, &[u8]); 1]> = layers
        .iter()
        .enumerate()
        .map(|(i, d)| [(["a", "b", "c", "d", "e"][i], &d[..])])
        .collect();
    let refs: Vec<&[(&str, &[u8])]> = files.iter().map(|f| &f[..]).collect();
    let image = make_image(&src, &refs, &Platform::host());
    let tag = reference(&format!("{}/conc/app:1", reg.host()));
    src.record(&image, &tag);
    src.push(&c, &tag).await;

    let dst = Stores::new();
    let opts = PullOptions::default();
    let (a, b) = tokio::join!(dst.pull(&c, &tag, &opts), dst.pull(&c, &tag, &opts));
    assert_eq!(a.0.unwrap().id, image.id);
    assert_eq!(b.0.unwrap().id, image.id);
    assert_eq!(dst.layers.list().unwrap().len(), 5);
    assert!(dst.db.leases().unwrap().is_empty());
    assert!(dst.content.list_ingests().unwrap().is_empty());
    for (i, l) in image.layers.iter().enumerate() {
        let name = ["a", "b", "c", "d", "e"][i];
        assert_eq!(
            fs::read(dst.layers.diff_path(&l.chain_id).join(name)).unwrap(),
            layers[i]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_completes_partial_local_state_without_redoing_work() {
    let reg = Registry::start(Auth::None);
    let work = tempfile::tempdir().unwrap();
    let c = client(work.path());
    let src = Stores::new();
    let image = make_image(
        &src,
        &[&[("one", b"1\n")], &[("two", b"2\n")]],
        &Platform::host(),
    );
    let tag = reference(&format!("{}/partial/app:1", reg.host()));
    src.record(&image, &tag);
    src.push(&c, &tag).await;

    let dst = Stores::new();
    dst.pull(&c, &tag, &PullOptions::default()).await.0.unwrap();
    let (bottom, top) = (&image.layers[0], &image.layers[1]);
    // The bottom layer's files are gone but its blob is here: unpacked
    // from the stored blob, not downloaded. The top layer's blob is gone
    // but its files are here: downloaded, not unpacked again.
    dst.layers.remove(&bottom.chain_id).unwrap();
    dst.content.delete(&top.blob.digest).unwrap();
    let (res, events) = dst.pull(&c, &tag, &PullOptions::default()).await;
    let pulled = res.unwrap();
    assert_eq!(pulled.layers_downloaded, 1);
    assert!(pulled.up_to_date);
    let st = statuses(&events, &bottom.blob.digest);
    assert!(
        !st.iter()
            .any(|s| matches!(s, LayerStatus::Downloading { .. })),
        "{st:?}"
    );
    assert!(
        st.iter()
            .any(|s| matches!(s, LayerStatus::Extracting { .. })),
        "{st:?}"
    );
    assert_eq!(st.last(), Some(&LayerStatus::PullComplete));
    let st = statuses(&events, &top.blob.digest);
    assert!(
        st.iter()
            .any(|s| matches!(s, LayerStatus::Downloading { .. })),
        "{st:?}"
    );
    assert!(
        !st.iter()
            .any(|s| matches!(s, LayerStatus::Extracting { .. })),
        "{st:?}"
    );
    assert!(dst.content.exists(&top.blob.digest));
    assert_eq!(
        fs::read(dst.layers.diff_path(&bottom.chain_id).join("one")).unwrap(),
        b"1\n"
    );

    // Push refuses what it cannot send, with docker's words.
    let missing = reference(&format!("{}/partial/app:nope", reg.host()));
    let err = push(
        &c,
        &dst.db,
        &dst.content,
        &missing,
        &PushOptions::default(),
        &Progress::none(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string()
            .starts_with("An image does not exist locally with the tag:"),
        "{err}"
    );
    dst.content.delete(&top.blob.digest).unwrap();
    let err = push(
        &c,
        &dst.db,
        &dst.content,
        &tag,
        &PushOptions::default(),
        &Progress::none(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, berth_registry::PushError::MissingBlob { ref digest, .. } if digest == &top.blob.digest),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_beside_a_pull_takes_nothing_the_pull_needs() {
    let reg = Registry::start(Auth::None);
    let work = tempfile::tempdir().unwrap();
    let c = client(work.path());
    let src = Stores::new();
    let data: Vec<Vec<u8>> = (10..16).map(|i| common::blob(i, 400_000)).collect();
    let files: Vec<[(&str, &[u8]); 1]> = data.iter().map(|d| [("data", &d[..])]).collect();
    let refs: Vec<&[(&str, &[u8])]> = files.iter().map(|f| &f[..]).collect();
    let image = make_image(&src, &refs, &Platform::host());
    let tag = reference(&format!("{}/gc/app:1", reg.host()));
    src.record(&image, &tag);
    src.push(&c, &tag).await;

    // Collect over and over while the pull runs; only what the pull's
    // lease and the finished image hold may survive, and that is all it needs.
    let dst = Arc::new(Stores::new());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let (dst, stop) = (dst.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                dst.db
                    .gc(
                        &dst.content,
                        &dst.layers,
                        // Ingests younger than a day are not candidates (a
                        // fresh ingest is unlocked for a moment between its
                        // mkdir and its flock).
                        &GcOptions::default(),
                    )
                    .unwrap();
                runs += 1;
            }
            runs
        })
    };
    let (res, _) = dst.pull(&c, &tag, &PullOptions::default()).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs = collector.join().unwrap();
    assert!(runs > 1, "the collector ran {runs} times");
    let pulled = res.unwrap();
    assert_eq!(pulled.id, image.id);
    for (l, d) in image.layers.iter().zip(&data) {
        assert!(dst.content.exists(&l.blob.digest));
        assert_eq!(
            &fs::read(dst.layers.diff_path(&l.chain_id).join("data")).unwrap(),
            d
        );
    }
    assert!(dst.content.exists(&image.id));
    assert!(dst.content.exists(&image.manifest_digest));
    // And once more with everything recorded: a collection keeps it all.
    let report = dst
        .db
        .gc(&dst.content, &dst.layers, &GcOptions::default())
        .unwrap();
    assert!(
        report.blobs_removed.is_empty() && report.layers_removed.is_empty(),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_naming_one_blob_in_two_layers_pulls() {
    let reg = Registry::start(Auth::None);
    let work = tempfile::tempdir().unwrap();
    let c = client(work.path());
    let src = Stores::new();
    // Equal trees with equal mtimes: one blob, two chain ids.
    let same: &[(&str, &[u8])] = &[("marker", b"same\n")];
    let image = make_image(&src, &[same, &[("mid", b"x\n")], same], &Platform::host());
    assert_eq!(image.layers[0].blob.digest, image.layers[2].blob.digest);
    assert_ne!(image.layers[0].chain_id, image.layers[2].chain_id);
    let tag = reference(&format!("{}/dup/app:1", reg.host()));
    src.record(&image, &tag);
    src.push(&c, &tag).await;

    let dst = Stores::new();
    let (res, _) = dst.pull(&c, &tag, &PullOptions::default()).await;
    let pulled = res.unwrap();
    assert_eq!(pulled.id, image.id);
    assert_eq!(
        pulled.layers_downloaded, 2,
        "the shared blob is downloaded once"
    );
    for l in &image.layers {
        assert!(dst.layers.exists(&l.chain_id));
    }
    assert!(dst.content.list_ingests().unwrap().is_empty());
    assert!(dst.db.leases().unwrap().is_empty());
}

/// The image benchmark's berth side (bench/images/run.sh), not a test:
/// `BERTH_BENCH_OP=push` builds an image from `BERTH_BENCH_LAYERS` (':'
/// separated; a directory is tarred, a `.tar` file is taken as it is),
/// gzips the layers, records it in a store under `BERTH_BENCH_ROOT` and
/// pushes it as `BERTH_BENCH_REF`; `BERTH_BENCH_OP=pull` pulls
/// `BERTH_BENCH_REF` into an empty store under `BERTH_BENCH_ROOT` and
/// prints the time.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark tool for bench/images/run.sh"]
async fn bench_tool() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let root = PathBuf::from(var("BERTH_BENCH_ROOT"));
    let tag = reference(&var("BERTH_BENCH_REF"));
    let dir = tempfile::tempdir().unwrap();
    let c = client(dir.path());
    match var("BERTH_BENCH_OP").as_str() {
        "push" => {
            let layers: Vec<PathBuf> = var("BERTH_BENCH_LAYERS")
                .split(':')
                .map(PathBuf::from)
                .collect();
            let s = Stores {
                db: Arc::new(Store::open(&root).unwrap()),
                content: ContentStore::open(&root).unwrap(),
                layers: LayerStore::open(&root).unwrap(),
                _dir: tempfile::tempdir().unwrap(),
            };
            let built: Vec<(Vec<u8>, Digest, u64)> = std::thread::scope(|scope| {
                let handles: Vec<_> = layers
                    .iter()
                    .map(|p| {
                        scope.spawn(move || {
                            let tar = if p.is_dir() {
                                let mut tar = Vec::new();
                                berth_archive::write_tree(p, &mut tar).unwrap();
                                tar
                            } else {
                                fs::read(p).unwrap()
                            };
                            let gz = gzip(&tar);
                            (gz, Digest::sha256_of(&tar), tar.len() as u64)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut descs = Vec::new();
            for (gz, _, tar_len) in &built {
                let cm = s.content.write_blob(gz).unwrap();
                println!(
                    "layer {} tar {} bytes, gzip {} bytes",
                    cm.digest, tar_len, cm.size
                );
                descs.push(Descriptor::new(
                    media_type::OCI_LAYER_GZIP,
                    cm.digest,
                    cm.size,
                ));
            }
            let platform = Platform::host();
            let config = serde_json::json!({
                "architecture": platform.architecture,
                "os": platform.os,
                "config": {"Cmd": ["/bin/bash"]},
                "rootfs": {"type": "layers", "diff_ids": built.iter().map(|b| b.1.to_string()).collect::<Vec<_>>()},
            });
            let cm = s
                .content
                .write_blob(&serde_json::to_vec(&config).unwrap())
                .unwrap();
            let manifest = Manifest {
                schema_version: 2,
                media_type: Some(media_type::OCI_MANIFEST.to_owned()),
                artifact_type: None,
                config: Descriptor::new(media_type::OCI_CONFIG, cm.digest, cm.size),
                layers: descs,
                subject: None,
                annotations: Default::default(),
            };
            let m = s.content.write_blob(&manifest.to_json()).unwrap();
            let parts = assemble(
                &s.content,
                &s.layers,
                manifest,
                m.digest,
                &berth_archive::ApplyOptions::default(),
            )
            .unwrap();
            s.record(&parts, &tag);
            let (pushed, _) = s.push(&c, &tag).await;
            println!(
                "pushed {tag}: digest: {} size: {} unpacked {} bytes",
                pushed.digest,
                pushed.size,
                parts.size()
            );
        }
        "pull" => {
            let start = std::time::Instant::now();
            let db = Arc::new(Store::open(&root).unwrap());
            let content = ContentStore::open(&root).unwrap();
            let layers = LayerStore::open(&root).unwrap();
            let pulled = pull(
                &c,
                &db,
                &content,
                &layers,
                &tag,
                &PullOptions::default(),
                &Progress::none(),
            )
            .await
            .unwrap();
            println!(
                "pulled {} layers of {} in {:.3} s",
                pulled.layers_downloaded,
                pulled.id,
                start.elapsed().as_secs_f64()
            );
        }
        other => panic!("BERTH_BENCH_OP={other}: expected push or pull"),
    }
}
