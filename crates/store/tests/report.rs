//! Reports and retention on both backends: the execution log paged newest first and filtered, outcomes
//! grouped by reason, outcome, account and hour, targets read in keyset pages with the account that
//! settled them, another user's task answering nothing, and the retention cleanup deleting old log
//! rows in batches — and nothing else (targets and the Account Manager's ledger stay).

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::{
    audience::{ImportReport, TargetDraft, TargetSource, TargetStatus},
    task::{ActionType, Platform, Priority, Task, TaskSpec, TaskStatus, UserId},
    ChannelRef, Username,
};
use serde_json::{json, Map};
use store::{
    AccountKind, Decision, GrantRequest, HourCount, ImportOutcome, ImportRequest, ImportStart, LogQuery, NewAccount,
    NewLog, OutcomeCount, PageRequest, ReasonCount, RequestMeta, Settlement, SharedStore, Transition, Verdict,
};
use test_db::{Backend, TestDb};

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn user(id: i64) -> UserId {
    UserId::new(id).unwrap()
}

fn meta() -> RequestMeta {
    RequestMeta {
        request_id: "req-report".to_string(),
        client_addr: None,
    }
}

/// A started invite task of user 1 with `n` targets (`person000`, …); their ids, lowest first.
async fn running_task(s: &SharedStore, n: usize) -> (Task, Vec<i64>) {
    let spec = TaskSpec {
        name: "report".to_string(),
        description: None,
        platform: Platform::Telegram,
        action_type: ActionType::InviteToGroup,
        target_channel: Some(ChannelRef::parse("@club_of_tests").unwrap()),
        message_template: None,
        priority: Priority::Normal,
        scheduled_start: None,
        settings: Map::new(),
    };
    let task = s.create_task(user(1), &spec, t(0), &meta()).await.unwrap();
    let request = ImportRequest {
        task_id: task.id,
        source: TargetSource::Manual,
        file_name: None,
        dry_run: false,
        max_targets: 100_000,
    };
    let ImportStart::Started(mut sink) = s.begin_import(user(1), request, t(0), &meta()).await.unwrap() else {
        panic!("the task takes an import");
    };
    let drafts = (0..n)
        .map(|i| TargetDraft {
            row: i + 1,
            username: Some(Username::parse(&format!("person{i:03}")).unwrap()),
            user_id: None,
            user_id_is_hint: false,
            phone: None,
            first_name: Some(format!("Name {i}")),
            last_name: None,
            extra: Map::new(),
        })
        .collect();
    let mut report = ImportReport {
        total_rows: n,
        ..ImportReport::default()
    };
    sink.add(drafts, &mut report).await.unwrap();
    assert!(matches!(sink.finish(report).await.unwrap(), ImportOutcome::Done { .. }));
    let started = s
        .transition_task(
            user(1),
            task.id,
            &[TaskStatus::Pending],
            TaskStatus::InProgress,
            None,
            "start",
            t(1),
            &meta(),
        )
        .await
        .unwrap();
    let Transition::Done(task) = started else {
        panic!("started: {started:?}")
    };
    let ids = s
        .report_targets(user(1), task.id, 0, 1000)
        .await
        .unwrap()
        .unwrap()
        .iter()
        .map(|o| o.target.id)
        .collect();
    (task, ids)
}

fn log(target_id: Option<i64>, account: &str, action: &str, status: &str, outcome: &str) -> NewLog {
    NewLog {
        target_id,
        account_id: account.to_string(),
        action: action.to_string(),
        status: status.to_string(),
        details: json!({ "outcome": outcome, "detail": format!("{action} {outcome}") }),
    }
}

