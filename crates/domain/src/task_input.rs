//! Reading a task definition from the JSON a client sends: the service's own field names and the
//! aliases the platform's web client uses, every problem reported with the field it concerns.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::{
    channel::ChannelRef,
    task::{field, ActionType, Editable, Platform, Priority, Task, TaskSpec, TaskStatus},
    template::MessageTemplate,
    validation::{FieldError, FieldErrors},
};

pub const NAME_MAX_CHARS: usize = 255;
pub const DESCRIPTION_MAX_CHARS: usize = 1000;
/// Settings are a free JSON object; this bounds what one task may store.
pub const SETTINGS_MAX_BYTES: usize = 16 * 1024;
/// How far ahead a start may be scheduled.
pub const MAX_SCHEDULE_AHEAD_DAYS: i64 = 365;

const ALIAS_GROUP_ID: &str = "group_id";
const ALIAS_INVITE_TYPE: &str = "invite_type";
const ALIAS_INVITE_MESSAGE: &str = "invite_message";

/// A field as sent: left out, sent as `null`, sent with a value that parsed, or sent with one that
/// did not (already reported, so later rules stay quiet about it).
#[derive(Debug, Clone, PartialEq)]
enum Sent<T> {
    Absent,
    Null,
    Value(T),
    Invalid,
}

impl<T> Sent<T> {
    /// The new value of a field that may be cleared: `None` = keep the current one.
    fn update(self) -> Option<Option<T>> {
        match self {
            Sent::Absent | Sent::Invalid => None,
            Sent::Null => Some(None),
            Sent::Value(v) => Some(Some(v)),
        }
    }
}

/// Every field of the body, parsed on its own; cross-field rules come after.
struct RawTask {
    name: Sent<String>,
    description: Sent<String>,
    platform: Sent<Platform>,
    action_type: Sent<ActionType>,
    target_channel: Sent<ChannelRef>,
    message_template: Sent<MessageTemplate>,
    priority: Sent<Priority>,
    scheduled_start: Sent<DateTime<Utc>>,
    settings: Sent<Map<String, Value>>,
}

/// Why an update cannot be applied.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateError {
    /// The body is invalid (422).
    Invalid(FieldErrors),
    /// The task's status forbids any change (409).
    StatusLocked(TaskStatus),
    /// The task's status forbids changing this field (409).
    FieldLocked { field: &'static str, status: TaskStatus },
}

/// Parses the body of `POST /tasks`.
pub fn parse_new_task(body: &Value, now: DateTime<Utc>) -> Result<TaskSpec, FieldErrors> {
    let obj = as_object(body)?;
    let mut errors = FieldErrors::default();
    if let Some(status) = obj.get("status") {
        if status.as_str().and_then(TaskStatus::parse) != Some(TaskStatus::Pending) {
            errors.push(FieldError::new(
                &["body", "status"],
                "value_error",
                "status of a new task is always PENDING; start it with POST /tasks/{id}/start",
            ));
        }
    }
    let raw = parse_fields(obj, &mut errors);

    let name = require(raw.name, field::NAME, &mut errors);
    let platform = require_or(raw.platform, field::PLATFORM, Platform::Telegram, &mut errors);
    let action_type = require(raw.action_type, field::ACTION_TYPE, &mut errors);
    let priority = require_or(raw.priority, field::PRIORITY, Priority::Normal, &mut errors);
    let settings = match raw.settings {
        Sent::Value(s) => s,
        Sent::Absent | Sent::Null | Sent::Invalid => Map::new(),
    };
    let scheduled_start = raw.scheduled_start.update().flatten();
    if let Some(at) = scheduled_start {
        errors.take(check_schedule(at, now));
    }
    let target_channel = raw.target_channel;
    let message_template = raw.message_template;
    if let Some(action) = action_type {
        let sent = |invalid: bool, value: bool| invalid || value;
        check_needs(
            action,
            sent(
                target_channel == Sent::Invalid,
                matches!(target_channel, Sent::Value(_)),
            ),
            sent(
                message_template == Sent::Invalid,
                matches!(message_template, Sent::Value(_)),
            ),
            &mut errors,
        );
    }
    let (Some(name), Some(platform), Some(action_type), Some(priority)) = (name, platform, action_type, priority)
    else {
        return Err(errors);
    };
    let spec = TaskSpec {
        name,
        description: raw.description.update().flatten(),
        platform,
        action_type,
        target_channel: target_channel.update().flatten(),
        message_template: message_template.update().flatten(),
        priority,
        scheduled_start,
        settings,
    };
    errors.into_result(|| spec)
}

