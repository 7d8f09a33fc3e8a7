//! The clients of the platform's other services against local HTTP servers that speak their APIs:
//!
//! - the Integration Service: the answer (every user's accounts, with secrets, as the running platform
//!   gives it, whole or in pages) filtered by user and status here; secrets never in Debug output,
//!   logs, errors or Redis; one upstream call per cache period (in process, and across processes through Redis); 500s and
//!   timeouts open the circuit breaker, which then fails fast with a clear error and closes again
//!   after a successful trial; the accounts mirrored into the store with sealed sessions, and blocked
//!   there when the service blocks or drops them;
//! - every call carries the service's JWT, the Parsing Service's engine-side calls included;
//! - the API Gateway: an e-mail resolved to a user id (cached), an unknown one, a gateway that is down;
//! - sessions the records lack read from Vault's per-account path (a local Vault): an account with a
//!   session in neither place is not used, one Vault cannot tell about keeps its stored session;
//! - the periodic mirroring runs only while this process's scheduler leads.
//!
//! Redis is the machine's (127.0.0.1:6379); the test fails, never skips, when it is down.

#[path = "common/fake_vault.rs"]
#[allow(dead_code)]
mod fake_vault;

#[path = "common/log_scan.rs"]
mod log_scan;

use std::{
    collections::HashMap,
    io::Write,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use account_manager::sealing::{DataKey, Sealer};
use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    routing::get,
    Json, Router,
};
use chrono::{TimeZone, Utc};
use clock::{Clock, ManualClock, SharedClock};
use domain::UserId;
use invite_service::{
    integrations::{
        gateway::{GatewayConfig, GatewayError, GatewayUsers},
        integration_service::{
            IntegrationAccounts, IntegrationError, IntegrationServiceClient, IntegrationServiceConfig,
        },
        parsing_service::{Bearer, ParsingServiceClient, ParsingServiceConfig},
        service_token::ServiceToken,
    },
    secrets::Secret,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Map, Value};
use store::{AccountKind, RequestMeta, Standing, INTEGRATION_REASON_PREFIX};
use test_db::{Backend, TestDb};
use tokio::sync::watch;

const JWT_SECRET: &str = "integrations-test-secret-0123456789";
const API_HASH: &str = "0123456789abcdef0123456789abcdef";
const OTHER_API_HASH: &str = "fedcba9876543210fedcba9876543210";
const REDIS_URL: &str = "redis://127.0.0.1:6379";

fn sessions() -> Vec<String> {
    let v: Value = serde_json::from_str(include_str!("data/telethon-sessions.json")).unwrap();
    v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["string_session"].as_str().unwrap().to_owned())
        .collect()
}

/// The fixture's accounts (users 55 and 77; one of 55's blocked), with the secrets the running
/// platform's endpoint adds.
fn platform_answer() -> Value {
    let v: Value = serde_json::from_str(include_str!("data/integration-accounts.json")).unwrap();
    let mut accounts = v["example"].as_array().unwrap().clone();
    let sessions = sessions();
    for (i, a) in accounts.iter_mut().enumerate() {
        a["api_id"] = json!(100 + i);
        a["api_hash"] = json!(if a["user_id"] == 55 { API_HASH } else { OTHER_API_HASH });
        a["session_data"] = json!(sessions[i % sessions.len()]);
    }
    Value::Array(accounts)
}

/// The local platform: the Integration Service's accounts, the gateway's users, the Parsing Service's
/// results. Counts calls and keeps every Authorization header.
#[derive(Default)]
struct Platform {
    calls: AtomicUsize,
    /// Answers 500 while set.
    failing: std::sync::atomic::AtomicBool,
    /// Waits this long before answering.
    delay_ms: AtomicUsize,
    accounts: Mutex<Value>,
    /// How the accounts list is paged, when it is: (style, page size).
    paging: Mutex<Option<(Paging, usize)>>,
    authorizations: Mutex<Vec<String>>,
    queries: Mutex<Vec<HashMap<String, String>>>,
}

impl Platform {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    async fn arrive(&self, headers: &HeaderMap, query: HashMap<String, String>) -> Result<(), StatusCode> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        self.authorizations.lock().unwrap().push(auth.to_owned());
        self.queries.lock().unwrap().push(query);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(StatusCode::INTERNAL_SERVER_ERROR);
        }
        Ok(())
    }
}

