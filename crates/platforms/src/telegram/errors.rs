//! Telegram's RPC errors in the outcome taxonomy (`reference/telegram-facts.md`). Pure: the same error
//! name can mean different things for different calls (`CHAT_WRITE_FORBIDDEN` is about the channel
//! for an invite and about the person for a message), so the call is part of the question.

use std::time::Duration;

use domain::outcome::{AccountProblem, ChannelProblem, Outcome, TargetProblem};

/// The kinds of call the adapter makes, one per AM action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Invite,
    Message,
    ResolveUsername,
    ImportContact,
    ChannelLookup,
}

/// A flood wait with no number in it (it never happens in practice): rest an hour, the safe side.
const UNSTATED_FLOOD_WAIT: Duration = Duration::from_secs(3600);

/// The outcome of an RPC error, as grammers splits it: `FLOOD_WAIT_30` arrives as name `FLOOD_WAIT`,
/// value 30.
pub fn classify(call: Call, code: i32, name: &str, value: Option<u32>) -> Outcome {
    use AccountProblem as A;
    use ChannelProblem as C;
    use TargetProblem as T;

    if let Some(o) = account_state(code, name, value) {
        return o;
    }
    if code >= 500 || code == -503 {
        // "The request may or may not have been executed" (Telegram on 500 INTERNAL): count it.
        return maybe_done(call);
    }
    let target_is_channel = call == Call::ChannelLookup;
    match name {
        "PEER_FLOOD" => Outcome::Account(A::PeerFlood),
        "USER_ALREADY_PARTICIPANT" | "RANDOM_ID_DUPLICATE" => Outcome::AlreadyDone,

        "USERNAME_INVALID"
        | "USERNAME_NOT_OCCUPIED"
        | "INVITE_HASH_EXPIRED"
        | "INVITE_HASH_INVALID"
        | "INVITE_HASH_EMPTY"
            if target_is_channel =>
        {
            Outcome::Channel(C::NotFound)
        }
        "USERNAME_INVALID" => Outcome::Target(T::Invalid),
        "USERNAME_NOT_OCCUPIED" => Outcome::Target(T::NotFound),

        "USER_PRIVACY_RESTRICTED" => Outcome::Target(T::PrivacyRestricted),
        "PRIVACY_PREMIUM_REQUIRED" => Outcome::Target(T::PremiumRequired),
        "USER_NOT_MUTUAL_CONTACT" => Outcome::Target(T::NotMutualContact),
        "USER_CHANNELS_TOO_MUCH" => Outcome::Target(T::TooManyChannels),
        "USER_KICKED" | "USER_BANNED_IN_CHANNEL" => Outcome::Target(T::Banned),
        "INPUT_USER_DEACTIVATED" => Outcome::Target(T::Deactivated),
        "USER_ID_INVALID" => Outcome::Target(T::Invalid),
        "PEER_ID_INVALID" if call == Call::ChannelLookup => Outcome::Channel(C::NotFound),
        "PEER_ID_INVALID" => Outcome::Target(T::Invalid),
        "USER_BOT" | "BOT_GROUPS_BLOCKED" | "BOTS_TOO_MUCH" => Outcome::Target(T::Bot),
        "USER_BLOCKED" | "USER_IS_BLOCKED" | "YOU_BLOCKED_USER" => Outcome::Target(T::Blocked),
        "ALLOW_PAYMENT_REQUIRED" => Outcome::Target(T::PaidMessagesRequired),
        "CHAT_MEMBER_ADD_FAILED" => Outcome::Target(T::Refused),
        // To a person, a write ban is about them (their privacy); to a group, about our rights.
        "CHAT_WRITE_FORBIDDEN" if call == Call::Message => Outcome::Target(T::PrivacyRestricted),

        "CHAT_ADMIN_REQUIRED" | "CHAT_WRITE_FORBIDDEN" | "USER_NOT_PARTICIPANT" => Outcome::Channel(C::NoRights),
        "CHANNEL_PRIVATE" => Outcome::Channel(C::Private),
        "CHANNEL_INVALID" | "CHAT_INVALID" | "CHAT_ID_INVALID" | "CHANNEL_ID_INVALID" => Outcome::Channel(C::NotFound),
        "USERS_TOO_MUCH" => Outcome::Channel(C::Full),
        _ => Outcome::Target(T::Refused),
    }
}

