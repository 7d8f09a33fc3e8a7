//! What a task came to: its live status with a completion estimate, outcomes grouped by reason,
//! account and hour, the final report (JSON, or one CSV row per target), and its execution log.
//! Authenticated like every task route; another user's task answers 404.

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Utc};
use domain::{
    task::Task,
    validation::{FieldError, FieldErrors},
};
use serde_json::{json, Map, Value};
use store::{LogEntry, LogQuery, TargetCounts, TargetOutcome, TaskStats};

use crate::{
    api::{
        auth::AuthUser,
        error::{ApiError, ApiResult},
        query::{page_json, positive_id, Query},
        tasks::{task_json, TaskId},
        AppState,
    },
    engine::{
        estimate::{Estimate, HORIZON_DAYS},
        progress::{self, Progress},
    },
};

/// Targets read per query while a CSV export is written.
const EXPORT_CHUNK: i64 = 1000;

/// The log's `level`, derived from each row's status: `SUCCESS` (and `PENDING`) are `info`, `SKIPPED`
/// is `warning` (nothing was sent, on purpose: do-not-contact, a channel that ended the task), `FAILED`
/// is `error`.
const LEVELS: [(&str, &[&str]); 3] = [
    ("info", &["SUCCESS", "PENDING"]),
    ("warning", &["SKIPPED"]),
    ("error", &["FAILED"]),
];

fn level_of(status: &str) -> &'static str {
    LEVELS
        .iter()
        .find(|(_, statuses)| statuses.contains(&status))
        .map_or("info", |(level, _)| level)
}

async fn own_task(state: &AppState, user: domain::UserId, id: i64) -> ApiResult<Task> {
    state
        .store
        .get_task(user, id)
        .await?
        .ok_or(ApiError::task_not_found(id))
}

fn counts_json(c: &TargetCounts) -> Value {
    json!({
        "pending": c.due + c.waiting,
        "in_progress": c.in_progress,
        "succeeded": c.succeeded,
        "already_done": c.already_done,
        "failed": c.failed,
        "skipped": c.skipped,
        "unknown": c.unknown,
    })
}

/// Final targets as a share of all, in percent with one decimal.
fn percent_final(c: &TargetCounts) -> f64 {
    let total = c.total();
    if total <= 0 {
        return 0.0;
    }
    let done = total - c.open();
    (done as f64 * 1000.0 / total as f64).round() / 10.0
}

fn estimate_json(e: &Estimate) -> Value {
    json!({
        "method": "each usable account played forward action by action under the Account Manager's policy: \
                   its rest, the mean pause between actions, every rolling window with the grants already in \
                   the ledger, and its lifetime cap in the channel; the next target goes to the account that \
                   may act soonest",
        "assumptions": [
            "the accounts serve only this task",
            "every open target costs one main action and one username resolution",
            "no new flood waits or restrictions",
            format!("nothing more than {HORIZON_DAYS} days ahead"),
        ],
        "open_targets": e.open_targets,
        "reason": e.unavailable,
        "accounts": e.accounts.iter().map(|a| json!({
            "account_id": a.account_id,
            "targets": a.targets,
            "first_at": a.first_at,
            "last_at": a.last_at,
            "per_day": (a.per_day * 10.0).round() / 10.0,
            "limited_by": a.limited_by,
            "lifetime_left": a.lifetime_left,
            "unusable": a.unusable,
        })).collect::<Vec<_>>(),
    })
}

