//! JSON exports: a list of usernames, phones or ids, or a list of user objects as other services and
//! scrapers dump them (often wrapped as `{"users": [...]}` and with a nested
//! `platform_specific_data` object).

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use super::{integral_text, RawRow, ReadError};

/// Where an object wrapper keeps its list, in the order they are looked for.
const LIST_KEYS: [&str; 4] = ["users", "items", "data", "results"];

/// Headers (when the items are objects) and rows of a parsed JSON document.
pub(super) fn rows(value: Value) -> Result<(Option<Vec<String>>, Vec<RawRow>), ReadError> {
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut map) => take_list(&mut map).ok_or_else(|| {
            ReadError::Malformed(
                "a JSON file must be an array, or an object with a users/items/data/results array".into(),
            )
        })?,
        _ => {
            return Err(ReadError::Malformed(
                "a JSON file must be an array, or an object with a users/items/data/results array".into(),
            ))
        }
    };
    if items.iter().any(Value::is_object) {
        objects(items).map(|(headers, rows)| (Some(headers), rows))
    } else {
        Ok((None, values(items)))
    }
}

fn take_list(map: &mut Map<String, Value>) -> Option<Vec<Value>> {
    LIST_KEYS.iter().find_map(|key| match map.get_mut(*key) {
        Some(Value::Array(items)) => Some(std::mem::take(items)),
        _ => None,
    })
}

/// A list of scalars is a one-column list; an item that is itself a list is a row of cells.
fn values(items: Vec<Value>) -> Vec<RawRow> {
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let cells = match item {
                Value::Array(inner) => inner.into_iter().map(cell_text).collect(),
                scalar => vec![cell_text(scalar)],
            };
            non_empty(i + 1, cells)
        })
        .collect()
}

/// A list of objects: the union of their keys are the headers, one level of nested objects is
/// flattened into `parent.child` columns.
fn objects(items: Vec<Value>) -> Result<(Vec<String>, Vec<RawRow>), ReadError> {
    let mut columns = Columns::default();
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let number = i + 1;
        let object = match item {
            Value::Object(object) => object,
            Value::Null => continue,
            other => {
                return Err(ReadError::Malformed(format!(
                    "item {number} of the JSON list is {}, but the other items are objects",
                    kind(&other)
                )))
            }
        };
        let mut cells = vec![String::new(); columns.names.len()];
        for (key, value) in object {
            match value {
                Value::Object(nested) => {
                    for (child, value) in nested {
                        columns.set(&mut cells, format!("{key}.{child}"), cell_text(value));
                    }
                }
                value => columns.set(&mut cells, key, cell_text(value)),
            }
        }
        rows.extend(non_empty(number, cells));
    }
    let width = columns.names.len();
    for row in &mut rows {
        row.cells.resize(width, String::new());
    }
    Ok((columns.names, rows))
}

#[derive(Default)]
struct Columns {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Columns {
    fn set(&mut self, cells: &mut Vec<String>, name: String, text: String) {
        let column = match self.index.get(&name) {
            Some(&column) => column,
            None => {
                self.names.push(name.clone());
                self.index.insert(name, self.names.len() - 1);
                self.names.len() - 1
            }
        };
        if cells.len() <= column {
            cells.resize(column + 1, String::new());
        }
        // `{"a.b": 1, "a": {"b": 2}}` names one column twice: the first non-empty value stays.
        if cells[column].is_empty() {
            cells[column] = text;
        }
    }
}

fn non_empty(number: usize, cells: Vec<String>) -> Option<RawRow> {
    cells.iter().any(|c| !c.is_empty()).then_some(RawRow { number, cells })
}

fn cell_text(value: Value) -> String {
    match value {
        Value::String(s) if s.trim().len() == s.len() => s,
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => number_text(&n),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        // Lists (and objects nested deeper than one level) are kept whole, as compact JSON.
        other => other.to_string(),
    }
}

fn number_text(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    n.as_f64().and_then(integral_text).unwrap_or_else(|| n.to_string())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cells, read};
    use super::super::{read_table, FileFormat, ReadOptions};
    use super::*;

    fn headers(bytes: &[u8]) -> Vec<String> {
        read(bytes).unwrap().headers.unwrap()
    }

