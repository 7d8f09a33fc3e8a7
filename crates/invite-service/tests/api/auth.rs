use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{spawn_app, start_time, Backend, TestApp, JWT_SECRET};

fn sign(claims: Value, alg: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn unsigned(claims: Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

async fn with_header(app: &TestApp, value: Option<&str>) -> crate::support::Reply {
    let mut req = app.client.get(app.url("/tasks"));
    if let Some(v) = value {
        req = req.header("authorization", v);
    }
    app.raw(req).await
}

async fn bad_tokens_are_refused_with_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let now = start_time().timestamp();
    let valid = json!({"user_id": 1, "exp": now + 3600});
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no header", None, "missing Authorization header"),
        (
            "basic scheme",
            Some("Basic dXNlcjpwYXNz".into()),
            "must be 'Bearer <token>'",
        ),
        ("empty bearer", Some("Bearer ".into()), "must be 'Bearer <token>'"),
        ("malformed", Some("Bearer not.a.jwt".into()), "not a well-formed JWT"),
        (
            "wrong secret",
            Some(format!(
                "Bearer {}",
                sign(valid.clone(), Algorithm::HS256, "another-secret-0123456789")
            )),
            "signature does not match",
        ),
        (
            "alg none",
            Some(format!("Bearer {}", unsigned(valid.clone()))),
            "invalid token",
        ),
        (
            "HS512",
            Some(format!("Bearer {}", sign(valid.clone(), Algorithm::HS512, JWT_SECRET))),
            "algorithm must be HS256",
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                sign(json!({"user_id": 1, "exp": now - 3600}), Algorithm::HS256, JWT_SECRET)
            )),
            "token expired",
        ),
        (
            "no exp",
            Some(format!(
                "Bearer {}",
                sign(json!({"user_id": 1}), Algorithm::HS256, JWT_SECRET)
            )),
            "no numeric exp",
        ),
        (
            "not yet valid",
            Some(format!(
                "Bearer {}",
                sign(
                    json!({"user_id": 1, "exp": now + 7200, "nbf": now + 3600}),
                    Algorithm::HS256,
                    JWT_SECRET
                )
            )),
            "not valid yet",
        ),
        (
            "no user id",
            Some(format!(
                "Bearer {}",
                sign(
                    json!({"sub": "alice@example.com", "exp": now + 60}),
                    Algorithm::HS256,
                    JWT_SECRET
                )
            )),
            "no user id",
        ),
        (
            "user id zero",
            Some(format!(
                "Bearer {}",
                sign(json!({"user_id": 0, "exp": now + 60}), Algorithm::HS256, JWT_SECRET)
            )),
            "no user id",
        ),
        (
            "negative user id",
            Some(format!(
                "Bearer {}",
                sign(json!({"user_id": -4, "exp": now + 60}), Algorithm::HS256, JWT_SECRET)
            )),
            "no user id",
        ),
    ];
    for (case, header, expected) in cases {
        let reply = with_header(&app, header.as_deref()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{case}: {}", reply.body);
        assert!(reply.detail().contains(expected), "{case}: {}", reply.detail());
        assert_eq!(reply.headers["www-authenticate"], "Bearer", "{case}");
    }
    // The token of the service's own clock expires with it, too.
    let token = app.token(1);
    app.clock.advance(chrono::Duration::hours(2));
    let reply = with_header(&app, Some(&format!("Bearer {token}"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn user_id_comes_from_the_claim_or_a_numeric_sub(backend: Backend) {
    let app = spawn_app(backend).await;
    let exp = start_time().timestamp() + 600;
    let by_sub = sign(json!({"sub": "42", "exp": exp}), Algorithm::HS256, JWT_SECRET);
    let reply = app
        .raw(app.client.post(app.url("/tasks")).bearer_auth(&by_sub).json(&json!({
            "name": "x", "action_type": "invite_to_group", "target_channel": "@group_x", "user_id": 1
        })))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        reply.body["user_id"], 42,
        "the body's user_id is ignored; the token decides"
    );
    let by_string_claim = sign(json!({"user_id": "42", "exp": exp}), Algorithm::HS256, JWT_SECRET);
    let listed = app
        .raw(app.client.get(app.url("/tasks")).bearer_auth(&by_string_claim))
        .await;
    assert_eq!(listed.body["total"], 1);
    app.stop().await;
}

async fn another_users_task_is_not_found_on_every_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = app
        .create(
            1,
            json!({"name": "A's", "action_type": "invite_to_group", "target_channel": "@a_group"}),
        )
        .await;
    let id = task["id"].as_i64().unwrap();
    let path = format!("/tasks/{id}");
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(json!({"name": "stolen"}))),
        (Method::PUT, Some(json!({"name": ""}))),
        (Method::DELETE, None),
    ] {
        let reply = app.call(method.clone(), &path, Some(2), body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} by user 2: {}",
            reply.body
        );
        assert_eq!(reply.detail(), format!("task {id} not found"));
    }
    let listed = app.call(Method::GET, "/tasks", Some(2), None).await;
    assert_eq!(listed.body["total"], 0);
    let audit = app.call(Method::GET, "/audit", Some(2), None).await;
    assert_eq!(audit.body["total"], 0, "user 2 sees none of user 1's audit entries");
    let owner = app.call(Method::GET, &path, Some(1), None).await;
    assert_eq!(owner.body, task, "nothing user 2 did changed the task");
    app.stop().await;
}

crate::on_both_backends!(
    bad_tokens_are_refused_with_401,
    user_id_comes_from_the_claim_or_a_numeric_sub,
    another_users_task_is_not_found_on_every_route,
);
