//! Which column holds what: by header names (English and Russian synonyms), by content where headers
//! are missing or unknown, or as the person said with `mapping`. Every decision carries its reason, so
//! the response can show it and a person can correct it.

use domain::{
    identifier::{guess_kind, IdentifierKind},
    phone::Region,
    validation::FieldError,
};
use serde::Serialize;
use serde_json::Value;

use super::read::RawRow;

/// What a column may be used as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Username,
    UserId,
    Phone,
    FirstName,
    LastName,
    /// "First Last" in one cell.
    FullName,
}

impl Field {
    pub const ALL: [Field; 6] = [
        Field::Username,
        Field::UserId,
        Field::Phone,
        Field::FirstName,
        Field::LastName,
        Field::FullName,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Username => "username",
            Field::UserId => "user_id",
            Field::Phone => "phone",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::FullName => "full_name",
        }
    }

    pub fn identifier(self) -> Option<IdentifierKind> {
        match self {
            Field::Username => Some(IdentifierKind::Username),
            Field::UserId => Some(IdentifierKind::UserId),
            Field::Phone => Some(IdentifierKind::Phone),
            _ => None,
        }
    }

    fn of_kind(kind: IdentifierKind) -> Field {
        match kind {
            IdentifierKind::Username => Field::Username,
            IdentifierKind::UserId => Field::UserId,
            IdentifierKind::Phone => Field::Phone,
        }
    }
}

/// Header names per field, compared after [`normalise_header`].
const SYNONYMS: &[(Field, &[&str])] = &[
    (
        Field::Username,
        &[
            "username",
            "user",
            "login",
            "nick",
            "nickname",
            "handle",
            "telegram",
            "tg",
            "telegramusername",
            "tgusername",
            "ник",
            "никнейм",
            "логин",
            "юзернейм",
            "имяпользователя",
            "пользователь",
            "телеграм",
        ],
    ),
    (
        Field::Phone,
        &[
            "phone",
            "phonenumber",
            "phones",
            "tel",
            "telephone",
            "mobile",
            "mobilephone",
            "cell",
            "msisdn",
            "authorphone",
            "телефон",
            "номер",
            "номертелефона",
            "мобильный",
            "моб",
            "тел",
            "сотовый",
        ],
    ),
    (
        Field::UserId,
        // Specific names first: a bare "id" often numbers an export's records, not its users.
        &[
            "userid",
            "telegramid",
            "tgid",
            "platformid",
            "useridplatform",
            "idпользователя",
            "uid",
            "id",
            "айди",
            "ид",
        ],
    ),
    (Field::FirstName, &["firstname", "name", "givenname", "имя"]),
    (Field::LastName, &["lastname", "surname", "familyname", "фамилия"]),
    (
        Field::FullName,
        &["fullname", "displayname", "фио", "полноеимя", "контакт"],
    ),
];

/// Lower case, without spaces, underscores, dashes and dots; for dotted names (flattened JSON) the
/// last part too.
fn normalise_header(h: &str) -> String {
    h.trim()
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.' | '\u{a0}'))
        .collect()
}

fn field_of_header(h: &str) -> Option<Field> {
    ranked_field_of_header(h).map(|(f, _)| f)
}

/// The field a header names and how specific the name is (0 = most).
fn ranked_field_of_header(h: &str) -> Option<(Field, usize)> {
    let candidates = [Some(h), h.rsplit_once('.').map(|(_, last)| last)];
    candidates.into_iter().flatten().find_map(|c| {
        let n = normalise_header(c);
        SYNONYMS
            .iter()
            .find_map(|(f, names)| names.iter().position(|x| *x == n).map(|rank| (*f, rank)))
    })
}

/// "ФИО" is written surname first ("Каренина Анна"); other full-name columns first name first.
pub fn surname_first(header: Option<&str>) -> bool {
    header.is_some_and(|h| normalise_header(h) == "фио")
}

/// How one column was read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnMapping {
    /// 1-based, as a person counts columns.
    pub column: usize,
    pub header: Option<String>,
    /// None: kept as an extra field of each target (under its header).
    pub field: Option<Field>,
    pub reason: String,
}

/// The table's layout: where the data starts and what each column is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layout {
    /// The row number of the header, when there is one.
    pub header_row: Option<usize>,
    /// Rows above the header (titles), skipped.
    pub skipped_rows: usize,
    pub columns: Vec<ColumnMapping>,
}

impl Layout {
    pub fn column_of(&self, field: Field) -> Option<usize> {
        self.columns
            .iter()
            .find(|c| c.field == Some(field))
            .map(|c| c.column - 1)
    }

    pub fn has_identifier(&self) -> bool {
        self.columns
            .iter()
            .any(|c| c.field.and_then(Field::identifier).is_some())
    }
}

