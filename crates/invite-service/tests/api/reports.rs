//! A task's status, statistics, report and log over HTTP, after a real campaign on the sandbox world
//! with a compressed policy; the completion estimate checked against the campaign it predicted; and
//! the retention cleanup run by a worker from the queue.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

/// As in `engine.rs`: seconds instead of minutes and hours, so the limits bind within a test's run.
const COMPRESSED: &str = r#"{"telegram": {
    "invite": {"per_account": [{"cap": 3, "period": "15s"}], "per_channel": [{"cap": 2, "period": "10s"}], "pause": ["1s", "1s"]},
    "resolve_username": {"per_account": [{"cap": 100, "period": "60s"}], "pause": ["0s", "0s"]},
    "channel_lookup": {"pause": ["0s", "0s"]}
}, "lease_ttl": "30s"}"#;

/// For the estimate: 3 invites per 10 s per account and a pause drawn between 1 and 2 s — the window
/// and the random pause both bind, and the estimate must get both right.
const ETA_POLICY: &str = r#"{"telegram": {
    "invite": {"per_account": [{"cap": 3, "period": "10s"}], "per_channel": [{"cap": 100, "period": "60s"}], "pause": ["1s", "2s"]},
    "resolve_username": {"per_account": [{"cap": 100, "period": "60s"}], "pause": ["0s", "0s"]},
    "channel_lookup": {"pause": ["0s", "0s"]}
}, "lease_ttl": "30s"}"#;

const INJECTION: &str = r#"=HYPERLINK("http://evil.example","click")"#;

async fn get(app: &TestApp, user: i64, path: &str) -> Reply {
    app.call(Method::GET, path, Some(user), None).await
}

