//! Campaign targets as an import produces them, and the report that says what became of every row.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    identifier::{Identifier, PlatformUserId},
    phone::Phone,
    username::Username,
};

word_enum!(
    /// Where a target is in its life; each ends in exactly one final state.
    TargetStatus {
        Pending => "pending",
        InProgress => "in_progress",
        Succeeded => "succeeded",
        AlreadyDone => "already_done",
        Failed => "failed",
        Skipped => "skipped",
        Unknown => "unknown",
    }
);

/// A stored target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub id: i64,
    pub task_id: i64,
    pub username: Option<String>,
    pub user_id: Option<i64>,
    pub user_id_is_hint: bool,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub extra: Value,
    pub source: TargetSource,
    pub status: TargetStatus,
    pub reason: Option<String>,
    pub attempts: i64,
    pub source_row: Option<i64>,
    pub processed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

word_enum!(
    /// Where a task's targets came from (PostgreSQL enum `targetsource`).
    TargetSource {
        Manual => "MANUAL",
        FileUpload => "FILE_UPLOAD",
        ParsingImport => "PARSING_IMPORT",
    }
);

/// One person to invite or message, as read from one row: at least one identifier, plus names and
/// whatever else the row carried.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetDraft {
    /// The row it came from (1-based, as a person sees it in the file).
    pub row: usize,
    pub username: Option<Username>,
    pub user_id: Option<PlatformUserId>,
    /// An id from the Parsing Service: a hint for resolution, not a handle (access hashes belong to
    /// the account that saw the user).
    pub user_id_is_hint: bool,
    pub phone: Option<Phone>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub extra: Map<String, Value>,
}

impl TargetDraft {
    pub fn identifiers(&self) -> Vec<Identifier> {
        let mut out = Vec::with_capacity(3);
        if let Some(u) = &self.username {
            out.push(Identifier::Username(u.clone()));
        }
        if let Some(id) = self.user_id {
            out.push(Identifier::UserId(id));
        }
        if let Some(p) = &self.phone {
            out.push(Identifier::Phone(p.clone()));
        }
        out
    }

    /// Normalised identifiers: two drafts that share any key are the same person.
    pub fn keys(&self) -> Vec<String> {
        self.identifiers().iter().map(Identifier::dedup_key).collect()
    }

    /// The draft as the API shows a stored target's identity (for previews).
    pub fn preview(&self) -> Value {
        serde_json::json!({
            "row": self.row,
            "username": self.username.as_ref().map(|u| u.as_str().to_string()),
            "user_id": self.user_id.map(PlatformUserId::get),
            "user_id_is_hint": self.user_id_is_hint,
            "phone": self.phone.as_ref().map(|p| p.as_str().to_string()),
            "first_name": self.first_name,
            "last_name": self.last_name,
            "extra": self.extra,
        })
    }
}

/// Why a row was not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// No usable identifier, or an identifier that does not parse.
    Invalid,
    /// The same person appears earlier in the file.
    DuplicateInFile,
    /// The person is already a target of the task.
    DuplicateInTask,
    /// The person is on the user's do-not-contact list.
    DoNotContact,
    /// Left out by a filter the person asked for (e.g. skip bots).
    Filtered,
}

/// One row that was not imported, with what a person needs to fix it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedRow {
    pub row: usize,
    pub column: Option<String>,
    pub value: String,
    pub reason: RejectReason,
    pub message: String,
}

/// How many rejected rows a report lists one by one; the counts always cover them all.
pub const MAX_LISTED_REJECTIONS: usize = 1000;
/// How many accepted rows a report shows as a preview.
pub const PREVIEW_ROWS: usize = 10;

/// What an import did (or, for a dry run, would do).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ImportReport {
    /// Data rows read (the header row not counted).
    pub total_rows: usize,
    /// Rows that would be stored: valid, not duplicated, not excluded.
    pub valid: usize,
    pub invalid: usize,
    pub duplicates: usize,
    pub excluded: usize,
    /// Rows stored by this import (0 for a dry run).
    pub stored: usize,
    /// What the file was and how its columns were read.
    pub source: Value,
    pub rejected: Vec<RejectedRow>,
    /// Rejections beyond [`MAX_LISTED_REJECTIONS`], counted but not listed.
    pub rejected_not_listed: usize,
    /// Rows kept with an identifier that was left out because it did not parse (a bad username beside
    /// a good phone); listed up to [`MAX_LISTED_REJECTIONS`].
    pub warnings: Vec<RejectedRow>,
    /// The first accepted rows, as they would be stored.
    pub preview: Vec<Value>,
}

impl ImportReport {
    /// A row kept without one of its identifiers.
    pub fn warn(&mut self, row: RejectedRow) {
        if self.warnings.len() < MAX_LISTED_REJECTIONS {
            self.warnings.push(row);
        }
    }

    pub fn reject(&mut self, row: RejectedRow) {
        match row.reason {
            RejectReason::Invalid => self.invalid += 1,
            RejectReason::DuplicateInFile | RejectReason::DuplicateInTask => self.duplicates += 1,
            RejectReason::DoNotContact | RejectReason::Filtered => self.excluded += 1,
        }
        if self.rejected.len() < MAX_LISTED_REJECTIONS {
            self.rejected.push(row);
        } else {
            self.rejected_not_listed += 1;
        }
    }
}

fn first_identifier_text(d: &TargetDraft) -> String {
    d.identifiers().first().map(Identifier::value).unwrap_or_default()
}

