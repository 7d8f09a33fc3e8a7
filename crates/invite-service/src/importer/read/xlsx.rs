//! Excel workbooks (.xlsx).
//!
//! An .xlsx is a zip archive of XML files, and a zip can unpack to a thousand times its size, so the
//! archive is checked before anything is unpacked: the sizes its directory declares, each entry's
//! compression ratio, then each entry's actual size against the declared one (streamed, never held).
//! Only then does calamine read the sheet, cell by cell, so that cells far apart (A1 and XFD1048576)
//! cost what they hold and not the rectangle between them.

use std::{
    io::{self, Cursor, Read},
    panic::{self, AssertUnwindSafe},
};

use calamine::{DataRef, ExcelDateTime, Reader, SheetType, SheetVisible, Xlsx};
use zip::ZipArchive;

use super::{integral_text, FileFormat, RawRow, RawTable, ReadError, ReadOptions};

/// An entry must compress better than this and also be bigger than `SUSPICIOUS_ENTRY_BYTES` to be
/// refused as a zip bomb: XML sheets compress 10–20:1, deflate's ceiling is about 1000:1.
const SUSPICIOUS_RATIO: u64 = 200;
const SUSPICIOUS_ENTRY_BYTES: u64 = 10 * 1024 * 1024;
/// Excel's own dates end in 9999: serial 2958465 is 9999-12-31.
const MAX_DATE_SERIAL: f64 = 2_958_466.0;

pub(super) fn read(bytes: &[u8], options: &ReadOptions) -> Result<RawTable, ReadError> {
    // The zip and XML parsers meet hostile input here; a panic in them must become an answer, not a
    // dropped connection.
    panic::catch_unwind(AssertUnwindSafe(|| {
        check_archive(bytes, options.max_uncompressed_bytes)?;
        read_sheet(bytes, options)
    }))
    .unwrap_or_else(|_| Err(ReadError::Malformed("the spreadsheet could not be read".into())))
}

fn damaged(problem: impl std::fmt::Display) -> ReadError {
    ReadError::Malformed(format!(
        "the spreadsheet is damaged and could not be read ({problem}); save it again from Excel or as CSV"
    ))
}

/// Refuses archives that are not workbooks or that would unpack to too much; reads nothing but the
/// zip directory until the declared sizes have passed.
fn check_archive(bytes: &[u8], limit: u64) -> Result<(), ReadError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(damaged)?;
    if !archive
        .file_names()
        .any(|name| name.replace('\\', "/").eq_ignore_ascii_case("xl/workbook.xml"))
    {
        // A .docx, an .ods, an .xlsb or just a zip of something else.
        return Err(ReadError::UnknownFormat);
    }

    let mut total: u64 = 0;
    let mut suspicious = None;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(damaged)?;
        let (size, compressed) = (entry.size(), entry.compressed_size());
        total = total.saturating_add(size);
        if suspicious.is_none() && size > SUSPICIOUS_ENTRY_BYTES && size / compressed.max(1) > SUSPICIOUS_RATIO {
            suspicious = Some((entry.name().to_owned(), size, compressed));
        }
    }
    if total > limit {
        return Err(ReadError::TooLargeUnpacked { limit });
    }
    if let Some((name, size, compressed)) = suspicious {
        return Err(ReadError::Malformed(format!(
            "the spreadsheet looks like a zip bomb: its part {name:?} unpacks from {compressed} to {size} bytes \
             (more than {SUSPICIOUS_RATIO} times); save it again from Excel or as CSV"
        )));
    }

    // The directory may lie: unpack every entry into nothing, stopping one byte past what it declared.
    // This also checks each entry's CRC.
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(damaged)?;
        let declared = entry.size();
        let name = entry.name().to_owned();
        let actual = io::copy(&mut (&mut entry).take(declared.saturating_add(1)), &mut io::sink())
            .map_err(|e| damaged(format!("{name}: {e}")))?;
        if actual > declared {
            return Err(ReadError::Malformed(format!(
                "the spreadsheet is damaged or a zip bomb: its part {name:?} unpacks to more than the {declared} \
                 bytes it declares; save it again from Excel or as CSV"
            )));
        }
    }
    Ok(())
}

