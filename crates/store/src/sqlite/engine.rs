//! The campaign engine's store on SQLite. Writes go through the single writer connection, and every
//! write of more than one statement is one `BEGIN IMMEDIATE` transaction: it takes SQLite's write lock
//! before its first statement (waiting out the busy timeout), so processes sharing the file take turns
//! and no transaction ever writes on a stale read. A claim is one `UPDATE … WHERE id = (SELECT …)`
//! statement inside such a transaction, so two schedulers never hand one target out twice.

use chrono::{DateTime, Utc};
use domain::{
    audience::TargetStatus,
    task::{Task, TaskStatus, UserId},
};
use serde_json::{json, Value};
use sqlx::{sqlite::SqliteRow, QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{
    audience::{target_from_row, TARGET_COLUMNS},
    micros, opt_from_micros, task_from_row, tasks_from_json, tasks_json_array, SqliteStore, TASK_COLUMNS,
};
use crate::{
    engine::{Claim, NewLog, Settlement, TargetCounts, TaskAccount, TaskVersions, Transition, ENGINE_TASKS},
    error::{Result, StoreError},
    model::{audit_action, counter_column, RequestMeta},
    task_object, INSERT_CHUNK,
};

/// Account ids handed over as one JSON array (one row instead of a row each).
fn ids_from_json(list: Option<&str>) -> Result<Vec<String>> {
    serde_json::from_str(list.unwrap_or("[]")).map_err(|e| StoreError::Corrupt(format!("account ids: {e}")))
}

fn claim_from_row(row: &SqliteRow) -> Result<Claim> {
    let target = target_from_row(row)?;
    Ok(Claim {
        epoch: row.try_get("lease_epoch")?,
        attempts: target.attempts,
        pinned_account: row.try_get("pinned_account")?,
        target,
    })
}

fn json_column(row: &SqliteRow, column: &str) -> Result<Option<Value>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("{column}: {e}"))))
        .transpose()
}

fn task_account_from_row(row: &SqliteRow) -> Result<TaskAccount> {
    Ok(TaskAccount {
        account_id: row.try_get("account_id")?,
        platform: row.try_get("platform")?,
        status: row.try_get("status")?,
        channel: json_column(row, "channel")?,
        stats: json_column(row, "stats")?.unwrap_or_else(|| json!({})),
        last_used_at: opt_from_micros(row.try_get("last_used_at")?)?,
    })
}

fn final_status(status: TargetStatus, what: &str) -> Result<&'static str> {
    counter_column(status).ok_or_else(|| StoreError::Refused(format!("{what}: {status} is not a final status")))
}

impl SqliteStore {
    /// The one conditional update of a lifecycle move (of the user's task when `user` is given); the
    /// task as updated, or `None` when it is not there or not in one of `from`.
    async fn move_task(
        conn: &mut SqliteConnection,
        id: i64,
        user: Option<UserId>,
        from: &[TaskStatus],
        to: TaskStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>> {
        let mut update = QueryBuilder::<Sqlite>::new("UPDATE invite_tasks SET status = ");
        update
            .push_bind(to.as_str())
            .push(", status_reason = ")
            .push_bind(reason)
            .push(", version = version + 1, updated_at = ")
            .push_bind(micros(now));
        if to == TaskStatus::InProgress {
            update
                .push(", started_at = COALESCE(started_at, ")
                .push_bind(micros(now))
                .push(")");
        }
        if to.is_finished() {
            update.push(", finished_at = ").push_bind(micros(now));
        }
        update.push(" WHERE id = ").push_bind(id);
        if let Some(user) = user {
            update.push(" AND user_id = ").push_bind(user.get());
        }
        update.push(" AND status IN (");
        let mut list = update.separated(", ");
        for s in from {
            list.push_bind(s.as_str());
        }
        update.push(format!(") RETURNING {TASK_COLUMNS}"));
        let row = update.build().fetch_optional(&mut *conn).await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn insert_logs(conn: &mut SqliteConnection, task_id: i64, logs: &[NewLog], now: DateTime<Utc>) -> Result<()> {
        // 7 parameters a row, well under SQLite's bound.
        for chunk in logs.chunks(INSERT_CHUNK) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO invite_execution_logs (task_id, target_id, account_id, action, status, details, \
                 created_at) ",
            );
            insert.push_values(chunk, |mut b, l| {
                b.push_bind(task_id)
                    .push_bind(l.target_id)
                    .push_bind(&l.account_id)
                    .push_bind(&l.action)
                    .push_bind(&l.status)
                    .push_bind(l.details.to_string())
                    .push_bind(micros(now));
            });
            insert.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Counts `n` more targets ended into the task's counter `column`.
    async fn count_into_task(
        conn: &mut SqliteConnection,
        task_id: i64,
        column: &str,
        n: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = format!(
            "UPDATE invite_tasks SET {column} = {column} + ?, version = version + 1, updated_at = ? WHERE id = ?"
        );
        sqlx::query(&sql)
            .bind(n)
            .bind(micros(now))
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
            "UPDATE invite_tasks SET status_reason = ?1, version = version + 1, updated_at = ?2 \
             WHERE id = ?3 AND status = 'IN_PROGRESS' AND status_reason IS NOT ?1",
        )
        .bind(reason)
        .bind(micros(now))
        .bind(task_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(super) async fn count_running_tasks_impl(&self, user: UserId) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM invite_tasks WHERE user_id = ? AND status IN ('IN_PROGRESS', 'PAUSED')",
        )
        .bind(user.get())
        .fetch_one(&self.reader)
        .await?)
    }

