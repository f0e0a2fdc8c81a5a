//! The container and exec endpoints: request parsing and response shapes
//! over the container services in [`crate::containers`]. Attach and an
//! attached exec start hijack the connection (HTTP upgrade to `tcp`, as
//! docker's clients ask), then carry the stream.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, request::Parts, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::models::{ContainerUpdateBody, ExecConfig};
use berth_api::{query, ApiVersion};
use berth_errdefs::ErrorKind;
use berth_shim_proto::AttachOptions;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::containers::archive::{ExtractOptions, PathStat};
use crate::containers::attach::Framing;
use crate::containers::lifecycle::WaitCondition;
use crate::containers::{AttachRequest, ExecStart, LogOptions};
use crate::engine::Engine;
use crate::error::ApiError;
use crate::http::{blocking, json as json_response, parse_filters, parse_query, tar_stream};
use crate::streams::{body_reader, line_channel, read_limited, ChannelWriter};

/// How long attach's log replay waits after the 101 (see `attach`).
const REPLAY_AFTER_HEADERS: std::time::Duration = std::time::Duration::from_millis(50);

/// Create bodies carry the whole Config and HostConfig; docker's own are
/// a few KiB.
const MAX_CREATE_BODY: usize = 1024 * 1024;

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn not_modified() -> Response {
    StatusCode::NOT_MODIFIED.into_response()
}

const RAW_STREAM: &str = "application/vnd.docker.raw-stream";

/// The media type of a container's output stream: from API 1.42, docker
/// names the framed stdout/stderr stream (no tty) as such; before, and
/// with a tty, it is the raw stream.
fn stream_type(version: ApiVersion, tty: bool) -> &'static str {
    if !tty && version >= ApiVersion::new(1, 42) {
        "application/vnd.docker.multiplexed-stream"
    } else {
        RAW_STREAM
    }
}

/// The fields of an exec's config (`POST /containers/{id}/exec`).
const EXEC_CONFIG_FIELDS: &[&str] = &[
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ConsoleSize",
    "DetachKeys",
    "Tty",
    "Env",
    "Cmd",
    "Privileged",
    "User",
    "WorkingDir",
];

/// Renames an object's keys to the field names they match without regard
/// to case, as Go's JSON decoder matches them in dockerd: docker-py sends
/// an exec's `detachKeys` so.
fn go_field_names(v: &mut Value, fields: &[&str]) {
    let Value::Object(m) = v else { return };
    let renames: Vec<(String, &str)> = m
        .keys()
        .filter(|k| !fields.contains(&k.as_str()))
        .filter_map(|k| {
            let field = fields.iter().find(|f| f.eq_ignore_ascii_case(k))?;
            Some((k.clone(), *field))
        })
        .collect();
    for (from, to) in renames {
        if let Some(value) = m.remove(&from) {
            m.entry(to).or_insert(value);
        }
    }
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return serde_json::from_slice(b"{}")
            .map_err(|e| ApiError::bad_request(format!("{what}: {e}")));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

/// `/containers/...` and `/exec/...`; `None` if the path is not one.
pub async fn route(
    engine: Arc<Engine>,
    path: &str,
    q: &str,
    version: ApiVersion,
    parts: &mut Parts,
    body: Body,
) -> Option<Result<Response, ApiError>> {
    let m = parts.method.clone();
    let r = if let Some(rest) = path.strip_prefix("/exec/") {
        exec_route(engine, &m, rest, q, version, parts, body).await
    } else if path == "/containers/create" && m == Method::POST {
        create(engine, q, version, body).await
    } else if path == "/containers/json" && m == Method::GET {
        list(engine, q).await
    } else if path == "/containers/prune" && m == Method::POST {
        prune(engine, q).await
    } else if let Some(rest) = path.strip_prefix("/containers/") {
        let (name, action) = match rest.split_once('/') {
            // docker's DELETE /containers/{name:.*}: a legacy link's name
            // is "parent/alias".
            Some(_) if m == Method::DELETE => (rest, ""),
            Some((n, a)) => (n, a),
            None => (rest, ""),
        };
        let name = match crate::http::decode(name) {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        container_action(engine, &m, &name, action, q, version, parts, body).await
    } else {
        return None;
    };
    Some(r)
}

async fn create(
    engine: Arc<Engine>,
    q: &str,
    version: ApiVersion,
    body: Body,
) -> Result<Response, ApiError> {
    let q: query::ContainerCreateQuery = parse_query(q)?;
    let platform = match q.platform.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => {
            let platform = berth_image::Platform::parse(p)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            if platform.os != "linux" {
                return Err(ApiError::bad_request(format!(
                    "unsupported platform {p:?}: berthd runs linux containers"
                )));
            }
            Some(platform)
        }
    };
    let bytes = read_limited(body, MAX_CREATE_BODY).await?;
    let (create, mut warnings) = crate::containers::create_request::parse(&bytes, version)?;
    let (id, more) = blocking(move || {
        engine.create_container(q.name.as_deref(), create, platform.as_ref(), version)
    })
    .await?;
    warnings.extend(more);
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"Id": id, "Warnings": warnings}),
    ))
}

