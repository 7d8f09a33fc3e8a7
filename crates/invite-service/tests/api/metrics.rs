//! `/metrics`: every campaign family exposed at zero from start-up for each known label value, the
//! counters moved by a real campaign on the sandbox world, the gauges read at scrape time, and the
//! whole exposition accepted by Prometheus' own `promtool check metrics`.

use std::{
    collections::BTreeMap,
    io::Write,
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

use reqwest::Method;
use serde_json::json;

use crate::{
    engine::{live, wait_for},
    support::*,
};

const PLATFORMS: [&str; 3] = ["telegram", "instagram", "whatsapp"];
const TASK_STATUSES: [&str; 6] = ["PENDING", "IN_PROGRESS", "PAUSED", "COMPLETED", "FAILED", "CANCELLED"];
const TARGET_RESULTS: [&str; 5] = ["succeeded", "already_done", "failed", "skipped", "unknown"];
const PRIORITIES: [&str; 3] = ["HIGH", "NORMAL", "LOW"];
const AM_ACTIONS: [&str; 5] = [
    "invite",
    "message",
    "resolve_username",
    "import_contact",
    "channel_lookup",
];
const AM_DECISIONS: [&str; 3] = ["granted", "wait", "denied"];

/// One scrape: each series (name and labels, as exposed) with its value, and the raw text.
struct Scrape {
    text: String,
    series: BTreeMap<String, f64>,
}

impl Scrape {
    fn get(&self, series: &str) -> f64 {
        *self
            .series
            .get(series)
            .unwrap_or_else(|| panic!("{series} is not exposed:\n{}", self.text))
    }

    /// The sum over every series of a family whose labels include `with` (e.g. `platform="telegram"`).
    fn sum(&self, family: &str, with: &str) -> f64 {
        self.series
            .iter()
            .filter(|(s, _)| s.starts_with(&format!("{family}{{")) && s.contains(with))
            .map(|(_, v)| v)
            .sum()
    }

    fn declares(&self, family: &str, kind: &str) -> bool {
        self.text.lines().any(|l| l == format!("# TYPE {family} {kind}"))
    }
}

async fn scrape(app: &TestApp) -> Scrape {
    let resp = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    promtool_accepts(&text);
    let series = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (s, v) = l.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {l}"));
            (s.to_owned(), v.parse().unwrap_or_else(|_| panic!("not a number: {l}")))
        })
        .collect();
    Scrape { text, series }
}

/// Prometheus' own linter over the exposition. Required: `.ci/run` installs it (Debian's `prometheus`
/// package) when it is missing, so the check runs everywhere the suite runs.
fn promtool_accepts(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool is required ({e}): `apt-get install prometheus` (.ci/run installs it when missing)")
        });
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