    pub(super) async fn count_tasks_in_progress_impl(&self) -> Result<Vec<(String, i64)>> {
        let sql = "SELECT platform, COUNT(*) FROM invite_tasks WHERE status = 'IN_PROGRESS' GROUP BY platform";
        Ok(sqlx::query_as(sql).fetch_all(&self.reader).await?)
    }

    pub(super) async fn engine_tasks_impl(&self) -> Result<Vec<Task>> {
        let sql = format!("SELECT {} FROM invite_tasks WHERE {ENGINE_TASKS}", tasks_json_array());
        let rows: Option<String> = sqlx::query_scalar(&sql).fetch_one(&self.reader).await?;
        tasks_from_json(rows.as_deref())
    }

    pub(super) async fn engine_task_versions_impl(&self) -> Result<Vec<TaskVersions>> {
        let sql = format!(
            "SELECT json_group_array(json_array(id, version, roster_version) ORDER BY id) FROM invite_tasks \
             WHERE {ENGINE_TASKS}"
        );
        let rows: Option<String> = sqlx::query_scalar(&sql).fetch_one(&self.reader).await?;
        let rows: Vec<(i64, i64, i64)> = serde_json::from_str(rows.as_deref().unwrap_or("[]"))
            .map_err(|e| StoreError::Corrupt(format!("task versions: {e}")))?;
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
        let sql = format!("SELECT {TASK_COLUMNS} FROM invite_tasks WHERE id = ?");
        let row = sqlx::query(&sql).bind(task_id).fetch_optional(&self.reader).await?;
        row.as_ref().map(task_from_row).transpose()
    }

