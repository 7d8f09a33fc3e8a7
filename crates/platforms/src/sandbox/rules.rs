//! How the world answers each request, as Telegram would (`reference/telegram-facts.md`).
//!
//! Names follow conventions, so a person trying the sandbox can reach every case: a username ending in
//! `channel` is a broadcast channel, one ending in `group` or `chat` a supergroup, anything else a
//! person; a chat whose name contains `readonly` gives accounts no right to add members; an invite link
//! whose hash starts with `expired` has expired, one starting with `notmember` is of a chat the account
//! is not in. Numeric ids name supergroups (`channels.getChannels`) or basic groups (`messages.getChats`).
//! Every sandbox account is an admin who may add members everywhere else.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use domain::username::Username;
use grammers_tl_types::{self as tl, Cursor, Deserializable, Identifiable, Serializable};
use sha2::{Digest, Sha256};
use store::{WorldCallRequest, WorldChannel, WorldChannelRef, WorldDecision, WorldEffect, WorldView};

use super::{
    objects,
    people::{Being, OnInvite, OnMessage, People, Person},
    WorldHandle,
};
use crate::telegram::wire::WireError;

/// A broadcast channel takes added members only while it has fewer subscribers than this.
pub const BROADCAST_ADD_LIMIT: i64 = 200;

/// What the world was asked, decoded from the TL request.
#[derive(Debug, Clone)]
enum Request {
    ResolveUsername {
        username: String,
    },
    ImportContact {
        client_id: i64,
        phone: String,
    },
    CheckInvite {
        hash: String,
    },
    GetChannel {
        id: i64,
    },
    GetBasicGroup {
        id: i64,
    },
    GetFullChannel {
        id: i64,
        access_hash: i64,
    },
    Invite {
        channel: ChannelTarget,
        user_id: i64,
        access_hash: i64,
    },
    Message {
        user_id: i64,
        access_hash: i64,
        text: String,
        random_id: i64,
    },
}

#[derive(Debug, Clone, Copy)]
enum ChannelTarget {
    Channel { id: i64, access_hash: i64 },
    Basic { id: i64 },
}

type Answer = Result<Vec<u8>, (i32, String)>;

/// Answers one serialized request for one account, recording it in the world.
pub(crate) async fn answer(world: &WorldHandle, account_id: &str, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let (method, request) = match decode(body) {
        Ok(decoded) => decoded,
        Err(name) => return Err(rpc_error(400, &format!("SANDBOX_METHOD_UNSUPPORTED_{name}"))),
    };
    let now = world.clock.now();
    let burst = world.config.limits.bursts.get(method).copied();
    let call = WorldCallRequest {
        account_id: account_id.to_owned(),
        method: method.to_owned(),
        now,
        method_since: now - Duration::seconds(burst.map_or(0, |b| b.seconds)),
        strangers_since: now - Duration::hours(24),
        channel: channel_ref(world, &request),
        user_id: person_of(world, &request).map(|p| p.user_id),
        random_id: match &request {
            Request::Message { random_id, .. } => Some(*random_id),
            _ => None,
        },
    };
    let reply: Mutex<Option<Answer>> = Mutex::new(None);
    let decide = |view: &WorldView| {
        let (decision, answer) = decide(world, account_id, method, &request, view, now);
        *reply.lock().unwrap_or_else(|e| e.into_inner()) = Some(answer);
        decision
    };
    match world.store.world_call(&call, &decide).await {
        Ok(_) => {}
        // The world could not decide: like a connection lost mid-call, the caller cannot know.
        Err(e) => return Err(WireError::Lost(format!("the sandbox world's store failed: {e}"))),
    }
    match reply.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(Ok(bytes)) => Ok(bytes),
        Some(Err((code, message))) => Err(rpc_error(code, &message)),
        None => Err(WireError::Lost("the sandbox world gave no answer".into())),
    }
}

