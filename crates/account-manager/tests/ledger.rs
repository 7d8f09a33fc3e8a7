//! The Account Manager in virtual time, over a real store of each kind: the spec's four checks, each
//! error's effect and recovery, restarts, failing closed, and concurrency.

use std::{sync::Arc, time::Duration as StdDuration};

use account_manager::{AccountManager, Policy, RateLimit};
use chrono::{DateTime, Duration, TimeZone, Utc};
use clock::{Clock, ManualClock, SharedClock};
use domain::{
    outcome::{AccountProblem, AmAction, ChannelProblem, Outcome},
    UserId,
};
use store::{AccountKind, NewAccount, RequestMeta, SharedStore};

use test_db::{admin_url, Backend, TestDb};

struct World {
    store: SharedStore,
    clock: ManualClock,
    db: TestDb,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0).unwrap()
}

async fn world(backend: Backend) -> World {
    let db = TestDb::new(backend).await;
    World {
        store: db.store.clone(),
        clock: ManualClock::new(start()),
        db,
    }
}

impl World {
    fn am(&self, seed: u64) -> Arc<AccountManager> {
        let clock: SharedClock = Arc::new(self.clock.clone());
        AccountManager::new(self.store.clone(), clock, Policy::default(), Some(seed))
    }

    async fn account(&self, user: i64, id: &str) -> String {
        let meta = RequestMeta {
            request_id: "test".into(),
            client_addr: None,
        };
        let account = NewAccount {
            id: id.to_string(),
            platform: "telegram".into(),
            name: id.to_string(),
            kind: AccountKind::Sandbox,
            session_sealed: None,
            api_id: None,
            api_hash_sealed: None,
            session_facts: serde_json::json!({}),
        };
        self.store
            .create_account(UserId::new(user).unwrap(), &account, self.clock.now(), &meta)
            .await
            .unwrap();
        id.to_string()
    }
}

/// Asks for one invite; a grant is released as a success.
async fn invite(am: &AccountManager, account: &str, channel: &str) -> RateLimit {
    let answer = am.check_rate_limit(account, AmAction::Invite, Some(channel)).await;
    if let RateLimit::Granted(g) = &answer {
        am.release_account(None, Some(g), Outcome::Success).await.unwrap();
    }
    answer
}

/// Invites until granted, sleeping in virtual time through pauses (but not through caps).
async fn invite_after_pause(w: &World, am: &AccountManager, account: &str, channel: &str) -> RateLimit {
    loop {
        match invite(am, account, channel).await {
            RateLimit::Wait { until, reason, .. } if reason.starts_with("pause") => w.clock.set(until),
            other => return other,
        }
    }
}

async fn the_next_invite_waits_ten_to_fifteen_minutes(backend: Backend) {
    let w = world(backend).await;
    let am = w.am(1);
    let a = w.account(1, "acc-a").await;
    assert!(matches!(invite(&am, &a, "@chan_one").await, RateLimit::Granted(_)));
    for channel in ["@chan_one", "@chan_two"] {
        match invite(&am, &a, channel).await {
            RateLimit::Wait {
                wait_for_seconds,
                reason,
                ..
            } => {
                assert!((600..=900).contains(&wait_for_seconds), "{wait_for_seconds}");
                assert_eq!(reason, "pause between invites");
            }
            other => panic!("{other:?}"),
        }
    }
    let next = am
        .next_available_at(&a, AmAction::Invite, Some("@chan_two"))
        .await
        .unwrap()
        .unwrap();
    assert!(next > w.clock.now() + Duration::seconds(599));
    // Messages have their own pause: an invite does not hold them back.
    assert!(matches!(
        am.check_rate_limit(&a, AmAction::Message, None).await,
        RateLimit::Granted(_)
    ));
}

