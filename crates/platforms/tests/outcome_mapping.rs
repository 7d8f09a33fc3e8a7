//! Every result shape of the facts sheet read into the outcome taxonomy (the RPC errors are covered
//! beside the code, in `telegram::errors`).

mod support;

use domain::outcome::{ChannelProblem, Outcome, TargetProblem};
use grammers_tl_types as tl;
use platforms::{telegram::results, ChannelKind};
use support::tl::*;

#[test]
fn missing_invitees_with_each_flag_combination() {
    let me = 42;
    let cases = [
        (vec![], Outcome::Success),
        (vec![(7, false, false)], Outcome::Success),
        (
            vec![(me, false, false)],
            Outcome::Target(TargetProblem::PrivacyRestricted),
        ),
        (vec![(me, true, false)], Outcome::Target(TargetProblem::PremiumRequired)),
        (
            vec![(me, false, true)],
            Outcome::Target(TargetProblem::PrivacyRestricted),
        ),
        (vec![(me, true, true)], Outcome::Target(TargetProblem::PremiumRequired)),
        (
            vec![(7, true, true), (me, false, true)],
            Outcome::Target(TargetProblem::PrivacyRestricted),
        ),
    ];
    for (missing, want) in cases {
        let report = results::invited(&invited(missing.clone()), me);
        assert_eq!(report.outcome, want, "{missing:?}");
    }
    let report = results::invited(&invited(vec![(me, false, true)]), me);
    assert!(report.detail.contains("premium_required_for_pm"), "{}", report.detail);
}

#[test]
fn a_resolved_username_is_a_person_with_a_handle_or_says_why_not() {
    let peer = results::resolved_person(&resolved_user(user(5, 55, Some("alice")))).unwrap();
    assert_eq!(
        (peer.user_id, peer.access_hash, peer.username.as_deref()),
        (5, 55, Some("alice"))
    );

    let bot = with_user(user(6, 66, Some("a_bot")), |u| u.bot = true);
    assert_eq!(
        results::resolved_person(&resolved_user(bot)).unwrap_err().outcome,
        Outcome::Target(TargetProblem::Bot)
    );
    let deleted = with_user(user(7, 77, None), |u| u.deleted = true);
    assert_eq!(
        results::resolved_person(&resolved_user(deleted)).unwrap_err().outcome,
        Outcome::Target(TargetProblem::Deactivated)
    );
    let min = with_user(user(8, 88, None), |u| u.min = true);
    assert_eq!(
        results::resolved_person(&resolved_user(min)).unwrap_err().outcome,
        Outcome::RetryLater
    );
    let a_channel = resolved_chat(channel(9, 99, true, Rights::default()));
    assert_eq!(
        results::resolved_person(&a_channel).unwrap_err().outcome,
        Outcome::Target(TargetProblem::Invalid)
    );
}

#[test]
fn a_contact_import_finds_the_person_asks_to_retry_or_finds_nobody() {
    let found = imported(vec![(5, 1)], vec![], vec![user(5, 55, None)]);
    assert_eq!(results::imported_contact(&found, 1).unwrap().user_id, 5);

    let retry = imported(vec![], vec![1], vec![]);
    let r = results::imported_contact(&retry, 1).unwrap_err();
    assert_eq!(r.outcome, Outcome::RetryLater);
    assert!(r.outcome.consumes_budget() && !r.outcome.consumes_target());

    let nobody = imported(vec![], vec![], vec![]);
    assert_eq!(
        results::imported_contact(&nobody, 1).unwrap_err().outcome,
        Outcome::Target(TargetProblem::NotFound)
    );
    let other_client_id = imported(vec![(5, 2)], vec![], vec![user(5, 55, None)]);
    assert_eq!(
        results::imported_contact(&other_client_id, 1).unwrap_err().outcome,
        Outcome::Target(TargetProblem::NotFound)
    );
}

