//! The server side of MTProto's "full" TCP transport, the one grammers' `Sender` and Telethon's default
//! connection both use: `len | seq | payload | crc32`, with an independent sequence counter per direction.
//! <https://core.telegram.org/mtproto/mtproto-transports#full>

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Anything larger is not a client Telegram would talk to (it closes connections around 1 MiB too).
const MAXIMUM_PACKET: usize = 2 * 1024 * 1024;

/// Why a connection's byte stream stopped making sense. Diagnostics only: all of them end the connection.
#[derive(Debug)]
pub(crate) enum FrameError {
    Io(io::Error),
    BadLength(i32),
    BadSeq { expected: i32, got: i32 },
    BadCrc,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(error) => write!(f, "{error}"),
            FrameError::BadLength(len) => write!(f, "bad transport length {len}"),
            FrameError::BadSeq { expected, got } => write!(f, "bad transport seq {got}, expected {expected}"),
            FrameError::BadCrc => write!(f, "bad transport crc32"),
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(error: io::Error) -> Self {
        FrameError::Io(error)
    }
}

#[derive(Default)]
pub(crate) struct Full {
    recv_seq: i32,
    send_seq: i32,
}

impl Full {
    /// Reads one packet and returns its payload. `Ok(None)` means the client closed the connection cleanly.
    pub(crate) async fn read<R: AsyncRead + Unpin>(&mut self, reader: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
        let mut len_bytes = [0u8; 4];
        match reader.read_exact(&mut len_bytes).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let len = i32::from_le_bytes(len_bytes);
        let total = usize::try_from(len).map_err(|_| FrameError::BadLength(len))?;
        if !(12..=MAXIMUM_PACKET).contains(&total) {
            return Err(FrameError::BadLength(len));
        }
        let mut rest = vec![0u8; total - 4];
        reader.read_exact(&mut rest).await?;

        let seq = i32::from_le_bytes(rest[..4].try_into().expect("slice is 4 bytes"));
        if seq != self.recv_seq {
            return Err(FrameError::BadSeq {
                expected: self.recv_seq,
                got: seq,
            });
        }
        let crc_at = rest.len() - 4;
        let crc = u32::from_le_bytes(rest[crc_at..].try_into().expect("slice is 4 bytes"));
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&len_bytes);
        hasher.update(&rest[..crc_at]);
        if hasher.finalize() != crc {
            return Err(FrameError::BadCrc);
        }
        self.recv_seq += 1;
        rest.truncate(crc_at);
        rest.drain(..4);
        Ok(Some(rest))
    }

    pub(crate) async fn write<W: AsyncWrite + Unpin>(&mut self, writer: &mut W, payload: &[u8]) -> io::Result<()> {
        let len = i32::try_from(payload.len() + 12).expect("payload fits a packet");
        let mut packet = Vec::with_capacity(payload.len() + 12);
        packet.extend_from_slice(&len.to_le_bytes());
        packet.extend_from_slice(&self.send_seq.to_le_bytes());
        packet.extend_from_slice(payload);
        let crc = crc32fast::hash(&packet);
        packet.extend_from_slice(&crc.to_le_bytes());
        self.send_seq += 1;
        writer.write_all(&packet).await?;
        writer.flush().await
    }

    /// Sends a transport error such as -404, which has no framing of its own.
    ///
    /// grammers only looks at the first four bytes (a negative "length"), but Telethon reads a length
    /// and a seq before deciding, and Telegram has been seen repeating the code in all three words
    /// (Telethon issue #4042). Writing the code three times satisfies both clients.
    pub(crate) async fn write_error<W: AsyncWrite + Unpin>(writer: &mut W, code: i32) -> io::Result<()> {
        let word = code.to_le_bytes();
        let mut packet = Vec::with_capacity(12);
        for _ in 0..3 {
            packet.extend_from_slice(&word);
        }
        writer.write_all(&packet).await?;
        writer.flush().await
    }
}