/// Errors about the account itself, whatever the call: they never consume the target.
fn account_state(code: i32, name: &str, value: Option<u32>) -> Option<Outcome> {
    use AccountProblem as A;
    let o = match (code, name) {
        (420, _) => {
            let wait = value.map_or(UNSTATED_FLOOD_WAIT, |s| Duration::from_secs(s.into()));
            Outcome::Account(A::FloodWait(wait))
        }
        (_, "FLOOD_WAIT" | "FLOOD_PREMIUM_WAIT" | "SLOWMODE_WAIT") => {
            let wait = value.map_or(UNSTATED_FLOOD_WAIT, |s| Duration::from_secs(s.into()));
            Outcome::Account(A::FloodWait(wait))
        }
        (401, _) => Outcome::Account(A::SessionDead),
        (
            _,
            "AUTH_KEY_UNREGISTERED"
            | "AUTH_KEY_INVALID"
            | "AUTH_KEY_PERM_EMPTY"
            | "SESSION_REVOKED"
            | "SESSION_EXPIRED"
            | "USER_DEACTIVATED"
            | "USER_DEACTIVATED_BAN",
        ) => Outcome::Account(A::SessionDead),
        (_, "AUTH_KEY_DUPLICATED") => Outcome::Account(A::SessionDuplicated),
        // The session belongs to another data centre than the one stored with it.
        (303, _) => Outcome::Account(A::Unusable),
        _ => return None,
    };
    Some(o)
}

