//! The binary as a person runs it: fresh data folder, no configuration, `token`, `serve`, `--help`,
//! configuration errors, and the platform's `migrate` then `api` on PostgreSQL.

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use invite_service::config::VARIABLES;
use serde_json::{json, Value};

#[path = "common/fake_vault.rs"]
#[allow(dead_code)]
mod fake_vault;
#[path = "common/log_scan.rs"]
mod log_scan;

const BIN: &str = env!("CARGO_BIN_EXE_invite-service");

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("invite-cli-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A command with none of the service's variables inherited from the environment.
fn command(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd).stdin(Stdio::null());
    for v in VARIABLES {
        cmd.env_remove(v.name);
    }
    cmd
}

/// A server process; what it printed is scanned for secrets when it stops.
struct Server {
    child: Child,
    addr: String,
    metrics_addr: String,
    log: Vec<String>,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    _logs: log_scan::Check,
}

impl Server {
    /// Starts the binary and reads its JSON log until it says where it listens.
    fn start(mut cmd: Command) -> Server {
        let logs = log_scan::capture();
        let mut child = cmd
            .env("INVITE_BIND", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut log = Vec::new();
        let (addr, metrics_addr) = loop {
            let line = lines.next().expect("the server stopped before listening").unwrap();
            log.push(line.clone());
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("log line is not JSON: {line}"));
            if v["message"] == "listening" {
                let field = |k: &str| v[k].as_str().unwrap().to_string();
                break (field("addr"), field("metrics"));
            }
        };
        Server {
            child,
            addr,
            metrics_addr,
            log,
            lines,
            _logs: logs,
        }
    }

    fn stop(mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().unwrap();
        self.log.extend(self.lines.by_ref().map_while(Result::ok));
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        log_scan::feed("the server's stdout", &self.log.join("\n"));
        log_scan::feed("the server's stderr", &stderr);
        assert!(status.success(), "graceful shutdown exits 0, got {status}: {stderr}");
        std::mem::take(&mut self.log)
    }
}

fn http(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new()
            .request(method.parse().unwrap(), url)
            .timeout(Duration::from_secs(10));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}

