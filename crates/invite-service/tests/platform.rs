//! The platform profile as it is deployed: one `invite-service api` process and several
//! `invite-service worker` processes over one PostgreSQL database, RabbitMQ and Redis, campaigning on
//! the sandbox world kept in that database.
//!
//! - Pause, resume and cancel sent to the API process reach the workers (other processes) within a
//!   second: the world's own record shows no call started later.
//! - Workers that die right after the grant, the call or the commit (`INVITE_FAILPOINTS`), or that are
//!   SIGKILLed at a random moment, lose no target and repeat no delivery: every target ends exactly
//!   once, and the world's record has no duplicate and no call beyond the compressed policy.
//!
//! These tests fail, never skip, when PostgreSQL (127.0.0.1:5432), RabbitMQ (127.0.0.1:5672) or Redis
//! (127.0.0.1:6379) is down. Each test has its own database, queues and events channel (a random
//! prefix), kills every process it started whether it passes or fails, and on failure prints the tail
//! of every process's log (kept in a temporary folder).

use std::{
    collections::{BTreeMap, HashMap},
    fs::File,
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use chrono::Utc;
use invite_service::{config::VARIABLES, engine::queue::rabbitmq::RabbitQueue};
use rand::{rngs::StdRng, Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use store::{WorldCall, WorldDelivery};

#[path = "common/log_scan.rs"]
mod log_scan;
#[path = "common/priority_scenario.rs"]
mod priority_scenario;
#[path = "common/processes.rs"]
mod processes;

use priority_scenario::ScenarioApi;
use processes::{
    delete_queues_blocking, describe, on_own_runtime, require_broker_and_redis, tail, ApiClient, Proc, BIN, BROKER_URL,
    REDIS_URL,
};

const JWT_SECRET: &str = "platform-test-secret-0123456789";
const DATA_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
/// Workers per worker process.
const WORKERS_PER_PROCESS: &str = "2";

const SIGABRT: i32 = 6;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// Seconds instead of hours, as in `tests/api/engine.rs`: 1 s between invites of an account, 3 per
/// 15 s per account, 2 per 10 s per account and channel — a campaign of 15 keeps running for ~25 s.
const PAUSE_POLICY: &str = r#"{"telegram": {
    "invite": {"per_account": [{"cap": 3, "period": "15s"}], "per_channel": [{"cap": 2, "period": "10s"}], "pause": ["1s", "1s"]},
    "message": {"per_account": [{"cap": 3, "period": "60s"}], "pause": ["1s", "1s"]},
    "resolve_username": {"per_account": [{"cap": 100, "period": "60s"}], "pause": ["0s", "0s"]},
    "channel_lookup": {"pause": ["0s", "0s"]}
}, "lease_ttl": "30s"}"#;

/// Compressed further, still binding, so two campaigns run for ~25 s: 1 s between two invites or two
/// messages of an account, 3 invites and 2 messages per 10 s per account, 2 invites per 10 s per account
/// and channel.
const CRASH_POLICY: &str = r#"{"telegram": {
    "invite": {"per_account": [{"cap": 3, "period": "10s"}], "per_channel": [{"cap": 2, "period": "10s"}], "pause": ["1s", "1s"]},
    "message": {"per_account": [{"cap": 2, "period": "10s"}], "pause": ["1s", "1s"]},
    "resolve_username": {"per_account": [{"cap": 100, "period": "60s"}], "pause": ["0s", "0s"]},
    "channel_lookup": {"pause": ["0s", "0s"]}
}, "lease_ttl": "30s"}"#;

/// Target statuses that are final.
const FINAL: [&str; 5] = ["succeeded", "already_done", "failed", "skipped", "unknown"];