fn read_sheet(bytes: &[u8], options: &ReadOptions) -> Result<RawTable, ReadError> {
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(damaged)?;
    let sheets = workbook.sheets_metadata().to_vec();
    let name = match &options.sheet {
        Some(wanted) => {
            let wanted_trimmed = wanted.trim();
            let found = sheets
                .iter()
                .find(|s| s.name == *wanted)
                .or_else(|| {
                    sheets
                        .iter()
                        .find(|s| s.name.trim().eq_ignore_ascii_case(wanted_trimmed))
                })
                .or_else(|| {
                    let lower = wanted_trimmed.to_lowercase();
                    sheets.iter().find(|s| s.name.trim().to_lowercase() == lower)
                });
            match found {
                Some(sheet) => sheet.name.clone(),
                None => {
                    return Err(ReadError::NoSuchSheet {
                        wanted: wanted.clone(),
                        available: sheets.into_iter().map(|s| s.name).collect(),
                    })
                }
            }
        }
        // The first sheet a person sees: visible worksheets before hidden ones, never a chart.
        None => sheets
            .iter()
            .filter(|s| s.typ == SheetType::WorkSheet)
            .find(|s| s.visible == SheetVisible::Visible)
            .or_else(|| sheets.iter().find(|s| s.typ == SheetType::WorkSheet))
            .map(|s| s.name.clone())
            .ok_or_else(|| ReadError::Malformed("the workbook has no worksheet with a table in it".into()))?,
    };
    if let Some(sheet) = sheets.iter().find(|s| s.name == name && s.typ != SheetType::WorkSheet) {
        return Err(ReadError::Malformed(format!(
            "sheet {:?} is a chart or macro sheet, not a table; choose another sheet",
            sheet.name
        )));
    }

    let mut reader = workbook
        .worksheet_cells_reader(&name)
        .map_err(|e| damaged(format!("sheet {name:?}: {e}")))?;
    let mut cells: Vec<(u32, u32, String)> = Vec::new();
    while let Some(cell) = reader
        .next_cell()
        .map_err(|e| damaged(format!("sheet {name:?}: {e}")))?
    {
        let text = cell_text(cell.get_value());
        if !text.is_empty() {
            let (row, column) = cell.get_position();
            cells.push((row, column, text));
        }
    }
    drop(reader);

    let rows = into_rows(cells, options.max_uncompressed_bytes)?;
    Ok(RawTable {
        headers: None,
        rows,
        format: FileFormat::Xlsx,
        encoding: None,
        delimiter: None,
        sheet: Some(name),
    })
}

/// Lays sparse cells out as rows. Rows keep the number the spreadsheet shows; columns start at the
/// leftmost used column (as calamine's ranges do), and each row ends at its last non-empty cell.
fn into_rows(mut cells: Vec<(u32, u32, String)>, limit: u64) -> Result<Vec<RawRow>, ReadError> {
    if !cells.is_sorted_by_key(|&(row, column, _)| (row, column)) {
        cells.sort_by_key(|&(row, column, _)| (row, column));
    }
    // A hostile sheet may name a cell twice: the first one stays.
    cells.dedup_by_key(|&mut (row, column, _)| (row, column));
    let Some(first_column) = cells.iter().map(|&(_, column, _)| column).min() else {
        return Ok(Vec::new());
    };

    // Every padding cell costs a String even when empty; cap what the rows may cost in memory by the
    // same limit as the unpacked archive.
    let mut cost: u64 = 0;
    let mut rows: Vec<RawRow> = Vec::new();
    let mut cells = cells.into_iter().peekable();
    let mut row_cells = Vec::new();
    while let Some((row, column, text)) = cells.next() {
        row_cells.push((column, text));
        while let Some((_, column, text)) = cells.next_if(|&(next, _, _)| next == row) {
            row_cells.push((column, text));
        }
        let width = row_cells
            .last()
            .map_or(0, |&(column, _)| (column - first_column) as usize + 1);
        let text_bytes: usize = row_cells.iter().map(|(_, text)| text.len()).sum();
        cost = cost.saturating_add((width * size_of::<String>() + text_bytes) as u64);
        if cost > limit {
            return Err(ReadError::TooLargeUnpacked { limit });
        }
        let mut out = vec![String::new(); width];
        for (column, text) in row_cells.drain(..) {
            out[(column - first_column) as usize] = text;
        }
        rows.push(RawRow {
            number: row as usize + 1,
            cells: out,
        });
    }
    Ok(rows)
}

fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::SharedString(s) => s.trim().to_owned(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.trim().to_owned(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => float_text(*f),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) => datetime_text(dt),
        DataRef::Error(_) | DataRef::Empty => String::new(),
    }
}

