//! Vault against a local server that speaks its AppRole, token and KV v2 APIs: the JWT secret at the
//! spec's location and at the running platform's, renewal before expiry, a new login when renewal is
//! refused or the token has expired, a clear exit when Vault is down at start, cached secrets and a
//! degraded status when it goes down later, and no secret in any text the service prints.

#[path = "common/fake_vault.rs"]
mod fake_vault;
#[path = "common/log_scan.rs"]
mod log_scan;

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use clock::{SharedClock, SystemClock};
use domain::UserId;
use fake_vault::{FakeVault, ROLE_ID, SECRET_ID};
use invite_service::{
    api::auth::Authenticator,
    app::{self, Schema},
    config::{Config, VARIABLES},
    secrets::Secret,
    vault::{Vault, VaultConfig, VaultError, VaultStatus},
};
use serde_json::{json, Value};

const JWT_SECRET: &str = "jwt-secret-kept-in-vault-9c1e4f";
const PLATFORM_JWT_SECRET: &str = "jwt-secret-of-the-running-platform-77ab";
const API_HASH: &str = "0123456789abcdef0123456789abcdef";
const SESSION: &str = "1BVtsOKABu0-session-string-of-account-one";
const ACCOUNT: &str = "3f2a8c1e-6b7d-4e5f-9a0b-1c2d3e4f5a6b";

fn config(fake: &FakeVault) -> VaultConfig {
    let mut c = VaultConfig::new(
        fake.url().parse().unwrap(),
        ROLE_ID.into(),
        Secret::new(SECRET_ID.into()),
    );
    c.timeout = Duration::from_millis(500);
    c.retry_interval = Duration::from_millis(100);
    c
}

/// A Vault holding the secrets at the spec's default locations.
async fn stocked_vault(ttl_seconds: u64) -> FakeVault {
    let fake = FakeVault::start(ttl_seconds).await;
    fake.put("secret", "invite-service/jwt_secret", json!({"secret_key": JWT_SECRET}));
    fake.put(
        "secret",
        "telegram/api_credentials",
        json!({"api_id": 123456, "api_hash": API_HASH}),
    );
    fake.put(
        "secret",
        &format!("invite-service/accounts/{ACCOUNT}"),
        json!({"session_data": SESSION}),
    );
    fake
}

