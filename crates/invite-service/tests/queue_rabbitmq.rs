//! `RabbitQueue` against the RabbitMQ on 127.0.0.1:5672 (guest/guest). These tests fail, never skip, when
//! the broker is down. Each test works on queues of its own (a random prefix) and deletes them at the end;
//! should it fail first, the broker drops them after ten minutes unused.

#[path = "common/log_scan.rs"]
mod log_scan;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use domain::task::Priority;
use invite_service::engine::queue::{rabbitmq::RabbitQueue, Delivery, Job, JobQueue, TargetData};
use tokio::time::{sleep, timeout, Instant};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Long enough for anything that should happen; bounds every wait.
const SOON: Duration = Duration::from_secs(10);
/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(500);

fn prefix() -> String {
    format!("test-{}-", uuid::Uuid::new_v4().simple())
}

async fn connect(prefix: &str) -> RabbitQueue {
    match timeout(SOON, RabbitQueue::connect_with_prefix(URL, prefix)).await {
        Ok(Ok(queue)) => queue,
        Ok(Err(e)) => panic!("RabbitMQ must run on 127.0.0.1:5672 (`rabbitmq-server -detached`): {e}"),
        Err(_) => panic!("connecting to RabbitMQ on 127.0.0.1:5672 timed out"),
    }
}

async fn next(queue: &RabbitQueue) -> Box<dyn Delivery> {
    timeout(SOON, queue.next())
        .await
        .expect("a job within the deadline")
        .expect("next")
}

/// Asserts no job comes for a while.
async fn nothing(queue: &RabbitQueue) {
    if let Ok(taken) = timeout(QUIET, queue.next()).await {
        panic!("expected no job, got {:?}", taken.map(|d| d.job().clone()));
    }
}

fn task(task_id: i64) -> Job {
    Job::ExecuteInviteTask { task_id }
}

fn task_id(delivery: &dyn Delivery) -> i64 {
    match delivery.job() {
        Job::ExecuteInviteTask { task_id } => *task_id,
        other => panic!("unexpected job {other:?}"),
    }
}

async fn depth(queue: &RabbitQueue) -> [u64; 3] {
    let depth = timeout(SOON, queue.depth())
        .await
        .expect("depth in time")
        .expect("depth");
    assert_eq!(depth.map(|(p, _)| p), [Priority::High, Priority::Normal, Priority::Low]);
    depth.map(|(_, n)| n)
}

/// Depth as the broker reports it settles quickly but not always at once: wait for it.
async fn depth_becomes(queue: &RabbitQueue, want: [u64; 3]) {
    let deadline = Instant::now() + SOON;
    loop {
        let got = depth(queue).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "depth stayed {got:?}, want {want:?}");
        sleep(Duration::from_millis(50)).await;
    }
}

async fn teardown(queue: RabbitQueue) {
    timeout(SOON, queue.delete_queues())
        .await
        .expect("deleting in time")
        .expect("deleting the test queues");
}

#[tokio::test]
async fn rabbitmq_round_trips_each_job_variant() {
    let _logs = log_scan::capture();
    let prefix = prefix();
    let q = connect(&prefix).await;
    let mut extra = serde_json::Map::new();
    extra.insert("city".into(), serde_json::json!("Zürich"));
    let jobs = vec![
        Job::ExecuteInviteTask { task_id: 7 },
        Job::ProcessTargetBatch {
            task_id: 7,
            target_id: 70,
            target: TargetData {
                username: Some("alice".into()),
                user_id: Some(1_000_000_007),
                phone: Some("+41790000000".into()),
                first_name: Some("Alice".into()),
                last_name: None,
                extra,
            },
            account_id: "acc-1".into(),
            epoch: 3,
            attempts: 1,
            lease_epoch: 9,
        },
        Job::ReactivateAccountAfterCooldown {
            account_id: "acc-2".into(),
        },
        Job::CleanupCompletedTasks,
    ];
    for job in &jobs {
        q.publish(job, Priority::Normal).await.expect("publish");
    }
    for job in &jobs {
        let delivery = next(&q).await;
        assert_eq!(delivery.job(), job);
        delivery.ack().await.expect("ack");
    }
    nothing(&q).await;
    depth_becomes(&q, [0, 0, 0]).await;
    teardown(q).await;
}

