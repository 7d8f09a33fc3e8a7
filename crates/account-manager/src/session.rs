//! Telegram sessions as the platform's Python services store them: Telethon `StringSession` strings.
//!
//! A session is what lets the service act as a user's account, so its auth key is handled like a
//! password: it is never printed, and no error message repeats any part of the session string (errors
//! end up in logs).

use std::fmt;
use std::net::IpAddr;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// Telethon's base64: URL-safe and written with `=` padding. It is read with or without the padding,
/// because padding is easily lost when a session is pasted into a form or an environment variable.
const TELETHON_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The only `StringSession` format Telethon has ever written.
const VERSION: char = '1';
const KEY_LEN: usize = 256;
/// `dc_id` + IPv4 address + port + auth key.
const IPV4_LEN: usize = 1 + 4 + 2 + KEY_LEN;
/// `dc_id` + IPv6 address + port + auth key.
const IPV6_LEN: usize = 1 + 16 + 2 + KEY_LEN;
/// Telegram's production data centres.
const DC_IDS: std::ops::RangeInclusive<u8> = 1..=5;

/// A session's secret: whoever holds it is logged in as the account, so it is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey([u8; KEY_LEN]);

impl AuthKey {
    /// A key from its 256 bytes (a key made elsewhere, or a test's).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Telegram's auth key id: the lower 64 bits of SHA-1 of the key (the digest's last 8 bytes, read as
    /// a little-endian `i64`). Telegram sends it in the clear with every message, so it is safe to show
    /// and tells sessions apart without revealing the key.
    pub fn id(&self) -> i64 {
        let digest = Sha1::digest(self.0);
        let (_, low) = digest.split_at(digest.len() - 8);
        i64::from_le_bytes(low.try_into().expect("a SHA-1 digest is 20 bytes long"))
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey([redacted])")
    }
}

/// What a Telegram session holds. `Debug` shows everything but the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramSession {
    pub dc_id: u8,
    pub server_address: IpAddr,
    pub port: u16,
    pub auth_key: AuthKey,
}

/// The facts about a session that may be shown (in the UI, in logs): everything but the key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionFacts {
    pub dc_id: u8,
    pub server_address: String,
    pub port: u16,
    pub auth_key_id: i64,
}

/// Why a string is not a usable Telethon session. The messages never quote the input: it is a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session string is empty")]
    Empty,
    #[error("is not a Telethon StringSession (it should start with '1', not {0:?})")]
    UnknownVersion(char),
    #[error("is not a Telethon StringSession (the text after the leading '1' is not URL-safe base64)")]
    Base64,
    #[error("decodes to {0} bytes; a Telethon session has 263 (IPv4) or 275 (IPv6)")]
    Length(usize),
    #[error("names data centre {0}; Telegram's data centres are 1–5")]
    DcId(u8),
    #[error("has server port 0")]
    Port,
    #[error("has an all-zero auth key, which Telegram never issues")]
    ZeroKey,
    /// A grammers data-centre option that cannot be used; the text says why (never the key).
    #[error("is not a usable grammers session: {0}")]
    Grammers(&'static str),
}

