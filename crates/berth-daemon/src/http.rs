//! The API's HTTP side: version prefix, dispatch, handlers.
//!
//! One fallback handler dispatches by hand instead of axum's path router:
//! image names contain `/` (`example.com/a/b:1`), so `/images/{name}/json`
//! cannot be a path pattern. Every response carries `Api-Version`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use berth_api::query::{self, ImageCreateQuery};
use berth_api::{ApiVersion, Filters, JsonMessage};
use berth_image::{Digest, Reference};
use berth_registry::{Progress, ProgressEvent, PullOptions, PushOptions};
use bytes::Bytes;
use serde::Serialize;

use crate::engine::Engine;
use crate::error::ApiError;
use crate::streams::{body_reader, drain_rest, line_channel, read_limited, ChannelWriter};
use crate::system::{self, AuthBody};

/// JSON request bodies (auth, tags) are small; anything larger is refused.
pub(crate) const MAX_JSON_BODY: usize = 1024 * 1024;
/// `X-Registry-Auth` is a base64 JSON object of a few hundred bytes.
const MAX_AUTH_HEADER: usize = 64 * 1024;

/// The API router over `engine`.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new().fallback(dispatch).with_state(engine)
}

async fn dispatch(State(engine): State<Arc<Engine>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = match route(engine, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    let h = resp.headers_mut();
    h.insert(
        "Api-Version",
        HeaderValue::from_static(api_version_header()),
    );
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        header::SERVER,
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}

fn api_version_header() -> &'static str {
    // ApiVersion::MAX as a static string; checked by a test.
    "1.44"
}

pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => ApiError::new(
            berth_errdefs::ErrorKind::Internal,
            format!("encoding the response: {e}"),
        )
        .into_response(),
    }
}

pub(crate) fn json_lines(status: StatusCode, body: Body) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A streamed tar (`application/x-tar`): `save`, `export`, `archive`.
pub(crate) fn tar_stream(body: Body) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-tar"),
        )],
        body,
    )
        .into_response()
}

/// Runs a synchronous service on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            berth_errdefs::ErrorKind::Internal,
            format!("a request's worker thread failed: {e}"),
        )
    })?
}

pub(crate) fn parse_query<T: serde::de::DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    Ok(query::parse(q)?)
}

pub(crate) fn parse_filters(f: Option<&str>) -> Result<Filters, ApiError> {
    Ok(Filters::parse(f.unwrap_or(""))?)
}

/// Decodes a path segment (clients may percent-encode names).
pub(crate) fn decode(segment: &str) -> Result<String, ApiError> {
    let mut out = Vec::with_capacity(segment.len());
    let b = segment.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = segment
                .get(i + 1..i + 3)
                .and_then(crate::hex::byte)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("invalid escape in path {segment:?}"))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::bad_request(format!("path {segment:?} is not UTF-8")))
}