type Shared = State<Arc<Platform>>;

/// The ways a paged answer points to its next page.
#[derive(Clone, Copy)]
enum Paging {
    /// `{"items": […], "page": n, "pages": m}`: the next page is `page=n+1`.
    Numbered,
    /// `{"results": […], "count": n, "next": "/api/v1/accounts?…&page=2"}` (Django REST framework).
    NextLink,
    /// `{"results": […], "count": n, "next": "http://elsewhere…"}`: a next page on another origin.
    ForeignLink,
    /// `{"items": […], "total": n}`: more than it gives, and no way to the rest.
    TotalOnly,
}

async fn accounts(
    State(p): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, StatusCode> {
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let query = q.clone();
    p.arrive(&headers, q).await?;
    // Like the running platform's endpoint: every user's accounts, whatever the query asks.
    let all = p.accounts.lock().unwrap().clone();
    let Some((paging, size)) = *p.paging.lock().unwrap() else {
        return Ok(Json(all));
    };
    let all = all.as_array().unwrap().clone();
    let pages = all.len().div_ceil(size);
    let items: Vec<Value> = all.iter().skip((page - 1) * size).take(size).cloned().collect();
    let next_query = || {
        let mut next: Vec<String> = query
            .iter()
            .filter(|(k, _)| *k != "page")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        next.push(format!("page={}", page + 1));
        next.join("&")
    };
    Ok(Json(match paging {
        Paging::Numbered => json!({"items": items, "page": page, "pages": pages}),
        Paging::NextLink => json!({
            "results": items,
            "count": all.len(),
            "next": (page < pages).then(|| format!("/api/v1/accounts?{}", next_query())),
        }),
        Paging::ForeignLink => json!({
            "results": items,
            "count": all.len(),
            "next": (page < pages).then(|| format!("http://127.0.0.2:9/api/v1/accounts?{}", next_query())),
        }),
        Paging::TotalOnly => json!({"items": items, "total": all.len()}),
    }))
}

async fn user_by_email(
    State(p): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, StatusCode> {
    let email = q.get("email").cloned().unwrap_or_default();
    p.arrive(&headers, q).await?;
    let v: Value = serde_json::from_str(include_str!("data/gateway-user-by-email.json")).unwrap();
    let known = &v["example"];
    if known["email"] == email.as_str() {
        Ok(Json(known.clone()))
    } else {
        Err(StatusCode::NOT_FOUND)
    }
}

async fn parsing_results(
    State(p): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, StatusCode> {
    p.arrive(&headers, q).await?;
    Ok(Json(json!({"results": [{"id": "1", "username": "anna_k"}]})))
}

async fn start_platform() -> (String, Arc<Platform>) {
    let platform = Arc::new(Platform::default());
    *platform.accounts.lock().unwrap() = platform_answer();
    let app = Router::new()
        .route("/api/v1/accounts", get(accounts))
        .route("/internal/users/by-email", get(user_by_email))
        .route("/results/{task}", get(parsing_results))
        .with_state(platform.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/"), platform)
}

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap())
}

fn service_token(clock: &ManualClock) -> Arc<ServiceToken> {
    let shared: SharedClock = Arc::new(clock.clone());
    Arc::new(ServiceToken::new(&Secret::new(JWT_SECRET.into()), "svc-invite", shared))
}

fn config(base: &str) -> IntegrationServiceConfig {
    IntegrationServiceConfig {
        base_url: base.parse().unwrap(),
        accounts_path: "/api/v1/accounts".into(),
        cache_ttl: Duration::from_secs(60),
        timeout: Duration::from_secs(2),
        breaker_failures: 3,
        breaker_cooldown: Duration::from_secs(30),
    }
}

fn client(base: &str, clock: &ManualClock) -> IntegrationServiceClient {
    IntegrationServiceClient::new(config(base), service_token(clock), Arc::new(clock.clone()))
}

fn user(id: i64) -> UserId {
    UserId::new(id).unwrap()
}

/// The claims of a `Bearer` header signed with the shared secret (HS256), or a panic.
fn service_claims(authorization: &str) -> Map<String, Value> {
    let token = authorization.strip_prefix("Bearer ").expect("a bearer token");
    let mut validation = Validation::new(Algorithm::HS256);
    // Signed on the manual clock, in the past of the machine's.
    validation.validate_exp = false;
    jsonwebtoken::decode::<Map<String, Value>>(token, &DecodingKey::from_secret(JWT_SECRET.as_bytes()), &validation)
        .expect("signed with the shared secret")
        .claims
}

fn assert_service_calls(platform: &Platform) {
    let auths = platform.authorizations.lock().unwrap().clone();
    assert!(!auths.is_empty());
    for auth in auths {
        let c = service_claims(&auth);
        assert_eq!(
            (&c["sub"], &c["service"]),
            (&json!("svc-invite"), &json!("invite-service"))
        );
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3600);
    }
}

/// Everything logged while it lives, as text.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        use tracing_subscriber::layer::SubscriberExt;
        let writer = self.clone();
        tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .json()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || writer.clone())
                .finish()
                .with(log_scan::layer()),
        )
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn assert_no_secret(what: &str, text: &str) {
    let sessions = sessions();
    for secret in [API_HASH, OTHER_API_HASH, JWT_SECRET, &sessions[0], &sessions[1]] {
        assert!(!text.contains(secret), "{what} holds a secret: {text}");
    }
}

