use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{spawn_app, start_time, Backend};

async fn create_get_update_delete(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = app
        .call(
            Method::POST,
            "/tasks",
            Some(1),
            Some(
                json!({"name": " Зимняя рассылка ", "description": "first", "action_type": "invite_to_group",
                        "target_channel": "https://t.me/winter_group", "priority": "medium"}),
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let task = reply.body;
    let id = task["id"].as_i64().unwrap();
    assert_eq!(reply.headers["location"], format!("/api/v1/invite/tasks/{id}").as_str());
    assert_eq!(task["name"], "Зимняя рассылка");
    assert_eq!(task["user_id"], 1);
    assert_eq!(task["platform"], "telegram");
    assert_eq!(task["target_channel"], "@winter_group");
    assert_eq!(task["priority"], "NORMAL");
    assert_eq!(task["status"], "PENDING");
    assert_eq!(task["progress_percentage"], 0.0);
    assert_eq!(task["created_at"], "2026-06-01T12:00:00Z");

    let got = app.call(Method::GET, &format!("/tasks/{id}"), Some(1), None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, task);

    app.clock.advance(chrono::Duration::minutes(5));
    let updated = app
        .call(
            Method::PUT,
            &format!("/tasks/{id}"),
            Some(1),
            Some(
                json!({"action_type": "send_message", "message_template": "Привет, {first_name}!",
                        "target_channel": null, "priority": "HIGH", "description": null,
                        "scheduled_start": "2026-06-02T09:00:00+03:00"}),
            ),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["action_type"], "send_message");
    assert_eq!(updated.body["message_template"], "Привет, {first_name}!");
    assert_eq!(updated.body["target_channel"], json!(null));
    assert_eq!(updated.body["description"], json!(null));
    assert_eq!(updated.body["priority"], "HIGH");
    assert_eq!(updated.body["scheduled_start"], "2026-06-02T06:00:00Z");
    assert_eq!(
        updated.body["name"], "Зимняя рассылка",
        "fields left out keep their values"
    );
    assert_eq!(updated.body["updated_at"], "2026-06-01T12:05:00Z");
    assert_eq!(updated.body["created_at"], "2026-06-01T12:00:00Z");

    let listed = app.call(Method::GET, "/tasks", Some(1), None).await;
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["items"][0], updated.body);

    let deleted = app.call(Method::DELETE, &format!("/tasks/{id}"), Some(1), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = app.call(Method::GET, &format!("/tasks/{id}"), Some(1), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.detail(), format!("task {id} not found"));
    let again = app.call(Method::DELETE, &format!("/tasks/{id}"), Some(1), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn the_web_clients_field_names_are_understood(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = app
        .create(
            3,
            json!({"name": "DM", "platform": "Telegram", "priority": "low", "invite_message": "Hi {username}",
                   "settings": {"invite_type": "message", "group_id": "-1001234567890", "delay": 5}}),
        )
        .await;
    assert_eq!(task["action_type"], "send_message");
    assert_eq!(task["message_template"], "Hi {username}");
    assert_eq!(task["target_channel"], "-1001234567890");
    assert_eq!(task["priority"], "LOW");
    assert_eq!(
        task["settings"],
        json!({"invite_type": "message", "group_id": "-1001234567890", "delay": 5})
    );

    let invite = app
        .create(
            3,
            json!({"name": "Inv", "settings": {"invite_type": "group_invite", "group_id": 777}}),
        )
        .await;
    assert_eq!(invite["action_type"], "invite_to_group");
    assert_eq!(invite["target_channel"], "777");
    app.stop().await;
}

async fn a_paused_task_changes_only_name_description_and_priority(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = app
        .create(
            1,
            json!({"name": "P", "action_type": "send_message", "message_template": "Hi"}),
        )
        .await;
    let id = task["id"].as_i64().unwrap();
    app.force_status(id, "PAUSED").await;
    let path = format!("/tasks/{id}");

    let ok = app
        .call(
            Method::PUT,
            &path,
            Some(1),
            Some(json!({"name": "Q", "priority": "LOW", "description": "d", "message_template": "Hi"})),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        (ok.body["name"].as_str(), ok.body["priority"].as_str()),
        (Some("Q"), Some("LOW"))
    );

    let locked = app
        .call(Method::PUT, &path, Some(1), Some(json!({"message_template": "Hello"})))
        .await;
    assert_eq!(locked.status, StatusCode::CONFLICT);
    assert!(
        locked.detail().contains("PAUSED") && locked.detail().contains("message_template"),
        "{}",
        locked.detail()
    );

    let unchanged = app.call(Method::GET, &path, Some(1), None).await;
    assert_eq!(
        unchanged.body["message_template"], "Hi",
        "a refused update changes nothing"
    );

    let deleted = app.call(Method::DELETE, &path, Some(1), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "a paused task may be deleted");
    app.stop().await;
}

async fn running_and_finished_tasks_cannot_be_edited(backend: Backend) {
    let app = spawn_app(backend).await;
    for status in ["IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED"] {
        let task = app
            .create(
                1,
                json!({"name": "R", "action_type": "invite_to_group", "target_channel": "@some_group"}),
            )
            .await;
        let id = task["id"].as_i64().unwrap();
        app.force_status(id, status).await;
        let reply = app
            .call(
                Method::PUT,
                &format!("/tasks/{id}"),
                Some(1),
                Some(json!({"name": "renamed"})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{status}");
        assert!(reply.detail().contains(status), "{}", reply.detail());
        let delete = app.call(Method::DELETE, &format!("/tasks/{id}"), Some(1), None).await;
        if status == "IN_PROGRESS" {
            assert_eq!(delete.status, StatusCode::CONFLICT);
            assert!(delete.detail().contains("cancel"), "{}", delete.detail());
            let still = app.call(Method::GET, &format!("/tasks/{id}"), Some(1), None).await;
            assert_eq!(still.body["name"], "R");
        } else {
            assert_eq!(delete.status, StatusCode::NO_CONTENT, "{status}");
        }
    }
    app.stop().await;
}

async fn an_update_that_changes_nothing_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = app
        .create(
            1,
            json!({"name": "Same", "action_type": "invite_to_group", "target_channel": "@same_group"}),
        )
        .await;
    let id = task["id"].as_i64().unwrap();
    app.clock.advance(chrono::Duration::hours(1));
    let reply = app
        .call(
            Method::PUT,
            &format!("/tasks/{id}"),
            Some(1),
            Some(json!({"name": "Same", "target_channel": "t.me/same_group"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["updated_at"], task["updated_at"]);
    let audit = app.call(Method::GET, "/audit", Some(1), None).await;
    assert_eq!(audit.body["total"], 1, "only the create is audited: {}", audit.body);
    app.stop().await;
}

async fn a_future_start_is_kept_and_a_past_one_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let later = (start_time() + chrono::Duration::days(2)).to_rfc3339();
    let task = app
        .create(1, json!({"name": "S", "action_type": "invite_to_group", "target_channel": "@sched_group", "scheduled_start": later}))
        .await;
    assert_eq!(task["scheduled_start"], "2026-06-03T12:00:00Z");
    // Once that time has passed, the task can still be edited without re-sending the start.
    app.clock.advance(chrono::Duration::days(3));
    let id = task["id"].as_i64().unwrap();
    let renamed = app
        .call(
            Method::PUT,
            &format!("/tasks/{id}"),
            Some(1),
            Some(json!({"name": "S2", "scheduled_start": later})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    let moved = app
        .call(
            Method::PUT,
            &format!("/tasks/{id}"),
            Some(1),
            Some(json!({"scheduled_start": "2026-06-03T13:00:00Z"})),
        )
        .await;
    assert_eq!(moved.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(moved.field_errors()[0].0, "body.scheduled_start");
    app.stop().await;
}

crate::on_both_backends!(
    create_get_update_delete,
    the_web_clients_field_names_are_understood,
    a_paused_task_changes_only_name_description_and_priority,
    running_and_finished_tasks_cannot_be_edited,
    an_update_that_changes_nothing_writes_nothing,
    a_future_start_is_kept_and_a_past_one_refused,
);
