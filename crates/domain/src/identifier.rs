//! Who a campaign target is: a username, a numeric Telegram user id or a phone number, read from a
//! cell of an uploaded list. Lists come from spreadsheets, so cells hold links instead of names and
//! floats (`123.0`) instead of integers; this module reads them as the person meant them.

use std::fmt;

use crate::{
    phone::{Phone, PhoneError, Region},
    username::{Username, UsernameError},
};

/// A Telegram numeric user id: a positive 64-bit integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlatformUserId(i64);

impl PlatformUserId {
    pub fn new(id: i64) -> Option<Self> {
        (id > 0).then_some(Self(id))
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// Reads `123`, ` 123 ` or `123.0` (spreadsheets store numbers as floats). Zero, negative,
    /// fractional and too large numbers are refused, and so are leading zeros: no id is written
    /// that way, so such a cell is more likely a phone number or a code.
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let digits = without_float_zeros(input.trim());
        let well_formed = !digits.is_empty() && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit());
        well_formed
            .then(|| digits.parse().ok().and_then(Self::new))
            .flatten()
            .ok_or(IdentifierError::UserId)
    }
}

impl fmt::Display for PlatformUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

word_enum!(
    /// The three ways a target can be named.
    IdentifierKind {
        Username => "username",
        UserId => "user_id",
        Phone => "phone",
    }
);

/// One way of naming a campaign target, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identifier {
    Username(Username),
    UserId(PlatformUserId),
    Phone(Phone),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("is empty")]
    Empty,
    #[error("is not a valid username: {0}")]
    Username(#[from] UsernameError),
    #[error("is a link to {0}, not to a Telegram user")]
    Host(String),
    #[error("is a Telegram link that does not name a user (an invite or a post, not a username)")]
    Link,
    #[error("is not a positive integer user id")]
    UserId,
    #[error("is not a phone number: {0}")]
    Phone(#[from] PhoneError),
}

impl Identifier {
    pub fn kind(&self) -> IdentifierKind {
        match self {
            Self::Username(_) => IdentifierKind::Username,
            Self::UserId(_) => IdentifierKind::UserId,
            Self::Phone(_) => IdentifierKind::Phone,
        }
    }

    /// The normalised form used to find duplicates, distinct across kinds: usernames lower-cased
    /// (Telegram ignores their case) as `u:anna_k`, ids as `i:123`, phones in E.164 as
    /// `p:+79123456789`.
    pub fn dedup_key(&self) -> String {
        match self {
            Self::Username(u) => format!("u:{}", u.as_str().to_ascii_lowercase()),
            Self::UserId(id) => format!("i:{id}"),
            Self::Phone(p) => format!("p:{p}"),
        }
    }

    /// The form stored and shown: usernames without `@` and with the case they were written in,
    /// ids as digits, phones in E.164.
    pub fn value(&self) -> String {
        match self {
            Self::Username(u) => u.as_str().to_string(),
            Self::UserId(id) => id.to_string(),
            Self::Phone(p) => p.to_string(),
        }
    }

    /// Parses a cell that is known to hold this kind of identifier; national phone numbers are read
    /// as numbers of `region`.
    pub fn parse_as(kind: IdentifierKind, cell: &str, region: Region) -> Result<Identifier, IdentifierError> {
        let cell = cell.trim();
        if cell.is_empty() {
            return Err(IdentifierError::Empty);
        }
        Ok(match kind {
            IdentifierKind::Username => Self::Username(parse_username(cell)?),
            IdentifierKind::UserId => Self::UserId(PlatformUserId::parse(cell)?),
            IdentifierKind::Phone => Self::Phone(Phone::parse(without_float_zeros(cell), region)?),
        })
    }
}

const TELEGRAM_HOSTS: [&str; 5] = ["t.me", "telegram.me", "telegram.dog", "www.t.me", "www.telegram.me"];

/// Paths of `t.me` links that lead to something other than a user or a public chat.
const NON_USER_PATHS: [&str; 7] = ["joinchat", "c", "s", "addstickers", "addemoji", "share", "proxy"];

/// Reads a username cell: `@name`, `name`, `t.me/name`, `https://t.me/name`,
/// `http://telegram.me/name`, `tg://resolve?domain=name`, with whitespace around; the name must then
/// satisfy Telegram's username rules.
pub fn parse_username(cell: &str) -> Result<Username, IdentifierError> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Err(IdentifierError::Empty);
    }
    let name = match link_target(cell) {
        Some(target) => target?,
        None => cell,
    };
    Ok(Username::parse(name)?)
}

