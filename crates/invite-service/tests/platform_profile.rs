//! The platform profile end to end, with every platform service local: `invite-service api` and
//! `invite-service worker` over PostgreSQL, RabbitMQ and Redis, the JWT secret and a session from a local
//! Vault (AppRole, KV v2 in the running platform's layout: mount `kv`, path `jwt`), the accounts from a
//! local Integration Service. A user authenticated with a token signed by the Vault-held secret runs an
//! invite campaign on the accounts the Integration Service lists for them, and it completes.
//!
//! Nothing may reach Telegram here, so the processes run with `INTEGRATION_ACCOUNTS_SANDBOX=true`: the
//! Integration Service's accounts act on the sandbox world, whose impartial record (in the database)
//! shows who did what. Everything else is the production path: the list filtered by user and status,
//! sessions read from the record or from Vault and sealed, accounts with no session left out, the
//! scheduler leading from the worker process, jobs through RabbitMQ, wake-ups through Redis.
//!
//! The test fails, never skips, when PostgreSQL (127.0.0.1:5432), RabbitMQ (127.0.0.1:5672) or Redis
//! (127.0.0.1:6379) is down. It has its own database, queues and Redis prefix, kills the processes it
//! started whether it passes or fails, and on failure prints the tail of their logs.

#[path = "common/fake_vault.rs"]
#[allow(dead_code)]
mod fake_vault;
#[path = "common/log_scan.rs"]
mod log_scan;
#[path = "common/processes.rs"]
mod processes;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::File,
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{extract::State, http::HeaderMap, http::StatusCode as AxumStatus, routing::get, Json, Router};
use fake_vault::{fresh_session, FakeVault, ROLE_ID, SECRET_ID};
use invite_service::config::VARIABLES;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use platforms::sandbox::{people::People, WorldConfig};
use processes::{delete_queues_blocking, require_broker_and_redis, tail, ApiClient, Proc, BIN, BROKER_URL, REDIS_URL};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Held only by Vault: the processes get no INVITE_JWT_SECRET.
const JWT_SECRET: &str = "platform-profile-jwt-secret-kept-in-vault-3e9d";
const API_HASH: &str = "0123456789abcdef0123456789abcdef";
const DATA_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const USER: i64 = 55;

/// Seconds instead of hours: 1 s between two invites of an account, at most 4 invites per minute per
/// account — so the 9 targets need all three usable accounts (4 + 4 + 1) and the campaign lasts seconds.
const POLICY: &str = r#"{"telegram": {
    "invite": {"per_account": [{"cap": 4, "period": "60s"}], "per_channel": [{"cap": 10, "period": "60s"}], "pause": ["1s", "1s"]},
    "resolve_username": {"per_account": [{"cap": 100, "period": "60s"}], "pause": ["0s", "0s"]},
    "channel_lookup": {"pause": ["0s", "0s"]}
}, "lease_ttl": "30s"}"#;

/// Everyone exists and accepts being added: each target is exactly one successful invite.
const WORLD: &str = r#"{"people": {"username_not_occupied": 0, "deactivated": 0, "bot": 0, "invite_privacy": 0,
    "invite_privacy_premium_would_allow": 0, "invite_privacy_premium_required_for_pm": 0,
    "too_many_channels": 0, "left_themselves": 0}}"#;

const TARGETS: usize = 9;

/// The Integration Service's accounts (the fixture's, and more in its shape).
const WITH_SESSION: &str = "3b7c2f0e-1d2a-4c55-9f10-2a9e8b7c6d5e";
const SESSION_IN_VAULT: &str = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
const ALSO_WITH_SESSION: &str = "7d2e3f40-5b6c-4d7e-8f90-a1b2c3d4e5f6";
const NO_SESSION_ANYWHERE: &str = "8e3f4051-6c7d-4e8f-9011-b2c3d4e5f607";
const BLOCKED: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
const OTHER_USERS: &str = "0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b";

/// The local Integration Service: like the running platform's endpoint, it answers every user's
/// accounts with their secrets whatever the query says, and refuses calls without the service's JWT.
struct Integration {
    answer: Value,
    calls: AtomicUsize,
    refused: AtomicUsize,
    subjects: Mutex<BTreeSet<String>>,
}