/// An `api` process and worker processes over a fresh PostgreSQL database, queues and events channel
/// of their own. Dropping it kills every process, prints their logs' tails when the test failed,
/// deletes the queues, then the database.
struct Platform {
    dir: PathBuf,
    prefix: String,
    policy: &'static str,
    /// More variables for every process, set after (so over) the ones above.
    extra: &'static [(&'static str, &'static str)],
    spawned: usize,
    /// Every process started, for the logs' tails on failure.
    logs: Vec<(String, PathBuf, PathBuf)>,
    api: Option<Proc>,
    workers: Vec<Option<Proc>>,
    client: ApiClient,
    queues_deleted: bool,
    /// Fails the test if a process logged a secret (their logs are scanned when the platform is dropped).
    _logs: log_scan::Check,
    // Dropped last, after every process is gone.
    db: test_db::TestDb,
}

impl Platform {
    async fn start(tag: &str, policy: &'static str) -> Platform {
        Platform::start_with(tag, policy, &[]).await
    }

    /// As [`Platform::start`], with more variables for every process it starts.
    async fn start_with(tag: &str, policy: &'static str, extra: &'static [(&'static str, &'static str)]) -> Platform {
        let logs = log_scan::capture();
        let db = test_db::TestDb::new(test_db::Backend::Postgres).await;
        let prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
        require_broker_and_redis(BROKER_URL, REDIS_URL, &prefix).await;
        let dir = std::env::temp_dir().join(format!("invite-platform-{tag}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = Platform {
            dir,
            prefix,
            policy,
            extra,
            spawned: 0,
            logs: Vec::new(),
            api: None,
            workers: Vec::new(),
            client: ApiClient::default(),
            queues_deleted: false,
            _logs: logs,
            db,
        };
        let migrate = p.command().arg("migrate").output().unwrap();
        log_scan::feed("migrate's stdout", &String::from_utf8_lossy(&migrate.stdout));
        log_scan::feed("migrate's stderr", &String::from_utf8_lossy(&migrate.stderr));
        assert!(
            migrate.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&migrate.stderr)
        );
        // Its stdout is the token asked for, not a log.
        let token = p.command().args(["token", "--user-id", "1"]).output().unwrap();
        log_scan::feed("token's stderr", &String::from_utf8_lossy(&token.stderr));
        assert!(
            token.status.success(),
            "token: {}",
            String::from_utf8_lossy(&token.stderr)
        );
        let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
        let mut api = p.spawn("api", None);
        let listening = api.wait_for_log("listening", Duration::from_secs(30)).await;
        p.client = ApiClient::new(&listening, token);
        p.api = Some(api);
        p
    }

