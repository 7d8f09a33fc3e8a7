//! The Integration Service: the messenger accounts users connected on the platform (platform profile).
//!
//! `GET {INTEGRATION_SERVICE_URL}{INTEGRATION_ACCOUNTS_PATH}?user_id=…&platform=…&status=active` with the
//! service's JWT. The running platform's endpoint may answer with every user's accounts, with their
//! `api_hash` and `session_data`, whatever the query asks: so the answer is filtered by user, platform
//! and status here again, and those two fields are held only as [`Secret`]s, in this process's memory.
//! The shared cache (Redis, when `REDIS_URL` is set) holds the account list without them.
//!
//! Why the accounts are mirrored into the store instead of served through the Account Manager's
//! `AccountSource`: nothing in the engine asks that trait. The scheduler reads the user's accounts and
//! their standing from the store's `accounts` table, the worker opens the sealed session of that row,
//! and the ledger, leases and channel states hang on its id. So [`IntegrationAccounts::sync`] copies
//! the user's list into that table as accounts of kind `integration` (sessions sealed as the API seals
//! registered ones), and blocks the mirrored accounts the Integration Service blocked or no longer
//! lists; the engine then works on them as on any other account, in every process, with the store as
//! the one truth. Rows are never deleted, so a budget spent stays spent when an account comes back.
//!
//! An account's session is its record's `session_data`, or else (when Vault is configured) the secret
//! at Vault's per-account path (`VAULT_ACCOUNT_SESSION_PATH`). An account with neither is not used:
//! never mirrored, or blocked when it was, with a reason that says so. While Vault cannot be read a
//! session stored before is kept, and the answer is mirrored again at the next call.
//!
//! A circuit breaker guards the calls: after a run of failures (5xx, timeouts, refused connections)
//! callers get "the Integration Service is unavailable: …; retrying after …" at once until the
//! cool-down is over; then one trial call goes out, and a success closes it again.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use account_manager::{sealing::Sealer, session::TelegramSession};
use chrono::{DateTime, Utc};
use clock::SharedClock;
use domain::UserId;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use store::{IntegrationEntry, IntegrationSync, SharedStore, Standing, StoreError, INTEGRATION_REASON_PREFIX};
use tokio::sync::watch;
use url::Url;

use super::{
    breaker::{Breaker, Open},
    service_token::ServiceToken,
};
use crate::{
    config::ShownUrl,
    secrets::Secret,
    vault::{Vault, VaultError},
};

#[derive(Clone)]
pub struct IntegrationServiceConfig {
    pub base_url: Url,
    /// The spec names `/api/v1/accounts`.
    pub accounts_path: String,
    /// How long one answer is used (in process and in Redis); also how often running tasks' accounts
    /// are mirrored again.
    pub cache_ttl: Duration,
    pub timeout: Duration,
    /// Failures in a row that open the breaker, and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
}

impl std::fmt::Debug for IntegrationServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationServiceConfig")
            .field("base_url", &ShownUrl(&self.base_url))
            .field("accounts_path", &self.accounts_path)
            .field("cache_ttl", &self.cache_ttl)
            .field("timeout", &self.timeout)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_cooldown", &self.breaker_cooldown)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    #[error("the Integration Service is unavailable: {problem}; retrying after {}", retry_at.to_rfc3339())]
    Open { problem: String, retry_at: DateTime<Utc> },
    #[error("the Integration Service is unavailable: {0}")]
    Unavailable(String),
    #[error(
        "the Integration Service refused the service token ({0}); check INVITE_SERVICE_TOKEN_SUBJECT and that \
         both services share the JWT secret"
    )]
    Refused(u16),
    #[error("the Integration Service answered something unexpected: {0}")]
    BadResponse(String),
    #[error("the Integration Service's accounts cannot be stored: {0}")]
    Store(#[from] StoreError),
}

impl From<Open> for IntegrationError {
    fn from(o: Open) -> Self {
        Self::Open {
            problem: o.problem,
            retry_at: o.retry_at,
        }
    }
}