/// Claims the next target for `account` at `now` and ends it with `status`, as the worker does: the
/// result names the account, with one log row of the call.
async fn settle_next(
    s: &SharedStore,
    task_id: i64,
    account: &str,
    status: TargetStatus,
    outcome: &str,
    now: DateTime<Utc>,
) {
    let claim = s
        .claim_target(task_id, account, now, now + Duration::seconds(30))
        .await
        .unwrap()
        .expect("a target is due");
    let call_status = if matches!(status, TargetStatus::Succeeded | TargetStatus::AlreadyDone) {
        "SUCCESS"
    } else {
        "FAILED"
    };
    let settlement = Settlement {
        task_id,
        target_id: claim.target.id,
        epoch: claim.epoch,
        now,
        status,
        reason: Some(outcome.to_string()),
        next_attempt_at: None,
        pin_account: None,
        count_attempt: true,
        result: json!({ "outcome": outcome, "detail": "said so", "account_id": account }),
        logs: vec![log(Some(claim.target.id), account, "invite", call_status, outcome)],
    };
    assert!(s.settle_target(&settlement).await.unwrap());
}

fn page(page: u32, page_size: u32) -> PageRequest {
    PageRequest { page, page_size }
}

fn all_logs() -> LogQuery {
    LogQuery {
        statuses: vec![],
        account_id: None,
        target_id: None,
        since: None,
        until: None,
        page: page(1, 100),
    }
}

async fn the_log_is_paged_newest_first_and_filtered(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, ids) = running_task(s, 3).await;
    // Six rows an hour apart: accounts a and b, three statuses, two targets and none.
    let rows = [
        (0, log(Some(ids[0]), "acc-a", "channel_lookup", "SUCCESS", "success")),
        (1, log(Some(ids[0]), "acc-a", "invite", "SUCCESS", "success")),
        (2, log(Some(ids[1]), "acc-b", "invite", "FAILED", "privacy_restricted")),
        (3, log(Some(ids[1]), "acc-b", "do_not_contact", "SKIPPED", "success")),
        (4, log(None, "acc-a", "connect", "FAILED", "transient")),
        (5, log(Some(ids[2]), "acc-b", "invite", "SUCCESS", "already_done")),
    ];
    for (hour, row) in &rows {
        s.append_logs(task.id, std::slice::from_ref(row), t(3600 * hour))
            .await
            .unwrap();
    }
    let every = s.task_logs(user(1), task.id, &all_logs()).await.unwrap().unwrap();
    assert_eq!(every.total, 6);
    let times: Vec<DateTime<Utc>> = every.items.iter().map(|l| l.created_at).collect();
    assert_eq!(
        times,
        (0..6).rev().map(|h| t(3600 * h)).collect::<Vec<_>>(),
        "newest first"
    );
    let newest = &every.items[0];
    assert_eq!(
        (
            newest.task_id,
            newest.target_id,
            newest.account_id.as_str(),
            newest.action.as_str(),
            newest.status.as_str()
        ),
        (task.id, Some(ids[2]), "acc-b", "invite", "SUCCESS")
    );
    assert_eq!(
        newest.details,
        json!({"outcome": "already_done", "detail": "invite already_done"})
    );

    let second = s
        .task_logs(
            user(1),
            task.id,
            &LogQuery {
                page: page(2, 4),
                ..all_logs()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((second.total, second.items.len()), (6, 2));
    assert_eq!(second.items[0].created_at, t(3600));

    let failed = LogQuery {
        statuses: vec!["FAILED".into(), "SKIPPED".into()],
        ..all_logs()
    };
    let got = s.task_logs(user(1), task.id, &failed).await.unwrap().unwrap();
    let statuses: Vec<&str> = got.items.iter().map(|l| l.status.as_str()).collect();
    assert_eq!(statuses, ["FAILED", "SKIPPED", "FAILED"]);

    let of_b = LogQuery {
        account_id: Some("acc-b".into()),
        target_id: Some(ids[1]),
        ..all_logs()
    };
    let got = s.task_logs(user(1), task.id, &of_b).await.unwrap().unwrap();
    assert_eq!(got.total, 2);
    assert!(got
        .items
        .iter()
        .all(|l| l.account_id == "acc-b" && l.target_id == Some(ids[1])));

    // since is inclusive, until exclusive.
    let window = LogQuery {
        since: Some(t(3600)),
        until: Some(t(3 * 3600)),
        ..all_logs()
    };
    let got = s.task_logs(user(1), task.id, &window).await.unwrap().unwrap();
    assert_eq!(
        got.items.iter().map(|l| l.created_at).collect::<Vec<_>>(),
        [t(7200), t(3600)]
    );

    assert!(
        s.task_logs(user(2), task.id, &all_logs()).await.unwrap().is_none(),
        "not user 2's"
    );
    assert!(s
        .task_logs(user(1), task.id + 100, &all_logs())
        .await
        .unwrap()
        .is_none());
}

async fn outcomes_are_grouped_by_reason_outcome_account_and_hour(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, _) = running_task(s, 6).await;
    settle_next(s, task.id, "acc-a", TargetStatus::Succeeded, "success", t(60)).await;
    settle_next(s, task.id, "acc-a", TargetStatus::Failed, "privacy_restricted", t(120)).await;
    settle_next(s, task.id, "acc-b", TargetStatus::Succeeded, "success", t(3600 + 5)).await;
    settle_next(
        s,
        task.id,
        "acc-b",
        TargetStatus::Failed,
        "privacy_restricted",
        t(3600 + 50),
    )
    .await;
    // Ended by no account's call: the channel filled up.
    s.end_open_targets(task.id, TargetStatus::Skipped, "channel_full", t(7200))
        .await
        .unwrap();
    let stats = s.task_stats(user(1), task.id).await.unwrap().unwrap();
    assert_eq!(
        stats.by_reason,
        vec![
            ReasonCount {
                status: "failed".into(),
                reason: Some("privacy_restricted".into()),
                count: 2
            },
            ReasonCount {
                status: "skipped".into(),
                reason: Some("channel_full".into()),
                count: 2
            },
            ReasonCount {
                status: "succeeded".into(),
                reason: Some("success".into()),
                count: 2
            },
        ]
    );
    assert_eq!(
        stats.by_outcome,
        vec![
            OutcomeCount {
                action: "invite".into(),
                status: "FAILED".into(),
                outcome: Some("privacy_restricted".into()),
                count: 2
            },
            OutcomeCount {
                action: "invite".into(),
                status: "SUCCESS".into(),
                outcome: Some("success".into()),
                count: 2
            },
        ]
    );
    let by_account: Vec<(Option<&str>, &str, i64)> = stats
        .by_account
        .iter()
        .map(|a| (a.account_id.as_deref(), a.status.as_str(), a.count))
        .collect();
    assert_eq!(
        by_account,
        [
            (None, "skipped", 2),
            (Some("acc-a"), "failed", 1),
            (Some("acc-a"), "succeeded", 1),
            (Some("acc-b"), "failed", 1),
            (Some("acc-b"), "succeeded", 1),
        ]
    );
    let hour = |h: i64, status: &str, count: i64| HourCount {
        hour: t(3600 * h),
        status: status.into(),
        count,
    };
    assert_eq!(
        stats.by_hour,
        vec![
            hour(0, "FAILED", 1),
            hour(0, "SUCCESS", 1),
            hour(1, "FAILED", 1),
            hour(1, "SUCCESS", 1)
        ]
    );
    assert!(s.task_stats(user(2), task.id).await.unwrap().is_none(), "not user 2's");
}