fn status_json(task: &Task, p: &Progress) -> Value {
    let c = &p.counts;
    let mut states = Map::new();
    for s in ["working", "resting", "restricted", "blocked", "excluded", "unavailable"] {
        let n = p.accounts.iter().filter(|a| a.state == s).count();
        states.insert(s.to_string(), json!(n));
    }
    json!({
        "task_id": task.id,
        "status": task.status.as_str(),
        "status_reason": task.status_reason,
        "counts": counts_json(c),
        "total": c.total(),
        "open": c.open(),
        "progress_percent": percent_final(c),
        "accounts": p.accounts.iter().map(|a| json!({
            "account_id": a.account_id,
            "name": a.name,
            "state": a.state,
            "reason": a.reason,
            "until": a.until,
            "next_available_at": a.next_available_at,
        })).collect::<Vec<_>>(),
        "account_states": states,
        "next_action_at": p.next_action_at,
        "next_retry_at": c.next_due_at,
        "estimated_completion_at": p.estimate.completion_at,
        "estimate": estimate_json(&p.estimate),
        "as_of": p.at,
    })
}

/// `GET /tasks/{id}/status`
pub async fn status(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
) -> ApiResult<Json<Value>> {
    let task = own_task(&state, user, id).await?;
    let p = progress::progress(&state.engine, &task).await?;
    Ok(Json(status_json(&task, &p)))
}

