//! Round trips against a real Debian `docker-registry` on a loopback port:
//! open, htpasswd (Basic) and token (Bearer) auth, a fault proxy for 503s,
//! cut connections and corrupted bodies, and a Docker Hub mirror.

mod common;

use std::time::Duration;

use berth_errdefs::{ErrorKind, HasKind};
use berth_image::digest::{Digest, Digester};
use berth_image::reference::Reference;
use berth_registry::credentials::DockerConfig;
use berth_registry::{
    Client, Credentials, PushedBlob, RegistryConfig, RegistryError, Resume, RetryPolicy,
    UploadConfig, Verify, MEDIA_TYPE_OCI_MANIFEST,
};
use bytes::Bytes;
use common::{blob, Action, Auth, FaultProxy, Registry, TokenServer};

/// A client that never reads the real user's docker config, with quick retries.
fn client_with(
    dir: &std::path::Path,
    chunk_size: usize,
    edit: impl FnOnce(&mut RegistryConfig),
) -> Client {
    let mut config = RegistryConfig::new();
    config.docker_config = Some(dir.join("config.json"));
    config.helper_path = Some(dir.as_os_str().to_owned());
    config.retry = RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    };
    config.upload = UploadConfig { chunk_size };
    edit(&mut config);
    Client::new(config).unwrap()
}

fn client(dir: &std::path::Path) -> Client {
    client_with(dir, 64 << 10, |_| {})
}

fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

/// Pushes `data` as a blob and returns its digest.
async fn push(c: &Client, repo: &Reference, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    let got = c
        .push_blob(repo, &d, data.len() as u64, data, None)
        .await
        .unwrap();
    assert_eq!(got, PushedBlob::Uploaded);
    d
}

fn oci_manifest(config: (&Digest, usize), layers: &[(&Digest, usize)]) -> Bytes {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, s)| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": s})
        })
        .collect();
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0.to_string(), "size": config.1},
        "layers": layers,
    });
    Bytes::from(serde_json::to_vec(&m).unwrap())
}

/// Pushes a config and one layer of `layer_len` bytes and a manifest tagged `tag`.
async fn push_image(
    c: &Client,
    name: &str,
    tag: &str,
    layer_len: usize,
    seed: u64,
) -> (Digest, Vec<u8>, Digest) {
    let repo = reference(name);
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
    let layer = blob(seed, layer_len);
    let cd = push(c, &repo, &config).await;
    let ld = push(c, &repo, &layer).await;
    let manifest = oci_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let md = c
        .put_manifest(
            &reference(&format!("{name}:{tag}")),
            MEDIA_TYPE_OCI_MANIFEST,
            manifest,
        )
        .await
        .unwrap();
    (ld, layer, md)
}