#[tokio::test]
async fn the_answer_is_filtered_by_user_and_status_and_its_secrets_never_show() {
    let _logs = log_scan::capture();
    let logs = LogBuffer::default();
    let _capture = logs.capture();
    let (base, platform) = start_platform().await;
    let clock = clock();
    let client = client(&base, &clock);

    let list = client.accounts(user(55), "telegram").await.unwrap();
    let ids: Vec<&str> = list.accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "3b7c2f0e-1d2a-4c55-9f10-2a9e8b7c6d5e",
            "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
        ],
        "user 77's account is left out"
    );
    let active: Vec<&str> = list.active().map(|a| a.id.as_str()).collect();
    assert_eq!(
        active,
        ["3b7c2f0e-1d2a-4c55-9f10-2a9e8b7c6d5e"],
        "the blocked one is excluded"
    );
    assert_eq!(list.accounts[1].unusable().as_deref(), Some("status blocked"));
    let secrets = list.secrets(active[0]).unwrap();
    assert_eq!(secrets.api_hash.as_ref().map(Secret::expose), Some(API_HASH));
    assert_eq!(
        secrets.session_data.as_ref().map(Secret::expose),
        Some(sessions()[0].as_str())
    );

    let query = platform.queries.lock().unwrap()[0].clone();
    assert_eq!(
        (
            query["user_id"].as_str(),
            query["platform"].as_str(),
            query["status"].as_str()
        ),
        ("55", "telegram", "active")
    );
    assert_service_calls(&platform);
    assert_no_secret("Debug of the list", &format!("{list:?} {client:?}"));

    // A broken upstream and an open breaker: the errors and the logs say what happened, never a secret.
    platform.set_failing(true);
    clock.advance(chrono::Duration::minutes(5));
    let mut errors = Vec::new();
    for _ in 0..4 {
        errors.push(client.accounts(user(55), "telegram").await.unwrap_err().to_string());
    }
    assert_no_secret("the errors", &errors.join("\n"));
    drop(_capture);
    let logged = logs.text();
    assert!(logged.contains("Integration Service accounts read"), "{logged}");
    assert_no_secret("the log", &logged);
}

