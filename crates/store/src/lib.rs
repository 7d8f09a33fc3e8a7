//! The only code that speaks SQL. One [`Store`] interface, implemented for SQLite (standalone) and
//! PostgreSQL (platform). Every query a user can reach takes the owner's [`UserId`]: there is no way to
//! fetch another user's task through this interface.

pub mod am;
pub mod engine;
mod error;
mod import;
mod integration;
mod model;
mod postgres;
pub mod report;
mod sqlite;
pub mod world;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    audience::{Target, TargetSource, TargetStatus},
    task::{Task, TaskSpec, TaskStatus, UserId},
};
use serde_json::Value;

pub use am::{
    AccountKind, AccountRecord, AccountSecrets, AccountState, ChannelState, Decision, GrantRequest, Ledger, LedgerAsk,
    NewAccount, Standing, Usage, Verdict,
};
pub use engine::{Claim, NewLog, Settlement, TargetCounts, TaskAccount, TaskVersions, Transition};
pub use error::{Result, StoreError};
pub use import::{ImportRequest, ImportSink, ImportStart};
pub use integration::{IntegrationEntry, IntegrationSync, INTEGRATION_REASON_PREFIX};
pub use model::{
    audit_action, AuditEntry, DeleteOutcome, DncAdded, DncEntry, ImportOutcome, ImportRecord, NewDncEntry, Page,
    PageRequest, RequestMeta, TargetDeleteOutcome, TargetQuery, TaskQuery, TaskSortField, UpdateOutcome,
};
pub use postgres::PgStore;
pub use report::{
    AccountTargetCount, HourCount, LogEntry, LogQuery, OutcomeCount, ReasonCount, TargetOutcome, TaskStats,
};
pub use sqlite::SqliteStore;
pub use world::{
    WorldCall, WorldCallRequest, WorldChannel, WorldChannelRef, WorldDecision, WorldDelivery, WorldEffect, WorldView,
};

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Answers when the database does.
    async fn ping(&self) -> Result<()>;

    /// Tries to become the one scheduler leader. PostgreSQL: a session advisory lock held on a connection
    /// of its own (it is freed when that connection ends, so a dead leader's lock goes with it);
    /// SQLite: one process owns the file, so it always leads. None while another process leads.
    async fn try_lead(&self) -> Result<Option<Box<dyn Leadership>>>;

    /// Applies the embedded migrations that have not run yet; returns how many ran.
    async fn migrate(&self) -> Result<usize>;

    /// How many embedded migrations have not been applied.
    async fn pending_migrations(&self) -> Result<usize>;

    /// Stores a new `PENDING` task and its audit entry in one transaction.
    async fn create_task(&self, user: UserId, spec: &TaskSpec, now: DateTime<Utc>, meta: &RequestMeta) -> Result<Task>;

    async fn get_task(&self, user: UserId, id: i64) -> Result<Option<Task>>;

    async fn list_tasks(&self, user: UserId, query: &TaskQuery) -> Result<Page<Task>>;

    /// Replaces the definition of a task that is still at `expected_version`, recording the changed
    /// fields in the audit log in the same transaction.
    #[allow(clippy::too_many_arguments)]
    async fn update_task(
        &self,
        user: UserId,
        id: i64,
        expected_version: i64,
        spec: &TaskSpec,
        changed: &[&str],
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<UpdateOutcome>;

    /// Deletes a task that is not running (with its targets and logs), and audits it.
    async fn delete_task(&self, user: UserId, id: i64, now: DateTime<Utc>, meta: &RequestMeta)
        -> Result<DeleteOutcome>;

    /// The user's own audit entries, newest first.
    async fn list_audit(&self, user: UserId, page: PageRequest) -> Result<Page<AuditEntry>>;

    /// Starts an import into a task that is neither running nor finished: one transaction, held by the
    /// returned sink until it finishes (see [`ImportSink`]), with an import record and an audit entry.
    async fn begin_import(
        &self,
        user: UserId,
        request: ImportRequest,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<ImportStart>;

    /// The newest import of a task (or the one named), with its report; `None` when there is none.
    async fn get_import(&self, user: UserId, task_id: i64, import_id: Option<i64>) -> Result<Option<ImportRecord>>;

    /// Whether an import from `source` named `file_name` was stored into the task (dry runs do not
    /// count): how an import that must happen once is remembered.
    async fn has_import(&self, user: UserId, task_id: i64, source: TargetSource, file_name: &str) -> Result<bool>;

    /// A task's targets; `None` when the task is not the user's.
    async fn list_targets(&self, user: UserId, task_id: i64, query: &TargetQuery) -> Result<Option<Page<Target>>>;

    /// Removes targets (all, or the listed ids) from a task that has not started.
    async fn delete_targets(
        &self,
        user: UserId,
        task_id: i64,
        ids: Option<&[i64]>,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<TargetDeleteOutcome>;

    /// Adds entries to the user's do-not-contact list (entries already there are kept as they are).
    async fn add_do_not_contact(
        &self,
        user: UserId,
        entries: &[NewDncEntry],
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<DncAdded>;

    async fn list_do_not_contact(&self, user: UserId, page: PageRequest) -> Result<Page<DncEntry>>;

    /// Removes one entry; false when the user has no such entry.
    async fn delete_do_not_contact(
        &self,
        user: UserId,
        id: i64,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<bool>;

    // The Account Manager's accounts and ledger. Account ids are global (UUIDs); the calls a user can
    // reach take the user id, the Account Manager's own calls do not.

    async fn create_account(
        &self,
        user: UserId,
        account: &NewAccount,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<AccountRecord>;

    async fn list_accounts(&self, user: UserId, platform: Option<&str>) -> Result<Vec<AccountRecord>>;

    async fn get_account(&self, user: UserId, id: &str) -> Result<Option<AccountRecord>>;

    /// The user's accounts on every platform, as the scheduler looks at them (a narrow, cheap read).
    async fn account_states(&self, user: UserId) -> Result<Vec<AccountState>>;

    /// Whose account (user id, account id), if any, holds the session with this auth key id — across all
    /// users: one key used from two places draws AUTH_KEY_DUPLICATED.
    async fn account_with_auth_key(&self, auth_key_id: i64) -> Result<Option<(i64, String)>>;

    /// An account's kind and sealed session, for the worker acting as it (the engine's own call).
    async fn account_secrets(&self, account_id: &str) -> Result<Option<AccountSecrets>>;

    /// Removes an account of the registry; its grants stay in the ledger.
    async fn delete_account(&self, user: UserId, id: &str, now: DateTime<Utc>, meta: &RequestMeta) -> Result<bool>;

    /// Mirrors the user's accounts on a platform as the Integration Service lists them now (see
    /// [`IntegrationEntry`]), in one transaction: new usable ones are added as kind `integration`,
    /// known ones refreshed (a secret given as None is kept), and mirrored ones that are blocked there
    /// or no longer listed are blocked here. Rows are never deleted, so a spent budget stays spent.
    async fn sync_integration_accounts(
        &self,
        user: UserId,
        platform: &str,
        entries: &[IntegrationEntry],
        now: DateTime<Utc>,
    ) -> Result<IntegrationSync>;

    /// Reads the ledger of one (account, action, channel) under a per-account lock, asks `decide`, and
    /// writes a granted slot before returning it.
    async fn am_grant(
        &self,
        request: &GrantRequest<'_>,
        decide: &(dyn for<'l> Fn(&'l Ledger) -> Decision + Send + Sync),
    ) -> Result<Verdict>;

    /// The same ledger for each asked (action, channel) of one account, as of `now`, in one read without
    /// a lock and deciding nothing: for questions such as "when may this account next act, and where"
    /// (None: no such account).
    async fn am_ledgers(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
        asks: &[LedgerAsk<'_>],
    ) -> Result<Option<Vec<Ledger>>>;

    /// Records a grant's outcome; `consumed` false gives the slot back (the platform did nothing).
    async fn am_release(&self, grant_id: i64, outcome: &str, consumed: bool, now: DateTime<Utc>) -> Result<bool>;

    async fn am_set_standing(&self, account_id: &str, standing: &Standing, now: DateTime<Utc>) -> Result<bool>;

    /// The account's stored standing (None: no such account).
    async fn am_standing(&self, account_id: &str) -> Result<Option<Standing>>;

    /// Counts one more PEER_FLOOD and returns the count (None: no such account).
    async fn am_add_strike(&self, account_id: &str) -> Result<Option<i64>>;

    /// This account may not act in this channel (`no_rights`, `exhausted`).
    async fn am_close_channel(
        &self,
        account_id: &str,
        channel: &str,
        state: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// The channel takes no one from any account (`full`, `not_found`).
    async fn am_channel_gone(
        &self,
        platform: &str,
        channel: &str,
        state: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Takes the account's lease unless another holder's has not expired; returns its epoch.
    async fn am_lease(
        &self,
        account_id: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<i64>>;

    /// Gives the lease of that epoch back (a newer lease is left alone).
    async fn am_unlease(&self, account_id: &str, epoch: i64) -> Result<bool>;

    /// Consumed grants per action and channel since a time (all time when None).
    async fn am_usage(&self, account_id: &str, since: Option<DateTime<Utc>>) -> Result<Vec<Usage>>;

    async fn am_channel_states(&self, account_id: &str) -> Result<Vec<ChannelState>>;

    async fn am_pause_until(&self, account_id: &str, action: &str) -> Result<Option<DateTime<Utc>>>;

    // The sandbox world (see [`world`]).

    /// One call to the world: under the acting account's lock (and the channel's, when it names one),
    /// reads the [`WorldView`], asks `decide`, and writes the call, its effect and any delivery in one
    /// transaction. Returns the recorded call and the channel as it is after the effect.
    async fn world_call(
        &self,
        req: &WorldCallRequest,
        decide: &(dyn for<'v> Fn(&'v WorldView) -> WorldDecision + Send + Sync),
    ) -> Result<(WorldCall, Option<WorldChannel>)>;

    /// The channel with this id, if the world has made it.
    async fn world_channel(&self, id: i64) -> Result<Option<WorldChannel>>;

    /// The members of a channel, in the order they were added.
    async fn world_members(&self, channel_id: i64) -> Result<Vec<i64>>;

    /// The whole record, oldest first (for audits).
    async fn world_record(&self) -> Result<(Vec<WorldCall>, Vec<WorldDelivery>)>;

    // The campaign engine (see [`engine`]). The calls a user reaches take the user id; the engine's own
    // calls (scheduler, workers) do not.

    /// A user's lifecycle move: from one of `from` to `to`, with the reason shown next to the status, in
    /// one conditional update with its audit entry (`action`: `start`, `pause`, `resume`, `cancel`).
    /// The first move to `IN_PROGRESS` sets `started_at`; a final status sets `finished_at`.
    #[allow(clippy::too_many_arguments)]
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
    ) -> Result<Transition>;

    /// The engine's own move (completion, a circuit breaker, a scheduled start): as
    /// [`Store::transition_task`] without a user, audited as the system's. False when the task was not
    /// in one of `from`.
    async fn engine_transition(
        &self,
        task_id: i64,
        from: &[TaskStatus],
        to: TaskStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Shows why a running task is not moving ("preempted by task N", "waiting for an account until …")
    /// without changing its status; nothing when the task is no longer `IN_PROGRESS`.
    async fn set_task_reason(&self, task_id: i64, reason: Option<&str>, now: DateTime<Utc>) -> Result<()>;

    /// How many of the user's tasks are `IN_PROGRESS` or `PAUSED` (the running-task limit counts both).
    async fn count_running_tasks(&self, user: UserId) -> Result<i64>;

    /// How many tasks of all users are `IN_PROGRESS`, per platform (for the metrics).
    async fn count_tasks_in_progress(&self) -> Result<Vec<(String, i64)>>;

    /// The tasks the scheduler looks after: `IN_PROGRESS`, and `PENDING` ones with a scheduled start
    /// (they start by themselves).
    async fn engine_tasks(&self) -> Result<Vec<Task>>;

    /// Of the same tasks, the id, version and roster version: a scheduler that remembers a task at
    /// that version need not read it again.
    async fn engine_task_versions(&self) -> Result<Vec<TaskVersions>>;

    async fn engine_task(&self, task_id: i64) -> Result<Option<Task>>;

    /// Where a task's targets are, as of `now`.
    async fn target_counts(&self, task_id: i64, now: DateTime<Utc>) -> Result<TargetCounts>;

    /// Hands the next due target of the task to the account: pending, `next_attempt_at` empty or
    /// passed, not pinned to another account; lowest id first. It becomes `in_progress` under a lease
    /// until `lease_until` with a new epoch. `None` when there is none for this account.
    async fn claim_target(
        &self,
        task_id: i64,
        account_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Claim>>;

    /// Gives targets whose lease has expired (their worker died) back as pending, keeping any pin;
    /// returns how many.
    async fn reclaim_expired_targets(&self, now: DateTime<Utc>) -> Result<u64>;

    /// Ends or gives back a claimed target, only while its epoch is current, with its log rows and the
    /// task's counters (`completed_count` for succeeded and already done, `failed_count` for failed and
    /// unknown, `skipped_count` for skipped), in one transaction. False when the claim is stale.
    async fn settle_target(&self, settlement: &Settlement) -> Result<bool>;

    /// Ends every open target of a task (not in progress) with this final status and reason, counting
    /// them in the task's counters; returns how many.
    async fn end_open_targets(
        &self,
        task_id: i64,
        status: TargetStatus,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64>;

    /// Whether the claim of this epoch still holds the target: it is neither settled nor claimed again,
    /// and its lease has not run out (from then on it may be reclaimed and go to another account at any
    /// moment). If it holds, its lease is extended to `until` (never shortened) and the account the target
    /// is pinned to, if any, is returned; None otherwise. A worker asks before it starts a job and again
    /// right before the call, so a job that outlived its claim (a redelivered or slow one) makes no call.
    async fn hold_claim(
        &self,
        task_id: i64,
        target_id: i64,
        epoch: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Option<String>>>;

    /// Pins a claimed target to the account about to send it a message, before the send: should the
    /// worker die between the send and its commit, only this account (same random id) may try again.
    async fn pin_target(&self, task_id: i64, target_id: i64, epoch: i64, account_id: &str) -> Result<bool>;

    /// Ends, as `unknown`, the open targets of a task pinned to an account that is not in `usable` (a
    /// message whose outcome is unknown may be retried only by its account; when that account can no
    /// longer send, nobody may); counted as failed. Returns how many.
    async fn end_orphaned_pins(&self, task_id: i64, usable: &[String], reason: &str, now: DateTime<Utc>)
        -> Result<u64>;

    /// Appends rows to a task's execution log.
    async fn append_logs(&self, task_id: i64, logs: &[NewLog], now: DateTime<Utc>) -> Result<()>;

    /// The `details.outcome` of the task's newest `n` log rows of actions (`invite`, `message`), newest
    /// first (for the circuit breaker).
    async fn recent_outcomes(&self, task_id: i64, n: i64) -> Result<Vec<String>>;

    /// The account found the task's channel: kept on its row for the task (added when missing, its
    /// status kept). The roster version of every task with this channel moves.
    async fn remember_task_channel(
        &self,
        task_id: i64,
        account_id: &str,
        platform: &str,
        channel: &Value,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// The account may not work for the task any more: `excluded`, with `why` in
    /// `stats.excluded_because` next to its counts. The task's roster version moves.
    async fn exclude_task_account(
        &self,
        task_id: i64,
        account_id: &str,
        platform: &str,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Counts one action of the account for the task and its outcome in the row's `stats`
    /// (`actions`, `outcomes.<outcome>`), in one write that leaves status, channel and `updated_at` alone.
    async fn count_task_account_use(
        &self,
        task_id: i64,
        account_id: &str,
        platform: &str,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    async fn task_accounts(&self, task_id: i64) -> Result<Vec<TaskAccount>>;

    /// The accounts excluded from the task (the scheduler reads them again when the task's roster
    /// version moves).
    async fn excluded_accounts(&self, task_id: i64) -> Result<Vec<String>>;

    /// The accounts that know this channel (`target_channel` as tasks store it): they looked it up,
    /// for any task.
    async fn channel_knowers(&self, target_channel: &str) -> Result<Vec<String>>;

    /// What this account last found of this channel (`target_channel` as tasks store it) for any task:
    /// an account looks a channel up once, whichever task it works for.
    async fn known_channel(&self, account_id: &str, target_channel: &str) -> Result<Option<Value>>;

    /// Whether any of these keys (`u:`, `i:`, `p:` as `Identifier::dedup_key` writes them) is on the
    /// user's do-not-contact list.
    async fn on_do_not_contact(&self, user: UserId, keys: &[String]) -> Result<bool>;

    // Reports (see [`report`]). The user's calls answer None when the task is not theirs.

    /// A page of the task's execution log, newest first.
    async fn task_logs(&self, user: UserId, task_id: i64, query: &LogQuery) -> Result<Option<Page<LogEntry>>>;

    /// The task's outcomes grouped by reason, action outcome, account and UTC hour.
    async fn task_stats(&self, user: UserId, task_id: i64) -> Result<Option<TaskStats>>;

    /// Up to `limit` of the task's targets with ids above `after_id`, lowest id first: keyset pages, so
    /// an export of any size reads the table once.
    async fn report_targets(
        &self,
        user: UserId,
        task_id: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Option<Vec<TargetOutcome>>>;

    /// Retention (the engine's call): deletes up to `batch` execution-log rows written before `before`,
    /// oldest first, in one transaction; returns how many. Nothing else is touched: not targets, not
    /// the Account Manager's ledger.
    async fn delete_logs_before(&self, before: DateTime<Utc>, batch: i64) -> Result<u64>;
}

pub type SharedStore = Arc<dyn Store>;

/// Held while this process is the scheduler leader.
#[async_trait]
pub trait Leadership: Send {
    /// The heartbeat: false once the lock is lost (its connection broke), and the process must stop
    /// scheduling until it leads again.
    async fn still_leading(&mut self) -> bool;
}

/// Connection settings shared by both backends.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// SQLite only: reads share the one writing connection instead of a pool of readers. For a single
    /// caller that waits for each answer (the simulator): a reader's page cache is emptied by every
    /// write of another connection, so one connection reads from a warm cache.
    pub single_connection: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            single_connection: false,
        }
    }
}

/// Opens the store a URL names: `sqlite:PATH` (created if missing) or `postgres://…`.
pub async fn open(url: &str, options: &StoreOptions) -> Result<SharedStore> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Arc::new(SqliteStore::open(url, options).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PgStore::open(url, options).await?)),
        other => Err(StoreError::UnsupportedUrl(other.to_string())),
    }
}

/// How many of a migrator's migrations are not in the applied set.
fn count_pending(migrator: &sqlx::migrate::Migrator, applied: &[i64]) -> usize {
    migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .count()
}

/// Rows per multi-row INSERT: well under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
const INSERT_CHUNK: usize = 1000;

/// The audit log's name for a task.
fn task_object(id: i64) -> (&'static str, String) {
    ("task", id.to_string())
}

/// Details recorded for an update: the fields that changed.
fn changed_details(changed: &[&str]) -> serde_json::Value {
    serde_json::json!({ "changed": changed })
}
