//! RabbitMQ queues of the platform profile.
//!
//! Why it is built the way it is:
//! - **Persistence.** The three queues are durable and every job is published persistent (delivery mode 2),
//!   so a broker restart keeps what was waiting.
//! - **Publisher confirms.** [`JobQueue::publish`] returns only once the broker confirmed the message (a
//!   nack or an unroutable message is [`QueueError::Unavailable`]): a job the scheduler believes queued is
//!   queued.
//! - **Acks after commit.** Jobs are taken with manual acknowledgement; the worker acks a [`Delivery`] only
//!   once the job's outcome is committed to the store. A delivery whose process dies (its connection
//!   closes) is delivered again by RabbitMQ, which is what makes crashes safe — workers make repeats no-ops.
//!   A delivery dropped without an ack is given back (nack with requeue) at once.
//! - **Priority by queue.** RabbitMQ has no priority across queues (and a queue's own `x-max-priority`
//!   would not order jobs against the other queues' consumers), so there is one queue per priority and
//!   [`JobQueue::next`] looks at them in order, HIGH, NORMAL, LOW, with `basic.get`. Only when all three
//!   are empty does it wait, on one consumer per queue (prefetch 1) that exists only while a worker of this
//!   process waits: a process holds, besides the jobs its workers run, at most one unclaimed message per
//!   queue, and none while no worker waits. Nothing polls in a tight loop.

use std::{
    collections::VecDeque,
    fmt,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use async_trait::async_trait;
use domain::task::Priority;
use lapin::{
    message::{Delivery as AmqpDelivery, DeliveryResult},
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
        BasicRejectOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{FieldTable, ShortString},
    Acker, BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
};
use tokio::sync::Notify;

use super::{queue_name, Delivery, Job, JobQueue, QueueError, PRIORITIES};

/// How long connecting (TCP, AMQP handshake, channels, declarations) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a broker RPC or a publisher confirm may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// A waiting worker looks at the queues again after this long even without a wake-up: a safety net, not
/// the way jobs are found.
const RECHECK: Duration = Duration::from_secs(10);
/// How often a waiting worker checks that the connection still stands.
const HEALTH_EVERY: Duration = Duration::from_secs(1);

/// The platform profile's job queues: RabbitMQ, one durable queue per priority.
///
/// Connects lazily again after the connection or a channel broke: the call that finds it broken fails
/// with [`QueueError::Unavailable`], the next one reconnects.
pub struct RabbitQueue {
    /// Holds the credentials: never printed.
    url: String,
    names: [ShortString; 3],
    link: tokio::sync::Mutex<Option<Arc<Link>>>,
}

impl fmt::Debug for RabbitQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitQueue")
            .field("queues", &self.names)
            .finish_non_exhaustive()
    }
}

/// One connection and its channels. Replaced whole when any part of it breaks.
struct Link {
    conn: Connection,
    /// Publisher confirms on.
    publish: Channel,
    /// `basic.get` in priority order; its deliveries are acked on it.
    get: Channel,
    /// Serializes the priority scans on `get`.
    scan: tokio::sync::Mutex<()>,
    /// The wake-up consumers (prefetch 1 each); their deliveries are acked on it.
    consume: Channel,
    names: [ShortString; 3],
    shared: Arc<Shared>,
}

/// What the wake-up consumers share with the waiting workers.
struct Shared {
    state: Mutex<State>,
    /// Something arrived on a wake-up consumer, or one of them ended.
    arrived: Notify,
}

#[derive(Default)]
struct State {
    /// Workers of this process waiting in `next` for all three queues to be empty no more.
    waiters: usize,
    /// Messages a wake-up consumer received, not yet handed to a worker.
    buffer: [VecDeque<AmqpDelivery>; 3],
    /// The armed wake-up consumer per queue. Dropping a `Consumer` cancels it.
    armed: [Option<Consumer>; 3],
    /// A consumer is being started for the queue.
    arming: [bool; 3],
}

fn slot(p: Priority) -> usize {
    match p {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Low => 2,
    }
}

