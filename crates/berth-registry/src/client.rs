//! The HTTP core: endpoints (scheme and host per registry, mirrors),
//! authentication on 401 challenges, and retries with backoff.
//!
//! Operations live in `blobs`, `manifests` and `tags`; they describe one
//! request with a closure and let [`Client::send`] add credentials, answer
//! challenges and retry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::Mutex;
use url::Url;

use crate::auth::{self, AuthMode, AuthState, TokenResponse, MAX_TOKEN_RESPONSE};
use crate::challenge::{self, Challenge};
use crate::config::{api_host, is_docker_hub, RegistryConfig};
use crate::credentials::{default_config_path, Credentials, DockerConfig};
use crate::error::{describe_body, RegistryError};

/// Bound on an error body read for a message.
const MAX_ERROR_BODY: usize = 64 << 10;
/// Time allowed to open a connection; a registry that takes longer is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A read that stalls this long fails the request (and a blob download resumes).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long credentials read from the config file are reused before it is read again.
const FILE_CREDENTIALS_TTL: Duration = Duration::from_secs(60);

/// One place a registry's API is served: the registry itself or a mirror.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// host[:port]; the key for credentials and authentication state.
    pub host: String,
    /// `scheme://host[:port]/`.
    pub base: Url,
    /// TLS without certificate checks (insecure registries only).
    pub skip_verify: bool,
}

impl Endpoint {
    pub(crate) fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("API paths are relative URLs")
    }
}

/// One place to try a pull.
pub(crate) enum Candidate {
    /// A mirror, used as configured.
    Ready(Endpoint),
    /// The registry itself, found by [`Client::endpoint`].
    Upstream,
}

/// The target of one operation, for authentication and for error messages.
pub(crate) struct Target<'a> {
    /// The registry as named in the reference (e.g. `docker.io`).
    pub registry: &'a str,
    pub repository: &'a str,
    /// `repository:<name>:<actions>` scopes a bearer token must carry.
    pub scopes: Vec<String>,
}

impl<'a> Target<'a> {
    pub(crate) fn pull(registry: &'a str, repository: &'a str) -> Self {
        Target {
            registry,
            repository,
            scopes: vec![format!("repository:{repository}:pull")],
        }
    }

