//! What every request carries beside its body: a request id (taken from `X-Request-Id` when the
//! gateway sent a sane one), the client address, a log span, and — when it is answered — one log line
//! and its HTTP metrics. Latency is a duration on the monotonic timer, not a timestamp.

use std::{net::SocketAddr, time::Instant};

use axum::{
    extract::{ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Request, State},
    http::{header, request::Parts, HeaderValue},
    middleware::Next,
    response::Response,
};
use bytes::Bytes;
use domain::validation::FieldError;
use serde_json::Value;
use store::RequestMeta;
use tracing::Instrument;

use crate::api::{error::ApiError, AppState};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

fn acceptable_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

pub async fn request_context(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let forwarded = state
        .trust_forwarded_for
        .then(|| request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()))
        .flatten()
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().chars().take(64).collect::<String>())
        .filter(|v| !v.is_empty());
    let client_addr = forwarded.or(peer);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
        user_id = tracing::field::Empty,
    );
    request.extensions_mut().insert(RequestMeta {
        request_id: request_id.clone(),
        client_addr: client_addr.clone(),
    });
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics
        .observe_http(method.as_str(), &route, response.status().as_u16(), seconds);
    tracing::info!(
        parent: &span,
        status = response.status().as_u16(),
        latency_ms = seconds * 1000.0,
        client_addr = client_addr.as_deref().unwrap_or("unknown"),
        "request handled"
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}

/// The request's id and client address, for the audit log.
pub struct Meta(pub RequestMeta);

impl FromRequestParts<AppState> for Meta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let meta = parts
            .extensions
            .get::<RequestMeta>()
            .cloned()
            .unwrap_or_else(|| RequestMeta {
                request_id: uuid::Uuid::new_v4().to_string(),
                client_addr: None,
            });
        Ok(Meta(meta))
    }
}

/// A JSON request body, read as a plain value so that every problem in it can be reported with its
/// field. A missing `Content-Type` is taken as JSON; any other type is refused.
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(ct) = request.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or_default().trim();
            if !(essence == "application/json" || essence.ends_with("+json")) {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "Content-Type must be application/json (got {essence:?})"
                )));
            }
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!("request body is larger than {} bytes", state.max_body_bytes))
            } else {
                ApiError::from(FieldError::new(
                    &["body"],
                    "value_error",
                    format!("request body could not be read: {e}"),
                ))
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(FieldError::new(&["body"], "missing", "request body is empty; send a JSON object").into());
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            FieldError::new(
                &["body"],
                "json_invalid",
                format!("request body is not valid JSON: {e}"),
            )
            .into()
        })
    }
}