async fn targets_are_read_in_keyset_pages_with_their_account(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, ids) = running_task(s, 5).await;
    settle_next(s, task.id, "acc-a", TargetStatus::Succeeded, "success", t(60)).await;
    // Claimed and still in flight: the lease names its account.
    s.claim_target(task.id, "acc-b", t(90), t(120)).await.unwrap().unwrap();

    let first = s.report_targets(user(1), task.id, 0, 2).await.unwrap().unwrap();
    assert_eq!(first.iter().map(|o| o.target.id).collect::<Vec<_>>(), ids[..2]);
    let done = &first[0];
    assert_eq!(done.target.status, TargetStatus::Succeeded);
    assert_eq!(done.target.first_name.as_deref(), Some("Name 0"));
    assert_eq!(done.account_id.as_deref(), Some("acc-a"));
    assert_eq!(done.result["outcome"], "success");
    assert_eq!(done.updated_at, t(60));
    assert_eq!(first[1].target.status, TargetStatus::InProgress);
    assert_eq!(first[1].account_id.as_deref(), Some("acc-b"));

    let rest = s.report_targets(user(1), task.id, ids[1], 10).await.unwrap().unwrap();
    assert_eq!(rest.iter().map(|o| o.target.id).collect::<Vec<_>>(), ids[2..]);
    assert!(rest
        .iter()
        .all(|o| o.account_id.is_none() && o.target.status == TargetStatus::Pending));
    assert!(s
        .report_targets(user(1), task.id, ids[4], 10)
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    assert!(
        s.report_targets(user(2), task.id, 0, 10).await.unwrap().is_none(),
        "not user 2's"
    );
}

