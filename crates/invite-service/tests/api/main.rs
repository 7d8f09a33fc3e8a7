//! HTTP-level tests: each runs the real service on a random port over a fresh database, once on
//! SQLite and once on PostgreSQL.

mod support;

mod accounts;
mod auth;
mod engine;
mod import;
mod listing;
mod metrics;
mod parsing_service;
mod platform_services;
mod priority;
mod reports;
mod service;
mod tasks;
mod validation;
