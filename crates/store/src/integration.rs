//! The Integration Service's accounts, mirrored into the registry (platform profile).
//!
//! The engine reads accounts from the `accounts` table only (the scheduler's states, the worker's sealed
//! session, the Account Manager's ledger and leases all hang on that row), so the Integration Service's
//! list is copied there as accounts of kind `integration` rather than read beside it. A mirrored row is
//! never deleted: its ledger and channel states must survive the account leaving and coming back.

use serde_json::Value;

/// Reasons of blocks the mirror itself sets start with this; only those are lifted when the
/// Integration Service lists the account as usable again. A block the Account Manager set (a dead
/// session) stays until a different session arrives.
pub const INTEGRATION_REASON_PREFIX: &str = "Integration Service: ";

/// One of the user's accounts as the Integration Service lists it now. Secrets arrive sealed.
#[derive(Clone, PartialEq)]
pub struct IntegrationEntry {
    pub id: String,
    pub name: String,
    /// None when the Integration Service lists it as usable; else why not (stored after the prefix).
    pub blocked: Option<String>,
    /// None keeps what is stored (the answer came from a cache that holds no secrets).
    pub session_sealed: Option<String>,
    pub api_id: Option<i32>,
    pub api_hash_sealed: Option<String>,
    /// What may be shown of the session; None keeps what is stored.
    pub session_facts: Option<Value>,
}

impl std::fmt::Debug for IntegrationEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationEntry")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("blocked", &self.blocked)
            .field("session_sealed", &self.session_sealed.as_ref().map(|_| "[sealed]"))
            .field("api_id", &self.api_id)
            .field("api_hash_sealed", &self.api_hash_sealed.as_ref().map(|_| "[sealed]"))
            .field("session_facts", &self.session_facts)
            .finish()
    }
}

/// What one mirroring changed, by account id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationSync {
    pub added: Vec<String>,
    /// Listed as usable and already mirrored: name and secrets refreshed.
    pub refreshed: Vec<String>,
    /// Blocked by an earlier mirroring (or with a session since replaced), usable again.
    pub reactivated: Vec<String>,
    /// Blocked now: the Integration Service blocked it, or no longer lists it.
    pub blocked: Vec<String>,
    /// The id is taken by another user's account or by an account not of the Integration Service.
    pub refused: Vec<String>,
}

/// A mirrored row as the mirroring reads it before deciding.
pub(crate) struct Mirrored {
    pub id: String,
    pub blocked: bool,
    pub reason: Option<String>,
    pub facts: Value,
}

/// A mirror block keeps the row's `status_until`: when the account comes back before a rest or
/// restriction of the Account Manager ran out, it comes back resting until then (never earlier).
pub(crate) const REST_KEPT_REASON: &str = "rest kept from before the Integration Service stopped listing it";

/// What to do with each row, decided the same way on both backends.
pub(crate) enum Step<'a> {
    Insert(&'a IntegrationEntry),
    Refresh {
        entry: &'a IntegrationEntry,
        reactivate: bool,
    },
    Block {
        id: &'a str,
        reason: String,
    },
}

/// The steps that bring the mirrored rows in line with `entries`.
pub(crate) fn plan<'a>(entries: &'a [IntegrationEntry], mirrored: &'a [Mirrored]) -> Vec<Step<'a>> {
    let mut steps = Vec::new();
    for entry in entries {
        let existing = mirrored.iter().find(|m| m.id == entry.id);
        match (&entry.blocked, existing) {
            (None, None) => steps.push(Step::Insert(entry)),
            (None, Some(m)) => {
                let by_mirror = m
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with(INTEGRATION_REASON_PREFIX));
                // A new session is a new auth key; a moved server address is the same session.
                let key = |facts: &Value| facts.get("auth_key_id").cloned();
                let new_session = entry
                    .session_facts
                    .as_ref()
                    .is_some_and(|f| key(f).is_some() && key(f) != key(&m.facts));
                steps.push(Step::Refresh {
                    entry,
                    reactivate: m.blocked && (by_mirror || new_session),
                });
            }
            (Some(why), Some(m)) if !m.blocked => steps.push(Step::Block {
                id: &m.id,
                reason: format!("{INTEGRATION_REASON_PREFIX}{why}"),
            }),
            // Blocked already (its own reason stays), or never mirrored: nothing to keep from it.
            (Some(_), _) => {}
        }
    }
    for m in mirrored {
        if !m.blocked && !entries.iter().any(|e| e.id == m.id) {
            steps.push(Step::Block {
                id: &m.id,
                reason: format!("{INTEGRATION_REASON_PREFIX}no longer listed as active"),
            });
        }
    }
    steps
}
