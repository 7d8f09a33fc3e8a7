//! Where an invite campaign adds people: a Telegram group or channel, as a person may write it.

use std::fmt;

use crate::username::Username;

/// A reference to a group or channel, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChannelRef {
    /// A public group or channel: `@name`, `name`, `t.me/name`, `https://t.me/name`.
    Username(Username),
    /// A private invite link, `t.me/+hash` or `t.me/joinchat/hash`. It is only ever looked up to find
    /// the chat (`messages.checkChatInvite`), never used to join.
    InviteLink(String),
    /// A numeric chat id as the Bot API writes it (`-100…` for channels and supergroups, negative
    /// for basic groups), or a bare positive id; `t.me/c/<id>` links give `-100<id>`.
    Id(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelRefError {
    #[error("is empty")]
    Empty,
    #[error("is not a valid username: {0}")]
    Username(#[from] crate::username::UsernameError),
    #[error("has an invalid invite link hash {0:?}")]
    InviteHash(String),
    #[error("is not a valid numeric chat id")]
    Id,
    #[error("must be a Telegram link (t.me/…), got host {0:?}")]
    Host(String),
    #[error("is a link with no group or channel in it")]
    NoPath,
}

const TELEGRAM_HOSTS: [&str; 4] = ["t.me", "telegram.me", "telegram.dog", "www.t.me"];

impl ChannelRef {
    pub fn parse(input: &str) -> Result<Self, ChannelRefError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ChannelRefError::Empty);
        }
        if let Some(id) = parse_id(s) {
            return id;
        }
        let without_scheme = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .unwrap_or(s);
        match without_scheme.split_once('/') {
            Some((host, path)) => Self::from_link(host, path),
            None if without_scheme.contains('.') => Err(ChannelRefError::NoPath),
            None => Ok(Self::Username(Username::parse(without_scheme)?)),
        }
    }

    fn from_link(host: &str, path: &str) -> Result<Self, ChannelRefError> {
        let host = host.to_ascii_lowercase();
        if !TELEGRAM_HOSTS.contains(&host.as_str()) {
            return Err(ChannelRefError::Host(host));
        }
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let mut parts = path.split('/').filter(|p| !p.is_empty());
        let first = parts.next().ok_or(ChannelRefError::NoPath)?;
        if let Some(hash) = first.strip_prefix('+') {
            return invite_link(hash);
        }
        match first {
            "joinchat" => invite_link(parts.next().unwrap_or_default()),
            "c" => {
                let internal: i64 = parts
                    .next()
                    .and_then(|p| p.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or(ChannelRefError::Id)?;
                format!("-100{internal}")
                    .parse()
                    .map(Self::Id)
                    .map_err(|_| ChannelRefError::Id)
            }
            "s" => Ok(Self::Username(Username::parse(parts.next().unwrap_or_default())?)),
            name => Ok(Self::Username(Username::parse(name)?)),
        }
    }
}

fn parse_id(s: &str) -> Option<Result<ChannelRef, ChannelRefError>> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match s.parse::<i64>() {
        Ok(0) | Err(_) => Err(ChannelRefError::Id),
        Ok(id) => Ok(ChannelRef::Id(id)),
    })
}

fn invite_link(hash: &str) -> Result<ChannelRef, ChannelRefError> {
    let ok = (1..=64).contains(&hash.len())
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(ChannelRef::InviteLink(hash.to_string()))
    } else {
        Err(ChannelRefError::InviteHash(hash.to_string()))
    }
}

impl fmt::Display for ChannelRef {
    /// The canonical form stored and returned by the API.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Username(u) => write!(f, "{u}"),
            Self::InviteLink(hash) => write!(f, "https://t.me/+{hash}"),
            Self::Id(id) => write!(f, "{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        ChannelRef::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_the_ways_people_write_a_channel() {
        assert_eq!(canon("@my_channel"), "@my_channel");
        assert_eq!(canon("my_channel"), "@my_channel");
        assert_eq!(canon(" https://t.me/my_channel "), "@my_channel");
        assert_eq!(canon("t.me/my_channel/"), "@my_channel");
        assert_eq!(canon("http://telegram.me/my_channel?start=x"), "@my_channel");
        assert_eq!(canon("https://t.me/s/my_channel"), "@my_channel");
        assert_eq!(canon("https://t.me/my_channel/123"), "@my_channel");
        assert_eq!(canon("t.me/+AbC_d-123"), "https://t.me/+AbC_d-123");
        assert_eq!(canon("https://t.me/joinchat/AbCd123"), "https://t.me/+AbCd123");
        assert_eq!(canon("-1001234567890"), "-1001234567890");
        assert_eq!(canon("https://t.me/c/1234567890/55"), "-1001234567890");
        assert_eq!(canon("123456"), "123456");
    }

    #[test]
    fn rejects_what_is_not_a_channel() {
        assert_eq!(ChannelRef::parse("  "), Err(ChannelRefError::Empty));
        assert_eq!(ChannelRef::parse("0"), Err(ChannelRefError::Id));
        assert_eq!(ChannelRef::parse("99999999999999999999"), Err(ChannelRefError::Id));
        assert_eq!(
            ChannelRef::parse("https://example.com/chan"),
            Err(ChannelRefError::Host("example.com".into()))
        );
        assert_eq!(ChannelRef::parse("https://t.me/"), Err(ChannelRefError::NoPath));
        assert_eq!(
            ChannelRef::parse("t.me/+"),
            Err(ChannelRefError::InviteHash(String::new()))
        );
        assert!(matches!(ChannelRef::parse("@ab"), Err(ChannelRefError::Username(_))));
        assert!(matches!(ChannelRef::parse("канал"), Err(ChannelRefError::Username(_))));
    }
}
