//! Campaigns on the sandbox world: a thousand targets with the default mix through the adapter and the
//! Account Manager, audited on the world's record; and two processes sharing one world, one of them
//! killed mid-run.

mod support;

use std::{collections::BTreeMap, process::Stdio, sync::Arc, time::Duration};

use account_manager::{AccountManager, Policy};
use clock::{Clock, SharedClock, SystemClock};
use domain::username::Username;
use platforms::{
    sandbox::{audit::audit, people::Being, SandboxWorld, WorldConfig},
    telegram::TelegramStrategy,
    AccountCredentials, InviteStrategy, TargetRef,
};
use store::{SharedStore, StoreOptions};
use support::{drive::*, sandbox::*};
use test_db::{Backend, TestDb};

const CHANNEL: &str = "@launch_group";

fn audience(n: usize, prefix: &str) -> Vec<TargetRef> {
    (0..n)
        .map(|i| TargetRef {
            username: Some(Username::parse(&format!("{prefix}{i:05}")).unwrap()),
            ..TargetRef::default()
        })
        .collect()
}

async fn thousand_targets(backend: Backend) {
    let s = sandbox(backend, WorldConfig::default()).await;
    let accounts = register_accounts(&s.db.store, 1, 10, s.clock.now()).await;
    let clock: SharedClock = Arc::new(s.clock.clone());
    let am = AccountManager::new(s.db.store.clone(), clock, Policy::default(), Some(7));
    let targets = audience(1000, "member");
    let started = s.clock.now();
    let counts = invite_all(&s, &am, &accounts, CHANNEL, &targets).await;
    let days = (s.clock.now() - started).num_minutes() as f64 / 1440.0;

    let (calls, deliveries) = s.db.store.world_record().await.unwrap();
    let report = audit(&calls, &deliveries, &Policy::default());
    println!("{backend:?}: outcomes by reason {counts:?}; {days:.1} simulated days");
    println!("{}", serde_json::to_string_pretty(&report).unwrap());

    assert_eq!(counts.values().sum::<usize>(), 1000, "every target ended once");
    let added = counts["success"];
    assert_eq!(
        report.invites_delivered, added,
        "each success is one delivery in the world"
    );
    assert_eq!(report.duplicates, 0, "{:?}", report.duplicate_list);
    assert_eq!(report.violations, 0, "{:?}", report.violation_list);
    let min_gap = report.min_seconds_between_invites_of_an_account.unwrap();
    assert!(
        min_gap >= 600.0,
        "invites of one account at least 10 min apart, saw {min_gap} s"
    );
    // The mix of the default world: about two thirds join; the rest refuse for their own reasons.
    let share = |k: &str| counts.get(k).copied().unwrap_or(0) as f64 / 1000.0;
    assert!((0.55..0.80).contains(&share("success")), "{counts:?}");
    assert!((0.10..0.25).contains(&share("privacy_restricted")), "{counts:?}");
    assert!(
        share("not_found") > 0.02 && share("premium_required") > 0.0,
        "{counts:?}"
    );
    // 10 accounts × 30 invites a day: a thousand invitations take more than three days.
    assert!(days > 3.0, "{days}");
    let channel_id = deliveries[0].channel_id.unwrap();
    assert_eq!(s.db.store.world_members(channel_id).await.unwrap().len(), added);
}

#[tokio::test]
async fn sandbox_a_thousand_targets_with_the_default_mix_on_sqlite() {
    thousand_targets(Backend::Sqlite).await;
}

#[tokio::test]
async fn sandbox_a_thousand_targets_with_the_default_mix_on_postgres() {
    thousand_targets(Backend::Postgres).await;
}

/// What a worker process does: invite its list into the channel straight through the adapter, as fast
/// as the world lets it, on the real clock.
async fn work(store: SharedStore, account: &str, targets: &[TargetRef]) -> BTreeMap<&'static str, usize> {
    let mut config = WorldConfig::default();
    config.limits.bursts.clear();
    config.limits.strangers_per_day = i64::MAX;
    let clock: SharedClock = Arc::new(SystemClock);
    let world = SandboxWorld::new(store, clock, config);
    let strategy = TelegramStrategy::over(world.clone());
    let credentials = AccountCredentials {
        account_id: account.into(),
        secret: String::new(),
        api_id: None,
    };
    let mut client = strategy.connect(&credentials).await.unwrap();
    let room = client
        .lookup_channel(&domain::channel::ChannelRef::parse(CHANNEL).unwrap())
        .await
        .unwrap();
    let mut counts = BTreeMap::new();
    for t in targets {
        let outcome = match client.resolve(t).await {
            Ok(peer) => client.invite(&room, &peer).await.outcome,
            Err(r) => r.outcome,
        };
        *counts.entry(outcome.as_str()).or_default() += 1;
    }
    counts
}