async fn the_sixteenth_invite_into_a_channel_waits_while_another_channel_works(backend: Backend) {
    let w = world(backend).await;
    let am = w.am(2);
    let a = w.account(1, "acc-a").await;
    for _ in 0..15 {
        assert!(matches!(
            invite_after_pause(&w, &am, &a, "@chan_one").await,
            RateLimit::Granted(_)
        ));
    }
    let full_until = match invite_after_pause(&w, &am, &a, "@chan_one").await {
        RateLimit::Wait { reason, until, .. } => {
            assert_eq!(reason, "15 invites per 24 h into this channel");
            assert!(until > w.clock.now() + Duration::hours(20));
            until
        }
        other => panic!("the 16th invite must wait: {other:?}"),
    };
    // One read of the ledger answers every channel, each as a grant would.
    let now = w.clock.now();
    w.store
        .am_channel_gone("telegram", "@chan_full", "full", "no room left", now)
        .await
        .unwrap();
    let answers = am
        .next_available(
            &a,
            &[
                (AmAction::Invite, Some("@chan_one")),
                (AmAction::Invite, Some("@chan_two")),
                (AmAction::ResolveUsername, None),
                (AmAction::Invite, Some("@chan_full")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(answers[0], Some(full_until));
    let two = answers[1].expect("chan_two is open");
    assert!(two >= now && two <= now + Duration::minutes(15), "{two} vs {now}");
    assert_eq!(answers[2], Some(now));
    assert_eq!(answers[3], None, "a full channel takes no one");
    assert_eq!(
        am.next_available("no-such-account", &[(AmAction::Invite, Some("@chan_one"))])
            .await
            .unwrap(),
        vec![None]
    );
    assert!(matches!(
        invite_after_pause(&w, &am, &a, "@chan_two").await,
        RateLimit::Granted(_)
    ));
}

async fn the_thirty_first_invite_of_an_account_waits(backend: Backend) {
    let w = world(backend).await;
    let am = w.am(3);
    let a = w.account(1, "acc-a").await;
    for channel in ["@chan_one", "@chan_two"] {
        for _ in 0..15 {
            assert!(matches!(
                invite_after_pause(&w, &am, &a, channel).await,
                RateLimit::Granted(_)
            ));
        }
    }
    match invite_after_pause(&w, &am, &a, "@chan_three").await {
        RateLimit::Wait { reason, .. } => assert_eq!(reason, "30 invites per 24 h for this account"),
        other => panic!("the 31st invite must wait: {other:?}"),
    }
    let budget = am
        .remaining_budget(&a, AmAction::Invite, Some("@chan_one"))
        .await
        .unwrap();
    assert_eq!(budget.account, [(30, 30, 24)]);
    assert_eq!(budget.lifetime_left, Some(185));
}

async fn the_two_hundred_and_first_invite_into_a_channel_is_refused_forever(backend: Backend) {
    let w = world(backend).await;
    let am = w.am(4);
    let a = w.account(1, "acc-a").await;
    let mut granted = 0;
    while granted < 200 {
        match invite_after_pause(&w, &am, &a, "@chan_one").await {
            RateLimit::Granted(_) => granted += 1,
            RateLimit::Wait { until, .. } => w.clock.set(until),
            other => panic!("{other:?}"),
        }
    }
    w.clock.advance(Duration::days(2));
    match invite_after_pause(&w, &am, &a, "@chan_one").await {
        RateLimit::Denied { permanent, reason } => {
            assert!(permanent);
            assert!(reason.contains("200 invites into this channel"), "{reason}");
        }
        other => panic!("the 201st invite must be refused: {other:?}"),
    }
    assert!(matches!(
        invite_after_pause(&w, &am, &a, "@chan_two").await,
        RateLimit::Granted(_)
    ));
    // The ledger has no retention and no tie to tasks: 31 days later it still says no, even to a new
    // Account Manager over the same store.
    w.clock.advance(Duration::days(31));
    let restarted = w.am(40);
    assert!(matches!(
        invite(&restarted, &a, "@chan_one").await,
        RateLimit::Denied { permanent: true, .. }
    ));
}

async fn a_restarted_manager_refuses_exactly_what_the_old_one_would(backend: Backend) {
    let w = world(backend).await;
    let a = w.account(1, "acc-a").await;
    let old = w.am(5);
    assert!(matches!(invite(&old, &a, "@chan_one").await, RateLimit::Granted(_)));
    let before = old
        .next_available_at(&a, AmAction::Invite, Some("@chan_one"))
        .await
        .unwrap();
    drop(old);
    let new = w.am(6);
    let after = new
        .next_available_at(&a, AmAction::Invite, Some("@chan_one"))
        .await
        .unwrap();
    assert_eq!(before, after);
    match invite(&new, &a, "@chan_one").await {
        RateLimit::Wait { until, .. } => assert_eq!(Some(until), before),
        other => panic!("{other:?}"),
    }
}

async fn errors_change_the_account_and_it_recovers_by_itself(backend: Backend) {
    let w = world(backend).await;
    let am = w.am(7);
    let a = w.account(1, "acc-a").await;
    let b = w.account(1, "acc-b").await;

    am.handle_error(
        &a,
        "telegram",
        Outcome::Account(AccountProblem::FloodWait(StdDuration::from_secs(3600))),
        "FLOOD_WAIT_3600",
        None,
    )
    .await
    .unwrap();
    match am.check_rate_limit(&a, AmAction::Message, None).await {
        RateLimit::Wait {
            wait_for_seconds,
            reason,
            ..
        } => {
            assert_eq!(wait_for_seconds, 3630, "the wait plus a 30 s margin");
            assert!(reason.contains("FLOOD_WAIT 3600 s"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    w.clock.advance(Duration::seconds(3630));
    assert!(
        matches!(
            am.check_rate_limit(&a, AmAction::Message, None).await,
            RateLimit::Granted(_)
        ),
        "back by itself"
    );

    am.handle_error(
        &a,
        "telegram",
        Outcome::Account(AccountProblem::PeerFlood),
        "PEER_FLOOD",
        None,
    )
    .await
    .unwrap();
    let wait = |r: RateLimit| match r {
        RateLimit::Wait { wait_for_seconds, .. } => wait_for_seconds,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        wait(am.check_rate_limit(&a, AmAction::Invite, Some("@chan_one")).await),
        24 * 3600
    );
    assert!(
        matches!(
            am.check_rate_limit(&a, AmAction::ChannelLookup, Some("@chan_one"))
                .await,
            RateLimit::Granted(_)
        ),
        "lookups go on"
    );
    w.clock.advance(Duration::hours(24));
    am.handle_error(
        &a,
        "telegram",
        Outcome::Account(AccountProblem::PeerFlood),
        "PEER_FLOOD",
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        wait(am.check_rate_limit(&a, AmAction::Message, None).await),
        48 * 3600,
        "a repeat doubles the rest"
    );

    am.handle_error(
        &b,
        "telegram",
        Outcome::Channel(ChannelProblem::NoRights),
        "CHAT_ADMIN_REQUIRED",
        Some("@chan_one"),
    )
    .await
    .unwrap();
    assert!(matches!(
        am.check_rate_limit(&b, AmAction::Invite, Some("@chan_one")).await,
        RateLimit::Denied { permanent: true, .. }
    ));
    assert!(matches!(
        am.check_rate_limit(&b, AmAction::Invite, Some("@chan_two")).await,
        RateLimit::Granted(_)
    ));

    let c = w.account(2, "acc-c").await;
    am.handle_error(
        &b,
        "telegram",
        Outcome::Channel(ChannelProblem::Full),
        "USERS_TOO_MUCH",
        Some("@big_channel"),
    )
    .await
    .unwrap();
    match am.check_rate_limit(&c, AmAction::Invite, Some("@big_channel")).await {
        RateLimit::Denied { permanent, reason } => assert!(permanent && reason.contains("channel_full"), "{reason}"),
        other => panic!("a full channel is full for every account of every user: {other:?}"),
    }

    am.handle_error(
        &c,
        "telegram",
        Outcome::Account(AccountProblem::SessionDead),
        "AUTH_KEY_UNREGISTERED",
        None,
    )
    .await
    .unwrap();
    assert!(matches!(
        am.check_rate_limit(&c, AmAction::Message, None).await,
        RateLimit::Denied { permanent: true, .. }
    ));
    assert_eq!(
        am.allocate_account(UserId::new(2).unwrap(), "telegram", "invite_campaign", None)
            .await
            .unwrap(),
        None,
        "a blocked account is never allocated"
    );
}

async fn a_call_that_did_nothing_gives_its_slot_back(backend: Backend) {
    let w = world(backend).await;
    let am = w.am(8);
    let a = w.account(1, "acc-a").await;
    for _ in 0..15 {
        let RateLimit::Granted(g) = am.check_rate_limit(&a, AmAction::Invite, Some("@chan_one")).await else {
            panic!()
        };
        am.release_account(None, Some(&g), Outcome::Transient).await.unwrap();
        let next = am
            .next_available_at(&a, AmAction::Invite, Some("@chan_one"))
            .await
            .unwrap()
            .unwrap();
        w.clock.set(next);
    }
    let budget = am
        .remaining_budget(&a, AmAction::Invite, Some("@chan_one"))
        .await
        .unwrap();
    assert_eq!(budget.channel, [(15, 0, 24)], "transient failures spent nothing");
    // A grant whose outcome never arrives counts as used.
    let RateLimit::Granted(_) = am.check_rate_limit(&a, AmAction::Invite, Some("@chan_one")).await else {
        panic!()
    };
    let budget = am
        .remaining_budget(&a, AmAction::Invite, Some("@chan_one"))
        .await
        .unwrap();
    assert_eq!(budget.channel, [(15, 1, 24)]);
}

async fn only_one_of_two_simultaneous_allocations_wins(backend: Backend) {
    let w = world(backend).await;
    let a = w.account(1, "acc-a").await;
    let managers: Vec<_> = (0..8).map(|i| w.am(100 + i)).collect();
    let user = UserId::new(1).unwrap();
    let leases = futures_join(
        managers
            .iter()
            .map(|am| am.allocate_account(user, "telegram", "invite_campaign", None)),
    )
    .await;
    let winners: Vec<_> = leases.into_iter().filter_map(Result::unwrap).collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(winners[0].account_id, a);
    managers[0]
        .release_account(Some(&winners[0]), None, Outcome::Success)
        .await
        .unwrap();
    assert!(
        managers[1]
            .allocate_account(user, "telegram", "invite_campaign", None)
            .await
            .unwrap()
            .is_some(),
        "a released lease is free again"
    );
    // An expired lease (a crashed worker) is free too.
    w.clock.advance(Duration::minutes(6));
    assert!(managers[2]
        .allocate_account(user, "telegram", "invite_campaign", None)
        .await
        .unwrap()
        .is_some());
}

async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.collect();
    let mut out = Vec::with_capacity(handles.len());
    // Polled together on one task: interleaved at every await, as concurrent requests are.
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().map(|d| d.expect("finished")));
    out
}

/// Two managers ask at the same instant for an account's last slot: one grant, one wait.
async fn the_last_slot_goes_to_exactly_one_of_two(backend: Backend) {
    let w = world(backend).await;
    let a = w.account(1, "acc-a").await;
    let no_pause: serde_json::Value = serde_json::json!({"telegram": {"invite": {"pause": [0, 0]}}});
    let policy = account_manager::policy_config::load(None, Some(&no_pause.to_string())).unwrap();
    let clock: SharedClock = Arc::new(w.clock.clone());
    let managers: Vec<_> = (0..2)
        .map(|i| AccountManager::new(w.store.clone(), clock.clone(), policy.clone(), Some(300 + i)))
        .collect();
    for _ in 0..14 {
        assert!(matches!(
            invite(&managers[0], &a, "@chan_one").await,
            RateLimit::Granted(_)
        ));
    }
    let answers = futures_join(
        managers
            .iter()
            .map(|am| am.check_rate_limit(&a, AmAction::Invite, Some("@chan_one"))),
    )
    .await;
    let granted = answers.iter().filter(|r| matches!(r, RateLimit::Granted(_))).count();
    assert_eq!(granted, 1, "{answers:?}");
    assert!(answers
        .iter()
        .any(|r| matches!(r, RateLimit::Wait { reason, .. } if reason == "15 invites per 24 h into this channel")));
}

/// 8 workers hammer 3 accounts for a simulated week; the ledger never shows a window over its cap
/// and every grant given is in it.
async fn eight_workers_on_three_accounts_never_exceed_a_limit(backend: Backend) {
    let w = world(backend).await;
    let accounts = [
        w.account(1, "acc-a").await,
        w.account(1, "acc-b").await,
        w.account(1, "acc-c").await,
    ];
    let managers: Vec<_> = (0..8).map(|i| w.am(200 + i)).collect();
    let channels = ["@chan_one", "@chan_two"];
    let mut granted: Vec<(String, String, DateTime<Utc>, i64)> = Vec::new();
    let ticks = 7 * 24 * 6; // every 10 minutes for a week
    for tick in 0..ticks {
        let now = w.clock.now();
        let asks = managers.iter().enumerate().map(|(i, am)| {
            let account = accounts[(i + tick) % 3].clone();
            let channel = channels[(i / 3 + tick) % 2];
            async move {
                (
                    account.clone(),
                    channel,
                    am.check_rate_limit(&account, AmAction::Invite, Some(channel)).await,
                )
            }
        });
        for (account, channel, answer) in futures_join(asks).await {
            if let RateLimit::Granted(g) = answer {
                granted.push((account, channel.to_string(), now, g.id));
                managers[0]
                    .release_account(None, Some(&g), Outcome::Success)
                    .await
                    .unwrap();
            }
        }
        w.clock.advance(Duration::minutes(10));
    }
    assert!(
        granted.len() > 3 * 7 * 25,
        "the budget was used: {} grants",
        granted.len()
    );
    let ids: std::collections::HashSet<i64> = granted.iter().map(|g| g.3).collect();
    assert_eq!(ids.len(), granted.len(), "every grant is its own slot");
    for account in &accounts {
        let mine: Vec<&(String, String, DateTime<Utc>, i64)> = granted.iter().filter(|g| &g.0 == account).collect();
        for (i, g) in mine.iter().enumerate() {
            let day = mine
                .iter()
                .filter(|h| h.2 > g.2 - Duration::hours(24) && h.2 <= g.2)
                .count();
            assert!(day <= 30, "{account}: {day} invites in the 24 h before {}", g.2);
            let in_channel = mine
                .iter()
                .filter(|h| h.1 == g.1 && h.2 > g.2 - Duration::hours(24) && h.2 <= g.2)
                .count();
            assert!(in_channel <= 15, "{account} {}: {in_channel} in 24 h", g.1);
            if i > 0 {
                assert!(
                    g.2 - mine[i - 1].2 >= Duration::seconds(600),
                    "{account}: a pause shorter than 10 min"
                );
            }
        }
        let usage = w.store.am_usage(account, None).await.unwrap();
        let in_ledger: i64 = usage.iter().map(|u| u.count).sum();
        assert_eq!(in_ledger as usize, mine.len(), "every granted slot is in the ledger");
    }
}

/// With its database gone, the Account Manager answers no.
#[tokio::test]
async fn the_manager_fails_closed_when_the_store_is_unreachable() {
    let w = world(Backend::Postgres).await;
    let a = w.account(1, "acc-a").await;
    let am = w.am(9);
    {
        use sqlx::{Connection, Executor};
        let mut c = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
        let name = w.db.url.rsplit('/').next().unwrap().to_owned();
        c.execute(format!("DROP DATABASE \"{name}\" WITH (FORCE)").as_str())
            .await
            .unwrap();
    }
    match am.check_rate_limit(&a, AmAction::Invite, Some("@chan_one")).await {
        RateLimit::Denied { permanent, reason } => {
            assert!(!permanent);
            assert!(reason.contains("cannot decide"), "{reason}");
        }
        other => panic!("must fail closed: {other:?}"),
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await } )*
        }
    };
}

on_both_backends!(
    the_next_invite_waits_ten_to_fifteen_minutes,
    the_sixteenth_invite_into_a_channel_waits_while_another_channel_works,
    the_thirty_first_invite_of_an_account_waits,
    the_two_hundred_and_first_invite_into_a_channel_is_refused_forever,
    a_restarted_manager_refuses_exactly_what_the_old_one_would,
    errors_change_the_account_and_it_recovers_by_itself,
    a_call_that_did_nothing_gives_its_slot_back,
    only_one_of_two_simultaneous_allocations_wins,
    eight_workers_on_three_accounts_never_exceed_a_limit,
    the_last_slot_goes_to_exactly_one_of_two,
);
