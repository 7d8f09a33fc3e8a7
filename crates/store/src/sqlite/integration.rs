//! The Integration Service's accounts mirrored on SQLite: the single writer connection makes the read
//! and the changes one step.

use chrono::{DateTime, Utc};
use domain::task::UserId;
use sqlx::Row;

use super::{micros, SqliteStore};
use crate::{
    error::{Result, StoreError},
    integration::{plan, IntegrationEntry, IntegrationSync, Mirrored, Step, REST_KEPT_REASON},
};

impl SqliteStore {
    pub(super) async fn sync_integration_accounts_impl(
        &self,
        user: UserId,
        platform: &str,
        entries: &[IntegrationEntry],
        now: DateTime<Utc>,
    ) -> Result<IntegrationSync> {
        let mut tx = self.writer.begin().await?;
        let rows = sqlx::query(
            "SELECT id, status, status_reason, session_facts FROM accounts \
             WHERE user_id = ? AND platform = ? AND kind = 'integration' ORDER BY id",
        )
        .bind(user.get())
        .bind(platform)
        .fetch_all(&mut *tx)
        .await?;
        let mirrored = rows
            .iter()
            .map(|r| {
                let facts: String = r.try_get("session_facts")?;
                Ok(Mirrored {
                    id: r.try_get("id")?,
                    blocked: r.try_get::<String, _>("status")? == "blocked",
                    reason: r.try_get("status_reason")?,
                    facts: serde_json::from_str(&facts)
                        .map_err(|e| StoreError::Corrupt(format!("session_facts: {e}")))?,
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
                         VALUES (?, ?, ?, ?, 'integration', 'active', ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
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
                            .as_ref()
                            .map_or_else(|| "{}".to_owned(), |f| f.to_string()),
                    )
                    .bind(micros(now))
                    .bind(micros(now))
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
                        "UPDATE accounts SET name = ?1, session_sealed = COALESCE(?2, session_sealed), \
                         api_id = COALESCE(?3, api_id), api_hash_sealed = COALESCE(?4, api_hash_sealed), \
                         session_facts = COALESCE(?5, session_facts), \
                         status = CASE WHEN NOT ?6 THEN status \
                           WHEN status_until > ?7 THEN 'resting' ELSE 'active' END, \
                         status_reason = CASE WHEN NOT ?6 THEN status_reason \
                           WHEN status_until > ?7 THEN ?9 END, \
                         status_until = CASE WHEN NOT ?6 OR status_until > ?7 THEN status_until END, \
                         updated_at = ?7 WHERE id = ?8",
                    )
                    .bind(&e.name)
                    .bind(&e.session_sealed)
                    .bind(e.api_id)
                    .bind(&e.api_hash_sealed)
                    .bind(e.session_facts.as_ref().map(|f| f.to_string()))
                    .bind(reactivate)
                    .bind(micros(now))
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
                        "UPDATE accounts SET status = 'blocked', status_reason = ?, \
                         updated_at = ? WHERE id = ?",
                    )
                    .bind(&reason)
                    .bind(micros(now))
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
