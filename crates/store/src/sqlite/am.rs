//! The Account Manager's accounts and ledger on SQLite. The single writer connection serialises
//! every decision, so two requests for an account's last slot get one grant and one wait.

use chrono::{DateTime, Utc};
use domain::task::UserId;
use serde_json::json;
use sqlx::{sqlite::SqliteRow, Row};

use super::{from_micros, micros, opt_from_micros, SqliteStore};
use crate::{
    am::{
        AccountKind, AccountRecord, AccountSecrets, AccountState, ChannelState, Decision, GrantRequest, Ledger,
        NewAccount, Standing, Usage, Verdict,
    },
    error::{Result, StoreError},
    model::RequestMeta,
};

const ACCOUNT_COLUMNS: &str = "id, user_id, platform, name, kind, status, status_reason, status_until, \
     peer_flood_strikes, api_id, session_facts, lease_until, lease_epoch, created_at, updated_at";

fn account_from_row(row: &SqliteRow) -> Result<AccountRecord> {
    let facts: String = row.try_get("session_facts")?;
    Ok(AccountRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        platform: row.try_get("platform")?,
        name: row.try_get("name")?,
        kind: AccountKind::parse(&row.try_get::<String, _>("kind")?)?,
        standing: Standing::from_columns(
            &row.try_get::<String, _>("status")?,
            row.try_get("status_reason")?,
            opt_from_micros(row.try_get("status_until")?)?,
        )?,
        peer_flood_strikes: row.try_get("peer_flood_strikes")?,
        api_id: row.try_get("api_id")?,
        session_facts: serde_json::from_str(&facts).map_err(|e| StoreError::Corrupt(format!("session_facts: {e}")))?,
        lease_until: opt_from_micros(row.try_get("lease_until")?)?,
        lease_epoch: row.try_get("lease_epoch")?,
        created_at: from_micros(row.try_get("created_at")?)?,
        updated_at: from_micros(row.try_get("updated_at")?)?,
    })
}

fn times(v: Vec<i64>) -> Result<Vec<DateTime<Utc>>> {
    v.into_iter().map(from_micros).collect()
}

impl SqliteStore {
    pub(super) async fn create_account_impl(
        &self,
        user: UserId,
        a: &NewAccount,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<AccountRecord> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (id, user_id, platform, name, kind, status, session_sealed, api_id, api_hash_sealed, \
             session_facts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.id)
        .bind(user.get())
        .bind(&a.platform)
        .bind(&a.name)
        .bind(a.kind.as_str())
        .bind(&a.session_sealed)
        .bind(a.api_id)
        .bind(&a.api_hash_sealed)
        .bind(a.session_facts.to_string())
        .bind(micros(now))
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        let details = json!({"name": a.name, "platform": a.platform, "kind": a.kind.as_str()});
        Self::insert_audit(
            &mut tx,
            user,
            crate::audit_action::ACCOUNT_CREATE,
            ("account", a.id.clone()),
            details,
            now,
            meta,
        )
        .await?;
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?");
        let row = sqlx::query(&sql).bind(&a.id).fetch_one(&mut *tx).await?;
        let record = account_from_row(&row)?;
        tx.commit().await?;
        Ok(record)
    }