/// A paged answer is read to its last page, whichever way it points there; one that points off the
/// service's origin (where the service token would go; a call there would fail as an outage, not as
/// this refusal), or that holds more than it gives with no way to the rest, is refused as a whole.
#[tokio::test]
async fn a_paged_answer_is_read_to_its_last_page_or_refused_whole() {
    let _logs = log_scan::capture();
    let (base, platform) = start_platform().await;
    // Eight more active accounts of user 55, eleven in all over the users: pages of three.
    let mut all = platform_answer().as_array().unwrap().clone();
    for i in 0..8 {
        let mut a = all[0].clone();
        a["id"] = json!(format!("00000000-0000-4000-8000-00000000000{i}"));
        a["phone"] = json!(format!("+7912000010{i}"));
        all.push(a);
    }
    *platform.accounts.lock().unwrap() = Value::Array(all);
    let clock = clock();
    for paging in [Paging::Numbered, Paging::NextLink] {
        *platform.paging.lock().unwrap() = Some((paging, 3));
        let calls = platform.calls();
        let list = client(&base, &clock).accounts(user(55), "telegram").await.unwrap();
        assert_eq!(platform.calls() - calls, 4, "eleven accounts in pages of three");
        assert_eq!(list.active().count(), 9, "user 55's active accounts, from every page");
        let queries = platform.queries.lock().unwrap().clone();
        for q in &queries[calls..] {
            assert_eq!((q["user_id"].as_str(), q["status"].as_str()), ("55", "active"), "{q:?}");
        }
        let pages: Vec<Option<&str>> = queries[calls..]
            .iter()
            .map(|q| q.get("page").map(String::as_str))
            .collect();
        assert_eq!(pages, [None, Some("2"), Some("3"), Some("4")]);
    }
    for (paging, expected) in [
        (
            Paging::ForeignLink,
            "its next page is on another origin (http://127.0.0.2:9/)",
        ),
        (
            Paging::TotalOnly,
            "it says it holds 11 accounts but gave 3 and no way to the next page",
        ),
    ] {
        *platform.paging.lock().unwrap() = Some((paging, 3));
        let err = client(&base, &clock).accounts(user(55), "telegram").await.unwrap_err();
        assert!(
            matches!(&err, IntegrationError::BadResponse(detail) if detail.starts_with(expected)),
            "{err}"
        );
    }
}

#[tokio::test]
async fn one_upstream_call_per_cache_period() {
    let _logs = log_scan::capture();
    let (base, platform) = start_platform().await;
    let clock = clock();
    let client = client(&base, &clock);
    for _ in 0..3 {
        client.accounts(user(55), "telegram").await.unwrap();
    }
    assert_eq!(platform.calls(), 1, "answered from the cache within the period");
    client.accounts(user(77), "telegram").await.unwrap();
    assert_eq!(platform.calls(), 2, "each user has an entry of their own");
    clock.advance(chrono::Duration::seconds(59));
    client.accounts(user(55), "telegram").await.unwrap();
    assert_eq!(platform.calls(), 2);
    clock.advance(chrono::Duration::seconds(2));
    client.accounts(user(55), "telegram").await.unwrap();
    assert_eq!(platform.calls(), 3, "asked again once the period is over");
}

#[tokio::test]
async fn failures_open_the_breaker_which_fails_fast_then_closes_after_recovery() {
    let _logs = log_scan::capture();
    let (base, platform) = start_platform().await;
    let clock = clock();
    let client = client(&base, &clock);
    platform.set_failing(true);

    for n in 1..=2 {
        let e = client.accounts(user(55), "telegram").await.unwrap_err();
        assert!(matches!(e, IntegrationError::Unavailable(_)), "{e}");
        assert_eq!(
            e.to_string(),
            "the Integration Service is unavailable: it answered 500 Internal Server Error"
        );
        assert_eq!(platform.calls(), n);
    }
    let opened = client.accounts(user(55), "telegram").await.unwrap_err();
    let retry_at = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 30).unwrap();
    assert_eq!(
        opened.to_string(),
        format!(
            "the Integration Service is unavailable: it answered 500 Internal Server Error; retrying after {}",
            retry_at.to_rfc3339()
        )
    );
    assert_eq!(platform.calls(), 3);

    // Open: callers are answered at once, and the service is left alone.
    clock.advance(chrono::Duration::seconds(29));
    let fast = client.accounts(user(77), "telegram").await.unwrap_err();
    assert!(matches!(fast, IntegrationError::Open { .. }), "{fast}");
    assert!(fast.to_string().contains("retrying after"), "{fast}");
    assert_eq!(platform.calls(), 3, "no call while the breaker is open");

    // The cool-down is over: one trial call, which fails, opens it again.
    clock.advance(chrono::Duration::seconds(1));
    assert!(matches!(
        client.accounts(user(55), "telegram").await,
        Err(IntegrationError::Open { .. })
    ));
    assert_eq!(platform.calls(), 4);
    assert!(client.accounts(user(55), "telegram").await.is_err());
    assert_eq!(platform.calls(), 4);

    // The service recovers: the next trial succeeds and the breaker closes.
    platform.set_failing(false);
    clock.advance(chrono::Duration::seconds(30));
    let list = client.accounts(user(55), "telegram").await.unwrap();
    assert_eq!(list.accounts.len(), 2);
    assert_eq!(platform.calls(), 5);
    client.accounts(user(77), "telegram").await.unwrap();
    assert_eq!(platform.calls(), 6, "closed: calls go out again");
}

