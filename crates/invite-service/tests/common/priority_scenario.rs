//! Priorities on a live engine over the sandbox world: four tasks of three priorities (HIGH, two NORMAL,
//! LOW) share five accounts and run to completion. The order in which the scheduler hands their targets
//! out is stated before anything runs and checked against the world's record of invite calls; the
//! "preempted by task N" reason shows while a higher task holds the accounts and unwinds once it is done.
//!
//! Shared by the in-process HTTP tests (`tests/api/priority.rs`, SQLite and PostgreSQL) and the platform
//! profile (`tests/platform.rs`: an `api` process and two `worker` processes over PostgreSQL, RabbitMQ and
//! Redis); each includes this file with `#[path]` and implements [`ScenarioApi`] for its service.

use std::{
    collections::{BTreeSet, HashMap},
    fmt::Write as _,
    time::{Duration, Instant},
};

use chrono::{DateTime, SecondsFormat, Utc};
use platforms::sandbox::{people::People, WorldConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// How the scenario reaches a running service: over its HTTP API as one user (the owner of every
/// account and task it makes), and to its database, where the sandbox world keeps its record.
pub trait ScenarioApi {
    /// A JSON request without a body; the status and the JSON answer.
    async fn call(&self, method: Method, path: &str) -> (StatusCode, Value);
    /// Registers `n` sandbox accounts.
    async fn sandbox_accounts(&self, n: usize);
    /// Creates a task from `body` with these usernames imported as its audience; its id.
    async fn task_with_targets(&self, body: Value, people: &[String]) -> i64;
    /// Every row of a table as text, for a failure's context.
    async fn dump_table(&self, table: &str) -> String;
    /// The database the service runs on (and the sandbox world with it).
    fn database_url(&self) -> &str;
}

/// Usernames `{prefix}0000`, `{prefix}0001`, …
fn people(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

/// Accounts the four tasks share; also the most jobs in flight at once (one lease per account).
pub const ACCOUNTS: usize = 5;

/// 1 s between two invites of an account; the windows never bind here (an account makes about six
/// invites, a channel gets at most ten), so which task an account serves is decided by priority alone —
/// a per-channel window that bound for one task would send its accounts to the next task down.
/// 10 per 300 s per account keeps under the world's own flood limit for invites.
pub const POLICY: &str = r#"{"telegram": {
    "invite": {"per_account": [{"cap": 10, "period": "300s"}], "per_channel": [{"cap": 50, "period": "60s"}],
               "pause": ["1s", "1s"]},
    "resolve_username": {"per_account": [{"cap": 100, "period": "60s"}], "pause": ["0s", "0s"]},
    "channel_lookup": {"pause": ["0s", "0s"]}
}, "lease_ttl": "30s"}"#;

/// Everyone exists and accepts being added: each target is exactly one invite call, answered `ok`.
pub const WORLD: &str = r#"{"people": {"username_not_occupied": 0, "deactivated": 0, "bot": 0, "invite_privacy": 0,
    "invite_privacy_premium_would_allow": 0, "invite_privacy_premium_required_for_pm": 0,
    "too_many_channels": 0, "left_themselves": 0}}"#;

const INVITE: &str = "channels.inviteToChannel";

struct Plan {
    name: &'static str,
    channel: &'static str,
    priority: &'static str,
    prefix: &'static str,
    size: usize,
}

/// Created and started in this order (LOW first, HIGH last), so the task ids ascend in it too.
const PLANS: [Plan; 4] = [
    Plan {
        name: "LOW",
        channel: "@low_group",
        priority: "LOW",
        prefix: "lo",
        size: 6,
    },
    Plan {
        name: "NORMAL A",
        channel: "@normal_a_group",
        priority: "NORMAL",
        prefix: "na",
        size: 6,
    },
    Plan {
        name: "NORMAL B",
        channel: "@normal_b_group",
        priority: "NORMAL",
        prefix: "nb",
        size: 6,
    },
    Plan {
        name: "HIGH",
        channel: "@high_group",
        priority: "HIGH",
        prefix: "hi",
        size: 10,
    },
];
const LOW: usize = 0;
const NORMAL_A: usize = 1;
const NORMAL_B: usize = 2;
const HIGH: usize = 3;
/// One letter per plan, for printing an order.
const LETTER: [char; 4] = ['L', 'A', 'B', 'H'];

