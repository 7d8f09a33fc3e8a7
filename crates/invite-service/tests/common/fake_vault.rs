//! A local Vault that speaks the part of Vault's HTTP API the service uses — AppRole login, token
//! renew-self and lookup-self, KV v2 read — with knobs: token TTL and renewability, refused renewals,
//! tokens expired at once, and going down (the port closed) and coming back on the same address.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    Json, Router,
};
use serde_json::{json, Value};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub const ROLE_ID: &str = "invite-service-role";
pub const SECRET_ID: &str = "fake-vault-secret-id-5f0c2b9e";

pub struct FakeVault {
    pub addr: SocketAddr,
    state: Arc<VaultState>,
    server: tokio::sync::Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

struct VaultState {
    ttl_seconds: AtomicU64,
    renewable: AtomicBool,
    refuse_renewal: AtomicBool,
    logins: AtomicUsize,
    renewals: AtomicUsize,
    lookups: AtomicUsize,
    reads: AtomicUsize,
    /// Every token handed out, with when it expires (None: never).
    tokens: Mutex<HashMap<String, Option<Instant>>>,
    /// KV v2 secrets by "mount/path".
    kv: Mutex<HashMap<String, Value>>,
    /// "mount/path"s the policy denies to a valid token (403).
    denied: Mutex<Vec<String>>,
}

impl FakeVault {
    /// A Vault on a free port whose tokens live `ttl_seconds` (0: forever) and are renewable.
    pub async fn start(ttl_seconds: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let vault = Self {
            addr,
            state: Arc::new(VaultState {
                ttl_seconds: AtomicU64::new(ttl_seconds),
                renewable: AtomicBool::new(true),
                refuse_renewal: AtomicBool::new(false),
                logins: AtomicUsize::new(0),
                renewals: AtomicUsize::new(0),
                lookups: AtomicUsize::new(0),
                reads: AtomicUsize::new(0),
                tokens: Mutex::new(HashMap::new()),
                kv: Mutex::new(HashMap::new()),
                denied: Mutex::new(Vec::new()),
            }),
            server: tokio::sync::Mutex::new(None),
        };
        vault.serve(listener).await;
        vault
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stores a KV v2 secret at `mount`/`path`.
    pub fn put(&self, mount: &str, path: &str, data: Value) {
        self.state.kv.lock().unwrap().insert(format!("{mount}/{path}"), data);
    }

    /// The policy denies this path: a valid token reading it gets 403.
    pub fn deny(&self, mount: &str, path: &str) {
        self.state.denied.lock().unwrap().push(format!("{mount}/{path}"));
    }

    pub fn set_renewable(&self, renewable: bool) {
        self.state.renewable.store(renewable, Ordering::SeqCst);
    }

    pub fn refuse_renewal(&self, refuse: bool) {
        self.state.refuse_renewal.store(refuse, Ordering::SeqCst);
    }

    /// Every token handed out so far expires now.
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for expiry in self.state.tokens.lock().unwrap().values_mut() {
            *expiry = Some(now);
        }
    }

    pub fn tokens(&self) -> Vec<String> {
        self.state.tokens.lock().unwrap().keys().cloned().collect()
    }

    pub fn logins(&self) -> usize {
        self.state.logins.load(Ordering::SeqCst)
    }

    pub fn renewals(&self) -> usize {
        self.state.renewals.load(Ordering::SeqCst)
    }

    pub fn lookups(&self) -> usize {
        self.state.lookups.load(Ordering::SeqCst)
    }

    pub fn reads(&self) -> usize {
        self.state.reads.load(Ordering::SeqCst)
    }

    /// Closes the port, and the connections kept alive on it: calls now fail to connect.
    pub async fn go_down(&self) {
        if let Some((stop, server)) = self.server.lock().await.take() {
            let _ = stop.send(());
            tokio::time::timeout(Duration::from_secs(2), server)
                .await
                .expect("the fake Vault stops")
                .unwrap();
        }
    }

    /// Listens on the same address again, with its tokens and secrets as they were.
    pub async fn come_back(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("fake Vault: rebinding {}: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("fake Vault cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener).await;
    }

