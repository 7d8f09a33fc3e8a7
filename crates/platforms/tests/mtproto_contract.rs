//! The Telegram adapter against a fake MTProto server, through the real grammers client on the wire.
//! Every test name starts with `mtproto_`, so `cargo test mtproto` runs exactly this contract suite
//! (and the fake server's own tests).

mod support;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use account_manager::session::TelegramSession;
use domain::{
    channel::ChannelRef,
    identifier::PlatformUserId,
    outcome::{AccountProblem, AmAction, ChannelProblem, Outcome, TargetProblem},
    phone::{Phone, Region},
    username::Username,
};
use grammers_tl_types as tl;
use mtproto_fake::{FakeTelegram, Reply};
use platforms::{
    AccountClient, AccountCredentials, ChannelInfo, ChannelKind, DeliveryKey, InviteStrategy, Peer, Resolution,
    TargetRef,
};
use support::{tl::*, *};

fn by_username(name: &str) -> TargetRef {
    TargetRef {
        username: Some(Username::parse(name).unwrap()),
        ..TargetRef::default()
    }
}

fn alice() -> Peer {
    Peer {
        user_id: 5,
        access_hash: 55,
        username: Some("alice".into()),
        first_name: None,
        last_name: None,
    }
}

fn supergroup() -> ChannelInfo {
    ChannelInfo {
        id: 777,
        access_hash: 7777,
        kind: ChannelKind::Supergroup,
        title: "Group".into(),
        members: Some(10),
        can_invite: true,
        joined: true,
    }
}

async fn connect(server: &FakeTelegram, key: [u8; 256]) -> Box<dyn AccountClient> {
    strategy().connect(&credentials(server, key)).await.expect("connected")
}

#[tokio::test]
async fn mtproto_connects_from_each_telethon_fixture_key_with_no_login_flow() {
    #[derive(serde::Deserialize)]
    struct Fixtures {
        sessions: Vec<Fixture>,
    }
    #[derive(serde::Deserialize)]
    struct Fixture {
        string_session: String,
        auth_key_id: i64,
    }
    let fixtures: Fixtures =
        serde_json::from_str(include_str!("../../account-manager/tests/data/telethon-sessions.json")).unwrap();
    assert!(fixtures.sessions.len() >= 2);
    for f in fixtures.sessions {
        let session = TelegramSession::from_telethon(&f.string_session).unwrap();
        let key = *session.auth_key.as_bytes();
        let server = fake(key, |_| Reply::Default).await;
        bounded(async {
            let client = connect(&server, key).await;
            client.close().await;
        })
        .await;
        let calls = server.calls();
        assert_eq!(calls.len(), 1, "only the introduction: {calls:?}");
        let init = &calls[0];
        assert_eq!(init.name, "help.getConfig");
        assert_eq!(init.auth_key_id, f.auth_key_id, "the fixture's own key was used");
        assert_eq!(init.layer, Some(tl::LAYER));
        assert_eq!(init.api_id, Some(API_ID));
        assert_eq!(server.rejected_keys(), 0);
    }
}

#[tokio::test]
async fn mtproto_connects_from_a_grammers_session() {
    let key = key(3);
    let server = fake(key, |_| Reply::Default).await;
    let option = grammers_session::types::DcOption {
        id: 2,
        ipv4: server.addr(),
        ipv6: std::net::SocketAddrV6::new(server.addr().ip().to_ipv6_mapped(), server.addr().port(), 0, 0),
        auth_key: Some(key),
    };
    let json = serde_json::to_string(&option).unwrap();
    let credentials = AccountCredentials {
        account_id: "tg-grammers".into(),
        secret: json,
        api_id: Some(API_ID),
    };
    bounded(async {
        let client = strategy().connect(&credentials).await.expect("connected");
        client.close().await;
    })
    .await;
    assert_eq!(
        server.calls()[0].auth_key_id,
        TelegramSession::parse(&credentials.secret).unwrap().auth_key.id()
    );
}