fn rank(plan: usize) -> u8 {
    match PLANS[plan].priority {
        "HIGH" => 2,
        "NORMAL" => 1,
        _ => 0,
    }
}

/// The order in which the scheduler hands the targets out (one claim per account per tick, at most one
/// job per account at a time), stated before anything runs. All four tasks start in one tick (they share
/// one `scheduled_start`), and every account may serve every task, so:
/// 1. HIGH's 10 first: an account that may act serves the highest priority that has due targets.
/// 2. Then NORMAL A and NORMAL B alternately, A first: round-robin within a priority by when each task
///    was last served; neither has been yet, and the tie goes to the older task (A was created first).
/// 3. Then LOW's 6, once neither NORMAL has a target left to hand out.
///
/// Within a task the targets go out in the order they were stored: a claim takes the lowest pending one.
fn stated_task_order() -> Vec<usize> {
    let mut order = vec![HIGH; PLANS[HIGH].size];
    for _ in 0..PLANS[NORMAL_A].size {
        order.extend([NORMAL_A, NORMAL_B]);
    }
    order.extend(vec![LOW; PLANS[LOW].size]);
    order
}

/// A task's targets, lowest id first (the order its claims take them).
async fn targets_of(api: &impl ScenarioApi, id: i64) -> Vec<Value> {
    let (status, page) = api
        .call(Method::GET, &format!("/tasks/{id}/targets?page_size=100"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut items = page["items"].as_array().unwrap().clone();
    items.sort_by_key(|t| t["id"].as_i64().unwrap());
    items
}

/// One reading of a task over the API.
#[derive(Debug, Clone)]
struct Seen {
    /// Since the tasks were due to start.
    at: Duration,
    status: String,
    reason: Option<String>,
    /// When the row was last written: for a reason, the tick that wrote it.
    updated_at: DateTime<Utc>,
}

impl Seen {
    fn same_as(&self, other: &Seen) -> bool {
        self.status == other.status && self.reason == other.reason
    }
}

fn seen(body: &Value, at: Duration) -> Seen {
    Seen {
        at,
        status: body["status"].as_str().unwrap().to_owned(),
        reason: body["status_reason"].as_str().map(str::to_owned),
        updated_at: serde_json::from_value(body["updated_at"].clone()).unwrap(),
    }
}

fn timeline(history: &[Vec<Seen>]) -> String {
    let mut out = String::new();
    for (plan, seen) in history.iter().enumerate() {
        let _ = writeln!(out, "{}:", PLANS[plan].name);
        for s in seen {
            let _ = writeln!(
                out,
                "  {:>7.3}s {} {:?} (written {})",
                s.at.as_secs_f64(),
                s.status,
                s.reason,
                s.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
        }
    }
    out
}

/// One invite call in the world's record.
#[derive(Debug, Clone)]
struct Invite {
    plan: usize,
    username: String,
    account: String,
}

fn letters(invites: &[Invite]) -> String {
    invites.iter().map(|i| LETTER[i.plan]).collect()
}

/// Checks the world's order of invites against the stated order of hand-outs.
///
/// A job holds its account's lease from the tick that hands it out until after its call. So when an
/// invite is made, every target handed out before it whose invite comes later in the record is a job in
/// flight at that moment, each on its own account and none on this invite's: at most `ACCOUNTS - 1`
/// of them, on distinct accounts. That is all the record may differ from the stated order by.
fn check_order(stated: &[(usize, String)], observed: &[Invite]) -> Result<(), String> {
    let position: HashMap<&str, usize> = stated.iter().enumerate().map(|(i, (_, u))| (u.as_str(), i)).collect();
    let want: BTreeSet<&str> = position.keys().copied().collect();
    let got: Vec<&str> = observed.iter().map(|i| i.username.as_str()).collect();
    let got_set: BTreeSet<&str> = got.iter().copied().collect();
    if got.len() != stated.len() || got_set != want {
        return Err(format!(
            "every target is invited exactly once: {} invites of {} distinct targets, {} stated",
            got.len(),
            got_set.len(),
            stated.len()
        ));
    }
    for invite in observed {
        let (plan, _) = &stated[position[invite.username.as_str()]];
        if *plan != invite.plan {
            return Err(format!(
                "{} was invited into {}'s channel, not {}'s",
                invite.username, PLANS[invite.plan].name, PLANS[*plan].name
            ));
        }
    }
    for (i, x) in observed.iter().enumerate() {
        let px = position[x.username.as_str()];
        let overtaken: Vec<&Invite> = observed[i + 1..]
            .iter()
            .filter(|y| position[y.username.as_str()] < px)
            .collect();
        let mut accounts: BTreeSet<&str> = overtaken.iter().map(|y| y.account.as_str()).collect();
        let distinct = accounts.len() == overtaken.len() && accounts.insert(x.account.as_str());
        if overtaken.len() > ACCOUNTS - 1 || !distinct {
            return Err(format!(
                "invite #{i} ({} of {}, account {}) came before {} targets handed out earlier \
                 ({:?}); at most {} may be in flight, on other accounts than each other and this one",
                x.username,
                PLANS[x.plan].name,
                x.account,
                overtaken.len(),
                overtaken
                    .iter()
                    .map(|y| format!("{} on {}", y.username, y.account))
                    .collect::<Vec<_>>(),
                ACCOUNTS - 1
            ));
        }
    }
    Ok(())
}

/// Runs the scenario against a service whose engine is already running (or about to be) with
/// [`POLICY`] and [`WORLD`], over no accounts yet: it registers [`ACCOUNTS`] sandbox accounts, the four
/// tasks and their audiences, starts them, watches them to completion and checks the world's record.
pub async fn three_priorities_share_five_accounts_in_the_stated_order(api: &impl ScenarioApi) {
    let world = store::open(api.database_url(), &store::StoreOptions::default())
        .await
        .unwrap();
    let world_config = WorldConfig::from_json(WORLD).unwrap();
    let folk = People::new(world_config.seed, world_config.people);
    api.sandbox_accounts(ACCOUNTS).await;

    // Every task gets its audience before any starts; all four share one scheduled start, so the
    // scheduler starts them in one tick and no task gets accounts before the others exist.
    let start_at = Utc::now() + chrono::Duration::seconds(3);
    let mut ids = [0i64; 4];
    for (plan, p) in PLANS.iter().enumerate() {
        let body = json!({
            "name": p.name,
            "action_type": "invite_to_group",
            "target_channel": p.channel,
            "priority": p.priority,
            "scheduled_start": start_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        ids[plan] = api.task_with_targets(body, &people(p.prefix, p.size)).await;
    }
    let stated: Vec<(usize, String)> = {
        let mut queues = Vec::new();
        for (plan, id) in ids.iter().enumerate() {
            let targets = targets_of(api, *id).await;
            assert_eq!(targets.len(), PLANS[plan].size);
            queues.push(
                targets
                    .iter()
                    .map(|t| t["username"].as_str().unwrap().to_owned())
                    .collect::<std::collections::VecDeque<_>>(),
            );
        }
        stated_task_order()
            .into_iter()
            .map(|plan| (plan, queues[plan].pop_front().unwrap()))
            .collect()
    };
    for (plan, id) in ids.iter().enumerate() {
        let (status, body) = api.call(Method::POST, &format!("/tasks/{id}/start")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            (
                body["status"].as_str(),
                body["status_reason"].as_str().map(|s| s.starts_with("scheduled for "))
            ),
            (Some("PENDING"), Some(true)),
            "{} must wait for the shared start (the setup took too long if it is already due): {}",
            PLANS[plan].name,
            body
        );
    }
    let preempted_by = |plan: usize| format!("preempted by task {}", ids[plan]);

    // Watch NORMAL A and LOW as closely as the API allows (a preemption shows from the tick that gives
    // the accounts to a higher task until the next tick), the other two less often, until all are done.
    let started = Instant::now() + (start_at - Utc::now()).to_std().unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut history: Vec<Vec<Seen>> = vec![Vec::new(); 4];
    let mut last = vec![String::new(); 4];
    let mut polls = 0usize;
    let mut others_at = Instant::now();
    loop {
        let mut watched = vec![NORMAL_A, LOW];
        if others_at.elapsed() >= Duration::from_millis(50) {
            watched.extend([HIGH, NORMAL_B]);
            others_at = Instant::now();
        }
        for plan in watched {
            let (_, body) = api.call(Method::GET, &format!("/tasks/{}", ids[plan])).await;
            polls += 1;
            let s = seen(&body, Instant::now().saturating_duration_since(started));
            last[plan] = s.status.clone();
            if history[plan].last().is_none_or(|l| !l.same_as(&s)) {
                history[plan].push(s);
            }
        }
        if last
            .iter()
            .all(|s| ["COMPLETED", "FAILED", "CANCELLED"].contains(&s.as_str()))
        {
            break;
        }
        if Instant::now() >= deadline {
            panic!(
                "the tasks did not all finish within 60 s: {last:?}\n{}\nlogs:\n{}",
                timeline(&history),
                api.dump_table("invite_execution_logs").await
            );
        }
    }

    // Everything completed, every target reached once.
    let mut finished_at = [Utc::now(); 4];
    for (plan, id) in ids.iter().enumerate() {
        let (_, t) = api.call(Method::GET, &format!("/tasks/{id}")).await;
        let size = PLANS[plan].size as i64;
        assert_eq!(t["status"], "COMPLETED", "{}: {t}", PLANS[plan].name);
        assert_eq!(t["status_reason"], Value::Null, "{}: {t}", PLANS[plan].name);
        let counts = ["target_count", "completed_count", "failed_count", "skipped_count"].map(|k| t[k].as_i64());
        assert_eq!(
            counts,
            [Some(size), Some(size), Some(0), Some(0)],
            "{}: {t}",
            PLANS[plan].name
        );
        finished_at[plan] = serde_json::from_value(t["finished_at"].clone()).unwrap();
        for target in targets_of(api, *id).await {
            assert_eq!(
                (target["status"].as_str(), target["attempts"].as_i64()),
                (Some("succeeded"), Some(1)),
                "{target}"
            );
        }
    }

    // The world's record, in the order the calls were made.
    let (calls, _) = world.world_record().await.unwrap();
    let mut plan_of_channel: HashMap<i64, usize> = HashMap::new();
    for channel in calls.iter().filter(|c| c.method == INVITE).filter_map(|c| c.channel_id) {
        if plan_of_channel.contains_key(&channel) {
            continue;
        }
        let key = world
            .world_channel(channel)
            .await
            .unwrap()
            .expect("the world made it")
            .key;
        let plan = PLANS
            .iter()
            .position(|p| p.channel == key)
            .unwrap_or_else(|| panic!("an invite into {key}, which no task names"));
        plan_of_channel.insert(channel, plan);
    }
    let username_of: HashMap<i64, String> = stated
        .iter()
        .map(|(_, u)| (folk.by_username(u).expect("everyone exists").user_id, u.clone()))
        .collect();
    let observed: Vec<Invite> = calls
        .iter()
        .filter(|c| c.method == INVITE)
        .map(|c| {
            assert_eq!(c.answer, "ok", "{c:?}");
            Invite {
                plan: plan_of_channel[&c.channel_id.unwrap()],
                username: username_of[&c.user_id.expect("an invite names its person")].clone(),
                account: c.account_id.clone(),
            }
        })
        .collect();
    let stated_letters: String = stated.iter().map(|(p, _)| LETTER[*p]).collect();
    let context = format!(
        "stated   {stated_letters}\nobserved {}\n{}",
        letters(&observed),
        timeline(&history)
    );

    // The order: exactly the stated one, up to what jobs in flight together may swap.
    if let Err(e) = check_order(&stated, &observed) {
        panic!("{e}\n{context}\ngrants:\n{}", api.dump_table("am_grants").await);
    }
    // What that means at the boundaries, said directly: once a NORMAL or LOW invite is made, HIGH had no
    // target left to hand out, so at most the HIGH jobs then in flight (ACCOUNTS - 1) come later; the
    // same between NORMAL and LOW; and NORMAL A and B alternate, so neither leads the other by more than
    // one hand-out plus what is in flight.
    let first = |pred: &dyn Fn(usize) -> bool| observed.iter().position(|i| pred(i.plan)).unwrap();
    let after = |from: usize, pred: &dyn Fn(usize) -> bool| observed[from..].iter().filter(|i| pred(i.plan)).count();
    let highs_late = after(first(&|p| p != HIGH), &|p| p == HIGH);
    assert!(
        highs_late < ACCOUNTS,
        "{highs_late} HIGH invites after the first lower one\n{context}"
    );
    let normals_late = after(first(&|p| p == LOW), &|p| rank(p) == 1);
    assert!(
        normals_late < ACCOUNTS,
        "{normals_late} NORMAL invites after the first LOW one\n{context}"
    );
    let (mut a, mut b, mut lead) = (0i64, 0i64, 0i64);
    for i in observed.iter().filter(|i| rank(i.plan) == 1) {
        match i.plan {
            NORMAL_A => a += 1,
            _ => b += 1,
        }
        lead = lead.max((a - b).abs());
    }
    assert!(lead <= ACCOUNTS as i64, "NORMAL A and B were {lead} apart\n{context}");

    // Preemption: NORMAL A was seen held by HIGH, and LOW by a higher task, while those ran.
    let a_seen = &history[NORMAL_A];
    assert!(
        a_seen
            .iter()
            .any(|s| s.status == "IN_PROGRESS" && s.reason.as_deref() == Some(&preempted_by(HIGH))),
        "NORMAL A was never seen '{}' ({polls} readings)\n{context}",
        preempted_by(HIGH)
    );
    assert!(
        history[LOW].iter().any(|s| {
            s.status == "IN_PROGRESS"
                && [HIGH, NORMAL_A, NORMAL_B]
                    .iter()
                    .any(|p| s.reason.as_deref() == Some(&preempted_by(*p)))
        }),
        "LOW was never seen preempted ({polls} readings)\n{context}"
    );
    // …and it unwinds: a task is only ever preempted by a higher one, and only by a tick before that one
    // finished; NORMAL A is never held by its equal or by LOW, and ends without a reason.
    for (plan, seen) in history.iter().enumerate() {
        for s in seen {
            let Some(by) = (0..4).find(|p| s.reason.as_deref() == Some(&preempted_by(*p))) else {
                continue;
            };
            assert!(
                rank(by) > rank(plan),
                "{} preempted by {}\n{context}",
                PLANS[plan].name,
                PLANS[by].name
            );
            assert!(
                s.updated_at < finished_at[by],
                "{} still preempted by {} after it finished at {}\n{context}",
                PLANS[plan].name,
                PLANS[by].name,
                finished_at[by]
            );
        }
    }
}
