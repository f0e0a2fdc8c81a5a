//! Test harness: a real Debian `docker-registry` on a loopback port, a small
//! bearer-token server that signs JWTs the registry accepts, and a fault
//! proxy that answers 503, cuts connections or corrupts bodies on demand.
//! Everything runs on 127.0.0.1 and is torn down on drop.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Installs Debian's docker-registry and apache2-utils once when missing.
pub fn ensure_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if which("docker-registry") && which("htpasswd") {
            return;
        }
        let run = |args: &[&str]| {
            let st = Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .expect("running apt-get");
            assert!(st.success(), "apt-get {args:?} failed");
        };
        run(&["update", "-qq"]);
        run(&["install", "-y", "-qq", "docker-registry", "apache2-utils"]);
        // The package starts its own service on :5000 where an init system runs; ours do not need it.
        let _ = Command::new("systemctl")
            .args(["stop", "docker-registry"])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("service")
            .args(["docker-registry", "stop"])
            .stderr(Stdio::null())
            .status();
    });
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the registry authenticates.
pub enum Auth {
    None,
    /// One user with a bcrypt password in an htpasswd file.
    Htpasswd {
        user: String,
        password: String,
    },
    /// Bearer tokens from `realm`, signed by the key of the certificate at `cert`.
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert: PathBuf,
    },
}

