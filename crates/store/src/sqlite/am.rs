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
        LedgerAsk, LedgerRows, NewAccount, Standing, Usage, Verdict,
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

/// Times stored as microseconds, from a comma-separated list (`group_concat`; None when there are none).
fn time_list(list: Option<String>) -> Result<Vec<DateTime<Utc>>> {
    list.as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .map_err(|e| StoreError::Corrupt(format!("a grant time {s:?}: {e}")))
                .and_then(from_micros)
        })
        .collect()
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
        // Read every few seconds by the scheduler: all rows come as one JSON array, since the driver
        // hands rows over one at a time and that, not the query, would cost the most.
        let rows: Option<String> = sqlx::query_scalar(
            "SELECT json_group_array(json_array(id, platform, status, status_reason, status_until, lease_until, \
             lease_epoch) ORDER BY created_at, id) FROM accounts WHERE user_id = ?",
        )
        .bind(user.get())
        .fetch_one(&self.reader)
        .await?;
        type Row = (String, String, String, Option<String>, Option<i64>, Option<i64>, i64);
        let rows: Vec<Row> = serde_json::from_str(rows.as_deref().unwrap_or("[]"))
            .map_err(|e| StoreError::Corrupt(format!("account states: {e}")))?;
        rows.into_iter()
            .map(|(id, platform, status, reason, until, lease_until, lease_epoch)| {
                Ok(AccountState {
                    id,
                    platform,
                    standing: Standing::from_columns(&status, reason, opt_from_micros(until)?)?,
                    lease_until: opt_from_micros(lease_until)?,
                    lease_epoch,
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
        // One statement: with no channel, the channel parts match nothing. Grant times come as one
        // comma-separated list each, oldest first.
        let row = sqlx::query(
            "SELECT a.status, a.status_reason, a.status_until, \
               (SELECT MAX(g.pause_until) FROM am_grants g WHERE g.account_id = a.id AND g.action = ?2) \
                AS pause_until, \
               (SELECT group_concat(COALESCE(g.released_at, g.granted_at) ORDER BY COALESCE(g.released_at, g.granted_at)) FROM am_grants g \
                WHERE g.account_id = a.id AND g.action = ?2 AND g.consumed AND COALESCE(g.released_at, g.granted_at) > ?4) AS account_grants, \
               (SELECT COALESCE(s.reason, s.state) FROM account_channel_states s \
                WHERE s.account_id = a.id AND s.channel = ?3) AS channel_closed, \
               (SELECT COALESCE(c.reason, c.state) FROM channel_states c \
                WHERE c.platform = a.platform AND c.channel = ?3) AS channel_gone, \
               (SELECT group_concat(COALESCE(g.released_at, g.granted_at) ORDER BY COALESCE(g.released_at, g.granted_at)) FROM am_grants g WHERE g.account_id = a.id \
                AND g.action = ?2 AND g.channel = ?3 AND g.consumed AND COALESCE(g.released_at, g.granted_at) > ?4) AS channel_grants, \
               (SELECT COUNT(*) FROM am_grants g WHERE g.account_id = a.id AND g.action = ?2 AND g.channel = ?3 \
                AND g.consumed) AS channel_lifetime \
             FROM accounts a WHERE a.id = ?1",
        )
        .bind(req.account_id)
        .bind(req.action)
        .bind(req.channel)
        .bind(micros(req.now - req.lookback))
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let status: String = row.try_get("status")?;
        Ok(Some(Ledger {
            standing: Standing::from_columns(
                &status,
                row.try_get("status_reason")?,
                opt_from_micros(row.try_get("status_until")?)?,
            )?,
            channel_closed: row.try_get("channel_closed")?,
            channel_gone: row.try_get("channel_gone")?,
            pause_until: opt_from_micros(row.try_get("pause_until")?)?,
            account_grants: time_list(row.try_get("account_grants")?)?,
            channel_grants: time_list(row.try_get("channel_grants")?)?,
            channel_lifetime: row.try_get::<i64, _>("channel_lifetime")? as u64,
        }))
    }

    /// The ledgers as they stand, read without taking the writer (for questions, never for grants).
    pub(super) async fn am_ledgers_impl(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
        asks: &[LedgerAsk<'_>],
    ) -> Result<Option<Vec<Ledger>>> {
        // One statement, each part of the ledger as one JSON array.
        let lookback = asks.iter().map(|a| a.lookback).max().unwrap_or_default();
        let channels: Vec<&str> = asks.iter().filter_map(|a| a.channel).collect();
        let row = sqlx::query(
            "SELECT a.status, a.status_reason, a.status_until, \
               (SELECT json_group_array(json_array(action, latest)) FROM \
                 (SELECT action, MAX(pause_until) AS latest FROM am_grants WHERE account_id = ?1 GROUP BY action)) \
                AS pauses, \
               (SELECT json_group_array(json_array(g.action, g.channel, COALESCE(g.released_at, g.granted_at)) ORDER BY COALESCE(g.released_at, g.granted_at)) \
                FROM am_grants g WHERE g.account_id = ?1 AND g.consumed AND COALESCE(g.released_at, g.granted_at) > ?2) AS grants, \
               (SELECT json_group_array(json_array(action, channel, n)) FROM \
                 (SELECT action, channel, COUNT(*) AS n FROM am_grants WHERE account_id = ?1 AND consumed \
                  AND channel IS NOT NULL GROUP BY action, channel)) AS lifetime, \
               (SELECT json_group_array(json_array(s.channel, COALESCE(s.reason, s.state))) \
                FROM account_channel_states s WHERE s.account_id = ?1) AS closed, \
               (SELECT json_group_array(json_array(c.channel, COALESCE(c.reason, c.state))) FROM channel_states c \
                WHERE c.platform = a.platform AND c.channel IN (SELECT value FROM json_each(?3))) AS gone \
             FROM accounts a WHERE a.id = ?1",
        )
        .bind(account_id)
        .bind(micros(now - lookback))
        .bind(serde_json::to_string(&channels).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        fn list<T: serde::de::DeserializeOwned>(row: &SqliteRow, column: &str) -> Result<Vec<T>> {
            let text: String = row.try_get(column)?;
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("ledger {column}: {e}")))
        }
        let status: String = row.try_get("status")?;
        let pauses: Vec<(String, i64)> = list(&row, "pauses")?;
        let grants: Vec<(String, Option<String>, i64)> = list(&row, "grants")?;
        let rows = LedgerRows {
            standing: Standing::from_columns(
                &status,
                row.try_get("status_reason")?,
                opt_from_micros(row.try_get("status_until")?)?,
            )?,
            pauses: pauses
                .into_iter()
                .map(|(a, t)| Ok((a, from_micros(t)?)))
                .collect::<Result<_>>()?,
            grants: grants
                .into_iter()
                .map(|(a, c, t)| Ok((a, c, from_micros(t)?)))
                .collect::<Result<_>>()?,
            lifetime: list(&row, "lifetime")?,
            closed: list(&row, "closed")?,
            gone: list(&row, "gone")?,
        };
        Ok(Some(rows.ledgers(now, asks)))
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
            // A pause runs from the end of the call, not from its grant: the platform sees calls, and
            // two calls must be a full pause apart however long the first took to go out. For the same
            // reason a released grant counts in the windows at its release time.
            "UPDATE am_grants SET outcome = ?1, consumed = ?2, released_at = ?3, \
             pause_until = CASE WHEN ?2 THEN MAX(pause_until, ?3 + (pause_until - granted_at)) ELSE pause_until END \
             WHERE id = ?4 AND released_at IS NULL",
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
