//! The Account Manager: accounts, limits, pauses and error recovery. Every platform action the service
//! takes is granted here; nothing else counts, pauses or rests accounts.

pub mod manager;
pub mod policy;
pub mod policy_config;
pub mod sealing;
pub mod session;
pub mod source;

pub use manager::{AccountManager, AmError, Budget, Grant, Lease, RateLimit};
pub use policy::Policy;
