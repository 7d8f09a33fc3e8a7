//! What carries the adapter's requests: serialized TL in, serialized TL or an RPC error out. Telegram's
//! MTProto connection is one carrier, the sandbox world another; the adapter above — peer cache, request
//! shapes, the reading of results and errors into outcomes — is the same for both, so the sandbox
//! cannot drift from the real adapter.

use async_trait::async_trait;
use grammers_tl_types::{self as tl, Deserializable, Serializable};

use crate::strategy::{AccountCredentials, Report};

/// How a request failed on its carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The server answered with an RPC error (`FLOOD_WAIT_30` arrives as name `FLOOD_WAIT`, value 30).
    Rpc {
        code: i32,
        name: String,
        value: Option<u32>,
    },
    /// The server refused the session itself; the report says what that means for the account.
    Refused(Report),
    /// No answer came back after the request may have left (timeout, lost connection).
    Lost(String),
}

/// One account's live carrier.
#[async_trait]
pub trait Wire: Send {
    /// Sends one serialized TL function and returns the serialized result.
    async fn call(&mut self, body: Vec<u8>) -> Result<Vec<u8>, WireError>;

    /// A request was lost on it: its state is unknown, it must not be used again.
    fn is_broken(&self) -> bool;

    async fn close(self: Box<Self>);
}

/// Opens carriers for accounts.
#[async_trait]
pub trait Dialer: Send + Sync {
    /// A carrier for this account. A refusal names what it means for the account, or is transient.
    async fn dial(&self, account: &AccountCredentials) -> Result<Box<dyn Wire>, Report>;
}

/// An already serialized request, for carriers that take typed requests (grammers' `Sender`).
pub(crate) struct RawRequest(pub Vec<u8>);

/// A result left serialized, to be read by the adapter.
pub(crate) struct RawAnswer(pub Vec<u8>);

impl Serializable for RawRequest {
    fn serialize(&self, buf: &mut impl Extend<u8>) {
        buf.extend(self.0.iter().copied());
    }
}

impl tl::RemoteCall for RawRequest {
    type Return = RawAnswer;
}

impl Deserializable for RawAnswer {
    fn deserialize(buf: &mut tl::Cursor) -> tl::deserialize::Result<Self> {
        let mut bytes = Vec::new();
        buf.read_to_end(&mut bytes)?;
        Ok(RawAnswer(bytes))
    }
}
