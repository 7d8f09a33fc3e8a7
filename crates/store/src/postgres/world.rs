//! The sandbox world on PostgreSQL. A call takes its account's row (`SELECT … FOR UPDATE`), then its
//! channel's, always in that order, and reads the view only after holding both: under READ COMMITTED
//! each later statement sees what the previous holder committed. Calls of one account take turns, and
//! so do calls about one channel, whichever accounts and processes make them.

use chrono::{DateTime, Utc};
use sqlx::{postgres::PgRow, PgConnection, Row};

use super::PgStore;
use crate::{
    error::{Result, StoreError},
    world::{
        WorldCall, WorldCallRequest, WorldChannel, WorldChannelRef, WorldDecision, WorldDelivery, WorldEffect,
        WorldView,
    },
};

const CHANNEL_COLUMNS: &str = "id, key, kind, title, added, created_at";
const CALL_COLUMNS: &str = "id, at, account_id, method, channel_id, user_id, answer";
/// The counts a decision reads, in one statement (run after the locks are held, so its snapshot has what
/// the previous holders committed): $1 account, $2 method, $3 method_since, $4 now, $5 strangers_since,
/// $6 channel id, $7 user id, $8 random id (NULLs match nothing).
const VIEW_SQL: &str = "SELECT \
     (SELECT COUNT(*) FROM sandbox_calls WHERE account_id = $1 AND method = $2 AND at >= $3 AND at <= $4), \
     (SELECT MIN(at) FROM sandbox_calls WHERE account_id = $1 AND method = $2 AND at >= $3 AND at <= $4), \
     (SELECT COUNT(*) FROM sandbox_calls WHERE account_id = $1 AND contacted_stranger AND at >= $5 AND at <= $4), \
     EXISTS (SELECT 1 FROM sandbox_members WHERE channel_id = $6 AND user_id = $7), \
     EXISTS (SELECT 1 FROM sandbox_deliveries WHERE account_id = $1 AND random_id = $8 AND kind = 'message')";
const DELIVERY_COLUMNS: &str = "id, call_id, at, account_id, kind, channel_id, user_id, random_id, text_sha256";

fn channel_from_row(row: &PgRow) -> Result<WorldChannel> {
    Ok(WorldChannel {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        kind: row.try_get("kind")?,
        title: row.try_get("title")?,
        added: row.try_get("added")?,
        created_at: row.try_get("created_at")?,
    })
}

fn call_from_row(row: &PgRow) -> Result<WorldCall> {
    Ok(WorldCall {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        account_id: row.try_get("account_id")?,
        method: row.try_get("method")?,
        channel_id: row.try_get("channel_id")?,
        user_id: row.try_get("user_id")?,
        answer: row.try_get("answer")?,
    })
}

fn delivery_from_row(row: &PgRow) -> Result<WorldDelivery> {
    Ok(WorldDelivery {
        id: row.try_get("id")?,
        call_id: row.try_get("call_id")?,
        at: row.try_get("at")?,
        account_id: row.try_get("account_id")?,
        kind: row.try_get("kind")?,
        channel_id: row.try_get("channel_id")?,
        user_id: row.try_get("user_id")?,
        random_id: row.try_get("random_id")?,
        text_sha256: row.try_get("text_sha256")?,
    })
}

/// What an effect is about, checked before anything is written: an effect the request cannot carry is
/// the caller's bug, and the whole call is rolled back.
fn effect_needs(effect: &WorldEffect, channel: Option<&WorldChannel>, req: &WorldCallRequest) -> Result<()> {
    let missing = match effect {
        WorldEffect::None | WorldEffect::Restrict { .. } => None,
        WorldEffect::AddMember if channel.is_none() => Some("AddMember needs a channel"),
        WorldEffect::AddMember if req.user_id.is_none() => Some("AddMember needs a user id"),
        WorldEffect::AddMember => None,
        WorldEffect::DeliverMessage { .. } if req.user_id.is_none() => Some("DeliverMessage needs a user id"),
        WorldEffect::DeliverMessage { .. } if req.random_id.is_none() => Some("DeliverMessage needs a random id"),
        WorldEffect::DeliverMessage { .. } => None,
    };
    match missing {
        Some(what) => Err(StoreError::Refused(format!("world effect: {what}"))),
        None => Ok(()),
    }
}