/// The RPC error as grammers would hand it over (`FLOOD_WAIT_30` → `FLOOD_WAIT`, 30).
fn rpc_error(code: i32, message: &str) -> WireError {
    let e = grammers_mtsender::RpcError::from(tl::types::RpcError {
        error_code: code,
        error_message: message.to_owned(),
    });
    WireError::Rpc {
        code: e.code,
        name: e.name,
        value: e.value,
    }
}

fn decode(body: &[u8]) -> Result<(&'static str, Request), String> {
    fn as_<F: Identifiable + Deserializable>(body: &[u8]) -> Option<F> {
        let id = u32::from_le_bytes(body.get(..4)?.try_into().ok()?);
        (id == F::CONSTRUCTOR_ID)
            .then(|| F::deserialize(&mut Cursor::from_slice(&body[4..])).ok())
            .flatten()
    }
    use tl::functions as f;
    if let Some(r) = as_::<f::contacts::ResolveUsername>(body) {
        return Ok((
            "contacts.resolveUsername",
            Request::ResolveUsername { username: r.username },
        ));
    }
    if let Some(r) = as_::<f::contacts::ImportContacts>(body) {
        if let [tl::enums::InputContact::InputPhoneContact(c)] = r.contacts.as_slice() {
            return Ok((
                "contacts.importContacts",
                Request::ImportContact {
                    client_id: c.client_id,
                    phone: c.phone.clone(),
                },
            ));
        }
        return Err("IMPORT_OF_MORE_THAN_ONE_CONTACT".into());
    }
    if let Some(r) = as_::<f::messages::CheckChatInvite>(body) {
        return Ok(("messages.checkChatInvite", Request::CheckInvite { hash: r.hash }));
    }
    if let Some(r) = as_::<f::channels::GetChannels>(body) {
        if let [tl::enums::InputChannel::Channel(c)] = r.id.as_slice() {
            return Ok(("channels.getChannels", Request::GetChannel { id: c.channel_id }));
        }
    }
    if let Some(r) = as_::<f::messages::GetChats>(body) {
        if let [id] = r.id.as_slice() {
            return Ok(("messages.getChats", Request::GetBasicGroup { id: *id }));
        }
    }
    if let Some(r) = as_::<f::channels::GetFullChannel>(body) {
        if let tl::enums::InputChannel::Channel(c) = r.channel {
            return Ok((
                "channels.getFullChannel",
                Request::GetFullChannel {
                    id: c.channel_id,
                    access_hash: c.access_hash,
                },
            ));
        }
    }
    if let Some(r) = as_::<f::channels::InviteToChannel>(body) {
        if let (tl::enums::InputChannel::Channel(c), [tl::enums::InputUser::User(u)]) = (&r.channel, r.users.as_slice())
        {
            return Ok((
                "channels.inviteToChannel",
                Request::Invite {
                    channel: ChannelTarget::Channel {
                        id: c.channel_id,
                        access_hash: c.access_hash,
                    },
                    user_id: u.user_id,
                    access_hash: u.access_hash,
                },
            ));
        }
    }
    if let Some(r) = as_::<f::messages::AddChatUser>(body) {
        if let tl::enums::InputUser::User(u) = &r.user_id {
            return Ok((
                "messages.addChatUser",
                Request::Invite {
                    channel: ChannelTarget::Basic { id: r.chat_id },
                    user_id: u.user_id,
                    access_hash: u.access_hash,
                },
            ));
        }
    }
    if let Some(r) = as_::<f::messages::SendMessage>(body) {
        if let tl::enums::InputPeer::User(u) = &r.peer {
            return Ok((
                "messages.sendMessage",
                Request::Message {
                    user_id: u.user_id,
                    access_hash: u.access_hash,
                    text: r.message,
                    random_id: r.random_id,
                },
            ));
        }
    }
    let id = body
        .get(..4)
        .map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
    Err(tl::name_for_id(id).replace('.', "_").to_uppercase())
}

/// The kind a chat's username gives it, if it names a chat at all.
fn chat_kind_of_name(name: &str) -> Option<&'static str> {
    let n = name.to_lowercase();
    if n.ends_with("channel") {
        Some("broadcast")
    } else if n.ends_with("group") || n.ends_with("chat") {
        Some("supergroup")
    } else {
        None
    }
}

