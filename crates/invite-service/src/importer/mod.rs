//! Audience import: reading files people bring, finding their columns, validating and deduplicating
//! rows into targets, a chunk at a time. Reading is pure; [`load`] hands the drafts to the store, which
//! does the rest in one transaction.

pub mod columns;
pub mod load;
pub mod parsing;
pub mod read;

use domain::{
    audience::{ImportReport, RejectReason, RejectedRow, SeenPeople, TargetDraft},
    identifier::{Identifier, IdentifierKind},
    phone::Region,
    validation::FieldError,
};
use serde_json::{json, Map, Value};

use columns::{Field, Layout};
use read::{RawRow, RawTable, ReadError, TableStream};

/// Longest first or last name kept; longer ones are cut.
const MAX_NAME_CHARS: usize = 255;

/// Rows of a file, ready for the store: valid drafts (unique within the file) and the report so far.
pub struct Prepared {
    pub drafts: Vec<TargetDraft>,
    pub report: ImportReport,
}

/// How many drafts go to the store at a time while a file is read: small enough that memory stays near
/// the file's own size, large enough for bulk inserts.
pub const CHUNK_ROWS: usize = 2_000;

/// How many rows are read ahead to find the header and guess the columns.
const DETECTION_ROWS: usize = 10 + 200;

/// Why a file cannot be imported at all.
#[derive(Debug)]
pub enum StartError {
    Read(ReadError),
    Layout(FieldError),
}

/// A file's rows turned into drafts a chunk at a time: memory holds the file, one chunk and the keys of
/// the people seen so far, never the whole list.
pub struct DraftStream<'a> {
    layout: Layout,
    ahead: std::vec::IntoIter<RawRow>,
    rest: Box<dyn Iterator<Item = Result<RawRow, ReadError>> + Send + 'a>,
    region: Region,
    /// None: every valid row is kept, repeats included (the do-not-contact list wants them all).
    seen: Option<SeenPeople>,
    /// What reading and validating found so far.
    pub report: ImportReport,
}

impl<'a> DraftStream<'a> {
    /// Reads ahead far enough to find the layout (`mapping` overrides detection).
    pub fn start(stream: TableStream<'a>, mapping: Option<&Value>, region: Region) -> Result<Self, StartError> {
        let mut rest = stream.rows;
        let mut ahead = Vec::with_capacity(DETECTION_ROWS);
        for row in rest.by_ref().take(DETECTION_ROWS) {
            ahead.push(row.map_err(StartError::Read)?);
        }
        if ahead.is_empty() {
            return Err(StartError::Read(ReadError::Empty));
        }
        let (layout, data_start) =
            columns::detect(stream.headers.as_deref(), &ahead, mapping, region).map_err(StartError::Layout)?;
        if !layout.has_identifier() {
            return Err(StartError::Layout(FieldError::new(
                &["body", "file"],
                "value_error",
                "no column holds usernames, user ids or phone numbers; name one with mapping, e.g. {\"username\": 1}",
            )));
        }
        let report = ImportReport {
            source: json!({
                "format": stream.format.as_str(),
                "encoding": stream.encoding,
                "delimiter": stream.delimiter.map(String::from),
                "sheet": stream.sheet,
                "header_row": layout.header_row,
                "skipped_title_rows": layout.skipped_rows,
                "columns": layout.columns,
            }),
            ..ImportReport::default()
        };
        let ahead: Vec<RawRow> = ahead.into_iter().skip(data_start).collect();
        Ok(Self {
            layout,
            ahead: ahead.into_iter(),
            rest,
            region,
            seen: Some(SeenPeople::default()),
            report,
        })
    }

    /// Keeps rows that repeat a person: each may carry identifiers the earlier row did not.
    pub fn keeping_repeats(mut self) -> Self {
        self.seen = None;
        self
    }

    /// Up to `max` more drafts (valid, not seen before in the file); None when the file is done.
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<Vec<TargetDraft>>, ReadError> {
        let mut chunk = Vec::with_capacity(max.min(4096));
        while chunk.len() < max {
            let row = match self.ahead.next() {
                Some(row) => row,
                None => match self.rest.next() {
                    Some(row) => row?,
                    None => break,
                },
            };
            self.report.total_rows += 1;
            match draft_of_row(&row, &self.layout, self.region) {
                Ok((draft, warning)) => {
                    if let Some(w) = warning {
                        self.report.warn(w);
                    }
                    if self
                        .seen
                        .as_mut()
                        .is_none_or(|seen| seen.admit(&draft, &mut self.report))
                    {
                        chunk.push(draft);
                    }
                }
                Err(rejected) => self.report.reject(rejected),
            }
        }
        Ok((!chunk.is_empty()).then_some(chunk))
    }
}

/// Reads a whole table into drafts (small files: the do-not-contact import and tests).
pub fn prepare_table(table: &RawTable, mapping: Option<&Value>, region: Region) -> Result<Prepared, FieldError> {
    let stream = TableStream {
        headers: table.headers.clone(),
        format: table.format,
        encoding: table.encoding,
        delimiter: table.delimiter,
        sheet: table.sheet.clone(),
        rows: Box::new(table.rows.clone().into_iter().map(Ok)),
    };
    let mut drafts_stream = DraftStream::start(stream, mapping, region).map_err(|e| match e {
        StartError::Layout(f) => f,
        StartError::Read(r) => FieldError::new(&["body", "file"], "value_error", r.to_string()),
    })?;
    let mut drafts = Vec::new();
    while let Some(chunk) = drafts_stream
        .next_chunk(usize::MAX)
        .map_err(|e| FieldError::new(&["body", "file"], "value_error", e.to_string()))?
    {
        drafts.extend(chunk);
    }
    Ok(Prepared {
        drafts,
        report: drafts_stream.report,
    })
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
    // A row wider than the rows the layout was found on keeps its extra cells too.
    for (i, value) in row
        .cells
        .iter()
        .enumerate()
        .skip(layout.columns.len())
        .filter(|(_, v)| !v.is_empty())
    {
        draft
            .extra
            .insert(format!("column_{}", i + 1), Value::String(value.clone()));
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