#[tokio::test]
async fn mtproto_the_account_api_id_wins_over_the_service_default_and_none_at_all_is_unusable() {
    let key = key(4);
    let server = fake(key, |_| Reply::Default).await;
    let with_default = platforms::telegram::TelegramStrategy::new(platforms::telegram::TelegramConfig {
        api_id: Some(111),
        call_timeout: Duration::from_secs(5),
    });
    let mut own = credentials(&server, key);
    bounded(async {
        with_default.connect(&own).await.unwrap().close().await;
        own.api_id = None;
        with_default.connect(&own).await.unwrap().close().await;
    })
    .await;
    let ids: Vec<_> = server.calls().iter().map(|c| c.api_id).collect();
    assert_eq!(ids, vec![Some(API_ID), Some(111)]);

    let refused = bounded(strategy().connect(&own))
        .await
        .err()
        .expect("no api id anywhere");
    assert_eq!(refused.outcome, Outcome::Account(AccountProblem::Unusable));
    assert!(refused.detail.contains("INVITE_TELEGRAM_API_ID"), "{}", refused.detail);
}

#[tokio::test]
async fn mtproto_a_rejected_key_is_a_dead_session_and_no_new_key_is_made() {
    let server = FakeTelegram::builder().accept_key(key(1)).start().await;
    let stranger = key(2);
    let refused = bounded(strategy().connect(&credentials(&server, stranger)))
        .await
        .err()
        .expect("refused");
    assert_eq!(
        refused.outcome,
        Outcome::Account(AccountProblem::SessionDead),
        "{}",
        refused.detail
    );
    assert!(refused.detail.contains("404"), "{}", refused.detail);
    assert_eq!(
        server.rejected_keys(),
        1,
        "one refusal, and no key exchange attempted after it"
    );
    assert_eq!(server.connections(), 1, "no second connection to make a fresh key");
    assert!(server.calls().is_empty());
}

#[tokio::test]
async fn mtproto_a_session_revoked_mid_session_is_dead() {
    let key = key(5);
    let server = fake(key, |c| {
        if c.is::<tl::functions::contacts::ResolveUsername>() {
            Reply::error(401, "SESSION_REVOKED")
        } else {
            Reply::Default
        }
    })
    .await;
    let report = bounded(async {
        let mut client = connect(&server, key).await;
        client.resolve(&by_username("alice")).await.unwrap_err()
    })
    .await;
    assert_eq!(report.outcome, Outcome::Account(AccountProblem::SessionDead));
    assert!(report.detail.contains("SESSION_REVOKED"));
}

#[tokio::test]
async fn mtproto_a_username_is_resolved_once_per_account_and_its_id_becomes_known() {
    let key = key(6);
    let server = fake(key, |c| match c.decode::<tl::functions::contacts::ResolveUsername>() {
        Some(r) if r.username == "alice" => Reply::ok(&resolved_user(user(5, 55, Some("alice")))),
        Some(_) => Reply::error(400, "USERNAME_NOT_OCCUPIED"),
        None => Reply::Default,
    })
    .await;
    let strategy = strategy();
    let credentials = credentials(&server, key);
    bounded(async {
        let mut client = strategy.connect(&credentials).await.unwrap();
        let target = by_username("@alice");
        assert_eq!(
            client.resolution(&target),
            Resolution::Lookup(AmAction::ResolveUsername)
        );
        let peer = client.resolve(&target).await.unwrap();
        assert_eq!((peer.user_id, peer.access_hash), (5, 55));
        client.close().await;

        // A new connection of the same account: known without a call, by name (in any case) and by id.
        let mut client = strategy.connect(&credentials).await.unwrap();
        let target = by_username("@Alice");
        assert!(matches!(client.resolution(&target), Resolution::Known(p) if p.user_id == 5));
        let by_id = TargetRef {
            user_id: PlatformUserId::new(5),
            ..TargetRef::default()
        };
        assert!(matches!(client.resolution(&by_id), Resolution::Known(p) if p.access_hash == 55));
        assert_eq!(client.resolve(&target).await.unwrap().user_id, 5);

        let nobody = client.resolve(&by_username("nobody_here")).await.unwrap_err();
        assert_eq!(nobody.outcome, Outcome::Target(TargetProblem::NotFound));
        client.close().await;
    })
    .await;
    let resolves = server.calls_named("contacts.resolveUsername");
    let names: Vec<_> = resolves
        .iter()
        .map(|c| c.decode::<tl::functions::contacts::ResolveUsername>().unwrap().username)
        .collect();
    assert_eq!(names, vec!["alice", "nobody_here"], "alice was asked for once");

    // Another account has never seen alice: her id means nothing to it.
    let other_key = support::key(60);
    let server2 = fake(other_key, |_| Reply::Default).await;
    bounded(async {
        let client = strategy
            .connect(&support::credentials(&server2, other_key))
            .await
            .unwrap();
        let by_id = TargetRef {
            user_id: PlatformUserId::new(5),
            ..TargetRef::default()
        };
        assert_eq!(client.resolution(&by_id), Resolution::Unreachable);
        client.close().await;
    })
    .await;
}

