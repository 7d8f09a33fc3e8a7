//! The campaign engine's store, the same cases on both backends: lifecycle moves (conditional, audited,
//! with their times), the engine's own moves, the tasks the scheduler sees, claims under concurrent
//! handles (as several processes would make them), retry times and pins, expired leases and stale
//! settlements, settlements with their counters and log rows, ending open targets, where targets are,
//! recent outcomes, the accounts of a task, and the do-not-contact check. PostgreSQL tests fail, never
//! skip, when the server is down.

use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::{
    audience::{ImportReport, Target, TargetDraft, TargetSource, TargetStatus},
    identifier::Identifier,
    task::{ActionType, Platform, Priority, Task, TaskSpec, TaskStatus, UserId},
    ChannelRef, Username,
};
use serde_json::{json, Map, Value};
use store::{
    audit_action, Claim, ImportOutcome, ImportRequest, ImportStart, NewDncEntry, NewLog, PageRequest, RequestMeta,
    Settlement, SharedStore, StoreError, StoreOptions, TargetCounts, TargetQuery, TaskAccount, Transition,
};
use test_db::{Backend, TestDb};

use TaskStatus::{Cancelled, Completed, InProgress, Paused, Pending};

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn user(id: i64) -> UserId {
    UserId::new(id).unwrap()
}

fn meta(request_id: &str) -> RequestMeta {
    RequestMeta {
        request_id: request_id.to_string(),
        client_addr: Some("203.0.113.7".to_string()),
    }
}

fn spec(name: &str) -> TaskSpec {
    TaskSpec {
        name: name.to_string(),
        description: None,
        platform: Platform::Telegram,
        action_type: ActionType::InviteToGroup,
        target_channel: Some(ChannelRef::parse("@club_of_tests").unwrap()),
        message_template: None,
        priority: Priority::Normal,
        scheduled_start: None,
        settings: Map::new(),
    }
}

async fn new_task(s: &SharedStore, owner: UserId, name: &str) -> Task {
    s.create_task(owner, &spec(name), t(0), &meta("req-create"))
        .await
        .unwrap()
}

/// Imports `n` targets (`person000`, `person001`, …) into a task, as the API does; their ids, lowest first.
async fn add_targets(s: &SharedStore, owner: UserId, task_id: i64, n: usize) -> Vec<i64> {
    let request = ImportRequest {
        task_id,
        source: TargetSource::Manual,
        file_name: None,
        dry_run: false,
        max_targets: 100_000,
    };
    let ImportStart::Started(mut sink) = s.begin_import(owner, request, t(0), &meta("req-import")).await.unwrap()
    else {
        panic!("the task takes an import");
    };
    let drafts = (0..n)
        .map(|i| TargetDraft {
            row: i + 1,
            username: Some(Username::parse(&format!("person{i:03}")).unwrap()),
            user_id: None,
            user_id_is_hint: false,
            phone: None,
            first_name: None,
            last_name: None,
            extra: Map::new(),
        })
        .collect();
    let mut report = ImportReport {
        total_rows: n,
        ..ImportReport::default()
    };
    sink.add(drafts, &mut report).await.unwrap();
    let outcome = sink.finish(report).await.unwrap();
    assert!(matches!(outcome, ImportOutcome::Done { .. }), "{outcome:?}");
    let ids: Vec<i64> = targets(s, owner, task_id).await.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), n);
    ids
}

async fn targets(s: &SharedStore, owner: UserId, task_id: i64) -> Vec<Target> {
    let query = TargetQuery {
        status: None,
        page: PageRequest {
            page: 1,
            page_size: 1000,
        },
    };
    s.list_targets(owner, task_id, &query).await.unwrap().unwrap().items
}

async fn target(s: &SharedStore, owner: UserId, task_id: i64, id: i64) -> Target {
    targets(s, owner, task_id)
        .await
        .into_iter()
        .find(|t| t.id == id)
        .expect("the target is there")
}

/// A new task of user 1 with `n` targets, started (as the user's start does).
async fn running_task(s: &SharedStore, n: usize) -> (Task, Vec<i64>) {
    let task = new_task(s, user(1), "running").await;
    let ids = add_targets(s, user(1), task.id, n).await;
    let started = s
        .transition_task(
            user(1),
            task.id,
            &[Pending],
            InProgress,
            None,
            "start",
            t(1),
            &meta("req-start"),
        )
        .await
        .unwrap();
    let Transition::Done(task) = started else {
        panic!("started: {started:?}")
    };
    (task, ids)
}

fn log(target_id: Option<i64>, action: &str, status: &str, outcome: &str) -> NewLog {
    NewLog {
        target_id,
        account_id: "acc-a".to_string(),
        action: action.to_string(),
        status: status.to_string(),
        details: json!({ "outcome": outcome }),
    }
}

/// A settlement of a claim with a final status, counting the attempt, with one `invite` log row.
fn settle_final(claim: &Claim, status: TargetStatus, outcome: &str, now: DateTime<Utc>) -> Settlement {
    Settlement {
        task_id: claim.target.task_id,
        target_id: claim.target.id,
        epoch: claim.epoch,
        now,
        status,
        reason: Some(outcome.to_string()),
        next_attempt_at: None,
        pin_account: None,
        count_attempt: true,
        result: json!({ "outcome": outcome }),
        logs: vec![log(Some(claim.target.id), "invite", "SUCCESS", outcome)],
    }
}

/// A settlement that gives a claim back as pending.
fn give_back(claim: &Claim, now: DateTime<Utc>, next: Option<DateTime<Utc>>, pin: Option<&str>) -> Settlement {
    Settlement {
        task_id: claim.target.task_id,
        target_id: claim.target.id,
        epoch: claim.epoch,
        now,
        status: TargetStatus::Pending,
        reason: Some("flood_wait".to_string()),
        next_attempt_at: next,
        pin_account: pin.map(str::to_string),
        count_attempt: false,
        result: json!({ "outcome": "flood_wait" }),
        logs: vec![],
    }
}

async fn claim(s: &SharedStore, task_id: i64, account: &str, now: DateTime<Utc>) -> Option<Claim> {
    s.claim_target(task_id, account, now, now + Duration::seconds(30))
        .await
        .unwrap()
}

/// A log row as stored: (task id, target id, account, action, status, details).
type LogRow = (i64, Option<i64>, String, String, String, Value);