/// How many leading rows may be titles above the header.
const HEADER_SEARCH_ROWS: usize = 10;
/// How many values of a column are looked at to guess what it holds.
const CONTENT_SAMPLE: usize = 200;
/// Share of sampled values that must agree for a guess.
const CONTENT_AGREEMENT: f64 = 0.6;

/// Finds the header row (if any) among the first rows: the first row with the most cells that are
/// known header names; failing that, a first row of plain words above columns of identifiers
/// (`Contact;Notes` over phone numbers).
fn find_header(rows: &[RawRow], region: Region) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, row) in rows.iter().take(HEADER_SEARCH_ROWS).enumerate() {
        let known = row.cells.iter().filter(|c| field_of_header(c).is_some()).count();
        if known > 0 && best.is_none_or(|(_, n)| known > n) {
            best = Some((i, known));
        }
    }
    best.map(|(i, _)| i)
        .or_else(|| first_row_names_columns(rows, region).then_some(0))
}

/// True when the first row holds no cell written the way identifiers are (`@name`, `+phone`, digits,
/// a t.me link), and above some column whose other rows agree on a kind of identifier it holds a word
/// that is not of that kind ("WhatsApp" over phone numbers), or a bare word over values written as
/// identifiers ("Contact" over @usernames).
fn first_row_names_columns(rows: &[RawRow], region: Region) -> bool {
    let Some((first, rest)) = rows.split_first() else {
        return false;
    };
    let written_as_identifier =
        |c: &str| c.starts_with(['@', '+']) || c.starts_with(|ch: char| ch.is_ascii_digit()) || c.contains("t.me/");
    if first.cells.iter().any(|c| written_as_identifier(c)) {
        return false;
    }
    guesses(rest, first.cells.len(), region).iter().any(|(i, field, ..)| {
        first.cells.get(*i).is_some_and(|c| {
            let below_written = rest
                .iter()
                .filter_map(|r| r.cells.get(*i))
                .any(|v| written_as_identifier(v));
            !c.is_empty() && (guess_kind(c, region).map(Field::of_kind) != Some(*field) || below_written)
        })
    })
}

/// Decides the layout of a table. `headers` is given when the format names its columns (JSON);
/// otherwise the header row is searched for. `mapping` (from the request) overrides detection.
pub fn detect(
    headers: Option<&[String]>,
    rows: &[RawRow],
    mapping: Option<&Value>,
    region: Region,
) -> Result<(Layout, usize), FieldError> {
    let (header_cells, data_start, header_row): (Option<Vec<String>>, usize, Option<usize>) = match headers {
        Some(h) => (Some(h.to_vec()), 0, None),
        None => match find_header(rows, region) {
            Some(i) => (Some(rows[i].cells.clone()), i + 1, Some(rows[i].number)),
            None => (None, 0, None),
        },
    };
    let data = &rows[data_start..];
    let width = data
        .iter()
        .map(|r| r.cells.len())
        .chain(header_cells.as_ref().map(Vec::len))
        .max()
        .unwrap_or(0);
    let header_at = |i: usize| {
        header_cells
            .as_ref()
            .and_then(|h| h.get(i))
            .filter(|h| !h.is_empty())
            .cloned()
    };
    let mut columns: Vec<ColumnMapping> = (0..width)
        .map(|i| ColumnMapping {
            column: i + 1,
            header: header_at(i),
            field: None,
            reason: String::new(),
        })
        .collect();

    let overrides = parse_mapping(mapping, &columns)?;
    for (field, column) in &overrides {
        if let Some(i) = column {
            columns[*i].field = Some(*field);
            columns[*i].reason = "set by mapping".into();
        }
    }
    let decided = |columns: &[ColumnMapping], f: Field| {
        overrides.iter().any(|(o, _)| *o == f) || columns.iter().any(|c| c.field == Some(f))
    };

    // Each field goes to the column whose header names it most specifically (leftmost on a tie).
    let mut named: Vec<(usize, Field, usize)> = (0..width)
        .filter(|i| columns[*i].field.is_none() && !overrides.iter().any(|(_, c)| *c == Some(*i)))
        .filter_map(|i| {
            columns[i]
                .header
                .as_deref()
                .and_then(ranked_field_of_header)
                .map(|(f, r)| (r, f, i))
        })
        .collect();
    named.sort_by_key(|(rank, _, i)| (*rank, *i));
    for (_, field, i) in named {
        let header = columns[i].header.clone().unwrap_or_default();
        match columns.iter().find(|c| c.field == Some(field)).map(|c| c.column) {
            None if !decided(&columns, field) => {
                columns[i].field = Some(field);
                columns[i].reason = format!("header {header:?} names {}", field.as_str());
            }
            Some(other) => {
                columns[i].reason = format!(
                    "header {header:?} names {} too, but column {other} is used for it: kept as an extra field",
                    field.as_str()
                )
            }
            None => {
                columns[i].reason = format!(
                    "header {header:?} names {}, which mapping gave to another column: kept as an extra field",
                    field.as_str()
                )
            }
        }
    }
    for (i, field, share, sampled) in guesses(data, width, region) {
        let column = &mut columns[i];
        if column.field.is_some() || !column.reason.is_empty() {
            continue;
        }
        if overrides.iter().any(|(_, c)| *c == Some(i)) || decided(&columns, field) {
            continue;
        }
        let column = &mut columns[i];
        column.field = Some(field);
        column.reason = format!(
            "content: {:.0}% of {sampled} values look like {}",
            share * 100.0,
            match field {
                Field::Username => "usernames",
                Field::UserId => "numeric user ids",
                _ => "phone numbers",
            }
        );
    }
    for c in columns.iter_mut().filter(|c| c.field.is_none() && c.reason.is_empty()) {
        c.reason = match &c.header {
            Some(h) => format!("header {h:?} is not a known column: kept as an extra field"),
            None => "values are not usernames, ids or phones: kept as an extra field".into(),
        };
    }
    Ok((
        Layout {
            header_row,
            // Everything above the header, blank rows included, as a person counts rows.
            skipped_rows: header_row.map_or(0, |n| n - 1),
            columns,
        },
        data_start,
    ))
}

