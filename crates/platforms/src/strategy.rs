//! The interface between the engine and a messenger (spec §4 `InviteStrategy`, in Rust terms).
//!
//! The engine holds an account lease from the Account Manager, opens an [`AccountClient`] for that
//! account, asks the AM for the grant named by each call's [`AmAction`], and only then makes the call.
//! Every call answers with an [`Outcome`] of the shared taxonomy plus the platform's own words for the
//! log, never a string to be matched later.

use account_manager::Policy;
use async_trait::async_trait;
use domain::{
    channel::ChannelRef, identifier::PlatformUserId, outcome::AmAction, outcome::Outcome, phone::Phone, task::Platform,
    username::Username,
};
use sha2::{Digest, Sha256};

/// A messenger: how to act as one of its accounts, and what limits it has.
#[async_trait]
pub trait InviteStrategy: Send + Sync {
    fn platform(&self) -> Platform;

    /// The platform's default limits and pauses (DESIGN §5), which the Account Manager enforces.
    fn rate_limits(&self) -> Policy;

    /// A client for one account, from its stored credentials, with no login flow. A refusal names what
    /// it means for the account (`Outcome::Account`) or is `Transient` (the network).
    async fn connect(&self, account: &AccountCredentials) -> Result<Box<dyn AccountClient>, Report>;
}

/// One live connection of one account, used under that account's lease. Each method makes the
/// platform calls of exactly one AM action, named in its documentation, so the grant comes first.
#[async_trait]
pub trait AccountClient: Send {
    /// How this account can reach a target: already known to it (no call needed), or which lookup it
    /// must make first. Pure: no call is made.
    fn resolution(&self, target: &TargetRef) -> Resolution;

    /// Looks the target up the way [`Self::resolution`] said (`resolve_username` or `import_contact`).
    async fn resolve(&mut self, target: &TargetRef) -> Result<Peer, Report>;

    /// Finds the group or channel and what this account may do there (`channel_lookup`). Invite links
    /// are only looked up, never used to join.
    async fn lookup_channel(&mut self, channel: &ChannelRef) -> Result<ChannelInfo, Report>;

    /// Adds the person to the group or channel (`invite`).
    async fn invite(&mut self, channel: &ChannelInfo, peer: &Peer) -> Report;

    /// Sends a personal message (`message`). The same `key` always makes the same platform message
    /// id, so a repeat by this account cannot deliver twice.
    async fn send_message(&mut self, peer: &Peer, text: &str, key: DeliveryKey) -> Report;

    /// Ends the connection.
    async fn close(self: Box<Self>);
}

/// What the adapter needs to act as an account. `secret` is the session (decrypted only for the call).
#[derive(Clone)]
pub struct AccountCredentials {
    pub account_id: String,
    pub secret: String,
    /// The account's own application id; the service-wide one is used when absent.
    pub api_id: Option<i32>,
}

impl std::fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountCredentials")
            .field("account_id", &self.account_id)
            .field("secret", &"[redacted]")
            .field("api_id", &self.api_id)
            .finish()
    }
}

/// Who to reach, as the audience list names them. Any subset may be known; ids are hints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetRef {
    pub username: Option<Username>,
    pub user_id: Option<PlatformUserId>,
    pub phone: Option<Phone>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// How an account can reach a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The account already holds a handle: no call, no grant.
    Known(Peer),
    /// One call of this action finds them (`ResolveUsername` or `ImportContact`).
    Lookup(AmAction),
    /// This account has no way to reach them (only an id it has never seen).
    Unreachable,
}

/// A person as one account sees them: the handle is valid for that account only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    pub user_id: i64,
    pub access_hash: i64,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// What kind of chat a channel reference turned out to be; the platform's rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// A broadcast channel: admins may add only its first 200 subscribers.
    Broadcast,
    Supergroup,
    /// A basic (small, legacy) group.
    BasicGroup,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Broadcast => "broadcast",
            ChannelKind::Supergroup => "supergroup",
            ChannelKind::BasicGroup => "basic_group",
        }
    }
}

/// A group or channel as one account sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The platform's bare id (no `-100` prefix).
    pub id: i64,
    pub access_hash: i64,
    pub kind: ChannelKind,
    pub title: String,
    pub members: Option<i64>,
    /// This account may add people: it is an admin with the right to invite, or members may invite.
    pub can_invite: bool,
    /// This account is a member.
    pub joined: bool,
}

/// The answer of one platform call: the outcome, and the platform's own words for logs and reports
/// (an RPC error name, a `missing_invitees` flag). Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub outcome: Outcome,
    pub detail: String,
}

impl Report {
    pub fn new(outcome: Outcome, detail: impl Into<String>) -> Self {
        Self {
            outcome,
            detail: detail.into(),
        }
    }
}

/// Names one delivery (a task's message to a target). The platform message id derived from it is the
/// same on every retry, so the platform drops a repeat by the same account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    pub task_id: i64,
    pub target_id: i64,
}

impl DeliveryKey {
    /// A stable, non-zero 64-bit id: the first 8 bytes of SHA-256 over the pair.
    pub fn random_id(self) -> i64 {
        let mut h = Sha256::new();
        h.update(b"invite-service/delivery/v1");
        h.update(self.task_id.to_le_bytes());
        h.update(self.target_id.to_le_bytes());
        let digest = h.finalize();
        let id = i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        if id == 0 {
            1
        } else {
            id
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_key_always_gives_the_same_random_id_and_different_deliveries_differ() {
        let a = DeliveryKey {
            task_id: 7,
            target_id: 42,
        };
        assert_eq!(
            a.random_id(),
            DeliveryKey {
                task_id: 7,
                target_id: 42
            }
            .random_id()
        );
        assert_ne!(
            a.random_id(),
            DeliveryKey {
                task_id: 42,
                target_id: 7
            }
            .random_id()
        );
        assert_ne!(
            a.random_id(),
            DeliveryKey {
                task_id: 7,
                target_id: 43
            }
            .random_id()
        );
        assert_ne!(a.random_id(), 0);
    }

    #[test]
    fn credentials_never_print_the_session() {
        let c = AccountCredentials {
            account_id: "tg-1".into(),
            secret: "1BVtsOKABu2...".into(),
            api_id: Some(1),
        };
        assert!(!format!("{c:?}").contains("1BVts"));
    }
}
