//! The Telegram adapter: MTProto through grammers (pinned `=0.11.0`, TL layer 230), from an auth key
//! and home data centre with no login flow.

mod connection;
pub mod errors;
mod peers;
pub mod results;
pub mod wire;

use std::{sync::Arc, time::Duration};

use account_manager::Policy;
use async_trait::async_trait;
use domain::{
    channel::ChannelRef,
    outcome::{AmAction, Outcome},
    task::Platform,
};
use grammers_tl_types::{self as tl, Deserializable};

use self::{
    connection::MtprotoDialer,
    errors::Call,
    peers::PeerCache,
    wire::{Dialer, Wire, WireError},
};
use crate::strategy::{
    AccountClient, AccountCredentials, ChannelInfo, ChannelKind, DeliveryKey, InviteStrategy, Peer, Report, Resolution,
    TargetRef,
};

/// How many earlier messages a person added to a basic group sees (what the official apps use).
const BASIC_GROUP_FORWARD_LIMIT: i32 = 100;

/// The Bot API writes channel ids as `-100…`; the raw API uses the bare id.
const MARKED_CHANNEL_OFFSET: i64 = 1_000_000_000_000;

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// The service-wide application id, used for accounts registered without their own.
    pub api_id: Option<i32>,
    /// The deadline of one call; the AM's lease must outlast a few of them.
    pub call_timeout: Duration,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            api_id: None,
            call_timeout: Duration::from_secs(30),
        }
    }
}

/// The Telegram adapter over a carrier: real Telegram ([`TelegramStrategy::new`]) or any other
/// [`Dialer`], such as the sandbox world.
pub struct TelegramStrategy {
    dialer: Arc<dyn Dialer>,
    peers: Arc<PeerCache>,
}

impl TelegramStrategy {
    /// Telegram itself, over MTProto.
    pub fn new(config: TelegramConfig) -> Self {
        Self::over(Arc::new(MtprotoDialer {
            api_id: config.api_id,
            timeout: config.call_timeout,
        }))
    }

    /// The same adapter over another carrier.
    pub fn over(dialer: Arc<dyn Dialer>) -> Self {
        Self {
            dialer,
            peers: Arc::default(),
        }
    }
}

#[async_trait]
impl InviteStrategy for TelegramStrategy {
    fn platform(&self) -> Platform {
        Platform::Telegram
    }

    fn rate_limits(&self) -> Policy {
        Policy::default()
    }

    async fn connect(&self, account: &AccountCredentials) -> Result<Box<dyn AccountClient>, Report> {
        let wire = self.dialer.dial(account).await?;
        Ok(Box::new(TelegramClient {
            account: account.clone(),
            dialer: Arc::clone(&self.dialer),
            wire: Some(wire),
            peers: Arc::clone(&self.peers),
        }))
    }
}

struct TelegramClient {
    account: AccountCredentials,
    dialer: Arc<dyn Dialer>,
    wire: Option<Box<dyn Wire>>,
    peers: Arc<PeerCache>,
}

impl TelegramClient {
    /// The live carrier; one that lost a request is replaced (the lease still makes it the only one).
    async fn wire(&mut self) -> Result<&mut Box<dyn Wire>, Report> {
        if self.wire.as_ref().is_some_and(|w| w.is_broken()) {
            if let Some(old) = self.wire.take() {
                old.close().await;
            }
        }
        if self.wire.is_none() {
            self.wire = Some(self.dialer.dial(&self.account).await?);
        }
        Ok(self.wire.as_mut().expect("just dialled"))
    }

    /// One request, its answer or error read for this kind of call: an RPC error by
    /// [`errors::classify`], a lost or unreadable answer as "maybe done" ([`errors::maybe_done`]).
    async fn invoke<R: tl::RemoteCall + Sync>(&mut self, call: Call, request: &R) -> Result<R::Return, Report> {
        let body = request.to_bytes();
        let result = match self.wire().await?.call(body).await {
            Ok(bytes) => R::Return::from_bytes(&bytes)
                .map_err(|e| Report::new(errors::maybe_done(call), format!("unreadable answer: {e}"))),
            Err(WireError::Rpc { code, name, value }) => {
                let outcome = errors::classify(call, code, &name, value);
                let value = value.map(|v| format!(" ({v})")).unwrap_or_default();
                Err(Report::new(outcome, format!("rpc {code} {name}{value}")))
            }
            Err(WireError::Refused(report)) => Err(report),
            Err(WireError::Lost(detail)) => Err(Report::new(errors::maybe_done(call), detail)),
        };
        if let Err(r) = &result {
            tracing::info!(
                account_id = %self.account.account_id,
                ?call,
                outcome = r.outcome.as_str(),
                detail = r.detail,
                "Telegram: call refused"
            );
        }
        result
    }