impl PgStore {
    /// The channel with this id; `lock` takes its row until the transaction ends.
    async fn world_channel_by_id(conn: &mut PgConnection, id: i64, lock: bool) -> Result<Option<WorldChannel>> {
        let sql = format!(
            "SELECT {CHANNEL_COLUMNS} FROM sandbox_channels WHERE id = $1{}",
            if lock { " FOR UPDATE" } else { "" }
        );
        let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?;
        row.as_ref().map(channel_from_row).transpose()
    }

    /// The account's restriction and strikes, its row made on its first call and locked.
    async fn world_account(conn: &mut PgConnection, account_id: &str) -> Result<(Option<DateTime<Utc>>, i64)> {
        const SELECT: &str =
            "SELECT restricted_until, strikes::BIGINT FROM sandbox_accounts WHERE account_id = $1 FOR UPDATE";
        if let Some(row) = sqlx::query_as(SELECT)
            .bind(account_id)
            .fetch_optional(&mut *conn)
            .await?
        {
            return Ok(row);
        }
        sqlx::query("INSERT INTO sandbox_accounts (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING")
            .bind(account_id)
            .execute(&mut *conn)
            .await?;
        Ok(sqlx::query_as(SELECT).bind(account_id).fetch_one(&mut *conn).await?)
    }

    /// The channel a call names, found by id or found-or-made by key, with its row locked.
    async fn world_find_channel(
        conn: &mut PgConnection,
        channel: &WorldChannelRef,
        now: DateTime<Utc>,
    ) -> Result<Option<WorldChannel>> {
        let (id, key, kind, title) = match channel {
            WorldChannelRef::Id(id) => return Self::world_channel_by_id(conn, *id, true).await,
            WorldChannelRef::Key { id, key, kind, title } => (id, key, kind, title),
        };
        let by_key = format!("SELECT {CHANNEL_COLUMNS} FROM sandbox_channels WHERE key = $1 FOR UPDATE");
        if let Some(row) = sqlx::query(&by_key).bind(key).fetch_optional(&mut *conn).await? {
            return channel_from_row(&row).map(Some);
        }
        // Made with the caller's facts. A concurrent maker of the same key wins (this insert waits for it to
        // commit, then does nothing — whichever unique index it meets first, hence no conflict target); when
        // nothing has the key afterwards, the id belongs to another key's channel: an error, never a merge.
        sqlx::query(
            "INSERT INTO sandbox_channels (id, key, kind, title, added, created_at) VALUES ($1, $2, $3, $4, 0, $5) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(key)
        .bind(kind)
        .bind(title)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        let row = sqlx::query(&by_key)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| {
                StoreError::Duplicate("sandbox_channels.id: the id belongs to a channel with another key".into())
            })?;
        channel_from_row(&row).map(Some)
    }