/// The whole execution log, oldest first, read straight from the database.
async fn log_rows(db: &TestDb) -> Vec<LogRow> {
    if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let rows: Vec<(i64, Option<i64>, String, String, String, String)> = sqlx::query_as(
            "SELECT task_id, target_id, account_id, action, status, details FROM invite_execution_logs ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows.into_iter()
            .map(|(a, b, c, d, e, f)| (a, b, c, d, e, serde_json::from_str(&f).unwrap()))
            .collect()
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let rows = sqlx::query_as(
            "SELECT task_id, target_id, account_id, action, status::text, details FROM invite_execution_logs \
             ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows
    }
}

/// A target's engine columns: (lease account, lease epoch, pinned account, lease set, next attempt set).
async fn lease_columns(db: &TestDb, target_id: i64) -> (Option<String>, i64, Option<String>, bool, bool) {
    const SQL: &str = "SELECT lease_account, lease_epoch, pinned_account, lease_until IS NOT NULL, \
                       next_attempt_at IS NOT NULL FROM invite_targets WHERE id = ";
    if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let row = sqlx::query_as(&format!("{SQL}{target_id}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        row
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let row = sqlx::query_as(&format!("{SQL}{target_id}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        row
    }
}

async fn lifecycle_moves_are_conditional_audited_and_timed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let task = new_task(s, user(1), "campaign").await;
    assert_eq!(s.count_running_tasks(user(1)).await.unwrap(), 0);

    // Start: PENDING → IN_PROGRESS, started_at set, version bumped, the reason cleared.
    let moved = s
        .transition_task(
            user(1),
            task.id,
            &[Pending],
            InProgress,
            None,
            "start",
            t(10),
            &meta("req-start"),
        )
        .await
        .unwrap();
    let Transition::Done(started) = moved else {
        panic!("{moved:?}")
    };
    assert_eq!(started.status, InProgress);
    assert_eq!(started.started_at, Some(t(10)));
    assert_eq!(started.finished_at, None);
    assert_eq!(started.updated_at, t(10));
    assert_eq!(started.version, task.version + 1);
    assert_eq!(started.status_reason, None);
    assert_eq!(
        s.get_task(user(1), task.id).await.unwrap().as_ref(),
        Some(&started),
        "the task as updated"
    );
    assert_eq!(s.count_running_tasks(user(1)).await.unwrap(), 1);

    // A second start is refused with the current status; nothing is written.
    let again = s
        .transition_task(
            user(1),
            task.id,
            &[Pending],
            InProgress,
            None,
            "start",
            t(11),
            &meta("req-again"),
        )
        .await
        .unwrap();
    assert_eq!(again, Transition::Refused(InProgress));
    // Another user's task, and a missing one, are not found.
    let theirs = s
        .transition_task(
            user(2),
            task.id,
            &[InProgress],
            Paused,
            None,
            "pause",
            t(11),
            &meta("req-other"),
        )
        .await
        .unwrap();
    assert_eq!(theirs, Transition::NotFound);
    let missing = s
        .transition_task(
            user(1),
            task.id + 1000,
            &[InProgress],
            Paused,
            None,
            "pause",
            t(11),
            &meta("req-x"),
        )
        .await
        .unwrap();
    assert_eq!(missing, Transition::NotFound);
    assert_eq!(s.get_task(user(1), task.id).await.unwrap().as_ref(), Some(&started));

    // Pause with a reason, resume later: started_at stays the first start's.
    let moved = s
        .transition_task(
            user(1),
            task.id,
            &[InProgress],
            Paused,
            Some("paused by user"),
            "pause",
            t(20),
            &meta("req-pause"),
        )
        .await
        .unwrap();
    let Transition::Done(paused) = moved else {
        panic!("{moved:?}")
    };
    assert_eq!(
        (paused.status, paused.status_reason.as_deref(), paused.version),
        (Paused, Some("paused by user"), started.version + 1)
    );
    assert_eq!(
        s.count_running_tasks(user(1)).await.unwrap(),
        1,
        "paused counts as running"
    );
    let moved = s
        .transition_task(
            user(1),
            task.id,
            &[Paused],
            InProgress,
            None,
            "resume",
            t(30),
            &meta("req-resume"),
        )
        .await
        .unwrap();
    let Transition::Done(resumed) = moved else {
        panic!("{moved:?}")
    };
    assert_eq!((resumed.status, resumed.status_reason.as_deref()), (InProgress, None));
    assert_eq!(resumed.started_at, Some(t(10)));

    // Cancel (from any of three): finished_at set.
    let moved = s
        .transition_task(
            user(1),
            task.id,
            &[Pending, InProgress, Paused],
            Cancelled,
            Some("cancelled by user"),
            "cancel",
            t(40),
            &meta("req-cancel"),
        )
        .await
        .unwrap();
    let Transition::Done(cancelled) = moved else {
        panic!("{moved:?}")
    };
    assert_eq!(cancelled.status, Cancelled);
    assert_eq!(
        (cancelled.started_at, cancelled.finished_at),
        (Some(t(10)), Some(t(40)))
    );
    assert_eq!(s.count_running_tasks(user(1)).await.unwrap(), 0);
    let again = s
        .transition_task(
            user(1),
            task.id,
            &[Pending, InProgress, Paused],
            Cancelled,
            None,
            "cancel",
            t(41),
            &meta("r"),
        )
        .await
        .unwrap();
    assert_eq!(again, Transition::Refused(Cancelled));

    // An action that is not a lifecycle move is the caller's bug.
    let odd = s
        .transition_task(
            user(1),
            task.id,
            &[Cancelled],
            Pending,
            None,
            "revive",
            t(42),
            &meta("r"),
        )
        .await;
    assert!(matches!(odd, Err(StoreError::Refused(_))), "{odd:?}");

    // The audit log: one entry a move that happened, newest first, with its request.
    let page = PageRequest { page: 1, page_size: 50 };
    let audit = s.list_audit(user(1), page).await.unwrap().items;
    let seen: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.object_id.as_str(), e.request_id.as_str()))
        .collect();
    let id = task.id.to_string();
    assert_eq!(
        seen,
        vec![
            (audit_action::TASK_CANCEL, id.as_str(), "req-cancel"),
            (audit_action::TASK_RESUME, id.as_str(), "req-resume"),
            (audit_action::TASK_PAUSE, id.as_str(), "req-pause"),
            (audit_action::TASK_START, id.as_str(), "req-start"),
            (audit_action::TASK_CREATE, id.as_str(), "req-create"),
        ]
    );
    assert_eq!(audit[0].object_type, "task");
    assert_eq!(
        audit[0].details,
        json!({ "status": "CANCELLED", "reason": "cancelled by user" })
    );
    assert_eq!(audit[0].client_addr.as_deref(), Some("203.0.113.7"));
    assert_eq!(audit[0].created_at, t(40));
    assert!(s.list_audit(user(2), page).await.unwrap().items.is_empty());
}

async fn engine_moves_are_conditional_and_audited_as_the_systems(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, _) = running_task(s, 1).await;

    // The engine completes a running task once.
    assert!(s
        .engine_transition(task.id, &[InProgress], Completed, Some("all targets done"), t(50))
        .await
        .unwrap());
    assert!(!s
        .engine_transition(task.id, &[InProgress], Completed, None, t(51))
        .await
        .unwrap());
    assert!(!s
        .engine_transition(task.id + 1000, &[InProgress], Completed, None, t(51))
        .await
        .unwrap());
    let done = s.engine_task(task.id).await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.status_reason.as_deref()),
        (Completed, Some("all targets done"))
    );
    assert_eq!((done.started_at, done.finished_at), (Some(t(1)), Some(t(50))));
    assert_eq!((done.version, done.updated_at), (task.version + 1, t(50)));

    // A scheduled start: PENDING → IN_PROGRESS sets started_at.
    let scheduled = new_task(s, user(1), "scheduled").await;
    assert!(s
        .engine_transition(scheduled.id, &[Pending], InProgress, None, t(60))
        .await
        .unwrap());
    let started = s.engine_task(scheduled.id).await.unwrap().unwrap();
    assert_eq!(
        (started.status, started.started_at, started.finished_at),
        (InProgress, Some(t(60)), None)
    );

    // Audited in the owner's log as the system's.
    let page = PageRequest { page: 1, page_size: 50 };
    let audit = s.list_audit(user(1), page).await.unwrap().items;
    let system: Vec<(&str, String)> = audit
        .iter()
        .filter(|e| e.request_id == audit_action::SYSTEM_REQUEST_ID)
        .map(|e| (e.action.as_str(), e.object_id.clone()))
        .collect();
    assert_eq!(
        system,
        vec![
            (audit_action::TASK_START, scheduled.id.to_string()),
            (audit_action::TASK_COMPLETE, task.id.to_string()),
        ]
    );
    let complete = audit.iter().find(|e| e.action == audit_action::TASK_COMPLETE).unwrap();
    assert_eq!(complete.client_addr, None);
    assert_eq!(complete.details["reason"], json!("all targets done"));

    // The reason of a running task changes without its status, and only when it differs.
    s.set_task_reason(scheduled.id, Some("waiting for an account"), t(70))
        .await
        .unwrap();
    let waiting = s.engine_task(scheduled.id).await.unwrap().unwrap();
    assert_eq!(
        (
            waiting.status,
            waiting.status_reason.as_deref(),
            waiting.version,
            waiting.updated_at
        ),
        (InProgress, Some("waiting for an account"), started.version + 1, t(70))
    );
    s.set_task_reason(scheduled.id, Some("waiting for an account"), t(71))
        .await
        .unwrap();
    assert_eq!(
        s.engine_task(scheduled.id).await.unwrap().unwrap(),
        waiting,
        "unchanged"
    );
    s.set_task_reason(scheduled.id, None, t(72)).await.unwrap();
    assert_eq!(s.engine_task(scheduled.id).await.unwrap().unwrap().status_reason, None);
    // Not a running task: nothing.
    s.set_task_reason(task.id, Some("nope"), t(73)).await.unwrap();
    assert_eq!(s.engine_task(task.id).await.unwrap().unwrap(), done);
}

