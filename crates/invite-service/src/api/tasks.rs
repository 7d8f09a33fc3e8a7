//! Task management: create, list, read, update, delete.

use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use domain::{
    task::{Platform, Priority, Task, TaskStatus},
    task_input::{apply_update, parse_new_task, UpdateError},
    validation::{FieldError, FieldErrors},
};
use serde_json::{json, Value};
use store::{DeleteOutcome, TaskQuery, TaskSortField, UpdateOutcome};

use crate::{
    api::{
        auth::AuthUser,
        error::{ApiError, ApiResult},
        query::{page_json, positive_id, Query},
        request::{JsonBody, Meta},
        AppState,
    },
    importer::parsing::{parse_task_id, TASK_SETTING as PARSING_TASK_SETTING},
};

/// How often an update is recomputed when the task changed underneath it.
const UPDATE_ATTEMPTS: usize = 3;

pub fn task_json(t: &Task) -> Value {
    let s = &t.spec;
    json!({
        "id": t.id,
        "user_id": t.user_id.get(),
        "name": s.name,
        "description": s.description,
        "platform": s.platform.as_str(),
        "action_type": s.action_type.as_str(),
        "target_channel": s.target_channel.as_ref().map(ToString::to_string),
        "message_template": s.message_template.as_ref().map(|m| m.as_str()),
        "priority": s.priority.as_str(),
        "scheduled_start": s.scheduled_start,
        "settings": s.settings,
        "status": t.status.as_str(),
        "status_reason": t.status_reason,
        "target_count": t.counters.target_count,
        "completed_count": t.counters.completed_count,
        "failed_count": t.counters.failed_count,
        "skipped_count": t.counters.skipped_count,
        "progress_percentage": t.counters.progress_percentage(),
        "error_message": t.error_message,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "started_at": t.started_at,
        "finished_at": t.finished_at,
    })
}

/// Path ids are positive integers; anything else is a 422 naming the parameter.
pub struct TaskId(pub i64);

impl axum::extract::FromRequestParts<AppState> for TaskId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| FieldError::new(&["path", "task_id"], "missing", "task_id is required"))?;
        Ok(TaskId(positive_id(&raw, &["path", "task_id"])?))
    }
}

pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Meta(meta): Meta,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let now = state.clock.now();
    let audience_error = audience_setting_error(&body);
    let spec = match (parse_new_task(&body, now), audience_error) {
        (Ok(spec), None) => spec,
        (Ok(_), Some(e)) => return Err(e.into()),
        (Err(mut errors), e) => {
            errors.0.extend(e);
            return Err(errors.into());
        }
    };
    audience_setting_usable(&state, &body)?;
    let task = state.store.create_task(user, &spec, now, &meta).await?;
    state.metrics.task_created(task.spec.platform);
    tracing::info!(task_id = task.id, action = "task.create", "task created");
    let location = format!("/api/v1/invite/tasks/{}", task.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(task_json(&task)),
    )
        .into_response())
}

/// The body's `settings.parsing_task_id`, if sent: the parsing task whose results the engine imports
/// as the task's audience when the task starts. What is wrong with its form, if anything.
fn audience_setting_error(body: &Value) -> Option<FieldError> {
    let id = body
        .get("settings")?
        .get(PARSING_TASK_SETTING)
        .filter(|v| !v.is_null())?;
    let msg = parse_task_id(id, "settings.parsing_task_id").err()?;
    Some(FieldError::new(
        &["body", "settings", PARSING_TASK_SETTING],
        "value_error",
        msg,
    ))
}

/// A parsing task as the audience needs the Parsing Service: without one, 503 naming the variable, as
/// the import endpoint answers.
fn audience_setting_usable(state: &AppState, body: &Value) -> ApiResult<()> {
    let sent = body
        .get("settings")
        .and_then(|s| s.get(PARSING_TASK_SETTING))
        .is_some_and(|v| !v.is_null());
    if sent && state.parsing.is_none() {
        return Err(ApiError::Unavailable(
            "settings.parsing_task_id needs the Parsing Service, which is not configured (PARSING_SERVICE_URL is unset)"
                .into(),
        ));
    }
    Ok(())
}

pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
) -> ApiResult<Json<Value>> {
    let task = state
        .store
        .get_task(user, id)
        .await?
        .ok_or(ApiError::task_not_found(id))?;
    Ok(Json(task_json(&task)))
}

const SORT_FIELDS: [(&str, TaskSortField); 5] = [
    ("created_at", TaskSortField::CreatedAt),
    ("updated_at", TaskSortField::UpdatedAt),
    ("name", TaskSortField::Name),
    ("priority", TaskSortField::Priority),
    ("status", TaskSortField::Status),
];

