//! The local account registry (standalone profile): register Telegram sessions or sandbox accounts,
//! list them with their standing and usage, read their limits, remove them. Sessions and API hashes
//! are sealed at rest and never returned.

use account_manager::{session::TelegramSession, AccountManager, Policy};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use chrono::{DateTime, Duration, Utc};
use domain::{
    outcome::AmAction,
    task::Platform,
    validation::{FieldError, FieldErrors},
    UserId,
};
use serde_json::{json, Map, Value};
use store::{AccountKind, AccountRecord, NewAccount};

use crate::api::{
    auth::AuthUser,
    error::{ApiError, ApiResult},
    query::Query,
    request::{JsonBody, Meta},
    AppState,
};

fn text_field<'a>(body: &'a Value, name: &'static str, errors: &mut FieldErrors) -> Option<&'a str> {
    match body.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            errors.push(FieldError::new(
                &["body", name],
                "string_type",
                format!("{name} must be a string"),
            ));
            None
        }
    }
}

/// `POST /accounts`: `{"platform": "telegram", "name": "…", "session": "<Telethon StringSession or grammers
/// DcOption JSON>",
/// "api_id"?: 123, "api_hash"?: "…"}` or `{"platform": "telegram", "sandbox": true, "name": "…"}`.
pub async fn register(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Meta(meta): Meta,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut errors = FieldErrors::default();
    match text_field(&body, "platform", &mut errors) {
        Some(p) if p.eq_ignore_ascii_case("telegram") => {}
        Some(p) if ["instagram", "whatsapp"].contains(&p.to_ascii_lowercase().as_str()) => {
            errors.push(FieldError::new(
                &["body", "platform"],
                "value_error",
                format!(
                    "platform not supported yet: {} (supported: telegram)",
                    p.to_ascii_lowercase()
                ),
            ))
        }
        Some(p) => errors.push(FieldError::new(
            &["body", "platform"],
            "enum",
            format!("platform must be one of telegram, instagram, whatsapp (got {p:?})"),
        )),
        None => errors.push(FieldError::missing(&["body", "platform"])),
    }
    let name = match text_field(&body, "name", &mut errors).map(str::trim) {
        Some(n) if (1..=255).contains(&n.chars().count()) => Some(n.to_string()),
        Some(_) => {
            errors.push(FieldError::new(
                &["body", "name"],
                "string_too_long",
                "name must be 1 to 255 characters",
            ));
            None
        }
        None => {
            errors.push(FieldError::missing(&["body", "name"]));
            None
        }
    };
    let sandbox = match body.get("sandbox") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new(
                &["body", "sandbox"],
                "bool_type",
                "sandbox must be true or false",
            ));
            false
        }
    };
    let session = text_field(&body, "session", &mut errors);
    let parsed = match (sandbox, session) {
        (true, Some(_)) => {
            errors.push(FieldError::new(
                &["body", "session"],
                "value_error",
                "a sandbox account has no session; leave session out",
            ));
            None
        }
        (true, None) => None,
        (false, None) => {
            errors.push(FieldError::new(
                &["body", "session"],
                "missing",
                "session is required (a Telethon StringSession or a grammers DcOption JSON), or set sandbox: true",
            ));
            None
        }
        (false, Some(s)) => match TelegramSession::parse(s) {
            Ok(session) => Some(session),
            Err(e) => {
                // The message never repeats the session.
                errors.push(FieldError::new(
                    &["body", "session"],
                    "value_error",
                    format!("session {e}"),
                ));
                None
            }
        },
    };
    let api_id = match body.get("api_id") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64().filter(|id| (1..=i64::from(i32::MAX)).contains(id)) {
            Some(id) => Some(id as i32),
            None => {
                errors.push(FieldError::new(
                    &["body", "api_id"],
                    "int_parsing",
                    "api_id must be a positive integer",
                ));
                None
            }
        },
    };
    let api_hash = text_field(&body, "api_hash", &mut errors).map(str::trim);
    if let Some(h) = api_hash {
        if h.len() != 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            errors.push(FieldError::new(
                &["body", "api_hash"],
                "value_error",
                "api_hash must be 32 hexadecimal characters",
            ));
        }
    }
    if api_id.is_some() != api_hash.is_some() {
        errors.push(FieldError::new(
            &["body", "api_hash"],
            "value_error",
            "api_id and api_hash go together: give both or neither",
        ));
    }
    let credentials = match (api_id, api_hash) {
        (Some(id), Some(hash)) => Some((id, hash.to_ascii_lowercase())),
        _ => state
            .telegram_api
            .as_ref()
            .map(|(id, hash)| (*id, hash.expose().to_string())),
    };
    if !sandbox && parsed.is_some() && credentials.is_none() {
        errors.push(FieldError::new(
            &["body", "api_id"],
            "missing",
            "api_id and api_hash are required: no service-wide INVITE_TELEGRAM_API_ID/INVITE_TELEGRAM_API_HASH is configured",
        ));
    }
    errors.into_result(|| ())?;
    let name = name.expect("validated");

    if let Some(session) = &parsed {
        // One key used from two places draws AUTH_KEY_DUPLICATED and can end the session for good.
        match state.store.account_with_auth_key(session.auth_key.id()).await? {
            Some((owner, id)) if owner == user.get() => {
                return Err(ApiError::Conflict(format!(
                    "this session is already registered as account {id}; one key used twice draws AUTH_KEY_DUPLICATED"
                )))
            }
            Some(_) => {
                return Err(ApiError::Conflict(
                    "this session is already registered by another user; one key used twice draws AUTH_KEY_DUPLICATED"
                        .into(),
                ))
            }
            None => {}
        }
    }
    // A session's account id comes from its auth key: deleting and registering it again finds the
    // same ledger (a spent budget stays spent), and the primary key refuses a second copy.
    let id = match &parsed {
        Some(session) => format!("tg-{:016x}", session.auth_key.id() as u64),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let account = NewAccount {
        id: id.clone(),
        platform: "telegram".into(),
        name,
        kind: if sandbox {
            AccountKind::Sandbox
        } else {
            AccountKind::Session
        },
        session_sealed: parsed.as_ref().map(|s| {
            state
                .sealer
                .seal(s.to_telethon().as_bytes(), &format!("account:{id}:session"))
        }),
        api_id: credentials.as_ref().filter(|_| !sandbox).map(|(id, _)| *id),
        api_hash_sealed: credentials
            .as_ref()
            .filter(|_| !sandbox)
            .map(|(_, hash)| state.sealer.seal(hash.as_bytes(), &format!("account:{id}:api_hash"))),
        session_facts: parsed
            .as_ref()
            .map(|s| json!(s.public_facts()))
            .unwrap_or_else(|| json!({})),
    };
    let record = state
        .store
        .create_account(user, &account, state.clock.now(), &meta)
        .await?;
    tracing::info!(
        account_id = record.id.as_str(),
        kind = record.kind.as_str(),
        "account registered"
    );
    Ok((StatusCode::CREATED, Json(account_json(&record, state.clock.now()))))
}

