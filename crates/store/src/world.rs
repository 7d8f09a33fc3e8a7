//! What the store keeps for the sandbox world (a simulated Telegram): its channels, memberships, the
//! accounts' restrictions, and the impartial record of every call and every delivery. The world's rules
//! are the sandbox's (`platforms::sandbox`); the store reads what a decision needs under the acting
//! account's lock, asks for the decision, and writes the call, its effect and the record in one
//! transaction — so processes sharing one world see one history, and a process killed mid-call leaves
//! either all of a call or none of it.

use chrono::{DateTime, Utc};

/// A group or channel of the world, made the first time anyone names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldChannel {
    /// The platform's bare id (stable: derived from the key by the world, or the key's own number).
    pub id: i64,
    /// How it was first named: `@name`, `+hash` or `#id`.
    pub key: String,
    /// `broadcast`, `supergroup` or `basic_group`.
    pub kind: String,
    pub title: String,
    /// Members added by accounts (the first-200 rule of broadcast channels counts these).
    pub added: i64,
    pub created_at: DateTime<Utc>,
}

/// The channel a call is about: found by id, or found-or-made by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorldChannelRef {
    Id(i64),
    /// Made with these facts when no channel has this key yet.
    Key {
        id: i64,
        key: String,
        kind: String,
        title: String,
    },
}

/// One call as the world is asked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldCallRequest {
    pub account_id: String,
    /// The TL method, e.g. `channels.inviteToChannel`.
    pub method: String,
    pub now: DateTime<Utc>,
    /// Calls of the same method by the same account since then are counted (flood control).
    pub method_since: DateTime<Utc>,
    /// Strangers contacted by the account since then are counted (spam restriction).
    pub strangers_since: DateTime<Utc>,
    pub channel: Option<WorldChannelRef>,
    /// The person the call is about.
    pub user_id: Option<i64>,
    /// A message's random id (delivery dedup per sending account).
    pub random_id: Option<i64>,
}

/// What the world knows when it decides one call, read under the account's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldView {
    /// Until when the account may not contact strangers (a PEER_FLOOD restriction), and how often it was.
    pub restricted_until: Option<DateTime<Utc>>,
    pub strikes: i64,
    /// Calls of this method by this account since `method_since`, and the oldest of them.
    pub method_calls: i64,
    pub oldest_method_call: Option<DateTime<Utc>>,
    /// Calls that contacted a stranger since `strangers_since`.
    pub strangers_contacted: i64,
    /// The channel, when the call names one that exists or may be made.
    pub channel: Option<WorldChannel>,
    /// The person is a member of that channel.
    pub is_member: bool,
    /// This account already delivered a message with this random id.
    pub random_id_used: bool,
}

/// What the call does to the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorldEffect {
    None,
    /// The person becomes a member of the view's channel (a delivery).
    AddMember,
    /// A message reaches the person (a delivery).
    DeliverMessage {
        text_sha256: String,
    },
    /// The account may not contact strangers until then (its strike count goes up).
    Restrict {
        until: DateTime<Utc>,
    },
}

/// The world's decision about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldDecision {
    /// For the record: `ok`, or the RPC error as `400 USER_PRIVACY_RESTRICTED`.
    pub answer: String,
    pub effect: WorldEffect,
    /// The call reached a person who is not the account's contact (counted for PEER_FLOOD).
    pub contacted_stranger: bool,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldCall {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub account_id: String,
    pub method: String,
    pub channel_id: Option<i64>,
    pub user_id: Option<i64>,
    pub answer: String,
}

/// One recorded delivery: someone was made a member, or a message reached someone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldDelivery {
    pub id: i64,
    pub call_id: i64,
    pub at: DateTime<Utc>,
    pub account_id: String,
    /// `invite` or `message`.
    pub kind: String,
    pub channel_id: Option<i64>,
    pub user_id: i64,
    pub random_id: Option<i64>,
    pub text_sha256: Option<String>,
}
