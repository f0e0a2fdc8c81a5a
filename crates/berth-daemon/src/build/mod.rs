//! `POST /build`: docker's classic (non-BuildKit) builder.
//!
//! The request body is the build context, a tar (maybe compressed). It is
//! unpacked by berth-archive into a private directory under the data
//! root's `tmp/` (entries confined to it, sizes bounded), `.dockerignore`
//! removes what it names, and the Dockerfile's instructions run one by one,
//! each making an image on the one before, as dockerd's classic builder
//! does:
//! - metadata instructions (ENV, CMD, LABEL, ...) commit an image with no
//!   new layer, straight through berth-image's commit;
//! - RUN creates a container from the image so far through the engine's own
//!   create/start path, streams its output, waits for it, and commits its
//!   upper directory as a layer (the code of `POST /commit`);
//! - COPY and ADD stage the files in a directory shaped like the target
//!   tree, and put them into a created (never started) container through
//!   the same confined extraction as `PUT /containers/{id}/archive`, whose
//!   upper directory becomes the layer.
//!
//! Each step's image records the step as its history's `created_by`; a
//! step whose parent already has a child image made by the same step is
//! taken from that cache ("Using cache") unless `nocache`. Intermediate
//! containers are always removed; intermediate images stay untagged as
//! docker's do (the cache), and `image prune` removes them.

mod context;
mod steps;

use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use berth_api::query::{bool_value, BuildQuery};

use crate::engine::Engine;
use crate::error::ApiError;

/// Largest build context accepted (compressed or not, as sent).
const MAX_CONTEXT: u64 = 8 << 30;

/// Streams the build's JSON lines to the client as they happen.
pub(crate) struct Output {
    writer: crate::streams::ChannelWriter,
    quiet: bool,
}

impl Output {
    /// A `{"stream": ...}` line (left out with `q`).
    pub(crate) fn stream(&mut self, text: &str) {
        if !self.quiet {
            self.send(serde_json::json!({ "stream": text }));
        }
    }

    /// A line that `q` keeps (the final id).
    pub(crate) fn always(&mut self, text: &str) {
        self.send(serde_json::json!({ "stream": text }));
    }

    pub(crate) fn aux_id(&mut self, id: &str) {
        self.send(serde_json::json!({ "aux": { "ID": id } }));
    }

    pub(crate) fn error(&mut self, message: &str, code: Option<i64>) {
        let mut detail = serde_json::json!({ "message": message });
        if let Some(c) = code {
            detail["code"] = c.into();
        }
        self.send(serde_json::json!({ "errorDetail": detail, "error": message }));
    }

    fn send(&mut self, v: serde_json::Value) {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        // A client that went away ends the stream; the build goes on to
        // a consistent end (its containers removed) regardless.
        let _ = self
            .writer
            .write_all(&line)
            .and_then(|_| self.writer.flush());
    }
}

/// A build's failure: the message docker gives, and the code of a RUN
/// that exited non-zero.
#[derive(Debug)]
pub(crate) struct BuildError {
    pub message: String,
    pub code: Option<i64>,
}

impl From<ApiError> for BuildError {
    fn from(e: ApiError) -> Self {
        BuildError {
            message: e.message,
            code: None,
        }
    }
}

impl From<crate::images::ImageError> for BuildError {
    fn from(e: crate::images::ImageError) -> Self {
        BuildError::from(ApiError::from(e))
    }
}

impl BuildError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        BuildError {
            message: message.into(),
            code: None,
        }
    }
}

/// What the query asks of the build, checked before anything runs.
pub(crate) struct Options {
    pub dockerfile: String,
    pub tags: Vec<berth_image::Reference>,
    pub build_args: std::collections::BTreeMap<String, Option<String>>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub target: Option<String>,
    pub nocache: bool,
    pub network_mode: Option<String>,
    pub extra_hosts: Vec<String>,
    pub shm_size: Option<i64>,
    pub cache_from: Option<Vec<String>>,
}

pub(crate) fn options(q: &BuildQuery) -> Result<Options, ApiError> {
    let json_map = |raw: &Option<String>, what: &str| -> Result<serde_json::Value, ApiError> {
        match raw.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(serde_json::Value::Null),
            Some(s) => serde_json::from_str(s)
                .map_err(|e| ApiError::bad_request(format!("invalid {what} {s:?}: {e}"))),
        }
    };
    let build_args = serde_json::from_value(json_map(&q.buildargs, "buildargs")?)
        .map(|m: Option<_>| m.unwrap_or_default())
        .map_err(|e| ApiError::bad_request(format!("invalid buildargs: {e}")))?;
    let labels = serde_json::from_value(json_map(&q.labels, "labels")?)
        .map(|m: Option<_>| m.unwrap_or_default())
        .map_err(|e| ApiError::bad_request(format!("invalid labels: {e}")))?;
    let cache_from = serde_json::from_value(json_map(&q.cachefrom, "cachefrom")?)
        .map_err(|e| ApiError::bad_request(format!("invalid cachefrom: {e}")))?;
    let tags = q
        .tags
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| {
            berth_image::Reference::parse(t)
                .map(|r| r.with_default_tag())
                .map_err(|e| ApiError::bad_request(format!("invalid tag {t:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let shm_size = match q.shmsize.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::bad_request(format!("invalid shmsize {s:?}")))?,
        ),
    };
    if let Some(p) = q.platform.as_deref().filter(|p| !p.is_empty()) {
        if !p.starts_with("linux") {
            return Err(ApiError::bad_request(format!(
                "unsupported platform {p:?}: berthd builds linux images"
            )));
        }
    }
    Ok(Options {
        dockerfile: q
            .dockerfile
            .first()
            .filter(|d| !d.is_empty())
            .cloned()
            .unwrap_or_else(|| "Dockerfile".into()),
        tags,
        build_args,
        labels,
        target: q.target.clone().filter(|t| !t.is_empty()),
        nocache: q.nocache.as_deref().is_some_and(bool_value),
        network_mode: q.networkmode.clone().filter(|n| !n.is_empty()),
        extra_hosts: q
            .extrahosts
            .iter()
            .flat_map(|h| h.split(','))
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect(),
        shm_size,
        cache_from,
    })
}

/// `POST /build`.
pub(crate) async fn build(engine: Arc<Engine>, q: &str, body: Body) -> Result<Response, ApiError> {
    let q: BuildQuery = crate::http::parse_query(q)?;
    let opts = options(&q)?;
    let quiet = q.q.as_deref().is_some_and(bool_value);
    let input = crate::streams::body_reader(body);
    let (writer, response) = crate::streams::ChannelWriter::new();
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("build".into())
        .spawn(move || {
            let mut out = Output { writer, quiet };
            let result = steps::Build::run(&engine, &runtime, opts, input, &mut out);
            if let Err(e) = result {
                out.error(&e.message, e.code);
            }
            let _ = out.writer.flush();
        })
        .map_err(|e| {
            ApiError::new(
                berth_errdefs::ErrorKind::Internal,
                format!("starting the build: {e}"),
            )
        })?;
    Ok(crate::http::json_lines(StatusCode::OK, response))
}

pub(crate) use context::{builds_dir, Context};