async fn route(engine: Arc<Engine>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let (requested, path) = ApiVersion::split_path(parts.uri.path())?;
    let version = ApiVersion::negotiate(requested, engine.min_api_version())?;
    let path = path.to_string();
    let q = parts.uri.query().unwrap_or("").to_string();
    let method = parts.method.clone();
    let m = &method;
    match path.as_str() {
        "/_ping" if m == Method::GET || m == Method::HEAD => return Ok(ping(m)),
        "/version" if m == Method::GET => {
            return Ok(json(
                StatusCode::OK,
                &system::version(engine.min_api_version()),
            ))
        }
        "/info" if m == Method::GET => {
            let e = engine.clone();
            let info = blocking(move || e.info()).await?;
            return Ok(json(StatusCode::OK, &info));
        }
        "/system/df" if m == Method::GET => {
            let q: query::DiskUsageQuery = parse_query(&q)?;
            let wanted = DiskUsageTypes::parse(&q.types, version)?;
            let df = blocking(move || {
                let mut df = engine.disk_usage(version)?;
                df["Containers"] = if wanted.containers {
                    serde_json::Value::from(engine.list_containers(true, None, true, &Filters::new())?)
                } else {
                    serde_json::Value::Null
                };
                df["Volumes"] = if wanted.volumes {
                    engine.volumes_disk_usage()?
                } else {
                    serde_json::Value::Null
                };
                if !wanted.images {
                    df["Images"] = serde_json::Value::Null;
                    df["LayersSize"] = serde_json::json!(0);
                }
                if !wanted.build_cache {
                    df["BuildCache"] = serde_json::Value::Null;
                }
                Ok(df)
            })
            .await?;
            return Ok(json(StatusCode::OK, &df));
        }
        // berthd's build cache is its builds' untagged intermediate images,
        // which `image prune` removes; there is no BuildKit cache apart from
        // them, so pruning it (`docker system prune` does) finds nothing.
        "/build/prune" if m == Method::POST => {
            let q: query::PruneQuery = parse_query(&q)?;
            parse_filters(q.filters.as_deref())?;
            let r = serde_json::json!({"CachesDeleted": null, "SpaceReclaimed": 0});
            return Ok(json(StatusCode::OK, &r));
        }
        "/build" if m == Method::POST => return crate::build::build(engine, &q, body).await,
        "/auth" if m == Method::POST => return auth(engine, body).await,
        "/commit" if m == Method::POST => {
            let q: query::CommitQuery = parse_query(&q)?;
            let bytes = read_limited(body, MAX_JSON_BODY).await?;
            let id = engine.commit_container(q, bytes.to_vec()).await?;
            return Ok(json(
                StatusCode::CREATED,
                &serde_json::json!({"Id": id.to_string()}),
            ));
        }
        "/events" | "/system/events" if m == Method::GET => return events(engine, &q),
        "/images/json" if m == Method::GET => {
            let q: query::ImageListQuery = parse_query(&q)?;
            let filters = parse_filters(q.filters.as_deref())?;
            // `shared-size` arrived in 1.42; older clients' was ignored.
            let shared_size = q.shared_size && version >= ApiVersion::new(1, 42);
            let list = blocking(move || {
                let mut list = engine.list_images(&filters, q.all)?;
                if shared_size {
                    engine.with_shared_sizes(&mut list)?;
                }
                Ok(crate::images::images_as_of(list, version))
            })
            .await?;
            return Ok(json(StatusCode::OK, &list));
        }
        "/images/create" if m == Method::POST => {
            return create_image(engine, &parts.headers, &q, body).await
        }
        "/images/load" if m == Method::POST => return load(engine, body).await,
        "/images/get" if m == Method::GET => {
            let q: query::ImageGetQuery = parse_query(&q)?;
            return save(engine, q.names).await;
        }
        "/images/prune" if m == Method::POST => {
            let q: query::PruneQuery = parse_query(&q)?;
            let filters = parse_filters(q.filters.as_deref())?;
            let r = blocking(move || Ok(engine.prune_images(&filters)?)).await?;
            return Ok(json(StatusCode::OK, &r));
        }
        "/images/search" if m == Method::GET => {
            return Err(ApiError::new(
                berth_errdefs::ErrorKind::NotImplemented,
                "image search (GET /images/search) is not implemented by berthd: it needs Docker Hub's v1 search API; search on hub.docker.com or list a repository's tags with `skopeo list-tags`",
            ))
        }
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/images/") {
        return image_by_name(engine, m, rest, &q, version, &parts.headers).await;
    }
    if path.starts_with("/containers/") || path.starts_with("/exec/") {
        if let Some(r) =
            crate::container_routes::route(engine, &path, &q, version, &mut parts, body).await
        {
            return r;
        }
        return Err(ApiError::not_found("page not found"));
    }
    if path == "/volumes" || path.starts_with("/volumes/") {
        let r = crate::volume_routes::route(engine, &parts.method, &path, &q, version, body).await;
        return r.unwrap_or_else(|| Err(ApiError::not_found("page not found")));
    }
    if let Some(name) = path
        .strip_prefix("/distribution/")
        .and_then(|rest| rest.strip_suffix("/json"))
        .filter(|_| m == Method::GET)
    {
        return crate::distribution::inspect(engine, &parts.headers, &decode(name)?).await;
    }
    if path == "/plugins" || path.starts_with("/plugins/") {
        let r =
            crate::plugins::routes::route(engine, &parts.method, &parts.headers, &path, &q, body)
                .await;
        return r.unwrap_or_else(|| Err(ApiError::not_implemented(&format!("{method} {path}"))));
    }
    if path == "/networks" || path.starts_with("/networks/") {
        if let Some(r) = crate::network_routes::route(engine, &parts.method, &path, &q, body).await
        {
            return r;
        }
    }
    if let Some(e) = swarm_refusal(m, &path) {
        return Err(e);
    }
    for prefix in [
        "/events",
        "/build",
        "/distribution",
        "/session",
        "/system/events",
    ] {
        if path == prefix || path.starts_with(&format!("{prefix}/")) {
            return Err(ApiError::not_implemented(&format!("{method} {path}")));
        }
    }
    Err(ApiError::not_found("page not found"))
}