async fn the_scheduler_sees_running_and_scheduled_tasks(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let idle = new_task(s, user(1), "idle").await;
    let mut with_start = spec("scheduled");
    with_start.scheduled_start = Some(t(3600));
    let scheduled = s.create_task(user(2), &with_start, t(0), &meta("r")).await.unwrap();
    let (running, _) = running_task(s, 1).await;
    let (paused, _) = running_task(s, 1).await;
    assert!(s
        .engine_transition(paused.id, &[InProgress], Paused, None, t(5))
        .await
        .unwrap());
    let (finished, _) = running_task(s, 1).await;
    assert!(s
        .engine_transition(finished.id, &[InProgress], Completed, None, t(5))
        .await
        .unwrap());

    let seen: Vec<i64> = s.engine_tasks().await.unwrap().iter().map(|t| t.id).collect();
    let mut expected = vec![scheduled.id, running.id];
    expected.sort_unstable();
    assert_eq!(seen, expected);
    // The versions name the same tasks, at the versions their rows have.
    let versions = s.engine_task_versions().await.unwrap();
    assert_eq!(versions.iter().map(|v| v.id).collect::<Vec<_>>(), expected);
    for v in versions {
        assert_eq!(v.version, s.engine_task(v.id).await.unwrap().unwrap().version);
    }
    assert_eq!(s.engine_task(idle.id).await.unwrap().unwrap().status, Pending);
    assert_eq!(s.engine_task(idle.id + 1000).await.unwrap(), None);
}

async fn concurrent_claims_hand_each_target_out_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (task, ids) = running_task(&db.store, 30).await;
    let mut handles = vec![db.store.clone()];
    for _ in 0..3 {
        handles.push(store::open(&db.url, &StoreOptions::default()).await.unwrap());
    }
    // Two workers a handle, let go together.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(handles.len() * 2));
    let mut workers = Vec::new();
    for (i, handle) in handles.iter().enumerate() {
        for j in 0..2 {
            let s = handle.clone();
            let account = format!("acc-{i}-{j}");
            let start = start.clone();
            workers.push(tokio::spawn(async move {
                start.wait().await;
                let mut got = Vec::new();
                while let Some(c) = claim(&s, task.id, &account, t(10)).await {
                    assert_eq!(c.target.status, TargetStatus::InProgress);
                    assert_eq!((c.epoch, c.attempts, c.pinned_account.as_deref()), (1, 0, None));
                    got.push(c.target.id);
                    tokio::task::yield_now().await;
                }
                got
            }));
        }
    }
    let mut claimed = Vec::new();
    for w in workers {
        claimed.extend(w.await.unwrap());
    }
    assert_eq!(claimed.len(), 30, "{claimed:?}");
    let distinct: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(
        distinct,
        ids.iter().copied().collect::<HashSet<_>>(),
        "each target once"
    );
    for h in &handles {
        assert_eq!(claim(h, task.id, "acc-late", t(11)).await, None);
    }
    let counts = db.store.target_counts(task.id, t(11)).await.unwrap();
    assert_eq!(
        counts,
        TargetCounts {
            in_progress: 30,
            ..TargetCounts::default()
        }
    );
}

