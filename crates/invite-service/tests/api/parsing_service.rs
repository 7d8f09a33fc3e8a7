//! Import from the Parsing Service, against a local server that serves the platform's payloads.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode as AxumStatus},
    routing::get,
    Json, Router,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{sandbox_accounts, spawn_app_with, start_time, Backend, TestApp, JWT_SECRET};

#[derive(Clone, Default)]
struct Upstream {
    /// Every call: (task id, offset, bearer token).
    calls: Arc<Mutex<Vec<(String, usize, String)>>>,
    /// While set, every call answers 503.
    down: Arc<AtomicBool>,
}

impl Upstream {
    fn calls_for(&self, task: &str) -> Vec<(String, usize, String)> {
        let calls = self.calls.lock().unwrap();
        calls.iter().filter(|c| c.0 == task).cloned().collect()
    }
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
    if up.down.load(Ordering::SeqCst) {
        return Err(AxumStatus::SERVICE_UNAVAILABLE);
    }
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

/// The claims of a bearer token the fake received, checked to be HS256-signed with the tests' JWT
/// secret (its expiry is on the manual clock, so it is not checked against the machine's).
fn claims(authorization: &str) -> serde_json::Map<String, Value> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let token = authorization.strip_prefix("Bearer ").expect("a bearer token");
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    jsonwebtoken::decode(token, &DecodingKey::from_secret(JWT_SECRET.as_bytes()), &validation)
        .expect("HS256 with the shared secret")
        .claims
}

fn assert_service_token(authorization: &str) {
    let c = claims(authorization);
    assert_eq!(
        (&c["sub"], &c["service"]),
        (&json!("invite-service"), &json!("invite-service")),
        "{c:?}"
    );
    assert!(c.get("user_id").is_none(), "not a user's token: {c:?}");
}

fn parsed_task(name: &str, parsing_task_id: &str) -> Value {
    json!({"name": name, "action_type": "invite_to_group", "target_channel": "@parsed_group",
           "settings": {"parsing_task_id": parsing_task_id}})
}

async fn task_of(app: &TestApp, id: i64) -> Value {
    app.call(Method::GET, &format!("/tasks/{id}"), Some(1), None).await.body
}

async fn move_task(app: &TestApp, id: i64, action: &str) -> crate::support::Reply {
    app.call(Method::POST, &format!("/tasks/{id}/{action}"), Some(1), None)
        .await
}

