//! Each user's do-not-contact list: people who asked not to be contacted. Imports leave them out, and
//! the engine checks the list again right before each send.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use domain::{
    identifier::{guess_kind, Identifier, IdentifierKind},
    validation::{FieldError, FieldErrors},
};
use serde_json::{json, Value};
use store::NewDncEntry;

use crate::api::{
    auth::AuthUser,
    error::{ApiError, ApiResult},
    imports::{read_error, read_upload, start_drafts, Form},
    query::{page_json, positive_id, Query},
    request::{JsonBody, Meta},
    AppState,
};

/// Most entries one request may add.
const MAX_ENTRIES: usize = 10_000;
const MAX_REASON_CHARS: usize = 500;

fn reason_of(v: Option<&Value>, loc: &[&str], errors: &mut FieldErrors) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= MAX_REASON_CHARS => {
            Some(s.trim().to_string()).filter(|s| !s.is_empty())
        }
        Some(_) => {
            errors.push(FieldError::new(
                loc,
                "value_error",
                format!("reason must be text of at most {MAX_REASON_CHARS} characters"),
            ));
            None
        }
    }
}

/// `POST /do-not-contact` `{"entries": [{"value": "@anna_k", "kind": "username"?, "reason": "…"?}]}`.
pub async fn add(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Meta(meta): Meta,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let region = state.import.phone_region;
    let Some(items) = body.get("entries").and_then(Value::as_array) else {
        return Err(FieldError::new(
            &["body", "entries"],
            "missing",
            "entries must be a list of {\"value\": \"@username | +phone | user id\"}",
        )
        .into());
    };
    if items.is_empty() || items.len() > MAX_ENTRIES {
        return Err(FieldError::new(
            &["body", "entries"],
            "value_error",
            format!("entries must hold 1 to {MAX_ENTRIES} items"),
        )
        .into());
    }
    let mut errors = FieldErrors::default();
    let mut entries = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let index = i.to_string();
        let loc = ["body", "entries", index.as_str()];
        let value = match item.get("value") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                errors.push(FieldError::new(
                    &[&loc[..], &["value"]].concat(),
                    "missing",
                    "value is required (a username, phone or user id)",
                ));
                continue;
            }
        };
        let kind = match item.get("kind").and_then(Value::as_str) {
            Some(k) => IdentifierKind::parse(k)
                .ok_or_else(|| format!("kind must be one of {}", IdentifierKind::names().join(", "))),
            None => guess_kind(&value, region).ok_or_else(|| format!("{value:?} is not a username, phone or user id")),
        };
        let reason = reason_of(item.get("reason"), &[&loc[..], &["reason"]].concat(), &mut errors);
        match kind.and_then(|k| Identifier::parse_as(k, &value, region).map_err(|e| format!("{value:?} {e}"))) {
            Ok(identifier) => entries.push(NewDncEntry { identifier, reason }),
            Err(msg) => errors.push(FieldError::new(&[&loc[..], &["value"]].concat(), "value_error", msg)),
        }
    }
    errors.into_result(|| ())?;
    let added = state
        .store
        .add_do_not_contact(user, &entries, state.clock.now(), &meta)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"added": added.added, "already_listed": added.already_listed})),
    ))
}

/// `POST /do-not-contact/import` (multipart `file`, optional `mapping`, `reason`): every identifier of
/// every row joins the list.
pub async fn import(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Meta(meta): Meta,
    form: Form,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let upload = read_upload(form, state.import.max_upload_bytes).await?;
    let mut errors = FieldErrors::default();
    let mapping = upload
        .fields
        .get("mapping")
        .filter(|m| !m.trim().is_empty())
        .map(|m| serde_json::from_str::<Value>(m))
        .transpose()
        .unwrap_or_else(|e| {
            errors.push(FieldError::new(
                &["body", "mapping"],
                "json_invalid",
                format!("mapping is not valid JSON: {e}"),
            ));
            None
        });
    let reason = reason_of(
        upload.fields.get("reason").map(|r| Value::String(r.clone())).as_ref(),
        &["body", "reason"],
        &mut errors,
    );
    errors.into_result(|| ())?;
    let region = state.import.phone_region;
    // Every identifier of every valid row: a repeated person's row may carry an identifier the first did not.
    let mut drafts = start_drafts(
        &upload,
        None,
        state.import.xlsx_max_unpacked_bytes,
        mapping.as_ref(),
        region,
    )?
    .keeping_repeats();
    let mut entries: Vec<NewDncEntry> = Vec::new();
    while let Some(chunk) = drafts.next_chunk(MAX_ENTRIES).map_err(read_error)? {
        entries.extend(
            chunk
                .iter()
                .flat_map(|d| d.identifiers())
                .map(|identifier| NewDncEntry {
                    identifier,
                    reason: reason.clone(),
                }),
        );
    }
    let added = state
        .store
        .add_do_not_contact(user, &entries, state.clock.now(), &meta)
        .await?;
    let report = &drafts.report;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "added": added.added,
            "already_listed": added.already_listed,
            "rows": report.total_rows,
            "invalid": report.invalid,
            "rejected": report.rejected,
            "source": report.source,
        })),
    ))
}

pub async fn list(State(state): State<AppState>, AuthUser(user): AuthUser, q: Query) -> ApiResult<Json<Value>> {
    let mut errors = FieldErrors::default();
    let page = q.page(&mut errors);
    errors.into_result(|| ())?;
    let entries = state.store.list_do_not_contact(user, page).await?;
    Ok(Json(page_json(
        &entries,
        |e| json!({"id": e.id, "kind": e.kind, "value": e.value, "reason": e.reason, "created_at": e.created_at}),
    )))
}

pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    Meta(meta): Meta,
) -> ApiResult<StatusCode> {
    let id = positive_id(&id, &["path", "entry_id"])?;
    if state
        .store
        .delete_do_not_contact(user, id, state.clock.now(), &meta)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("do-not-contact entry {id} not found")))
    }
}
