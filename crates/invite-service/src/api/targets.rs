//! A task's targets: list them, remove them before the task starts.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use domain::{
    audience::{Target, TargetStatus},
    validation::{FieldError, FieldErrors},
};
use serde_json::{json, Value};
use store::{TargetDeleteOutcome, TargetQuery};

use crate::api::{
    auth::AuthUser,
    error::{ApiError, ApiResult},
    query::{page_json, positive_id, Query},
    request::Meta,
    tasks::TaskId,
    AppState,
};

pub fn target_json(t: &Target) -> Value {
    json!({
        "id": t.id,
        "task_id": t.task_id,
        "username": t.username,
        "user_id": t.user_id,
        "user_id_is_hint": t.user_id_is_hint,
        "phone": t.phone,
        "first_name": t.first_name,
        "last_name": t.last_name,
        "extra": t.extra,
        "source": t.source.as_str(),
        "status": t.status.as_str(),
        "reason": t.reason,
        "attempts": t.attempts,
        "source_row": t.source_row,
        "processed_at": t.processed_at,
        "created_at": t.created_at,
    })
}

pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(task_id): TaskId,
    q: Query,
) -> ApiResult<Json<Value>> {
    let mut errors = FieldErrors::default();
    let page = q.page(&mut errors);
    let status = q.word("status", TargetStatus::parse, &TargetStatus::names(), &mut errors);
    errors.into_result(|| ())?;
    let targets = state
        .store
        .list_targets(user, task_id, &TargetQuery { status, page })
        .await?
        .ok_or(ApiError::task_not_found(task_id))?;
    Ok(Json(page_json(&targets, target_json)))
}

fn deleted(outcome: TargetDeleteOutcome, task_id: i64) -> ApiResult<Json<Value>> {
    match outcome {
        TargetDeleteOutcome::Deleted(n) => Ok(Json(json!({ "deleted": n }))),
        TargetDeleteOutcome::NotFound => Err(ApiError::task_not_found(task_id)),
        TargetDeleteOutcome::Started(status) => Err(ApiError::Conflict(format!(
            "task {task_id} is {status} and has started: its targets can no longer be removed"
        ))),
    }
}

/// `DELETE /tasks/{id}/targets?ids=1,2,3` or `?all=true`.
pub async fn delete_many(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(task_id): TaskId,
    Meta(meta): Meta,
    q: Query,
) -> ApiResult<Json<Value>> {
    let ids: Option<Vec<i64>> = match (q.get("ids"), q.get("all")) {
        (Some(list), None) => {
            let parsed: Result<Vec<i64>, _> = list.split(',').map(|v| v.trim().parse::<i64>()).collect();
            match parsed {
                Ok(ids) if !ids.is_empty() && ids.len() <= 1000 && ids.iter().all(|id| *id > 0) => Some(ids),
                _ => {
                    return Err(FieldError::new(
                        &["query", "ids"],
                        "value_error",
                        "ids must be 1 to 1000 comma-separated positive integers",
                    )
                    .into())
                }
            }
        }
        (None, Some(all)) if all.eq_ignore_ascii_case("true") => None,
        _ => {
            return Err(FieldError::new(
                &["query", "ids"],
                "missing",
                "say which targets to remove: ids=1,2,3, or all=true for every target of the task",
            )
            .into())
        }
    };
    let outcome = state
        .store
        .delete_targets(user, task_id, ids.as_deref(), state.clock.now(), &meta)
        .await?;
    deleted(outcome, task_id)
}

pub async fn delete_one(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((task_id, target_id)): Path<(String, String)>,
    Meta(meta): Meta,
) -> ApiResult<StatusCode> {
    let task_id = positive_id(&task_id, &["path", "task_id"])?;
    let target_id = positive_id(&target_id, &["path", "target_id"])?;
    match deleted(
        state
            .store
            .delete_targets(user, task_id, Some(&[target_id]), state.clock.now(), &meta)
            .await?,
        task_id,
    )? {
        Json(v) if v["deleted"] == 0 => Err(ApiError::NotFound(format!("task {task_id} has no target {target_id}"))),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}