fn every_family_is_at_zero_for_every_known_label(m: &Scrape) {
    for (family, kind) in [
        ("invite_tasks_total", "counter"),
        ("invite_targets_processed_total", "counter"),
        ("invite_accounts_blocked_total", "counter"),
        ("invite_floodwait_events_total", "counter"),
        ("invite_task_duration_seconds", "histogram"),
        ("invite_active_tasks", "gauge"),
        ("invite_queue_depth", "gauge"),
        ("invite_am_decisions_total", "counter"),
    ] {
        assert!(m.declares(family, kind), "{family} is not a {kind}:\n{}", m.text);
    }
    for p in PLATFORMS {
        for s in TASK_STATUSES {
            assert_eq!(
                m.get(&format!(r#"invite_tasks_total{{platform="{p}",status="{s}"}}"#)),
                0.0
            );
        }
        for r in TARGET_RESULTS {
            let series = format!(r#"invite_targets_processed_total{{platform="{p}",result="{r}"}}"#);
            assert_eq!(m.get(&series), 0.0);
        }
        assert_eq!(
            m.get(&format!(r#"invite_accounts_blocked_total{{platform="{p}"}}"#)),
            0.0
        );
        assert_eq!(
            m.get(&format!(r#"invite_floodwait_events_total{{platform="{p}"}}"#)),
            0.0
        );
        assert_eq!(
            m.get(&format!(r#"invite_task_duration_seconds_count{{platform="{p}"}}"#)),
            0.0
        );
        assert_eq!(
            m.get(&format!(r#"invite_task_duration_seconds_sum{{platform="{p}"}}"#)),
            0.0
        );
        let week = format!(r#"invite_task_duration_seconds_bucket{{platform="{p}",le="604800"}}"#);
        assert_eq!(m.get(&week), 0.0);
        assert_eq!(m.get(&format!(r#"invite_active_tasks{{platform="{p}"}}"#)), 0.0);
    }
    for p in PRIORITIES {
        assert_eq!(m.get(&format!(r#"invite_queue_depth{{priority="{p}"}}"#)), 0.0);
    }
    for a in AM_ACTIONS {
        for d in AM_DECISIONS {
            assert_eq!(
                m.get(&format!(r#"invite_am_decisions_total{{action="{a}",decision="{d}"}}"#)),
                0.0
            );
        }
    }
}

async fn a_campaign_moves_the_counters_and_the_gauges_follow_the_store(backend: Backend) {
    let app = live(backend).await;
    every_family_is_at_zero_for_every_known_label(&scrape(&app).await);

    sandbox_accounts(&app, 1, 2).await;
    let audience = people("metered", 6);
    let id = task_with_targets(
        &app,
        1,
        json!({"name": "Metered", "action_type": "invite_to_group", "target_channel": "@metered_group"}),
        &audience,
    )
    .await;
    let tg = |family: &str, labels: &str| format!(r#"{family}{{platform="telegram"{labels}}}"#);
    let tasks = |status: &str| tg("invite_tasks_total", &format!(r#",status="{status}""#));
    assert_eq!(
        scrape(&app).await.get(&tasks("PENDING")),
        1.0,
        "a created task is PENDING"
    );

    let started = app
        .call(Method::POST, &format!("/tasks/{id}/start"), Some(1), None)
        .await;
    assert_eq!(started.body["status"], "IN_PROGRESS", "{}", started.body);
    // Six invites over two accounts at one per second each: the task runs for seconds.
    let running = scrape(&app).await;
    assert_eq!(running.get(&tasks("IN_PROGRESS")), 1.0);
    assert_eq!(running.get(&tg("invite_active_tasks", "")), 1.0, "read from the store");

    wait_for(&app, 1, id, "COMPLETED", Duration::from_secs(60)).await;
    let done = scrape(&app).await;
    for (status, n) in [
        ("PENDING", 1.0),
        ("IN_PROGRESS", 1.0),
        ("COMPLETED", 1.0),
        ("PAUSED", 0.0),
        ("FAILED", 0.0),
        ("CANCELLED", 0.0),
    ] {
        assert_eq!(done.get(&tasks(status)), n, "{status}");
    }
    assert_eq!(done.get(&tg("invite_active_tasks", "")), 0.0);
    assert_eq!(done.get(&tg("invite_task_duration_seconds_count", "")), 1.0);
    let took = done.get(&tg("invite_task_duration_seconds_sum", ""));
    assert!(took > 0.0 && took < 60.0, "{took}");
    assert_eq!(done.get(&tg("invite_task_duration_seconds_bucket", r#",le="60""#)), 1.0);

    // Every target is counted once, under the final status it has in the store.
    let targets = app
        .call(
            Method::GET,
            &format!("/tasks/{id}/targets?page_size=100"),
            Some(1),
            None,
        )
        .await
        .body;
    let items = targets["items"].as_array().unwrap();
    assert_eq!(items.len(), audience.len());
    assert_eq!(
        done.sum("invite_targets_processed_total", r#"platform="telegram""#),
        audience.len() as f64
    );
    for result in TARGET_RESULTS {
        let stored = items.iter().filter(|t| t["status"] == result).count() as f64;
        let series = tg("invite_targets_processed_total", &format!(r#",result="{result}""#));
        assert_eq!(done.get(&series), stored, "{result}");
    }

    // Each account looked the channel up once; every invite and lookup was granted first.
    let decision = |action: &str, d: &str| format!(r#"invite_am_decisions_total{{action="{action}",decision="{d}"}}"#);
    assert_eq!(done.get(&decision("channel_lookup", "granted")), 2.0);
    let reached = items
        .iter()
        .filter(|t| t["status"] == "succeeded" || t["status"] == "already_done")
        .count() as f64;
    assert!(reached > 0.0);
    assert!(done.get(&decision("invite", "granted")) >= reached);
    assert!(done.get(&decision("resolve_username", "granted")) >= reached);
    assert_eq!(done.get(&tg("invite_floodwait_events_total", "")), 0.0);
    assert_eq!(done.get(&tg("invite_accounts_blocked_total", "")), 0.0);
    for p in PRIORITIES {
        assert_eq!(done.get(&format!(r#"invite_queue_depth{{priority="{p}"}}"#)), 0.0);
    }
    app.stop().await;
}

async fn a_cancelled_task_is_counted_and_timed(backend: Backend) {
    let app = live(backend).await;
    sandbox_accounts(&app, 1, 1).await;
    let id = task_with_targets(
        &app,
        1,
        json!({"name": "Stopped", "action_type": "invite_to_group", "target_channel": "@metered_group"}),
        &people("stopped", 20),
    )
    .await;
    app.call(Method::POST, &format!("/tasks/{id}/start"), Some(1), None)
        .await;
    let paused = app
        .call(Method::POST, &format!("/tasks/{id}/pause"), Some(1), None)
        .await;
    assert_eq!(paused.body["status"], "PAUSED", "{}", paused.body);
    let cancelled = app
        .call(Method::POST, &format!("/tasks/{id}/cancel"), Some(1), None)
        .await;
    assert_eq!(cancelled.body["status"], "CANCELLED", "{}", cancelled.body);
    // A task cancelled before it ever started is counted but not timed.
    let never = app
        .create(
            1,
            json!({"name": "Never", "action_type": "invite_to_group", "target_channel": "@metered_group"}),
        )
        .await;
    let never = never["id"].as_i64().unwrap();
    app.call(Method::POST, &format!("/tasks/{never}/cancel"), Some(1), None)
        .await;
    let m = scrape(&app).await;
    let tasks = |s: &str| m.get(&format!(r#"invite_tasks_total{{platform="telegram",status="{s}"}}"#));
    assert_eq!(
        [
            tasks("PENDING"),
            tasks("IN_PROGRESS"),
            tasks("PAUSED"),
            tasks("CANCELLED")
        ],
        [2.0, 1.0, 1.0, 2.0]
    );
    assert_eq!(m.get(r#"invite_task_duration_seconds_count{platform="telegram"}"#), 1.0);
    assert_eq!(m.get(r#"invite_active_tasks{platform="telegram"}"#), 0.0);
    app.stop().await;
}

crate::on_both_backends!(
    a_campaign_moves_the_counters_and_the_gauges_follow_the_store,
    a_cancelled_task_is_counted_and_timed,
);

/// A worker process (`invite-service worker`) has no API; it serves its metrics on
/// `INVITE_METRICS_BIND`, with the gauges read from the shared store.
#[tokio::test]
async fn a_worker_serves_its_metrics_on_their_own_listener() {
    let _logs = crate::support::log_scan::capture();
    let dir = std::env::temp_dir().join(format!("invite_worker_metrics_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite:{}", dir.join("invite.db").display());
    let vars = [
        ("DATABASE_URL", db.as_str()),
        ("INVITE_BIND", "127.0.0.1:0"),
        ("INVITE_METRICS_BIND", "127.0.0.1:0"),
        ("INVITE_JWT_SECRET", JWT_SECRET),
        ("INVITE_DATA_KEY", DATA_KEY),
        ("INVITE_DATA_DIR", dir.to_str().unwrap()),
    ];
    let config =
        invite_service::config::Config::from_vars(&vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
            .unwrap();
    let store = invite_service::app::open_store(&config).await.unwrap();
    invite_service::app::prepare_schema(&store, invite_service::app::Schema::Migrate)
        .await
        .unwrap();
    let clock: clock::SharedClock = Arc::new(clock::SystemClock);
    let running = invite_service::app::start(&config, store, clock, invite_service::app::Roles::EngineOnly)
        .await
        .unwrap();
    assert_eq!(running.addr, None, "a worker serves no API");
    let addr = running.metrics_addr.expect("the metrics listener");
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    promtool_accepts(&text);
    assert!(text.contains(r#"invite_active_tasks{platform="telegram"} 0"#), "{text}");
    assert!(text.contains(r#"invite_queue_depth{priority="HIGH"} 0"#), "{text}");
    running.shutdown();
    running.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