impl RabbitQueue {
    /// Connects to the production queues `invite-high-priority`, `invite-normal` and `invite-low`,
    /// declaring them (durable) when they are missing. `url` is an `amqp://` URL.
    pub async fn connect(url: &str) -> Result<Self, QueueError> {
        Self::connect_with_prefix(url, "").await
    }

    /// Like [`connect`](Self::connect), with every queue name preceded by `prefix`
    /// (`INVITE_QUEUE_PREFIX`: deployments, or tests, sharing one broker). The queues are as durable as
    /// the unprefixed ones; tests delete theirs with [`RabbitQueue::delete_queues`].
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<Self, QueueError> {
        let queue = Self {
            url: url.to_owned(),
            names: PRIORITIES.map(|p| format!("{prefix}{}", queue_name(p)).into()),
            link: tokio::sync::Mutex::new(None),
        };
        queue.link().await?;
        Ok(queue)
    }

    /// The queue names, HIGH, NORMAL, LOW.
    pub fn queue_names(&self) -> [&str; 3] {
        [self.names[0].as_str(), self.names[1].as_str(), self.names[2].as_str()]
    }

    /// Deletes the three queues and what they hold (test teardown). Other connections consuming them
    /// see their consumers cancelled.
    pub async fn delete_queues(&self) -> Result<(), QueueError> {
        let link = self.link().await?;
        let channel = rpc(&self.url, "opening a channel", link.conn.create_channel()).await?;
        for name in &self.names {
            rpc(
                &self.url,
                "deleting a queue",
                channel.queue_delete(name.clone(), QueueDeleteOptions::default()),
            )
            .await?;
        }
        let _ = channel.close(200, "OK".into()).await;
        Ok(())
    }

    /// Closes the connection. Unacknowledged deliveries go back to their queues; later calls reconnect.
    pub async fn close(&self) {
        if let Some(link) = self.link.lock().await.take() {
            link.disarm();
            let _ = tokio::time::timeout(RPC_TIMEOUT, link.conn.close(200, "OK".into())).await;
        }
    }

    /// The live link, connecting when there is none or the last one broke.
    async fn link(&self) -> Result<Arc<Link>, QueueError> {
        let mut guard = self.link.lock().await;
        if let Some(link) = guard.as_ref() {
            if link.healthy() {
                return Ok(link.clone());
            }
            tracing::warn!(queues = ?self.names, "the RabbitMQ connection broke: reconnecting");
            retire(guard.take());
        }
        let link = match tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await {
            Ok(link) => Arc::new(link?),
            Err(_) => return Err(QueueError::Unavailable("connecting to RabbitMQ timed out".into())),
        };
        *guard = Some(link.clone());
        Ok(link)
    }

    async fn open(&self) -> Result<Link, QueueError> {
        let props = ConnectionProperties::default().with_connection_name("invite-service".into());
        let conn = Connection::connect(&self.url, props)
            .await
            .map_err(|e| unavailable(&self.url, "connecting to RabbitMQ", e))?;
        let url = self.url.as_str();
        let publish = rpc(url, "opening a channel", conn.create_channel()).await?;
        let get = rpc(url, "opening a channel", conn.create_channel()).await?;
        let consume = rpc(url, "opening a channel", conn.create_channel()).await?;
        rpc(
            url,
            "enabling publisher confirms",
            publish.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        // Per consumer (global: false): each wake-up consumer holds at most one message.
        rpc(
            url,
            "setting the prefetch",
            consume.basic_qos(1, BasicQosOptions { global: false }),
        )
        .await?;
        let arguments = FieldTable::default();
        let options = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        for name in &self.names {
            rpc(
                url,
                "declaring a queue",
                publish.queue_declare(name.clone(), options, arguments.clone()),
            )
            .await?;
        }
        Ok(Link {
            conn,
            publish,
            get,
            scan: tokio::sync::Mutex::new(()),
            consume,
            names: self.names.clone(),
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                arrived: Notify::new(),
            }),
        })
    }

    /// Forgets `link` if it is still the current one, closing its connection so the broker gives its
    /// unacknowledged deliveries to others.
    async fn invalidate(&self, link: &Arc<Link>) {
        let mut guard = self.link.lock().await;
        if guard.as_ref().is_some_and(|current| Arc::ptr_eq(current, link)) {
            retire(guard.take());
        }
    }

    async fn next_on(&self, link: &Link) -> Result<Box<dyn Delivery>, QueueError> {
        if let Some(delivery) = link.take(&self.url).await? {
            return Ok(delivery);
        }
        // All three queues are empty: wait on the wake-up consumers.
        let _waiting = Waiting::new(&link.shared);
        loop {
            let arrived = link.shared.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            link.arm(&self.url).await?;
            if let Some(delivery) = link.take(&self.url).await? {
                return Ok(delivery);
            }
            // The client tells consumers nothing when the whole connection fails: look at its state now
            // and then (a local check, no broker traffic).
            let recheck_at = tokio::time::Instant::now() + RECHECK;
            loop {
                if !link.healthy() {
                    return Err(QueueError::Unavailable("the RabbitMQ connection broke".into()));
                }
                if tokio::time::timeout(HEALTH_EVERY, arrived.as_mut()).await.is_ok()
                    || tokio::time::Instant::now() >= recheck_at
                {
                    break;
                }
            }
        }
    }
}

