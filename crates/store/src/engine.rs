//! What the store keeps for the campaign engine: task lifecycle moves, target claims under expiring
//! leases with an epoch, settlements that end or reschedule a claimed target together with its
//! execution log and the task's counters, and the accounts serving each task.
//!
//! Every change a crashed worker could leave half-done is one transaction, and every claim is a
//! conditional update (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on SQLite), so two
//! schedulers overlapping for a moment cannot hand one target to two accounts.

use chrono::{DateTime, Utc};
use domain::{
    audience::{Target, TargetStatus},
    task::{Task, TaskStatus},
};
use serde_json::Value;

/// The answer of a lifecycle move.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per user request: the copy costs nothing next to the database
pub enum Transition {
    Done(Task),
    NotFound,
    /// The task is not in a status the move starts from; this is its status.
    Refused(TaskStatus),
}

/// A target handed to one account, with the epoch that proves the claim is still this one.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub target: Target,
    pub epoch: i64,
    pub attempts: i64,
    /// A personal message whose outcome is unknown may be retried only by this account.
    pub pinned_account: Option<String>,
}

/// How many of a task's targets are where, for scheduling and completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetCounts {
    /// Pending and due now (`next_attempt_at` empty or passed).
    pub due: i64,
    /// Pending but not before `next_due_at`.
    pub waiting: i64,
    pub next_due_at: Option<DateTime<Utc>>,
    pub in_progress: i64,
    pub succeeded: i64,
    pub already_done: i64,
    pub failed: i64,
    pub skipped: i64,
    pub unknown: i64,
}

impl TargetCounts {
    pub fn open(&self) -> i64 {
        self.due + self.waiting + self.in_progress
    }

    pub fn total(&self) -> i64 {
        self.open() + self.succeeded + self.already_done + self.failed + self.skipped + self.unknown
    }
}

/// One row of a task's execution log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLog {
    pub target_id: Option<i64>,
    pub account_id: String,
    /// What was done: `channel_lookup`, `resolve_username`, `invite`, `message`, `do_not_contact`, …
    pub action: String,
    /// The spec's `executionstatus`: `PENDING`, `SUCCESS`, `FAILED`, `SKIPPED`.
    pub status: String,
    pub details: Value,
}

/// What became of a claimed target, written only while the claim's epoch is still current.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    pub task_id: i64,
    pub target_id: i64,
    pub epoch: i64,
    pub now: DateTime<Utc>,
    /// A final status, or `Pending` to give the target back.
    pub status: TargetStatus,
    pub reason: Option<String>,
    /// For `Pending`: not before then.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// For `Pending`: only this account may take it again (an unknown message outcome).
    pub pin_account: Option<String>,
    /// This try counts towards the target's attempt limit.
    pub count_attempt: bool,
    pub result: Value,
    pub logs: Vec<NewLog>,
}

/// Which tasks the scheduler looks after (`engine_tasks`): running ones, and pending ones that start
/// by themselves.
pub(crate) const ENGINE_TASKS: &str = "status = 'IN_PROGRESS' OR (status = 'PENDING' AND scheduled_start IS NOT NULL)";

/// A task's versions: `version` moves with every write of the task; `roster_version` when an account
/// is excluded from it or finds its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskVersions {
    pub id: i64,
    pub version: i64,
    pub roster_version: i64,
}

/// An account serving a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskAccount {
    pub account_id: String,
    pub platform: String,
    /// `active`, or `excluded` (may not invite there, gone, blocked) with the reason in `stats`.
    pub status: String,
    /// What this account found of the task's channel (kind, id, access hash, title, rights), if it looked.
    pub channel: Option<Value>,
    /// Counts of outcomes by this account for this task, and notes.
    pub stats: Value,
    pub last_used_at: Option<DateTime<Utc>>,
}