#[tokio::test]
async fn mtproto_a_phone_is_imported_as_a_contact_and_retry_contacts_is_honoured() {
    let key = key(7);
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&attempts);
    let server = fake(key, move |c| {
        match c.decode::<tl::functions::contacts::ImportContacts>() {
            Some(r) => {
                let tl::enums::InputContact::InputPhoneContact(contact) = &r.contacts[0];
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    Reply::ok(&imported(vec![], vec![contact.client_id], vec![]))
                } else {
                    Reply::ok(&imported(vec![(9, contact.client_id)], vec![], vec![user(9, 99, None)]))
                }
            }
            None => Reply::Default,
        }
    })
    .await;
    let target = TargetRef {
        phone: Some(Phone::parse("+44 7911 123456", Region::parse("GB").unwrap()).unwrap()),
        first_name: Some("Bob".into()),
        ..TargetRef::default()
    };
    bounded(async {
        let mut client = connect(&server, key).await;
        assert_eq!(client.resolution(&target), Resolution::Lookup(AmAction::ImportContact));
        let first = client.resolve(&target).await.unwrap_err();
        assert_eq!(first.outcome, Outcome::RetryLater);
        let peer = client.resolve(&target).await.unwrap();
        assert_eq!((peer.user_id, peer.access_hash), (9, 99));
        client.close().await;
    })
    .await;
    let calls = server.calls_named("contacts.importContacts");
    assert_eq!(calls.len(), 2);
    let request = calls[0].decode::<tl::functions::contacts::ImportContacts>().unwrap();
    let tl::enums::InputContact::InputPhoneContact(contact) = &request.contacts[0];
    assert_eq!(contact.phone, "+447911123456");
    assert_eq!(contact.first_name, "Bob");
}

#[tokio::test]
async fn mtproto_invites_use_invite_to_channel_for_channels_and_add_chat_user_for_basic_groups() {
    let key = key(8);
    let server = fake(key, |c| {
        if c.is::<tl::functions::channels::InviteToChannel>() || c.is::<tl::functions::messages::AddChatUser>() {
            Reply::ok(&invited(vec![]))
        } else {
            Reply::Default
        }
    })
    .await;
    bounded(async {
        let mut client = connect(&server, key).await;
        assert_eq!(client.invite(&supergroup(), &alice()).await.outcome, Outcome::Success);
        let broadcast = ChannelInfo {
            kind: ChannelKind::Broadcast,
            ..supergroup()
        };
        assert_eq!(client.invite(&broadcast, &alice()).await.outcome, Outcome::Success);
        let basic = ChannelInfo {
            id: 321,
            access_hash: 0,
            kind: ChannelKind::BasicGroup,
            ..supergroup()
        };
        assert_eq!(client.invite(&basic, &alice()).await.outcome, Outcome::Success);
        client.close().await;
    })
    .await;
    let to_channel = server.calls_named("channels.inviteToChannel");
    assert_eq!(to_channel.len(), 2);
    let r = to_channel[0]
        .decode::<tl::functions::channels::InviteToChannel>()
        .unwrap();
    assert_eq!(
        r.channel,
        tl::enums::InputChannel::Channel(tl::types::InputChannel {
            channel_id: 777,
            access_hash: 7777
        })
    );
    assert_eq!(
        r.users,
        vec![tl::enums::InputUser::User(tl::types::InputUser {
            user_id: 5,
            access_hash: 55
        })]
    );
    let add = server.calls_named("messages.addChatUser");
    assert_eq!(add.len(), 1);
    let r = add[0].decode::<tl::functions::messages::AddChatUser>().unwrap();
    assert_eq!(r.chat_id, 321);
    assert_eq!(
        r.user_id,
        tl::enums::InputUser::User(tl::types::InputUser {
            user_id: 5,
            access_hash: 55
        })
    );
}

