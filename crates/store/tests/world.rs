//! The sandbox world's store, the same cases on both backends: channels made once by key, memberships and
//! their deliveries, the counts a decision reads and their bounds, restrictions, message dedup, effects a
//! request cannot carry, the locks under concurrent calls from several handles (as several processes
//! would make them), and the record. PostgreSQL tests fail, never skip, when the server is down.

use std::{sync::Mutex, time::Duration as StdDuration};

use chrono::{DateTime, Duration, TimeZone, Utc};
use store::{
    SharedStore, StoreError, StoreOptions, WorldCall, WorldCallRequest, WorldChannel, WorldChannelRef, WorldDecision,
    WorldDelivery, WorldEffect, WorldView,
};

use test_db::{Backend, TestDb};

async fn db(backend: Backend) -> TestDb {
    TestDb::new(backend).await
}

/// Another handle on the same database, as another process would open it.
async fn open_again(db: &TestDb) -> SharedStore {
    store::open(&db.url, &StoreOptions::default()).await.unwrap()
}

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0).unwrap() + Duration::seconds(seconds)
}

const INVITE: &str = "channels.inviteToChannel";
const SEND: &str = "messages.sendMessage";

/// A call at `now` counting everything of the last day, about nothing in particular.
fn req(account: &str, method: &str, now: DateTime<Utc>) -> WorldCallRequest {
    WorldCallRequest {
        account_id: account.to_string(),
        method: method.to_string(),
        now,
        method_since: now - Duration::days(1),
        strangers_since: now - Duration::days(1),
        channel: None,
        user_id: None,
        random_id: None,
    }
}

fn by_key(id: i64, key: &str) -> Option<WorldChannelRef> {
    Some(WorldChannelRef::Key {
        id,
        key: key.to_string(),
        kind: "supergroup".into(),
        title: format!("Title of {key}"),
    })
}

fn ok(effect: WorldEffect) -> WorldDecision {
    WorldDecision {
        answer: "ok".into(),
        effect,
        contacted_stranger: false,
    }
}

type Answer = store::Result<(WorldCall, Option<WorldChannel>)>;

/// Makes a call whose decision is `decision`, and returns the view it was made on with the answer.
async fn call(store: &SharedStore, req: &WorldCallRequest, decision: WorldDecision) -> (WorldView, Answer) {
    let seen = Mutex::new(None);
    let answer = store
        .world_call(req, &|view: &WorldView| {
            *seen.lock().unwrap() = Some(view.clone());
            decision.clone()
        })
        .await;
    let view = seen.into_inner().unwrap().expect("decide was asked");
    (view, answer)
}

/// The view a call would be decided on (the call itself is recorded, answering `ok` and doing nothing).
async fn view(store: &SharedStore, req: &WorldCallRequest) -> WorldView {
    let (view, answer) = call(store, req, ok(WorldEffect::None)).await;
    answer.unwrap();
    view
}

