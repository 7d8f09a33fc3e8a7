//! A task's audience from the Parsing Service: a task whose `settings.parsing_task_id` names a parsing
//! task gets that task's results imported when it starts — by the user's start, or by the scheduler at
//! the scheduled time. No user's request stands behind the engine's call, so it carries the service's
//! own JWT. The import is the import endpoint's (same code, same record), and that record is how the
//! task remembers it: a second start, a resume or a restart does not import again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Duration, Utc};
use domain::{audience::TargetSource, phone::Region, task::Task};
use store::{audit_action, RequestMeta, StoreError};

use super::{events::Event, lifecycle::SCHEDULED_PREFIX, Engine};
use crate::{
    config::ImportConfig,
    importer::{
        load::{import_parsing_task, LoadError, Loaded, ParsingImport, ParsingImportError},
        parsing::{self, ParsingFilters},
    },
    integrations::{
        parsing_service::{Bearer, ParsingServiceClient, UpstreamError},
        service_token::ServiceToken,
    },
};

/// How long a scheduled task waits before its import is tried again after the Parsing Service could
/// not answer.
pub const RETRY_AFTER: Duration = Duration::minutes(1);

/// The engine's way to the Parsing Service, when one is configured.
pub struct ParsingImports {
    client: Arc<ParsingServiceClient>,
    token: Arc<ServiceToken>,
    region: Region,
    max_targets: usize,
    /// The scheduler's imports, by task: one at a time per task, and a failed one is tried again only
    /// after [`RETRY_AFTER`]. Kept in memory: after a restart the next tick tries at once, which is
    /// what a restart should do.
    attempts: Mutex<HashMap<i64, Attempt>>,
}

enum Attempt {
    Running,
    /// Committed. Kept until the scheduler has seen it: its look at the store may have been taken
    /// just before the commit, and must not start the import again.
    Done {
        at: DateTime<Utc>,
    },
    Failed {
        error: String,
        /// Trying again cannot help (the parsing task does not exist, the service refuses us, …).
        lasting: bool,
        at: DateTime<Utc>,
    },
    /// A lasting failure the scheduler has been told of, for the task as it was at `version`. Kept:
    /// another tick's look at the store, taken before the task left its armed state, must not import
    /// again; a task armed again since (a later version) tries afresh.
    Refused {
        version: i64,
        at: DateTime<Utc>,
    },
}

impl Attempt {
    /// When it ended; None while it runs.
    fn ended_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Running => None,
            Self::Done { at } | Self::Failed { at, .. } | Self::Refused { at, .. } => Some(*at),
        }
    }
}

/// Why a task's audience could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    #[error(
        "settings.parsing_task_id names parsing task {0}, but the Parsing Service is not configured \
         (PARSING_SERVICE_URL is unset)"
    )]
    NotConfigured(String),
    #[error(transparent)]
    Import(#[from] ParsingImportError),
}

impl AudienceError {
    /// Whether a later try may succeed: the Parsing Service or the store could not answer now.
    pub fn transient(&self) -> bool {
        matches!(
            self,
            Self::Import(
                ParsingImportError::Upstream(UpstreamError::Unavailable(_) | UpstreamError::BadResponse(_))
                    | ParsingImportError::Load(LoadError::Store(_))
            )
        )
    }
}

/// Whether a task due to start by its schedule has its audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduledAudience {
    /// Imported (or none awaited): the task may start.
    Ready,
    /// Being imported, or waiting to try again at the time given; the task stays armed.
    Later(Option<DateTime<Utc>>),
    /// It cannot be imported: the task is not started, for this reason.
    NotStarted(String),
}

impl ParsingImports {
    pub fn new(client: Arc<ParsingServiceClient>, token: Arc<ServiceToken>, import: &ImportConfig) -> Self {
        Self {
            client,
            token,
            region: import.phone_region,
            max_targets: import.max_targets_per_task,
            attempts: Mutex::default(),
        }
    }

    async fn import(
        &self,
        engine: &Engine,
        task: &Task,
        parsing_task_id: &str,
        meta: &RequestMeta,
    ) -> Result<Loaded, AudienceError> {
        let job = ParsingImport {
            user: task.user_id,
            task_id: task.id,
            parsing_task_id,
            filters: ParsingFilters { skip_bots: true },
            region: self.region,
            dry_run: false,
            max_targets: self.max_targets,
        };
        let bearer = Bearer::Service(&self.token);
        Ok(import_parsing_task(&engine.store, &engine.clock, &self.client, bearer, job, meta).await?)
    }

    fn attempts(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Attempt>> {
        self.attempts.lock().expect("parsing attempts lock")
    }
}

impl Engine {
    /// The parsing task whose results the task still waits for: named by its settings and not
    /// imported into it yet.
    pub async fn awaited_audience(&self, task: &Task) -> Result<Option<String>, StoreError> {
        let Some(parsing_task_id) = parsing::task_source(&task.spec.settings) else {
            return Ok(None);
        };
        let name = parsing::import_name(&parsing_task_id);
        let imported = self
            .store
            .has_import(task.user_id, task.id, TargetSource::ParsingImport, &name)
            .await?;
        Ok((!imported).then_some(parsing_task_id))
    }