    #[test]
    fn array_of_strings() {
        let table = read(br#"["@ivan", " 79123456789 ", "", null, "@maria"]"#).unwrap();
        assert_eq!(
            (table.format, table.headers.as_ref(), table.delimiter),
            (FileFormat::Json, None, None)
        );
        assert_eq!(table.encoding, Some("UTF-8"));
        assert_eq!(
            cells(&table),
            vec![(1, vec!["@ivan"]), (2, vec!["79123456789"]), (5, vec!["@maria"])]
        );
    }

    #[test]
    fn array_of_numbers() {
        let table = read(b"[79123456789, 79001234567.0, 1.5, -100123, 1e20]").unwrap();
        assert_eq!(
            cells(&table),
            vec![
                (1, vec!["79123456789"]),
                (2, vec!["79001234567"]),
                (3, vec!["1.5"]),
                (4, vec!["-100123"]),
                (5, vec!["1e+20"]),
            ]
        );
    }

    #[test]
    fn array_of_objects() {
        let json = br#"[
            {"user_id": 123456789, "username": " ivan ", "platform_specific_data": {"username": "ivan_tg", "premium": true}},
            {"phone": "+79001234567", "username": null, "tags": ["a", "b"], "score": 0.5},
            {},
            {"user_id": 42, "extra": {"deep": {"x": 1}}}
        ]"#;
        let table = read(json).unwrap();
        assert_eq!(
            table.headers.as_deref().unwrap(),
            [
                "user_id",
                "username",
                "platform_specific_data.username",
                "platform_specific_data.premium",
                "phone",
                "tags",
                "score",
                "extra.deep"
            ]
        );
        assert_eq!(
            cells(&table),
            vec![
                (1, vec!["123456789", "ivan", "ivan_tg", "true", "", "", "", ""]),
                (2, vec!["", "", "", "", "+79001234567", r#"["a","b"]"#, "0.5", ""]),
                (4, vec!["42", "", "", "", "", "", "", r#"{"x":1}"#]),
            ]
        );
    }

    #[test]
    fn object_wrapping_a_list() {
        assert_eq!(headers(br#"{"count": 1, "users": [{"id": 1}]}"#), ["id"]);
        assert_eq!(headers(br#"{"items": [{"a": 1}], "data": [{"b": 2}]}"#), ["a"]);
        assert_eq!(headers(br#"{"data": {"not": "a list"}, "results": [{"c": 3}]}"#), ["c"]);
        let table = read(br#"{"data": ["@a", "@b"]}"#).unwrap();
        assert_eq!(cells(&table), vec![(1, vec!["@a"]), (2, vec!["@b"])]);
    }

    #[test]
    fn array_of_arrays_is_rows_of_cells() {
        let table = read(br#"[["username", "phone"], ["@a", 79123456789]]"#).unwrap();
        assert_eq!(table.headers, None);
        assert_eq!(
            cells(&table),
            vec![(1, vec!["username", "phone"]), (2, vec!["@a", "79123456789"])]
        );
    }

    #[test]
    fn wrong_shapes_are_explained() {
        let err = read(br#"{"people": [1, 2]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a JSON file must be an array, or an object with a users/items/data/results array"
        );
        let err = read(br#"[{"id": 1}, "x"]"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "item 2 of the JSON list is a string, but the other items are objects"
        );
        assert!(matches!(read(b"[null, {}]"), Err(ReadError::Empty)));
    }

    #[test]
    fn broken_json_that_says_it_is_json_is_malformed() {
        let err = read_table(Some("users.JSON"), None, b"[{\"id\": 1,}]", &ReadOptions::default()).unwrap_err();
        let ReadError::Malformed(message) = err else {
            panic!("expected Malformed, got {err:?}")
        };
        assert!(message.starts_with("the file is not valid JSON:"), "{message}");
        assert!(message.contains("line 1"), "{message}");
        let err = read_table(
            None,
            Some("application/json"),
            b"{\"users\": [",
            &ReadOptions::default(),
        );
        assert!(matches!(err, Err(ReadError::Malformed(_))));
    }

    #[test]
    fn json_in_utf16_is_still_json() {
        let mut bytes = b"\xFF\xFE".to_vec();
        bytes.extend(r#"["@ivan"]"#.encode_utf16().flat_map(u16::to_le_bytes));
        let table = read(&bytes).unwrap();
        assert_eq!((table.format, table.encoding), (FileFormat::Json, Some("UTF-16LE")));
    }
}
