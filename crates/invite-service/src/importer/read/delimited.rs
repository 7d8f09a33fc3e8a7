//! CSV, TSV, `|`-separated text and one-value-per-line lists.
//!
//! The delimiter is sniffed, not taken from the file name: a Russian Excel writes `;` into `.csv`,
//! Excel's "Unicode text" is TAB-separated in a `.txt`, and a `.txt` may just as well be a plain list
//! with one username per line.

use std::{cmp::Reverse, io::Cursor, sync::Arc};

use csv::{ByteRecord, Reader, ReaderBuilder, StringRecord};

use super::{RawRow, ReadError};

/// The delimiters people's tools write, in the order preferred when two fit equally well.
const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
/// How many non-empty records the sniffer looks at.
const SNIFF_RECORDS: usize = 50;
/// How much text the sniffer looks at at most, so that an unbalanced quote cannot make it walk
/// through a whole large file once per candidate.
const SNIFF_BYTES: usize = 256 * 1024;
/// The "delimiter" for a one-column list: a byte text never contains (the decoder refuses NULs), so
/// each line is one cell while quotes still work as in CSV.
const NO_DELIMITER: u8 = 0;

/// A file's text, borrowed from the upload (UTF-8 needs no copy) or owned after decoding; shared by
/// the CSV reader and the line counter, so rows can be read one at a time.
#[derive(Clone)]
pub(super) enum Text<'a> {
    Borrowed(&'a [u8]),
    Owned(Arc<[u8]>),
}

impl AsRef<[u8]> for Text<'_> {
    fn as_ref(&self) -> &[u8] {
        match self {
            Text::Borrowed(b) => b,
            Text::Owned(b) => b,
        }
    }
}

/// Starts reading delimited text: the delimiter found (None: a one-column list) and the rows, read
/// lazily so a large file is never held as a table.
pub(super) fn stream(text: Text<'_>) -> (Option<u8>, DelimitedRows<'_>) {
    let delimiter = sniff(text.as_ref());
    let reader = reader_builder(delimiter.unwrap_or(NO_DELIMITER)).from_reader(Cursor::new(text.clone()));
    let lines = LineCounter::new(text);
    (
        delimiter,
        DelimitedRows {
            reader,
            record: StringRecord::new(),
            lines,
            failed: false,
        },
    )
}

fn reader_builder(delimiter: u8) -> ReaderBuilder {
    let mut builder = ReaderBuilder::new();
    builder
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .quote(b'"')
        .double_quote(true);
    builder
}

/// The candidate that splits the first records into the same number (> 1) of columns most often;
/// ties go to more columns, then to the order of `CANDIDATES`. None when no candidate gives more than
/// one column: the file is a one-column list.
fn sniff(bytes: &[u8]) -> Option<u8> {
    let truncated = bytes.len() > SNIFF_BYTES;
    let sample = &bytes[..bytes.len().min(SNIFF_BYTES)];
    CANDIDATES
        .iter()
        .enumerate()
        .filter_map(|(preference, &delimiter)| {
            let (agreeing, columns) = consistency(sample, truncated, delimiter)?;
            Some(((agreeing, columns, Reverse(preference)), delimiter))
        })
        .max_by_key(|(score, _)| *score)
        .map(|(_, delimiter)| delimiter)
}

/// How many of the sampled records have the most common column count, and that count; None if the
/// most common count is 1 (the delimiter does not split this file).
fn consistency(sample: &[u8], truncated: bool, delimiter: u8) -> Option<(usize, usize)> {
    let mut reader = reader_builder(delimiter).from_reader(sample);
    let mut record = ByteRecord::new();
    let mut counts = Vec::with_capacity(SNIFF_RECORDS);
    let mut reached_end = false;
    while counts.len() < SNIFF_RECORDS {
        match reader.read_byte_record(&mut record) {
            // Blank lines say nothing; rows of bare delimiters (Excel's `;;;` below the data) do.
            Ok(true) if record.len() == 1 && record[0].trim_ascii().is_empty() => {}
            Ok(true) => counts.push(record.len()),
            Ok(false) | Err(_) => {
                reached_end = true;
                break;
            }
        }
    }
    if truncated && reached_end && counts.len() > 1 {
        // The sample cut the last record short.
        counts.pop();
    }
    counts.sort_unstable();
    let (columns, agreeing) = counts
        .chunk_by(|a, b| a == b)
        .map(|run| (run[0], run.len()))
        .max_by_key(|&(columns, n)| (n, columns))?;
    (columns > 1).then_some((agreeing, columns))
}

/// The rows of a delimited file, one at a time; blank rows are skipped.
pub(super) struct DelimitedRows<'a> {
    reader: Reader<Cursor<Text<'a>>>,
    record: StringRecord,
    lines: LineCounter<Text<'a>>,
    failed: bool,
}

