//! The HTTP API: thin handlers that parse, authorize, call the domain and the store, and shape the
//! response. Everything lives under `/api/v1/invite`.

mod accounts;
mod audit;
pub mod auth;
mod do_not_contact;
mod error;
mod health;
mod imports;
mod lifecycle;
pub mod openapi;
mod query;
mod reports;
pub mod request;
mod targets;
mod tasks;

use std::sync::Arc;

use axum::{
    extract::{DefaultBodyLimit, State},
    http::{header, StatusCode},
    middleware,
    response::{Html, IntoResponse},
    routing::{delete, get, post},
    Json, Router,
};
use clock::SharedClock;
use serde_json::json;
use store::SharedStore;

use crate::{config::ImportConfig, integrations::parsing_service::ParsingServiceClient, telemetry::Metrics};

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
    pub import: ImportConfig,
    /// None when PARSING_SERVICE_URL is unset.
    pub parsing: Option<Arc<ParsingServiceClient>>,
    pub am: Arc<account_manager::AccountManager>,
    /// Seals sessions and API hashes at rest.
    pub sealer: Arc<account_manager::sealing::Sealer>,
    /// The service-wide Telegram api_id and api_hash.
    pub telegram_api: Option<(i32, crate::secrets::Secret)>,
    /// Lifecycle moves go through the engine (it checks a start and tells every process).
    pub engine: Arc<crate::engine::Engine>,
    /// None when VAULT_ADDR is unset.
    pub vault: Option<Arc<crate::vault::Vault>>,
    /// Mirrors the Integration Service's accounts; None when INTEGRATION_SERVICE_URL is unset.
    pub integration: Option<Arc<crate::integrations::integration_service::IntegrationAccounts>>,
}

/// The API routes (without `/metrics`, which may live on its own listener).
pub fn router(state: AppState) -> Router {
    // The multipart envelope around a file of the largest accepted size.
    let upload_limit = state.import.max_upload_bytes + 64 * 1024;
    let api = Router::new()
        .route("/health", get(health::health))
        .route("/tasks", get(tasks::list).post(tasks::create))
        .route(
            "/tasks/{task_id}",
            get(tasks::get).put(tasks::update).delete(tasks::delete),
        )
        .route(
            "/tasks/{task_id}/targets",
            get(targets::list).delete(targets::delete_many),
        )
        .route("/tasks/{task_id}/targets/{target_id}", delete(targets::delete_one))
        .route("/tasks/{task_id}/start", post(lifecycle::start))
        .route("/tasks/{task_id}/pause", post(lifecycle::pause))
        .route("/tasks/{task_id}/resume", post(lifecycle::resume))
        .route("/tasks/{task_id}/cancel", post(lifecycle::cancel))
        .route("/tasks/{task_id}/status", get(reports::status))
        .route("/tasks/{task_id}/stats", get(reports::stats))
        .route("/tasks/{task_id}/report", get(reports::report))
        .route("/tasks/{task_id}/logs", get(reports::logs))
        .route(
            "/import/file",
            post(imports::file).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/import/parsing", post(imports::parsing))
        .route("/import/validate", get(imports::validate))
        .route("/do-not-contact", get(do_not_contact::list).post(do_not_contact::add))
        .route(
            "/do-not-contact/import",
            post(do_not_contact::import).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/do-not-contact/{entry_id}", delete(do_not_contact::delete))
        .route("/accounts", get(accounts::list).post(accounts::register))
        .route("/accounts/{account_id}", get(accounts::get).delete(accounts::delete))
        .route("/accounts/{account_id}/limits", get(accounts::limits))
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

/// `GET /metrics`, in Prometheus' text format: the engine's registry, with the gauges read from the
/// store and the queue as the scrape comes in (so every process reports the service's state).
pub fn metrics_router(engine: Arc<crate::engine::Engine>) -> Router {
    Router::new().route(
        "/metrics",
        get(|State(e): State<Arc<crate::engine::Engine>>| async move {
            let text = e.metrics.scrape(e.store.as_ref(), e.queue.as_ref()).await;
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        })
        .with_state(engine),
    )
}
