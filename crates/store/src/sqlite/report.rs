//! Reports on SQLite: the execution log filtered and paged, grouped outcomes, targets for exports,
//! and the retention cleanup. Reads go through the reader pool; the cleanup through the writer, one
//! `BEGIN IMMEDIATE` transaction per batch.

use chrono::{DateTime, Utc};
use domain::task::UserId;
use sqlx::{sqlite::SqliteRow, QueryBuilder, Row, Sqlite};

use super::{
    audience::{target_from_row, TARGET_COLUMNS},
    from_micros, micros, SqliteStore,
};
use crate::{
    error::{Result, StoreError},
    model::Page,
    report::{AccountTargetCount, HourCount, LogEntry, LogQuery, OutcomeCount, ReasonCount, TargetOutcome, TaskStats},
};

const HOUR_MICROS: i64 = 3_600_000_000;

fn push_log_filters<'a>(qb: &mut QueryBuilder<'a, Sqlite>, task_id: i64, q: &'a LogQuery) {
    qb.push(" FROM invite_execution_logs WHERE task_id = ")
        .push_bind(task_id);
    if !q.statuses.is_empty() {
        qb.push(" AND status IN (");
        let mut list = qb.separated(", ");
        for s in &q.statuses {
            list.push_bind(s.as_str());
        }
        qb.push(")");
    }
    if let Some(a) = &q.account_id {
        qb.push(" AND account_id = ").push_bind(a.as_str());
    }
    if let Some(t) = q.target_id {
        qb.push(" AND target_id = ").push_bind(t);
    }
    if let Some(t) = q.since {
        qb.push(" AND created_at >= ").push_bind(micros(t));
    }
    if let Some(t) = q.until {
        qb.push(" AND created_at < ").push_bind(micros(t));
    }
}

fn log_from_row(row: &SqliteRow) -> Result<LogEntry> {
    let details: String = row.try_get("details")?;
    Ok(LogEntry {
        id: row.try_get("id")?,
        task_id: row.try_get("task_id")?,
        target_id: row.try_get("target_id")?,
        account_id: row.try_get("account_id")?,
        action: row.try_get("action")?,
        status: row.try_get("status")?,
        details: serde_json::from_str(&details).map_err(|e| StoreError::Corrupt(format!("log details: {e}")))?,
        created_at: from_micros(row.try_get("created_at")?)?,
    })
}

impl SqliteStore {
    pub(super) async fn task_logs_impl(
        &self,
        user: UserId,
        task_id: i64,
        q: &LogQuery,
    ) -> Result<Option<Page<LogEntry>>> {
        let mut conn = self.reader.acquire().await?;
        if Self::task_status(&mut conn, user, task_id).await?.is_none() {
            return Ok(None);
        }
        let mut count = QueryBuilder::new("SELECT COUNT(*)");
        push_log_filters(&mut count, task_id, q);
        let total: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;
        let mut select =
            QueryBuilder::new("SELECT id, task_id, target_id, account_id, action, status, details, created_at");
        push_log_filters(&mut select, task_id, q);
        select
            .push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(q.page.page_size))
            .push(" OFFSET ")
            .push_bind(q.page.offset());
        let rows = select.build().fetch_all(&mut *conn).await?;
        Ok(Some(Page {
            items: rows.iter().map(log_from_row).collect::<Result<_>>()?,
            total,
            request: q.page,
        }))
    }

    pub(super) async fn task_stats_impl(&self, user: UserId, task_id: i64) -> Result<Option<TaskStats>> {
        let mut conn = self.reader.acquire().await?;
        if Self::task_status(&mut conn, user, task_id).await?.is_none() {
            return Ok(None);
        }
        let by_reason = sqlx::query_as::<_, (String, Option<String>, i64)>(
            "SELECT status, reason, COUNT(*) FROM invite_targets \
             WHERE task_id = ? AND status NOT IN ('pending', 'in_progress') GROUP BY status, reason",
        )
        .bind(task_id)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(status, reason, count)| ReasonCount { status, reason, count })
        .collect();
        let by_outcome = sqlx::query_as::<_, (String, String, Option<String>, i64)>(
            "SELECT action, status, CAST(json_extract(details, '$.outcome') AS TEXT) AS outcome, COUNT(*) \
             FROM invite_execution_logs WHERE task_id = ? GROUP BY action, status, outcome",
        )
        .bind(task_id)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(action, status, outcome, count)| OutcomeCount {
            action,
            status,
            outcome,
            count,
        })
        .collect();
        let by_account = sqlx::query_as::<_, (Option<String>, String, i64)>(
            "SELECT CAST(json_extract(result, '$.account_id') AS TEXT) AS account, status, COUNT(*) \
             FROM invite_targets WHERE task_id = ? AND status NOT IN ('pending', 'in_progress') \
             GROUP BY account, status",
        )
        .bind(task_id)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(account_id, status, count)| AccountTargetCount {
            account_id,
            status,
            count,
        })
        .collect();
        let by_hour = sqlx::query_as::<_, (i64, String, i64)>(
            "SELECT (created_at / ?1) * ?1 AS hour, status, COUNT(*) FROM invite_execution_logs \
             WHERE task_id = ?2 GROUP BY hour, status",
        )
        .bind(HOUR_MICROS)
        .bind(task_id)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(hour, status, count)| {
            Ok(HourCount {
                hour: from_micros(hour)?,
                status,
                count,
            })
        })
        .collect::<Result<_>>()?;
        let mut stats = TaskStats {
            by_reason,
            by_outcome,
            by_account,
            by_hour,
        };
        stats.sort();
        Ok(Some(stats))
    }

    pub(super) async fn report_targets_impl(
        &self,
        user: UserId,
        task_id: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Option<Vec<TargetOutcome>>> {
        let mut conn = self.reader.acquire().await?;
        if Self::task_status(&mut conn, user, task_id).await?.is_none() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {TARGET_COLUMNS}, result, updated_at AS touched_at, \
                    COALESCE(CAST(json_extract(result, '$.account_id') AS TEXT), pinned_account, lease_account) \
                      AS acting_account \
             FROM invite_targets WHERE task_id = ? AND id > ? ORDER BY id LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(task_id)
            .bind(after_id)
            .bind(limit.max(0))
            .fetch_all(&mut *conn)
            .await?;
        let outcomes = rows
            .iter()
            .map(|row| {
                let result: String = row.try_get("result")?;
                Ok(TargetOutcome {
                    target: target_from_row(row)?,
                    result: serde_json::from_str(&result)
                        .map_err(|e| StoreError::Corrupt(format!("target result: {e}")))?,
                    account_id: row.try_get("acting_account")?,
                    updated_at: from_micros(row.try_get("touched_at")?)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Some(outcomes))
    }

    pub(super) async fn delete_logs_before_impl(&self, before: DateTime<Utc>, batch: i64) -> Result<u64> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // Walks the primary key from the oldest row: rows are appended in time order, so a batch of old
        // rows is found without scanning the recent ones.
        let deleted = sqlx::query(
            "DELETE FROM invite_execution_logs WHERE id IN \
             (SELECT id FROM invite_execution_logs WHERE created_at < ? ORDER BY id LIMIT ?)",
        )
        .bind(micros(before))
        .bind(batch.max(1))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }
}