impl Iterator for DelimitedRows<'_> {
    type Item = Result<RawRow, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.failed = true;
                    let line = e
                        .position()
                        .map_or(self.lines.line, |p| self.lines.line_at(p.byte() as usize));
                    return Some(Err(ReadError::Malformed(format!(
                        "line {line}: the file could not be read: {e}"
                    ))));
                }
            }
            let start = self.record.position().map_or(0, |p| p.byte() as usize);
            let number = self.lines.line_at(start);
            if self.record.iter().all(|cell| cell.trim().is_empty()) {
                continue;
            }
            // `to_owned` of an empty cell does not allocate: one allocation per non-empty cell.
            let cells = self.record.iter().map(|cell| cell.trim().to_owned()).collect();
            return Some(Ok(RawRow { number, cells }));
        }
    }
}

/// Line numbers as a text editor shows them, counting `\n`, `\r\n` and a lone `\r` alike.
///
/// csv's own `Position::line` counts only `\n`, and a record's position is where the reader stood
/// before it skipped blank lines, so both would point people at the wrong line.
struct LineCounter<T> {
    bytes: T,
    /// Everything before this offset has been counted.
    offset: usize,
    line: usize,
    after_cr: bool,
    /// Whether some `\r` is a line break of its own (old Mac files). Without one, counting `\n` is
    /// enough, and that is a loop the compiler vectorises.
    lone_cr: bool,
}

impl<T: AsRef<[u8]>> LineCounter<T> {
    fn new(bytes: T) -> Self {
        let b = bytes.as_ref();
        let lone_cr =
            b.contains(&b'\r') && (b.ends_with(b"\r") || b.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n'));
        Self {
            bytes,
            offset: 0,
            line: 1,
            after_cr: false,
            lone_cr,
        }
    }

    /// The line of the first byte of a record that starts at or after `offset`, past any blank lines.
    fn line_at(&mut self, offset: usize) -> usize {
        let bytes = self.bytes.as_ref();
        let mut start = offset.clamp(self.offset, bytes.len());
        while bytes.get(start).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
            start += 1;
        }
        let skipped = &bytes[self.offset..start];
        if !self.lone_cr {
            self.line += skipped.iter().filter(|&&b| b == b'\n').count();
        } else {
            for &b in skipped {
                match b {
                    b'\n' if self.after_cr => self.after_cr = false,
                    b'\n' => self.line += 1,
                    b'\r' => {
                        self.line += 1;
                        self.after_cr = true;
                    }
                    _ => self.after_cr = false,
                }
            }
        }
        self.offset = start;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cells, read};
    use super::super::{FileFormat, ReadOptions};
    use super::*;

    #[test]
    fn utf8_bom_csv_with_semicolons() {
        let table =
            read("\u{feff}Имя;Телефон;Username\r\nИван;+7 912 345-67-89;@ivan\r\nМария;79001234567;\r\n".as_bytes())
                .unwrap();
        assert_eq!(table.format, FileFormat::Delimited);
        assert_eq!(
            (table.encoding, table.delimiter, table.headers.as_ref()),
            (Some("UTF-8"), Some(';'), None)
        );
        assert_eq!(
            cells(&table),
            vec![
                (1, vec!["Имя", "Телефон", "Username"]),
                (2, vec!["Иван", "+7 912 345-67-89", "@ivan"]),
                (3, vec!["Мария", "79001234567", ""]),
            ]
        );
    }

    #[test]
    fn utf16le_tsv_as_excel_saves_unicode_text() {
        let text = "Имя\tТелефон\r\nИван\t79123456789\r\n\"Пётр, мл.\"\t79001234567\r\n";
        let mut bytes = b"\xFF\xFE".to_vec();
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let table = read(&bytes).unwrap();
        assert_eq!((table.encoding, table.delimiter), (Some("UTF-16LE"), Some('\t')));
        assert_eq!(
            cells(&table),
            vec![
                (1, vec!["Имя", "Телефон"]),
                (2, vec!["Иван", "79123456789"]),
                (3, vec!["Пётр, мл.", "79001234567"]),
            ]
        );
    }

    #[test]
    fn utf16le_without_bom() {
        let text = "username,phone\n@ivan,79123456789\n@maria,79001234567\n";
        let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let table = read(&bytes).unwrap();
        assert_eq!((table.encoding, table.delimiter), (Some("UTF-16LE"), Some(',')));
        assert_eq!(cells(&table)[2], (3, vec!["@maria", "79001234567"]));
    }

