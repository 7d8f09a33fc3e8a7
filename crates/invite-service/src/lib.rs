//! The Invite Service: configuration, the HTTP API and telemetry around the domain and the store.

// The OpenAPI document is one `json!` literal, deeper than the default macro recursion allows.
#![recursion_limit = "512"]

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod engine;
pub mod importer;
pub mod integrations;
pub mod secrets;
pub mod sim;
pub mod telemetry;
pub mod vault;