    pub(super) async fn target_counts_impl(&self, task_id: i64, now: DateTime<Utc>) -> Result<TargetCounts> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n, \
                    SUM(CASE WHEN next_attempt_at IS NULL OR next_attempt_at <= ?2 THEN 1 ELSE 0 END) AS due, \
                    MIN(CASE WHEN next_attempt_at > ?2 THEN next_attempt_at END) AS next_due \
             FROM invite_targets WHERE task_id = ?1 GROUP BY status",
        )
        .bind(task_id)
        .bind(micros(now))
        .fetch_all(&self.reader)
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
                    counts.next_due_at = opt_from_micros(row.try_get("next_due")?)?;
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
        let sql = format!(
            "UPDATE invite_targets SET status = 'in_progress', lease_account = ?2, lease_until = ?4, \
                    lease_epoch = lease_epoch + 1, updated_at = ?3 \
             WHERE id = (SELECT id FROM invite_targets \
                         WHERE task_id = ?1 AND status = 'pending' \
                           AND (next_attempt_at IS NULL OR next_attempt_at <= ?3) \
                           AND (pinned_account IS NULL OR pinned_account = ?2) \
                         ORDER BY id LIMIT 1) \
             RETURNING {TARGET_COLUMNS}, lease_epoch, pinned_account"
        );
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(&sql)
            .bind(task_id)
            .bind(account_id)
            .bind(micros(now))
            .bind(micros(lease_until))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let claim = claim_from_row(&row)?;
        sqlx::query("UPDATE invite_task_accounts SET last_used_at = ? WHERE task_id = ? AND account_id = ?")
            .bind(micros(now))
            .bind(task_id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(claim))
    }

    pub(super) async fn reclaim_expired_targets_impl(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE invite_targets SET status = 'pending', lease_account = NULL, lease_until = NULL, updated_at = ?1 \
             WHERE status = 'in_progress' AND lease_until < ?1",
        )
        .bind(micros(now))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn settle_target_impl(&self, s: &Settlement) -> Result<bool> {
        let counter = match s.status {
            TargetStatus::Pending => None,
            status => Some(final_status(status, "settle_target")?),
        };
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let sql = match counter {
            Some(_) => {
                "UPDATE invite_targets SET status = ?1, reason = ?2, result = ?3, processed_at = ?4, updated_at = ?4, \
                 lease_account = NULL, lease_until = NULL, next_attempt_at = NULL, attempts = attempts + ?5 \
                 WHERE id = ?6 AND task_id = ?7 AND lease_epoch = ?8 AND status = 'in_progress'"
            }
            None => {
                "UPDATE invite_targets SET status = ?1, reason = ?2, result = ?3, updated_at = ?4, \
                 lease_account = NULL, lease_until = NULL, next_attempt_at = ?9, pinned_account = ?10, \
                 attempts = attempts + ?5 \
                 WHERE id = ?6 AND task_id = ?7 AND lease_epoch = ?8 AND status = 'in_progress'"
            }
        };
        let mut settle = sqlx::query(sql)
            .bind(s.status.as_str())
            .bind(&s.reason)
            .bind(s.result.to_string())
            .bind(micros(s.now))
            .bind(i64::from(s.count_attempt))
            .bind(s.target_id)
            .bind(s.task_id)
            .bind(s.epoch);
        if counter.is_none() {
            settle = settle.bind(s.next_attempt_at.map(micros)).bind(&s.pin_account);
        }
        if settle.execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        match counter {
            Some(column) => Self::count_into_task(&mut tx, s.task_id, column, 1, s.now).await?,
            // A target back in the pool changes what the task has to do: the version says so.
            None => {
                sqlx::query("UPDATE invite_tasks SET version = version + 1 WHERE id = ?")
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let ended = sqlx::query(
            "UPDATE invite_targets SET status = ?1, reason = ?2, processed_at = ?3, updated_at = ?3, \
             next_attempt_at = NULL WHERE task_id = ?4 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(micros(now))
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
            "UPDATE invite_targets SET lease_until = MAX(lease_until, ?5) \
             WHERE id = ?1 AND task_id = ?2 AND lease_epoch = ?3 AND status = 'in_progress' AND lease_until >= ?4 \
             RETURNING pinned_account",
        )
        .bind(target_id)
        .bind(task_id)
        .bind(epoch)
        .bind(micros(now))
        .bind(micros(until))
        .fetch_optional(&self.writer)
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
            "UPDATE invite_targets SET pinned_account = ? WHERE id = ? AND task_id = ? \
             AND lease_epoch = ? AND status = 'in_progress'",
        )
        .bind(account_id)
        .bind(target_id)
        .bind(task_id)
        .bind(epoch)
        .execute(&self.writer)
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE invite_targets SET status = 'unknown', reason = ");
        q.push_bind(reason)
            .push(", processed_at = ")
            .push_bind(micros(now))
            .push(", updated_at = ")
            .push_bind(micros(now))
            .push(", next_attempt_at = NULL WHERE task_id = ")
            .push_bind(task_id)
            .push(" AND status = 'pending' AND pinned_account IS NOT NULL");
        if !usable.is_empty() {
            q.push(" AND pinned_account NOT IN (");
            let mut list = q.separated(", ");
            for a in usable {
                list.push_bind(a);
            }
            q.push(")");
        }
        let ended = q.build().execute(&mut *tx).await?.rows_affected();
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        Self::insert_logs(&mut tx, task_id, logs, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn recent_outcomes_impl(&self, task_id: i64, n: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(json_extract(details, '$.outcome') AS TEXT) AS outcome FROM invite_execution_logs \
             WHERE task_id = ? AND action IN ('invite', 'message') AND json_extract(details, '$.outcome') IS NOT NULL \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(task_id)
        .bind(n.max(0))
        .fetch_all(&self.reader)
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO invite_task_accounts (task_id, account_id, platform, status, channel, stats, updated_at) \
             VALUES (?1, ?2, ?3, 'active', ?4, '{}', ?5) \
             ON CONFLICT (task_id, account_id) DO UPDATE SET channel = excluded.channel, \
             updated_at = excluded.updated_at",
        )
        .bind(task_id)
        .bind(account_id)
        .bind(platform)
        .bind(channel.to_string())
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        // Who knows a channel is read across the tasks that share it.
        sqlx::query(
            "UPDATE invite_tasks SET roster_version = roster_version + 1 \
             WHERE id = ?1 OR target_channel = (SELECT target_channel FROM invite_tasks WHERE id = ?1)",
        )
        .bind(task_id)
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO invite_task_accounts (task_id, account_id, platform, status, stats, updated_at) \
             VALUES (?1, ?2, ?3, 'excluded', json_object('excluded_because', ?4), ?5) \
             ON CONFLICT (task_id, account_id) DO UPDATE SET status = 'excluded', \
             stats = json_set(invite_task_accounts.stats, '$.excluded_because', ?4), \
             updated_at = excluded.updated_at",
        )
        .bind(task_id)
        .bind(account_id)
        .bind(platform)
        .bind(why)
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE invite_tasks SET roster_version = roster_version + 1 WHERE id = ?")
            .bind(task_id)
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
        // The outcome is one key of `outcomes`, quoted in the path: never read as a path itself.
        let outcome_path = format!("$.outcomes.\"{}\"", outcome.replace('"', ""));
        sqlx::query(
            "INSERT INTO invite_task_accounts (task_id, account_id, platform, status, stats, updated_at) \
             VALUES (?1, ?2, ?3, 'active', json_object('actions', 1, 'outcomes', json_object(?4, 1)), ?6) \
             ON CONFLICT (task_id, account_id) DO UPDATE SET \
             stats = json_set(invite_task_accounts.stats, \
               '$.actions', COALESCE(json_extract(invite_task_accounts.stats, '$.actions'), 0) + 1, \
               ?5, COALESCE(json_extract(invite_task_accounts.stats, ?5), 0) + 1)",
        )
        .bind(task_id)
        .bind(account_id)
        .bind(platform)
        .bind(outcome)
        .bind(outcome_path)
        .bind(micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(super) async fn task_accounts_impl(&self, task_id: i64) -> Result<Vec<TaskAccount>> {
        let rows = sqlx::query(
            "SELECT account_id, platform, status, channel, stats, last_used_at FROM invite_task_accounts \
             WHERE task_id = ? ORDER BY id",
        )
        .bind(task_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(task_account_from_row).collect()
    }

    pub(super) async fn known_channel_impl(&self, account_id: &str, target_channel: &str) -> Result<Option<Value>> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT a.channel FROM invite_task_accounts a JOIN invite_tasks t ON t.id = a.task_id \
             WHERE a.account_id = ? AND t.target_channel = ? AND a.channel IS NOT NULL \
             ORDER BY a.updated_at DESC LIMIT 1",
        )
        .bind(account_id)
        .bind(target_channel)
        .fetch_optional(&self.reader)
        .await?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("channel: {e}"))))
            .transpose()
    }

    pub(super) async fn excluded_accounts_impl(&self, task_id: i64) -> Result<Vec<String>> {
        let list: Option<String> = sqlx::query_scalar(
            "SELECT json_group_array(account_id) FROM invite_task_accounts WHERE task_id = ? AND status = 'excluded'",
        )
        .bind(task_id)
        .fetch_one(&self.reader)
        .await?;
        ids_from_json(list.as_deref())
    }

    pub(super) async fn channel_knowers_impl(&self, target_channel: &str) -> Result<Vec<String>> {
        let list: Option<String> = sqlx::query_scalar(
            "SELECT json_group_array(account_id) FROM (SELECT DISTINCT a.account_id \
             FROM invite_task_accounts a JOIN invite_tasks t ON t.id = a.task_id \
             WHERE t.target_channel = ? AND a.channel IS NOT NULL)",
        )
        .bind(target_channel)
        .fetch_one(&self.reader)
        .await?;
        ids_from_json(list.as_deref())
    }

    pub(super) async fn on_do_not_contact_impl(&self, user: UserId, keys: &[String]) -> Result<bool> {
        let mut found = false;
        // One bound parameter a key: chunks keep a long list under SQLite's bound.
        for chunk in keys.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new("SELECT EXISTS (SELECT 1 FROM do_not_contact WHERE user_id = ");
            q.push_bind(user.get()).push(" AND key IN (");
            let mut list = q.separated(", ");
            for k in chunk {
                list.push_bind(k);
            }
            q.push("))");
            found = q.build_query_scalar::<bool>().fetch_one(&self.reader).await?;
            if found {
                break;
            }
        }
        Ok(found)
    }
}
