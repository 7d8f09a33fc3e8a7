//! Targets, imports and the do-not-contact list on SQLite.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use domain::{
    audience::{ImportReport, Target, TargetDraft, TargetSource},
    task::{TaskStatus, UserId},
};
use serde_json::{json, Value};
use sqlx::{sqlite::SqliteRow, QueryBuilder, Row, Sqlite};

use super::{from_micros, micros, opt_from_micros, SqliteStore};
use crate::{
    error::{Result, StoreError},
    import::{ImportRequest, ImportSink, ImportStart, ImportState},
    model::{
        audit_action, DncAdded, DncEntry, ImportOutcome, ImportRecord, NewDncEntry, Page, PageRequest, RequestMeta,
        TargetDeleteOutcome, TargetQuery, TargetRow, TargetValues,
    },
    INSERT_CHUNK,
};

pub(super) fn target_from_row(row: &SqliteRow) -> Result<Target> {
    let extra: String = row.try_get("user_data")?;
    TargetRow {
        id: row.try_get("id")?,
        task_id: row.try_get("task_id")?,
        username: row.try_get("username")?,
        user_id: row.try_get("user_id_platform")?,
        user_id_is_hint: row.try_get("user_id_is_hint")?,
        phone: row.try_get("phone_number")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        extra: serde_json::from_str(&extra).map_err(|e| StoreError::Corrupt(format!("user_data: {e}")))?,
        source: row.try_get("source")?,
        status: row.try_get("status")?,
        reason: row.try_get("reason")?,
        attempts: row.try_get("attempts")?,
        source_row: row.try_get("source_row")?,
        processed_at: opt_from_micros(row.try_get("processed_at")?)?,
        created_at: from_micros(row.try_get("created_at")?)?,
    }
    .into_target()
}

pub(super) const TARGET_COLUMNS: &str =
    "id, task_id, username, user_id_platform, user_id_is_hint, phone_number, first_name, \
     last_name, user_data, source, status, reason, attempts, source_row, processed_at, created_at";