async fn list(engine: Arc<Engine>, q: &str) -> Result<Response, ApiError> {
    let q: query::ContainerListQuery = parse_query(q)?;
    let filters = parse_filters(q.filters.as_deref())?;
    let list = blocking(move || engine.list_containers(q.all, q.limit, q.size, &filters)).await?;
    Ok(json_response(StatusCode::OK, &list))
}

async fn prune(engine: Arc<Engine>, q: &str) -> Result<Response, ApiError> {
    let q: query::PruneQuery = parse_query(q)?;
    let filters = parse_filters(q.filters.as_deref())?;
    filters.validate(&["label", "label!", "until"])?;
    let untils = filters
        .get("until")
        .map(crate::events::until_limit)
        .collect::<Result<Vec<i128>, ApiError>>()?;
    let e = engine.clone();
    let candidates = blocking(move || {
        let all = e.list_containers(true, None, false, &berth_api::Filters::default())?;
        Ok(all
            .into_iter()
            .filter(|c| c["State"] == "exited" || c["State"] == "created" || c["State"] == "dead")
            .filter(|c| {
                let labels = c["Labels"].as_object().cloned().unwrap_or_default();
                filters.prune_labels_match(|| {
                    labels
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
                })
            })
            .filter(|c| {
                let created = i128::from(c["Created"].as_i64().unwrap_or(0)) * 1_000_000_000;
                untils.iter().all(|t| created < *t)
            })
            .filter_map(|c| c["Id"].as_str().map(str::to_owned))
            .collect::<Vec<String>>())
    })
    .await?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for id in candidates {
        let size =
            crate::containers::inspect::dir_size(&engine.container_paths(&id).dir.join("upper"));
        if engine.remove_container(&id, false, false).await.is_ok() {
            reclaimed += size;
            deleted.push(id);
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"ContainersDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": reclaimed}),
    ))
}