async fn claims_respect_retry_times_and_pins(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, ids) = running_task(s, 3).await;

    // Lowest id first, under a lease until now + 30 s.
    let first = claim(s, task.id, "acc-a", t(10)).await.unwrap();
    assert_eq!((first.target.id, first.epoch), (ids[0], 1));
    assert_eq!(
        lease_columns(&db, ids[0]).await,
        (Some("acc-a".to_string()), 1, None, true, false)
    );
    // Given back: not before t(70), no pin, no attempt counted.
    assert!(s
        .settle_target(&give_back(&first, t(11), Some(t(70)), None))
        .await
        .unwrap());
    assert_eq!(lease_columns(&db, ids[0]).await, (None, 1, None, false, true));
    let back = target(s, user(1), task.id, ids[0]).await;
    assert_eq!(
        (back.status, back.attempts, back.reason.as_deref(), back.processed_at),
        (TargetStatus::Pending, 0, Some("flood_wait"), None)
    );

    // Given back pinned to acc-a (an unknown message outcome), due at once.
    let second = claim(s, task.id, "acc-a", t(12)).await.unwrap();
    assert_eq!(second.target.id, ids[1]);
    let mut pinned = give_back(&second, t(13), None, Some("acc-a"));
    pinned.count_attempt = true;
    assert!(s.settle_target(&pinned).await.unwrap());

    // acc-b gets neither the waiting one nor the one pinned to acc-a.
    let third = claim(s, task.id, "acc-b", t(14)).await.unwrap();
    assert_eq!(third.target.id, ids[2]);
    assert_eq!(claim(s, task.id, "acc-b", t(15)).await, None);
    let counts = s.target_counts(task.id, t(15)).await.unwrap();
    assert_eq!(
        (counts.due, counts.waiting, counts.next_due_at, counts.in_progress),
        (1, 1, Some(t(70)), 1)
    );
    // acc-a gets its pinned one back, with the attempt counted.
    let again = claim(s, task.id, "acc-a", t(16)).await.unwrap();
    assert_eq!(
        (
            again.target.id,
            again.epoch,
            again.attempts,
            again.pinned_account.as_deref()
        ),
        (ids[1], 2, 1, Some("acc-a"))
    );
    assert_eq!(
        claim(s, task.id, "acc-a", t(17)).await,
        None,
        "the first is not due yet"
    );
    // At its time, anyone may take the first.
    let later = claim(s, task.id, "acc-b", t(70)).await.unwrap();
    assert_eq!((later.target.id, later.epoch), (ids[0], 2));
    assert_eq!(claim(s, task.id, "acc-a", t(71)).await, None);
    // A claim of another task's targets takes nothing of this one.
    let (other, _) = running_task(s, 1).await;
    let theirs = claim(s, other.id, "acc-a", t(72)).await.unwrap();
    assert_eq!(theirs.target.task_id, other.id);
}

async fn an_expired_lease_is_reclaimed_and_the_stale_claim_cannot_settle(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, ids) = running_task(s, 1).await;

    // Pinned to acc-a first, so the reclaim can show it keeps the pin.
    let c1 = claim(s, task.id, "acc-a", t(10)).await.unwrap();
    assert!(s
        .settle_target(&give_back(&c1, t(11), None, Some("acc-a")))
        .await
        .unwrap());
    let stale = s.claim_target(task.id, "acc-a", t(20), t(50)).await.unwrap().unwrap();
    assert_eq!(stale.epoch, 2);

    // Held while its lease runs; holding extends it, never shortens it.
    assert_eq!(
        s.hold_claim(task.id, ids[0], 2, t(30), t(40)).await.unwrap(),
        Some(Some("acc-a".into()))
    );
    assert_eq!(s.reclaim_expired_targets(t(45)).await.unwrap(), 0, "still until t(50)");
    assert_eq!(
        s.hold_claim(task.id, ids[0], 1, t(30), t(60)).await.unwrap(),
        None,
        "an older epoch"
    );

    // Not expired yet (lease_until is not before now).
    assert_eq!(s.reclaim_expired_targets(t(49)).await.unwrap(), 0);
    assert_eq!(s.reclaim_expired_targets(t(50)).await.unwrap(), 0);
    assert_eq!(s.reclaim_expired_targets(t(51)).await.unwrap(), 1);
    assert_eq!(
        lease_columns(&db, ids[0]).await,
        (None, 2, Some("acc-a".to_string()), false, false),
        "lease cleared, epoch and pin kept"
    );
    assert_eq!(target(s, user(1), task.id, ids[0]).await.status, TargetStatus::Pending);

    // Still pinned: only acc-a takes it again, with a higher epoch.
    assert_eq!(claim(s, task.id, "acc-b", t(52)).await, None);
    let fresh = claim(s, task.id, "acc-a", t(52)).await.unwrap();
    assert_eq!((fresh.target.id, fresh.epoch), (ids[0], 3));

    // The worker of the expired lease comes back: its claim no longer holds (it makes no call), even
    // when it asks at a moment its old lease would still have covered.
    assert_eq!(s.hold_claim(task.id, ids[0], 2, t(53), t(83)).await.unwrap(), None);
    assert_eq!(s.hold_claim(task.id, ids[0], 2, t(40), t(83)).await.unwrap(), None);
    // A claim whose lease ran out no longer holds, even before anyone reclaimed it.
    let fresh_until = t(52) + Duration::seconds(30);
    assert_eq!(
        s.hold_claim(task.id, ids[0], 3, fresh_until + Duration::seconds(1), t(200))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.hold_claim(task.id, ids[0], 3, fresh_until, fresh_until)
            .await
            .unwrap(),
        Some(Some("acc-a".into()))
    );

    // The worker of the expired lease comes back: its settlement changes nothing.
    let before_task = s.engine_task(task.id).await.unwrap().unwrap();
    let before_target = target(s, user(1), task.id, ids[0]).await;
    assert!(!s
        .settle_target(&settle_final(&stale, TargetStatus::Succeeded, "ok", t(53)))
        .await
        .unwrap());
    assert!(!s.settle_target(&give_back(&stale, t(53), None, None)).await.unwrap());
    assert_eq!(s.engine_task(task.id).await.unwrap().unwrap(), before_task);
    assert_eq!(target(s, user(1), task.id, ids[0]).await, before_target);
    assert_eq!(
        lease_columns(&db, ids[0]).await,
        (Some("acc-a".to_string()), 3, Some("acc-a".to_string()), true, false)
    );
    assert!(log_rows(&db).await.is_empty(), "no log rows of a stale claim");

    // The current claim settles.
    assert!(s
        .settle_target(&settle_final(&fresh, TargetStatus::Succeeded, "ok", t(54)))
        .await
        .unwrap());
    assert_eq!(
        s.engine_task(task.id).await.unwrap().unwrap().counters.completed_count,
        1
    );
    assert_eq!(
        s.reclaim_expired_targets(t(10_000)).await.unwrap(),
        0,
        "a settled target is not reclaimed"
    );
}

