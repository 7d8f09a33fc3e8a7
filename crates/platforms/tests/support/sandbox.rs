//! A sandbox world on a fresh test database, with a manual clock.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use clock::{ManualClock, SharedClock};
use domain::{channel::ChannelRef, username::Username};
use platforms::{
    sandbox::{
        people::{People, Person},
        SandboxWorld, WorldConfig,
    },
    telegram::TelegramStrategy,
    AccountClient, AccountCredentials, ChannelInfo, InviteStrategy, TargetRef,
};
use test_db::{Backend, TestDb};

pub struct Sandbox {
    pub db: TestDb,
    pub clock: ManualClock,
    pub world: Arc<SandboxWorld>,
    pub strategy: TelegramStrategy,
}

pub async fn sandbox(backend: Backend, config: WorldConfig) -> Sandbox {
    let db = TestDb::new(backend).await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0).unwrap());
    let shared: SharedClock = Arc::new(clock.clone());
    let world = SandboxWorld::new(db.store.clone(), shared, config);
    let strategy = TelegramStrategy::over(world.clone());
    Sandbox {
        db,
        clock,
        world,
        strategy,
    }
}

impl Sandbox {
    pub async fn client(&self, account: &str) -> Box<dyn AccountClient> {
        let credentials = AccountCredentials {
            account_id: account.into(),
            secret: String::new(),
            api_id: None,
        };
        self.strategy
            .connect(&credentials)
            .await
            .expect("a sandbox account always connects")
    }

    pub async fn channel(&self, client: &mut Box<dyn AccountClient>, name: &str) -> ChannelInfo {
        client
            .lookup_channel(&ChannelRef::parse(name).unwrap())
            .await
            .expect("a sandbox channel")
    }
}

/// The first `personN` username whose holder matches.
pub fn person_where(people: &People, want: impl Fn(&Person) -> bool) -> String {
    (0..100_000)
        .map(|i| format!("person{i}"))
        .find(|n| people.by_username(n).is_some_and(|p| want(&p)))
        .expect("the mix has such a person")
}

pub fn named(username: &str) -> TargetRef {
    TargetRef {
        username: Some(Username::parse(username).unwrap()),
        ..TargetRef::default()
    }
}