#[allow(clippy::too_many_arguments)]
async fn container_action(
    engine: Arc<Engine>,
    m: &Method,
    name: &str,
    action: &str,
    q: &str,
    version: ApiVersion,
    parts: &mut Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let name = name.to_string();
    match (m.clone(), action) {
        (Method::GET, "json") => {
            let q: query::ContainerInspectQuery = parse_query(q)?;
            let v = blocking(move || engine.inspect_container(&name, q.size, version)).await?;
            Ok(json_response(StatusCode::OK, &v))
        }
        (Method::DELETE, "") => {
            let q: query::ContainerDeleteQuery = parse_query(q)?;
            if q.link {
                blocking(move || engine.remove_link(&name)).await?;
                return Ok(no_content());
            }
            engine.remove_container(&name, q.force, q.v).await?;
            Ok(no_content())
        }
        (Method::POST, "start") => {
            if !q.is_empty() && q.contains("detachKeys") {
                // Accepted and ignored, as our CLI detaches client-side.
            }
            let started = blocking(move || engine.start_container(&name)).await?;
            Ok(if started {
                no_content()
            } else {
                not_modified()
            })
        }
        (Method::POST, "stop") => {
            let q: query::ContainerStopQuery = parse_query(q)?;
            let stopped = engine.stop_container(&name, q.t, q.signal).await?;
            Ok(if stopped {
                no_content()
            } else {
                not_modified()
            })
        }
        (Method::POST, "restart") => {
            let q: query::ContainerStopQuery = parse_query(q)?;
            engine.restart_container(&name, q.t, q.signal).await?;
            Ok(no_content())
        }
        (Method::POST, "kill") => {
            let q: query::ContainerKillQuery = parse_query(q)?;
            let signal = crate::containers::lifecycle::parse_signal(
                q.signal
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("KILL"),
            )?;
            // docker names the operation: "Cannot kill container: NAME: ...".
            engine
                .kill_container(&name, signal)
                .await
                .map_err(|e| ApiError {
                    message: format!("Cannot kill container: {name}: {}", e.message),
                    ..e
                })?;
            Ok(no_content())
        }
        (Method::POST, "wait") => {
            let q: query::ContainerWaitQuery = parse_query(q)?;
            let condition = WaitCondition::parse(q.condition.as_deref())?;
            // Resolve now, so a missing container is a 404 and not a body.
            let e = engine.clone();
            let n = name.clone();
            blocking(move || e.load_container(&n).map(|_| ())).await?;
            // Headers go out at once: docker's client waits for them
            // before it starts the container.
            let waiting = {
                let engine = engine.clone();
                let name = name.clone();
                async move { engine.wait_container(&name, condition).await }
            };
            let (tx, body) = line_channel();
            tokio::spawn(async move {
                let v = match waiting.await {
                    Ok((code, err)) => json!({
                        "StatusCode": code,
                        "Error": err.map(|m| json!({"Message": m})),
                    }),
                    Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.message}}),
                };
                let mut line = serde_json::to_vec(&v).unwrap_or_default();
                line.push(b'\n');
                let _ = tx.send(Bytes::from(line)).await;
            });
            Ok(crate::http::json_lines(StatusCode::OK, body))
        }
        (Method::POST, "pause") => {
            blocking(move || engine.pause_container(&name)).await?;
            Ok(no_content())
        }
        (Method::POST, "unpause") => {
            blocking(move || engine.unpause_container(&name)).await?;
            Ok(no_content())
        }
        (Method::POST, "rename") => {
            let q: query::ContainerRenameQuery = parse_query(q)?;
            blocking(move || engine.rename_container(&name, &q.name)).await?;
            Ok(no_content())
        }
        (Method::POST, "resize") => {
            let (h, w) = resize_dims(q)?;
            blocking(move || engine.resize_container(&name, w, h)).await?;
            Ok(StatusCode::OK.into_response())
        }
        (Method::GET, "top") => {
            let q: query::ContainerTopQuery = parse_query(q)?;
            let v =
                blocking(move || engine.top_container(&name, q.ps_args.as_deref().unwrap_or("")))
                    .await?;
            Ok(json_response(StatusCode::OK, &v))
        }
        (Method::GET, "logs") => logs(engine, name, q, version).await,
        (Method::GET, "stats") => stats(engine, name, q).await,
        (Method::POST, "attach") => attach(engine, name, q, version, parts).await,
        (Method::GET, "attach/ws") => attach_ws(engine, name, q, version, parts).await,
        (Method::POST, "exec") => {
            let bytes = read_limited(body, MAX_CREATE_BODY).await?;
            let mut config: Value = parse_json(&bytes, "invalid exec config")?;
            go_field_names(&mut config, EXEC_CONFIG_FIELDS);
            let mut config: ExecConfig = serde_json::from_value(config)
                .map_err(|e| ApiError::bad_request(format!("invalid exec config: {e}")))?;
            if version < ApiVersion::new(1, 42) {
                // Added in 1.42; older clients' values were ignored.
                config.console_size = None;
            }
            let id = blocking(move || engine.create_exec(&name, config)).await?;
            Ok(json_response(StatusCode::CREATED, &json!({"Id": id})))
        }
        (Method::POST, "update") => {
            let bytes = read_limited(body, MAX_CREATE_BODY).await?;
            let update: ContainerUpdateBody = parse_json(&bytes, "invalid update config")?;
            let warnings = blocking(move || engine.update_container(&name, update)).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({ "Warnings": warnings }),
            ))
        }
        (Method::HEAD, "archive") => {
            let q: ArchiveQuery = parse_query(q)?;
            let stat = engine.container_path_stat(name, q.path).await?;
            Ok((
                StatusCode::OK,
                [(PATH_STAT_HEADER, path_stat_value(&stat)?)],
            )
                .into_response())
        }
        (Method::GET, "archive") => {
            let q: ArchiveQuery = parse_query(q)?;
            let (writer, body) = ChannelWriter::new();
            let stat = engine.container_archive(name, q.path, writer).await?;
            let mut resp = tar_stream(body);
            resp.headers_mut().insert(
                header::HeaderName::from_static(PATH_STAT_HEADER),
                path_stat_value(&stat)?,
            );
            Ok(resp)
        }
        (Method::PUT, "archive") => {
            let q: ArchiveQuery = parse_query(q)?;
            let opts = ExtractOptions {
                no_overwrite_dir_non_dir: q
                    .no_overwrite_dir_non_dir
                    .as_deref()
                    .is_some_and(query::bool_value),
                copy_uid_gid: q.copy_uid_gid.as_deref().is_some_and(query::bool_value),
            };
            let input = body_reader(body);
            engine
                .extract_to_container(name, q.path, opts, input)
                .await?;
            Ok(StatusCode::OK.into_response())
        }
        (Method::GET, "export") => {
            let (writer, body) = ChannelWriter::new();
            engine.export_container(name, writer).await?;
            Ok(tar_stream(body))
        }
        (Method::GET, "changes") => {
            let changes = blocking(move || engine.container_changes(&name)).await?;
            Ok(json_response(StatusCode::OK, &changes))
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// docker cp's stat header.
const PATH_STAT_HEADER: &str = "x-docker-container-path-stat";

/// The archive endpoints' query (`path`, and for PUT docker's two flags).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ArchiveQuery {
    path: String,
    #[serde(rename = "noOverwriteDirNonDir")]
    no_overwrite_dir_non_dir: Option<String>,
    #[serde(rename = "copyUIDGID")]
    copy_uid_gid: Option<String>,
}