    pub(crate) fn push(registry: &'a str, repository: &'a str) -> Self {
        Target {
            registry,
            repository,
            scopes: vec![format!("repository:{repository}:pull,push")],
        }
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> RegistryError {
        RegistryError::Protocol {
            registry: self.registry.into(),
            repository: self.repository.into(),
            reason: reason.into(),
        }
    }
}

struct Shared {
    config: RegistryConfig,
    /// Built on first use: each client loads and parses the system's CA
    /// certificates, memory a daemon that never pulls should not hold.
    http: OnceLock<reqwest::Client>,
    /// For insecure registries served over TLS with a certificate berth cannot verify.
    http_skip_verify: OnceLock<reqwest::Client>,
    endpoints: Mutex<HashMap<String, Endpoint>>,
    auth: AuthState,
    /// Credentials read from the config file (or its helpers), by host, with
    /// when they were read: a helper is a program, and one pull makes many requests.
    file_credentials: Mutex<HashMap<String, (Instant, Option<Credentials>)>>,
    /// Held while a token is fetched, so that concurrent layer downloads ask
    /// the token server once and share the answer.
    token_fetch: Mutex<()>,
}

/// A registry client. Cheap to clone; clones share connections, endpoints and tokens.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    /// Credentials given by the caller (e.g. the daemon's X-Registry-Auth), by registry.
    overrides: Arc<HashMap<String, Credentials>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let shared = Shared {
            http: OnceLock::new(),
            http_skip_verify: OnceLock::new(),
            config,
            endpoints: Mutex::new(HashMap::new()),
            auth: AuthState::default(),
            file_credentials: Mutex::new(HashMap::new()),
            token_fetch: Mutex::new(()),
        };
        Ok(Client {
            shared: Arc::new(shared),
            overrides: Arc::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.shared.config
    }

    /// A client that uses `creds` for `registry` instead of the config file;
    /// it shares connections and the token cache with `self`.
    pub fn with_credentials(&self, registry: &str, creds: Credentials) -> Client {
        let mut overrides = (*self.overrides).clone();
        overrides.insert(registry.to_string(), creds);
        Client {
            shared: self.shared.clone(),
            overrides: Arc::new(overrides),
        }
    }

    pub(crate) fn retry_policy(&self) -> crate::config::RetryPolicy {
        self.shared.config.retry
    }

    /// The authentication scheme `host` asked for, once known.
    pub(crate) async fn auth_mode(&self, host: &str) -> Option<AuthMode> {
        self.shared.auth.mode(host).await
    }

    pub(crate) fn http_for(&self, ep: &Endpoint) -> Result<&reqwest::Client, RegistryError> {
        self.http(ep)
    }

    fn http(&self, ep: &Endpoint) -> Result<&reqwest::Client, RegistryError> {
        let cell = if ep.skip_verify {
            &self.shared.http_skip_verify
        } else {
            &self.shared.http
        };
        if let Some(c) = cell.get() {
            return Ok(c);
        }
        let agent = self
            .shared
            .config
            .user_agent
            .clone()
            .unwrap_or_else(|| format!("berth/{}", env!("CARGO_PKG_VERSION")));
        let built = reqwest::Client::builder()
            .user_agent(agent)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .danger_accept_invalid_certs(ep.skip_verify)
            .build()
            .map_err(|e| RegistryError::Unreachable {
                registry: ep.host.clone(),
                message: format!("cannot set up the HTTP client: {e}"),
            })?;
        // Two first uses at once build two; one is kept.
        Ok(cell.get_or_init(|| built))
    }

    /// Credentials for `host` (an endpoint's host), or `None` for anonymous access.
    pub(crate) async fn credentials(
        &self,
        registry: &str,
        host: &str,
    ) -> Result<Option<Credentials>, RegistryError> {
        for key in [host, registry] {
            if let Some(c) = self.overrides.get(key) {
                return Ok(Some(c.clone()));
            }
        }
        if is_docker_hub(host) {
            if let Some(c) = self
                .overrides
                .iter()
                .find(|(k, _)| is_docker_hub(k))
                .map(|(_, c)| c)
            {
                return Ok(Some(c.clone()));
            }
        }
        let Some(path) = self
            .shared
            .config
            .docker_config
            .clone()
            .or_else(default_config_path)
        else {
            return Ok(None);
        };
        if let Some((at, found)) = self.shared.file_credentials.lock().await.get(host) {
            if at.elapsed() < FILE_CREDENTIALS_TTL {
                return Ok(found.clone());
            }
        }
        let helper_path = self.shared.config.helper_path.clone();
        let key = host.to_string();
        // Credential helpers are programs; keep them off the async workers.
        let found =
            tokio::task::spawn_blocking(move || DockerConfig::load(&path, helper_path)?.get(&key))
                .await
                .map_err(|e| RegistryError::Protocol {
                    registry: registry.into(),
                    repository: String::new(),
                    reason: format!("credential lookup panicked: {e}"),
                })??;
        self.shared
            .file_credentials
            .lock()
            .await
            .insert(host.to_string(), (Instant::now(), found.clone()));
        Ok(found)
    }

    /// Where to try a pull from `registry`, in order: mirrors first for
    /// Docker Hub, then the registry itself (probed only when reached, so
    /// that a working mirror never waits on an unreachable Docker Hub).
    pub(crate) async fn pull_endpoints(&self, registry: &str) -> Vec<Candidate> {
        let mut out = Vec::new();
        if is_docker_hub(registry) {
            for m in self.shared.config.mirrors() {
                let host = match m.port() {
                    Some(p) => format!("{}:{p}", m.host_str().unwrap_or_default()),
                    None => m.host_str().unwrap_or_default().to_string(),
                };
                let skip_verify = m.scheme() == "https" && self.insecure(&host).await;
                out.push(Candidate::Ready(Endpoint {
                    host,
                    base: m.clone(),
                    skip_verify,
                }));
            }
        }
        out.push(Candidate::Upstream);
        out
    }

    /// The endpoint of a candidate, probing the registry if needed.
    pub(crate) async fn resolve(
        &self,
        registry: &str,
        candidate: Candidate,
    ) -> Result<Endpoint, RegistryError> {
        match candidate {
            Candidate::Ready(ep) => Ok(ep),
            Candidate::Upstream => self.endpoint(registry).await,
        }
    }

    async fn insecure(&self, host: &str) -> bool {
        let config = &self.shared.config;
        let mut resolved: Vec<IpAddr> = Vec::new();
        if config.has_networks() || crate::config::host_of(host) == "localhost" {
            let with_port =
                if host.contains(':') && !host.starts_with('[') && host.matches(':').count() == 1 {
                    host.to_string()
                } else {
                    format!("{host}:443")
                };
            if let Ok(addrs) = tokio::net::lookup_host(with_port).await {
                resolved = addrs.map(|a| a.ip()).collect();
            }
        }
        config.is_insecure(host, &resolved)
    }

    /// The endpoint serving `registry`'s API, found by pinging it once and cached.
    pub(crate) async fn endpoint(&self, registry: &str) -> Result<Endpoint, RegistryError> {
        if let Some(ep) = self.shared.endpoints.lock().await.get(registry) {
            return Ok(ep.clone());
        }
        let ep = self.probe(registry).await?;
        self.shared
            .endpoints
            .lock()
            .await
            .insert(registry.to_string(), ep.clone());
        Ok(ep)
    }

    /// Checks that `registry` answers the v2 API, and learns its scheme and auth challenge.
    pub async fn ping(&self, registry: &str) -> Result<(), RegistryError> {
        let ep = self.probe(registry).await?;
        self.shared
            .endpoints
            .lock()
            .await
            .insert(registry.to_string(), ep);
        Ok(())
    }

    /// Like docker: HTTPS first; for insecure registries HTTPS without
    /// verification, then plain HTTP.
    async fn probe(&self, registry: &str) -> Result<Endpoint, RegistryError> {
        let host = api_host(registry).to_string();
        let insecure = self.insecure(&host).await;
        let mut candidates = vec![("https", insecure)];
        if insecure {
            candidates.push(("http", false));
        }
        let mut last = None;
        for (i, (scheme, skip_verify)) in candidates.iter().enumerate() {
            let base = Url::parse(&format!("{scheme}://{host}/")).map_err(|_| {
                RegistryError::InvalidArgument {
                    registry: registry.into(),
                    repository: String::new(),
                    reason: format!("{host:?} is not a valid registry host"),
                }
            })?;
            let ep = Endpoint {
                host: host.clone(),
                base,
                skip_verify: *skip_verify,
            };
            let last_candidate = i + 1 == candidates.len();
            match self.ping_endpoint(registry, &ep, !last_candidate).await {
                Ok(()) => return Ok(ep),
                Err(e) => {
                    tracing::debug!(registry, scheme, error = %e, "registry ping failed");
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one candidate was tried"))
    }

    /// GET /v2/: 200 means open, 401 with a challenge means authentication is needed.
    async fn ping_endpoint(
        &self,
        registry: &str,
        ep: &Endpoint,
        probing: bool,
    ) -> Result<(), RegistryError> {
        let url = ep.url("v2/");
        let attempts = if probing {
            1
        } else {
            self.retry_policy().attempts.max(1)
        };
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            match self.http(ep)?.get(url.clone()).send().await {
                Ok(r) if is_retryable(r.status()) && attempt < attempts => {
                    tokio::time::sleep(self.retry_policy().delay(attempt)).await
                }
                Ok(r) => break r,
                Err(e) if attempt < attempts && is_retryable_error(&e) => {
                    tokio::time::sleep(self.retry_policy().delay(attempt)).await
                }
                Err(e) => {
                    return Err(RegistryError::Unreachable {
                        registry: registry.into(),
                        message: error_chain(&e),
                    })
                }
            }
        };
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => {
                if let Some(mode) = mode_from(resp.headers()) {
                    self.shared.auth.set_mode(&ep.host, mode).await;
                }
                Ok(())
            }
            s => Err(RegistryError::Status {
                registry: registry.into(),
                repository: String::new(),
                method: "GET /v2/".into(),
                status: s.as_u16(),
                detail: " (this does not look like a Docker registry v2 API)".into(),
            }),
        }
    }

    /// The `Authorization` header for a request to `ep` needing `scopes`, if
    /// the host is known to want one.
    async fn authorization(
        &self,
        target: &Target<'_>,
        ep: &Endpoint,
        challenge_scope: Option<&str>,
    ) -> Result<Option<String>, RegistryError> {
        let Some(mode) = self.shared.auth.mode(&ep.host).await else {
            return Ok(None);
        };
        let creds = self.credentials(target.registry, &ep.host).await?;
        match mode {
            AuthMode::Basic => Ok(creds.as_ref().map(auth::basic_header)),
            AuthMode::Bearer { realm, service } => {
                let scopes = scopes_for(target, challenge_scope);
                let id = auth::identity(creds.as_ref());
                if let Some(t) = self.shared.auth.token(&ep.host, &scopes, &id).await {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let _one_fetch = self.shared.token_fetch.lock().await;
                // Another task may have fetched it while this one waited.
                if let Some(t) = self.shared.auth.token(&ep.host, &scopes, &id).await {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let (token, lifetime) = self
                    .fetch_token(
                        target.registry,
                        ep,
                        &realm,
                        service.as_deref(),
                        &scopes,
                        creds.as_ref(),
                    )
                    .await?;
                self.shared
                    .auth
                    .store_token(&ep.host, &scopes, &id, token.clone(), lifetime)
                    .await;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Asks the token server for a token covering `scopes`.
    pub(crate) async fn fetch_token(
        &self,
        registry: &str,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        creds: Option<&Credentials>,
    ) -> Result<(String, Duration), RegistryError> {
        let terr = |message: String| RegistryError::Token {
            registry: registry.into(),
            realm: realm.into(),
            message,
        };
        let mut url =
            Url::parse(realm).map_err(|e| terr(format!("the realm is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(terr("the realm is not an http(s) URL".into()));
        }
        let scope = auth::scope_key(scopes);
        let mut attempt = 0;
        let policy = self.retry_policy();
        let resp = loop {
            attempt += 1;
            let req = match creds.and_then(|c| c.identity_token.as_deref()) {
                // An identity token is an OAuth2 refresh token: exchange it with a POST.
                Some(refresh) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh),
                        ("client_id", "berth"),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s));
                    }
                    if !scope.is_empty() {
                        form.push(("scope", &scope));
                    }
                    let body = url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(form)
                        .finish();
                    self.http(ep)?
                        .post(url.clone())
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .body(body)
                }
                None => {
                    {
                        let mut q = url.query_pairs_mut();
                        q.clear();
                        if let Some(s) = service {
                            q.append_pair("service", s);
                        }
                        for s in scopes
                            .iter()
                            .map(String::as_str)
                            .collect::<std::collections::BTreeSet<_>>()
                        {
                            q.append_pair("scope", s);
                        }
                        if let Some(c) = creds.filter(|c| !c.username.is_empty()) {
                            q.append_pair("account", &c.username);
                        }
                    }
                    if url.query() == Some("") {
                        url.set_query(None);
                    }
                    let mut r = self.http(ep)?.get(url.clone());
                    if let Some(c) =
                        creds.filter(|c| !c.username.is_empty() || !c.password.is_empty())
                    {
                        r = r.header(AUTHORIZATION, auth::basic_header(c));
                    }
                    r
                }
            };
            match req.send().await {
                Ok(r) if is_retryable(r.status()) && attempt < policy.attempts => {
                    tokio::time::sleep(policy.delay(attempt)).await
                }
                Ok(r) => break r,
                Err(e) if is_retryable_error(&e) && attempt < policy.attempts => {
                    tokio::time::sleep(policy.delay(attempt)).await
                }
                Err(e) => return Err(terr(error_chain(&e))),
            }
        };
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let body = read_limited(resp, MAX_ERROR_BODY).await.unwrap_or_default();
            return Err(RegistryError::LoginFailed {
                registry: registry.into(),
                message: format!(
                    "the token server refused the credentials{}",
                    describe_body(&body)
                ),
            });
        }
        if !status.is_success() {
            let body = read_limited(resp, MAX_ERROR_BODY).await.unwrap_or_default();
            return Err(terr(format!("HTTP {status}{}", describe_body(&body))));
        }
        let body = read_limited(resp, MAX_TOKEN_RESPONSE)
            .await
            .map_err(|e| terr(e.to_string()))?;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| terr(format!("the answer is not a token: {e}")))?;
        let (token, lifetime, _) = parsed
            .into_token()
            .ok_or_else(|| terr("the answer holds no token".into()))?;
        Ok((token, lifetime))
    }

    /// Sends one request built by `build`, adding authentication and
    /// retrying on 5xx, 429 and broken connections with exponential backoff.
    /// A 401 is answered once by (re)authenticating. Every other status is
    /// returned for the caller to judge.
    pub(crate) async fn send<F>(
        &self,
        target: &Target<'_>,
        ep: &Endpoint,
        build: F,
    ) -> Result<Response, RegistryError>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let policy = self.retry_policy();
        let mut attempt = 0;
        let mut reauthenticated = false;
        let mut challenge_scope: Option<String> = None;
        loop {
            attempt += 1;
            let mut req = build(self.http(ep)?);
            if let Some(h) = self
                .authorization(target, ep, challenge_scope.as_deref())
                .await?
            {
                req = req.header(AUTHORIZATION, h);
            }
            match req.send().await {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !reauthenticated => {
                    reauthenticated = true;
                    let challenges = resp.headers().get_all(WWW_AUTHENTICATE);
                    let parsed: Vec<Challenge> = challenges
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .flat_map(challenge::parse)
                        .collect();
                    let Some(mode) = pick_mode(&parsed) else {
                        return Ok(resp);
                    };
                    let had_mode = self.shared.auth.mode(&ep.host).await;
                    let creds = self.credentials(target.registry, &ep.host).await?;
                    let id = auth::identity(creds.as_ref());
                    let used = scopes_for(target, challenge_scope.as_deref());
                    self.shared.auth.forget_token(&ep.host, &used, &id).await;
                    if let Some(Challenge::Bearer { scope: Some(s), .. }) = parsed
                        .iter()
                        .find(|c| matches!(c, Challenge::Bearer { .. }))
                    {
                        challenge_scope = Some(s.clone());
                    }
                    // Basic credentials that were sent and refused, or none to send:
                    // another try would get the same answer.
                    let hopeless = mode == AuthMode::Basic
                        && (creds.is_none() || had_mode == Some(AuthMode::Basic));
                    self.shared.auth.set_mode(&ep.host, mode).await;
                    if hopeless {
                        return Ok(resp);
                    }
                    attempt -= 1;
                }
                Ok(resp) if is_retryable(resp.status()) && attempt < policy.attempts => {
                    let wait = retry_after(resp.headers())
                        .unwrap_or_default()
                        .min(policy.max_delay);
                    tracing::debug!(registry = target.registry, status = %resp.status(), attempt, "retrying");
                    tokio::time::sleep(policy.delay(attempt).max(wait)).await;
                }
                Ok(resp) => return Ok(resp),
                Err(e) if is_retryable_error(&e) && attempt < policy.attempts => {
                    tracing::debug!(registry = target.registry, error = %error_chain(&e), attempt, "retrying");
                    tokio::time::sleep(policy.delay(attempt)).await;
                }
                Err(e) => {
                    return Err(RegistryError::Unreachable {
                        registry: target.registry.into(),
                        message: error_chain(&e),
                    })
                }
            }
        }
    }

    /// Turns a failed response into the error that says what to do.
    pub(crate) async fn status_error(
        &self,
        target: &Target<'_>,
        method: &Method,
        what: &str,
        resp: Response,
    ) -> RegistryError {
        let status = resp.status();
        let body = read_limited(resp, MAX_ERROR_BODY).await.unwrap_or_default();
        let detail = describe_body(&body);
        let (registry, repository) = (target.registry.to_string(), target.repository.to_string());
        match status {
            StatusCode::UNAUTHORIZED => RegistryError::Unauthorized {
                registry,
                repository,
                detail,
            },
            StatusCode::FORBIDDEN => RegistryError::Denied {
                registry,
                repository,
                detail,
            },
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                registry,
                repository,
                what: what.into(),
                detail,
            },
            s => RegistryError::Status {
                registry,
                repository,
                method: format!("{method} {what}"),
                status: s.as_u16(),
                detail: if s.is_server_error() {
                    format!(
                        "{detail} after {} tries; the registry is failing, try again later",
                        self.retry_policy().attempts
                    )
                } else {
                    detail
                },
            },
        }
    }
}

