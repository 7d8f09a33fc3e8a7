//! The sandbox world answers as Telegram would, through the same Telegram adapter (a test per
//! behaviour of the facts sheet), and keeps an impartial record of it.

mod support;

use std::time::Duration as StdDuration;

use account_manager::Policy;
use chrono::Duration;
use domain::{
    channel::ChannelRef,
    identifier::PlatformUserId,
    outcome::{AccountProblem, AmAction, ChannelProblem, Outcome, TargetProblem},
    phone::{Phone, Region},
};
use platforms::{
    sandbox::{
        audit::audit,
        people::{Being, OnInvite, OnMessage},
        Burst, WorldConfig,
    },
    ChannelKind, DeliveryKey, Resolution, TargetRef,
};
use support::sandbox::*;
use test_db::Backend;

/// A world whose flood and spam limits stay out of the way of tests about other behaviour.
fn calm() -> WorldConfig {
    let mut config = WorldConfig::default();
    for burst in config.limits.bursts.values_mut() {
        *burst = Burst {
            calls: 100_000,
            seconds: 1,
        };
    }
    config.limits.strangers_per_day = 100_000;
    config
}

#[tokio::test]
async fn sandbox_usernames_resolve_to_people_or_chats_as_named() {
    let s = sandbox(Backend::Sqlite, calm()).await;
    let mut c = s.client("acc-1").await;
    let someone = person_where(s.world.people(), |p| p.being == Being::Person);
    let peer = c.resolve(&named(&someone)).await.unwrap();
    assert_eq!(
        Some(peer.user_id),
        s.world.people().by_username(&someone).map(|p| p.user_id)
    );
    assert!(
        matches!(c.resolution(&named(&someone)), Resolution::Known(_)),
        "cached per account"
    );

    let nobody = (0..10_000)
        .map(|i| format!("nobody{i}"))
        .find(|n| s.world.people().by_username(n).is_none())
        .unwrap();
    assert_eq!(
        c.resolve(&named(&nobody)).await.unwrap_err().outcome,
        Outcome::Target(TargetProblem::NotFound)
    );
    let bot = person_where(s.world.people(), |p| p.being == Being::Bot);
    assert_eq!(
        c.resolve(&named(&bot)).await.unwrap_err().outcome,
        Outcome::Target(TargetProblem::Bot)
    );
    let gone = person_where(s.world.people(), |p| p.being == Being::Deactivated);
    assert_eq!(
        c.resolve(&named(&gone)).await.unwrap_err().outcome,
        Outcome::Target(TargetProblem::Deactivated)
    );
    let a_group = c.resolve(&named("launch_group")).await.unwrap_err();
    assert_eq!(
        a_group.outcome,
        Outcome::Target(TargetProblem::Invalid),
        "a chat is not a person"
    );

    let channel = s.channel(&mut c, "t.me/news_channel").await;
    assert_eq!((channel.kind, channel.can_invite), (ChannelKind::Broadcast, true));
    let group = s.channel(&mut c, "@launch_group").await;
    assert_eq!((group.kind, group.can_invite), (ChannelKind::Supergroup, true));
    assert_eq!(
        s.channel(&mut c, "@launch_group").await.id,
        group.id,
        "made once, found again"
    );
    let readonly = s.channel(&mut c, "@readonly_group").await;
    assert!(!readonly.can_invite);
    let missing = c
        .lookup_channel(&ChannelRef::parse("@someone_else").unwrap())
        .await
        .unwrap_err();
    assert_eq!(missing.outcome, Outcome::Channel(ChannelProblem::NotFound));
}

