//! Targets, imports and the do-not-contact list on PostgreSQL.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use domain::{
    audience::{ImportReport, Target, TargetDraft, TargetSource},
    task::{TaskStatus, UserId},
};
use serde_json::{json, Value};
use sqlx::{postgres::PgRow, Postgres, QueryBuilder, Row};

use super::PgStore;
use crate::{
    error::{Result, StoreError},
    import::{ImportRequest, ImportSink, ImportStart, ImportState},
    model::{
        audit_action, DncAdded, DncEntry, ImportOutcome, ImportRecord, NewDncEntry, Page, PageRequest, RequestMeta,
        TargetDeleteOutcome, TargetQuery, TargetRow, TargetValues,
    },
    INSERT_CHUNK,
};

pub(super) fn target_from_row(row: &PgRow) -> Result<Target> {
    TargetRow {
        id: row.try_get("id")?,
        task_id: row.try_get("task_id")?,
        username: row.try_get("username")?,
        user_id: row.try_get("user_id_platform")?,
        user_id_is_hint: row.try_get("user_id_is_hint")?,
        phone: row.try_get("phone_number")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        extra: row.try_get("user_data")?,
        source: row.try_get("source")?,
        status: row.try_get("status")?,
        reason: row.try_get("reason")?,
        attempts: i64::from(row.try_get::<i32, _>("attempts")?),
        source_row: row.try_get::<Option<i32>, _>("source_row")?.map(i64::from),
        processed_at: row.try_get("processed_at")?,
        created_at: row.try_get("created_at")?,
    }
    .into_target()
}

pub(super) const TARGET_COLUMNS: &str =
    "id, task_id, username, user_id_platform, user_id_is_hint, phone_number, first_name, \
     last_name, user_data, source::text AS source, status, reason, attempts, source_row, processed_at, created_at";

/// Rows per UNNEST insert.
const UNNEST_CHUNK: usize = 2_000;