/// Content guesses for each column, best agreement first (so the clearest column wins a field).
fn guesses(data: &[RawRow], width: usize, region: Region) -> Vec<(usize, Field, f64, usize)> {
    let mut out = Vec::new();
    for i in 0..width {
        let mut counts = [0usize; 3];
        let mut sampled = 0;
        for cell in data
            .iter()
            .filter_map(|r| r.cells.get(i))
            .filter(|c| !c.is_empty())
            .take(CONTENT_SAMPLE)
        {
            sampled += 1;
            match guess_kind(cell, region) {
                Some(IdentifierKind::Username) => counts[0] += 1,
                Some(IdentifierKind::UserId) => counts[1] += 1,
                Some(IdentifierKind::Phone) => counts[2] += 1,
                None => {}
            }
        }
        if sampled == 0 {
            continue;
        }
        let kinds = [IdentifierKind::Username, IdentifierKind::UserId, IdentifierKind::Phone];
        let (best, n) = kinds
            .into_iter()
            .zip(counts)
            .max_by_key(|(_, n)| *n)
            .expect("three kinds");
        let share = n as f64 / sampled as f64;
        if share >= CONTENT_AGREEMENT {
            out.push((i, Field::of_kind(best), share, sampled));
        }
    }
    out.sort_by(|a, b| b.2.total_cmp(&a.2));
    out
}