#[test]
fn help_documents_every_subcommand_and_variable() {
    let dir = temp_dir("help");
    let out = command(&dir).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for sub in ["serve", "api", "migrate", "token"] {
        assert!(help.contains(&format!("  {sub} ")), "--help lacks {sub}:\n{help}");
    }
    for v in VARIABLES {
        assert!(help.contains(v.name), "--help lacks {}", v.name);
    }
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    for v in VARIABLES {
        assert!(readme.contains(&format!("`{}`", v.name)), "README.md lacks {}", v.name);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_invalid_value_stops_start_up_with_one_line_naming_it() {
    let dir = temp_dir("badenv");
    for (var, value) in [
        ("INVITE_BIND", "localhost:80"),
        ("DATABASE_URL", "mysql://x/y"),
        ("INVITE_DB_MAX_CONNECTIONS", "lots"),
    ] {
        let out = command(&dir).env(var, value).arg("serve").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(&format!("error: {var}: ")), "{stderr}");
    }
    assert!(
        !dir.join("data").exists(),
        "nothing is created when the configuration is wrong"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_fresh_folder_runs_standalone_with_no_configuration() {
    let dir = temp_dir("fresh");
    let out = command(&dir)
        .args(["token", "--user-id", "7", "--ttl", "2h"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "token prints only the token");
    let token = stdout.trim().to_string();
    assert_eq!(token.split('.').count(), 3);
    assert!(String::from_utf8(out.stderr).unwrap().contains("data/jwt-secret"));
    let secret = std::fs::read_to_string(dir.join("data/jwt-secret")).unwrap();

    let server = Server::start(command(&dir));
    let base = format!("http://{}/api/v1/invite", server.addr);
    assert!(dir.join("data/invite-service.db").exists());
    let (status, health) = http("GET", &format!("{base}/health"), None, None);
    assert_eq!((status, &health["store"]["backend"]), (200, &json!("sqlite")));
    let (status, task) = http(
        "POST",
        &format!("{base}/tasks"),
        Some(&token),
        Some(json!({"name": "first", "action_type": "invite_to_group", "target_channel": "@first_group"})),
    );
    assert_eq!(status, 201, "{task}");
    assert_eq!(task["user_id"], 7);
    let (status, _) = http("GET", &format!("{base}/tasks"), Some("garbage"), None);
    assert_eq!(status, 401);
    let log = server.stop();

    let all = log.join("\n");
    assert!(
        all.contains("generated a JWT secret") || all.contains("using the JWT secret stored"),
        "{all}"
    );
    assert!(all.contains("data/jwt-secret"), "the secret's path is logged");
    assert_eq!(
        profile_line(&log)["secrets"],
        "JWT secret: file ./data/jwt-secret; data key: file ./data/data-key; Telegram API credentials: none (each account brings its own)"
    );
    assert!(!all.contains(secret.trim()), "the secret never appears in the log");
    let data_key = std::fs::read_to_string(dir.join("data/data-key")).unwrap();
    assert!(all.contains("data/data-key"), "the data key's path is logged");
    assert!(!all.contains(data_key.trim()), "the data key never appears in the log");
    assert_ne!(data_key.trim(), secret.trim(), "the data key is not the JWT secret");
    assert!(!all.contains(&token), "tokens never appear in the log");
    for line in &log {
        serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
    }
    assert!(log
        .iter()
        .any(|l| l.contains("\"request_id\"") && l.contains("request handled")));

    // A restart keeps the data and the secret: the same token still works.
    let server = Server::start(command(&dir));
    let (status, list) = http(
        "GET",
        &format!("http://{}/api/v1/invite/tasks", server.addr),
        Some(&token),
        None,
    );
    assert_eq!((status, &list["total"]), (200, &json!(1)));
    server.stop();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn metrics_move_to_their_own_listener_when_asked() {
    let dir = temp_dir("metrics");
    let mut cmd = command(&dir);
    cmd.env("INVITE_METRICS_BIND", "127.0.0.1:0");
    let server = Server::start(cmd);
    assert_ne!(server.addr, server.metrics_addr);
    assert_eq!(blocking_text(&format!("http://{}/metrics", server.metrics_addr)).0, 200);
    let (status, _) = http("GET", &format!("http://{}/metrics", server.addr), None, None);
    assert_eq!(status, 404, "not on the API listener any more");
    let after = blocking_text(&format!("http://{}/metrics", server.metrics_addr));
    assert!(
        after
            .1
            .contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{}",
        after.1
    );
    server.stop();
    std::fs::remove_dir_all(dir).unwrap();
}

fn blocking_text(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let resp = reqwest::get(url).await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

#[test]
fn platform_profile_migrates_then_serves_the_api_on_postgres() {
    use sqlx::{Connection, Executor};
    let admin =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("invite_cli_{}", uuid::Uuid::new_v4().simple());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL is required for this test");
        c.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await.unwrap();
    });
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    let dir = temp_dir("platform");
    let with_db = |args: &[&str]| {
        let mut cmd = command(&dir);
        cmd.env("DATABASE_URL", url.as_str())
            .env("INVITE_JWT_SECRET", "platform-secret-0123456789")
            .env(
                "INVITE_DATA_KEY",
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            )
            .args(args);
        cmd
    };

    let refused = with_db(&["api"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("run `invite-service migrate`"));

    assert!(with_db(&["migrate"]).status().unwrap().success());
    assert!(
        with_db(&["migrate"]).status().unwrap().success(),
        "migrate is idempotent"
    );
    let server = Server::start(with_db(&["api"]));
    let (status, health) = http(
        "GET",
        &format!("http://{}/api/v1/invite/health", server.addr),
        None,
        None,
    );
    assert_eq!((status, &health["store"]["backend"]), (200, &json!("postgres")));
    server.stop();
    assert!(
        !dir.join("data").exists(),
        "the platform profile writes nothing to the data folder"
    );

    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        c.execute(format!("DROP DATABASE \"{name}\" WITH (FORCE)").as_str())
            .await
            .unwrap();
    });
    std::fs::remove_dir_all(dir).unwrap();
}

/// The one line that says which profile and backends the service runs on.
fn profile_line(log: &[String]) -> Value {
    let lines: Vec<Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "startup profile")
        .collect();
    assert_eq!(lines.len(), 1, "one profile line: {log:#?}");
    lines[0].clone()
}

/// Fails when the profile line shows a secret; the whole log is scanned when the server stops.
fn assert_no_secret(line: &Value, secrets: &[&str]) {
    let text = line.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "a secret in the profile line: {text}");
    }
    assert!(!text.contains('@'), "credentials in a URL of the profile line: {text}");
}

/// The log of a server that started, answered, then stopped.
fn started_and_stopped(cmd: Command) -> Vec<String> {
    let server = Server::start(cmd);
    // Once it answers it also handles SIGTERM, installed just after it logs where it listens.
    let (status, _) = http(
        "GET",
        &format!("http://{}/api/v1/invite/health", server.addr),
        None,
        None,
    );
    assert_eq!(status, 200);
    server.stop()
}