/// Swarm mode: berthd never joins a swarm, so it answers as a docker
/// engine outside one does (503, which clients such as docker-py's
/// `leave_swarm(force=True)` expect), except that starting or joining a
/// swarm is a 501 naming the gap.
fn swarm_refusal(m: &Method, path: &str) -> Option<ApiError> {
    let swarm = [
        "/swarm",
        "/nodes",
        "/services",
        "/tasks",
        "/secrets",
        "/configs",
    ]
    .iter()
    .any(|p| path == *p || path.starts_with(&format!("{p}/")));
    if !swarm {
        return None;
    }
    let unavailable = |msg: &str| ApiError::new(berth_errdefs::ErrorKind::Unavailable, msg);
    Some(match path {
        "/swarm/init" | "/swarm/join" if m == Method::POST => ApiError::new(
            berth_errdefs::ErrorKind::NotImplemented,
            "swarm mode is not supported by berthd: run services with compose or Kubernetes instead",
        ),
        "/swarm/leave" => unavailable("This node is not part of a swarm"),
        _ => unavailable(
            "This node is not a swarm manager: berthd does not support swarm mode",
        ),
    })
}

/// What a `GET /events` query asks for: its filters, and `since` and
/// `until` in nanoseconds since the epoch.
#[derive(Debug)]
pub struct EventsWindow {
    pub filters: Filters,
    pub since: Option<i128>,
    pub until: Option<i128>,
}

/// `GET /events`'s query, checked.
pub(crate) fn events_window(q: &str) -> Result<EventsWindow, ApiError> {
    let q: query::EventsQuery = parse_query(q)?;
    let filters = parse_filters(q.filters.as_deref())?;
    filters.validate(&["type", "event", "image", "container", "label", "scope"])?;
    let time = |what: &str, v: Option<&str>| -> Result<Option<i128>, ApiError> {
        v.filter(|s| !s.is_empty())
            .map(|s| {
                crate::events::parse_time(s).map_err(|reason| {
                    ApiError::bad_request(format!("invalid {what} {s:?}: {reason}"))
                })
            })
            .transpose()
    };
    Ok(EventsWindow {
        filters,
        since: time("since", q.since.as_deref())?,
        until: time("until", q.until.as_deref())?,
    })
}

/// `GET /events`: the backlog since `since`, then live events until
/// `until` (or until the client leaves).
fn events(engine: Arc<Engine>, q: &str) -> Result<Response, ApiError> {
    let EventsWindow {
        filters,
        since,
        until,
    } = events_window(q)?;
    let (past, mut rx) = engine.events().subscribe(since);
    let (tx, body) = line_channel();
    let stopping = engine.stopping();
    tokio::spawn(async move {
        tokio::pin!(stopping);
        let line = |e: &crate::events::Event| {
            let mut l = serde_json::to_vec(&e.to_json()).unwrap_or_default();
            l.push(b'\n');
            Bytes::from(l)
        };
        let in_range = |e: &crate::events::Event| until.is_none_or(|u| e.time_nano <= u);
        for e in past.iter().filter(|e| in_range(e) && e.matches(&filters)) {
            if tx.send(line(e)).await.is_err() {
                return;
            }
        }
        let deadline = until.map(|u| {
            tokio::time::Instant::now() + crate::events::until_wait(u, crate::events::now_nanos())
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok(),
                    None => Some(rx.recv().await),
                }
            };
            tokio::select! {
                r = next => match r {
                    None => return, // `until` reached
                    Some(Ok(e)) => {
                        if in_range(&e) && e.matches(&filters) && tx.send(line(&e)).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => {
                        tracing::warn!(missed = n, "an events subscriber fell behind");
                    }
                    Some(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return,
                },
                _ = tx.closed() => return,
                _ = &mut stopping => return,
            }
        }
    });
    Ok(json_lines(StatusCode::OK, body))
}

/// Which parts `GET /system/df` computes: all of them, unless a client of
/// API 1.42 or later names some with `type`.
struct DiskUsageTypes {
    containers: bool,
    images: bool,
    volumes: bool,
    build_cache: bool,
}

impl DiskUsageTypes {
    fn parse(types: &[String], version: ApiVersion) -> Result<DiskUsageTypes, ApiError> {
        if types.is_empty() || version < ApiVersion::new(1, 42) {
            return Ok(DiskUsageTypes {
                containers: true,
                images: true,
                volumes: true,
                build_cache: true,
            });
        }
        let mut wanted = DiskUsageTypes {
            containers: false,
            images: false,
            volumes: false,
            build_cache: false,
        };
        for t in types {
            match t.as_str() {
                "container" => wanted.containers = true,
                "image" => wanted.images = true,
                "volume" => wanted.volumes = true,
                "build-cache" => wanted.build_cache = true,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown object type: {other}"
                    )))
                }
            }
        }
        Ok(wanted)
    }
}