fn channel_ref(world: &WorldHandle, request: &Request) -> Option<WorldChannelRef> {
    let make = |key: String, kind: &str| WorldChannelRef::Key {
        id: world.people.stable_id(&key),
        title: format!("Sandbox {}", key.trim_start_matches(['@', '+'])),
        key,
        kind: kind.into(),
    };
    match request {
        Request::ResolveUsername { username } => {
            chat_kind_of_name(username).map(|kind| make(format!("@{}", username.to_lowercase()), kind))
        }
        Request::CheckInvite { hash } => Some(make(format!("+{hash}"), "supergroup")),
        Request::GetChannel { id } => Some(WorldChannelRef::Key {
            id: *id,
            key: format!("channel#{id}"),
            kind: "supergroup".into(),
            title: format!("Sandbox supergroup {id}"),
        }),
        Request::GetBasicGroup { id } => Some(WorldChannelRef::Key {
            id: *id,
            key: format!("chat#{id}"),
            kind: "basic_group".into(),
            title: format!("Sandbox group {id}"),
        }),
        Request::GetFullChannel { id, .. } => Some(WorldChannelRef::Id(*id)),
        Request::Invite { channel, .. } => Some(WorldChannelRef::Id(match channel {
            ChannelTarget::Channel { id, .. } | ChannelTarget::Basic { id } => *id,
        })),
        Request::ImportContact { .. } | Request::Message { .. } => None,
    }
}

/// The person a request is about, when there is one.
fn person_of(world: &WorldHandle, request: &Request) -> Option<Person> {
    match request {
        Request::ResolveUsername { username } if chat_kind_of_name(username).is_none() => {
            world.people.by_username(username)
        }
        Request::ImportContact { phone, .. } => world.people.by_phone(phone),
        Request::Invite { user_id, .. } | Request::Message { user_id, .. } => Some(world.people.person(*user_id)),
        _ => None,
    }
}