async fn a_channel_is_made_once_by_key_and_found_by_key_and_by_id(backend: Backend) {
    let db = db(backend).await;
    let s = &db.store;

    let mut r = req("acc-a", INVITE, t(0));
    r.channel = by_key(1001, "@club");
    let (v, answer) = call(s, &r, ok(WorldEffect::None)).await;
    let (first, made) = answer.unwrap();
    let made = made.expect("made by key");
    let expected = WorldChannel {
        id: 1001,
        key: "@club".into(),
        kind: "supergroup".into(),
        title: "Title of @club".into(),
        added: 0,
        created_at: t(0),
    };
    assert_eq!(made, expected);
    assert_eq!(
        v.channel.as_ref(),
        Some(&expected),
        "the view of the making call has it"
    );
    assert_eq!(first.channel_id, Some(1001));

    // Named again by key (other facts): the first facts stay.
    let mut r = req("acc-b", INVITE, t(10));
    r.channel = Some(WorldChannelRef::Key {
        id: 1001,
        key: "@club".into(),
        kind: "broadcast".into(),
        title: "Another title".into(),
    });
    let (v, answer) = call(s, &r, ok(WorldEffect::None)).await;
    assert_eq!(v.channel.as_ref(), Some(&expected));
    assert_eq!(answer.unwrap().1.as_ref(), Some(&expected));

    // By id.
    let mut r = req("acc-a", INVITE, t(20));
    r.channel = Some(WorldChannelRef::Id(1001));
    assert_eq!(view(s, &r).await.channel.as_ref(), Some(&expected));
    assert_eq!(s.world_channel(1001).await.unwrap().as_ref(), Some(&expected));

    // An unknown id is no channel, and the call is recorded without one.
    let mut r = req("acc-a", INVITE, t(30));
    r.channel = Some(WorldChannelRef::Id(999));
    let (v, answer) = call(s, &r, ok(WorldEffect::None)).await;
    assert_eq!(v.channel, None);
    let (unknown, channel) = answer.unwrap();
    assert_eq!((unknown.channel_id, channel), (None, None));
    assert_eq!(s.world_channel(999).await.unwrap(), None);

    // Another key with a taken id is an error, not a merge, and leaves no trace.
    let mut r = req("acc-a", INVITE, t(40));
    r.channel = by_key(1001, "@impostor");
    let answer = s.world_call(&r, &|_: &WorldView| ok(WorldEffect::None)).await;
    assert!(matches!(answer, Err(StoreError::Duplicate(_))), "{answer:?}");
    assert_eq!(s.world_channel(1001).await.unwrap().as_ref(), Some(&expected));
    let (calls, _) = s.world_record().await.unwrap();
    assert_eq!(calls.len(), 4);
}

async fn add_member_records_the_member_the_delivery_and_the_count(backend: Backend) {
    let db = db(backend).await;
    let s = &db.store;
    let invite = |account: &str, user: i64, at: i64| {
        let mut r = req(account, INVITE, t(at));
        r.channel = by_key(2002, "+hash");
        r.user_id = Some(user);
        r
    };

    let (v, answer) = call(s, &invite("acc-a", 7, 0), ok(WorldEffect::AddMember)).await;
    assert!(!v.is_member);
    let (c, channel) = answer.unwrap();
    assert_eq!(channel.unwrap().added, 1, "the returned channel is as after the effect");
    assert_eq!(s.world_members(2002).await.unwrap(), vec![7]);
    let (_, deliveries) = s.world_record().await.unwrap();
    assert_eq!(
        deliveries,
        vec![WorldDelivery {
            id: deliveries[0].id,
            call_id: c.id,
            at: t(0),
            account_id: "acc-a".into(),
            kind: "invite".into(),
            channel_id: Some(2002),
            user_id: 7,
            random_id: None,
            text_sha256: None,
        }]
    );

    // The same person again, by another account: the view says so, and adding anyway is refused.
    let (v, answer) = call(s, &invite("acc-b", 7, 5), ok(WorldEffect::AddMember)).await;
    assert!(v.is_member);
    assert!(matches!(answer, Err(StoreError::Duplicate(_))), "{answer:?}");
    assert_eq!(s.world_channel(2002).await.unwrap().unwrap().added, 1);
    let (calls, deliveries) = s.world_record().await.unwrap();
    assert_eq!((calls.len(), deliveries.len()), (1, 1), "the refused call left nothing");

    // Members in the order they were added, then by id.
    call(s, &invite("acc-a", 9, 10), ok(WorldEffect::AddMember))
        .await
        .1
        .unwrap();
    call(s, &invite("acc-b", 3, 10), ok(WorldEffect::AddMember))
        .await
        .1
        .unwrap();
    assert_eq!(s.world_members(2002).await.unwrap(), vec![7, 3, 9]);
    assert_eq!(s.world_channel(2002).await.unwrap().unwrap().added, 3);
    assert_eq!(s.world_members(1).await.unwrap(), Vec::<i64>::new());
}