/// `Some` when the cell is written as a link: the name it points at, or why it names no user.
fn link_target(cell: &str) -> Option<Result<&str, IdentifierError>> {
    if let Some(query) = strip_prefix_ignore_case(cell, "tg://resolve?") {
        let domain = query.split('&').find_map(|pair| pair.strip_prefix("domain="));
        return Some(domain.ok_or(IdentifierError::Link));
    }
    if strip_prefix_ignore_case(cell, "tg://").is_some() {
        return Some(Err(IdentifierError::Link));
    }
    let (host, path) =
        match strip_prefix_ignore_case(cell, "https://").or_else(|| strip_prefix_ignore_case(cell, "http://")) {
            Some(rest) => rest.split_once('/').unwrap_or((rest, "")),
            // Without a scheme only `host.tld/…` is a link; `ab/cd` is a mistyped name.
            None => cell.split_once('/').filter(|(host, _)| host.contains('.'))?,
        };
    if !TELEGRAM_HOSTS.iter().any(|h| host.eq_ignore_ascii_case(h)) {
        return Some(Err(IdentifierError::Host(host.to_string())));
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let first = path.split('/').find(|p| !p.is_empty());
    Some(match first {
        Some(name) if !name.starts_with('+') && !NON_USER_PATHS.contains(&name) => Ok(name),
        _ => Err(IdentifierError::Link),
    })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// `123.0` and `123.00` as `123`: what a spreadsheet writes for a whole number kept as a float.
/// Anything else is returned as it is.
fn without_float_zeros(s: &str) -> &str {
    match s.split_once('.') {
        Some((int, frac))
            if !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && !frac.is_empty()
                && frac.bytes().all(|b| b == b'0') =>
        {
            int
        }
        _ => s,
    }
}

/// Fewer digits than this are not taken for a user id when guessing a column by its content (a column
/// named as ids, or mapped, still accepts any positive id).
const MIN_GUESSED_ID_DIGITS: usize = 5;

/// What a cell looks like, for finding which column holds which kind of identifier by its
/// content; `None` for a cell that looks like none of them. In order:
/// - empty: `None`;
/// - starting with `@`, or a `t.me` link: a username, if it is a valid one;
/// - starting with `+` or `00`, or digits with phone punctuation (brackets, hyphens, spaces), that
///   reads as a phone number of `region`: a phone;
/// - digits only (or with a spreadsheet's `.0`): 11–15 digits that read as a phone number are a
///   phone; 5 or more digits that are a positive 64-bit integer are a user id (Telegram ids have up
///   to 10 digits today; shorter numbers are counts, sizes or codes far more often than users);
/// - a valid bare username: a username.
///
/// Whenever this returns a kind, [`Identifier::parse_as`] with that kind accepts the cell.
pub fn guess_kind(cell: &str, region: Region) -> Option<IdentifierKind> {
    let cell = without_float_zeros(cell.trim());
    if cell.is_empty() {
        return None;
    }
    if cell.starts_with('@') || link_target(cell).is_some() {
        return parse_username(cell).is_ok().then_some(IdentifierKind::Username);
    }
    let phone_punctuation = cell.contains(['(', ')', '-', ' ', '\u{a0}']);
    if (cell.starts_with('+') || cell.starts_with("00") || phone_punctuation) && Phone::parse(cell, region).is_ok() {
        return Some(IdentifierKind::Phone);
    }
    if cell.bytes().all(|b| b.is_ascii_digit()) {
        if (11..=15).contains(&cell.len()) && Phone::parse(cell, region).is_ok() {
            return Some(IdentifierKind::Phone);
        }
        let plausible_id = cell.len() >= MIN_GUESSED_ID_DIGITS && PlatformUserId::parse(cell).is_ok();
        return plausible_id.then_some(IdentifierKind::UserId);
    }
    Username::parse(cell).is_ok().then_some(IdentifierKind::Username)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ru() -> Region {
        Region::default()
    }

    fn username(cell: &str) -> Result<String, IdentifierError> {
        parse_username(cell).map(|u| u.as_str().to_string())
    }

    #[test]
    fn reads_usernames_however_written() {
        for cell in [
            "anna_k",
            "@anna_k",
            "  @anna_k\t",
            "t.me/anna_k",
            "https://t.me/anna_k",
            "HTTPS://T.ME/anna_k/",
            "http://telegram.me/anna_k",
            "https://telegram.dog/anna_k?start=ref",
            "www.t.me/anna_k",
            "tg://resolve?domain=anna_k",
            "tg://resolve?domain=anna_k&start=x",
        ] {
            assert_eq!(username(cell).as_deref(), Ok("anna_k"), "{cell:?}");
        }
        assert_eq!(username("@Anna_K").as_deref(), Ok("Anna_K"));
    }

    #[test]
    fn says_why_a_username_is_rejected() {
        assert_eq!(parse_username(" "), Err(IdentifierError::Empty));
        assert_eq!(
            parse_username("@1anna"),
            Err(IdentifierError::Username(UsernameError::FirstChar))
        );
        assert_eq!(parse_username("t.me/+AbCdEf123"), Err(IdentifierError::Link));
        assert_eq!(parse_username("https://t.me/joinchat/AbCd"), Err(IdentifierError::Link));
        assert_eq!(parse_username("https://t.me/"), Err(IdentifierError::Link));
        assert_eq!(
            parse_username("tg://resolve?phone=79123456789"),
            Err(IdentifierError::Link)
        );
        assert_eq!(
            parse_username("https://vk.com/anna_k"),
            Err(IdentifierError::Host("vk.com".into()))
        );
        assert_eq!(
            parse_username("@1anna").unwrap_err().to_string(),
            "is not a valid username: must start with a letter"
        );
        assert_eq!(
            parse_username("anna/k").unwrap_err().to_string(),
            "is not a valid username: may contain only Latin letters, digits and underscores (found '/')"
        );
    }

    #[test]
    fn reads_user_ids_as_spreadsheets_write_them() {
        for (cell, id) in [
            ("123", 123),
            (" 123 ", 123),
            ("123.0", 123),
            ("5012345678.00", 5_012_345_678),
        ] {
            assert_eq!(PlatformUserId::parse(cell).map(PlatformUserId::get), Ok(id), "{cell:?}");
        }
        for cell in [
            "0",
            "-5",
            "1.5",
            "abc",
            "",
            "1e5",
            "+5",
            "0123",
            "9223372036854775808",
            "12 34",
            ".0",
        ] {
            assert_eq!(PlatformUserId::parse(cell), Err(IdentifierError::UserId), "{cell:?}");
        }
        assert_eq!(PlatformUserId::new(0), None);
        assert_eq!(PlatformUserId::new(i64::MAX).map(PlatformUserId::get), Some(i64::MAX));
        assert_eq!(
            PlatformUserId::parse("-5").unwrap_err().to_string(),
            "is not a positive integer user id"
        );
    }

    #[test]
    fn kinds_have_one_spelling_each() {
        assert_eq!(IdentifierKind::parse("USER_ID"), Some(IdentifierKind::UserId));
        assert_eq!(IdentifierKind::parse(" Phone "), Some(IdentifierKind::Phone));
        assert_eq!(IdentifierKind::parse("username"), Some(IdentifierKind::Username));
        assert_eq!(IdentifierKind::parse("email"), None);
        assert_eq!(IdentifierKind::UserId.as_str(), "user_id");
    }

    #[test]
    fn parses_a_cell_of_a_known_kind() {
        let parse = |kind, cell| Identifier::parse_as(kind, cell, ru());
        let anna = parse(IdentifierKind::Username, " https://t.me/Anna_K ").unwrap();
        assert_eq!(
            (anna.kind(), anna.value()),
            (IdentifierKind::Username, "Anna_K".to_string())
        );
        let id = parse(IdentifierKind::UserId, "123.0").unwrap();
        assert_eq!((id.kind(), id.value()), (IdentifierKind::UserId, "123".to_string()));
        let phone = parse(IdentifierKind::Phone, "8 (912) 345-67-89").unwrap();
        assert_eq!(
            (phone.kind(), phone.value()),
            (IdentifierKind::Phone, "+79123456789".to_string())
        );
        assert_eq!(
            parse(IdentifierKind::Phone, "79123456789.0").unwrap().value(),
            "+79123456789"
        );
        assert_eq!(parse(IdentifierKind::Phone, "  "), Err(IdentifierError::Empty));
        assert_eq!(
            parse(IdentifierKind::Phone, "+999 123456789").unwrap_err().to_string(),
            "is not a phone number: has an unknown country code +999"
        );
        assert_eq!(
            parse(IdentifierKind::Username, "@ab").unwrap_err().to_string(),
            "is not a valid username: must be 5–32 characters long (got 2)"
        );
        assert_eq!(parse(IdentifierKind::UserId, "@anna_k"), Err(IdentifierError::UserId));
    }

    #[test]
    fn dedup_keys_ignore_how_a_person_was_written() {
        let key = |kind, cell| Identifier::parse_as(kind, cell, ru()).unwrap().dedup_key();
        assert_eq!(key(IdentifierKind::Username, "@Anna_K"), "u:anna_k");
        assert_eq!(key(IdentifierKind::Username, "https://t.me/anna_k"), "u:anna_k");
        assert_eq!(key(IdentifierKind::UserId, "123.0"), "i:123");
        assert_eq!(key(IdentifierKind::Phone, "8 912 345 67 89"), "p:+79123456789");
        assert_eq!(key(IdentifierKind::Phone, "+7 (912) 345-67-89"), "p:+79123456789");
        // An id and a phone number with the same digits are different people.
        assert_ne!(
            key(IdentifierKind::UserId, "79123456789"),
            key(IdentifierKind::Phone, "79123456789")
        );
    }

    #[test]
    fn guesses_the_kind_of_a_cell() {
        use IdentifierKind::*;
        let cases = [
            ("", None),
            ("   ", None),
            ("@anna_k", Some(Username)),
            ("@ab", None),
            ("https://t.me/anna_k", Some(Username)),
            ("t.me/+AbCdEf", None),
            ("anna_k", Some(Username)),
            ("Anna Karenina", None),
            ("+7 912 345 67 89", Some(Phone)),
            ("+79123456789", Some(Phone)),
            ("8 (912) 345-67-89", Some(Phone)),
            ("0079123456789", Some(Phone)),
            ("79123456789", Some(Phone)),
            ("79123456789.0", Some(Phone)),
            ("89123456789", Some(Phone)),
            ("123456789", Some(UserId)),
            ("5012345678", Some(UserId)),
            ("123456.0", Some(UserId)),
            ("123.0", None),
            ("1234", None),
            ("99999999999", Some(UserId)),
            ("1234567890123456789", Some(UserId)),
            ("12345678901234567890", None),
            ("0", None),
            ("-5", None),
            ("1.5", None),
            ("+999 123", None),
            ("anna@example.com", None),
            ("https://vk.com/anna_k", None),
        ];
        for (cell, kind) in cases {
            assert_eq!(guess_kind(cell, ru()), kind, "{cell:?}");
        }
        assert_eq!(guess_kind("020 7946 0958", Region::parse("GB").unwrap()), Some(Phone));
    }

    fn region() -> impl Strategy<Value = Region> {
        proptest::sample::select(Region::all().collect::<Vec<_>>())
    }

    fn kind() -> impl Strategy<Value = IdentifierKind> {
        proptest::sample::select(IdentifierKind::ALL)
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(cell in any::<String>(), kind in kind(), region in region()) {
            let _ = Identifier::parse_as(kind, &cell, region);
            let _ = guess_kind(&cell, region);
            let _ = parse_username(&cell);
            let _ = PlatformUserId::parse(&cell);
        }

        #[test]
        fn a_guessed_kind_parses(
            cell in "[0-9+ ()a-zA-Z_@./:?=-]{0,30}|(@|https://t\\.me/|tg://resolve\\?domain=)?[a-z][a-z0-9_]{3,10}",
            region in region(),
        ) {
            if let Some(kind) = guess_kind(&cell, region) {
                let parsed = Identifier::parse_as(kind, &cell, region);
                prop_assert!(parsed.is_ok(), "{cell:?} guessed {kind} but {parsed:?}");
                prop_assert_eq!(parsed.unwrap().kind(), kind);
            }
        }

        #[test]
        fn a_value_reads_back_as_the_same_identifier(cell in "[0-9+ ()a-z_@.-]{0,20}", region in region()) {
            for &kind in IdentifierKind::ALL {
                if let Ok(id) = Identifier::parse_as(kind, &cell, region) {
                    prop_assert_eq!(Identifier::parse_as(kind, &id.value(), region), Ok(id));
                }
            }
        }
    }
}
