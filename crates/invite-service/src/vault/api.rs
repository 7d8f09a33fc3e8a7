//! Vault's HTTP API, the four calls this service makes: AppRole login, token renew-self and lookup-self,
//! and a KV v2 read.

use std::{collections::HashMap, error::Error as _, time::Duration};

use reqwest::{header::HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use url::Url;

use super::VaultError;
use crate::secrets::Secret;

/// A token as Vault hands it out at login or renewal.
pub(super) struct Lease {
    pub token: Secret,
    /// Zero: the token does not expire.
    pub ttl: Duration,
    pub renewable: bool,
}

/// The key/value pairs of one KV v2 secret, every value held as a secret.
pub(super) struct KvSecret {
    pub data: HashMap<String, Secret>,
    /// Zero for KV v2 (its secrets are not leased).
    pub lease: Duration,
}

pub(super) struct Api {
    http: reqwest::Client,
    /// Ends with '/', so that joining `v1/…` keeps a path prefix (Vault behind a proxy).
    base: Url,
    /// The address for messages, without any password it may carry.
    shown: String,
    timeout: Duration,
}

impl Api {
    pub fn new(addr: &Url, timeout: Duration) -> Self {
        let mut base = addr.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .expect("a plain HTTP client builds");
        Self {
            http,
            shown: crate::config::url_without_credentials(addr.as_str()),
            base,
            timeout,
        }
    }

    pub fn address(&self) -> &str {
        &self.shown
    }

    pub async fn login(&self, role_id: &str, secret_id: &Secret) -> Result<Lease, VaultError> {
        const ACTION: &str = "log in with AppRole";
        let body = json!({"role_id": role_id, "secret_id": secret_id.expose()});
        let answer = self
            .call(
                ACTION,
                Method::POST,
                "v1/auth/approle/login",
                None,
                Some(body),
                &[secret_id],
            )
            .await
            .map_err(|e| with_hint(e, " — check VAULT_ROLE_ID and VAULT_SECRET_ID"))?;
        lease(ACTION, &answer)
    }

    pub async fn renew_self(&self, token: &Secret) -> Result<Lease, VaultError> {
        const ACTION: &str = "renew its token";
        let answer = self
            .call(
                ACTION,
                Method::POST,
                "v1/auth/token/renew-self",
                Some(token),
                Some(json!({})),
                &[],
            )
            .await?;
        lease(ACTION, &answer)
    }

    /// Whether the token is still good; Vault refuses a revoked or expired one.
    pub async fn lookup_self(&self, token: &Secret) -> Result<(), VaultError> {
        const ACTION: &str = "look up its token";
        let answer = self
            .call(ACTION, Method::GET, "v1/auth/token/lookup-self", Some(token), None, &[])
            .await?;
        seconds(ACTION, &answer["data"]["ttl"], "data.ttl").map(drop)
    }

    /// `None` when nothing is stored at the path (or its latest version was deleted).
    pub async fn kv_read(&self, token: &Secret, mount: &str, path: &str) -> Result<Option<KvSecret>, VaultError> {
        const ACTION: &str = "read a KV v2 secret";
        let answer = match self
            .call(
                ACTION,
                Method::GET,
                &format!("v1/{mount}/data/{path}"),
                Some(token),
                None,
                &[],
            )
            .await
        {
            Ok(answer) => answer,
            Err(VaultError::Refused { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(data) = answer["data"]["data"].as_object() else {
            // A deleted or destroyed latest version answers with metadata and `data: null`.
            if answer["data"].is_object() && answer["data"]["data"].is_null() {
                return Ok(None);
            }
            return Err(VaultError::BadAnswer {
                action: ACTION,
                detail: "no data.data object".into(),
            });
        };
        let data = data
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => other.to_string(),
                };
                (key.clone(), Secret::new(text))
            })
            .collect();
        Ok(Some(KvSecret {
            data,
            lease: seconds(ACTION, &answer["lease_duration"], "lease_duration").unwrap_or_default(),
        }))
    }

    /// One request; `scrub` are secrets besides `token` that must not reach an error text even if Vault
    /// echoes them.
    async fn call(
        &self,
        action: &'static str,
        method: Method,
        path: &str,
        token: Option<&Secret>,
        body: Option<Value>,
        scrub: &[&Secret],
    ) -> Result<Value, VaultError> {
        let url = self.base.join(path).map_err(|e| VaultError::BadAnswer {
            action,
            detail: format!("cannot build the request URL ({e})"),
        })?;
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token.expose()).map_err(|_| VaultError::BadAnswer {
                action,
                detail: "the token Vault gave is not a valid header value".into(),
            })?;
            value.set_sensitive(true);
            request = request.header("X-Vault-Token", value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| VaultError::Unreachable {
            addr: self.shown.clone(),
            action,
            cause: self.cause(e),
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| VaultError::Unreachable {
            addr: self.shown.clone(),
            action,
            cause: self.cause(e),
        })?;
        if status.is_success() {
            if status == StatusCode::NO_CONTENT {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|_| VaultError::BadAnswer {
                action,
                detail: format!("{status} with a body that is not JSON"),
            });
        }
        let secrets: Vec<&Secret> = token.into_iter().chain(scrub.iter().copied()).collect();
        let detail = vault_errors(&text, &secrets);
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Err(VaultError::Unavailable {
                addr: self.shown.clone(),
                action,
                status: status.as_u16(),
                detail,
            })
        } else {
            Err(VaultError::Refused {
                action,
                status: status.as_u16(),
                detail,
                hint: "",
            })
        }
    }

    /// The innermost cause of a transport error ("Connection refused", a DNS failure), which is what
    /// an operator acts on; reqwest's outer texts carry the URL and little else.
    fn cause(&self, e: reqwest::Error) -> String {
        if e.is_timeout() {
            return format!("no answer within {:?}", self.timeout);
        }
        let mut innermost = None;
        let mut source = e.source();
        while let Some(s) = source {
            innermost = Some(s.to_string());
            source = s.source();
        }
        let cause = innermost.unwrap_or_else(|| e.without_url().to_string());
        if self.base.scheme() == "https" && cause.contains("scheme is not http") {
            // The workspace builds reqwest without a TLS backend; its own words do not say so.
            return "this build has no TLS client; give an http:// address".into();
        }
        cause
    }
}