async fn counts_respect_their_since_bounds(backend: Backend) {
    let db = db(backend).await;
    let s = &db.store;
    let stranger = WorldDecision {
        contacted_stranger: true,
        ..ok(WorldEffect::None)
    };
    for at in [0, 10, 20] {
        call(s, &req("acc-a", INVITE, t(at)), ok(WorldEffect::None))
            .await
            .1
            .unwrap();
    }
    for at in [5, 15] {
        call(s, &req("acc-a", SEND, t(at)), stranger.clone()).await.1.unwrap();
    }
    // Another account's calls count for it alone.
    call(s, &req("acc-b", INVITE, t(12)), stranger.clone()).await.1.unwrap();

    let probe = |method: &str, now: i64, method_since: i64, strangers_since: i64| {
        let mut r = req("acc-a", method, t(now));
        r.method_since = t(method_since);
        r.strangers_since = t(strangers_since);
        r
    };
    // The bounds are inclusive.
    let v = view(s, &probe(INVITE, 30, 10, 5)).await;
    assert_eq!((v.method_calls, v.oldest_method_call), (2, Some(t(10))));
    assert_eq!(v.strangers_contacted, 2);
    let v = view(s, &probe(INVITE, 30, 11, 6)).await;
    assert_eq!(
        (v.method_calls, v.oldest_method_call),
        (2, Some(t(20))),
        "the probe at 30 counts too"
    );
    assert_eq!(v.strangers_contacted, 1);
    let v = view(s, &probe(INVITE, 31, 21, 16)).await;
    assert_eq!(
        (v.method_calls, v.oldest_method_call),
        (2, Some(t(30))),
        "the two probes"
    );
    assert_eq!(v.strangers_contacted, 0);
    // Nothing after `now` counts.
    let v = view(s, &probe(INVITE, 12, 0, 0)).await;
    assert_eq!((v.method_calls, v.oldest_method_call), (2, Some(t(0))));
    assert_eq!(v.strangers_contacted, 1);
    // Another method has its own count.
    let v = view(s, &probe(SEND, 40, 0, 0)).await;
    assert_eq!((v.method_calls, v.oldest_method_call), (2, Some(t(5))));
    assert_eq!(v.strangers_contacted, 2);
    let v = view(s, &probe("contacts.resolveUsername", 40, 0, 0)).await;
    assert_eq!((v.method_calls, v.oldest_method_call), (0, None));
    let mut r = req("acc-b", INVITE, t(40));
    r.method_since = t(0);
    r.strangers_since = t(0);
    let v = view(s, &r).await;
    assert_eq!((v.method_calls, v.strangers_contacted), (1, 1));
}

async fn restrict_sets_the_time_and_counts_a_strike(backend: Backend) {
    let db = db(backend).await;
    let s = &db.store;
    let v = view(s, &req("acc-a", SEND, t(0))).await;
    assert_eq!((v.restricted_until, v.strikes), (None, 0));

    let restrict = |until: i64| WorldDecision {
        answer: "400 PEER_FLOOD".into(),
        effect: WorldEffect::Restrict { until: t(until) },
        contacted_stranger: false,
    };
    let (c, _) = call(s, &req("acc-a", SEND, t(10)), restrict(3600)).await.1.unwrap();
    assert_eq!(c.answer, "400 PEER_FLOOD");
    let v = view(s, &req("acc-a", SEND, t(20))).await;
    assert_eq!((v.restricted_until, v.strikes), (Some(t(3600)), 1));

    call(s, &req("acc-a", SEND, t(30)), restrict(7200)).await.1.unwrap();
    let v = view(s, &req("acc-a", SEND, t(40))).await;
    assert_eq!((v.restricted_until, v.strikes), (Some(t(7200)), 2));

    let v = view(s, &req("acc-b", SEND, t(40))).await;
    assert_eq!(
        (v.restricted_until, v.strikes),
        (None, 0),
        "another account is untouched"
    );
}