/// The scopes a token must carry: the operation's own, plus any the registry named in its challenge.
fn scopes_for(target: &Target<'_>, challenge_scope: Option<&str>) -> Vec<String> {
    let mut scopes = target.scopes.clone();
    if let Some(s) = challenge_scope {
        scopes.extend(s.split(' ').filter(|s| !s.is_empty()).map(str::to_string));
    }
    scopes
}

/// Bearer wins over Basic when a registry offers both.
fn pick_mode(challenges: &[Challenge]) -> Option<AuthMode> {
    challenges
        .iter()
        .find_map(|c| match c {
            Challenge::Bearer { realm, service, .. } => Some(AuthMode::Bearer {
                realm: realm.clone(),
                service: service.clone(),
            }),
            Challenge::Basic => None,
        })
        .or_else(|| {
            challenges
                .contains(&Challenge::Basic)
                .then_some(AuthMode::Basic)
        })
}

fn mode_from(headers: &HeaderMap) -> Option<AuthMode> {
    let parsed: Vec<Challenge> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(challenge::parse)
        .collect();
    pick_mode(&parsed)
}

/// Server-side failures that another try may not hit.
pub(crate) fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// Connection-level failures (refused, reset, timed out, cut mid-response).
pub(crate) fn is_retryable_error(e: &reqwest::Error) -> bool {
    !e.is_builder() && !e.is_redirect() && !e.is_status()
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// A reqwest error with its causes, which hold the useful part ("connection refused").
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Errors of [`read_limited`].
#[derive(Debug)]
pub(crate) enum ReadError {
    TooLarge,
    Body(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::TooLarge => f.write_str("the answer is too large"),
            ReadError::Body(m) => write!(f, "reading the answer failed: {m}"),
        }
    }
}

/// Reads a whole body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(resp: Response, limit: usize) -> Result<Bytes, ReadError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ReadError::Body(error_chain(&e)))?;
        if out.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_preferred_over_basic() {
        let got = pick_mode(&challenge::parse(
            r#"Basic realm="x", Bearer realm="https://a/token",service="s""#,
        ));
        assert_eq!(
            got,
            Some(AuthMode::Bearer {
                realm: "https://a/token".into(),
                service: Some("s".into())
            })
        );
        assert_eq!(
            pick_mode(&challenge::parse(r#"Basic realm="x""#)),
            Some(AuthMode::Basic)
        );
        assert_eq!(pick_mode(&[]), None);
    }

    #[test]
    fn retryable_statuses() {
        for s in [429, 500, 502, 503, 504] {
            assert!(is_retryable(StatusCode::from_u16(s).unwrap()));
        }
        for s in [200, 201, 400, 401, 404, 501] {
            assert!(!is_retryable(StatusCode::from_u16(s).unwrap()));
        }
    }
}
