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
    engine::lifecycle::{Move, MoveError},
    integrations::integration_service::IntegrationError,
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
        Err(MoveError::Store(e)) => Err(e.into()),
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