async fn accounts(State(up): State<Arc<Integration>>, headers: HeaderMap) -> Result<Json<Value>, AxumStatus> {
    up.calls.fetch_add(1, Ordering::SeqCst);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let claims = token.and_then(|t| {
        jsonwebtoken::decode::<Value>(
            t,
            &DecodingKey::from_secret(JWT_SECRET.as_bytes()),
            &Validation::new(Algorithm::HS256),
        )
        .ok()
    });
    match claims {
        Some(c) if c.claims["service"] == "invite-service" => {
            up.subjects
                .lock()
                .unwrap()
                .insert(c.claims["sub"].as_str().unwrap_or_default().to_owned());
            Ok(Json(up.answer.clone()))
        }
        _ => {
            up.refused.fetch_add(1, Ordering::SeqCst);
            Err(AxumStatus::UNAUTHORIZED)
        }
    }
}

/// The fixture's three accounts (user 55's active one, 55's blocked one, user 77's), plus three more of
/// user 55 in the same shape: one whose session is kept in Vault only, one with a session of its own,
/// one with a session nowhere. Every session is distinct (a key used twice is refused).
fn integration_answer(sessions: &BTreeMap<&str, String>) -> Value {
    let fixture: Value = serde_json::from_str(include_str!("data/integration-accounts.json")).unwrap();
    let mut accounts = fixture["example"].as_array().unwrap().clone();
    let template = accounts[0].clone();
    for (id, phone) in [
        (SESSION_IN_VAULT, "+79120000002"),
        (ALSO_WITH_SESSION, "+79120000003"),
        (NO_SESSION_ANYWHERE, "+79120000004"),
    ] {
        let mut a = template.clone();
        a["id"] = json!(id);
        a["session_id"] = json!(id);
        a["phone"] = json!(phone);
        accounts.push(a);
    }
    for (i, a) in accounts.iter_mut().enumerate() {
        let id = a["id"].as_str().unwrap().to_owned();
        a["api_id"] = json!(1000 + i);
        a["api_hash"] = json!(API_HASH);
        if let Some(session) = sessions.get(id.as_str()) {
            a["session_data"] = json!(session);
        }
    }
    Value::Array(accounts)
}

async fn start_integration(answer: Value) -> (String, Arc<Integration>) {
    let up = Arc::new(Integration {
        answer,
        calls: AtomicUsize::new(0),
        refused: AtomicUsize::new(0),
        subjects: Mutex::new(BTreeSet::new()),
    });
    let app = Router::new()
        .route("/api/v1/accounts", get(accounts))
        .with_state(up.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), up)
}

/// The test's processes, folder, queues and database. Dropping it kills the processes, prints their
/// logs' tails when the test failed, and deletes the queues.
struct Deployment {
    dir: PathBuf,
    prefix: String,
    env: Vec<(&'static str, String)>,
    procs: Vec<Proc>,
    db: test_db::TestDb,
    /// Dropped after the processes' output was fed to it: fails the test if they logged a secret.
    _logs: log_scan::Check,
}

impl Deployment {
    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        for v in VARIABLES {
            cmd.env_remove(v.name);
        }
        cmd.env_remove("INVITE_FAILPOINTS");
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        cmd
    }