#[tokio::test]
async fn rabbitmq_takes_high_before_normal_before_low() {
    let _logs = log_scan::capture();
    let prefix = prefix();
    let q = connect(&prefix).await;
    q.publish(&task(1), Priority::Low).await.unwrap();
    q.publish(&task(2), Priority::Normal).await.unwrap();
    q.publish(&task(3), Priority::High).await.unwrap();
    q.publish(&task(4), Priority::High).await.unwrap();
    // All four taken before any is acked: a worker pool takes several at once.
    let mut taken = Vec::new();
    for _ in 0..4 {
        taken.push(next(&q).await);
    }
    assert_eq!(
        taken.iter().map(|d| task_id(d.as_ref())).collect::<Vec<_>>(),
        vec![3, 4, 2, 1]
    );
    for delivery in taken {
        delivery.ack().await.unwrap();
    }
    depth_becomes(&q, [0, 0, 0]).await;
    teardown(q).await;
}

#[tokio::test]
async fn rabbitmq_redelivers_an_unacked_job_once_its_connection_is_gone() {
    let _logs = log_scan::capture();
    let prefix = prefix();
    let crashed = connect(&prefix).await;
    let survivor = connect(&prefix).await;
    crashed.publish(&task(11), Priority::High).await.unwrap();
    let held = next(&crashed).await;
    assert_eq!(task_id(held.as_ref()), 11);
    // While its worker holds it, nobody else gets it.
    nothing(&survivor).await;
    // The process dies: its connection goes while the job is unacked (`held` outlives the connection).
    drop(crashed);
    let again = next(&survivor).await;
    assert_eq!(task_id(again.as_ref()), 11);
    again.ack().await.unwrap();
    // The dead connection's delivery can no longer be acked.
    assert!(held.ack().await.is_err());
    nothing(&survivor).await;
    depth_becomes(&survivor, [0, 0, 0]).await;
    teardown(survivor).await;
}

#[tokio::test]
async fn rabbitmq_gives_back_a_delivery_dropped_without_ack() {
    let _logs = log_scan::capture();
    let prefix = prefix();
    let q = connect(&prefix).await;
    q.publish(&task(21), Priority::Normal).await.unwrap();
    drop(next(&q).await);
    let again = next(&q).await;
    assert_eq!(task_id(again.as_ref()), 21);
    again.ack().await.unwrap();
    nothing(&q).await;
    teardown(q).await;
}

#[tokio::test]
async fn rabbitmq_depth_counts_waiting_jobs_per_priority() {
    let _logs = log_scan::capture();
    let prefix = prefix();
    let q = connect(&prefix).await;
    depth_becomes(&q, [0, 0, 0]).await;
    for (id, priority) in [
        (1, Priority::High),
        (2, Priority::High),
        (3, Priority::High),
        (4, Priority::Normal),
        (5, Priority::Normal),
        (6, Priority::Low),
    ] {
        q.publish(&task(id), priority).await.unwrap();
    }
    depth_becomes(&q, [3, 2, 1]).await;
    // A job taken (even unacked) no longer waits.
    let taken = next(&q).await;
    assert_eq!(task_id(taken.as_ref()), 1);
    depth_becomes(&q, [2, 2, 1]).await;
    taken.ack().await.unwrap();
    depth_becomes(&q, [2, 2, 1]).await;
    teardown(q).await;
}

#[tokio::test]
async fn rabbitmq_a_waiting_worker_wakes_when_a_job_arrives() {
    let _logs = log_scan::capture();
    let prefix = prefix();
    let worker = Arc::new(connect(&prefix).await);
    let publisher = connect(&prefix).await;
    let waiting = tokio::spawn({
        let worker = worker.clone();
        async move {
            let delivery = worker.next().await.expect("next");
            let id = task_id(delivery.as_ref());
            delivery.ack().await.expect("ack");
            id
        }
    });
    sleep(Duration::from_millis(200)).await;
    publisher.publish(&task(31), Priority::Low).await.unwrap();
    let got = timeout(Duration::from_secs(2), waiting)
        .await
        .expect("woken within 2 s")
        .unwrap();
    assert_eq!(got, 31);
    teardown(publisher).await;
}

#[tokio::test]
async fn rabbitmq_concurrent_waiters_on_one_connection_each_get_a_job() {
    let _logs = log_scan::capture();
    let prefix = prefix();
    let worker = Arc::new(connect(&prefix).await);
    let publisher = connect(&prefix).await;
    // Five workers of one process wait (three queues, one wake-up consumer each, prefetch 1).
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let worker = worker.clone();
            tokio::spawn(async move { timeout(SOON, worker.next()).await.expect("a job").expect("next") })
        })
        .collect();
    sleep(Duration::from_millis(200)).await;
    for id in 0..5 {
        publisher.publish(&task(id), Priority::Normal).await.unwrap();
    }
    let mut ids = BTreeSet::new();
    let mut held = Vec::new();
    for waiter in waiters {
        let delivery = waiter.await.unwrap();
        ids.insert(task_id(delivery.as_ref()));
        held.push(delivery);
    }
    assert_eq!(ids, (0..5).collect());
    for delivery in held {
        delivery.ack().await.unwrap();
    }
    nothing(&worker).await;
    teardown(publisher).await;
}