/// One account as the Integration Service lists it, without its secrets: what may be cached in Redis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationAccount {
    /// A UUID string.
    pub id: String,
    pub user_id: i64,
    pub platform: Option<String>,
    pub phone: Option<String>,
    /// Lowercased.
    pub status: Option<String>,
    pub is_active: Option<bool>,
    pub api_id: Option<i32>,
}

impl IntegrationAccount {
    /// Why the account may not be used, if it may not.
    pub fn unusable(&self) -> Option<String> {
        match (self.status.as_deref(), self.is_active) {
            (Some(status), _) if status != "active" => Some(format!("status {status}")),
            (_, Some(false)) => Some("not active".into()),
            (None, None) => Some("no status given".into()),
            _ => None,
        }
    }
}

/// An account's secrets from the Integration Service's answer; they print as `Secret([redacted])`.
#[derive(Debug, Clone, Default)]
pub struct AccountSecrets {
    pub api_hash: Option<Secret>,
    /// A Telethon `StringSession`.
    pub session_data: Option<Secret>,
}

/// The user's accounts on one platform (every status), as of one answer of the Integration Service.
#[derive(Debug, Clone)]
pub struct AccountList {
    pub accounts: Vec<IntegrationAccount>,
    /// By account id; empty when the list came from the shared cache.
    secrets: HashMap<String, AccountSecrets>,
    /// Names the answer, the same in every process reading it from the shared cache.
    version: String,
    fetched_at: DateTime<Utc>,
}

impl AccountList {
    /// The accounts that may be used.
    pub fn active(&self) -> impl Iterator<Item = &IntegrationAccount> {
        self.accounts.iter().filter(|a| a.unusable().is_none())
    }

    pub fn secrets(&self, account_id: &str) -> Option<&AccountSecrets> {
        self.secrets.get(account_id)
    }
}

/// What the shared cache holds for a (user, platform): never a secret.
#[derive(Serialize, Deserialize)]
struct Shared {
    version: String,
    fetched_at: DateTime<Utc>,
    accounts: Vec<IntegrationAccount>,
}

/// Redis, when `REDIS_URL` is set. A Redis that fails costs a warning and a call upstream, never an error.
struct SharedCache {
    client: redis::Client,
    prefix: String,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

/// Redis is local to the service: a slow one is treated as absent rather than waited for.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

impl SharedCache {
    fn key(&self, user: UserId, platform: &str) -> String {
        format!(
            "{}invite-service:integration-accounts:{platform}:{}",
            self.prefix,
            user.get()
        )
    }

    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let mut conn = self.conn.lock().await;
        if let Some(c) = &*conn {
            return Ok(c.clone());
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *conn = Some(c.clone());
        Ok(c)
    }

    async fn failed(&self, error: redis::RedisError) {
        tracing::warn!(%error, "Redis cache of the Integration Service's accounts failed; asking the service");
        *self.conn.lock().await = None;
    }

    async fn get(&self, user: UserId, platform: &str) -> Option<Shared> {
        let got: redis::RedisResult<Option<String>> = match self.connection().await {
            Ok(mut c) => {
                redis::cmd("GET")
                    .arg(self.key(user, platform))
                    .query_async(&mut c)
                    .await
            }
            Err(e) => Err(e),
        };
        match got {
            Ok(text) => text.and_then(|t| serde_json::from_str(&t).ok()),
            Err(e) => {
                self.failed(e).await;
                None
            }
        }
    }