fn with_hint(e: VaultError, hint: &'static str) -> VaultError {
    match e {
        VaultError::Refused {
            action, status, detail, ..
        } => VaultError::Refused {
            action,
            status,
            detail,
            hint,
        },
        other => other,
    }
}

fn lease(action: &'static str, answer: &Value) -> Result<Lease, VaultError> {
    let auth = &answer["auth"];
    let token = auth["client_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| VaultError::BadAnswer {
            action,
            detail: "no auth.client_token".into(),
        })?;
    Ok(Lease {
        token: Secret::new(token.to_string()),
        ttl: seconds(action, &auth["lease_duration"], "auth.lease_duration")?,
        renewable: auth["renewable"].as_bool().unwrap_or(false),
    })
}

fn seconds(action: &'static str, value: &Value, field: &str) -> Result<Duration, VaultError> {
    value
        .as_u64()
        .map(Duration::from_secs)
        .ok_or_else(|| VaultError::BadAnswer {
            action,
            detail: format!("{field} is not a number of seconds"),
        })
}

/// Vault's `{"errors": [...]}` as one short line, with every known secret replaced.
fn vault_errors(body: &str, secrets: &[&Secret]) -> String {
    let listed = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        v["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
    });
    let mut text = match listed {
        Some(t) if !t.is_empty() => t,
        _ => "no error text".to_string(),
    };
    for secret in secrets {
        if !secret.expose().is_empty() {
            text = text.replace(secret.expose(), "[redacted]");
        }
    }
    if text.chars().count() > 200 {
        text = text.chars().take(200).chain("…".chars()).collect();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_errors_are_one_line_without_the_secrets_they_echo() {
        let id = Secret::new("s3cr3t-id".into());
        let body = r#"{"errors": ["invalid secret id s3cr3t-id", "permission denied"]}"#;
        assert_eq!(
            vault_errors(body, &[&id]),
            "invalid secret id [redacted]; permission denied"
        );
        assert_eq!(vault_errors("<html>", &[]), "no error text");
        assert_eq!(vault_errors(r#"{"errors": []}"#, &[]), "no error text");
        assert_eq!(
            vault_errors(&format!(r#"{{"errors": ["{}"]}}"#, "x".repeat(300)), &[])
                .chars()
                .count(),
            201
        );
    }
}
