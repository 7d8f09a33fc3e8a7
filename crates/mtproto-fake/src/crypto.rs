//! The server's half of MTProto 2.0 message encryption.
//!
//! grammers-crypto only ships the client's half (it encrypts with x = 0 and decrypts with x = 8),
//! so the mirror image lives here: decrypt what a client sent with x = 0, encrypt replies with x = 8.
//! Only the AES-IGE primitive is borrowed from grammers-crypto, so a bug in grammers' key derivation
//! cannot cancel itself out in these tests.
//! <https://core.telegram.org/mtproto/description#defining-aes-key-and-initialization-vector>

use grammers_crypto::aes;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// "x = 0 for messages from client to server and x = 8 for those from server to client".
const CLIENT_X: usize = 0;
const SERVER_X: usize = 8;

/// Length of `auth_key_id` + `msg_key`, the unencrypted prefix of every encrypted message.
const ENVELOPE_LEN: usize = 8 + 16;

/// salt + session_id + msg_id + seq_no + length: the fixed part of the plaintext.
pub(crate) const PLAINTEXT_HEADER_LEN: usize = 8 + 8 + 8 + 4 + 4;

/// A pre-shared authorization key together with its identifier.
#[derive(Clone)]
pub(crate) struct AuthKey {
    data: [u8; 256],
    id: i64,
}

impl AuthKey {
    pub(crate) fn new(data: [u8; 256]) -> Self {
        // "auth_key_id: the 64 lower-order bits of the SHA1 hash of the authorization key".
        let sha = Sha1::digest(data);
        let id = i64::from_le_bytes(sha[12..20].try_into().expect("sha1 is 20 bytes"));
        Self { data, id }
    }

    pub(crate) fn id(&self) -> i64 {
        self.id
    }
}

/// Why a client message could not be decrypted. Only used for diagnostics: any failure closes the
/// connection, which is what Telegram does too.
#[derive(Debug)]
pub(crate) enum DecryptError {
    BadLength(usize),
    MsgKeyMismatch,
    BadPadding(usize),
}

impl std::fmt::Display for DecryptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecryptError::BadLength(len) => write!(f, "bad encrypted length {len}"),
            DecryptError::MsgKeyMismatch => write!(f, "msg_key mismatch (wrong key or corrupted message)"),
            DecryptError::BadPadding(len) => write!(f, "padding of {len} bytes is outside 12..=1024"),
        }
    }
}

/// Decrypts a client message (starting with its `auth_key_id`) into the plaintext, with padding removed.
///
/// The padding bounds (12..=1024 bytes) are checked like Telegram does, so a client that pads wrongly
/// is caught here rather than in production.
pub(crate) fn decrypt_from_client(key: &AuthKey, packet: &[u8]) -> Result<Vec<u8>, DecryptError> {
    if packet.len() < ENVELOPE_LEN + PLAINTEXT_HEADER_LEN || !(packet.len() - ENVELOPE_LEN).is_multiple_of(16) {
        return Err(DecryptError::BadLength(packet.len()));
    }
    let msg_key: [u8; 16] = packet[8..24].try_into().expect("slice is 16 bytes");
    let (aes_key, aes_iv) = derive_aes(key, &msg_key, CLIENT_X);
    let mut plaintext = packet[ENVELOPE_LEN..].to_vec();
    aes::ige_decrypt(&mut plaintext, &aes_key, &aes_iv);
    if compute_msg_key(key, &plaintext, CLIENT_X) != msg_key {
        return Err(DecryptError::MsgKeyMismatch);
    }
    let body_len = i32::from_le_bytes(plaintext[28..32].try_into().expect("slice is 4 bytes"));
    let body_len = usize::try_from(body_len).map_err(|_| DecryptError::BadLength(packet.len()))?;
    let padding = plaintext
        .len()
        .checked_sub(PLAINTEXT_HEADER_LEN + body_len)
        .ok_or(DecryptError::BadLength(body_len))?;
    if !(12..=1024).contains(&padding) {
        return Err(DecryptError::BadPadding(padding));
    }
    plaintext.truncate(PLAINTEXT_HEADER_LEN + body_len);
    Ok(plaintext)
}