async fn settlements_end_targets_with_counters_and_logs(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, ids) = running_task(s, 6).await;
    let mut claims = Vec::new();
    for i in 0..6 {
        claims.push(claim(s, task.id, "acc-a", t(10 + i)).await.unwrap());
    }
    let endings = [
        (TargetStatus::Succeeded, "ok"),
        (TargetStatus::AlreadyDone, "already_participant"),
        (TargetStatus::Failed, "privacy_restricted"),
        (TargetStatus::Unknown, "timeout"),
        (TargetStatus::Skipped, "do_not_contact"),
    ];
    for (i, (status, outcome)) in endings.iter().enumerate() {
        let mut settlement = settle_final(&claims[i], *status, outcome, t(100 + i as i64));
        if i == 0 {
            settlement
                .logs
                .insert(0, log(Some(ids[0]), "resolve_username", "SUCCESS", "resolved"));
        }
        if *status == TargetStatus::Skipped {
            settlement.count_attempt = false;
        }
        assert!(s.settle_target(&settlement).await.unwrap());
        // Once only.
        assert!(!s.settle_target(&settlement).await.unwrap(), "{status:?} settled twice");
    }
    // A settlement must end or give back.
    let odd = s
        .settle_target(&settle_final(&claims[5], TargetStatus::InProgress, "?", t(200)))
        .await;
    assert!(matches!(odd, Err(StoreError::Refused(_))), "{odd:?}");

    let after = s.engine_task(task.id).await.unwrap().unwrap();
    let c = after.counters;
    assert_eq!(
        (c.target_count, c.completed_count, c.failed_count, c.skipped_count),
        (6, 2, 2, 1)
    );
    assert_eq!(after.updated_at, t(104));
    assert!(after.version > task.version);

    let stored = targets(s, user(1), task.id).await;
    for (i, (status, outcome)) in endings.iter().enumerate() {
        let tg = &stored[i];
        assert_eq!(tg.id, ids[i]);
        assert_eq!((tg.status, tg.reason.as_deref()), (*status, Some(*outcome)));
        assert_eq!(tg.processed_at, Some(t(100 + i as i64)));
        let attempts = if *status == TargetStatus::Skipped { 0 } else { 1 };
        assert_eq!(tg.attempts, attempts, "{status:?}");
        assert_eq!(lease_columns(&db, tg.id).await, (None, 1, None, false, false));
    }
    assert_eq!(stored[5].status, TargetStatus::InProgress);

    let logs = log_rows(&db).await;
    let expected: Vec<LogRow> = std::iter::once((
        task.id,
        Some(ids[0]),
        "acc-a".to_string(),
        "resolve_username".to_string(),
        "SUCCESS".to_string(),
        json!({ "outcome": "resolved" }),
    ))
    .chain(endings.iter().enumerate().map(|(i, (_, outcome))| {
        (
            task.id,
            Some(ids[i]),
            "acc-a".to_string(),
            "invite".to_string(),
            "SUCCESS".to_string(),
            json!({ "outcome": outcome }),
        )
    }))
    .collect();
    assert_eq!(logs, expected);

    let counts = s.target_counts(task.id, t(300)).await.unwrap();
    assert_eq!(
        counts,
        TargetCounts {
            in_progress: 1,
            succeeded: 1,
            already_done: 1,
            failed: 1,
            skipped: 1,
            unknown: 1,
            ..TargetCounts::default()
        }
    );
    assert_eq!((counts.open(), counts.total()), (1, 6));
}

async fn ending_open_targets_leaves_claimed_ones_alone(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, ids) = running_task(s, 5).await;
    let done = claim(s, task.id, "acc-a", t(10)).await.unwrap();
    assert!(s
        .settle_target(&settle_final(&done, TargetStatus::Succeeded, "ok", t(11)))
        .await
        .unwrap());
    let busy = claim(s, task.id, "acc-a", t(12)).await.unwrap();
    let waiting = claim(s, task.id, "acc-a", t(13)).await.unwrap();
    assert!(s
        .settle_target(&give_back(&waiting, t(14), Some(t(999)), None))
        .await
        .unwrap());

    let odd = s.end_open_targets(task.id, TargetStatus::Pending, "?", t(20)).await;
    assert!(matches!(odd, Err(StoreError::Refused(_))), "{odd:?}");
    // Two never claimed and the one waiting: three.
    assert_eq!(
        s.end_open_targets(task.id, TargetStatus::Skipped, "task_cancelled", t(20))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.end_open_targets(task.id, TargetStatus::Skipped, "task_cancelled", t(21))
            .await
            .unwrap(),
        0
    );
    let c = s.engine_task(task.id).await.unwrap().unwrap().counters;
    assert_eq!((c.completed_count, c.failed_count, c.skipped_count), (1, 0, 3));
    let stored = targets(s, user(1), task.id).await;
    let view: Vec<_> = stored
        .iter()
        .map(|t| (t.id, t.status, t.reason.as_deref(), t.processed_at))
        .collect();
    assert_eq!(
        view,
        vec![
            (ids[0], TargetStatus::Succeeded, Some("ok"), Some(t(11))),
            (ids[1], TargetStatus::InProgress, None, None),
            (ids[2], TargetStatus::Skipped, Some("task_cancelled"), Some(t(20))),
            (ids[3], TargetStatus::Skipped, Some("task_cancelled"), Some(t(20))),
            (ids[4], TargetStatus::Skipped, Some("task_cancelled"), Some(t(20))),
        ]
    );
    // The one in progress still settles, and is counted then.
    assert!(s
        .settle_target(&settle_final(&busy, TargetStatus::Failed, "user_blocked", t(22)))
        .await
        .unwrap());
    let c = s.engine_task(task.id).await.unwrap().unwrap().counters;
    assert_eq!((c.completed_count, c.failed_count, c.skipped_count), (1, 1, 3));
    // Failed ends count as failed.
    let (other, _) = running_task(s, 2).await;
    assert_eq!(
        s.end_open_targets(other.id, TargetStatus::Failed, "circuit_breaker", t(30))
            .await
            .unwrap(),
        2
    );
    let c = s.engine_task(other.id).await.unwrap().unwrap().counters;
    assert_eq!((c.completed_count, c.failed_count, c.skipped_count), (0, 2, 0));
}

