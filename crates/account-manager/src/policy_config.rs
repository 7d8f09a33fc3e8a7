//! The limits and pauses of [`Policy`], configured per platform and action type from JSON.
//!
//! Layers, each overriding only what it names: the defaults ([`Policy::default`]) ← the file named by
//! `INVITE_POLICY_FILE` ← inline JSON in `INVITE_POLICY`. A layer that is empty (or only whitespace)
//! changes nothing. A full example:
//!
//! ```json
//! {
//!   "telegram": {
//!     "invite":  {"per_account": [{"cap": 30, "period": "24h"}], "per_channel": [{"cap": 15, "period": "24h"}],
//!                 "lifetime_per_channel": 200, "pause": ["10m", "15m"], "contacts_strangers": true},
//!     "message": {"per_account": [{"cap": 20, "period": "24h"}], "pause": ["2m", "5m"]},
//!     "resolve_username": {"per_account": [{"cap": 20, "period": "1h"}, {"cap": 100, "period": "24h"}]}
//!   },
//!   "flood_margin": "30s", "peer_flood_rest": "24h", "peer_flood_max": "7d", "lease_ttl": "5m",
//!   "active_hours": {"utc_offset": "+03:00", "start": "09:00", "end": "21:00", "spread": true}
//! }
//! ```
//!
//! - Platforms: only `telegram` runs today, so it is the only platform key; a policy for `whatsapp`
//!   or `instagram` is refused rather than kept for later.
//! - Actions (under the platform): `invite`, `message`, `resolve_username`, `import_contact`,
//!   `channel_lookup`. Each setting of an action given replaces that setting only; a list of windows
//!   replaces the whole list (`[]` for no rolling limit).
//!   - `per_account`, `per_channel`: rolling windows `{"cap": N, "period": D}`, cap ≥ 1, 0 < period ≤ 30d.
//!   - `lifetime_per_channel`: a cap ≥ 1 on grants per (account, channel) ever; `null` removes it.
//!   - `pause`: `[low, high]`, the pause after each grant drawn uniformly between them; low ≤ high ≤ 24h.
//!   - `contacts_strangers`: `true` or `false`; such actions stop while the account has PEER_FLOOD.
//! - Platform-independent settings (top level): `flood_margin` (≤ 1h), `peer_flood_rest` and
//!   `peer_flood_max` (0 < rest ≤ max ≤ 30d), `lease_ttl` (30s to 1h), and `active_hours`:
//!   `utc_offset` `"+HH:MM"`/`"-HH:MM"` within ±14:00, `start` < `end` as `"HH:MM"` local time (`end`
//!   may be `"24:00"`), `spread` (`true`/`false`). Given fields override the current active hours;
//!   turning them on needs `start` and `end` (the offset defaults to `+00:00`, `spread` to `false`);
//!   `"active_hours": null` turns them off.
//! - Durations: `"90s"`, `"15m"`, `"24h"`, `"7d"`, or a whole number of seconds (`90` or `"90"`).
//!
//! Anything else — an unknown key at any level, a wrong type, a value out of range — is an error naming
//! the layer, the JSON path and the value; a layer with an error changes nothing.

use chrono::Duration;
use domain::outcome::AmAction;
use serde_json::{json, Map, Value};

use crate::policy::{ActionPolicy, ActiveHours, Policy, Window};

/// The one platform a policy may be given for.
const PLATFORM: &str = "telegram";
/// Platforms the service knows of but cannot run yet.
const NOT_YET: &[&str] = &["whatsapp", "instagram"];
const TOP_KEYS: &[&str] = &[
    PLATFORM,
    "flood_margin",
    "peer_flood_rest",
    "peer_flood_max",
    "lease_ttl",
    "active_hours",
];
const ACTION_KEYS: &[&str] = &[
    "per_account",
    "per_channel",
    "lifetime_per_channel",
    "pause",
    "contacts_strangers",
];
const WINDOW_KEYS: &[&str] = &["cap", "period"];
const HOURS_KEYS: &[&str] = &["utc_offset", "start", "end", "spread"];

const A_DURATION: &str = r#"a duration such as "90s", "15m", "24h", "7d" or a whole number of seconds"#;
const A_TIME: &str = r#"a time of day HH:MM such as "09:00""#;
const AN_OFFSET: &str = r#"a UTC offset +HH:MM or -HH:MM such as "+03:00""#;

