#![allow(dead_code)]

pub mod drive;
pub mod sandbox;
pub mod tl;

use std::{net::IpAddr, time::Duration};

use account_manager::session::{AuthKey, TelegramSession};
use mtproto_fake::{Call, FakeTelegram, Reply};
use platforms::{
    telegram::{TelegramConfig, TelegramStrategy},
    AccountCredentials,
};

pub const API_ID: i32 = 24680;

/// A deterministic 256-byte auth key.
pub fn key(seed: u8) -> [u8; 256] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
}

pub async fn fake(key: [u8; 256], script: impl Fn(&Call) -> Reply + Send + Sync + 'static) -> FakeTelegram {
    FakeTelegram::builder().accept_key(key).script(script).start().await
}

/// A Telethon session string for the fake server with this key.
pub fn session_for(server: &FakeTelegram, key: [u8; 256]) -> String {
    TelegramSession {
        dc_id: 2,
        server_address: IpAddr::from(*server.addr().ip()),
        port: server.addr().port(),
        auth_key: AuthKey::from_bytes(key),
    }
    .to_telethon()
}

pub fn credentials(server: &FakeTelegram, key: [u8; 256]) -> AccountCredentials {
    AccountCredentials {
        account_id: format!("tg-{}", key[0]),
        secret: session_for(server, key),
        api_id: Some(API_ID),
    }
}

pub fn strategy() -> TelegramStrategy {
    strategy_with_timeout(Duration::from_secs(5))
}

pub fn strategy_with_timeout(call_timeout: Duration) -> TelegramStrategy {
    TelegramStrategy::new(TelegramConfig {
        api_id: None,
        call_timeout,
    })
}

/// Every test is bounded: a stuck client fails the test instead of hanging CI.
pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the test finished within 20 s")
}