/// The people of one import so far, by their identifier keys, hashed: 8 bytes a key, however long the
/// list. Two different keys with one 64-bit hash (about one chance in 10^9 for 200,000 keys) would
/// leave a person out as a duplicate — never contact anyone twice.
#[derive(Debug, Default)]
pub struct SeenPeople(HashSet<u64>);

impl SeenPeople {
    fn hash(key: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        h.finish()
    }

    /// True for a new person; a repeat (any shared key) is rejected into the report. A repeat's other
    /// identifiers are remembered too: they are the same person.
    pub fn admit(&mut self, d: &TargetDraft, report: &mut ImportReport) -> bool {
        let keys = d.keys();
        let repeated = keys.iter().find(|k| self.0.contains(&Self::hash(k))).cloned();
        self.0.extend(keys.iter().map(|k| Self::hash(k)));
        match repeated {
            Some(first) => {
                report.reject(RejectedRow {
                    row: d.row,
                    column: None,
                    value: first_identifier_text(d),
                    reason: RejectReason::DuplicateInFile,
                    message: format!("the same person ({}) appears earlier in the file", key_label(&first)),
                });
                false
            }
            None => true,
        }
    }
}

/// Drops drafts that repeat a person seen earlier in the same batch (any shared key).
pub fn dedup_within(mut drafts: Vec<TargetDraft>, report: &mut ImportReport) -> Vec<TargetDraft> {
    let mut seen = SeenPeople::default();
    drafts.retain(|d| seen.admit(d, report));
    drafts
}

/// Drops drafts already among the task's targets or on the do-not-contact list. Runs inside the
/// store's transaction, over the keys it found.
pub fn exclude_known(
    mut drafts: Vec<TargetDraft>,
    in_task: &HashSet<String>,
    do_not_contact: &HashSet<String>,
    report: &mut ImportReport,
) -> Vec<TargetDraft> {
    drafts.retain(|d| {
        let keys = d.keys();
        let rejection = if let Some(k) = keys.iter().find(|k| do_not_contact.contains(*k)) {
            Some((
                RejectReason::DoNotContact,
                format!("{} is on the do-not-contact list", key_label(k)),
            ))
        } else {
            keys.iter().find(|k| in_task.contains(*k)).map(|k| {
                (
                    RejectReason::DuplicateInTask,
                    format!("{} is already a target of this task", key_label(k)),
                )
            })
        };
        match rejection {
            Some((reason, message)) => {
                report.reject(RejectedRow {
                    row: d.row,
                    column: None,
                    value: first_identifier_text(d),
                    reason,
                    message,
                });
                false
            }
            None => true,
        }
    });
    drafts
}

/// "username anna_k" for "u:anna_k".
fn key_label(key: &str) -> String {
    match key.split_once(':') {
        Some(("u", v)) => format!("username {v}"),
        Some(("i", v)) => format!("user id {v}"),
        Some(("p", v)) => format!("phone {v}"),
        _ => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::Region;

    fn draft(row: usize, username: Option<&str>, phone: Option<&str>) -> TargetDraft {
        TargetDraft {
            row,
            username: username.map(|u| Username::parse(u).unwrap()),
            user_id: None,
            user_id_is_hint: false,
            phone: phone.map(|p| Phone::parse(p, Region::default()).unwrap()),
            first_name: None,
            last_name: None,
            extra: Map::new(),
        }
    }

    #[test]
    fn a_person_counts_once_whichever_identifier_repeats() {
        let mut report = ImportReport::default();
        let kept = dedup_within(
            vec![
                draft(2, Some("Anna_K"), None),
                draft(3, Some("anna_k"), None),
                draft(4, Some("boris_b"), Some("+79120000002")),
                draft(5, None, Some("8 912 000-00-02")),
                draft(6, Some("clara_c"), None),
            ],
            &mut report,
        );
        assert_eq!(kept.iter().map(|d| d.row).collect::<Vec<_>>(), [2, 4, 6]);
        assert_eq!(report.duplicates, 2);
        assert_eq!(
            report.rejected[0].message,
            "the same person (username anna_k) appears earlier in the file"
        );
        assert_eq!(
            report.rejected[1].message,
            "the same person (phone +79120000002) appears earlier in the file"
        );
    }

    #[test]
    fn do_not_contact_wins_over_duplicate_and_counts_as_excluded() {
        let mut report = ImportReport::default();
        let dnc: HashSet<String> = ["u:anna_k".to_string()].into();
        let in_task: HashSet<String> = ["u:anna_k".to_string(), "u:boris_b".to_string()].into();
        let kept = exclude_known(
            vec![
                draft(2, Some("anna_k"), None),
                draft(3, Some("boris_b"), None),
                draft(4, Some("clara_c"), None),
            ],
            &in_task,
            &dnc,
            &mut report,
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].username.as_ref().unwrap().as_str(), "clara_c");
        assert_eq!((report.excluded, report.duplicates), (1, 1));
        assert_eq!(report.rejected[0].reason, RejectReason::DoNotContact);
    }

    #[test]
    fn long_reports_count_everything_but_list_a_bounded_number() {
        let mut report = ImportReport::default();
        for row in 0..MAX_LISTED_REJECTIONS + 5 {
            report.reject(RejectedRow {
                row,
                column: None,
                value: String::new(),
                reason: RejectReason::Invalid,
                message: String::new(),
            });
        }
        assert_eq!(
            (report.invalid, report.rejected.len(), report.rejected_not_listed),
            (MAX_LISTED_REJECTIONS + 5, MAX_LISTED_REJECTIONS, 5)
        );
    }
}
