//! `POST /tasks/{id}/start|pause|resume|cancel`: the engine's transition table, with a 409 that names
//! the current status (or what a start lacks) when a move is not allowed.

use axum::{extract::State, Json};
use serde_json::Value;

use super::{
    auth::AuthUser,
    error::{ApiError, ApiResult},
    request::Meta,
    tasks::{task_json, TaskId},
    AppState,
};
use crate::{
    engine::{
        audience::AudienceError,
        lifecycle::{Move, MoveError},
    },
    importer::load::{LoadError, ParsingImportError},
    integrations::{integration_service::IntegrationError, parsing_service::UpstreamError},
};

async fn apply(
    state: AppState,
    user: domain::UserId,
    id: i64,
    m: Move,
    meta: store::RequestMeta,
) -> ApiResult<Json<Value>> {
    if let (Move::Start | Move::Resume, Some(integration)) = (m, &state.integration) {
        // The accounts a start is checked against, and the campaign then uses, are the Integration
        // Service's as of now: one it blocked must not be counted on.
        if let Some(task) = state.store.get_task(user, id).await? {
            integration
                .sync(user, task.spec.platform.as_str())
                .await
                .map_err(|e| match e {
                    IntegrationError::Store(e) => ApiError::Store(e),
                    e => ApiError::Unavailable(e.to_string()),
                })?;
        }
    }
    match state.engine.apply_move(user, id, m, &meta).await {
        Ok(task) => {
            tracing::info!(
                task_id = id,
                action = m.as_str(),
                status = task.status.as_str(),
                "task moved"
            );
            Ok(Json(task_json(&task)))
        }
        Err(MoveError::NotFound(id)) => Err(ApiError::task_not_found(id)),
        Err(MoveError::Conflict(why)) => Err(ApiError::Conflict(why)),
        Err(MoveError::Audience(e)) => Err(audience_error(id, e)),
        Err(MoveError::Store(e)) => Err(e.into()),
    }
}

/// A start whose audience could not be imported from the Parsing Service: 503/502 when the service
/// could not answer or answered wrongly, as for the import endpoint; 409 when the task as defined
/// cannot start (the parsing task does not exist, or holds more than the task may).
fn audience_error(id: i64, e: AudienceError) -> ApiError {
    match e {
        AudienceError::NotConfigured(_) => ApiError::Unavailable(e.to_string()),
        AudienceError::Import(ParsingImportError::Upstream(e)) => match e {
            UpstreamError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            UpstreamError::Refused(_) | UpstreamError::BadResponse(_) => ApiError::BadGateway(e.to_string()),
            UpstreamError::NotFound(_) | UpstreamError::TooMany(_) => {
                ApiError::Conflict(format!("task {id} cannot start: {e} (settings.parsing_task_id)"))
            }
        },
        AudienceError::Import(ParsingImportError::Load(e)) => match e {
            LoadError::NotFound(id) => ApiError::task_not_found(id),
            LoadError::Store(e) => e.into(),
            e => ApiError::Conflict(format!("task {id} cannot start: {e}")),
        },
    }
}

pub async fn start(
    State(s): State<AppState>,
    AuthUser(u): AuthUser,
    TaskId(id): TaskId,
    Meta(m): Meta,
) -> ApiResult<Json<Value>> {
    apply(s, u, id, Move::Start, m).await
}

pub async fn pause(
    State(s): State<AppState>,
    AuthUser(u): AuthUser,
    TaskId(id): TaskId,
    Meta(m): Meta,
) -> ApiResult<Json<Value>> {
    apply(s, u, id, Move::Pause, m).await
}

pub async fn resume(
    State(s): State<AppState>,
    AuthUser(u): AuthUser,
    TaskId(id): TaskId,
    Meta(m): Meta,
) -> ApiResult<Json<Value>> {
    apply(s, u, id, Move::Resume, m).await
}

pub async fn cancel(
    State(s): State<AppState>,
    AuthUser(u): AuthUser,
    TaskId(id): TaskId,
    Meta(m): Meta,
) -> ApiResult<Json<Value>> {
    apply(s, u, id, Move::Cancel, m).await
}