fn path_stat_value(stat: &PathStat) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&stat.header_value())
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("encoding the path stat: {e}")))
}

fn resize_dims(q: &str) -> Result<(u16, u16), ApiError> {
    let q: query::ResizeQuery = parse_query(q)?;
    let dim = |v: Option<i64>, what: &str| -> Result<u16, ApiError> {
        v.and_then(|n| u16::try_from(n).ok()).ok_or_else(|| {
            ApiError::bad_request(format!("invalid {what}: give h and w as numbers 0..65535"))
        })
    };
    Ok((dim(q.h, "height")?, dim(q.w, "width")?))
}

/// Hands the connection's stream to `then`. A client that asks for an
/// upgrade (`Connection: Upgrade`, `Upgrade: tcp`; docker's CLI, docker-py)
/// hears 101 and gets the raw connection both ways. One that does not
/// (dockerode's `exec.start()` and `attach()` unless told to hijack) gets
/// what dockerd gives it: 200 and the stream as the response body until it
/// ends, its input held open (and empty) meanwhile, as dockerd's is until
/// the client hangs up. `upgraded_type` is the stream's media type after a
/// 101; a plain 200 always names the raw stream, as dockerd's does.
fn hijack<F>(parts: &mut Parts, upgraded_type: &'static str, then: F) -> Result<Response, ApiError>
where
    F: FnOnce(Box<dyn crate::containers::attach::Hijacked>) + Send + 'static,
{
    let wants_upgrade = parts
        .headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tcp"));
    if !wants_upgrade {
        let content_type = (header::CONTENT_TYPE, HeaderValue::from_static(RAW_STREAM));
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move { then(Box::new(theirs)) });
        let (output, input) = tokio::io::split(ours);
        // The stream owns the input's writing end: the session's stdin
        // ends when the body does (or the client goes away).
        let body = tokio_util::io::ReaderStream::new(output).map(move |chunk| {
            let _open_input = &input;
            chunk
        });
        return Ok((StatusCode::OK, [content_type], Body::from_stream(body)).into_response());
    }
    let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return Err(ApiError::bad_request(
            "this connection cannot be upgraded (HTTP/2?): hijacking endpoints need HTTP/1.1",
        ));
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => then(Box::new(hyper_util::rt::TokioIo::new(upgraded))),
            Err(e) => tracing::debug!(error = %e, "the connection upgrade failed"),
        }
    });
    Ok((
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(upgraded_type),
            ),
            (header::CONNECTION, HeaderValue::from_static("Upgrade")),
            (header::UPGRADE, HeaderValue::from_static("tcp")),
        ],
    )
        .into_response())
}