#[tokio::test]
async fn mtproto_missing_invitees_on_the_wire_with_each_flag_combination() {
    let key = key(9);
    let flags = Arc::new(std::sync::Mutex::new((false, false)));
    let now = Arc::clone(&flags);
    let server = fake(key, move |c| {
        if c.is::<tl::functions::channels::InviteToChannel>() {
            let (would_allow, required_for_pm) = *now.lock().unwrap();
            Reply::ok(&invited(vec![(5, would_allow, required_for_pm)]))
        } else {
            Reply::Default
        }
    })
    .await;
    bounded(async {
        let mut client = connect(&server, key).await;
        for (combination, want) in [
            ((false, false), Outcome::Target(TargetProblem::PrivacyRestricted)),
            ((true, false), Outcome::Target(TargetProblem::PremiumRequired)),
            ((false, true), Outcome::Target(TargetProblem::PrivacyRestricted)),
            ((true, true), Outcome::Target(TargetProblem::PremiumRequired)),
        ] {
            *flags.lock().unwrap() = combination;
            let report = client.invite(&supergroup(), &alice()).await;
            assert_eq!(report.outcome, want, "{combination:?}: {}", report.detail);
            assert!(report.detail.contains("missing_invitees"));
        }
        client.close().await;
    })
    .await;
}

/// Each RPC error of the facts sheet, sent by the server and read through the real client.
#[tokio::test]
async fn mtproto_every_mapped_error_arrives_as_its_outcome() {
    use ChannelProblem as C;
    use TargetProblem as T;
    let invite_errors: Vec<(i32, &str, Outcome)> = vec![
        (400, "BOTS_TOO_MUCH", Outcome::Target(T::Bot)),
        (400, "BOT_GROUPS_BLOCKED", Outcome::Target(T::Bot)),
        (400, "CHANNEL_INVALID", Outcome::Channel(C::NotFound)),
        (406, "CHANNEL_PRIVATE", Outcome::Channel(C::Private)),
        (403, "CHAT_ADMIN_REQUIRED", Outcome::Channel(C::NoRights)),
        (400, "CHAT_INVALID", Outcome::Channel(C::NotFound)),
        (400, "CHAT_MEMBER_ADD_FAILED", Outcome::Target(T::Refused)),
        (403, "CHAT_WRITE_FORBIDDEN", Outcome::Channel(C::NoRights)),
        (400, "INPUT_USER_DEACTIVATED", Outcome::Target(T::Deactivated)),
        (400, "USERS_TOO_MUCH", Outcome::Channel(C::Full)),
        (400, "USER_BANNED_IN_CHANNEL", Outcome::Target(T::Banned)),
        (400, "USER_BLOCKED", Outcome::Target(T::Blocked)),
        (400, "USER_BOT", Outcome::Target(T::Bot)),
        (403, "USER_CHANNELS_TOO_MUCH", Outcome::Target(T::TooManyChannels)),
        (400, "USER_ID_INVALID", Outcome::Target(T::Invalid)),
        (400, "USER_KICKED", Outcome::Target(T::Banned)),
        (403, "USER_NOT_MUTUAL_CONTACT", Outcome::Target(T::NotMutualContact)),
        (403, "USER_PRIVACY_RESTRICTED", Outcome::Target(T::PrivacyRestricted)),
        (400, "USER_ALREADY_PARTICIPANT", Outcome::AlreadyDone),
        (400, "PEER_FLOOD", Outcome::Account(AccountProblem::PeerFlood)),
        (
            420,
            "FLOOD_WAIT_42",
            Outcome::Account(AccountProblem::FloodWait(Duration::from_secs(42))),
        ),
        (
            420,
            "FLOOD_PREMIUM_WAIT_9",
            Outcome::Account(AccountProblem::FloodWait(Duration::from_secs(9))),
        ),
        (
            401,
            "AUTH_KEY_UNREGISTERED",
            Outcome::Account(AccountProblem::SessionDead),
        ),
        (
            401,
            "USER_DEACTIVATED_BAN",
            Outcome::Account(AccountProblem::SessionDead),
        ),
        (
            406,
            "AUTH_KEY_DUPLICATED",
            Outcome::Account(AccountProblem::SessionDuplicated),
        ),
        (303, "USER_MIGRATE_4", Outcome::Account(AccountProblem::Unusable)),
        (500, "INTERNAL", Outcome::RetryLater),
    ];
    let message_errors: Vec<(i32, &str, Outcome)> = vec![
        (400, "PEER_FLOOD", Outcome::Account(AccountProblem::PeerFlood)),
        (403, "USER_IS_BLOCKED", Outcome::Target(T::Blocked)),
        (400, "YOU_BLOCKED_USER", Outcome::Target(T::Blocked)),
        (403, "CHAT_WRITE_FORBIDDEN", Outcome::Target(T::PrivacyRestricted)),
        (400, "PEER_ID_INVALID", Outcome::Target(T::Invalid)),
        (400, "INPUT_USER_DEACTIVATED", Outcome::Target(T::Deactivated)),
        (403, "PRIVACY_PREMIUM_REQUIRED", Outcome::Target(T::PremiumRequired)),
        (
            403,
            "ALLOW_PAYMENT_REQUIRED_250",
            Outcome::Target(T::PaidMessagesRequired),
        ),
        (400, "RANDOM_ID_DUPLICATE", Outcome::AlreadyDone),
        (500, "INTERNAL", Outcome::Unknown),
    ];
    let resolve_errors: Vec<(i32, &str, Outcome)> = vec![
        (400, "USERNAME_INVALID", Outcome::Target(T::Invalid)),
        (400, "USERNAME_NOT_OCCUPIED", Outcome::Target(T::NotFound)),
        (
            420,
            "FLOOD_WAIT_64000",
            Outcome::Account(AccountProblem::FloodWait(Duration::from_secs(64000))),
        ),
    ];

    let key = key(10);
    let next: Arc<std::sync::Mutex<(i32, String)>> = Arc::default();
    let answer = Arc::clone(&next);
    let server = fake(key, move |c| {
        if c.name == "help.getConfig" {
            Reply::Default
        } else {
            let (code, message) = answer.lock().unwrap().clone();
            Reply::error(code, &message)
        }
    })
    .await;
    bounded(async {
        let mut client = connect(&server, key).await;
        for (code, message, want) in &invite_errors {
            *next.lock().unwrap() = (*code, message.to_string());
            let report = client.invite(&supergroup(), &alice()).await;
            assert_eq!(report.outcome, *want, "invite: {code} {message}: {}", report.detail);
        }
        for (i, (code, message, want)) in message_errors.iter().enumerate() {
            *next.lock().unwrap() = (*code, message.to_string());
            let key = DeliveryKey {
                task_id: 1,
                target_id: i as i64,
            };
            let report = client.send_message(&alice(), "hello", key).await;
            assert_eq!(report.outcome, *want, "message: {code} {message}: {}", report.detail);
        }
        for (code, message, want) in &resolve_errors {
            *next.lock().unwrap() = (*code, message.to_string());
            let report = client.resolve(&by_username("someone")).await.unwrap_err();
            assert_eq!(report.outcome, *want, "resolve: {code} {message}: {}", report.detail);
        }
        client.close().await;
    })
    .await;
    let sent = server.calls().len() - 1;
    assert_eq!(
        sent,
        invite_errors.len() + message_errors.len() + resolve_errors.len(),
        "one request per call, no repeats"
    );
}