fn ping(method: &Method) -> Response {
    let mut resp = if method == Method::HEAD {
        (StatusCode::OK, Body::empty()).into_response()
    } else {
        (StatusCode::OK, "OK").into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    // dockerd's advice to clients (sent whatever the API version): which
    // builder to use, and whether it is in a swarm. berthd builds with
    // the classic builder (`POST /build`) and never joins a swarm.
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// `/images/{name}` and `/images/{name}/{json,history,tag,push,get}`.
async fn image_by_name(
    engine: Arc<Engine>,
    m: &Method,
    rest: &str,
    q: &str,
    version: ApiVersion,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    if m == Method::DELETE {
        let name = decode(rest)?;
        let q: query::ImageDeleteQuery = parse_query(q)?;
        let r = blocking(move || Ok(engine.remove_image(&name, q.force, !q.noprune)?)).await?;
        return Ok(json(StatusCode::OK, &r));
    }
    let Some((name, action)) = rest.rsplit_once('/') else {
        return Err(ApiError::not_found("page not found"));
    };
    let name = decode(name)?;
    match (m.clone(), action) {
        (Method::GET, "json") => {
            let v = blocking(move || Ok(engine.inspect_image_as_of(&name, version)?)).await?;
            Ok(json(StatusCode::OK, &v))
        }
        (Method::GET, "history") => {
            let v = blocking(move || Ok(engine.image_history(&name)?)).await?;
            Ok(json(StatusCode::OK, &v))
        }
        (Method::POST, "tag") => {
            let q: query::ImageTagQuery = parse_query(q)?;
            blocking(move || {
                Ok(engine.tag_image(&name, q.repo.as_deref().unwrap_or(""), q.tag.as_deref())?)
            })
            .await?;
            Ok(StatusCode::CREATED.into_response())
        }
        (Method::GET, "get") => save(engine, vec![name]).await,
        (Method::POST, "push") => {
            let q: query::ImagePushQuery = parse_query(q)?;
            push(engine, headers, &name, q.tag.as_deref()).await
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

async fn auth(engine: Arc<Engine>, body: Body) -> Result<Response, ApiError> {
    let bytes = read_limited(body, MAX_JSON_BODY).await?;
    let auth: AuthBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the auth request: {e}")))?;
    let creds = auth.credentials().ok_or_else(|| {
        ApiError::bad_request("the auth request has no username, password or token")
    })?;
    let registry = system::registry_host(&auth.serveraddress);
    engine.registry().check_login(&registry, &creds).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}

/// The client that carries `X-Registry-Auth`'s credentials, if any.
pub(crate) fn client_for(
    engine: &Engine,
    headers: &HeaderMap,
    registry: &str,
) -> Result<berth_registry::Client, ApiError> {
    let client = engine.registry();
    let Some(value) = headers.get("X-Registry-Auth") else {
        return Ok(client);
    };
    Ok(
        match decode_registry_auth(value.as_bytes())?.credentials() {
            Some(c) => client.with_credentials(registry, c),
            None => client,
        },
    )
}

/// An `X-Registry-Auth` header's value: base64 (URL-safe or standard,
/// padded or not) of docker's `AuthConfig` JSON. Blank is no credentials.
pub(crate) fn decode_registry_auth(raw: &[u8]) -> Result<AuthBody, ApiError> {
    if raw.len() > MAX_AUTH_HEADER {
        return Err(ApiError::bad_request("X-Registry-Auth header is too large"));
    }
    let trimmed: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if trimmed.is_empty() {
        return Ok(AuthBody::default());
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let stripped: Vec<u8> = trimmed.iter().copied().filter(|b| *b != b'=').collect();
    let decoded = b64
        .decode(&stripped)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&stripped))
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Auth header: {e}")))?;
    // docker sends `{}` (or e30=) when it has no credentials.
    serde_json::from_slice(&decoded)
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Auth header: {e}")))
}

async fn create_image(
    engine: Arc<Engine>,
    headers: &HeaderMap,
    q: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let q: ImageCreateQuery = parse_query(q)?;
    match (q.from_image.as_deref(), q.from_src.as_deref()) {
        (Some(image), None) if !image.is_empty() => pull(engine, headers, image, &q).await,
        (None, Some(src)) if !src.is_empty() => {
            let mut reader = if src == "-" {
                Box::new(body_reader(body)) as Box<dyn std::io::Read + Send>
            } else {
                Box::new(crate::url_import::download(src).await?)
            };
            let id = blocking(move || {
                let imported = engine.import_image(
                    &mut reader,
                    q.repo.as_deref(),
                    q.tag.as_deref(),
                    q.message.clone(),
                    q.changes.clone(),
                    q.platform.as_deref(),
                );
                drain_rest(&mut reader);
                Ok(imported?)
            })
            .await?;
            let line = JsonMessage::status(id.to_string(), None).to_line();
            Ok(json_lines(StatusCode::OK, Body::from(line)))
        }
        _ => Err(ApiError::bad_request(
            "POST /images/create needs exactly one of fromImage (pull) or fromSrc (import)",
        )),
    }
}

async fn load(engine: Arc<Engine>, body: Body) -> Result<Response, ApiError> {
    let mut reader = body_reader(body);
    let loaded = blocking(move || {
        let loaded = engine.load_images(&mut reader);
        drain_rest(&mut reader);
        Ok(loaded.map_err(ApiError::from))
    })
    .await?;
    let mut out = Vec::new();
    match loaded {
        Ok(lines) => {
            for l in lines {
                out.extend(JsonMessage::stream(l).to_line());
            }
        }
        // docker answers 200 and reports a failed load in the stream
        // (`errorDetail`), where its clients look for it: docker-py
        // raises ImageLoadError from it, the CLI prints it and fails.
        Err(e) => out.extend(JsonMessage::error(e.message).to_line()),
    }
    Ok(json_lines(StatusCode::OK, Body::from(out)))
}

async fn save(engine: Arc<Engine>, names: Vec<String>) -> Result<Response, ApiError> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given to save"));
    }
    let e = engine.clone();
    let items = blocking(move || Ok(e.save_items(&names)?)).await?;
    let (writer, body) = ChannelWriter::new();
    let failer = writer.failer();
    tokio::task::spawn_blocking(move || match engine.save_images(&items, writer) {
        Ok(mut w) => {
            if let Err(e) = std::io::Write::flush(&mut w) {
                tracing::debug!(error = %e, "save: client went away");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "save failed mid-stream");
            failer.fail(e.to_string());
        }
    });
    Ok(tar_stream(body))
}

/// The pull target from `fromImage` and `tag` (a tag or a digest).
fn pull_reference(image: &str, tag: Option<&str>) -> Result<Reference, ApiError> {
    let mut r = Reference::parse(image)?;
    match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.contains(':') => r = r.with_digest(Digest::parse(t)?),
        Some(t) => r = r.with_tag(t)?,
        None => {}
    }
    Ok(r.with_default_tag())
}

/// Runs a pull or push, waiting until it has either failed (answered with
/// its own status code) or reached its first layer (streamed from then on,
/// with later errors as an `error` line, as docker does).
async fn progress_stream<T, F>(
    task: F,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<ProgressEvent>,
    finish: impl FnOnce(T) -> Vec<JsonMessage> + Send + 'static,
) -> Result<Response, ApiError>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
{
    let mut handle = tokio::spawn(task);
    let mut pending = Vec::new();
    let done = loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev @ ProgressEvent::Layer { .. }) => { pending.push(ev); break None; }
                Some(ev) => pending.push(ev),
                // The task dropped its sender: it has ended (or is ending),
                // so its result decides the status, not a race with recv.
                None => break Some((&mut handle).await),
            },
            r = &mut handle => break Some(r),
        }
    };
    let join = |r: Result<Result<T, ApiError>, tokio::task::JoinError>| {
        r.map_err(|e| {
            ApiError::new(
                berth_errdefs::ErrorKind::Internal,
                format!("registry task failed: {e}"),
            )
        })?
    };
    let early = match done {
        Some(r) => Some(join(r)?),
        None => None,
    };
    let (tx, body) = line_channel();
    tokio::spawn(async move {
        let send = |m: JsonMessage| {
            let tx = tx.clone();
            async move { tx.send(Bytes::from(m.to_line())).await.is_ok() }
        };
        for ev in pending.drain(..) {
            send(crate::progress::to_message(&ev)).await;
        }
        let result = match early {
            Some(v) => Ok(v),
            None => {
                while let Some(ev) = rx.recv().await {
                    if !send(crate::progress::to_message(&ev)).await {
                        // The client left; the task keeps running to a
                        // consistent end (its lease protects what it wrote).
                    }
                }
                join(handle.await)
            }
        };
        // Events sent between the last recv and the task's end.
        while let Ok(ev) = rx.try_recv() {
            send(crate::progress::to_message(&ev)).await;
        }
        match result {
            Ok(v) => {
                for m in finish(v) {
                    send(m).await;
                }
            }
            Err(e) => {
                send(JsonMessage::error(e.message)).await;
            }
        }
    });
    Ok(json_lines(StatusCode::OK, body))
}