async fn a_random_id_is_used_once_per_sender(backend: Backend) {
    let db = db(backend).await;
    let s = &db.store;
    let send = |account: &str, random_id: i64, at: i64| {
        let mut r = req(account, SEND, t(at));
        r.user_id = Some(7);
        r.random_id = Some(random_id);
        r
    };
    let deliver = || {
        ok(WorldEffect::DeliverMessage {
            text_sha256: "ab".repeat(32),
        })
    };

    let (v, answer) = call(s, &send("acc-a", 42, 0), deliver()).await;
    assert!(!v.random_id_used);
    let (c, channel) = answer.unwrap();
    assert_eq!(channel, None);

    assert!(view(s, &send("acc-a", 42, 10)).await.random_id_used);
    assert!(!view(s, &send("acc-a", 43, 10)).await.random_id_used);
    assert!(!view(s, &send("acc-b", 42, 10)).await.random_id_used);
    assert!(
        !view(s, &req("acc-a", SEND, t(10))).await.random_id_used,
        "no random id, none used"
    );

    // Delivering the same random id twice is refused; another sender may use it.
    let (v, answer) = call(s, &send("acc-a", 42, 20), deliver()).await;
    assert!(v.random_id_used);
    assert!(matches!(answer, Err(StoreError::Duplicate(_))), "{answer:?}");
    call(s, &send("acc-b", 42, 30), deliver()).await.1.unwrap();

    let (_, deliveries) = s.world_record().await.unwrap();
    let messages: Vec<_> = deliveries
        .iter()
        .map(|d| (d.kind.as_str(), d.account_id.as_str(), d.random_id, d.user_id))
        .collect();
    assert_eq!(
        messages,
        vec![("message", "acc-a", Some(42), 7), ("message", "acc-b", Some(42), 7)]
    );
    assert_eq!(deliveries[0].call_id, c.id);
    assert_eq!(deliveries[0].text_sha256.as_deref(), Some("ab".repeat(32).as_str()));
}

async fn an_effect_the_request_cannot_carry_is_refused(backend: Backend) {
    let db = db(backend).await;
    let s = &db.store;
    let mut no_channel = req("acc-a", INVITE, t(0));
    no_channel.user_id = Some(7);
    let mut no_user = req("acc-a", INVITE, t(0));
    no_user.channel = by_key(3003, "@club");
    let mut unknown_channel = req("acc-a", INVITE, t(0));
    unknown_channel.channel = Some(WorldChannelRef::Id(404));
    unknown_channel.user_id = Some(7);
    let mut no_random_id = req("acc-a", SEND, t(0));
    no_random_id.user_id = Some(7);
    let mut no_recipient = req("acc-a", SEND, t(0));
    no_recipient.random_id = Some(1);
    let deliver = ok(WorldEffect::DeliverMessage {
        text_sha256: "00".into(),
    });
    for (r, d) in [
        (&no_channel, ok(WorldEffect::AddMember)),
        (&no_user, ok(WorldEffect::AddMember)),
        (&unknown_channel, ok(WorldEffect::AddMember)),
        (&no_random_id, deliver.clone()),
        (&no_recipient, deliver),
    ] {
        let (_, answer) = call(s, r, d).await;
        assert!(matches!(answer, Err(StoreError::Refused(_))), "{answer:?}");
    }
    let (calls, deliveries) = s.world_record().await.unwrap();
    assert!(calls.is_empty() && deliveries.is_empty());
    assert_eq!(
        s.world_channel(3003).await.unwrap(),
        None,
        "the whole call was rolled back"
    );
}

async fn eight_concurrent_calls_add_exactly_five_members(backend: Backend) {
    let db = db(backend).await;
    // Four handles on one database, as four processes sharing one world.
    let mut handles = vec![db.store.clone()];
    for _ in 0..3 {
        handles.push(open_again(&db).await);
    }
    let mut tasks = Vec::new();
    for i in 0..8i64 {
        let s = handles[i as usize % handles.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut r = req(&format!("acc-{i}"), INVITE, t(i));
            r.channel = by_key(4004, "@race");
            r.user_id = Some(100 + i);
            s.world_call(&r, &|v: &WorldView| {
                // Long enough between read and write that calls without locks would overlap.
                std::thread::sleep(StdDuration::from_millis(20));
                let channel = v.channel.as_ref().expect("made by key");
                if channel.added < 5 && !v.is_member {
                    ok(WorldEffect::AddMember)
                } else {
                    WorldDecision {
                        answer: "400 CHANNELS_TOO_MUCH".into(),
                        effect: WorldEffect::None,
                        contacted_stranger: false,
                    }
                }
            })
            .await
        }));
    }
    let mut added = Vec::new();
    for task in tasks {
        let (c, channel) = task.await.unwrap().unwrap();
        added.push(channel.unwrap().added);
        assert_eq!(c.channel_id, Some(4004));
    }
    added.sort_unstable();
    assert_eq!(added, vec![1, 2, 3, 4, 5, 5, 5, 5], "each call saw the one before it");
    let members = db.store.world_members(4004).await.unwrap();
    assert_eq!(members.len(), 5, "{members:?}");
    assert_eq!(db.store.world_channel(4004).await.unwrap().unwrap().added, 5);
    let (calls, deliveries) = db.store.world_record().await.unwrap();
    assert_eq!(calls.len(), 8);
    assert_eq!(calls.iter().filter(|c| c.answer == "ok").count(), 5);
    assert_eq!(deliveries.len(), 5);
    assert!(deliveries
        .iter()
        .all(|d| d.kind == "invite" && members.contains(&d.user_id)));
}

