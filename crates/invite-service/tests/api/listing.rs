use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{spawn_app, Backend, TestApp};

fn names(reply: &Value) -> Vec<String> {
    reply["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

async fn list(app: &TestApp, query: &str) -> Value {
    let reply = app.call(Method::GET, &format!("/tasks?{query}"), Some(1), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.body);
    reply.body
}

/// Five tasks, one minute apart: names in two scripts, every priority, several statuses.
async fn seed(app: &TestApp) {
    let tasks = [
        ("РАССЫЛКА зима", "HIGH", None),
        ("Рассылка лето", "LOW", Some("PAUSED")),
        ("ёлка 100% скидка", "NORMAL", Some("COMPLETED")),
        ("Spring_invites", "MEDIUM", None),
        ("spring invites", "urgent", Some("IN_PROGRESS")),
    ];
    for (name, priority, status) in tasks {
        let t = app
            .create(1, json!({"name": name, "priority": priority, "action_type": "invite_to_group", "target_channel": "@seed_group"}))
            .await;
        if let Some(status) = status {
            app.force_status(t["id"].as_i64().unwrap(), status).await;
        }
        app.clock.advance(chrono::Duration::minutes(1));
    }
    app.create(
        2,
        json!({"name": "рассылка чужая", "action_type": "invite_to_group", "target_channel": "@other_group"}),
    )
    .await;
}

async fn filters_behave_alike_on_every_backend(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    assert_eq!(
        names(&list(&app, "name=рассылка&sort_by=created_at&sort_order=asc").await),
        ["РАССЫЛКА зима", "Рассылка лето"]
    );
    assert_eq!(names(&list(&app, "name=ЁЛКА").await), ["ёлка 100% скидка"]);
    assert_eq!(
        names(&list(&app, "name=100%25").await),
        ["ёлка 100% скидка"],
        "% is literal"
    );
    assert_eq!(
        names(&list(&app, "name=g_i&sort_by=name").await),
        ["Spring_invites"],
        "_ is literal"
    );
    assert_eq!(
        names(&list(&app, "name=SPRING&sort_by=name&sort_order=asc").await),
        ["spring invites", "Spring_invites"]
    );
    assert_eq!(list(&app, "status=paused,completed").await["total"], 2);
    assert_eq!(names(&list(&app, "status=in_progress").await), ["spring invites"]);
    assert_eq!(
        list(&app, "priority=normal").await["total"],
        2,
        "NORMAL and MEDIUM are one priority"
    );
    assert_eq!(list(&app, "priority=MEDIUM").await["total"], 2);
    assert_eq!(list(&app, "platform=TELEGRAM").await["total"], 5);
    let window = list(
        &app,
        "created_from=2026-06-01T12:01:00Z&created_to=2026-06-01T12:03:00Z&sort_order=asc",
    )
    .await;
    assert_eq!(names(&window), ["Рассылка лето", "ёлка 100% скидка", "Spring_invites"]);
    app.stop().await;
}

async fn sorting_and_pagination(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    assert_eq!(
        names(&list(&app, "").await),
        [
            "spring invites",
            "Spring_invites",
            "ёлка 100% скидка",
            "Рассылка лето",
            "РАССЫЛКА зима"
        ],
        "newest first by default"
    );
    let by_priority = list(&app, "sort_by=priority&sort_order=desc").await;
    let priorities: Vec<&str> = by_priority["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["priority"].as_str().unwrap())
        .collect();
    assert_eq!(priorities, ["HIGH", "HIGH", "NORMAL", "NORMAL", "LOW"]);
    let by_status = list(&app, "sort_by=status&sort_order=asc").await;
    let statuses: Vec<&str> = by_status["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["PENDING", "PENDING", "IN_PROGRESS", "COMPLETED", "PAUSED"]);

    let page1 = list(&app, "page_size=2&sort_by=created_at&sort_order=asc").await;
    assert_eq!(names(&page1), ["РАССЫЛКА зима", "Рассылка лето"]);
    assert_eq!(
        (
            &page1["total"],
            &page1["page"],
            &page1["page_size"],
            &page1["total_pages"],
            &page1["has_next"],
            &page1["has_prev"]
        ),
        (&json!(5), &json!(1), &json!(2), &json!(3), &json!(true), &json!(false))
    );
    let page3 = list(&app, "page=3&page_size=2&sort_order=asc").await;
    assert_eq!(names(&page3), ["spring invites"]);
    assert_eq!((&page3["has_next"], &page3["has_prev"]), (&json!(false), &json!(true)));
    let beyond = list(&app, "page=9&page_size=2").await;
    assert_eq!(
        (beyond["items"].as_array().unwrap().len(), &beyond["total"]),
        (0, &json!(5))
    );
    app.stop().await;
}

crate::on_both_backends!(filters_behave_alike_on_every_backend, sorting_and_pagination);
