//! A fake Telegram server for tests: it listens on 127.0.0.1 and speaks real MTProto 2.0 (full TCP
//! transport, AES-IGE encryption, containers, gzip, salts, pings), so a Telegram adapter can be proven
//! on the wire without internet access or a real account.
//!
//! What it deliberately does not do:
//! * No Diffie-Hellman key exchange: tests hand the same 256-byte key to the client and to
//!   [`Builder::accept_key`]. Any other key, including 0 (a plaintext key-exchange attempt), is
//!   answered with transport error -404 and the connection is closed, like Telegram does for a
//!   forgotten key.
//! * No Telegram semantics: every API query is handed to the test's [`Builder::script`], which
//!   decides the [`Reply`]. Only a handful of queries have a built-in answer ([`Reply::Default`]).
//!
//! ```no_run
//! # async fn demo() {
//! use grammers_tl_types as tl;
//! use mtproto_fake::{FakeTelegram, Reply};
//!
//! let key = [7u8; 256];
//! let server = FakeTelegram::builder()
//!     .accept_key(key)
//!     .script(|call| {
//!         if call.is::<tl::functions::contacts::ResolveUsername>() {
//!             Reply::error(400, "USERNAME_NOT_OCCUPIED")
//!         } else {
//!             Reply::Default
//!         }
//!     })
//!     .start()
//!     .await;
//! // point a grammers Sender / SenderPool at server.addr() with `key`...
//! assert_eq!(server.rejected_keys(), 0);
//! # }
//! ```

mod connection;
mod crypto;
mod transport;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use grammers_tl_types::{Cursor, Deserializable, Identifiable, Serializable};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::crypto::AuthKey;

type Script = dyn Fn(&Call) -> Reply + Send + Sync;

/// A running fake server. Dropping it aborts the listener and every open connection, so each test
/// owns its server and nothing leaks into the next test.
pub struct FakeTelegram {
    addr: SocketAddrV4,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

/// Configuration for a [`FakeTelegram`], obtained from [`FakeTelegram::builder`].
pub struct Builder {
    keys: Vec<[u8; 256]>,
    this_dc: i32,
    server_salt: Option<i64>,
    script: Option<Box<Script>>,
}

/// One RPC query as the server received it, after unwrapping `invokeWithLayer`, `initConnection`,
/// `invokeWithoutUpdates`, `invokeAfterMsg(s)`, `invokeWithTakeout`, containers and gzip.
///
/// Service queries that expect an answer (`ping`, `ping_delay_disconnect`, `get_future_salts`,
/// `destroy_session`, `rpc_drop_answer`) are calls too, so a script can withhold a pong; pure
/// notifications such as `msgs_ack` are not.
#[derive(Clone, Debug)]
pub struct Call {
    /// Which accepted connection (0-based, in accept order) carried the query.
    pub connection: usize,
    pub auth_key_id: i64,
    /// The `msg_id` of the message that carried the query (the inner message when in a container).
    pub msg_id: i64,
    pub constructor_id: u32,
    /// The TL name, e.g. `"channels.inviteToChannel"`, or `"(unknown)"`.
    pub name: &'static str,
    /// The serialized inner query, starting with its constructor id.
    pub body: Vec<u8>,
    /// From `invokeWithLayer`, when this query was wrapped in it.
    pub layer: Option<i32>,
    /// From `initConnection`, when this query was wrapped in it.
    pub api_id: Option<i32>,
    /// The query arrived inside `gzip_packed`.
    pub gzipped: bool,
    /// The query arrived inside `msg_container`. grammers puts its pending `msgs_ack` in a container with
    /// the next query, so this alone does not mean several queries were batched: compare
    /// [`Call::container_msg_id`] for that.
    pub in_container: bool,
    /// The msg_id of that container; calls sharing it were batched by the client.
    pub container_msg_id: Option<i64>,
}

/// What the server does with a [`Call`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `rpc_result` carrying this serialized TL object (sent gzip-packed when large, as Telegram does).
    Ok(Vec<u8>),
    /// `rpc_result` carrying `rpc_error`, e.g. `(420, "FLOOD_WAIT_30")`.
    Error { code: i32, message: String },
    /// A transport-level error such as -404, then the connection is closed. Answers to earlier
    /// queries of the same packet (container) are sent first; later ones are dropped.
    TransportError(i32),
    /// Close the TCP connection without answering, after sending answers to earlier queries of the
    /// same packet. grammers reports it as `InvocationError::Io`.
    Close,
    /// Never answer this call; the connection stays open.
    Silence,
    /// The built-in answer: `help.getConfig` (empty `dc_options`), `help.getNearestDc`, `ping`,
    /// `ping_delay_disconnect`, `get_future_salts`, `destroy_session`, `rpc_drop_answer`;
    /// anything else gets `rpc_error` 500 `FAKE_NOT_SCRIPTED_<name>` so a missing script entry is
    /// loud instead of a hang. `ping_delay_disconnect` is answered but arms no disconnect timer:
    /// tests are far shorter than its 75 s.
    Default,
}

impl Reply {
    /// Pass a boxed value: a `tl::enums::*` (or a `Vec`, `bool`, ...). `tl::types::*` structs serialize
    /// without their constructor id, which the client cannot parse; the server logs a warning when a
    /// scripted result does not start with a known constructor.
    pub fn ok(value: &impl Serializable) -> Self {
        Reply::Ok(value.to_bytes())
    }

    pub fn error(code: i32, message: &str) -> Self {
        Reply::Error {
            code,
            message: message.to_owned(),
        }
    }
}

impl Call {
    pub fn is<F: Identifiable>(&self) -> bool {
        self.constructor_id == F::CONSTRUCTOR_ID
    }

