//! Vault (platform profile): an AppRole login whose token is renewed before it expires and replaced by a
//! new login when Vault will not renew it, and KV v2 reads of the JWT secret, the Telegram API
//! credentials and per-account session data.
//!
//! Secrets live in memory only, as [`Secret`]s. A secret read once is served from memory for
//! `refresh_after`, then read again; while Vault cannot be reached the cached copy keeps being served
//! until its lease (or `cache_ttl`, KV v2 secrets having no lease) runs out, and [`Vault::status`] says
//! Vault is degraded until it answers again.

mod api;
mod error;

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::{task::JoinHandle, time::Instant};
use url::Url;

use crate::secrets::Secret;
use api::Api;

pub use error::VaultError;

pub const DEFAULT_KV_MOUNT: &str = "secret";
pub const DEFAULT_JWT_SECRET_PATH: &str = "invite-service/jwt_secret";
pub const DEFAULT_JWT_SECRET_KEY: &str = "secret_key";
pub const DEFAULT_TELEGRAM_CREDENTIALS_PATH: &str = "telegram/api_credentials";
pub const DEFAULT_ACCOUNT_SESSION_PATH: &str = "invite-service/accounts/{account_id}";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The placeholder of [`VaultConfig::account_session_path`].
pub const ACCOUNT_ID: &str = "{account_id}";
/// The key of an account's secret that holds its session.
pub const SESSION_KEY: &str = "session_data";

#[derive(Clone)]
pub struct VaultConfig {
    pub addr: Url,
    pub role_id: String,
    pub secret_id: Secret,
    /// The KV v2 mount every path below lives in.
    pub kv_mount: String,
    pub jwt_secret_path: String,
    pub jwt_secret_key: String,
    /// Keys `api_id` and `api_hash`.
    pub telegram_credentials_path: String,
    /// Holds [`ACCOUNT_ID`]; key [`SESSION_KEY`].
    pub account_session_path: String,
    /// Of one call to Vault.
    pub timeout: Duration,
    /// How long a secret read is served from memory before it is read again (rotations show up).
    pub refresh_after: Duration,
    /// How long a secret without a lease of its own keeps being served while Vault cannot be reached.
    pub cache_ttl: Duration,
    /// How often the token is looked up between renewals, so that the status tells an outage soon.
    pub check_interval: Duration,
    /// How often a degraded Vault is tried again.
    pub retry_interval: Duration,
}

