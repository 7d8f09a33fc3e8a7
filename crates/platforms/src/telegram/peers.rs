//! The people each account has already seen, so a username is resolved once per account and a numeric
//! id is usable when the account knows the person. Access hashes belong to one account: the cache is
//! keyed by account and never shared between accounts.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use crate::strategy::Peer;

/// Entries kept per account; past it the account's cache starts again (a cache, not a record).
const PER_ACCOUNT_CAP: usize = 100_000;

#[derive(Default)]
pub struct PeerCache {
    accounts: Mutex<HashMap<String, Known>>,
}

#[derive(Default)]
struct Known {
    by_id: HashMap<i64, Peer>,
    by_username: HashMap<String, i64>,
}

impl PeerCache {
    pub fn by_username(&self, account: &str, username: &str) -> Option<Peer> {
        let accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        let known = accounts.get(account)?;
        let id = known.by_username.get(&username.to_lowercase())?;
        known.by_id.get(id).cloned()
    }

    pub fn by_id(&self, account: &str, user_id: i64) -> Option<Peer> {
        let accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        accounts.get(account)?.by_id.get(&user_id).cloned()
    }

    pub fn remember(&self, account: &str, peers: impl IntoIterator<Item = Peer>) {
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        let known = accounts.entry(account.to_owned()).or_default();
        for peer in peers {
            if known.by_id.len() >= PER_ACCOUNT_CAP {
                *known = Known::default();
            }
            if let Some(u) = &peer.username {
                known.by_username.insert(u.to_lowercase(), peer.user_id);
            }
            known.by_id.insert(peer.user_id, peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: i64, username: &str) -> Peer {
        Peer {
            user_id: id,
            access_hash: id * 10,
            username: Some(username.into()),
            first_name: None,
            last_name: None,
        }
    }

    #[test]
    fn one_account_never_sees_another_accounts_handles() {
        let cache = PeerCache::default();
        cache.remember("a", [peer(1, "Alice")]);
        assert_eq!(cache.by_username("a", "alice").unwrap().access_hash, 10);
        assert_eq!(cache.by_id("a", 1).unwrap().user_id, 1);
        assert!(cache.by_username("b", "alice").is_none());
        assert!(cache.by_id("b", 1).is_none());
    }
}
