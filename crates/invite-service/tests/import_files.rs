//! Audience files as people really export them — Google Sheets and Russian Excel CSV, Excel's
//! "Unicode text", plain lists, spreadsheets, JSON dumps — each built here from bytes, read with
//! `read_table` and prepared with `prepare_table` (region RU), and checked for what a person sees in
//! the import report: the format and encoding found, the header row, which field each column became,
//! how many rows were accepted and why the others were rejected.
//!
//! `cargo test -p invite-service --test import_files -- --nocapture` prints the cases as a table.

use domain::{
    audience::{RejectReason, RejectedRow, TargetDraft},
    phone::Region,
};
use invite_service::importer::{
    prepare_table,
    read::{read_table, FileFormat, RawTable, ReadError, ReadOptions},
    Prepared,
};
use rust_xlsxwriter::Workbook;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------------
// Building files

fn utf8(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn utf8_bom(text: &str) -> Vec<u8> {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

fn windows_1251(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(text);
    assert!(!unmappable, "the test text must fit Windows-1251");
    bytes.into_owned()
}

fn utf16le(text: &str, bom: bool) -> Vec<u8> {
    let mut bytes = if bom { b"\xFF\xFE".to_vec() } else { Vec::new() };
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

fn json_bytes(value: Value) -> Vec<u8> {
    serde_json::to_vec_pretty(&value).unwrap()
}

/// Two title rows ("Export 2026-11-20" and a blank one), the header on row 3, phones typed as numbers.
fn xlsx_with_title_rows() -> Vec<u8> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet().set_name("Export").unwrap();
    sheet.write_string(0, 0, "Export 2026-11-20").unwrap();
    for (col, header) in ["Username", "Телефон", "Имя"].into_iter().enumerate() {
        sheet.write_string(2, col as u16, header).unwrap();
    }
    sheet.write_string(3, 0, "@anna_k").unwrap();
    sheet.write_number(3, 1, 79123456789.0).unwrap();
    sheet.write_string(3, 2, " Анна ").unwrap();
    sheet.write_string(4, 0, "boris_b").unwrap();
    sheet.write_number(4, 1, 89120000002.0).unwrap();
    sheet.write_string(4, 2, "Борис").unwrap();
    // No username; a national ten-digit number typed as a number.
    sheet.write_number(5, 1, 9121112233.0).unwrap();
    sheet.write_string(5, 2, "Клара").unwrap();
    workbook.save_to_buffer().unwrap()
}

/// A summary on the first sheet, the list on a second sheet named "Участники".
fn xlsx_with_named_second_sheet() -> Vec<u8> {
    let mut workbook = Workbook::new();
    let summary = workbook.add_worksheet().set_name("Сводка").unwrap();
    summary.write_string(0, 0, "Всего").unwrap();
    summary.write_number(0, 1, 3.0).unwrap();
    let list = workbook.add_worksheet().set_name("Участники").unwrap();
    for (col, header) in ["Ник", "Телефон", "Комментарий"].into_iter().enumerate() {
        list.write_string(0, col as u16, header).unwrap();
    }
    let rows = [
        ["@olga_s", "+7 (921) 555-01-01", "из чата"],
        ["@petr_v", "", ""],
        ["https://t.me/rita_m", "8 921 555 01 03", "VIP"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            if !value.is_empty() {
                list.write_string(r as u32 + 1, c as u16, *value).unwrap();
            }
        }
    }
    workbook.save_to_buffer().unwrap()
}

/// Telegram ids typed as numbers (one as text, as happens after a paste).
fn xlsx_with_numeric_ids() -> Vec<u8> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "Telegram ID").unwrap();
    sheet.write_string(0, 1, "Name").unwrap();
    sheet.write_number(1, 0, 100200301.0).unwrap();
    sheet.write_string(1, 1, "Anna").unwrap();
    sheet.write_number(2, 0, 5012345678.0).unwrap();
    sheet.write_string(2, 1, "Boris").unwrap();
    sheet.write_string(3, 0, "777000").unwrap();
    sheet.write_number(4, 0, 123.0).unwrap();
    sheet.write_string(4, 1, "Dmitry").unwrap();
    workbook.save_to_buffer().unwrap()
}

// ---------------------------------------------------------------------------------------------------
// Reading drafts

fn username(d: &TargetDraft) -> Option<&str> {
    d.username.as_ref().map(|u| u.as_str())
}

fn phone(d: &TargetDraft) -> Option<&str> {
    d.phone.as_ref().map(|p| p.as_str())
}

fn user_id(d: &TargetDraft) -> Option<i64> {
    d.user_id.map(|id| id.get())
}

fn names(d: &TargetDraft) -> (Option<&str>, Option<&str>) {
    (d.first_name.as_deref(), d.last_name.as_deref())
}

fn rows(p: &Prepared) -> Vec<usize> {
    p.drafts.iter().map(|d| d.row).collect()
}

fn usernames(p: &Prepared) -> Vec<Option<&str>> {
    p.drafts.iter().map(username).collect()
}

fn phones(p: &Prepared) -> Vec<Option<&str>> {
    p.drafts.iter().map(phone).collect()
}

fn rejected_at(p: &Prepared, row: usize) -> &RejectedRow {
    p.report
        .rejected
        .iter()
        .find(|r| r.row == row)
        .unwrap_or_else(|| panic!("no rejected row {row}: {:#?}", p.report.rejected))
}

fn column_reason(p: &Prepared, column: usize) -> String {
    p.report.source["columns"][column - 1]["reason"]
        .as_str()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------------------------------
// The cases

struct Case {
    name: &'static str,
    file_name: &'static str,
    bytes: Vec<u8>,
    sheet: Option<&'static str>,
    mapping: Option<Value>,
    expect: Expect,
    /// Exact values of drafts and rejections, where the case is about them.
    check: fn(&Prepared),
}

struct Expect {
    format: &'static str,
    /// Text files only.
    encoding: Option<&'static str>,
    /// Delimited files with more than one column only.
    delimiter: Option<&'static str>,
    sheet: Option<&'static str>,
    header_row: Option<usize>,
    skipped_title_rows: usize,
    fields: &'static [Option<&'static str>],
    total_rows: usize,
    accepted: usize,
    invalid: usize,
    duplicates: usize,
}

