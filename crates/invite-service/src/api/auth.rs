//! `Authorization: Bearer <JWT>` (HS256, shared secret). The user id comes from the token only: a
//! numeric claim, or — the platform's gateway often names users by e-mail in `sub` — the id the API
//! Gateway gives for that e-mail address (when `API_GATEWAY_URL` is set).

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};
use chrono::Duration;
use clock::SharedClock;
use domain::UserId;
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};

use crate::{
    api::error::ApiError,
    api::AppState,
    integrations::gateway::{GatewayError, GatewayUsers},
    secrets::Secret,
};

/// Tolerated clock difference between the token's issuer and this service.
const LEEWAY_SECONDS: i64 = 30;

pub struct Authenticator {
    decoding: DecodingKey,
    encoding: EncodingKey,
    user_claim: String,
    clock: SharedClock,
    gateway: Option<Arc<GatewayUsers>>,
}

impl Authenticator {
    pub fn new(secret: &Secret, user_claim: String, clock: SharedClock) -> Self {
        let bytes = secret.expose().as_bytes();
        Self {
            decoding: DecodingKey::from_secret(bytes),
            encoding: EncodingKey::from_secret(bytes),
            user_claim,
            clock,
            gateway: None,
        }
    }

    /// Resolves tokens whose only identity is an e-mail `sub` through the API Gateway.
    pub fn with_gateway(mut self, gateway: Arc<GatewayUsers>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Signs a token for `user` valid for `ttl` (the `token` command).
    pub fn issue(&self, user: UserId, ttl: Duration) -> String {
        let now = self.clock.now().timestamp();
        let claims = json!({
            self.user_claim.clone(): user.get(),
            "sub": user.get().to_string(),
            "iat": now,
            "exp": now + ttl.num_seconds(),
        });
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }

    /// Checks a token and returns whose it is.
    pub async fn verify(&self, token: &str) -> Result<UserId, ApiError> {
        let unauthorized = |m: &str| ApiError::Unauthorized(m.to_string());
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked below against the service clock, not the system time.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &validation).map_err(|e| {
            unauthorized(match e.kind() {
                ErrorKind::InvalidSignature => "invalid token: signature does not match",
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    "invalid token: algorithm must be HS256"
                }
                _ => "invalid token: not a well-formed JWT",
            })
        })?;
        let claims = data.claims;
        let now = self.clock.now().timestamp();
        match claims.get("exp").and_then(Value::as_i64) {
            None => return Err(unauthorized("invalid token: it has no numeric exp (expiry) claim")),
            Some(exp) if exp + LEEWAY_SECONDS < now => return Err(unauthorized("token expired")),
            Some(_) => {}
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64) {
            if nbf - LEEWAY_SECONDS > now {
                return Err(unauthorized("token not valid yet (nbf is in the future)"));
            }
        }
        let user = [claims.get(&self.user_claim), claims.get("sub")]
            .into_iter()
            .flatten()
            .find_map(numeric_user_id);
        if let Some(user) = user {
            return Ok(user);
        }
        let email = claims.get("sub").and_then(Value::as_str).filter(|s| is_email(s));
        match (email, &self.gateway) {
            (Some(email), Some(gateway)) => gateway.user_id(email).await.map_err(|e| match e {
                GatewayError::UnknownUser => ApiError::Unauthorized(e.to_string()),
                GatewayError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            }),
            (Some(_), None) => Err(unauthorized(
                "invalid token: no user id in it; its sub is an e-mail address, and no API_GATEWAY_URL is set to resolve that",
            )),
            (None, _) => Err(ApiError::Unauthorized(format!(
                "invalid token: no user id in claim {:?} nor a numeric sub",
                self.user_claim
            ))),
        }
    }
}

/// `local@domain`, no spaces: what the gateway puts in `sub` for a user signed in by e-mail.
fn is_email(s: &str) -> bool {
    s.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.contains('@') && !s.chars().any(char::is_whitespace)
    })
}

fn numeric_user_id(v: &Value) -> Option<UserId> {
    let id = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    id.and_then(UserId::new)
}

/// The authenticated caller. Handlers that take it answer 401 before doing anything else.
pub struct AuthUser(pub UserId);

/// The caller's own token, for calls to the platform's services made on the caller's behalf.
pub struct CallerToken(pub Secret);

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization header".into()))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("Authorization header must be 'Bearer <token>'".into()))?;
    Ok(token)
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user = state.auth.verify(bearer_token(parts)?).await?;
        tracing::Span::current().record("user_id", user.get());
        Ok(AuthUser(user))
    }
}

impl FromRequestParts<AppState> for CallerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        state.auth.verify(token).await?;
        Ok(CallerToken(Secret::new(token.to_string())))
    }
}

pub type SharedAuthenticator = Arc<Authenticator>;
