//! What can go wrong talking to Vault. Every message names what was being done and where, and never a
//! token, a secret id or a secret's value: the texts are built only from addresses, paths, key names,
//! status codes and Vault's own error strings with every known secret scrubbed out.

use thiserror::Error;

#[derive(Debug, Clone, Error)]
pub enum VaultError {
    #[error("cannot reach Vault at {addr} (VAULT_ADDR) to {action}: {cause}")]
    Unreachable {
        addr: String,
        action: &'static str,
        cause: String,
    },
    #[error("Vault at {addr} (VAULT_ADDR) answered {status} to {action}: {detail}")]
    Unavailable {
        addr: String,
        action: &'static str,
        status: u16,
        detail: String,
    },
    #[error("Vault refused to {action} ({status}: {detail}){hint}")]
    Refused {
        action: &'static str,
        status: u16,
        detail: String,
        hint: &'static str,
    },
    #[error("Vault's answer to {action} is not what its API documents: {detail}")]
    BadAnswer { action: &'static str, detail: String },
    #[error("Vault holds no secret at {location} (KV v2)")]
    NoSecret { location: String },
    #[error("the Vault secret at {location} has no key {key:?}")]
    NoKey { location: String, key: String },
    #[error("the Vault secret at {location}, key {key:?}, {expected}")]
    BadValue {
        location: String,
        key: String,
        expected: &'static str,
    },
    #[error("account id {0:?} cannot be part of a Vault path: only letters, digits, '-', '_' and '.' are allowed")]
    BadAccountId(String),
}

impl VaultError {
    /// What went wrong in a few words, without where: what the unauthenticated health endpoint shows
    /// (the full text, with Vault's address and paths, goes to the log).
    pub fn summary(&self) -> String {
        match self {
            Self::Unreachable { action, .. } => format!("cannot reach Vault to {action}"),
            Self::Unavailable { action, status, .. } => format!("Vault answered {status} to {action}"),
            Self::Refused { action, status, .. } => format!("Vault refused to {action} ({status})"),
            Self::BadAnswer { action, .. } => format!("Vault's answer to {action} is not what its API documents"),
            Self::NoSecret { .. } | Self::NoKey { .. } | Self::BadValue { .. } | Self::BadAccountId(_) => {
                "a secret Vault holds is missing or malformed".to_owned()
            }
        }
    }

    /// Vault could not answer (down, sealed, overloaded): cached secrets may still be served.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Unavailable { .. })
    }

    /// Vault answered that the token (or the login) is not good: a new login may help.
    pub(super) fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Refused {
                status: 400 | 401 | 403,
                ..
            }
        )
    }
}
