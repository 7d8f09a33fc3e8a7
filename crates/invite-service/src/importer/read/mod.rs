//! Reading the files people upload into a plain table of cell texts.
//!
//! People bring whatever their tools export: CSV from Google Sheets, `;`-separated Windows-1251 CSV
//! from a Russian Excel, "Unicode text" (UTF-16, TAB-separated) from Excel's Save As, a spreadsheet,
//! a JSON dump from another service, or a plain list with one username per line. This module only
//! turns those bytes into rows of trimmed cell texts, with the line or row number a person would look
//! for; which row is the header and what the columns mean is decided later.
//!
//! The format is decided by the content, never by the file name or the declared content type: those
//! are set by browsers and operating systems and are often wrong (`.csv` files that are spreadsheets,
//! `text/plain` JSON).

mod decode;
mod delimited;
mod json;
mod xlsx;

/// How far a spreadsheet may expand when unpacked unless the caller says otherwise: far beyond any
/// audience list, far below what would hurt the server.
pub const DEFAULT_MAX_UNCOMPRESSED_BYTES: u64 = 100 * 1024 * 1024;

/// What a file held, before anyone decided which row is the header or what the columns mean.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTable {
    /// Column names when the format itself names them (JSON objects: their keys, in first-seen order,
    /// nested objects flattened one level with dots, e.g. "platform_specific_data.username"). None for
    /// CSV/TSV/TXT/XLSX: there the header (if any) is just one of `rows`, found later.
    pub headers: Option<Vec<String>>,
    pub rows: Vec<RawRow>,
    pub format: FileFormat,
    /// Text files: the encoding that was detected ("UTF-8", "UTF-16LE", "UTF-16BE", "windows-1251").
    pub encoding: Option<&'static str>,
    /// Delimited files: the delimiter that was detected.
    pub delimiter: Option<char>,
    /// XLSX: the sheet that was read.
    pub sheet: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RawRow {
    /// Where a person finds this row: the 1-based line (text) or row (spreadsheet) number; for JSON the
    /// 1-based position in the array.
    pub number: usize,
    /// Cell texts, trimmed; empty string for empty cells. Rows that are entirely empty are skipped.
    pub cells: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// CSV, TSV, `|`-separated or a plain one-column list.
    Delimited,
    Xlsx,
    Json,
}

impl FileFormat {
    /// The short name reports and metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delimited => "csv",
            Self::Xlsx => "xlsx",
            Self::Json => "json",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// XLSX: the sheet to read (by name); None = the first sheet.
    pub sheet: Option<String>,
    /// XLSX: the most uncompressed bytes the whole archive may expand to (zip-bomb guard), checked from
    /// the zip directory BEFORE decompressing, and each entry's declared vs actual size; default 100 MiB.
    pub max_uncompressed_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            sheet: None,
            max_uncompressed_bytes: DEFAULT_MAX_UNCOMPRESSED_BYTES,
        }
    }
}

/// Why a file could not be read. Every message is meant for the person who uploaded the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The bytes are none of the supported formats (HTTP 415).
    #[error(
        "unrecognised file type: expected CSV, TSV or TXT (UTF-8, UTF-16 or Windows-1251), XLSX, or JSON; \
         for an old Excel .xls or any other spreadsheet, save it as .xlsx or CSV"
    )]
    UnknownFormat,
    /// A spreadsheet that would unpack to more than the limit (a zip bomb, or simply far too big).
    #[error(
        "the spreadsheet expands to more than {limit} bytes ({}) when unpacked; split it into smaller \
         files or save it as CSV",
        human_bytes(*limit)
    )]
    TooLargeUnpacked { limit: u64 },
    /// The format is known but the content is broken; the message names the problem (and the line or
    /// row when known).
    #[error("{0}")]
    Malformed(String),
    /// The named sheet does not exist.
    #[error(
        "the workbook has no sheet named {wanted:?}; its sheets are: {}",
        quoted_list(available)
    )]
    NoSuchSheet { wanted: String, available: Vec<String> },
    /// Nothing but blank lines, empty cells or an empty array.
    #[error("the file has no data rows")]
    Empty,
}

