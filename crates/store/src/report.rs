//! What the store answers for a task's reports: its execution log filtered and paged, outcomes
//! grouped by reason, account and hour, one row per target for exports, and the retention cleanup of
//! old log rows.
//!
//! The groupings are raw counts; shaping them (levels, percentages, sums) is the API's. Targets keep
//! their outcome and the account that settled them in `result`, so everything but the hourly buckets
//! and the log itself survives the log's retention period.

use chrono::{DateTime, Utc};
use domain::audience::Target;
use serde_json::Value;

use crate::model::PageRequest;

/// Filters of a task's execution log. Empty `statuses` means every status.
#[derive(Debug, Clone, PartialEq)]
pub struct LogQuery {
    /// The spec's `executionstatus` values to keep (`SUCCESS`, `FAILED`, `SKIPPED`, `PENDING`).
    pub statuses: Vec<String>,
    pub account_id: Option<String>,
    pub target_id: Option<i64>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before (exclusive), so consecutive windows never count a row twice.
    pub until: Option<DateTime<Utc>>,
    pub page: PageRequest,
}

/// One row of a task's execution log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub id: i64,
    pub task_id: i64,
    pub target_id: Option<i64>,
    pub account_id: String,
    pub action: String,
    pub status: String,
    pub details: Value,
    pub created_at: DateTime<Utc>,
}

/// Final targets with this status and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonCount {
    pub status: String,
    pub reason: Option<String>,
    pub count: i64,
}

/// Log rows of one action with this status and `details.outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeCount {
    pub action: String,
    pub status: String,
    pub outcome: Option<String>,
    pub count: i64,
}

/// Final targets with this status whose deciding call was made by one account (None: no account's
/// call decided it — the do-not-contact list, a channel that ended the task, no usable account left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTargetCount {
    pub account_id: Option<String>,
    pub status: String,
    pub count: i64,
}

/// Log rows with this status in one UTC hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCount {
    /// The start of the hour (UTC).
    pub hour: DateTime<Utc>,
    pub status: String,
    pub count: i64,
}

/// A task's outcomes, grouped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskStats {
    /// Final targets by status and reason, most frequent first.
    pub by_reason: Vec<ReasonCount>,
    /// Log rows by action, status and outcome, most frequent first.
    pub by_outcome: Vec<OutcomeCount>,
    /// Final targets by the account that settled them.
    pub by_account: Vec<AccountTargetCount>,
    /// Log rows per UTC hour, oldest first.
    pub by_hour: Vec<HourCount>,
}

impl TaskStats {
    /// One order for both backends (their collations and NULL orders differ): most frequent first,
    /// ties by name; accounts by id; hours oldest first.
    pub(crate) fn sort(&mut self) {
        self.by_reason
            .sort_by(|a, b| (b.count, &a.status, &a.reason).cmp(&(a.count, &b.status, &b.reason)));
        self.by_outcome.sort_by(|a, b| {
            (b.count, &a.action, &a.status, &a.outcome).cmp(&(a.count, &b.action, &b.status, &b.outcome))
        });
        self.by_account
            .sort_by(|a, b| (&a.account_id, &a.status).cmp(&(&b.account_id, &b.status)));
        self.by_hour
            .sort_by(|a, b| (a.hour, &a.status).cmp(&(b.hour, &b.status)));
    }
}

/// A target as a report shows it: the target, what became of it, and who acted last.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetOutcome {
    pub target: Target,
    /// The settlement's `result` (`outcome`, `detail`, `account_id`), or `{"last": …}` for a target
    /// given back.
    pub result: Value,
    /// The account that settled it, else the one it is pinned to or leased by.
    pub account_id: Option<String>,
    /// When it was last touched.
    pub updated_at: DateTime<Utc>,
}