/// Rows of a table, counted straight from the database.
async fn count_rows(db: &TestDb, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let n = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let n = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

async fn retention_deletes_old_log_rows_in_batches_and_nothing_else(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let (task, ids) = running_task(s, 3).await;
    let account = NewAccount {
        id: "acc-a".into(),
        platform: "telegram".into(),
        name: "A".into(),
        kind: AccountKind::Sandbox,
        session_sealed: None,
        api_id: None,
        api_hash_sealed: None,
        session_facts: json!({}),
    };
    s.create_account(user(1), &account, t(0), &meta()).await.unwrap();
    // Two grants in the ledger, one long ago.
    for at in [t(-40 * 86_400), t(10)] {
        let request = GrantRequest {
            account_id: "acc-a",
            action: "invite",
            channel: Some("@club_of_tests"),
            now: at,
            lookback: Duration::hours(24),
        };
        let granted = s
            .am_grant(&request, &|_| Decision::Grant {
                pause_until: at + Duration::minutes(10),
            })
            .await
            .unwrap();
        assert!(matches!(granted, Verdict::Granted { .. }), "{granted:?}");
    }
    settle_next(s, task.id, "acc-a", TargetStatus::Succeeded, "success", t(20)).await;
    // Five rows 40 days old, two 29 days old, and the settlement's row of now.
    for day in [40, 40, 40, 40, 40, 29, 29] {
        let row = log(Some(ids[1]), "acc-a", "resolve_username", "SUCCESS", "success");
        s.append_logs(task.id, &[row], t(-day * 86_400)).await.unwrap();
    }
    assert_eq!(count_rows(&db, "invite_execution_logs").await, 8);
    let grants_before = count_rows(&db, "am_grants").await;
    let usage_before = s.am_usage("acc-a", None).await.unwrap();
    let task_before = s.engine_task(task.id).await.unwrap().unwrap();

    let cutoff = t(0) - Duration::days(30);
    let mut batches = Vec::new();
    loop {
        let n = s.delete_logs_before(cutoff, 2).await.unwrap();
        batches.push(n);
        if n < 2 {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 1], "five old rows, two a batch");
    let left = s.task_logs(user(1), task.id, &all_logs()).await.unwrap().unwrap();
    assert_eq!(
        left.items.iter().map(|l| l.created_at).collect::<Vec<_>>(),
        [t(20), t(-29 * 86_400), t(-29 * 86_400)],
        "the recent rows stay"
    );
    assert_eq!(
        s.delete_logs_before(cutoff, 2).await.unwrap(),
        0,
        "a second run deletes nothing"
    );

    assert_eq!(
        count_rows(&db, "am_grants").await,
        grants_before,
        "the ledger is not the log"
    );
    assert_eq!(s.am_usage("acc-a", None).await.unwrap(), usage_before);
    assert_eq!(count_rows(&db, "invite_targets").await, 3);
    let task_after = s.engine_task(task.id).await.unwrap().unwrap();
    assert_eq!(task_after.counters, task_before.counters);
    let outcomes = s.report_targets(user(1), task.id, 0, 10).await.unwrap().unwrap();
    assert_eq!(outcomes[0].target.status, TargetStatus::Succeeded);
    assert_eq!(
        outcomes[0].account_id.as_deref(),
        Some("acc-a"),
        "who settled it outlives the log"
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod report_on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::Backend::Sqlite).await }
            )*
        }
        mod report_on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::Backend::Postgres).await }
            )*
        }
    };
}

on_both_backends!(
    the_log_is_paged_newest_first_and_filtered,
    outcomes_are_grouped_by_reason_outcome_account_and_hour,
    targets_are_read_in_keyset_pages_with_their_account,
    retention_deletes_old_log_rows_in_batches_and_nothing_else,
);
