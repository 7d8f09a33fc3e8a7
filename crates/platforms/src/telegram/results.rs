//! Telegram's answers read into the taxonomy: who a resolved peer is, whether an invite really added
//! the person (`missing_invitees` arrives without an error), what a contact import found, and what a
//! chat lets this account do. Pure, so every shape of the facts sheet is tested here.

use domain::outcome::{ChannelProblem, Outcome, TargetProblem};
use grammers_tl_types as tl;

use crate::strategy::{ChannelInfo, ChannelKind, Peer, Report};

/// A user object as a handle this account can use.
pub fn peer_of(user: &tl::enums::User) -> Result<Peer, Report> {
    let tl::enums::User::User(u) = user else {
        return Err(Report::new(Outcome::Target(TargetProblem::NotFound), "userEmpty"));
    };
    if u.deleted {
        return Err(Report::new(
            Outcome::Target(TargetProblem::Deactivated),
            "deleted account",
        ));
    }
    if u.bot {
        return Err(Report::new(Outcome::Target(TargetProblem::Bot), "a bot, not a person"));
    }
    let Some(access_hash) = u.access_hash.filter(|_| !u.min) else {
        // A "min" user is seen through someone else's eyes: it cannot be addressed directly.
        return Err(Report::new(Outcome::RetryLater, "only a min user object came back"));
    };
    Ok(Peer {
        user_id: u.id,
        access_hash,
        username: u.username.clone(),
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
    })
}

/// `contacts.resolveUsername` for a person.
pub fn resolved_person(resolved: &tl::enums::contacts::ResolvedPeer) -> Result<Peer, Report> {
    let tl::enums::contacts::ResolvedPeer::Peer(r) = resolved;
    let tl::enums::Peer::User(tl::types::PeerUser { user_id }) = r.peer else {
        return Err(Report::new(
            Outcome::Target(TargetProblem::Invalid),
            "the username belongs to a group or channel, not a person",
        ));
    };
    let user = r
        .users
        .iter()
        .find(|u| user_id_of(u) == user_id)
        .ok_or_else(|| Report::new(Outcome::RetryLater, "resolveUsername named a user it did not include"))?;
    peer_of(user)
}

/// `contacts.importContacts` for one phone number imported with `client_id`.
pub fn imported_contact(result: &tl::enums::contacts::ImportedContacts, client_id: i64) -> Result<Peer, Report> {
    let tl::enums::contacts::ImportedContacts::Contacts(r) = result;
    if let Some(tl::enums::ImportedContact::Contact(c)) = r
        .imported
        .iter()
        .find(|tl::enums::ImportedContact::Contact(c)| c.client_id == client_id)
    {
        let user = r
            .users
            .iter()
            .find(|u| user_id_of(u) == c.user_id)
            .ok_or_else(|| Report::new(Outcome::RetryLater, "importContacts named a user it did not include"))?;
        return peer_of(user);
    }
    if r.retry_contacts.contains(&client_id) {
        return Err(Report::new(
            Outcome::RetryLater,
            "Telegram asked to import this contact again later (retry_contacts)",
        ));
    }
    Err(Report::new(
        Outcome::Target(TargetProblem::NotFound),
        "no Telegram account for this phone number, or its privacy hides it",
    ))
}

/// `channels.inviteToChannel` / `messages.addChatUser`: a person whose privacy forbids the add comes
/// back in `missing_invitees`, with no error.
pub fn invited(result: &tl::enums::messages::InvitedUsers, user_id: i64) -> Report {
    let tl::enums::messages::InvitedUsers::Users(r) = result;
    let missing = r
        .missing_invitees
        .iter()
        .map(|tl::enums::MissingInvitee::Invitee(m)| m)
        .find(|m| m.user_id == user_id);
    match missing {
        None => Report::new(Outcome::Success, "added"),
        Some(m) if m.premium_would_allow_invite => Report::new(
            Outcome::Target(TargetProblem::PremiumRequired),
            "missing_invitees: premium_would_allow_invite (only a Premium account may add them)",
        ),
        Some(m) if m.premium_required_for_pm => Report::new(
            Outcome::Target(TargetProblem::PrivacyRestricted),
            "missing_invitees: premium_required_for_pm (privacy forbids the add; only Premium may message them)",
        ),
        Some(_) => Report::new(
            Outcome::Target(TargetProblem::PrivacyRestricted),
            "missing_invitees: privacy forbids the add (an invite link may be sent by message)",
        ),
    }
}

