//! Encryption at rest for the secrets the service keeps: Telegram sessions and API hashes.
//!
//! Each secret is sealed with XChaCha20-Poly1305 under a data key kept apart from the database, so a copy
//! of the database alone gives no one the accounts. The row and field a value belongs to is bound in as
//! associated data, so a sealed value copied to another row or field does not open.

use std::fmt;
use std::fmt::Write as _;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::rngs::OsRng;
use rand::RngCore;
use sha1::{Digest, Sha1};

/// The format written by [`Sealer::seal`]; a new format gets a new version so old values still open.
const VERSION: &str = "v1";
const KEY_LEN: usize = 32;
/// XChaCha20's 192-bit nonce is long enough to be drawn at random for every seal without fear of reuse.
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// 32-byte data key. Never printed: `Debug` shows `DataKey([redacted])`; use [`DataKey::fingerprint`]
/// to tell keys apart in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut key = [0; KEY_LEN];
        OsRng.fill_bytes(&mut key);
        Self(key)
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key as 64 lowercase hex characters, for a secret store or an environment variable.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Reads a key written as exactly 64 hex characters (either case). Surrounding whitespace, such as
    /// the final newline of a key file, is ignored.
    pub fn from_hex(s: &str) -> Result<Self, SealError> {
        let digits = s.trim().as_bytes();
        if digits.len() != 2 * KEY_LEN {
            return Err(SealError::KeyHex);
        }
        let mut key = [0; KEY_LEN];
        for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Ok(Self(key))
    }

    /// The first 8 hex characters of SHA-1 of the key: safe to log, and enough to tell which key sealed
    /// what (say, during a key rotation) without revealing it.
    pub fn fingerprint(&self) -> String {
        let mut fingerprint = hex(&Sha1::digest(self.0));
        fingerprint.truncate(8);
        fingerprint
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

/// Seals and opens secrets with XChaCha20-Poly1305, a random 24-byte nonce per seal. A sealed value is
/// text, `"v1:"` followed by unpadded URL-safe base64 of `nonce || ciphertext || tag`, so it fits in
/// any text column.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    key_fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("not a sealed value")]
    Format,
    #[error("sealed in a format version this build does not know")]
    Version,
    #[error("cannot be opened: wrong data key, wrong context, or tampered")]
    Tampered,
    #[error("a data key must be exactly 64 hexadecimal characters")]
    KeyHex,
}