/// `POST /containers/{id}/attach`: the hijacked connection carries the
/// stream (docker's frames without a tty).
async fn attach(
    engine: Arc<Engine>,
    name: String,
    q: &str,
    version: ApiVersion,
    parts: &mut Parts,
) -> Result<Response, ApiError> {
    let session = AttachSession::prepare(&engine, name, q, false, false).await?;
    let media_type = stream_type(version, session.tty);
    hijack(parts, media_type, move |io| session.serve(engine, io))
}

/// `GET /containers/{id}/attach/ws`: the same stream over a WebSocket (what
/// browser consoles use), raw as docker sends it there: no frames, stdout
/// and stderr interleaved; binary messages, or text ones for API versions
/// before 1.28 (docker's change in 1.28).
async fn attach_ws(
    engine: Arc<Engine>,
    name: String,
    q: &str,
    version: ApiVersion,
    parts: &mut Parts,
) -> Result<Response, ApiError> {
    use axum::extract::FromRequestParts;
    let upgrade = axum::extract::ws::WebSocketUpgrade::from_request_parts(parts, &())
        .await
        .map_err(|r| {
            ApiError::bad_request(format!(
                "this endpoint speaks WebSocket: send a WebSocket upgrade request ({})",
                r.body_text()
            ))
        })?;
    // Before 1.42 dockerd ignored stdin, stdout and stderr here and
    // attached all three.
    let all_streams = version < ApiVersion::new(1, 42);
    let session = AttachSession::prepare(&engine, name, q, true, all_streams).await?;
    let text = version < ApiVersion::new(1, 28);
    Ok(upgrade.on_upgrade(move |socket| async move {
        let io = crate::websocket::bytestream(socket, text);
        session.serve(engine, Box::new(io));
    }))
}

/// An attach request, checked and registered before the client hears
/// 101: docker's client starts the container as soon as it has the
/// answer, and the first output must find us.
struct AttachSession {
    c: crate::containers::Loaded,
    options: AttachOptions,
    tty: bool,
    replay_logs: bool,
    /// Raw output (no frames) even without a tty: the WebSocket variant.
    raw: bool,
    /// Where the connection goes once upgraded, if `stream` was asked.
    io_tx: Option<tokio::sync::oneshot::Sender<Box<dyn crate::containers::attach::Hijacked>>>,
}

impl AttachSession {
    async fn prepare(
        engine: &Arc<Engine>,
        name: String,
        q: &str,
        raw: bool,
        all_streams: bool,
    ) -> Result<AttachSession, ApiError> {
        let q: query::ContainerAttachQuery = parse_query(q)?;
        let e = engine.clone();
        let c = blocking(move || e.load_container(&name)).await?;
        let tty = c.config.create.tty.unwrap_or(false);
        let detach_keys = crate::containers::attach::parse_detach_keys(q.detach_keys.as_deref())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid detach keys ({}) provided",
                    q.detach_keys.as_deref().unwrap_or("")
                ))
            })?;
        let options = AttachOptions {
            stdin: q.stdin || all_streams,
            stdout: q.stdout || all_streams,
            stderr: q.stderr || all_streams,
            // docker closes a container's stdin when its StdinOnce client's
            // input ends, but never a tty's: a client that detaches from
            // `run -it` leaves it open for the next attach.
            close_stdin: c.config.create.stdin_once.unwrap_or(false) && !tty,
        };
        let mut io_tx = None;
        if q.stream {
            let (tx, rx) = tokio::sync::oneshot::channel();
            io_tx = Some(tx);
            let e = engine.clone();
            let id = c.id.clone();
            let req = AttachRequest {
                options: options.clone(),
                // docker watches for the detach keys on a tty's input only.
                detach_keys: tty.then_some(detach_keys),
                framing: Framing::between(tty, tty || raw),
                io: rx,
            };
            blocking(move || e.attach_container(&id, req)).await?;
        }
        Ok(AttachSession {
            c,
            options,
            tty,
            replay_logs: q.logs,
            raw,
            io_tx,
        })
    }

    /// Replays the log if asked, then hands the connection to the
    /// registered attachment (or ends it, without `stream`).
    fn serve(self, engine: Arc<Engine>, io: Box<dyn crate::containers::attach::Hijacked>) {
        let rt = tokio::runtime::Handle::current();
        rt.spawn_blocking(move || {
            let mut io = io;
            let rt = tokio::runtime::Handle::current();
            let s = self;
            if s.replay_logs {
                let opts = LogOptions {
                    stdout: s.options.stdout,
                    stderr: s.options.stderr,
                    ..LogOptions::default()
                };
                let mut buf = Vec::new();
                let raw = s.tty || s.raw;
                let replayed = match crate::containers::log_driver::readable(&s.c.config.create) {
                    Ok(()) => engine.write_logs(&s.c.id, raw, &opts, &mut buf),
                    // docker says so on the stream, raw, after the 101.
                    Err(e) => {
                        buf = format!("Error attaching: {}\n", e.message).into_bytes();
                        Ok(())
                    }
                };
                // Clients that parse the 101 with a buffered reader and
                // then read the socket itself (docker-py) lose what
                // arrives with the headers: the log, ready at once, is
                // held back a moment, as dockerd's slower replay happens
                // to be.
                std::thread::sleep(REPLAY_AFTER_HEADERS);
                if replayed.is_ok() {
                    let r = rt.block_on(async {
                        use tokio::io::AsyncWriteExt;
                        io.write_all(&buf).await?;
                        io.flush().await
                    });
                    if r.is_err() {
                        return;
                    }
                }
            }
            match s.io_tx {
                Some(tx) => {
                    let _ = tx.send(io);
                }
                None => {
                    rt.spawn(async move {
                        use tokio::io::AsyncWriteExt;
                        let _ = io.shutdown().await;
                    });
                }
            }
        });
    }
}

