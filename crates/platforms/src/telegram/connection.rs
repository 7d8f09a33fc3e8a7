//! One MTProto connection of one account, on grammers' `Sender` driven directly.
//!
//! grammers' `SenderPool` is not used: on a transport `-404` (the server does not know the auth key)
//! its connection set-up silently generates a fresh, unauthorised key and carries on
//! (`sender_pool.rs`, `connect_sender`), and its retry layer sleeps on flood waits and re-sends after
//! I/O errors unless told otherwise. Here there is no retry layer at all — the equivalent of its
//! `NoRetries` policy, by construction — and no key is ever generated: a rejected key is reported as
//! a dead session. Every call has a deadline; a call that timed out or lost its connection after it
//! was written may have been executed, and the connection is not used again.

use std::{net::SocketAddr, time::Duration};

use domain::outcome::{AccountProblem, Outcome};
use grammers_mtproto::{mtp, transport};
use grammers_mtsender::{InvocationError, Sender, ServerAddr};
use grammers_tl_types::{self as tl, RemoteCall};

use super::errors::{self, Call};
use crate::strategy::Report;

/// What the connection says about itself in `initConnection`: the service's own name, not a disguise.
const DEVICE_MODEL: &str = "Invite Service";
const SYSTEM_VERSION: &str = std::env::consts::OS;
const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

pub(crate) struct Connection {
    sender: Sender<transport::Full, mtp::Encrypted>,
    timeout: Duration,
    /// A call failed in a way that leaves the connection's state unknown.
    broken: bool,
}

impl Connection {
    /// Connects with the stored auth key and introduces the client (`invokeWithLayer(initConnection(
    /// help.getConfig))`). Nothing of the campaign is sent yet, so every failure here is either the
    /// session's (dead, duplicated) or transient.
    pub async fn open(
        address: SocketAddr,
        auth_key: [u8; 256],
        api_id: i32,
        timeout: Duration,
    ) -> Result<Self, Report> {
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
            Ok(Err(e)) => Err(match refusal(&e) {
                Some(r) => r,
                None => match e {
                    InvocationError::Rpc(rpc) => {
                        let o = errors::classify(Call::ChannelLookup, rpc.code, &rpc.name, rpc.value);
                        let o = if matches!(o, Outcome::Account(_)) {
                            o
                        } else {
                            Outcome::Transient
                        };
                        Report::new(o, format!("initConnection: rpc {} {}", rpc.code, rpc.name))
                    }
                    other => Report::new(Outcome::Transient, format!("initConnection failed: {other}")),
                },
            }),
            Err(_) => Err(Report::new(Outcome::Transient, "initConnection timed out")),
        }
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// One RPC. An RPC error is read by [`errors::classify`] for this kind of call; anything else after
    /// the request may have left counts as "maybe done" ([`errors::maybe_done`]).
    pub async fn invoke<R: RemoteCall>(&mut self, call: Call, request: &R) -> Result<R::Return, Report> {
        match tokio::time::timeout(self.timeout, self.sender.invoke(request)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(InvocationError::Rpc(rpc))) => {
                let outcome = errors::classify(call, rpc.code, &rpc.name, rpc.value);
                let value = rpc.value.map(|v| format!(" ({v})")).unwrap_or_default();
                Err(Report::new(outcome, format!("rpc {} {}{value}", rpc.code, rpc.name)))
            }
            Ok(Err(e)) => {
                self.broken = true;
                Err(refusal(&e).unwrap_or_else(|| Report::new(errors::maybe_done(call), format!("no answer: {e}"))))
            }
            Err(_) => {
                self.broken = true;
                Err(Report::new(
                    errors::maybe_done(call),
                    format!("no answer within {} s", self.timeout.as_secs()),
                ))
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.sender.disconnect().await;
    }
}

/// Transport errors that are the server refusing the session rather than the network failing.
fn refusal(e: &InvocationError) -> Option<Report> {
    match e {
        InvocationError::Transport(transport::Error::BadStatus { status: 404 }) => Some(Report::new(
            Outcome::Account(AccountProblem::SessionDead),
            "the server does not know this session's auth key (transport 404)",
        )),
        InvocationError::Transport(transport::Error::BadStatus { status: 429 }) => Some(Report::new(
            Outcome::Account(AccountProblem::FloodWait(Duration::from_secs(60))),
            "too many connections with this auth key (transport 429)",
        )),
        _ => None,
    }
}
