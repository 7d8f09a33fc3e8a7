//! Messenger adapters behind one interface. The engine speaks only [`InviteStrategy`] and
//! [`AccountClient`]; adding a messenger is adding an adapter here, never a `match` on platform names
//! elsewhere. The sandbox world is a second carrier beneath the Telegram adapter, not another adapter.

pub mod sandbox;
pub mod strategy;
pub mod telegram;

pub use strategy::{
    AccountClient, AccountCredentials, ChannelInfo, ChannelKind, DeliveryKey, InviteStrategy, Peer, Report, Resolution,
    TargetRef,
};
