//! The Account Manager's accounts and ledger on PostgreSQL. Decisions on one account take turns on its
//! row (`SELECT … FOR UPDATE`), so two requests for an account's last slot get one grant and one wait.

use chrono::{DateTime, Utc};
use domain::task::UserId;
use serde_json::json;
use sqlx::{postgres::PgRow, Row};

use super::PgStore;
use crate::{
    am::{
        AccountKind, AccountRecord, AccountSecrets, AccountState, ChannelState, Decision, GrantRequest, Ledger,
        LedgerAsk, LedgerRows, NewAccount, Standing, Usage, Verdict,
    },
    error::Result,
    model::RequestMeta,
};

const ACCOUNT_COLUMNS: &str = "id, user_id, platform, name, kind, status, status_reason, status_until, \
     peer_flood_strikes, api_id, session_facts, lease_until, lease_epoch, created_at, updated_at";

fn account_from_row(row: &PgRow) -> Result<AccountRecord> {
    Ok(AccountRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        platform: row.try_get("platform")?,
        name: row.try_get("name")?,
        kind: AccountKind::parse(&row.try_get::<String, _>("kind")?)?,
        standing: Standing::from_columns(
            &row.try_get::<String, _>("status")?,
            row.try_get("status_reason")?,
            row.try_get("status_until")?,
        )?,
        peer_flood_strikes: i64::from(row.try_get::<i32, _>("peer_flood_strikes")?),
        api_id: row.try_get("api_id")?,
        session_facts: row.try_get("session_facts")?,
        lease_until: row.try_get("lease_until")?,
        lease_epoch: row.try_get("lease_epoch")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl PgStore {
    pub(super) async fn create_account_impl(
        &self,
        user: UserId,
        a: &NewAccount,
        now: DateTime<Utc>,
        meta: &RequestMeta,
    ) -> Result<AccountRecord> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (id, user_id, platform, name, kind, status, session_sealed, api_id, api_hash_sealed, \
             session_facts, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $9, $10, $11)",
        )
        .bind(&a.id)
        .bind(user.get())
        .bind(&a.platform)
        .bind(&a.name)
        .bind(a.kind.as_str())
        .bind(&a.session_sealed)
        .bind(a.api_id)
        .bind(&a.api_hash_sealed)
        .bind(&a.session_facts)
        .bind(now)
        .bind(now)
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
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
        let row = sqlx::query(&sql).bind(&a.id).fetch_one(&mut *tx).await?;
        let record = account_from_row(&row)?;
        tx.commit().await?;
        Ok(record)
    }

    pub(super) async fn list_accounts_impl(&self, user: UserId, platform: Option<&str>) -> Result<Vec<AccountRecord>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE user_id = $1 AND ($2::TEXT IS NULL OR platform = $2) ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(user.get())
            .bind(platform)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(account_from_row).collect()
    }

    pub(super) async fn account_states_impl(&self, user: UserId) -> Result<Vec<AccountState>> {
        let rows = sqlx::query(
            "SELECT id, platform, status, status_until, lease_until, lease_epoch, status_reason FROM accounts \
             WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user.get())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AccountState {
                    id: row.try_get(0)?,
                    platform: row.try_get(1)?,
                    standing: Standing::from_columns(&row.try_get::<String, _>(2)?, row.try_get(6)?, row.try_get(3)?)?,
                    lease_until: row.try_get(4)?,
                    lease_epoch: row.try_get(5)?,
                })
            })
            .collect()
    }

    pub(super) async fn get_account_impl(&self, user: UserId, id: &str) -> Result<Option<AccountRecord>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1 AND user_id = $2");
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(user.get())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    pub(super) async fn account_secrets_impl(&self, id: &str) -> Result<Option<AccountSecrets>> {
        let row = sqlx::query("SELECT user_id, kind, session_sealed, api_id FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let name: Option<String> =
            sqlx::query_scalar("DELETE FROM accounts WHERE id = $1 AND user_id = $2 RETURNING name")
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

    /// The ledger of one (account, action, channel) in one statement; None when there is no such account.
    async fn read_ledger(conn: &mut sqlx::PgConnection, req: &GrantRequest<'_>) -> Result<Option<Ledger>> {
        // With no channel, the channel parts match nothing.
        let row = sqlx::query(
            "SELECT a.status, a.status_reason, a.status_until, \
               (SELECT MAX(g.pause_until) FROM am_grants g WHERE g.account_id = a.id AND g.action = $2) \
                AS pause_until, \
               (SELECT array_agg(COALESCE(g.released_at, g.granted_at) ORDER BY COALESCE(g.released_at, g.granted_at)) FROM am_grants g \
                WHERE g.account_id = a.id AND g.action = $2 AND g.consumed AND COALESCE(g.released_at, g.granted_at) > $4) AS account_grants, \
               (SELECT COALESCE(s.reason, s.state) FROM account_channel_states s \
                WHERE s.account_id = a.id AND s.channel = $3) AS channel_closed, \
               (SELECT COALESCE(c.reason, c.state) FROM channel_states c \
                WHERE c.platform = a.platform AND c.channel = $3) AS channel_gone, \
               (SELECT array_agg(COALESCE(g.released_at, g.granted_at) ORDER BY COALESCE(g.released_at, g.granted_at)) FROM am_grants g WHERE g.account_id = a.id \
                AND g.action = $2 AND g.channel = $3 AND g.consumed AND COALESCE(g.released_at, g.granted_at) > $4) AS channel_grants, \
               (SELECT COUNT(*) FROM am_grants g WHERE g.account_id = a.id AND g.action = $2 AND g.channel = $3 \
                AND g.consumed) AS channel_lifetime \
             FROM accounts a WHERE a.id = $1",
        )
        .bind(req.account_id)
        .bind(req.action)
        .bind(req.channel)
        .bind(req.now - req.lookback)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let status: String = row.try_get("status")?;
        let ledger = Ledger {
            standing: Standing::from_columns(&status, row.try_get("status_reason")?, row.try_get("status_until")?)?,
            channel_closed: row.try_get("channel_closed")?,
            channel_gone: row.try_get("channel_gone")?,
            pause_until: row.try_get("pause_until")?,
            account_grants: row
                .try_get::<Option<Vec<DateTime<Utc>>>, _>("account_grants")?
                .unwrap_or_default(),
            channel_grants: row
                .try_get::<Option<Vec<DateTime<Utc>>>, _>("channel_grants")?
                .unwrap_or_default(),
            channel_lifetime: row.try_get::<i64, _>("channel_lifetime")? as u64,
        };
        Ok(Some(ledger))
    }

    /// The ledgers as they stand, without the account's lock (for questions, never for grants).
    pub(super) async fn am_ledgers_impl(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
        asks: &[LedgerAsk<'_>],
    ) -> Result<Option<Vec<Ledger>>> {
        let mut conn = self.pool.acquire().await?;
        type StandingRow = (String, Option<String>, Option<DateTime<Utc>>, String);
        let row: Option<StandingRow> =
            sqlx::query_as("SELECT status, status_reason, status_until, platform FROM accounts WHERE id = $1")
                .bind(account_id)
                .fetch_optional(&mut *conn)
                .await?;
        let Some((status, reason, until, platform)) = row else {
            return Ok(None);
        };
        let pauses: Vec<(String, DateTime<Utc>)> =
            sqlx::query_as("SELECT action, MAX(pause_until) FROM am_grants WHERE account_id = $1 GROUP BY action")
                .bind(account_id)
                .fetch_all(&mut *conn)
                .await?;
        let lookback = asks.iter().map(|a| a.lookback).max().unwrap_or_default();
        let grants: Vec<(String, Option<String>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT action, channel, COALESCE(released_at, granted_at) FROM am_grants WHERE account_id = $1 AND consumed \
             AND COALESCE(released_at, granted_at) > $2 ORDER BY COALESCE(released_at, granted_at)",
        )
        .bind(account_id)
        .bind(now - lookback)
        .fetch_all(&mut *conn)
        .await?;
        let lifetime: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT action, channel, COUNT(*) FROM am_grants WHERE account_id = $1 AND consumed \
             AND channel IS NOT NULL GROUP BY action, channel",
        )
        .bind(account_id)
        .fetch_all(&mut *conn)
        .await?;
        let closed: Vec<(String, String)> =
            sqlx::query_as("SELECT channel, COALESCE(reason, state) FROM account_channel_states WHERE account_id = $1")
                .bind(account_id)
                .fetch_all(&mut *conn)
                .await?;
        let channels: Vec<&str> = asks.iter().filter_map(|a| a.channel).collect();
        let gone: Vec<(String, String)> = sqlx::query_as(
            "SELECT channel, COALESCE(reason, state) FROM channel_states WHERE platform = $1 AND channel = ANY($2)",
        )
        .bind(&platform)
        .bind(&channels)
        .fetch_all(&mut *conn)
        .await?;
        let rows = LedgerRows {
            standing: Standing::from_columns(&status, reason, until)?,
            pauses,
            grants,
            lifetime,
            closed,
            gone,
        };
        Ok(Some(rows.ledgers(now, asks)))
    }

    pub(super) async fn am_grant_impl(
        &self,
        req: &GrantRequest<'_>,
        decide: &(dyn for<'l> Fn(&'l Ledger) -> Decision + Send + Sync),
    ) -> Result<Verdict> {
        let mut tx = self.pool.begin().await?;
        // First the account's row lock, then the ledger. They cannot be one statement: under READ
        // COMMITTED a statement's subqueries see the snapshot taken before it waited for the lock, and
        // would miss the grant the previous holder just wrote.
        let locked: Option<String> = sqlx::query_scalar("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
            .bind(req.account_id)
            .fetch_optional(&mut *tx)
            .await?;
        if locked.is_none() {
            return Ok(Verdict::NoSuchAccount);
        }
        let Some(ledger) = Self::read_ledger(&mut tx, req).await? else {
            return Ok(Verdict::NoSuchAccount);
        };
        let verdict = match decide(&ledger) {
            Decision::Grant { pause_until } => {
                let grant_id: i64 = sqlx::query_scalar(
                    "INSERT INTO am_grants (account_id, action, channel, granted_at, pause_until) VALUES ($1, $2, $3, $4, $5) \
                     RETURNING id",
                )
                .bind(req.account_id)
                .bind(req.action)
                .bind(req.channel)
                .bind(req.now)
                .bind(pause_until)
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
            // A pause runs from the end of the call, not from its grant: the platform sees calls, and
            // two calls must be a full pause apart however long the first took to go out.
            "UPDATE am_grants SET outcome = $1, consumed = $2, released_at = $3, \
             pause_until = CASE WHEN $2 THEN GREATEST(pause_until, $3 + (pause_until - granted_at)) \
             ELSE pause_until END WHERE id = $4 AND released_at IS NULL",
        )
        .bind(outcome)
        .bind(consumed)
        .bind(now)
        .bind(grant_id)
        .execute(&self.pool)
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
            "UPDATE accounts SET status = $1, status_reason = $2, status_until = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(standing.status())
        .bind(standing.reason())
        .bind(standing.until())
        .bind(now)
        .bind(account_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn am_add_strike_impl(&self, account_id: &str) -> Result<Option<i64>> {
        let strikes: Option<i32> = sqlx::query_scalar(
            "UPDATE accounts SET peer_flood_strikes = peer_flood_strikes + 1 WHERE id = $1 RETURNING peer_flood_strikes",
        )
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(strikes.map(i64::from))
    }

    /// Closes a channel for one account (`no_rights`, `exhausted`), on the given connection.
    async fn close_channel(
        conn: &mut sqlx::PgConnection,
        account_id: &str,
        channel: &str,
        state: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO account_channel_states (account_id, channel, state, reason, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (account_id, channel) DO UPDATE SET state = excluded.state, reason = excluded.reason, \
             updated_at = excluded.updated_at",
        )
        .bind(account_id)
        .bind(channel)
        .bind(state)
        .bind(reason)
        .bind(now)
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
        let mut conn = self.pool.acquire().await?;
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
            "INSERT INTO channel_states (platform, channel, state, reason, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (platform, channel) DO UPDATE SET state = excluded.state, reason = excluded.reason, \
             updated_at = excluded.updated_at",
        )
        .bind(platform)
        .bind(channel)
        .bind(state)
        .bind(reason)
        .bind(now)
        .execute(&self.pool)
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
            "UPDATE accounts SET lease_holder = $1, lease_until = $2, lease_epoch = lease_epoch + 1 \
             WHERE id = $3 AND (lease_until IS NULL OR lease_until <= $4) RETURNING lease_epoch",
        )
        .bind(holder)
        .bind(until)
        .bind(account_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub(super) async fn am_unlease_impl(&self, account_id: &str, epoch: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE accounts SET lease_holder = NULL, lease_until = NULL WHERE id = $1 AND lease_epoch = $2 \
             AND lease_until IS NOT NULL",
        )
        .bind(account_id)
        .bind(epoch)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn am_usage_impl(&self, account_id: &str, since: Option<DateTime<Utc>>) -> Result<Vec<Usage>> {
        let rows = sqlx::query(
            "SELECT action, channel, COUNT(*) AS n FROM am_grants WHERE account_id = $1 AND consumed \
             AND ($2::TIMESTAMPTZ IS NULL OR granted_at > $2) GROUP BY action, channel ORDER BY action, channel",
        )
        .bind(account_id)
        .bind(since)
        .fetch_all(&self.pool)
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
            "SELECT channel, state, reason FROM account_channel_states WHERE account_id = $1 ORDER BY channel",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
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
        Ok(
            sqlx::query_scalar("SELECT MAX(pause_until) FROM am_grants WHERE account_id = $1 AND action = $2")
                .bind(account_id)
                .bind(action)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