fn human_bytes(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let mib = bytes as f64 / MIB;
    if mib < 1.0 {
        format!("{} KiB", bytes.div_ceil(1024))
    } else if mib.fract() == 0.0 {
        format!("{mib} MiB")
    } else {
        format!("{mib:.1} MiB")
    }
}

fn quoted_list(names: &[String]) -> String {
    if names.is_empty() {
        return "(none)".to_string();
    }
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// Formats people upload by mistake, recognised by their first bytes so that they are refused as
/// what they are rather than read as garbage text. Most would also fail the control-character check
/// on text; PDF and RTF would not.
const BINARY_MAGICS: &[&[u8]] = &[
    b"\xD0\xCF\x11\xE0", // OLE compound file: .xls, .doc, password-protected .xlsx
    b"%PDF-",
    b"{\\rtf",
    b"\x89PNG",
    b"\xFF\xD8\xFF", // JPEG
    b"GIF87a",
    b"GIF89a",
    b"PK\x05\x06", // an empty zip archive
    b"PK\x07\x08", // a spanned zip archive
    b"\x1F\x8B",   // gzip
    b"7z\xBC\xAF\x27\x1C",
    b"Rar!\x1A\x07",
    b"\xFD7zXZ\0",
    b"\x28\xB5\x2F\xFD", // zstd
];

/// Reads any supported file. `file_name` and `content_type` are hints only: the format is decided by
/// the content (zip magic "PK\x03\x04" → XLSX; first non-space char '[' or '{' and valid JSON → JSON;
/// otherwise text → delimited). A binary that is none of these (e.g. PDF, PNG, a zip that is not an
/// xlsx, an old .xls OLE file "\xD0\xCF\x11\xE0") → UnknownFormat (for .xls say "save it as .xlsx or CSV").
pub fn read_table(
    file_name: Option<&str>,
    content_type: Option<&str>,
    bytes: &[u8],
    options: &ReadOptions,
) -> Result<RawTable, ReadError> {
    let stream = read_stream(file_name, content_type, bytes, options)?;
    let rows = stream.rows.collect::<Result<Vec<_>, _>>()?;
    if rows.is_empty() {
        return Err(ReadError::Empty);
    }
    Ok(RawTable {
        headers: stream.headers,
        rows,
        format: stream.format,
        encoding: stream.encoding,
        delimiter: stream.delimiter,
        sheet: stream.sheet,
    })
}

/// What a file holds, with its rows still to be read: delimited text is read one row at a time, so a
/// large list is never held as a table; spreadsheets and JSON are read whole (their parsers need it).
pub struct TableStream<'a> {
    pub headers: Option<Vec<String>>,
    pub format: FileFormat,
    pub encoding: Option<&'static str>,
    pub delimiter: Option<char>,
    pub sheet: Option<String>,
    pub rows: Box<dyn Iterator<Item = Result<RawRow, ReadError>> + Send + 'a>,
}

impl TableStream<'_> {
    fn whole(table: RawTable) -> TableStream<'static> {
        TableStream {
            headers: table.headers,
            format: table.format,
            encoding: table.encoding,
            delimiter: table.delimiter,
            sheet: table.sheet,
            rows: Box::new(table.rows.into_iter().map(Ok)),
        }
    }
}