async fn wait_for(app: &TestApp, user: i64, id: i64, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let task = get(app, user, &format!("/tasks/{id}")).await.body;
        if task["status"] == status {
            return task;
        }
        assert!(Instant::now() < deadline, "task {id} did not become {status}: {task}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap_or_else(|| panic!("not a time: {v}")).parse().unwrap()
}

/// A task whose audience is uploaded as CSV with first names (one of them a spreadsheet formula).
async fn task_with_names(app: &TestApp, user: i64, people: &[(String, &str)]) -> i64 {
    let task = app
        .create(
            user,
            json!({"name": "Report", "action_type": "invite_to_group", "target_channel": "@report_group"}),
        )
        .await;
    let id = task["id"].as_i64().unwrap();
    let mut csv = String::from("username,first_name\n");
    for (username, name) in people {
        csv.push_str(&format!("{username},\"{}\"\n", name.replace('"', "\"\"")));
    }
    let r = app
        .upload(
            "/import/file",
            user,
            "people.csv",
            csv.into_bytes(),
            &[("task_id", &id.to_string())],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["report"]["stored"], people.len(), "{}", r.body);
    id
}

async fn a_finished_campaign_reports_its_counts_stats_csv_and_log(backend: Backend) {
    let app = spawn_live_app(backend, &[("INVITE_POLICY", COMPRESSED), ("INVITE_WORKERS", "3")]).await;
    let accounts = sandbox_accounts(&app, 1, 2).await;
    let names = people("report", 8);
    let audience: Vec<(String, &str)> = names
        .iter()
        .enumerate()
        .map(|(i, u)| (u.clone(), if i == 2 { INJECTION } else { "Анна" }))
        .collect();
    let id = task_with_names(&app, 1, &audience).await;
    let opt_out = json!({"entries": [{"value": format!("@{}", names[5])}]});
    let r = app.call(Method::POST, "/do-not-contact", Some(1), Some(opt_out)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .call(Method::POST, &format!("/tasks/{id}/start"), Some(1), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let done = wait_for(&app, 1, id, "COMPLETED", Duration::from_secs(90)).await;

    // Status: every target final, no estimate since it is done.
    let status = get(&app, 1, &format!("/tasks/{id}/status")).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.body);
    let s = &status.body;
    assert_eq!(s["status"], "COMPLETED");
    let counts = s["counts"].as_object().unwrap();
    let keys: Vec<&str> = counts.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "pending",
            "in_progress",
            "succeeded",
            "already_done",
            "failed",
            "skipped",
            "unknown"
        ]
    );
    assert_eq!(counts.values().map(|v| v.as_i64().unwrap()).sum::<i64>(), 8);
    assert_eq!((s["total"].as_i64(), s["open"].as_i64()), (Some(8), Some(0)));
    assert_eq!(s["progress_percent"], 100.0);
    assert_eq!(s["counts"]["skipped"], 1, "the opted-out person: {s}");
    assert_eq!(s["counts"]["succeeded"], done["completed_count"]);
    assert_eq!(s["estimated_completion_at"], Value::Null);
    assert!(
        s["estimate"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("the task is COMPLETED since"),
        "{s}"
    );
    assert_eq!(s["next_action_at"], Value::Null);
    let listed: Vec<&str> = s["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{s}");
    assert!(accounts.iter().all(|a| listed.contains(&a.as_str())));

    // Stats: reasons add up to the targets, accounts' attempts to the invites made.
    let stats = get(&app, 1, &format!("/tasks/{id}/stats")).await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    let st = &stats.body;
    let by_reason = st["by_reason"].as_array().unwrap();
    assert_eq!(by_reason.iter().map(|r| r["count"].as_i64().unwrap()).sum::<i64>(), 8);
    assert!(
        by_reason
            .iter()
            .any(|r| r["status"] == "skipped" && r["reason"] == "do_not_contact" && r["count"] == 1),
        "{st}"
    );
    let by_account = st["by_account"].as_array().unwrap();
    let served: Vec<&Value> = by_account.iter().filter(|a| a["account_id"].is_string()).collect();
    assert_eq!(served.len(), 2, "{st}");
    let attempts: i64 = served.iter().map(|a| a["attempts"].as_i64().unwrap()).sum();
    let invites: i64 = st["by_outcome"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] == "invite")
        .map(|o| o["count"].as_i64().unwrap())
        .sum();
    assert_eq!(attempts, invites, "{st}");
    for a in &served {
        assert_eq!(
            a["successes"].as_i64().unwrap() + a["failures"].as_i64().unwrap(),
            a["attempts"].as_i64().unwrap(),
            "{a}"
        );
        assert_eq!(a["status"], "active");
    }
    let decided: i64 = by_account
        .iter()
        .flat_map(|a| a["targets"].as_object().unwrap().values())
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(decided, 8, "every final target is under one account or none: {st}");
    let without = by_account.iter().find(|a| a["account_id"].is_null()).unwrap();
    assert_eq!(
        without["targets"]["skipped"], 1,
        "do-not-contact is decided by no call: {st}"
    );
    let hours = st["by_hour"].as_array().unwrap();
    assert!(!hours.is_empty());
    for h in hours {
        let parts: i64 = ["success", "failed", "skipped"]
            .iter()
            .map(|k| h[k].as_i64().unwrap())
            .sum();
        assert_eq!(parts, h["actions"].as_i64().unwrap(), "{h}");
        assert_eq!(time(&h["hour"]).timestamp() % 3600, 0, "{h}");
    }
    let logged: i64 = hours.iter().map(|h| h["actions"].as_i64().unwrap()).sum();

    // The report, as JSON.
    let report = get(&app, 1, &format!("/tasks/{id}/report")).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    let rp = &report.body;
    assert_eq!(rp["task"]["id"], id);
    assert_eq!(rp["finished"], true);
    assert_eq!(rp["total"], 8);
    assert_eq!(rp["counts"], s["counts"]);
    assert_eq!(rp["by_reason"], st["by_reason"]);
    assert_eq!(rp["by_account"], st["by_account"]);
    let took = (time(&rp["finished_at"]) - time(&rp["started_at"])).num_milliseconds() as f64 / 1000.0;
    assert_eq!(rp["duration_seconds"].as_f64().unwrap(), took);
    assert!(took > 1.0, "the compressed policy paces the invites: {took}");

    // The report, as CSV: one row per target, formulas neutralised, quoted properly.
    let csv = app
        .client
        .get(app.url(&format!("/tasks/{id}/report?format=CSV")))
        .bearer_auth(app.token(1))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.headers()["content-disposition"],
        format!("attachment; filename=\"task-{id}-report.csv\"").as_str()
    );
    let bytes = csv.bytes().await.unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "a UTF-8 byte order mark for spreadsheets"
    );
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert!(
        text.contains(r#""'=HYPERLINK(""http://evil.example"",""click"")""#),
        "quoted and neutralised: {text}"
    );
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(
        header,
        [
            "target_id",
            "username",
            "user_id",
            "phone",
            "first_name",
            "last_name",
            "status",
            "reason",
            "detail",
            "account_id",
            "attempts",
            "processed_at",
            "updated_at"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 8);
    assert_eq!(&rows[2][1], names[2].as_str());
    assert_eq!(&rows[2][4], format!("'{INJECTION}").as_str(), "the formula is text");
    assert_eq!(&rows[0][4], "Анна");
    let opted = rows.iter().find(|r| &r[1] == names[5].as_str()).unwrap();
    assert_eq!((&opted[6], &opted[7], &opted[9]), ("skipped", "do_not_contact", ""));
    for r in rows.iter().filter(|r| &r[6] == "succeeded") {
        assert!(accounts.contains(&r[9].to_string()), "who invited them: {r:?}");
        assert!(r[11].parse::<DateTime<Utc>>().is_ok(), "{r:?}");
    }

    let bad = get(&app, 1, &format!("/tasks/{id}/report?format=xml")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.field_errors()[0].0, "query.format");
    assert!(bad.field_errors()[0].1.contains("json, csv"), "{}", bad.body);

    // The log: paged newest first, filtered.
    let page = get(&app, 1, &format!("/tasks/{id}/logs?page_size=3")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let lg = &page.body;
    assert_eq!(lg["total"], logged, "{lg}");
    assert_eq!((lg["page"].as_i64(), lg["page_size"].as_i64()), (Some(1), Some(3)));
    assert_eq!(lg["has_next"], logged > 3);
    assert_eq!(lg["has_prev"], false);
    let mut all = Vec::new();
    for p in 1..=lg["total_pages"].as_i64().unwrap() {
        let r = get(&app, 1, &format!("/tasks/{id}/logs?page_size=3&page={p}")).await;
        all.extend(r.body["items"].as_array().unwrap().clone());
    }
    assert_eq!(all.len() as i64, logged);
    let times: Vec<DateTime<Utc>> = all.iter().map(|l| time(&l["created_at"])).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");

    let warnings = get(&app, 1, &format!("/tasks/{id}/logs?level=WARNING")).await.body;
    let items = warnings["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{warnings}");
    assert_eq!(
        (&items[0]["status"], &items[0]["level"], &items[0]["action"]),
        (&json!("SKIPPED"), &json!("warning"), &json!("do_not_contact"))
    );
    let errors = get(&app, 1, &format!("/tasks/{id}/logs?level=error&page_size=100"))
        .await
        .body;
    let failed = all.iter().filter(|l| l["status"] == "FAILED").count();
    assert_eq!(errors["total"], failed);
    let info_or_error = get(&app, 1, &format!("/tasks/{id}/logs?level=info,error&page_size=100"))
        .await
        .body;
    assert_eq!(info_or_error["total"], logged - 1);

    let one = &accounts[0];
    let of_one = get(&app, 1, &format!("/tasks/{id}/logs?account_id={one}&page_size=100"))
        .await
        .body;
    assert!(of_one["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["account_id"] == one.as_str()));
    assert_eq!(
        of_one["total"],
        all.iter().filter(|l| l["account_id"] == one.as_str()).count()
    );
    let target = all[0]["target_id"].as_i64().unwrap();
    let of_target = get(&app, 1, &format!("/tasks/{id}/logs?target_id={target}&page_size=100"))
        .await
        .body;
    assert_eq!(
        of_target["total"],
        all.iter().filter(|l| l["target_id"] == target).count()
    );
    let newest = time(&all[0]["created_at"]);
    let since = (newest - chrono::Duration::milliseconds(1)).to_rfc3339();
    let recent = app
        .raw(
            app.client
                .get(app.url(&format!("/tasks/{id}/logs")))
                .query(&[("since", since.as_str())])
                .bearer_auth(app.token(1)),
        )
        .await;
    assert!(recent.body["total"].as_i64().unwrap() >= 1, "{}", recent.body);
    let older = app
        .raw(
            app.client
                .get(app.url(&format!("/tasks/{id}/logs")))
                .query(&[("until", newest.to_rfc3339().as_str())])
                .bearer_auth(app.token(1)),
        )
        .await;
    assert_eq!(
        older.body["total"].as_i64().unwrap() + recent.body["total"].as_i64().unwrap(),
        logged,
        "until is exclusive, since inclusive"
    );

    let bad = get(
        &app,
        1,
        &format!("/tasks/{id}/logs?level=loud&target_id=abc&since=yesterday&page_size=1000"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = bad.field_errors().into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        ["query.page_size", "query.level", "query.target_id", "query.since"],
        "{}",
        bad.body
    );

    // Another user's task is not there.
    for path in ["status", "stats", "report", "report?format=csv", "logs"] {
        let r = get(&app, 2, &format!("/tasks/{id}/{path}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.detail(), format!("task {id} not found"));
    }
    app.stop().await;
}

/// The estimate read shortly after the start, against the campaign it predicted: 2 accounts and 18
/// targets under [`ETA_POLICY`] — nine invites each, three per 10 s window with random 1–2 s pauses.
/// The finish must come within 3 s or 15 % of the remaining time, whichever is larger, of the estimate.
async fn the_completion_estimate_comes_true(backend: Backend) {
    let app = spawn_live_app(backend, &[("INVITE_POLICY", ETA_POLICY), ("INVITE_WORKERS", "3")]).await;
    sandbox_accounts(&app, 1, 2).await;
    let id = task_with_targets(
        &app,
        1,
        json!({"name": "ETA", "action_type": "invite_to_group", "target_channel": "@eta_group"}),
        &people("eta", 18),
    )
    .await;
    let before = get(&app, 1, &format!("/tasks/{id}/status")).await.body;
    assert_eq!(before["estimated_completion_at"], Value::Null);
    assert_eq!(before["estimate"]["reason"], "the task has not started");
    assert_eq!(before["counts"]["pending"], 18);
    assert_eq!(before["account_states"]["working"], 2, "{before}");

    let r = app
        .call(Method::POST, &format!("/tasks/{id}/start"), Some(1), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = get(&app, 1, &format!("/tasks/{id}/status")).await.body;
    let asked_at = time(&status["as_of"]);
    let estimated = time(&status["estimated_completion_at"]);
    let estimate = &status["estimate"];
    assert_eq!(status["status"], "IN_PROGRESS", "{status}");
    assert_eq!(estimate["reason"], Value::Null, "{status}");
    let shares = estimate["accounts"].as_array().unwrap();
    assert_eq!(shares.len(), 2);
    assert_eq!(
        shares.iter().map(|a| a["targets"].as_i64().unwrap()).sum::<i64>(),
        estimate["open_targets"].as_i64().unwrap()
    );
    for a in shares {
        assert_eq!(a["limited_by"], "3 invites per 10 s for the account", "{a}");
        assert_eq!(a["per_day"], 25920.0, "{a}");
    }
    assert!(status["next_action_at"].is_string(), "{status}");
    let states = status["accounts"].as_array().unwrap();
    assert!(
        states
            .iter()
            .all(|a| ["working", "resting"].contains(&a["state"].as_str().unwrap())),
        "{status}"
    );
    for a in states.iter().filter(|a| a["state"] == "resting") {
        assert!(
            a["until"].is_string() && a["reason"].as_str().unwrap().starts_with("invite: "),
            "{a}"
        );
    }

    let done = wait_for(&app, 1, id, "COMPLETED", Duration::from_secs(120)).await;
    let finished = time(&done["finished_at"]);
    let started = time(&done["started_at"]);
    let error = (finished - estimated).num_milliseconds() as f64 / 1000.0;
    let remaining = (estimated - asked_at).num_milliseconds() as f64 / 1000.0;
    let tolerance = (remaining * 0.15).max(3.0);
    eprintln!(
        "ETA ({backend:?}): started {started}, asked at {asked_at} (+{:.1} s): estimated completion {estimated} \
         (+{:.1} s after the start); actually completed {finished} (+{:.1} s after the start); \
         off by {error:+.2} s, tolerance ±{tolerance:.1} s",
        (asked_at - started).num_milliseconds() as f64 / 1000.0,
        (estimated - started).num_milliseconds() as f64 / 1000.0,
        (finished - started).num_milliseconds() as f64 / 1000.0,
    );
    assert!(
        error.abs() <= tolerance,
        "estimated {estimated}, finished {finished}: off by {error} s (tolerance {tolerance} s)\n{status}"
    );
    app.stop().await;
}

async fn status_before_the_start_and_bad_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = task_with_targets(
        &app,
        1,
        json!({"name": "Idle", "action_type": "send_message", "message_template": "Hi {first_name}"}),
        &people("idle", 3),
    )
    .await;
    // No account yet: nobody listed, nothing estimated.
    let s = get(&app, 1, &format!("/tasks/{id}/status")).await.body;
    assert_eq!(s["status"], "PENDING");
    assert_eq!(s["accounts"], json!([]));
    assert_eq!(s["progress_percent"], 0.0);
    assert_eq!(s["next_action_at"], Value::Null);
    let accounts = sandbox_accounts(&app, 1, 1).await;
    let s = get(&app, 1, &format!("/tasks/{id}/status")).await.body;
    assert_eq!(
        s["accounts"],
        json!([{"account_id": accounts[0], "name": "Sandbox 0", "state": "working", "reason": null,
                "until": null, "next_available_at": start_time()}])
    );
    assert_eq!(s["as_of"], json!(start_time()));

    let logs = get(&app, 1, &format!("/tasks/{id}/logs")).await;
    assert_eq!(
        logs.body,
        json!({"items": [], "total": 0, "page": 1, "page_size": 20, "total_pages": 0, "has_next": false, "has_prev": false})
    );
    let stats = get(&app, 1, &format!("/tasks/{id}/stats")).await.body;
    assert_eq!(stats["by_reason"], json!([]));
    assert_eq!(stats["by_hour"], json!([]));
    let report = get(&app, 1, &format!("/tasks/{id}/report?format=json")).await.body;
    assert_eq!(
        (&report["started_at"], &report["duration_seconds"], &report["finished"]),
        (&Value::Null, &Value::Null, &json!(false))
    );

    for path in ["status", "stats", "report", "logs"] {
        let r = get(&app, 1, &format!("/tasks/{}/{path}", id + 100)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        let r = get(&app, 1, &format!("/tasks/abc/{path}")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(r.field_errors()[0].0, "path.task_id");
        let r = app.call(Method::GET, &format!("/tasks/{id}/{path}"), None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = get(
        &app,
        1,
        &format!("/tasks/{id}/logs?since=2026-06-02T00:00:00Z&until=2026-06-01T00:00:00Z"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.field_errors()[0].0, "query.until");
    app.stop().await;
}

/// Rows of a table, counted straight from the database.
async fn count_rows(app: &TestApp, table: &str) -> i64 {
    use sqlx::Connection;
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
            sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
            sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap()
        }
    }
}

async fn the_retention_job_from_the_queue_deletes_only_old_log_rows(backend: Backend) {
    use domain::{outcome::AmAction, task::Priority};
    use invite_service::engine::queue::Job;

    let app = spawn_app(backend).await;
    let engine = app.engine();
    let accounts = sandbox_accounts(&app, 1, 1).await;
    let id = task_with_targets(
        &app,
        1,
        json!({"name": "Old", "action_type": "invite_to_group", "target_channel": "@old_group"}),
        &people("old", 2),
    )
    .await;
    // A grant in the ledger (what the Account Manager counts), and log rows 40, 31 and 29 days old.
    let granted = engine
        .am
        .check_rate_limit(&accounts[0], AmAction::ChannelLookup, None)
        .await;
    assert!(matches!(granted, account_manager::RateLimit::Granted(_)), "{granted:?}");
    for days in [40, 31, 29] {
        let row = store::NewLog {
            target_id: None,
            account_id: accounts[0].clone(),
            action: "channel_lookup".into(),
            status: "SUCCESS".into(),
            details: json!({"outcome": "success", "days": days}),
        };
        engine
            .store
            .append_logs(id, &[row], start_time() - chrono::Duration::days(days))
            .await
            .unwrap();
    }
    let grants = count_rows(&app, "am_grants").await;
    let targets = count_rows(&app, "invite_targets").await;

    engine
        .queue
        .publish(&Job::CleanupCompletedTasks, Priority::Low)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = get(&app, 1, &format!("/tasks/{id}/logs")).await.body;
        if left["total"] == 1 {
            assert_eq!(
                time(&left["items"][0]["created_at"]),
                start_time() - chrono::Duration::days(29),
                "the row within 30 days stays"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the cleanup did not run: {left}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count_rows(&app, "am_grants").await, grants, "the ledger is kept");
    assert_eq!(count_rows(&app, "invite_targets").await, targets, "targets are kept");
    app.stop().await;
}

crate::on_both_backends!(
    a_finished_campaign_reports_its_counts_stats_csv_and_log,
    the_completion_estimate_comes_true,
    status_before_the_start_and_bad_requests,
    the_retention_job_from_the_queue_deletes_only_old_log_rows,
);