impl PgStore {
    pub(super) async fn task_status(
        conn: &mut sqlx::PgConnection,
        user: UserId,
        task_id: i64,
    ) -> Result<Option<TaskStatus>> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status::text FROM invite_tasks WHERE id = $1 AND user_id = $2")
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
        let mut tx = self.pool.begin().await?;
        // Imports into one task, and the engine's changes to it, take turns on the task's row.
        sqlx::query("SELECT id FROM invite_tasks WHERE id = $1 AND user_id = $2 FOR UPDATE")
            .bind(task_id)
            .bind(user.get())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(status) = Self::task_status(&mut tx, user, task_id).await? else {
            return Ok(ImportStart::NotFound);
        };
        if status == TaskStatus::InProgress || status.is_finished() {
            return Ok(ImportStart::Locked(status));
        }
        let in_task: HashSet<String> = sqlx::query_as::<_, (Option<String>, Option<String>, Option<String>)>(
            "SELECT username_key, user_id_key, phone_key FROM invite_targets WHERE task_id = $1",
        )
        .bind(task_id)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .flat_map(|(u, i, p)| [u, i, p].into_iter().flatten())
        .collect();
        let do_not_contact: HashSet<String> = sqlx::query_scalar("SELECT key FROM do_not_contact WHERE user_id = $1")
            .bind(user.get())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invite_targets WHERE task_id = $1")
            .bind(task_id)
            .fetch_one(&mut *tx)
            .await?;
        let import_id: i64 = sqlx::query_scalar(
            "INSERT INTO invite_imports (task_id, user_id, source, file_name, dry_run, total_rows, valid, invalid, \
             duplicates, excluded, stored, report, request_id, created_at) \
             VALUES ($1, $2, $3::targetsource, $4, $5, 0, 0, 0, 0, 0, 0, '{}', $6, $7) RETURNING id",
        )
        .bind(task_id)
        .bind(user.get())
        .bind(request.source.as_str())
        .bind(&request.file_name)
        .bind(request.dry_run)
        .bind(&meta.request_id)
        .bind(now)
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
        Ok(ImportStart::Started(Box::new(PgImport { tx, state })))
    }

    pub(super) async fn get_import_impl(
        &self,
        user: UserId,
        task_id: i64,
        import_id: Option<i64>,
    ) -> Result<Option<ImportRecord>> {
        let row = sqlx::query(
            "SELECT id, task_id, source::text AS source, file_name, dry_run, report, request_id, created_at \
             FROM invite_imports WHERE task_id = $1 AND user_id = $2 AND ($3::BIGINT IS NULL OR id = $3) \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(task_id)
        .bind(user.get())
        .bind(import_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(ImportRecord {
                id: row.try_get("id")?,
                task_id: row.try_get("task_id")?,
                source: row.try_get("source")?,
                file_name: row.try_get("file_name")?,
                dry_run: row.try_get("dry_run")?,
                report: row.try_get("report")?,
                request_id: row.try_get("request_id")?,
                created_at: row.try_get("created_at")?,
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
            "SELECT EXISTS (SELECT 1 FROM invite_imports WHERE task_id = $1 AND user_id = $2 \
             AND source = $3::targetsource AND file_name = $4 AND NOT dry_run)",
        )
        .bind(task_id)
        .bind(user.get())
        .bind(source.as_str())
        .bind(file_name)
        .fetch_one(&self.pool)
        .await?)
    }

    pub(super) async fn list_targets_impl(
        &self,
        user: UserId,
        task_id: i64,
        query: &TargetQuery,
    ) -> Result<Option<Page<Target>>> {
        let mut conn = self.pool.acquire().await?;
        if Self::task_status(&mut conn, user, task_id).await?.is_none() {
            return Ok(None);
        }
        let status = query.status.map(|s| s.as_str());
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM invite_targets WHERE task_id = $1 AND ($2::TEXT IS NULL OR status = $2)",
        )
        .bind(task_id)
        .bind(status)
        .fetch_one(&mut *conn)
        .await?;
        let sql = format!(
            "SELECT {TARGET_COLUMNS} FROM invite_targets WHERE task_id = $1 AND ($2::TEXT IS NULL OR status = $2) \
             ORDER BY id LIMIT $3 OFFSET $4"
        );
        let rows = sqlx::query(&sql)
            .bind(task_id)
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
        let mut tx = self.pool.begin().await?;
        let started: Option<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT status::text, started_at FROM invite_tasks WHERE id = $1 AND user_id = $2 FOR UPDATE",
        )
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
        let mut delete = QueryBuilder::<Postgres>::new("DELETE FROM invite_targets WHERE task_id = ");
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
            "UPDATE invite_tasks SET target_count = target_count - $1, updated_at = $2, version = version + 1 \
             WHERE id = $3",
        )
        .bind(deleted as i64)
        .bind(now)
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
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for chunk in entries.chunks(INSERT_CHUNK) {
            let mut insert = QueryBuilder::<Postgres>::new(
                "INSERT INTO do_not_contact (user_id, key, kind, value, reason, created_at) ",
            );
            insert.push_values(chunk, |mut b, e| {
                b.push_bind(user.get())
                    .push_bind(e.identifier.dedup_key())
                    .push_bind(e.identifier.kind().as_str())
                    .push_bind(e.identifier.value())
                    .push_bind(&e.reason)
                    .push_bind(now);
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
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM do_not_contact WHERE user_id = $1")
            .bind(user.get())
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT id, kind, value, reason, created_at FROM do_not_contact WHERE user_id = $1 \
             ORDER BY id DESC LIMIT $2 OFFSET $3",
        )
        .bind(user.get())
        .bind(i64::from(page.page_size))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(DncEntry {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    value: r.try_get("value")?,
                    reason: r.try_get("reason")?,
                    created_at: r.try_get("created_at")?,
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
        let mut tx = self.pool.begin().await?;
        let value: Option<String> =
            sqlx::query_scalar("DELETE FROM do_not_contact WHERE id = $1 AND user_id = $2 RETURNING value")
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

/// An import on PostgreSQL: one transaction, held until `finish`.
struct PgImport {
    tx: sqlx::Transaction<'static, Postgres>,
    state: ImportState,
}

#[async_trait::async_trait]
impl ImportSink for PgImport {
    async fn add(&mut self, drafts: Vec<TargetDraft>, report: &mut ImportReport) -> Result<()> {
        let kept = self.state.take(drafts, report);
        let (task_id, import_id, now) = (self.state.request.task_id, self.state.import_id, self.state.now);
        let source = self.state.request.source.as_str();
        // Column arrays through UNNEST: one statement and a handful of parameters per chunk.
        for chunk in kept.chunks(UNNEST_CHUNK) {
            let rows: Vec<TargetValues> = chunk.iter().map(TargetValues::of).collect();
            let column = |f: fn(&TargetValues) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
            sqlx::query(
                "INSERT INTO invite_targets (task_id, username, phone_number, user_id_platform, user_id_is_hint, \
                 first_name, last_name, full_name, user_data, source, status, source_row, import_id, username_key, \
                 user_id_key, phone_key, created_at, updated_at) \
                 SELECT $1, u.a, u.b, u.c, u.d, u.e, u.f, u.g, u.h, $11::targetsource, 'pending', u.r, $12, \
                        u.uk, u.ik, u.pk, $13, $13 \
                 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::text[], $8::text[], \
                             $9::jsonb[], $10::int[], $14::text[], $15::text[], $16::text[]) \
                      AS u(a, b, c, d, e, f, g, h, r, uk, ik, pk)",
            )
            .bind(task_id)
            .bind(column(|v| v.username.clone()))
            .bind(column(|v| v.phone.clone()))
            .bind(column(|v| v.user_id.clone()))
            .bind(rows.iter().map(|v| v.user_id_is_hint).collect::<Vec<_>>())
            .bind(column(|v| v.first_name.clone()))
            .bind(column(|v| v.last_name.clone()))
            .bind(column(|v| v.full_name.clone()))
            .bind(rows.iter().map(|v| v.extra.clone()).collect::<Vec<Value>>())
            .bind(rows.iter().map(|v| v.row as i32).collect::<Vec<_>>())
            .bind(source)
            .bind(import_id)
            .bind(now)
            .bind(column(|v| v.username_key.clone()))
            .bind(column(|v| v.user_id_key.clone()))
            .bind(column(|v| v.phone_key.clone()))
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn finish(self: Box<Self>, mut report: ImportReport) -> Result<ImportOutcome> {
        let PgImport { mut tx, state } = *self;
        if let Some(refused) = state.close(&mut report) {
            return Ok(refused);
        }
        let (task_id, import_id, now) = (state.request.task_id, state.import_id, state.now);
        sqlx::query(
            "UPDATE invite_tasks SET target_count = target_count + $1, updated_at = $2, version = version + 1 \
             WHERE id = $3",
        )
        .bind(report.stored as i64)
        .bind(now)
        .bind(task_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE invite_imports SET total_rows = $1, valid = $2, invalid = $3, duplicates = $4, excluded = $5, \
             stored = $6, report = $7 WHERE id = $8",
        )
        .bind(report.total_rows as i32)
        .bind(report.valid as i32)
        .bind(report.invalid as i32)
        .bind(report.duplicates as i32)
        .bind(report.excluded as i32)
        .bind(report.stored as i32)
        .bind(serde_json::to_value(&report).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(import_id)
        .execute(&mut *tx)
        .await?;
        let details = json!({"import_id": import_id, "dry_run": state.request.dry_run, "stored": report.stored});
        PgStore::insert_audit(
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
