//! The HTTP API: thin handlers that parse, authorize, call the domain and the store, and shape the
//! response. Everything lives under `/api/v1/invite`.

mod audit;
pub mod auth;
mod error;
mod health;
pub mod openapi;
mod query;
pub mod request;
mod tasks;

use std::sync::Arc;

use axum::{
    extract::{DefaultBodyLimit, State},
    http::{header, StatusCode},
    middleware,
    response::{Html, IntoResponse},
    routing::get,
    Json, Router,
};
use clock::SharedClock;
use serde_json::json;
use store::SharedStore;

use crate::telemetry::Metrics;

pub use error::ApiError;

pub const BASE_PATH: &str = "/api/v1/invite";

#[derive(Clone)]
pub struct AppState {
    pub store: SharedStore,
    pub clock: SharedClock,
    pub auth: Arc<auth::Authenticator>,
    pub metrics: Arc<Metrics>,
    pub trust_forwarded_for: bool,
    pub max_body_bytes: usize,
}

/// The API routes (without `/metrics`, which may live on its own listener).
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(health::health))
        .route("/tasks", get(tasks::list).post(tasks::create))
        .route(
            "/tasks/{task_id}",
            get(tasks::get).put(tasks::update).delete(tasks::delete),
        )
        .route("/audit", get(audit::list))
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/docs", get(|| async { Html(include_str!("docs.html")) }));
    Router::new()
        .nest(BASE_PATH, api)
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))) })
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(json!({"detail": "Method Not Allowed"})),
            )
        })
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), request::request_context))
        .with_state(state)
}

/// `GET /metrics`, in Prometheus' text format.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(|State(m): State<Arc<Metrics>>| async move {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m.render()).into_response()
        })
        .with_state(metrics),
    )
}