#[tokio::test]
async fn mtproto_a_flood_wait_is_neither_slept_on_nor_sent_again() {
    let key = key(11);
    let server = fake(key, |c| {
        if c.is::<tl::functions::channels::InviteToChannel>() || c.is::<tl::functions::messages::SendMessage>() {
            Reply::error(420, "FLOOD_WAIT_5")
        } else {
            Reply::Default
        }
    })
    .await;
    bounded(async {
        let mut client = connect(&server, key).await;
        let started = Instant::now();
        let invite = client.invite(&supergroup(), &alice()).await;
        let message = client
            .send_message(
                &alice(),
                "hi",
                DeliveryKey {
                    task_id: 1,
                    target_id: 1,
                },
            )
            .await;
        let took = started.elapsed();
        let five = Outcome::Account(AccountProblem::FloodWait(Duration::from_secs(5)));
        assert_eq!((invite.outcome, message.outcome), (five, five));
        assert!(
            took < Duration::from_secs(4),
            "answered at once, without sleeping 5 s: {took:?}"
        );
        // Stay connected past the wait: nothing is sent again behind our back.
        tokio::time::sleep(Duration::from_millis(5500) - took.min(Duration::from_millis(5500))).await;
        client.close().await;
    })
    .await;
    assert_eq!(server.calls_named("channels.inviteToChannel").len(), 1);
    assert_eq!(server.calls_named("messages.sendMessage").len(), 1);
}