/// Applies the body of `PUT /tasks/{id}` to a stored task: fields left out keep their values, `null`
/// clears an optional field. Returns the new definition when the task's status allows the change.
pub fn apply_update(task: &Task, body: &Value, now: DateTime<Utc>) -> Result<TaskSpec, UpdateError> {
    let editable = task.status.editable();
    if matches!(editable, Editable::Nothing) {
        return Err(UpdateError::StatusLocked(task.status));
    }
    let obj = as_object(body).map_err(UpdateError::Invalid)?;
    let mut errors = FieldErrors::default();
    if obj.contains_key("status") {
        errors.push(FieldError::new(
            &["body", "status"],
            "value_error",
            "status cannot be set with PUT; use POST /tasks/{id}/start, /pause, /resume or /cancel",
        ));
    }
    let raw = parse_fields(obj, &mut errors);
    let current = &task.spec;
    let mut spec = current.clone();
    if let Some(v) = keep_required(raw.name, field::NAME, &mut errors) {
        spec.name = v;
    }
    if let Some(v) = keep_required(raw.platform, field::PLATFORM, &mut errors) {
        spec.platform = v;
    }
    if let Some(v) = keep_required(raw.action_type, field::ACTION_TYPE, &mut errors) {
        spec.action_type = v;
    }
    if let Some(v) = keep_required(raw.priority, field::PRIORITY, &mut errors) {
        spec.priority = v;
    }
    if let Some(v) = raw.settings.update() {
        spec.settings = v.unwrap_or_default();
    }
    if let Some(v) = raw.description.update() {
        spec.description = v;
    }
    if let Some(v) = raw.target_channel.update() {
        spec.target_channel = v;
    }
    if let Some(v) = raw.message_template.update() {
        spec.message_template = v;
    }
    if let Some(v) = raw.scheduled_start.update() {
        spec.scheduled_start = v;
        if let Some(at) = v.filter(|at| Some(*at) != current.scheduled_start) {
            errors.take(check_schedule(at, now));
        }
    }
    check_needs(
        spec.action_type,
        spec.target_channel.is_some(),
        spec.message_template.is_some(),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(UpdateError::Invalid(errors));
    }
    if let Editable::Only(allowed) = editable {
        if let Some(field) = current.changed_fields(&spec).into_iter().find(|f| !allowed.contains(f)) {
            return Err(UpdateError::FieldLocked {
                field,
                status: task.status,
            });
        }
    }
    Ok(spec)
}

fn as_object(body: &Value) -> Result<&Map<String, Value>, FieldErrors> {
    body.as_object()
        .ok_or_else(|| FieldError::new(&["body"], "model_attributes_type", "request body must be a JSON object").into())
}

fn require<T>(sent: Sent<T>, name: &'static str, errors: &mut FieldErrors) -> Option<T> {
    match sent {
        Sent::Value(v) => Some(v),
        Sent::Invalid => None,
        Sent::Absent | Sent::Null => {
            errors.push(FieldError::missing(&["body", name]));
            None
        }
    }
}

fn require_or<T>(sent: Sent<T>, name: &'static str, default: T, errors: &mut FieldErrors) -> Option<T> {
    match sent {
        Sent::Absent => Some(default),
        other => require(other, name, errors),
    }
}

/// For an update: `None` keeps the current value; `null` is refused for a required field.
fn keep_required<T>(sent: Sent<T>, name: &'static str, errors: &mut FieldErrors) -> Option<T> {
    match sent {
        Sent::Absent | Sent::Invalid => None,
        Sent::Null => {
            errors.push(FieldError::new(
                &["body", name],
                "value_error",
                format!("{name} may not be null"),
            ));
            None
        }
        Sent::Value(v) => Some(v),
    }
}

/// What each action needs besides the common fields.
fn check_needs(action: ActionType, has_channel: bool, has_template: bool, errors: &mut FieldErrors) {
    match action {
        ActionType::InviteToGroup if !has_channel => errors.push(FieldError::new(
            &["body", field::TARGET_CHANNEL],
            "missing",
            "target_channel is required when action_type is invite_to_group",
        )),
        ActionType::SendMessage if !has_template => errors.push(FieldError::new(
            &["body", field::MESSAGE_TEMPLATE],
            "missing",
            "message_template is required when action_type is send_message",
        )),
        _ => {}
    }
}

