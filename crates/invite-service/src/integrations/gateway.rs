//! The API Gateway's user directory: the platform's gateway issues tokens whose `sub` is often the
//! user's e-mail address, while tasks and accounts belong to numeric user ids. An e-mail is resolved
//! with `GET {API_GATEWAY_URL}/internal/users/by-email?email=…` → `{"id": …}` (404: no such user),
//! carrying the service's JWT, and the answer kept briefly so a burst of requests costs one call.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use clock::SharedClock;
use domain::UserId;
use serde_json::Value;
use url::Url;

use super::service_token::ServiceToken;
use crate::config::ShownUrl;

#[derive(Clone)]
pub struct GatewayConfig {
    pub base_url: Url,
    /// How long a resolved e-mail is remembered (users unknown to the gateway are asked about again).
    pub cache_ttl: Duration,
    pub timeout: Duration,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("base_url", &ShownUrl(&self.base_url))
            .field("cache_ttl", &self.cache_ttl)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("no platform user has the e-mail address this token names")]
    UnknownUser,
    #[error("the API Gateway cannot tell which user this token's e-mail address belongs to right now: {0}")]
    Unavailable(String),
}

pub struct GatewayUsers {
    http: reqwest::Client,
    config: GatewayConfig,
    token: Arc<ServiceToken>,
    clock: SharedClock,
    /// By lowercased e-mail: the user and when the answer came.
    cache: Mutex<HashMap<String, (UserId, DateTime<Utc>)>>,
}

impl GatewayUsers {
    pub fn new(config: GatewayConfig, token: Arc<ServiceToken>, clock: SharedClock) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .expect("a plain HTTP client builds");
        Self {
            http,
            config,
            token,
            clock,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The numeric id of the user with this e-mail address.
    pub async fn user_id(&self, email: &str) -> Result<UserId, GatewayError> {
        let key = email.trim().to_lowercase();
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(self.config.cache_ttl).unwrap_or_default();
        if let Some((user, at)) = self.cache.lock().expect("cache lock").get(&key) {
            if now < *at + ttl {
                return Ok(*user);
            }
        }
        let user = self.ask(&key).await?;
        self.cache.lock().expect("cache lock").insert(key, (user, now));
        Ok(user)
    }

    async fn ask(&self, email: &str) -> Result<UserId, GatewayError> {
        let mut url = self
            .config
            .base_url
            .join("internal/users/by-email")
            .map_err(|e| GatewayError::Unavailable(format!("cannot build the URL: {e}")))?;
        url.query_pairs_mut().append_pair("email", email);
        let unavailable = |problem: String| {
            tracing::warn!(problem, "API Gateway user look-up failed");
            GatewayError::Unavailable(problem)
        };
        let response = self
            .http
            .get(url)
            .bearer_auth(self.token.bearer().expose())
            .send()
            .await
            .map_err(|e| unavailable(super::no_answer(&e, self.config.timeout)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(GatewayError::UnknownUser);
        }
        if !status.is_success() {
            return Err(unavailable(format!("it answered {status}")));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|_| unavailable("its answer is not JSON".into()))?;
        let id = match body.get("id") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        id.and_then(UserId::new)
            .ok_or_else(|| unavailable("its answer has no numeric id".into()))
    }
}