#[tokio::test]
async fn timeouts_and_refused_connections_count_as_failures() {
    let _logs = log_scan::capture();
    let (base, platform) = start_platform().await;
    let clock = clock();
    let mut slow = config(&base);
    slow.timeout = Duration::from_millis(200);
    slow.breaker_failures = 2;
    let client = IntegrationServiceClient::new(slow, service_token(&clock), Arc::new(clock.clone()));
    platform.delay_ms.store(1000, Ordering::SeqCst);
    let first = client.accounts(user(55), "telegram").await.unwrap_err();
    assert_eq!(
        first.to_string(),
        "the Integration Service is unavailable: it did not answer within 200ms"
    );
    let second = client.accounts(user(55), "telegram").await.unwrap_err();
    assert!(matches!(second, IntegrationError::Open { .. }), "{second}");

    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut gone = config(&format!("http://{closed_port}/"));
    gone.breaker_failures = 1;
    let client = IntegrationServiceClient::new(gone, service_token(&clock), Arc::new(clock.clone()));
    let e = client.accounts(user(55), "telegram").await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the Integration Service is unavailable: it cannot be reached; retrying after "),
        "{e}"
    );
}

#[tokio::test]
async fn redis_shares_the_list_between_processes_without_its_secrets() {
    let _logs = log_scan::capture();
    let (base, platform) = start_platform().await;
    let clock = clock();
    let prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
    let process = || {
        client(&base, &clock)
            .with_redis(&REDIS_URL.parse().unwrap(), &prefix)
            .unwrap()
    };
    let (first, second) = (process(), process());
    let fetched = first.accounts(user(55), "telegram").await.unwrap();
    let shared = second.accounts(user(55), "telegram").await.unwrap();
    assert_eq!(platform.calls(), 1, "the second process read Redis");
    assert_eq!(shared.accounts, fetched.accounts);
    assert!(
        shared.secrets(&shared.accounts[0].id).is_none(),
        "no secrets came through Redis"
    );

    let mut redis = redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("Redis at 127.0.0.1:6379 is needed by this test");
    let key = format!("{prefix}invite-service:integration-accounts:telegram:55");
    let stored: String = redis::cmd("GET").arg(&key).query_async(&mut redis).await.unwrap();
    assert!(stored.contains("3b7c2f0e-1d2a-4c55-9f10-2a9e8b7c6d5e"), "{stored}");
    assert!(
        !stored.contains("session_data") && !stored.contains("api_hash"),
        "{stored}"
    );
    assert_no_secret("Redis", &stored);
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut redis).await.unwrap();
    assert!((1..=60_000).contains(&ttl), "{ttl}");
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut redis).await.unwrap();
}

#[tokio::test]
async fn accounts_are_mirrored_into_the_store_and_blocked_when_they_go() {
    let _logs = log_scan::capture();
    let (base, platform) = start_platform().await;
    let clock = clock();
    let db = TestDb::new(Backend::Sqlite).await;
    let sealer = Arc::new(Sealer::new(&DataKey::generate()));
    let mirror = IntegrationAccounts::new(
        client(&base, &clock),
        db.store.clone(),
        sealer.clone(),
        Arc::new(clock.clone()),
    );
    let active = "3b7c2f0e-1d2a-4c55-9f10-2a9e8b7c6d5e";

    let out = mirror.sync(user(55), "telegram").await.unwrap();
    assert_eq!(
        out.added,
        [active],
        "the blocked account is not added, user 77's are not seen"
    );
    let stored = db.store.list_accounts(user(55), Some("telegram")).await.unwrap();
    assert_eq!(stored.len(), 1);
    let a = &stored[0];
    assert_eq!(
        (a.kind, a.name.as_str(), a.api_id),
        (AccountKind::Integration, "+79120000001", Some(100))
    );
    assert_eq!(a.session_facts["dc_id"], json!(2));
    let secrets = db.store.account_secrets(active).await.unwrap().unwrap();
    let opened = sealer
        .open(
            secrets.session_sealed.as_deref().unwrap(),
            &format!("account:{active}:session"),
        )
        .unwrap();
    assert_eq!(
        String::from_utf8(opened).unwrap(),
        sessions()[0],
        "sealed as the API seals sessions"
    );
    assert!(db.store.list_accounts(user(77), None).await.unwrap().is_empty());

    assert_eq!(
        mirror.sync(user(55), "telegram").await.unwrap(),
        Default::default(),
        "the same answer is not written twice"
    );

    // The platform blocks the account: once the cached answer is old, it is blocked here too.
    platform.accounts.lock().unwrap()[0]["status"] = json!("blocked");
    clock.advance(chrono::Duration::seconds(61));
    let out = mirror.sync(user(55), "telegram").await.unwrap();
    assert_eq!(out.blocked, [active]);
    assert_eq!(
        db.store.am_standing(active).await.unwrap(),
        Some(Standing::Blocked {
            reason: format!("{INTEGRATION_REASON_PREFIX}status blocked")
        })
    );
    // Active again, then gone from the list altogether.
    platform.accounts.lock().unwrap()[0]["status"] = json!("active");
    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(mirror.sync(user(55), "telegram").await.unwrap().reactivated, [active]);
    platform.accounts.lock().unwrap().as_array_mut().unwrap().remove(0);
    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(mirror.sync(user(55), "telegram").await.unwrap().blocked, [active]);
    assert_eq!(
        db.store.list_accounts(user(55), None).await.unwrap().len(),
        1,
        "kept, blocked"
    );

    // A failing service surfaces its error and changes nothing.
    platform.set_failing(true);
    clock.advance(chrono::Duration::seconds(61));
    let e = mirror.sync(user(55), "telegram").await.unwrap_err();
    assert!(
        e.to_string().starts_with("the Integration Service is unavailable: "),
        "{e}"
    );
    assert_service_calls(&platform);
}