    pub(super) async fn world_call_impl(
        &self,
        req: &WorldCallRequest,
        decide: &(dyn for<'v> Fn(&'v WorldView) -> WorldDecision + Send + Sync),
    ) -> Result<(WorldCall, Option<WorldChannel>)> {
        let mut tx = self.pool.begin().await?;

        // The account's lock first, then the channel's, then the view. They cannot be one statement: a
        // statement's subqueries would see the snapshot taken before it waited for a lock.
        let (restricted_until, strikes) = Self::world_account(&mut tx, &req.account_id).await?;
        let channel = match &req.channel {
            Some(c) => Self::world_find_channel(&mut tx, c, req.now).await?,
            None => None,
        };
        let channel_id = channel.as_ref().map(|c| c.id);
        let (method_calls, oldest, strangers_contacted, is_member, random_id_used): (
            i64,
            Option<DateTime<Utc>>,
            i64,
            bool,
            bool,
        ) = sqlx::query_as(VIEW_SQL)
            .bind(&req.account_id)
            .bind(&req.method)
            .bind(req.method_since)
            .bind(req.now)
            .bind(req.strangers_since)
            .bind(channel_id)
            .bind(req.user_id)
            .bind(req.random_id)
            .fetch_one(&mut *tx)
            .await?;

        let view = WorldView {
            restricted_until,
            strikes,
            method_calls,
            oldest_method_call: oldest,
            strangers_contacted,
            channel,
            is_member,
            random_id_used,
        };
        let decision = decide(&view);
        effect_needs(&decision.effect, view.channel.as_ref(), req)?;

        let call_id: i64 = sqlx::query_scalar(
            "INSERT INTO sandbox_calls (at, account_id, method, channel_id, user_id, answer, contacted_stranger) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(req.now)
        .bind(&req.account_id)
        .bind(&req.method)
        .bind(channel_id)
        .bind(req.user_id)
        .bind(&decision.answer)
        .bind(decision.contacted_stranger)
        .fetch_one(&mut *tx)
        .await?;

        // The channel as it is after the effect: only adding a member changes it.
        let mut after = view.channel;
        match &decision.effect {
            WorldEffect::None => {}
            WorldEffect::AddMember => {
                sqlx::query(
                    "INSERT INTO sandbox_members (channel_id, user_id, added_by, added_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(channel_id)
                .bind(req.user_id)
                .bind(&req.account_id)
                .bind(req.now)
                .execute(&mut *tx)
                .await?;
                let sql =
                    format!("UPDATE sandbox_channels SET added = added + 1 WHERE id = $1 RETURNING {CHANNEL_COLUMNS}");
                let row = sqlx::query(&sql).bind(channel_id).fetch_one(&mut *tx).await?;
                after = Some(channel_from_row(&row)?);
                sqlx::query(
                    "INSERT INTO sandbox_deliveries (call_id, at, account_id, kind, channel_id, user_id) \
                     VALUES ($1, $2, $3, 'invite', $4, $5)",
                )
                .bind(call_id)
                .bind(req.now)
                .bind(&req.account_id)
                .bind(channel_id)
                .bind(req.user_id)
                .execute(&mut *tx)
                .await?;
            }
            WorldEffect::DeliverMessage { text_sha256 } => {
                sqlx::query(
                    "INSERT INTO sandbox_deliveries (call_id, at, account_id, kind, channel_id, user_id, random_id, \
                     text_sha256) VALUES ($1, $2, $3, 'message', $4, $5, $6, $7)",
                )
                .bind(call_id)
                .bind(req.now)
                .bind(&req.account_id)
                .bind(channel_id)
                .bind(req.user_id)
                .bind(req.random_id)
                .bind(text_sha256)
                .execute(&mut *tx)
                .await?;
            }
            WorldEffect::Restrict { until } => {
                sqlx::query(
                    "UPDATE sandbox_accounts SET restricted_until = $1, strikes = strikes + 1 WHERE account_id = $2",
                )
                .bind(until)
                .bind(&req.account_id)
                .execute(&mut *tx)
                .await?;
            }
        }

        tx.commit().await?;
        let call = WorldCall {
            id: call_id,
            at: req.now,
            account_id: req.account_id.clone(),
            method: req.method.clone(),
            channel_id,
            user_id: req.user_id,
            answer: decision.answer,
        };
        Ok((call, after))
    }

    pub(super) async fn world_channel_impl(&self, id: i64) -> Result<Option<WorldChannel>> {
        let mut conn = self.pool.acquire().await?;
        Self::world_channel_by_id(&mut conn, id, false).await
    }

    pub(super) async fn world_members_impl(&self, channel_id: i64) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar("SELECT user_id FROM sandbox_members WHERE channel_id = $1 ORDER BY added_at, user_id")
                .bind(channel_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub(super) async fn world_record_impl(&self) -> Result<(Vec<WorldCall>, Vec<WorldDelivery>)> {
        // One snapshot for both: every delivery's call is among the calls.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let sql = format!("SELECT {CALL_COLUMNS} FROM sandbox_calls ORDER BY id");
        let calls = sqlx::query(&sql).fetch_all(&mut *tx).await?;
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM sandbox_deliveries ORDER BY id");
        let deliveries = sqlx::query(&sql).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok((
            calls.iter().map(call_from_row).collect::<Result<_>>()?,
            deliveries.iter().map(delivery_from_row).collect::<Result<_>>()?,
        ))
    }
}
