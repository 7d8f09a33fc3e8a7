//! `spawn_app()`: the real service on a random port over a fresh database of either backend.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use clock::{ManualClock, SharedClock};
use domain::UserId;
use invite_service::{
    api::auth::Authenticator,
    app::{self, Running, Schema},
    config::Config,
    secrets::Secret,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[path = "../common/log_scan.rs"]
pub mod log_scan;

pub const JWT_SECRET: &str = "test-secret-that-is-long-enough-0123456789";
pub const DATA_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the PostgreSQL test databases are created; each test gets its own.
fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Removes the test's database when the test ends, pass or fail.
enum DbGuard {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        match self {
            DbGuard::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            DbGuard::Postgres(name) => {
                let name = name.clone();
                // Drop runs inside the test's runtime; a fresh thread may block on its own runtime.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        use sqlx::Executor;
                        if let Ok(mut conn) =
                            <sqlx::PgConnection as sqlx::Connection>::connect(&postgres_admin_url()).await
                        {
                            let _ = conn
                                .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                                .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub backend: Backend,
    pub database_url: String,
    auth: Authenticator,
    running: Running,
    _db: DbGuard,
    /// Dropped last: fails the test if the service logged a secret.
    _logs: log_scan::Check,
}

pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// The service with extra configuration, e.g. `[("INVITE_MAX_TARGETS_PER_TASK", "5")]`.
pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    spawn(backend, extra, false).await
}

/// The service on the real clock (the engine's pauses pass in real time), for campaign runs.
pub async fn spawn_live_app(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    spawn(backend, extra, true).await
}

async fn spawn(backend: Backend, extra: &[(&str, &str)], live: bool) -> TestApp {
    let logs = log_scan::capture();
    let unique = format!("invite_test_{}", uuid::Uuid::new_v4().simple());
    let (database_url, guard) = match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(&unique);
            std::fs::create_dir_all(&dir).unwrap();
            (
                format!("sqlite:{}", dir.join("invite.db").display()),
                DbGuard::Sqlite(dir),
            )
        }
        Backend::Postgres => {
            use sqlx::Executor;
            let admin = postgres_admin_url();
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL is required for these tests ({admin}): {e}"));
            conn.execute(format!("CREATE DATABASE \"{unique}\"").as_str())
                .await
                .unwrap();
            let mut url = url::Url::parse(&admin).unwrap();
            url.set_path(&unique);
            (url.to_string(), DbGuard::Postgres(unique.clone()))
        }
    };
    let data_dir = std::env::temp_dir().join(format!("{unique}_data"));
    let vars = [
        ("DATABASE_URL", database_url.as_str()),
        ("INVITE_BIND", "127.0.0.1:0"),
        ("INVITE_JWT_SECRET", JWT_SECRET),
        ("INVITE_DATA_DIR", data_dir.to_str().unwrap()),
        ("INVITE_MAX_BODY_BYTES", "65536"),
        ("INVITE_DATA_KEY", DATA_KEY),
    ];
    let config = Config::from_vars(
        &vars
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
    .unwrap();
    let clock = ManualClock::new(start_time());
    let shared: SharedClock = if live {
        Arc::new(clock::SystemClock)
    } else {
        Arc::new(clock.clone())
    };
    let store = app::open_store(&config).await.unwrap();
    app::prepare_schema(&store, Schema::Migrate).await.unwrap();
    let running = app::start(&config, store, shared.clone(), app::Roles::ApiAndEngine)
        .await
        .unwrap();
    TestApp {
        base: format!("http://{}", running.addr.expect("the API listens")),
        client: reqwest::Client::new(),
        clock,
        backend,
        database_url: config.database_url.clone(),
        auth: Authenticator::new(&Secret::new(JWT_SECRET.into()), "user_id".into(), shared),
        running,
        _db: guard,
        _logs: logs,
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `detail` text of an error.
    pub fn detail(&self) -> &str {
        self.body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("no detail text in {}", self.body))
    }

    /// `loc` joined with dots and `msg` of each validation error.
    pub fn field_errors(&self) -> Vec<(String, String)> {
        self.body["detail"]
            .as_array()
            .unwrap_or_else(|| panic!("not a validation error: {} {}", self.status, self.body))
            .iter()
            .map(|e| {
                let loc: Vec<String> = e["loc"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_string())
                    .collect();
                (loc.join("."), e["msg"].as_str().unwrap().to_string())
            })
            .collect()
    }
}

impl TestApp {
    /// The engine of the service, to drive its scheduler by hand on the manual clock.
    pub fn engine(&self) -> std::sync::Arc<invite_service::engine::Engine> {
        self.running.engine.clone()
    }

    pub fn token(&self, user: i64) -> String {
        self.auth.issue(UserId::new(user).unwrap(), Duration::hours(1))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1/invite{path}", self.base)
    }

    /// Sends a request as `user` (None: no Authorization header) with a JSON body.
    pub async fn call(&self, method: Method, path: &str, user: Option<i64>, body: Option<Value>) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(user) = user {
            req = req.bearer_auth(self.token(user));
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn raw(&self, req: reqwest::RequestBuilder) -> Reply {
        read(req.send().await.unwrap()).await
    }

    pub async fn create(&self, user: i64, body: Value) -> Value {
        let reply = self.call(Method::POST, "/tasks", Some(user), Some(body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body
    }

    /// Puts a task into a status directly in the database, as the engine would.
    pub async fn force_status(&self, id: i64, status: &str) {
        use sqlx::Connection;
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.database_url).await.unwrap();
                sqlx::query("UPDATE invite_tasks SET status = ?, version = version + 1 WHERE id = ?")
                    .bind(status)
                    .bind(id)
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.database_url).await.unwrap();
                sqlx::query("UPDATE invite_tasks SET status = $1::taskstatus, version = version + 1 WHERE id = $2")
                    .bind(status)
                    .bind(id)
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }
    }

    /// Uploads a file to `path` as multipart with the given text fields, as `user`.
    pub async fn upload(
        &self,
        path: &str,
        user: i64,
        file_name: &str,
        bytes: Vec<u8>,
        fields: &[(&str, &str)],
    ) -> Reply {
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_string()),
        );
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        self.raw(
            self.client
                .post(self.url(path))
                .bearer_auth(self.token(user))
                .multipart(form),
        )
        .await
    }

    /// Every row of a table as text, to check what is stored at rest.
    pub async fn dump_table(&self, table: &str) -> String {
        use sqlx::Connection;
        let sql = format!("SELECT * FROM {table}");
        let mut out = String::new();
        match self.backend {
            Backend::Sqlite => {
                use sqlx::{Column, Row, ValueRef};
                let mut c = sqlx::SqliteConnection::connect(&self.database_url).await.unwrap();
                for row in sqlx::query(&sql).fetch_all(&mut c).await.unwrap() {
                    for col in row.columns() {
                        if row.try_get_raw(col.ordinal()).unwrap().is_null() {
                            continue;
                        }
                        let text: String = row
                            .try_get::<String, _>(col.ordinal())
                            .or_else(|_| row.try_get::<i64, _>(col.ordinal()).map(|v| v.to_string()))
                            .unwrap_or_default();
                        out.push_str(&text);
                        out.push('|');
                    }
                }
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.database_url).await.unwrap();
                let rows: Vec<(String,)> = sqlx::query_as(&format!("SELECT t::text FROM {table} t"))
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
                for (row,) in rows {
                    out.push_str(&row);
                }
            }
        }
        out
    }

    pub async fn stop(self) {
        self.running.shutdown();
        self.running.wait().await.unwrap();
    }
}

