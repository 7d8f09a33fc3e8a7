//! The campaign engine's store on PostgreSQL. Every move is one conditional statement (a lifecycle move
//! checks the status it starts from, a settlement the claim's epoch), and every change with more than
//! one row is one transaction. Claims take the next due target with `FOR UPDATE SKIP LOCKED`, so
//! claims from any number of schedulers and processes never hand one target out twice and never wait
//! for each other.
//!
//! Locks are taken in one order: a target's row before its task's (settlements and `end_open_targets`
//! count into the task after changing the targets; deleting a task locks its targets first). A roster
//! write (a channel found, an account excluded) locks the tasks it versions before its
//! `invite_task_accounts` row, and only `FOR NO KEY UPDATE`, which the row's foreign-key check
//! (`FOR KEY SHARE` on the task) does not conflict with.

use chrono::{DateTime, Utc};
use domain::{
    audience::TargetStatus,
    task::{Task, TaskStatus, UserId},
};
use serde_json::{json, Value};
use sqlx::{postgres::PgRow, PgConnection, Row};

use super::{
    audience::{target_from_row, TARGET_COLUMNS},
    task_from_row, PgStore, TASK_COLUMNS,
};
use crate::{
    engine::{Claim, NewLog, Settlement, TargetCounts, TaskAccount, TaskVersions, Transition, ENGINE_TASKS},
    error::{Result, StoreError},
    model::{audit_action, counter_column, RequestMeta},
    task_object,
};

/// Rows per UNNEST insert of log rows.
const LOG_CHUNK: usize = 2_000;

fn claim_from_row(row: &PgRow) -> Result<Claim> {
    let target = target_from_row(row)?;
    Ok(Claim {
        epoch: row.try_get("lease_epoch")?,
        attempts: target.attempts,
        pinned_account: row.try_get("pinned_account")?,
        target,
    })
}