    async fn set(&self, user: UserId, platform: &str, value: &Shared, ttl: Duration) {
        let Ok(text) = serde_json::to_string(value) else { return };
        let set: redis::RedisResult<()> = match self.connection().await {
            Ok(mut c) => {
                redis::cmd("SET")
                    .arg(self.key(user, platform))
                    .arg(text)
                    .arg("PX")
                    .arg(ttl.as_millis().max(1) as u64)
                    .query_async(&mut c)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = set {
            self.failed(e).await;
        }
    }
}

/// Where a page's accounts sit: a bare array, or an array under one of these keys.
const LIST_KEYS: [&str; 4] = ["items", "accounts", "data", "results"];

/// A failed call: an outage counts towards the breaker, anything else means the service is up.
enum Failure {
    Outage(String),
    Answered(IntegrationError),
}

pub struct IntegrationServiceClient {
    http: reqwest::Client,
    config: IntegrationServiceConfig,
    token: Arc<ServiceToken>,
    clock: SharedClock,
    breaker: Breaker,
    local: Mutex<HashMap<(i64, String), Arc<AccountList>>>,
    shared: Option<SharedCache>,
}

impl IntegrationServiceClient {
    pub fn new(config: IntegrationServiceConfig, token: Arc<ServiceToken>, clock: SharedClock) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .expect("a plain HTTP client builds");
        let cooldown = chrono::Duration::from_std(config.breaker_cooldown).unwrap_or(chrono::Duration::minutes(1));
        Self {
            http,
            breaker: Breaker::new(config.breaker_failures, cooldown),
            config,
            token,
            clock,
            local: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Shares answers (without secrets) between processes through Redis; keys start with `prefix`.
    pub fn with_redis(mut self, url: &Url, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url.as_str()).map_err(|_| "REDIS_URL is not a valid Redis URL".to_owned())?;
        self.shared = Some(SharedCache {
            client,
            prefix: prefix.to_owned(),
            conn: tokio::sync::Mutex::new(None),
        });
        Ok(self)
    }

    fn fresh(&self, list: &AccountList, now: DateTime<Utc>) -> bool {
        let ttl = chrono::Duration::from_std(self.config.cache_ttl).unwrap_or_default();
        now < list.fetched_at + ttl
    }

    /// The user's accounts on the platform (every status; [`AccountList::active`] narrows them), from
    /// the cache while it is fresh.
    pub async fn accounts(&self, user: UserId, platform: &str) -> Result<Arc<AccountList>, IntegrationError> {
        let key = (user.get(), platform.to_owned());
        let now = self.clock.now();
        let cached = self.local.lock().expect("cache lock").get(&key).cloned();
        if let Some(list) = cached.filter(|l| self.fresh(l, now)) {
            return Ok(list);
        }
        if let Some(shared) = &self.shared {
            if let Some(s) = shared.get(user, platform).await {
                let list = Arc::new(AccountList {
                    accounts: s.accounts,
                    secrets: HashMap::new(),
                    version: s.version,
                    fetched_at: s.fetched_at,
                });
                if self.fresh(&list, now) {
                    self.local.lock().expect("cache lock").insert(key, list.clone());
                    return Ok(list);
                }
            }
        }
        let list = Arc::new(self.fetch(user, platform).await?);
        self.local.lock().expect("cache lock").insert(key, list.clone());
        if let Some(shared) = &self.shared {
            let value = Shared {
                version: list.version.clone(),
                fetched_at: list.fetched_at,
                accounts: list.accounts.clone(),
            };
            shared.set(user, platform, &value, self.config.cache_ttl).await;
        }
        Ok(list)
    }

    async fn fetch(&self, user: UserId, platform: &str) -> Result<AccountList, IntegrationError> {
        self.breaker.admit(self.clock.now())?;
        match self.call(user, platform).await {
            Ok(list) => {
                self.breaker.success();
                Ok(list)
            }
            Err(Failure::Answered(e)) => {
                self.breaker.success();
                tracing::warn!(user_id = user.get(), platform, error = %e, "Integration Service call failed");
                Err(e)
            }
            Err(Failure::Outage(problem)) => {
                tracing::warn!(
                    user_id = user.get(),
                    platform,
                    problem,
                    "Integration Service call failed"
                );
                match self.breaker.failure(&problem, self.clock.now()) {
                    Some(open) => {
                        tracing::error!(
                            problem,
                            retry_at = %open.retry_at,
                            "the Integration Service's circuit breaker opened"
                        );
                        Err(open.into())
                    }
                    None => Err(IntegrationError::Unavailable(problem)),
                }
            }
        }
    }

    async fn call(&self, user: UserId, platform: &str) -> Result<AccountList, Failure> {
        let bad = |detail: String| Failure::Answered(IntegrationError::BadResponse(detail));
        let mut url = self
            .config
            .base_url
            .join(self.config.accounts_path.trim_start_matches('/'))
            .map_err(|e| bad(format!("cannot build the URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("user_id", &user.get().to_string())
            .append_pair("platform", platform)
            .append_pair("status", "active");
        let fetched_at = self.clock.now();
        // Every page, or nothing: a partial list would make the accounts of the pages not read look gone.
        let mut items = Vec::new();
        for read in 1..=MAX_PAGES {
            let page = self.page(url.clone()).await?;
            items.extend(page.items);
            if let Some(total) = page.total.filter(|t| *t > items.len() && page.next.is_none()) {
                return Err(bad(format!(
                    "it says it holds {total} accounts but gave {} and no way to the next page",
                    items.len()
                )));
            }
            match page.next {
                None => break,
                Some(next) if read == MAX_PAGES => {
                    return Err(bad(format!(
                        "more than {MAX_PAGES} pages of accounts (next: {})",
                        next.path()
                    )))
                }
                Some(next) => url = next,
            }
        }
        let mut accounts = Vec::new();
        let mut secrets = HashMap::new();
        for item in &items {
            let Some((account, secret)) = parse_account(item) else {
                continue;
            };
            let same_platform = account
                .platform
                .as_deref()
                .is_none_or(|p| p.eq_ignore_ascii_case(platform));
            if account.user_id != user.get() || !same_platform {
                continue;
            }
            secrets.insert(account.id.clone(), secret);
            accounts.push(account);
        }
        tracing::info!(
            user_id = user.get(),
            platform,
            listed = items.len(),
            users_accounts = accounts.len(),
            "Integration Service accounts read"
        );
        Ok(AccountList {
            accounts,
            secrets,
            version: uuid::Uuid::new_v4().simple().to_string(),
            fetched_at,
        })
    }
}

impl IntegrationServiceClient {
    /// One page of the accounts list: its accounts, and where the next one is, if any.
    async fn page(&self, url: Url) -> Result<Page, Failure> {
        let response = self
            .http
            .get(url.clone())
            .bearer_auth(self.token.bearer().expose())
            .send()
            .await
            .map_err(|e| Failure::Outage(super::no_answer(&e, self.config.timeout)))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(Failure::Outage(format!("it answered {status}")));
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(Failure::Answered(IntegrationError::Refused(status.as_u16())));
        }
        if !status.is_success() {
            return Err(Failure::Answered(IntegrationError::BadResponse(format!(
                "status {status}"
            ))));
        }
        // The body may hold secrets: a parse error is described, never quoted.
        let body: Value = response.json().await.map_err(|e| {
            if e.is_timeout() {
                Failure::Outage(format!("it did not answer within {:?}", self.config.timeout))
            } else {
                Failure::Answered(IntegrationError::BadResponse("the body is not JSON".into()))
            }
        })?;
        Page::read(body, &url, &self.config.base_url).map_err(|e| Failure::Answered(IntegrationError::BadResponse(e)))
    }
}

/// The most pages one list is read from.
const MAX_PAGES: usize = 100;

/// One page of an answer: a bare array is the whole list; an object holds its page under one of
/// [`LIST_KEYS`] and may point to the next page — by URL (`next`, on the service's own origin: the
/// service token is never sent elsewhere), or by number (`has_next`/`has_more`, or `page` below
/// `pages`/`total_pages`: the same query with `page` one higher).
struct Page {
    items: Vec<Value>,
    next: Option<Url>,
    /// How many accounts the whole list holds, when it says.
    total: Option<usize>,
}

impl Page {
    fn read(body: Value, url: &Url, base: &Url) -> Result<Self, String> {
        let mut obj = match body {
            Value::Array(items) => {
                return Ok(Self {
                    items,
                    next: None,
                    total: None,
                })
            }
            Value::Object(obj) => obj,
            _ => return Err("neither a list nor an object".into()),
        };
        let items = LIST_KEYS
            .iter()
            .find_map(|k| match obj.remove(*k) {
                Some(Value::Array(items)) => Some(items),
                _ => None,
            })
            .ok_or("no list of accounts")?;
        let number = |k: &str| obj.get(k).and_then(Value::as_u64);
        let flag = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
        let next = match obj.get("next") {
            Some(Value::String(next)) if !next.trim().is_empty() => {
                let next = url
                    .join(next.trim())
                    .map_err(|_| "its next page is not a URL".to_owned())?;
                if next.origin() != base.origin() {
                    return Err(format!(
                        "its next page is on another origin ({}), where the service token is not sent",
                        crate::config::url_without_credentials(next.origin().ascii_serialization().as_str())
                    ));
                }
                Some(next)
            }
            _ => {
                let current = number("page").or_else(|| {
                    url.query_pairs()
                        .find(|(k, _)| k == "page")
                        .and_then(|(_, v)| v.parse().ok())
                });
                let pages = number("pages").or_else(|| number("total_pages"));
                let more =
                    flag("has_next") || flag("has_more") || matches!((current, pages), (Some(c), Some(p)) if c < p);
                more.then(|| {
                    let mut next = url.clone();
                    let kept: Vec<(String, String)> = url
                        .query_pairs()
                        .filter(|(k, _)| k != "page")
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect();
                    next.query_pairs_mut()
                        .clear()
                        .extend_pairs(kept)
                        .append_pair("page", &(current.unwrap_or(1) + 1).to_string());
                    next
                })
            }
        };
        let total = ["total", "count"].iter().find_map(|k| number(k)).map(|t| t as usize);
        Ok(Self { items, next, total })
    }
}

impl std::fmt::Debug for IntegrationServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationServiceClient")
            .field("base_url", &ShownUrl(&self.config.base_url))
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// One listed account and its secrets; None when it has no id or no owner.
fn parse_account(v: &Value) -> Option<(IntegrationAccount, AccountSecrets)> {
    let secret = |key| match v.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(Secret::new(s.trim().to_owned())),
        _ => None,
    };
    let account = IntegrationAccount {
        id: text(v, "id")?,
        user_id: number(v, "user_id")?,
        platform: text(v, "platform").map(|p| p.to_ascii_lowercase()),
        phone: text(v, "phone"),
        status: text(v, "status").map(|s| s.to_ascii_lowercase()),
        is_active: v.get("is_active").and_then(Value::as_bool),
        api_id: number(v, "api_id")
            .and_then(|id| i32::try_from(id).ok())
            .filter(|id| *id > 0),
    };
    let secrets = AccountSecrets {
        api_hash: secret("api_hash"),
        session_data: secret("session_data"),
    };
    Some((account, secrets))
}

/// The user's Integration Service accounts, mirrored into the store (see the module's comment).
pub struct IntegrationAccounts {
    client: IntegrationServiceClient,
    store: SharedStore,
    sealer: Arc<Sealer>,
    clock: SharedClock,
    /// Where sessions the account records lack are read, when configured.
    vault: Option<Arc<Vault>>,
    /// The answer last mirrored per (user, platform): the same answer is not written again.
    applied: Mutex<HashMap<(i64, String), String>>,
}

/// Every reason an account is left out for want of a session starts with this.
const NO_SESSION: &str = "no session data";

/// An account's session as one mirroring finds it.
enum Session {
    /// Read, checked and ready to be sealed.
    Found(Box<TelegramSession>),
    /// Nothing to say (the answer came from the shared cache, or Vault cannot be read): what is stored
    /// stays.
    Keep,
    /// The account may not be used; why.
    Unusable(String),
}

impl IntegrationAccounts {
    pub fn new(client: IntegrationServiceClient, store: SharedStore, sealer: Arc<Sealer>, clock: SharedClock) -> Self {
        Self {
            client,
            store,
            sealer,
            clock,
            vault: None,
            applied: Mutex::new(HashMap::new()),
        }
    }

    /// Reads the session of an account whose record has none from Vault's per-account path.
    pub fn with_vault(mut self, vault: Arc<Vault>) -> Self {
        self.vault = Some(vault);
        self
    }

    /// Brings the store's copy of the user's accounts on the platform in line with the Integration
    /// Service's answer (cached): usable accounts added or refreshed, the others blocked.
    pub async fn sync(&self, user: UserId, platform: &str) -> Result<IntegrationSync, IntegrationError> {
        let list = self.client.accounts(user, platform).await?;
        let key = (user.get(), platform.to_owned());
        if self.applied.lock().expect("applied lock").get(&key) == Some(&list.version) {
            return Ok(IntegrationSync::default());
        }
        let mut entries = Vec::with_capacity(list.accounts.len());
        let mut settled = true;
        for account in &list.accounts {
            let (entry, certain) = self.entry(user, account, list.secrets(&account.id)).await?;
            settled &= certain;
            entries.push(entry);
        }
        let out = self
            .store
            .sync_integration_accounts(user, platform, &entries, self.clock.now())
            .await?;
        // An answer mirrored while Vault could not be read is mirrored again at the next call.
        if settled {
            self.applied
                .lock()
                .expect("applied lock")
                .insert(key, list.version.clone());
        }
        let no_session: Vec<(&str, &str)> = entries
            .iter()
            .filter_map(|e| Some((e.id.as_str(), e.blocked.as_deref()?)))
            .filter(|(_, why)| why.starts_with(NO_SESSION))
            .collect();
        if !no_session.is_empty() {
            tracing::warn!(
                user_id = user.get(),
                platform,
                accounts = ?no_session,
                "Integration Service accounts without a session are not used"
            );
        }
        if !out.refused.is_empty() {
            tracing::warn!(
                user_id = user.get(),
                platform,
                refused = ?out.refused,
                "Integration Service accounts whose ids belong to other accounts were left out"
            );
        }
        if !(out.added.is_empty() && out.reactivated.is_empty() && out.blocked.is_empty()) {
            tracing::info!(
                user_id = user.get(),
                platform,
                added = ?out.added,
                reactivated = ?out.reactivated,
                blocked = ?out.blocked,
                "Integration Service accounts mirrored"
            );
        }
        Ok(out)
    }

    /// The account as the store should hold it, and whether that is certain (false: Vault could not
    /// be read, so the answer must be mirrored again).
    async fn entry(
        &self,
        user: UserId,
        a: &IntegrationAccount,
        secrets: Option<&AccountSecrets>,
    ) -> Result<(IntegrationEntry, bool), IntegrationError> {
        let mut blocked = a.unusable();
        let mut certain = true;
        let mut session = None;
        // A blocked account's session is not wanted: it is not mirrored, or is blocked, either way.
        if blocked.is_none() {
            let (found, sure) = self.session(a, secrets).await?;
            certain = sure;
            match found {
                // One key used from two places draws AUTH_KEY_DUPLICATED and can end the session.
                Session::Found(s) => match self.store.account_with_auth_key(s.auth_key.id()).await? {
                    Some((owner, other)) if other != a.id => {
                        blocked = Some(if owner == user.get() {
                            format!("its session is already registered as account {other}")
                        } else {
                            "its session is already registered by another user".into()
                        });
                    }
                    _ => session = Some(*s),
                },
                Session::Keep => {}
                Session::Unusable(why) => blocked = Some(why),
            }
        }
        let api_hash = secrets.and_then(|s| s.api_hash.as_ref());
        let entry = IntegrationEntry {
            id: a.id.clone(),
            name: a
                .phone
                .clone()
                .unwrap_or_else(|| format!("Integration Service account {}", a.id)),
            blocked,
            session_sealed: session.as_ref().map(|s| {
                self.sealer
                    .seal(s.to_telethon().as_bytes(), &format!("account:{}:session", a.id))
            }),
            api_id: a.api_id,
            api_hash_sealed: api_hash.map(|h| {
                self.sealer
                    .seal(h.expose().as_bytes(), &format!("account:{}:api_hash", a.id))
            }),
            session_facts: session.as_ref().map(|s| json!(s.public_facts())),
        };
        Ok((entry, certain))
    }

    /// The account's session: its record's, else Vault's; and whether the answer is certain.
    async fn session(
        &self,
        a: &IntegrationAccount,
        secrets: Option<&AccountSecrets>,
    ) -> Result<(Session, bool), IntegrationError> {
        // None: the answer came from the shared cache, which holds no secrets.
        let record = secrets.map(|s| s.session_data.as_ref());
        if let Some(Some(data)) = record {
            return Ok((read_session(data, "its session_data is not a readable session"), true));
        }
        let Some(vault) = &self.vault else {
            let why = format!("{NO_SESSION}: its record has none, and Vault is not configured (VAULT_ADDR)");
            return Ok((self.unless_stored(a, record.is_none(), why).await?, true));
        };
        match vault.account_session(&a.id).await {
            Ok(Some(data)) => {
                tracing::debug!(
                    account_id = a.id.as_str(),
                    "session of an Integration Service account read from Vault"
                );
                Ok((
                    read_session(&data, "its session data in Vault is not a readable session"),
                    true,
                ))
            }
            Ok(None) => {
                let why = format!("{NO_SESSION}: neither its record nor Vault (VAULT_ACCOUNT_SESSION_PATH) holds one");
                Ok((self.unless_stored(a, record.is_none(), why).await?, true))
            }
            Err(e) if e.is_outage() => {
                tracing::warn!(
                    account_id = a.id.as_str(),
                    error = %e,
                    "cannot read an Integration Service account's session from Vault; the stored one is kept"
                );
                let why = format!("{NO_SESSION}: its record has none and Vault cannot be read ({e})");
                Ok((self.unless_stored(a, true, why).await?, false))
            }
            Err(e @ (VaultError::NoKey { .. } | VaultError::BadValue { .. } | VaultError::BadAccountId(_))) => {
                Ok((Session::Unusable(format!("{NO_SESSION}: {e}")), true))
            }
            Err(e) => {
                tracing::warn!(account_id = a.id.as_str(), error = %e, "Vault refused an account's session");
                let why = format!("{NO_SESSION}: its record has none and Vault refused to read it ({e})");
                Ok((self.unless_stored(a, true, why).await?, false))
            }
        }
    }

    /// When nothing says whether the account has a session now (`unknown`), the stored one stays in use
    /// — unless there is none, or the account was blocked for want of one; else it is unusable.
    async fn unless_stored(&self, a: &IntegrationAccount, unknown: bool, why: String) -> Result<Session, StoreError> {
        if !unknown {
            return Ok(Session::Unusable(why));
        }
        let stored = self
            .store
            .account_secrets(&a.id)
            .await?
            .is_some_and(|s| s.session_sealed.is_some());
        let blocked_for_it = matches!(
            self.store.am_standing(&a.id).await?,
            Some(Standing::Blocked { reason }) if reason.starts_with(&format!("{INTEGRATION_REASON_PREFIX}{NO_SESSION}"))
        );
        Ok(if stored && !blocked_for_it {
            Session::Keep
        } else {
            Session::Unusable(why)
        })
    }

    /// Mirrors again, every cache period until `stop`, the accounts of every user with a task the
    /// engine looks after, so accounts blocked or removed on the platform stop being used. Only while
    /// `leading` says this process's scheduler leads: one process is enough, and it is the one that
    /// dispatches work to those accounts.
    pub async fn keep_in_sync(&self, mut leading: watch::Receiver<bool>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                led = leading.wait_for(|leads| *leads) => if led.is_err() { return },
                _ = stop.wait_for(|stop| *stop) => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(self.client.config.cache_ttl) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            if !*leading.borrow() {
                continue;
            }
            let tasks = match self.store.engine_tasks().await {
                Ok(tasks) => tasks,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the running tasks to mirror their accounts");
                    continue;
                }
            };
            let owners: HashSet<(UserId, &str)> = tasks.iter().map(|t| (t.user_id, t.spec.platform.as_str())).collect();
            for (user, platform) in owners {
                if let Err(error) = self.sync(user, platform).await {
                    tracing::warn!(user_id = user.get(), platform, %error, "Integration Service accounts not mirrored");
                }
            }
        }
    }
}

/// A session as read from `data`, or unusable with `unreadable` (the text is never quoted: a secret).
fn read_session(data: &Secret, unreadable: &str) -> Session {
    match TelegramSession::parse(data.expose()) {
        Ok(s) => Session::Found(Box::new(s)),
        Err(_) => Session::Unusable(unreadable.to_owned()),
    }
}
