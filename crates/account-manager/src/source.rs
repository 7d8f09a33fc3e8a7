//! Where a user's accounts come from. Standalone: the local registry in our store. The platform
//! profile adds the Integration Service behind the same trait.

use async_trait::async_trait;
use domain::UserId;
use store::{AccountRecord, SharedStore};

use crate::AmError;

#[async_trait]
pub trait AccountSource: Send + Sync {
    /// The user's accounts on a platform, blocked ones included (the Account Manager decides).
    async fn accounts(&self, user: UserId, platform: &str) -> Result<Vec<AccountRecord>, AmError>;
}

/// Accounts registered through this service's own API.
pub struct LocalRegistry(pub SharedStore);

#[async_trait]
impl AccountSource for LocalRegistry {
    async fn accounts(&self, user: UserId, platform: &str) -> Result<Vec<AccountRecord>, AmError> {
        Ok(self.0.list_accounts(user, Some(platform)).await?)
    }
}