#[tokio::test]
async fn the_engines_parsing_service_calls_carry_the_service_token() {
    let _logs = log_scan::capture();
    let (base, platform) = start_platform().await;
    let clock = clock();
    let client = ParsingServiceClient::new(ParsingServiceConfig {
        base_url: base.parse().unwrap(),
        results_path: "/results/{task_id}".into(),
        page_size: 10,
        timeout: Duration::from_secs(2),
        attempts: 1,
    });
    let token = service_token(&clock);
    let results = client.results("17", Bearer::Service(&token), 100).await.unwrap();
    assert_eq!(results.len(), 1);
    assert_service_calls(&platform);

    let caller = Secret::new("callers-own-token".into());
    client.results("17", Bearer::Caller(&caller), 100).await.unwrap();
    let last = platform.authorizations.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        last, "Bearer callers-own-token",
        "a user's request passes the caller's token on"
    );
}

fn gateway(base: &str, clock: &ManualClock) -> GatewayUsers {
    GatewayUsers::new(
        GatewayConfig {
            base_url: base.parse().unwrap(),
            cache_ttl: Duration::from_secs(60),
            timeout: Duration::from_secs(2),
        },
        service_token(clock),
        Arc::new(clock.clone()),
    )
}

#[tokio::test]
async fn the_gateway_resolves_an_email_to_a_user_id() {
    let _logs = log_scan::capture();
    let (base, platform) = start_platform().await;
    let clock = clock();
    let users = gateway(&base, &clock);
    assert_eq!(users.user_id("alice@example.com").await.unwrap(), user(55));
    assert_eq!(users.user_id("Alice@Example.com").await.unwrap(), user(55));
    assert_eq!(platform.calls(), 1, "remembered for a while");
    assert_eq!(platform.queries.lock().unwrap()[0]["email"], "alice@example.com");
    assert_service_calls(&platform);
    clock.advance(chrono::Duration::seconds(61));
    users.user_id("alice@example.com").await.unwrap();
    assert_eq!(platform.calls(), 2);

    let unknown = users.user_id("nobody@example.com").await.unwrap_err();
    assert!(matches!(unknown, GatewayError::UnknownUser), "{unknown}");

    platform.set_failing(true);
    let down = users.user_id("bob@example.com").await.unwrap_err();
    assert_eq!(
        down.to_string(),
        "the API Gateway cannot tell which user this token's e-mail address belongs to right now: it answered 500 \
         Internal Server Error"
    );
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gone = gateway(&format!("http://{closed_port}/"), &clock);
    assert!(matches!(
        gone.user_id("alice@example.com").await,
        Err(GatewayError::Unavailable(_))
    ));
}

