//! The Integration Service's accounts mirrored into the registry, the same cases on both backends: new
//! usable accounts are added as kind `integration`, known ones refreshed with their secrets kept when
//! none are given, accounts blocked there or gone are blocked here (never deleted), the mirror lifts
//! only its own blocks (or a block of a replaced session), and ids taken by other accounts are refused.
//! PostgreSQL tests fail, never skip, when the server is down.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::task::UserId;
use serde_json::json;
use store::{
    AccountKind, IntegrationEntry, IntegrationSync, NewAccount, RequestMeta, SharedStore, Standing,
    INTEGRATION_REASON_PREFIX,
};
use test_db::{Backend, TestDb};

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn user(id: i64) -> UserId {
    UserId::new(id).unwrap()
}

fn entry(id: &str, session: Option<&str>, auth_key_id: i64) -> IntegrationEntry {
    IntegrationEntry {
        id: id.to_owned(),
        name: format!("+7912{id}"),
        blocked: None,
        session_sealed: session.map(str::to_owned),
        api_id: Some(12345),
        api_hash_sealed: session.map(|s| format!("{s}-hash")),
        session_facts: session.map(|_| json!({"dc_id": 2, "auth_key_id": auth_key_id})),
    }
}

async fn standing(s: &SharedStore, id: &str) -> Standing {
    s.am_standing(id).await.unwrap().expect("the account exists")
}

async fn sealed_session(s: &SharedStore, id: &str) -> Option<String> {
    s.account_secrets(id)
        .await
        .unwrap()
        .expect("the account exists")
        .session_sealed
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

async fn usable_accounts_are_added_and_refreshed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let first = s
        .sync_integration_accounts(
            user(55),
            "telegram",
            &[entry("a", Some("sealed-a1"), 1), entry("b", None, 0)],
            t(0),
        )
        .await
        .unwrap();
    assert_eq!(
        first,
        IntegrationSync {
            added: ids(&["a", "b"]),
            ..IntegrationSync::default()
        }
    );
    let listed = s.list_accounts(user(55), Some("telegram")).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|a| a.kind == AccountKind::Integration && a.standing == Standing::Active));
    assert_eq!(listed[0].session_facts["auth_key_id"], json!(1));
    assert_eq!(listed[1].session_facts, json!({}));
    assert_eq!(sealed_session(s, "a").await.as_deref(), Some("sealed-a1"));
    assert!(
        s.list_accounts(user(77), None).await.unwrap().is_empty(),
        "only the user's own"
    );

    // A later answer from a cache without secrets keeps the stored ones; a new name is taken.
    let mut renamed = entry("a", None, 1);
    renamed.name = "Alice's phone".into();
    let second = s
        .sync_integration_accounts(
            user(55),
            "telegram",
            &[renamed, entry("b", Some("sealed-b1"), 2)],
            t(10),
        )
        .await
        .unwrap();
    assert_eq!(second.refreshed, ids(&["a", "b"]));
    assert_eq!(sealed_session(s, "a").await.as_deref(), Some("sealed-a1"));
    assert_eq!(sealed_session(s, "b").await.as_deref(), Some("sealed-b1"));
    let a = s.get_account(user(55), "a").await.unwrap().unwrap();
    assert_eq!(
        (a.name.as_str(), a.session_facts["auth_key_id"].clone()),
        ("Alice's phone", json!(1))
    );
    assert_eq!(a.updated_at, t(10));
    assert_eq!(s.account_with_auth_key(2).await.unwrap(), Some((55, "b".to_owned())));
}

