//! What a platform action came to: one taxonomy shared by the Account Manager, the adapters and the
//! engine. Each outcome says whether it uses up the target (it reaches a final state), spends the
//! account's budget, and what it means for the account or the channel.

use std::time::Duration;

word_enum!(
    /// Every platform call is one of these, and each is granted by the Account Manager first.
    AmAction {
        Invite => "invite",
        Message => "message",
        ResolveUsername => "resolve_username",
        ImportContact => "import_contact",
        ChannelLookup => "channel_lookup",
    }
);

/// Why a target cannot be reached by anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetProblem {
    /// Privacy settings forbid the invite or the message (`USER_PRIVACY_RESTRICTED`, `missing_invitees`).
    PrivacyRestricted,
    /// Only a Premium account could invite or message them.
    PremiumRequired,
    /// They left the group themselves (`USER_NOT_MUTUAL_CONTACT`): final.
    NotMutualContact,
    /// They are in too many channels (`USER_CHANNELS_TOO_MUCH`).
    TooManyChannels,
    /// Kicked or banned from this channel (`USER_KICKED`, `USER_BANNED_IN_CHANNEL`).
    Banned,
    /// The account is deleted (`USER_DEACTIVATED` about the target, `INPUT_USER_DEACTIVATED`).
    Deactivated,
    /// No such user (`USERNAME_NOT_OCCUPIED`, an unregistered phone).
    NotFound,
    /// The identifier is invalid (`USERNAME_INVALID`, `USER_ID_INVALID`, `PEER_ID_INVALID`).
    Invalid,
    /// A bot where a person was expected (`USER_BOT`, `BOT_GROUPS_BLOCKED`).
    Bot,
    /// Messaging them costs Stars (`ALLOW_PAYMENT_REQUIRED`): never paid for automatically.
    PaidMessagesRequired,
    /// One side blocked the other (`USER_IS_BLOCKED`, `USER_BLOCKED`, `YOU_BLOCKED_USER`): a person
    /// who blocked one of the owner's accounts is not approached from another.
    Blocked,
    /// The platform refused without saying why (`CHAT_MEMBER_ADD_FAILED`, or an error this service
    /// does not know). Final: a refusal we cannot read is never answered by trying again.
    Refused,
}

/// Why a channel cannot take invites from this account (or from anyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelProblem {
    /// This account may not invite there (`CHAT_ADMIN_REQUIRED`, `CHAT_WRITE_FORBIDDEN`): this account only.
    NoRights,
    /// The channel is private and this account is not in it (`CHANNEL_PRIVATE`): this account only.
    Private,
    /// A broadcast channel past its first 200 added members (`USERS_TOO_MUCH`): every account.
    Full,
    /// No such channel (`CHANNEL_INVALID`, `CHAT_ID_INVALID`, an expired invite link): every account.
    NotFound,
}

/// Why the account itself must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountProblem {
    /// `FLOOD_WAIT_X` / `FLOOD_PREMIUM_WAIT_X`: rest X seconds (plus a margin).
    FloodWait(Duration),
    /// `PEER_FLOOD`: restricted from contacting strangers.
    PeerFlood,
    /// The session is gone (`AUTH_KEY_UNREGISTERED`, `SESSION_REVOKED`, `USER_DEACTIVATED(_BAN)`).
    SessionDead,
    /// The same key is in use elsewhere (`AUTH_KEY_DUPLICATED`).
    SessionDuplicated,
    /// The account cannot be used as registered (no API id configured, a session for another data
    /// centre): blocked until its owner registers it again.
    Unusable,
}

