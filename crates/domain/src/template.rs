//! Personal message templates: text with `{username}`, `{first_name}` and `{last_name}`.

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 3] = ["username", "first_name", "last_name"];

/// Telegram's limit on the length of one text message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Placeholder(&'static str),
}

/// A template that parsed: every placeholder is known, braces balance (`{{` and `}}` write literal
/// braces), the text is not blank and fits one Telegram message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplate {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_MESSAGE_CHARS} characters (got {0})")]
    TooLong(usize),
    #[error("uses an unknown placeholder {{{0}}}; allowed: {{username}}, {{first_name}}, {{last_name}}")]
    UnknownPlaceholder(String),
    #[error("has a '{{' at character {0} that is never closed; write '{{{{' for a literal brace")]
    Unclosed(usize),
    #[error("has a '}}' at character {0} with no opening brace; write '}}}}' for a literal brace")]
    Unopened(usize),
}

impl MessageTemplate {
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let len = source.chars().count();
        if len > MAX_MESSAGE_CHARS {
            return Err(TemplateError::TooLong(len));
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = source.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(TemplateError::Unopened(i + 1)),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '}')) => break,
                            Some((_, ch)) if ch != '{' => name.push(ch),
                            _ => return Err(TemplateError::Unclosed(i + 1)),
                        }
                    }
                    let known = PLACEHOLDERS
                        .iter()
                        .find(|p| **p == name.trim())
                        .ok_or(TemplateError::UnknownPlaceholder(name))?;
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Placeholder(known));
                }
                _ => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self {
            source: source.to_string(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Writes the message for one person; `value` answers each placeholder (an unknown value is
    /// written as empty text, never as the raw placeholder).
    pub fn render(&self, value: impl Fn(&str) -> Option<String>) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Placeholder(name) => value(name).unwrap_or_default(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders_and_literal_braces() {
        let t = MessageTemplate::parse("Привет, {first_name}! {{not a placeholder}} @{username}").unwrap();
        let out = t.render(|name| match name {
            "first_name" => Some("Анна".into()),
            "username" => Some("anna_k".into()),
            _ => None,
        });
        assert_eq!(out, "Привет, Анна! {not a placeholder} @anna_k");
        let missing = MessageTemplate::parse("Hi {last_name}.").unwrap().render(|_| None);
        assert_eq!(missing, "Hi .");
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(MessageTemplate::parse(" \n"), Err(TemplateError::Empty));
        assert_eq!(
            MessageTemplate::parse("Hi {name}"),
            Err(TemplateError::UnknownPlaceholder("name".into()))
        );
        assert_eq!(MessageTemplate::parse("Hi {username"), Err(TemplateError::Unclosed(4)));
        assert_eq!(MessageTemplate::parse("Hi } there"), Err(TemplateError::Unopened(4)));
        assert_eq!(
            MessageTemplate::parse(&"я".repeat(4097)),
            Err(TemplateError::TooLong(4097))
        );
        assert!(MessageTemplate::parse(&"я".repeat(4096)).is_ok());
        let err = TemplateError::UnknownPlaceholder("name".into()).to_string();
        assert!(err.contains("{name}"), "{err}");
    }
}