#[tokio::test]
async fn sandbox_an_invite_makes_a_member_once_and_a_repeat_is_already_participant() {
    let s = sandbox(Backend::Sqlite, calm()).await;
    let mut a = s.client("acc-1").await;
    let mut b = s.client("acc-2").await;
    let name = person_where(s.world.people(), |p| {
        p.being == Being::Person && p.on_invite == OnInvite::Accepts
    });
    let group_a = s.channel(&mut a, "@launch_group").await;
    let peer_a = a.resolve(&named(&name)).await.unwrap();
    assert_eq!(a.invite(&group_a, &peer_a).await.outcome, Outcome::Success);
    assert_eq!(a.invite(&group_a, &peer_a).await.outcome, Outcome::AlreadyDone);

    // Another account resolves the person itself (handles are per account) and finds them there.
    let group_b = s.channel(&mut b, "@launch_group").await;
    let peer_b = b.resolve(&named(&name)).await.unwrap();
    assert_ne!(peer_a.access_hash, peer_b.access_hash);
    assert_eq!(b.invite(&group_b, &peer_b).await.outcome, Outcome::AlreadyDone);
    // A handle of account A is worth nothing to account B.
    assert_eq!(
        b.invite(&group_b, &peer_a).await.outcome,
        Outcome::Target(TargetProblem::Invalid)
    );

    assert_eq!(
        s.db.store.world_members(group_a.id).await.unwrap(),
        vec![peer_a.user_id]
    );
    let (calls, deliveries) = s.db.store.world_record().await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].account_id, "acc-1");
    let invites: Vec<_> = calls
        .iter()
        .filter(|c| c.method == "channels.inviteToChannel")
        .collect();
    assert_eq!(
        invites.iter().map(|c| c.answer.as_str()).collect::<Vec<_>>(),
        vec![
            "ok",
            "400 USER_ALREADY_PARTICIPANT",
            "400 USER_ALREADY_PARTICIPANT",
            "400 USER_ID_INVALID"
        ]
    );
}

#[tokio::test]
async fn sandbox_people_who_refuse_answer_with_the_facts_sheet() {
    let s = sandbox(Backend::Sqlite, calm()).await;
    let mut c = s.client("acc-1").await;
    let group = s.channel(&mut c, "@launch_group").await;
    let cases = [
        (
            OnInvite::Privacy {
                premium_would_allow: false,
                premium_required_for_pm: false,
            },
            Outcome::Target(TargetProblem::PrivacyRestricted),
        ),
        (
            OnInvite::Privacy {
                premium_would_allow: true,
                premium_required_for_pm: false,
            },
            Outcome::Target(TargetProblem::PremiumRequired),
        ),
        (
            OnInvite::Privacy {
                premium_would_allow: false,
                premium_required_for_pm: true,
            },
            Outcome::Target(TargetProblem::PrivacyRestricted),
        ),
        (
            OnInvite::TooManyChannels,
            Outcome::Target(TargetProblem::TooManyChannels),
        ),
        (
            OnInvite::LeftThemselves,
            Outcome::Target(TargetProblem::NotMutualContact),
        ),
    ];
    for (trait_, want) in cases {
        let name = person_where(s.world.people(), |p| p.being == Being::Person && p.on_invite == trait_);
        let peer = c.resolve(&named(&name)).await.unwrap();
        let report = c.invite(&group, &peer).await;
        assert_eq!(report.outcome, want, "{trait_:?}: {}", report.detail);
    }
    assert!(
        s.db.store.world_members(group.id).await.unwrap().is_empty(),
        "nobody was added"
    );

    let readonly = s.channel(&mut c, "@readonly_group").await;
    let willing = person_where(s.world.people(), |p| {
        p.being == Being::Person && p.on_invite == OnInvite::Accepts
    });
    let peer = c.resolve(&named(&willing)).await.unwrap();
    assert_eq!(
        c.invite(&readonly, &peer).await.outcome,
        Outcome::Channel(ChannelProblem::NoRights)
    );
}

#[tokio::test]
async fn sandbox_a_broadcast_channel_takes_added_members_only_up_to_200_and_a_supergroup_more() {
    let s = sandbox(Backend::Sqlite, calm()).await;
    let mut c = s.client("acc-1").await;
    let channel = s.channel(&mut c, "@news_channel").await;
    let group = s.channel(&mut c, "@big_group").await;
    let start = channel.members.unwrap();
    assert!(start < 200);
    let willing: Vec<String> = (0..100_000)
        .map(|i| format!("follower{i}"))
        .filter(|n| {
            s.world
                .people()
                .by_username(n)
                .is_some_and(|p| p.being == Being::Person && p.on_invite == OnInvite::Accepts)
        })
        .take(400)
        .collect();
    let mut added = 0;
    let mut full = None;
    for (i, name) in willing.iter().enumerate() {
        let peer = c.resolve(&named(name)).await.unwrap();
        if full.is_none() {
            match c.invite(&channel, &peer).await.outcome {
                Outcome::Success => added += 1,
                other => full = Some((i, other)),
            }
        }
        assert_eq!(
            c.invite(&group, &peer).await.outcome,
            Outcome::Success,
            "supergroups have no such rule"
        );
        if full.is_some() && s.channel(&mut c, "@big_group").await.members.unwrap() > 250 {
            break;
        }
    }
    assert_eq!(added, 200 - start, "the channel filled at 200 subscribers");
    assert_eq!(full.map(|f| f.1), Some(Outcome::Channel(ChannelProblem::Full)));
    let group_now = s.channel(&mut c, "@big_group").await;
    assert!(group_now.members.unwrap() > 250, "{:?}", group_now.members);
}