async fn blocked_or_gone_accounts_are_blocked_and_come_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let all = [
        entry("a", Some("sa"), 1),
        entry("b", Some("sb"), 2),
        entry("c", Some("sc"), 3),
    ];
    s.sync_integration_accounts(user(55), "telegram", &all, t(0))
        .await
        .unwrap();

    let mut b_blocked = entry("b", None, 2);
    b_blocked.blocked = Some("status blocked".into());
    let never_seen = IntegrationEntry {
        blocked: Some("status inactive".into()),
        ..entry("d", Some("sd"), 4)
    };
    let out = s
        .sync_integration_accounts(
            user(55),
            "telegram",
            &[entry("a", None, 1), b_blocked, never_seen],
            t(5),
        )
        .await
        .unwrap();
    assert_eq!(out.refreshed, ids(&["a"]));
    let mut blocked = out.blocked.clone();
    blocked.sort();
    assert_eq!(blocked, ids(&["b", "c"]), "blocked there, and no longer listed");
    assert!(out.added.is_empty(), "an account that was never usable is not added");
    assert_eq!(
        standing(s, "b").await,
        Standing::Blocked {
            reason: format!("{INTEGRATION_REASON_PREFIX}status blocked")
        }
    );
    assert_eq!(
        standing(s, "c").await,
        Standing::Blocked {
            reason: format!("{INTEGRATION_REASON_PREFIX}no longer listed as active")
        }
    );
    assert!(s.get_account(user(55), "d").await.unwrap().is_none());

    // Listed as usable again: the mirror lifts its own blocks; the rows (and their ledgers) stayed.
    let back = s
        .sync_integration_accounts(user(55), "telegram", &all, t(10))
        .await
        .unwrap();
    let mut reactivated = back.reactivated.clone();
    reactivated.sort();
    assert_eq!(reactivated, ids(&["b", "c"]));
    assert_eq!(back.refreshed, ids(&["a"]));
    assert_eq!(standing(s, "c").await, Standing::Active);
    let again = s
        .sync_integration_accounts(user(55), "telegram", &all, t(11))
        .await
        .unwrap();
    assert!(again.blocked.is_empty() && again.reactivated.is_empty(), "{again:?}");
}

async fn an_account_manager_block_stays_until_the_session_changes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    s.sync_integration_accounts(user(55), "telegram", &[entry("a", Some("sa"), 1)], t(0))
        .await
        .unwrap();
    let dead = Standing::Blocked {
        reason: "AUTH_KEY_UNREGISTERED".into(),
    };
    assert!(s.am_set_standing("a", &dead, t(1)).await.unwrap());

    let same = s
        .sync_integration_accounts(user(55), "telegram", &[entry("a", Some("sa-again"), 1)], t(2))
        .await
        .unwrap();
    assert_eq!(same.refreshed, ids(&["a"]));
    assert_eq!(standing(s, "a").await, dead, "the same session is still dead");
    let mut blocked_there = entry("a", None, 1);
    blocked_there.blocked = Some("status blocked".into());
    s.sync_integration_accounts(user(55), "telegram", &[blocked_there], t(3))
        .await
        .unwrap();
    assert_eq!(standing(s, "a").await, dead, "the Account Manager's reason is kept");

    let reconnected = s
        .sync_integration_accounts(user(55), "telegram", &[entry("a", Some("sa-new"), 9)], t(4))
        .await
        .unwrap();
    assert_eq!(reconnected.reactivated, ids(&["a"]));
    assert_eq!(standing(s, "a").await, Standing::Active);
    assert_eq!(sealed_session(s, "a").await.as_deref(), Some("sa-new"));
}