impl Drop for RabbitQueue {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.link.try_lock() {
            retire(guard.take());
        }
    }
}

/// Cancels a link's consumers and closes its connection, in the background.
fn retire(link: Option<Arc<Link>>) {
    let Some(link) = link else { return };
    link.disarm();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = tokio::time::timeout(RPC_TIMEOUT, link.conn.close(200, "OK".into())).await;
        });
    }
}

/// Counts a worker as waiting; the last one to stop waiting cancels the wake-up consumers.
struct Waiting<'a>(&'a Arc<Shared>);

impl<'a> Waiting<'a> {
    fn new(shared: &'a Arc<Shared>) -> Self {
        shared.lock().waiters += 1;
        Self(shared)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.waiters -= 1;
        if state.waiters == 0 {
            let (consumers, unclaimed) = state.disarm();
            drop(state);
            drop(consumers);
            give_back(unclaimed);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A wake-up consumer of queue `i` (tagged `tag`) reports.
    fn on_delivery(&self, i: usize, tag: &ShortString, result: DeliveryResult) {
        let mut state = self.lock();
        // One message spends a consumer (its prefetch is full until the job is acked): cancel it; a
        // worker still waiting arms a fresh one.
        let spent = if state.armed[i].as_ref().is_some_and(|c| &c.tag() == tag) {
            state.armed[i].take()
        } else {
            None
        };
        let mut unclaimed = Vec::new();
        match result {
            Ok(Some(delivery)) => {
                state.buffer[i].push_back(delivery);
                if state.waiters == 0 {
                    unclaimed = state.buffer.iter_mut().flat_map(|b| b.drain(..)).collect();
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, queue = i, "a RabbitMQ wake-up consumer ended"),
        }
        drop(state);
        drop(spent);
        give_back(unclaimed);
        self.arrived.notify_waiters();
    }
}

impl State {
    /// Takes the armed consumers (to drop, which cancels them) and the unclaimed messages (to give back).
    fn disarm(&mut self) -> (Vec<Consumer>, Vec<AmqpDelivery>) {
        let consumers = self.armed.iter_mut().filter_map(Option::take).collect();
        let unclaimed = self.buffer.iter_mut().flat_map(|b| b.drain(..)).collect();
        (consumers, unclaimed)
    }
}

/// Requeues messages no worker took, in the background (they go back to their place in the queue).
fn give_back(deliveries: Vec<AmqpDelivery>) {
    if deliveries.is_empty() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        for delivery in deliveries {
            let options = BasicRejectOptions { requeue: true };
            if let Err(error) = delivery.acker.reject(options).await {
                tracing::debug!(%error, "could not give a RabbitMQ message back (its channel closed: it is requeued)");
            }
        }
    });
}

impl Link {
    fn healthy(&self) -> bool {
        self.conn.status().connected()
            && self.publish.status().connected()
            && self.get.status().connected()
            && self.consume.status().connected()
    }

    fn disarm(&self) {
        let (consumers, unclaimed) = self.shared.lock().disarm();
        drop(consumers);
        give_back(unclaimed);
    }

