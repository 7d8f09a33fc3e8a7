//! Redis pub/sub events of the platform profile.
//!
//! Publishing is `PUBLISH` of the event's JSON on one channel (`invite-service:events`). A background task
//! holds a second connection `SUBSCRIBE`d to that channel and forwards every event it receives — from
//! every process, this one included, so each arrives once — into the local broadcast channel that
//! [`Events::subscribe`] hands out. Pub/sub is fire and forget: an event published while a subscriber is
//! disconnected never reaches it. That is acceptable because events are wake-ups (the store is the truth);
//! to make up for the gap, the task sends a local [`Event::Wake`] each time it has subscribed again.
//!
//! The subscriber uses RESP3 (Redis 6 or later), whose push messages arrive on an in-process channel
//! alongside a disconnection notice, and pings the server so a silent network failure is noticed too. It
//! reconnects with exponential backoff (100 ms doubling to 5 s), logging with `tracing`. Publishing
//! reconnects on the next publish after a failure; failures are logged and swallowed.
//!
//! The connections are named `{channel}:subscriber:{id}` and `{channel}:publisher:{id}`, `id` random per
//! [`RedisEvents`] (`CLIENT LIST` shows them; [`RedisEvents::client_name`]).

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use redis::{
    aio::MultiplexedConnection, AsyncConnectionConfig, Client, IntoConnectionInfo, Msg, ProtocolVersion, PushInfo,
    PushKind,
};
use tokio::{
    sync::{broadcast, mpsc},
    task::JoinHandle,
};

use super::{Event, Events};

/// The production channel.
pub const CHANNEL: &str = "invite-service:events";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
const PING_EVERY: Duration = Duration::from_secs(15);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Local subscribers that fall this far behind miss events (`RecvError::Lagged`).
const LOCAL_CAPACITY: usize = 1024;

/// Events between processes over Redis pub/sub. Dropping the last `Arc` stops the subscriber task.
pub struct RedisEvents {
    channel: String,
    /// Tells this instance's connections apart in `CLIENT LIST`.
    id: String,
    client: Client,
    publisher: tokio::sync::Mutex<Publisher>,
    tx: broadcast::Sender<Event>,
    subscriber: JoinHandle<()>,
}

impl fmt::Debug for RedisEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisEvents")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// The publishing connection, made again on demand after a failure (not more often than the backoff).
#[derive(Default)]
struct Publisher {
    conn: Option<MultiplexedConnection>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl RedisEvents {
    /// Connects to Redis (`redis://` URL), subscribes to `invite-service:events` and starts forwarding.
    /// Fails when Redis cannot be reached now; later outages are ridden out.
    pub async fn connect(url: &str) -> Result<Arc<Self>, String> {
        Self::connect_with_prefix(url, "").await
    }

    /// Like [`connect`](Self::connect), on the channel `prefix` + `invite-service:events`: `""` in
    /// production, something unique per test so tests do not hear each other.
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<Arc<Self>, String> {
        let info = url
            .into_connection_info()
            .map_err(|e| format!("the Redis URL is invalid: {}", redact(url, e)))?;
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(settings))
            .map_err(|e| format!("the Redis URL is invalid: {}", redact(url, e)))?;
        let channel = format!("{prefix}{CHANNEL}");
        let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let first = subscribe(&client, &channel, &id)
            .await
            .map_err(|e| format!("subscribing to Redis: {}", redact(url, e)))?;
        let publisher = connection(&client, &client_name(&channel, "publisher", &id), None)
            .await
            .map_err(|e| format!("connecting to Redis: {}", redact(url, e)))?;
        let (tx, _) = broadcast::channel(LOCAL_CAPACITY);
        let subscriber = tokio::spawn(forward(
            client.clone(),
            url.to_owned(),
            channel.clone(),
            id.clone(),
            tx.clone(),
            first,
        ));
        Ok(Arc::new(Self {
            channel,
            id,
            client,
            publisher: tokio::sync::Mutex::new(Publisher {
                conn: Some(publisher),
                ..Publisher::default()
            }),
            tx,
            subscriber,
        }))
    }

    /// The pub/sub channel in use.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The name of this instance's `role` connection (`subscriber` or `publisher`) as `CLIENT LIST` shows it.
    pub fn client_name(&self, role: &str) -> String {
        client_name(&self.channel, role, &self.id)
    }