async fn read(resp: reqwest::Response) -> Reply {
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply { status, headers, body }
}

/// Usernames `{prefix}0000`, `{prefix}0001`, …
pub fn people(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

/// Registers `n` sandbox accounts for the user; their ids.
pub async fn sandbox_accounts(app: &TestApp, user: i64, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let r = app
            .call(
                Method::POST,
                "/accounts",
                Some(user),
                Some(json!({"platform": "telegram", "name": format!("Sandbox {i}"), "sandbox": true})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// A task with these usernames imported as its audience; its id.
pub async fn task_with_targets(app: &TestApp, user: i64, body: Value, people: &[String]) -> i64 {
    let task = app.create(user, body).await;
    let id = task["id"].as_i64().unwrap();
    let csv = std::iter::once("username".to_owned())
        .chain(people.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n");
    let r = app
        .upload(
            "/import/file",
            user,
            "people.csv",
            csv.into_bytes(),
            &[("task_id", &id.to_string())],
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    id
}

/// Runs each listed `async fn name(backend: Backend)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name($crate::support::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name($crate::support::Backend::Postgres).await } )*
        }
    };
}

/// The log scan can fail: secrets logged on purpose, in an event, a span and a process's output, are
/// reported by label and line, never by value.
#[test]
fn the_log_scan_reports_secrets_logged_on_purpose() {
    use tracing_subscriber::layer::SubscriberExt;
    let sessions: Value = serde_json::from_str(include_str!("../data/telethon-sessions.json")).unwrap();
    let session = sessions["sessions"][1]["string_session"].as_str().unwrap();
    let scan = log_scan::Scan::new(log_scan::Scanner::known());
    tracing::subscriber::with_default(tracing_subscriber::registry().with(scan.layer()), || {
        tracing::info!(target: "invite_service", user = 5, "nothing secret here");
        tracing::debug!(target: "invite_service::api", secret = JWT_SECRET, "leaked on purpose");
        let _span = tracing::info_span!(target: "store", "sealing", key = %DATA_KEY).entered();
    });
    scan.feed(
        "a worker's stdout",
        &format!("{{\"message\":\"started\"}}\n{{\"session\":\"{session}\"}}"),
    );
    let found: Vec<(String, String, usize)> = scan
        .findings()
        .into_iter()
        .map(|f| (f.label, f.source, f.line))
        .collect();
    let at = |label: &str, source: &str, line| (label.to_owned(), source.to_owned(), line);
    assert_eq!(
        found,
        [
            at("the API tests' JWT secret", "the in-process log", 2),
            at("the tests' data key", "the in-process log", 3),
            at("Telethon session string #2", "a worker's stdout", 2),
        ]
    );

    let check = scan.check();
    let failure =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(check))).expect_err("the check fails the test");
    let text = failure.downcast_ref::<String>().unwrap();
    assert!(
        text.contains("the API tests' JWT secret in line 2 of the in-process log: DEBUG invite_service::api: "),
        "{text}"
    );
    assert!(text.contains("secret=<the API tests' JWT secret>"), "{text}");
    for secret in [JWT_SECRET, DATA_KEY, session] {
        assert!(!text.contains(secret), "the report shows a secret's value: {text}");
    }
}