async fn a_rest_outlives_a_mirror_block_and_an_address_is_not_a_session(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    s.sync_integration_accounts(user(55), "telegram", &[entry("a", Some("sa"), 1)], t(0))
        .await
        .unwrap();
    let restricted = Standing::Restricted {
        until: t(3600),
        reason: "PEER_FLOOD".into(),
    };
    assert!(s.am_set_standing("a", &restricted, t(1)).await.unwrap());

    // Gone from the list for a moment (an empty answer), then back well before the restriction ends.
    let gone = s
        .sync_integration_accounts(user(55), "telegram", &[], t(2))
        .await
        .unwrap();
    assert_eq!(gone.blocked, ids(&["a"]));
    assert!(matches!(standing(s, "a").await, Standing::Blocked { .. }));
    let back = s
        .sync_integration_accounts(user(55), "telegram", &[entry("a", Some("sa"), 1)], t(3))
        .await
        .unwrap();
    assert_eq!(back.reactivated, ids(&["a"]));
    match standing(s, "a").await {
        Standing::Resting { until, .. } => assert_eq!(until, t(3600), "never earlier than the restriction"),
        other => panic!("back before its restriction ended, the account must rest until then: {other:?}"),
    }

    // The same auth key at a moved server address is the same session: a dead session stays dead.
    let dead = Standing::Blocked {
        reason: "AUTH_KEY_UNREGISTERED".into(),
    };
    assert!(s.am_set_standing("a", &dead, t(4)).await.unwrap());
    let mut moved = entry("a", Some("sa"), 1);
    moved.session_facts = Some(json!({"dc_id": 4, "auth_key_id": 1, "server_address": "149.154.167.91"}));
    let out = s
        .sync_integration_accounts(user(55), "telegram", &[moved], t(5))
        .await
        .unwrap();
    assert_eq!(out.refreshed, ids(&["a"]));
    assert_eq!(standing(s, "a").await, dead);

    // Gone and back after the rest ran out: active.
    assert!(s.am_set_standing("a", &restricted, t(6)).await.unwrap());
    s.sync_integration_accounts(user(55), "telegram", &[], t(7))
        .await
        .unwrap();
    let back = s
        .sync_integration_accounts(user(55), "telegram", &[entry("a", Some("sa"), 1)], t(4000))
        .await
        .unwrap();
    assert_eq!(back.reactivated, ids(&["a"]));
    assert_eq!(standing(s, "a").await, Standing::Active);
}

async fn ids_of_other_accounts_are_refused_and_left_alone(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = &db.store;
    let meta = RequestMeta {
        request_id: "req-1".into(),
        client_addr: None,
    };
    let own = NewAccount {
        id: "local-1".into(),
        platform: "telegram".into(),
        name: "registered here".into(),
        kind: AccountKind::Sandbox,
        session_sealed: None,
        api_id: None,
        api_hash_sealed: None,
        session_facts: json!({}),
    };
    s.create_account(user(55), &own, t(0), &meta).await.unwrap();
    s.sync_integration_accounts(user(77), "telegram", &[entry("theirs", Some("st"), 5)], t(0))
        .await
        .unwrap();

    let out = s
        .sync_integration_accounts(
            user(55),
            "telegram",
            &[entry("theirs", Some("x"), 6), entry("local-1", Some("y"), 7)],
            t(1),
        )
        .await
        .unwrap();
    assert_eq!(out.refused, ids(&["theirs", "local-1"]));
    assert_eq!(sealed_session(s, "theirs").await.as_deref(), Some("st"));
    assert_eq!(
        s.get_account(user(55), "local-1").await.unwrap().unwrap().kind,
        AccountKind::Sandbox
    );

    // An empty answer blocks only the user's mirrored accounts on that platform.
    let out = s
        .sync_integration_accounts(user(55), "telegram", &[], t(2))
        .await
        .unwrap();
    assert!(out.blocked.is_empty(), "{out:?}");
    assert_eq!(standing(s, "local-1").await, Standing::Active);
    assert_eq!(standing(s, "theirs").await, Standing::Active);
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod integration_on_sqlite {
            $(
                #[tokio::test]
                async fn $name() { super::$name(super::Backend::Sqlite).await }
            )*
        }
        mod integration_on_postgres {
            $(
                #[tokio::test]
                async fn $name() { super::$name(super::Backend::Postgres).await }
            )*
        }
    };
}

on_both_backends!(
    usable_accounts_are_added_and_refreshed,
    blocked_or_gone_accounts_are_blocked_and_come_back,
    an_account_manager_block_stays_until_the_session_changes,
    a_rest_outlives_a_mirror_block_and_an_address_is_not_a_session,
    ids_of_other_accounts_are_refused_and_left_alone,
);