/// Like [`read_table`], with the rows read as they are asked for (an empty file gives no rows rather
/// than [`ReadError::Empty`]; the caller decides).
pub fn read_stream<'a>(
    file_name: Option<&str>,
    content_type: Option<&str>,
    bytes: &'a [u8],
    options: &ReadOptions,
) -> Result<TableStream<'a>, ReadError> {
    if bytes.is_empty() {
        return Err(ReadError::Empty);
    }
    if bytes.starts_with(ZIP_MAGIC) {
        return xlsx::read(bytes, options).map(TableStream::whole);
    }
    if BINARY_MAGICS.iter().any(|magic| bytes.starts_with(magic)) {
        return Err(ReadError::UnknownFormat);
    }
    let decoded = decode::decode(bytes)?;
    let start = decoded.text.trim_start();
    if start.is_empty() {
        return Err(ReadError::Empty);
    }
    if looks_like_markup(start) {
        return Err(ReadError::UnknownFormat);
    }
    if start.starts_with(['[', '{']) {
        // The whole text, leading blank lines included, so that the parser's line numbers are right.
        match serde_json::from_str(&decoded.text) {
            Ok(value) => {
                let (headers, rows) = json::rows(value)?;
                return Ok(TableStream::whole(RawTable {
                    headers,
                    rows,
                    format: FileFormat::Json,
                    encoding: Some(decoded.encoding),
                    delimiter: None,
                    sheet: None,
                }));
            }
            // A file that says it is JSON gets the parser's own words (with line and column); anything
            // else that merely starts with a bracket may still be a list.
            Err(e) if says_json(file_name, content_type) => {
                return Err(ReadError::Malformed(format!("the file is not valid JSON: {e}")));
            }
            Err(_) => {}
        }
    }
    let text = match decoded.text {
        std::borrow::Cow::Borrowed(t) => delimited::Text::Borrowed(t.as_bytes()),
        std::borrow::Cow::Owned(t) => delimited::Text::Owned(std::sync::Arc::from(t.into_bytes())),
    };
    let (delimiter, rows) = delimited::stream(text);
    Ok(TableStream {
        headers: None,
        format: FileFormat::Delimited,
        encoding: Some(decoded.encoding),
        delimiter: delimiter.map(char::from),
        sheet: None,
        rows: Box::new(rows),
    })
}

fn says_json(file_name: Option<&str>, content_type: Option<&str>) -> bool {
    let name = file_name.is_some_and(|n| n.trim().to_ascii_lowercase().ends_with(".json"));
    let mime = content_type.is_some_and(|t| t.to_ascii_lowercase().contains("json"));
    name || mime
}

/// HTML and XML: web pages saved with a `.xls` name ("export to Excel" in many web tools) and Excel
/// 2003 XML. Read as text they would give a table of tags.
fn looks_like_markup(text: &str) -> bool {
    const MARKUP: [&str; 5] = ["<?xml", "<!doctype", "<html", "<table", "<!--"];
    let head = text.as_bytes();
    MARKUP
        .iter()
        .any(|m| head.len() >= m.len() && head[..m.len()].eq_ignore_ascii_case(m.as_bytes()))
}