fn account_json(a: &AccountRecord, now: DateTime<Utc>) -> Value {
    let standing = AccountManager::effective(&a.standing, now);
    let mut out = json!({
        "id": a.id,
        "platform": a.platform,
        "name": a.name,
        "kind": a.kind.as_str(),
        "status": standing.status(),
        "status_reason": standing.reason(),
        "status_until": standing.until(),
        "api_id": a.api_id,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    });
    if a.kind != AccountKind::Sandbox {
        out["session"] = a.session_facts.clone();
    }
    out
}

async fn own_account(state: &AppState, user: UserId, id: &str) -> ApiResult<AccountRecord> {
    state
        .store
        .get_account(user, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account {id} not found")))
}

/// Usage of each action over the last 24 hours against the policy's daily caps, and when the account
/// may next invite and message.
async fn usage_json(state: &AppState, a: &AccountRecord) -> ApiResult<Value> {
    let now = state.clock.now();
    let day = state.store.am_usage(&a.id, Some(now - Duration::hours(24))).await?;
    let mut usage = Map::new();
    for action in AmAction::ALL {
        let used: i64 = day
            .iter()
            .filter(|u| u.action == action.as_str())
            .map(|u| u.count)
            .sum();
        let cap = daily_cap(state.am.policy(), *action);
        usage.insert(action.as_str().into(), json!({"used_24h": used, "cap_24h": cap}));
    }
    let next = |action| state.am.next_available_at(&a.id, action, None);
    Ok(json!({
        "usage": usage,
        "next_invite_at": next(AmAction::Invite).await.map_err(am_error)?,
        "next_message_at": next(AmAction::Message).await.map_err(am_error)?,
    }))
}

fn am_error(e: account_manager::AmError) -> ApiError {
    match e {
        account_manager::AmError::Store(s) => ApiError::Store(s),
    }
}

fn daily_cap(policy: &Policy, action: AmAction) -> Option<u32> {
    policy
        .action(action)
        .per_account
        .iter()
        .find(|w| w.period == Duration::hours(24))
        .map(|w| w.cap)
}

/// `GET /accounts[?platform=telegram]`
pub async fn list(State(state): State<AppState>, AuthUser(user): AuthUser, q: Query) -> ApiResult<Json<Value>> {
    let platform = match q.get("platform") {
        None => None,
        Some(p) => match Platform::parse(p) {
            Some(p) => Some(p.as_str()),
            None => {
                return Err(FieldError::new(
                    &["query", "platform"],
                    "enum",
                    format!("platform must be one of telegram, instagram, whatsapp (got {p:?})"),
                )
                .into())
            }
        },
    };
    if let Some(integration) = &state.integration {
        // The stored copy is still worth showing when the Integration Service cannot be asked.
        if let Err(e) = integration.sync(user, platform.unwrap_or("telegram")).await {
            tracing::warn!(error = %e, "accounts listed without asking the Integration Service");
        }
    }
    let accounts = state.store.list_accounts(user, platform).await?;
    let now = state.clock.now();
    let mut items = Vec::with_capacity(accounts.len());
    for a in &accounts {
        let mut item = account_json(a, now);
        if let (Value::Object(item), Value::Object(usage)) = (&mut item, usage_json(&state, a).await?) {
            item.extend(usage);
        }
        items.push(item);
    }
    Ok(Json(json!({ "items": items, "total": items.len() })))
}

pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let a = own_account(&state, user, &id).await?;
    let mut out = account_json(&a, state.clock.now());
    if let (Value::Object(item), Value::Object(usage)) = (&mut out, usage_json(&state, &a).await?) {
        item.extend(usage);
    }
    Ok(Json(out))
}