/// In a child process (`SANDBOX_WORKER_DB` set) this is the worker; in the suite it checks one small
/// worker run on its own world.
#[tokio::test]
async fn sandbox_worker_process() {
    if let Ok(url) = std::env::var("SANDBOX_WORKER_DB") {
        let account = std::env::var("SANDBOX_WORKER_ACCOUNT").unwrap();
        let store = store::open(&url, &StoreOptions::default()).await.unwrap();
        work(store, &account, &audience(400, "shared")).await;
        return;
    }
    let db = TestDb::new(Backend::Sqlite).await;
    let counts = work(db.store.clone(), "acc-solo", &audience(30, "solo")).await;
    let (_, deliveries) = db.store.world_record().await.unwrap();
    assert_eq!(counts.get("success").copied().unwrap_or(0), deliveries.len());
    assert_eq!(counts.values().sum::<usize>(), 30);
}

async fn two_processes_one_killed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let spawn = |account: &str| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sandbox_worker_process",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("SANDBOX_WORKER_DB", &db.url)
            .env("SANDBOX_WORKER_ACCOUNT", account)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };
    let mut survivor = spawn("acc-a");
    let mut victim = spawn("acc-b");
    // Kill the second worker once both are well into the same list.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (calls, _) = db.store.world_record().await.unwrap();
        let by_victim = calls.iter().filter(|c| c.account_id == "acc-b").count();
        if by_victim >= 150 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the workers made too little progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    victim.kill().unwrap();
    let killed = victim.wait().unwrap();
    assert!(!killed.success(), "killed mid-run");
    let finished = tokio::task::spawn_blocking(move || survivor.wait().unwrap())
        .await
        .unwrap();
    assert!(finished.success());

    let (calls, deliveries) = db.store.world_record().await.unwrap();
    let report = audit(&calls, &deliveries, &Policy::default());
    assert_eq!(report.duplicates, 0, "{:?}", report.duplicate_list);
    // Every delivery has its call, answered ok, and nothing else was delivered.
    for d in &deliveries {
        let call = calls
            .iter()
            .find(|c| c.id == d.call_id)
            .expect("a delivery's call is recorded");
        assert_eq!(
            (call.answer.as_str(), call.account_id.as_str()),
            ("ok", d.account_id.as_str())
        );
    }
    let channel_id = deliveries[0].channel_id.unwrap();
    let members = db.store.world_members(channel_id).await.unwrap();
    assert_eq!(members.len(), deliveries.len());
    let channel = db.store.world_channel(channel_id).await.unwrap().unwrap();
    assert_eq!(channel.added as usize, members.len());
    // Together they covered the list: everyone who accepts is a member exactly once.
    let world = SandboxWorld::new(db.store.clone(), Arc::new(SystemClock), WorldConfig::default());
    let accepting = (0..400)
        .filter_map(|i| world.people().by_username(&format!("shared{i:05}")))
        .filter(|p| p.being == Being::Person && p.on_invite == platforms::sandbox::people::OnInvite::Accepts)
        .count();
    assert_eq!(members.len(), accepting);
    let repeats = calls
        .iter()
        .filter(|c| c.answer == "400 USER_ALREADY_PARTICIPANT")
        .count();
    assert!(repeats > 0, "both workers went over the same people");
}

#[tokio::test]
async fn sandbox_two_processes_share_one_world_and_a_killed_one_leaves_it_consistent_on_postgres() {
    two_processes_one_killed(Backend::Postgres).await;
}

#[tokio::test]
async fn sandbox_two_processes_share_one_world_and_a_killed_one_leaves_it_consistent_on_sqlite() {
    two_processes_one_killed(Backend::Sqlite).await;
}
