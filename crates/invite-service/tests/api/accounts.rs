use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{spawn_app, spawn_app_with, Backend, DATA_KEY};

fn fixture_sessions() -> Vec<Value> {
    let v: Value = serde_json::from_str(include_str!("../data/telethon-sessions.json")).unwrap();
    v["sessions"].as_array().unwrap().clone()
}

const API_HASH: &str = "0123456789abcdef0123456789abcdef";

async fn sessions_are_registered_sealed_and_never_returned(backend: Backend) {
    let app = spawn_app(backend).await;
    let sessions = fixture_sessions();
    for s in &sessions {
        let session = s["string_session"].as_str().unwrap();
        let body =
            json!({"platform": "telegram", "name": "Main", "session": session, "api_id": 12345, "api_hash": API_HASH});
        let reply = app.call(Method::POST, "/accounts", Some(1), Some(body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let facts = &reply.body["session"];
        assert_eq!(facts["dc_id"], s["dc_id"]);
        assert_eq!(facts["server_address"], s["server_address"]);
        assert_eq!(facts["port"], s["port"]);
        assert_eq!(facts["auth_key_id"], s["auth_key_id"]);
        assert_eq!(
            (&reply.body["status"], &reply.body["kind"], &reply.body["api_id"]),
            (&json!("active"), &json!("session"), &json!(12345))
        );
        let text = reply.body.to_string();
        assert!(
            !text.contains(session) && !text.contains(API_HASH),
            "no secret in the answer"
        );

        let again = app
            .call(Method::POST, "/accounts", Some(1), Some(json!({"platform": "telegram", "name": "Twice", "session": session, "api_id": 1, "api_hash": API_HASH})))
            .await;
        assert_eq!(
            again.status,
            StatusCode::CONFLICT,
            "the same key twice draws AUTH_KEY_DUPLICATED"
        );
    }
    // The same key as grammers writes it is the same session, already registered.
    let key_hex = "ab".repeat(256);
    let grammers =
        json!({"id": 2, "ipv4": "149.154.167.51:443", "ipv6": "[2001:67c:4e8:f002::a]:443", "auth_key": key_hex})
            .to_string();
    let reply = app
        .call(
            Method::POST,
            "/accounts",
            Some(3),
            Some(json!({"platform": "telegram", "name": "G", "session": grammers, "api_id": 1, "api_hash": API_HASH})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        (&reply.body["session"]["dc_id"], &reply.body["session"]["port"]),
        (&json!(2), &json!(443))
    );
    assert!(!reply.body.to_string().contains(&key_hex));

    let listed = app.call(Method::GET, "/accounts", Some(1), None).await;
    assert_eq!(listed.body["total"], 2);
    let first = &listed.body["items"][0];
    assert_eq!(first["usage"]["invite"], json!({"used_24h": 0, "cap_24h": 30}));
    let text = listed.body.to_string();
    for s in &sessions {
        assert!(!text.contains(s["string_session"].as_str().unwrap()));
    }
    assert!(!text.contains(API_HASH));
    assert_eq!(
        app.call(Method::GET, "/accounts", Some(2), None).await.body["total"],
        0,
        "each user sees only their own"
    );

    // At rest the session is sealed: the database holds neither it nor the hash in the clear.
    let id = first["id"].as_str().unwrap();
    let dump = app.dump_table("accounts").await;
    assert!(dump.contains(id));
    for s in &sessions {
        assert!(
            !dump.contains(s["string_session"].as_str().unwrap()),
            "session stored in the clear"
        );
    }
    assert!(!dump.contains(API_HASH) && !dump.contains(DATA_KEY));

    let foreign = app.call(Method::GET, &format!("/accounts/{id}"), Some(2), None).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.call(Method::DELETE, &format!("/accounts/{id}"), Some(2), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(Method::DELETE, &format!("/accounts/{id}"), Some(1), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call(Method::GET, &format!("/accounts/{id}"), Some(1), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

/// A session's account id comes from its key: registered again after a delete, it is the same
/// account (its ledger, and so its spent budget, with it); registered twice at once, one copy wins.
async fn a_session_is_one_account_however_often_it_is_registered(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = fixture_sessions()[0]["string_session"].as_str().unwrap().to_string();
    let body = json!({"platform": "telegram", "name": "Main", "session": session, "api_id": 1, "api_hash": API_HASH});
    let first = app.call(Method::POST, "/accounts", Some(1), Some(body.clone())).await;
    let id = first.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("tg-"), "{id}");
    assert_eq!(
        app.call(Method::DELETE, &format!("/accounts/{id}"), Some(1), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let again = app.call(Method::POST, "/accounts", Some(1), Some(body.clone())).await;
    assert_eq!(
        (again.status, again.body["id"].as_str()),
        (StatusCode::CREATED, Some(id.as_str()))
    );
    assert_eq!(
        app.call(Method::DELETE, &format!("/accounts/{id}"), Some(1), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    let (a, b) = tokio::join!(
        app.call(Method::POST, "/accounts", Some(1), Some(body.clone())),
        app.call(Method::POST, "/accounts", Some(2), Some(body.clone()))
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(
        statuses,
        [201, 409],
        "one copy of a session, whoever registers it: {} / {}",
        a.body,
        b.body
    );
    app.stop().await;
}

async fn bad_registrations_name_their_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = fixture_sessions()[0]["string_session"].as_str().unwrap().to_string();
    let cases = [
        (
            json!({"name": "x", "sandbox": true}),
            "body.platform",
            "platform is required",
        ),
        (
            json!({"platform": "whatsapp", "name": "x", "sandbox": true}),
            "body.platform",
            "platform not supported yet: whatsapp",
        ),
        (
            json!({"platform": "telegram", "sandbox": true}),
            "body.name",
            "name is required",
        ),
        (
            json!({"platform": "telegram", "name": "x"}),
            "body.session",
            "session is required",
        ),
        (
            json!({"platform": "telegram", "name": "x", "session": "2abc"}),
            "body.session",
            "is not a Telethon StringSession",
        ),
        (
            json!({"platform": "telegram", "name": "x", "session": format!("1{}", &session[5..])}),
            "body.session",
            "session",
        ),
        (
            json!({"platform": "telegram", "name": "x", "session": session.clone()}),
            "body.api_id",
            "api_id and api_hash are required",
        ),
        (
            json!({"platform": "telegram", "name": "x", "session": session.clone(), "api_id": 5}),
            "body.api_hash",
            "go together",
        ),
        (
            json!({"platform": "telegram", "name": "x", "session": session.clone(), "api_id": 5, "api_hash": "xyz"}),
            "body.api_hash",
            "32 hexadecimal",
        ),
        (
            json!({"platform": "telegram", "name": "x", "sandbox": true, "session": session.clone()}),
            "body.session",
            "sandbox account has no session",
        ),
    ];
    for (body, loc, msg) in cases {
        let reply = app.call(Method::POST, "/accounts", Some(1), Some(body.clone())).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", reply.body);
        let (l, m) = reply.field_errors().into_iter().next().unwrap();
        assert_eq!(l, loc, "{body}");
        assert!(m.contains(msg), "{m:?} lacks {msg:?}");
        assert!(
            !reply.body.to_string().contains(&session[10..40]),
            "an error never repeats the session"
        );
    }
    assert_eq!(app.call(Method::GET, "/accounts", Some(1), None).await.body["total"], 0);
    app.stop().await;

    let with_defaults = spawn_app_with(
        backend,
        &[
            ("INVITE_TELEGRAM_API_ID", "777"),
            ("INVITE_TELEGRAM_API_HASH", API_HASH),
        ],
    )
    .await;
    let reply = with_defaults
        .call(
            Method::POST,
            "/accounts",
            Some(1),
            Some(json!({"platform": "telegram", "name": "x", "session": session})),
        )
        .await;
    assert_eq!(
        (reply.status, &reply.body["api_id"]),
        (StatusCode::CREATED, &json!(777)),
        "the service-wide credentials apply"
    );
    with_defaults.stop().await;
}

async fn limits_show_the_policy_and_real_usage(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = app
        .call(
            Method::POST,
            "/accounts",
            Some(1),
            Some(json!({"platform": "telegram", "name": "Sandbox 1", "sandbox": true})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        (&reply.body["kind"], reply.body.get("session")),
        (&json!("sandbox"), None)
    );
    let id = reply.body["id"].as_str().unwrap().to_string();
    let limits = app
        .call(Method::GET, &format!("/accounts/{id}/limits"), Some(1), None)
        .await;
    assert_eq!(limits.status, StatusCode::OK);
    assert_eq!(limits.body["account_id"], id);
    assert_eq!(
        limits.body["limits"],
        json!({"daily_invites": 30, "daily_invites_per_channel": 15, "lifetime_invites_per_channel": 200, "daily_messages": 30,
               "invite_pause_seconds": [600, 900], "message_pause_seconds": [120, 300], "flood_wait_buffer": 30})
    );
    assert_eq!(
        limits.body["current_usage"],
        json!({"daily_invites_used": 0, "daily_messages_used": 0, "hourly_invites_used": 0})
    );
    assert_eq!(limits.body["restrictions"], json!([]));
    assert_eq!(limits.body["last_updated"], "2026-06-01T12:00:00Z");
    let foreign = app
        .call(Method::GET, &format!("/accounts/{id}/limits"), Some(2), None)
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

crate::on_both_backends!(
    a_session_is_one_account_however_often_it_is_registered,
    sessions_are_registered_sealed_and_never_returned,
    bad_registrations_name_their_problem,
    limits_show_the_policy_and_real_usage,
);