fn task_account_from_row(row: &PgRow) -> Result<TaskAccount> {
    Ok(TaskAccount {
        account_id: row.try_get("account_id")?,
        platform: row.try_get("platform")?,
        status: row.try_get("status")?,
        channel: row.try_get("channel")?,
        stats: row.try_get("stats")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

fn final_status(status: TargetStatus, what: &str) -> Result<&'static str> {
    counter_column(status).ok_or_else(|| StoreError::Refused(format!("{what}: {status} is not a final status")))
}

fn statuses(from: &[TaskStatus]) -> Vec<String> {
    from.iter().map(|s| s.as_str().to_string()).collect()
}

impl PgStore {
    /// The one conditional update of a lifecycle move (of the user's task when `user` is given); the
    /// task as updated, or `None` when it is not there or not in one of `from`.
    async fn move_task(
        conn: &mut PgConnection,
        id: i64,
        user: Option<UserId>,
        from: &[TaskStatus],
        to: TaskStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>> {
        let sql = format!(
            "UPDATE invite_tasks SET status = $1::taskstatus, status_reason = $2, version = version + 1, \
             updated_at = $3, started_at = CASE WHEN $4 THEN COALESCE(started_at, $3) ELSE started_at END, \
             finished_at = CASE WHEN $5 THEN $3 ELSE finished_at END \
             WHERE id = $6 AND ($7::BIGINT IS NULL OR user_id = $7) AND status::text = ANY($8) \
             RETURNING {TASK_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(to.as_str())
            .bind(reason)
            .bind(now)
            .bind(to == TaskStatus::InProgress)
            .bind(to.is_finished())
            .bind(id)
            .bind(user.map(UserId::get))
            .bind(statuses(from))
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn insert_logs(conn: &mut PgConnection, task_id: i64, logs: &[NewLog], now: DateTime<Utc>) -> Result<()> {
        for chunk in logs.chunks(LOG_CHUNK) {
            let text = |f: fn(&NewLog) -> &str| chunk.iter().map(|l| f(l).to_string()).collect::<Vec<_>>();
            sqlx::query(
                "INSERT INTO invite_execution_logs (task_id, target_id, account_id, action, status, details, \
                 created_at) \
                 SELECT $1, u.t, u.a, u.c, u.s::executionstatus, u.d, $2 \
                 FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[], $7::jsonb[]) AS u(t, a, c, s, d)",
            )
            .bind(task_id)
            .bind(now)
            .bind(chunk.iter().map(|l| l.target_id).collect::<Vec<_>>())
            .bind(text(|l| &l.account_id))
            .bind(text(|l| &l.action))
            .bind(text(|l| &l.status))
            .bind(chunk.iter().map(|l| l.details.clone()).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Counts `n` more targets ended with `status` into the task's counters.
    async fn count_into_task(
        conn: &mut PgConnection,
        task_id: i64,
        column: &str,
        n: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = format!(
            "UPDATE invite_tasks SET {column} = {column} + $1, version = version + 1, updated_at = $2 WHERE id = $3"
        );
        sqlx::query(&sql)
            .bind(n)
            .bind(now)
            .bind(task_id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn transition_task_impl(
        &self,
        user: UserId,
        id: i64,
        from: &[TaskStatus],
        to: TaskStatus,
        reason: Option<&str>,
        action: &str,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<Transition> {
        let audit = audit_action::user_move(action)
            .ok_or_else(|| StoreError::Refused(format!("unknown lifecycle action {action:?}")))?;
        let mut tx = self.pool.begin().await?;
        let Some(task) = Self::move_task(&mut tx, id, Some(user), from, to, reason, now).await? else {
            return Ok(match Self::task_status(&mut tx, user, id).await? {
                Some(status) => Transition::Refused(status),
                None => Transition::NotFound,
            });
        };
        let details = json!({ "status": to.as_str(), "reason": reason });
        Self::insert_audit(&mut tx, user, audit, task_object(id), details, now, meta).await?;
        tx.commit().await?;
        Ok(Transition::Done(task))
    }

    pub(super) async fn engine_transition_impl(
        &self,
        task_id: i64,
        from: &[TaskStatus],
        to: TaskStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let Some(task) = Self::move_task(&mut tx, task_id, None, from, to, reason, now).await? else {
            return Ok(false);
        };
        let meta = RequestMeta {
            request_id: audit_action::SYSTEM_REQUEST_ID.to_string(),
            client_addr: None,
        };
        let details = json!({ "status": to.as_str(), "reason": reason, "by": "engine" });
        let action = audit_action::engine_move(from, to);
        Self::insert_audit(&mut tx, task.user_id, action, task_object(task_id), details, now, &meta).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn set_task_reason_impl(
        &self,
        task_id: i64,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE invite_tasks SET status_reason = $1, version = version + 1, updated_at = $2 \
             WHERE id = $3 AND status = 'IN_PROGRESS' AND status_reason IS DISTINCT FROM $1",
        )
        .bind(reason)
        .bind(now)
        .bind(task_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn count_running_tasks_impl(&self, user: UserId) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM invite_tasks WHERE user_id = $1 AND status IN ('IN_PROGRESS', 'PAUSED')",
        )
        .bind(user.get())
        .fetch_one(&self.pool)
        .await?)
    }

    pub(super) async fn count_tasks_in_progress_impl(&self) -> Result<Vec<(String, i64)>> {
        let sql = "SELECT platform, COUNT(*) FROM invite_tasks WHERE status = 'IN_PROGRESS' GROUP BY platform";
        Ok(sqlx::query_as(sql).fetch_all(&self.pool).await?)
    }

    pub(super) async fn engine_tasks_impl(&self) -> Result<Vec<Task>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM invite_tasks WHERE {ENGINE_TASKS} ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(task_from_row).collect()
    }

    pub(super) async fn engine_task_versions_impl(&self) -> Result<Vec<TaskVersions>> {
        let sql = format!("SELECT id, version, roster_version FROM invite_tasks WHERE {ENGINE_TASKS} ORDER BY id");
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|(id, version, roster_version)| TaskVersions {
                id,
                version,
                roster_version,
            })
            .collect())
    }

    pub(super) async fn engine_task_impl(&self, task_id: i64) -> Result<Option<Task>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM invite_tasks WHERE id = $1");
        let row = sqlx::query(&sql).bind(task_id).fetch_optional(&self.pool).await?;
        row.as_ref().map(task_from_row).transpose()
    }

    pub(super) async fn target_counts_impl(&self, task_id: i64, now: DateTime<Utc>) -> Result<TargetCounts> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n, \
                    SUM(CASE WHEN next_attempt_at IS NULL OR next_attempt_at <= $2 THEN 1 ELSE 0 END) AS due, \
                    MIN(CASE WHEN next_attempt_at > $2 THEN next_attempt_at END) AS next_due \
             FROM invite_targets WHERE task_id = $1 GROUP BY status",
        )
        .bind(task_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = TargetCounts::default();
        for row in &rows {
            let status: String = row.try_get("status")?;
            let n: i64 = row.try_get("n")?;
            let slot = match TargetStatus::parse(&status) {
                Some(TargetStatus::Pending) => {
                    let due: i64 = row.try_get("due")?;
                    counts.due = due;
                    counts.waiting = n - due;
                    counts.next_due_at = row.try_get("next_due")?;
                    continue;
                }
                Some(TargetStatus::InProgress) => &mut counts.in_progress,
                Some(TargetStatus::Succeeded) => &mut counts.succeeded,
                Some(TargetStatus::AlreadyDone) => &mut counts.already_done,
                Some(TargetStatus::Failed) => &mut counts.failed,
                Some(TargetStatus::Skipped) => &mut counts.skipped,
                Some(TargetStatus::Unknown) => &mut counts.unknown,
                None => return Err(StoreError::Corrupt(format!("task {task_id}: target status {status:?}"))),
            };
            *slot = n;
        }
        Ok(counts)
    }

    pub(super) async fn claim_target_impl(
        &self,
        task_id: i64,
        account_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Claim>> {
        // One statement: the claim, and the account's last use for the task when it has a row there.
        let sql = format!(
            "WITH claimed AS ( \
                 UPDATE invite_targets SET status = 'in_progress', lease_account = $2, lease_until = $4, \
                        lease_epoch = lease_epoch + 1, updated_at = $3 \
                 WHERE id = (SELECT id FROM invite_targets \
                             WHERE task_id = $1 AND status = 'pending' \
                               AND (next_attempt_at IS NULL OR next_attempt_at <= $3) \
                               AND (pinned_account IS NULL OR pinned_account = $2) \
                             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                   AND status = 'pending' \
                 RETURNING {TARGET_COLUMNS}, lease_epoch, pinned_account), \
             touched AS ( \
                 UPDATE invite_task_accounts SET last_used_at = $3 \
                 WHERE task_id = $1 AND account_id = $2 AND EXISTS (SELECT 1 FROM claimed)) \
             SELECT * FROM claimed"
        );
        let row = sqlx::query(&sql)
            .bind(task_id)
            .bind(account_id)
            .bind(now)
            .bind(lease_until)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(claim_from_row).transpose()
    }

    pub(super) async fn reclaim_expired_targets_impl(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE invite_targets SET status = 'pending', lease_account = NULL, lease_until = NULL, updated_at = $1 \
             WHERE status = 'in_progress' AND lease_until < $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn settle_target_impl(&self, s: &Settlement) -> Result<bool> {
        let counter = match s.status {
            TargetStatus::Pending => None,
            status => Some(final_status(status, "settle_target")?),
        };
        let mut tx = self.pool.begin().await?;
        let settled = match counter {
            Some(_) => sqlx::query(
                "UPDATE invite_targets SET status = $1, reason = $2, result = $3, processed_at = $4, updated_at = $4, \
                 lease_account = NULL, lease_until = NULL, next_attempt_at = NULL, \
                 attempts = attempts + CASE WHEN $5 THEN 1 ELSE 0 END \
                 WHERE id = $6 AND task_id = $7 AND lease_epoch = $8 AND status = 'in_progress'",
            ),
            None => sqlx::query(
                "UPDATE invite_targets SET status = $1, reason = $2, result = $3, updated_at = $4, \
                 lease_account = NULL, lease_until = NULL, next_attempt_at = $9, pinned_account = $10, \
                 attempts = attempts + CASE WHEN $5 THEN 1 ELSE 0 END \
                 WHERE id = $6 AND task_id = $7 AND lease_epoch = $8 AND status = 'in_progress'",
            ),
        };
        let mut settled = settled
            .bind(s.status.as_str())
            .bind(&s.reason)
            .bind(&s.result)
            .bind(s.now)
            .bind(s.count_attempt)
            .bind(s.target_id)
            .bind(s.task_id)
            .bind(s.epoch);
        if counter.is_none() {
            settled = settled.bind(s.next_attempt_at).bind(&s.pin_account);
        }
        if settled.execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        match counter {
            Some(column) => Self::count_into_task(&mut tx, s.task_id, column, 1, s.now).await?,
            // A target back in the pool changes what the task has to do: the version says so.
            None => {
                sqlx::query("UPDATE invite_tasks SET version = version + 1 WHERE id = $1")
                    .bind(s.task_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Self::insert_logs(&mut tx, s.task_id, &s.logs, s.now).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn end_open_targets_impl(
        &self,
        task_id: i64,
        status: TargetStatus,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let column = final_status(status, "end_open_targets")?;
        let mut tx = self.pool.begin().await?;
        let ended = sqlx::query(
            "UPDATE invite_targets SET status = $1, reason = $2, processed_at = $3, updated_at = $3, \
             next_attempt_at = NULL WHERE task_id = $4 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(now)
        .bind(task_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if ended > 0 {
            Self::count_into_task(&mut tx, task_id, column, ended as i64, now).await?;
        }
        tx.commit().await?;
        Ok(ended)
    }

    pub(super) async fn hold_claim_impl(
        &self,
        task_id: i64,
        target_id: i64,
        epoch: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Option<String>>> {
        Ok(sqlx::query_scalar::<_, Option<String>>(
            "UPDATE invite_targets SET lease_until = GREATEST(lease_until, $5) \
             WHERE id = $1 AND task_id = $2 AND lease_epoch = $3 AND status = 'in_progress' AND lease_until >= $4 \
             RETURNING pinned_account",
        )
        .bind(target_id)
        .bind(task_id)
        .bind(epoch)
        .bind(now)
        .bind(until)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub(super) async fn pin_target_impl(
        &self,
        task_id: i64,
        target_id: i64,
        epoch: i64,
        account_id: &str,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE invite_targets SET pinned_account = $1 WHERE id = $2 AND task_id = $3 \
             AND lease_epoch = $4 AND status = 'in_progress'",
        )
        .bind(account_id)
        .bind(target_id)
        .bind(task_id)
        .bind(epoch)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    pub(super) async fn end_orphaned_pins_impl(
        &self,
        task_id: i64,
        usable: &[String],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let column = final_status(TargetStatus::Unknown, "end_orphaned_pins")?;
        let mut tx = self.pool.begin().await?;
        let ended = sqlx::query(
            "UPDATE invite_targets SET status = 'unknown', reason = $1, processed_at = $2, updated_at = $2, \
             next_attempt_at = NULL WHERE task_id = $3 AND status = 'pending' AND pinned_account IS NOT NULL \
             AND NOT (pinned_account = ANY($4))",
        )
        .bind(reason)
        .bind(now)
        .bind(task_id)
        .bind(usable)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if ended > 0 {
            Self::count_into_task(&mut tx, task_id, column, ended as i64, now).await?;
        }
        tx.commit().await?;
        Ok(ended)
    }

    pub(super) async fn append_logs_impl(&self, task_id: i64, logs: &[NewLog], now: DateTime<Utc>) -> Result<()> {
        if logs.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        Self::insert_logs(&mut tx, task_id, logs, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn recent_outcomes_impl(&self, task_id: i64, n: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT details->>'outcome' FROM invite_execution_logs \
             WHERE task_id = $1 AND action IN ('invite', 'message') AND details->>'outcome' IS NOT NULL \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(task_id)
        .bind(n.max(0))
        .fetch_all(&self.pool)
        .await?)
    }

    pub(super) async fn remember_task_channel_impl(
        &self,
        task_id: i64,
        account_id: &str,
        platform: &str,
        channel: &Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // Who knows a channel is read across the tasks that share it, so all their roster versions move.
        // Their rows are locked first, in id order, and only as strongly as an update of non-key columns
        // needs (`FOR NO KEY UPDATE`): the row inserted below takes `FOR KEY SHARE` on its task (the
        // foreign key), which `FOR UPDATE` would conflict with — two workers remembering the same task's
        // channel would each hold the share the other's update waits for, a deadlock.
        sqlx::query(
            "UPDATE invite_tasks SET roster_version = roster_version + 1 WHERE id IN \
             (SELECT id FROM invite_tasks \
              WHERE id = $1 OR target_channel = (SELECT target_channel FROM invite_tasks WHERE id = $1) \
              ORDER BY id FOR NO KEY UPDATE)",
        )
        .bind(task_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO invite_task_accounts (task_id, account_id, platform, status, channel, stats, updated_at) \
             VALUES ($1, $2, $3, 'active', $4, '{}'::jsonb, $5) \
             ON CONFLICT (task_id, account_id) DO UPDATE SET channel = excluded.channel, \
             updated_at = excluded.updated_at",
        )
        .bind(task_id)
        .bind(account_id)
        .bind(platform)
        .bind(channel)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn exclude_task_account_impl(
        &self,
        task_id: i64,
        account_id: &str,
        platform: &str,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // The task first, as every write of a roster does (see remember_task_channel).
        sqlx::query("UPDATE invite_tasks SET roster_version = roster_version + 1 WHERE id = $1")
            .bind(task_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO invite_task_accounts (task_id, account_id, platform, status, stats, updated_at) \
             VALUES ($1, $2, $3, 'excluded', jsonb_build_object('excluded_because', $4::text), $5) \
             ON CONFLICT (task_id, account_id) DO UPDATE SET status = 'excluded', \
             stats = jsonb_set(invite_task_accounts.stats, '{excluded_because}', to_jsonb($4::text)), \
             updated_at = excluded.updated_at",
        )
        .bind(task_id)
        .bind(account_id)
        .bind(platform)
        .bind(why)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn count_task_account_use_impl(
        &self,
        task_id: i64,
        account_id: &str,
        platform: &str,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO invite_task_accounts (task_id, account_id, platform, status, stats, updated_at) \
             VALUES ($1, $2, $3, 'active', \
                     jsonb_build_object('actions', 1, 'outcomes', jsonb_build_object($4::text, 1)), $5) \
             ON CONFLICT (task_id, account_id) DO UPDATE SET \
             stats = invite_task_accounts.stats \
               || jsonb_build_object('actions', COALESCE((invite_task_accounts.stats->>'actions')::bigint, 0) + 1) \
               || jsonb_build_object('outcomes', COALESCE(invite_task_accounts.stats->'outcomes', '{}'::jsonb) \
                  || jsonb_build_object($4::text, \
                       COALESCE((invite_task_accounts.stats->'outcomes'->>$4::text)::bigint, 0) + 1))",
        )
        .bind(task_id)
        .bind(account_id)
        .bind(platform)
        .bind(outcome)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn task_accounts_impl(&self, task_id: i64) -> Result<Vec<TaskAccount>> {
        let rows = sqlx::query(
            "SELECT account_id, platform, status, channel, stats, last_used_at FROM invite_task_accounts \
             WHERE task_id = $1 ORDER BY id",
        )
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_account_from_row).collect()
    }

    pub(super) async fn known_channel_impl(&self, account_id: &str, target_channel: &str) -> Result<Option<Value>> {
        Ok(sqlx::query_scalar(
            "SELECT a.channel FROM invite_task_accounts a JOIN invite_tasks t ON t.id = a.task_id \
             WHERE a.account_id = $1 AND t.target_channel = $2 AND a.channel IS NOT NULL \
             ORDER BY a.updated_at DESC LIMIT 1",
        )
        .bind(account_id)
        .bind(target_channel)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub(super) async fn excluded_accounts_impl(&self, task_id: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT ARRAY(SELECT account_id FROM invite_task_accounts WHERE task_id = $1 AND status = 'excluded')",
        )
        .bind(task_id)
        .fetch_one(&self.pool)
        .await?)
    }

    pub(super) async fn channel_knowers_impl(&self, target_channel: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT ARRAY(SELECT DISTINCT a.account_id FROM invite_task_accounts a \
                          JOIN invite_tasks t ON t.id = a.task_id \
                          WHERE t.target_channel = $1 AND a.channel IS NOT NULL)",
        )
        .bind(target_channel)
        .fetch_one(&self.pool)
        .await?)
    }

    pub(super) async fn on_do_not_contact_impl(&self, user: UserId, keys: &[String]) -> Result<bool> {
        if keys.is_empty() {
            return Ok(false);
        }
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM do_not_contact WHERE user_id = $1 AND key = ANY($2))")
                .bind(user.get())
                .bind(keys)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
