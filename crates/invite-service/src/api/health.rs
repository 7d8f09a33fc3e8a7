//! Liveness and readiness: no authentication; 503 when the store does not answer.

use std::time::Duration;

use axum::{extract::State, http::StatusCode, Json};
use serde_json::{json, Value};

use crate::api::AppState;

const STORE_PING_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let ping = tokio::time::timeout(STORE_PING_TIMEOUT, state.store.ping()).await;
    let (status, store_status) = match ping {
        Ok(Ok(())) => (StatusCode::OK, "ok"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
        Err(_) => {
            tracing::warn!("health: store did not answer within {STORE_PING_TIMEOUT:?}");
            (StatusCode::SERVICE_UNAVAILABLE, "timeout")
        }
    };
    let mut body = json!({
        "status": if status == StatusCode::OK { "ok" } else { "unavailable" },
        "version": env!("CARGO_PKG_VERSION"),
        "store": { "backend": state.store.backend(), "status": store_status },
    });
    // Degraded Vault leaves the status 200: cached secrets keep the service working until they expire.
    if let Some(vault) = &state.vault {
        body["vault"] = json!(vault.status());
    }
    (status, Json(body))
}
