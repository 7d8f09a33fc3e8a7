//! The sandbox world: a simulated Telegram for trying campaigns without a real account and without
//! risk, and for auditing the engine. It sits beneath the Telegram adapter as a second carrier
//! ([`Dialer`]): the adapter sends it the same serialized TL requests it sends Telegram and reads its
//! answers and RPC errors the same way, so the sandbox cannot drift from the real adapter.
//!
//! Its state — channels, memberships, restrictions and the record of every call and delivery — lives
//! in the store, so several processes share one world and a process killed mid-call loses nothing of
//! it. People are derived from their names and the seed ([`people`]).

pub mod audit;
pub mod objects;
pub mod people;
mod rules;

pub use rules::BROADCAST_ADD_LIMIT;

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use clock::SharedClock;
use serde::{Deserialize, Serialize};
use store::SharedStore;

use crate::{
    strategy::{AccountCredentials, Report},
    telegram::wire::{Dialer, Wire, WireError},
};
use people::{People, PeopleMix};

/// The world's configuration: its seed, its people and how it polices accounts. Read from JSON
/// (`INVITE_SANDBOX_WORLD`); every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldConfig {
    pub seed: u64,
    pub people: PeopleMix,
    pub limits: WorldLimits,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            people: PeopleMix::default(),
            limits: WorldLimits::default(),
        }
    }
}

impl WorldConfig {
    /// Reads JSON over the defaults; an unknown field or an impossible mix is refused by name.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let config: WorldConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        config.people.check()?;
        config.limits.check()?;
        Ok(config)
    }
}

/// How the world polices accounts, set to resemble Telegram rather than this service's own policy:
/// bursts of one method draw a flood wait until the burst's window has passed; contacting many
/// strangers in a day draws `PEER_FLOOD`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldLimits {
    /// Per TL method: at most `calls` in any `seconds`.
    pub bursts: BTreeMap<String, Burst>,
    /// Strangers (people who are not the account's contacts) an account may approach in 24 hours
    /// before it is restricted.
    pub strangers_per_day: i64,
    /// How long the first restriction lasts; each repeat doubles it, up to four times as long.
    pub peer_flood_hours: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    pub calls: i64,
    pub seconds: i64,
}

impl Default for WorldLimits {
    fn default() -> Self {
        let burst = |calls, seconds| Burst { calls, seconds };
        Self {
            bursts: BTreeMap::from([
                ("channels.inviteToChannel".into(), burst(10, 300)),
                ("messages.addChatUser".into(), burst(10, 300)),
                ("messages.sendMessage".into(), burst(20, 300)),
                ("contacts.resolveUsername".into(), burst(100, 3600)),
                ("contacts.importContacts".into(), burst(60, 3600)),
                ("messages.checkChatInvite".into(), burst(30, 60)),
                ("channels.getChannels".into(), burst(30, 60)),
                ("messages.getChats".into(), burst(30, 60)),
                ("channels.getFullChannel".into(), burst(30, 60)),
            ]),
            strangers_per_day: 50,
            peer_flood_hours: 48,
        }
    }
}

impl WorldLimits {
    fn check(&self) -> Result<(), String> {
        if let Some((m, b)) = self.bursts.iter().find(|(_, b)| b.calls < 1 || b.seconds < 1) {
            return Err(format!(
                "limits.bursts.{m}: calls and seconds must be positive, got {b:?}"
            ));
        }
        if self.strangers_per_day < 1 || self.peer_flood_hours < 1 {
            return Err("limits.strangers_per_day and limits.peer_flood_hours must be positive".into());
        }
        Ok(())
    }
}

/// One world, over one store.
pub struct SandboxWorld {
    handle: Arc<WorldHandle>,
}

impl SandboxWorld {
    pub fn new(store: SharedStore, clock: SharedClock, config: WorldConfig) -> Arc<Self> {
        let people = People::new(config.seed, config.people.clone());
        Arc::new(Self {
            handle: Arc::new(WorldHandle {
                store,
                clock,
                config,
                people,
            }),
        })
    }

    pub fn people(&self) -> &People {
        &self.handle.people
    }

    pub fn config(&self) -> &WorldConfig {
        &self.handle.config
    }

    /// The subscribers the chat of this username has before any account adds anyone: part of how the
    /// world is set up, so a broadcast channel's room (`BROADCAST_ADD_LIMIT` minus this) is known
    /// before a campaign starts.
    pub fn base_members(&self, username: &str) -> i64 {
        rules::base_members(&self.handle.people, &chat_key(username))
    }

    /// The id of the chat of this username (as the world's record names it).
    pub fn chat_id(&self, username: &str) -> i64 {
        self.handle.people.stable_id(&chat_key(username))
    }
}

fn chat_key(username: &str) -> String {
    format!("@{}", username.trim_start_matches('@').to_lowercase())
}

#[async_trait]
impl Dialer for SandboxWorld {
    /// A sandbox account is the world's account of the same id; there is no session to check.
    async fn dial(&self, account: &AccountCredentials) -> Result<Box<dyn Wire>, Report> {
        Ok(Box::new(SandboxWire {
            world: Arc::clone(&self.handle),
            account_id: account.account_id.clone(),
        }))
    }
}

/// What the rules need of the world.
pub(crate) struct WorldHandle {
    pub store: SharedStore,
    pub clock: SharedClock,
    pub config: WorldConfig,
    pub people: People,
}

struct SandboxWire {
    world: Arc<WorldHandle>,
    account_id: String,
}

#[async_trait]
impl Wire for SandboxWire {
    async fn call(&mut self, body: Vec<u8>) -> Result<Vec<u8>, WireError> {
        rules::answer(&self.world, &self.account_id, &body).await
    }

    fn is_broken(&self) -> bool {
        false
    }

    async fn close(self: Box<Self>) {}
}