    /// Decodes the query as `F` (a `grammers_tl_types::functions` type), or `None` if it is another query.
    pub fn decode<F: Identifiable + Deserializable>(&self) -> Option<F> {
        if !self.is::<F>() {
            return None;
        }
        let mut cursor = Cursor::from_slice(&self.body[4..]);
        F::deserialize(&mut cursor).ok()
    }
}

impl FakeTelegram {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls().clone()
    }

    pub fn calls_named(&self, name: &str) -> Vec<Call> {
        self.shared.calls().iter().filter(|c| c.name == name).cloned().collect()
    }

    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn rejected_keys(&self) -> usize {
        self.shared.rejected_keys.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` calls have been recorded; `false` on timeout. Lets a test synchronise
    /// with traffic it does not await itself (e.g. a call that is answered with [`Reply::Silence`]).
    pub async fn wait_for_calls(&self, n: usize, timeout: Duration) -> bool {
        let mut count = self.shared.call_count.subscribe();
        let waited = tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await;
        matches!(waited, Ok(Ok(_)))
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        // The connection tasks live in a JoinSet owned by the accept task, so aborting it aborts them.
        self.accept_task.abort();
        // A failed assertion inside a script runs on a connection task, where it would only close the
        // connection; re-raising it here makes the test fail where the author expects.
        let panics = std::mem::take(&mut *self.shared.script_panics.lock().unwrap_or_else(|p| p.into_inner()));
        if !panics.is_empty() && !std::thread::panicking() {
            panic!("the fake Telegram script panicked: {}", panics.join("; "));
        }
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            this_dc: 2,
            server_salt: None,
            script: None,
        }
    }
}

impl Builder {
    pub fn accept_key(mut self, key: [u8; 256]) -> Self {
        self.keys.push(key);
        self
    }

    /// The `this_dc` reported by the default `help.getConfig` and `help.getNearestDc` answers.
    pub fn this_dc(mut self, dc: i32) -> Self {
        self.this_dc = dc;
        self
    }

    /// Makes the server behave like Telegram about salts: a message with any other salt is refused with
    /// `bad_server_salt` (the client must re-send it), a new session is announced with
    /// `new_session_created`, and `get_future_salts` hands out this salt.
    ///
    /// grammers always starts a connection with salt 0, so against real Telegram its very first request
    /// is bounced; this lets a test prove the adapter survives that dance. Without it every salt is
    /// accepted, which keeps traffic minimal.
    pub fn server_salt(mut self, salt: i64) -> Self {
        self.server_salt = Some(salt);
        self
    }

    /// Decides the reply to every call, `help.getConfig` included (return [`Reply::Default`] for the
    /// built-in answer). Runs on the connection's task, so it must not block. Assertions are welcome:
    /// a panic closes that connection (the client sees an I/O error) and is re-raised when the
    /// [`FakeTelegram`] is dropped.
    pub fn script(mut self, f: impl Fn(&Call) -> Reply + Send + Sync + 'static) -> Self {
        self.script = Some(Box::new(f));
        self
    }

    pub async fn start(self) -> FakeTelegram {
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind 127.0.0.1:0");
        let addr = match listener.local_addr().expect("listener has an address") {
            std::net::SocketAddr::V4(addr) => addr,
            std::net::SocketAddr::V6(addr) => unreachable!("bound to an IPv4 address, got {addr}"),
        };
        let keys = self
            .keys
            .into_iter()
            .map(|data| {
                let key = AuthKey::new(data);
                (key.id(), key)
            })
            .collect();
        let shared = Arc::new(Shared {
            keys,
            this_dc: self.this_dc,
            server_salt: self.server_salt,
            script: self.script,
            calls: Mutex::new(Vec::new()),
            call_count: watch::Sender::new(0),
            connections: AtomicUsize::new(0),
            rejected_keys: AtomicUsize::new(0),
            script_panics: Mutex::new(Vec::new()),
        });
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        FakeTelegram {
            addr,
            shared,
            accept_task,
        }
    }
}

/// State shared by the handle and all connection tasks.
pub(crate) struct Shared {
    pub(crate) keys: HashMap<i64, AuthKey>,
    pub(crate) this_dc: i32,
    pub(crate) server_salt: Option<i64>,
    script: Option<Box<Script>>,
    calls: Mutex<Vec<Call>>,
    call_count: watch::Sender<usize>,
    connections: AtomicUsize,
    pub(crate) rejected_keys: AtomicUsize,
    /// Panics raised by the script, re-raised when the server is dropped.
    script_panics: Mutex<Vec<String>>,
}

impl Shared {
    fn calls(&self) -> MutexGuard<'_, Vec<Call>> {
        // A push cannot be left half done, so a poisoned list is still consistent.
        self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the call before the script sees it, so even a silenced call shows up in `calls()`.
    pub(crate) fn record_and_script(&self, call: &Call) -> Reply {
        self.calls().push(call.clone());
        self.call_count.send_modify(|c| *c += 1);
        let Some(script) = &self.script else {
            return Reply::Default;
        };
        match panic::catch_unwind(AssertUnwindSafe(|| script(call))) {
            Ok(reply) => reply,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "non-string panic payload".to_owned());
                self.script_panics
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(format!("{}: {message}", call.name));
                Reply::Close
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let index = shared.connections.fetch_add(1, Ordering::SeqCst);
                    tracing::debug!(index, %peer, "fake telegram: accepted connection");
                    connections.spawn(connection::serve(index, stream, Arc::clone(&shared)));
                }
                Err(error) => tracing::warn!(%error, "fake telegram: accept failed"),
            },
            // Reap finished connections so a long test does not accumulate them.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
