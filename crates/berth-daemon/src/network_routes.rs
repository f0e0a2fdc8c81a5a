//! The `/networks` endpoints.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::models::{NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest};
use berth_api::query;
use serde_json::json;

use crate::container_routes::parse_json;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::http::{blocking, json as json_response, parse_filters, parse_query, MAX_JSON_BODY};
use crate::streams::read_limited;

/// `/networks...`; `None` when the path is not one of them.
pub async fn route(
    engine: Arc<Engine>,
    method: &Method,
    path: &str,
    q: &str,
    body: Body,
) -> Option<Result<Response, ApiError>> {
    let rest = path.strip_prefix("/networks")?;
    Some(dispatch(engine, method, rest.trim_start_matches('/'), q, body).await)
}

async fn dispatch(
    engine: Arc<Engine>,
    method: &Method,
    rest: &str,
    q: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let segments: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    };
    match (method.clone(), segments.as_slice()) {
        (Method::GET, []) => {
            let q: query::PruneQuery = parse_query(q)?;
            let filters = parse_filters(q.filters.as_deref())?;
            let list = blocking(move || engine.list_networks(&filters)).await?;
            Ok(json_response(StatusCode::OK, &list))
        }
        (Method::POST, ["create"]) => {
            let bytes = read_limited(body, MAX_JSON_BODY).await?;
            let req: NetworkCreateRequest = parse_json(&bytes, "invalid network create request")?;
            let (id, warning) = blocking(move || engine.create_network(req)).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"Id": id, "Warning": warning}),
            ))
        }
        (Method::POST, ["prune"]) => {
            let q: query::PruneQuery = parse_query(q)?;
            let filters = parse_filters(q.filters.as_deref())?;
            let deleted = blocking(move || engine.prune_networks(&filters)).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"NetworksDeleted": deleted}),
            ))
        }
        (Method::GET, [name]) => {
            let name = crate::http::decode(name)?;
            let v = blocking(move || engine.inspect_network(&name)).await?;
            Ok(json_response(StatusCode::OK, &v))
        }
        (Method::DELETE, [name]) => {
            let name = crate::http::decode(name)?;
            blocking(move || engine.remove_network(&name)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Method::POST, [name, "connect"]) => {
            let name = crate::http::decode(name)?;
            let bytes = read_limited(body, MAX_JSON_BODY).await?;
            let req: NetworkConnectRequest = parse_json(&bytes, "invalid network connect request")?;
            blocking(move || engine.connect_network(&name, req)).await?;
            Ok(StatusCode::OK.into_response())
        }
        (Method::POST, [name, "disconnect"]) => {
            let name = crate::http::decode(name)?;
            let bytes = read_limited(body, MAX_JSON_BODY).await?;
            let req: NetworkDisconnectRequest =
                parse_json(&bytes, "invalid network disconnect request")?;
            blocking(move || engine.disconnect_network(&name, req)).await?;
            Ok(StatusCode::OK.into_response())
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}
