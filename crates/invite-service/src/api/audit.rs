//! The caller's own audit trail.

use axum::{extract::State, Json};
use domain::validation::FieldErrors;
use serde_json::{json, Value};

use crate::api::{
    auth::AuthUser,
    error::ApiResult,
    query::{page_json, Query},
    AppState,
};

pub async fn list(State(state): State<AppState>, AuthUser(user): AuthUser, q: Query) -> ApiResult<Json<Value>> {
    let mut errors = FieldErrors::default();
    let page = q.page(&mut errors);
    errors.into_result(|| ())?;
    let entries = state.store.list_audit(user, page).await?;
    Ok(Json(page_json(&entries, |e| {
        json!({
            "id": e.id,
            "user_id": e.user_id.get(),
            "action": e.action,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "request_id": e.request_id,
            "client_addr": e.client_addr,
            "details": e.details,
            "created_at": e.created_at,
        })
    })))
}
