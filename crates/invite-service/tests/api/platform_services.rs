//! The platform's services as the API meets them, against a local server that speaks the API
//! Gateway's user look-up and the Integration Service's account list:
//!
//! - a token whose `sub` is an e-mail address acts as the user the gateway names; an unknown address
//!   answers 401, a gateway that cannot answer 503, and without `API_GATEWAY_URL` it stays a 401;
//! - with `INTEGRATION_SERVICE_URL`, the user's accounts there are listed as kind `integration` (the
//!   session's public facts, never the session), and a start while the service fails answers 503 with
//!   its error.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
};

use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode as AxumStatus},
    routing::get,
    Json, Router,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{spawn_app_with, start_time, Backend, TestApp, JWT_SECRET};

#[derive(Default)]
struct Upstream {
    calls: AtomicUsize,
    failing: AtomicBool,
}

/// Refuses calls without the service's JWT, as the platform's services do.
fn service_call(up: &Upstream, headers: &HeaderMap) -> Result<(), AxumStatus> {
    up.calls.fetch_add(1, Ordering::SeqCst);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AxumStatus::UNAUTHORIZED)?;
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(JWT_SECRET.as_bytes()),
        &validation,
    )
    .map_err(|_| AxumStatus::UNAUTHORIZED)?
    .claims;
    if claims["service"] != "invite-service" {
        return Err(AxumStatus::FORBIDDEN);
    }
    if up.failing.load(Ordering::SeqCst) {
        return Err(AxumStatus::SERVICE_UNAVAILABLE);
    }
    Ok(())
}

async fn by_email(
    State(up): State<Arc<Upstream>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AxumStatus> {
    service_call(&up, &headers)?;
    let fixture: Value = serde_json::from_str(include_str!("../data/gateway-user-by-email.json")).unwrap();
    match q.get("email") {
        Some(e) if fixture["example"]["email"] == e.as_str() => Ok(Json(fixture["example"].clone())),
        _ => Err(AxumStatus::NOT_FOUND),
    }
}

async fn accounts(State(up): State<Arc<Upstream>>, headers: HeaderMap) -> Result<Json<Value>, AxumStatus> {
    service_call(&up, &headers)?;
    let fixture: Value = serde_json::from_str(include_str!("../data/integration-accounts.json")).unwrap();
    let sessions: Value = serde_json::from_str(include_str!("../data/telethon-sessions.json")).unwrap();
    let mut list = fixture["example"].clone();
    for a in list.as_array_mut().unwrap() {
        // One session per user: a key used by two accounts is refused.
        let session = if a["user_id"] == 77 { 1 } else { 0 };
        a["session_data"] = sessions["sessions"][session]["string_session"].clone();
        a["api_hash"] = json!("0123456789abcdef0123456789abcdef");
    }
    Ok(Json(list))
}

async fn start_upstream() -> (String, Arc<Upstream>) {
    let up = Arc::new(Upstream::default());
    let app = Router::new()
        .route("/internal/users/by-email", get(by_email))
        .route("/api/v1/accounts", get(accounts))
        .with_state(up.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), up)
}

fn email_token(email: &str) -> String {
    let claims = json!({"sub": email, "exp": start_time().timestamp() + 600});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn tasks_as(app: &TestApp, email: &str) -> crate::support::Reply {
    app.raw(app.client.get(app.url("/tasks")).bearer_auth(email_token(email)))
        .await
}

async fn an_email_sub_is_resolved_through_the_gateway(backend: Backend) {
    let (url, upstream) = start_upstream().await;
    let app = spawn_app_with(backend, &[("API_GATEWAY_URL", &url)]).await;
    app.create(
        55,
        json!({"name": "Alice's", "action_type": "invite_to_group", "target_channel": "@a_group"}),
    )
    .await;
    let mine = tasks_as(&app, "alice@example.com").await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.body["total"], 1, "user 55's task, as the gateway says");
    tasks_as(&app, "alice@example.com").await;
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 1, "the answer is remembered");

    let unknown = tasks_as(&app, "nobody@example.com").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unknown.detail(),
        "no platform user has the e-mail address this token names"
    );

    upstream.failing.store(true, Ordering::SeqCst);
    let down = tasks_as(&app, "bob@example.com").await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        down.detail(),
        "the API Gateway cannot tell which user this token's e-mail address belongs to right now: it answered \
         503 Service Unavailable"
    );
    app.stop().await;
}