impl TelegramSession {
    /// Reads a Telethon StringSession (surrounding whitespace ignored).
    ///
    /// The layout is Telethon's `struct.pack('>B{4|16}sH256s', dc_id, ip, port, key)`: the address's
    /// length, and so the decoded length, tells IPv4 from IPv6.
    pub fn from_telethon(s: &str) -> Result<Self, SessionError> {
        let s = s.trim();
        let mut chars = s.chars();
        let version = chars.next().ok_or(SessionError::Empty)?;
        if version != VERSION {
            return Err(SessionError::UnknownVersion(version));
        }
        let packed = TELETHON_BASE64
            .decode(chars.as_str())
            .map_err(|_| SessionError::Base64)?;
        let (&dc_id, rest) = packed.split_first().ok_or(SessionError::Length(0))?;
        let (server_address, rest) = match packed.len() {
            IPV4_LEN => {
                let (ip, rest) = take::<4>(rest);
                (IpAddr::from(ip), rest)
            }
            IPV6_LEN => {
                let (ip, rest) = take::<16>(rest);
                (IpAddr::from(ip), rest)
            }
            n => return Err(SessionError::Length(n)),
        };
        let (port, rest) = take::<2>(rest);
        let (key, _) = take::<KEY_LEN>(rest);
        let port = u16::from_be_bytes(port);

        if !DC_IDS.contains(&dc_id) {
            return Err(SessionError::DcId(dc_id));
        }
        if port == 0 {
            return Err(SessionError::Port);
        }
        if key.iter().all(|&b| b == 0) {
            return Err(SessionError::ZeroKey);
        }
        Ok(Self {
            dc_id,
            server_address,
            port,
            auth_key: AuthKey(key),
        })
    }

    /// Reads a session in either form the platform's services produce: a Telethon `StringSession`, or
    /// (text starting with `{`) a grammers session as the JSON of the home data centre's `DcOption`
    /// that grammers-session serialises with its `serde` feature:
    /// `{"id": 2, "ipv4": "149.154.167.51:443", "ipv6": "[…]:443", "auth_key": "<512 hex digits>"}`.
    pub fn parse(s: &str) -> Result<Self, SessionError> {
        if s.trim_start().starts_with('{') {
            Self::from_grammers_dc_option(s)
        } else {
            Self::from_telethon(s)
        }
    }

    /// Reads grammers' `DcOption` JSON (see [`TelegramSession::parse`]).
    pub fn from_grammers_dc_option(s: &str) -> Result<Self, SessionError> {
        let bad = SessionError::Grammers;
        let v: serde_json::Value = serde_json::from_str(s).map_err(|_| bad("it is not valid JSON"))?;
        let id = v
            .get("id")
            .and_then(serde_json::Value::as_i64)
            .ok_or(bad("it has no numeric id"))?;
        let dc_id = u8::try_from(id).map_err(|_| bad("its id is not a data centre"))?;
        if !DC_IDS.contains(&dc_id) {
            return Err(SessionError::DcId(dc_id));
        }
        let address: std::net::SocketAddr = v
            .get("ipv4")
            .and_then(serde_json::Value::as_str)
            .and_then(|a| a.parse().ok())
            .ok_or(bad("its ipv4 is not an address such as 149.154.167.51:443"))?;
        if address.port() == 0 {
            return Err(SessionError::Port);
        }
        let hex = match v.get("auth_key") {
            Some(serde_json::Value::String(h)) => h,
            Some(serde_json::Value::Null) | None => {
                return Err(bad("it has no auth key (the account never logged in there)"))
            }
            Some(_) => return Err(bad("its auth_key is not hex text")),
        };
        if hex.len() != KEY_LEN * 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("its auth_key is not 512 hex digits"));
        }
        let mut key = [0u8; KEY_LEN];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| bad("its auth_key is not 512 hex digits"))?;
        }
        if key.iter().all(|&b| b == 0) {
            return Err(SessionError::ZeroKey);
        }
        Ok(Self {
            dc_id,
            server_address: address.ip(),
            port: address.port(),
            auth_key: AuthKey(key),
        })
    }

    /// Writes it back in Telethon's format, with `=` padding as Telethon writes it, so the Python services
    /// read it unchanged.
    pub fn to_telethon(&self) -> String {
        let mut packed = Vec::with_capacity(IPV6_LEN);
        packed.push(self.dc_id);
        match self.server_address {
            IpAddr::V4(ip) => packed.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => packed.extend_from_slice(&ip.octets()),
        }
        packed.extend_from_slice(&self.port.to_be_bytes());
        packed.extend_from_slice(self.auth_key.as_bytes());
        format!("{VERSION}{}", TELETHON_BASE64.encode(&packed))
    }

    /// The facts that may be shown: no key.
    pub fn public_facts(&self) -> SessionFacts {
        SessionFacts {
            dc_id: self.dc_id,
            server_address: self.server_address.to_string(),
            port: self.port,
            auth_key_id: self.auth_key.id(),
        }
    }
}

