//! The Integration Service's accounts mirrored on PostgreSQL. The user's mirrored rows are locked
//! (`FOR UPDATE`, in id order) while the mirroring decides, so two processes mirroring the same user
//! take turns, and the Account Manager's own row locks wait for a moment at most.

use chrono::{DateTime, Utc};
use domain::task::UserId;
use serde_json::Value;
use sqlx::Row;

use super::PgStore;
use crate::{
    error::Result,
    integration::{plan, IntegrationEntry, IntegrationSync, Mirrored, Step, REST_KEPT_REASON},
};

impl PgStore {
    pub(super) async fn sync_integration_accounts_impl(
        &self,
        user: UserId,
        platform: &str,
        entries: &[IntegrationEntry],
        now: DateTime<Utc>,
    ) -> Result<IntegrationSync> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, status, status_reason, session_facts FROM accounts \
             WHERE user_id = $1 AND platform = $2 AND kind = 'integration' ORDER BY id FOR UPDATE",
        )
        .bind(user.get())
        .bind(platform)
        .fetch_all(&mut *tx)
        .await?;
        let mirrored = rows
            .iter()
            .map(|r| {
                Ok(Mirrored {
                    id: r.try_get("id")?,
                    blocked: r.try_get::<String, _>("status")? == "blocked",
                    reason: r.try_get("status_reason")?,
                    facts: r.try_get::<Value, _>("session_facts")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut out = IntegrationSync::default();
        for step in plan(entries, &mirrored) {
            match step {
                Step::Insert(e) => {
                    let inserted = sqlx::query(
                        "INSERT INTO accounts (id, user_id, platform, name, kind, status, session_sealed, api_id, \
                         api_hash_sealed, session_facts, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, 'integration', 'active', $5, $6, $7, $8, $9, $9) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&e.id)
                    .bind(user.get())
                    .bind(platform)
                    .bind(&e.name)
                    .bind(&e.session_sealed)
                    .bind(e.api_id)
                    .bind(&e.api_hash_sealed)
                    .bind(
                        e.session_facts
                            .clone()
                            .unwrap_or_else(|| Value::Object(Default::default())),
                    )
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    if inserted.rows_affected() == 1 {
                        out.added.push(e.id.clone());
                    } else {
                        out.refused.push(e.id.clone());
                    }
                }
                Step::Refresh { entry: e, reactivate } => {
                    sqlx::query(
                        "UPDATE accounts SET name = $1, session_sealed = COALESCE($2, session_sealed), \
                         api_id = COALESCE($3, api_id), api_hash_sealed = COALESCE($4, api_hash_sealed), \
                         session_facts = COALESCE($5, session_facts), \
                         status = CASE WHEN NOT $6 THEN status \
                           WHEN status_until > $7 THEN 'resting' ELSE 'active' END, \
                         status_reason = CASE WHEN NOT $6 THEN status_reason \
                           WHEN status_until > $7 THEN $9 END, \
                         status_until = CASE WHEN NOT $6 OR status_until > $7 THEN status_until END, \
                         updated_at = $7 WHERE id = $8",
                    )
                    .bind(&e.name)
                    .bind(&e.session_sealed)
                    .bind(e.api_id)
                    .bind(&e.api_hash_sealed)
                    .bind(&e.session_facts)
                    .bind(reactivate)
                    .bind(now)
                    .bind(&e.id)
                    .bind(REST_KEPT_REASON)
                    .execute(&mut *tx)
                    .await?;
                    if reactivate {
                        out.reactivated.push(e.id.clone());
                    } else {
                        out.refreshed.push(e.id.clone());
                    }
                }
                Step::Block { id, reason } => {
                    sqlx::query(
                        "UPDATE accounts SET status = 'blocked', status_reason = $1, \
                         updated_at = $2 WHERE id = $3",
                    )
                    .bind(&reason)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    out.blocked.push(id.to_owned());
                }
            }
        }
        tx.commit().await?;
        Ok(out)
    }
}
