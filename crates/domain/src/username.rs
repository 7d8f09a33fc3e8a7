//! Telegram public usernames (of users, channels and groups).

use std::fmt;

/// A username that satisfies Telegram's rules: 5–32 characters of ASCII letters, digits and
/// underscores, starting with a letter, with no trailing and no doubled underscore. Kept without the
/// `@` and with the case it was written in (Telegram compares usernames case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("must be 5–32 characters long (got {0})")]
    Length(usize),
    #[error("must start with a letter")]
    FirstChar,
    #[error("may contain only Latin letters, digits and underscores (found {0:?})")]
    Char(char),
    #[error("must not end with an underscore")]
    TrailingUnderscore,
    #[error("must not contain two underscores in a row")]
    DoubleUnderscore,
}

impl Username {
    /// Parses a bare username or one written as `@username`.
    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        let name = input.strip_prefix('@').unwrap_or(input);
        if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
            return Err(UsernameError::Char(c));
        }
        if !(5..=32).contains(&name.len()) {
            return Err(UsernameError::Length(name.len()));
        }
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(UsernameError::FirstChar);
        }
        if name.ends_with('_') {
            return Err(UsernameError::TrailingUnderscore);
        }
        if name.contains("__") {
            return Err(UsernameError::DoubleUnderscore);
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names_with_or_without_at() {
        assert_eq!(Username::parse("@durov_x").unwrap().as_str(), "durov_x");
        assert_eq!(Username::parse("Alice2024").unwrap().to_string(), "@Alice2024");
        assert!(Username::parse(&format!("a{}", "b".repeat(31))).is_ok());
    }

    #[test]
    fn rejects_what_telegram_rejects() {
        assert_eq!(Username::parse("abcd"), Err(UsernameError::Length(4)));
        assert_eq!(Username::parse(&"a".repeat(33)), Err(UsernameError::Length(33)));
        assert_eq!(Username::parse("1abcde"), Err(UsernameError::FirstChar));
        assert_eq!(Username::parse("_abcde"), Err(UsernameError::FirstChar));
        assert_eq!(Username::parse("abcde_"), Err(UsernameError::TrailingUnderscore));
        assert_eq!(Username::parse("ab__cde"), Err(UsernameError::DoubleUnderscore));
        assert_eq!(Username::parse("ab-cde"), Err(UsernameError::Char('-')));
        assert_eq!(Username::parse("имяканала"), Err(UsernameError::Char('и')));
    }
}