/// `mapping`: `{"username": "Ник", "phone": 3, "first_name": null}` — a header name, a 1-based column
/// number, or null to use no column for that field.
fn parse_mapping(
    mapping: Option<&Value>,
    columns: &[ColumnMapping],
) -> Result<Vec<(Field, Option<usize>)>, FieldError> {
    let Some(mapping) = mapping else { return Ok(Vec::new()) };
    let loc = ["body", "mapping"];
    let obj = mapping.as_object().ok_or_else(|| {
        FieldError::new(
            &loc,
            "dict_type",
            "mapping must be a JSON object such as {\"username\": \"Ник\", \"phone\": 3}",
        )
    })?;
    let names: Vec<&str> = Field::ALL.iter().map(|f| f.as_str()).collect();
    let mut out = Vec::new();
    for (key, value) in obj {
        let field = Field::ALL.iter().copied().find(|f| f.as_str() == key).ok_or_else(|| {
            FieldError::new(
                &loc,
                "value_error",
                format!("mapping names an unknown field {key:?}; fields: {}", names.join(", ")),
            )
        })?;
        let column = match value {
            Value::Null => None,
            Value::Number(n) => {
                let i = n
                    .as_u64()
                    .filter(|i| (1..=columns.len() as u64).contains(i))
                    .ok_or_else(|| {
                        FieldError::new(
                            &loc,
                            "value_error",
                            format!(
                                "mapping.{key}: column {n} does not exist (the file has {} columns)",
                                columns.len()
                            ),
                        )
                    })?;
                Some(i as usize - 1)
            }
            Value::String(h) => {
                let wanted = h.trim().to_lowercase();
                let found = columns
                    .iter()
                    .position(|c| c.header.as_deref().is_some_and(|x| x.trim().to_lowercase() == wanted));
                Some(found.ok_or_else(|| {
                    let headers: Vec<&str> = columns.iter().filter_map(|c| c.header.as_deref()).collect();
                    FieldError::new(
                        &loc,
                        "value_error",
                        format!(
                            "mapping.{key}: no column is headed {h:?}; headers: {}",
                            if headers.is_empty() {
                                "(none — use column numbers)".to_string()
                            } else {
                                headers.join(", ")
                            }
                        ),
                    )
                })?)
            }
            _ => {
                return Err(FieldError::new(
                    &loc,
                    "value_error",
                    format!("mapping.{key} must be a header name, a column number or null"),
                ))
            }
        };
        if let Some(i) = column {
            if let Some((other, _)) = out.iter().find(|(_, c)| *c == Some(i)) {
                return Err(FieldError::new(
                    &loc,
                    "value_error",
                    format!(
                        "mapping gives column {} to both {} and {key}",
                        i + 1,
                        Field::as_str(*other)
                    ),
                ));
            }
        }
        out.push((field, column));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(lines: &[&[&str]]) -> Vec<RawRow> {
        lines
            .iter()
            .enumerate()
            .map(|(i, cells)| RawRow {
                number: i + 1,
                cells: cells.iter().map(|c| c.to_string()).collect(),
            })
            .collect()
    }

    fn fields(layout: &Layout) -> Vec<Option<&'static str>> {
        layout.columns.iter().map(|c| c.field.map(Field::as_str)).collect()
    }

    #[test]
    fn russian_headers_below_a_title_are_found() {
        let table = rows(&[
            &["Выгрузка участников", "", ""],
            &["", "", ""],
            &["Ник", "Телефон", "Имя"],
            &["@anna_k", "+79123456789", "Анна"],
        ]);
        let (layout, start) = detect(None, &table, None, Region::default()).unwrap();
        assert_eq!((layout.header_row, layout.skipped_rows, start), (Some(3), 2, 3));
        assert_eq!(fields(&layout), [Some("username"), Some("phone"), Some("first_name")]);
        assert_eq!(layout.columns[0].reason, "header \"Ник\" names username");
    }

    #[test]
    fn headerless_columns_are_read_by_content() {
        let table = rows(&[
            &["anna_k", "8 912 345-67-89", "x"],
            &["@boris_b", "+79120000002", "y"],
            &["clara_c", "", "z"],
        ]);
        let (layout, start) = detect(None, &table, None, Region::default()).unwrap();
        assert_eq!(start, 0);
        assert_eq!(fields(&layout), [Some("username"), Some("phone"), None]);
        assert!(layout.columns[0]
            .reason
            .starts_with("content: 100% of 3 values look like usernames"));
    }

    #[test]
    fn mapping_overrides_detection_and_names_its_mistakes() {
        let table = rows(&[&["login", "contact"], &["anna_k", "79123456789"]]);
        let mapping = json!({"phone": "Contact", "username": null});
        let (layout, _) = detect(None, &table, Some(&mapping), Region::default()).unwrap();
        assert_eq!(fields(&layout), [None, Some("phone")]);
        let bad = detect(None, &table, Some(&json!({"phone": "Mobile"})), Region::default()).unwrap_err();
        assert_eq!(
            bad.msg,
            "mapping.phone: no column is headed \"Mobile\"; headers: login, contact"
        );
        let bad = detect(None, &table, Some(&json!({"email": 1})), Region::default()).unwrap_err();
        assert!(bad.msg.contains("unknown field \"email\""));
        let bad = detect(
            None,
            &table,
            Some(&json!({"phone": 1, "username": 1})),
            Region::default(),
        )
        .unwrap_err();
        assert!(bad.msg.contains("column 1 to both"));
    }

    #[test]
    fn a_first_row_of_words_over_identifiers_is_a_header() {
        let table = rows(&[&["Contact", "Notes"], &["79123456789", "vip"], &["79120000002", ""]]);
        let (layout, start) = detect(None, &table, None, Region::default()).unwrap();
        assert_eq!((layout.header_row, start), (Some(1), 1));
        assert_eq!(fields(&layout), [Some("phone"), None]);
        let words = rows(&[&["red", "big"], &["blue", "tall"]]);
        assert_eq!(
            detect(None, &words, None, Region::default()).unwrap().0.header_row,
            None
        );
    }

    #[test]
    fn json_keys_map_through_their_last_part() {
        let headers = [
            "platform_specific_data.username".to_string(),
            "display_name".to_string(),
        ];
        let (layout, _) = detect(Some(&headers), &rows(&[&["anna_k", "Anna K"]]), None, Region::default()).unwrap();
        assert_eq!(fields(&layout), [Some("username"), Some("full_name")]);
    }
}
