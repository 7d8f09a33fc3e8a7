//! Bad input: every case answers a 4xx that names the problem, and nothing stored changes.
//! `cargo test --test api validation -- --nocapture` prints the table of cases.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{spawn_app, Backend};

enum Body {
    None,
    Json(Value),
    Raw(&'static str, &'static str),
    Big,
}

struct Case {
    what: &'static str,
    method: Method,
    /// `{id}` is replaced by the id of an existing task.
    path: &'static str,
    body: Body,
    status: u16,
    /// The first error's location (validation) — empty for `{"detail": "..."}` errors.
    loc: &'static str,
    /// Text the message must contain.
    msg: &'static str,
}

fn case(
    what: &'static str,
    method: Method,
    path: &'static str,
    body: Body,
    status: u16,
    loc: &'static str,
    msg: &'static str,
) -> Case {
    Case {
        what,
        method,
        path,
        body,
        status,
        loc,
        msg,
    }
}

fn invite(extra: Value) -> Body {
    let mut base = json!({"name": "n", "action_type": "invite_to_group", "target_channel": "@good_group"});
    base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    Body::Json(base)
}

fn cases() -> Vec<Case> {
    use Method as M;
    let p = "/tasks";
    vec![
        case(
            "malformed JSON",
            M::POST,
            p,
            Body::Raw("application/json", "{\"name\": "),
            422,
            "body",
            "not valid JSON",
        ),
        case(
            "body is an array",
            M::POST,
            p,
            Body::Json(json!([1, 2])),
            422,
            "body",
            "must be a JSON object",
        ),
        case(
            "empty body",
            M::POST,
            p,
            Body::Raw("application/json", ""),
            422,
            "body",
            "request body is empty",
        ),
        case(
            "wrong content type",
            M::POST,
            p,
            Body::Raw("text/plain", "name=x"),
            415,
            "",
            "Content-Type must be application/json",
        ),
        case(
            "body too large",
            M::POST,
            p,
            Body::Big,
            413,
            "",
            "larger than 65536 bytes",
        ),
        case(
            "name missing",
            M::POST,
            p,
            Body::Json(json!({"action_type": "invite_to_group", "target_channel": "@good_group"})),
            422,
            "body.name",
            "name is required",
        ),
        case(
            "name blank",
            M::POST,
            p,
            invite(json!({"name": "   "})),
            422,
            "body.name",
            "must not be empty",
        ),
        case(
            "name too long",
            M::POST,
            p,
            invite(json!({"name": "я".repeat(256)})),
            422,
            "body.name",
            "at most 255 characters (got 256)",
        ),
        case(
            "name not a string",
            M::POST,
            p,
            invite(json!({"name": 5})),
            422,
            "body.name",
            "name must be a string",
        ),
        case(
            "name with a newline",
            M::POST,
            p,
            invite(json!({"name": "a\nb"})),
            422,
            "body.name",
            "control characters",
        ),
        case(
            "description too long",
            M::POST,
            p,
            invite(json!({"description": "d".repeat(1001)})),
            422,
            "body.description",
            "at most 1000 characters",
        ),
        case(
            "unknown platform",
            M::POST,
            p,
            invite(json!({"platform": "facebook"})),
            422,
            "body.platform",
            "must be one of telegram, instagram, whatsapp",
        ),
        case(
            "whatsapp",
            M::POST,
            p,
            invite(json!({"platform": "whatsapp"})),
            422,
            "body.platform",
            "platform not supported yet",
        ),
        case(
            "instagram",
            M::POST,
            p,
            invite(json!({"platform": "Instagram"})),
            422,
            "body.platform",
            "platform not supported yet",
        ),
        case(
            "action_type missing",
            M::POST,
            p,
            Body::Json(json!({"name": "n"})),
            422,
            "body.action_type",
            "action_type is required",
        ),
        case(
            "action_type unknown",
            M::POST,
            p,
            invite(json!({"action_type": "spam"})),
            422,
            "body.action_type",
            "must be one of invite_to_group, send_message",
        ),
        case(
            "invite without channel",
            M::POST,
            p,
            Body::Json(json!({"name": "n", "action_type": "invite_to_group"})),
            422,
            "body.target_channel",
            "required when action_type is invite_to_group",
        ),
        case(
            "channel username too short",
            M::POST,
            p,
            invite(json!({"target_channel": "@abc"})),
            422,
            "body.target_channel",
            "5–32 characters",
        ),
        case(
            "channel on another site",
            M::POST,
            p,
            invite(json!({"target_channel": "https://example.com/group"})),
            422,
            "body.target_channel",
            "must be a Telegram link",
        ),
        case(
            "channel id zero",
            M::POST,
            p,
            invite(json!({"target_channel": "0"})),
            422,
            "body.target_channel",
            "not a valid numeric chat id",
        ),
        case(
            "channel is a boolean",
            M::POST,
            p,
            invite(json!({"target_channel": true})),
            422,
            "body.target_channel",
            "must be a string",
        ),
        case(
            "invite link without hash",
            M::POST,
            p,
            invite(json!({"target_channel": "t.me/+"})),
            422,
            "body.target_channel",
            "invalid invite link hash",
        ),
        case(
            "message without template",
            M::POST,
            p,
            Body::Json(json!({"name": "n", "action_type": "send_message"})),
            422,
            "body.message_template",
            "required when action_type is send_message",
        ),
        case(
            "unknown placeholder",
            M::POST,
            p,
            Body::Json(json!({"name": "n", "action_type": "send_message", "message_template": "Hi {name}"})),
            422,
            "body.message_template",
            "unknown placeholder {name}",
        ),
        case(
            "unclosed brace",
            M::POST,
            p,
            Body::Json(json!({"name": "n", "action_type": "send_message", "message_template": "Hi {first_name"})),
            422,
            "body.message_template",
            "never closed",
        ),
        case(
            "template too long",
            M::POST,
            p,
            Body::Json(json!({"name": "n", "action_type": "send_message", "message_template": "x".repeat(4097)})),
            422,
            "body.message_template",
            "at most 4096 characters",
        ),
        case(
            "alias template unknown placeholder",
            M::POST,
            p,
            Body::Json(json!({"name": "n", "settings": {"invite_type": "message"}, "invite_message": "{foo}"})),
            422,
            "body.invite_message",
            "unknown placeholder {foo}",
        ),
        case(
            "priority unknown",
            M::POST,
            p,
            invite(json!({"priority": "critical"})),
            422,
            "body.priority",
            "must be one of HIGH, NORMAL, MEDIUM, LOW",
        ),
        case(
            "scheduled_start in the past",
            M::POST,
            p,
            invite(json!({"scheduled_start": "2026-05-31T12:00:00Z"})),
            422,
            "body.scheduled_start",
            "must be in the future",
        ),
        case(
            "scheduled_start not a date",
            M::POST,
            p,
            invite(json!({"scheduled_start": "tomorrow"})),
            422,
            "body.scheduled_start",
            "ISO 8601",
        ),
        case(
            "scheduled_start too far",
            M::POST,
            p,
            invite(json!({"scheduled_start": "2028-01-01T00:00:00Z"})),
            422,
            "body.scheduled_start",
            "at most 365 days ahead",
        ),
        case(
            "settings not an object",
            M::POST,
            p,
            invite(json!({"settings": "fast"})),
            422,
            "body.settings",
            "must be a JSON object",
        ),
        case(
            "settings too large",
            M::POST,
            p,
            invite(json!({"settings": {"x": "y".repeat(17000)}})),
            422,
            "body.settings",
            "at most 16384 bytes",
        ),
        case(
            "invite_type alias unknown",
            M::POST,
            p,
            Body::Json(json!({"name": "n", "settings": {"invite_type": "dm", "group_id": "@good_group"}})),
            422,
            "body.settings.invite_type",
            "group_invite, message",
        ),
        case(
            "group_id conflicts",
            M::POST,
            p,
            invite(json!({"settings": {"group_id": "@other_group"}})),
            422,
            "body.settings.group_id",
            "conflicts with target_channel",
        ),
        case(
            "status other than PENDING",
            M::POST,
            p,
            invite(json!({"status": "COMPLETED"})),
            422,
            "body.status",
            "always PENDING",
        ),
        case(
            "page zero",
            M::GET,
            "/tasks?page=0",
            Body::None,
            422,
            "query.page",
            "from 1 to 1000000",
        ),
        case(
            "page_size too big",
            M::GET,
            "/tasks?page_size=500",
            Body::None,
            422,
            "query.page_size",
            "from 1 to 100",
        ),
        case(
            "status filter unknown",
            M::GET,
            "/tasks?status=PENDING,DONE",
            Body::None,
            422,
            "query.status",
            "\"DONE\"",
        ),
        case(
            "sort_by unknown",
            M::GET,
            "/tasks?sort_by=owner",
            Body::None,
            422,
            "query.sort_by",
            "created_at, updated_at, name, priority, status",
        ),
        case(
            "sort_order unknown",
            M::GET,
            "/tasks?sort_order=up",
            Body::None,
            422,
            "query.sort_order",
            "asc, desc",
        ),
        case(
            "created_from not a date",
            M::GET,
            "/tasks?created_from=yesterday",
            Body::None,
            422,
            "query.created_from",
            "ISO 8601",
        ),
        case(
            "created range reversed",
            M::GET,
            "/tasks?created_from=2026-06-02T00:00:00Z&created_to=2026-06-01T00:00:00Z",
            Body::None,
            422,
            "query.created_to",
            "not be before created_from",
        ),
        case(
            "task id not a number",
            M::GET,
            "/tasks/abc",
            Body::None,
            422,
            "path.task_id",
            "positive integer",
        ),
        case(
            "task id negative",
            M::DELETE,
            "/tasks/-3",
            Body::None,
            422,
            "path.task_id",
            "positive integer",
        ),
        case(
            "PUT sets status",
            M::PUT,
            "/tasks/{id}",
            Body::Json(json!({"status": "COMPLETED"})),
            422,
            "body.status",
            "use POST /tasks/{id}/start",
        ),
        case(
            "PUT nulls the name",
            M::PUT,
            "/tasks/{id}",
            Body::Json(json!({"name": null})),
            422,
            "body.name",
            "name may not be null",
        ),
        case(
            "PUT clears the template of a message task",
            M::PUT,
            "/tasks/{id}",
            Body::Json(json!({"message_template": null})),
            422,
            "body.message_template",
            "required when action_type is send_message",
        ),
        case(
            "PUT unknown task",
            M::PUT,
            "/tasks/987654",
            Body::Json(json!({"name": "x"})),
            404,
            "",
            "task 987654 not found",
        ),
        case(
            "audit page_size zero",
            M::GET,
            "/audit?page_size=0",
            Body::None,
            422,
            "query.page_size",
            "from 1 to 100",
        ),
    ]
}