    pub(super) async fn list_accounts_impl(&self, user: UserId, platform: Option<&str>) -> Result<Vec<AccountRecord>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE user_id = ? AND (? IS NULL OR platform = ?) ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(user.get())
            .bind(platform)
            .bind(platform)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(account_from_row).collect()
    }

    pub(super) async fn account_states_impl(&self, user: UserId) -> Result<Vec<AccountState>> {
        let rows = sqlx::query(
            "SELECT id, platform, status, status_until, lease_until, lease_epoch, status_reason FROM accounts \
             WHERE user_id = ? ORDER BY created_at, id",
        )
        .bind(user.get())
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AccountState {
                    id: row.try_get(0)?,
                    platform: row.try_get(1)?,
                    standing: Standing::from_columns(
                        &row.try_get::<String, _>(2)?,
                        row.try_get(6)?,
                        opt_from_micros(row.try_get(3)?)?,
                    )?,
                    lease_until: opt_from_micros(row.try_get(4)?)?,
                    lease_epoch: row.try_get(5)?,
                })
            })
            .collect()
    }

    pub(super) async fn get_account_impl(&self, user: UserId, id: &str) -> Result<Option<AccountRecord>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ? AND user_id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(user.get())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    pub(super) async fn account_secrets_impl(&self, id: &str) -> Result<Option<AccountSecrets>> {
        let row = sqlx::query("SELECT user_id, kind, session_sealed, api_id FROM accounts WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| {
            Ok(AccountSecrets {
                user_id: r.try_get("user_id")?,
                kind: AccountKind::parse(&r.try_get::<String, _>("kind")?)?,
                session_sealed: r.try_get("session_sealed")?,
                api_id: r.try_get("api_id")?,
            })
        })
        .transpose()
    }

    pub(super) async fn delete_account_impl(
        &self,
        user: UserId,
        id: &str,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let name: Option<String> =
            sqlx::query_scalar("DELETE FROM accounts WHERE id = ? AND user_id = ? RETURNING name")
                .bind(id)
                .bind(user.get())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(name) = name else { return Ok(false) };
        Self::insert_audit(
            &mut tx,
            user,
            crate::audit_action::ACCOUNT_DELETE,
            ("account", id.to_string()),
            json!({"name": name}),
            now,
            meta,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The ledger of one (account, action, channel); None when there is no such account.
    async fn read_ledger(conn: &mut sqlx::SqliteConnection, req: &GrantRequest<'_>) -> Result<Option<Ledger>> {
        let row: Option<(String, Option<String>, Option<i64>, String)> =
            sqlx::query_as("SELECT status, status_reason, status_until, platform FROM accounts WHERE id = ?")
                .bind(req.account_id)
                .fetch_optional(&mut *conn)
                .await?;
        let Some((status, reason, until, platform)) = row else {
            return Ok(None);
        };
        let standing = Standing::from_columns(&status, reason, opt_from_micros(until)?)?;
        let since = micros(req.now - req.lookback);
        let pause_until: Option<i64> =
            sqlx::query_scalar("SELECT MAX(pause_until) FROM am_grants WHERE account_id = ? AND action = ?")
                .bind(req.account_id)
                .bind(req.action)
                .fetch_one(&mut *conn)
                .await?;
        let account_grants: Vec<i64> = sqlx::query_scalar(
            "SELECT granted_at FROM am_grants WHERE account_id = ? AND action = ? AND consumed AND granted_at > ? \
             ORDER BY granted_at",
        )
        .bind(req.account_id)
        .bind(req.action)
        .bind(since)
        .fetch_all(&mut *conn)
        .await?;
        let mut ledger = Ledger {
            standing,
            channel_closed: None,
            channel_gone: None,
            pause_until: pause_until.map(from_micros).transpose()?,
            account_grants: times(account_grants)?,
            channel_grants: Vec::new(),
            channel_lifetime: 0,
        };
        if let Some(channel) = req.channel {
            ledger.channel_closed = sqlx::query_scalar(
                "SELECT COALESCE(reason, state) FROM account_channel_states WHERE account_id = ? AND channel = ?",
            )
            .bind(req.account_id)
            .bind(channel)
            .fetch_optional(&mut *conn)
            .await?;
            ledger.channel_gone = sqlx::query_scalar(
                "SELECT COALESCE(reason, state) FROM channel_states WHERE platform = ? AND channel = ?",
            )
            .bind(&platform)
            .bind(channel)
            .fetch_optional(&mut *conn)
            .await?;
            let channel_grants: Vec<i64> = sqlx::query_scalar(
                "SELECT granted_at FROM am_grants WHERE account_id = ? AND action = ? AND channel = ? AND consumed \
                 AND granted_at > ? ORDER BY granted_at",
            )
            .bind(req.account_id)
            .bind(req.action)
            .bind(channel)
            .bind(since)
            .fetch_all(&mut *conn)
            .await?;
            ledger.channel_grants = times(channel_grants)?;
            let lifetime: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM am_grants WHERE account_id = ? AND action = ? AND channel = ? AND consumed",
            )
            .bind(req.account_id)
            .bind(req.action)
            .bind(channel)
            .fetch_one(&mut *conn)
            .await?;
            ledger.channel_lifetime = lifetime as u64;
        }
        Ok(Some(ledger))
    }

    /// The ledger as it stands, read without taking the writer (for questions, never for grants).
    pub(super) async fn am_ledger_impl(&self, req: &GrantRequest<'_>) -> Result<Option<Ledger>> {
        let mut conn = self.reader.acquire().await?;
        Self::read_ledger(&mut conn, req).await
    }

    pub(super) async fn am_grant_impl(
        &self,
        req: &GrantRequest<'_>,
        decide: &(dyn for<'l> Fn(&'l Ledger) -> Decision + Send + Sync),
    ) -> Result<Verdict> {
        let mut tx = self.writer.begin().await?;
        let Some(ledger) = Self::read_ledger(&mut tx, req).await? else {
            return Ok(Verdict::NoSuchAccount);
        };
        let verdict = match decide(&ledger) {
            Decision::Grant { pause_until } => {
                let grant_id: i64 = sqlx::query_scalar(
                    "INSERT INTO am_grants (account_id, action, channel, granted_at, pause_until) VALUES (?, ?, ?, ?, ?) \
                     RETURNING id",
                )
                .bind(req.account_id)
                .bind(req.action)
                .bind(req.channel)
                .bind(micros(req.now))
                .bind(micros(pause_until))
                .fetch_one(&mut *tx)
                .await?;
                Verdict::Granted { grant_id, pause_until }
            }
            Decision::Wait { until, reason } => Verdict::Wait { until, reason },
            Decision::Deny {
                reason,
                permanent,
                close_channel,
            } => {
                if let (true, Some(channel)) = (close_channel, req.channel) {
                    Self::close_channel(&mut tx, req.account_id, channel, "exhausted", &reason, req.now).await?;
                }
                Verdict::Denied { reason, permanent }
            }
        };
        tx.commit().await?;
        Ok(verdict)
    }

    pub(super) async fn am_release_impl(
        &self,
        grant_id: i64,
        outcome: &str,
        consumed: bool,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE am_grants SET outcome = ?, consumed = ?, released_at = ? WHERE id = ? AND released_at IS NULL",
        )
        .bind(outcome)
        .bind(consumed)
        .bind(micros(now))
        .bind(grant_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn am_set_standing_impl(
        &self,
        account_id: &str,
        standing: &Standing,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE accounts SET status = ?, status_reason = ?, status_until = ?, updated_at = ? WHERE id = ?",
        )
        .bind(standing.status())
        .bind(standing.reason())
        .bind(standing.until().map(micros))
        .bind(micros(now))
        .bind(account_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn am_add_strike_impl(&self, account_id: &str) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "UPDATE accounts SET peer_flood_strikes = peer_flood_strikes + 1 WHERE id = ? RETURNING peer_flood_strikes",
        )
        .bind(account_id)
        .fetch_optional(&self.writer)
        .await?)
    }

    /// Closes a channel for one account (`no_rights`, `exhausted`), on the given connection.
    async fn close_channel(
        conn: &mut sqlx::SqliteConnection,
        account_id: &str,
        channel: &str,
        state: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO account_channel_states (account_id, channel, state, reason, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (account_id, channel) DO UPDATE SET state = excluded.state, reason = excluded.reason, \
             updated_at = excluded.updated_at",
        )
        .bind(account_id)
        .bind(channel)
        .bind(state)
        .bind(reason)
        .bind(micros(now))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    pub(super) async fn am_close_channel_impl(
        &self,
        account_id: &str,
        channel: &str,
        state: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        Self::close_channel(&mut conn, account_id, channel, state, reason, now).await
    }

    pub(super) async fn am_channel_gone_impl(
        &self,
        platform: &str,
        channel: &str,
        state: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO channel_states (platform, channel, state, reason, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (platform, channel) DO UPDATE SET state = excluded.state, reason = excluded.reason, \
             updated_at = excluded.updated_at",
        )
        .bind(platform)
        .bind(channel)
        .bind(state)
        .bind(reason)
        .bind(micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(super) async fn am_lease_impl(
        &self,
        account_id: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "UPDATE accounts SET lease_holder = ?, lease_until = ?, lease_epoch = lease_epoch + 1 \
             WHERE id = ? AND (lease_until IS NULL OR lease_until <= ?) RETURNING lease_epoch",
        )
        .bind(holder)
        .bind(micros(until))
        .bind(account_id)
        .bind(micros(now))
        .fetch_optional(&self.writer)
        .await?)
    }

    pub(super) async fn am_unlease_impl(&self, account_id: &str, epoch: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE accounts SET lease_holder = NULL, lease_until = NULL WHERE id = ? AND lease_epoch = ? \
             AND lease_until IS NOT NULL",
        )
        .bind(account_id)
        .bind(epoch)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn am_usage_impl(&self, account_id: &str, since: Option<DateTime<Utc>>) -> Result<Vec<Usage>> {
        let rows = sqlx::query(
            "SELECT action, channel, COUNT(*) AS n FROM am_grants WHERE account_id = ? AND consumed \
             AND (? IS NULL OR granted_at > ?) GROUP BY action, channel ORDER BY action, channel",
        )
        .bind(account_id)
        .bind(since.map(micros))
        .bind(since.map(micros))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Usage {
                    action: r.try_get("action")?,
                    channel: r.try_get("channel")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    pub(super) async fn am_channel_states_impl(&self, account_id: &str) -> Result<Vec<ChannelState>> {
        let rows = sqlx::query(
            "SELECT channel, state, reason FROM account_channel_states WHERE account_id = ? ORDER BY channel",
        )
        .bind(account_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChannelState {
                    channel: r.try_get("channel")?,
                    state: r.try_get("state")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// The next time this account's pause for an action ends (for the scheduler and the limits view).
    pub(super) async fn am_pause_until_impl(&self, account_id: &str, action: &str) -> Result<Option<DateTime<Utc>>> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MAX(pause_until) FROM am_grants WHERE account_id = ? AND action = ?")
                .bind(account_id)
                .bind(action)
                .fetch_one(&self.reader)
                .await?;
        v.map(from_micros).transpose()
    }
}