#[tokio::test]
async fn sandbox_messages_are_delivered_once_per_sender_and_privacy_is_honoured() {
    let s = sandbox(Backend::Sqlite, calm()).await;
    let mut a = s.client("acc-1").await;
    let mut b = s.client("acc-2").await;
    let open = person_where(s.world.people(), |p| {
        p.being == Being::Person && p.on_message == OnMessage::Accepts
    });
    let key = DeliveryKey {
        task_id: 1,
        target_id: 1,
    };
    let peer = a.resolve(&named(&open)).await.unwrap();
    assert_eq!(a.send_message(&peer, "Hello", key).await.outcome, Outcome::Success);
    assert_eq!(a.send_message(&peer, "Hello", key).await.outcome, Outcome::AlreadyDone);

    // The same delivery sent again by another account arrives again: Telegram drops repeats per
    // sender only. The audit sees the duplicate.
    let peer_b = b.resolve(&named(&open)).await.unwrap();
    assert_eq!(b.send_message(&peer_b, "Hello", key).await.outcome, Outcome::Success);
    let (calls, deliveries) = s.db.store.world_record().await.unwrap();
    let report = audit(&calls, &deliveries, &Policy::default());
    assert_eq!(report.messages_delivered, 2);
    assert!(report
        .duplicate_list
        .iter()
        .any(|d| d.rule == "message delivered twice"));

    let premium = person_where(s.world.people(), |p| {
        p.being == Being::Person && p.on_message == OnMessage::NeedsPremium
    });
    let peer = a.resolve(&named(&premium)).await.unwrap();
    let key = DeliveryKey {
        task_id: 1,
        target_id: 2,
    };
    assert_eq!(
        a.send_message(&peer, "Hi", key).await.outcome,
        Outcome::Target(TargetProblem::PremiumRequired)
    );
    let paid = person_where(s.world.people(), |p| {
        p.being == Being::Person && matches!(p.on_message, OnMessage::Paid(_))
    });
    let peer = a.resolve(&named(&paid)).await.unwrap();
    let key = DeliveryKey {
        task_id: 1,
        target_id: 3,
    };
    let report = a.send_message(&peer, "Hi", key).await;
    assert_eq!(report.outcome, Outcome::Target(TargetProblem::PaidMessagesRequired));
    assert!(report.detail.contains("ALLOW_PAYMENT_REQUIRED"), "{}", report.detail);
}

#[tokio::test]
async fn sandbox_phones_find_registered_people_only() {
    let s = sandbox(Backend::Sqlite, calm()).await;
    let mut c = s.client("acc-1").await;
    let region = Region::parse("GB").unwrap();
    let mut found = 0;
    let mut missing = 0;
    for i in 0..40 {
        let phone = Phone::parse(&format!("+44 7911 {:06}", 100_000 + i), region).unwrap();
        let registered = s.world.people().by_phone(phone.as_str()).is_some();
        let target = TargetRef {
            phone: Some(phone),
            ..TargetRef::default()
        };
        assert_eq!(c.resolution(&target), Resolution::Lookup(AmAction::ImportContact));
        match c.resolve(&target).await {
            Ok(peer) => {
                assert!(registered);
                found += 1;
                let by_id = TargetRef {
                    user_id: PlatformUserId::new(peer.user_id),
                    ..TargetRef::default()
                };
                assert!(matches!(c.resolution(&by_id), Resolution::Known(_)), "now known by id");
            }
            Err(r) => {
                assert!(!registered);
                assert_eq!(r.outcome, Outcome::Target(TargetProblem::NotFound));
                missing += 1;
            }
        }
    }
    assert!(found > 0 && missing > 0, "{found} found, {missing} missing");
}