#[tokio::test]
async fn mtproto_a_message_has_a_random_id_of_its_delivery_and_a_repeat_is_already_done() {
    let key = key(12);
    let count = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&count);
    let server = fake(key, move |c| match c.decode::<tl::functions::messages::SendMessage>() {
        Some(_) if n.fetch_add(1, Ordering::SeqCst) == 0 => Reply::ok(&updates_empty()),
        Some(_) => Reply::error(400, "RANDOM_ID_DUPLICATE"),
        None => Reply::Default,
    })
    .await;
    let delivery = DeliveryKey {
        task_id: 3,
        target_id: 4,
    };
    bounded(async {
        let mut client = connect(&server, key).await;
        assert_eq!(
            client.send_message(&alice(), "Hi Alice", delivery).await.outcome,
            Outcome::Success
        );
        assert_eq!(
            client.send_message(&alice(), "Hi Alice", delivery).await.outcome,
            Outcome::AlreadyDone
        );
        client.close().await;
    })
    .await;
    let sent: Vec<_> = server
        .calls_named("messages.sendMessage")
        .iter()
        .map(|c| c.decode::<tl::functions::messages::SendMessage>().unwrap())
        .collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].random_id, delivery.random_id());
    assert_eq!(sent[1].random_id, delivery.random_id());
    assert_eq!(sent[0].message, "Hi Alice");
    assert_eq!(
        sent[0].peer,
        tl::enums::InputPeer::User(tl::types::InputPeerUser {
            user_id: 5,
            access_hash: 55
        })
    );
}

#[tokio::test]
async fn mtproto_no_answer_after_sending_is_unknown_for_a_message_and_retry_later_for_an_invite() {
    let key = key(13);
    let server = fake(key, |c| {
        if c.is::<tl::functions::messages::SendMessage>() || c.is::<tl::functions::channels::InviteToChannel>() {
            Reply::Silence
        } else {
            Reply::Default
        }
    })
    .await;
    let strategy = strategy_with_timeout(Duration::from_millis(700));
    bounded(async {
        let mut client = strategy.connect(&credentials(&server, key)).await.unwrap();
        let message = client
            .send_message(
                &alice(),
                "hi",
                DeliveryKey {
                    task_id: 1,
                    target_id: 2,
                },
            )
            .await;
        assert_eq!(message.outcome, Outcome::Unknown, "{}", message.detail);
        let invite = client.invite(&supergroup(), &alice()).await;
        assert_eq!(invite.outcome, Outcome::RetryLater, "{}", invite.detail);
        client.close().await;
    })
    .await;
    assert_eq!(
        server.connections(),
        2,
        "the connection that lost an answer is not used again"
    );
    assert_eq!(server.calls_named("messages.sendMessage").len(), 1, "never re-sent");
}

#[tokio::test]
async fn mtproto_a_lost_connection_before_any_call_is_transient() {
    let key = key(14);
    let server = fake(key, |c| {
        if c.name == "help.getConfig" {
            Reply::Close
        } else {
            Reply::Default
        }
    })
    .await;
    let refused = bounded(strategy().connect(&credentials(&server, key)))
        .await
        .err()
        .unwrap();
    assert_eq!(refused.outcome, Outcome::Transient, "{}", refused.detail);
}

#[tokio::test]
async fn mtproto_an_invite_link_is_only_looked_up_never_joined() {
    let key = key(15);
    let member = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let is_member = Arc::clone(&member);
    let server = fake(key, move |c| {
        if let Some(r) = c.decode::<tl::functions::messages::CheckChatInvite>() {
            assert_eq!(r.hash, "AbCdEf123");
            if is_member.load(Ordering::SeqCst) {
                let chat = with_channel(channel(50, 5050, false, Rights::default()), |c| {
                    c.participants_count = Some(1234)
                });
                Reply::ok(&tl::enums::ChatInvite::Already(tl::types::ChatInviteAlready { chat }))
            } else {
                Reply::ok(&chat_invite("Private", 10))
            }
        } else {
            Reply::Default
        }
    })
    .await;
    let link = ChannelRef::parse("https://t.me/+AbCdEf123").unwrap();
    bounded(async {
        let mut client = connect(&server, key).await;
        let info = client.lookup_channel(&link).await.unwrap();
        assert_eq!(
            (info.id, info.kind, info.members, info.can_invite),
            (50, ChannelKind::Supergroup, Some(1234), true)
        );
        member.store(false, Ordering::SeqCst);
        let refused = client.lookup_channel(&link).await.unwrap_err();
        assert_eq!(refused.outcome, Outcome::Channel(ChannelProblem::Private));
        client.close().await;
    })
    .await;
    assert_eq!(server.calls_named("messages.checkChatInvite").len(), 2);
    let joined = server
        .calls()
        .iter()
        .filter(|c| c.name.contains("import") || c.name.contains("join"))
        .count();
    assert_eq!(joined, 0, "never messages.importChatInvite nor channels.joinChannel");
}

