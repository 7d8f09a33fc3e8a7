//! The campaign engine: lifecycle moves, the scheduler that decides what runs next, the queues that
//! carry it, the workers that execute one action each, and the live events between processes.
//!
//! Nothing here counts or sleeps for a limit: the Account Manager decides when an account may act, and
//! every wait is a time written in the store, so a restart loses nothing and the simulator can jump
//! its virtual clock from one wake-up to the next through this same code.

pub mod audience;
pub mod estimate;
pub mod events;
pub mod failpoints;
pub mod lifecycle;
pub mod progress;
pub mod queue;
pub mod retention;
pub mod scheduler;
pub mod worker;

use std::{sync::Arc, time::Duration as StdDuration};

use account_manager::{sealing::Sealer, AccountManager};
use chrono::Duration;
use clock::SharedClock;
use domain::{
    outcome::AmAction,
    task::{ActionType, Task},
};
use platforms::{
    sandbox::SandboxWorld,
    telegram::{TelegramConfig, TelegramStrategy},
    InviteStrategy,
};
use store::{AccountKind, SharedStore};
use tokio::sync::watch;

use self::{events::Events, queue::JobQueue};
use crate::telemetry::Metrics;

/// How the engine behaves; every value is configuration (see `config.rs`).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Running (in progress or paused) tasks a user may have at once.
    pub max_running_tasks: i64,
    /// A scheduled task more than this late (the service was down) is not started.
    pub start_lateness: Duration,
    /// Tries of one target that failed for transient reasons before it is given up.
    pub max_attempts: i64,
    /// Backoff after a transient failure: `retry_base × 2^attempts`, up to `retry_max`, with jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// When a message whose outcome is unknown is retried (by the same account, same random id).
    pub unknown_retry_after: Duration,
    /// The circuit breaker looks at this many recent actions of a task…
    pub breaker_window: i64,
    /// …and pauses the task when this share of them failed for reasons that are not the targets' own.
    pub breaker_ratio: f64,
    /// What a template placeholder without a value renders as.
    pub template_fallback: String,
    /// The longest the scheduler sleeps without an event (a safety net; it wakes at stored times).
    pub idle_wake: StdDuration,
    /// Execution-log rows older than this are deleted by the retention cleanup.
    pub log_retention: Duration,
    /// How often the leading scheduler queues the retention cleanup.
    pub retention_interval: Duration,
    /// Log rows deleted per transaction by the cleanup.
    pub retention_batch: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_running_tasks: 10,
            start_lateness: Duration::hours(1),
            max_attempts: 5,
            retry_base: Duration::seconds(30),
            retry_max: Duration::hours(1),
            unknown_retry_after: Duration::minutes(10),
            breaker_window: 20,
            breaker_ratio: 0.8,
            template_fallback: String::new(),
            idle_wake: StdDuration::from_secs(30),
            log_retention: Duration::days(30),
            retention_interval: Duration::hours(24),
            retention_batch: 1000,
        }
    }
}

/// The adapters, by the kind of account: a connected session (registered here or mirrored from the
/// Integration Service) talks to Telegram, a sandbox account to the sandbox world — the same Telegram
/// adapter over two carriers.
pub struct Platforms {
    live: TelegramStrategy,
    sandbox: TelegramStrategy,
    /// `INTEGRATION_ACCOUNTS_SANDBOX`: the Integration Service's accounts act on the sandbox world.
    integration_on_sandbox: bool,
}

impl Platforms {
    pub fn new(telegram: TelegramConfig, world: Arc<SandboxWorld>) -> Self {
        Self {
            live: TelegramStrategy::new(telegram),
            sandbox: TelegramStrategy::over(world),
            integration_on_sandbox: false,
        }
    }

    /// Sends the Integration Service's accounts to the sandbox world instead of Telegram, so that the
    /// whole platform profile can be run end to end where nothing may reach Telegram (tests, demos).
    /// Their sessions are still read, checked and sealed, only never used. Said loudly at start: a
    /// production deployment with it on would run campaigns that invite nobody.
    pub fn integration_accounts_on_sandbox(mut self) -> Self {
        tracing::warn!(
            variable = "INTEGRATION_ACCOUNTS_SANDBOX",
            "THE INTEGRATION SERVICE'S ACCOUNTS ACT ON THE SANDBOX WORLD, NOT ON TELEGRAM: campaigns with them \
             reach no real person. Never set INTEGRATION_ACCOUNTS_SANDBOX in production."
        );
        self.integration_on_sandbox = true;
        self
    }

    pub fn for_kind(&self, kind: AccountKind) -> &dyn InviteStrategy {
        match kind {
            AccountKind::Sandbox => &self.sandbox,
            AccountKind::Integration if self.integration_on_sandbox => &self.sandbox,
            AccountKind::Session | AccountKind::Integration => &self.live,
        }
    }
}

/// Whether this process's scheduler leads right now, for work that one process at a time must do
/// (the scheduler publishes it; such work waits on [`Leading::watch`]).
#[derive(Debug)]
pub struct Leading(watch::Sender<bool>);

impl Default for Leading {
    fn default() -> Self {
        Self(watch::channel(false).0)
    }
}

impl Leading {
    /// Called by the scheduler on each turn of its loop; watchers wake only on a change.
    pub fn set(&self, leading: bool) {
        self.0
            .send_if_modified(|was| std::mem::replace(was, leading) != leading);
    }

    pub fn watch(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// Everything the scheduler and the workers share.
pub struct Engine {
    pub store: SharedStore,
    pub clock: SharedClock,
    pub am: Arc<AccountManager>,
    pub platforms: Platforms,
    pub sealer: Arc<Sealer>,
    pub queue: Arc<dyn JobQueue>,
    pub events: Arc<dyn Events>,
    pub config: EngineConfig,
    /// What the engine counts (task moves, settled targets, account problems, AM decisions): the
    /// process's registry, shared with `/metrics`; `Metrics::new()` where nobody scrapes it.
    pub metrics: Arc<Metrics>,
    /// Set by this process's scheduler while it leads.
    pub leading: Leading,
    /// The Parsing Service, for tasks whose audience is a parsing task (None: not configured).
    pub parsing: Option<Arc<audience::ParsingImports>>,
}

/// The Account Manager action a task's main call is, and the channel its limits are counted in.
pub fn main_action(task: &Task) -> (AmAction, Option<String>) {
    match task.spec.action_type {
        ActionType::InviteToGroup => (
            AmAction::Invite,
            task.spec.target_channel.as_ref().map(|c| c.to_string()),
        ),
        ActionType::SendMessage => (AmAction::Message, None),
    }
}