    /// Imports the parsing task's results into the task now, for a start in a user's request.
    pub async fn import_audience(
        &self,
        task: &Task,
        parsing_task_id: &str,
        meta: &RequestMeta,
    ) -> Result<Loaded, AudienceError> {
        let imports = self
            .parsing
            .as_ref()
            .ok_or_else(|| AudienceError::NotConfigured(parsing_task_id.to_owned()))?;
        imports.import(self, task, parsing_task_id, meta).await
    }

    /// For the scheduler, before it starts a task whose time has come: its audience is ready, or the
    /// import is started in the background (the scheduler's tick must not wait on another service; the
    /// import's end wakes it), or it waits [`RETRY_AFTER`] after a failure with the reason shown.
    pub async fn scheduled_audience(
        self: &Arc<Self>,
        task: &Task,
        now: DateTime<Utc>,
    ) -> Result<ScheduledAudience, StoreError> {
        let Some(parsing_task_id) = self.awaited_audience(task).await? else {
            if let Some(imports) = &self.parsing {
                imports.attempts().remove(&task.id);
            }
            return Ok(ScheduledAudience::Ready);
        };
        let Some(imports) = self.parsing.clone() else {
            let error = AudienceError::NotConfigured(parsing_task_id);
            return Ok(ScheduledAudience::NotStarted(format!("not started: {error}")));
        };
        let waiting = {
            let mut attempts = imports.attempts();
            // Ends of tasks the scheduler no longer asks about (cancelled, deleted) are let go.
            attempts.retain(|_, a| a.ended_at().is_none_or(|at| at + Duration::hours(1) > now));
            match attempts.get(&task.id) {
                Some(Attempt::Running) => return Ok(ScheduledAudience::Later(None)),
                Some(Attempt::Done { .. }) => {
                    attempts.remove(&task.id);
                    return Ok(ScheduledAudience::Ready);
                }
                Some(Attempt::Failed {
                    error, lasting: true, ..
                }) => {
                    let reason = format!("not started: {error}");
                    let refused = Attempt::Refused {
                        version: task.version,
                        at: now,
                    };
                    attempts.insert(task.id, refused);
                    return Ok(ScheduledAudience::NotStarted(reason));
                }
                Some(Attempt::Refused { version, .. }) if task.version <= *version => {
                    return Ok(ScheduledAudience::Later(None));
                }
                Some(Attempt::Failed { error, at, .. }) if *at + RETRY_AFTER > now => {
                    Some((error.clone(), *at + RETRY_AFTER))
                }
                _ => {
                    attempts.insert(task.id, Attempt::Running);
                    None
                }
            }
        };
        if let Some((error, retry_at)) = waiting {
            self.show_waiting(task, &error, now).await?;
            return Ok(ScheduledAudience::Later(Some(retry_at)));
        }
        let (engine, task) = (self.clone(), task.clone());
        tokio::spawn(async move {
            let meta = RequestMeta {
                request_id: audit_action::SYSTEM_REQUEST_ID.to_owned(),
                client_addr: None,
            };
            let outcome = imports.import(&engine, &task, &parsing_task_id, &meta).await;
            let now = engine.clock.now();
            let attempt = match outcome {
                Ok(_) => Attempt::Done { at: now },
                Err(e) => {
                    let lasting = !e.transient();
                    tracing::warn!(
                        task_id = task.id,
                        parsing_task_id,
                        error = %e,
                        lasting,
                        "the audience of a scheduled task could not be imported from the Parsing Service; {}",
                        if lasting {
                            "the task is not started"
                        } else {
                            "the task waits and tries again in a minute"
                        }
                    );
                    Attempt::Failed {
                        error: e.to_string(),
                        lasting,
                        at: now,
                    }
                }
            };
            imports.attempts().insert(task.id, attempt);
            engine.events.publish(Event::TaskChanged { task_id: task.id }).await;
        });
        Ok(ScheduledAudience::Later(None))
    }

    /// Shows, next to the task's PENDING status, that its scheduled start waits for its audience. The
    /// text stays the same while the error does, so it is written once, not at every try.
    async fn show_waiting(&self, task: &Task, error: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let at = task.spec.scheduled_start.map(|at| at.to_rfc3339()).unwrap_or_default();
        let reason = format!("{SCHEDULED_PREFIX}{at}; waiting for its audience, tried again every minute: {error}");
        if task.status_reason.as_deref() == Some(reason.as_str()) {
            return Ok(());
        }
        let pending = [domain::task::TaskStatus::Pending];
        if self
            .store
            .engine_transition(task.id, &pending, pending[0], Some(&reason), now)
            .await?
        {
            self.events.publish(Event::TaskChanged { task_id: task.id }).await;
        }
        Ok(())
    }
}
