//! The `/volumes` endpoints.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::models::VolumeCreateRequest;
use berth_api::{query, ApiVersion};

use crate::container_routes::parse_json;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::http::{blocking, json as json_response, parse_filters, parse_query, MAX_JSON_BODY};
use crate::streams::read_limited;

/// `/volumes...` (`rest` is what follows `/volumes`); `None` when the path
/// is not one of them. `version` is the request's negotiated API version.
pub async fn route(
    engine: Arc<Engine>,
    method: &Method,
    path: &str,
    q: &str,
    version: ApiVersion,
    body: Body,
) -> Option<Result<Response, ApiError>> {
    let rest = path.strip_prefix("/volumes")?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    let rest = rest.trim_start_matches('/');
    let name = match rest {
        "" => None,
        n if !n.contains('/') => Some(n),
        _ => return None,
    };
    let known = matches!(
        (method.clone(), name),
        (Method::GET, _) | (Method::POST, Some("create" | "prune")) | (Method::DELETE, Some(_))
    );
    if !known {
        return None;
    }
    Some(dispatch(engine, method, name, q, version, body).await)
}

async fn dispatch(
    engine: Arc<Engine>,
    method: &Method,
    name: Option<&str>,
    q: &str,
    version: ApiVersion,
    body: Body,
) -> Result<Response, ApiError> {
    match (method.clone(), name) {
        (Method::GET, None) => {
            let q: query::PruneQuery = parse_query(q)?;
            let filters = parse_filters(q.filters.as_deref())?;
            let v = blocking(move || engine.list_volumes(&filters)).await?;
            Ok(json_response(StatusCode::OK, &v))
        }
        (Method::POST, Some("create")) => {
            let bytes = read_limited(body, MAX_JSON_BODY).await?;
            let req: VolumeCreateRequest = parse_json(&bytes, "invalid volume create request")?;
            let v = blocking(move || engine.create_volume(req)).await?;
            Ok(json_response(StatusCode::CREATED, &v))
        }
        (Method::POST, _) => {
            let q: query::PruneQuery = parse_query(q)?;
            let filters = parse_filters(q.filters.as_deref())?;
            let v = blocking(move || engine.prune_volumes(&filters, version)).await?;
            Ok(json_response(StatusCode::OK, &v))
        }
        (Method::GET, Some(name)) => {
            let name = crate::http::decode(name)?;
            let v = blocking(move || engine.inspect_volume(&name)).await?;
            Ok(json_response(StatusCode::OK, &v))
        }
        (_, name) => {
            let name = crate::http::decode(name.unwrap_or_default())?;
            let q: query::VolumeDeleteQuery = parse_query(q)?;
            blocking(move || engine.remove_volume(&name, q.force)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}