/// The outcome of a call that reached Telegram but got no answer (a timeout, a dropped connection, a
/// server error): a message may have arrived; any other call may have counted.
pub fn maybe_done(call: Call) -> Outcome {
    match call {
        Call::Message => Outcome::Unknown,
        Call::Invite | Call::ResolveUsername | Call::ImportContact | Call::ChannelLookup => Outcome::RetryLater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_CALLS: [Call; 5] = [
        Call::Invite,
        Call::Message,
        Call::ResolveUsername,
        Call::ImportContact,
        Call::ChannelLookup,
    ];

    fn t(p: TargetProblem) -> Outcome {
        Outcome::Target(p)
    }

    fn c(p: ChannelProblem) -> Outcome {
        Outcome::Channel(p)
    }

    /// Every error of the facts sheet for `channels.inviteToChannel` and `messages.addChatUser`.
    #[test]
    fn invite_errors_of_the_facts_sheet() {
        use ChannelProblem as C;
        use TargetProblem as T;
        let cases: &[(i32, &str, Outcome)] = &[
            (400, "BOTS_TOO_MUCH", t(T::Bot)),
            (400, "BOT_GROUPS_BLOCKED", t(T::Bot)),
            (400, "CHANNEL_INVALID", c(C::NotFound)),
            (406, "CHANNEL_PRIVATE", c(C::Private)),
            (403, "CHAT_ADMIN_REQUIRED", c(C::NoRights)),
            (400, "CHAT_INVALID", c(C::NotFound)),
            (400, "CHAT_ID_INVALID", c(C::NotFound)),
            (400, "CHAT_MEMBER_ADD_FAILED", t(T::Refused)),
            (403, "CHAT_WRITE_FORBIDDEN", c(C::NoRights)),
            (400, "INPUT_USER_DEACTIVATED", t(T::Deactivated)),
            (400, "USERS_TOO_MUCH", c(C::Full)),
            (400, "USER_BANNED_IN_CHANNEL", t(T::Banned)),
            (400, "USER_BLOCKED", t(T::Blocked)),
            (400, "USER_IS_BLOCKED", t(T::Blocked)),
            (400, "YOU_BLOCKED_USER", t(T::Blocked)),
            (400, "USER_BOT", t(T::Bot)),
            (403, "USER_CHANNELS_TOO_MUCH", t(T::TooManyChannels)),
            (400, "USER_ID_INVALID", t(T::Invalid)),
            (400, "PEER_ID_INVALID", t(T::Invalid)),
            (400, "USER_KICKED", t(T::Banned)),
            (403, "USER_NOT_MUTUAL_CONTACT", t(T::NotMutualContact)),
            (403, "USER_PRIVACY_RESTRICTED", t(T::PrivacyRestricted)),
            (400, "USER_ALREADY_PARTICIPANT", Outcome::AlreadyDone),
            (400, "PEER_FLOOD", Outcome::Account(AccountProblem::PeerFlood)),
        ];
        for (code, name, want) in cases {
            assert_eq!(classify(Call::Invite, *code, name, None), *want, "{code} {name}");
        }
    }

    /// Every error of the facts sheet for `messages.sendMessage` to a person.
    #[test]
    fn message_errors_of_the_facts_sheet() {
        use TargetProblem as T;
        let cases: &[(i32, &str, Option<u32>, Outcome)] = &[
            (400, "PEER_FLOOD", None, Outcome::Account(AccountProblem::PeerFlood)),
            (400, "USER_IS_BLOCKED", None, t(T::Blocked)),
            (403, "USER_IS_BLOCKED", None, t(T::Blocked)),
            (400, "YOU_BLOCKED_USER", None, t(T::Blocked)),
            (403, "CHAT_WRITE_FORBIDDEN", None, t(T::PrivacyRestricted)),
            (400, "PEER_ID_INVALID", None, t(T::Invalid)),
            (400, "INPUT_USER_DEACTIVATED", None, t(T::Deactivated)),
            (403, "PRIVACY_PREMIUM_REQUIRED", None, t(T::PremiumRequired)),
            (403, "ALLOW_PAYMENT_REQUIRED", Some(250), t(T::PaidMessagesRequired)),
            (400, "RANDOM_ID_DUPLICATE", None, Outcome::AlreadyDone),
        ];
        for (code, name, value, want) in cases {
            assert_eq!(classify(Call::Message, *code, name, *value), *want, "{code} {name}");
        }
    }

    #[test]
    fn username_errors_depend_on_what_was_looked_up() {
        assert_eq!(
            classify(Call::ResolveUsername, 400, "USERNAME_INVALID", None),
            t(TargetProblem::Invalid)
        );
        assert_eq!(
            classify(Call::ResolveUsername, 400, "USERNAME_NOT_OCCUPIED", None),
            t(TargetProblem::NotFound)
        );
        for name in [
            "USERNAME_INVALID",
            "USERNAME_NOT_OCCUPIED",
            "INVITE_HASH_EXPIRED",
            "INVITE_HASH_INVALID",
        ] {
            assert_eq!(
                classify(Call::ChannelLookup, 400, name, None),
                c(ChannelProblem::NotFound),
                "{name}"
            );
        }
        assert_eq!(
            classify(Call::ChannelLookup, 400, "USER_NOT_PARTICIPANT", None),
            c(ChannelProblem::NoRights)
        );
    }

    #[test]
    fn account_state_errors_mean_the_same_for_every_call() {
        use AccountProblem as A;
        for call in ALL_CALLS {
            assert_eq!(
                classify(call, 420, "FLOOD_WAIT", Some(30)),
                Outcome::Account(A::FloodWait(Duration::from_secs(30)))
            );
            assert_eq!(
                classify(call, 420, "FLOOD_PREMIUM_WAIT", Some(7)),
                Outcome::Account(A::FloodWait(Duration::from_secs(7)))
            );
            for name in [
                "AUTH_KEY_UNREGISTERED",
                "SESSION_REVOKED",
                "USER_DEACTIVATED",
                "USER_DEACTIVATED_BAN",
            ] {
                assert_eq!(
                    classify(call, 401, name, None),
                    Outcome::Account(A::SessionDead),
                    "{name}"
                );
            }
            assert_eq!(
                classify(call, 406, "AUTH_KEY_DUPLICATED", None),
                Outcome::Account(A::SessionDuplicated)
            );
            assert_eq!(
                classify(call, 303, "USER_MIGRATE", Some(4)),
                Outcome::Account(A::Unusable)
            );
            assert_eq!(classify(call, 400, "PEER_FLOOD", None), Outcome::Account(A::PeerFlood));
        }
    }

    #[test]
    fn a_flood_wait_without_a_number_rests_the_safe_side() {
        assert_eq!(
            classify(Call::Invite, 420, "FLOOD", None),
            Outcome::Account(AccountProblem::FloodWait(UNSTATED_FLOOD_WAIT))
        );
    }

    #[test]
    fn server_errors_count_as_maybe_done() {
        assert_eq!(classify(Call::Message, 500, "INTERNAL", None), Outcome::Unknown);
        assert_eq!(classify(Call::Message, -503, "Timeout", None), Outcome::Unknown);
        assert_eq!(classify(Call::Invite, 500, "INTERNAL", None), Outcome::RetryLater);
        assert_eq!(
            classify(Call::ImportContact, 500, "INTERNAL", None),
            Outcome::RetryLater
        );
    }

    #[test]
    fn an_error_nobody_knows_is_final_for_the_target_never_a_retry() {
        let o = classify(Call::Invite, 400, "SOMETHING_NEW", None);
        assert_eq!(o, t(TargetProblem::Refused));
        assert!(o.consumes_target() && o.consumes_budget());
    }
}