    /// The binary with none of the service's variables inherited, and this platform's configuration.
    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        for v in VARIABLES {
            cmd.env_remove(v.name);
        }
        cmd.env_remove("INVITE_FAILPOINTS")
            .env("DATABASE_URL", &self.db.url)
            .env("INVITE_DB_MAX_CONNECTIONS", "5")
            .env("CELERY_BROKER_URL", BROKER_URL)
            .env("REDIS_URL", REDIS_URL)
            .env("INVITE_QUEUE_PREFIX", &self.prefix)
            .env("INVITE_JWT_SECRET", JWT_SECRET)
            .env("INVITE_DATA_KEY", DATA_KEY)
            .env("INVITE_DATA_DIR", self.dir.join("data"))
            .env("INVITE_BIND", "127.0.0.1:0")
            .env("INVITE_POLICY", self.policy)
            .env("INVITE_WORKERS", WORKERS_PER_PROCESS)
            .env("INVITE_LOG", "info,sqlx=warn");
        for (name, value) in self.extra {
            cmd.env(name, value);
        }
        cmd
    }

    fn spawn(&mut self, role: &str, failpoint: Option<&'static str>) -> Proc {
        self.spawned += 1;
        let label = format!(
            "{:02}-{role}{}",
            self.spawned,
            failpoint.map(|f| format!("-{f}")).unwrap_or_default()
        );
        let out = self.dir.join(format!("{label}.stdout.log"));
        let err = self.dir.join(format!("{label}.stderr.log"));
        let mut cmd = self.command();
        cmd.arg(role)
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap());
        if let Some(f) = failpoint {
            cmd.env("INVITE_FAILPOINTS", f);
        }
        self.logs.push((label.clone(), out.clone(), err.clone()));
        Proc::start(cmd, label, failpoint, out, err)
    }

    fn spawn_worker(&mut self, failpoint: Option<&'static str>) -> Proc {
        self.spawn("worker", failpoint)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.client.call(method, path, body).await
    }

    async fn sandbox_accounts(&self, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for i in 0..n {
            let body = json!({"platform": "telegram", "name": format!("Sandbox {i}"), "sandbox": true});
            let (status, account) = self.call(Method::POST, "/accounts", Some(body)).await;
            assert_eq!(status, StatusCode::CREATED, "{account}");
            ids.push(account["id"].as_str().unwrap().to_owned());
        }
        ids
    }

    async fn task_with_targets(&self, body: Value, people: &[String]) -> i64 {
        let (status, task) = self.call(Method::POST, "/tasks", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        let id = task["id"].as_i64().unwrap();
        self.client.import(id, people).await;
        let task = self.task(id).await;
        assert_eq!(task["target_count"], people.len(), "{task}");
        id
    }

    async fn task(&self, id: i64) -> Value {
        let (status, task) = self.call(Method::GET, &format!("/tasks/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{task}");
        task
    }

    /// Sends a lifecycle move and checks the status it leads to.
    async fn lifecycle(&self, id: i64, step: &str, expect: &str) -> Value {
        let (status, task) = self.call(Method::POST, &format!("/tasks/{id}/{step}"), None).await;
        assert_eq!(status, StatusCode::OK, "{step}: {task}");
        assert_eq!(task["status"], expect, "{step}: {task}");
        task
    }

    async fn targets(&self, id: i64) -> Vec<Value> {
        let (status, page) = self
            .call(Method::GET, &format!("/tasks/{id}/targets?page_size=100"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["items"].as_array().unwrap().clone()
    }

    /// The world's impartial record: every call made to it, and every delivery.
    async fn world(&self) -> (Vec<WorldCall>, Vec<WorldDelivery>) {
        self.db.store.world_record().await.expect("read the world's record")
    }

    /// Waits until the world's calls satisfy `done`.
    async fn wait_for_calls(&self, what: &str, within: Duration, done: impl Fn(&[WorldCall]) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            let (calls, _) = self.world().await;
            if done(&calls) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited {within:?} for {what}; {} calls so far",
                calls.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops every process, then deletes the queues (asserting it worked).
    async fn finish(mut self) {
        for w in self.workers.iter_mut().flatten() {
            w.sigkill();
        }
        if let Some(api) = self.api.as_mut() {
            api.sigkill();
        }
        self.workers.clear();
        self.api = None;
        let q = RabbitQueue::connect_with_prefix(BROKER_URL, &self.prefix)
            .await
            .expect("reconnect to RabbitMQ");
        q.delete_queues().await.expect("delete the test's queues");
        q.close().await;
        self.queues_deleted = true;
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.workers.clear();
        self.api = None;
        let failed = std::thread::panicking();
        for (label, out, err) in &self.logs {
            for (what, path) in [("stdout", out), ("stderr", err)] {
                log_scan::feed(
                    &format!("{label}'s {what}"),
                    &std::fs::read_to_string(path).unwrap_or_default(),
                );
            }
        }
        if failed {
            for (label, out, err) in &self.logs {
                eprintln!("===== {label} =====\n{}\n{}", tail(out, 25), tail(err, 10));
            }
            dump_tables(&self.db.url, &self.dir);
            eprintln!("logs and the database's tables kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        if !self.queues_deleted {
            delete_queues_blocking(BROKER_URL, &self.prefix);
        }
    }
}

/// The tables that tell what happened, as text files next to the logs (the database is dropped).
fn dump_tables(url: &str, dir: &std::path::Path) {
    let (url, dir) = (url.to_owned(), dir.to_owned());
    on_own_runtime(move || async move {
        use sqlx::Connection;
        let Ok(mut c) = sqlx::PgConnection::connect(&url).await else {
            return;
        };
        for table in [
            "invite_tasks",
            "invite_targets",
            "invite_execution_logs",
            "invite_task_accounts",
            "am_grants",
            "sandbox_calls",
            "sandbox_deliveries",
        ] {
            let sql = format!("SELECT t::text FROM {table} t");
            if let Ok(rows) = sqlx::query_scalar::<_, String>(&sql).fetch_all(&mut c).await {
                let _ = std::fs::write(dir.join(format!("{table}.txt")), rows.join("\n"));
            }
        }
    });
}

fn people(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

fn is_invite(c: &WorldCall) -> bool {
    matches!(c.method.as_str(), "channels.inviteToChannel" | "messages.addChatUser")
}

fn millis(d: chrono::Duration) -> i64 {
    d.num_milliseconds()
}

fn policy(json: &str) -> account_manager::Policy {
    account_manager::policy_config::load(None, Some(json)).expect("the test's policy is valid")
}

/// The invite calls into the channel of the first invite call (this test's only task).
fn task_invites(calls: &[WorldCall]) -> Vec<&WorldCall> {
    let channel = calls.iter().find(|c| is_invite(c)).and_then(|c| c.channel_id);
    calls
        .iter()
        .filter(|c| is_invite(c) && c.channel_id == channel)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_pause_resume_and_cancel_from_the_api_process_reach_the_workers_within_a_second() {
    let began = Instant::now();
    let mut p = Platform::start("pause", PAUSE_POLICY).await;
    for _ in 0..2 {
        let mut w = p.spawn_worker(None);
        w.wait_for_log(
            "engine running in this process: scheduler and workers",
            Duration::from_secs(30),
        )
        .await;
        p.workers.push(Some(w));
    }
    let accounts = p.sandbox_accounts(3).await;
    let id = p
        .task_with_targets(
            json!({"name": "Pausing", "action_type": "invite_to_group", "target_channel": "@pause_group"}),
            &people("pausing", 15),
        )
        .await;
    p.lifecycle(id, "start", "IN_PROGRESS").await;
    p.wait_for_calls("3 invite calls", Duration::from_secs(60), |calls| {
        task_invites(calls).len() >= 3
    })
    .await;

    // Pause: nothing of the task may start in the world later than a second after it was asked.
    let t = Utc::now();
    p.lifecycle(id, "pause", "PAUSED").await;
    let pause_answered = Utc::now() - t;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (calls, _) = p.world().await;
    let invites = task_invites(&calls);
    let late: Vec<&&WorldCall> = invites
        .iter()
        .filter(|c| c.at > t + chrono::Duration::seconds(1))
        .collect();
    assert!(
        late.is_empty(),
        "invite calls more than 1 s after the pause at {t}: {late:#?}"
    );
    let pause_delay = invites.iter().map(|c| c.at).max().unwrap() - t;
    let after_pause_other = calls
        .iter()
        .filter(|c| !is_invite(c) && c.at > t + chrono::Duration::seconds(1))
        .count();
    let invites_at_pause = invites.len();
    assert_eq!(p.task(id).await["status"], "PAUSED");

    // Resume: it continues.
    let resumed = Utc::now();
    p.lifecycle(id, "resume", "IN_PROGRESS").await;
    p.wait_for_calls("2 invite calls after the resume", Duration::from_secs(40), |calls| {
        task_invites(calls).iter().filter(|c| c.at > resumed).count() >= 2
    })
    .await;
    let first_after_resume = task_invites(&p.world().await.0)
        .iter()
        .map(|c| c.at)
        .filter(|at| *at > resumed)
        .min()
        .unwrap()
        - resumed;

    // Cancel: again nothing later than a second after it.
    let t2 = Utc::now();
    p.lifecycle(id, "cancel", "CANCELLED").await;
    let cancel_answered = Utc::now() - t2;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (calls, deliveries) = p.world().await;
    let invites = task_invites(&calls);
    let late: Vec<&&WorldCall> = invites
        .iter()
        .filter(|c| c.at > t2 + chrono::Duration::seconds(1))
        .collect();
    assert!(
        late.is_empty(),
        "invite calls more than 1 s after the cancel at {t2}: {late:#?}"
    );
    let cancel_delay = invites.iter().map(|c| c.at).max().unwrap() - t2;
    let after_cancel_other = calls
        .iter()
        .filter(|c| !is_invite(c) && c.at > t2 + chrono::Duration::seconds(1))
        .count();
    assert!(
        calls.iter().all(|c| accounts.contains(&c.account_id)),
        "only the task's accounts call"
    );

    let task = p.task(id).await;
    assert_eq!(task["status"], "CANCELLED", "{task}");
    let ended: i64 = ["completed_count", "failed_count", "skipped_count"]
        .iter()
        .map(|k| task[k].as_i64().unwrap())
        .sum();
    assert!(ended < 15, "cancelled before the end: {task}");
    let audit = platforms::sandbox::audit::audit(&calls, &deliveries, &policy(PAUSE_POLICY));
    assert_eq!(audit.duplicates, 0, "{}", audit.to_text());
    assert_eq!(audit.violations, 0, "{}", audit.to_text());

    println!(
        "pause/resume/cancel across processes: {} invite calls before the pause; pause answered in {} ms, \
         last invite call {} ms after the pause was sent (other calls later than +1 s: {after_pause_other}); \
         first invite call {} ms after the resume; cancel answered in {} ms, last invite call {} ms after \
         the cancel was sent (other calls later than +1 s: {after_cancel_other}); {} invite calls in all, \
         {ended} of 15 targets ended; {:.1} s",
        invites_at_pause,
        millis(pause_answered),
        millis(pause_delay),
        millis(first_after_resume),
        millis(cancel_answered),
        millis(cancel_delay),
        invites.len(),
        began.elapsed().as_secs_f64()
    );
    p.finish().await;
}

impl ScenarioApi for Platform {
    async fn call(&self, method: Method, path: &str) -> (StatusCode, Value) {
        Platform::call(self, method, path, None).await
    }

    async fn sandbox_accounts(&self, n: usize) {
        Platform::sandbox_accounts(self, n).await;
    }

    async fn task_with_targets(&self, body: Value, people: &[String]) -> i64 {
        Platform::task_with_targets(self, body, people).await
    }

    async fn dump_table(&self, table: &str) -> String {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {table} t"))
            .fetch_all(&mut c)
            .await
            .unwrap();
        rows.join("\n")
    }

    fn database_url(&self) -> &str {
        &self.db.url
    }
}

/// The priority scenario of `tests/api/priority.rs` (HIGH, NORMAL A, NORMAL B and LOW sharing five
/// sandbox accounts, in the order stated before they run), here with the scheduler leading from one of
/// two worker processes and the jobs spread over both, every process on the same compressed policy
/// and world. Each account is leased per job, so at most five jobs are in flight across the processes,
/// as in process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_three_priorities_share_five_accounts_in_the_stated_order_across_two_workers() {
    const EXTRA: &[(&str, &str)] = &[
        ("INVITE_SANDBOX_WORLD", priority_scenario::WORLD),
        ("INVITE_WORKERS", "5"),
    ];
    let began = Instant::now();
    let mut p = Platform::start_with("priority", priority_scenario::POLICY, EXTRA).await;
    for _ in 0..2 {
        let mut w = p.spawn_worker(None);
        w.wait_for_log(
            "engine running in this process: scheduler and workers",
            Duration::from_secs(30),
        )
        .await;
        p.workers.push(Some(w));
    }
    priority_scenario::three_priorities_share_five_accounts_in_the_stated_order(&p).await;
    println!(
        "priorities across two worker processes: all four tasks completed in the stated order; {:.1} s",
        began.elapsed().as_secs_f64()
    );
    p.finish().await;
}

/// What the supervisor does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Workers armed with this failpoint, until two of them have aborted at it.
    Armed(&'static str),
    /// Unarmed workers; one of them SIGKILLed at random moments.
    Kill,
    /// Unarmed workers until both tasks are complete.
    Calm,
}

impl Stage {
    fn failpoint(self) -> Option<&'static str> {
        match self {
            Stage::Armed(f) => Some(f),
            _ => None,
        }
    }
}

const STAGES: [Stage; 5] = [
    Stage::Armed("after_grant"),
    Stage::Armed("after_call"),
    Stage::Armed("after_commit"),
    Stage::Kill,
    Stage::Calm,
];
const ABORTS_PER_FAILPOINT: usize = 2;

/// What the supervisor counted.
#[derive(Debug, Default)]
struct Tally {
    aborts: BTreeMap<&'static str, usize>,
    kills: usize,
    planned_kills: usize,
    stops: usize,
}

impl Tally {
    /// Accounts for a worker that ended; panics on an end nobody caused.
    fn ended(&mut self, w: &Proc, status: ExitStatus) {
        match (status.signal(), w.failpoint) {
            (Some(SIGABRT), Some(f)) => {
                let said = format!("failpoint {f}: aborting");
                assert!(w.stderr().contains(&said), "{} aborted without {said:?}", w.label);
                *self.aborts.entry(f).or_default() += 1;
            }
            (Some(SIGKILL), _) if w.killed => {}
            _ if w.stopping && (status.success() || status.signal() == Some(SIGTERM)) => self.stops += 1,
            _ => panic!(
                "{} ended unexpectedly ({}):\n{}\n{}",
                w.label,
                describe(status),
                tail(&w.out, 30),
                tail(&w.err, 30)
            ),
        }
    }
}

/// Each task's targets by status.
fn by_status(targets: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in targets {
        *out.entry(t["status"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_workers_killed_after_the_grant_the_call_and_the_commit_lose_nothing_and_repeat_nothing() {
    const SEED: u64 = 20_260_601;
    let began = Instant::now();
    let deadline = began + Duration::from_secs(180);
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut p = Platform::start("crash", CRASH_POLICY).await;
    let accounts = p.sandbox_accounts(4).await;
    let invite = p
        .task_with_targets(
            json!({"name": "Crash invites", "action_type": "invite_to_group", "target_channel": "@crash_group"}),
            &people("crashinv", 20),
        )
        .await;
    let message = p
        .task_with_targets(
            json!({"name": "Crash messages", "action_type": "send_message", "message_template": "Hi {first_name}"}),
            &people("crashmsg", 12),
        )
        .await;
    let mut tally = Tally {
        planned_kills: rng.gen_range(1..=2),
        ..Tally::default()
    };
    let mut stage = 0;
    for _ in 0..2 {
        let w = p.spawn_worker(STAGES[stage].failpoint());
        p.workers.push(Some(w));
    }
    p.lifecycle(invite, "start", "IN_PROGRESS").await;
    p.lifecycle(message, "start", "IN_PROGRESS").await;

    let mut next_kill: Option<Instant> = None;
    let mut last_look = Instant::now();
    let mut stage_log = vec![format!("{:?} at 0.0 s", STAGES[0])];
    loop {
        if Instant::now() > deadline {
            let a = p.task(invite).await;
            let m = p.task(message).await;
            panic!(
                "the campaigns did not complete within 180 s (stage {:?}, {tally:?}):\ninvites: {a}\n{:?}\nmessages: {m}\n{:?}",
                STAGES[stage],
                by_status(&p.targets(invite).await),
                by_status(&p.targets(message).await)
            );
        }
        // Reap the workers that ended and start their replacements for the current stage.
        for slot in 0..p.workers.len() {
            let status = p.workers[slot].as_mut().and_then(Proc::exited);
            if let Some(status) = status {
                let w = p.workers[slot].take().unwrap();
                tally.ended(&w, status);
                drop(w);
                p.workers[slot] = Some(p.spawn_worker(STAGES[stage].failpoint()));
            }
        }
        let now = Instant::now();
        match STAGES[stage] {
            Stage::Armed(f) if tally.aborts.get(f).copied().unwrap_or(0) >= ABORTS_PER_FAILPOINT => {
                stage += 1;
                stage_log.push(format!("{:?} at {:.1} s", STAGES[stage], began.elapsed().as_secs_f64()));
                // The workers still armed with the old failpoint stop gracefully (one may still abort
                // at it while it finishes its job: counted).
                for slot in 0..p.workers.len() {
                    let mut w = p.workers[slot].take().unwrap();
                    w.sigterm();
                    let stop_by = Instant::now() + Duration::from_secs(20);
                    let status = loop {
                        if let Some(s) = w.exited() {
                            break s;
                        }
                        if Instant::now() > stop_by {
                            panic!("{} did not stop within 20 s of SIGTERM:\n{}", w.label, tail(&w.out, 30));
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    };
                    tally.ended(&w, status);
                    drop(w);
                    p.workers[slot] = Some(p.spawn_worker(STAGES[stage].failpoint()));
                }
                if STAGES[stage] == Stage::Kill {
                    next_kill = Some(now + Duration::from_millis(rng.gen_range(500..2500)));
                }
            }
            Stage::Kill if next_kill.is_some_and(|at| now >= at) => {
                let slot = rng.gen_range(0..p.workers.len());
                let mut w = p.workers[slot].take().unwrap();
                w.sigkill();
                let status = w.child.wait().unwrap();
                tally.kills += 1;
                tally.ended(&w, status);
                drop(w);
                p.workers[slot] = Some(p.spawn_worker(None));
                if tally.kills >= tally.planned_kills {
                    stage += 1;
                    stage_log.push(format!("{:?} at {:.1} s", STAGES[stage], began.elapsed().as_secs_f64()));
                } else {
                    next_kill = Some(now + Duration::from_millis(rng.gen_range(500..2500)));
                }
            }
            _ => {}
        }
        // How the campaigns stand.
        if now - last_look >= Duration::from_millis(500) {
            last_look = now;
            let a = p.task(invite).await;
            let m = p.task(message).await;
            for t in [&a, &m] {
                let s = t["status"].as_str().unwrap();
                assert!(s == "IN_PROGRESS" || s == "COMPLETED", "a task left its course: {t}");
            }
            if a["status"] == "COMPLETED" && m["status"] == "COMPLETED" {
                assert_eq!(
                    STAGES[stage],
                    Stage::Calm,
                    "the campaigns ended before every crash was staged ({tally:?}); give them more targets"
                );
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ran_for = began.elapsed();
    for w in p.workers.iter_mut().flatten() {
        w.sigterm();
    }
    println!(
        "crash supervisor (seed {SEED}): aborts per failpoint {:?}, SIGKILLs {} (planned {}), graceful stops {}; \
         stages: {}; both tasks COMPLETED after {:.1} s",
        tally.aborts,
        tally.kills,
        tally.planned_kills,
        tally.stops,
        stage_log.join(", "),
        ran_for.as_secs_f64()
    );
    for f in ["after_grant", "after_call", "after_commit"] {
        assert!(
            tally.aborts.get(f).copied().unwrap_or(0) >= ABORTS_PER_FAILPOINT,
            "{tally:?}"
        );
    }
    assert!(tally.kills >= 1, "{tally:?}");

    // Every target ended exactly once, and the counters say so.
    let mut outcomes = BTreeMap::new();
    for (name, id, n) in [("invites", invite, 20), ("messages", message, 12)] {
        let task = p.task(id).await;
        let targets = p.targets(id).await;
        assert_eq!(targets.len(), n, "{task}");
        for t in &targets {
            assert!(FINAL.contains(&t["status"].as_str().unwrap()), "not final: {t}");
        }
        let counts = by_status(&targets);
        let count = |s: &str| counts.get(s).copied().unwrap_or(0) as i64;
        let (done, failed, skipped) = (
            task["completed_count"].as_i64().unwrap(),
            task["failed_count"].as_i64().unwrap(),
            task["skipped_count"].as_i64().unwrap(),
        );
        assert_eq!(
            done + failed + skipped,
            task["target_count"].as_i64().unwrap(),
            "{task}"
        );
        assert_eq!(
            (done, failed, skipped),
            (
                count("succeeded") + count("already_done"),
                count("failed") + count("unknown"),
                count("skipped")
            ),
            "the counters match the targets: {task} {counts:?}"
        );
        outcomes.insert(name, counts);
    }

    println!(
        "outcomes: invites {:?}, messages {:?}",
        outcomes["invites"], outcomes["messages"]
    );

    // The world's record: nobody added or messaged twice, nothing beyond the policy.
    let (calls, deliveries) = p.world().await;
    let audit = platforms::sandbox::audit::audit(&calls, &deliveries, &policy(CRASH_POLICY));
    let repeats: BTreeMap<&str, usize> = calls
        .iter()
        .filter(|c| c.answer.contains("RANDOM_ID_DUPLICATE") || c.answer.contains("USER_ALREADY_PARTICIPANT"))
        .fold(BTreeMap::new(), |mut m, c| {
            *m.entry(c.answer.as_str()).or_default() += 1;
            m
        });
    println!(
        "world: {} calls, {} invites and {} messages delivered, {} duplicates, {} violations; repeated calls \
         answered as already done: {repeats:?}; shortest gap between two invites of one account: {:?} s",
        audit.calls,
        audit.invites_delivered,
        audit.messages_delivered,
        audit.duplicates,
        audit.violations,
        audit.min_seconds_between_invites_of_an_account
    );
    assert_eq!(audit.duplicates, 0, "{}", audit.to_text());
    assert_eq!(audit.violations, 0, "{}", audit.to_text());
    assert!(calls.iter().all(|c| accounts.contains(&c.account_id)));

    // A message reached its person only through the first account that tried that person.
    let mut first_sender: HashMap<i64, &str> = HashMap::new();
    for c in calls.iter().filter(|c| c.method == "messages.sendMessage") {
        if let Some(user) = c.user_id {
            first_sender.entry(user).or_insert(c.account_id.as_str());
        }
    }
    let mut per_user: HashMap<i64, Vec<&WorldDelivery>> = HashMap::new();
    let mut per_random_id: HashMap<i64, Vec<&WorldDelivery>> = HashMap::new();
    for d in deliveries.iter().filter(|d| d.kind == "message") {
        per_user.entry(d.user_id).or_default().push(d);
        if let Some(r) = d.random_id {
            per_random_id.entry(r).or_default().push(d);
        }
        assert_eq!(
            first_sender.get(&d.user_id).copied(),
            Some(d.account_id.as_str()),
            "a message delivered by another account than the first that tried: {d:?}"
        );
    }
    for (user, ds) in &per_user {
        assert_eq!(ds.len(), 1, "user {user} got {} messages: {ds:?}", ds.len());
    }
    for (r, ds) in &per_random_id {
        assert_eq!(ds.len(), 1, "random_id {r} delivered {} times: {ds:?}", ds.len());
    }
    let message_targets_done = outcomes["messages"].get("succeeded").copied().unwrap_or(0)
        + outcomes["messages"].get("already_done").copied().unwrap_or(0);
    assert_eq!(
        audit.messages_delivered, message_targets_done,
        "one delivery per message target that succeeded or was already done"
    );

    p.finish().await;
}