impl SqliteStore {
    pub(super) async fn task_status(
        conn: &mut sqlx::SqliteConnection,
        user: UserId,
        task_id: i64,
    ) -> Result<Option<TaskStatus>> {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM invite_tasks WHERE id = ? AND user_id = ?")
            .bind(task_id)
            .bind(user.get())
            .fetch_optional(&mut *conn)
            .await?;
        status
            .map(|s| TaskStatus::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("task {task_id}: status {s:?}"))))
            .transpose()
    }

    pub(super) async fn begin_import_impl(
        &self,
        user: UserId,
        request: ImportRequest,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<ImportStart> {
        let task_id = request.task_id;
        let mut tx = self.writer.begin().await?;
        let Some(status) = Self::task_status(&mut tx, user, task_id).await? else {
            return Ok(ImportStart::NotFound);
        };
        if status == TaskStatus::InProgress || status.is_finished() {
            return Ok(ImportStart::Locked(status));
        }
        let in_task: HashSet<String> = sqlx::query_as::<_, (Option<String>, Option<String>, Option<String>)>(
            "SELECT username_key, user_id_key, phone_key FROM invite_targets WHERE task_id = ?",
        )
        .bind(task_id)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .flat_map(|(u, i, p)| [u, i, p].into_iter().flatten())
        .collect();
        let do_not_contact: HashSet<String> = sqlx::query_scalar("SELECT key FROM do_not_contact WHERE user_id = ?")
            .bind(user.get())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invite_targets WHERE task_id = ?")
            .bind(task_id)
            .fetch_one(&mut *tx)
            .await?;
        let import_id: i64 = sqlx::query_scalar(
            "INSERT INTO invite_imports (task_id, user_id, source, file_name, dry_run, total_rows, valid, invalid, \
             duplicates, excluded, stored, report, request_id, created_at) \
             VALUES (?, ?, ?, ?, ?, 0, 0, 0, 0, 0, 0, '{}', ?, ?) RETURNING id",
        )
        .bind(task_id)
        .bind(user.get())
        .bind(request.source.as_str())
        .bind(&request.file_name)
        .bind(request.dry_run)
        .bind(&meta.request_id)
        .bind(micros(now))
        .fetch_one(&mut *tx)
        .await?;
        let state = ImportState {
            user,
            request,
            import_id,
            now,
            meta: meta.clone(),
            in_task,
            do_not_contact,
            existing: existing as usize,
            valid: 0,
            preview: Vec::new(),
        };
        Ok(ImportStart::Started(Box::new(SqliteImport { tx, state })))
    }

    pub(super) async fn get_import_impl(
        &self,
        user: UserId,
        task_id: i64,
        import_id: Option<i64>,
    ) -> Result<Option<ImportRecord>> {
        let row = sqlx::query(
            "SELECT id, task_id, source, file_name, dry_run, report, request_id, created_at FROM invite_imports \
             WHERE task_id = ? AND user_id = ? AND (? IS NULL OR id = ?) ORDER BY id DESC LIMIT 1",
        )
        .bind(task_id)
        .bind(user.get())
        .bind(import_id)
        .bind(import_id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| {
            let report: String = row.try_get("report")?;
            Ok(ImportRecord {
                id: row.try_get("id")?,
                task_id: row.try_get("task_id")?,
                source: row.try_get("source")?,
                file_name: row.try_get("file_name")?,
                dry_run: row.try_get("dry_run")?,
                report: serde_json::from_str(&report).map_err(|e| StoreError::Corrupt(format!("report: {e}")))?,
                request_id: row.try_get("request_id")?,
                created_at: from_micros(row.try_get("created_at")?)?,
            })
        })
        .transpose()
    }

    pub(super) async fn has_import_impl(
        &self,
        user: UserId,
        task_id: i64,
        source: TargetSource,
        file_name: &str,
    ) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM invite_imports WHERE task_id = ? AND user_id = ? AND source = ? \
             AND file_name = ? AND NOT dry_run)",
        )
        .bind(task_id)
        .bind(user.get())
        .bind(source.as_str())
        .bind(file_name)
        .fetch_one(&self.reader)
        .await?)
    }

    pub(super) async fn list_targets_impl(
        &self,
        user: UserId,
        task_id: i64,
        query: &TargetQuery,
    ) -> Result<Option<Page<Target>>> {
        let mut conn = self.reader.acquire().await?;
        if Self::task_status(&mut conn, user, task_id).await?.is_none() {
            return Ok(None);
        }
        let status = query.status.map(|s| s.as_str());
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM invite_targets WHERE task_id = ? AND (? IS NULL OR status = ?)")
                .bind(task_id)
                .bind(status)
                .bind(status)
                .fetch_one(&mut *conn)
                .await?;
        let sql = format!(
            "SELECT {TARGET_COLUMNS} FROM invite_targets WHERE task_id = ? AND (? IS NULL OR status = ?) \
             ORDER BY id LIMIT ? OFFSET ?"
        );
        let rows = sqlx::query(&sql)
            .bind(task_id)
            .bind(status)
            .bind(status)
            .bind(i64::from(query.page.page_size))
            .bind(query.page.offset())
            .fetch_all(&mut *conn)
            .await?;
        let items = rows.iter().map(target_from_row).collect::<Result<_>>()?;
        Ok(Some(Page {
            items,
            total,
            request: query.page,
        }))
    }

    pub(super) async fn delete_targets_impl(
        &self,
        user: UserId,
        task_id: i64,
        ids: Option<&[i64]>,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<TargetDeleteOutcome> {
        let mut tx = self.writer.begin().await?;
        let started: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT status, started_at FROM invite_tasks WHERE id = ? AND user_id = ?")
                .bind(task_id)
                .bind(user.get())
                .fetch_optional(&mut *tx)
                .await?;
        let Some((status, started_at)) = started else {
            return Ok(TargetDeleteOutcome::NotFound);
        };
        let status =
            TaskStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("task status {status:?}")))?;
        if status != TaskStatus::Pending || started_at.is_some() {
            return Ok(TargetDeleteOutcome::Started(status));
        }
        let mut delete = QueryBuilder::<Sqlite>::new("DELETE FROM invite_targets WHERE task_id = ");
        delete.push_bind(task_id);
        if let Some(ids) = ids {
            delete.push(" AND id IN (");
            let mut list = delete.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            delete.push(")");
        }
        let deleted = delete.build().execute(&mut *tx).await?.rows_affected();
        sqlx::query(
            "UPDATE invite_tasks SET target_count = target_count - ?, updated_at = ?, version = version + 1 WHERE id = ?",
        )
        .bind(deleted as i64)
        .bind(micros(now))
        .bind(task_id)
        .execute(&mut *tx)
        .await?;
        let details = json!({"deleted": deleted, "ids": ids});
        Self::insert_audit(
            &mut tx,
            user,
            audit_action::TARGETS_DELETE,
            crate::task_object(task_id),
            details,
            now,
            meta,
        )
        .await?;
        tx.commit().await?;
        Ok(TargetDeleteOutcome::Deleted(deleted))
    }

    pub(super) async fn add_do_not_contact_impl(
        &self,
        user: UserId,
        entries: &[NewDncEntry],
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<DncAdded> {
        let mut tx = self.writer.begin().await?;
        let mut added = 0;
        for chunk in entries.chunks(INSERT_CHUNK) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO do_not_contact (user_id, key, kind, value, reason, created_at) ",
            );
            insert.push_values(chunk, |mut b, e| {
                b.push_bind(user.get())
                    .push_bind(e.identifier.dedup_key())
                    .push_bind(e.identifier.kind().as_str())
                    .push_bind(e.identifier.value())
                    .push_bind(&e.reason)
                    .push_bind(micros(now));
            });
            insert.push(" ON CONFLICT (user_id, key) DO NOTHING");
            added += insert.build().execute(&mut *tx).await?.rows_affected() as usize;
        }
        let details = json!({"added": added, "submitted": entries.len()});
        let object = ("do_not_contact", user.get().to_string());
        Self::insert_audit(&mut tx, user, audit_action::DNC_ADD, object, details, now, meta).await?;
        tx.commit().await?;
        Ok(DncAdded {
            added,
            already_listed: entries.len() - added,
        })
    }

    pub(super) async fn list_do_not_contact_impl(&self, user: UserId, page: PageRequest) -> Result<Page<DncEntry>> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM do_not_contact WHERE user_id = ?")
            .bind(user.get())
            .fetch_one(&self.reader)
            .await?;
        let rows = sqlx::query(
            "SELECT id, kind, value, reason, created_at FROM do_not_contact WHERE user_id = ? \
             ORDER BY id DESC LIMIT ? OFFSET ?",
        )
        .bind(user.get())
        .bind(i64::from(page.page_size))
        .bind(page.offset())
        .fetch_all(&self.reader)
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(DncEntry {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    value: r.try_get("value")?,
                    reason: r.try_get("reason")?,
                    created_at: from_micros(r.try_get("created_at")?)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Page {
            items,
            total,
            request: page,
        })
    }

    pub(super) async fn delete_do_not_contact_impl(
        &self,
        user: UserId,
        id: i64,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let value: Option<String> =
            sqlx::query_scalar("DELETE FROM do_not_contact WHERE id = ? AND user_id = ? RETURNING value")
                .bind(id)
                .bind(user.get())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(value) = value else { return Ok(false) };
        let details: Value = json!({ "value": value });
        Self::insert_audit(
            &mut tx,
            user,
            audit_action::DNC_DELETE,
            ("do_not_contact", id.to_string()),
            details,
            now,
            meta,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// An import on SQLite: the writer connection's transaction, held until `finish`.
struct SqliteImport {
    tx: sqlx::Transaction<'static, Sqlite>,
    state: ImportState,
}

#[async_trait::async_trait]
impl ImportSink for SqliteImport {
    async fn add(&mut self, drafts: Vec<TargetDraft>, report: &mut ImportReport) -> Result<()> {
        let rows = self.state.take(drafts, report);
        let (task_id, import_id, now) = (self.state.request.task_id, self.state.import_id, self.state.now);
        let source = self.state.request.source.as_str();
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO invite_targets (task_id, username, phone_number, user_id_platform, user_id_is_hint, \
                 first_name, last_name, full_name, user_data, source, status, source_row, import_id, username_key, \
                 user_id_key, phone_key, created_at, updated_at) ",
            );
            insert.push_values(chunk.iter().map(TargetValues::of), |mut b, v| {
                b.push_bind(task_id)
                    .push_bind(v.username)
                    .push_bind(v.phone)
                    .push_bind(v.user_id)
                    .push_bind(v.user_id_is_hint)
                    .push_bind(v.first_name)
                    .push_bind(v.last_name)
                    .push_bind(v.full_name)
                    .push_bind(v.extra.to_string())
                    .push_bind(source)
                    .push_bind("pending")
                    .push_bind(v.row)
                    .push_bind(import_id)
                    .push_bind(v.username_key)
                    .push_bind(v.user_id_key)
                    .push_bind(v.phone_key)
                    .push_bind(micros(now))
                    .push_bind(micros(now));
            });
            insert.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn finish(self: Box<Self>, mut report: ImportReport) -> Result<ImportOutcome> {
        let SqliteImport { mut tx, state } = *self;
        if let Some(refused) = state.close(&mut report) {
            return Ok(refused);
        }
        let (task_id, import_id, now) = (state.request.task_id, state.import_id, state.now);
        sqlx::query(
            "UPDATE invite_tasks SET target_count = target_count + ?, updated_at = ?, version = version + 1 WHERE id = ?",
        )
        .bind(report.stored as i64)
        .bind(micros(now))
        .bind(task_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE invite_imports SET total_rows = ?, valid = ?, invalid = ?, duplicates = ?, excluded = ?, \
             stored = ?, report = ? WHERE id = ?",
        )
        .bind(report.total_rows as i64)
        .bind(report.valid as i64)
        .bind(report.invalid as i64)
        .bind(report.duplicates as i64)
        .bind(report.excluded as i64)
        .bind(report.stored as i64)
        .bind(serde_json::to_string(&report).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(import_id)
        .execute(&mut *tx)
        .await?;
        let details = json!({"import_id": import_id, "dry_run": state.request.dry_run, "stored": report.stored});
        SqliteStore::insert_audit(
            &mut tx,
            state.user,
            audit_action::TARGETS_IMPORT,
            crate::task_object(task_id),
            details,
            now,
            &state.meta,
        )
        .await?;
        tx.commit().await?;
        Ok(ImportOutcome::Done {
            import_id,
            report: Box::new(report),
        })
    }
}