/// One problem in one layer of the policy. Every message names the layer and the JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{layer} is not valid JSON: {message}")]
    NotJson { layer: String, message: String },
    #[error("{layer}: the policy must be a JSON object, not {found}")]
    NotAnObject { layer: String, found: String },
    #[error("{layer}: {path} is not a policy setting; settings: {settings}")]
    UnknownSetting {
        layer: String,
        path: String,
        settings: String,
    },
    #[error("{layer}: {platform} is not supported yet; policies can only be given for {PLATFORM}")]
    UnsupportedPlatform { layer: String, platform: String },
    #[error("{layer}: {path} is not an action; actions: {actions}")]
    UnknownAction {
        layer: String,
        path: String,
        actions: String,
    },
    #[error("{layer}: {path} must be {expected}, not {found}")]
    WrongType {
        layer: String,
        path: String,
        expected: &'static str,
        found: String,
    },
    #[error("{layer}: {path} is required {when}")]
    Missing {
        layer: String,
        path: String,
        when: &'static str,
    },
    #[error("{layer}: {path} is {value}; it must be {rule}")]
    OutOfRange {
        layer: String,
        path: String,
        value: String,
        rule: &'static str,
    },
    #[error("{layer}: {path}: the low end {low} is above the high end {high}")]
    PauseOrder {
        layer: String,
        path: String,
        low: String,
        high: String,
    },
    #[error("{layer}: active_hours: the start {start} is not before the end {end}")]
    HoursOrder { layer: String, start: String, end: String },
    #[error("{layer}: peer_flood_rest {rest} is above peer_flood_max {max}")]
    RestAboveMax { layer: String, rest: String, max: String },
}

/// Applies one JSON layer over a policy. `source` names the layer in messages (`"INVITE_POLICY"`,
/// `"INVITE_POLICY_FILE /etc/x.json"`). On an error the policy is left as it was.
pub fn apply(policy: &mut Policy, layer: &Value, source: &str) -> Result<(), PolicyError> {
    let at = Layer(source);
    let Value::Object(top) = layer else {
        return Err(PolicyError::NotAnObject {
            layer: source.to_string(),
            found: describe(layer),
        });
    };
    let mut next = policy.clone();
    for (key, value) in top {
        match key.as_str() {
            PLATFORM => apply_platform(&mut next, value, key, &at)?,
            "flood_margin" => {
                next.flood_margin =
                    at.duration_within(key, value, Duration::zero(), Duration::hours(1), "at most 1h")?
            }
            "peer_flood_rest" => next.peer_flood_rest = at.duration_within(key, value, SECOND, MONTH, UP_TO_30D)?,
            "peer_flood_max" => next.peer_flood_max = at.duration_within(key, value, SECOND, MONTH, UP_TO_30D)?,
            "lease_ttl" => {
                next.lease_ttl = at.duration_within(
                    key,
                    value,
                    Duration::seconds(30),
                    Duration::hours(1),
                    "between 30s and 1h",
                )?
            }
            "active_hours" => next.active_hours = active_hours(next.active_hours, value, &at)?,
            other if NOT_YET.contains(&other) => {
                return Err(PolicyError::UnsupportedPlatform {
                    layer: source.to_string(),
                    platform: other.to_string(),
                })
            }
            _ => return Err(at.unknown(key, TOP_KEYS)),
        }
    }
    if next.peer_flood_rest > next.peer_flood_max {
        return Err(PolicyError::RestAboveMax {
            layer: source.to_string(),
            rest: format_duration(next.peer_flood_rest),
            max: format_duration(next.peer_flood_max),
        });
    }
    *policy = next;
    Ok(())
}

/// The effective policy: the defaults ← the file (if given: its path and contents) ← `INVITE_POLICY`
/// (if given).
pub fn load(file_text: Option<(&str, &str)>, env: Option<&str>) -> Result<Policy, PolicyError> {
    let mut policy = Policy::default();
    if let Some((path, text)) = file_text {
        apply_text(&mut policy, text, &format!("INVITE_POLICY_FILE {path}"))?;
    }
    if let Some(text) = env {
        apply_text(&mut policy, text, "INVITE_POLICY")?;
    }
    Ok(policy)
}

/// The effective policy as JSON in the format [`apply`] reads (for `GET …/limits` and logs). Applying
/// it over any policy gives this policy back.
pub fn to_json(policy: &Policy) -> Value {
    let mut actions = Map::new();
    for action in AmAction::ALL {
        if let Some(rules) = policy.actions.get(action) {
            actions.insert(action.as_str().to_string(), action_json(rules));
        }
    }
    json!({
        PLATFORM: actions,
        "flood_margin": format_duration(policy.flood_margin),
        "peer_flood_rest": format_duration(policy.peer_flood_rest),
        "peer_flood_max": format_duration(policy.peer_flood_max),
        "lease_ttl": format_duration(policy.lease_ttl),
        "active_hours": policy.active_hours.map(|h| json!({
            "utc_offset": format_offset(h.utc_offset),
            "start": format_time(h.start),
            "end": format_time(h.end),
            "spread": h.spread,
        })),
    })
}