async fn without_a_gateway_an_email_sub_is_refused(backend: Backend) {
    let app = spawn_app_with(backend, &[]).await;
    let reply = tasks_as(&app, "alice@example.com").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.detail().contains("API_GATEWAY_URL"), "{}", reply.detail());
    app.stop().await;
}

async fn integration_service_accounts_are_listed_and_its_failures_are_clear(backend: Backend) {
    let (url, upstream) = start_upstream().await;
    let app = spawn_app_with(
        backend,
        &[("INTEGRATION_SERVICE_URL", &url), ("INTEGRATION_BREAKER_FAILURES", "1")],
    )
    .await;
    let listed = app.call(Method::GET, "/accounts", Some(55), None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["total"], 1, "{}", listed.body);
    let account = &listed.body["items"][0];
    assert_eq!(
        (&account["id"], &account["kind"], &account["status"], &account["name"]),
        (
            &json!("3b7c2f0e-1d2a-4c55-9f10-2a9e8b7c6d5e"),
            &json!("integration"),
            &json!("active"),
            &json!("+79120000001")
        )
    );
    assert_eq!(account["session"]["dc_id"], 2);
    let text = listed.body.to_string();
    assert!(
        !text.contains("session_data") && !text.contains("0123456789abcdef0123456789abcdef"),
        "{text}"
    );
    let stored = app.dump_table("accounts").await;
    assert!(!stored.contains("0123456789abcdef0123456789abcdef"), "sealed at rest");
    // A mirrored account is the Integration Service's to remove: deleting it here would bring it back
    // fresh with the next mirroring, its blocks forgotten.
    let deleted = app
        .call(
            Method::DELETE,
            "/accounts/3b7c2f0e-1d2a-4c55-9f10-2a9e8b7c6d5e",
            Some(55),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::CONFLICT, "{}", deleted.body);
    assert!(
        deleted.detail().contains("managed by the Integration Service"),
        "{}",
        deleted.body
    );
    // An unknown platform is refused, not mirrored under its name.
    let odd = app.call(Method::GET, "/accounts?platform=foo", Some(55), None).await;
    assert_eq!(odd.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", odd.body);
    assert!(odd.body.to_string().contains("platform must be one of"), "{}", odd.body);
    assert_eq!(
        app.call(Method::GET, "/accounts", Some(77), None).await.body["total"],
        1
    );

    // The service fails: a start cannot check the accounts, and says why.
    upstream.failing.store(true, Ordering::SeqCst);
    app.clock.advance(chrono::Duration::seconds(61));
    let task = app
        .create(
            55,
            json!({"name": "x", "action_type": "invite_to_group", "target_channel": "@a_group"}),
        )
        .await;
    let path = format!("/tasks/{}/start", task["id"]);
    let refused = app.call(Method::POST, &path, Some(55), None).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.body);
    assert!(
        refused.detail().starts_with(
            "the Integration Service is unavailable: it answered 503 Service Unavailable; retrying after "
        ),
        "{}",
        refused.detail()
    );
    let calls = upstream.calls.load(Ordering::SeqCst);
    let again = app.call(Method::POST, &path, Some(55), None).await;
    assert_eq!(again.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        upstream.calls.load(Ordering::SeqCst),
        calls,
        "the open breaker fails fast"
    );
    let listed = app.call(Method::GET, "/accounts", Some(55), None).await;
    assert_eq!(listed.body["total"], 1, "the stored copy is still listed");
    app.stop().await;
}

crate::on_both_backends!(
    an_email_sub_is_resolved_through_the_gateway,
    without_a_gateway_an_email_sub_is_refused,
    integration_service_accounts_are_listed_and_its_failures_are_clear,
);
