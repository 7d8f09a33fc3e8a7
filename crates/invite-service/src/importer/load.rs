//! Drafts into the store, in one transaction per import: a file read a chunk at a time or a list
//! already in memory, and the Parsing Service's results fetched and prepared — the same code whether a
//! user's request asks for the import or the engine does when a task starts.

use clock::SharedClock;
use domain::{
    audience::{ImportReport, TargetSource},
    phone::Region,
    task::TaskStatus,
    UserId,
};
use store::{ImportOutcome, ImportRequest, ImportStart, RequestMeta, SharedStore, StoreError};

use super::{
    parsing::{self, ParsingFilters},
    read::ReadError,
    DraftStream, Prepared, CHUNK_ROWS,
};
use crate::integrations::parsing_service::{Bearer, ParsingServiceClient, UpstreamError};

/// Where an import's drafts come from: a file read a chunk at a time, or a list already in memory.
pub enum DraftSource<'a> {
    File(DraftStream<'a>),
    List(Prepared),
}

/// A committed import (or a dry run's record).
#[derive(Debug)]
pub struct Loaded {
    pub import_id: i64,
    pub report: ImportReport,
}

/// Why nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("task {0} not found")]
    NotFound(i64),
    #[error("task {task_id} is {status}: targets can be imported only before it runs or while it is paused")]
    Locked { task_id: i64, status: TaskStatus },
    #[error(
        "the task would hold {} targets ({existing} already, {adding} new); at most {limit} are allowed",
        existing + adding
    )]
    TooManyTargets {
        existing: usize,
        adding: usize,
        limit: usize,
    },
    /// The file broke off while it was read.
    #[error("{0}")]
    Read(ReadError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs an import in one store transaction: nothing is visible until it commits.
pub async fn load(
    store: &SharedStore,
    user: UserId,
    request: ImportRequest,
    source: DraftSource<'_>,
    now: chrono::DateTime<chrono::Utc>,
    meta: &RequestMeta,
) -> Result<Loaded, LoadError> {
    let (task_id, dry_run) = (request.task_id, request.dry_run);
    let mut sink = match store.begin_import(user, request, now, meta).await? {
        ImportStart::Started(sink) => sink,
        ImportStart::NotFound => return Err(LoadError::NotFound(task_id)),
        ImportStart::Locked(status) => return Err(LoadError::Locked { task_id, status }),
    };
    let report = match source {
        DraftSource::List(Prepared { drafts, mut report }) => {
            sink.add(drafts, &mut report).await?;
            report
        }
        DraftSource::File(mut stream) => {
            while let Some(chunk) = stream.next_chunk(CHUNK_ROWS).map_err(LoadError::Read)? {
                sink.add(chunk, &mut stream.report).await?;
            }
            stream.report
        }
    };
    match sink.finish(report).await? {
        ImportOutcome::Done { import_id, report } => {
            tracing::info!(
                task_id,
                import_id,
                dry_run,
                stored = report.stored,
                rejected = report.invalid + report.duplicates + report.excluded,
                "targets imported"
            );
            Ok(Loaded {
                import_id,
                report: *report,
            })
        }
        ImportOutcome::TooManyTargets {
            existing,
            adding,
            limit,
        } => Err(LoadError::TooManyTargets {
            existing,
            adding,
            limit,
        }),
    }
}

/// An import of a parsing task's results into a task.
#[derive(Debug, Clone, Copy)]
pub struct ParsingImport<'a> {
    pub user: UserId,
    pub task_id: i64,
    pub parsing_task_id: &'a str,
    pub filters: ParsingFilters,
    pub region: Region,
    pub dry_run: bool,
    /// The most targets the task may hold.
    pub max_targets: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ParsingImportError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Reads every result of the parsing task (with the token `bearer` names) and imports them.
pub async fn import_parsing_task(
    store: &SharedStore,
    clock: &SharedClock,
    client: &ParsingServiceClient,
    bearer: Bearer<'_>,
    job: ParsingImport<'_>,
    meta: &RequestMeta,
) -> Result<Loaded, ParsingImportError> {
    // Filters and duplicates leave some out, so more results than the task may hold are read.
    let most = job.max_targets.saturating_mul(10).max(10_000);
    let results = client.results(job.parsing_task_id, bearer, most).await?;
    let prepared = parsing::prepare_results(&results, job.filters, job.region, job.parsing_task_id);
    let request = ImportRequest {
        task_id: job.task_id,
        source: TargetSource::ParsingImport,
        file_name: Some(parsing::import_name(job.parsing_task_id)),
        dry_run: job.dry_run,
        max_targets: job.max_targets,
    };
    Ok(load(store, job.user, request, DraftSource::List(prepared), clock.now(), meta).await?)
}