async fn vault_client(fake: &fake_vault::FakeVault) -> Arc<invite_service::vault::Vault> {
    let mut config = invite_service::vault::VaultConfig::new(
        fake.url().parse().unwrap(),
        fake_vault::ROLE_ID.into(),
        Secret::new(fake_vault::SECRET_ID.into()),
    );
    config.timeout = Duration::from_millis(500);
    // Every read asks Vault, so that a change there shows at once.
    config.refresh_after = Duration::ZERO;
    Arc::new(invite_service::vault::Vault::connect(config).await.unwrap())
}

fn opened_session(sealer: &Sealer, secrets: &store::AccountSecrets, id: &str) -> String {
    let opened = sealer
        .open(
            secrets.session_sealed.as_deref().unwrap(),
            &format!("account:{id}:session"),
        )
        .unwrap();
    String::from_utf8(opened).unwrap()
}

#[tokio::test]
async fn sessions_the_records_lack_come_from_vault_and_an_account_with_neither_is_not_used() {
    let _logs = log_scan::capture();
    let logs = LogBuffer::default();
    let _capture = logs.capture();
    let (base, platform) = start_platform().await;
    let clock = clock();
    let db = TestDb::new(Backend::Sqlite).await;
    let sealer = Arc::new(Sealer::new(&DataKey::generate()));
    let fake = fake_vault::FakeVault::start(0).await;
    let (from_vault, later) = (
        "3b7c2f0e-1d2a-4c55-9f10-2a9e8b7c6d5e",
        "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
    );
    let (vault_session, later_session) = (fake_vault::fresh_session(), fake_vault::fresh_session());
    let vault_path = |id: &str| format!("invite-service/accounts/{id}");
    fake.put(
        "secret",
        &vault_path(from_vault),
        json!({"session_data": vault_session}),
    );
    {
        let mut answer = platform.accounts.lock().unwrap();
        let accounts = answer.as_array_mut().unwrap();
        accounts[0].as_object_mut().unwrap().remove("session_data");
        let mut another = accounts[0].clone();
        another["id"] = json!(later);
        another["phone"] = json!("+79120000002");
        accounts.push(another);
    }
    let mirror = IntegrationAccounts::new(
        client(&base, &clock),
        db.store.clone(),
        sealer.clone(),
        Arc::new(clock.clone()),
    )
    .with_vault(vault_client(&fake).await);

    // The first account's session is Vault's; the second has none anywhere and is left out.
    let out = mirror.sync(user(55), "telegram").await.unwrap();
    assert_eq!(out.added, [from_vault]);
    let secrets = db.store.account_secrets(from_vault).await.unwrap().unwrap();
    assert_eq!(
        opened_session(&sealer, &secrets, from_vault),
        vault_session,
        "sealed like the record's"
    );
    assert!(
        db.store.account_secrets(later).await.unwrap().is_none(),
        "never mirrored"
    );

    // Vault goes down: the session read before is kept, the account it cannot tell about stays out,
    // and the answer is mirrored again at the next call (the same answer, still cached).
    fake.put("secret", &vault_path(later), json!({"session_data": later_session}));
    fake.go_down().await;
    clock.advance(chrono::Duration::seconds(61));
    let out = mirror.sync(user(55), "telegram").await.unwrap();
    assert!(out.added.is_empty() && out.blocked.is_empty(), "{out:?}");
    assert_eq!(db.store.am_standing(from_vault).await.unwrap(), Some(Standing::Active));
    let calls = platform.calls();
    fake.come_back().await;
    let out = mirror.sync(user(55), "telegram").await.unwrap();
    assert_eq!(
        out.added,
        [later],
        "Vault answers again: the second account's session arrives"
    );
    assert_eq!(platform.calls(), calls, "from the cached answer");
    let secrets = db.store.account_secrets(later).await.unwrap().unwrap();
    assert_eq!(opened_session(&sealer, &secrets, later), later_session);

    // Vault's secret loses its session: the account is blocked, and says why.
    fake.put("secret", &vault_path(from_vault), json!({"note": "moved"}));
    clock.advance(chrono::Duration::seconds(61));
    let out = mirror.sync(user(55), "telegram").await.unwrap();
    assert_eq!(out.blocked, [from_vault]);
    let Some(Standing::Blocked { reason }) = db.store.am_standing(from_vault).await.unwrap() else {
        panic!("blocked")
    };
    assert_eq!(
        reason,
        format!(
            "{INTEGRATION_REASON_PREFIX}no session data: the Vault secret at secret/{} has no key \"session_data\"",
            vault_path(from_vault)
        )
    );

    // The record carries a session again: it is used (before Vault's), and the account comes back.
    platform.accounts.lock().unwrap()[0]["session_data"] = json!(sessions()[0]);
    clock.advance(chrono::Duration::seconds(61));
    let out = mirror.sync(user(55), "telegram").await.unwrap();
    assert_eq!(out.reactivated, [from_vault]);
    let secrets = db.store.account_secrets(from_vault).await.unwrap().unwrap();
    assert_eq!(opened_session(&sealer, &secrets, from_vault), sessions()[0]);

    drop(_capture);
    let logged = logs.text();
    assert!(
        logged.contains("Integration Service accounts without a session are not used")
            && logged.contains("no session data: neither its record nor Vault"),
        "{logged}"
    );
    assert_no_secret("the log", &logged);
    for secret in [&vault_session, &later_session] {
        assert!(!logged.contains(secret.as_str()), "the log holds a Vault session");
    }
}