/// Whole numbers as digits (phone numbers typed into Excel are numbers), the rest as Rust's shortest
/// text that reads back the same.
fn float_text(value: f64) -> String {
    integral_text(value).unwrap_or_else(|| value.to_string())
}

/// ISO 8601: `2024-03-01`, `2024-03-01T12:30:00`, `12:30:00`; durations as `hh:mm:ss`.
fn datetime_text(dt: &ExcelDateTime) -> String {
    let serial = dt.as_f64();
    if !(0.0..MAX_DATE_SERIAL).contains(&serial) {
        return float_text(serial);
    }
    if dt.is_duration() {
        let seconds = (serial * 86_400.0).round() as u64;
        return format!("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
    }
    let (year, month, day, hour, minute, second, milli) = dt.to_ymd_hms_milli();
    let time = if milli == 0 {
        format!("{hour:02}:{minute:02}:{second:02}")
    } else {
        format!("{hour:02}:{minute:02}:{second:02}.{milli:03}")
    };
    if serial < 1.0 {
        time
    } else if serial.fract() == 0.0 {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{time}")
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use rust_xlsxwriter::{ExcelDateTime as WriterDate, Format, Formula, Workbook};
    use zip::{write::SimpleFileOptions, CompressionMethod, ZipWriter};

    use super::super::tests::{cells, read};
    use super::super::{read_table, DEFAULT_MAX_UNCOMPRESSED_BYTES};
    use super::*;

    fn read_sheet_named(bytes: &[u8], sheet: &str) -> Result<RawTable, ReadError> {
        let options = ReadOptions {
            sheet: Some(sheet.into()),
            ..ReadOptions::default()
        };
        read_table(Some("list.xlsx"), None, bytes, &options)
    }

    /// Two title rows, a header in row 3 and a phone number typed as a number.
    fn titled_workbook() -> Vec<u8> {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet().set_name("Аудитория").unwrap();
        sheet.write_string(0, 0, "Список участников").unwrap();
        sheet.write_string(1, 0, "выгружено 2024-03-01").unwrap();
        sheet.write_string(2, 0, "Имя").unwrap();
        sheet.write_string(2, 1, "Телефон").unwrap();
        sheet.write_string(2, 2, "Username").unwrap();
        sheet.write_string(3, 0, " Иван ").unwrap();
        sheet.write_number(3, 1, 79123456789.0).unwrap();
        sheet.write_string(3, 2, "@ivan").unwrap();
        sheet.write_string(4, 0, "Мария").unwrap();
        sheet.write_number(4, 1, 1.25).unwrap();
        sheet.write_boolean(4, 2, true).unwrap();
        let other = workbook.add_worksheet().set_name("Other").unwrap();
        other.write_string(1, 1, "elsewhere").unwrap();
        workbook.save_to_buffer().unwrap()
    }

    #[test]
    fn reads_the_first_sheet_keeping_the_row_numbers_excel_shows() {
        let table = read(&titled_workbook()).unwrap();
        assert_eq!(table.format, FileFormat::Xlsx);
        assert_eq!(
            (table.sheet.as_deref(), table.encoding, table.delimiter),
            (Some("Аудитория"), None, None)
        );
        assert_eq!(table.headers, None);
        assert_eq!(
            cells(&table),
            vec![
                (1, vec!["Список участников"]),
                (2, vec!["выгружено 2024-03-01"]),
                (3, vec!["Имя", "Телефон", "Username"]),
                (4, vec!["Иван", "79123456789", "@ivan"]),
                (5, vec!["Мария", "1.25", "true"]),
            ]
        );
    }

    #[test]
    fn reads_a_named_sheet_and_explains_a_missing_one() {
        let bytes = titled_workbook();
        let table = read_sheet_named(&bytes, "Other").unwrap();
        // Leading empty rows and columns: the row number is the one Excel shows.
        assert_eq!(cells(&table), vec![(2, vec!["elsewhere"])]);
        assert_eq!(table.sheet.as_deref(), Some("Other"));
        assert_eq!(
            read_sheet_named(&bytes, " аудитория ").unwrap().sheet.as_deref(),
            Some("Аудитория")
        );

        let err = read_sheet_named(&bytes, "Users").unwrap_err();
        let ReadError::NoSuchSheet { wanted, available } = &err else {
            panic!("expected NoSuchSheet, got {err:?}")
        };
        assert_eq!(
            (wanted.as_str(), available.as_slice()),
            ("Users", &["Аудитория".to_string(), "Other".into()][..])
        );
    }

    #[test]
    fn dates_errors_and_empty_sheets() {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        let date = Format::new().set_num_format("yyyy-mm-dd");
        let datetime = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
        let time = Format::new().set_num_format("hh:mm");
        sheet.write_string(0, 0, "joined").unwrap();
        sheet
            .write_datetime_with_format(1, 0, WriterDate::from_ymd(2024, 3, 1).unwrap(), &date)
            .unwrap();
        let at = WriterDate::from_ymd(2024, 3, 1).unwrap().and_hms(12, 30, 5).unwrap();
        sheet.write_datetime_with_format(2, 0, at, &datetime).unwrap();
        sheet
            .write_datetime_with_format(3, 0, WriterDate::from_hms(9, 15, 0).unwrap(), &time)
            .unwrap();
        sheet
            .write_formula(4, 0, Formula::new("=1/0").set_result("#DIV/0!"))
            .unwrap();
        sheet.write_string(4, 1, "x").unwrap();
        workbook.add_worksheet().set_name("Empty").unwrap();
        let bytes = workbook.save_to_buffer().unwrap();

        let table = read(&bytes).unwrap();
        assert_eq!(
            cells(&table),
            vec![
                (1, vec!["joined"]),
                (2, vec!["2024-03-01"]),
                (3, vec!["2024-03-01T12:30:05"]),
                (4, vec!["09:15:00"]),
                (5, vec!["", "x"]),
            ]
        );
        assert!(matches!(read_sheet_named(&bytes, "Empty"), Err(ReadError::Empty)));
    }

    #[test]
    fn numbers_as_text() {
        assert_eq!(float_text(79123456789.0), "79123456789");
        assert_eq!(float_text(-5.0), "-5");
        assert_eq!(float_text(0.1), "0.1");
        assert_eq!(float_text(1e15), "1000000000000000");
        assert_eq!(float_text(1.5e300).len(), 301);
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for (name, content) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(content).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// A raw deflate stream of `1 + 258 * copies` zero bytes, as deflate itself encodes zeros: one
    /// literal zero, then "copy 258 bytes from 1 back" over and over, in one block whose Huffman codes
    /// give that copy 2 bits (1032:1). Written by hand because compressing 200 MiB through the zip
    /// crate takes many seconds in a debug build.
    fn deflated_zeros(copies: usize) -> (Vec<u8>, u64) {
        struct Bits {
            out: Vec<u8>,
            acc: u64,
            n: u32,
        }
        impl Bits {
            /// Header fields and extra bits go out least significant bit first.
            fn push(&mut self, value: u64, n: u32) {
                self.acc |= value << self.n;
                self.n += n;
                while self.n >= 8 {
                    self.out.push(self.acc as u8);
                    self.acc >>= 8;
                    self.n -= 8;
                }
            }
            /// Huffman codes go out most significant bit first.
            fn code(&mut self, code: u32, n: u32) {
                self.push(u64::from(code.reverse_bits() >> (32 - n)), n);
            }
        }
        let mut bits = Bits {
            out: Vec::with_capacity(copies / 4 + 64),
            acc: 0,
            n: 0,
        };
        bits.push(1, 1); // the final block
        bits.push(2, 2); // with its own Huffman codes
        bits.push(29, 5); // 286 literal/length codes (0..=285)
        bits.push(0, 5); // 1 distance code
        bits.push(14, 4); // 18 code length code lengths, in the order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1
        for length in [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2] {
            bits.push(length, 3);
        }
        // Code length codes: 18 (a run of zeros) = 0, 1 = 10, 2 = 11. Literal/length code lengths:
        // 0 → 2, 256 (end) → 2, 285 (length 258) → 1; the one distance code (distance 1) → 1.
        let (one, two, zeros) = ((0b10, 2), (0b11, 2), (0, 1));
        for (symbol, run) in [
            (two, None),
            (zeros, Some(138)),
            (zeros, Some(117)),
            (two, None),
            (zeros, Some(28)),
            (one, None),
            (one, None),
        ] {
            bits.code(symbol.0, symbol.1);
            if let Some(run) = run {
                bits.push(run - 11, 7);
            }
        }
        // So: literal 0 = 10, end of block = 11, length 258 = 0, distance 1 = 0.
        bits.code(0b10, 2);
        for _ in 0..copies {
            bits.code(0, 1);
            bits.code(0, 1);
        }
        bits.code(0b11, 2);
        bits.push(0, 7); // pad to a byte
        (bits.out, 1 + 258 * copies as u64)
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// One part of a hand-made archive: its compressed bytes and what the directory says about them.
    struct Part<'a> {
        name: &'a str,
        deflated: bool,
        data: &'a [u8],
        crc: u32,
        declared_size: u64,
    }

    fn stored<'a>(name: &'a str, data: &'a [u8]) -> Part<'a> {
        Part {
            name,
            deflated: false,
            data,
            crc: crc32(data),
            declared_size: data.len() as u64,
        }
    }

    /// A zip archive written field by field (APPNOTE 4.3), so that a test can declare what it likes.
    fn handmade_zip(parts: &[Part<'_>]) -> Vec<u8> {
        fn header(out: &mut Vec<u8>, part: &Part<'_>) {
            out.extend_from_slice(&20u16.to_le_bytes()); // version needed
            out.extend_from_slice(&0u16.to_le_bytes()); // flags
            out.extend_from_slice(&(if part.deflated { 8u16 } else { 0 }).to_le_bytes());
            out.extend_from_slice(&[0, 0, 0x21, 0]); // time, date: 1980-01-01
            out.extend_from_slice(&part.crc.to_le_bytes());
            out.extend_from_slice(&(part.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(part.declared_size as u32).to_le_bytes());
            out.extend_from_slice(&(part.name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes()); // extra field length
        }
        let mut out = Vec::new();
        let mut offsets = Vec::new();
        for part in parts {
            offsets.push(out.len() as u32);
            out.extend_from_slice(b"PK\x03\x04");
            header(&mut out, part);
            out.extend_from_slice(part.name.as_bytes());
            out.extend_from_slice(part.data);
        }
        let directory_at = out.len() as u32;
        for (part, offset) in parts.iter().zip(offsets) {
            out.extend_from_slice(b"PK\x01\x02");
            out.extend_from_slice(&20u16.to_le_bytes()); // version made by
            header(&mut out, part);
            out.extend_from_slice(&[0; 10]); // comment length, disk, internal and external attributes
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(part.name.as_bytes());
        }
        let directory_size = out.len() as u32 - directory_at;
        out.extend_from_slice(b"PK\x05\x06");
        out.extend_from_slice(&[0; 4]); // disk numbers
        out.extend_from_slice(&(parts.len() as u16).to_le_bytes());
        out.extend_from_slice(&(parts.len() as u16).to_le_bytes());
        out.extend_from_slice(&directory_size.to_le_bytes());
        out.extend_from_slice(&directory_at.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // comment length
        out
    }

    /// An archive shaped like a workbook whose sheet unpacks to about `bytes` zeros, declaring
    /// `declared` (None: the truth).
    fn zeros_workbook(bytes: u64, declared: Option<u64>) -> Vec<u8> {
        let (sheet, size) = deflated_zeros(bytes.div_ceil(258) as usize);
        let crc = if size < 1024 * 1024 {
            crc32(&vec![0; size as usize])
        } else {
            0
        };
        handmade_zip(&[
            stored("[Content_Types].xml", b"<Types/>"),
            stored("xl/workbook.xml", b"<workbook/>"),
            Part {
                name: "xl/worksheets/sheet1.xml",
                deflated: true,
                data: &sheet,
                // Left 0 for the big ones: computing it takes seconds in a debug build, and the reader
                // must refuse them before unpacking enough to notice.
                crc,
                declared_size: declared.unwrap_or(size),
            },
        ])
    }

    #[test]
    fn the_handmade_archive_is_a_real_zip() {
        let small = zeros_workbook(100_000, None);
        let mut archive = ZipArchive::new(Cursor::new(&small[..])).unwrap();
        let mut sheet = archive.by_name("xl/worksheets/sheet1.xml").unwrap();
        let mut content = Vec::new();
        sheet.read_to_end(&mut content).unwrap();
        assert!(content.len() >= 100_000 && content.iter().all(|&b| b == 0));
        // Valid as a zip, not as a workbook: calamine finds no sheets.
        assert!(
            matches!(read(&small), Err(ReadError::Malformed(_))),
            "{:?}",
            read(&small)
        );
    }

    #[test]
    fn refuses_a_zip_bomb_from_its_directory() {
        let bomb = zeros_workbook(200 * 1024 * 1024, None);
        assert!(bomb.len() < 256 * 1024, "the bomb itself is small: {}", bomb.len());
        let err = read(&bomb).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::TooLargeUnpacked {
                    limit: DEFAULT_MAX_UNCOMPRESSED_BYTES
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_an_entry_that_compresses_absurdly_well() {
        let err = read(&zeros_workbook(11 * 1024 * 1024, None)).unwrap_err();
        let ReadError::Malformed(message) = &err else {
            panic!("expected Malformed, got {err:?}")
        };
        assert!(message.contains("zip bomb"), "{message}");
    }

    #[test]
    fn refuses_an_entry_larger_than_it_declares() {
        let err = read(&zeros_workbook(4 * 1024 * 1024, Some(1000))).unwrap_err();
        let ReadError::Malformed(message) = &err else {
            panic!("expected Malformed, got {err:?}")
        };
        assert!(message.contains("more than the 1000 bytes it declares"), "{message}");
    }

    #[test]
    fn a_zip_that_is_not_a_workbook_is_unknown() {
        let docx = zip_of(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", b"<w:document/>"),
        ]);
        assert!(matches!(read(&docx), Err(ReadError::UnknownFormat)));
        let damaged = b"PK\x03\x04garbage that is no zip at all";
        assert!(matches!(read(damaged), Err(ReadError::Malformed(_))));
    }

    #[test]
    fn a_workbook_calamine_cannot_read_is_malformed() {
        let broken = zip_of(&[(
            "xl/workbook.xml",
            b"<workbook><sheets><sheet name=\"S\" r:id=\"rId1\"/>",
        )]);
        assert!(matches!(read(&broken), Err(ReadError::Malformed(_))));
    }

    /// The parts of a small real workbook, unpacked.
    fn workbook_parts() -> &'static [(String, Vec<u8>)] {
        static PARTS: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
        PARTS.get_or_init(|| {
            let mut workbook = Workbook::new();
            let sheet = workbook.add_worksheet();
            sheet.write_string(0, 0, "username").unwrap();
            sheet.write_number(1, 0, 79123456789.0).unwrap();
            sheet.write_boolean(2, 1, false).unwrap();
            let bytes = workbook.save_to_buffer().unwrap();
            let mut archive = ZipArchive::new(Cursor::new(bytes)).unwrap();
            (0..archive.len())
                .map(|i| {
                    let mut part = archive.by_index(i).unwrap();
                    let mut content = Vec::new();
                    part.read_to_end(&mut content).unwrap();
                    (part.name().to_owned(), content)
                })
                .collect()
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]
        /// Damaged XML inside a sound archive (checksums right) reaches calamine itself.
        #[test]
        fn never_panics_on_a_damaged_workbook(
            part in proptest::prelude::any::<proptest::sample::Index>(),
            damage in proptest::collection::vec(
                (proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()),
                1..8,
            ),
        ) {
            let mut parts = workbook_parts().to_vec();
            let damaged = part.index(parts.len());
            let content = &mut parts[damaged].1;
            for (at, byte) in damage {
                if !content.is_empty() {
                    let at = at.index(content.len());
                    content[at] = byte;
                }
            }
            let entries: Vec<(&str, &[u8])> = parts.iter().map(|(name, c)| (name.as_str(), c.as_slice())).collect();
            if let Ok(table) = read(&zip_of(&entries)) {
                proptest::prop_assert!(table.rows.windows(2).all(|w| w[0].number < w[1].number));
            }
        }
    }

    #[test]
    fn far_apart_cells_cost_what_they_hold() {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "a").unwrap();
        sheet.write_string(1_048_575, 1, "b").unwrap();
        let table = read(&workbook.save_to_buffer().unwrap()).unwrap();
        assert_eq!(cells(&table), vec![(1, vec!["a"]), (1_048_576, vec!["", "b"])]);

        // A cell in the last column of many rows would need millions of empty cells: refused.
        let rows = (0..64u32)
            .map(|r| (r, 16_383, "x".to_string()))
            .chain([(0, 0, "a".to_string())]);
        let err = into_rows(rows.collect(), 1024 * 1024).unwrap_err();
        assert!(matches!(err, ReadError::TooLargeUnpacked { .. }));
    }
}
