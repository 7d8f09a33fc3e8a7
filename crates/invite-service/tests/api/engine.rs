//! Campaigns run by the engine in this process, over HTTP, on the sandbox world with a compressed
//! policy that still binds: lifecycle moves and their refusals, priorities, completion, and the
//! world's audit of what was done.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

/// Seconds instead of minutes and hours: 1 s between invites of an account, 3 per 15 s per account,
/// 2 per 10 s per account and channel — so the limits bind within a test's run.
const COMPRESSED: &str = r#"{"telegram": {
    "invite": {"per_account": [{"cap": 3, "period": "15s"}], "per_channel": [{"cap": 2, "period": "10s"}], "pause": ["1s", "1s"]},
    "message": {"per_account": [{"cap": 3, "period": "60s"}], "pause": ["1s", "1s"]},
    "resolve_username": {"per_account": [{"cap": 100, "period": "60s"}], "pause": ["0s", "0s"]},
    "channel_lookup": {"pause": ["0s", "0s"]}
}, "lease_ttl": "30s"}"#;

pub(crate) async fn live(backend: Backend) -> TestApp {
    spawn_live_app(backend, &[("INVITE_POLICY", COMPRESSED), ("INVITE_WORKERS", "3")]).await
}

async fn status_of(app: &TestApp, user: i64, id: i64) -> Value {
    app.call(Method::GET, &format!("/tasks/{id}"), Some(user), None)
        .await
        .body
}

