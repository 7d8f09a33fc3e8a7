//! PostgreSQL, for the platform profile: the spec's schema with its enum types.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    audience::{Target, TargetSource, TargetStatus},
    task::{Task, TaskCounters, TaskSpec, TaskStatus, UserId},
};
use serde_json::Value;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions, PgRow},
    PgConnection, PgPool, Postgres, Row,
};

use crate::{
    am::{
        AccountRecord, AccountSecrets, AccountState, ChannelState, Decision, GrantRequest, Ledger, LedgerAsk,
        NewAccount, Standing, Usage, Verdict,
    },
    changed_details, count_pending,
    engine::{Claim, NewLog, Settlement, TargetCounts, TaskAccount, TaskVersions, Transition},
    error::{Result, StoreError},
    import::{ImportRequest, ImportStart},
    model::{
        audit_action, fold, like_contains, AuditEntry, DeleteOutcome, DncAdded, DncEntry, ImportRecord, NewDncEntry,
        Page, PageRequest, RequestMeta, TargetDeleteOutcome, TargetQuery, TaskQuery, TaskRow, TaskSortField,
        UpdateOutcome,
    },
    report::{LogEntry, LogQuery, TargetOutcome, TaskStats},
    task_object,
    world::{WorldCall, WorldCallRequest, WorldChannel, WorldDecision, WorldDelivery, WorldView},
    Store, StoreOptions,
};

mod am;
mod audience;
mod engine;
mod integration;
mod report;
mod world;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pool: PgPool,
}

/// The advisory lock key of the scheduler leader ("invite-s" in ASCII).
const SCHEDULER_LOCK: i64 = 0x696e_7669_7465_2d73;

/// The leader's own connection: the lock lives exactly as long as it does.
struct PgLeadership(sqlx::PgConnection);

#[async_trait]
impl crate::Leadership for PgLeadership {
    async fn still_leading(&mut self) -> bool {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted",
        )
        .fetch_one(&mut self.0)
        .await
        .is_ok_and(|n| n > 0)
    }
}

const TASK_COLUMNS: &str = "id, user_id, name, description, platform, action_type, target_channel, message_template, \
     status::text AS status, status_reason, priority::text AS priority, scheduled_start, settings, target_count, \
     completed_count, failed_count, skipped_count, error_message, version, created_at, updated_at, started_at, finished_at";

fn task_from_row(row: &PgRow) -> Result<Task> {
    TaskRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        platform: row.try_get("platform")?,
        action_type: row.try_get("action_type")?,
        target_channel: row.try_get("target_channel")?,
        message_template: row.try_get("message_template")?,
        status: row.try_get("status")?,
        status_reason: row.try_get("status_reason")?,
        priority: row.try_get("priority")?,
        scheduled_start: row.try_get("scheduled_start")?,
        settings: row.try_get("settings")?,
        counters: TaskCounters {
            target_count: row.try_get("target_count")?,
            completed_count: row.try_get("completed_count")?,
            failed_count: row.try_get("failed_count")?,
            skipped_count: row.try_get("skipped_count")?,
        },
        error_message: row.try_get("error_message")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    }
    .into_task()
}

impl PgStore {
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self> {
        let connect: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(Self { pool })
    }