async fn target_counts_split_due_and_waiting(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, _) = running_task(s, 6).await;
    assert_eq!(
        s.target_counts(task.id, t(5)).await.unwrap(),
        TargetCounts {
            due: 6,
            ..TargetCounts::default()
        }
    );
    let a = claim(s, task.id, "acc-a", t(10)).await.unwrap();
    let b = claim(s, task.id, "acc-a", t(10)).await.unwrap();
    let c = claim(s, task.id, "acc-a", t(10)).await.unwrap();
    let _busy = claim(s, task.id, "acc-a", t(10)).await.unwrap();
    assert!(s
        .settle_target(&give_back(&a, t(11), Some(t(120)), None))
        .await
        .unwrap());
    assert!(s.settle_target(&give_back(&b, t(11), Some(t(60)), None)).await.unwrap());
    assert!(s
        .settle_target(&settle_final(&c, TargetStatus::Succeeded, "ok", t(11)))
        .await
        .unwrap());

    let counts = s.target_counts(task.id, t(30)).await.unwrap();
    assert_eq!(
        counts,
        TargetCounts {
            due: 2,
            waiting: 2,
            next_due_at: Some(t(60)),
            in_progress: 1,
            succeeded: 1,
            ..TargetCounts::default()
        }
    );
    assert_eq!((counts.open(), counts.total()), (5, 6));
    // Exactly at its time a target is due.
    let counts = s.target_counts(task.id, t(60)).await.unwrap();
    assert_eq!((counts.due, counts.waiting, counts.next_due_at), (3, 1, Some(t(120))));
    let counts = s.target_counts(task.id, t(500)).await.unwrap();
    assert_eq!((counts.due, counts.waiting, counts.next_due_at), (4, 0, None));
    assert_eq!(
        s.target_counts(task.id + 1000, t(0)).await.unwrap(),
        TargetCounts::default()
    );
}

async fn recent_outcomes_are_the_newest_invites_and_messages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, ids) = running_task(s, 1).await;
    let (other, _) = running_task(s, 1).await;
    assert!(s.recent_outcomes(task.id, 5).await.unwrap().is_empty());

    s.append_logs(
        task.id,
        &[
            log(Some(ids[0]), "invite", "SUCCESS", "ok"),
            log(None, "channel_lookup", "FAILED", "channel_private"),
            log(Some(ids[0]), "message", "FAILED", "peer_flood"),
        ],
        t(10),
    )
    .await
    .unwrap();
    s.append_logs(other.id, &[log(None, "invite", "FAILED", "elsewhere")], t(11))
        .await
        .unwrap();
    s.append_logs(task.id, &[], t(12)).await.unwrap();
    let mut no_outcome = log(None, "invite", "PENDING", "");
    no_outcome.details = json!({ "note": "no outcome" });
    s.append_logs(
        task.id,
        &[
            log(None, "invite", "FAILED", "privacy_restricted"),
            no_outcome,
            log(None, "resolve_username", "FAILED", "username_not_occupied"),
            log(None, "message", "SUCCESS", "sent"),
        ],
        t(13),
    )
    .await
    .unwrap();

    assert_eq!(
        s.recent_outcomes(task.id, 3).await.unwrap(),
        vec!["sent", "privacy_restricted", "peer_flood"]
    );
    assert_eq!(
        s.recent_outcomes(task.id, 10).await.unwrap(),
        vec!["sent", "privacy_restricted", "peer_flood", "ok"]
    );
    assert!(s.recent_outcomes(task.id, 0).await.unwrap().is_empty());
    assert_eq!(s.recent_outcomes(other.id, 10).await.unwrap(), vec!["elsewhere"]);

    let logs = log_rows(&db).await;
    assert_eq!(logs.len(), 8);
    assert_eq!(
        logs[1],
        (
            task.id,
            None,
            "acc-a".to_string(),
            "channel_lookup".to_string(),
            "FAILED".to_string(),
            json!({ "outcome": "channel_private" })
        )
    );
}

async fn roster_version(s: &SharedStore, task_id: i64) -> i64 {
    let tasks = s.engine_task_versions().await.unwrap();
    tasks
        .iter()
        .find(|t| t.id == task_id)
        .expect("a running task")
        .roster_version
}

