//! An import in progress: one transaction held open while the file is read a chunk at a time. The
//! rules are the same on both backends; each backend only writes the rows.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    audience::{exclude_known, ImportReport, TargetDraft, TargetSource, PREVIEW_ROWS},
    task::{TaskStatus, UserId},
};
use serde_json::Value;

use crate::{error::Result, model::RequestMeta, ImportOutcome};

/// What an import is into.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub task_id: i64,
    pub source: TargetSource,
    pub file_name: Option<String>,
    pub dry_run: bool,
    /// The most targets a task may hold.
    pub max_targets: usize,
}

pub enum ImportStart {
    Started(Box<dyn ImportSink>),
    NotFound,
    /// The task is running or finished.
    Locked(TaskStatus),
}

/// Where the drafts of one import go. Nothing is visible to anyone until `finish` commits; dropping
/// the sink (an error, a refused import) rolls everything back.
#[async_trait]
pub trait ImportSink: Send {
    /// Takes valid drafts (unique within the file): people already in the task or on the user's
    /// do-not-contact list are rejected into `report`, the others stored (unless a dry run).
    async fn add(&mut self, drafts: Vec<TargetDraft>, report: &mut ImportReport) -> Result<()>;

    /// Commits: the import record with the final report, the task's target count and an audit entry.
    /// Over the task's limit nothing is stored and the answer says by how much.
    async fn finish(self: Box<Self>, report: ImportReport) -> Result<ImportOutcome>;
}

/// The rules of an import, the same on every backend.
pub(crate) struct ImportState {
    pub user: UserId,
    pub request: ImportRequest,
    pub import_id: i64,
    pub now: DateTime<Utc>,
    pub meta: RequestMeta,
    pub in_task: HashSet<String>,
    pub do_not_contact: HashSet<String>,
    pub existing: usize,
    pub valid: usize,
    pub preview: Vec<Value>,
}

impl ImportState {
    /// Filters a chunk and returns what to write now (nothing for a dry run, or once over the limit:
    /// the rest is only counted, and `close` refuses the whole import).
    pub fn take(&mut self, drafts: Vec<TargetDraft>, report: &mut ImportReport) -> Vec<TargetDraft> {
        let kept = exclude_known(drafts, &self.in_task, &self.do_not_contact, report);
        self.valid += kept.len();
        let room = PREVIEW_ROWS.saturating_sub(self.preview.len());
        self.preview.extend(kept.iter().take(room).map(TargetDraft::preview));
        if self.request.dry_run || self.over_limit() {
            Vec::new()
        } else {
            kept
        }
    }

    pub fn over_limit(&self) -> bool {
        self.existing + self.valid > self.request.max_targets
    }

    /// Completes the report; the refusal when the import would pass the task's limit.
    pub fn close(&self, report: &mut ImportReport) -> Option<ImportOutcome> {
        if self.over_limit() {
            return Some(ImportOutcome::TooManyTargets {
                existing: self.existing,
                adding: self.valid,
                limit: self.request.max_targets,
            });
        }
        report.valid = self.valid;
        report.preview = self.preview.clone();
        report.rejected.sort_by_key(|r| r.row);
        report.stored = if self.request.dry_run { 0 } else { self.valid };
        None
    }
}
