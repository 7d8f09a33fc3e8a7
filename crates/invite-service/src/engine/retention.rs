//! Retention: execution-log rows older than the retention period go, a batch per transaction, so a
//! large backlog never holds a long lock. Only the log: targets keep their outcomes (the reports
//! read them) and the Account Manager's ledger is not the log — a spent budget stays spent.
//!
//! The scheduler's loop queues the `cleanup_completed_tasks` job at most once per interval while its
//! process leads; any worker runs it. Running it twice, or in two workers at once, is harmless.

use chrono::{DateTime, Utc};
use domain::task::Priority;

use super::{queue::Job, Engine};

/// Deletes the log rows older than the retention period, batch by batch; returns how many.
pub async fn cleanup(e: &Engine) -> anyhow::Result<u64> {
    let before = e.clock.now() - e.config.log_retention;
    let batch = e.config.retention_batch.max(1);
    let mut deleted = 0;
    loop {
        let n = e.store.delete_logs_before(before, batch).await?;
        deleted += n;
        if n < batch as u64 {
            break;
        }
        // Other jobs and requests get the database between batches.
        tokio::task::yield_now().await;
    }
    tracing::info!(
        deleted,
        before = %before.to_rfc3339(),
        "retention: execution-log rows older than the retention period deleted"
    );
    Ok(deleted)
}

/// Queues the cleanup once per interval (from the engine's clock).
#[derive(Debug, Default)]
pub struct Publisher {
    last: Option<DateTime<Utc>>,
}

impl Publisher {
    /// Queues the job when it has not been queued within the interval (a failed publish is tried
    /// again on the next call).
    pub async fn maybe_publish(&mut self, e: &Engine) {
        let now = e.clock.now();
        if self.last.is_some_and(|last| now - last < e.config.retention_interval) {
            return;
        }
        match e.queue.publish(&Job::CleanupCompletedTasks, Priority::Low).await {
            Ok(()) => {
                self.last = Some(now);
                tracing::info!("retention: cleanup queued");
            }
            Err(err) => tracing::warn!(error = %err, "retention: could not queue the cleanup; trying again later"),
        }
    }
}
