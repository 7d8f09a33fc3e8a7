//! `RedisEvents` against the Redis on 127.0.0.1:6379. These tests fail, never skip, when Redis is down.
//! Each test uses a channel of its own (a random prefix), so tests running at once do not hear each other.

#[path = "common/log_scan.rs"]
mod log_scan;

use std::{sync::Arc, time::Duration};

use invite_service::engine::events::{redis::RedisEvents, Event, Events};
use tokio::{
    sync::broadcast::{self, error::TryRecvError},
    time::{sleep, timeout, Instant},
};

const URL: &str = "redis://127.0.0.1:6379/";
/// An event must cross processes within this.
const PROMPTLY: Duration = Duration::from_secs(1);
/// Bounds the waits for reconnections.
const SOON: Duration = Duration::from_secs(10);

fn prefix() -> String {
    format!("test-{}:", uuid::Uuid::new_v4().simple())
}

async fn connect(prefix: &str) -> Arc<RedisEvents> {
    match timeout(SOON, RedisEvents::connect_with_prefix(URL, prefix)).await {
        Ok(Ok(events)) => events,
        Ok(Err(e)) => panic!("Redis must run on 127.0.0.1:6379 (`redis-server --daemonize yes ...`): {e}"),
        Err(_) => panic!("connecting to Redis on 127.0.0.1:6379 timed out"),
    }
}

async fn recv(rx: &mut broadcast::Receiver<Event>, within: Duration) -> Event {
    timeout(within, rx.recv())
        .await
        .expect("an event in time")
        .expect("the channel is open")
}

/// The next event other than the `Wake` a resubscription sends.
async fn recv_not_wake(rx: &mut broadcast::Receiver<Event>, within: Duration) -> Event {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match recv(rx, left).await {
            Event::Wake => continue,
            event => return event,
        }
    }
}

/// Asserts nothing more arrives for a while (each event arrives once).
async fn nothing_more(rx: &mut broadcast::Receiver<Event>) {
    sleep(Duration::from_millis(300)).await;
    match rx.try_recv() {
        Err(TryRecvError::Empty) => {}
        other => panic!("expected no further event, got {other:?}"),
    }
}

/// Runs a command on a connection of its own.
async fn admin(args: &[&str]) -> redis::Value {
    let client = redis::Client::open(URL).expect("the URL");
    let mut conn = timeout(SOON, client.get_multiplexed_async_connection())
        .await
        .expect("connecting in time")
        .expect("Redis must run on 127.0.0.1:6379");
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    timeout(SOON, cmd.query_async(&mut conn))
        .await
        .expect("an answer in time")
        .expect("the command")
}

/// Kills the connection named `name`.
async fn kill_client(name: &str) {
    let list = match admin(&["CLIENT", "LIST"]).await {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes).unwrap(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("CLIENT LIST answered {other:?}"),
    };
    let ids: Vec<String> = list
        .lines()
        .filter(|line| line.split(' ').any(|field| field == format!("name={name}")))
        .filter_map(|line| {
            line.split(' ')
                .find_map(|field| field.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(ids.len(), 1, "one connection named {name} in\n{list}");
    admin(&["CLIENT", "KILL", "ID", &ids[0]]).await;
}

#[tokio::test]
async fn redis_an_event_reaches_other_processes_and_its_own_once() {
    let _logs = log_scan::capture();
    let prefix = prefix();
    let a = connect(&prefix).await;
    let b = connect(&prefix).await;
    let (mut at_a, mut at_b, mut at_b_too) = (a.subscribe(), b.subscribe(), b.subscribe());

    let event = Event::TaskChanged { task_id: 42 };
    a.publish(event.clone()).await;
    assert_eq!(recv(&mut at_b, PROMPTLY).await, event, "another process hears it");
    assert_eq!(recv(&mut at_b_too, PROMPTLY).await, event, "each of its subscribers");
    assert_eq!(
        recv(&mut at_a, PROMPTLY).await,
        event,
        "the publishing process hears it too"
    );

    b.publish(Event::Wake).await;
    assert_eq!(recv(&mut at_a, PROMPTLY).await, Event::Wake);
    assert_eq!(recv(&mut at_b, PROMPTLY).await, Event::Wake);

    for rx in [&mut at_a, &mut at_b] {
        nothing_more(rx).await;
    }
}

#[tokio::test]
async fn redis_events_keep_their_order_from_one_publisher() {
    let _logs = log_scan::capture();
    let prefix = prefix();
    let a = connect(&prefix).await;
    let b = connect(&prefix).await;
    let mut at_b = b.subscribe();
    for task_id in 0..50 {
        a.publish(Event::TaskChanged { task_id }).await;
    }
    for task_id in 0..50 {
        assert_eq!(recv(&mut at_b, PROMPTLY).await, Event::TaskChanged { task_id });
    }
    nothing_more(&mut at_b).await;
}

#[tokio::test]
async fn redis_channels_with_other_prefixes_are_not_heard() {
    let _logs = log_scan::capture();
    let (mine, theirs) = (prefix(), prefix());
    let a = connect(&mine).await;
    let other = connect(&theirs).await;
    assert_eq!(a.channel(), format!("{mine}invite-service:events"));
    let (mut at_a, mut at_other) = (a.subscribe(), other.subscribe());
    a.publish(Event::TaskChanged { task_id: 1 }).await;
    assert_eq!(recv(&mut at_a, PROMPTLY).await, Event::TaskChanged { task_id: 1 });
    nothing_more(&mut at_other).await;
}

#[tokio::test]
async fn redis_the_subscription_comes_back_after_its_connection_drops() {
    let _logs = log_scan::capture();
    let prefix = prefix();
    let a = connect(&prefix).await;
    let b = connect(&prefix).await;
    let mut at_b = b.subscribe();
    kill_client(&b.client_name("subscriber")).await;
    // Resubscribed: a local Wake says events may have been missed meanwhile.
    assert_eq!(recv(&mut at_b, SOON).await, Event::Wake);
    a.publish(Event::TaskChanged { task_id: 7 }).await;
    assert_eq!(
        recv_not_wake(&mut at_b, PROMPTLY).await,
        Event::TaskChanged { task_id: 7 }
    );
    nothing_more(&mut at_b).await;
}

#[tokio::test]
async fn redis_publishing_comes_back_after_its_connection_drops() {
    let _logs = log_scan::capture();
    let prefix = prefix();
    let a = connect(&prefix).await;
    let b = connect(&prefix).await;
    let mut at_b = b.subscribe();
    kill_client(&a.client_name("publisher")).await;
    // The publish that meets the dead connection is lost (logged, not an error); a later one gets through.
    let deadline = Instant::now() + SOON;
    let mut attempt = 0;
    loop {
        attempt += 1;
        a.publish(Event::TaskChanged { task_id: attempt }).await;
        match timeout(Duration::from_millis(300), at_b.recv()).await {
            Ok(Ok(Event::TaskChanged { task_id })) => {
                assert!(task_id <= attempt);
                break;
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => assert!(Instant::now() < deadline, "publishing never came back"),
        }
    }
}

#[tokio::test]
async fn redis_connecting_fails_when_redis_cannot_be_reached() {
    let _logs = log_scan::capture();
    // Nothing listens on port 1 of the loopback.
    let error = timeout(SOON, RedisEvents::connect("redis://:hunter2-secret@127.0.0.1:1/"))
        .await
        .expect("failing in time")
        .expect_err("nothing listens on port 1");
    assert!(!error.contains("hunter2"), "{error}");
}