/// Attempts of each account (its main actions, counted on its row for the task, which outlives the
/// log's retention) and the final targets its calls decided.
async fn by_account(state: &AppState, task_id: i64, stats: &TaskStats) -> ApiResult<Vec<Value>> {
    let rows = state.store.task_accounts(task_id).await?;
    let mut ids: Vec<Option<String>> = rows.iter().map(|r| Some(r.account_id.clone())).collect();
    for a in &stats.by_account {
        if !ids.contains(&a.account_id) {
            ids.push(a.account_id.clone());
        }
    }
    let mut out = Vec::new();
    for id in ids {
        let row = rows.iter().find(|r| Some(&r.account_id) == id.as_ref());
        let outcomes = row
            .and_then(|r| r.stats.get("outcomes"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let attempts = row
            .and_then(|r| r.stats.get("actions"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let count = |k: &str| outcomes.get(k).and_then(Value::as_i64).unwrap_or(0);
        let successes = count("success") + count("already_done");
        let mut targets = Map::new();
        for a in stats.by_account.iter().filter(|a| a.account_id == id) {
            targets.insert(a.status.clone(), json!(a.count));
        }
        out.push(json!({
            "account_id": id,
            "status": row.map(|r| r.status.as_str()),
            "attempts": attempts,
            "successes": successes,
            "failures": attempts - successes,
            "outcomes": outcomes,
            "targets": targets,
            "last_used_at": row.and_then(|r| r.last_used_at),
        }));
    }
    Ok(out)
}

fn by_reason_json(stats: &TaskStats) -> Value {
    json!(stats
        .by_reason
        .iter()
        .map(|r| json!({"status": r.status, "reason": r.reason, "count": r.count}))
        .collect::<Vec<_>>())
}

fn by_hour_json(stats: &TaskStats) -> Value {
    let mut hours: Vec<(DateTime<Utc>, Map<String, Value>)> = Vec::new();
    for h in &stats.by_hour {
        if hours.last().is_none_or(|(at, _)| *at != h.hour) {
            let zero = ["actions", "success", "failed", "skipped"]
                .iter()
                .map(|k| (k.to_string(), json!(0)))
                .collect();
            hours.push((h.hour, zero));
        }
        let (_, counts) = hours.last_mut().expect("pushed above");
        let bump = |counts: &mut Map<String, Value>, k: &str, n: i64| {
            let v = counts.get(k).and_then(Value::as_i64).unwrap_or(0);
            counts.insert(k.to_string(), json!(v + n));
        };
        bump(counts, "actions", h.count);
        match h.status.as_str() {
            "SUCCESS" => bump(counts, "success", h.count),
            "FAILED" => bump(counts, "failed", h.count),
            "SKIPPED" => bump(counts, "skipped", h.count),
            _ => {}
        }
    }
    json!(hours
        .into_iter()
        .map(|(hour, mut counts)| {
            counts.insert("hour".into(), json!(hour));
            Value::Object(counts)
        })
        .collect::<Vec<_>>())
}

async fn stats_of(state: &AppState, user: domain::UserId, id: i64) -> ApiResult<TaskStats> {
    state
        .store
        .task_stats(user, id)
        .await?
        .ok_or(ApiError::task_not_found(id))
}

/// `GET /tasks/{id}/stats`
pub async fn stats(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
) -> ApiResult<Json<Value>> {
    let stats = stats_of(&state, user, id).await?;
    Ok(Json(json!({
        "task_id": id,
        "by_reason": by_reason_json(&stats),
        "by_outcome": stats.by_outcome.iter().map(|o| json!({
            "action": o.action, "status": o.status, "outcome": o.outcome, "count": o.count,
        })).collect::<Vec<_>>(),
        "by_account": by_account(&state, id, &stats).await?,
        "by_hour": by_hour_json(&stats),
    })))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

/// `GET /tasks/{id}/report[?format=json|csv]`
pub async fn report(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
    q: Query,
) -> ApiResult<Response> {
    let mut errors = FieldErrors::default();
    let format = q
        .word(
            "format",
            |v| match v.to_ascii_lowercase().as_str() {
                "json" => Some(Format::Json),
                "csv" => Some(Format::Csv),
                _ => None,
            },
            &["json", "csv"],
            &mut errors,
        )
        .unwrap_or(Format::Json);
    errors.into_result(|| ())?;
    let task = own_task(&state, user, id).await?;
    match format {
        Format::Json => Ok(Json(report_json(&state, user, &task).await?).into_response()),
        Format::Csv => csv_report(&state, user, &task).await,
    }
}

async fn report_json(state: &AppState, user: domain::UserId, task: &Task) -> ApiResult<Value> {
    let now = state.clock.now();
    let counts = state.store.target_counts(task.id, now).await?;
    let stats = stats_of(state, user, task.id).await?;
    let duration = task.started_at.map(|started| {
        let end = task.finished_at.unwrap_or(now);
        (end - started).num_milliseconds() as f64 / 1000.0
    });
    Ok(json!({
        "task": task_json(task),
        "finished": task.status.is_finished(),
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "duration_seconds": duration,
        "counts": counts_json(&counts),
        "total": counts.total(),
        "progress_percent": percent_final(&counts),
        "by_reason": by_reason_json(&stats),
        "by_account": by_account(state, task.id, &stats).await?,
        "generated_at": now,
    }))
}

/// A spreadsheet reads a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return as a
/// formula: such a cell is written with a leading `'`, which makes it text.
fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

const CSV_COLUMNS: [&str; 13] = [
    "target_id",
    "username",
    "user_id",
    "phone",
    "first_name",
    "last_name",
    "status",
    "reason",
    "detail",
    "account_id",
    "attempts",
    "processed_at",
    "updated_at",
];

fn csv_row(o: &TargetOutcome) -> [String; 13] {
    let t = &o.target;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let detail = o
        .result
        .get("detail")
        .or_else(|| o.result.get("last"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    [
        t.id.to_string(),
        text(&t.username),
        t.user_id.map(|i| i.to_string()).unwrap_or_default(),
        text(&t.phone),
        text(&t.first_name),
        text(&t.last_name),
        t.status.as_str().to_string(),
        text(&t.reason),
        detail,
        text(&o.account_id),
        t.attempts.to_string(),
        t.processed_at.map(|at| at.to_rfc3339()).unwrap_or_default(),
        o.updated_at.to_rfc3339(),
    ]
}

async fn csv_report(state: &AppState, user: domain::UserId, task: &Task) -> ApiResult<Response> {
    // A UTF-8 byte order mark, so spreadsheet programs read Cyrillic names right (the importer reads it).
    let mut out = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let write_err = |e: csv::Error| ApiError::from(store::StoreError::Corrupt(format!("CSV export: {e}")));
    out.write_record(CSV_COLUMNS).map_err(write_err)?;
    let mut after = 0;
    loop {
        let chunk = state
            .store
            .report_targets(user, task.id, after, EXPORT_CHUNK)
            .await?
            .ok_or(ApiError::task_not_found(task.id))?;
        for o in &chunk {
            let row = csv_row(o);
            out.write_record(row.iter().map(|cell| neutralise(cell).into_owned()))
                .map_err(write_err)?;
        }
        match chunk.last() {
            Some(last) if chunk.len() as i64 == EXPORT_CHUNK => after = last.target.id,
            _ => break,
        }
    }
    let bytes = out
        .into_inner()
        .map_err(|e| ApiError::from(store::StoreError::Corrupt(format!("CSV export: {e}"))))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"task-{}-report.csv\"", task.id),
            ),
        ],
        bytes,
    )
        .into_response())
}

fn log_json(l: &LogEntry) -> Value {
    json!({
        "id": l.id,
        "task_id": l.task_id,
        "target_id": l.target_id,
        "account_id": l.account_id,
        "action": l.action,
        "status": l.status,
        "level": level_of(&l.status),
        "outcome": l.details.get("outcome"),
        "detail": l.details.get("detail"),
        "created_at": l.created_at,
    })
}

fn log_query(q: &Query) -> Result<LogQuery, FieldErrors> {
    let mut errors = FieldErrors::default();
    let page = q.page(&mut errors);
    let mut statuses = Vec::new();
    if let Some(list) = q.get("level") {
        let names: Vec<&str> = LEVELS.iter().map(|(l, _)| *l).collect();
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let word = word.to_lowercase();
            let word = if word == "warn" { "warning".to_string() } else { word };
            match LEVELS.iter().find(|(l, _)| *l == word) {
                Some((_, of_level)) => statuses.extend(of_level.iter().map(|s| s.to_string())),
                None => errors.push(FieldError::new(
                    &["query", "level"],
                    "enum",
                    format!(
                        "level must be one or more (comma-separated) of {} (got {word:?})",
                        names.join(", ")
                    ),
                )),
            }
        }
    }
    let account_id = q.get("account_id").map(str::to_string);
    if account_id.as_ref().is_some_and(|a| a.chars().count() > 255) {
        errors.push(FieldError::new(
            &["query", "account_id"],
            "string_too_long",
            "account_id must be at most 255 characters",
        ));
    }
    let target_id = q
        .get("target_id")
        .and_then(|v| errors.take(positive_id(v, &["query", "target_id"])));
    let since = q.datetime("since", &mut errors);
    let until = q.datetime("until", &mut errors);
    if let (Some(since), Some(until)) = (since, until) {
        if since > until {
            errors.push(FieldError::new(
                &["query", "until"],
                "value_error",
                "until must not be before since",
            ));
        }
    }
    errors.into_result(|| LogQuery {
        statuses,
        account_id,
        target_id,
        since,
        until,
        page,
    })
}

/// `GET /tasks/{id}/logs`: newest first, paged, filtered by `level`, `account_id`, `target_id`,
/// `since` (inclusive) and `until` (exclusive).
pub async fn logs(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
    q: Query,
) -> ApiResult<Json<Value>> {
    let query = log_query(&q)?;
    let page = state
        .store
        .task_logs(user, id, &query)
        .await?
        .ok_or(ApiError::task_not_found(id))?;
    Ok(Json(page_json(&page, log_json)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_written_as_text() {
        for cell in ["=HYPERLINK(\"http://x\")", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise(cell), format!("'{cell}"));
        }
        for cell in ["anna", "", "1=1", "Анна", "'quoted"] {
            assert_eq!(neutralise(cell), cell);
        }
    }

    #[test]
    fn levels_come_from_the_status() {
        assert_eq!(
            ["SUCCESS", "PENDING", "SKIPPED", "FAILED"].map(level_of),
            ["info", "info", "warning", "error"]
        );
    }

    #[test]
    fn progress_is_the_share_of_final_targets_with_one_decimal() {
        let c = TargetCounts {
            due: 2,
            succeeded: 1,
            ..TargetCounts::default()
        };
        assert_eq!(percent_final(&c), 33.3);
        assert_eq!(percent_final(&TargetCounts::default()), 0.0);
    }
}
