//! What the store takes and returns, beside the domain types.

use chrono::{DateTime, Utc};
use domain::{
    task::{ActionType, Platform, Priority, Task, TaskCounters, TaskSpec, TaskStatus, UserId},
    ChannelRef, MessageTemplate,
};
use serde_json::Value;

use crate::error::{Result, StoreError};

/// One page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based.
    pub page: u32,
    pub page_size: u32,
}

impl PageRequest {
    pub fn offset(self) -> i64 {
        i64::from(self.page.saturating_sub(1)) * i64::from(self.page_size)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub request: PageRequest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSortField {
    CreatedAt,
    UpdatedAt,
    Name,
    Priority,
    Status,
}

/// Filters and order for a user's task list.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskQuery {
    pub statuses: Vec<TaskStatus>,
    pub platform: Option<Platform>,
    pub priority: Option<Priority>,
    /// Case-insensitive substring of the name, for any script.
    pub name_contains: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub sort: TaskSortField,
    pub descending: bool,
    pub page: PageRequest,
}

/// Who asked for a change, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    pub request_id: String,
    pub client_addr: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub user_id: UserId,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub request_id: String,
    pub client_addr: Option<String>,
    pub details: Value,
    pub created_at: DateTime<Utc>,
}

/// The audit actions the store writes.
pub mod audit_action {
    pub const TASK_CREATE: &str = "task.create";
    pub const TASK_UPDATE: &str = "task.update";
    pub const TASK_DELETE: &str = "task.delete";
    pub const TARGETS_IMPORT: &str = "targets.import";
    pub const TARGETS_DELETE: &str = "targets.delete";
    pub const DNC_ADD: &str = "do_not_contact.add";
    pub const DNC_DELETE: &str = "do_not_contact.delete";
    pub const ACCOUNT_CREATE: &str = "account.create";
    pub const ACCOUNT_DELETE: &str = "account.delete";
    // A task's lifecycle: the user's moves, and the engine's own.
    pub const TASK_START: &str = "task.start";
    pub const TASK_PAUSE: &str = "task.pause";
    pub const TASK_RESUME: &str = "task.resume";
    pub const TASK_CANCEL: &str = "task.cancel";
    pub const TASK_COMPLETE: &str = "task.complete";
    pub const TASK_FAIL: &str = "task.fail";
    /// Any other status change the engine makes.
    pub const TASK_STATUS: &str = "task.status";

    /// The request id of the entries the engine writes for its own moves (no user request is behind them).
    pub const SYSTEM_REQUEST_ID: &str = "system";

    use domain::task::TaskStatus;

    /// The entry of a user's lifecycle move (`start`, `pause`, `resume`, `cancel`, with or without `task.`).
    pub fn user_move(action: &str) -> Option<&'static str> {
        Some(match action.strip_prefix("task.").unwrap_or(action) {
            "start" => TASK_START,
            "pause" => TASK_PAUSE,
            "resume" => TASK_RESUME,
            "cancel" => TASK_CANCEL,
            _ => return None,
        })
    }

    /// The entry of one of the engine's moves, named by where it leads.
    pub fn engine_move(from: &[TaskStatus], to: TaskStatus) -> &'static str {
        match to {
            TaskStatus::InProgress if from.iter().all(|s| *s == TaskStatus::Paused) => TASK_RESUME,
            TaskStatus::InProgress => TASK_START,
            TaskStatus::Paused => TASK_PAUSE,
            TaskStatus::Completed => TASK_COMPLETE,
            TaskStatus::Failed => TASK_FAIL,
            TaskStatus::Cancelled => TASK_CANCEL,
            TaskStatus::Pending => TASK_STATUS,
        }
    }
}