    /// The publishing connection, or `None` while Redis is unreachable and the backoff not yet over.
    async fn publisher(&self) -> Option<MultiplexedConnection> {
        let mut publisher = self.publisher.lock().await;
        if let Some(conn) = &publisher.conn {
            return Some(conn.clone());
        }
        if publisher.retry_at.is_some_and(|at| Instant::now() < at) {
            return None;
        }
        match connection(&self.client, &self.client_name("publisher"), None).await {
            Ok(conn) => {
                tracing::info!(channel = %self.channel, "reconnected to Redis for publishing");
                *publisher = Publisher {
                    conn: Some(conn.clone()),
                    ..Publisher::default()
                };
                Some(conn)
            }
            Err(error) => {
                publisher.backoff = (publisher.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                publisher.retry_at = Some(Instant::now() + publisher.backoff);
                tracing::warn!(%error, retry_in = ?publisher.backoff, "cannot connect to Redis to publish events");
                None
            }
        }
    }
}

impl Drop for RedisEvents {
    fn drop(&mut self) {
        self.subscriber.abort();
    }
}

#[async_trait]
impl Events for RedisEvents {
    async fn publish(&self, event: Event) {
        let payload = match serde_json::to_string(&event) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, ?event, "cannot encode an event");
                return;
            }
        };
        let Some(mut conn) = self.publisher().await else {
            tracing::debug!(?event, "Redis is unreachable: event not published");
            return;
        };
        let published: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(&payload)
            .query_async(&mut conn)
            .await;
        if let Err(error) = published {
            tracing::warn!(%error, ?event, "publishing an event on Redis failed");
            let mut publisher = self.publisher.lock().await;
            publisher.conn = None;
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

type Subscription = (MultiplexedConnection, mpsc::UnboundedReceiver<PushInfo>);

fn client_name(channel: &str, role: &str, id: &str) -> String {
    format!("{channel}:{role}:{id}")
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect()
}

/// A connection named `name` (`CLIENT SETNAME`), its push messages sent to `pushes`.
async fn connection(
    client: &Client,
    name: &str,
    pushes: Option<mpsc::UnboundedSender<PushInfo>>,
) -> redis::RedisResult<MultiplexedConnection> {
    let mut config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    if let Some(pushes) = pushes {
        config = config.set_push_sender(pushes);
    }
    let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(name)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(conn)
}

/// A connection subscribed to `channel`, and where its messages arrive.
async fn subscribe(client: &Client, channel: &str, id: &str) -> redis::RedisResult<Subscription> {
    let (push_tx, push_rx) = mpsc::unbounded_channel();
    let mut conn = connection(client, &client_name(channel, "subscriber", id), Some(push_tx)).await?;
    match tokio::time::timeout(RESPONSE_TIMEOUT, conn.subscribe(channel)).await {
        Ok(subscribed) => subscribed?,
        Err(_) => return Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
    }
    Ok((conn, push_rx))
}

/// The subscriber task: forwards events, subscribes again (with backoff) whenever the connection ends.
async fn forward(
    client: Client,
    url: String,
    channel: String,
    id: String,
    tx: broadcast::Sender<Event>,
    first: Subscription,
) {
    let mut subscription = Some(first);
    let mut backoff = BACKOFF_MIN;
    loop {
        let (conn, pushes) = match subscription.take() {
            Some(subscription) => subscription,
            None => match subscribe(&client, &channel, &id).await {
                Ok(subscription) => {
                    tracing::info!(%channel, "subscribed to Redis events again");
                    backoff = BACKOFF_MIN;
                    // Whatever was published meanwhile is lost: have everyone look again.
                    let _ = tx.send(Event::Wake);
                    subscription
                }
                Err(error) => {
                    let error = redact(&url, error);
                    tracing::warn!(%channel, %error, retry_in = ?backoff, "cannot subscribe to Redis events");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            },
        };
        let why = pump(conn, pushes, &channel, &tx).await;
        tracing::warn!(%channel, why, "the Redis events subscription ended: subscribing again");
    }
}

/// Forwards one subscription's messages until its connection ends; returns why it ended.
async fn pump(
    mut conn: MultiplexedConnection,
    mut pushes: mpsc::UnboundedReceiver<PushInfo>,
    channel: &str,
    tx: &broadcast::Sender<Event>,
) -> &'static str {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            push = pushes.recv() => {
                let Some(push) = push else { return "the connection closed" };
                match push.kind {
                    PushKind::Disconnection => return "the connection dropped",
                    PushKind::Message => {
                        if let Some(msg) = Msg::from_push_info(push) {
                            deliver(&msg, channel, tx);
                        }
                    }
                    _ => {}
                }
            }
            _ = ping.tick() => {
                let pong: redis::RedisResult<()> = redis::cmd("PING").query_async(&mut conn).await;
                if let Err(error) = pong {
                    tracing::debug!(%error, "Redis did not answer a ping");
                    return "Redis did not answer a ping";
                }
            }
        }
    }
}

fn deliver(msg: &Msg, channel: &str, tx: &broadcast::Sender<Event>) {
    if msg.get_channel_name() != channel {
        return;
    }
    match serde_json::from_slice::<Event>(msg.get_payload_bytes()) {
        // No local subscriber is not an error.
        Ok(event) => drop(tx.send(event)),
        Err(error) => tracing::warn!(%error, %channel, "ignoring a message that is not an event"),
    }
}

/// An error's text without the URL or its password, should the client have quoted them.
fn redact(url: &str, error: impl fmt::Display) -> String {
    let mut text = error.to_string().replace(url, "<url>");
    if let Ok(parsed) = url::Url::parse(url) {
        if let Some(password) = parsed.password().filter(|p| !p.is_empty()) {
            text = text.replace(password, "<password>");
        }
    }
    text
}