#[test]
fn the_start_up_line_names_the_profile_and_every_backend_without_a_secret() {
    const JWT_SECRET: &str = "platform-secret-0123456789";
    const DATA_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const VAULT_JWT_SECRET: &str = "jwt-secret-kept-in-vault-9c1e4f";
    let password = log_scan::URL_PASSWORD;
    let secrets = [
        JWT_SECRET,
        DATA_KEY,
        VAULT_JWT_SECRET,
        password,
        fake_vault::SECRET_ID,
        "guest:guest",
    ];
    let parsing = format!("http://svc:{password}@127.0.0.1:9/parsing?token={password}");

    // Standalone: SQLite, everything in process, secrets from the environment.
    let dir = temp_dir("profile-standalone");
    let mut cmd = command(&dir);
    cmd.env("INVITE_JWT_SECRET", JWT_SECRET)
        .env("INVITE_DATA_KEY", DATA_KEY)
        .env("PARSING_SERVICE_URL", &parsing);
    let log = started_and_stopped(cmd);
    let line = profile_line(&log);
    let field = |line: &Value, k: &str| line[k].as_str().unwrap_or_else(|| panic!("no {k}: {line}")).to_owned();
    assert_eq!(
        [
            "profile",
            "roles",
            "store",
            "queue",
            "cache_and_events",
            "secrets",
            "accounts",
            "parsing_service",
            "api_gateway"
        ]
        .map(|k| field(&line, k)),
        [
            "standalone",
            "api and engine",
            "SQLite ./data/invite-service.db",
            "in-process",
            "in-process",
            "JWT secret: environment; data key: environment; Telegram API credentials: none (each account brings its own)",
            "own registry, sandbox",
            "http://127.0.0.1:9/parsing/",
            "not configured",
        ],
        "{line}"
    );
    assert_eq!(line["level"], "INFO");
    assert_no_secret(&line, &secrets);
    std::fs::remove_dir_all(dir).unwrap();

    // Platform: PostgreSQL, RabbitMQ and Redis, Vault, the Integration Service and the API Gateway.
    use sqlx::{Connection, Executor};
    let admin =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("invite_cli_{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
    // The fake Vault is served by this runtime's workers while the test waits on the process.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let vault = rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL is required for this test");
        c.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await.unwrap();
        let vault = fake_vault::FakeVault::start(0).await;
        vault.put(
            "secret",
            "invite-service/jwt_secret",
            json!({"secret_key": VAULT_JWT_SECRET}),
        );
        vault
    });
    let mut db_url = url::Url::parse(&admin).unwrap();
    db_url.set_path(&name);
    if db_url.password().is_none() {
        // Trust authentication never asks for it: it is there to be left out of the log.
        db_url.set_password(Some(password)).unwrap();
    }
    let db_password = db_url.password().unwrap().to_owned();
    let dir = temp_dir("profile-platform");
    let mut cmd = command(&dir);
    cmd.env("DATABASE_URL", db_url.as_str())
        .env("INVITE_DATA_KEY", DATA_KEY)
        .env("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
        .env("REDIS_URL", "redis://127.0.0.1:6379")
        .env("INVITE_QUEUE_PREFIX", &prefix)
        .env("VAULT_ADDR", vault.url())
        .env("VAULT_ROLE_ID", fake_vault::ROLE_ID)
        .env("VAULT_SECRET_ID", fake_vault::SECRET_ID)
        .env(
            "INTEGRATION_SERVICE_URL",
            format!("http://svc:{password}@127.0.0.1:9/integration"),
        )
        .env("API_GATEWAY_URL", "http://127.0.0.1:9/gateway")
        .env("PARSING_SERVICE_URL", &parsing);
    let log = started_and_stopped(cmd);
    let line = profile_line(&log);
    let expected = [
        ("profile", "platform".to_owned()),
        (
            "store",
            format!(
                "PostgreSQL postgres://{}/{name}",
                db_url.authority().rsplit('@').next().unwrap()
            ),
        ),
        ("queue", "RabbitMQ amqp://127.0.0.1:5672/%2f".to_owned()),
        ("cache_and_events", "Redis redis://127.0.0.1:6379".to_owned()),
        (
            "secrets",
            format!(
                "JWT secret: Vault {}/; data key: environment; Telegram API credentials: Vault",
                vault.url()
            ),
        ),
        (
            "accounts",
            "Integration Service http://127.0.0.1:9/integration/ (mirrored), own registry, sandbox".to_owned(),
        ),
        ("parsing_service", "http://127.0.0.1:9/parsing/".to_owned()),
        ("api_gateway", "http://127.0.0.1:9/gateway/".to_owned()),
    ];
    for (k, v) in expected {
        assert_eq!(field(&line, k), v, "{k} in {line}");
    }
    assert_no_secret(&line, &[&secrets[..], &[db_password.as_str()]].concat());

    rt.block_on(async {
        let queue = invite_service::engine::queue::rabbitmq::RabbitQueue::connect_with_prefix(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            &prefix,
        )
        .await
        .unwrap();
        queue.delete_queues().await.unwrap();
        queue.close().await;
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        c.execute(format!("DROP DATABASE \"{name}\" WITH (FORCE)").as_str())
            .await
            .unwrap();
    });
    std::fs::remove_dir_all(dir).unwrap();
}