async fn the_record_returns_everything_in_order(backend: Backend) {
    let db = db(backend).await;
    let s = &db.store;
    let mut returned = Vec::new();

    let mut r = req("acc-a", "contacts.resolveUsername", t(0));
    r.channel = by_key(5005, "@club");
    returned.push(call(s, &r, ok(WorldEffect::None)).await.1.unwrap().0);
    let mut r = req("acc-a", INVITE, t(1));
    r.channel = Some(WorldChannelRef::Id(5005));
    r.user_id = Some(7);
    returned.push(call(s, &r, ok(WorldEffect::AddMember)).await.1.unwrap().0);
    let mut r = req("acc-b", SEND, t(2));
    r.user_id = Some(8);
    r.random_id = Some(-5);
    let sent = ok(WorldEffect::DeliverMessage {
        text_sha256: "cd".repeat(32),
    });
    returned.push(call(s, &r, sent).await.1.unwrap().0);
    let mut r = req("acc-b", SEND, t(3));
    r.user_id = Some(9);
    r.random_id = Some(6);
    let flood = WorldDecision {
        answer: "400 PEER_FLOOD".into(),
        effect: WorldEffect::Restrict { until: t(86_400) },
        contacted_stranger: true,
    };
    returned.push(call(s, &r, flood).await.1.unwrap().0);

    let (calls, deliveries) = s.world_record().await.unwrap();
    assert_eq!(calls, returned, "the record is what the calls returned, oldest first");
    assert!(calls.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(
        calls
            .iter()
            .map(|c| (c.account_id.as_str(), c.method.as_str(), c.channel_id, c.user_id, c.at))
            .collect::<Vec<_>>(),
        vec![
            ("acc-a", "contacts.resolveUsername", Some(5005), None, t(0)),
            ("acc-a", INVITE, Some(5005), Some(7), t(1)),
            ("acc-b", SEND, None, Some(8), t(2)),
            ("acc-b", SEND, None, Some(9), t(3)),
        ]
    );
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries[0].id < deliveries[1].id);
    assert_eq!(
        (
            deliveries[0].call_id,
            deliveries[0].kind.as_str(),
            deliveries[0].user_id
        ),
        (calls[1].id, "invite", 7)
    );
    assert_eq!(
        (
            deliveries[1].call_id,
            deliveries[1].kind.as_str(),
            deliveries[1].user_id,
            deliveries[1].random_id,
            deliveries[1].at
        ),
        (calls[2].id, "message", 8, Some(-5), t(2))
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod world_on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::$name(super::Backend::Sqlite).await }
            )*
        }
        mod world_on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::$name(super::Backend::Postgres).await }
            )*
        }
    };
}

on_both_backends!(
    a_channel_is_made_once_by_key_and_found_by_key_and_by_id,
    add_member_records_the_member_the_delivery_and_the_count,
    counts_respect_their_since_bounds,
    restrict_sets_the_time_and_counts_a_strike,
    a_random_id_is_used_once_per_sender,
    an_effect_the_request_cannot_carry_is_refused,
    eight_concurrent_calls_add_exactly_five_members,
    the_record_returns_everything_in_order,
);