fn check_schedule(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), FieldError> {
    let loc = ["body", field::SCHEDULED_START];
    if at <= now {
        return Err(FieldError::new(
            &loc,
            "value_error",
            format!(
                "scheduled_start must be in the future (got {}, now is {})",
                at.to_rfc3339(),
                now.to_rfc3339()
            ),
        ));
    }
    if at > now + Duration::days(MAX_SCHEDULE_AHEAD_DAYS) {
        return Err(FieldError::new(
            &loc,
            "value_error",
            format!("scheduled_start must be at most {MAX_SCHEDULE_AHEAD_DAYS} days ahead"),
        ));
    }
    Ok(())
}

fn parse_fields(obj: &Map<String, Value>, errors: &mut FieldErrors) -> RawTask {
    let settings = field_of(obj, field::SETTINGS, errors, parse_settings);
    let settings_map = match &settings {
        Sent::Value(m) => Some(m),
        _ => None,
    };
    let alias = |key: &str| settings_map.and_then(|m| m.get(key));

    let action_type = with_alias(
        field_of(obj, field::ACTION_TYPE, errors, |v, loc| {
            parse_word(v, loc, ActionType::parse, ActionType::names)
        }),
        alias(ALIAS_INVITE_TYPE).map(|v| {
            parse_word(v, &["body", "settings", ALIAS_INVITE_TYPE], ActionType::parse, || {
                vec!["group_invite", "message"]
            })
        }),
        &["body", "settings", ALIAS_INVITE_TYPE],
        field::ACTION_TYPE,
        errors,
    );
    let target_channel = with_alias(
        field_of(obj, field::TARGET_CHANNEL, errors, parse_channel),
        alias(ALIAS_GROUP_ID).map(|v| parse_channel(v, &["body", "settings", ALIAS_GROUP_ID])),
        &["body", "settings", ALIAS_GROUP_ID],
        field::TARGET_CHANNEL,
        errors,
    );
    let message_template = with_alias(
        field_of(obj, field::MESSAGE_TEMPLATE, errors, parse_template),
        obj.get(ALIAS_INVITE_MESSAGE)
            .filter(|v| !v.is_null())
            .map(|v| parse_template(v, &["body", ALIAS_INVITE_MESSAGE])),
        &["body", ALIAS_INVITE_MESSAGE],
        field::MESSAGE_TEMPLATE,
        errors,
    );

    RawTask {
        name: field_of(obj, field::NAME, errors, parse_name),
        description: field_of(obj, field::DESCRIPTION, errors, parse_description),
        platform: field_of(obj, field::PLATFORM, errors, parse_platform),
        action_type,
        target_channel,
        message_template,
        priority: field_of(obj, field::PRIORITY, errors, |v, loc| {
            parse_word(v, loc, Priority::parse, || vec!["HIGH", "NORMAL", "MEDIUM", "LOW"])
        }),
        scheduled_start: field_of(obj, field::SCHEDULED_START, errors, parse_datetime),
        settings,
    }
}

fn field_of<T>(
    obj: &Map<String, Value>,
    name: &'static str,
    errors: &mut FieldErrors,
    parse: impl FnOnce(&Value, &[&str]) -> Result<T, FieldError>,
) -> Sent<T> {
    match obj.get(name) {
        None => Sent::Absent,
        Some(Value::Null) => Sent::Null,
        Some(v) => match parse(v, &["body", name]) {
            Ok(v) => Sent::Value(v),
            Err(e) => {
                errors.push(e);
                Sent::Invalid
            }
        },
    }
}

/// Merges a field with the alias the web client sends for it; both present must agree.
fn with_alias<T: PartialEq>(
    own: Sent<T>,
    alias: Option<Result<T, FieldError>>,
    alias_loc: &[&str],
    own_name: &str,
    errors: &mut FieldErrors,
) -> Sent<T> {
    let alias = match alias {
        None => return own,
        Some(Err(e)) => {
            errors.push(e);
            return own;
        }
        Some(Ok(v)) => v,
    };
    match own {
        Sent::Value(v) if v != alias => {
            errors.push(FieldError::new(
                alias_loc,
                "value_error",
                format!("{} conflicts with {own_name}; send one of them", alias_loc.join(".")),
            ));
            Sent::Value(v)
        }
        Sent::Value(v) => Sent::Value(v),
        Sent::Invalid => Sent::Invalid,
        Sent::Absent | Sent::Null => Sent::Value(alias),
    }
}

