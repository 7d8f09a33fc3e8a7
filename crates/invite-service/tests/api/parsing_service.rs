//! Import from the Parsing Service, against a local server that serves the platform's payloads.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode as AxumStatus},
    routing::get,
    Json, Router,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{spawn_app_with, Backend};

#[derive(Clone, Default)]
struct Upstream {
    /// Every call: (task id, offset, bearer token).
    calls: Arc<Mutex<Vec<(String, usize, String)>>>,
}

fn fixture_results() -> Vec<Value> {
    let v: Value = serde_json::from_str(include_str!("../data/parsing-results.json")).unwrap();
    v["example"]["results"].as_array().unwrap().clone()
}

/// `/results/{task_id}?limit=&offset=`: task 17 holds the fixture's results plus generated ones;
/// `flaky` fails once with 502 then answers; `missing` is 404; `down` always answers 503.
async fn results(
    State(up): State<Upstream>,
    Path(task): Path<String>,
    Query(q): Query<HashMap<String, usize>>,
    headers: HeaderMap,
) -> Result<Json<Value>, AxumStatus> {
    let offset = q.get("offset").copied().unwrap_or(0);
    let limit = q.get("limit").copied().unwrap_or(100);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let calls_for_task = {
        let mut calls = up.calls.lock().unwrap();
        calls.push((task.clone(), offset, token));
        calls.iter().filter(|c| c.0 == task).count()
    };
    let mut all = fixture_results();
    for i in 0..4 {
        all.push(json!({"id": format!("g{i}"), "platform": "telegram", "username": format!("generated_{i}"), "platform_specific_data": {}}));
    }
    match task.as_str() {
        "17" => {}
        "flaky" if calls_for_task == 1 => return Err(AxumStatus::BAD_GATEWAY),
        "flaky" => {}
        "missing" => return Err(AxumStatus::NOT_FOUND),
        _ => return Err(AxumStatus::SERVICE_UNAVAILABLE),
    }
    let page: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
    Ok(Json(json!({"task_id": task, "results": page})))
}

async fn start_upstream() -> (String, Upstream) {
    let up = Upstream::default();
    let app = Router::new()
        .route("/results/{task}", get(results))
        .with_state(up.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), up)
}

async fn results_are_read_page_by_page_with_the_callers_token(backend: Backend) {
    let (url, upstream) = start_upstream().await;
    let app = spawn_app_with(
        backend,
        &[("PARSING_SERVICE_URL", &url), ("INVITE_PARSING_PAGE_SIZE", "3")],
    )
    .await;
    let task = app
        .create(
            1,
            json!({"name": "P", "action_type": "invite_to_group", "target_channel": "@parsed_group"}),
        )
        .await;
    let task = task["id"].as_i64().unwrap();
    let body = json!({"task_id": task, "parsing_task_id": "17"});
    let reply = app.call(Method::POST, "/import/parsing", Some(1), Some(body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let report = &reply.body["report"];
    assert_eq!(
        (&report["total_rows"], &report["stored"], &report["excluded"]),
        (&json!(7), &json!(6), &json!(1)),
        "{report}"
    );
    let calls = upstream.calls.lock().unwrap().clone();
    let offsets: Vec<usize> = calls.iter().map(|c| c.1).collect();
    assert_eq!(offsets, [0, 3, 6], "limit/offset paging until a short page");
    assert!(
        calls.iter().all(|c| c.2 == format!("Bearer {}", app.token(1))),
        "the caller's own token is passed on"
    );

    let list = app
        .call(Method::GET, &format!("/tasks/{task}/targets"), Some(1), None)
        .await;
    let anna = &list.body["items"][0];
    assert_eq!(
        (&anna["username"], &anna["user_id"], &anna["user_id_is_hint"]),
        (&json!("anna_k"), &json!(100200301), &json!(true))
    );
    assert_eq!(
        (&anna["source"], &anna["extra"]["parsing_result_id"]),
        (&json!("PARSING_IMPORT"), &json!("101"))
    );

    let with_bots = json!({"task_id": task, "parsing_task_id": "17", "skip_bots": false, "dry_run": true});
    let reply = app
        .call(Method::POST, "/import/parsing", Some(1), Some(with_bots))
        .await;
    assert_eq!(
        (&reply.body["report"]["valid"], &reply.body["report"]["duplicates"]),
        (&json!(1), &json!(6)),
        "only the bot is new"
    );
    app.stop().await;
}

async fn upstream_failures_are_named(backend: Backend) {
    let (url, upstream) = start_upstream().await;
    let app = spawn_app_with(backend, &[("PARSING_SERVICE_URL", &url)]).await;
    let task = app
        .create(
            1,
            json!({"name": "P", "action_type": "invite_to_group", "target_channel": "@parsed_group"}),
        )
        .await;
    let task = task["id"].as_i64().unwrap();
    let import = |parsing: &str| json!({"task_id": task, "parsing_task_id": parsing, "dry_run": true});

    let flaky = app
        .call(Method::POST, "/import/parsing", Some(1), Some(import("flaky")))
        .await;
    assert_eq!(flaky.status, StatusCode::OK, "a failed page is retried: {}", flaky.body);
    let missing = app
        .call(Method::POST, "/import/parsing", Some(1), Some(import("missing")))
        .await;
    assert_eq!(
        (missing.status, missing.detail()),
        (StatusCode::NOT_FOUND, "the Parsing Service has no parsing task missing")
    );
    let down = app
        .call(Method::POST, "/import/parsing", Some(1), Some(import("down")))
        .await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        down.detail(),
        "the Parsing Service is unavailable: it answered 503 Service Unavailable (after 3 attempts)"
    );
    assert_eq!(
        upstream.calls.lock().unwrap().iter().filter(|c| c.0 == "down").count(),
        3
    );
    let bad_id = app
        .call(Method::POST, "/import/parsing", Some(1), Some(import("../admin")))
        .await;
    assert_eq!(bad_id.field_errors()[0].0, "body.parsing_task_id");
    app.stop().await;

    let unreachable = spawn_app_with(
        backend,
        &[
            ("PARSING_SERVICE_URL", "http://127.0.0.1:9"),
            ("INVITE_PARSING_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let task = unreachable
        .create(
            1,
            json!({"name": "P", "action_type": "invite_to_group", "target_channel": "@parsed_group"}),
        )
        .await;
    let body = json!({"task_id": task["id"], "parsing_task_id": "17"});
    let reply = unreachable
        .call(Method::POST, "/import/parsing", Some(1), Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply
            .detail()
            .starts_with("the Parsing Service is unavailable: it cannot be reached"),
        "{}",
        reply.detail()
    );
    unreachable.stop().await;
}

crate::on_both_backends!(
    results_are_read_page_by_page_with_the_callers_token,
    upstream_failures_are_named
);