    fn remember(&self, users: &[tl::enums::User]) {
        self.peers.remember(&self.account.account_id, results::users_in(users));
    }

    async fn resolve_username(&mut self, username: &str) -> Result<Peer, Report> {
        let request = tl::functions::contacts::ResolveUsername {
            username: username.to_owned(),
            referer: None,
        };
        let answer = self.invoke(Call::ResolveUsername, &request).await?;
        let tl::enums::contacts::ResolvedPeer::Peer(r) = &answer;
        self.remember(&r.users);
        results::resolved_person(&answer)
    }

    async fn import_contact(&mut self, target: &TargetRef, phone: &str) -> Result<Peer, Report> {
        // `client_id`s must be unique within one call; there is one contact per call.
        let client_id = 1;
        let request = tl::functions::contacts::ImportContacts {
            contacts: vec![tl::enums::InputContact::InputPhoneContact(
                tl::types::InputPhoneContact {
                    client_id,
                    phone: phone.to_owned(),
                    first_name: target.first_name.clone().unwrap_or_default(),
                    last_name: target.last_name.clone().unwrap_or_default(),
                    note: None,
                },
            )],
        };
        let answer = self.invoke(Call::ImportContact, &request).await?;
        let tl::enums::contacts::ImportedContacts::Contacts(r) = &answer;
        self.remember(&r.users);
        results::imported_contact(&answer, client_id)
    }

    /// The chat object a channel reference names, by the one lookup call that fits it.
    async fn find_chat(&mut self, channel: &ChannelRef) -> Result<tl::enums::Chat, Report> {
        match channel {
            ChannelRef::Username(name) => {
                let request = tl::functions::contacts::ResolveUsername {
                    username: name.as_str().to_owned(),
                    referer: None,
                };
                let answer = self.invoke(Call::ChannelLookup, &request).await?;
                results::resolved_chat(&answer).cloned()
            }
            ChannelRef::InviteLink(hash) => {
                // Only looked up: `messages.importChatInvite` (joining) is never sent.
                let request = tl::functions::messages::CheckChatInvite { hash: hash.clone() };
                let answer = self.invoke(Call::ChannelLookup, &request).await?;
                results::chat_of_invite(&answer).cloned()
            }
            ChannelRef::Id(id) => {
                let chats = match chat_id(*id) {
                    ChatId::Channel(channel_id) => {
                        let request = tl::functions::channels::GetChannels {
                            id: vec![tl::enums::InputChannel::Channel(tl::types::InputChannel {
                                channel_id,
                                access_hash: 0,
                            })],
                        };
                        self.invoke(Call::ChannelLookup, &request).await?
                    }
                    ChatId::Basic(chat_id) => {
                        let request = tl::functions::messages::GetChats { id: vec![chat_id] };
                        self.invoke(Call::ChannelLookup, &request).await?
                    }
                };
                let chats = match chats {
                    tl::enums::messages::Chats::Chats(c) => c.chats,
                    tl::enums::messages::Chats::Slice(c) => c.chats,
                };
                chats.into_iter().next().ok_or_else(|| {
                    Report::new(
                        Outcome::Channel(domain::outcome::ChannelProblem::NotFound),
                        "no chat with this id is visible to this account",
                    )
                })
            }
        }
    }
}

enum ChatId {
    Channel(i64),
    Basic(i64),
}

/// A Bot API id (`-100…` channel, negative basic group) or a bare id (taken as a channel's).
fn chat_id(id: i64) -> ChatId {
    if id <= -MARKED_CHANNEL_OFFSET {
        ChatId::Channel(-id - MARKED_CHANNEL_OFFSET)
    } else if id < 0 {
        ChatId::Basic(-id)
    } else {
        ChatId::Channel(id)
    }
}