    async fn fetch_task(conn: &mut PgConnection, user: UserId, id: i64) -> Result<Option<Task>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM invite_tasks WHERE id = $1 AND user_id = $2");
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(user.get())
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_audit(
        conn: &mut PgConnection,
        user: UserId,
        action: &str,
        object: (&str, String),
        details: Value,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (user_id, action, object_type, object_id, request_id, client_addr, details, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(user.get())
        .bind(action)
        .bind(object.0)
        .bind(object.1)
        .bind(&meta.request_id)
        .bind(&meta.client_addr)
        .bind(details)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

fn push_task_filters<'a>(qb: &mut sqlx::QueryBuilder<'a, Postgres>, user: UserId, q: &'a TaskQuery) {
    qb.push(" FROM invite_tasks WHERE user_id = ").push_bind(user.get());
    if !q.statuses.is_empty() {
        qb.push(" AND status::text = ANY(")
            .push_bind(q.statuses.iter().map(|s| s.as_str().to_string()).collect::<Vec<_>>())
            .push(")");
    }
    if let Some(p) = q.platform {
        qb.push(" AND platform = ").push_bind(p.as_str());
    }
    if let Some(p) = q.priority {
        qb.push(" AND priority = ").push_bind(p.db_str()).push("::taskpriority");
    }
    if let Some(name) = &q.name_contains {
        qb.push(" AND name_folded LIKE ")
            .push_bind(like_contains(name))
            .push(" ESCAPE '\\'");
    }
    if let Some(t) = q.created_from {
        qb.push(" AND created_at >= ").push_bind(t);
    }
    if let Some(t) = q.created_to {
        qb.push(" AND created_at <= ").push_bind(t);
    }
}

fn sort_expr(field: TaskSortField) -> &'static str {
    match field {
        TaskSortField::CreatedAt => "created_at",
        TaskSortField::UpdatedAt => "updated_at",
        // Byte order of the folded name: the same on SQLite, and independent of the database locale.
        TaskSortField::Name => "name_folded COLLATE \"C\"",
        // Qualified: the bare names would sort by the `::text` output columns, alphabetically.
        TaskSortField::Priority => "invite_tasks.priority",
        TaskSortField::Status => "invite_tasks.status",
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn try_lead(&self) -> Result<Option<Box<dyn crate::Leadership>>> {
        let mut conn = self.pool.acquire().await?.detach();
        let led: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(SCHEDULER_LOCK)
            .fetch_one(&mut conn)
            .await?;
        Ok(led.then(|| Box::new(PgLeadership(conn)) as Box<dyn crate::Leadership>))
    }

    async fn migrate(&self) -> Result<usize> {
        let pending = self.pending_migrations().await?;
        MIGRATOR.run(&self.pool).await?;
        Ok(pending)
    }

    async fn pending_migrations(&self) -> Result<usize> {
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
            .fetch_one(&self.pool)
            .await?;
        let applied: Vec<i64> = match exists {
            Some(_) => {
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(&self.pool)
                    .await?
            }
            None => Vec::new(),
        };
        Ok(count_pending(&MIGRATOR, &applied))
    }

    async fn create_task(&self, user: UserId, spec: &TaskSpec, now: DateTime<Utc>, meta: &RequestMeta) -> Result<Task> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO invite_tasks (user_id, name, name_folded, description, platform, action_type, target_channel, \
             message_template, status, priority, scheduled_start, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::taskstatus, $10::taskpriority, $11, $12, $13, $13) RETURNING id",
        )
        .bind(user.get())
        .bind(&spec.name)
        .bind(fold(&spec.name))
        .bind(&spec.description)
        .bind(spec.platform.as_str())
        .bind(spec.action_type.as_str())
        .bind(spec.target_channel.as_ref().map(ToString::to_string))
        .bind(spec.message_template.as_ref().map(|t| t.as_str()))
        .bind(TaskStatus::Pending.as_str())
        .bind(spec.priority.db_str())
        .bind(spec.scheduled_start)
        .bind(Value::Object(spec.settings.clone()))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        Self::insert_audit(
            &mut tx,
            user,
            audit_action::TASK_CREATE,
            task_object(id),
            Value::Object(Default::default()),
            now,
            meta,
        )
        .await?;
        let task = Self::fetch_task(&mut tx, user, id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("task {id} vanished inside its own transaction")))?;
        tx.commit().await?;
        Ok(task)
    }

    async fn get_task(&self, user: UserId, id: i64) -> Result<Option<Task>> {
        let mut conn = self.pool.acquire().await?;
        Self::fetch_task(&mut conn, user, id).await
    }

    async fn list_tasks(&self, user: UserId, q: &TaskQuery) -> Result<Page<Task>> {
        let mut count = sqlx::QueryBuilder::new("SELECT COUNT(*)");
        push_task_filters(&mut count, user, q);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

        let mut select = sqlx::QueryBuilder::new(format!("SELECT {TASK_COLUMNS}"));
        push_task_filters(&mut select, user, q);
        let dir = if q.descending { "DESC" } else { "ASC" };
        select
            .push(format!(" ORDER BY {} {dir}, id {dir} LIMIT ", sort_expr(q.sort)))
            .push_bind(i64::from(q.page.page_size))
            .push(" OFFSET ")
            .push_bind(q.page.offset());
        let rows = select.build().fetch_all(&self.pool).await?;
        let items = rows.iter().map(task_from_row).collect::<Result<_>>()?;
        Ok(Page {
            items,
            total,
            request: q.page,
        })
    }

    async fn update_task(
        &self,
        user: UserId,
        id: i64,
        expected_version: i64,
        spec: &TaskSpec,
        changed: &[&str],
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<UpdateOutcome> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE invite_tasks SET name = $1, name_folded = $2, description = $3, platform = $4, action_type = $5, \
             target_channel = $6, message_template = $7, priority = $8::taskpriority, scheduled_start = $9, \
             settings = $10, version = version + 1, updated_at = $11 \
             WHERE id = $12 AND user_id = $13 AND version = $14",
        )
        .bind(&spec.name)
        .bind(fold(&spec.name))
        .bind(&spec.description)
        .bind(spec.platform.as_str())
        .bind(spec.action_type.as_str())
        .bind(spec.target_channel.as_ref().map(ToString::to_string))
        .bind(spec.message_template.as_ref().map(|t| t.as_str()))
        .bind(spec.priority.db_str())
        .bind(spec.scheduled_start)
        .bind(Value::Object(spec.settings.clone()))
        .bind(now)
        .bind(id)
        .bind(user.get())
        .bind(expected_version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(match Self::fetch_task(&mut tx, user, id).await? {
                Some(_) => UpdateOutcome::Stale,
                None => UpdateOutcome::NotFound,
            });
        }
        Self::insert_audit(
            &mut tx,
            user,
            audit_action::TASK_UPDATE,
            task_object(id),
            changed_details(changed),
            now,
            meta,
        )
        .await?;
        let task = Self::fetch_task(&mut tx, user, id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("task {id} vanished inside its own transaction")))?;
        tx.commit().await?;
        Ok(UpdateOutcome::Updated(Box::new(task)))
    }

    async fn delete_task(
        &self,
        user: UserId,
        id: i64,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<DeleteOutcome> {
        let mut tx = self.pool.begin().await?;
        // The targets first, in id order, as every write takes a target's row before its task's: the
        // deletion cascades from the task to its targets, and would otherwise wait for a settlement
        // that waits for the task (a deadlock).
        sqlx::query("SELECT id FROM invite_targets WHERE task_id = $1 ORDER BY id FOR UPDATE")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let name: Option<String> = sqlx::query_scalar(
            "DELETE FROM invite_tasks WHERE id = $1 AND user_id = $2 AND status <> 'IN_PROGRESS' RETURNING name",
        )
        .bind(id)
        .bind(user.get())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(name) = name else {
            return Ok(match Self::fetch_task(&mut tx, user, id).await? {
                Some(_) => DeleteOutcome::Running,
                None => DeleteOutcome::NotFound,
            });
        };
        Self::insert_audit(
            &mut tx,
            user,
            audit_action::TASK_DELETE,
            task_object(id),
            serde_json::json!({ "name": name }),
            now,
            meta,
        )
        .await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted)
    }

    async fn list_audit(&self, user: UserId, page: PageRequest) -> Result<Page<AuditEntry>> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE user_id = $1")
            .bind(user.get())
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT id, action, object_type, object_id, request_id, client_addr, details, created_at \
             FROM audit_log WHERE user_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
        )
        .bind(user.get())
        .bind(i64::from(page.page_size))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    user_id: user,
                    action: row.try_get("action")?,
                    object_type: row.try_get("object_type")?,
                    object_id: row.try_get("object_id")?,
                    request_id: row.try_get("request_id")?,
                    client_addr: row.try_get("client_addr")?,
                    details: row.try_get("details")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Page {
            items,
            total,
            request: page,
        })
    }
    async fn begin_import(
        &self,
        user: UserId,
        request: ImportRequest,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<ImportStart> {
        self.begin_import_impl(user, request, now, meta).await
    }

    async fn get_import(&self, user: UserId, task_id: i64, import_id: Option<i64>) -> Result<Option<ImportRecord>> {
        self.get_import_impl(user, task_id, import_id).await
    }

    async fn has_import(&self, user: UserId, task_id: i64, source: TargetSource, file_name: &str) -> Result<bool> {
        self.has_import_impl(user, task_id, source, file_name).await
    }

    async fn list_targets(&self, user: UserId, task_id: i64, query: &TargetQuery) -> Result<Option<Page<Target>>> {
        self.list_targets_impl(user, task_id, query).await
    }

    async fn delete_targets(
        &self,
        user: UserId,
        task_id: i64,
        ids: Option<&[i64]>,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<TargetDeleteOutcome> {
        self.delete_targets_impl(user, task_id, ids, now, meta).await
    }

    async fn add_do_not_contact(
        &self,
        user: UserId,
        entries: &[NewDncEntry],
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<DncAdded> {
        self.add_do_not_contact_impl(user, entries, now, meta).await
    }

    async fn list_do_not_contact(&self, user: UserId, page: PageRequest) -> Result<Page<DncEntry>> {
        self.list_do_not_contact_impl(user, page).await
    }

    async fn delete_do_not_contact(
        &self,
        user: UserId,
        id: i64,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<bool> {
        self.delete_do_not_contact_impl(user, id, now, meta).await
    }
    async fn create_account(
        &self,
        user: UserId,
        account: &NewAccount,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<AccountRecord> {
        self.create_account_impl(user, account, now, meta).await
    }

    async fn list_accounts(&self, user: UserId, platform: Option<&str>) -> Result<Vec<AccountRecord>> {
        self.list_accounts_impl(user, platform).await
    }

    async fn account_states(&self, user: UserId) -> Result<Vec<AccountState>> {
        self.account_states_impl(user).await
    }

    async fn get_account(&self, user: UserId, id: &str) -> Result<Option<AccountRecord>> {
        self.get_account_impl(user, id).await
    }

    async fn account_with_auth_key(&self, auth_key_id: i64) -> Result<Option<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT user_id, id FROM accounts WHERE (session_facts->>'auth_key_id')::BIGINT = $1 LIMIT 1",
        )
        .bind(auth_key_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn account_secrets(&self, account_id: &str) -> Result<Option<AccountSecrets>> {
        self.account_secrets_impl(account_id).await
    }

    async fn delete_account(&self, user: UserId, id: &str, now: DateTime<Utc>, meta: &RequestMeta) -> Result<bool> {
        self.delete_account_impl(user, id, now, meta).await
    }

    async fn sync_integration_accounts(
        &self,
        user: UserId,
        platform: &str,
        entries: &[crate::IntegrationEntry],
        now: DateTime<Utc>,
    ) -> Result<crate::IntegrationSync> {
        self.sync_integration_accounts_impl(user, platform, entries, now).await
    }

    async fn am_grant(
        &self,
        request: &GrantRequest<'_>,
        decide: &(dyn for<'l> Fn(&'l Ledger) -> Decision + Send + Sync),
    ) -> Result<Verdict> {
        self.am_grant_impl(request, decide).await
    }

    async fn am_ledgers(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
        asks: &[LedgerAsk<'_>],
    ) -> Result<Option<Vec<Ledger>>> {
        self.am_ledgers_impl(account_id, now, asks).await
    }

    async fn am_release(&self, grant_id: i64, outcome: &str, consumed: bool, now: DateTime<Utc>) -> Result<bool> {
        self.am_release_impl(grant_id, outcome, consumed, now).await
    }

    async fn am_set_standing(&self, account_id: &str, standing: &Standing, now: DateTime<Utc>) -> Result<bool> {
        self.am_set_standing_impl(account_id, standing, now).await
    }

    async fn am_standing(&self, account_id: &str) -> Result<Option<Standing>> {
        let row: Option<(String, Option<String>, Option<DateTime<Utc>>)> =
            sqlx::query_as("SELECT status, status_reason, status_until FROM accounts WHERE id = $1")
                .bind(account_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(status, reason, until)| Standing::from_columns(&status, reason, until))
            .transpose()
    }

    async fn am_add_strike(&self, account_id: &str) -> Result<Option<i64>> {
        self.am_add_strike_impl(account_id).await
    }

    async fn am_close_channel(
        &self,
        account_id: &str,
        channel: &str,
        state: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.am_close_channel_impl(account_id, channel, state, reason, now)
            .await
    }

    async fn am_channel_gone(
        &self,
        platform: &str,
        channel: &str,
        state: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.am_channel_gone_impl(platform, channel, state, reason, now).await
    }

    async fn am_lease(
        &self,
        account_id: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        self.am_lease_impl(account_id, holder, now, until).await
    }

    async fn am_unlease(&self, account_id: &str, epoch: i64) -> Result<bool> {
        self.am_unlease_impl(account_id, epoch).await
    }

    async fn am_usage(&self, account_id: &str, since: Option<DateTime<Utc>>) -> Result<Vec<Usage>> {
        self.am_usage_impl(account_id, since).await
    }

    async fn am_channel_states(&self, account_id: &str) -> Result<Vec<ChannelState>> {
        self.am_channel_states_impl(account_id).await
    }

    async fn am_pause_until(&self, account_id: &str, action: &str) -> Result<Option<DateTime<Utc>>> {
        self.am_pause_until_impl(account_id, action).await
    }

    async fn world_call(
        &self,
        req: &WorldCallRequest,
        decide: &(dyn for<'v> Fn(&'v WorldView) -> WorldDecision + Send + Sync),
    ) -> Result<(WorldCall, Option<WorldChannel>)> {
        self.world_call_impl(req, decide).await
    }

    async fn world_channel(&self, id: i64) -> Result<Option<WorldChannel>> {
        self.world_channel_impl(id).await
    }

    async fn world_members(&self, channel_id: i64) -> Result<Vec<i64>> {
        self.world_members_impl(channel_id).await
    }

    async fn world_record(&self) -> Result<(Vec<WorldCall>, Vec<WorldDelivery>)> {
        self.world_record_impl().await
    }

    async fn transition_task(
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
        self.transition_task_impl(user, id, from, to, reason, action, now, meta)
            .await
    }

    async fn engine_transition(
        &self,
        task_id: i64,
        from: &[TaskStatus],
        to: TaskStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.engine_transition_impl(task_id, from, to, reason, now).await
    }

    async fn set_task_reason(&self, task_id: i64, reason: Option<&str>, now: DateTime<Utc>) -> Result<()> {
        self.set_task_reason_impl(task_id, reason, now).await
    }

    async fn count_running_tasks(&self, user: UserId) -> Result<i64> {
        self.count_running_tasks_impl(user).await
    }

    async fn count_tasks_in_progress(&self) -> Result<Vec<(String, i64)>> {
        self.count_tasks_in_progress_impl().await
    }

    async fn engine_task_versions(&self) -> Result<Vec<TaskVersions>> {
        self.engine_task_versions_impl().await
    }

    async fn engine_tasks(&self) -> Result<Vec<Task>> {
        self.engine_tasks_impl().await
    }

    async fn engine_task(&self, task_id: i64) -> Result<Option<Task>> {
        self.engine_task_impl(task_id).await
    }

    async fn target_counts(&self, task_id: i64, now: DateTime<Utc>) -> Result<TargetCounts> {
        self.target_counts_impl(task_id, now).await
    }

    async fn claim_target(
        &self,
        task_id: i64,
        account_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Claim>> {
        self.claim_target_impl(task_id, account_id, now, lease_until).await
    }

    async fn reclaim_expired_targets(&self, now: DateTime<Utc>) -> Result<u64> {
        self.reclaim_expired_targets_impl(now).await
    }

    async fn settle_target(&self, settlement: &Settlement) -> Result<bool> {
        self.settle_target_impl(settlement).await
    }

    async fn end_open_targets(
        &self,
        task_id: i64,
        status: TargetStatus,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        self.end_open_targets_impl(task_id, status, reason, now).await
    }

    async fn hold_claim(
        &self,
        task_id: i64,
        target_id: i64,
        epoch: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Option<String>>> {
        self.hold_claim_impl(task_id, target_id, epoch, now, until).await
    }

    async fn pin_target(&self, task_id: i64, target_id: i64, epoch: i64, account_id: &str) -> Result<bool> {
        self.pin_target_impl(task_id, target_id, epoch, account_id).await
    }

    async fn end_orphaned_pins(
        &self,
        task_id: i64,
        usable: &[String],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        self.end_orphaned_pins_impl(task_id, usable, reason, now).await
    }

    async fn append_logs(&self, task_id: i64, logs: &[NewLog], now: DateTime<Utc>) -> Result<()> {
        self.append_logs_impl(task_id, logs, now).await
    }

    async fn recent_outcomes(&self, task_id: i64, n: i64) -> Result<Vec<String>> {
        self.recent_outcomes_impl(task_id, n).await
    }

    async fn remember_task_channel(
        &self,
        task_id: i64,
        account_id: &str,
        platform: &str,
        channel: &Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.remember_task_channel_impl(task_id, account_id, platform, channel, now)
            .await
    }

    async fn exclude_task_account(
        &self,
        task_id: i64,
        account_id: &str,
        platform: &str,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.exclude_task_account_impl(task_id, account_id, platform, why, now)
            .await
    }

    async fn count_task_account_use(
        &self,
        task_id: i64,
        account_id: &str,
        platform: &str,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.count_task_account_use_impl(task_id, account_id, platform, outcome, now)
            .await
    }

    async fn task_accounts(&self, task_id: i64) -> Result<Vec<TaskAccount>> {
        self.task_accounts_impl(task_id).await
    }

    async fn excluded_accounts(&self, task_id: i64) -> Result<Vec<String>> {
        self.excluded_accounts_impl(task_id).await
    }

    async fn channel_knowers(&self, target_channel: &str) -> Result<Vec<String>> {
        self.channel_knowers_impl(target_channel).await
    }

    async fn known_channel(&self, account_id: &str, target_channel: &str) -> Result<Option<Value>> {
        self.known_channel_impl(account_id, target_channel).await
    }

    async fn on_do_not_contact(&self, user: UserId, keys: &[String]) -> Result<bool> {
        self.on_do_not_contact_impl(user, keys).await
    }

    async fn task_logs(&self, user: UserId, task_id: i64, query: &LogQuery) -> Result<Option<Page<LogEntry>>> {
        self.task_logs_impl(user, task_id, query).await
    }

    async fn task_stats(&self, user: UserId, task_id: i64) -> Result<Option<TaskStats>> {
        self.task_stats_impl(user, task_id).await
    }

    async fn report_targets(
        &self,
        user: UserId,
        task_id: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Option<Vec<TargetOutcome>>> {
        self.report_targets_impl(user, task_id, after_id, limit).await
    }

    async fn delete_logs_before(&self, before: DateTime<Utc>, batch: i64) -> Result<u64> {
        self.delete_logs_before_impl(before, batch).await
    }
}
