//! What the store keeps for the Account Manager: accounts, their standing, channel states and the
//! ledger of grants. The decisions themselves are the Account Manager's; the store reads the ledger
//! under a per-account lock, asks for the decision, and writes the grant before returning it.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

/// An account's standing, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Active,
    Resting { until: DateTime<Utc>, reason: String },
    Restricted { until: DateTime<Utc>, reason: String },
    Blocked { reason: String },
}

impl Standing {
    pub fn status(&self) -> &'static str {
        match self {
            Standing::Active => "active",
            Standing::Resting { .. } => "resting",
            Standing::Restricted { .. } => "restricted",
            Standing::Blocked { .. } => "blocked",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Standing::Active => None,
            Standing::Resting { reason, .. } | Standing::Restricted { reason, .. } | Standing::Blocked { reason } => {
                Some(reason)
            }
        }
    }

    pub fn until(&self) -> Option<DateTime<Utc>> {
        match self {
            Standing::Resting { until, .. } | Standing::Restricted { until, .. } => Some(*until),
            _ => None,
        }
    }

    pub(crate) fn from_columns(
        status: &str,
        reason: Option<String>,
        until: Option<DateTime<Utc>>,
    ) -> crate::Result<Standing> {
        let reason = reason.unwrap_or_default();
        let bad = || crate::StoreError::Corrupt(format!("account status {status:?} without its time"));
        Ok(match status {
            "active" => Standing::Active,
            "resting" => Standing::Resting {
                until: until.ok_or_else(bad)?,
                reason,
            },
            "restricted" => Standing::Restricted {
                until: until.ok_or_else(bad)?,
                reason,
            },
            "blocked" => Standing::Blocked { reason },
            other => return Err(crate::StoreError::Corrupt(format!("account status {other:?}"))),
        })
    }
}

/// What the ledger says about one (account, action, channel) at the moment of asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub standing: Standing,
    /// This account may not act in this channel (no rights, lifetime cap reached).
    pub channel_closed: Option<String>,
    /// The channel takes no one from anyone (a full broadcast channel, a channel that is gone).
    pub channel_gone: Option<String>,
    /// The end of the pause after the account's last grant of this action.
    pub pause_until: Option<DateTime<Utc>>,
    /// Times of consumed grants of this action by this account within the lookback, oldest first.
    pub account_grants: Vec<DateTime<Utc>>,
    /// The same within this channel.
    pub channel_grants: Vec<DateTime<Utc>>,
    /// Consumed grants of this action by this account in this channel, ever.
    pub channel_lifetime: u64,
}

/// The Account Manager's answer, as the store acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Grant {
        pause_until: DateTime<Utc>,
    },
    /// Not now: ask again at `until`.
    Wait {
        until: DateTime<Utc>,
        reason: String,
    },
    /// No. `permanent`: never for this account (and channel); `close_channel`: remember it for the channel.
    Deny {
        reason: String,
        permanent: bool,
        close_channel: bool,
    },
}

/// One request for a grant.
#[derive(Debug, Clone)]
pub struct GrantRequest<'a> {
    pub account_id: &'a str,
    pub action: &'a str,
    pub channel: Option<&'a str>,
    pub now: DateTime<Utc>,
    /// How far back the ledger is read (the longest rolling window).
    pub lookback: Duration,
}

/// One (action, channel) whose ledger is asked for, without taking anything.
#[derive(Debug, Clone, Copy)]
pub struct LedgerAsk<'a> {
    pub action: &'a str,
    pub channel: Option<&'a str>,
    /// How far back the ledger is read (the action's longest rolling window).
    pub lookback: Duration,
}

/// An account's whole ledger as one read brings it, from which the [`Ledger`] of each asked (action,
/// channel) is cut: one read answers every channel an account could act in.
#[derive(Debug, Clone)]
pub(crate) struct LedgerRows {
    pub standing: Standing,
    /// The latest pause end per action.
    pub pauses: Vec<(String, DateTime<Utc>)>,
    /// Consumed grants within the longest lookback asked: action, channel, time; oldest first.
    pub grants: Vec<(String, Option<String>, DateTime<Utc>)>,
    /// Consumed grants ever, per action and channel.
    pub lifetime: Vec<(String, String, i64)>,
    /// Channels this account may not act in, with the reason.
    pub closed: Vec<(String, String)>,
    /// Channels of the account's platform that take no one, with the reason.
    pub gone: Vec<(String, String)>,
}