/// One invite and, when `twice`, one message delivered by two accounts, through the adapter on the
/// sandbox world of this database.
async fn sandbox_activity(store: store::SharedStore, twice: bool) {
    use platforms::{
        sandbox::{SandboxWorld, WorldConfig},
        telegram::TelegramStrategy,
        AccountCredentials, DeliveryKey, InviteStrategy, TargetRef,
    };
    let world = SandboxWorld::new(store, std::sync::Arc::new(clock::SystemClock), WorldConfig::default());
    let strategy = TelegramStrategy::over(world.clone());
    let connect = |id: &str| {
        let credentials = AccountCredentials {
            account_id: id.into(),
            secret: String::new(),
            api_id: None,
        };
        let strategy = &strategy;
        async move { strategy.connect(&credentials).await.unwrap() }
    };
    let name = (0..10_000)
        .map(|i| format!("person{i}"))
        .find(|n| {
            world.people().by_username(n).is_some_and(|p| {
                p.being == platforms::sandbox::people::Being::Person
                    && p.on_invite == platforms::sandbox::people::OnInvite::Accepts
                    && p.on_message == platforms::sandbox::people::OnMessage::Accepts
            })
        })
        .unwrap();
    let target = TargetRef {
        username: Some(domain::username::Username::parse(&name).unwrap()),
        ..TargetRef::default()
    };
    let mut a = connect("acc-a").await;
    let group = a
        .lookup_channel(&domain::channel::ChannelRef::parse("@launch_group").unwrap())
        .await
        .unwrap();
    let peer = a.resolve(&target).await.unwrap();
    assert!(a.invite(&group, &peer).await.outcome.consumes_target());
    if twice {
        let key = DeliveryKey {
            task_id: 1,
            target_id: 1,
        };
        a.send_message(&peer, "Hello", key).await;
        let mut b = connect("acc-b").await;
        let peer_b = b.resolve(&target).await.unwrap();
        b.send_message(&peer_b, "Hello", key).await;
    }
}

#[tokio::test]
async fn sandbox_audit_prints_the_worlds_record_and_fails_on_a_duplicate() {
    for twice in [false, true] {
        let db = test_db::TestDb::new(test_db::Backend::Sqlite).await;
        sandbox_activity(db.store.clone(), twice).await;
        let dir = temp_dir("audit");
        let out = command(&dir)
            .env("DATABASE_URL", &db.url)
            .args(["sandbox", "audit", "--json"])
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        assert_eq!(report["invites_delivered"], 1);
        assert_eq!(report["violations"], 0, "{report}");
        assert!(report["calls"].as_u64().unwrap() >= 3);
        assert!(report["min_seconds_between_invites_of_an_account"].is_null());
        if twice {
            assert_eq!(out.status.code(), Some(1), "a duplicate fails the audit");
            assert!(report["duplicates"].as_u64().unwrap() >= 1);
            assert_eq!(report["messages_delivered"], 2);
        } else {
            assert_eq!(out.status.code(), Some(0));
            assert_eq!(report["duplicates"], 0);
            let text = command(&dir)
                .env("DATABASE_URL", &db.url)
                .args(["sandbox", "audit"])
                .output()
                .unwrap();
            let text = String::from_utf8(text.stdout).unwrap();
            assert!(text.contains("duplicate deliveries: 0"), "{text}");
            assert!(text.contains("channels.inviteToChannel"), "{text}");
        }
    }
}

#[test]
fn simulate_prints_one_json_object_with_the_figures_and_exits_clean() {
    let dir = temp_dir("simulate");
    let out = command(&dir)
        .args([
            "simulate",
            "--accounts",
            "3",
            "--channels",
            "2",
            "--tasks",
            "2",
            "--targets",
            "300",
            "--days",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    for key in [
        "actions",
        "theoretical_max",
        "utilization",
        "violations",
        "duplicates",
        "lost",
        "wall_seconds",
    ] {
        assert!(report.get(key).is_some(), "{key} missing: {report}");
    }
    for key in [
        "max_invites_per_account_24h",
        "max_invites_per_account_channel_24h",
        "max_invites_per_account_channel_total",
        "min_seconds_between_invites_of_an_account",
    ] {
        assert!(
            report["observed"].get(key).is_some(),
            "observed.{key} missing: {report}"
        );
    }
    assert_eq!(report["theoretical_max"], 90, "3 accounts × 30 a day");
    assert_eq!(report["actions"], 90);
    assert_eq!(report["violations"], 0);

    let bad = command(&dir)
        .args(["simulate", "--tasks", "1", "--channels", "2"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--tasks must be at least --channels"));
}