/// A chat object as what this account may do there.
pub fn channel_info(chat: &tl::enums::Chat) -> Result<ChannelInfo, Report> {
    match chat {
        tl::enums::Chat::Channel(c) => {
            let kind = if c.broadcast {
                ChannelKind::Broadcast
            } else {
                ChannelKind::Supergroup
            };
            let Some(access_hash) = c.access_hash.filter(|_| !c.min) else {
                return Err(Report::new(
                    Outcome::Channel(ChannelProblem::Private),
                    "only a min channel object: this account has no access to it",
                ));
            };
            let admin_may =
                c.creator || matches!(&c.admin_rights, Some(tl::enums::ChatAdminRights::Rights(r)) if r.invite_users);
            let members_may = kind == ChannelKind::Supergroup
                && !banned_from_inviting(&c.default_banned_rights)
                && !banned_from_inviting(&c.banned_rights);
            Ok(ChannelInfo {
                id: c.id,
                access_hash,
                kind,
                title: c.title.clone(),
                members: c.participants_count.map(i64::from),
                can_invite: !c.left && (admin_may || members_may),
                joined: !c.left,
            })
        }
        tl::enums::Chat::Chat(c) => {
            if c.deactivated || c.migrated_to.is_some() {
                return Err(Report::new(
                    Outcome::Channel(ChannelProblem::NotFound),
                    "the basic group was upgraded to a supergroup or deactivated: use the supergroup's link",
                ));
            }
            let admin_may =
                c.creator || matches!(&c.admin_rights, Some(tl::enums::ChatAdminRights::Rights(r)) if r.invite_users);
            let members_may = !banned_from_inviting(&c.default_banned_rights);
            Ok(ChannelInfo {
                id: c.id,
                access_hash: 0,
                kind: ChannelKind::BasicGroup,
                title: c.title.clone(),
                members: Some(c.participants_count.into()),
                can_invite: !c.left && (admin_may || members_may),
                joined: !c.left,
            })
        }
        tl::enums::Chat::Forbidden(_) | tl::enums::Chat::ChannelForbidden(_) => Err(Report::new(
            Outcome::Channel(ChannelProblem::Private),
            "this account was removed from the chat or may not see it",
        )),
        tl::enums::Chat::Empty(_) => Err(Report::new(Outcome::Channel(ChannelProblem::NotFound), "chatEmpty")),
        tl::enums::Chat::Community(_) | tl::enums::Chat::CommunityForbidden(_) => Err(Report::new(
            Outcome::Channel(ChannelProblem::NotFound),
            "a community is not a group or channel people can be added to",
        )),
    }
}

/// The member count of a full chat (the short object often leaves it out).
pub fn members_of(full: &tl::enums::messages::ChatFull) -> Option<i64> {
    let tl::enums::messages::ChatFull::Full(f) = full;
    match &f.full_chat {
        tl::enums::ChatFull::ChannelFull(c) => c.participants_count.map(i64::from),
        tl::enums::ChatFull::Full(c) => match &c.participants {
            tl::enums::ChatParticipants::Participants(p) => Some(p.participants.len() as i64),
            tl::enums::ChatParticipants::Forbidden(_) => None,
        },
        tl::enums::ChatFull::CommunityFull(_) => None,
    }
}

/// The chat a `messages.checkChatInvite` answer is about, when this account can act there. A link of a
/// chat the account is not in answers `chatInvite`: the account would have to join, which it never does.
pub fn chat_of_invite(invite: &tl::enums::ChatInvite) -> Result<&tl::enums::Chat, Report> {
    match invite {
        tl::enums::ChatInvite::Already(a) => Ok(&a.chat),
        tl::enums::ChatInvite::Peek(p) => Ok(&p.chat),
        tl::enums::ChatInvite::Invite(_) => Err(Report::new(
            Outcome::Channel(ChannelProblem::Private),
            "this account is not a member of the chat behind the invite link (it never joins by itself)",
        )),
    }
}

/// The chat a `contacts.resolveUsername` answer names, for a channel lookup.
pub fn resolved_chat(resolved: &tl::enums::contacts::ResolvedPeer) -> Result<&tl::enums::Chat, Report> {
    let tl::enums::contacts::ResolvedPeer::Peer(r) = resolved;
    let id = match r.peer {
        tl::enums::Peer::Channel(tl::types::PeerChannel { channel_id }) => channel_id,
        tl::enums::Peer::Chat(tl::types::PeerChat { chat_id }) => chat_id,
        tl::enums::Peer::User(_) => {
            return Err(Report::new(
                Outcome::Channel(ChannelProblem::NotFound),
                "the name belongs to a person, not a group or channel",
            ))
        }
    };
    r.chats
        .iter()
        .find(|c| chat_id_of(c) == id)
        .ok_or_else(|| Report::new(Outcome::RetryLater, "resolveUsername named a chat it did not include"))
}

/// Every user object an answer carries: the account now knows these people.
pub fn users_in(users: &[tl::enums::User]) -> impl Iterator<Item = Peer> + '_ {
    users.iter().filter_map(|u| peer_of(u).ok())
}

fn banned_from_inviting(rights: &Option<tl::enums::ChatBannedRights>) -> bool {
    matches!(rights, Some(tl::enums::ChatBannedRights::Rights(r)) if r.invite_users)
}

fn user_id_of(u: &tl::enums::User) -> i64 {
    match u {
        tl::enums::User::User(u) => u.id,
        tl::enums::User::Empty(u) => u.id,
    }
}

pub fn chat_id_of(c: &tl::enums::Chat) -> i64 {
    match c {
        tl::enums::Chat::Empty(c) => c.id,
        tl::enums::Chat::Chat(c) => c.id,
        tl::enums::Chat::Forbidden(c) => c.id,
        tl::enums::Chat::Channel(c) => c.id,
        tl::enums::Chat::ChannelForbidden(c) => c.id,
        tl::enums::Chat::Community(c) => c.id,
        tl::enums::Chat::CommunityForbidden(c) => c.id,
    }
}
