//! HTTP clients for the platform's other services: timeouts, retries with backoff, circuit breakers,
//! caching, clear errors.

pub mod breaker;
pub mod gateway;
pub mod integration_service;
pub mod parsing_service;
pub mod service_token;