    async fn serve(&self, listener: TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        let app = Router::new().fallback(handle).with_state(self.state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        *self.server.lock().await = Some((stop, server));
    }
}

fn errors(status: StatusCode, errors: &[&str]) -> Response {
    (status, Json(json!({ "errors": errors }))).into_response()
}

fn denied() -> Response {
    errors(StatusCode::FORBIDDEN, &["permission denied"])
}

impl VaultState {
    fn issue(&self) -> Value {
        let token = format!("hvs.fake{}", uuid::Uuid::new_v4().simple());
        let ttl = self.ttl_seconds.load(Ordering::SeqCst);
        let expiry = (ttl > 0).then(|| Instant::now() + Duration::from_secs(ttl));
        self.tokens.lock().unwrap().insert(token.clone(), expiry);
        json!({
            "auth": {
                "client_token": token,
                "accessor": uuid::Uuid::new_v4().to_string(),
                "policies": ["default", "invite-service"],
                "lease_duration": ttl,
                "renewable": self.renewable.load(Ordering::SeqCst),
            }
        })
    }

    /// The caller's token and its remaining seconds; None when Vault would deny it.
    fn authorized(&self, headers: &HeaderMap) -> Option<(String, u64)> {
        let token = headers.get("x-vault-token")?.to_str().ok()?;
        match self.tokens.lock().unwrap().get(token)? {
            None => Some((token.to_string(), 0)),
            Some(expiry) => {
                let left = expiry.saturating_duration_since(Instant::now());
                (!left.is_zero()).then(|| (token.to_string(), left.as_secs().max(1)))
            }
        }
    }
}

async fn handle(
    State(state): State<Arc<VaultState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    match (method, path) {
        (Method::POST, "/v1/auth/approle/login") => {
            state.logins.fetch_add(1, Ordering::SeqCst);
            let body: Value = serde_json::from_slice(&body).unwrap_or_default();
            if body["role_id"] != ROLE_ID || body["secret_id"] != SECRET_ID {
                return errors(StatusCode::BAD_REQUEST, &["invalid role or secret ID"]);
            }
            Json(state.issue()).into_response()
        }
        (Method::POST, "/v1/auth/token/renew-self") => {
            state.renewals.fetch_add(1, Ordering::SeqCst);
            let Some((token, _)) = state.authorized(&headers) else {
                return denied();
            };
            if state.refuse_renewal.load(Ordering::SeqCst) {
                return denied();
            }
            if !state.renewable.load(Ordering::SeqCst) {
                return errors(StatusCode::BAD_REQUEST, &["lease is not renewable"]);
            }
            let ttl = state.ttl_seconds.load(Ordering::SeqCst);
            let expiry = (ttl > 0).then(|| Instant::now() + Duration::from_secs(ttl));
            state.tokens.lock().unwrap().insert(token.clone(), expiry);
            Json(json!({
                "auth": {"client_token": token, "lease_duration": ttl, "renewable": true}
            }))
            .into_response()
        }
        (Method::GET, "/v1/auth/token/lookup-self") => {
            state.lookups.fetch_add(1, Ordering::SeqCst);
            match state.authorized(&headers) {
                Some((_, ttl)) => Json(json!({
                    "data": {"ttl": ttl, "renewable": state.renewable.load(Ordering::SeqCst)}
                }))
                .into_response(),
                None => denied(),
            }
        }
        (Method::GET, _) if path.starts_with("/v1/") && path.contains("/data/") => {
            state.reads.fetch_add(1, Ordering::SeqCst);
            if state.authorized(&headers).is_none() {
                return denied();
            }
            let (mount, secret_path) = path["/v1/".len()..].split_once("/data/").unwrap();
            let key = format!("{mount}/{secret_path}");
            if state.denied.lock().unwrap().contains(&key) {
                return denied();
            }
            match state.kv.lock().unwrap().get(&format!("{mount}/{secret_path}")) {
                Some(data) => Json(json!({
                    "request_id": uuid::Uuid::new_v4().to_string(),
                    "lease_id": "",
                    "renewable": false,
                    "lease_duration": 0,
                    "data": {"data": data, "metadata": {"version": 1, "destroyed": false}},
                }))
                .into_response(),
                None => errors(StatusCode::NOT_FOUND, &[]),
            }
        }
        _ => errors(StatusCode::NOT_FOUND, &[]),
    }
}

/// A session for Vault to hold that no fixture has: a fresh random auth key, as Telethon writes it.
#[allow(dead_code)] // Not every test binary that includes this module uses it.
pub fn fresh_session() -> String {
    use account_manager::session::{AuthKey, TelegramSession};
    let mut key = [0u8; 256];
    rand::Rng::fill(&mut rand::thread_rng(), &mut key[..]);
    TelegramSession {
        dc_id: 2,
        server_address: "149.154.167.51".parse().unwrap(),
        port: 443,
        auth_key: AuthKey::from_bytes(key),
    }
    .to_telethon()
}