/// Encrypts a server message (`plaintext` = salt, session_id, msg_id, seq_no, length, body) and
/// prepends `auth_key_id` and `msg_key`, ready for the transport.
pub(crate) fn encrypt_for_client(key: &AuthKey, mut plaintext: Vec<u8>) -> Vec<u8> {
    // Random padding of 12..=1024 bytes, like Telegram's, so clients that wrongly assume a fixed
    // padding length fail here.
    let mut random = [0u8; 1];
    getrandom::fill(&mut random).expect("OS random source is available");
    let minimum = 12 + (16 - (plaintext.len() + 12) % 16) % 16;
    let padding_len = minimum + 16 * usize::from(random[0] % 8);
    let mut padding = vec![0u8; padding_len];
    getrandom::fill(&mut padding).expect("OS random source is available");
    plaintext.extend_from_slice(&padding);

    let msg_key = compute_msg_key(key, &plaintext, SERVER_X);
    let (aes_key, aes_iv) = derive_aes(key, &msg_key, SERVER_X);
    aes::ige_encrypt(&mut plaintext, &aes_key, &aes_iv);

    let mut packet = Vec::with_capacity(ENVELOPE_LEN + plaintext.len());
    packet.extend_from_slice(&key.id.to_le_bytes());
    packet.extend_from_slice(&msg_key);
    packet.extend_from_slice(&plaintext);
    packet
}

/// msg_key = substr(SHA256(substr(auth_key, 88+x, 32) + plaintext + padding), 8, 16).
fn compute_msg_key(key: &AuthKey, padded_plaintext: &[u8], x: usize) -> [u8; 16] {
    let large = Sha256::new()
        .chain_update(&key.data[88 + x..88 + x + 32])
        .chain_update(padded_plaintext)
        .finalize();
    large[8..24].try_into().expect("slice is 16 bytes")
}

fn derive_aes(key: &AuthKey, msg_key: &[u8; 16], x: usize) -> ([u8; 32], [u8; 32]) {
    let a = Sha256::new()
        .chain_update(msg_key)
        .chain_update(&key.data[x..x + 36])
        .finalize();
    let b = Sha256::new()
        .chain_update(&key.data[40 + x..40 + x + 36])
        .chain_update(msg_key)
        .finalize();

    let mut aes_key = [0u8; 32];
    aes_key[..8].copy_from_slice(&a[..8]);
    aes_key[8..24].copy_from_slice(&b[8..24]);
    aes_key[24..].copy_from_slice(&a[24..]);

    let mut aes_iv = [0u8; 32];
    aes_iv[..8].copy_from_slice(&b[..8]);
    aes_iv[8..24].copy_from_slice(&a[8..24]);
    aes_iv[24..].copy_from_slice(&b[24..]);
    (aes_key, aes_iv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key() -> AuthKey {
        let mut data = [0u8; 256];
        data.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        AuthKey::new(data)
    }

    #[test]
    fn mtproto_key_id_matches_grammers_reference_vector() {
        // grammers-crypto's own test vector for the 0..=255 key.
        assert_eq!(test_key().id().to_le_bytes(), [50, 209, 88, 110, 164, 87, 223, 200]);
    }

    #[test]
    fn mtproto_server_encryption_is_decryptable_by_grammers_client_side() {
        let key = test_key();
        let mut plaintext = vec![7u8; PLAINTEXT_HEADER_LEN];
        plaintext[28..32].copy_from_slice(&4i32.to_le_bytes());
        plaintext.extend_from_slice(b"body");
        let mut packet = encrypt_for_client(&key, plaintext.clone());
        let client_key = grammers_crypto::AuthKey::from_bytes(key.data);
        let decrypted = grammers_crypto::decrypt_data_v2(&mut packet, &client_key).expect("grammers decrypts it");
        assert_eq!(&decrypted[..plaintext.len()], &plaintext[..]);
    }

    #[test]
    fn mtproto_grammers_client_encryption_is_decryptable_here() {
        let key = test_key();
        let client_key = grammers_crypto::AuthKey::from_bytes(key.data);
        let mut plaintext = vec![9u8; PLAINTEXT_HEADER_LEN];
        plaintext[28..32].copy_from_slice(&8i32.to_le_bytes());
        plaintext.extend_from_slice(b"12345678");
        let mut buffer = grammers_crypto::DequeBuffer::with_capacity(plaintext.len(), 24);
        buffer.extend(plaintext.iter().copied());
        grammers_crypto::encrypt_data_v2(&mut buffer, &client_key);
        let decrypted = decrypt_from_client(&key, &buffer[..]).expect("decrypts");
        assert_eq!(decrypted, plaintext);
    }
}