    /// The first waiting job, HIGH before NORMAL before LOW; within a priority, a message a wake-up
    /// consumer already received comes before the queue's head (it was ahead of it).
    async fn take(&self, url: &str) -> Result<Option<Box<dyn Delivery>>, QueueError> {
        let _scan = self.scan.lock().await;
        for i in 0..3 {
            loop {
                let buffered = self.shared.lock().buffer[i].pop_front();
                let delivery = match buffered {
                    Some(delivery) => delivery,
                    None => {
                        let options = BasicGetOptions { no_ack: false };
                        match rpc(url, "taking a job", self.get.basic_get(self.names[i].clone(), options)).await? {
                            Some(message) => message.delivery,
                            None => break,
                        }
                    }
                };
                if let Some(delivery) = decode(delivery, self.names[i].as_str()).await {
                    return Ok(Some(Box::new(delivery)));
                }
            }
        }
        Ok(None)
    }

    /// Makes sure each queue has a wake-up consumer while workers wait.
    async fn arm(&self, url: &str) -> Result<(), QueueError> {
        let todo: Vec<usize> = {
            let mut state = self.shared.lock();
            (0..3)
                .filter(|&i| {
                    let start = state.armed[i].is_none() && !state.arming[i];
                    state.arming[i] |= start;
                    start
                })
                .collect()
        };
        let mut result = Ok(());
        for i in todo {
            let tag: ShortString = format!("invite-service-{}", uuid::Uuid::new_v4()).into();
            let consumed = rpc(
                url,
                "consuming a queue",
                self.consume.basic_consume(
                    self.names[i].clone(),
                    tag.clone(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                ),
            )
            .await;
            let mut state = self.shared.lock();
            state.arming[i] = false;
            let consumer = match consumed {
                Ok(consumer) => consumer,
                Err(error) => {
                    result = Err(error);
                    continue;
                }
            };
            if state.waiters == 0 || state.armed[i].is_some() {
                drop(state);
                drop(consumer);
                continue;
            }
            state.armed[i] = Some(consumer.clone());
            drop(state);
            // Set after the consumer is stored, so a delivery finds it armed and spends it.
            let shared = Arc::downgrade(&self.shared);
            consumer.set_delegate(move |result: DeliveryResult| {
                let shared: Weak<Shared> = shared.clone();
                let tag = tag.clone();
                async move {
                    match shared.upgrade() {
                        Some(shared) => shared.on_delivery(i, &tag, result),
                        // The link is gone and its connection closing: the broker requeues the message.
                        None => drop(result),
                    }
                }
            });
        }
        result
    }
}

/// A job whose body does not parse is rejected without requeue (dead-lettered when the queue has a dead
/// letter exchange, dropped otherwise): giving it back would only loop.
async fn decode(delivery: AmqpDelivery, queue: &str) -> Option<RabbitDelivery> {
    match serde_json::from_slice::<Job>(&delivery.data) {
        Ok(job) => Some(RabbitDelivery {
            job,
            acker: delivery.acker,
            settled: false,
        }),
        Err(error) => {
            tracing::error!(%error, queue, bytes = delivery.data.len(), "dropping a message that is not a job");
            let _ = delivery.acker.reject(BasicRejectOptions { requeue: false }).await;
            None
        }
    }
}

struct RabbitDelivery {
    job: Job,
    acker: Acker,
    settled: bool,
}

#[async_trait]
impl Delivery for RabbitDelivery {
    fn job(&self) -> &Job {
        &self.job
    }

    /// Acks on the channel the job came from. When that channel has closed meanwhile (the connection
    /// broke), the ack cannot be made and the job will be delivered again: an error.
    async fn ack(mut self: Box<Self>) -> Result<(), QueueError> {
        self.settled = true;
        match tokio::time::timeout(RPC_TIMEOUT, self.acker.ack(BasicAckOptions::default())).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(QueueError::Unavailable(
                "the job's channel closed before the ack: it will be delivered again".into(),
            )),
            Ok(Err(error)) => Err(QueueError::Unavailable(format!("acknowledging a job: {error}"))),
            Err(_) => Err(QueueError::Unavailable("acknowledging a job timed out".into())),
        }
    }
}

impl Drop for RabbitDelivery {
    /// Dropped without an ack (the worker gave up or panicked): give the job back now rather than hold
    /// it until the connection closes.
    fn drop(&mut self) {
        if self.settled || !self.acker.usable() {
            return;
        }
        let acker = self.acker.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let options = BasicNackOptions {
                    multiple: false,
                    requeue: true,
                };
                let _ = acker.nack(options).await;
            });
        }
    }
}