impl Sealer {
    pub fn new(key: &DataKey) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&key.0.into()),
            key_fingerprint: key.fingerprint(),
        }
    }

    /// Seals `plaintext`. `context` is bound as associated data (e.g. `"account:42:session"`) so a sealed
    /// value copied to another row or field does not open; [`Sealer::open`] needs the same context.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any plaintext shorter than 256 GiB");
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        format!("{VERSION}:{}", URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Opens a value sealed under the same data key and `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let (version, body) = sealed.split_once(':').ok_or(SealError::Format)?;
        if version != VERSION {
            let looks_like_version = version
                .strip_prefix('v')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            return Err(if looks_like_version {
                SealError::Version
            } else {
                SealError::Format
            });
        }
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| SealError::Format)?;
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Format);
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Tampered)
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("key_fingerprint", &self.key_fingerprint)
            .finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        write!(hex, "{byte:02x}").expect("writing to a String cannot fail");
    }
    hex
}

fn hex_digit(c: u8) -> Result<u8, SealError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(SealError::KeyHex),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    const CONTEXT: &str = "account:42:session";

    fn key(first: u8) -> DataKey {
        DataKey::from_bytes(std::array::from_fn(|i| first.wrapping_add(i as u8)))
    }

    fn decode(sealed: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(sealed.strip_prefix("v1:").unwrap()).unwrap()
    }

    fn encode(body: &[u8]) -> String {
        format!("v1:{}", URL_SAFE_NO_PAD.encode(body))
    }

    #[test]
    fn round_trips() {
        let sealer = Sealer::new(&key(0));
        for plaintext in [&b""[..], b"x", b"0123456789abcdef", &[0xff; 1000]] {
            let sealed = sealer.seal(plaintext, CONTEXT);
            assert!(sealed.starts_with("v1:"), "{sealed}");
            assert!(!sealed.contains('='), "{sealed}");
            assert_eq!(decode(&sealed).len(), NONCE_LEN + plaintext.len() + TAG_LEN);
            assert_eq!(sealer.open(&sealed, CONTEXT).unwrap(), plaintext);
        }
        let other_sealer_same_key = Sealer::new(&key(0));
        assert_eq!(
            other_sealer_same_key.open(&sealer.seal(b"hash", ""), "").unwrap(),
            b"hash"
        );
    }

    #[test]
    fn sealing_twice_gives_different_values() {
        let sealer = Sealer::new(&key(0));
        let first = sealer.seal(b"api hash", CONTEXT);
        let second = sealer.seal(b"api hash", CONTEXT);
        assert_ne!(first, second);
        assert_ne!(decode(&first)[..NONCE_LEN], decode(&second)[..NONCE_LEN]);
    }

    #[test]
    fn opens_only_with_the_same_key_and_context() {
        let sealed = Sealer::new(&key(0)).seal(b"secret", CONTEXT);
        assert_eq!(Sealer::new(&key(1)).open(&sealed, CONTEXT), Err(SealError::Tampered));
        assert_eq!(
            Sealer::new(&DataKey::generate()).open(&sealed, CONTEXT),
            Err(SealError::Tampered)
        );
        let sealer = Sealer::new(&key(0));
        assert_eq!(sealer.open(&sealed, "account:43:session"), Err(SealError::Tampered));
        assert_eq!(sealer.open(&sealed, "account:42:api_hash"), Err(SealError::Tampered));
        assert_eq!(sealer.open(&sealed, ""), Err(SealError::Tampered));
    }

    #[test]
    fn detects_any_changed_byte() {
        let sealer = Sealer::new(&key(0));
        let body = decode(&sealer.seal(b"a session", CONTEXT));
        for i in 0..body.len() {
            for bit in [0x01, 0x80] {
                let mut tampered = body.clone();
                tampered[i] ^= bit;
                assert_eq!(
                    sealer.open(&encode(&tampered), CONTEXT),
                    Err(SealError::Tampered),
                    "byte {i}"
                );
            }
        }
        assert_eq!(
            sealer.open(&encode(&body[..body.len() - 1]), CONTEXT),
            Err(SealError::Tampered)
        );
        assert_eq!(
            sealer.open(&encode(&[&body[..], b"!"].concat()), CONTEXT),
            Err(SealError::Tampered)
        );
        assert_eq!(sealer.open(&encode(&body), CONTEXT).unwrap(), b"a session");
    }

    #[test]
    fn rejects_what_is_not_a_sealed_value() {
        let sealer = Sealer::new(&key(0));
        let sealed = sealer.seal(b"", CONTEXT);
        let too_short = encode(&decode(&sealed)[..NONCE_LEN + TAG_LEN - 1]);
        for garbage in [
            "",
            "v1",
            "v1:",
            "v1:!!!!",
            "v1:AAAA",
            "hello",
            "1ApWapzMBu9RDDsfCpIxe",
            "V1:AAAA",
            "v:AAAA",
        ] {
            assert_eq!(sealer.open(garbage, CONTEXT), Err(SealError::Format), "{garbage:?}");
        }
        assert_eq!(sealer.open(&too_short, CONTEXT), Err(SealError::Format));
        assert_eq!(sealer.open(&format!("{sealed}="), CONTEXT), Err(SealError::Format));
        assert_eq!(sealer.open(&format!(" {sealed}"), CONTEXT), Err(SealError::Format));
        assert_eq!(
            sealer.open(&sealed.replacen("v1:", "v2:", 1), CONTEXT),
            Err(SealError::Version)
        );
        assert_eq!(
            sealer.open(&sealed.replacen("v1:", "v10:", 1), CONTEXT),
            Err(SealError::Version)
        );
    }

    #[test]
    fn keys_round_trip_through_hex() {
        let key = DataKey::generate();
        let hex = key.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{hex}"
        );
        assert_eq!(DataKey::from_hex(&hex).unwrap(), key);
        assert_eq!(DataKey::from_hex(&hex.to_uppercase()).unwrap(), key);
        assert_eq!(DataKey::from_hex(&format!("{hex}\n")).unwrap(), key);
        assert_eq!(
            DataKey::from_bytes(std::array::from_fn(|i| i as u8)).to_hex(),
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        );
    }

    #[test]
    fn rejects_keys_that_are_not_64_hex_characters() {
        let hex = key(0).to_hex();
        assert_eq!(DataKey::from_hex(""), Err(SealError::KeyHex));
        assert_eq!(DataKey::from_hex(&hex[..63]), Err(SealError::KeyHex));
        assert_eq!(DataKey::from_hex(&format!("{hex}0")), Err(SealError::KeyHex));
        assert_eq!(DataKey::from_hex(&format!("{}g", &hex[..63])), Err(SealError::KeyHex));
        assert_eq!(DataKey::from_hex(&format!("{}+1", &hex[..62])), Err(SealError::KeyHex));
        assert_eq!(DataKey::from_hex(&format!("0x{}", &hex[..62])), Err(SealError::KeyHex));
        assert_eq!(DataKey::from_hex(&format!("{}é", &hex[..62])), Err(SealError::KeyHex));
        assert_eq!(
            DataKey::from_hex(&format!("{} {}", &hex[..31], &hex[32..])),
            Err(SealError::KeyHex)
        );
        assert!(!SealError::KeyHex.to_string().contains(&hex[..8]));
    }

    #[test]
    fn fingerprints_tell_keys_apart() {
        // SHA-1 of 32 zero bytes is de8a847bff8c343d69b853a215e6ee775ef2ef96.
        assert_eq!(DataKey::from_bytes([0; 32]).fingerprint(), "de8a847b");
        let key = DataKey::generate();
        assert_eq!(key.fingerprint().len(), 8);
        assert_eq!(key.fingerprint(), key.clone().fingerprint());
        assert_ne!(key.fingerprint(), DataKey::generate().fingerprint());
    }

    #[test]
    fn debug_output_hides_the_key() {
        let key = key(0xab);
        let hex = key.to_hex();
        assert_eq!(format!("{key:?}"), "DataKey([redacted])");
        assert_eq!(format!("{key:#?}"), "DataKey([redacted])");
        let sealer = Sealer::new(&key);
        let debug = format!("{sealer:?} {sealer:#?}");
        assert!(debug.contains(&key.fingerprint()), "{debug}");
        assert!(!debug.contains(&hex[..8]), "{debug}");
        assert!(!debug.contains("171, 172, 173"), "{debug}");
    }

    proptest! {
        #[test]
        fn anything_round_trips(plaintext in vec(any::<u8>(), 0..300), context in any::<String>()) {
            let sealer = Sealer::new(&key(7));
            let sealed = sealer.seal(&plaintext, &context);
            prop_assert_eq!(sealer.open(&sealed, &context), Ok(plaintext));
        }

        #[test]
        fn opening_garbage_never_panics(garbage in any::<String>(), body in vec(any::<u8>(), 0..100)) {
            let sealer = Sealer::new(&key(7));
            let _ = sealer.open(&garbage, CONTEXT);
            prop_assert!(sealer.open(&encode(&body), CONTEXT).is_err());
        }
    }
}