/// A running `docker-registry serve`; killed, and its storage removed, on drop.
pub struct Registry {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        Self::start_with(auth, false)
    }

    /// A registry serving HTTPS with a self-signed certificate for 127.0.0.1.
    pub fn start_tls(auth: Auth) -> Registry {
        Self::start_with(auth, true)
    }

    fn start_with(auth: Auth, tls: bool) -> Registry {
        ensure_installed();
        let dir = tempfile::tempdir().unwrap();
        let tls_yaml = if tls {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            params
                .subject_alt_names
                .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
            let cert = params.self_signed(&key).unwrap();
            std::fs::write(dir.path().join("tls.crt"), cert.pem()).unwrap();
            std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).unwrap();
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("tls.crt").display(),
                dir.path().join("tls.key").display()
            )
        } else {
            String::new()
        };
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().unwrap();
                assert!(out.status.success(), "htpasswd failed");
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &out.stdout).unwrap();
                format!("auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n", file.display())
            }
            Auth::Token { realm, service, issuer, cert } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        // A port can be taken between choosing and binding it; try a few.
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  \
                     maintenance:\n    uploadpurging:\n      enabled: false\n\
                     http:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n{tls_yaml}{auth_yaml}",
                    data = dir.path().join("data").display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting docker-registry");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            if wait_for_port(addr, &mut child, tls) {
                return Registry { child, addr, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start; log:\n{}",
            std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    /// `127.0.0.1:<port>`, as a reference's domain.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `GET /v2/` gets any HTTP answer (for TLS: until the port accepts).
fn wait_for_port(addr: SocketAddr, child: &mut Child, tls: bool) -> bool {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false; // exited: the port was taken or the config is bad
        }
        if let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            if tls {
                return true;
            }
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut buf = [0u8; 12];
            if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 ") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A token server for the registry's `auth: token` mode: it checks Basic
/// credentials against one user and issues ES256 JWTs with an `x5c` header
/// holding a self-signed certificate that the registry trusts.
pub struct TokenServer {
    pub addr: SocketAddr,
    pub service: String,
    pub issuer: String,
    pub cert: PathBuf,
    /// Token requests served (granted or not).
    pub requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

struct Signer {
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
    user: String,
    password: String,
    service: String,
    issuer: String,
    requests: Arc<AtomicUsize>,
}

impl TokenServer {
    pub async fn start(user: &str, password: &str) -> TokenServer {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["berth-test-token".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_path = dir.path().join("token.crt");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let ring_key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &rng,
        )
        .unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let signer = Arc::new(Signer {
            key: ring_key,
            cert_der: cert.der().to_vec(),
            user: user.into(),
            password: password.into(),
            service: "berth-test-registry".into(),
            issuer: "berth-test-issuer".into(),
            requests: requests.clone(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route(
                "/token",
                axum::routing::get(token_handler).post(oauth_handler),
            )
            .with_state(signer.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenServer {
            addr,
            service: signer.service.clone(),
            issuer: signer.issuer.clone(),
            cert: cert_path,
            requests,
            task,
            _dir: dir,
        }
    }

    pub fn registry_auth(&self) -> Auth {
        Auth::Token {
            realm: format!("http://{}/token", self.addr),
            service: self.service.clone(),
            issuer: self.issuer.clone(),
            cert: self.cert.clone(),
        }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

async fn token_handler(
    axum::extract::State(signer): axum::extract::State<Arc<Signer>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    signer.requests.fetch_add(1, Ordering::SeqCst);
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let authorized = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        None => false,
        Some(h) => {
            let decoded = h
                .strip_prefix("Basic ")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .and_then(|d| String::from_utf8(d).ok());
            if decoded != Some(format!("{}:{}", signer.user, signer.password)) {
                return (
                    axum::http::StatusCode::UNAUTHORIZED,
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
                )
                    .into_response();
            }
            true
        }
    };
    issue(&signer, authorized, &pairs)
}

/// The identity-token path: an OAuth2 `refresh_token` grant, where the
/// refresh token for the test user is `refresh-<user>`.
async fn oauth_handler(
    axum::extract::State(signer): axum::extract::State<Arc<Signer>>,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    signer.requests.fetch_add(1, Ordering::SeqCst);
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some("refresh_token")
        || get("refresh_token") != Some(&format!("refresh-{}", signer.user))
    {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            "invalid refresh token",
        )
            .into_response();
    }
    issue(&signer, true, &pairs)
}

fn issue(
    signer: &Signer,
    authorized: bool,
    pairs: &[(String, String)],
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Anonymous users get tokens without access, as Docker Hub gives for private repositories.
    let access: Vec<serde_json::Value> = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let actions: Vec<&str> = if authorized {
                actions.split(',').collect()
            } else {
                Vec::new()
            };
            Some(serde_json::json!({ "type": kind, "name": name, "actions": actions }))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(&signer.cert_der)],
    });
    let claims = serde_json::json!({
        "iss": signer.issuer,
        "sub": if authorized { signer.user.as_str() } else { "" },
        "aud": signer.service,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{now}-{}", signer.requests.load(Ordering::SeqCst)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let rng = ring::rand::SystemRandom::new();
    let sig = signer.key.sign(&rng, signing_input.as_bytes()).unwrap();
    let token = format!("{signing_input}.{}", b64url(sig.as_ref()));
    let body = serde_json::json!({ "token": token, "expires_in": 300 }).to_string();
    ([("content-type", "application/json")], body).into_response()
}

/// What the fault proxy does to one matching request.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// Answer with this status itself, without asking the registry.
    Status(u16),
    /// Forward the answer but close the connection after this many body bytes.
    CutAfter(usize),
    /// Forward the answer with the body byte at this offset flipped.
    Corrupt(usize),
}

#[derive(Debug, Clone)]
struct Fault {
    method: String,
    path_contains: String,
    action: Action,
}

#[derive(Default)]
struct ProxyState {
    faults: VecDeque<Fault>,
    /// Request heads seen, in order.
    seen: Vec<String>,
}

/// An HTTP/1.1 proxy in front of a registry, one request per connection,
/// that applies queued faults to matching requests (each fault once).
pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = proxy_one(conn, upstream, st).await;
                });
            }
        });
        FaultProxy { addr, state, task }
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn add(&self, method: &str, path_contains: &str, action: Action) {
        self.state.lock().unwrap().faults.push_back(Fault {
            method: method.into(),
            path_contains: path_contains.into(),
            action,
        });
    }

    /// Request heads seen whose request line contains `needle`.
    pub fn seen(&self, needle: &str) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|h| h.lines().next().unwrap_or("").contains(needle))
            .cloned()
            .collect()
    }

    /// Faults not yet applied.
    pub fn pending(&self) -> usize {
        self.state.lock().unwrap().faults.len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy_one(
    mut client: TcpStream,
    upstream: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        // A TLS ClientHello (berth probes HTTPS first): not HTTP, hang up.
        if buf.is_empty() && chunk[0] == 0x16 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 << 10 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut words = head.split_whitespace();
    let (method, path) = (
        words.next().unwrap_or("").to_string(),
        words.next().unwrap_or("").to_string(),
    );
    let action = {
        let mut st = state.lock().unwrap();
        st.seen.push(head.clone());
        let pos = st
            .faults
            .iter()
            .position(|f| f.method == method && path.contains(&f.path_contains));
        pos.and_then(|i| st.faults.remove(i)).map(|f| f.action)
    };
    if let Some(Action::Status(code)) = action {
        let resp =
            format!("HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        client.write_all(resp.as_bytes()).await?;
        return client.shutdown().await;
    }
    // One request per connection: ask the registry to close after answering.
    let mut new_head = String::new();
    for line in head[..head_end - 4].split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            new_head.push_str(line);
            new_head.push_str("\r\n");
        }
    }
    new_head.push_str("Connection: close\r\n\r\n");
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(new_head.as_bytes()).await?;
    up.write_all(&buf[head_end..]).await?;
    let (mut client_r, mut client_w) = client.into_split();
    let (mut up_r, mut up_w) = up.into_split();
    let uploader = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_r, &mut up_w).await;
    });
    let mut resp_head_done = false;
    let mut pending = Vec::new();
    let mut body_seen = 0usize;
    let mut chunk = vec![0u8; 16 << 10];
    loop {
        let n = up_r.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        let mut data = chunk[..n].to_vec();
        if !resp_head_done {
            pending.extend_from_slice(&data);
            let Some(i) = find(&pending, b"\r\n\r\n") else {
                continue;
            };
            resp_head_done = true;
            client_w.write_all(&pending[..i + 4]).await?;
            data = pending[i + 4..].to_vec();
        }
        match action {
            Some(Action::CutAfter(limit)) if body_seen + data.len() >= limit => {
                client_w.write_all(&data[..limit - body_seen]).await?;
                client_w.flush().await?;
                break; // drop both sockets mid-body
            }
            Some(Action::Corrupt(at)) if at >= body_seen && at < body_seen + data.len() => {
                data[at - body_seen] ^= 0xff;
            }
            _ => {}
        }
        body_seen += data.len();
        client_w.write_all(&data).await?;
    }
    uploader.abort();
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Deterministic pseudo-random bytes (xorshift), so blobs differ per seed.
pub fn blob(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