/// `GET /accounts/{id}/limits`: the spec's `TelegramAccountLimitsResponse`, with real values.
pub async fn limits(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let a = own_account(&state, user, &id).await?;
    let now = state.clock.now();
    let policy = state.am.policy();
    let invite = policy.action(AmAction::Invite);
    let channel_day = invite
        .per_channel
        .iter()
        .find(|w| w.period == Duration::hours(24))
        .map(|w| w.cap);
    let day = state.store.am_usage(&a.id, Some(now - Duration::hours(24))).await?;
    let hour = state.store.am_usage(&a.id, Some(now - Duration::hours(1))).await?;
    let sum = |rows: &[store::Usage], action: AmAction| -> i64 {
        rows.iter()
            .filter(|u| u.action == action.as_str())
            .map(|u| u.count)
            .sum()
    };
    let mut restrictions = Vec::new();
    let standing = AccountManager::effective(&a.standing, now);
    if let Some(reason) = standing.reason() {
        restrictions.push(match standing.until() {
            Some(until) => format!("{} until {}: {reason}", standing.status(), until.to_rfc3339()),
            None => format!("{}: {reason}", standing.status()),
        });
    }
    for c in state.store.am_channel_states(&a.id).await? {
        restrictions.push(format!(
            "{} in {}: {}",
            c.state,
            c.channel,
            c.reason.unwrap_or_default()
        ));
    }
    Ok(Json(json!({
        "account_id": a.id,
        "limits": {
            "daily_invites": daily_cap(policy, AmAction::Invite),
            "daily_invites_per_channel": channel_day,
            "lifetime_invites_per_channel": invite.lifetime_per_channel,
            "daily_messages": daily_cap(policy, AmAction::Message),
            "invite_pause_seconds": [invite.pause.0.num_seconds(), invite.pause.1.num_seconds()],
            "message_pause_seconds": [policy.action(AmAction::Message).pause.0.num_seconds(), policy.action(AmAction::Message).pause.1.num_seconds()],
            "flood_wait_buffer": policy.flood_margin.num_seconds(),
        },
        "current_usage": {
            "daily_invites_used": sum(&day, AmAction::Invite),
            "daily_messages_used": sum(&day, AmAction::Message),
            "hourly_invites_used": sum(&hour, AmAction::Invite),
        },
        "restrictions": restrictions,
        "last_updated": now,
    })))
}

pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    Meta(meta): Meta,
) -> ApiResult<StatusCode> {
    // A mirrored account would come back with the next mirroring, fresh, its blocks and channel states
    // gone: it leaves when the Integration Service stops listing it, and is blocked here then.
    let account = state.store.get_account(user, &id).await?;
    if account.as_ref().is_some_and(|a| a.kind == AccountKind::Integration) {
        return Err(ApiError::Conflict(format!(
            "account {id} is managed by the Integration Service: remove or block it there"
        )));
    }
    if state.store.delete_account(user, &id, state.clock.now(), &meta).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("account {id} not found")))
    }
}