fn string<'a>(v: &'a Value, loc: &[&str]) -> Result<&'a str, FieldError> {
    v.as_str().ok_or_else(|| {
        FieldError::new(
            loc,
            "string_type",
            format!("{} must be a string", loc.last().copied().unwrap_or("value")),
        )
    })
}

fn last<'a>(loc: &[&'a str]) -> &'a str {
    loc.last().copied().unwrap_or("value")
}

fn parse_name(v: &Value, loc: &[&str]) -> Result<String, FieldError> {
    let name = string(v, loc)?.trim();
    let len = name.chars().count();
    if len == 0 {
        return Err(FieldError::new(loc, "string_too_short", "name must not be empty"));
    }
    if len > NAME_MAX_CHARS {
        return Err(FieldError::new(
            loc,
            "string_too_long",
            format!("name must be at most {NAME_MAX_CHARS} characters (got {len})"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(
            loc,
            "value_error",
            "name must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

fn parse_description(v: &Value, loc: &[&str]) -> Result<String, FieldError> {
    let text = string(v, loc)?;
    let len = text.chars().count();
    if len > DESCRIPTION_MAX_CHARS {
        return Err(FieldError::new(
            loc,
            "string_too_long",
            format!("description must be at most {DESCRIPTION_MAX_CHARS} characters (got {len})"),
        ));
    }
    Ok(text.to_string())
}

fn parse_word<T>(
    v: &Value,
    loc: &[&str],
    parse: impl Fn(&str) -> Option<T>,
    names: impl Fn() -> Vec<&'static str>,
) -> Result<T, FieldError> {
    let s = string(v, loc)?;
    parse(s).ok_or_else(|| {
        FieldError::new(
            loc,
            "enum",
            format!("{} must be one of {} (got {s:?})", last(loc), names().join(", ")),
        )
    })
}

fn parse_platform(v: &Value, loc: &[&str]) -> Result<Platform, FieldError> {
    let platform = parse_word(v, loc, Platform::parse, Platform::names)?;
    if !platform.is_supported() {
        return Err(FieldError::new(
            loc,
            "value_error",
            format!("platform not supported yet: {platform} (supported: telegram)"),
        ));
    }
    Ok(platform)
}

fn parse_channel(v: &Value, loc: &[&str]) -> Result<ChannelRef, FieldError> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() => n.to_string(),
        _ => {
            return Err(FieldError::new(
                loc,
                "string_type",
                format!(
                    "{} must be a string (@name, t.me link) or an integer chat id",
                    last(loc)
                ),
            ))
        }
    };
    ChannelRef::parse(&text).map_err(|e| FieldError::new(loc, "value_error", format!("{} {e}", last(loc))))
}

fn parse_template(v: &Value, loc: &[&str]) -> Result<MessageTemplate, FieldError> {
    MessageTemplate::parse(string(v, loc)?)
        .map_err(|e| FieldError::new(loc, "value_error", format!("{} {e}", last(loc))))
}

/// RFC 3339 (`2026-12-01T09:00:00Z`, any offset); a time without an offset is taken as UTC.
pub fn parse_datetime(v: &Value, loc: &[&str]) -> Result<DateTime<Utc>, FieldError> {
    let s = string(v, loc)?.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()))
        .map_err(|_| {
            FieldError::new(
                loc,
                "datetime_parsing",
                format!(
                    "{} must be an ISO 8601 date-time such as 2026-12-01T09:00:00Z (got {s:?})",
                    last(loc)
                ),
            )
        })
}

fn parse_settings(v: &Value, loc: &[&str]) -> Result<Map<String, Value>, FieldError> {
    let map = v
        .as_object()
        .ok_or_else(|| FieldError::new(loc, "dict_type", "settings must be a JSON object"))?;
    let size = v.to_string().len();
    if size > SETTINGS_MAX_BYTES {
        return Err(FieldError::new(
            loc,
            "value_error",
            format!("settings must be at most {SETTINGS_MAX_BYTES} bytes of JSON (got {size})"),
        ));
    }
    Ok(map.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
    }

    fn errors_of(body: Value) -> Vec<(String, String)> {
        parse_new_task(&body, now())
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.loc.join("."), e.msg))
            .collect()
    }

    fn stored(spec: TaskSpec, status: TaskStatus) -> Task {
        Task {
            id: 1,
            user_id: crate::task::UserId::new(1).unwrap(),
            spec,
            status,
            status_reason: None,
            counters: Default::default(),
            error_message: None,
            created_at: now(),
            updated_at: now(),
            started_at: None,
            finished_at: None,
            version: 1,
        }
    }

    #[test]
    fn reads_a_full_invite_task() {
        let spec = parse_new_task(
            &json!({"name": "  Launch  ", "action_type": "INVITE_TO_GROUP", "target_channel": "https://t.me/my_group",
                    "priority": "urgent", "scheduled_start": "2026-11-28T09:00:00+03:00", "settings": {"k": 1}}),
            now(),
        )
        .unwrap();
        assert_eq!(spec.name, "Launch");
        assert_eq!(spec.platform, Platform::Telegram);
        assert_eq!(spec.priority, Priority::High);
        assert_eq!(spec.target_channel.unwrap().to_string(), "@my_group");
        assert_eq!(
            spec.scheduled_start.unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap()
        );
    }

    #[test]
    fn accepts_the_web_clients_aliases() {
        let spec = parse_new_task(
            &json!({"name": "DM", "platform": "telegram", "priority": "low", "invite_message": "Hi {first_name}",
                    "settings": {"invite_type": "message", "group_id": -1001234567890i64}}),
            now(),
        )
        .unwrap();
        assert_eq!(spec.action_type, ActionType::SendMessage);
        assert_eq!(spec.message_template.unwrap().as_str(), "Hi {first_name}");
        assert_eq!(spec.target_channel.unwrap().to_string(), "-1001234567890");
        assert_eq!(spec.settings.get("invite_type"), Some(&json!("message")));
    }

    #[test]
    fn reports_every_problem_with_its_field() {
        let errs = errors_of(
            json!({"name": "", "platform": "whatsapp", "action_type": "invite_to_group",
                                    "scheduled_start": "2020-01-01T00:00:00Z", "priority": 5}),
        );
        let locs: Vec<&str> = errs.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            locs,
            [
                "body.name",
                "body.platform",
                "body.priority",
                "body.scheduled_start",
                "body.target_channel"
            ],
            "{errs:?}"
        );
        let errs = errors_of(json!({"name": "x", "platform": "whatsapp", "action_type": "invite_to_group"}));
        assert_eq!(
            errs[0],
            (
                "body.platform".into(),
                "platform not supported yet: whatsapp (supported: telegram)".into()
            )
        );
        assert_eq!(errs[1].0, "body.target_channel");
        let errs = errors_of(
            json!({"name": "x", "action_type": "invite_to_group", "target_channel": "@chan_one",
                                    "settings": {"group_id": "@chan_two"}}),
        );
        assert_eq!(errs[0].0, "body.settings.group_id");
        assert!(errs[0].1.contains("conflicts with target_channel"));
        assert_eq!(errors_of(json!([1]))[0].0, "body");
    }

    #[test]
    fn a_paused_task_changes_only_name_description_and_priority() {
        let spec = parse_new_task(
            &json!({"name": "a", "action_type": "send_message", "message_template": "Hi"}),
            now(),
        )
        .unwrap();
        let paused = stored(spec.clone(), TaskStatus::Paused);
        let renamed = apply_update(
            &paused,
            &json!({"name": "b", "priority": "HIGH", "message_template": "Hi"}),
            now(),
        )
        .unwrap();
        assert_eq!((renamed.name.as_str(), renamed.priority), ("b", Priority::High));
        assert_eq!(
            apply_update(&paused, &json!({"message_template": "Hello"}), now()),
            Err(UpdateError::FieldLocked {
                field: "message_template",
                status: TaskStatus::Paused
            })
        );
        let running = stored(spec.clone(), TaskStatus::InProgress);
        assert_eq!(
            apply_update(&running, &json!({"name": "b"}), now()),
            Err(UpdateError::StatusLocked(TaskStatus::InProgress))
        );
        let pending = stored(spec, TaskStatus::Pending);
        let invite = apply_update(
            &pending,
            &json!({"action_type": "invite_to_group", "target_channel": "@group_one"}),
            now(),
        )
        .unwrap();
        assert_eq!(invite.action_type, ActionType::InviteToGroup);
        assert!(matches!(
            apply_update(&pending, &json!({"name": null}), now()),
            Err(UpdateError::Invalid(_))
        ));
        assert!(matches!(
            apply_update(&pending, &json!({"message_template": null}), now()),
            Err(UpdateError::Invalid(_))
        ));
    }
}