#[async_trait]
impl AccountClient for TelegramClient {
    fn resolution(&self, target: &TargetRef) -> Resolution {
        let known = target
            .user_id
            .and_then(|id| self.peers.by_id(&self.account.account_id, id.get()))
            .or_else(|| {
                target
                    .username
                    .as_ref()
                    .and_then(|u| self.peers.by_username(&self.account.account_id, u.as_str()))
            });
        match known {
            Some(peer) => Resolution::Known(peer),
            None if target.username.is_some() => Resolution::Lookup(AmAction::ResolveUsername),
            None if target.phone.is_some() => Resolution::Lookup(AmAction::ImportContact),
            None => Resolution::Unreachable,
        }
    }

    async fn resolve(&mut self, target: &TargetRef) -> Result<Peer, Report> {
        match self.resolution(target) {
            Resolution::Known(peer) => Ok(peer),
            Resolution::Lookup(AmAction::ResolveUsername) => {
                let username = target.username.as_ref().expect("a username lookup has a username");
                self.resolve_username(username.as_str()).await
            }
            Resolution::Lookup(_) => {
                let phone = target.phone.as_ref().expect("a contact lookup has a phone");
                self.import_contact(target, phone.as_str()).await
            }
            Resolution::Unreachable => Err(Report::new(
                Outcome::Target(domain::outcome::TargetProblem::NotFound),
                "only a numeric id this account has never seen: it has no handle for the person",
            )),
        }
    }

    async fn lookup_channel(&mut self, channel: &ChannelRef) -> Result<ChannelInfo, Report> {
        let chat = self.find_chat(channel).await?;
        let mut info = results::channel_info(&chat)?;
        if info.members.is_none() && info.kind != ChannelKind::BasicGroup {
            let request = tl::functions::channels::GetFullChannel {
                channel: input_channel(&info),
            };
            let full = self.invoke(Call::ChannelLookup, &request).await?;
            info.members = results::members_of(&full);
        }
        Ok(info)
    }

    async fn invite(&mut self, channel: &ChannelInfo, peer: &Peer) -> Report {
        let user = input_user(peer);
        let answer = match channel.kind {
            ChannelKind::Broadcast | ChannelKind::Supergroup => {
                let request = tl::functions::channels::InviteToChannel {
                    channel: input_channel(channel),
                    users: vec![user],
                };
                self.invoke(Call::Invite, &request).await
            }
            ChannelKind::BasicGroup => {
                let request = tl::functions::messages::AddChatUser {
                    chat_id: channel.id,
                    user_id: user,
                    fwd_limit: BASIC_GROUP_FORWARD_LIMIT,
                };
                self.invoke(Call::Invite, &request).await
            }
        };
        match answer {
            Ok(invited) => results::invited(&invited, peer.user_id),
            Err(report) => report,
        }
    }

    async fn send_message(&mut self, peer: &Peer, text: &str, key: DeliveryKey) -> Report {
        let request = tl::functions::messages::SendMessage {
            no_webpage: false,
            silent: false,
            background: false,
            clear_draft: false,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            allow_paid_floodskip: false,
            peer: tl::enums::InputPeer::User(tl::types::InputPeerUser {
                user_id: peer.user_id,
                access_hash: peer.access_hash,
            }),
            reply_to: None,
            message: text.to_owned(),
            random_id: key.random_id(),
            reply_markup: None,
            entities: None,
            schedule_date: None,
            schedule_repeat_period: None,
            send_as: None,
            quick_reply_shortcut: None,
            effect: None,
            allow_paid_stars: None,
            suggested_post: None,
            rich_message: None,
        };
        match self.invoke(Call::Message, &request).await {
            Ok(_) => Report::new(Outcome::Success, "sent"),
            Err(report) => report,
        }
    }

    async fn close(mut self: Box<Self>) {
        if let Some(wire) = self.wire.take() {
            wire.close().await;
        }
    }
}

fn input_channel(c: &ChannelInfo) -> tl::enums::InputChannel {
    tl::enums::InputChannel::Channel(tl::types::InputChannel {
        channel_id: c.id,
        access_hash: c.access_hash,
    })
}

fn input_user(p: &Peer) -> tl::enums::InputUser {
    tl::enums::InputUser::User(tl::types::InputUser {
        user_id: p.user_id,
        access_hash: p.access_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_api_ids_become_raw_ids() {
        assert!(matches!(chat_id(-1001234567890), ChatId::Channel(1234567890)));
        assert!(matches!(chat_id(-4567), ChatId::Basic(4567)));
        assert!(matches!(chat_id(1234567890), ChatId::Channel(1234567890)));
    }
}