impl VaultConfig {
    /// The given address and AppRole credentials, everything else at its default.
    pub fn new(addr: Url, role_id: String, secret_id: Secret) -> Self {
        Self {
            addr,
            role_id,
            secret_id,
            kv_mount: DEFAULT_KV_MOUNT.into(),
            jwt_secret_path: DEFAULT_JWT_SECRET_PATH.into(),
            jwt_secret_key: DEFAULT_JWT_SECRET_KEY.into(),
            telegram_credentials_path: DEFAULT_TELEGRAM_CREDENTIALS_PATH.into(),
            account_session_path: DEFAULT_ACCOUNT_SESSION_PATH.into(),
            timeout: DEFAULT_TIMEOUT,
            refresh_after: Duration::from_secs(300),
            cache_ttl: Duration::from_secs(3600),
            check_interval: Duration::from_secs(60),
            retry_interval: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: Url's own Debug would show a password written into VAULT_ADDR.
        f.debug_struct("VaultConfig")
            .field("addr", &crate::config::ShownUrl(&self.addr))
            .field("role_id", &self.role_id)
            .field("secret_id", &self.secret_id)
            .field("kv_mount", &self.kv_mount)
            .field("jwt_secret_path", &self.jwt_secret_path)
            .field("jwt_secret_key", &self.jwt_secret_key)
            .field("telegram_credentials_path", &self.telegram_credentials_path)
            .field("account_session_path", &self.account_session_path)
            .field("timeout", &self.timeout)
            .field("refresh_after", &self.refresh_after)
            .field("cache_ttl", &self.cache_ttl)
            .field("check_interval", &self.check_interval)
            .field("retry_interval", &self.retry_interval)
            .finish()
    }
}

/// A KV mount or path as configured: segments of letters, digits, '-', '_' and '.' separated by '/', none
/// of them `.` or `..` (they would climb out of the mount); slashes around it are dropped.
pub fn check_path(value: &str) -> Result<String, String> {
    let trimmed = value.trim_matches('/');
    let fine = !trimmed.is_empty()
        && trimmed
            .split('/')
            .all(|segment| is_plain_segment(segment) && segment.chars().all(is_path_char));
    if fine {
        Ok(trimmed.to_string())
    } else {
        Err(format!(
            "must be a Vault path: segments of letters, digits, '-', '_' and '.' separated by '/' (got {value:?})"
        ))
    }
}

/// [`check_path`] for the per-account template, which must hold [`ACCOUNT_ID`].
pub fn check_account_session_path(value: &str) -> Result<String, String> {
    if !value.contains(ACCOUNT_ID) {
        return Err(format!("must contain {ACCOUNT_ID} (got {value:?})"));
    }
    check_path(&value.replace(ACCOUNT_ID, "id")).map_err(|_| {
        format!(
            "must be a Vault path holding {ACCOUNT_ID}: segments of letters, digits, '-', '_' and '.' separated by '/' (got {value:?})"
        )
    })?;
    Ok(value.trim_matches('/').to_string())
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn is_plain_segment(segment: &str) -> bool {
    !segment.is_empty() && segment != "." && segment != ".."
}

/// Whether Vault answers, for the health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VaultStatus {
    #[serde(rename = "ok")]
    Healthy,
    /// Since the first failure; the reason is the latest one, in a few words without Vault's address
    /// (the log has the whole error).
    Degraded { since: DateTime<Utc>, reason: String },
}

/// The service-wide Telegram API credentials.
#[derive(Debug, Clone)]
pub struct TelegramCredentials {
    pub api_id: i32,
    pub api_hash: Secret,
}

/// A logged-in Vault client. Dropping it stops the renewal of its token.
pub struct Vault {
    shared: Arc<Shared>,
    keeper: JoinHandle<()>,
}

impl Vault {
    /// Logs in with AppRole and starts keeping the token alive; fails when Vault cannot be reached or
    /// refuses the login, so that the service does not start without its secrets.
    pub async fn connect(config: VaultConfig) -> Result<Self, VaultError> {
        let api = Api::new(&config.addr, config.timeout);
        let lease = api.login(&config.role_id, &config.secret_id).await?;
        tracing::info!(
            addr = api.address(),
            ttl_seconds = lease.ttl.as_secs(),
            renewable = lease.renewable,
            "logged in to Vault with AppRole"
        );
        let shared = Arc::new(Shared {
            api,
            config,
            token: tokio::sync::Mutex::new(Some(Token::new(lease.token, lease.ttl, lease.renewable))),
            cache: Mutex::new(HashMap::new()),
            status: Mutex::new(VaultStatus::Healthy),
            degraded_now: tokio::sync::Notify::new(),
        });
        let keeper = tokio::spawn(keep_token_alive(shared.clone()));
        Ok(Self { shared, keeper })
    }

    /// The address Vault is reached at (without any password in it).
    pub fn address(&self) -> &str {
        self.shared.api.address()
    }

    pub fn status(&self) -> VaultStatus {
        self.shared.status.lock().expect("status lock").clone()
    }

    /// The HS256 secret shared with the API gateway; an error when Vault does not hold it.
    pub async fn jwt_secret(&self) -> Result<Secret, VaultError> {
        let config = &self.shared.config;
        let data = self.shared.required(&config.jwt_secret_path).await?;
        let secret = self
            .shared
            .value(&data, &config.jwt_secret_path, &config.jwt_secret_key)?;
        if secret.expose().is_empty() {
            return Err(self
                .shared
                .bad_value(&config.jwt_secret_path, &config.jwt_secret_key, "is empty"));
        }
        Ok(secret)
    }

