//! A user's lifecycle moves — start, pause, resume, cancel — through one transition table, with the
//! checks a start needs (targets to work on, an account to work with, room under the running-task
//! limit) and the reason shown next to the status. A start that runs at once first imports the audience
//! its settings name in the Parsing Service (see [`super::audience`]).

use chrono::{DateTime, Utc};
use domain::{
    task::{Task, TaskStatus},
    UserId,
};
use store::{RequestMeta, Transition};

use super::{audience::AudienceError, events::Event, Engine};

/// Reasons start with this while a started task waits for its scheduled time; the scheduler starts
/// exactly those.
pub const SCHEDULED_PREFIX: &str = "scheduled for ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Start,
    Pause,
    Resume,
    Cancel,
}

impl Move {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "start" => Self::Start,
            "pause" => Self::Pause,
            "resume" => Self::Resume,
            "cancel" => Self::Cancel,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
        }
    }

    /// The statuses the move starts from (the transition table).
    pub fn from(self) -> &'static [TaskStatus] {
        match self {
            Self::Start => &[TaskStatus::Pending],
            Self::Pause => &[TaskStatus::InProgress],
            Self::Resume => &[TaskStatus::Paused],
            Self::Cancel => &[TaskStatus::Pending, TaskStatus::InProgress, TaskStatus::Paused],
        }
    }
}

/// Why a move was refused.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("task {0} not found")]
    NotFound(i64),
    #[error("{0}")]
    Conflict(String),
    /// The audience named by `settings.parsing_task_id` could not be imported.
    #[error(transparent)]
    Audience(AudienceError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl Engine {
    /// Applies a user's move; the task as it is afterwards.
    pub async fn apply_move(&self, user: UserId, id: i64, m: Move, meta: &RequestMeta) -> Result<Task, MoveError> {
        let task = self.store.get_task(user, id).await?.ok_or(MoveError::NotFound(id))?;
        let now = self.clock.now();
        if !m.from().contains(&task.status) {
            return Err(refused(m, task.status, task.status_reason.as_deref()));
        }
        let (to, reason) = match m {
            Move::Start => self.start_checks(user, &task, now, meta).await?,
            Move::Pause => (TaskStatus::Paused, Some("paused by user".to_owned())),
            Move::Resume => (TaskStatus::InProgress, None),
            Move::Cancel => (TaskStatus::Cancelled, Some("cancelled by user".to_owned())),
        };
        let moved = self
            .store
            .transition_task(user, id, m.from(), to, reason.as_deref(), m.as_str(), now, meta)
            .await?;
        match moved {
            Transition::Done(moved) => {
                self.metrics.task_moved(&task, moved.status, now);
                self.events.publish(Event::TaskChanged { task_id: id }).await;
                Ok(moved)
            }
            Transition::NotFound => Err(MoveError::NotFound(id)),
            Transition::Refused(status) => Err(refused(m, status, None)),
        }
    }

    /// Where a start leads (running now, or waiting for its scheduled time), or why it cannot start.
    /// An audience still awaited from the Parsing Service is imported here when the task runs at once,
    /// after every other check (the scheduler imports it for a scheduled start).
    async fn start_checks(
        &self,
        user: UserId,
        task: &Task,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<(TaskStatus, Option<String>), MoveError> {
        if task
            .status_reason
            .as_deref()
            .is_some_and(|r| r.starts_with(SCHEDULED_PREFIX))
        {
            return Err(MoveError::Conflict(format!(
                "task {} is already started and {}",
                task.id,
                task.status_reason.as_deref().unwrap_or_default()
            )));
        }
        let awaited = self.awaited_audience(task).await?;
        let counts = self.store.target_counts(task.id, now).await?;
        if counts.open() == 0 && awaited.is_none() {
            return Err(MoveError::Conflict(format!(
                "task {} has no targets to work on: import an audience first",
                task.id
            )));
        }
        let usable = super::scheduler::usable_accounts(self, user, task).await?;
        if usable.is_empty() {
            return Err(MoveError::Conflict(format!(
                "task {} has no usable {} account: register one (a sandbox account works for trying)",
                task.id, task.spec.platform
            )));
        }
        let running = self.store.count_running_tasks(user).await?;
        if running >= self.config.max_running_tasks {
            return Err(MoveError::Conflict(format!(
                "{running} tasks are already running or paused, the most one user may have is {}",
                self.config.max_running_tasks
            )));
        }
        if let Some(at) = task.spec.scheduled_start.filter(|at| *at > now) {
            return Ok((
                TaskStatus::Pending,
                Some(format!("{SCHEDULED_PREFIX}{}", at.to_rfc3339())),
            ));
        }
        if let Some(parsing_task_id) = awaited {
            let loaded = self.import_audience(task, &parsing_task_id, meta).await.map_err(|e| {
                tracing::warn!(
                    task_id = task.id,
                    parsing_task_id,
                    error = %e,
                    "start refused: the audience could not be imported from the Parsing Service"
                );
                MoveError::Audience(e)
            })?;
            if loaded.report.stored == 0 && self.store.target_counts(task.id, now).await?.open() == 0 {
                return Err(MoveError::Conflict(format!(
                    "task {} has no targets to work on: parsing task {parsing_task_id} gave none that could be used \
                     (its report: GET /import/validate?task_id={})",
                    task.id, task.id
                )));
            }
        }
        Ok((TaskStatus::InProgress, None))
    }
}

fn refused(m: Move, status: TaskStatus, reason: Option<&str>) -> MoveError {
    let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
    MoveError::Conflict(format!(
        "cannot {} a task that is {}{why}; {} needs it {}",
        m.as_str(),
        status.as_str(),
        m.as_str(),
        m.from().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_table() {
        use TaskStatus::*;
        let allowed = |m: Move, s: TaskStatus| m.from().contains(&s);
        assert!(allowed(Move::Start, Pending));
        assert!(!allowed(Move::Start, Paused) && !allowed(Move::Start, Completed));
        assert!(allowed(Move::Pause, InProgress) && !allowed(Move::Pause, Pending));
        assert!(allowed(Move::Resume, Paused) && !allowed(Move::Resume, InProgress));
        for s in [Pending, InProgress, Paused] {
            assert!(allowed(Move::Cancel, s));
        }
        for s in [Completed, Failed, Cancelled] {
            for m in [Move::Start, Move::Pause, Move::Resume, Move::Cancel] {
                assert!(!allowed(m, s), "{m:?} from {s:?}");
            }
        }
        let e = refused(Move::Resume, InProgress, None).to_string();
        assert!(e.contains("IN_PROGRESS") && e.contains("PAUSED"), "{e}");
    }
}