#[tokio::test]
async fn without_vault_an_account_whose_record_has_no_session_is_not_used() {
    let _logs = log_scan::capture();
    let (base, platform) = start_platform().await;
    let clock = clock();
    let db = TestDb::new(Backend::Sqlite).await;
    let sealer = Arc::new(Sealer::new(&DataKey::generate()));
    let active = "3b7c2f0e-1d2a-4c55-9f10-2a9e8b7c6d5e";
    let mirror = IntegrationAccounts::new(
        client(&base, &clock),
        db.store.clone(),
        sealer.clone(),
        Arc::new(clock.clone()),
    );
    assert_eq!(mirror.sync(user(55), "telegram").await.unwrap().added, [active]);

    // The record loses its session: the mirrored account is blocked, with the reason.
    platform.accounts.lock().unwrap()[0]
        .as_object_mut()
        .unwrap()
        .remove("session_data");
    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(mirror.sync(user(55), "telegram").await.unwrap().blocked, [active]);
    assert_eq!(
        db.store.am_standing(active).await.unwrap(),
        Some(Standing::Blocked {
            reason: format!(
                "{INTEGRATION_REASON_PREFIX}no session data: its record has none, and Vault is not configured (VAULT_ADDR)"
            )
        })
    );
}

#[tokio::test]
async fn the_periodic_mirroring_runs_only_while_this_process_leads() {
    let _logs = log_scan::capture();
    let (base, platform) = start_platform().await;
    let clock = clock();
    let db = TestDb::new(Backend::Sqlite).await;
    let mut fast = config(&base);
    fast.cache_ttl = Duration::from_millis(50);
    let mirror = Arc::new(IntegrationAccounts::new(
        IntegrationServiceClient::new(fast, service_token(&clock), Arc::new(clock.clone())),
        db.store.clone(),
        Arc::new(Sealer::new(&DataKey::generate())),
        Arc::new(clock.clone()),
    ));
    // A task the engine looks after (it starts by itself later): its owner's accounts are mirrored.
    let spec = domain::task::TaskSpec {
        name: "scheduled".into(),
        description: None,
        platform: domain::task::Platform::Telegram,
        action_type: domain::task::ActionType::InviteToGroup,
        target_channel: Some(domain::channel::ChannelRef::parse("@a_group").unwrap()),
        message_template: None,
        priority: domain::task::Priority::Normal,
        scheduled_start: Some(clock.now() + chrono::Duration::hours(1)),
        settings: Map::new(),
    };
    let meta = RequestMeta {
        request_id: "test".into(),
        client_addr: None,
    };
    db.store.create_task(user(55), &spec, clock.now(), &meta).await.unwrap();

    let (lead, leading) = watch::channel(false);
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn({
        let mirror = mirror.clone();
        async move { mirror.keep_in_sync(leading, stopped).await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(platform.calls(), 0, "a follower does not mirror");

    lead.send_replace(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while db.store.list_accounts(user(55), None).await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the leader did not mirror within 3 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(platform.calls(), 1);

    // Leadership lost: the answer goes stale, and nobody asks again.
    lead.send_replace(false);
    tokio::time::sleep(Duration::from_millis(200)).await;
    clock.advance(chrono::Duration::seconds(61));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(platform.calls(), 1, "no mirroring after leadership is lost");

    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(2), running)
        .await
        .expect("it stops when asked")
        .unwrap();
}