#[tokio::test]
async fn sandbox_invite_links_and_ids_are_looked_up_never_joined() {
    let s = sandbox(Backend::Sqlite, calm()).await;
    let mut c = s.client("acc-1").await;
    let link = s.channel(&mut c, "https://t.me/+Spring2026").await;
    assert_eq!((link.kind, link.can_invite), (ChannelKind::Supergroup, true));
    for (hash, want) in [
        ("t.me/+expiredAbc", ChannelProblem::NotFound),
        ("t.me/+notmemberXyz", ChannelProblem::Private),
    ] {
        let r = c.lookup_channel(&ChannelRef::parse(hash).unwrap()).await.unwrap_err();
        assert_eq!(r.outcome, Outcome::Channel(want), "{hash}");
    }
    let by_id = s.channel(&mut c, "-1001234567890").await;
    assert_eq!((by_id.id, by_id.kind), (1234567890, ChannelKind::Supergroup));
    let basic = s.channel(&mut c, "-4567").await;
    assert_eq!((basic.id, basic.kind), (4567, ChannelKind::BasicGroup));
    let willing = person_where(s.world.people(), |p| {
        p.being == Being::Person && p.on_invite == OnInvite::Accepts
    });
    let peer = c.resolve(&named(&willing)).await.unwrap();
    assert_eq!(
        c.invite(&basic, &peer).await.outcome,
        Outcome::Success,
        "messages.addChatUser"
    );
    let (calls, _) = s.db.store.world_record().await.unwrap();
    assert!(calls
        .iter()
        .any(|c| c.method == "messages.addChatUser" && c.answer == "ok"));
    assert!(!calls
        .iter()
        .any(|c| c.method.contains("import") && c.method.contains("Invite")));
}

#[tokio::test]
async fn sandbox_a_burst_of_one_method_draws_a_flood_wait_until_the_window_has_passed() {
    let mut config = calm();
    config
        .limits
        .bursts
        .insert("contacts.resolveUsername".into(), Burst { calls: 3, seconds: 600 });
    let s = sandbox(Backend::Sqlite, config).await;
    let mut c = s.client("acc-1").await;
    for i in 0..3 {
        s.clock.advance(Duration::seconds(10));
        let _ = c.resolve(&named(&format!("burst{i}"))).await;
    }
    s.clock.advance(Duration::seconds(10));
    let r = c.resolve(&named("burst3")).await.unwrap_err();
    // The first call was 30 s ago; the window of 600 s frees in 570 s.
    assert_eq!(
        r.outcome,
        Outcome::Account(AccountProblem::FloodWait(StdDuration::from_secs(570)))
    );
    s.clock.advance(Duration::seconds(571));
    assert_ne!(
        c.resolve(&named("burst3")).await.map_err(|r| r.outcome),
        Err(Outcome::Account(AccountProblem::FloodWait(StdDuration::from_secs(1)))),
    );
}

#[tokio::test]
async fn sandbox_too_many_strangers_in_a_day_draw_peer_flood_which_lasts() {
    let mut config = calm();
    config.limits.strangers_per_day = 3;
    config.limits.peer_flood_hours = 24;
    let s = sandbox(Backend::Sqlite, config).await;
    let mut c = s.client("acc-1").await;
    let group = s.channel(&mut c, "@launch_group").await;
    let willing: Vec<String> = (0..10_000)
        .map(|i| format!("stranger{i}"))
        .filter(|n| {
            s.world
                .people()
                .by_username(n)
                .is_some_and(|p| p.being == Being::Person && p.on_invite == OnInvite::Accepts)
        })
        .take(5)
        .collect();
    let mut outcomes = Vec::new();
    for name in &willing {
        s.clock.advance(Duration::minutes(30));
        let peer = c.resolve(&named(name)).await.unwrap();
        outcomes.push(c.invite(&group, &peer).await.outcome);
    }
    let peer_flood = Outcome::Account(AccountProblem::PeerFlood);
    assert_eq!(
        outcomes,
        vec![
            Outcome::Success,
            Outcome::Success,
            Outcome::Success,
            peer_flood,
            peer_flood
        ]
    );
    // Still restricted the next morning, free after the 24 hours.
    s.clock.advance(Duration::hours(20));
    let peer = c.resolve(&named(&willing[3])).await.unwrap();
    assert_eq!(c.invite(&group, &peer).await.outcome, peer_flood);
    s.clock.advance(Duration::hours(5));
    assert_eq!(c.invite(&group, &peer).await.outcome, Outcome::Success);
}