#[async_trait]
impl JobQueue for RabbitQueue {
    async fn publish(&self, job: &Job, priority: Priority) -> Result<(), QueueError> {
        let link = self.link().await?;
        let body = serde_json::to_vec(job).map_err(|e| QueueError::Unavailable(format!("encoding a job: {e}")))?;
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_type(job.name().into());
        let name = &self.names[slot(priority)];
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirmed = async {
            let confirm = link
                .publish
                .basic_publish("".into(), name.clone(), options, &body, properties)
                .await?;
            confirm.await
        };
        let confirmation = match tokio::time::timeout(RPC_TIMEOUT, confirmed).await {
            Ok(Ok(confirmation)) => confirmation,
            Ok(Err(error)) => {
                self.invalidate(&link).await;
                return Err(unavailable(&self.url, "publishing a job", error));
            }
            Err(_) => {
                self.invalidate(&link).await;
                return Err(QueueError::Unavailable(
                    "the broker did not confirm a job in time".into(),
                ));
            }
        };
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => Err(QueueError::Unavailable(
                format!("the broker returned the job: {} (queue {name})", returned.reply_text),
            )),
            Confirmation::Nack(None) => Err(QueueError::Unavailable("the broker refused the job (nack)".into())),
            Confirmation::NotRequested => Err(QueueError::Unavailable("publisher confirms are off".into())),
        }
    }

    async fn next(&self) -> Result<Box<dyn Delivery>, QueueError> {
        let link = self.link().await?;
        let taken = self.next_on(&link).await;
        if taken.is_err() {
            self.invalidate(&link).await;
        }
        taken
    }

    async fn depth(&self) -> Result<[(Priority, u64); 3], QueueError> {
        let link = self.link().await?;
        // A channel of its own: a failed passive declare closes the channel it ran on.
        let channel = rpc(&self.url, "opening a channel", link.conn.create_channel()).await?;
        let mut counts = [0u64; 3];
        for (count, name) in counts.iter_mut().zip(&self.names) {
            let options = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            let queue = rpc(
                &self.url,
                "counting a queue",
                channel.queue_declare(name.clone(), options, FieldTable::default()),
            )
            .await?;
            *count = u64::from(queue.message_count());
        }
        let _ = channel.close(200, "OK".into()).await;
        Ok(PRIORITIES.map(|p| (p, counts[slot(p)])))
    }
}

/// Runs a broker RPC with a deadline, its error as [`QueueError::Unavailable`].
async fn rpc<T>(
    url: &str,
    what: &str,
    call: impl std::future::Future<Output = lapin::Result<T>>,
) -> Result<T, QueueError> {
    match tokio::time::timeout(RPC_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(unavailable(url, what, error)),
        Err(_) => Err(QueueError::Unavailable(format!("{what}: timed out"))),
    }
}

/// The error's text, with the URL and its password taken out should the client have quoted them.
fn unavailable(url: &str, what: &str, error: impl fmt::Display) -> QueueError {
    QueueError::Unavailable(format!("{what}: {}", redact(url, &error.to_string())))
}

fn redact(url: &str, text: &str) -> String {
    let mut text = text.replace(url, "<url>");
    if let Ok(parsed) = url::Url::parse(url) {
        if let Some(password) = parsed.password().filter(|p| !p.is_empty()) {
            text = text.replace(password, "<password>");
            let decoded = percent_decode(password);
            if !decoded.is_empty() {
                text = text.replace(&decoded, "<password>");
            }
        }
    }
    text
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_never_hold_the_password() {
        let url = "amqp://guest:s%40cret@broker:5672/%2f";
        let text = redact(url, &format!("failed for {url}: password s@cret and s%40cret refused"));
        assert!(!text.contains("s@cret") && !text.contains("s%40cret"), "{text}");
        assert!(text.contains("<url>") && text.contains("<password>"), "{text}");
    }
}