async fn logs(
    engine: Arc<Engine>,
    name: String,
    q: &str,
    version: ApiVersion,
) -> Result<Response, ApiError> {
    let q: query::ContainerLogsQuery = parse_query(q)?;
    if !q.stdout && !q.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let time = |v: &Option<String>| -> Result<Option<i128>, ApiError> {
        match v.as_deref().filter(|s| !s.is_empty() && *s != "0") {
            None => Ok(None),
            Some(s) => crate::events::parse_time(s)
                .map(Some)
                .map_err(|reason| ApiError::bad_request(format!("invalid time {s:?}: {reason}"))),
        }
    };
    // A negative count means all, as in dockerd (testcontainers asks for
    // tail=-1); text other than "all" is refused rather than read as all.
    let tail = match q.tail.as_deref() {
        None | Some("") | Some("all") => None,
        Some(t) => match t.parse::<i64>() {
            Ok(n) => usize::try_from(n).ok(),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid tail {t:?}: a number of lines or all"
                )))
            }
        },
    };
    let opts = LogOptions {
        stdout: q.stdout,
        stderr: q.stderr,
        follow: q.follow,
        timestamps: q.timestamps,
        since: time(&q.since)?,
        until: time(&q.until)?,
        tail,
    };
    let e = engine.clone();
    let c = blocking(move || e.load_container(&name)).await?;
    crate::containers::log_driver::readable(&c.config.create)?;
    let tty = c.config.create.tty.unwrap_or(false);
    let (mut writer, body) = ChannelWriter::new();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = engine.write_logs(&c.id, tty, &opts, &mut writer) {
            tracing::debug!(error = %e, "logs stream ended");
        }
    });
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(stream_type(version, tty)),
        )],
        body,
    )
        .into_response())
}

async fn stats(engine: Arc<Engine>, name: String, q: &str) -> Result<Response, ApiError> {
    let q: query::ContainerStatsQuery = parse_query(q)?;
    let stream = q.stream.as_deref().is_none_or(query::bool_value) && !q.one_shot;
    let e = engine.clone();
    let n = name.clone();
    let (id, cname, first) = blocking(move || e.container_stats(&n)).await?;
    if !stream {
        if q.one_shot {
            let v = crate::containers::stats::docker_stats(&id, &cname, &first, &Value::Null);
            return Ok(json_response(StatusCode::OK, &v));
        }
        // `stream=false` alone: docker answers with the second of two
        // samples an interval apart, the first as precpu_stats, so that
        // clients (`docker stats --no-stream`) compute CPU use over it.
        let pre = crate::containers::stats::docker_stats(&id, &cname, &first, &Value::Null);
        tokio::time::sleep(crate::containers::stats::STATS_INTERVAL).await;
        let e = engine.clone();
        let second = match blocking(move || e.container_stats(&name)).await {
            Ok((_, _, s)) => s,
            // Gone meanwhile: the one sample there is.
            Err(_) => return Ok(json_response(StatusCode::OK, &pre)),
        };
        let v = crate::containers::stats::docker_stats(&id, &cname, &second, &pre["cpu_stats"]);
        return Ok(json_response(StatusCode::OK, &v));
    }
    let (tx, body) = line_channel();
    tokio::spawn(async move {
        let mut pre = Value::Null;
        let mut sample = Some(first);
        loop {
            let s = match sample.take() {
                Some(s) => s,
                None => {
                    let e = engine.clone();
                    let n = name.clone();
                    match blocking(move || e.container_stats(&n)).await {
                        Ok((_, _, s)) => s,
                        Err(_) => return,
                    }
                }
            };
            let v = crate::containers::stats::docker_stats(&id, &cname, &s, &pre);
            pre = v["cpu_stats"].clone();
            let mut line = serde_json::to_vec(&v).unwrap_or_default();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
            tokio::time::sleep(crate::containers::stats::STATS_INTERVAL).await;
        }
    });
    Ok(crate::http::json_lines(StatusCode::OK, body))
}