/// The text of a number that is a whole number people would write as digits (phone numbers and ids
/// stored as numbers): 79123456789.0 → "79123456789". None for fractions and for magnitudes where
/// an f64 no longer holds every digit.
fn integral_text(value: f64) -> Option<String> {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        Some((value as i64).to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    pub(super) fn read(bytes: &[u8]) -> Result<RawTable, ReadError> {
        read_table(None, None, bytes, &ReadOptions::default())
    }

    pub(super) fn cells(table: &RawTable) -> Vec<(usize, Vec<&str>)> {
        table
            .rows
            .iter()
            .map(|r| (r.number, r.cells.iter().map(String::as_str).collect()))
            .collect()
    }

    #[test]
    fn refuses_binaries_with_a_message_that_lists_what_is_accepted() {
        let pdf = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
        let err = read(pdf).unwrap_err();
        assert!(matches!(err, ReadError::UnknownFormat));
        let message = err.to_string();
        assert!(message.contains("CSV, TSV or TXT (UTF-8, UTF-16 or Windows-1251), XLSX, or JSON"));

        let xls = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0\0\0\0\0\0\0";
        let err = read_table(Some("list.xls"), None, xls, &ReadOptions::default()).unwrap_err();
        assert!(matches!(err, ReadError::UnknownFormat));
        assert!(err.to_string().contains("save it as .xlsx or CSV"));

        assert!(matches!(
            read(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Err(ReadError::UnknownFormat)
        ));
        assert!(matches!(
            read(b"<!DOCTYPE html><html><table><tr><td>1</td></tr></table></html>"),
            Err(ReadError::UnknownFormat)
        ));
    }

    #[test]
    fn refuses_random_binary_junk() {
        let junk: Vec<u8> = (0u32..2000)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(matches!(read(&junk), Err(ReadError::UnknownFormat)));
    }

    #[test]
    fn an_empty_file_has_no_data_rows() {
        assert!(matches!(read(b""), Err(ReadError::Empty)));
        assert!(matches!(read(b"  \r\n\n "), Err(ReadError::Empty)));
        assert!(matches!(read(b"\xEF\xBB\xBF"), Err(ReadError::Empty)));
        assert!(matches!(read(b";;\n ; ;\n"), Err(ReadError::Empty)));
        assert!(matches!(read(b"[]"), Err(ReadError::Empty)));
        assert_eq!(read(b"").unwrap_err().to_string(), "the file has no data rows");
    }

    #[test]
    fn names_of_formats() {
        assert_eq!(FileFormat::Delimited.as_str(), "csv");
        assert_eq!(FileFormat::Xlsx.as_str(), "xlsx");
        assert_eq!(FileFormat::Json.as_str(), "json");
    }

    #[test]
    fn messages_are_for_people() {
        let err = ReadError::TooLargeUnpacked {
            limit: DEFAULT_MAX_UNCOMPRESSED_BYTES,
        };
        assert_eq!(
            err.to_string(),
            "the spreadsheet expands to more than 104857600 bytes (100 MiB) when unpacked; split it into \
             smaller files or save it as CSV"
        );
        let err = ReadError::NoSuchSheet {
            wanted: "Users".into(),
            available: vec!["Sheet1".into(), "Лист2".into()],
        };
        assert_eq!(
            err.to_string(),
            "the workbook has no sheet named \"Users\"; its sheets are: \"Sheet1\", \"Лист2\""
        );
    }

    #[test]
    fn whole_numbers_are_written_as_digits() {
        assert_eq!(integral_text(79123456789.0).as_deref(), Some("79123456789"));
        assert_eq!(integral_text(-0.0).as_deref(), Some("0"));
        assert_eq!(integral_text(1.5), None);
        assert_eq!(integral_text(1e15), None);
        assert_eq!(integral_text(f64::NAN), None);
    }

    fn assert_sane(result: Result<RawTable, ReadError>) {
        if let Ok(table) = result {
            assert!(!table.rows.is_empty());
            for pair in table.rows.windows(2) {
                assert!(pair[0].number < pair[1].number, "row numbers must increase: {pair:?}");
            }
            for row in &table.rows {
                assert!(row.number >= 1);
                assert!(row.cells.iter().any(|c| !c.is_empty()));
                assert!(row.cells.iter().all(|c| c.trim() == c));
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            assert_sane(read(&bytes));
        }

        #[test]
        fn never_panics_on_arbitrary_zip_like_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut zip = ZIP_MAGIC.to_vec();
            zip.extend_from_slice(&bytes);
            assert_sane(read(&zip));
        }

        #[test]
        fn never_panics_on_delimited_text(text in "[a-zA-Zа-я0-9@+ ,;|\t\"\r\n]{0,400}") {
            assert_sane(read(text.as_bytes()));
        }

        #[test]
        fn never_panics_on_json_like_text(text in "[\\[\\]{}\":,a-z0-9. \n-]{0,200}") {
            assert_sane(read_table(Some("x.json"), None, text.as_bytes(), &ReadOptions::default()));
            assert_sane(read(text.as_bytes()));
        }
    }
}
