//! Audience import: reading files people bring, finding their columns, validating and deduplicating
//! rows into targets. Pure: the store does the rest in one transaction.

pub mod columns;
pub mod parsing;
pub mod read;

use domain::{
    audience::{dedup_within, ImportReport, RejectReason, RejectedRow, TargetDraft},
    identifier::{Identifier, IdentifierKind},
    phone::Region,
    validation::FieldError,
};
use serde_json::{json, Map, Value};

use columns::{Field, Layout};
use read::{RawRow, RawTable};

/// Longest first or last name kept; longer ones are cut.
const MAX_NAME_CHARS: usize = 255;

/// Rows of a file, ready for the store: valid drafts (unique within the file) and the report so far.
pub struct Prepared {
    pub drafts: Vec<TargetDraft>,
    pub report: ImportReport,
}

/// Reads a table into drafts: finds the layout, validates each data row, drops in-file duplicates.
pub fn prepare_table(table: &RawTable, mapping: Option<&Value>, region: Region) -> Result<Prepared, FieldError> {
    let (layout, data_start) = columns::detect(table.headers.as_deref(), &table.rows, mapping, region)?;
    if !layout.has_identifier() {
        return Err(FieldError::new(
            &["body", "file"],
            "value_error",
            "no column holds usernames, user ids or phone numbers; name one with mapping, e.g. {\"username\": 1}",
        ));
    }
    let mut report = ImportReport {
        source: json!({
            "format": table.format.as_str(),
            "encoding": table.encoding,
            "delimiter": table.delimiter.map(String::from),
            "sheet": table.sheet,
            "header_row": layout.header_row,
            "skipped_title_rows": layout.skipped_rows,
            "columns": layout.columns,
        }),
        ..ImportReport::default()
    };
    let data = &table.rows[data_start..];
    report.total_rows = data.len();
    let mut drafts = Vec::with_capacity(data.len());
    for row in data {
        match draft_of_row(row, &layout, region) {
            Ok((d, warning)) => {
                if let Some(w) = warning {
                    report.warn(w);
                }
                drafts.push(d)
            }
            Err(rejected) => report.reject(rejected),
        }
    }
    let drafts = dedup_within(drafts, &mut report);
    Ok(Prepared { drafts, report })
}

fn cut(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.chars().take(MAX_NAME_CHARS).collect())
}

/// A row as a draft, with the first identifier that did not parse when another one did (the row is
/// kept, the person told); or why the row cannot be used.
fn draft_of_row(
    row: &RawRow,
    layout: &Layout,
    region: Region,
) -> Result<(TargetDraft, Option<RejectedRow>), RejectedRow> {
    let cell = |i: usize| row.cells.get(i).map(String::as_str).unwrap_or_default();
    let mut draft = TargetDraft {
        row: row.number,
        username: None,
        user_id: None,
        user_id_is_hint: false,
        phone: None,
        first_name: None,
        last_name: None,
        extra: Map::new(),
    };
    let mut first_error: Option<RejectedRow> = None;
    for c in &layout.columns {
        let i = c.column - 1;
        let value = cell(i);
        let Some(field) = c.field else {
            if !value.is_empty() {
                let key = c.header.clone().unwrap_or_else(|| format!("column_{}", c.column));
                draft.extra.insert(key, Value::String(value.to_string()));
            }
            continue;
        };
        if value.is_empty() {
            continue;
        }
        match field.identifier() {
            Some(kind) => match Identifier::parse_as(kind, value, region) {
                Ok(Identifier::Username(u)) => draft.username = Some(u),
                Ok(Identifier::UserId(id)) => draft.user_id = Some(id),
                Ok(Identifier::Phone(p)) => draft.phone = Some(p),
                Err(e) => {
                    first_error.get_or_insert(RejectedRow {
                        row: row.number,
                        column: Some(c.header.clone().unwrap_or_else(|| format!("column {}", c.column))),
                        value: value.to_string(),
                        reason: RejectReason::Invalid,
                        message: format!("{} {e}", kind_label(kind)),
                    });
                }
            },
            None => match field {
                Field::FirstName => draft.first_name = cut(value),
                Field::LastName => draft.last_name = cut(value),
                _ => {
                    let mut parts = value.trim().splitn(2, char::is_whitespace);
                    let (first, rest) = (parts.next().and_then(cut), parts.next().and_then(cut));
                    let (first, last) = if columns::surname_first(c.header.as_deref()) {
                        (rest, first)
                    } else {
                        (first, rest)
                    };
                    draft.first_name = draft.first_name.take().or(first);
                    draft.last_name = draft.last_name.take().or(last);
                }
            },
        }
    }
    if draft.username.is_some() || draft.user_id.is_some() || draft.phone.is_some() {
        return Ok((draft, first_error));
    }
    Err(first_error.unwrap_or_else(|| RejectedRow {
        row: row.number,
        column: None,
        value: row.cells.join(" | "),
        reason: RejectReason::Invalid,
        message: "the row has no username, user id or phone".into(),
    }))
}

fn kind_label(kind: IdentifierKind) -> &'static str {
    match kind {
        IdentifierKind::Username => "username",
        IdentifierKind::UserId => "user id",
        IdentifierKind::Phone => "phone",
    }
}
