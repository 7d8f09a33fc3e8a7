//! One scheduler leader at a time: a PostgreSQL advisory lock on a connection of its own, freed when
//! the leader goes; SQLite always leads (one process owns the file).

use store::StoreOptions;
use test_db::{Backend, TestDb};

#[tokio::test]
async fn one_leader_at_a_time_and_the_next_takes_over_when_it_goes() {
    let db = TestDb::new(Backend::Postgres).await;
    let other = store::open(&db.url, &StoreOptions::default()).await.unwrap();
    let mut first = db.store.try_lead().await.unwrap().expect("nobody leads yet");
    assert!(first.still_leading().await);
    assert!(
        other.try_lead().await.unwrap().is_none(),
        "a second leader while the first holds the lock"
    );
    drop(first);
    let mut next = None;
    for _ in 0..50 {
        next = other.try_lead().await.unwrap();
        if next.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        next.expect("the lock is freed with its connection")
            .still_leading()
            .await
    );
}

#[tokio::test]
async fn sqlite_always_leads() {
    let db = TestDb::new(Backend::Sqlite).await;
    assert!(db.store.try_lead().await.unwrap().unwrap().still_leading().await);
}