    #[test]
    fn windows_1251_csv_with_cyrillic_headers() {
        let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251
            .encode("Фамилия;Имя;Телефон\nИванов;Иван;79123456789\nПетрова;Мария;79001234567\n");
        assert!(!unmappable);
        let table = read(&bytes).unwrap();
        assert_eq!((table.encoding, table.delimiter), (Some("windows-1251"), Some(';')));
        assert_eq!(
            cells(&table),
            vec![
                (1, vec!["Фамилия", "Имя", "Телефон"]),
                (2, vec!["Иванов", "Иван", "79123456789"]),
                (3, vec!["Петрова", "Мария", "79001234567"]),
            ]
        );
    }

    #[test]
    fn pipe_delimited() {
        let table = read(b"id | username\n1 | @a\n2 | @b\n").unwrap();
        assert_eq!(table.delimiter, Some('|'));
        assert_eq!(
            cells(&table),
            vec![(1, vec!["id", "username"]), (2, vec!["1", "@a"]), (3, vec!["2", "@b"])]
        );
    }

    #[test]
    fn quoted_cells_hold_delimiters_quotes_and_newlines_and_line_numbers_stay_right() {
        let text = "name,note,phone\n\"Ivanov, Ivan\",\"line one\nline two\",79123456789\n\n\"Say \"\"hi\"\"\",x,79001234567\n";
        let table = read(text.as_bytes()).unwrap();
        assert_eq!(table.delimiter, Some(','));
        assert_eq!(
            cells(&table),
            vec![
                (1, vec!["name", "note", "phone"]),
                (2, vec!["Ivanov, Ivan", "line one\nline two", "79123456789"]),
                (5, vec!["Say \"hi\"", "x", "79001234567"]),
            ]
        );
    }

    #[test]
    fn headerless_one_column_txt() {
        let table = read(b"@ivan\r\n\r\n  @maria  \r\n79123456789\r\n").unwrap();
        assert_eq!(table.delimiter, None);
        assert_eq!(
            cells(&table),
            vec![(1, vec!["@ivan"]), (3, vec!["@maria"]), (4, vec!["79123456789"])]
        );
    }

    #[test]
    fn a_few_commas_in_a_list_do_not_make_it_a_csv() {
        let table = read(b"@ivan\n@maria\nIvanov, Ivan\n@petr\n").unwrap();
        assert_eq!(table.delimiter, None);
        assert_eq!(cells(&table)[2], (3, vec!["Ivanov, Ivan"]));
    }

    #[test]
    fn the_most_consistent_delimiter_wins() {
        // Commas inside the names, semicolons between the columns.
        let table = read("Фамилия;Телефон\nИванов, Иван;79123456789\nПетров;79001234567\n".as_bytes()).unwrap();
        assert_eq!(table.delimiter, Some(';'));
        // TAB between columns, commas in one column: more columns wins a tie in consistency.
        let table = read(b"a, b\tc\td\ne, f\tg\th\n").unwrap();
        assert_eq!(table.delimiter, Some('\t'));
    }

    #[test]
    fn line_numbers_count_every_kind_of_line_break() {
        let table = read(b"a,b\rc,d\r\n\r\ne,f\n\ng,h").unwrap();
        assert_eq!(
            cells(&table),
            vec![
                (1, vec!["a", "b"]),
                (2, vec!["c", "d"]),
                (4, vec!["e", "f"]),
                (6, vec!["g", "h"])
            ]
        );
        let table = read(b"a,b\r\n\r\n\"x\r\ny\",z\r\n\r\n\r\nc,d\r\n").unwrap();
        assert_eq!(
            cells(&table),
            vec![(1, vec!["a", "b"]), (3, vec!["x\r\ny", "z"]), (7, vec!["c", "d"])]
        );
        let table = read(b"\n\n  \nx\n").unwrap();
        assert_eq!(cells(&table), vec![(4, vec!["x"])]);
    }

    #[test]
    fn a_bracket_is_not_always_json() {
        let table = read(b"[vip] @ivan\n[new] @maria\n").unwrap();
        assert_eq!(table.format, FileFormat::Delimited);
        assert_eq!(cells(&table)[1], (2, vec!["[new] @maria"]));
    }

    #[test]
    fn sniffing_stops_at_the_sample() {
        // The sniffer sees only the first SNIFF_BYTES; the rows after still split the same way.
        let mut text = String::from("username;phone\n");
        while text.len() < SNIFF_BYTES * 2 {
            text.push_str("@somebody_quite_long;79123456789\n");
        }
        let table = super::super::read_table(None, None, text.as_bytes(), &ReadOptions::default()).unwrap();
        assert_eq!(table.delimiter, Some(';'));
        assert!(table.rows.iter().all(|r| r.cells.len() == 2));
        assert_eq!(table.rows.last().unwrap().number, table.rows.len());
    }
}