async fn exec_route(
    engine: Arc<Engine>,
    m: &Method,
    rest: &str,
    q: &str,
    version: ApiVersion,
    parts: &mut Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
    let id = id.to_string();
    match (m.clone(), action) {
        (Method::GET, "json") => {
            let rec = blocking(move || engine.exec_record(&id)).await?;
            let c = rec.config.clone();
            let process = rec.process.clone().unwrap_or_default();
            let args = process.args().clone().unwrap_or_default();
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "CanRemove": false,
                    "ContainerID": rec.container_id,
                    "DetachKeys": "",
                    "ExitCode": rec.exit_code,
                    "ID": rec.id,
                    "OpenStderr": c.attach_stderr.unwrap_or(false),
                    "OpenStdin": c.attach_stdin.unwrap_or(false),
                    "OpenStdout": c.attach_stdout.unwrap_or(false),
                    "ProcessConfig": {
                        "arguments": args.iter().skip(1).collect::<Vec<_>>(),
                        "entrypoint": args.first().cloned().unwrap_or_default(),
                        "privileged": c.privileged.unwrap_or(false),
                        "tty": c.tty.unwrap_or(false),
                        "user": c.user.clone().unwrap_or_default(),
                    },
                    "Running": rec.running,
                    "Pid": rec.pid,
                }),
            ))
        }
        (Method::POST, "resize") => {
            let (h, w) = resize_dims(q)?;
            blocking(move || engine.resize_exec(&id, w, h)).await?;
            Ok(StatusCode::OK.into_response())
        }
        (Method::POST, "start") => {
            let bytes = read_limited(body, MAX_CREATE_BODY).await?;
            let start: Value = parse_json(&bytes, "invalid exec start config")?;
            let detach = start["Detach"].as_bool().unwrap_or(false);
            let tty = start["Tty"].as_bool();
            // Fail early (404, 409) before hijacking.
            let e = engine.clone();
            let i = id.clone();
            let rec = blocking(move || e.exec_record(&i)).await?;
            if rec.running || rec.exit_code.is_some() {
                return Err(ApiError::new(
                    ErrorKind::Conflict,
                    format!("Error: Exec command {id} has already run"),
                ));
            }
            if detach {
                blocking(move || engine.start_exec(&id, ExecStart::Detached, tty)).await?;
                return Ok(StatusCode::OK.into_response());
            }
            let media_type = stream_type(version, tty.unwrap_or(rec.config.tty.unwrap_or(false)));
            hijack(parts, media_type, move |io| {
                let rt = tokio::runtime::Handle::current();
                rt.spawn_blocking(move || {
                    if let Err(e) = engine.start_exec(&id, ExecStart::Attached(io), tty) {
                        tracing::debug!(error = %e.message, "exec start");
                    }
                });
            })
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn field_names_match_as_go_matches_them() {
        let mut v =
            serde_json::json!({"detachKeys": "ctrl-p", "cmd": ["a"], "Tty": true, "other": 1});
        super::go_field_names(&mut v, super::EXEC_CONFIG_FIELDS);
        assert_eq!(
            v,
            serde_json::json!({"DetachKeys": "ctrl-p", "Cmd": ["a"], "Tty": true, "other": 1})
        );
    }
}