#[test]
fn who_may_invite_in_each_kind_of_chat() {
    let member = Rights::default();
    let admin = Rights {
        admin_invite: true,
        ..member
    };
    let admin_without_invite = Rights {
        admin_other: true,
        ..member
    };
    let creator = Rights {
        creator: true,
        ..member
    };
    let locked = Rights {
        members_may_not_invite: true,
        ..member
    };
    let left = Rights { left: true, ..admin };
    let cases = [
        (
            "broadcast, plain member",
            channel(1, 11, true, member),
            ChannelKind::Broadcast,
            false,
        ),
        (
            "broadcast, admin who may invite",
            channel(1, 11, true, admin),
            ChannelKind::Broadcast,
            true,
        ),
        (
            "broadcast, admin who may not invite",
            channel(1, 11, true, admin_without_invite),
            ChannelKind::Broadcast,
            false,
        ),
        (
            "broadcast, creator",
            channel(1, 11, true, creator),
            ChannelKind::Broadcast,
            true,
        ),
        (
            "supergroup, members may invite",
            channel(2, 22, false, member),
            ChannelKind::Supergroup,
            true,
        ),
        (
            "supergroup, members may not",
            channel(2, 22, false, locked),
            ChannelKind::Supergroup,
            false,
        ),
        (
            "supergroup, admin, members may not",
            channel(
                2,
                22,
                false,
                Rights {
                    admin_invite: true,
                    ..locked
                },
            ),
            ChannelKind::Supergroup,
            true,
        ),
        (
            "supergroup, left",
            channel(2, 22, false, left),
            ChannelKind::Supergroup,
            false,
        ),
        (
            "basic group, members may invite",
            basic_group(3, 10, member),
            ChannelKind::BasicGroup,
            true,
        ),
        (
            "basic group, members may not",
            basic_group(3, 10, locked),
            ChannelKind::BasicGroup,
            false,
        ),
        (
            "basic group, creator",
            basic_group(
                3,
                10,
                Rights {
                    creator: true,
                    ..locked
                },
            ),
            ChannelKind::BasicGroup,
            true,
        ),
    ];
    for (what, chat, kind, can_invite) in cases {
        let info = results::channel_info(&chat).unwrap();
        assert_eq!((info.kind, info.can_invite), (kind, can_invite), "{what}");
    }
    let info = results::channel_info(&basic_group(3, 10, member)).unwrap();
    assert_eq!(info.members, Some(10));
}

#[test]
fn chats_this_account_cannot_use() {
    let min = with_channel(channel(1, 11, false, Rights::default()), |c| c.min = true);
    assert_eq!(
        results::channel_info(&min).unwrap_err().outcome,
        Outcome::Channel(ChannelProblem::Private)
    );
    let forbidden = tl::enums::Chat::ChannelForbidden(tl::types::ChannelForbidden {
        broadcast: true,
        megagroup: false,
        monoforum: false,
        id: 1,
        access_hash: 11,
        title: "x".into(),
        until_date: None,
    });
    assert_eq!(
        results::channel_info(&forbidden).unwrap_err().outcome,
        Outcome::Channel(ChannelProblem::Private)
    );
    let tl::enums::Chat::Chat(mut migrated) = basic_group(3, 10, Rights::default()) else {
        unreachable!()
    };
    migrated.migrated_to = Some(tl::enums::InputChannel::Channel(tl::types::InputChannel {
        channel_id: 4,
        access_hash: 44,
    }));
    assert_eq!(
        results::channel_info(&tl::enums::Chat::Chat(migrated))
            .unwrap_err()
            .outcome,
        Outcome::Channel(ChannelProblem::NotFound)
    );
}

#[test]
fn an_invite_link_of_a_chat_this_account_is_not_in_is_never_a_way_in() {
    let already = tl::enums::ChatInvite::Already(tl::types::ChatInviteAlready {
        chat: channel(1, 11, false, Rights::default()),
    });
    assert!(results::chat_of_invite(&already).is_ok());
    let peek = tl::enums::ChatInvite::Peek(tl::types::ChatInvitePeek {
        chat: channel(1, 11, false, Rights::default()),
        expires: 0,
    });
    assert!(results::chat_of_invite(&peek).is_ok());
}

#[test]
fn a_username_lookup_for_a_channel_that_names_a_person_is_not_found() {
    assert_eq!(
        results::resolved_chat(&resolved_user(user(5, 55, Some("alice"))))
            .unwrap_err()
            .outcome,
        Outcome::Channel(ChannelProblem::NotFound)
    );
    let resolved = resolved_chat(channel(2, 22, false, Rights::default()));
    assert_eq!(results::chat_id_of(results::resolved_chat(&resolved).unwrap()), 2);
}