    /// `api_id` and `api_hash`; `None` when Vault holds no such secret.
    pub async fn telegram_credentials(&self) -> Result<Option<TelegramCredentials>, VaultError> {
        let path = &self.shared.config.telegram_credentials_path;
        let Some(data) = self.shared.secret_at(path).await? else {
            return Ok(None);
        };
        let api_id = self
            .shared
            .value(&data, path, "api_id")?
            .expose()
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| self.shared.bad_value(path, "api_id", "is not a positive integer"))?;
        let api_hash = self.shared.value(&data, path, "api_hash")?;
        if api_hash.expose().trim().is_empty() {
            return Err(self.shared.bad_value(path, "api_hash", "is empty"));
        }
        Ok(Some(TelegramCredentials { api_id, api_hash }))
    }

    /// The session data of one account, from the per-account path; `None` when Vault holds no secret
    /// there (the account record may carry the session instead).
    pub async fn account_session(&self, account_id: &str) -> Result<Option<Secret>, VaultError> {
        let fine = account_id.len() <= 128 && is_plain_segment(account_id) && account_id.chars().all(is_path_char);
        if !fine {
            return Err(VaultError::BadAccountId(account_id.to_string()));
        }
        let path = self.shared.config.account_session_path.replace(ACCOUNT_ID, account_id);
        match self.shared.secret_at(&path).await? {
            None => Ok(None),
            Some(data) => self.shared.value(&data, &path, SESSION_KEY).map(Some),
        }
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("addr", &self.address())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

struct Token {
    value: Secret,
    /// Zero: the token does not expire.
    ttl: Duration,
    renewable: bool,
    obtained: Instant,
}

impl Token {
    fn new(value: Secret, ttl: Duration, renewable: bool) -> Self {
        Self {
            value,
            ttl,
            renewable,
            obtained: Instant::now(),
        }
    }

    fn expired(&self, now: Instant) -> bool {
        !self.ttl.is_zero() && now >= self.obtained + self.ttl
    }

    /// At two thirds of the lease: early enough that a slow or failed renewal still leaves time to
    /// log in again before the token dies.
    fn renew_at(&self) -> Option<Instant> {
        (!self.ttl.is_zero()).then(|| self.obtained + self.ttl * 2 / 3)
    }
}

/// One KV v2 secret's key/value pairs.
type Data = Arc<HashMap<String, Secret>>;

#[derive(Clone)]
struct Cached {
    data: Data,
    fetched: Instant,
    expires: Instant,
}

struct Shared {
    api: Api,
    config: VaultConfig,
    /// An async lock, held across a login, so that concurrent callers wait for one login.
    token: tokio::sync::Mutex<Option<Token>>,
    /// By path within the mount.
    cache: Mutex<HashMap<String, Cached>>,
    status: Mutex<VaultStatus>,
    /// Wakes the keeper when a reader finds Vault down, so that it probes at the degraded pace.
    degraded_now: tokio::sync::Notify,
}

/// What the keeper does next with the token.
enum Step {
    Login,
    Lookup(Secret),
    Renew(Secret, Duration),
}

impl Shared {
    fn location(&self, path: &str) -> String {
        format!("{}/{}", self.config.kv_mount, path)
    }

    fn bad_value(&self, path: &str, key: &str, expected: &'static str) -> VaultError {
        VaultError::BadValue {
            location: self.location(path),
            key: key.to_string(),
            expected,
        }
    }

    fn value(&self, data: &Data, path: &str, key: &str) -> Result<Secret, VaultError> {
        data.get(key).cloned().ok_or_else(|| VaultError::NoKey {
            location: self.location(path),
            key: key.to_string(),
        })
    }

    async fn required(&self, path: &str) -> Result<Data, VaultError> {
        self.secret_at(path).await?.ok_or_else(|| VaultError::NoSecret {
            location: self.location(path),
        })
    }

    fn is_degraded(&self) -> bool {
        matches!(*self.status.lock().expect("status lock"), VaultStatus::Degraded { .. })
    }

    fn healthy(&self) {
        let mut status = self.status.lock().expect("status lock");
        if let VaultStatus::Degraded { since, .. } = &*status {
            tracing::info!(addr = self.api.address(), degraded_since = %since, "Vault answers again");
        }
        *status = VaultStatus::Healthy;
    }

    fn degraded(&self, e: &VaultError) {
        let reason = e.summary();
        let mut status = self.status.lock().expect("status lock");
        match &mut *status {
            VaultStatus::Healthy => {
                tracing::warn!(
                    reason = %e,
                    "Vault is degraded: cached secrets are served until they expire"
                );
                *status = VaultStatus::Degraded {
                    since: Utc::now(),
                    reason,
                };
                self.degraded_now.notify_one();
            }
            VaultStatus::Degraded { reason: latest, .. } => *latest = reason,
        }
    }

    /// A secret from memory while it is fresh (or while Vault is down and it has not expired), else
    /// from Vault.
    async fn secret_at(&self, path: &str) -> Result<Option<Data>, VaultError> {
        let now = Instant::now();
        let cached = self.cache.lock().expect("cache lock").get(path).cloned();
        if let Some(c) = &cached {
            // While Vault is degraded the keeper probes it; readers need not wait for timeouts meanwhile.
            if now < c.fetched + self.config.refresh_after || (self.is_degraded() && now < c.expires) {
                return Ok(Some(c.data.clone()));
            }
        }
        match self.read(path).await {
            Ok(found) => {
                self.healthy();
                let mut cache = self.cache.lock().expect("cache lock");
                let Some(secret) = found else {
                    cache.remove(path);
                    return Ok(None);
                };
                let ttl = if secret.lease.is_zero() {
                    self.config.cache_ttl
                } else {
                    secret.lease
                };
                let data = Arc::new(secret.data);
                cache.insert(
                    path.to_string(),
                    Cached {
                        data: data.clone(),
                        fetched: now,
                        expires: now + ttl,
                    },
                );
                Ok(Some(data))
            }
            Err(e) if e.is_outage() => {
                self.degraded(&e);
                match cached {
                    Some(c) if Instant::now() < c.expires => {
                        tracing::warn!(
                            location = self.location(path),
                            "Vault cannot be reached: serving the secret read before"
                        );
                        Ok(Some(c.data))
                    }
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn read(&self, path: &str) -> Result<Option<api::KvSecret>, VaultError> {
        let token = self.token().await?;
        match self.api.kv_read(&token, &self.config.kv_mount, path).await {
            Err(e) if e.is_refusal() => {
                // The token may have been revoked or have outlived its lease, or the policy denies this
                // path. Only a token Vault no longer knows is replaced: a denial answered by a new login
                // would log in again on every read (and spend the secret id's uses).
                if self.api.lookup_self(&token).await.is_ok() {
                    return Err(e);
                }
                self.forget(&token).await;
                let token = self.token().await?;
                self.api.kv_read(&token, &self.config.kv_mount, path).await
            }
            other => other,
        }
    }

    /// The token in use, after a new login when there is none or it has expired.
    async fn token(&self) -> Result<Secret, VaultError> {
        let mut slot = self.token.lock().await;
        match slot.as_ref() {
            Some(t) if !t.expired(Instant::now()) => Ok(t.value.clone()),
            _ => self.login(&mut slot).await,
        }
    }

    async fn forget(&self, refused: &Secret) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| t.value == *refused) {
            *slot = None;
        }
    }

    async fn login(&self, slot: &mut Option<Token>) -> Result<Secret, VaultError> {
        let lease = self.api.login(&self.config.role_id, &self.config.secret_id).await?;
        tracing::info!(
            ttl_seconds = lease.ttl.as_secs(),
            renewable = lease.renewable,
            "logged in to Vault with AppRole again"
        );
        let token = lease.token.clone();
        *slot = Some(Token::new(lease.token, lease.ttl, lease.renewable));
        Ok(token)
    }

    fn next_check(&self, slot: &Option<Token>) -> Duration {
        if self.is_degraded() || slot.is_none() {
            return self.config.retry_interval;
        }
        let interval = self.config.check_interval;
        match slot.as_ref().and_then(Token::renew_at) {
            Some(at) => at.saturating_duration_since(Instant::now()).min(interval),
            None => interval,
        }
    }

    /// One step of keeping a usable token: renew it when it is due, log in again when it cannot be
    /// renewed (refused, not renewable, expired), and otherwise look it up: that tells whether Vault
    /// answers (and, while degraded, when it is back) and whether the token was revoked.
    async fn check(&self) {
        let mut slot = self.token.lock().await;
        let now = Instant::now();
        let step = match slot.as_ref() {
            None => Step::Login,
            Some(t) if t.expired(now) => Step::Login,
            Some(t) if t.renew_at().is_some_and(|at| now >= at) => match t.renewable {
                true => Step::Renew(t.value.clone(), t.ttl),
                false => Step::Login,
            },
            Some(t) => Step::Lookup(t.value.clone()),
        };
        let outcome = match step {
            Step::Login => self.login(&mut slot).await.map(drop),
            Step::Lookup(token) => match self.api.lookup_self(&token).await {
                Err(e) if e.is_refusal() => self.login(&mut slot).await.map(drop),
                other => other,
            },
            Step::Renew(token, previous_ttl) => match self.api.renew_self(&token).await {
                Ok(lease) => {
                    // A shorter lease than before means the token nears its max TTL: the next step
                    // logs in again instead of renewing a token that can no longer be extended.
                    let renewable = lease.renewable && lease.ttl >= previous_ttl;
                    *slot = Some(Token::new(lease.token, lease.ttl, renewable));
                    Ok(())
                }
                Err(e) if e.is_refusal() => {
                    tracing::info!(reason = %e, "Vault did not renew the token: logging in again");
                    self.login(&mut slot).await.map(drop)
                }
                Err(e) => Err(e),
            },
        };
        drop(slot);
        match outcome {
            Ok(()) => self.healthy(),
            Err(e) => self.degraded(&e),
        }
    }
}

async fn keep_token_alive(shared: Arc<Shared>) {
    loop {
        let pause = shared.next_check(&*shared.token.lock().await);
        tokio::select! {
            _ = tokio::time::sleep(pause) => shared.check().await,
            _ = shared.degraded_now.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_plain_segments_inside_the_mount() {
        assert_eq!(check_path("/kv/").unwrap(), "kv");
        assert_eq!(
            check_path("invite-service/jwt_secret").unwrap(),
            "invite-service/jwt_secret"
        );
        for bad in ["", "/", "a//b", "a/../b", "..", "a/./b", "a b", "a?b", "a#b", "a/{x}"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_account_session_path("/invite-service/accounts/{account_id}").unwrap(),
            "invite-service/accounts/{account_id}"
        );
        assert!(check_account_session_path("accounts/session")
            .unwrap_err()
            .contains("must contain {account_id}"));
        assert!(check_account_session_path("accounts/../{account_id}").is_err());
    }

    #[test]
    fn a_token_is_renewed_at_two_thirds_of_its_lease() {
        let token = Token::new(Secret::new("t".into()), Duration::from_secs(30), true);
        assert_eq!(token.renew_at(), Some(token.obtained + Duration::from_secs(20)));
        assert!(!token.expired(token.obtained + Duration::from_secs(29)));
        assert!(token.expired(token.obtained + Duration::from_secs(30)));
        let forever = Token::new(Secret::new("t".into()), Duration::ZERO, false);
        assert_eq!(forever.renew_at(), None);
        assert!(!forever.expired(forever.obtained + Duration::from_secs(1 << 30)));
    }

    #[test]
    fn the_configuration_prints_no_secret() {
        let config = VaultConfig::new(
            Url::parse("http://vault:hunter2@127.0.0.1:8200").unwrap(),
            "role".into(),
            Secret::new("the-secret-id-value".into()),
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("the-secret-id-value"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("addr: http://127.0.0.1:8200/,"), "{shown}");
    }

    #[test]
    fn the_status_serializes_for_the_health_endpoint() {
        assert_eq!(
            serde_json::to_value(VaultStatus::Healthy).unwrap(),
            serde_json::json!({"status": "ok"})
        );
        let since = Utc::now();
        let degraded = VaultStatus::Degraded {
            since,
            reason: "down".into(),
        };
        assert_eq!(
            serde_json::to_value(degraded).unwrap(),
            serde_json::json!({"status": "degraded", "since": since, "reason": "down"})
        );
    }
}
