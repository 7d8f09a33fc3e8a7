//! Results of the platform's Parsing Service as targets. Usernames and phones are identifiers; the
//! numeric ids it saw are kept only as hints (an access hash belongs to the account that saw the user).

use domain::{
    audience::{dedup_within, ImportReport, RejectReason, RejectedRow, TargetDraft},
    identifier::{parse_username, PlatformUserId},
    phone::{Phone, Region},
};
use serde_json::{json, Map, Value};

use super::Prepared;

/// The task setting that names a parsing task as the task's audience (imported when the task starts).
pub const TASK_SETTING: &str = "parsing_task_id";

/// A parsing task id as a client sends it, a string or an integer: 1–64 letters, digits, '-' or '_'
/// (it becomes part of the Parsing Service's URL). The message names the field as `name`.
pub fn parse_task_id(v: &Value, name: &str) -> Result<String, String> {
    let id = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        other => return Err(format!("{name} must be a string (got {other})")),
    };
    if (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Ok(id)
    } else {
        Err(format!("{name} must be 1–64 letters, digits, '-' or '_' (got {id:?})"))
    }
}

/// The parsing task a task's settings name as its audience, if any.
pub fn task_source(settings: &Map<String, Value>) -> Option<String> {
    settings
        .get(TASK_SETTING)
        .filter(|v| !v.is_null())
        .and_then(|v| parse_task_id(v, TASK_SETTING).ok())
}

/// The file name an import of the parsing task is recorded under: how a task remembers that its
/// audience was imported.
pub fn import_name(parsing_task_id: &str) -> String {
    format!("parsing task {parsing_task_id}")
}

/// Filters a person may ask for.
#[derive(Debug, Clone, Copy)]
pub struct ParsingFilters {
    pub skip_bots: bool,
}

/// A field from the top level or from `platform_specific_data`, whichever has it.
fn text<'a>(item: &'a Value, top: &str, nested: &str) -> Option<String> {
    let pick = |v: Option<&'a Value>| match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    pick(item.get(top)).or_else(|| pick(item.get("platform_specific_data").and_then(|d| d.get(nested))))
}

pub fn prepare_results(results: &[Value], filters: ParsingFilters, region: Region, parsing_task_id: &str) -> Prepared {
    let mut report = ImportReport {
        source: json!({"format": "parsing_service", "parsing_task_id": parsing_task_id}),
        total_rows: results.len(),
        ..ImportReport::default()
    };
    let mut drafts = Vec::with_capacity(results.len());
    for (i, item) in results.iter().enumerate() {
        let row = i + 1;
        let reject = |message: String, value: String| RejectedRow {
            row,
            column: None,
            value,
            reason: RejectReason::Invalid,
            message,
        };
        if !item.is_object() {
            report.reject(reject("a result must be a JSON object".into(), item.to_string()));
            continue;
        }
        if let Some(platform) = item.get("platform").and_then(Value::as_str) {
            if !platform.eq_ignore_ascii_case("telegram") {
                report.reject(reject(
                    format!("the result is from {platform}, not telegram"),
                    platform.into(),
                ));
                continue;
            }
        }
        let is_bot = item
            .pointer("/platform_specific_data/is_bot")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let username_text = text(item, "username", "username");
        if filters.skip_bots && is_bot {
            report.reject(RejectedRow {
                row,
                column: Some("platform_specific_data.is_bot".into()),
                value: username_text.unwrap_or_default(),
                reason: RejectReason::Filtered,
                message: "a bot (skip_bots is on)".into(),
            });
            continue;
        }
        let username = username_text.as_deref().map(parse_username).transpose();
        let phone = text(item, "author_phone", "phone").map(|p| Phone::parse(&p, region).map_err(|e| (p, e)));
        let user_id = text(item, "platform_id", "user_id").and_then(|v| PlatformUserId::parse(&v).ok());
        let (username, phone) = match (username, phone) {
            (Err(e), _) => {
                report.reject(reject(format!("username {e}"), username_text.unwrap_or_default()));
                continue;
            }
            (_, Some(Err((p, e)))) => {
                report.reject(reject(format!("phone {e}"), p));
                continue;
            }
            (Ok(u), p) => (u, p.and_then(Result::ok)),
        };
        if username.is_none() && phone.is_none() && user_id.is_none() {
            report.reject(reject(
                "the result has no username, phone or user id".into(),
                item.to_string(),
            ));
            continue;
        }
        let display = text(item, "display_name", "display_name");
        let mut first_name = text(item, "first_name", "first_name");
        let mut last_name = text(item, "last_name", "last_name");
        if first_name.is_none() && last_name.is_none() {
            if let Some(d) = &display {
                let mut parts = d.splitn(2, char::is_whitespace);
                first_name = parts.next().map(str::to_string);
                last_name = parts.next().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
            }
        }
        let mut extra = Map::new();
        if let Some(id) = item.get("id").filter(|v| !v.is_null()) {
            extra.insert("parsing_result_id".into(), id.clone());
        }
        if let Some(d) = display {
            extra.insert("display_name".into(), Value::String(d));
        }
        drafts.push(TargetDraft {
            row,
            username,
            user_id,
            user_id_is_hint: true,
            phone,
            first_name,
            last_name,
            extra,
        });
    }
    let drafts = dedup_within(drafts, &mut report);
    Prepared { drafts, report }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<Value> {
        let v: Value = serde_json::from_str(include_str!("../../tests/data/parsing-results.json")).unwrap();
        v["example"]["results"].as_array().unwrap().clone()
    }

    #[test]
    fn reads_the_platforms_payload() {
        let results = fixture();
        let prepared = prepare_results(&results, ParsingFilters { skip_bots: true }, Region::default(), "17");
        let anna = &prepared.drafts[0];
        assert_eq!(anna.username.as_ref().unwrap().as_str(), "anna_k");
        assert_eq!(anna.user_id.unwrap().get(), 100200301);
        assert!(anna.user_id_is_hint);
        assert_eq!(
            (anna.first_name.as_deref(), anna.last_name.as_deref()),
            (Some("Anna"), Some("K"))
        );
        let boris = &prepared.drafts[1];
        assert_eq!(boris.phone.as_ref().unwrap().as_str(), "+79120000002");
        assert!(boris.username.is_none());
        assert_eq!(prepared.report.excluded, 1, "the bot is filtered out");
        assert_eq!(prepared.report.rejected[0].reason, RejectReason::Filtered);
        let with_bots = prepare_results(&results, ParsingFilters { skip_bots: false }, Region::default(), "17");
        assert_eq!(with_bots.drafts.len(), prepared.drafts.len() + 1);
    }
}