    fn spawn(&mut self, role: &str) -> usize {
        let label = format!("{}-{role}", self.procs.len() + 1);
        let out = self.dir.join(format!("{label}.stdout.log"));
        let err = self.dir.join(format!("{label}.stderr.log"));
        let mut cmd = self.command();
        cmd.arg(role)
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap());
        self.procs.push(Proc::start(cmd, label, None, out, err));
        self.procs.len() - 1
    }

    /// Everything the processes wrote so far.
    fn all_output(&self) -> String {
        self.procs
            .iter()
            .flat_map(|p| [&p.out, &p.err])
            .map(|f| std::fs::read_to_string(f).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            for p in &self.procs {
                eprintln!("===== {} =====\n{}\n{}", p.label, tail(&p.out, 40), tail(&p.err, 10));
            }
        }
        let outputs: Vec<(String, PathBuf)> = self
            .procs
            .iter()
            .flat_map(|p| {
                [
                    (format!("{}'s stdout", p.label), p.out.clone()),
                    (format!("{}'s stderr", p.label), p.err.clone()),
                ]
            })
            .collect();
        self.procs.clear();
        for (source, path) in outputs {
            log_scan::feed(&source, &std::fs::read_to_string(path).unwrap_or_default());
        }
        if failed {
            eprintln!("logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        delete_queues_blocking(BROKER_URL, &self.prefix);
    }
}

/// A token as the platform's gateway issues it, signed with the secret Vault holds.
fn user_token() -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": USER.to_string(), "user_id": USER, "iat": now, "exp": now + 3600});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_profile_runs_a_campaign_on_the_integration_services_accounts() {
    let began = Instant::now();
    let db = test_db::TestDb::new(test_db::Backend::Postgres).await;
    let prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
    require_broker_and_redis(BROKER_URL, REDIS_URL, &prefix).await;

    // Vault: the JWT secret where the running platform keeps it, and one account's session.
    let sessions: BTreeMap<&str, String> = [WITH_SESSION, ALSO_WITH_SESSION, BLOCKED, OTHER_USERS]
        .into_iter()
        .map(|id| (id, fresh_session()))
        .collect();
    let vault_session = fresh_session();
    let vault = FakeVault::start(0).await;
    vault.put("kv", "jwt", json!({"secret_key": JWT_SECRET}));
    vault.put(
        "kv",
        &format!("invite-service/accounts/{SESSION_IN_VAULT}"),
        json!({"session_data": vault_session}),
    );
    let (integration_url, integration) = start_integration(integration_answer(&sessions)).await;

    let dir = std::env::temp_dir().join(format!("invite-platform-profile-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("INVITE_DB_MAX_CONNECTIONS", "5".into()),
        ("CELERY_BROKER_URL", BROKER_URL.into()),
        ("REDIS_URL", REDIS_URL.into()),
        // The queues, the events channel and the Integration Service's cache in Redis are this test's.
        ("INVITE_QUEUE_PREFIX", prefix.clone()),
        ("INVITE_DATA_KEY", DATA_KEY.into()),
        ("INVITE_DATA_DIR", dir.join("data").display().to_string()),
        ("INVITE_BIND", "127.0.0.1:0".into()),
        ("INVITE_POLICY", POLICY.into()),
        ("INVITE_SANDBOX_WORLD", WORLD.into()),
        ("INVITE_WORKERS", "2".into()),
        ("INVITE_LOG", "info,sqlx=warn".into()),
        ("VAULT_ADDR", vault.url()),
        ("VAULT_ROLE_ID", ROLE_ID.into()),
        ("VAULT_SECRET_ID", SECRET_ID.into()),
        ("VAULT_KV_MOUNT", "kv".into()),
        ("VAULT_JWT_SECRET_PATH", "jwt".into()),
        ("INTEGRATION_SERVICE_URL", integration_url),
        ("INTEGRATION_ACCOUNTS_SANDBOX", "true".into()),
    ];
    let mut d = Deployment {
        dir,
        prefix,
        env,
        procs: Vec::new(),
        db,
        _logs: log_scan::capture(),
    };
    let migrate = d.command().arg("migrate").output().unwrap();
    assert!(
        migrate.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let api = d.spawn("api");
    let listening = d.procs[api].wait_for_log("listening", Duration::from_secs(30)).await;
    let worker = d.spawn("worker");
    d.procs[worker]
        .wait_for_log(
            "engine running in this process: scheduler and workers",
            Duration::from_secs(30),
        )
        .await;
    for p in [api, worker] {
        let warned = d.procs[p]
            .log()
            .into_iter()
            .find(|l| l["level"] == "WARN" && l["message"].as_str().unwrap_or_default().contains("NOT ON TELEGRAM"));
        assert!(
            warned.is_some(),
            "{} does not warn that the switch is on",
            d.procs[p].label
        );
    }
    let api = ApiClient::new(&listening, user_token());

    // A campaign of 9 people, started by the user: the start mirrors the Integration Service's list.
    let (status, task) = api
        .call(
            Method::POST,
            "/tasks",
            Some(json!({"name": "Platform", "action_type": "invite_to_group", "target_channel": "@platform_group"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    let id = task["id"].as_i64().unwrap();
    let people: Vec<String> = (0..TARGETS).map(|i| format!("profile{i:03}")).collect();
    api.import(id, &people).await;
    let (status, started) = api.call(Method::POST, &format!("/tasks/{id}/start"), None).await;
    assert_eq!(
        (status, &started["status"]),
        (StatusCode::OK, &json!("IN_PROGRESS")),
        "{started}"
    );

    let deadline = Instant::now() + Duration::from_secs(90);
    let task = loop {
        let (status, task) = api.call(Method::GET, &format!("/tasks/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{task}");
        if task["status"] != "IN_PROGRESS" {
            break task;
        }
        assert!(Instant::now() < deadline, "not complete within 90 s: {task}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(task["status"], "COMPLETED", "{task}");
    assert_eq!(task["completed_count"], TARGETS, "{task}");
    let (_, targets) = api
        .call(Method::GET, &format!("/tasks/{id}/targets?page_size=100"), None)
        .await;
    let statuses: Vec<&Value> = targets["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["status"])
        .collect();
    assert!(statuses.iter().all(|s| *s == "succeeded"), "{targets}");

    // The accounts: the user's usable ones, mirrored as kind integration; none of the others.
    let usable: BTreeSet<&str> = [WITH_SESSION, SESSION_IN_VAULT, ALSO_WITH_SESSION].into();
    let (_, listed) = api.call(Method::GET, "/accounts", None).await;
    let listed: BTreeMap<&str, (&Value, &Value)> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), (&a["kind"], &a["status"])))
        .collect();
    assert_eq!(listed.keys().copied().collect::<BTreeSet<_>>(), usable, "{listed:?}");
    assert!(
        listed
            .values()
            .all(|(kind, status)| *kind == "integration" && *status == "active"),
        "{listed:?}"
    );

    // The world's record: each target invited exactly once, into the one channel, by those accounts
    // only — and every one of them took part (one account may not invite more than 4 a minute).
    let (calls, deliveries) = d.db.store.world_record().await.unwrap();
    let world = WorldConfig::from_json(WORLD).unwrap();
    let folk = People::new(world.seed, world.people);
    let wanted: BTreeSet<i64> = people
        .iter()
        .map(|p| folk.by_username(p).expect("everyone exists").user_id)
        .collect();
    let invited: Vec<i64> = deliveries
        .iter()
        .filter(|d| d.kind == "invite")
        .map(|d| d.user_id)
        .collect();
    assert_eq!(invited.len(), TARGETS, "{deliveries:#?}");
    assert_eq!(
        invited.iter().copied().collect::<BTreeSet<_>>(),
        wanted,
        "each target exactly once"
    );
    let invite_calls: Vec<_> = calls
        .iter()
        .filter(|c| matches!(c.method.as_str(), "channels.inviteToChannel" | "messages.addChatUser"))
        .collect();
    assert_eq!(
        invite_calls.len(),
        TARGETS,
        "one invite call per target: {invite_calls:#?}"
    );
    let actors: BTreeSet<&str> = calls.iter().map(|c| c.account_id.as_str()).collect();
    assert_eq!(
        actors, usable,
        "only the Integration Service's usable accounts acted, all of them"
    );
    for outsider in [NO_SESSION_ANYWHERE, BLOCKED, OTHER_USERS] {
        assert!(!actors.contains(outsider), "{outsider} acted");
    }
    let policy = account_manager::policy_config::load(None, Some(POLICY)).unwrap();
    let audit = platforms::sandbox::audit::audit(&calls, &deliveries, &policy);
    assert_eq!((audit.duplicates, audit.violations), (0, 0), "{}", audit.to_text());

    // Every call to the Integration Service carried the service's JWT, signed with Vault's secret.
    assert!(integration.calls.load(Ordering::SeqCst) >= 1);
    assert_eq!(integration.refused.load(Ordering::SeqCst), 0);
    assert_eq!(
        integration.subjects.lock().unwrap().iter().collect::<Vec<_>>(),
        ["invite-service"]
    );
    assert!(vault.reads() >= 2, "the JWT secret and a session were read from Vault");

    // No secret in anything the processes wrote.
    let output = d.all_output();
    for (what, secret) in [
        ("the JWT secret", JWT_SECRET),
        ("the api_hash", API_HASH),
        ("the Vault session", vault_session.as_str()),
    ]
    .into_iter()
    .chain(sessions.values().map(|s| ("a session", s.as_str())))
    {
        assert!(!output.contains(secret), "the processes' output holds {what}");
    }
    println!(
        "platform profile: {TARGETS} targets invited once each by {} Integration Service accounts (one session \
         from Vault), {} world calls, {} Integration Service calls; {:.1} s",
        actors.len(),
        calls.len(),
        integration.calls.load(Ordering::SeqCst),
        began.elapsed().as_secs_f64()
    );
}