/// The result of one platform action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Done: the person was added or the message delivered.
    Success,
    /// Done before (`USER_ALREADY_PARTICIPANT`, `RANDOM_ID_DUPLICATE` for our own retry).
    AlreadyDone,
    Target(TargetProblem),
    Channel(ChannelProblem),
    Account(AccountProblem),
    /// Network, timeout before sending, server error: nothing happened, try again.
    Transient,
    /// Sent, but whether it arrived is not known (a timeout after sending).
    Unknown,
    /// The platform may have acted and asks to try again later (`retry_contacts` of a contact
    /// import, a timeout of an idempotent call): it counts against the budget, the target stays.
    RetryLater,
}

impl Outcome {
    /// The target reaches a final state with this outcome (an account or channel problem, or a
    /// transient one, leaves it for another try).
    pub fn consumes_target(self) -> bool {
        matches!(
            self,
            Outcome::Success | Outcome::AlreadyDone | Outcome::Target(_) | Outcome::Unknown
        ) || matches!(self, Outcome::Channel(ChannelProblem::Full | ChannelProblem::NotFound))
    }

    /// The action counts against the account's limits. Conservative: everything Telegram may have
    /// executed counts; only answers that prove nothing was done (a flood wait, a dead session, a
    /// transient failure before sending) do not.
    pub fn consumes_budget(self) -> bool {
        !matches!(self, Outcome::Account(_) | Outcome::Transient)
    }

    /// A short stable name, for logs, metrics and stored results.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::AlreadyDone => "already_done",
            Outcome::Target(p) => match p {
                TargetProblem::PrivacyRestricted => "privacy_restricted",
                TargetProblem::PremiumRequired => "premium_required",
                TargetProblem::NotMutualContact => "not_mutual_contact",
                TargetProblem::TooManyChannels => "too_many_channels",
                TargetProblem::Banned => "banned",
                TargetProblem::Deactivated => "deactivated",
                TargetProblem::NotFound => "not_found",
                TargetProblem::Invalid => "invalid",
                TargetProblem::Bot => "bot",
                TargetProblem::PaidMessagesRequired => "paid_messages_required",
                TargetProblem::Blocked => "blocked",
                TargetProblem::Refused => "refused",
            },
            Outcome::Channel(p) => match p {
                ChannelProblem::NoRights => "channel_no_rights",
                ChannelProblem::Private => "channel_private",
                ChannelProblem::Full => "channel_full",
                ChannelProblem::NotFound => "channel_not_found",
            },
            Outcome::Account(p) => match p {
                AccountProblem::FloodWait(_) => "flood_wait",
                AccountProblem::PeerFlood => "peer_flood",
                AccountProblem::SessionDead => "session_dead",
                AccountProblem::SessionDuplicated => "session_duplicated",
                AccountProblem::Unusable => "account_unusable",
            },
            Outcome::Transient => "transient",
            Outcome::Unknown => "unknown",
            Outcome::RetryLater => "retry_later",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_problems_never_use_up_the_target_nor_the_budget() {
        for o in [
            Outcome::Account(AccountProblem::FloodWait(Duration::from_secs(30))),
            Outcome::Account(AccountProblem::PeerFlood),
            Outcome::Account(AccountProblem::SessionDead),
            Outcome::Transient,
        ] {
            assert!(!o.consumes_target(), "{o:?}");
            assert!(!o.consumes_budget(), "{o:?}");
        }
    }

    #[test]
    fn unknown_counts_as_done_for_the_budget_and_ends_the_target() {
        assert!(Outcome::Unknown.consumes_budget());
        assert!(Outcome::Unknown.consumes_target());
        assert!(Outcome::Target(TargetProblem::PrivacyRestricted).consumes_budget());
        assert!(
            !Outcome::Channel(ChannelProblem::NoRights).consumes_target(),
            "another account may have rights"
        );
        assert!(
            Outcome::Channel(ChannelProblem::Full).consumes_target(),
            "full for everyone"
        );
    }

    #[test]
    fn retry_later_spends_the_budget_but_keeps_the_target() {
        assert!(Outcome::RetryLater.consumes_budget());
        assert!(!Outcome::RetryLater.consumes_target());
    }
}
