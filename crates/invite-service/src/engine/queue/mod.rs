//! The work queues: what is due now, by priority. The scheduler owns ordering and delays; a queue only
//! carries jobs to workers. In-process for standalone ([`memory`]), RabbitMQ for the platform
//! ([`rabbitmq`]); the same interface for both, so the engine cannot tell them apart.

pub mod memory;
pub mod rabbitmq;

use async_trait::async_trait;
use domain::task::Priority;
use serde::{Deserialize, Serialize};

/// The job kinds, named after the spec's Celery tasks. Jobs are short-lived messages, so the size
/// difference between kinds does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// A task was started or resumed: look its channel up with each account.
    ExecuteInviteTask { task_id: i64 },
    /// One claimed target for one leased account: the platform calls of one action.
    ProcessTargetBatch {
        task_id: i64,
        target_id: i64,
        /// Who the target is, as stored when it was claimed.
        target: TargetData,
        account_id: String,
        /// The target's claim epoch: a stale copy of the job (a redelivery) finds it changed and does nothing.
        epoch: i64,
        /// Tries of this target so far.
        attempts: i64,
        /// The account lease's epoch, given back when the job ends.
        lease_epoch: i64,
    },
    /// An account's rest has ended: the scheduler looks again.
    ReactivateAccountAfterCooldown { account_id: String },
    /// Retention: old execution logs go.
    CleanupCompletedTasks,
}

/// A target's identifiers and the data its message template may use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetData {
    pub username: Option<String>,
    pub user_id: Option<i64>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The other columns of the target's row (template values).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Job {
    pub fn name(&self) -> &'static str {
        match self {
            Job::ExecuteInviteTask { .. } => "execute_invite_task",
            Job::ProcessTargetBatch { .. } => "process_target_batch",
            Job::ReactivateAccountAfterCooldown { .. } => "reactivate_account_after_cooldown",
            Job::CleanupCompletedTasks => "cleanup_completed_tasks",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
    #[error("the queue is closed")]
    Closed,
}

/// A job taken from a queue; it stays owned by this worker until acknowledged. A job that is never
/// acknowledged (the worker died) is delivered again — workers make that a no-op.
#[async_trait]
pub trait Delivery: Send {
    fn job(&self) -> &Job;
    /// The job's outcome is committed: the queue may forget it.
    async fn ack(self: Box<Self>) -> Result<(), QueueError>;
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Publishes a job on its priority's queue; returns once the queue holds it (publisher confirms).
    async fn publish(&self, job: &Job, priority: Priority) -> Result<(), QueueError>;

    /// The next job, HIGH before NORMAL before LOW when several are waiting.
    async fn next(&self) -> Result<Box<dyn Delivery>, QueueError>;

    /// Jobs waiting, per priority (for metrics).
    async fn depth(&self) -> Result<[(Priority, u64); 3], QueueError>;
}

/// The queue names of the platform profile, by priority.
pub fn queue_name(priority: Priority) -> &'static str {
    match priority {
        Priority::High => "invite-high-priority",
        Priority::Normal => "invite-normal",
        Priority::Low => "invite-low",
    }
}

pub const PRIORITIES: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];