/// Splits the first `N` bytes off `bytes`; callers have checked the total length beforehand.
fn take<const N: usize>(bytes: &[u8]) -> ([u8; N], &[u8]) {
    let (head, rest) = bytes.split_at(N);
    (head.try_into().expect("split_at(N) gives N bytes"), rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
    use proptest::collection::vec;
    use proptest::prelude::*;

    #[derive(serde::Deserialize)]
    struct Fixtures {
        sessions: Vec<Fixture>,
    }

    #[derive(serde::Deserialize)]
    struct Fixture {
        string_session: String,
        dc_id: u8,
        server_address: String,
        port: u16,
        auth_key_id: i64,
    }

    /// Sessions written by Telethon 1.45 itself, one over IPv4 and one over IPv6.
    fn fixtures() -> Vec<Fixture> {
        let fixtures: Fixtures = serde_json::from_str(include_str!("../tests/data/telethon-sessions.json")).unwrap();
        assert_eq!(fixtures.sessions.len(), 2);
        fixtures.sessions
    }

    fn key(first: u8) -> [u8; KEY_LEN] {
        std::array::from_fn(|i| first.wrapping_add(i as u8))
    }

    /// Packs a session the way Telethon does, for building invalid ones.
    fn pack(dc_id: u8, ip: &[u8], port: u16, key: &[u8]) -> String {
        let mut packed = vec![dc_id];
        packed.extend_from_slice(ip);
        packed.extend_from_slice(&port.to_be_bytes());
        packed.extend_from_slice(key);
        format!("1{}", URL_SAFE.encode(packed))
    }

    #[test]
    fn reads_telethon_sessions() {
        for fixture in fixtures() {
            let session = TelegramSession::from_telethon(&fixture.string_session).unwrap();
            assert_eq!(session.dc_id, fixture.dc_id);
            assert_eq!(
                session.server_address,
                fixture.server_address.parse::<IpAddr>().unwrap()
            );
            assert_eq!(session.port, fixture.port);
            assert_eq!(session.auth_key.id(), fixture.auth_key_id);
            assert_eq!(
                session.public_facts(),
                SessionFacts {
                    dc_id: fixture.dc_id,
                    server_address: fixture.server_address.clone(),
                    port: fixture.port,
                    auth_key_id: fixture.auth_key_id,
                }
            );
        }
    }

    #[test]
    fn reads_both_address_families() {
        let sessions: Vec<_> = fixtures()
            .iter()
            .map(|f| TelegramSession::from_telethon(&f.string_session).unwrap())
            .collect();
        assert!(sessions[0].server_address.is_ipv4());
        assert!(sessions[1].server_address.is_ipv6());
    }

    #[test]
    fn writes_back_exactly_what_telethon_wrote() {
        for fixture in fixtures() {
            let session = TelegramSession::from_telethon(&fixture.string_session).unwrap();
            assert_eq!(session.to_telethon(), fixture.string_session);
        }
    }

    #[test]
    fn accepts_missing_padding_and_surrounding_whitespace() {
        for fixture in fixtures() {
            let expected = TelegramSession::from_telethon(&fixture.string_session).unwrap();
            let unpadded = fixture.string_session.trim_end_matches('=');
            assert_ne!(unpadded, fixture.string_session);
            assert_eq!(TelegramSession::from_telethon(unpadded).unwrap(), expected);
            let spaced = format!(" \t{}\r\n", fixture.string_session);
            assert_eq!(TelegramSession::from_telethon(&spaced).unwrap(), expected);
            assert_eq!(expected.to_telethon(), fixture.string_session);
        }
    }

    #[test]
    fn rejects_what_is_not_a_session() {
        let good = &fixtures()[0].string_session;
        assert_eq!(TelegramSession::from_telethon(""), Err(SessionError::Empty));
        assert_eq!(TelegramSession::from_telethon(" \n\t"), Err(SessionError::Empty));
        assert_eq!(
            TelegramSession::from_telethon(&good[1..]),
            Err(SessionError::UnknownVersion('A'))
        );
        assert_eq!(
            TelegramSession::from_telethon("2AAAA"),
            Err(SessionError::UnknownVersion('2'))
        );
        assert_eq!(
            TelegramSession::from_telethon("жAAAA"),
            Err(SessionError::UnknownVersion('ж'))
        );
        assert_eq!(TelegramSession::from_telethon("1AB CD"), Err(SessionError::Base64));
        assert_eq!(TelegramSession::from_telethon("1!!!!"), Err(SessionError::Base64));
        let standard_alphabet = good.replace('-', "+").replace('_', "/");
        assert_eq!(
            TelegramSession::from_telethon(&standard_alphabet),
            Err(SessionError::Base64)
        );
        assert_eq!(TelegramSession::from_telethon("1"), Err(SessionError::Length(0)));
        assert_eq!(
            TelegramSession::from_telethon(&good[..good.len() - 4]),
            Err(SessionError::Length(261))
        );
        let long = format!("1{}", URL_SAFE.encode([7u8; 264]));
        assert_eq!(TelegramSession::from_telethon(&long), Err(SessionError::Length(264)));
    }

    #[test]
    fn rejects_impossible_sessions() {
        let ip = [149, 154, 167, 51];
        assert!(TelegramSession::from_telethon(&pack(5, &ip, 443, &key(1))).is_ok());
        assert_eq!(
            TelegramSession::from_telethon(&pack(0, &ip, 443, &key(1))),
            Err(SessionError::DcId(0))
        );
        assert_eq!(
            TelegramSession::from_telethon(&pack(6, &ip, 443, &key(1))),
            Err(SessionError::DcId(6))
        );
        assert_eq!(
            TelegramSession::from_telethon(&pack(255, &ip, 443, &key(1))),
            Err(SessionError::DcId(255))
        );
        assert_eq!(
            TelegramSession::from_telethon(&pack(2, &ip, 0, &key(1))),
            Err(SessionError::Port)
        );
        assert_eq!(
            TelegramSession::from_telethon(&pack(2, &ip, 443, &[0; KEY_LEN])),
            Err(SessionError::ZeroKey)
        );
        assert_eq!(
            TelegramSession::from_telethon(&pack(2, &[0; 16], 443, &[0; KEY_LEN])),
            Err(SessionError::ZeroKey)
        );
    }

    #[test]
    fn error_messages_do_not_repeat_the_session() {
        let good = &fixtures()[0].string_session;
        let body = &good[1..];
        let bad = [
            good[1..].to_string(),
            format!("1{}!", &body[..body.len() - 1]),
            good[..good.len() - 4].to_string(),
            good.replace('-', "+"),
            pack(9, &[1, 2, 3, 4], 443, &key(0xd4)),
        ];
        for input in bad {
            let message = TelegramSession::from_telethon(&input).unwrap_err().to_string();
            assert!(message.len() < 120, "{message}");
            assert!(!message.contains(&input[1..20]), "{message}");
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        for fixture in fixtures() {
            let session = TelegramSession::from_telethon(&fixture.string_session).unwrap();
            let key = session.auth_key.as_bytes();
            let debug = format!("{session:?} {:#?}", session);
            assert!(debug.contains("AuthKey([redacted])"), "{debug}");
            assert!(debug.contains(&fixture.server_address), "{debug}");
            let hex: String = key[..4].iter().map(|b| format!("{b:02x}")).collect();
            assert!(!debug.to_lowercase().contains(&hex), "{debug}");
            let decimal = format!("{:?}", &key[..4]);
            assert!(!debug.contains(decimal.trim_end_matches(']')), "{debug}");
            assert!(!debug.contains(&URL_SAFE.encode(&key[..30])), "{debug}");
            assert!(!debug.contains(&fixture.string_session[20..60]), "{debug}");
            assert_eq!(format!("{:?}", session.auth_key), "AuthKey([redacted])");
        }
    }

    #[test]
    fn public_facts_serialize_without_the_key() {
        let session = TelegramSession::from_telethon(&fixtures()[1].string_session).unwrap();
        let json = serde_json::to_value(session.public_facts()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "dc_id": 4,
                "server_address": "2001:67c:4e8:f004::a",
                "port": 443,
                "auth_key_id": 782025396729708252_i64,
            })
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in any::<String>()) {
            let _ = TelegramSession::from_telethon(&s);
            let _ = TelegramSession::from_telethon(&format!("1{s}"));
        }

        #[test]
        fn never_panics_on_arbitrary_base64(
            bytes in prop_oneof![vec(any::<u8>(), 0..400), vec(any::<u8>(), IPV4_LEN), vec(any::<u8>(), IPV6_LEN)],
            padded in any::<bool>(),
        ) {
            let body = if padded { URL_SAFE.encode(&bytes) } else { URL_SAFE_NO_PAD.encode(&bytes) };
            match TelegramSession::from_telethon(&format!("1{body}")) {
                Ok(session) => prop_assert_eq!(session.to_telethon(), format!("1{}", URL_SAFE.encode(&bytes))),
                Err(e) if body.len() >= 8 => prop_assert!(!e.to_string().contains(&body)),
                Err(_) => {}
            }
        }

        #[test]
        fn valid_sessions_round_trip(
            dc_id in DC_IDS,
            ip4 in any::<[u8; 4]>(),
            ip6 in any::<[u8; 16]>(),
            v6 in any::<bool>(),
            port in 1u16..,
            key in vec(any::<u8>(), KEY_LEN),
        ) {
            prop_assume!(key.iter().any(|&b| b != 0));
            let ip: &[u8] = if v6 { &ip6 } else { &ip4 };
            let text = pack(dc_id, ip, port, &key);
            let session = TelegramSession::from_telethon(&text).unwrap();
            prop_assert_eq!(session.dc_id, dc_id);
            prop_assert_eq!(session.port, port);
            prop_assert_eq!(&session.auth_key.as_bytes()[..], &key[..]);
            prop_assert_eq!(session.to_telethon(), text);
        }
    }

    #[test]
    fn a_grammers_dc_option_reads_to_the_same_session() {
        for fixture in fixtures() {
            let telethon = TelegramSession::from_telethon(&fixture.string_session).unwrap();
            let hex: String = telethon
                .auth_key
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let json = serde_json::json!({
                "id": telethon.dc_id,
                "ipv4": if telethon.server_address.is_ipv4() { format!("{}:{}", telethon.server_address, telethon.port) } else { "149.154.167.91:443".into() },
                "ipv6": "[2001:67c:4e8:f004::a]:443",
                "auth_key": hex,
            });
            let grammers = TelegramSession::parse(&json.to_string()).unwrap();
            assert_eq!(grammers.auth_key.id(), fixture.auth_key_id);
            assert_eq!(grammers.dc_id, telethon.dc_id);
        }
        let no_key = r#"{"id": 2, "ipv4": "149.154.167.51:443", "ipv6": "[::1]:443", "auth_key": null}"#;
        assert_eq!(
            TelegramSession::parse(no_key).unwrap_err().to_string(),
            "is not a usable grammers session: it has no auth key (the account never logged in there)"
        );
        let short = r#"{"id": 2, "ipv4": "149.154.167.51:443", "auth_key": "abcd"}"#;
        assert_eq!(
            TelegramSession::parse(short),
            Err(SessionError::Grammers("its auth_key is not 512 hex digits"))
        );
        assert_eq!(TelegramSession::parse(r#"{"id": 9}"#), Err(SessionError::DcId(9)));
    }
}