/// The world's decision on one call, given what it knows under the account's lock.
fn decide(
    world: &WorldHandle,
    account: &str,
    method: &str,
    request: &Request,
    view: &WorldView,
    now: DateTime<Utc>,
) -> (WorldDecision, Answer) {
    let refuse = |code: i32, message: String, contacted_stranger: bool| {
        (
            WorldDecision {
                answer: format!("{code} {message}"),
                effect: WorldEffect::None,
                contacted_stranger,
            },
            Err((code, message)),
        )
    };
    if let Some(b) = world.config.limits.bursts.get(method) {
        if view.method_calls >= b.calls {
            let frees_at = view.oldest_method_call.unwrap_or(now) + Duration::seconds(b.seconds);
            let wait = (frees_at - now).num_seconds().max(1);
            return refuse(420, format!("FLOOD_WAIT_{wait}"), false);
        }
    }
    let approaches_stranger = matches!(request, Request::Invite { .. } | Request::Message { .. });
    if approaches_stranger {
        if view.restricted_until.is_some_and(|until| until > now) {
            return refuse(400, "PEER_FLOOD".into(), false);
        }
        if view.strangers_contacted >= world.config.limits.strangers_per_day {
            let factor = 1 << view.strikes.clamp(0, 2);
            let until = now + Duration::hours(world.config.limits.peer_flood_hours * factor);
            return (
                WorldDecision {
                    answer: "400 PEER_FLOOD".into(),
                    effect: WorldEffect::Restrict { until },
                    contacted_stranger: false,
                },
                Err((400, "PEER_FLOOD".into())),
            );
        }
    }
    let ok = |answer: String, effect: WorldEffect, contacted_stranger: bool, bytes: Vec<u8>| {
        (
            WorldDecision {
                answer,
                effect,
                contacted_stranger,
            },
            Ok(bytes),
        )
    };
    let look = |bytes: Vec<u8>| ok("ok".into(), WorldEffect::None, false, bytes);
    match request {
        Request::ResolveUsername { username } => {
            if Username::parse(username).is_err() {
                return refuse(400, "USERNAME_INVALID".into(), false);
            }
            if let Some(chat) = &view.channel {
                return look(objects::resolved_chat(chat_as_seen(world, account, chat)).to_bytes());
            }
            match world.people.by_username(username) {
                Some(p) => look(objects::resolved_user(user_as_seen(world, account, &p, Some(username))).to_bytes()),
                None => refuse(400, "USERNAME_NOT_OCCUPIED".into(), false),
            }
        }
        Request::ImportContact { client_id, phone } => {
            let found = world.people.by_phone(phone);
            let users = found.iter().map(|p| user_as_seen(world, account, p, None)).collect();
            let imported = found.iter().map(|p| (p.user_id, *client_id)).collect();
            look(objects::imported(imported, vec![], users).to_bytes())
        }
        Request::CheckInvite { hash } => {
            let lower = hash.to_lowercase();
            if lower.starts_with("expired") {
                return refuse(400, "INVITE_HASH_EXPIRED".into(), false);
            }
            let Some(chat) = &view.channel else {
                return refuse(400, "INVITE_HASH_INVALID".into(), false);
            };
            let seen = chat_as_seen(world, account, chat);
            if lower.starts_with("notmember") {
                let invite = objects::chat_invite(&chat.title, members(world, chat) as i32);
                return look(invite.to_bytes());
            }
            look(tl::enums::ChatInvite::Already(tl::types::ChatInviteAlready { chat: seen }).to_bytes())
        }
        Request::GetChannel { .. } | Request::GetBasicGroup { .. } => match &view.channel {
            Some(chat) => look(objects::chats(vec![chat_as_seen(world, account, chat)]).to_bytes()),
            None => refuse(400, "CHANNEL_INVALID".into(), false),
        },
        Request::GetFullChannel { access_hash, .. } => match &view.channel {
            Some(chat) if chat.kind != "basic_group" && *access_hash == world.people.access_hash(account, chat.id) => {
                let full = objects::channel_full(chat.id, members(world, chat) as i32);
                look(objects::full_channel(full).to_bytes())
            }
            _ => refuse(400, "CHANNEL_INVALID".into(), false),
        },
        Request::Invite {
            channel,
            user_id,
            access_hash,
        } => invite(world, account, view, *channel, *user_id, *access_hash, refuse, ok),
        Request::Message {
            user_id,
            access_hash,
            text,
            ..
        } => {
            if *access_hash != world.people.access_hash(account, *user_id) {
                return refuse(400, "PEER_ID_INVALID".into(), false);
            }
            let person = world.people.person(*user_id);
            if person.being == Being::Deactivated {
                return refuse(400, "INPUT_USER_DEACTIVATED".into(), false);
            }
            if view.random_id_used {
                return refuse(400, "RANDOM_ID_DUPLICATE".into(), false);
            }
            match person.on_message {
                OnMessage::NeedsPremium => refuse(403, "PRIVACY_PREMIUM_REQUIRED".into(), true),
                OnMessage::Paid(stars) => refuse(403, format!("ALLOW_PAYMENT_REQUIRED_{stars}"), true),
                OnMessage::Accepts => {
                    let text_sha256 = format!("{:x}", Sha256::digest(text.as_bytes()));
                    let id = (view.method_calls + 1) as i32;
                    ok(
                        "ok".into(),
                        WorldEffect::DeliverMessage { text_sha256 },
                        true,
                        objects::sent_message(id, now.timestamp() as i32).to_bytes(),
                    )
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn invite(
    world: &WorldHandle,
    account: &str,
    view: &WorldView,
    target: ChannelTarget,
    user_id: i64,
    access_hash: i64,
    refuse: impl Fn(i32, String, bool) -> (WorldDecision, Answer),
    ok: impl Fn(String, WorldEffect, bool, Vec<u8>) -> (WorldDecision, Answer),
) -> (WorldDecision, Answer) {
    let basic = matches!(target, ChannelTarget::Basic { .. });
    let missing_chat = if basic { "CHAT_ID_INVALID" } else { "CHANNEL_INVALID" };
    let Some(chat) = view.channel.as_ref().filter(|c| (c.kind == "basic_group") == basic) else {
        return refuse(400, missing_chat.into(), false);
    };
    if let ChannelTarget::Channel { access_hash, .. } = target {
        if access_hash != world.people.access_hash(account, chat.id) {
            return refuse(400, "CHANNEL_INVALID".into(), false);
        }
    }
    if chat.key.contains("readonly") {
        return refuse(403, "CHAT_ADMIN_REQUIRED".into(), false);
    }
    if access_hash != world.people.access_hash(account, user_id) {
        return refuse(400, "USER_ID_INVALID".into(), false);
    }
    let person = world.people.person(user_id);
    match person.being {
        Being::Bot => return refuse(400, "USER_BOT".into(), false),
        Being::Deactivated => return refuse(400, "INPUT_USER_DEACTIVATED".into(), false),
        Being::Person => {}
    }
    if view.is_member {
        return refuse(400, "USER_ALREADY_PARTICIPANT".into(), false);
    }
    if chat.kind == "broadcast" && members(world, chat) >= BROADCAST_ADD_LIMIT {
        return refuse(400, "USERS_TOO_MUCH".into(), false);
    }
    match person.on_invite {
        OnInvite::LeftThemselves => refuse(403, "USER_NOT_MUTUAL_CONTACT".into(), true),
        OnInvite::TooManyChannels => refuse(403, "USER_CHANNELS_TOO_MUCH".into(), true),
        OnInvite::Privacy {
            premium_would_allow,
            premium_required_for_pm,
        } => {
            let flags = match (premium_would_allow, premium_required_for_pm) {
                (false, false) => "",
                (true, false) => " premium_would_allow_invite",
                (false, true) => " premium_required_for_pm",
                (true, true) => " premium_would_allow_invite premium_required_for_pm",
            };
            let answer = objects::invited(vec![(user_id, premium_would_allow, premium_required_for_pm)]);
            ok(
                format!("ok missing_invitees{flags}"),
                WorldEffect::None,
                true,
                answer.to_bytes(),
            )
        }
        OnInvite::Accepts => ok(
            "ok".into(),
            WorldEffect::AddMember,
            true,
            objects::invited(vec![]).to_bytes(),
        ),
    }
}

/// Subscribers: a base from the chat's key, plus everyone accounts added.
fn members(world: &WorldHandle, chat: &WorldChannel) -> i64 {
    base_members(&world.people, &chat.key) + chat.added
}

/// The subscribers a chat has before any account adds anyone (its key: `@username`, `+hash`, …).
pub(super) fn base_members(people: &People, key: &str) -> i64 {
    20 + people.stable_id(&format!("members:{key}")) % 150
}

/// The chat as this account sees it: an admin who may add members, unless the chat is read-only.
fn chat_as_seen(world: &WorldHandle, account: &str, chat: &WorldChannel) -> tl::enums::Chat {
    let readonly = chat.key.contains("readonly");
    let rights = objects::Rights {
        admin_invite: !readonly,
        admin_other: readonly,
        members_may_not_invite: readonly,
        ..objects::Rights::default()
    };
    let count = members(world, chat) as i32;
    match chat.kind.as_str() {
        "basic_group" => objects::basic_group(chat.id, count, rights),
        kind => {
            let c = objects::channel(
                chat.id,
                world.people.access_hash(account, chat.id),
                kind == "broadcast",
                rights,
            );
            objects::with_channel(c, |c| {
                c.title = chat.title.clone();
                c.participants_count = Some(count);
            })
        }
    }
}

/// A person as this account sees them: with this account's access hash.
fn user_as_seen(world: &WorldHandle, account: &str, p: &Person, username: Option<&str>) -> tl::enums::User {
    let u = objects::user(p.user_id, world.people.access_hash(account, p.user_id), username);
    objects::with_user(u, |u| {
        u.bot = p.being == Being::Bot;
        // `bot` and `bot_info_version` share one flag bit: a bot without the version does not parse.
        u.bot_info_version = u.bot.then_some(1);
        u.deleted = p.being == Being::Deactivated;
    })
}
