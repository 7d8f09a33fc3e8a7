//! The Parsing Service: results of a parsing task, read page by page. A user's request passes the
//! caller's own token on, so the Parsing Service applies that user's rights; the engine, acting for a
//! user outside any request, has no such token and sends the service's own.

use std::time::Duration;

use serde_json::Value;
use url::Url;

use super::service_token::ServiceToken;
use crate::{config::ShownUrl, secrets::Secret};

/// Whose token a call carries.
#[derive(Debug, Clone, Copy)]
pub enum Bearer<'a> {
    /// The token of the user whose request this is.
    Caller(&'a Secret),
    /// The service's JWT, for the engine's calls.
    Service(&'a ServiceToken),
}

impl Bearer<'_> {
    fn token(&self) -> Secret {
        match self {
            Bearer::Caller(token) => (*token).clone(),
            Bearer::Service(service) => service.bearer(),
        }
    }
}

#[derive(Clone)]
pub struct ParsingServiceConfig {
    pub base_url: Url,
    /// Path of a task's results, with `{task_id}`; the spec names `/api/parsing/results/{task_id}/users`,
    /// the running platform serves `/results/{task_id}`.
    pub results_path: String,
    pub page_size: u32,
    pub timeout: Duration,
    /// Attempts per page on timeouts, connection errors and 5xx answers.
    pub attempts: u32,
}

impl std::fmt::Debug for ParsingServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsingServiceConfig")
            .field("base_url", &ShownUrl(&self.base_url))
            .field("results_path", &self.results_path)
            .field("page_size", &self.page_size)
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the Parsing Service has no parsing task {0}")]
    NotFound(String),
    #[error("the Parsing Service refused the request ({0}); the caller's token may not reach that parsing task")]
    Refused(u16),
    #[error("the Parsing Service is unavailable: {0}")]
    Unavailable(String),
    #[error("the Parsing Service answered something unexpected: {0}")]
    BadResponse(String),
    #[error("the parsing task holds more than {0} results; the task may hold at most that many targets")]
    TooMany(usize),
}

pub struct ParsingServiceClient {
    http: reqwest::Client,
    config: ParsingServiceConfig,
}

/// Where a page's results sit: a bare array, or an array under one of these keys.
const LIST_KEYS: [&str; 4] = ["results", "users", "items", "data"];

impl ParsingServiceClient {
    pub fn new(config: ParsingServiceConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .build()
            .expect("a plain HTTP client builds");
        Self { http, config }
    }

    fn page_url(&self, parsing_task_id: &str, offset: usize) -> Result<Url, UpstreamError> {
        let path = self.config.results_path.replace("{task_id}", parsing_task_id);
        let mut url = self
            .config
            .base_url
            .join(path.trim_start_matches('/'))
            .map_err(|e| UpstreamError::BadResponse(format!("cannot build the results URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("limit", &self.config.page_size.to_string())
            .append_pair("offset", &offset.to_string());
        Ok(url)
    }

    /// Every result of a parsing task, up to `max` (one more means "too many").
    pub async fn results(
        &self,
        parsing_task_id: &str,
        bearer: Bearer<'_>,
        max: usize,
    ) -> Result<Vec<Value>, UpstreamError> {
        let mut all = Vec::new();
        loop {
            let page = self.page(parsing_task_id, bearer, all.len()).await?;
            let n = page.len();
            all.extend(page);
            if all.len() > max {
                return Err(UpstreamError::TooMany(max));
            }
            if n < self.config.page_size as usize {
                return Ok(all);
            }
        }
    }

    async fn page(
        &self,
        parsing_task_id: &str,
        bearer: Bearer<'_>,
        offset: usize,
    ) -> Result<Vec<Value>, UpstreamError> {
        let url = self.page_url(parsing_task_id, offset)?;
        let mut last_problem = String::new();
        for attempt in 0..self.config.attempts.max(1) {
            if attempt > 0 {
                // 200 ms, 400 ms, 800 ms, …: a short outage passes, a long one fails the request quickly.
                tokio::time::sleep(Duration::from_millis(200 << (attempt - 1).min(5))).await;
            }
            let token = bearer.token();
            let response = self.http.get(url.clone()).bearer_auth(token.expose()).send().await;
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    last_problem = super::no_answer(&e, self.config.timeout);
                    tracing::warn!(attempt = attempt + 1, problem = %last_problem, "Parsing Service call failed");
                    continue;
                }
            };
            let status = response.status();
            if status.is_server_error() {
                last_problem = format!("it answered {status}");
                tracing::warn!(
                    attempt = attempt + 1,
                    status = status.as_u16(),
                    "Parsing Service call failed"
                );
                continue;
            }
            if status == reqwest::StatusCode::NOT_FOUND {
                return Err(UpstreamError::NotFound(parsing_task_id.to_string()));
            }
            if !status.is_success() {
                return Err(UpstreamError::Refused(status.as_u16()));
            }
            let body: Value = response
                .json()
                .await
                .map_err(|e| UpstreamError::BadResponse(format!("the body is not JSON ({e})")))?;
            return page_items(body);
        }
        Err(UpstreamError::Unavailable(format!(
            "{last_problem} (after {} attempts)",
            self.config.attempts.max(1)
        )))
    }
}

fn page_items(body: Value) -> Result<Vec<Value>, UpstreamError> {
    match body {
        Value::Array(items) => Ok(items),
        Value::Object(mut obj) => LIST_KEYS
            .iter()
            .find_map(|k| match obj.remove(*k) {
                Some(Value::Array(items)) => Some(items),
                _ => None,
            })
            .ok_or_else(|| UpstreamError::BadResponse("no results array in the answer".into())),
        _ => Err(UpstreamError::BadResponse(
            "the answer is neither an array nor an object".into(),
        )),
    }
}
