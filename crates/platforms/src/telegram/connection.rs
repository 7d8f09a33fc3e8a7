//! Telegram's own carrier: one MTProto connection of one account, on grammers' `Sender` driven directly.
//!
//! grammers' `SenderPool` is not used: on a transport `-404` (the server does not know the auth key)
//! its connection set-up silently generates a fresh, unauthorised key and carries on
//! (`sender_pool.rs`, `connect_sender`), and its retry layer sleeps on flood waits and re-sends after
//! I/O errors unless told otherwise. Here there is no retry layer at all — the equivalent of its
//! `NoRetries` policy, by construction — and no key is ever generated: a rejected key is reported as
//! a dead session. Every call has a deadline; a call that timed out or lost its connection after it
//! was written may have been executed, and the connection is not used again.

use std::{net::SocketAddr, time::Duration};

use account_manager::session::TelegramSession;
use async_trait::async_trait;
use domain::outcome::{AccountProblem, Outcome};
use grammers_mtproto::{mtp, transport};
use grammers_mtsender::{InvocationError, Sender, ServerAddr};
use grammers_tl_types as tl;

use super::{
    errors,
    wire::{Dialer, RawRequest, Wire, WireError},
};
use crate::strategy::{AccountCredentials, Report};

/// What the connection says about itself in `initConnection`: the service's own name, not a disguise.
const DEVICE_MODEL: &str = "Invite Service";
const SYSTEM_VERSION: &str = std::env::consts::OS;
const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Dials Telegram from a stored session.
pub(crate) struct MtprotoDialer {
    /// The service-wide application id, for accounts registered without their own.
    pub api_id: Option<i32>,
    pub timeout: Duration,
}

#[async_trait]
impl Dialer for MtprotoDialer {
    async fn dial(&self, account: &AccountCredentials) -> Result<Box<dyn Wire>, Report> {
        let session = TelegramSession::parse(&account.secret).map_err(|e| {
            Report::new(
                Outcome::Account(AccountProblem::Unusable),
                format!("the stored session cannot be read: {e}"),
            )
        })?;
        let api_id = account.api_id.or(self.api_id).ok_or_else(|| {
            Report::new(
                Outcome::Account(AccountProblem::Unusable),
                "no Telegram API id: register the account with api_id or set INVITE_TELEGRAM_API_ID",
            )
        })?;
        let address = SocketAddr::new(session.server_address, session.port);
        let conn = Connection::open(address, *session.auth_key.as_bytes(), api_id, self.timeout).await?;
        tracing::debug!(account_id = %account.account_id, dc = session.dc_id, %address, "Telegram: connected");
        Ok(Box::new(conn))
    }
}

struct Connection {
    sender: Sender<transport::Full, mtp::Encrypted>,
    timeout: Duration,
    /// A call failed in a way that leaves the connection's state unknown.
    broken: bool,
}

impl Connection {
    /// Connects with the stored auth key and introduces the client (`invokeWithLayer(initConnection(
    /// help.getConfig))`). Nothing of the campaign is sent yet, so every failure here is either the
    /// session's (dead, duplicated) or transient.
    async fn open(address: SocketAddr, auth_key: [u8; 256], api_id: i32, timeout: Duration) -> Result<Self, Report> {
        let connect =
            grammers_mtsender::connect_with_auth(transport::Full::new(), ServerAddr::Tcp { address }, auth_key);
        let sender = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(sender)) => sender,
            Ok(Err(e)) => {
                return Err(Report::new(
                    Outcome::Transient,
                    format!("cannot connect to {address}: {e}"),
                ))
            }
            Err(_) => {
                return Err(Report::new(
                    Outcome::Transient,
                    format!("connecting to {address} timed out"),
                ))
            }
        };
        let mut conn = Self {
            sender,
            timeout,
            broken: false,
        };
        let init = tl::functions::InvokeWithLayer {
            layer: tl::LAYER,
            query: tl::functions::InitConnection {
                api_id,
                device_model: DEVICE_MODEL.into(),
                system_version: SYSTEM_VERSION.into(),
                app_version: APP_VERSION.into(),
                system_lang_code: "en".into(),
                lang_pack: String::new(),
                lang_code: "en".into(),
                proxy: None,
                params: None,
                query: tl::functions::help::GetConfig {},
            },
        };
        match tokio::time::timeout(timeout, conn.sender.invoke(&init)).await {
            Ok(Ok(_config)) => Ok(conn),
            Ok(Err(e)) => Err(match wire_error(e) {
                WireError::Refused(r) => r,
                WireError::Rpc { code, name, value } => {
                    let o = errors::classify(errors::Call::ChannelLookup, code, &name, value);
                    let o = if matches!(o, Outcome::Account(_)) {
                        o
                    } else {
                        Outcome::Transient
                    };
                    Report::new(o, format!("initConnection: rpc {code} {name}"))
                }
                WireError::Lost(e) => Report::new(Outcome::Transient, format!("initConnection failed: {e}")),
            }),
            Err(_) => Err(Report::new(Outcome::Transient, "initConnection timed out")),
        }
    }
}

#[async_trait]
impl Wire for Connection {
    async fn call(&mut self, body: Vec<u8>) -> Result<Vec<u8>, WireError> {
        let result = match tokio::time::timeout(self.timeout, self.sender.invoke(&RawRequest(body))).await {
            Ok(Ok(answer)) => return Ok(answer.0),
            Ok(Err(e)) => wire_error(e),
            Err(_) => WireError::Lost(format!("no answer within {} s", self.timeout.as_secs())),
        };
        if !matches!(result, WireError::Rpc { .. }) {
            self.broken = true;
        }
        Err(result)
    }

    fn is_broken(&self) -> bool {
        self.broken
    }

    async fn close(mut self: Box<Self>) {
        let _ = self.sender.disconnect().await;
    }
}

fn wire_error(e: InvocationError) -> WireError {
    match e {
        InvocationError::Rpc(rpc) => WireError::Rpc {
            code: rpc.code,
            name: rpc.name,
            value: rpc.value,
        },
        InvocationError::Transport(transport::Error::BadStatus { status: 404 }) => WireError::Refused(Report::new(
            Outcome::Account(AccountProblem::SessionDead),
            "the server does not know this session's auth key (transport 404)",
        )),
        InvocationError::Transport(transport::Error::BadStatus { status: 429 }) => WireError::Refused(Report::new(
            Outcome::Account(AccountProblem::FloodWait(Duration::from_secs(60))),
            "too many connections with this auth key (transport 429)",
        )),
        other => WireError::Lost(format!("no answer: {other}")),
    }
}