/// An address where nothing listens.
async fn closed_address() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "not within 3 s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The health endpoint's answer, once its `vault` entry has the given status (within 3 s).
async fn health_once_vault_is(client: &reqwest::Client, base: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let response = client.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(response.status(), 200, "Vault's state leaves the service up");
        let body: Value = response.json().await.unwrap();
        if body["vault"]["status"] == status {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Vault not {status} within 3 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fails when `text` holds any secret this file uses or any token the fake Vault handed out.
fn assert_no_secret(text: &str, fake: &FakeVault) {
    for secret in [SECRET_ID, JWT_SECRET, PLATFORM_JWT_SECRET, API_HASH, SESSION] {
        assert!(!text.contains(secret), "a secret leaked into: {text}");
    }
    for token in fake.tokens() {
        assert!(!text.contains(&token), "a Vault token leaked into: {text}");
    }
}

/// Everything logged on this thread (a current-thread runtime runs the Vault's keeper there too), also
/// fed to the log scan.
fn capture_logs() -> (tracing::subscriber::DefaultGuard, Arc<Mutex<Vec<u8>>>) {
    #[derive(Clone)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = Buffer(buffer.clone());
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish()
        .with(log_scan::layer());
    (tracing::subscriber::set_default(subscriber), buffer)
}

fn logged(buffer: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8(buffer.lock().unwrap().clone()).unwrap()
}

#[tokio::test]
async fn logs_in_and_reads_the_jwt_secret_at_the_specs_location() {
    let _logs = log_scan::capture();
    let fake = stocked_vault(60).await;
    let vault = Vault::connect(config(&fake)).await.unwrap();
    assert_eq!(fake.logins(), 1);
    assert_eq!(vault.jwt_secret().await.unwrap().expose(), JWT_SECRET);
    assert_eq!(vault.jwt_secret().await.unwrap().expose(), JWT_SECRET);
    assert_eq!(fake.reads(), 1, "a secret read once is served from memory");
    assert_eq!(vault.status(), VaultStatus::Healthy);
    assert_eq!(vault.address(), format!("{}/", fake.url()));
}

#[tokio::test]
async fn the_running_platforms_kv_jwt_secret_key_is_expressible() {
    let _logs = log_scan::capture();
    let fake = stocked_vault(60).await;
    fake.put("kv", "jwt", json!({"secret_key": PLATFORM_JWT_SECRET, "other": "x"}));
    let url = fake.url();
    let env: HashMap<String, String> = [
        ("VAULT_ADDR", url.as_str()),
        ("VAULT_ROLE_ID", ROLE_ID),
        ("VAULT_SECRET_ID", SECRET_ID),
        ("VAULT_KV_MOUNT", "kv"),
        ("VAULT_JWT_SECRET_PATH", "jwt"),
        ("VAULT_JWT_SECRET_KEY", "secret_key"),
        ("VAULT_TIMEOUT_SECONDS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = Config::from_vars(&env).unwrap().vault.unwrap();
    let vault = Vault::connect(config).await.unwrap();
    assert_eq!(vault.jwt_secret().await.unwrap().expose(), PLATFORM_JWT_SECRET);

    let mut wrong_key = self::config(&fake);
    wrong_key.kv_mount = "kv".into();
    wrong_key.jwt_secret_path = "jwt".into();
    wrong_key.jwt_secret_key = "jwt_secret".into();
    let err = Vault::connect(wrong_key).await.unwrap().jwt_secret().await.unwrap_err();
    assert_eq!(err.to_string(), "the Vault secret at kv/jwt has no key \"jwt_secret\"");
    let mut nowhere = self::config(&fake);
    nowhere.jwt_secret_path = "nothing/here".into();
    let err = Vault::connect(nowhere).await.unwrap().jwt_secret().await.unwrap_err();
    assert_eq!(err.to_string(), "Vault holds no secret at secret/nothing/here (KV v2)");
}

#[tokio::test]
async fn reads_telegram_credentials_and_account_sessions() {
    let _logs = log_scan::capture();
    let fake = stocked_vault(60).await;
    let vault = Vault::connect(config(&fake)).await.unwrap();
    let telegram = vault.telegram_credentials().await.unwrap().unwrap();
    assert_eq!((telegram.api_id, telegram.api_hash.expose()), (123456, API_HASH));
    assert_eq!(vault.account_session(ACCOUNT).await.unwrap().unwrap().expose(), SESSION);
    assert!(vault.account_session("no-such-account").await.unwrap().is_none());
    for bad in ["../jwt", "a/b", "", ".."] {
        let err = vault.account_session(bad).await.unwrap_err();
        assert!(matches!(err, VaultError::BadAccountId(_)), "{bad:?}: {err}");
    }

    fake.put(
        "secret",
        "invite-service/accounts/no-session",
        json!({"phone": "+1555"}),
    );
    let err = vault.account_session("no-session").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the Vault secret at secret/invite-service/accounts/no-session has no key \"session_data\""
    );

    let mut elsewhere = config(&fake);
    elsewhere.account_session_path = "telegram/sessions/{account_id}/current".into();
    elsewhere.telegram_credentials_path = "telegram/none".into();
    fake.put(
        "secret",
        "telegram/sessions/acc-7/current",
        json!({"session_data": SESSION}),
    );
    let vault = Vault::connect(elsewhere).await.unwrap();
    assert_eq!(vault.account_session("acc-7").await.unwrap().unwrap().expose(), SESSION);
    assert!(vault.telegram_credentials().await.unwrap().is_none());

    let fake = FakeVault::start(60).await;
    fake.put(
        "secret",
        "telegram/api_credentials",
        json!({"api_id": "not-a-number", "api_hash": API_HASH}),
    );
    let err = Vault::connect(config(&fake))
        .await
        .unwrap()
        .telegram_credentials()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the Vault secret at secret/telegram/api_credentials, key \"api_id\", is not a positive integer"
    );
}

#[tokio::test]
async fn the_token_is_renewed_before_it_expires() {
    let _logs = log_scan::capture();
    let fake = stocked_vault(1).await;
    let vault = Vault::connect(config(&fake)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(
        fake.renewals() >= 2,
        "renewed at 2/3 of each 1 s lease: {}",
        fake.renewals()
    );
    assert_eq!(fake.logins(), 1, "renewal kept the first token alive");
    assert_eq!(vault.jwt_secret().await.unwrap().expose(), JWT_SECRET);
    assert_eq!(fake.logins(), 1, "the renewed token still reads");
    assert_eq!(vault.status(), VaultStatus::Healthy);
}

#[tokio::test]
async fn a_refused_renewal_means_a_new_login() {
    let _logs = log_scan::capture();
    let fake = stocked_vault(1).await;
    fake.refuse_renewal(true);
    let vault = Vault::connect(config(&fake)).await.unwrap();
    eventually("a new login after the refused renewal", || fake.logins() >= 2).await;
    assert!(fake.renewals() >= 1);
    assert_eq!(vault.jwt_secret().await.unwrap().expose(), JWT_SECRET);
    assert_eq!(vault.status(), VaultStatus::Healthy);
}

#[tokio::test]
async fn a_token_that_cannot_be_renewed_is_replaced_before_it_expires() {
    let _logs = log_scan::capture();
    let fake = stocked_vault(1).await;
    fake.set_renewable(false);
    let vault = Vault::connect(config(&fake)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(fake.logins(), 2, "logged in again at 2/3 of the lease");
    assert_eq!(fake.renewals(), 0, "no renewal of a token Vault said is not renewable");
    assert_eq!(vault.jwt_secret().await.unwrap().expose(), JWT_SECRET);
}

#[tokio::test]
async fn an_expired_token_means_a_new_login() {
    let _logs = log_scan::capture();
    let fake = stocked_vault(60).await;
    let vault = Vault::connect(config(&fake)).await.unwrap();
    fake.expire_tokens();
    assert_eq!(
        vault.account_session(ACCOUNT).await.unwrap().unwrap().expose(),
        SESSION,
        "the read refused for the expired token is made again after a new login"
    );
    assert_eq!(fake.logins(), 2);

    // Between renewals the keeper looks the token up, and finds out on its own.
    let mut looked_up = config(&fake);
    looked_up.check_interval = Duration::from_millis(100);
    let _vault = Vault::connect(looked_up).await.unwrap();
    assert_eq!(fake.logins(), 3);
    fake.expire_tokens();
    eventually("a new login after lookup-self is refused", || fake.logins() == 4).await;
    assert!(fake.lookups() >= 1);
}

#[tokio::test]
async fn a_path_the_policy_denies_is_an_error_not_a_new_login() {
    let _logs = log_scan::capture();
    let fake = stocked_vault(60).await;
    fake.deny("secret", "invite-service/accounts/forbidden");
    let vault = Vault::connect(config(&fake)).await.unwrap();
    let logins = fake.logins();
    for _ in 0..3 {
        let err = vault.account_session("forbidden").await.unwrap_err();
        assert!(matches!(err, VaultError::Refused { status: 403, .. }), "{err}");
    }
    assert_eq!(fake.logins(), logins, "a valid token denied a path keeps being used");
    assert_eq!(vault.account_session(ACCOUNT).await.unwrap().unwrap().expose(), SESSION);
}

#[tokio::test]
async fn vault_down_at_start_is_a_clear_error() {
    let _logs = log_scan::capture();
    let (_logs, logs) = capture_logs();
    let addr = closed_address().await;
    let fake = FakeVault::start(60).await;
    let mut unreachable = config(&fake);
    unreachable.addr = addr.parse().unwrap();
    let err = Vault::connect(unreachable).await.unwrap_err();
    assert!(err.is_outage());
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot reach Vault at {addr}/ (VAULT_ADDR) to log in with AppRole: "
        )),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "says why: {text}");
    assert_eq!(text.lines().count(), 1);

    let mut wrong_secret = config(&fake);
    wrong_secret.secret_id = Secret::new("a-wrong-secret-id-31337".into());
    let text = Vault::connect(wrong_secret).await.unwrap_err().to_string();
    assert_eq!(
        text,
        "Vault refused to log in with AppRole (400: invalid role or secret ID) — check VAULT_ROLE_ID and VAULT_SECRET_ID"
    );

    // The service's start stops with that message, before it listens.
    let dir = std::env::temp_dir().join(format!("invite-vault-{}", uuid::Uuid::new_v4().simple()));
    let data_dir = dir.to_str().unwrap().to_string();
    let database_url = format!("sqlite:{data_dir}/invite.db");
    let mut env: HashMap<String, String> = [
        ("DATABASE_URL", database_url.as_str()),
        ("INVITE_DATA_DIR", data_dir.as_str()),
        ("INVITE_BIND", "127.0.0.1:0"),
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_ROLE_ID", ROLE_ID),
        ("VAULT_SECRET_ID", SECRET_ID),
        ("VAULT_TIMEOUT_SECONDS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = Config::from_vars(&env).unwrap();
    let store = app::open_store(&config).await.unwrap();
    app::prepare_schema(&store, Schema::Migrate).await.unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let err = app::start(&config, store.clone(), clock.clone(), app::Roles::ApiAndEngine)
        .await
        .err()
        .expect("no start without Vault");
    assert!(
        format!("{err:#}").contains("(VAULT_ADDR) to log in with AppRole"),
        "{err:#}"
    );
    assert_no_secret(&format!("{err:#}"), &fake);

    // Vault answers but holds no JWT secret where it is looked for.
    env.insert("VAULT_ADDR".into(), fake.url());
    let config = Config::from_vars(&env).unwrap();
    let err = app::start(&config, store, clock, app::Roles::ApiAndEngine)
        .await
        .err()
        .expect("no start without the JWT secret");
    assert_eq!(
        format!("{err:#}"),
        "cannot read the JWT secret (VAULT_KV_MOUNT, VAULT_JWT_SECRET_PATH, VAULT_JWT_SECRET_KEY): \
         Vault holds no secret at secret/invite-service/jwt_secret (KV v2)"
    );
    assert!(
        !dir.join("jwt-secret").exists(),
        "no secret of its own is generated when Vault is configured"
    );
    assert_no_secret(&logged(&logs), &fake);
    assert!(!logged(&logs).contains("a-wrong-secret-id-31337"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn serve_exits_non_zero_with_a_clear_message_when_vault_cannot_be_reached() {
    let _logs = log_scan::capture();
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let dir = std::env::temp_dir().join(format!("invite-vault-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_invite-service"));
        cmd.current_dir(&dir).stdin(Stdio::null());
        for v in VARIABLES {
            cmd.env_remove(v.name);
        }
        cmd.env("INVITE_BIND", "127.0.0.1:0")
            .env("VAULT_ADDR", &addr)
            .env("VAULT_ROLE_ID", ROLE_ID)
            .env("VAULT_SECRET_ID", SECRET_ID)
            .env("VAULT_TIMEOUT_SECONDS", "1")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["serve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!(
            "error: cannot reach Vault at {addr}/ (VAULT_ADDR) to log in with AppRole: "
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    log_scan::feed("serve's stdout", &stdout);
    log_scan::feed("serve's stderr", &stderr);
    assert!(!stdout.contains("\"listening\""), "{stdout}");
    for text in [&stderr, &stdout] {
        assert!(!text.contains(SECRET_ID), "{text}");
    }

    // `token` signs with a local secret, which is not the one the platform's tokens carry.
    let out = run(&["token", "--user-id", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("the JWT secret is kept in Vault"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(!dir.join("data/jwt-secret").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn vault_down_later_serves_cached_secrets_as_degraded_then_recovers() {
    let _logs = log_scan::capture();
    let (_logs, logs) = capture_logs();
    let fake = stocked_vault(60).await;
    let mut c = config(&fake);
    c.refresh_after = Duration::ZERO;
    c.cache_ttl = Duration::from_millis(1200);
    let vault = Vault::connect(c).await.unwrap();
    assert_eq!(vault.jwt_secret().await.unwrap().expose(), JWT_SECRET);
    assert_eq!(vault.account_session(ACCOUNT).await.unwrap().unwrap().expose(), SESSION);

    fake.go_down().await;
    assert_eq!(
        vault.account_session(ACCOUNT).await.unwrap().unwrap().expose(),
        SESSION,
        "the cached session is served while Vault is down"
    );
    let VaultStatus::Degraded { since, reason } = vault.status() else {
        panic!("not degraded: {:?}", vault.status());
    };
    assert!(since <= chrono::Utc::now());
    assert_eq!(reason, "cannot reach Vault to read a KV v2 secret");
    assert_eq!(vault.jwt_secret().await.unwrap().expose(), JWT_SECRET);
    let err = vault.account_session("never-read").await.unwrap_err();
    assert!(err.is_outage(), "{err}");
    assert!(err.to_string().contains("(VAULT_ADDR)"), "{err}");

    fake.come_back().await;
    eventually("healthy again", || vault.status() == VaultStatus::Healthy).await;
    fake.put(
        "secret",
        &format!("invite-service/accounts/{ACCOUNT}"),
        json!({"session_data": "rotated-session"}),
    );
    assert_eq!(
        vault.account_session(ACCOUNT).await.unwrap().unwrap().expose(),
        "rotated-session",
        "read afresh once Vault answers"
    );

    fake.go_down().await;
    assert!(vault.account_session(ACCOUNT).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let err = vault.account_session(ACCOUNT).await.unwrap_err();
    assert!(err.is_outage(), "a cached secret expires: {err}");

    let all = logged(&logs);
    assert!(all.contains("Vault is degraded"), "{all}");
    assert!(all.contains("Vault answers again"), "{all}");
    assert_no_secret(&all, &fake);
    assert!(!all.contains("rotated-session"));
}

#[tokio::test]
async fn the_health_endpoint_shows_vault_and_the_api_verifies_with_its_secret() {
    let _logs = log_scan::capture();
    let fake = stocked_vault(60).await;
    let dir = std::env::temp_dir().join(format!("invite-vault-app-{}", uuid::Uuid::new_v4().simple()));
    let data_dir = dir.to_str().unwrap().to_string();
    let database_url = format!("sqlite:{data_dir}/invite.db");
    let url = fake.url();
    let env = |vault: bool| -> HashMap<String, String> {
        let mut vars = vec![
            ("DATABASE_URL", database_url.as_str()),
            ("INVITE_DATA_DIR", data_dir.as_str()),
            ("INVITE_BIND", "127.0.0.1:0"),
        ];
        if vault {
            vars.extend([
                ("VAULT_ADDR", url.as_str()),
                ("VAULT_ROLE_ID", ROLE_ID),
                ("VAULT_SECRET_ID", SECRET_ID),
            ]);
        }
        vars.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let mut config = Config::from_vars(&env(true)).unwrap();
    let vault_config = config.vault.as_mut().unwrap();
    vault_config.check_interval = Duration::from_millis(100);
    vault_config.retry_interval = Duration::from_millis(100);
    vault_config.timeout = Duration::from_millis(500);
    let store = app::open_store(&config).await.unwrap();
    app::prepare_schema(&store, Schema::Migrate).await.unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let running = app::start(&config, store.clone(), clock.clone(), app::Roles::ApiOnly)
        .await
        .unwrap();
    let base = format!("http://{}/api/v1/invite", running.addr.unwrap());
    let client = reqwest::Client::new();
    let body = health_once_vault_is(&client, &base, "ok").await;
    assert_eq!(body["vault"], json!({"status": "ok"}), "{body}");

    let user = UserId::new(5).unwrap();
    let token = |secret: &str| {
        Authenticator::new(&Secret::new(secret.into()), "user_id".into(), clock.clone())
            .issue(user, chrono::Duration::minutes(5))
    };
    let tasks = |token: String| client.get(format!("{base}/tasks")).bearer_auth(token).send();
    assert_eq!(
        tasks(token(JWT_SECRET)).await.unwrap().status(),
        200,
        "tokens signed with Vault's secret pass"
    );
    assert_eq!(
        tasks(token("some-other-secret-0123456789")).await.unwrap().status(),
        401
    );
    assert!(!dir.join("jwt-secret").exists());

    fake.go_down().await;
    let degraded = health_once_vault_is(&client, &base, "degraded").await["vault"].clone();
    assert!(degraded["since"].is_string(), "{degraded}");
    assert!(
        degraded["reason"]
            .as_str()
            .unwrap()
            .starts_with("cannot reach Vault to "),
        "{degraded}"
    );
    assert!(
        !degraded.to_string().contains("127.0.0.1"),
        "an unauthenticated endpoint does not say where Vault is: {degraded}"
    );
    assert_no_secret(&degraded.to_string(), &fake);
    fake.come_back().await;
    let body = health_once_vault_is(&client, &base, "ok").await;
    assert_eq!(body["vault"], json!({"status": "ok"}), "{body}");
    running.shutdown();
    running.wait().await.unwrap();

    let standalone = Config::from_vars(&env(false)).unwrap();
    let running = app::start(&standalone, store, clock, app::Roles::ApiOnly)
        .await
        .unwrap();
    let body: Value = reqwest::get(format!("http://{}/api/v1/invite/health", running.addr.unwrap()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("vault").is_none(), "no Vault entry without VAULT_ADDR: {body}");
    running.shutdown();
    running.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn nothing_that_holds_a_secret_prints_it() {
    let _logs = log_scan::capture();
    let fake = stocked_vault(60).await;
    let vault = Vault::connect(config(&fake)).await.unwrap();
    let telegram = vault.telegram_credentials().await.unwrap().unwrap();
    let session = vault.account_session(ACCOUNT).await.unwrap().unwrap();
    let jwt = vault.jwt_secret().await.unwrap();
    let url = fake.url();
    let env: HashMap<String, String> = [
        ("VAULT_ADDR", url.as_str()),
        ("VAULT_ROLE_ID", ROLE_ID),
        ("VAULT_SECRET_ID", SECRET_ID),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let shown = [
        format!("{vault:?}"),
        format!("{:?}", config(&fake)),
        format!("{:?}", Config::from_vars(&env).unwrap()),
        format!("{telegram:?}"),
        format!("{session:?} {jwt:?}"),
        format!("{:?}", vault.status()),
    ];
    for text in &shown {
        assert_no_secret(text, &fake);
    }
    assert!(shown[0].contains(&url), "{}", shown[0]);

    // Error texts name what failed and where, never a value.
    fake.put(
        "secret",
        "telegram/bad",
        json!({"api_id": format!("not-an-id-{API_HASH}"), "api_hash": ""}),
    );
    let mut bad_values = config(&fake);
    bad_values.telegram_credentials_path = "telegram/bad".into();
    bad_values.jwt_secret_path = "telegram/bad".into();
    bad_values.jwt_secret_key = "api_hash".into();
    let bad_values = Vault::connect(bad_values).await.unwrap();
    let mut wrong_secret = config(&fake);
    wrong_secret.secret_id = Secret::new(format!("{SECRET_ID}-but-wrong"));
    let mut errors = vec![
        bad_values.telegram_credentials().await.unwrap_err(),
        bad_values.jwt_secret().await.unwrap_err(),
        Vault::connect(wrong_secret).await.unwrap_err(),
    ];
    fake.go_down().await;
    fake.expire_tokens();
    errors.push(vault.account_session("other").await.unwrap_err());
    for e in &errors {
        assert_no_secret(&format!("{e} {e:?}"), &fake);
    }
}
