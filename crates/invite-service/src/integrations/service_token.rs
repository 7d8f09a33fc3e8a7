//! The service's own JWT, carried by calls to the platform's other services that no user's request
//! stands behind (the engine's, the Integration Service's account lists, the gateway's user look-ups).
//!
//! HS256 with the shared JWT secret, as the platform's services check it; `sub` is configurable
//! because each platform names its services its own way. The token is kept and signed anew only when
//! little of its hour is left, so a call never leaves with a token that expires on the way.

use std::{fmt, sync::Mutex};

use chrono::{DateTime, Duration, Utc};
use clock::SharedClock;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::secrets::Secret;

/// The `service` claim, and the default `sub`.
pub const SERVICE_NAME: &str = "invite-service";
/// How long a token is valid.
pub const LIFETIME: Duration = Duration::hours(1);
/// A token with less than this left is replaced before it is used.
pub const RENEW_BEFORE: Duration = Duration::minutes(5);

pub struct ServiceToken {
    encoding: EncodingKey,
    subject: String,
    clock: SharedClock,
    current: Mutex<Option<(Secret, DateTime<Utc>)>>,
}

impl ServiceToken {
    pub fn new(secret: &Secret, subject: impl Into<String>, clock: SharedClock) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            subject: subject.into(),
            clock,
            current: Mutex::new(None),
        }
    }

    /// The token to send as `Authorization: Bearer …` now.
    pub fn bearer(&self) -> Secret {
        let now = self.clock.now();
        let mut current = self.current.lock().expect("service token lock");
        match &*current {
            Some((token, expires_at)) if *expires_at - now > RENEW_BEFORE => token.clone(),
            _ => {
                let expires_at = now + LIFETIME;
                let claims = json!({
                    "sub": self.subject,
                    "service": SERVICE_NAME,
                    "iat": now.timestamp(),
                    "exp": expires_at.timestamp(),
                });
                let token = Secret::new(
                    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
                        .expect("HS256 signing cannot fail"),
                );
                *current = Some((token.clone(), expires_at));
                token
            }
        }
    }
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceToken")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use clock::ManualClock;
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::{Map, Value};

    use super::*;

    const SECRET: &str = "service-token-test-secret-0123456789";

    fn claims(token: &Secret) -> Map<String, Value> {
        let mut validation = Validation::new(Algorithm::HS256);
        // The token is checked against the manual clock below, not the machine's.
        validation.validate_exp = false;
        jsonwebtoken::decode::<Map<String, Value>>(
            token.expose(),
            &DecodingKey::from_secret(SECRET.as_bytes()),
            &validation,
        )
        .expect("signed with the shared secret, HS256")
        .claims
    }

    #[test]
    fn claims_name_the_service_and_last_an_hour() {
        let start = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        let clock = ManualClock::new(start);
        let tokens = ServiceToken::new(&Secret::new(SECRET.into()), "svc-invite", Arc::new(clock));
        let c = claims(&tokens.bearer());
        assert_eq!(c["sub"], "svc-invite");
        assert_eq!(c["service"], "invite-service");
        assert_eq!(c["iat"], start.timestamp());
        assert_eq!(c["exp"], start.timestamp() + 3600);
        assert_eq!(c.len(), 4, "{c:?}");
        assert!(!format!("{tokens:?}").contains(SECRET));
    }

    #[test]
    fn the_same_token_is_used_until_five_minutes_are_left() {
        let start = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        let clock = ManualClock::new(start);
        let tokens = ServiceToken::new(&Secret::new(SECRET.into()), SERVICE_NAME, Arc::new(clock.clone()));
        let first = tokens.bearer();
        clock.advance(Duration::minutes(54));
        assert_eq!(tokens.bearer(), first, "54 minutes in, 6 are left");
        clock.advance(Duration::minutes(2));
        let second = tokens.bearer();
        assert_ne!(second, first, "56 minutes in, it is signed anew");
        let c = claims(&second);
        assert_eq!(c["iat"], (start + Duration::minutes(56)).timestamp());
        assert_eq!(c["exp"], (start + Duration::minutes(116)).timestamp());
        assert_eq!(tokens.bearer(), second);
    }
}