async fn task_accounts_keep_channel_exclusion_and_counts_apart(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, _) = running_task(s, 2).await;
    let (other, _) = running_task(s, 1).await;
    assert!(s.task_accounts(task.id).await.unwrap().is_empty());
    let (version, other_version) = (roster_version(s, task.id).await, roster_version(s, other.id).await);

    // A channel found: the roster of every task with that channel moves.
    let channel = json!({ "kind": "supergroup", "id": 1001, "access_hash": 42, "title": "Club" });
    s.remember_task_channel(task.id, "acc-a", "telegram", &channel, t(10))
        .await
        .unwrap();
    assert_eq!(roster_version(s, task.id).await, version + 1);
    assert_eq!(roster_version(s, other.id).await, other_version + 1);
    // Counting moves no roster and leaves status and channel alone.
    s.count_task_account_use(task.id, "acc-a", "telegram", "success", t(11))
        .await
        .unwrap();
    s.count_task_account_use(task.id, "acc-a", "telegram", "success", t(11))
        .await
        .unwrap();
    s.count_task_account_use(task.id, "acc-a", "telegram", "peer_flood", t(11))
        .await
        .unwrap();
    s.count_task_account_use(task.id, "acc-b", "telegram", "privacy_restricted", t(11))
        .await
        .unwrap();
    assert_eq!(roster_version(s, task.id).await, version + 1);
    let expected_a = TaskAccount {
        account_id: "acc-a".into(),
        platform: "telegram".into(),
        status: "active".into(),
        channel: Some(channel.clone()),
        stats: json!({ "actions": 3, "outcomes": { "success": 2, "peer_flood": 1 } }),
        last_used_at: None,
    };
    let mut expected_b = TaskAccount {
        account_id: "acc-b".into(),
        platform: "telegram".into(),
        status: "active".into(),
        channel: None,
        stats: json!({ "actions": 1, "outcomes": { "privacy_restricted": 1 } }),
        last_used_at: None,
    };
    assert_eq!(
        s.task_accounts(task.id).await.unwrap(),
        vec![expected_a.clone(), expected_b.clone()]
    );
    assert_eq!(
        s.channel_knowers("@club_of_tests").await.unwrap(),
        vec!["acc-a".to_owned()]
    );
    assert!(s.excluded_accounts(task.id).await.unwrap().is_empty());

    // Excluded, with the reason next to the counts: the channel stays, only this task's roster moves.
    s.exclude_task_account(task.id, "acc-a", "telegram", "no_rights", t(12))
        .await
        .unwrap();
    s.exclude_task_account(task.id, "acc-c", "telegram", "banned_in_channel", t(13))
        .await
        .unwrap();
    assert_eq!(roster_version(s, task.id).await, version + 3);
    assert_eq!(roster_version(s, other.id).await, other_version + 1);
    // A channel found later keeps the exclusion.
    s.remember_task_channel(task.id, "acc-a", "telegram", &channel, t(14))
        .await
        .unwrap();
    let expected_a = TaskAccount {
        status: "excluded".into(),
        stats: json!({ "actions": 3, "outcomes": { "success": 2, "peer_flood": 1 }, "excluded_because": "no_rights" }),
        ..expected_a
    };
    let expected_c = TaskAccount {
        account_id: "acc-c".into(),
        platform: "telegram".into(),
        status: "excluded".into(),
        channel: None,
        stats: json!({ "excluded_because": "banned_in_channel" }),
        last_used_at: None,
    };
    assert_eq!(
        s.task_accounts(task.id).await.unwrap(),
        vec![expected_a.clone(), expected_b.clone(), expected_c.clone()]
    );
    let mut excluded = s.excluded_accounts(task.id).await.unwrap();
    excluded.sort();
    assert_eq!(excluded, vec!["acc-a".to_owned(), "acc-c".to_owned()]);
    assert_eq!(
        s.channel_knowers("@club_of_tests").await.unwrap(),
        vec!["acc-a".to_owned()]
    );

    // A claim marks the account's last use for the task.
    claim(s, task.id, "acc-b", t(20)).await.unwrap();
    expected_b.last_used_at = Some(t(20));
    assert_eq!(
        s.task_accounts(task.id).await.unwrap(),
        vec![expected_a, expected_b, expected_c]
    );
    assert!(s.task_accounts(other.id).await.unwrap().is_empty());
    // Another task with the same channel: nobody is excluded there; another channel has no knowers.
    assert!(s.excluded_accounts(other.id).await.unwrap().is_empty());
    assert!(s.channel_knowers("@another_club").await.unwrap().is_empty());
    assert_eq!(s.known_channel("acc-a", "@club_of_tests").await.unwrap(), Some(channel));
    assert_eq!(s.known_channel("acc-b", "@club_of_tests").await.unwrap(), None);
    assert_eq!(s.known_channel("acc-a", "@another_club").await.unwrap(), None);
}

async fn the_do_not_contact_check_matches_any_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let listed = Identifier::Username(Username::parse("Blocked_Guy").unwrap());
    let entry = NewDncEntry {
        identifier: listed.clone(),
        reason: Some("asked".into()),
    };
    s.add_do_not_contact(user(1), &[entry], t(0), &meta("req-dnc"))
        .await
        .unwrap();

    let key = listed.dedup_key();
    assert_eq!(key, "u:blocked_guy");
    let keys = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    assert!(s.on_do_not_contact(user(1), &keys(&[&key])).await.unwrap());
    assert!(s
        .on_do_not_contact(user(1), &keys(&["i:100200300", &key, "p:+79123456789"]))
        .await
        .unwrap());
    assert!(!s
        .on_do_not_contact(user(1), &keys(&["i:100200300", "u:someone_else"]))
        .await
        .unwrap());
    assert!(!s.on_do_not_contact(user(1), &[]).await.unwrap());
    assert!(
        !s.on_do_not_contact(user(2), &keys(&[&key])).await.unwrap(),
        "another user's list"
    );
}