async fn bad_input_gets_a_4xx_that_names_the_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = app
        .create(
            1,
            json!({"name": "keep me", "action_type": "send_message", "message_template": "Hi {first_name}"}),
        )
        .await;
    let id = task["id"].as_i64().unwrap().to_string();
    let cases = cases();
    assert!(cases.len() >= 25);
    println!("| # | bad input | request | status | loc | message |\n|---|---|---|---|---|---|");
    for (n, c) in cases.iter().enumerate() {
        let path = c.path.replace("{id}", &id);
        let mut req = app
            .client
            .request(c.method.clone(), app.url(&path))
            .bearer_auth(app.token(1));
        req = match &c.body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Raw(ct, text) => req.header("content-type", *ct).body(*text),
            Body::Big => req.json(&json!({"name": "x".repeat(70_000)})),
        };
        let reply = app.raw(req).await;
        assert_eq!(reply.status.as_u16(), c.status, "{}: {}", c.what, reply.body);
        let (loc, msg) = if c.loc.is_empty() {
            (String::new(), reply.detail().to_string())
        } else {
            reply.field_errors().into_iter().next().unwrap()
        };
        assert_eq!(loc, c.loc, "{}: {}", c.what, reply.body);
        assert!(msg.contains(c.msg), "{}: {msg:?} lacks {:?}", c.what, c.msg);
        println!(
            "| {} | {} | `{} {}` | {} | {} | {} |",
            n + 1,
            c.what,
            c.method,
            path,
            c.status,
            loc,
            msg.replace('|', "\\|")
        );
    }
    let after = app.call(Method::GET, &format!("/tasks/{id}"), Some(1), None).await;
    assert_eq!(after.body, task, "no bad request changed the stored task");
    let all = app.call(Method::GET, "/tasks", Some(1), None).await;
    assert_eq!(all.body["total"], 1, "no bad request stored a task");
    app.stop().await;
}

async fn every_problem_in_one_body_is_reported(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = app
        .call(
            Method::POST,
            "/tasks",
            Some(1),
            Some(
                json!({"name": "", "platform": "whatsapp", "action_type": "invite_to_group", "priority": 7,
                        "scheduled_start": "2020-01-01T00:00:00Z"}),
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<String> = reply.field_errors().into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        locs,
        [
            "body.name",
            "body.platform",
            "body.priority",
            "body.scheduled_start",
            "body.target_channel"
        ]
    );
    let first = &reply.body["detail"][0];
    assert_eq!(first["type"], "string_too_short");
    assert_eq!(first["loc"], json!(["body", "name"]));
    app.stop().await;
}

crate::on_both_backends!(
    bad_input_gets_a_4xx_that_names_the_problem,
    every_problem_in_one_body_is_reported
);