fn list_query(q: &Query) -> Result<TaskQuery, FieldErrors> {
    let mut errors = FieldErrors::default();
    let page = q.page(&mut errors);
    let mut statuses = Vec::new();
    if let Some(list) = q.get("status") {
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match TaskStatus::parse(word) {
                Some(s) => statuses.push(s),
                None => errors.push(FieldError::new(
                    &["query", "status"],
                    "enum",
                    format!(
                        "status must be one or more (comma-separated) of {} (got {word:?})",
                        TaskStatus::names().join(", ")
                    ),
                )),
            }
        }
    }
    let platform = q.word("platform", Platform::parse, &Platform::names(), &mut errors);
    let priority = q.word(
        "priority",
        Priority::parse,
        &["HIGH", "NORMAL", "MEDIUM", "LOW"],
        &mut errors,
    );
    let name_contains = q.get("name").map(str::to_string);
    if name_contains.as_ref().is_some_and(|n| n.chars().count() > 255) {
        errors.push(FieldError::new(
            &["query", "name"],
            "string_too_long",
            "name must be at most 255 characters",
        ));
    }
    let created_from = q.datetime("created_from", &mut errors);
    let created_to = q.datetime("created_to", &mut errors);
    if let (Some(from), Some(to)) = (created_from, created_to) {
        if from > to {
            errors.push(FieldError::new(
                &["query", "created_to"],
                "value_error",
                "created_to must not be before created_from",
            ));
        }
    }
    let sort_names: Vec<&str> = SORT_FIELDS.iter().map(|(n, _)| *n).collect();
    let sort = q
        .word(
            "sort_by",
            |v| {
                SORT_FIELDS
                    .iter()
                    .find(|(n, _)| v.eq_ignore_ascii_case(n))
                    .map(|(_, f)| *f)
            },
            &sort_names,
            &mut errors,
        )
        .unwrap_or(TaskSortField::CreatedAt);
    let descending = q
        .word(
            "sort_order",
            |v| match v.to_ascii_lowercase().as_str() {
                "asc" => Some(false),
                "desc" => Some(true),
                _ => None,
            },
            &["asc", "desc"],
            &mut errors,
        )
        .unwrap_or(true);
    errors.into_result(|| TaskQuery {
        statuses,
        platform,
        priority,
        name_contains,
        created_from,
        created_to,
        sort,
        descending,
        page,
    })
}

pub async fn list(State(state): State<AppState>, AuthUser(user): AuthUser, q: Query) -> ApiResult<Json<Value>> {
    let query = list_query(&q)?;
    let page = state.store.list_tasks(user, &query).await?;
    Ok(Json(page_json(&page, task_json)))
}

pub async fn update(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
    Meta(meta): Meta,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let audience_error = audience_setting_error(&body);
    for _ in 0..UPDATE_ATTEMPTS {
        let task = state
            .store
            .get_task(user, id)
            .await?
            .ok_or(ApiError::task_not_found(id))?;
        let now = state.clock.now();
        let spec = apply_update(&task, &body, now).map_err(|e| match e {
            UpdateError::Invalid(mut errors) => {
                errors.0.extend(audience_error.clone());
                ApiError::Validation(errors)
            }
            UpdateError::StatusLocked(status) => ApiError::Conflict(format!(
                "task {id} is {status} and can no longer be edited{}",
                if status == TaskStatus::InProgress {
                    "; pause it first to rename it or change its priority"
                } else {
                    ""
                }
            )),
            UpdateError::FieldLocked { field, status } => ApiError::Conflict(format!(
                "task {id} is {status}: only name, description and priority can change, not {field}"
            )),
        })?;
        if let Some(e) = audience_error {
            return Err(e.into());
        }
        audience_setting_usable(&state, &body)?;
        let changed = task.spec.changed_fields(&spec);
        if changed.is_empty() {
            return Ok(Json(task_json(&task)));
        }
        match state
            .store
            .update_task(user, id, task.version, &spec, &changed, now, &meta)
            .await?
        {
            UpdateOutcome::Updated(task) => {
                tracing::info!(task_id = id, action = "task.update", changed = ?changed, "task updated");
                return Ok(Json(task_json(&task)));
            }
            UpdateOutcome::NotFound => return Err(ApiError::task_not_found(id)),
            UpdateOutcome::Stale => continue,
        }
    }
    Err(ApiError::Conflict(format!(
        "task {id} kept changing while it was being updated; try again"
    )))
}

pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
    Meta(meta): Meta,
) -> ApiResult<StatusCode> {
    match state.store.delete_task(user, id, state.clock.now(), &meta).await? {
        DeleteOutcome::Deleted => {
            tracing::info!(task_id = id, action = "task.delete", "task deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        DeleteOutcome::NotFound => Err(ApiError::task_not_found(id)),
        DeleteOutcome::Running => Err(ApiError::Conflict(format!(
            "task {id} is IN_PROGRESS; cancel it before deleting it"
        ))),
    }
}