#[tokio::test]
async fn mtproto_channels_are_found_by_name_and_by_id_with_their_member_count() {
    let key = key(16);
    let admin = Rights {
        admin_invite: true,
        ..Rights::default()
    };
    let server = fake(key, move |c| {
        if let Some(r) = c.decode::<tl::functions::contacts::ResolveUsername>() {
            assert_eq!(r.username, "my_channel");
            Reply::ok(&resolved_chat(channel(60, 6060, true, admin)))
        } else if let Some(r) = c.decode::<tl::functions::channels::GetFullChannel>() {
            assert_eq!(
                r.channel,
                tl::enums::InputChannel::Channel(tl::types::InputChannel {
                    channel_id: 60,
                    access_hash: 6060
                })
            );
            Reply::ok(&full_channel(channel_full(60, 199)))
        } else if let Some(r) = c.decode::<tl::functions::channels::GetChannels>() {
            let tl::enums::InputChannel::Channel(input) = &r.id[0] else {
                panic!("{r:?}")
            };
            assert_eq!(
                input.channel_id, 1234567890,
                "the -100 prefix is the Bot API's, not the raw id"
            );
            Reply::ok(&chats(vec![with_channel(
                channel(1234567890, 11, false, Rights::default()),
                |c| c.participants_count = Some(5),
            )]))
        } else if let Some(r) = c.decode::<tl::functions::messages::GetChats>() {
            assert_eq!(r.id, vec![4567]);
            Reply::ok(&chats(vec![basic_group(4567, 12, Rights::default())]))
        } else {
            Reply::Default
        }
    })
    .await;
    bounded(async {
        let mut client = connect(&server, key).await;
        let by_name = client
            .lookup_channel(&ChannelRef::parse("t.me/my_channel").unwrap())
            .await
            .unwrap();
        assert_eq!(
            (by_name.kind, by_name.members, by_name.can_invite),
            (ChannelKind::Broadcast, Some(199), true)
        );
        let by_id = client
            .lookup_channel(&ChannelRef::parse("-1001234567890").unwrap())
            .await
            .unwrap();
        assert_eq!(
            (by_id.id, by_id.kind, by_id.members),
            (1234567890, ChannelKind::Supergroup, Some(5))
        );
        let basic = client
            .lookup_channel(&ChannelRef::parse("-4567").unwrap())
            .await
            .unwrap();
        assert_eq!((basic.kind, basic.members), (ChannelKind::BasicGroup, Some(12)));
        client.close().await;
    })
    .await;
    assert_eq!(
        server.calls_named("channels.getFullChannel").len(),
        1,
        "only when the count was missing"
    );
}

#[tokio::test]
async fn mtproto_a_missing_channel_is_not_found_for_everyone() {
    let key = key(17);
    let server = fake(key, |c| {
        if c.is::<tl::functions::contacts::ResolveUsername>() {
            Reply::error(400, "USERNAME_NOT_OCCUPIED")
        } else if c.is::<tl::functions::messages::CheckChatInvite>() {
            Reply::error(400, "INVITE_HASH_EXPIRED")
        } else {
            Reply::Default
        }
    })
    .await;
    bounded(async {
        let mut client = connect(&server, key).await;
        for link in ["@gone_channel", "t.me/+Expired1"] {
            let r = client
                .lookup_channel(&ChannelRef::parse(link).unwrap())
                .await
                .unwrap_err();
            assert_eq!(r.outcome, Outcome::Channel(ChannelProblem::NotFound), "{link}");
            assert!(r.outcome.consumes_target());
        }
        client.close().await;
    })
    .await;
}