#[tokio::test]
async fn rabbitmq_a_worker_that_stopped_waiting_holds_no_job() {
    let _logs = log_scan::capture();
    let prefix = prefix();
    let idle = connect(&prefix).await;
    let busy = connect(&prefix).await;
    // The idle process waited a while, then its worker went on to something else.
    nothing(&idle).await;
    busy.publish(&task(41), Priority::High).await.unwrap();
    // The job must not be stuck in the idle process: the other one gets it.
    let delivery = next(&busy).await;
    assert_eq!(task_id(delivery.as_ref()), 41);
    delivery.ack().await.unwrap();
    depth_becomes(&busy, [0, 0, 0]).await;
    drop(idle);
    teardown(busy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_competing_consumers_get_each_job_exactly_once() {
    let _logs = log_scan::capture();
    const JOBS: i64 = 200;
    let prefix = prefix();
    let publishers = [Arc::new(connect(&prefix).await), Arc::new(connect(&prefix).await)];
    let consumers = [Arc::new(connect(&prefix).await), Arc::new(connect(&prefix).await)];
    let seen = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(60);

    let consuming: Vec<_> = consumers
        .iter()
        .map(|q| {
            let (q, seen) = (q.clone(), seen.clone());
            tokio::spawn(async move {
                let mut mine = 0;
                while (seen.lock().unwrap().len() as i64) < JOBS && Instant::now() < deadline {
                    let Ok(taken) = timeout(Duration::from_millis(300), q.next()).await else {
                        continue;
                    };
                    let delivery = taken.expect("next");
                    seen.lock().unwrap().push(task_id(delivery.as_ref()));
                    delivery.ack().await.expect("ack");
                    mine += 1;
                }
                mine
            })
        })
        .collect();
    let publishing: Vec<_> = publishers
        .iter()
        .enumerate()
        .map(|(half, q)| {
            let q = q.clone();
            tokio::spawn(async move {
                for id in (0..JOBS).filter(|id| id % 2 == half as i64) {
                    let priority = [Priority::High, Priority::Normal, Priority::Low][(id % 3) as usize];
                    q.publish(&task(id), priority).await.expect("publish");
                }
            })
        })
        .collect();
    for task in publishing {
        timeout(Duration::from_secs(60), task)
            .await
            .expect("publishing in time")
            .unwrap();
    }
    let mut per_consumer = Vec::new();
    for task in consuming {
        per_consumer.push(
            timeout(Duration::from_secs(70), task)
                .await
                .expect("consuming in time")
                .unwrap(),
        );
    }
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(
        seen.len() as i64,
        JOBS,
        "every job exactly once (split {per_consumer:?})"
    );
    assert_eq!(seen, (0..JOBS).collect::<Vec<_>>(), "no job twice, none lost");
    for q in &consumers {
        nothing(q).await;
    }
    depth_becomes(&consumers[0], [0, 0, 0]).await;
    let [first, ..] = publishers;
    drop(consumers);
    teardown(Arc::into_inner(first).expect("the publishing tasks are done")).await;
}

#[tokio::test]
async fn rabbitmq_production_queue_names_are_fixed() {
    let _logs = log_scan::capture();
    let q = timeout(SOON, RabbitQueue::connect(URL))
        .await
        .expect("connecting in time")
        .expect("RabbitMQ must run on 127.0.0.1:5672");
    assert_eq!(q.queue_names(), ["invite-high-priority", "invite-normal", "invite-low"]);
    // Declared (durable) and countable; nothing published, nothing deleted: they are the real ones.
    depth(&q).await;
}

#[tokio::test]
async fn rabbitmq_errors_do_not_show_the_password() {
    let _logs = log_scan::capture();
    // Nothing listens on port 1 of the loopback: connecting fails.
    let url = "amqp://guest:hunter2-secret@127.0.0.1:1/%2f";
    let error = timeout(SOON, RabbitQueue::connect(url))
        .await
        .expect("failing in time")
        .expect_err("nothing listens on port 1");
    let text = error.to_string();
    assert!(text.contains("unavailable"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
