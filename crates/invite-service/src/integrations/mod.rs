//! HTTP clients for the platform's other services: timeouts, retries with backoff, circuit breakers,
//! caching, clear errors.

pub mod breaker;
pub mod gateway;
pub mod integration_service;
pub mod parsing_service;
pub mod service_token;

use std::time::Duration;

/// What went wrong when a request to another service got no answer, in words for an operator (no URL,
/// no body: either may carry a token or a secret).
pub(crate) fn no_answer(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("it did not answer within {timeout:?}")
    } else {
        "it cannot be reached".into()
    }
}