impl LedgerRows {
    pub(crate) fn ledgers(&self, now: DateTime<Utc>, asks: &[LedgerAsk<'_>]) -> Vec<Ledger> {
        asks.iter()
            .map(|ask| {
                let since = now - ask.lookback;
                let recent = self
                    .grants
                    .iter()
                    .filter(|(action, _, at)| action == ask.action && *at > since);
                let in_channel = |channel: &Option<String>| ask.channel.is_some() && channel.as_deref() == ask.channel;
                let find = |rows: &[(String, String)]| {
                    ask.channel
                        .and_then(|c| rows.iter().find(|(channel, _)| channel == c).map(|(_, r)| r.clone()))
                };
                Ledger {
                    standing: self.standing.clone(),
                    channel_closed: find(&self.closed),
                    channel_gone: find(&self.gone),
                    pause_until: self
                        .pauses
                        .iter()
                        .find(|(action, _)| action == ask.action)
                        .map(|(_, t)| *t),
                    account_grants: recent.clone().map(|(_, _, at)| *at).collect(),
                    channel_grants: recent.filter(|(_, c, _)| in_channel(c)).map(|(_, _, at)| *at).collect(),
                    channel_lifetime: self
                        .lifetime
                        .iter()
                        .find(|(action, channel, _)| action == ask.action && Some(channel.as_str()) == ask.channel)
                        .map_or(0, |(_, _, n)| *n as u64),
                }
            })
            .collect()
    }
}

/// What the store did with the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Written to the ledger before this returns.
    Granted {
        grant_id: i64,
        pause_until: DateTime<Utc>,
    },
    Wait {
        until: DateTime<Utc>,
        reason: String,
    },
    Denied {
        reason: String,
        permanent: bool,
    },
    NoSuchAccount,
}

/// Where an account's sessions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// Registered through this service with a session, sealed at rest.
    Session,
    /// Bound to a simulated account of the sandbox world.
    Sandbox,
    /// Mirrored from the platform's Integration Service, its session sealed at rest like `Session`'s.
    Integration,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Session => "session",
            AccountKind::Sandbox => "sandbox",
            AccountKind::Integration => "integration",
        }
    }

    pub(crate) fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "session" => Ok(AccountKind::Session),
            "sandbox" => Ok(AccountKind::Sandbox),
            "integration" => Ok(AccountKind::Integration),
            other => Err(crate::StoreError::Corrupt(format!("account kind {other:?}"))),
        }
    }
}

/// A new account of the local registry. Secrets arrive sealed.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: String,
    pub platform: String,
    pub name: String,
    pub kind: AccountKind,
    pub session_sealed: Option<String>,
    pub api_id: Option<i32>,
    pub api_hash_sealed: Option<String>,
    /// What may be shown of the session (DC, address, port, auth key id).
    pub session_facts: Value,
}

/// What a worker needs to act as an account: its kind and its sealed session. Never shown.
#[derive(Clone, PartialEq)]
pub struct AccountSecrets {
    pub user_id: i64,
    pub kind: AccountKind,
    pub session_sealed: Option<String>,
    pub api_id: Option<i32>,
}

impl std::fmt::Debug for AccountSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSecrets")
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("session_sealed", &self.session_sealed.as_ref().map(|_| "[sealed]"))
            .field("api_id", &self.api_id)
            .finish()
    }
}

/// A stored account, without its secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRecord {
    pub id: String,
    pub user_id: i64,
    pub platform: String,
    pub name: String,
    pub kind: AccountKind,
    pub standing: Standing,
    pub peer_flood_strikes: i64,
    pub api_id: Option<i32>,
    pub session_facts: Value,
    pub lease_until: Option<DateTime<Utc>>,
    /// Bumped by every lease. The ledger of an account is written only under its lease, so while the
    /// epoch (and the standing) stays the same, so does what the ledger allows.
    pub lease_epoch: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What the scheduler reads of every account each time it looks: whether it may act, whether it is at
/// work, and whether its ledger may have changed since the last look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub id: String,
    pub platform: String,
    pub standing: Standing,
    pub lease_until: Option<DateTime<Utc>>,
    pub lease_epoch: i64,
}

/// Grants of one action (and channel) counted since a time, for usage reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub action: String,
    pub channel: Option<String>,
    pub count: i64,
}

/// A per-channel fact about an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelState {
    pub channel: String,
    pub state: String,
    pub reason: Option<String>,
}