/// Parses `"90s"`, `"15m"`, `"24h"`, `"7d"` or a bare whole number of seconds (`"90"`). `None` for
/// anything else, including negative, fractional and absurdly long values.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    Duration::try_seconds(n.checked_mul(scale)?)
}

/// Writes a duration the way [`parse_duration`] reads it, in the largest whole unit: `"90s"`, `"10m"`,
/// `"1h"`, `"24h"`, `"7d"` (days only from two days up, so a day reads `"24h"`).
pub fn format_duration(d: Duration) -> String {
    let s = d.num_seconds();
    if s != 0 && s % 86_400 == 0 && s.abs() >= 2 * 86_400 {
        format!("{}d", s / 86_400)
    } else if s != 0 && s % 3_600 == 0 {
        format!("{}h", s / 3_600)
    } else if s != 0 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

const SECOND: Duration = Duration::seconds(1);
const MONTH: Duration = Duration::days(30);
const UP_TO_30D: &str = "more than 0s and at most 30d";

fn apply_text(policy: &mut Policy, text: &str, source: &str) -> Result<(), PolicyError> {
    if text.trim().is_empty() {
        return Ok(());
    }
    let layer: Value = serde_json::from_str(text).map_err(|e| PolicyError::NotJson {
        layer: source.to_string(),
        message: e.to_string(),
    })?;
    apply(policy, &layer, source)
}

fn apply_platform(policy: &mut Policy, value: &Value, path: &str, at: &Layer) -> Result<(), PolicyError> {
    let actions = at.object(path, value, r#"an object of action types such as "invite""#)?;
    for (name, value) in actions {
        let path = format!("{path}.{name}");
        let action =
            AmAction::parse(name)
                .filter(|a| a.as_str() == name)
                .ok_or_else(|| PolicyError::UnknownAction {
                    layer: at.0.to_string(),
                    path: path.clone(),
                    actions: AmAction::names().join(", "),
                })?;
        let base = match policy.actions.get(&action) {
            Some(rules) => rules.clone(),
            None => Policy::default().action(action).clone(),
        };
        let rules = apply_action(base, value, &path, at)?;
        policy.actions.insert(action, rules);
    }
    Ok(())
}

fn apply_action(mut rules: ActionPolicy, value: &Value, path: &str, at: &Layer) -> Result<ActionPolicy, PolicyError> {
    for (key, value) in at.object(path, value, "an object of settings")? {
        let path = format!("{path}.{key}");
        match key.as_str() {
            "per_account" => rules.per_account = at.windows(&path, value)?,
            "per_channel" => rules.per_channel = at.windows(&path, value)?,
            "lifetime_per_channel" => {
                rules.lifetime_per_channel = match value {
                    Value::Null => None,
                    Value::Number(_) => Some(at.cap(&path, value)?),
                    _ => return Err(at.wrong(&path, "a whole number, or null for no cap", value)),
                }
            }
            "pause" => rules.pause = at.pause(&path, value)?,
            "contacts_strangers" => rules.contacts_strangers = at.boolean(&path, value)?,
            _ => return Err(at.unknown(&path, ACTION_KEYS)),
        }
    }
    Ok(rules)
}

fn active_hours(current: Option<ActiveHours>, value: &Value, at: &Layer) -> Result<Option<ActiveHours>, PolicyError> {
    const PATH: &str = "active_hours";
    if value.is_null() {
        return Ok(None);
    }
    let fields = at.object(PATH, value, "an object, or null to turn active hours off")?;
    let mut utc_offset = current.map(|h| h.utc_offset);
    let mut start = current.map(|h| h.start);
    let mut end = current.map(|h| h.end);
    let mut spread = current.map(|h| h.spread);
    for (key, value) in fields {
        let path = format!("{PATH}.{key}");
        match key.as_str() {
            "utc_offset" => utc_offset = Some(at.offset(&path, value)?),
            "start" => start = Some(at.time(&path, value)?),
            "end" => end = Some(at.time(&path, value)?),
            "spread" => spread = Some(at.boolean(&path, value)?),
            _ => return Err(at.unknown(&path, HOURS_KEYS)),
        }
    }
    let required = |field: &str| PolicyError::Missing {
        layer: at.0.to_string(),
        path: format!("{PATH}.{field}"),
        when: "to turn active hours on",
    };
    let start = start.ok_or_else(|| required("start"))?;
    let end = end.ok_or_else(|| required("end"))?;
    if start >= end {
        return Err(PolicyError::HoursOrder {
            layer: at.0.to_string(),
            start: format_time(start),
            end: format_time(end),
        });
    }
    Ok(Some(ActiveHours {
        utc_offset: utc_offset.unwrap_or_else(Duration::zero),
        start,
        end,
        spread: spread.unwrap_or(false),
    }))
}

fn action_json(rules: &ActionPolicy) -> Value {
    let windows = |ws: &[Window]| -> Vec<Value> {
        ws.iter()
            .map(|w| json!({"cap": w.cap, "period": format_duration(w.period)}))
            .collect()
    };
    json!({
        "per_account": windows(&rules.per_account),
        "per_channel": windows(&rules.per_channel),
        "lifetime_per_channel": rules.lifetime_per_channel,
        "pause": [format_duration(rules.pause.0), format_duration(rules.pause.1)],
        "contacts_strangers": rules.contacts_strangers,
    })
}

/// `"HH:MM"` (`00:00` to `24:00`) as the time since midnight.
fn parse_time(text: &str) -> Option<Duration> {
    let b = text.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![b[0], b[1], b[3], b[4]].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let hours = i64::from((b[0] - b'0') * 10 + (b[1] - b'0'));
    let minutes = i64::from((b[3] - b'0') * 10 + (b[4] - b'0'));
    (minutes < 60 && (hours < 24 || (hours == 24 && minutes == 0)))
        .then(|| Duration::hours(hours) + Duration::minutes(minutes))
}

fn format_time(d: Duration) -> String {
    let minutes = d.num_minutes();
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn format_offset(d: Duration) -> String {
    let sign = if d < Duration::zero() { '-' } else { '+' };
    format!("{sign}{}", format_time(d.abs()))
}

/// A JSON value in a message: strings and scalars as written, containers by kind.
fn describe(value: &Value) -> String {
    match value {
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
        other => other.to_string(),
    }
}

/// The layer being applied, for messages.
struct Layer<'a>(&'a str);

impl Layer<'_> {
    fn unknown(&self, path: &str, settings: &[&str]) -> PolicyError {
        PolicyError::UnknownSetting {
            layer: self.0.to_string(),
            path: path.to_string(),
            settings: settings.join(", "),
        }
    }

    fn wrong(&self, path: &str, expected: &'static str, found: &Value) -> PolicyError {
        PolicyError::WrongType {
            layer: self.0.to_string(),
            path: path.to_string(),
            expected,
            found: describe(found),
        }
    }

    fn out_of_range(&self, path: &str, value: impl Into<String>, rule: &'static str) -> PolicyError {
        PolicyError::OutOfRange {
            layer: self.0.to_string(),
            path: path.to_string(),
            value: value.into(),
            rule,
        }
    }

    fn object<'v>(
        &self,
        path: &str,
        value: &'v Value,
        expected: &'static str,
    ) -> Result<&'v Map<String, Value>, PolicyError> {
        value.as_object().ok_or_else(|| self.wrong(path, expected, value))
    }

    fn boolean(&self, path: &str, value: &Value) -> Result<bool, PolicyError> {
        value.as_bool().ok_or_else(|| self.wrong(path, "true or false", value))
    }

    fn cap(&self, path: &str, value: &Value) -> Result<u32, PolicyError> {
        match (value.as_u64(), value.as_i64()) {
            (Some(n), _) if n >= 1 => {
                u32::try_from(n).map_err(|_| self.out_of_range(path, n.to_string(), "at most 4294967295"))
            }
            (Some(n), _) => Err(self.out_of_range(path, n.to_string(), "at least 1")),
            (None, Some(n)) => Err(self.out_of_range(path, n.to_string(), "at least 1")),
            (None, None) => Err(self.wrong(path, "a whole number", value)),
        }
    }

    /// A duration, and how it was written (for messages).
    fn duration(&self, path: &str, value: &Value) -> Result<(Duration, String), PolicyError> {
        let parsed = match value {
            Value::String(s) => parse_duration(s).map(|d| (d, s.clone())),
            Value::Number(n) => n
                .as_u64()
                .and_then(|s| i64::try_from(s).ok())
                .and_then(Duration::try_seconds)
                .map(|d| (d, format!("{n}s"))),
            _ => None,
        };
        parsed.ok_or_else(|| self.wrong(path, A_DURATION, value))
    }

    fn duration_within(
        &self,
        path: &str,
        value: &Value,
        min: Duration,
        max: Duration,
        rule: &'static str,
    ) -> Result<Duration, PolicyError> {
        let (d, written) = self.duration(path, value)?;
        if d < min || d > max {
            return Err(self.out_of_range(path, written, rule));
        }
        Ok(d)
    }

    fn windows(&self, path: &str, value: &Value) -> Result<Vec<Window>, PolicyError> {
        let items = value.as_array().ok_or_else(|| {
            self.wrong(
                path,
                r#"a list of windows such as [{"cap": 30, "period": "24h"}]"#,
                value,
            )
        })?;
        let mut windows = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{path}[{i}]");
            let fields = self.object(&path, item, r#"a window such as {"cap": 30, "period": "24h"}"#)?;
            let (mut cap, mut period) = (None, None);
            for (key, value) in fields {
                let path = format!("{path}.{key}");
                match key.as_str() {
                    "cap" => cap = Some(self.cap(&path, value)?),
                    "period" => period = Some(self.duration_within(&path, value, SECOND, MONTH, UP_TO_30D)?),
                    _ => return Err(self.unknown(&path, WINDOW_KEYS)),
                }
            }
            let required = |field: &str| PolicyError::Missing {
                layer: self.0.to_string(),
                path: format!("{path}.{field}"),
                when: "in every window",
            };
            windows.push(Window {
                cap: cap.ok_or_else(|| required("cap"))?,
                period: period.ok_or_else(|| required("period"))?,
            });
        }
        Ok(windows)
    }

    fn pause(&self, path: &str, value: &Value) -> Result<(Duration, Duration), PolicyError> {
        const A_PAIR: &str = r#"a pair of durations such as ["10m", "15m"]"#;
        let [low, high] = value
            .as_array()
            .and_then(|a| <&[Value; 2]>::try_from(a.as_slice()).ok())
            .ok_or_else(|| self.wrong(path, A_PAIR, value))?;
        let day = Duration::hours(24);
        let low_path = format!("{path}[0]");
        let (low, low_written) = self.duration(&low_path, low)?;
        if low > day {
            return Err(self.out_of_range(&low_path, low_written, "at most 24h"));
        }
        let high_path = format!("{path}[1]");
        let (high, high_written) = self.duration(&high_path, high)?;
        if high > day {
            return Err(self.out_of_range(&high_path, high_written, "at most 24h"));
        }
        if low > high {
            return Err(PolicyError::PauseOrder {
                layer: self.0.to_string(),
                path: path.to_string(),
                low: low_written,
                high: high_written,
            });
        }
        Ok((low, high))
    }

    fn time(&self, path: &str, value: &Value) -> Result<Duration, PolicyError> {
        value
            .as_str()
            .and_then(parse_time)
            .ok_or_else(|| self.wrong(path, A_TIME, value))
    }

    fn offset(&self, path: &str, value: &Value) -> Result<Duration, PolicyError> {
        let text = value.as_str().unwrap_or("");
        let sign = match text.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => 0,
        };
        let magnitude = text.get(1..).and_then(parse_time).filter(|_| sign != 0);
        let magnitude = magnitude.ok_or_else(|| self.wrong(path, AN_OFFSET, value))?;
        if magnitude > Duration::hours(14) {
            return Err(self.out_of_range(path, text, "between -14:00 and +14:00"));
        }
        Ok(magnitude * sign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = "INVITE_POLICY";

    fn applied(layer: Value) -> Result<Policy, PolicyError> {
        let mut policy = Policy::default();
        apply(&mut policy, &layer, ENV).map(|()| policy)
    }

    fn error_of(layer: Value) -> String {
        let before = Policy::default();
        let mut policy = before.clone();
        let err = apply(&mut policy, &layer, ENV).expect_err("the layer is invalid");
        assert_eq!(policy, before, "a layer with an error changes nothing");
        err.to_string()
    }

    #[test]
    fn an_empty_layer_keeps_the_defaults() {
        assert_eq!(applied(json!({})).unwrap(), Policy::default());
        assert_eq!(applied(json!({"telegram": {}})).unwrap(), Policy::default());
        assert_eq!(load(None, None).unwrap(), Policy::default());
        assert_eq!(
            load(Some(("/etc/p.json", "  \n")), Some("{}")).unwrap(),
            Policy::default()
        );
    }

    #[test]
    fn a_partial_layer_changes_only_what_it_names() {
        let policy = applied(json!({
            "telegram": {"invite": {"per_channel": [{"cap": 10, "period": "12h"}], "lifetime_per_channel": null}},
            "lease_ttl": "2m"
        }))
        .unwrap();
        let mut expected = Policy::default();
        let invite = expected.actions.get_mut(&AmAction::Invite).unwrap();
        invite.per_channel = vec![Window {
            cap: 10,
            period: Duration::hours(12),
        }];
        invite.lifetime_per_channel = None;
        expected.lease_ttl = Duration::minutes(2);
        assert_eq!(policy, expected);
        // The rest of invite is untouched.
        let invite = policy.action(AmAction::Invite);
        assert_eq!(
            invite.per_account,
            Policy::default().action(AmAction::Invite).per_account
        );
        assert_eq!(invite.pause, (Duration::minutes(10), Duration::minutes(15)));
    }

    #[test]
    fn the_documented_example_applies() {
        let policy = applied(json!({
          "telegram": {
            "invite":  {"per_account": [{"cap": 30, "period": "24h"}], "per_channel": [{"cap": 15, "period": "24h"}],
                        "lifetime_per_channel": 200, "pause": ["10m", "15m"], "contacts_strangers": true},
            "message": {"per_account": [{"cap": 20, "period": "24h"}], "pause": ["2m", "5m"]},
            "resolve_username": {"per_account": [{"cap": 20, "period": "1h"}, {"cap": 100, "period": "24h"}]}
          },
          "flood_margin": "30s", "peer_flood_rest": "24h", "peer_flood_max": "7d", "lease_ttl": "5m",
          "active_hours": {"utc_offset": "+03:00", "start": "09:00", "end": "21:00", "spread": true}
        }))
        .unwrap();
        assert_eq!(policy.action(AmAction::Message).per_account[0].cap, 20);
        assert_eq!(
            policy.active_hours,
            Some(ActiveHours {
                utc_offset: Duration::hours(3),
                start: Duration::hours(9),
                end: Duration::hours(21),
                spread: true,
            })
        );
        let mut rest = policy.clone();
        rest.actions.get_mut(&AmAction::Message).unwrap().per_account[0].cap = 30;
        rest.active_hours = None;
        assert_eq!(rest, Policy::default(), "everything else in the example is the default");
    }

    #[test]
    fn the_env_layer_wins_over_the_file() {
        let file =
            r#"{"telegram": {"invite": {"pause": ["5m", "6m"], "contacts_strangers": false}}, "lease_ttl": "10m"}"#;
        let env = r#"{"telegram": {"invite": {"pause": ["1m", "2m"]}}}"#;
        let policy = load(Some(("/etc/invite-policy.json", file)), Some(env)).unwrap();
        let invite = policy.action(AmAction::Invite);
        assert_eq!(invite.pause, (Duration::minutes(1), Duration::minutes(2)), "env wins");
        assert!(!invite.contacts_strangers, "the file's other settings stay");
        assert_eq!(policy.lease_ttl, Duration::minutes(10));
        assert_eq!(
            invite.per_account,
            Policy::default().action(AmAction::Invite).per_account
        );

        let only_file = load(Some(("/etc/invite-policy.json", file)), None).unwrap();
        assert_eq!(only_file.action(AmAction::Invite).pause.0, Duration::minutes(5));
    }

    #[test]
    fn active_hours_merge_over_the_current_ones_and_null_turns_them_off() {
        let on = load(
            Some((
                "/p.json",
                r#"{"active_hours": {"utc_offset": "-05:30", "start": "08:00", "end": "24:00"}}"#,
            )),
            Some(r#"{"active_hours": {"spread": true}}"#),
        )
        .unwrap();
        assert_eq!(
            on.active_hours,
            Some(ActiveHours {
                utc_offset: -(Duration::hours(5) + Duration::minutes(30)),
                start: Duration::hours(8),
                end: Duration::hours(24),
                spread: true,
            })
        );
        let off = load(
            Some(("/p.json", r#"{"active_hours": {"start": "08:00", "end": "20:00"}}"#)),
            Some(r#"{"active_hours": null}"#),
        )
        .unwrap();
        assert_eq!(off.active_hours, None);
    }

    #[test]
    fn to_json_round_trips() {
        let default = Policy::default();
        let shown = to_json(&default);
        assert_eq!(shown["telegram"]["invite"]["per_account"][0]["cap"], json!(30));
        assert_eq!(shown["telegram"]["invite"]["per_account"][0]["period"], json!("24h"));
        assert_eq!(shown["telegram"]["invite"]["pause"], json!(["10m", "15m"]));
        assert_eq!(shown["telegram"]["message"]["lifetime_per_channel"], Value::Null);
        assert_eq!(shown["peer_flood_max"], json!("7d"));
        assert_eq!(shown["active_hours"], Value::Null);
        assert_eq!(applied(shown).unwrap(), default);

        // A changed policy shown and re-applied over the defaults is itself.
        let custom = applied(json!({
            "telegram": {"channel_lookup": {"per_account": [], "pause": [0, "90s"], "contacts_strangers": true}},
            "flood_margin": 0,
            "active_hours": {"utc_offset": "-03:30", "start": "07:15", "end": "22:45", "spread": true}
        }))
        .unwrap();
        let shown = to_json(&custom);
        assert_eq!(shown["active_hours"]["utc_offset"], json!("-03:30"));
        assert_eq!(applied(shown).unwrap(), custom);
    }

    #[test]
    fn duration_parser() {
        let ok = [
            ("90s", 90),
            ("15m", 900),
            ("24h", 86_400),
            ("7d", 604_800),
            ("0s", 0),
            ("45", 45),
            ("0", 0),
            ("1h", 3_600),
        ];
        for (text, seconds) in ok {
            assert_eq!(parse_duration(text), Some(Duration::seconds(seconds)), "{text}");
        }
        let bad = [
            "",
            "s",
            "-5s",
            "+5s",
            "1.5h",
            "10 m",
            " 5s",
            "5s ",
            "10M",
            "1w",
            "5ms",
            "h5",
            "99999999999999999999d",
            "9999999999999999d",
            "٣s",
        ];
        for text in bad {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
        for (seconds, text) in [
            (0, "0s"),
            (90, "90s"),
            (600, "10m"),
            (3_600, "1h"),
            (86_400, "24h"),
            (172_800, "2d"),
            (604_800, "7d"),
            (90_000, "25h"),
        ] {
            assert_eq!(format_duration(Duration::seconds(seconds)), text);
            assert_eq!(parse_duration(text), Some(Duration::seconds(seconds)));
        }
        // A bare JSON number is seconds.
        let policy = applied(json!({"flood_margin": 45, "lease_ttl": "600"})).unwrap();
        assert_eq!(policy.flood_margin, Duration::seconds(45));
        assert_eq!(policy.lease_ttl, Duration::minutes(10));
    }

    #[test]
    fn each_mistake_has_its_own_message() {
        let cases = [
            (
                json!({"telegram": {"invite": {"per_acount": []}}}),
                "INVITE_POLICY: telegram.invite.per_acount is not a policy setting; settings: per_account, \
                 per_channel, lifetime_per_channel, pause, contacts_strangers",
            ),
            (
                json!({"flood_margn": "30s"}),
                "INVITE_POLICY: flood_margn is not a policy setting; settings: telegram, flood_margin, \
                 peer_flood_rest, peer_flood_max, lease_ttl, active_hours",
            ),
            (
                json!({"telegram": {"invites": {}}}),
                "INVITE_POLICY: telegram.invites is not an action; actions: invite, message, resolve_username, \
                 import_contact, channel_lookup",
            ),
            (
                json!({"whatsapp": {"invite": {}}}),
                "INVITE_POLICY: whatsapp is not supported yet; policies can only be given for telegram",
            ),
            (
                json!({"telegram": {"invite": {"per_account": [{"cap": 0, "period": "24h"}]}}}),
                "INVITE_POLICY: telegram.invite.per_account[0].cap is 0; it must be at least 1",
            ),
            (
                json!({"telegram": {"message": {"per_account": [{"cap": -3, "period": "24h"}]}}}),
                "INVITE_POLICY: telegram.message.per_account[0].cap is -3; it must be at least 1",
            ),
            (
                json!({"telegram": {"invite": {"per_channel": [{"cap": 1.5, "period": "24h"}]}}}),
                "INVITE_POLICY: telegram.invite.per_channel[0].cap must be a whole number, not 1.5",
            ),
            (
                json!({"telegram": {"invite": {"per_channel": [{"cap": 5, "period": "0s"}]}}}),
                "INVITE_POLICY: telegram.invite.per_channel[0].period is 0s; it must be more than 0s and at most 30d",
            ),
            (
                json!({"telegram": {"invite": {"per_account": [{"cap": 5, "period": "31d"}]}}}),
                "INVITE_POLICY: telegram.invite.per_account[0].period is 31d; it must be more than 0s and at most 30d",
            ),
            (
                json!({"telegram": {"invite": {"per_account": [{"cap": 5}]}}}),
                "INVITE_POLICY: telegram.invite.per_account[0].period is required in every window",
            ),
            (
                json!({"telegram": {"invite": {"per_account": [{"cap": 5, "period": "1d", "perod": "1d"}]}}}),
                "INVITE_POLICY: telegram.invite.per_account[0].perod is not a policy setting; settings: cap, period",
            ),
            (
                json!({"telegram": {"invite": {"per_account": {"cap": 5, "period": "1d"}}}}),
                r#"INVITE_POLICY: telegram.invite.per_account must be a list of windows such as [{"cap": 30, "period": "24h"}], not an object"#,
            ),
            (
                json!({"telegram": {"invite": {"lifetime_per_channel": 0}}}),
                "INVITE_POLICY: telegram.invite.lifetime_per_channel is 0; it must be at least 1",
            ),
            (
                json!({"telegram": {"invite": {"lifetime_per_channel": "200"}}}),
                r#"INVITE_POLICY: telegram.invite.lifetime_per_channel must be a whole number, or null for no cap, not "200""#,
            ),
            (
                json!({"telegram": {"invite": {"pause": ["15m", "10m"]}}}),
                "INVITE_POLICY: telegram.invite.pause: the low end 15m is above the high end 10m",
            ),
            (
                json!({"telegram": {"invite": {"pause": ["10m", "25h"]}}}),
                "INVITE_POLICY: telegram.invite.pause[1] is 25h; it must be at most 24h",
            ),
            (
                json!({"telegram": {"invite": {"pause": ["10m"]}}}),
                r#"INVITE_POLICY: telegram.invite.pause must be a pair of durations such as ["10m", "15m"], not an array"#,
            ),
            (
                json!({"telegram": {"invite": {"pause": ["10 minutes", "15m"]}}}),
                r#"INVITE_POLICY: telegram.invite.pause[0] must be a duration such as "90s", "15m", "24h", "7d" or a whole number of seconds, not "10 minutes""#,
            ),
            (
                json!({"telegram": {"invite": {"contacts_strangers": "yes"}}}),
                r#"INVITE_POLICY: telegram.invite.contacts_strangers must be true or false, not "yes""#,
            ),
            (
                json!({"lease_ttl": "10s"}),
                "INVITE_POLICY: lease_ttl is 10s; it must be between 30s and 1h",
            ),
            (
                json!({"lease_ttl": 7200}),
                "INVITE_POLICY: lease_ttl is 7200s; it must be between 30s and 1h",
            ),
            (
                json!({"peer_flood_rest": "10d"}),
                "INVITE_POLICY: peer_flood_rest 10d is above peer_flood_max 7d",
            ),
            (
                json!({"active_hours": {"utc_offset": "+15:00", "start": "09:00", "end": "21:00"}}),
                "INVITE_POLICY: active_hours.utc_offset is +15:00; it must be between -14:00 and +14:00",
            ),
            (
                json!({"active_hours": {"utc_offset": "03:00", "start": "09:00", "end": "21:00"}}),
                r#"INVITE_POLICY: active_hours.utc_offset must be a UTC offset +HH:MM or -HH:MM such as "+03:00", not "03:00""#,
            ),
            (
                json!({"active_hours": {"start": "21:00", "end": "09:00"}}),
                "INVITE_POLICY: active_hours: the start 21:00 is not before the end 09:00",
            ),
            (
                json!({"active_hours": {"start": "9am", "end": "21:00"}}),
                r#"INVITE_POLICY: active_hours.start must be a time of day HH:MM such as "09:00", not "9am""#,
            ),
            (
                json!({"active_hours": {"start": "09:00", "end": "24:30"}}),
                r#"INVITE_POLICY: active_hours.end must be a time of day HH:MM such as "09:00", not "24:30""#,
            ),
            (
                json!({"active_hours": {"end": "21:00"}}),
                "INVITE_POLICY: active_hours.start is required to turn active hours on",
            ),
            (
                json!({"active_hours": {"start": "09:00", "end": "21:00", "sprad": true}}),
                "INVITE_POLICY: active_hours.sprad is not a policy setting; settings: utc_offset, start, end, spread",
            ),
            (
                json!([{"telegram": {}}]),
                "INVITE_POLICY: the policy must be a JSON object, not an array",
            ),
        ];
        for (layer, message) in cases {
            assert_eq!(error_of(layer.clone()), message, "{layer}");
        }
    }

    #[test]
    fn load_names_the_layer_that_is_wrong() {
        assert_eq!(
            load(None, Some("{\"lease_ttl\": ")).unwrap_err().to_string(),
            "INVITE_POLICY is not valid JSON: EOF while parsing a value at line 1 column 14"
        );
        assert_eq!(
            load(Some(("/etc/x.json", "{telegram: 1}")), None)
                .unwrap_err()
                .to_string(),
            "INVITE_POLICY_FILE /etc/x.json is not valid JSON: key must be a string at line 1 column 2"
        );
        assert_eq!(
            load(Some(("/etc/x.json", r#"{"lease_ttl": "2h"}"#)), Some("{}"))
                .unwrap_err()
                .to_string(),
            "INVITE_POLICY_FILE /etc/x.json: lease_ttl is 2h; it must be between 30s and 1h"
        );
        // The env layer is checked against what the file made: max below the file's rest.
        assert_eq!(
            load(
                Some(("/etc/x.json", r#"{"peer_flood_rest": "2d"}"#)),
                Some(r#"{"peer_flood_max": "1d"}"#)
            )
            .unwrap_err()
            .to_string(),
            "INVITE_POLICY: peer_flood_rest 2d is above peer_flood_max 24h"
        );
    }
}
