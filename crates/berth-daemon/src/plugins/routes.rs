//! The `/plugins` endpoints berthd serves. A plugin's name may hold
//! slashes (`vieux/sshfs:latest`), so the action is the last segment.
//! Installing, upgrading and pushing plugins are not routed here: they
//! answer 501 naming the endpoint.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::query;

use crate::container_routes::parse_json;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::http::{blocking, decode, json, parse_filters, parse_query, MAX_JSON_BODY};
use crate::streams::{body_reader, read_limited};

/// `/plugins...`; `None` when the path is not one berthd serves.
pub async fn route(
    engine: Arc<Engine>,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    q: &str,
    body: Body,
) -> Option<Result<Response, ApiError>> {
    let rest = path.strip_prefix("/plugins")?;
    let call = match (method.clone(), rest) {
        (Method::GET, "") => Call::List,
        (Method::GET, "/privileges") => {
            return Some(privileges(&engine, headers, q).await);
        }
        (Method::POST, "/create") => Call::Create,
        (Method::DELETE, r) if r.len() > 1 => Call::Remove(r[1..].to_owned()),
        (m, r) => {
            let (name, action) = r.strip_prefix('/')?.rsplit_once('/')?;
            let name = name.to_owned();
            match (m, action) {
                (Method::GET, "json") => Call::Inspect(name),
                (Method::POST, "set") => Call::Set(name),
                (Method::POST, "enable") => Call::Enable(name),
                (Method::POST, "disable") => Call::Disable(name),
                _ => return None,
            }
        }
    };
    Some(dispatch(engine, call, q, body).await)
}

async fn privileges(engine: &Engine, headers: &HeaderMap, q: &str) -> Result<Response, ApiError> {
    let q: query::PluginPrivilegesQuery = parse_query(q)?;
    let list = super::privileges::privileges(engine, headers, &q.remote).await?;
    Ok(json(StatusCode::OK, &list))
}

enum Call {
    List,
    Create,
    Inspect(String),
    Set(String),
    Enable(String),
    Disable(String),
    Remove(String),
}

async fn dispatch(
    engine: Arc<Engine>,
    call: Call,
    q: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let ok = || StatusCode::OK.into_response();
    match call {
        Call::List => {
            let q: query::PruneQuery = parse_query(q)?;
            let filters = parse_filters(q.filters.as_deref())?;
            let v = blocking(move || engine.list_plugins(&filters)).await?;
            Ok(json(StatusCode::OK, &v))
        }
        Call::Create => {
            let q: query::PluginCreateQuery = parse_query(q)?;
            if q.name.is_empty() {
                return Err(ApiError::bad_request(
                    "plugin create needs a name (the name query parameter)",
                ));
            }
            let context = body_reader(body);
            blocking(move || engine.create_plugin(&q.name, context)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Call::Inspect(name) => {
            let name = decode(&name)?;
            let v = blocking(move || engine.inspect_plugin(&name)).await?;
            Ok(json(StatusCode::OK, &v))
        }
        Call::Set(name) => {
            let name = decode(&name)?;
            let bytes = read_limited(body, MAX_JSON_BODY).await?;
            let args: Vec<String> = parse_json(
                &bytes,
                "invalid plugin settings (expected [\"NAME=VALUE\", ...])",
            )?;
            blocking(move || engine.set_plugin(&name, &args)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Call::Enable(name) => {
            let name = decode(&name)?;
            blocking(move || engine.enable_plugin(&name)).await?;
            Ok(ok())
        }
        Call::Disable(name) => {
            let name = decode(&name)?;
            blocking(move || engine.disable_plugin(&name)).await?;
            Ok(ok())
        }
        Call::Remove(name) => {
            let name = decode(&name)?;
            // (`force` stops an enabled plugin first; none is enabled here)
            let _: query::VolumeDeleteQuery = parse_query(q)?;
            blocking(move || engine.remove_plugin(&name)).await?;
            Ok(ok())
        }
    }
}
