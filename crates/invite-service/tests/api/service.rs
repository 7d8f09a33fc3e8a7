use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{spawn_app, Backend};

async fn health_reports_version_and_store(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = app.call(Method::GET, "/health", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let expected_backend = if backend == Backend::Sqlite {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(
        reply.body,
        json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "store": {"backend": expected_backend, "status": "ok"}})
    );
    app.stop().await;
}

/// With PostgreSQL gone, health says so with 503, and requests that need the store answer 503 too.
#[tokio::test]
async fn health_is_503_when_the_database_is_gone() {
    use sqlx::{Connection, Executor};
    let app = spawn_app(Backend::Postgres).await;
    let name = app.database_url.rsplit('/').next().unwrap().to_string();
    let admin =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    conn.execute(format!("DROP DATABASE \"{name}\" WITH (FORCE)").as_str())
        .await
        .unwrap();
    let reply = app.call(Method::GET, "/health", None, None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);
    assert_eq!(reply.body["status"], "unavailable");
    let list = app.call(Method::GET, "/tasks", Some(1), None).await;
    assert_eq!(list.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!list.detail().contains("postgres://"), "no connection string in errors");
    app.stop().await;
}

async fn every_state_change_is_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let create = app
        .raw(
            app.client
                .post(app.url("/tasks"))
                .bearer_auth(app.token(5))
                .header("x-request-id", "req-create-1")
                .json(&json!({"name": "Audited", "action_type": "invite_to_group", "target_channel": "@audit_group"})),
        )
        .await;
    assert_eq!(create.headers["x-request-id"], "req-create-1");
    let id = create.body["id"].as_i64().unwrap();
    app.call(
        Method::PUT,
        &format!("/tasks/{id}"),
        Some(5),
        Some(json!({"name": "Audited 2", "priority": "LOW"})),
    )
    .await;
    app.call(Method::DELETE, &format!("/tasks/{id}"), Some(5), None).await;

    let audit = app.call(Method::GET, "/audit?page_size=2", Some(5), None).await;
    assert_eq!(audit.body["total"], 3);
    assert_eq!(audit.body["has_next"], true);
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items[0]["action"], "task.delete");
    assert_eq!(items[0]["details"], json!({"name": "Audited 2"}));
    assert_eq!(items[1]["action"], "task.update");
    assert_eq!(items[1]["details"], json!({"changed": ["name", "priority"]}));
    let last = app.call(Method::GET, "/audit?page=2&page_size=2", Some(5), None).await;
    let created = &last.body["items"][0];
    assert_eq!(created["action"], "task.create");
    assert_eq!(created["object_type"], "task");
    assert_eq!(created["object_id"], id.to_string());
    assert_eq!(created["request_id"], "req-create-1");
    assert_eq!(created["client_addr"], "127.0.0.1");
    assert_eq!(created["user_id"], 5);
    assert_eq!(created["created_at"], "2026-06-01T12:00:00Z");
    app.stop().await;
}

async fn metrics_count_requests_by_route_template(backend: Backend) {
    let app = spawn_app(backend).await;
    app.call(Method::GET, "/tasks/12345", Some(1), None).await;
    app.call(Method::GET, "/tasks/67890", Some(1), None).await;
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/api/v1/invite/tasks/{task_id}",status="404"} 2"#),
        "{text}"
    );
    assert!(text.contains(
        r#"http_request_duration_seconds_bucket{method="GET",route="/api/v1/invite/tasks/{task_id}",le="0.005"}"#
    ));
    assert!(!text.contains("12345"), "ids never become labels");
    app.stop().await;
}

async fn openapi_describes_the_routes_and_the_docs_work_offline(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let mut described = BTreeSet::new();
    for (path, ops) in doc.body["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            described.insert(format!("{} {path}", method.to_uppercase()));
            // Every described operation exists: it answers neither 404-for-unknown-route nor 405.
            let concrete = path
                .replace("{task_id}", "999999")
                .replace("{target_id}", "1")
                .replace("{entry_id}", "1")
                .replace("{account_id}", "no-such-account")
                .replace("/api/v1/invite", "");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = app.call(m, &concrete, Some(1), Some(json!({}))).await;
            assert_ne!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_ne!(reply.body, json!({"detail": "Not Found"}), "{method} {path}");
        }
    }
    let expected: BTreeSet<String> = [
        "GET /api/v1/invite/health",
        "GET /api/v1/invite/tasks",
        "POST /api/v1/invite/tasks",
        "GET /api/v1/invite/tasks/{task_id}",
        "PUT /api/v1/invite/tasks/{task_id}",
        "DELETE /api/v1/invite/tasks/{task_id}",
        "POST /api/v1/invite/tasks/{task_id}/start",
        "POST /api/v1/invite/tasks/{task_id}/pause",
        "POST /api/v1/invite/tasks/{task_id}/resume",
        "POST /api/v1/invite/tasks/{task_id}/cancel",
        "GET /api/v1/invite/tasks/{task_id}/status",
        "GET /api/v1/invite/tasks/{task_id}/stats",
        "GET /api/v1/invite/tasks/{task_id}/report",
        "GET /api/v1/invite/tasks/{task_id}/logs",
        "GET /api/v1/invite/audit",
        "GET /api/v1/invite/accounts",
        "POST /api/v1/invite/accounts",
        "GET /api/v1/invite/accounts/{account_id}",
        "DELETE /api/v1/invite/accounts/{account_id}",
        "GET /api/v1/invite/accounts/{account_id}/limits",
        "POST /api/v1/invite/import/file",
        "POST /api/v1/invite/import/parsing",
        "GET /api/v1/invite/import/validate",
        "GET /api/v1/invite/tasks/{task_id}/targets",
        "DELETE /api/v1/invite/tasks/{task_id}/targets",
        "DELETE /api/v1/invite/tasks/{task_id}/targets/{target_id}",
        "GET /api/v1/invite/do-not-contact",
        "POST /api/v1/invite/do-not-contact",
        "POST /api/v1/invite/do-not-contact/import",
        "DELETE /api/v1/invite/do-not-contact/{entry_id}",
        "GET /api/v1/invite/openapi.json",
        "GET /api/v1/invite/docs",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(described, expected);

    let page = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("openapi.json"));
    for external in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
        "@import",
        "url(http",
    ] {
        assert!(!html.contains(external), "the docs page must not load {external}…");
    }
    app.stop().await;
}

async fn unknown_routes_and_methods_answer_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let missing = app.call(Method::GET, "/nope", Some(1), None).await;
    assert_eq!((missing.status, missing.detail()), (StatusCode::NOT_FOUND, "Not Found"));
    let method = app.call(Method::PATCH, "/tasks", Some(1), None).await;
    assert_eq!(
        (method.status, method.detail()),
        (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
    );
    app.stop().await;
}

crate::on_both_backends!(
    health_reports_version_and_store,
    every_state_change_is_audited,
    metrics_count_requests_by_route_template,
    openapi_describes_the_routes_and_the_docs_work_offline,
    unknown_routes_and_methods_answer_json,
);