pub(crate) async fn wait_for(app: &TestApp, user: i64, id: i64, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let task = status_of(app, user, id).await;
        if task["status"] == status {
            return task;
        }
        if Instant::now() >= deadline {
            let logs = app.dump_table("invite_execution_logs").await;
            let grants = app.dump_table("am_grants").await;
            let targets = app.dump_table("invite_targets").await;
            panic!("task {id} did not become {status}: {task}\nlogs:\n{logs}\ngrants:\n{grants}\ntargets:\n{targets}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_campaign_runs_to_completion_within_the_compressed_limits(backend: Backend) {
    let app = live(backend).await;
    sandbox_accounts(&app, 1, 2).await;
    let audience = people("campaign", 8);
    let id = task_with_targets(
        &app,
        1,
        json!({"name": "Launch", "action_type": "invite_to_group", "target_channel": "@launch_group"}),
        &audience,
    )
    .await;
    // Opted out after the import: checked again right before the call.
    let opt_out = json!({"entries": [{"value": format!("@{}", audience[3])}]});
    let r = app.call(Method::POST, "/do-not-contact", Some(1), Some(opt_out)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let started = app
        .call(Method::POST, &format!("/tasks/{id}/start"), Some(1), None)
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    assert_eq!(started.body["status"], "IN_PROGRESS");
    let again = app
        .call(Method::POST, &format!("/tasks/{id}/start"), Some(1), None)
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.detail().contains("IN_PROGRESS"), "{}", again.detail());

    let done = wait_for(&app, 1, id, "COMPLETED", Duration::from_secs(60)).await;
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
    assert_eq!(items.len(), 8);
    for t in items {
        let final_states = ["succeeded", "already_done", "failed", "skipped"];
        assert!(final_states.contains(&t["status"].as_str().unwrap()), "{t}");
    }
    let opted_out = items.iter().find(|t| t["username"] == audience[3].as_str()).unwrap();
    assert_eq!(
        (opted_out["status"].as_str(), opted_out["reason"].as_str()),
        (Some("skipped"), Some("do_not_contact"))
    );
    let succeeded = items.iter().filter(|t| t["status"] == "succeeded").count() as i64;
    // Which accounts served the task, and how much.
    let served = app.engine().store.task_accounts(id).await.unwrap();
    assert_eq!(served.len(), 2, "{served:?}");
    let actions: i64 = served.iter().map(|a| a.stats["actions"].as_i64().unwrap_or(0)).sum();
    assert_eq!(actions, 7, "eight targets, one opted out: {served:?}");
    assert!(
        served.iter().all(|a| a.status == "active" && a.channel.is_some()),
        "{served:?}"
    );
    assert_eq!(done["completed_count"].as_i64().unwrap(), succeeded, "{done}");
    app.stop().await;
}

async fn a_start_without_targets_or_accounts_is_refused_and_says_why(backend: Backend) {
    let app = live(backend).await;
    let body = json!({"name": "Empty", "action_type": "invite_to_group", "target_channel": "@launch_group"});
    let empty = app.create(1, body.clone()).await["id"].as_i64().unwrap();
    let r = app
        .call(Method::POST, &format!("/tasks/{empty}/start"), Some(1), None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.detail().contains("no targets"), "{}", r.detail());

    let id = task_with_targets(&app, 1, body, &people("nobody", 2)).await;
    let r = app
        .call(Method::POST, &format!("/tasks/{id}/start"), Some(1), None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.detail().contains("no usable telegram account"), "{}", r.detail());

    let r = app
        .call(Method::POST, &format!("/tasks/{id}/pause"), Some(1), None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.detail().contains("PENDING"), "{}", r.detail());
    let other = app
        .call(Method::POST, &format!("/tasks/{id}/cancel"), Some(2), None)
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "another user's task is not there");
    let cancelled = app
        .call(Method::POST, &format!("/tasks/{id}/cancel"), Some(1), None)
        .await;
    assert_eq!(cancelled.body["status"], "CANCELLED", "{}", cancelled.body);
    app.stop().await;
}

async fn pause_stops_new_actions_and_resume_continues(backend: Backend) {
    let app = live(backend).await;
    sandbox_accounts(&app, 1, 1).await;
    let id = task_with_targets(
        &app,
        1,
        json!({"name": "Slow", "action_type": "invite_to_group", "target_channel": "@launch_group"}),
        &people("paused", 4),
    )
    .await;
    app.call(Method::POST, &format!("/tasks/{id}/start"), Some(1), None)
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let paused = app
        .call(Method::POST, &format!("/tasks/{id}/pause"), Some(1), None)
        .await;
    assert_eq!(paused.body["status"], "PAUSED", "{}", paused.body);
    // At most the action in flight finishes; nothing new starts while paused.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let at_pause = status_of(&app, 1, id).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = status_of(&app, 1, id).await;
    let done = |t: &Value| {
        ["completed_count", "failed_count", "skipped_count"]
            .iter()
            .map(|k| t[k].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(
        done(&at_pause),
        done(&later),
        "no action while paused: {at_pause} {later}"
    );
    assert!(done(&later) < 4);
    let resumed = app
        .call(Method::POST, &format!("/tasks/{id}/resume"), Some(1), None)
        .await;
    assert_eq!(resumed.body["status"], "IN_PROGRESS");
    wait_for(&app, 1, id, "COMPLETED", Duration::from_secs(60)).await;
    app.stop().await;
}

/// A job whose claim ran out makes no call: by then the target may be another account's (a redelivered
/// job, or one that waited on a failing store, would otherwise reach the person twice). The same job
/// for a claim that holds does invite.
async fn a_job_whose_claim_ran_out_makes_no_call(backend: Backend) {
    use invite_service::engine::{
        queue::{Job, TargetData},
        worker::execute,
    };
    // Leases of 10 minutes: the test's own (below) outlasts the claims of 30 s it lets run out.
    let policy = COMPRESSED.replace(r#""lease_ttl": "30s""#, r#""lease_ttl": "10m""#);
    assert_ne!(policy, COMPRESSED);
    let app = spawn_app_with(backend, &[("INVITE_POLICY", policy.as_str())]).await;
    let engine = app.engine();
    let account = sandbox_accounts(&app, 1, 1).await.remove(0);
    // Leased here for the whole test: the scheduler leaves the account alone, so the jobs below are
    // the only ones (they name another lease epoch, so they do not give this one back).
    let lease = engine
        .am
        .lease(&account, "test")
        .await
        .unwrap()
        .expect("a free account");
    let id = task_with_targets(
        &app,
        1,
        json!({"name": "Fenced", "action_type": "invite_to_group", "target_channel": "@fenced_group"}),
        &people("fenced", 1),
    )
    .await;
    let started = app
        .call(Method::POST, &format!("/tasks/{id}/start"), Some(1), None)
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    let claim = |now| {
        let engine = engine.clone();
        let account = account.clone();
        async move {
            engine
                .store
                .claim_target(id, &account, now, now + chrono::Duration::seconds(30))
                .await
                .unwrap()
        }
    };
    let job = |c: &store::Claim| Job::ProcessTargetBatch {
        task_id: id,
        target_id: c.target.id,
        target: TargetData {
            username: c.target.username.clone(),
            ..TargetData::default()
        },
        account_id: account.clone(),
        epoch: c.epoch,
        attempts: c.attempts,
        lease_epoch: lease.epoch + 1,
    };
    let invites = || async {
        let (calls, _) = engine.store.world_record().await.unwrap();
        calls
            .into_iter()
            .filter(|c| c.method == "channels.inviteToChannel")
            .count()
    };

    let Some(stale) = claim(engine.clock.now()).await else {
        panic!("no due target:\n{}", app.dump_table("invite_targets").await)
    };
    app.clock.advance(chrono::Duration::seconds(31));
    execute(&engine, &job(&stale)).await.unwrap();
    assert_eq!(invites().await, 0, "a claim that ran out calls nobody");

    // Given back and claimed again: the job of the fresh claim invites, once.
    engine.store.reclaim_expired_targets(engine.clock.now()).await.unwrap();
    let fresh = claim(engine.clock.now()).await.expect("the target is due again");
    assert!(fresh.epoch > stale.epoch);
    execute(&engine, &job(&fresh)).await.unwrap();
    assert_eq!(invites().await, 1);
    let target = app
        .call(Method::GET, &format!("/tasks/{id}/targets"), Some(1), None)
        .await
        .body;
    assert_eq!(target["items"][0]["status"], "succeeded", "{target}");
    app.stop().await;
}

crate::on_both_backends!(
    a_job_whose_claim_ran_out_makes_no_call,
    a_campaign_runs_to_completion_within_the_compressed_limits,
    a_start_without_targets_or_accounts_is_refused_and_says_why,
    pause_stops_new_actions_and_resume_continues,
);

/// The scheduler driven by hand on the manual clock (the in-process one runs too: two schedulers at
/// once must be harmless, claims are conditional).
mod scheduled {
    use chrono::Duration as ChronoDuration;
    use invite_service::engine::scheduler::Scheduler;
    use reqwest::{Method, StatusCode};
    use serde_json::json;

    use super::status_of;
    use crate::support::*;

    async fn a_scheduled_task_starts_by_itself_unless_it_is_too_late(backend: Backend) {
        let app = spawn_app(backend).await;
        sandbox_accounts(&app, 1, 1).await;
        let scheduler = Scheduler::new(app.engine());
        let at = start_time() + ChronoDuration::minutes(10);
        let body = |name: &str| {
            json!({"name": name, "action_type": "invite_to_group", "target_channel": "@launch_group",
                   "scheduled_start": at.to_rfc3339()})
        };
        let id = task_with_targets(&app, 1, body("On time"), &people("ontime", 2)).await;
        let started = app
            .call(Method::POST, &format!("/tasks/{id}/start"), Some(1), None)
            .await;
        assert_eq!(started.status, StatusCode::OK, "{}", started.body);
        assert_eq!(started.body["status"], "PENDING");
        assert!(
            started.body["status_reason"]
                .as_str()
                .unwrap()
                .starts_with("scheduled for"),
            "{}",
            started.body
        );
        let tick = scheduler.tick().await.unwrap();
        assert_eq!(tick.next_wake, Some(at), "it wakes at the scheduled time, not before");
        assert_eq!(status_of(&app, 1, id).await["status"], "PENDING");
        app.clock.advance(ChronoDuration::minutes(10));
        scheduler.tick().await.unwrap();
        assert_eq!(status_of(&app, 1, id).await["status"], "IN_PROGRESS");

        let soon = clock::Clock::now(&app.clock) + ChronoDuration::minutes(5);
        let late_body = json!({"name": "Late", "action_type": "invite_to_group", "target_channel": "@launch_group",
                               "scheduled_start": soon.to_rfc3339()});
        let late = task_with_targets(&app, 1, late_body, &people("late", 2)).await;
        app.call(Method::POST, &format!("/tasks/{late}/start"), Some(1), None)
            .await;
        app.clock.advance(ChronoDuration::hours(2));
        scheduler.tick().await.unwrap();
        let t = status_of(&app, 1, late).await;
        assert_eq!(t["status"], "PENDING", "{t}");
        assert!(t["status_reason"].as_str().unwrap().starts_with("not started"), "{t}");
        app.stop().await;
    }

    async fn more_running_tasks_than_allowed_are_refused(backend: Backend) {
        let app = spawn_app_with(backend, &[("INVITE_MAX_RUNNING_TASKS", "1")]).await;
        sandbox_accounts(&app, 1, 1).await;
        let body = json!({"name": "A", "action_type": "invite_to_group", "target_channel": "@launch_group"});
        let a = task_with_targets(&app, 1, body.clone(), &people("first", 2)).await;
        let b = task_with_targets(&app, 1, body, &people("second", 2)).await;
        let r = app
            .call(Method::POST, &format!("/tasks/{a}/start"), Some(1), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = app
            .call(Method::POST, &format!("/tasks/{b}/start"), Some(1), None)
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.detail().contains("the most one user may have is 1"), "{}", r.detail());
        // Another user is not held back by this one's tasks.
        sandbox_accounts(&app, 2, 1).await;
        let c = task_with_targets(
            &app,
            2,
            json!({"name": "C", "action_type": "invite_to_group", "target_channel": "@launch_group"}),
            &people("third", 1),
        )
        .await;
        let r = app
            .call(Method::POST, &format!("/tasks/{c}/start"), Some(2), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        app.stop().await;
    }

    crate::on_both_backends!(
        a_scheduled_task_starts_by_itself_unless_it_is_too_late,
        more_running_tasks_than_allowed_are_refused,
    );
}