async fn fetch(
    c: &Client,
    repo: &Reference,
    d: &Digest,
    size: Option<u64>,
) -> Result<Vec<u8>, RegistryError> {
    let mut out = Vec::new();
    c.fetch_blob(repo, d, size, Verify::Here(None), &mut out)
        .await
        .map(|n| {
            assert_eq!(n as usize, out.len());
            out
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_round_trip_on_open_registry() {
    let reg = Registry::start(Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let c = client(tmp.path());
    let host = reg.host();
    c.ping(&host).await.unwrap();
    let repo = reference(&format!("{host}/berth/app"));

    // Monolithic (below the 64 KiB chunk size) and chunked (5 chunks, the last one short).
    let small = blob(1, 1000);
    let large = blob(2, 300_000);
    let sd = push(&c, &repo, &small).await;
    let ld = push(&c, &repo, &large).await;
    assert_eq!(c.head_blob(&repo, &sd).await.unwrap(), Some(1000));
    assert_eq!(c.head_blob(&repo, &ld).await.unwrap(), Some(300_000));
    assert_eq!(
        c.head_blob(&repo, &Digest::sha256_of(b"absent"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(fetch(&c, &repo, &sd, Some(1000)).await.unwrap(), small);
    assert_eq!(fetch(&c, &repo, &ld, Some(300_000)).await.unwrap(), large);
    assert_eq!(c.fetch_blob_bytes(&repo, &sd, 4096).await.unwrap(), small);
    let too_small = c.fetch_blob_bytes(&repo, &ld, 4096).await.unwrap_err();
    assert!(
        matches!(too_small, RegistryError::TooLarge { .. }),
        "{too_small}"
    );

    // A second push finds the blob; a push to another repository mounts it.
    assert_eq!(
        c.push_blob(&repo, &ld, large.len() as u64, &large[..], None)
            .await
            .unwrap(),
        PushedBlob::Exists
    );
    let other = reference(&format!("{host}/berth/other"));
    let mounted = c
        .push_blob(&other, &ld, large.len() as u64, &large[..], Some(&repo))
        .await
        .unwrap();
    assert_eq!(mounted, PushedBlob::Mounted);
    assert_eq!(c.head_blob(&other, &ld).await.unwrap(), Some(300_000));

    // Manifests by tag and by digest, HEAD, and tags.
    let manifest = oci_manifest((&sd, small.len()), &[(&ld, large.len())]);
    let tagged = reference(&format!("{host}/berth/app:v1"));
    let md = c
        .put_manifest(&tagged, MEDIA_TYPE_OCI_MANIFEST, manifest.clone())
        .await
        .unwrap();
    assert_eq!(md, Digest::sha256_of(&manifest));
    for t in ["v2", "latest"] {
        c.put_manifest(
            &reference(&format!("{host}/berth/app:{t}")),
            MEDIA_TYPE_OCI_MANIFEST,
            manifest.clone(),
        )
        .await
        .unwrap();
    }
    let got = c.get_manifest(&tagged, &[]).await.unwrap();
    assert_eq!(
        (got.bytes.clone(), got.media_type.as_str(), &got.digest),
        (manifest.clone(), MEDIA_TYPE_OCI_MANIFEST, &md)
    );
    let by_digest = reference(&format!("{host}/berth/app@{md}"));
    assert_eq!(
        c.get_manifest(&by_digest, &[MEDIA_TYPE_OCI_MANIFEST])
            .await
            .unwrap()
            .bytes,
        manifest
    );
    let head = c.head_manifest(&tagged, &[]).await.unwrap().unwrap();
    assert_eq!(
        (head.digest, head.size),
        (Some(md.clone()), Some(manifest.len() as u64))
    );
    assert_eq!(
        c.head_manifest(&reference(&format!("{host}/berth/app:nope")), &[])
            .await
            .unwrap(),
        None
    );
    let mut tags = c.list_tags(&repo).await.unwrap();
    tags.sort();
    assert_eq!(tags, ["latest", "v1", "v2"]);

    // A missing tag is NotFound and says what was missing.
    let err = c
        .get_manifest(&reference(&format!("{host}/berth/app:nope")), &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("tag nope"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_digests_are_refused_and_nothing_is_stored() {
    let reg = Registry::start(Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let c = client(tmp.path());
    let host = reg.host();
    let repo = reference(&format!("{host}/berth/bad"));

    // Pushing bytes that do not match the claimed digest: refused before commit, both ways.
    let data = blob(3, 200_000);
    let claimed = Digest::sha256_of(b"something else");
    for len in [data.len(), 1000] {
        let err = c
            .push_blob(&repo, &claimed, len as u64, &data[..len], None)
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
        assert_eq!(err.kind(), ErrorKind::DataLoss);
    }
    assert_eq!(c.head_blob(&repo, &claimed).await.unwrap(), None);
    // A reader shorter than the declared size.
    let d = Digest::sha256_of(&data);
    let err = c
        .push_blob(&repo, &d, data.len() as u64 + 5, &data[..], None)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err}");
    assert_eq!(c.head_blob(&repo, &d).await.unwrap(), None);

    // A manifest whose digest does not match its reference's digest.
    let manifest = Bytes::from_static(b"{}");
    let wrong = reference(&format!("{host}/berth/bad@{claimed}"));
    assert!(c
        .put_manifest(&wrong, MEDIA_TYPE_OCI_MANIFEST, manifest)
        .await
        .is_err());

    // A manifest naming a blob the repository lacks: the registry's reason is in the error.
    let absent = Digest::sha256_of(b"absent layer");
    let manifest = oci_manifest((&absent, 12), &[]);
    let err = c
        .put_manifest(
            &reference(&format!("{host}/berth/bad:x")),
            MEDIA_TYPE_OCI_MANIFEST,
            manifest,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("MANIFEST_BLOB_UNKNOWN") && err.to_string().contains("berth/bad"),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    // Corrupted in transit (the proxy flips one byte): a blob and a manifest by digest.
    let (ld, layer, md) = push_image(&c, &format!("{host}/berth/bad"), "v1", 100_000, 4).await;
    let proxy = FaultProxy::start(reg.addr).await;
    let pc = client(tmp.path());
    let prepo = reference(&format!("{}/berth/bad", proxy.host()));
    proxy.add("GET", "/blobs/", Action::Corrupt(50_000));
    let err = fetch(&pc, &prepo, &ld, Some(layer.len() as u64))
        .await
        .unwrap_err();
    match &err {
        RegistryError::DigestMismatch { expected, .. } => assert_eq!(expected, &ld),
        e => panic!("expected a digest mismatch, got {e}"),
    }
    assert!(
        err.to_string().contains(&ld.to_string()) && err.to_string().contains("berth/bad"),
        "{err}"
    );
    proxy.add("GET", "/blobs/", Action::Corrupt(7));
    assert!(pc.fetch_blob_bytes(&prepo, &ld, 1 << 20).await.is_err());
    proxy.add("GET", "/manifests/", Action::Corrupt(3));
    let err = pc
        .get_manifest(&reference(&format!("{}/berth/bad@{md}", proxy.host())), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    // A wrong expected size is refused too.
    let err = fetch(&pc, &prepo, &ld, Some(layer.len() as u64 - 1))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err}");
    assert_eq!(proxy.pending(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_downloads_resume_with_range() {
    let reg = Registry::start(Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let host = reg.host();
    let (ld, layer, _) = push_image(
        &client(tmp.path()),
        &format!("{host}/berth/resume"),
        "v1",
        1 << 20,
        5,
    )
    .await;

    let proxy = FaultProxy::start(reg.addr).await;
    let c = client(tmp.path());
    let repo = reference(&format!("{}/berth/resume", proxy.host()));
    proxy.add("GET", "/blobs/", Action::CutAfter(300_000));
    proxy.add("GET", "/blobs/", Action::CutAfter(200_000));
    let got = fetch(&c, &repo, &ld, Some(layer.len() as u64))
        .await
        .unwrap();
    assert!(got == layer, "the resumed blob differs from the pushed one");
    let gets = proxy.seen(&format!("GET /v2/berth/resume/blobs/{ld}"));
    assert_eq!(gets.len(), 3, "one full GET and two resumptions: {gets:#?}");
    assert!(!gets[0].to_ascii_lowercase().contains("range:"));
    assert!(
        gets[1]
            .to_ascii_lowercase()
            .contains("range: bytes=300000-"),
        "{}",
        gets[1]
    );
    assert!(
        gets[2]
            .to_ascii_lowercase()
            .contains("range: bytes=500000-"),
        "{}",
        gets[2]
    );

    // A caller resuming its own partial download from an offset.
    let offset = 400_000;
    let mut digester = Digester::new(ld.algorithm());
    digester.update(&layer[..offset]);
    let mut rest = Vec::new();
    let n = c
        .fetch_blob(
            &repo,
            &ld,
            Some(layer.len() as u64),
            Verify::Here(Some(Resume {
                offset: offset as u64,
                digester,
            })),
            &mut rest,
        )
        .await
        .unwrap();
    assert_eq!(n as usize, layer.len());
    assert!(rest == layer[offset..]);
    // A resumed download whose prefix is wrong fails verification.
    let mut digester = Digester::new(ld.algorithm());
    digester.update(&blob(99, offset));
    let err = c
        .fetch_blob(
            &repo,
            &ld,
            Some(layer.len() as u64),
            Verify::Here(Some(Resume {
                offset: offset as u64,
                digester,
            })),
            &mut Vec::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    // With the sink verifying, the client resumes at the offset and leaves
    // the digest to the sink (which has the prefix), but still checks sizes.
    let (client, blob_repo, digest) = (&c, &repo, &ld);
    let by_sink = |size: usize| async move {
        let mut rest = Vec::new();
        let verify = Verify::BySink {
            offset: offset as u64,
        };
        let n = client.fetch_blob(blob_repo, digest, Some(size as u64), verify, &mut rest);
        n.await.map(|n| (n, rest))
    };
    let (n, rest) = by_sink(layer.len()).await.unwrap();
    assert_eq!(n as usize, layer.len());
    assert!(rest == layer[offset..]);
    let err = by_sink(layer.len() + 1).await.unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err}");

    // More breaks than the retry policy allows is an error that says so.
    for _ in 0..4 {
        proxy.add("GET", "/blobs/", Action::CutAfter(1000));
    }
    let err = fetch(&c, &repo, &ld, Some(layer.len() as u64))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("broke off"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_with_backoff() {
    let reg = Registry::start(Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let host = reg.host();
    let (ld, layer, md) = push_image(
        &client(tmp.path()),
        &format!("{host}/berth/retry"),
        "v1",
        100_000,
        6,
    )
    .await;
    let proxy = FaultProxy::start(reg.addr).await;
    let c = client_with(tmp.path(), 32 << 10, |_| {});
    let name = format!("{}/berth/retry", proxy.host());

    proxy.add("GET", "/manifests/v1", Action::Status(503));
    proxy.add("GET", "/manifests/v1", Action::Status(503));
    let m = c
        .get_manifest(&reference(&format!("{name}:v1")), &[])
        .await
        .unwrap();
    assert_eq!(m.digest, md);
    assert_eq!(proxy.seen("GET /v2/berth/retry/manifests/v1").len(), 3);

    proxy.add("GET", "/blobs/", Action::Status(502));
    proxy.add("GET", "/blobs/", Action::Status(500));
    assert!(
        fetch(&c, &reference(&name), &ld, Some(layer.len() as u64))
            .await
            .unwrap()
            == layer
    );

    // Chunked upload through failing PATCHes and a failing final PUT.
    let data = blob(7, 150_000);
    proxy.add("PATCH", "/blobs/uploads/", Action::Status(503));
    proxy.add("PATCH", "/blobs/uploads/", Action::Status(504));
    proxy.add("PUT", "/blobs/uploads/", Action::Status(503));
    let d = push(&c, &reference(&format!("{name}2")), &data).await;
    assert_eq!(proxy.pending(), 0);
    assert!(
        fetch(&c, &reference(&format!("{name}2")), &d, Some(150_000))
            .await
            .unwrap()
            == data
    );

    // A registry that keeps failing: the error names it and is "unavailable".
    for _ in 0..4 {
        proxy.add("GET", "/manifests/v1", Action::Status(503));
    }
    let err = c
        .get_manifest(&reference(&format!("{name}:v1")), &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.to_string().contains("503") && err.to_string().contains(&proxy.host()),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_with_htpasswd() {
    let reg = Registry::start(Auth::Htpasswd {
        user: "alice".into(),
        password: "wonderland".into(),
    });
    let tmp = tempfile::tempdir().unwrap();
    let host = reg.host();
    let anonymous = client(tmp.path());
    anonymous.ping(&host).await.unwrap();
    let repo = reference(&format!("{host}/berth/secret"));
    let data = blob(8, 5000);
    let d = Digest::sha256_of(&data);
    let err = anonymous
        .push_blob(&repo, &d, 5000, &data[..], None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(
        err.to_string().contains(&format!(
            "authentication required for {host}/berth/secret; log in with `berth login {host}`"
        )),
        "{err}"
    );

    // Wrong and right passwords at login.
    let err = anonymous
        .check_login(&host, &Credentials::basic("alice", "nope"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::LoginFailed { .. }), "{err}");
    anonymous
        .check_login(&host, &Credentials::basic("alice", "wonderland"))
        .await
        .unwrap();

    // Credentials stored the way `berth login` stores them are used.
    let mut cfg = DockerConfig::load(&tmp.path().join("config.json"), None).unwrap();
    cfg.store(&host, &Credentials::basic("alice", "wonderland"))
        .unwrap();
    let c = client(tmp.path());
    push(&c, &repo, &data).await;
    assert!(fetch(&c, &repo, &d, Some(5000)).await.unwrap() == data);
    let big = blob(9, 200_000);
    push(&c, &repo, &big).await;

    // Per-call credentials (the daemon's X-Registry-Auth) override the file.
    let wrong = c.with_credentials(&host, Credentials::basic("alice", "bad"));
    let err = wrong.head_blob(&repo, &d).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_auth_with_cached_tokens() {
    let tokens = TokenServer::start("bob", "builder").await;
    let reg = Registry::start(tokens.registry_auth());
    let tmp = tempfile::tempdir().unwrap();
    let host = reg.host();
    let repo = reference(&format!("{host}/team/app"));

    // Anonymous tokens carry no access: a clear unauthorized error.
    let anonymous = client(tmp.path());
    let err = anonymous.list_tags(&repo).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(
        err.to_string().contains(&format!("berth login {host}")),
        "{err}"
    );

    let err = anonymous
        .check_login(&host, &Credentials::basic("bob", "wrong"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::LoginFailed { .. }), "{err}");
    anonymous
        .check_login(&host, &Credentials::basic("bob", "builder"))
        .await
        .unwrap();

    let c = client(tmp.path()).with_credentials(&host, Credentials::basic("bob", "builder"));
    let before = tokens.requests();
    let (ld, layer, md) = push_image(&c, &format!("{host}/team/app"), "v1", 200_000, 10).await;
    let after_push = tokens.requests();
    // One token for the push scope, reused for every blob, chunk and the manifest.
    assert!(
        after_push - before <= 2,
        "{} token requests for one push",
        after_push - before
    );
    for _ in 0..3 {
        assert_eq!(
            c.get_manifest(&reference(&format!("{host}/team/app:v1")), &[])
                .await
                .unwrap()
                .digest,
            md
        );
        assert!(
            fetch(&c, &repo, &ld, Some(layer.len() as u64))
                .await
                .unwrap()
                == layer
        );
    }
    assert_eq!(c.list_tags(&repo).await.unwrap(), ["v1"]);
    assert!(
        tokens.requests() - after_push <= 2,
        "pull tokens are cached per scope"
    );

    // Concurrent layer downloads on a fresh client share one token.
    let fresh = client(tmp.path()).with_credentials(&host, Credentials::basic("bob", "builder"));
    let before = tokens.requests();
    let downloads = (0..6).map(|_| fetch(&fresh, &repo, &ld, Some(layer.len() as u64)));
    for got in futures_util::future::join_all(downloads).await {
        assert!(got.unwrap() == layer);
    }
    assert_eq!(
        tokens.requests() - before,
        1,
        "one token request for six concurrent downloads"
    );

    // An identity token (OAuth2 refresh token from an earlier login) instead of a password.
    let oauth = Credentials {
        identity_token: Some("refresh-bob".into()),
        ..Default::default()
    };
    let c3 = client(tmp.path()).with_credentials(&host, oauth.clone());
    assert!(
        fetch(&c3, &repo, &ld, Some(layer.len() as u64))
            .await
            .unwrap()
            == layer
    );
    anonymous.check_login(&host, &oauth).await.unwrap();
    let bad = Credentials {
        identity_token: Some("refresh-eve".into()),
        ..Default::default()
    };
    let err = client(tmp.path())
        .with_credentials(&host, bad)
        .list_tags(&repo)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::LoginFailed { .. }), "{err}");

    // Cross-repository mount needs pull on the source too: one token with both scopes.
    let other = reference(&format!("{host}/team/other"));
    assert_eq!(
        c.push_blob(&other, &ld, layer.len() as u64, &layer[..], Some(&repo))
            .await
            .unwrap(),
        PushedBlob::Mounted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_pulls_go_through_mirrors() {
    let mirror = Registry::start(Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let (ld, layer, md) = push_image(
        &client(tmp.path()),
        &format!("{}/library/mirrored", mirror.host()),
        "1.0",
        50_000,
        11,
    )
    .await;
    // The first mirror is down; the second serves; Docker Hub itself is never needed.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = client_with(tmp.path(), 64 << 10, |cfg| {
        cfg.add_mirror(&format!("http://{dead}")).unwrap();
        cfg.add_mirror(&format!("http://{}", mirror.host()))
            .unwrap();
    });
    let r = reference("mirrored:1.0");
    assert_eq!(r.domain(), "docker.io");
    assert_eq!(c.get_manifest(&r, &[]).await.unwrap().digest, md);
    assert!(fetch(&c, &r, &ld, Some(layer.len() as u64)).await.unwrap() == layer);
    assert_eq!(c.list_tags(&r).await.unwrap(), ["1.0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_registry_over_tls_with_a_self_signed_certificate() {
    let reg = Registry::start_tls(Auth::Htpasswd {
        user: "tls".into(),
        password: "pw".into(),
    });
    let tmp = tempfile::tempdir().unwrap();
    let host = reg.host();
    // Loopback registries are insecure by default: HTTPS without verification comes first.
    let c = client(tmp.path()).with_credentials(&host, Credentials::basic("tls", "pw"));
    c.ping(&host).await.unwrap();
    let (ld, layer, md) = push_image(&c, &format!("{host}/berth/tls"), "v1", 70_000, 12).await;
    assert_eq!(
        c.get_manifest(&reference(&format!("{host}/berth/tls:v1")), &[])
            .await
            .unwrap()
            .digest,
        md
    );
    assert!(
        fetch(
            &c,
            &reference(&format!("{host}/berth/tls")),
            &ld,
            Some(70_000)
        )
        .await
        .unwrap()
            == layer
    );
}