const U: Option<&str> = Some("username");
const P: Option<&str> = Some("phone");
const ID: Option<&str> = Some("user_id");
const FIRST: Option<&str> = Some("first_name");
const LAST: Option<&str> = Some("last_name");
const FULL: Option<&str> = Some("full_name");
const EXTRA: Option<&str> = None;

fn text_file(
    encoding: &'static str,
    delimiter: Option<&'static str>,
    header_row: Option<usize>,
    fields: &'static [Option<&'static str>],
) -> Expect {
    Expect {
        format: "csv",
        encoding: Some(encoding),
        delimiter,
        sheet: None,
        header_row,
        skipped_title_rows: 0,
        fields,
        total_rows: 0,
        accepted: 0,
        invalid: 0,
        duplicates: 0,
    }
}

fn json_file(fields: &'static [Option<&'static str>]) -> Expect {
    Expect {
        format: "json",
        ..text_file("UTF-8", None, None, fields)
    }
}

fn xlsx_file(sheet: &'static str, header_row: usize, fields: &'static [Option<&'static str>]) -> Expect {
    Expect {
        format: "xlsx",
        encoding: None,
        sheet: Some(sheet),
        ..text_file("", None, Some(header_row), fields)
    }
}

impl Expect {
    /// Data rows read, accepted, rejected as invalid, rejected as repeating an earlier row.
    fn rows(self, total_rows: usize, accepted: usize, invalid: usize, duplicates: usize) -> Self {
        Self {
            total_rows,
            accepted,
            invalid,
            duplicates,
            ..self
        }
    }
}

fn case(name: &'static str, file_name: &'static str, bytes: Vec<u8>, expect: Expect, check: fn(&Prepared)) -> Case {
    Case {
        name,
        file_name,
        bytes,
        sheet: None,
        mapping: None,
        expect,
        check,
    }
}

fn cases() -> Vec<Case> {
    vec![
        // 1. Google Sheets / any English tool: UTF-8, commas, English headers.
        case(
            "utf8_comma_english_headers",
            "audience.csv",
            utf8(
                "username,phone,first_name,last_name\n\
                 @anna_k,+79123456789,Anna,Karenina\n\
                 boris_b,8 912 000-00-02,Boris,\n\
                 https://t.me/clara_c,,Clara,Z\n",
            ),
            text_file("UTF-8", Some(","), Some(1), &[U, P, FIRST, LAST]).rows(3, 3, 0, 0),
            |p| {
                let d = &p.drafts[0];
                assert_eq!((d.row, username(d), phone(d)), (2, Some("anna_k"), Some("+79123456789")));
                assert_eq!(names(d), (Some("Anna"), Some("Karenina")));
                assert!(!d.user_id_is_hint && d.extra.is_empty());
                assert_eq!(usernames(p), [Some("anna_k"), Some("boris_b"), Some("clara_c")]);
                assert_eq!(phones(p), [Some("+79123456789"), Some("+79120000002"), None]);
                assert_eq!(names(&p.drafts[1]), (Some("Boris"), None));
                assert_eq!(column_reason(p, 1), "header \"username\" names username");
            },
        ),
        // 2. Russian Excel "CSV UTF-8 (comma delimited)": BOM, semicolons, Russian headers, CRLF.
        case(
            "utf8_bom_semicolon_russian_headers",
            "Участники.csv",
            utf8_bom(
                "Ник;Телефон;Имя;Фамилия\r\n\
                 @anna_k;+7 912 345-67-89;Анна;Каренина\r\n\
                 @boris_b;;Борис;Годунов\r\n\
                 ;8 (921) 555-01-03;Клара;\r\n",
            ),
            text_file("UTF-8", Some(";"), Some(1), &[U, P, FIRST, LAST]).rows(3, 3, 0, 0),
            |p| {
                let d = &p.drafts[0];
                assert_eq!((username(d), phone(d)), (Some("anna_k"), Some("+79123456789")));
                assert_eq!(names(d), (Some("Анна"), Some("Каренина")));
                assert_eq!(phone(&p.drafts[2]), Some("+79215550103"));
                assert_eq!(username(&p.drafts[2]), None);
                assert_eq!(column_reason(p, 2), "header \"Телефон\" names phone");
            },
        ),
        // 3. Classic Russian Excel "CSV (разделители — точка с запятой)": Windows-1251.
        case(
            "windows1251_semicolon_russian_headers",
            "выгрузка.csv",
            windows_1251(
                "Фамилия;Имя;Телефон;Логин\r\n\
                 Иванов;Иван;89123456789;ivan_petrov\r\n\
                 Петрова;Мария;+7 (900) 123-45-67;\r\n\
                 Сидоров;Пётр;;@sidorov_p\r\n",
            ),
            text_file("windows-1251", Some(";"), Some(1), &[LAST, FIRST, P, U]).rows(3, 3, 0, 0),
            |p| {
                let d = &p.drafts[0];
                assert_eq!(names(d), (Some("Иван"), Some("Иванов")));
                assert_eq!((username(d), phone(d)), (Some("ivan_petrov"), Some("+79123456789")));
                assert_eq!(phone(&p.drafts[1]), Some("+79001234567"));
                assert_eq!(names(&p.drafts[2]), (Some("Пётр"), Some("Сидоров")));
            },
        ),
        // 4. Excel "Save As → Unicode text": UTF-16LE with BOM, TAB-separated, quotes where needed.
        case(
            "utf16le_bom_tab_unicode_text",
            "list.txt",
            utf16le(
                "Имя\tФамилия\tТелефон\tUsername\r\n\
                 Анна\tКаренина\t79123456789\t@anna_k\r\n\
                 \"Пётр, мл.\"\tИванов\t79001234567\t\r\n\
                 Ольга\t\t\tolga_s\r\n",
                true,
            ),
            text_file("UTF-16LE", Some("\t"), Some(1), &[FIRST, LAST, P, U]).rows(3, 3, 0, 0),
            |p| {
                let d = &p.drafts[0];
                assert_eq!((username(d), phone(d)), (Some("anna_k"), Some("+79123456789")));
                assert_eq!(names(&p.drafts[1]), (Some("Пётр, мл."), Some("Иванов")));
                assert_eq!(rows(p), [2, 3, 4]);
            },
        ),
        // 5. The same without a byte order mark (some tools strip it).
        case(
            "utf16le_without_bom",
            "list.csv",
            utf16le(
                "username,phone,name\n\
                 @ivan_i,79123456789,Иван\n\
                 @maria_m,79001234567,Мария\n",
                false,
            ),
            text_file("UTF-16LE", Some(","), Some(1), &[U, P, FIRST]).rows(2, 2, 0, 0),
            |p| {
                let d = &p.drafts[1];
                assert_eq!((username(d), phone(d)), (Some("maria_m"), Some("+79001234567")));
                assert_eq!(names(d), (Some("Мария"), None));
            },
        ),
        // 6. TSV with phones written every way Russians write them.
        case(
            "tsv_phone_formats",
            "phones.tsv",
            utf8(
                "name\tphone\n\
                 Анна\t8 (912) 345-67-89\n\
                 Борис\t+7 912 000 00 02\n\
                 Клара\t00 7 912 111 22 33\n\
                 Дмитрий\t9215550104\n\
                 Елена\t+7(921)555-01-05\n",
            ),
            text_file("UTF-8", Some("\t"), Some(1), &[FIRST, P]).rows(5, 5, 0, 0),
            |p| {
                assert_eq!(
                    phones(p),
                    [
                        Some("+79123456789"),
                        Some("+79120000002"),
                        Some("+79121112233"),
                        Some("+79215550104"),
                        Some("+79215550105"),
                    ]
                );
                assert_eq!(names(&p.drafts[0]), (Some("Анна"), None));
            },
        ),
        // 7. `|`-separated, with spaces around the bars.
        case(
            "pipe_delimited",
            "users.txt",
            utf8(
                "id | username | phone\n\
                 100200301 | @anna_k | 79123456789\n\
                 5012345678 | boris_b |\n\
                 | | 8 921 555 01 03\n",
            ),
            text_file("UTF-8", Some("|"), Some(1), &[ID, U, P]).rows(3, 3, 0, 0),
            |p| {
                let d = &p.drafts[0];
                assert_eq!(
                    (user_id(d), username(d), phone(d)),
                    (Some(100200301), Some("anna_k"), Some("+79123456789"))
                );
                assert_eq!(user_id(&p.drafts[1]), Some(5012345678));
                assert_eq!((user_id(&p.drafts[2]), phone(&p.drafts[2])), (None, Some("+79215550103")));
            },
        ),
        // 8. A plain list of @usernames, typed by hand: blank lines, trailing spaces, CRLF.
        case(
            "headerless_usernames_txt",
            "usernames.txt",
            utf8("@anna_k  \r\n\r\n@boris_b\r\n   \r\n  @clara_c \r\n@Dmitry_D\r\n"),
            text_file("UTF-8", None, None, &[U]).rows(4, 4, 0, 0),
            |p| {
                assert_eq!(
                    usernames(p),
                    [Some("anna_k"), Some("boris_b"), Some("clara_c"), Some("Dmitry_D")]
                );
                // Line numbers as an editor shows them, blank lines counted.
                assert_eq!(rows(p), [1, 3, 5, 6]);
                assert_eq!(column_reason(p, 1), "content: 100% of 4 values look like usernames");
            },
        ),
        // 9. A plain list of phone numbers.
        case(
            "headerless_phones",
            "phones.txt",
            utf8("+79123456789\n89120000002\n8 (912) 111-22-33\n+7 921 555 01 04\n79215550105\n"),
            text_file("UTF-8", None, None, &[P]).rows(5, 5, 0, 0),
            |p| {
                assert_eq!(
                    phones(p),
                    [
                        Some("+79123456789"),
                        Some("+79120000002"),
                        Some("+79121112233"),
                        Some("+79215550104"),
                        Some("+79215550105"),
                    ]
                );
                assert_eq!(column_reason(p, 1), "content: 100% of 5 values look like phone numbers");
            },
        ),
        // 10. A plain list of numeric ids, some written by a spreadsheet as floats.
        case(
            "headerless_numeric_ids",
            "ids.txt",
            utf8("100200301\n5012345678\n1234567.0\n777000.00\n42\n"),
            text_file("UTF-8", None, None, &[ID]).rows(5, 5, 0, 0),
            |p| {
                let ids: Vec<_> = p.drafts.iter().map(user_id).collect();
                assert_eq!(
                    ids,
                    [Some(100200301), Some(5012345678), Some(1234567), Some(777000), Some(42)]
                );
                assert!(p.drafts.iter().all(|d| !d.user_id_is_hint));
                // "42" is too short to suggest an id by itself, but is one once the column is ids.
                assert_eq!(column_reason(p, 1), "content: 80% of 5 values look like numeric user ids");
            },
        ),
        // 11. Two columns without a header: which is which is read from the content.
        case(
            "headerless_username_and_phone",
            "contacts.csv",
            utf8(
                "@anna_k,79123456789\n\
                 boris_b,+7 912 000-00-02\n\
                 @clara_c,\n\
                 ,8 921 555 01 04\n",
            ),
            text_file("UTF-8", Some(","), None, &[U, P]).rows(4, 4, 0, 0),
            |p| {
                let d = &p.drafts[0];
                assert_eq!((d.row, username(d), phone(d)), (1, Some("anna_k"), Some("+79123456789")));
                assert_eq!(phone(&p.drafts[3]), Some("+79215550104"));
                assert_eq!(column_reason(p, 2), "content: 100% of 3 values look like phone numbers");
            },
        ),
        // 12. Quoted cells with commas, doubled quotes and a line break inside a name.
        case(
            "quoted_csv_with_newline_in_cell",
            "export.csv",
            utf8(
                "username,full name,phone\n\
                 @anna_k,\"Каренина, Анна\",79123456789\n\
                 @boris_b,\"Boris\nthe Second\",79120000002\n\
                 @clara_c,\"Clara \"\"CC\"\" Z\",79121112233\n\
                 @bad,\"Bad, Row\",\n\
                 @dmitry_d,Dmitry D,\n",
            ),
            text_file("UTF-8", Some(","), Some(1), &[U, FULL, P]).rows(5, 4, 1, 0),
            |p| {
                // The line break inside row 3 moves the rows after it one line down.
                assert_eq!(rows(p), [2, 3, 5, 7]);
                assert_eq!(names(&p.drafts[1]), (Some("Boris"), Some("the Second")));
                assert_eq!(names(&p.drafts[2]), (Some("Clara"), Some("\"CC\" Z")));
                let bad = rejected_at(p, 6);
                assert_eq!(
                    (bad.column.as_deref(), bad.value.as_str(), bad.reason),
                    (Some("username"), "@bad", RejectReason::Invalid)
                );
                assert_eq!(
                    bad.message,
                    "username is not a valid username: must be 5–32 characters long (got 3)"
                );
            },
        ),
        // 13. A spreadsheet with a title above the header and phones typed as numbers.
        case(
            "xlsx_title_rows_numeric_phones",
            "export.xlsx",
            xlsx_with_title_rows(),
            // Rows 1 (the title) and 2 (blank) sit above the header on row 3.
            Expect {
                skipped_title_rows: 2,
                ..xlsx_file("Export", 3, &[U, P, FIRST])
            }
            .rows(3, 3, 0, 0),
            |p| {
                assert_eq!(rows(p), [4, 5, 6]);
                let d = &p.drafts[0];
                assert_eq!((username(d), phone(d)), (Some("anna_k"), Some("+79123456789")));
                assert_eq!(names(d), (Some("Анна"), None));
                assert_eq!(phones(p), [Some("+79123456789"), Some("+79120000002"), Some("+79121112233")]);
            },
        ),
        // 14. The list on a named second sheet, chosen by the person.
        Case {
            sheet: Some("Участники"),
            ..case(
                "xlsx_named_second_sheet",
                "workbook.xlsx",
                xlsx_with_named_second_sheet(),
                xlsx_file("Участники", 1, &[U, P, EXTRA]).rows(3, 3, 0, 0),
                |p| {
                    let d = &p.drafts[0];
                    assert_eq!((username(d), phone(d)), (Some("olga_s"), Some("+79215550101")));
                    assert_eq!(d.extra.get("Комментарий"), Some(&json!("из чата")));
                    assert!(p.drafts[1].extra.is_empty());
                    assert_eq!(username(&p.drafts[2]), Some("rita_m"));
                },
            )
        },
        // 15. Telegram ids typed into a spreadsheet as numbers.
        case(
            "xlsx_numeric_ids",
            "ids.xlsx",
            xlsx_with_numeric_ids(),
            xlsx_file("Sheet1", 1, &[ID, FIRST]).rows(4, 4, 0, 0),
            |p| {
                let ids: Vec<_> = p.drafts.iter().map(user_id).collect();
                assert_eq!(ids, [Some(100200301), Some(5012345678), Some(777000), Some(123)]);
                assert_eq!(names(&p.drafts[0]), (Some("Anna"), None));
                assert_eq!(column_reason(p, 1), "header \"Telegram ID\" names user_id");
            },
        ),
        // 16. A JSON array of strings (nulls and empty strings skipped, positions kept).
        case(
            "json_array_of_strings",
            "usernames.json",
            json_bytes(json!(["@anna_k", "boris_b", "https://t.me/clara_c", "", null, "@dmitry_d"])),
            json_file(&[U]).rows(4, 4, 0, 0),
            |p| {
                assert_eq!(
                    usernames(p),
                    [Some("anna_k"), Some("boris_b"), Some("clara_c"), Some("dmitry_d")]
                );
                assert_eq!(rows(p), [1, 2, 3, 6]);
            },
        ),
        // 17. A JSON array of objects, a phone as a JSON number.
        case(
            "json_array_of_objects",
            "users.json",
            json_bytes(json!([
                {"username": "@anna_k", "phone": "+7 912 345-67-89", "first_name": "Anna"},
                {"username": "boris_b", "phone": 79120000002u64, "first_name": "Boris"},
                {"username": null, "phone": "8 921 555 01 03", "first_name": null},
            ])),
            json_file(&[U, P, FIRST]).rows(3, 3, 0, 0),
            |p| {
                let d = &p.drafts[0];
                assert_eq!(
                    (username(d), phone(d), names(d)),
                    (Some("anna_k"), Some("+79123456789"), (Some("Anna"), None))
                );
                assert_eq!(phone(&p.drafts[1]), Some("+79120000002"));
                assert_eq!((username(&p.drafts[2]), p.drafts[2].row), (None, 3));
            },
        ),
        // 18a. Another service's dump: `{"users": [...]}` with a nested `platform_specific_data`.
        case(
            "json_users_wrapper_nested",
            "dump.json",
            json_bytes(json!({
                "count": 3,
                "users": [
                    {"user_id": 100200301, "name": "Anna",
                     "platform_specific_data": {"username": "anna_k", "phone": "+79123456789"}},
                    {"user_id": 100200302, "name": "Boris",
                     "platform_specific_data": {"username": null, "phone": "79120000002"}},
                    {"user_id": 100200303, "name": "Clara",
                     "platform_specific_data": {"username": "clara_c", "phone": null}},
                ],
            })),
            json_file(&[ID, FIRST, U, P]).rows(3, 3, 0, 0),
            |p| {
                let d = &p.drafts[0];
                assert_eq!(
                    (user_id(d), username(d), phone(d)),
                    (Some(100200301), Some("anna_k"), Some("+79123456789"))
                );
                assert_eq!(
                    p.report.source["columns"][2]["header"],
                    "platform_specific_data.username"
                );
                assert_eq!(
                    column_reason(p, 3),
                    "header \"platform_specific_data.username\" names username"
                );
                assert_eq!(phone(&p.drafts[1]), Some("+79120000002"));
            },
        ),
        // 18b. A scraper's `{"results": [...]}`, the identifiers only inside `platform_specific_data`.
        case(
            "json_results_wrapper_nested",
            "results.json",
            json_bytes(json!({
                "task_id": "t-17",
                "results": [
                    {"platform": "telegram", "display_name": "Anna K",
                     "platform_specific_data": {"user_id": 100200301, "username": "anna_k", "is_bot": false}},
                    {"platform": "telegram", "display_name": "Boris",
                     "platform_specific_data": {"user_id": 100200302, "phone": "79120000002"}},
                ],
                "total": 2,
            })),
            json_file(&[EXTRA, FULL, ID, U, EXTRA, P]).rows(2, 2, 0, 0),
            |p| {
                let d = &p.drafts[0];
                assert_eq!((user_id(d), username(d)), (Some(100200301), Some("anna_k")));
                assert_eq!(names(d), (Some("Anna"), Some("K")));
                assert_eq!(d.extra.get("platform"), Some(&json!("telegram")));
                assert_eq!(d.extra.get("platform_specific_data.is_bot"), Some(&json!("false")));
                assert_eq!(phone(&p.drafts[1]), Some("+79120000002"));
            },
        ),
        // 19. Valid and invalid rows mixed: each rejection says which row, which column and why.
        case(
            "mixed_valid_and_invalid",
            "mixed.csv",
            utf8(
                "username,phone,name\n\
                 @anna_k,,Anna\n\
                 abc,,Short\n\
                 1abcde,,Digit\n\
                 has space,,Space\n\
                 ,+999 123456789,Code\n\
                 ,12345,Digits\n\
                 ,,Nobody\n\
                 @boris_b,+79120000002,Boris\n",
            ),
            text_file("UTF-8", Some(","), Some(1), &[U, P, FIRST]).rows(8, 2, 6, 0),
            |p| {
                assert_eq!(rows(p), [2, 9]);
                let expected = [
                    (3, Some("username"), "abc", "username is not a valid username: must be 5–32 characters long (got 3)"),
                    (4, Some("username"), "1abcde", "username is not a valid username: must start with a letter"),
                    (
                        5,
                        Some("username"),
                        "has space",
                        "username is not a valid username: may contain only Latin letters, digits and underscores \
                         (found ' ')",
                    ),
                    (6, Some("phone"), "+999 123456789", "phone is not a phone number: has an unknown country code +999"),
                    (7, Some("phone"), "12345", "phone is not a phone number: is too short to be a phone number"),
                    (8, None, " |  | Nobody", "the row has no username, user id or phone"),
                ];
                for (row, column, value, message) in expected {
                    let r = rejected_at(p, row);
                    assert_eq!(
                        (r.column.as_deref(), r.value.as_str(), r.message.as_str(), r.reason),
                        (column, value, message, RejectReason::Invalid),
                        "row {row}"
                    );
                }
            },
        ),
        // 20. The same person twice: a username in another case, a phone written another way.
        case(
            "duplicates_within_file",
            "dups.csv",
            utf8(
                "Username;Phone\n\
                 @Anna_K;+7 912 345-67-89\n\
                 anna_k;\n\
                 ANNA_K;\n\
                 ;89123456789\n\
                 ;8 (912) 345-67-89\n\
                 boris_b;+79120000002\n\
                 ;8 912 000 00 02\n",
            ),
            text_file("UTF-8", Some(";"), Some(1), &[U, P]).rows(7, 2, 0, 5),
            |p| {
                assert_eq!(rows(p), [2, 7]);
                // The first spelling is kept as written.
                assert_eq!(username(&p.drafts[0]), Some("Anna_K"));
                let r = rejected_at(p, 3);
                assert_eq!((r.reason, r.value.as_str()), (RejectReason::DuplicateInFile, "anna_k"));
                assert_eq!(r.message, "the same person (username anna_k) appears earlier in the file");
                let r = rejected_at(p, 6);
                assert_eq!((r.reason, r.value.as_str()), (RejectReason::DuplicateInFile, "+79123456789"));
                assert_eq!(r.message, "the same person (phone +79123456789) appears earlier in the file");
                assert_eq!(
                    rejected_at(p, 8).message,
                    "the same person (phone +79120000002) appears earlier in the file"
                );
            },
        ),
        // 21. Headers the importer does not know next to one it knows: identifiers found by content,
        // the rest kept under their headers. (When NO header is known, see
        // `a_header_row_of_unknown_names_is_not_a_person`.)
        case(
            "unknown_headers_content_and_extras",
            "crm.csv",
            utf8(
                "Contact,Notes,Phone,Source\n\
                 @anna_k,VIP client,+7 912 345-67-89,site\n\
                 @boris_b,call after 6pm,,ads\n\
                 clara_c,,8 921 555 01 03,\n",
            ),
            text_file("UTF-8", Some(","), Some(1), &[U, EXTRA, P, EXTRA]).rows(3, 3, 0, 0),
            |p| {
                let d = &p.drafts[0];
                assert_eq!((username(d), phone(d)), (Some("anna_k"), Some("+79123456789")));
                assert_eq!(d.extra.get("Notes"), Some(&json!("VIP client")));
                assert_eq!(d.extra.get("Source"), Some(&json!("site")));
                assert_eq!(p.drafts[2].extra.get("Notes"), None, "empty cells are not kept");
                assert_eq!(column_reason(p, 1), "content: 100% of 3 values look like usernames");
                assert_eq!(
                    column_reason(p, 2),
                    "header \"Notes\" is not a known column: kept as an extra field"
                );
                assert_eq!(column_reason(p, 3), "header \"Phone\" names phone");
            },
        ),
        // 22a. The header "Login" holds e-mails; without a mapping every row fails on it...
        case(
            "login_column_without_mapping",
            "crm-export.csv",
            utf8(
                "Login,Contact,Comment\n\
                 anna.k@mail.ru,@anna_k,first\n\
                 boris@mail.ru,@boris_b,second\n",
            ),
            text_file("UTF-8", Some(","), Some(1), &[U, EXTRA, EXTRA]).rows(2, 0, 2, 0),
            |p| {
                let r = rejected_at(p, 2);
                assert_eq!((r.column.as_deref(), r.value.as_str()), (Some("Login"), "anna.k@mail.ru"));
                assert_eq!(
                    r.message,
                    "username is not a valid username: may contain only Latin letters, digits and underscores \
                     (found '.')"
                );
            },
        ),
        // 22b. ...and `{"username": "Contact"}` says where the usernames really are.
        Case {
            mapping: Some(json!({"username": "contact"})),
            ..case(
                "login_column_with_mapping",
                "crm-export.csv",
                utf8(
                    "Login,Contact,Comment\n\
                     anna.k@mail.ru,@anna_k,first\n\
                     boris@mail.ru,@boris_b,second\n",
                ),
                text_file("UTF-8", Some(","), Some(1), &[EXTRA, U, EXTRA]).rows(2, 2, 0, 0),
                |p| {
                    assert_eq!(usernames(p), [Some("anna_k"), Some("boris_b")]);
                    assert_eq!(p.drafts[0].extra.get("Login"), Some(&json!("anna.k@mail.ru")));
                    assert_eq!(p.drafts[0].extra.get("Comment"), Some(&json!("first")));
                    assert_eq!(column_reason(p, 2), "set by mapping");
                },
            )
        },
        // 23. Google Sheets "Download → CSV": CRLF line breaks, no newline at the end.
        case(
            "google_sheets_crlf",
            "Audience - Sheet1.csv",
            utf8("Telegram,Phone number,Full name\r\n@anna_k,+79123456789,Anna K\r\n@boris_b,,Boris\r\n\r\n,89120000002,Clara"),
            text_file("UTF-8", Some(","), Some(1), &[U, P, FULL]).rows(3, 3, 0, 0),
            |p| {
                assert_eq!(rows(p), [2, 3, 5]);
                assert_eq!(names(&p.drafts[0]), (Some("Anna"), Some("K")));
                assert_eq!(phone(&p.drafts[2]), Some("+79120000002"));
            },
        ),
        // 24. A row with more cells than the header: the surplus is kept under the column's number.
        case(
            "row_longer_than_header",
            "ragged.csv",
            utf8(
                "username,phone\n\
                 @anna_k,79123456789\n\
                 @boris_b,79120000002,note for Boris,second note\n\
                 @clara_c\n",
            ),
            text_file("UTF-8", Some(","), Some(1), &[U, P, EXTRA, EXTRA]).rows(3, 3, 0, 0),
            |p| {
                let boris = &p.drafts[1];
                assert_eq!(boris.extra.get("column_3"), Some(&json!("note for Boris")));
                assert_eq!(boris.extra.get("column_4"), Some(&json!("second note")));
                assert!(p.drafts[0].extra.is_empty());
                assert_eq!(username(&p.drafts[2]), Some("clara_c"));
            },
        ),
        // 25. A Russian title line above the header in a CSV, and `;;;` rows Excel leaves below.
        case(
            "csv_title_and_trailing_empty_rows",
            "report.csv",
            utf8_bom(
                "Выгрузка участников чата;;\r\n\
                 ;;\r\n\
                 Пользователь;Телефон;Имя\r\n\
                 @anna_k;8 912 345 67 89;Анна\r\n\
                 @boris_b;;Борис\r\n\
                 ;;\r\n\
                 ;;\r\n",
            ),
            Expect {
                skipped_title_rows: 2,
                ..text_file("UTF-8", Some(";"), Some(3), &[U, P, FIRST])
            }
            .rows(2, 2, 0, 0),
            |p| {
                assert_eq!(rows(p), [4, 5]);
                assert_eq!(phone(&p.drafts[0]), Some("+79123456789"));
                assert_eq!(names(&p.drafts[1]), (Some("Борис"), None));
            },
        ),
        // 26. A Russian Excel list numbered in a "№" column: small numbers are not taken for user ids.
        case(
            "numbered_rows_column_windows1251",
            "список.csv",
            windows_1251(
                "№;Имя;Телефон\r\n\
                 1;Анна;89123456789\r\n\
                 2;Борис;89120000002\r\n\
                 3;Клара;8-912-111-22-33\r\n",
            ),
            text_file("windows-1251", Some(";"), Some(1), &[EXTRA, FIRST, P]).rows(3, 3, 0, 0),
            |p| {
                assert!(p.drafts.iter().all(|d| d.user_id.is_none()));
                assert_eq!(p.drafts[0].extra.get("№"), Some(&json!("1")));
                assert_eq!(phones(p), [Some("+79123456789"), Some("+79120000002"), Some("+79121112233")]);
            },
        ),
    ]
}

fn describe_fields(source: &Value) -> String {
    source["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap_or("—"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn run(case: &Case) -> (RawTable, Prepared) {
    let options = ReadOptions {
        sheet: case.sheet.map(String::from),
        ..ReadOptions::default()
    };
    let table = read_table(Some(case.file_name), None, &case.bytes, &options)
        .unwrap_or_else(|e| panic!("{}: could not read: {e}", case.name));
    let prepared = prepare_table(&table, case.mapping.as_ref(), Region::default())
        .unwrap_or_else(|e| panic!("{}: could not prepare: {}", case.name, e.msg));
    (table, prepared)
}

fn check_case(case: &Case, table: &RawTable, p: &Prepared) {
    let name = case.name;
    let e = &case.expect;
    let source = &p.report.source;
    let format = match table.format {
        FileFormat::Delimited => "csv",
        FileFormat::Xlsx => "xlsx",
        FileFormat::Json => "json",
    };
    assert_eq!(format, e.format, "{name}: format");
    assert_eq!(source["format"], json!(e.format), "{name}: format in the report");
    assert_eq!(source["encoding"], json!(e.encoding), "{name}: encoding");
    assert_eq!(source["delimiter"], json!(e.delimiter), "{name}: delimiter");
    assert_eq!(source["sheet"], json!(e.sheet), "{name}: sheet");
    assert_eq!(source["header_row"], json!(e.header_row), "{name}: header row");
    assert_eq!(
        source["skipped_title_rows"],
        json!(e.skipped_title_rows),
        "{name}: skipped title rows"
    );
    let fields: Vec<&Value> = source["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["field"])
        .collect();
    assert_eq!(json!(fields), json!(e.fields), "{name}: fields of the columns");
    for (i, c) in source["columns"].as_array().unwrap().iter().enumerate() {
        assert_eq!(c["column"], json!(i + 1), "{name}: column numbers");
        assert!(
            !c["reason"].as_str().unwrap().is_empty(),
            "{name}: every column has a reason"
        );
    }

    let report = &p.report;
    let count = |reason| report.rejected.iter().filter(|r| r.reason == reason).count();
    assert_eq!(report.total_rows, e.total_rows, "{name}: data rows");
    assert_eq!(p.drafts.len(), e.accepted, "{name}: accepted: {:#?}", report.rejected);
    assert_eq!(
        (count(RejectReason::Invalid), report.invalid),
        (e.invalid, e.invalid),
        "{name}: invalid: {:#?}",
        report.rejected
    );
    assert_eq!(
        (count(RejectReason::DuplicateInFile), report.duplicates),
        (e.duplicates, e.duplicates),
        "{name}: duplicates: {:#?}",
        report.rejected
    );
    assert_eq!(report.excluded, 0, "{name}: nothing is excluded before the store");
    assert_eq!(
        e.accepted + e.invalid + e.duplicates,
        e.total_rows,
        "{name}: every row is accounted for"
    );
    assert!(
        p.drafts.windows(2).all(|w| w[0].row < w[1].row),
        "{name}: drafts in file order"
    );
    assert!(
        p.drafts.iter().all(|d| !d.identifiers().is_empty()),
        "{name}: every draft names someone"
    );
    (case.check)(p);
}

#[test]
fn files_as_people_export_them() {
    let cases = cases();
    assert!(cases.len() >= 22);
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");

    println!("| file | format | encoding | delimiter | columns | accepted | rejected |");
    println!("|---|---|---|---|---|---|---|");
    for case in &cases {
        let (table, prepared) = run(case);
        let source = &prepared.report.source;
        let format = source["format"].as_str().unwrap_or("?").to_string();
        let encoding = source["encoding"].as_str().unwrap_or("—").to_string();
        let delim = match source["delimiter"].as_str() {
            Some("\t") => "TAB".to_string(),
            Some("|") => "\\|".to_string(),
            Some(d) => format!("`{d}`"),
            None => "—".to_string(),
        };
        let mut mapping = describe_fields(source);
        if let Some(m) = &case.mapping {
            mapping = format!("{mapping} (mapping {m})");
        }
        if let Some(sheet) = source["sheet"].as_str() {
            mapping = format!("{mapping} (sheet {sheet})");
        }
        let name = case.name;
        let accepted = prepared.drafts.len();
        let (invalid, dups) = (prepared.report.invalid, prepared.report.duplicates);
        let rejected = format!("{} ({invalid} invalid, {dups} duplicate_in_file)", invalid + dups);
        println!("| {name} | {format} | {encoding} | {delim} | {mapping} | {accepted} | {rejected} |");
        check_case(case, &table, &prepared);
    }
}

// ---------------------------------------------------------------------------------------------------
// Mappings that are wrong

#[test]
fn a_mapping_naming_a_missing_header_lists_the_headers() {
    let bytes = utf8("Login,Contact,Comment\nanna.k@mail.ru,@anna_k,first\n");
    let table = read_table(Some("crm.csv"), None, &bytes, &ReadOptions::default()).unwrap();
    let err = prepare_table(&table, Some(&json!({"username": "Ник"})), Region::default())
        .err()
        .expect("a mapping to a missing header must be refused");
    assert_eq!(err.loc, ["body", "mapping"]);
    assert_eq!(err.kind, "value_error");
    assert_eq!(
        err.msg,
        "mapping.username: no column is headed \"Ник\"; headers: Login, Contact, Comment"
    );

    let err = prepare_table(&table, Some(&json!({"phone": 7})), Region::default())
        .err()
        .expect("a column number past the last column must be refused");
    assert_eq!(
        err.msg,
        "mapping.phone: column 7 does not exist (the file has 3 columns)"
    );

    let headerless = read_table(None, None, b"@anna_k\n@boris_b\n", &ReadOptions::default()).unwrap();
    let err = prepare_table(&headerless, Some(&json!({"username": "Ник"})), Region::default())
        .err()
        .expect("a header name in a file without headers must be refused");
    assert_eq!(
        err.msg,
        "mapping.username: no column is headed \"Ник\"; headers: (none — use column numbers)"
    );
    // A column number works where there are no headers.
    let p = prepare_table(&headerless, Some(&json!({"username": 1})), Region::default()).unwrap();
    assert_eq!(usernames(&p), [Some("anna_k"), Some("boris_b")]);
}

// ---------------------------------------------------------------------------------------------------
// Files that cannot be imported

fn read(file_name: &str, bytes: &[u8]) -> Result<RawTable, ReadError> {
    read_table(Some(file_name), None, bytes, &ReadOptions::default())
}

#[test]
fn a_pdf_is_an_unknown_format() {
    let pdf = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n%%EOF\n";
    let err = read("audience.pdf", pdf).unwrap_err();
    assert!(matches!(err, ReadError::UnknownFormat), "{err:?}");
    assert!(err.to_string().contains("expected CSV, TSV or TXT"), "{err}");
}

#[test]
fn an_old_xls_is_an_unknown_format_that_says_save_as_xlsx() {
    let mut xls = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec();
    xls.extend((0u32..1024).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8));
    let err = read("audience.xls", &xls).unwrap_err();
    assert!(matches!(err, ReadError::UnknownFormat), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("xlsx"), "{message}");
    assert!(message.contains("save it as .xlsx or CSV"), "{message}");
}

#[test]
fn an_empty_file_has_no_data_rows() {
    for bytes in [
        &b""[..],
        b"\xEF\xBB\xBF",
        b"\r\n\r\n  \n",
        b";;;\r\n;;;\r\n",
        b"[]",
        b"\xFF\xFE",
    ] {
        let err = read("empty.csv", bytes).unwrap_err();
        assert!(matches!(err, ReadError::Empty), "{bytes:?}: {err:?}");
        assert_eq!(err.to_string(), "the file has no data rows");
    }
}

#[test]
fn a_missing_sheet_names_the_sheets_there_are() {
    let options = ReadOptions {
        sheet: Some("Users".into()),
        ..ReadOptions::default()
    };
    let err = read_table(Some("workbook.xlsx"), None, &xlsx_with_named_second_sheet(), &options).unwrap_err();
    assert!(matches!(err, ReadError::NoSuchSheet { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the workbook has no sheet named \"Users\"; its sheets are: \"Сводка\", \"Участники\""
    );
}

#[test]
fn broken_json_is_malformed_with_the_parsers_words() {
    let err = read("users.json", b"[{\"username\": \"@anna_k\",}]").unwrap_err();
    let ReadError::Malformed(message) = &err else {
        panic!("expected Malformed, got {err:?}")
    };
    assert!(message.starts_with("the file is not valid JSON:"), "{message}");
}

#[test]
fn columns_holding_nothing_usable_ask_for_a_mapping() {
    let bytes = utf8("Name,Comment,City\nAnna,hello world,Москва\nBoris,call me later,Казань\n");
    let table = read("names.csv", &bytes).unwrap();
    let err = prepare_table(&table, None, Region::default())
        .err()
        .expect("a file without identifiers must be refused");
    assert_eq!(err.loc, ["body", "file"]);
    assert_eq!(err.kind, "value_error");
    assert!(err.msg.contains("mapping"), "{}", err.msg);
    assert!(
        err.msg.contains("no column holds usernames, user ids or phone numbers"),
        "{}",
        err.msg
    );
}

// ---------------------------------------------------------------------------------------------------
// Importer bugs found by these files

#[test]

fn a_header_row_of_unknown_names_is_not_a_person() {
    // A CRM export: no header name is one the importer knows, but the first row is plainly a header —
    // words above a column of @usernames, above a column of phone numbers.
    let bytes = utf8(
        "Contact,Notes,WhatsApp,Source\n\
         @anna_k,VIP client,+7 912 345-67-89,site\n\
         @boris_b,call after 6pm,,ads\n\
         clara_c,,8 921 555 01 03,\n",
    );
    let table = read("crm.csv", &bytes).unwrap();
    let p = prepare_table(&table, None, Region::default()).unwrap();
    let source = &p.report.source;
    assert_eq!(describe_fields(source), "username, —, phone, —");
    assert_eq!(
        usernames(&p),
        [Some("anna_k"), Some("boris_b"), Some("clara_c")],
        "row 1 is not a person"
    );
    assert_eq!(source["header_row"], json!(1));
    assert_eq!(p.report.total_rows, 3);
    assert_eq!(p.drafts[0].extra.get("Notes"), Some(&json!("VIP client")));
    assert_eq!(p.drafts[0].extra.get("Source"), Some(&json!("site")));
}

#[test]

fn parsing_service_results_take_the_user_id_not_the_record_id() {
    // GET {PARSING_SERVICE_URL}/results/{task_id} saved to a file and uploaded (tests/data/parsing-results.json).
    let results: Value = serde_json::from_str(include_str!("data/parsing-results.json")).expect("the fixture is JSON");
    let bytes = serde_json::to_vec_pretty(&results["example"]).unwrap();
    let table = read("results.json", &bytes).unwrap();
    let p = prepare_table(&table, None, Region::default()).unwrap();
    let ids: Vec<_> = p.drafts.iter().map(user_id).collect();
    // "101", "102", "103" number the results; "platform_id" (= platform_specific_data.user_id) is the user.
    assert_eq!(ids, [Some(100200301), Some(100200302), Some(100200303)]);
}

#[test]

fn russian_fio_puts_the_surname_last() {
    let bytes = utf8_bom("ФИО;Телефон\r\nКаренина Анна;+79123456789\r\nИванов Иван Иванович;+79120000002\r\n");
    let table = read("участники.csv", &bytes).unwrap();
    let p = prepare_table(&table, None, Region::default()).unwrap();
    assert_eq!(describe_fields(&p.report.source), "full_name, phone");
    assert_eq!(names(&p.drafts[0]), (Some("Анна"), Some("Каренина")));
    assert_eq!(p.drafts[1].last_name.as_deref(), Some("Иванов"));
    assert!(p.drafts[1].first_name.as_deref().unwrap().starts_with("Иван"));
}

#[test]

fn a_person_is_a_duplicate_through_a_dropped_duplicates_phone() {
    // Row 3 repeats row 2's username and adds a phone; row 4 has only that phone: all three are Anna.
    let bytes = utf8("username,phone\n@anna_k,\nanna_k,+79123456789\n,8 912 345-67-89\n");
    let table = read("dups.csv", &bytes).unwrap();
    let p = prepare_table(&table, None, Region::default()).unwrap();
    assert_eq!(rows(&p), [2]);
    assert_eq!(p.report.duplicates, 2);
    assert_eq!(
        rejected_at(&p, 4).message,
        "the same person (phone +79123456789) appears earlier in the file"
    );
}

#[test]

fn a_known_header_left_out_by_the_mapping_says_so() {
    let bytes = utf8("Login,Contact\nanna.k@mail.ru,@anna_k\n");
    let table = read("crm.csv", &bytes).unwrap();
    let p = prepare_table(&table, Some(&json!({"username": "Contact"})), Region::default()).unwrap();
    let reason = column_reason(&p, 1);
    assert!(reason.contains("Login"), "{reason}");
    assert!(
        !reason.contains("not a known column"),
        "\"Login\" is a known name for usernames: {reason}"
    );
}