async fn pull(
    engine: Arc<Engine>,
    headers: &HeaderMap,
    image: &str,
    q: &ImageCreateQuery,
) -> Result<Response, ApiError> {
    let reference = pull_reference(image, q.tag.as_deref())?;
    let client = client_for(&engine, headers, reference.domain())?;
    let platform = q
        .platform
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(berth_image::Platform::parse)
        .transpose()?;
    let (progress, rx) = Progress::channel();
    let r = reference.clone();
    let task = async move {
        let options = PullOptions {
            platform,
            ..PullOptions::default()
        };
        let pulled = berth_registry::pull(
            &client,
            engine.store(),
            &engine.content,
            &engine.layers,
            &r,
            &options,
            &progress,
        )
        .await?;
        engine
            .events()
            .emit("image", "pull", &r.familiar(), Some(&r.familiar()));
        Ok::<_, ApiError>(pulled)
    };
    progress_stream(task, rx, move |p: berth_registry::PulledImage| {
        let status = if p.up_to_date {
            format!("Status: Image is up to date for {}", reference.familiar())
        } else {
            format!(
                "Status: Downloaded newer image for {}",
                reference.familiar()
            )
        };
        vec![JsonMessage::status(status, None)]
    })
    .await
}

async fn push(
    engine: Arc<Engine>,
    headers: &HeaderMap,
    name: &str,
    tag: Option<&str>,
) -> Result<Response, ApiError> {
    let mut reference = Reference::parse(name)?;
    if let Some(t) = tag.filter(|t| !t.is_empty()) {
        reference = reference.with_tag(t)?;
    }
    let client = client_for(&engine, headers, reference.domain())?;
    let (progress, rx) = Progress::channel();
    let task = async move {
        let pushed = berth_registry::push(
            &client,
            engine.store(),
            &engine.content,
            &reference,
            &PushOptions::default(),
            &progress,
        )
        .await?;
        let name = reference.clone().with_default_tag().familiar();
        engine.events().emit("image", "push", &name, Some(&name));
        Ok::<_, ApiError>(pushed)
    };
    progress_stream(task, rx, |p: berth_registry::PushedImage| {
        vec![JsonMessage::aux(serde_json::json!({
            "Tag": p.tag,
            "Digest": p.digest.to_string(),
            "Size": p.size,
        }))]
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_max() {
        assert_eq!(api_version_header(), ApiVersion::MAX.to_string());
    }

    #[test]
    fn decodes_paths() {
        assert_eq!(decode("a%2Fb:1").unwrap(), "a/b:1");
        assert!(decode("%zz").is_err());
        // Two hex digits, no sign: u8::from_str_radix alone took "+1".
        assert!(decode("a%+1").is_err());
        assert!(decode("a%1").is_err());
        assert_eq!(decode("%41%7a").unwrap(), "Az");
    }

    #[test]
    fn pull_targets() {
        assert_eq!(
            pull_reference("busybox", None).unwrap().familiar(),
            "busybox:latest"
        );
        assert_eq!(
            pull_reference("busybox", Some("1")).unwrap().familiar(),
            "busybox:1"
        );
        let d = Digest::sha256_of(b"x");
        let r = pull_reference("busybox", Some(&d.to_string())).unwrap();
        assert_eq!(r.digest(), Some(&d));
    }
}
