use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{spawn_app, spawn_app_with, Backend, TestApp};

async fn invite_task(app: &TestApp, user: i64) -> i64 {
    app.create(
        user,
        json!({"name": "Audience", "action_type": "invite_to_group", "target_channel": "@audience_group"}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

async fn targets(app: &TestApp, task: i64, query: &str) -> Value {
    let reply = app
        .call(Method::GET, &format!("/tasks/{task}/targets?{query}"), Some(1), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

const CSV: &str = "username,phone,first_name,last_name,city\n\
@anna_k,+7 912 345-67-89,Анна,Каренина,Москва\n\
boris_b,,Борис,,Тверь\n\
,8 (912) 000-00-02,Вера,,\n\
ab,,Bad,,\n\
ANNA_K,,Dup,,\n";

async fn a_file_becomes_targets_with_a_report(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = invite_task(&app, 1).await;
    let reply = app
        .upload(
            "/import/file",
            1,
            "list.csv",
            CSV.into(),
            &[("task_id", &task.to_string())],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let report = &reply.body["report"];
    assert_eq!(
        (
            &report["total_rows"],
            &report["valid"],
            &report["invalid"],
            &report["duplicates"],
            &report["stored"]
        ),
        (&json!(5), &json!(3), &json!(1), &json!(1), &json!(3))
    );
    let fields: Vec<&Value> = report["source"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["field"])
        .collect();
    assert_eq!(
        fields,
        [
            &json!("username"),
            &json!("phone"),
            &json!("first_name"),
            &json!("last_name"),
            &json!(null)
        ]
    );
    let bad = &report["rejected"][0];
    assert_eq!(
        (&bad["row"], &bad["column"], &bad["value"], &bad["reason"]),
        (&json!(5), &json!("username"), &json!("ab"), &json!("invalid"))
    );
    assert!(bad["message"].as_str().unwrap().contains("5–32 characters"), "{bad}");
    assert_eq!(report["rejected"][1]["reason"], "duplicate_in_file");
    assert_eq!(report["preview"][0]["phone"], "+79123456789");
    assert_eq!(report["warnings"], json!([]));

    let list = targets(&app, task, "").await;
    assert_eq!(list["total"], 3);
    let anna = &list["items"][0];
    assert_eq!(
        (&anna["username"], &anna["phone"], &anna["first_name"]),
        (&json!("anna_k"), &json!("+79123456789"), &json!("Анна"))
    );
    assert_eq!(
        (&anna["status"], &anna["source"], &anna["source_row"]),
        (&json!("pending"), &json!("FILE_UPLOAD"), &json!(2))
    );
    assert_eq!(anna["extra"], json!({"city": "Москва"}));
    assert_eq!(list["items"][2]["phone"], "+79120000002");
    let task_now = app.call(Method::GET, &format!("/tasks/{task}"), Some(1), None).await;
    assert_eq!(task_now.body["target_count"], 3);

    // The same file again: everyone is already there.
    let again = app
        .upload(
            "/import/file",
            1,
            "list.csv",
            CSV.into(),
            &[("task_id", &task.to_string())],
        )
        .await;
    assert_eq!(
        (&again.body["report"]["stored"], &again.body["report"]["duplicates"]),
        (&json!(0), &json!(4))
    );
    assert_eq!(again.body["report"]["rejected"][0]["reason"], "duplicate_in_task");
    assert_eq!(targets(&app, task, "").await["total"], 3);

    let validate = app
        .call(Method::GET, &format!("/import/validate?task_id={task}"), Some(1), None)
        .await;
    assert_eq!(validate.status, StatusCode::OK);
    assert_eq!(validate.body["import_id"], again.body["import_id"]);
    assert_eq!(validate.body["file_name"], "list.csv");
    assert_eq!(validate.body["report"], again.body["report"]);
    let first = app
        .call(
            Method::GET,
            &format!("/import/validate?task_id={task}&import_id={}", reply.body["import_id"]),
            Some(1),
            None,
        )
        .await;
    assert_eq!(first.body["report"]["stored"], 3);
    app.stop().await;
}

async fn a_row_kept_without_a_bad_identifier_says_so(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = invite_task(&app, 1).await;
    let csv = "username,phone\n1bad_name,+79123456789\n";
    let reply = app
        .upload(
            "/import/file",
            1,
            "l.csv",
            csv.into(),
            &[("task_id", &task.to_string())],
        )
        .await;
    assert_eq!(reply.body["report"]["stored"], 1);
    let warning = &reply.body["report"]["warnings"][0];
    assert_eq!(
        (&warning["row"], &warning["column"], &warning["value"]),
        (&json!(2), &json!("username"), &json!("1bad_name"))
    );
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("must start with a letter"),
        "{warning}"
    );
    app.stop().await;
}

async fn a_dry_run_stores_nothing_but_its_report(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = invite_task(&app, 1).await;
    let reply = app
        .upload(
            "/import/file",
            1,
            "list.csv",
            CSV.into(),
            &[("task_id", &task.to_string()), ("dry_run", "true")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        (
            &reply.body["dry_run"],
            &reply.body["report"]["valid"],
            &reply.body["report"]["stored"]
        ),
        (&json!(true), &json!(3), &json!(0))
    );
    assert_eq!(targets(&app, task, "").await["total"], 0);
    let validate = app
        .call(Method::GET, &format!("/import/validate?task_id={task}"), Some(1), None)
        .await;
    assert_eq!(
        (&validate.body["dry_run"], &validate.body["report"]["valid"]),
        (&json!(true), &json!(3))
    );
    app.stop().await;
}

async fn mapping_overrides_what_was_detected(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = invite_task(&app, 1).await;
    let file = "Contact;Notes\n79123456789;vip\n79120000002;\n";
    let reply = app
        .upload(
            "/import/file",
            1,
            "c.csv",
            file.into(),
            &[("task_id", &task.to_string()), ("mapping", r#"{"phone": "Contact"}"#)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["report"]["source"]["columns"][0]["reason"], "set by mapping");
    assert_eq!(targets(&app, task, "").await["items"][0]["phone"], "+79123456789");
    let wrong = app
        .upload(
            "/import/file",
            1,
            "c.csv",
            file.into(),
            &[("task_id", &task.to_string()), ("mapping", r#"{"phone": "Mobile"}"#)],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        wrong.field_errors()[0],
        (
            "body.mapping".into(),
            "mapping.phone: no column is headed \"Mobile\"; headers: Contact, Notes".into()
        )
    );
    app.stop().await;
}

async fn imports_refuse_what_they_cannot_take(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("INVITE_MAX_TARGETS_PER_TASK", "3"),
            ("INVITE_MAX_UPLOAD_BYTES", "2048"),
        ],
    )
    .await;
    let task = invite_task(&app, 1).await;
    let id = task.to_string();

    let too_many = "alpha_one\nbravo_two\ncharlie_three\ndelta_four\n";
    let reply = app
        .upload("/import/file", 1, "l.txt", too_many.into(), &[("task_id", &id)])
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
    assert_eq!(
        reply.field_errors()[0].1,
        "the task would hold 4 targets (0 already, 4 new); at most 3 are allowed"
    );
    assert_eq!(
        targets(&app, task, "").await["total"],
        0,
        "nothing of a refused import is stored"
    );

    let big = vec![b'a'; 4096];
    let reply = app.upload("/import/file", 1, "big.csv", big, &[("task_id", &id)]).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.detail().contains("limit of 2048 bytes"), "{}", reply.detail());

    let pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n\x00\x01\x02\x03".to_vec();
    let reply = app
        .upload("/import/file", 1, "list.pdf", pdf, &[("task_id", &id)])
        .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        reply.detail().contains("XLSX") && reply.detail().contains("JSON"),
        "{}",
        reply.detail()
    );

    let nothing_usable = "colour,size\nred,10\nblue,12\n";
    let reply = app
        .upload("/import/file", 1, "x.csv", nothing_usable.into(), &[("task_id", &id)])
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.field_errors()[0].1.contains("mapping"));

    let reply = app.upload("/import/file", 1, "l.txt", "alpha_one\n".into(), &[]).await;
    assert_eq!(
        reply.field_errors()[0],
        ("body.task_id".into(), "task_id is required".into())
    );
    let reply = app
        .upload(
            "/import/file",
            1,
            "l.txt",
            "alpha_one\n".into(),
            &[("task_id", "abc"), ("dry_run", "maybe")],
        )
        .await;
    let locs: Vec<String> = reply.field_errors().into_iter().map(|(l, _)| l).collect();
    assert_eq!(locs, ["body.task_id", "body.dry_run"]);
    let no_file = app
        .raw(
            app.client
                .post(app.url("/import/file"))
                .bearer_auth(app.token(1))
                .multipart(reqwest::multipart::Form::new().text("task_id", id.clone())),
        )
        .await;
    assert_eq!(
        no_file.field_errors()[0],
        ("body.file".into(), "file is required".into())
    );

    let other_user = app
        .upload("/import/file", 2, "l.txt", "alpha_one\n".into(), &[("task_id", &id)])
        .await;
    assert_eq!(other_user.status, StatusCode::NOT_FOUND);
    app.force_status(task, "IN_PROGRESS").await;
    let running = app
        .upload("/import/file", 1, "l.txt", "alpha_one\n".into(), &[("task_id", &id)])
        .await;
    assert_eq!(running.status, StatusCode::CONFLICT);
    assert!(running.detail().contains("IN_PROGRESS"));
    app.stop().await;
}

async fn targets_can_be_removed_until_the_task_starts(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = invite_task(&app, 1).await;
    app.upload(
        "/import/file",
        1,
        "l.txt",
        "alpha_one\nbravo_two\ncharlie_three\ndelta_four\n".into(),
        &[("task_id", &task.to_string())],
    )
    .await;
    let list = targets(&app, task, "page_size=2").await;
    assert_eq!((&list["total"], &list["total_pages"]), (&json!(4), &json!(2)));
    assert_eq!(targets(&app, task, "status=pending").await["total"], 4);
    assert_eq!(targets(&app, task, "status=succeeded").await["total"], 0);
    let bad = app
        .call(
            Method::GET,
            &format!("/tasks/{task}/targets?status=done"),
            Some(1),
            None,
        )
        .await;
    assert_eq!(bad.field_errors()[0].0, "query.status");

    let first = list["items"][0]["id"].as_i64().unwrap();
    let one = app
        .call(Method::DELETE, &format!("/tasks/{task}/targets/{first}"), Some(1), None)
        .await;
    assert_eq!(one.status, StatusCode::NO_CONTENT);
    let again = app
        .call(Method::DELETE, &format!("/tasks/{task}/targets/{first}"), Some(1), None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let second = list["items"][1]["id"].as_i64().unwrap();
    let some = app
        .call(
            Method::DELETE,
            &format!("/tasks/{task}/targets?ids={second}"),
            Some(1),
            None,
        )
        .await;
    assert_eq!(some.body, json!({"deleted": 1}));
    let unspecified = app
        .call(Method::DELETE, &format!("/tasks/{task}/targets"), Some(1), None)
        .await;
    assert_eq!(
        unspecified.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "removing everything must be asked for"
    );
    assert_eq!(
        app.call(Method::GET, &format!("/tasks/{task}"), Some(1), None)
            .await
            .body["target_count"],
        2
    );
    // A removed person can be imported again.
    let back = app
        .upload(
            "/import/file",
            1,
            "l.txt",
            "alpha_one\n".into(),
            &[("task_id", &task.to_string())],
        )
        .await;
    assert_eq!(back.body["report"]["stored"], 1);

    let foreign = app
        .call(Method::GET, &format!("/tasks/{task}/targets"), Some(2), None)
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let foreign = app
        .call(
            Method::DELETE,
            &format!("/tasks/{task}/targets?all=true"),
            Some(2),
            None,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);

    app.force_status(task, "PAUSED").await;
    let started = app
        .call(
            Method::DELETE,
            &format!("/tasks/{task}/targets?all=true"),
            Some(1),
            None,
        )
        .await;
    assert_eq!(started.status, StatusCode::CONFLICT);
    app.force_status(task, "PENDING").await;
    let all = app
        .call(
            Method::DELETE,
            &format!("/tasks/{task}/targets?all=true"),
            Some(1),
            None,
        )
        .await;
    assert_eq!(all.body, json!({"deleted": 3}));
    assert_eq!(
        app.call(Method::GET, &format!("/tasks/{task}"), Some(1), None)
            .await
            .body["target_count"],
        0
    );
    app.stop().await;
}

async fn do_not_contact_entries_are_never_imported(backend: Backend) {
    let app = spawn_app(backend).await;
    let add = app
        .call(
            Method::POST,
            "/do-not-contact",
            Some(1),
            Some(json!({"entries": [{"value": "@Anna_K", "reason": "asked to stop"}, {"value": "8 912 000-00-02"}, {"value": "123456", "kind": "user_id"}]})),
        )
        .await;
    assert_eq!(add.status, StatusCode::CREATED, "{}", add.body);
    assert_eq!(add.body, json!({"added": 3, "already_listed": 0}));
    let again = app
        .call(
            Method::POST,
            "/do-not-contact",
            Some(1),
            Some(json!({"entries": [{"value": "anna_k"}]})),
        )
        .await;
    assert_eq!(again.body, json!({"added": 0, "already_listed": 1}));
    let bad = app
        .call(
            Method::POST,
            "/do-not-contact",
            Some(1),
            Some(json!({"entries": [{"value": "!!"}, {"kind": "phone"}]})),
        )
        .await;
    let locs: Vec<String> = bad.field_errors().into_iter().map(|(l, _)| l).collect();
    assert_eq!(locs, ["body.entries.0.value", "body.entries.1.value"]);

    let file = "Ник;Телефон\nclara_c;\n;+79120000003\nclara_c;+79120000004\n";
    let imported = app
        .upload(
            "/do-not-contact/import",
            1,
            "optout.csv",
            file.into(),
            &[("reason", "unsubscribed")],
        )
        .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.body);
    assert_eq!(
        imported.body["added"], 3,
        "a repeated person's other phone is listed too: {}",
        imported.body
    );

    let list = app
        .call(Method::GET, "/do-not-contact?page_size=10", Some(1), None)
        .await;
    assert_eq!(list.body["total"], 6);
    let values: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert!(
        values.contains(&"+79120000002") && values.contains(&"Anna_K"),
        "{values:?}"
    );
    assert_eq!(
        app.call(Method::GET, "/do-not-contact", Some(2), None).await.body["total"],
        0,
        "each user has their own list"
    );

    let task = invite_task(&app, 1).await;
    let csv = "username,phone\nanna_k,\ndora_d,8 912 000 00 02\nclara_c,\nemil_e,\n";
    let reply = app
        .upload(
            "/import/file",
            1,
            "l.csv",
            csv.into(),
            &[("task_id", &task.to_string())],
        )
        .await;
    assert_eq!(
        (&reply.body["report"]["excluded"], &reply.body["report"]["stored"]),
        (&json!(3), &json!(1)),
        "{}",
        reply.body
    );
    assert_eq!(
        reply.body["report"]["rejected"][0]["message"],
        "username anna_k is on the do-not-contact list"
    );

    let entry = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["value"] == "Anna_K")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.call(Method::DELETE, &format!("/do-not-contact/{entry}"), Some(2), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(Method::DELETE, &format!("/do-not-contact/{entry}"), Some(1), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let reply = app
        .upload(
            "/import/file",
            1,
            "l.csv",
            "anna_k\n".into(),
            &[("task_id", &task.to_string())],
        )
        .await;
    assert_eq!(
        reply.body["report"]["stored"], 1,
        "removed from the list, the person may be imported"
    );
    app.stop().await;
}

/// A spreadsheet that would unpack past the limit is refused before it is unpacked (a zip bomb is a
/// 4xx, not an out-of-memory).
async fn a_spreadsheet_that_unpacks_too_far_is_refused(backend: Backend) {
    let app = spawn_app_with(backend, &[("INVITE_XLSX_MAX_UNPACKED_BYTES", "1048576")]).await;
    let task = invite_task(&app, 1).await;
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for row in 0..40_000u32 {
        sheet.write_string(row, 0, format!("user_{row:06}_name")).unwrap();
        sheet
            .write_string(row, 1, format!("note number {row} that makes the sheet larger"))
            .unwrap();
    }
    let bytes = book.save_to_buffer().unwrap();
    let reply = app
        .upload("/import/file", 1, "big.xlsx", bytes, &[("task_id", &task.to_string())])
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.body);
    assert!(
        reply.detail().contains("expands to more than 1048576 bytes"),
        "{}",
        reply.detail()
    );
    assert_eq!(targets(&app, task, "").await["total"], 0);
    app.stop().await;
}

/// An upload may be far larger than a JSON body (1 MiB by default, 64 KiB in these tests): up to the
/// upload limit.
async fn large_files_are_taken_up_to_the_upload_limit(backend: Backend) {
    let app = spawn_app_with(backend, &[("INVITE_MAX_TARGETS_PER_TASK", "100000")]).await;
    let task = invite_task(&app, 1).await;
    let csv: String = (0..60_000).map(|i| format!("user_{i:06}_name,+7912{i:07}\n")).collect();
    assert!(csv.len() > 1_500_000);
    let reply = app
        .upload(
            "/import/file",
            1,
            "big.csv",
            csv.into(),
            &[("task_id", &task.to_string())],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["report"]["stored"], 60_000);
    assert_eq!(
        app.call(Method::GET, &format!("/tasks/{task}"), Some(1), None)
            .await
            .body["target_count"],
        60_000
    );
    app.stop().await;
}

crate::on_both_backends!(
    a_spreadsheet_that_unpacks_too_far_is_refused,
    large_files_are_taken_up_to_the_upload_limit,
    a_row_kept_without_a_bad_identifier_says_so,
    a_file_becomes_targets_with_a_report,
    a_dry_run_stores_nothing_but_its_report,
    mapping_overrides_what_was_detected,
    imports_refuse_what_they_cannot_take,
    targets_can_be_removed_until_the_task_starts,
    do_not_contact_entries_are_never_imported,
);