async fn a_pin_to_an_account_that_can_no_longer_send_ends_as_unknown(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, ids) = running_task(s, 3).await;
    let first = claim(s, task.id, "acc-a", t(10)).await.unwrap();
    assert_eq!(
        s.hold_claim(task.id, first.target.id, first.epoch, t(10), t(10))
            .await
            .unwrap(),
        Some(None)
    );
    assert_eq!(
        s.hold_claim(task.id, first.target.id, first.epoch - 1, t(10), t(10))
            .await
            .unwrap(),
        None
    );
    assert!(s
        .pin_target(task.id, first.target.id, first.epoch, "acc-a")
        .await
        .unwrap());
    assert!(!s
        .pin_target(task.id, first.target.id, first.epoch - 1, "acc-b")
        .await
        .unwrap());
    assert_eq!(
        s.hold_claim(task.id, first.target.id, first.epoch, t(10), t(10))
            .await
            .unwrap(),
        Some(Some("acc-a".to_owned()))
    );
    let mut pinned = give_back(&first, t(11), None, Some("acc-a"));
    pinned.count_attempt = true;
    assert!(s.settle_target(&pinned).await.unwrap());
    assert!(
        s.hold_claim(task.id, first.target.id, first.epoch, t(11), t(11))
            .await
            .unwrap()
            .is_none(),
        "a settled claim is no longer current"
    );
    let second = claim(s, task.id, "acc-b", t(12)).await.unwrap();
    assert!(s
        .settle_target(&give_back(&second, t(13), None, Some("acc-b")))
        .await
        .unwrap());

    // acc-a still sends: nothing ends; then only acc-b is usable: acc-a's pin ends, acc-b's stays.
    let usable = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        s.end_orphaned_pins(task.id, &usable(&["acc-a", "acc-b"]), "gone", t(14))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.end_orphaned_pins(task.id, &usable(&["acc-b"]), "unknown_account_gone", t(15))
            .await
            .unwrap(),
        1
    );
    let ended = target(s, user(1), task.id, ids[0]).await;
    assert_eq!(
        (ended.status, ended.reason.as_deref()),
        (TargetStatus::Unknown, Some("unknown_account_gone"))
    );
    assert_eq!(target(s, user(1), task.id, ids[1]).await.status, TargetStatus::Pending);
    assert_eq!(
        target(s, user(1), task.id, ids[2]).await.status,
        TargetStatus::Pending,
        "unpinned ones stay"
    );
    // No usable account at all: every pin ends.
    assert_eq!(
        s.end_orphaned_pins(task.id, &[], "unknown_account_gone", t(16))
            .await
            .unwrap(),
        1
    );
    let task = s.engine_task(task.id).await.unwrap().unwrap();
    assert_eq!(task.counters.failed_count, 2, "counted as failed");
}

/// Workers finding a task's channel and excluding accounts from it at once: every write lands (none is
/// refused as a deadlock), and every one moves the rosters it should.
async fn concurrent_roster_writes_all_land(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, _) = running_task(s, 1).await;
    let (other, _) = running_task(s, 1).await;
    let (version, other_version) = (roster_version(s, task.id).await, roster_version(s, other.id).await);
    let channel = json!({ "kind": "supergroup", "id": 1001, "access_hash": 42, "title": "Club" });
    const ROUNDS: i64 = 5;
    const FOUND: i64 = 8;
    const EXCLUDED: i64 = 2;
    for round in 0..ROUNDS {
        let mut writes = Vec::new();
        for i in 0..FOUND + EXCLUDED {
            let (s, channel) = (s.clone(), channel.clone());
            // Half the finds on each task (one channel, so both rosters move either way).
            let on = if i % 2 == 0 { task.id } else { other.id };
            let account = format!("acc-{round}-{i}");
            writes.push(tokio::spawn(async move {
                if i < FOUND {
                    s.remember_task_channel(on, &account, "telegram", &channel, t(10)).await
                } else {
                    s.exclude_task_account(task.id, &account, "telegram", "no_rights", t(10))
                        .await
                }
            }));
        }
        for w in writes {
            w.await.unwrap().expect("a roster write lands");
        }
    }
    assert_eq!(roster_version(s, task.id).await, version + ROUNDS * (FOUND + EXCLUDED));
    assert_eq!(roster_version(s, other.id).await, other_version + ROUNDS * FOUND);
    assert_eq!(
        s.channel_knowers("@club_of_tests").await.unwrap().len() as i64,
        ROUNDS * FOUND
    );
    assert_eq!(
        s.excluded_accounts(task.id).await.unwrap().len() as i64,
        ROUNDS * EXCLUDED
    );
}

/// A paused task deleted while its jobs in flight settle: the deletion and every settlement land or
/// find nothing to do (the task gone); none is refused as a deadlock.
async fn deleting_a_task_while_its_jobs_settle_never_deadlocks(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    const IN_FLIGHT: usize = 6;
    for round in 0..8 {
        let (task, _) = running_task(s, IN_FLIGHT).await;
        let mut claims = Vec::new();
        for i in 0..IN_FLIGHT {
            claims.push(claim(s, task.id, &format!("acc-{i}"), t(10)).await.unwrap());
        }
        let paused = s
            .transition_task(
                user(1),
                task.id,
                &[InProgress],
                Paused,
                None,
                "pause",
                t(11),
                &meta("req-pause"),
            )
            .await
            .unwrap();
        assert!(matches!(paused, Transition::Done(_)), "{paused:?}");
        let mut writes = Vec::new();
        for (i, c) in claims.into_iter().enumerate() {
            let store = s.clone();
            writes.push(tokio::spawn(async move {
                let settlement = if i % 2 == 0 {
                    settle_final(&c, TargetStatus::Succeeded, "success", t(12))
                } else {
                    give_back(&c, t(12), None, None)
                };
                store.settle_target(&settlement).await.map(|_| ())
            }));
            if i == IN_FLIGHT / 2 {
                let store = s.clone();
                let id = task.id;
                writes.push(tokio::spawn(async move {
                    store
                        .delete_task(user(1), id, t(12), &meta("req-delete"))
                        .await
                        .map(|d| {
                            assert_eq!(d, store::DeleteOutcome::Deleted);
                        })
                }));
            }
        }
        for w in writes {
            w.await.unwrap().unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        assert!(s.engine_task(task.id).await.unwrap().is_none());
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod engine_on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::$name(super::Backend::Sqlite).await }
            )*
        }
        mod engine_on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::$name(super::Backend::Postgres).await }
            )*
        }
    };
}

on_both_backends!(
    a_pin_to_an_account_that_can_no_longer_send_ends_as_unknown,
    lifecycle_moves_are_conditional_audited_and_timed,
    engine_moves_are_conditional_and_audited_as_the_systems,
    the_scheduler_sees_running_and_scheduled_tasks,
    concurrent_claims_hand_each_target_out_once,
    claims_respect_retry_times_and_pins,
    an_expired_lease_is_reclaimed_and_the_stale_claim_cannot_settle,
    settlements_end_targets_with_counters_and_logs,
    ending_open_targets_leaves_claimed_ones_alone,
    target_counts_split_due_and_waiting,
    recent_outcomes_are_the_newest_invites_and_messages,
    task_accounts_keep_channel_exclusion_and_counts_apart,
    concurrent_roster_writes_all_land,
    deleting_a_task_while_its_jobs_settle_never_deadlocks,
    the_do_not_contact_check_matches_any_key,
);