/// The task counter a target's final status counts in (`None` for the open statuses).
pub(crate) fn counter_column(status: domain::audience::TargetStatus) -> Option<&'static str> {
    use domain::audience::TargetStatus::*;
    match status {
        Succeeded | AlreadyDone => Some("completed_count"),
        Failed | Unknown => Some("failed_count"),
        Skipped => Some("skipped_count"),
        Pending | InProgress => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOutcome {
    Updated(Box<Task>),
    NotFound,
    /// The task changed since it was read (another request or the engine); read it again.
    Stale,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// The task is running and must be cancelled first.
    Running,
}

/// The folded form the name filter compares (Unicode lower case, computed here for both backends).
pub fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// `%needle%` for LIKE with `\` as the escape character.
pub fn like_contains(needle: &str) -> String {
    let mut out = String::with_capacity(needle.len() + 2);
    out.push('%');
    for c in fold(needle).chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A task row as both backends read it, before it is checked back into domain types.
pub(crate) struct TaskRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub platform: String,
    pub action_type: String,
    pub target_channel: Option<String>,
    pub message_template: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub priority: String,
    pub scheduled_start: Option<DateTime<Utc>>,
    pub settings: Value,
    pub counters: TaskCounters,
    pub error_message: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn corrupt(what: &str, id: i64, value: &str) -> StoreError {
    StoreError::Corrupt(format!("task {id}: invalid {what} {value:?}"))
}

impl TaskRow {
    pub(crate) fn into_task(self) -> Result<Task> {
        let id = self.id;
        let settings = match self.settings {
            Value::Object(map) => map,
            other => return Err(corrupt("settings", id, &other.to_string())),
        };
        Ok(Task {
            id,
            user_id: UserId::new(self.user_id).ok_or_else(|| corrupt("user_id", id, &self.user_id.to_string()))?,
            spec: TaskSpec {
                name: self.name,
                description: self.description,
                platform: Platform::parse(&self.platform).ok_or_else(|| corrupt("platform", id, &self.platform))?,
                action_type: ActionType::parse(&self.action_type)
                    .ok_or_else(|| corrupt("action_type", id, &self.action_type))?,
                target_channel: self
                    .target_channel
                    .map(|c| ChannelRef::parse(&c).map_err(|_| corrupt("target_channel", id, &c)))
                    .transpose()?,
                message_template: self
                    .message_template
                    .map(|t| MessageTemplate::parse(&t).map_err(|_| corrupt("message_template", id, &t)))
                    .transpose()?,
                priority: Priority::parse(&self.priority).ok_or_else(|| corrupt("priority", id, &self.priority))?,
                scheduled_start: self.scheduled_start,
                settings,
            },
            status: TaskStatus::parse(&self.status).ok_or_else(|| corrupt("status", id, &self.status))?,
            status_reason: self.status_reason,
            counters: self.counters,
            error_message: self.error_message,
            created_at: self.created_at,
            updated_at: self.updated_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            version: self.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards_and_fold_any_script() {
        assert_eq!(like_contains("Рассылка_50%"), "%рассылка\\_50\\%%");
        assert_eq!(fold("ЁЛКА Straße"), "ёлка straße");
    }
}

/// How an import ended.
#[derive(Debug, Clone)]
pub enum ImportOutcome {
    Done {
        import_id: i64,
        report: Box<domain::audience::ImportReport>,
    },
    /// Refused whole: the task would pass its limit.
    TooManyTargets {
        existing: usize,
        adding: usize,
        limit: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetQuery {
    pub status: Option<domain::audience::TargetStatus>,
    pub page: PageRequest,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TargetDeleteOutcome {
    Deleted(u64),
    NotFound,
    /// Targets can be removed only before the task starts.
    Started(TaskStatus),
}

/// A stored import and its report.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRecord {
    pub id: i64,
    pub task_id: i64,
    pub source: String,
    pub file_name: Option<String>,
    pub dry_run: bool,
    pub report: Value,
    pub request_id: String,
    pub created_at: DateTime<Utc>,
}

/// One entry of a user's do-not-contact list.
#[derive(Debug, Clone, PartialEq)]
pub struct DncEntry {
    pub id: i64,
    pub kind: String,
    pub value: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewDncEntry {
    pub identifier: domain::identifier::Identifier,
    pub reason: Option<String>,
}

/// How many of the entries were new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DncAdded {
    pub added: usize,
    pub already_listed: usize,
}

use domain::identifier::Identifier;

/// A draft's column values, as both backends store them.
pub(crate) struct TargetValues {
    pub username: Option<String>,
    pub phone: Option<String>,
    pub user_id: Option<String>,
    pub user_id_is_hint: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub full_name: Option<String>,
    pub extra: Value,
    pub row: i64,
    pub username_key: Option<String>,
    pub user_id_key: Option<String>,
    pub phone_key: Option<String>,
}

impl TargetValues {
    pub fn of(d: &domain::audience::TargetDraft) -> Self {
        let full_name = match (&d.first_name, &d.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(n), None) | (None, Some(n)) => Some(n.clone()),
            (None, None) => None,
        };
        Self {
            username: d.username.as_ref().map(|u| u.as_str().to_string()),
            phone: d.phone.as_ref().map(|p| p.as_str().to_string()),
            user_id: d.user_id.map(|id| id.get().to_string()),
            user_id_is_hint: d.user_id_is_hint,
            first_name: d.first_name.clone(),
            last_name: d.last_name.clone(),
            full_name,
            extra: Value::Object(d.extra.clone()),
            row: d.row as i64,
            username_key: d.username.as_ref().map(|u| Identifier::Username(u.clone()).dedup_key()),
            user_id_key: d.user_id.map(|id| Identifier::UserId(id).dedup_key()),
            phone_key: d.phone.as_ref().map(|p| Identifier::Phone(p.clone()).dedup_key()),
        }
    }
}

/// A target row as both backends read it.
pub(crate) struct TargetRow {
    pub id: i64,
    pub task_id: i64,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub user_id_is_hint: bool,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub extra: Value,
    pub source: String,
    pub status: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub source_row: Option<i64>,
    pub processed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl TargetRow {
    pub(crate) fn into_target(self) -> Result<domain::audience::Target> {
        use domain::audience::{Target, TargetSource, TargetStatus};
        let bad = |what: &str, v: &str| StoreError::Corrupt(format!("target {}: invalid {what} {v:?}", self.id));
        Ok(Target {
            id: self.id,
            task_id: self.task_id,
            user_id: self
                .user_id
                .as_deref()
                .map(|v| v.parse().map_err(|_| bad("user id", v)))
                .transpose()?,
            source: TargetSource::parse(&self.source).ok_or_else(|| bad("source", &self.source))?,
            status: TargetStatus::parse(&self.status).ok_or_else(|| bad("status", &self.status))?,
            username: self.username,
            user_id_is_hint: self.user_id_is_hint,
            phone: self.phone,
            first_name: self.first_name,
            last_name: self.last_name,
            extra: self.extra,
            reason: self.reason,
            attempts: self.attempts,
            source_row: self.source_row,
            processed_at: self.processed_at,
            created_at: self.created_at,
        })
    }
}