/// Ticks the scheduler until the task satisfies `done` (the import runs beside the tick and wakes it).
async fn tick_until(
    app: &TestApp,
    scheduler: &invite_service::engine::scheduler::Scheduler,
    id: i64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        scheduler.tick().await.unwrap();
        let task = task_of(app, id).await;
        if done(&task) {
            return task;
        }
        assert!(Instant::now() < deadline, "task {id} stuck: {task}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ticks until the scheduled task is refused its start; it stays PENDING, saying why.
async fn tick_until_not_started(
    app: &TestApp,
    scheduler: &invite_service::engine::scheduler::Scheduler,
    id: i64,
) -> Value {
    let task = tick_until(app, scheduler, id, |t| {
        t["status_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("not started"))
    })
    .await;
    assert_eq!(task["status"], "PENDING", "{task}");
    task
}

async fn a_started_task_imports_its_parsing_task_once_with_the_service_token(backend: Backend) {
    let (url, upstream) = start_upstream().await;
    let app = spawn_app_with(
        backend,
        &[("PARSING_SERVICE_URL", &url), ("INVITE_PARSING_PAGE_SIZE", "3")],
    )
    .await;
    sandbox_accounts(&app, 1, 1).await;
    let id = app.create(1, parsed_task("From parsing", "17")).await["id"]
        .as_i64()
        .unwrap();
    assert!(
        upstream.calls_for("17").is_empty(),
        "nothing is imported before the start"
    );

    let started = move_task(&app, id, "start").await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    assert_eq!(started.body["status"], "IN_PROGRESS");
    assert_eq!(started.body["target_count"], 6, "{}", started.body);
    let calls = upstream.calls_for("17");
    assert_eq!(calls.iter().map(|c| c.1).collect::<Vec<_>>(), [0, 3, 6]);
    for call in &calls {
        assert_ne!(call.2, format!("Bearer {}", app.token(1)));
        assert_service_token(&call.2);
    }
    let record = app
        .call(Method::GET, &format!("/import/validate?task_id={id}"), Some(1), None)
        .await;
    assert_eq!(
        (
            &record.body["source"],
            &record.body["file_name"],
            &record.body["report"]["stored"]
        ),
        (&json!("PARSING_IMPORT"), &json!("parsing task 17"), &json!(6)),
        "{}",
        record.body
    );

    for action in ["pause", "resume", "pause", "resume"] {
        let r = move_task(&app, id, action).await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {}", r.body);
    }
    assert_eq!(upstream.calls_for("17").len(), 3, "a resume does not import again");
    assert_eq!(task_of(&app, id).await["target_count"], 6);

    // The endpoint, in a user's request, passes the caller's own token on.
    let other = app
        .create(
            1,
            json!({"name": "By hand", "action_type": "invite_to_group",
                                     "target_channel": "@parsed_group"}),
        )
        .await;
    let body = json!({"task_id": other["id"], "parsing_task_id": "17", "dry_run": true});
    let reply = app.call(Method::POST, "/import/parsing", Some(1), Some(body)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let last = upstream.calls_for("17").last().cloned().unwrap();
    assert_eq!(last.2, format!("Bearer {}", app.token(1)));
    assert_eq!(claims(&last.2)["user_id"], 1);
    app.stop().await;
}

async fn a_scheduled_task_imports_its_audience_and_starts_by_itself(backend: Backend) {
    use chrono::Duration as Minutes;
    use invite_service::engine::audience::ScheduledAudience;
    let (url, upstream) = start_upstream().await;
    let app = spawn_app_with(backend, &[("PARSING_SERVICE_URL", &url)]).await;
    sandbox_accounts(&app, 1, 1).await;
    let scheduler = invite_service::engine::scheduler::Scheduler::new(app.engine());
    let at = start_time() + Minutes::minutes(10);
    let mut body = parsed_task("Scheduled", "17");
    body["scheduled_start"] = json!(at.to_rfc3339());
    let id = app.create(1, body).await["id"].as_i64().unwrap();
    let armed = move_task(&app, id, "start").await;
    assert_eq!(
        armed.status,
        StatusCode::OK,
        "a start without targets yet is armed: {}",
        armed.body
    );
    assert_eq!(armed.body["status"], "PENDING");
    scheduler.tick().await.unwrap();
    assert!(
        upstream.calls_for("17").is_empty(),
        "nothing is imported before the scheduled time"
    );

    app.clock.advance(Minutes::minutes(10));
    let task = tick_until(&app, &scheduler, id, |t| t["status"] != "PENDING").await;
    assert_eq!(task["status"], "IN_PROGRESS", "{task}");
    assert_eq!(task["target_count"], 6, "{task}");
    let calls = upstream.calls_for("17");
    assert_eq!(calls.len(), 1, "one page of 500");
    assert_service_token(&calls[0].2);

    // A parsing task that does not exist will not appear by waiting: the task is not started.
    let at = clock::Clock::now(&app.clock) + Minutes::minutes(10);
    let mut body = parsed_task("Scheduled, missing", "missing");
    body["scheduled_start"] = json!(at.to_rfc3339());
    let missing = app.create(1, body).await["id"].as_i64().unwrap();
    assert_eq!(move_task(&app, missing, "start").await.status, StatusCode::OK);
    let engine = app.engine();
    let armed = engine.store.engine_task(missing).await.unwrap().unwrap();
    app.clock.advance(Minutes::minutes(10));
    let task = tick_until_not_started(&app, &scheduler, missing).await;
    assert_eq!(
        task["status_reason"],
        "not started: the Parsing Service has no parsing task missing"
    );
    assert_eq!(upstream.calls_for("missing").len(), 1);

    // Another tick's look at the task, taken while it was still armed, does not import again…
    let now = clock::Clock::now(&app.clock);
    let stale = engine.scheduled_audience(&armed, now).await.unwrap();
    assert_eq!(stale, ScheduledAudience::Later(None));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(upstream.calls_for("missing").len(), 1, "a stale look imports nothing");
    // …while a new time and a start by the user arm it again, and the import is tried afresh.
    let at = now + Minutes::minutes(10);
    let path = format!("/tasks/{missing}");
    let edit = json!({"scheduled_start": at.to_rfc3339()});
    let edited = app.call(Method::PUT, &path, Some(1), Some(edit)).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(move_task(&app, missing, "start").await.status, StatusCode::OK);
    app.clock.advance(Minutes::minutes(10));
    tick_until_not_started(&app, &scheduler, missing).await;
    assert_eq!(upstream.calls_for("missing").len(), 2);
    app.stop().await;
}

async fn a_scheduled_start_waits_while_the_parsing_service_is_down(backend: Backend) {
    use chrono::Duration as Minutes;
    let (url, upstream) = start_upstream().await;
    let app = spawn_app_with(backend, &[("PARSING_SERVICE_URL", &url)]).await;
    sandbox_accounts(&app, 1, 1).await;
    let scheduler = invite_service::engine::scheduler::Scheduler::new(app.engine());
    let at = start_time() + Minutes::minutes(10);
    let mut body = parsed_task("Waits", "17");
    body["scheduled_start"] = json!(at.to_rfc3339());
    let id = app.create(1, body).await["id"].as_i64().unwrap();
    assert_eq!(move_task(&app, id, "start").await.status, StatusCode::OK);
    upstream.down.store(true, Ordering::SeqCst);

    app.clock.advance(Minutes::minutes(10));
    let waiting = tick_until(&app, &scheduler, id, |t| {
        t["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains("waiting for its audience"))
    })
    .await;
    assert_eq!(waiting["status"], "PENDING", "{waiting}");
    let reason = waiting["status_reason"].as_str().unwrap();
    assert!(reason.starts_with("scheduled for "), "still armed: {reason}");
    assert!(
        reason.ends_with("the Parsing Service is unavailable: it answered 503 Service Unavailable (after 3 attempts)"),
        "{reason}"
    );
    assert_eq!(upstream.calls_for("17").len(), 3, "one import, its 3 attempts");

    // No hot loop: nothing is tried again before a minute has passed, and the scheduler wakes then.
    let now = clock::Clock::now(&app.clock);
    for _ in 0..3 {
        let tick = scheduler.tick().await.unwrap();
        assert_eq!(tick.next_wake, Some(now + Minutes::minutes(1)));
    }
    app.clock.advance(Minutes::seconds(30));
    scheduler.tick().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(upstream.calls_for("17").len(), 3);
    assert_eq!(task_of(&app, id).await["status"], "PENDING");

    upstream.down.store(false, Ordering::SeqCst);
    app.clock.advance(Minutes::seconds(30));
    let task = tick_until(&app, &scheduler, id, |t| t["status"] != "PENDING").await;
    assert_eq!(task["status"], "IN_PROGRESS", "{task}");
    assert_eq!(task["status_reason"], Value::Null, "{task}");
    assert_eq!(task["target_count"], 6, "{task}");
    assert_eq!(upstream.calls_for("17").len(), 4);
    app.stop().await;
}

async fn a_start_the_parsing_service_cannot_serve_is_refused(backend: Backend) {
    let (url, upstream) = start_upstream().await;
    let app = spawn_app_with(backend, &[("PARSING_SERVICE_URL", &url)]).await;
    sandbox_accounts(&app, 1, 1).await;

    let id = app.create(1, parsed_task("Down", "17")).await["id"].as_i64().unwrap();
    upstream.down.store(true, Ordering::SeqCst);
    let refused = move_task(&app, id, "start").await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.body);
    assert!(
        refused.detail().starts_with("the Parsing Service is unavailable"),
        "{}",
        refused.detail()
    );
    let task = task_of(&app, id).await;
    assert_eq!(
        (&task["status"], &task["target_count"]),
        (&json!("PENDING"), &json!(0)),
        "{task}"
    );
    upstream.down.store(false, Ordering::SeqCst);
    let started = move_task(&app, id, "start").await;
    assert_eq!(started.status, StatusCode::OK, "after recovery: {}", started.body);
    assert_eq!(started.body["target_count"], 6);

    let missing = app.create(1, parsed_task("Missing", "missing")).await["id"]
        .as_i64()
        .unwrap();
    let refused = move_task(&app, missing, "start").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(
        refused.detail(),
        format!(
            "task {missing} cannot start: the Parsing Service has no parsing task missing (settings.parsing_task_id)"
        )
    );
    app.stop().await;
}

async fn a_malformed_or_unserviceable_parsing_task_id_is_refused(backend: Backend) {
    let (url, _upstream) = start_upstream().await;
    let app = spawn_app_with(backend, &[("PARSING_SERVICE_URL", &url)]).await;
    for bad in [json!("../admin"), json!(""), json!("x".repeat(65)), json!(true)] {
        let body = json!({"name": "Bad", "action_type": "invite_to_group", "target_channel": "@parsed_group",
                          "settings": {"parsing_task_id": bad}});
        let r = app.call(Method::POST, "/tasks", Some(1), Some(body)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", r.body);
        let errors = r.field_errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "body.settings.parsing_task_id");
        assert!(
            errors[0].1.starts_with("settings.parsing_task_id must be"),
            "{errors:?}"
        );
    }
    // Reported beside the body's other problems.
    let both = json!({"action_type": "invite_to_group", "target_channel": "@parsed_group",
                      "settings": {"parsing_task_id": "a/b"}});
    let r = app.call(Method::POST, "/tasks", Some(1), Some(both)).await;
    let locs: Vec<String> = r.field_errors().into_iter().map(|e| e.0).collect();
    assert!(
        locs.contains(&"body.name".to_owned()) && locs.contains(&"body.settings.parsing_task_id".to_owned()),
        "{locs:?}"
    );

    let id = app.create(1, parsed_task("Fine", "17")).await["id"].as_i64().unwrap();
    let r = app
        .call(
            Method::PUT,
            &format!("/tasks/{id}"),
            Some(1),
            Some(json!({"settings": {"parsing_task_id": "a b"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.field_errors()[0].0, "body.settings.parsing_task_id");
    app.stop().await;

    let unconfigured = spawn_app_with(backend, &[]).await;
    let r = unconfigured
        .call(Method::POST, "/tasks", Some(1), Some(parsed_task("No service", "17")))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.detail().contains("PARSING_SERVICE_URL"), "{}", r.detail());
    unconfigured.stop().await;
}

crate::on_both_backends!(
    results_are_read_page_by_page_with_the_callers_token,
    upstream_failures_are_named,
    a_started_task_imports_its_parsing_task_once_with_the_service_token,
    a_scheduled_task_imports_its_audience_and_starts_by_itself,
    a_scheduled_start_waits_while_the_parsing_service_is_down,
    a_start_the_parsing_service_cannot_serve_is_refused,
    a_malformed_or_unserviceable_parsing_task_id_is_refused,
);
