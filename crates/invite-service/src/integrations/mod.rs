//! HTTP clients for the platform's other services: timeouts, retries with backoff, clear errors.

pub mod parsing_service;
