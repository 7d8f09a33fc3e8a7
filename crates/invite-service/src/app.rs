//! Putting the parts together: the store, the secrets, the HTTP listeners.

use std::{net::SocketAddr, path::Path, sync::Arc};

use account_manager::{
    sealing::{DataKey, Sealer},
    AccountManager,
};
use anyhow::Context;
use clock::SharedClock;
use store::{SharedStore, StoreError, StoreOptions};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use platforms::{sandbox::SandboxWorld, telegram::TelegramConfig};

use crate::{
    api::{self, auth::Authenticator, AppState},
    config::{url_without_credentials, Config},
    engine::{
        audience::ParsingImports,
        events::{redis::RedisEvents, Events, Local},
        queue::{memory::MemoryQueue, rabbitmq::RabbitQueue, JobQueue},
        scheduler::Scheduler,
        worker, Engine, Platforms,
    },
    integrations::{
        gateway::GatewayUsers,
        integration_service::{IntegrationAccounts, IntegrationServiceClient},
        parsing_service::ParsingServiceClient,
        service_token::ServiceToken,
    },
    secrets::{self, Secret},
    telemetry::Metrics,
    vault::Vault,
};

/// How the schema is brought up to date at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Standalone: apply pending migrations.
    Migrate,
    /// Platform: refuse to start on an outdated schema (`invite-service migrate` runs separately).
    RequireCurrent,
}

/// The JWT secret from the configuration, or (standalone) from a file generated in the data folder;
/// `origin` is told the file's path and whether it was generated just now — never the value. With Vault
/// configured the secret is Vault's, read by [`start`]: a generated one would sign tokens nobody accepts.
pub fn jwt_secret(config: &Config, origin: impl FnOnce(&Path, bool)) -> anyhow::Result<Secret> {
    anyhow::ensure!(
        config.vault.is_none(),
        "the JWT secret is kept in Vault (VAULT_ADDR is set); this command signs only with INVITE_JWT_SECRET or the data folder's secret"
    );
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.clone());
    }
    let path = secrets::jwt_secret_path(&config.data_dir);
    let (secret, generated) = secrets::load_or_generate(&path)?;
    origin(&path, generated);
    Ok(secret)
}

/// The data key that seals sessions at rest: from the configuration, or (standalone) from a file
/// generated in the data folder; `origin` is told the path, never the value.
pub fn data_key(config: &Config, origin: impl FnOnce(&Path, bool)) -> anyhow::Result<DataKey> {
    if let Some(key) = &config.data_key {
        return Ok(key.clone());
    }
    let path = config.data_dir.join("data-key");
    let (secret, generated) = secrets::load_or_generate(&path)?;
    origin(&path, generated);
    DataKey::from_hex(secret.expose())
        .map_err(|_| anyhow::anyhow!("{} does not hold a data key (64 hex characters)", path.display()))
}

/// Opens the configured store, creating the SQLite file's folder on first run.
pub async fn open_store(config: &Config) -> anyhow::Result<SharedStore> {
    if let Some(path) = config.database_url.strip_prefix("sqlite:") {
        let file = path.trim_start_matches("//").split('?').next().unwrap_or_default();
        if let Some(dir) = Path::new(file).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
        }
    }
    let options = StoreOptions {
        max_connections: config.db_max_connections,
        ..StoreOptions::default()
    };
    store::open(&config.database_url, &options)
        .await
        .with_context(|| format!("cannot open the database {}", config.database_shown()))
}

pub async fn prepare_schema(store: &SharedStore, schema: Schema) -> anyhow::Result<()> {
    match schema {
        Schema::Migrate => {
            let applied = store.migrate().await?;
            tracing::info!(applied, backend = store.backend(), "database schema is up to date");
        }
        Schema::RequireCurrent => {
            let pending = store.pending_migrations().await?;
            if pending > 0 {
                return Err(StoreError::SchemaOutdated(pending).into());
            }
        }
    }
    Ok(())
}

/// A running API server.
pub struct Running {
    /// Where the API listens (None for a worker process).
    pub addr: Option<SocketAddr>,
    pub metrics_addr: Option<SocketAddr>,
    /// The engine this process serves (its scheduler and workers run only in `serve` and `worker`).
    pub engine: Arc<Engine>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Waits until the servers stop (after [`Running::shutdown`] or an error).
    pub async fn wait(self) -> anyhow::Result<()> {
        for server in self.servers {
            server.await.context("server task failed")??;
        }
        Ok(())
    }

    /// Stops accepting connections and lets requests in flight finish.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// The work queue: RabbitMQ when `CELERY_BROKER_URL` is set (the platform), else in-process.
async fn queue(config: &Config) -> anyhow::Result<Arc<dyn JobQueue>> {
    Ok(match &config.broker_url {
        Some(url) => {
            let q = RabbitQueue::connect_with_prefix(url.as_str(), &config.queue_prefix)
                .await
                .context("cannot reach CELERY_BROKER_URL")?;
            Arc::new(q)
        }
        None => Arc::new(MemoryQueue::default()),
    })
}

/// Live events: Redis pub/sub when `REDIS_URL` is set (several processes), else in-process.
async fn events(config: &Config) -> anyhow::Result<Arc<dyn Events>> {
    Ok(match &config.redis_url {
        Some(url) => RedisEvents::connect_with_prefix(url.as_str(), &config.queue_prefix)
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach REDIS_URL: {e}"))?,
        None => Arc::new(Local::default()),
    })
}

/// Logs, once at start, the profile and what each part runs on, in one line. No credential: URLs lose
/// their user, password and query; secrets are named by where they come from.
fn log_profile(config: &Config, roles: Roles) {
    let shown = |url: &url::Url| url_without_credentials(url.as_str());
    let queue = match &config.broker_url {
        Some(url) => format!("RabbitMQ {}", shown(url)),
        None => "in-process".to_owned(),
    };
    let cache_and_events = match &config.redis_url {
        Some(url) => format!("Redis {}", shown(url)),
        None => "in-process".to_owned(),
    };
    let file = |path: std::path::PathBuf| format!("file {}", path.display());
    let jwt_secret = match (&config.vault, &config.jwt_secret) {
        (Some(vault), _) => format!("Vault {}", shown(&vault.addr)),
        (None, Some(_)) => "environment".to_owned(),
        (None, None) => file(secrets::jwt_secret_path(&config.data_dir)),
    };
    let data_key = match &config.data_key {
        Some(_) => "environment".to_owned(),
        None => file(config.data_dir.join("data-key")),
    };
    let telegram_api = match (&config.telegram_api, &config.vault) {
        (Some(_), _) => "environment",
        (None, Some(_)) => "Vault",
        (None, None) => "none (each account brings its own)",
    };
    let accounts = match &config.integration_service {
        Some(c) => format!(
            "Integration Service {} (mirrored{}), own registry, sandbox",
            shown(&c.base_url),
            if config.integration_accounts_sandbox {
                "; they act on the sandbox world, INTEGRATION_ACCOUNTS_SANDBOX"
            } else {
                ""
            }
        ),
        None => "own registry, sandbox".to_owned(),
    };
    let optional = |url: Option<&url::Url>| url.map_or_else(|| "not configured".to_owned(), shown);
    tracing::info!(
        profile = config.profile().as_str(),
        roles = match roles {
            Roles::ApiOnly => "api",
            Roles::ApiAndEngine => "api and engine",
            Roles::EngineOnly => "engine",
        },
        store = config.database_shown(),
        queue,
        cache_and_events,
        secrets = format!("JWT secret: {jwt_secret}; data key: {data_key}; Telegram API credentials: {telegram_api}"),
        accounts,
        parsing_service = optional(config.parsing_service.as_ref().map(|c| &c.base_url)),
        api_gateway = optional(config.api_gateway.as_ref().map(|c| &c.base_url)),
        "startup profile"
    );
}

/// What a process runs besides the API: the scheduler and workers (standalone `serve`), or nothing
/// (`api`; workers run elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roles {
    ApiOnly,
    ApiAndEngine,
    /// `worker`: the scheduler (while it leads) and workers, no HTTP.
    EngineOnly,
}

/// Starts the HTTP API (and `/metrics`) over an opened store, and the engine when asked.
pub async fn start(config: &Config, store: SharedStore, clock: SharedClock, roles: Roles) -> anyhow::Result<Running> {
    log_profile(config, roles);
    let vault = match &config.vault {
        Some(c) => Some(Arc::new(Vault::connect(c.clone()).await?)),
        None => None,
    };
    let secret = match &vault {
        Some(vault) => {
            if config.jwt_secret.is_some() {
                tracing::warn!("INVITE_JWT_SECRET is ignored: the JWT secret comes from Vault");
            }
            let secret = vault
                .jwt_secret()
                .await
                .context("cannot read the JWT secret (VAULT_KV_MOUNT, VAULT_JWT_SECRET_PATH, VAULT_JWT_SECRET_KEY)")?;
            secret
        }
        None => jwt_secret(config, |path, generated| {
            if generated {
                tracing::info!(path = %path.display(), "generated a JWT secret (INVITE_JWT_SECRET is not set)");
            } else {
                tracing::info!(path = %path.display(), "using the JWT secret stored in the data folder");
            }
        })?,
    };
    let telegram_api = match (&config.telegram_api, &vault) {
        (None, Some(vault)) => vault
            .telegram_credentials()
            .await
            // Accounts may bring their own credentials: a service-wide pair is a convenience, not a need.
            .inspect_err(|e| tracing::warn!(error = %e, "no service-wide Telegram credentials from Vault"))
            .ok()
            .flatten()
            .map(|c| (c.api_id, c.api_hash)),
        (configured, _) => configured.clone(),
    };
    let key = data_key(config, |path, generated| {
        tracing::info!(path = %path.display(), generated, "data key for sealed sessions (INVITE_DATA_KEY is not set)");
    })?;
    tracing::info!(
        fingerprint = key.fingerprint().as_str(),
        "sessions are sealed with this data key"
    );
    let metrics = Metrics::new();
    let am = AccountManager::new(store.clone(), clock.clone(), config.policy.clone(), None);
    let sealer = Arc::new(Sealer::new(&key));
    let world = SandboxWorld::new(store.clone(), clock.clone(), config.sandbox_world.clone());
    let service_token = Arc::new(ServiceToken::new(
        &secret,
        config.service_token_subject.clone(),
        clock.clone(),
    ));
    let parsing = config
        .parsing_service
        .clone()
        .map(|c| Arc::new(ParsingServiceClient::new(c)));
    let engine = Arc::new(Engine {
        store: store.clone(),
        clock: clock.clone(),
        am: am.clone(),
        platforms: {
            let platforms = Platforms::new(
                TelegramConfig {
                    api_id: telegram_api.as_ref().map(|(id, _)| *id),
                    ..TelegramConfig::default()
                },
                world,
            );
            if config.integration_accounts_sandbox {
                platforms.integration_accounts_on_sandbox()
            } else {
                platforms
            }
        },
        sealer: sealer.clone(),
        queue: queue(config).await?,
        events: events(config).await?,
        config: config.engine.clone(),
        metrics: metrics.clone(),
        leading: Default::default(),
        parsing: parsing
            .clone()
            .map(|client| Arc::new(ParsingImports::new(client, service_token.clone(), &config.import))),
    });
    let (integration, gateway) = platform_services(config, &service_token, vault.as_ref(), &store, &sealer, &clock)?;
    let mut auth = Authenticator::new(&secret, config.jwt_user_claim.clone(), clock.clone());
    if let Some(gateway) = gateway {
        auth = auth.with_gateway(gateway);
    }
    let state = AppState {
        store: store.clone(),
        clock: clock.clone(),
        auth: Arc::new(auth),
        metrics: metrics.clone(),
        trust_forwarded_for: config.trust_forwarded_for,
        max_body_bytes: config.max_body_bytes,
        import: config.import.clone(),
        parsing,
        am,
        sealer,
        telegram_api,
        engine: engine.clone(),
        vault,
        integration: integration.clone(),
    };
    let (shutdown, signal) = watch::channel(false);
    let mut servers = Vec::new();
    if roles != Roles::ApiOnly {
        let scheduler = Arc::new(Scheduler::new(engine.clone()));
        let stop = signal.clone();
        servers.push(tokio::spawn(async move {
            scheduler.run(stop).await;
            Ok(())
        }));
        for _ in 0..config.workers {
            let (engine, stop) = (engine.clone(), signal.clone());
            servers.push(tokio::spawn(async move {
                worker::run(engine, stop).await;
                Ok(())
            }));
        }
        if let Some(integration) = integration {
            // Mirrors while this process's scheduler leads (it publishes that on the engine).
            let (leading, stop) = (engine.leading.watch(), signal.clone());
            servers.push(tokio::spawn(async move {
                integration.keep_in_sync(leading, stop).await;
                Ok(())
            }));
        }
        tracing::info!(
            workers = config.workers,
            "engine running in this process: scheduler and workers"
        );
    }
    let metrics_addr = match config.metrics_bind {
        Some(bind) => {
            let listener = bind_listener(bind, "INVITE_METRICS_BIND").await?;
            let addr = listener.local_addr()?;
            servers.push(serve(listener, api::metrics_router(engine.clone()), signal.clone()));
            Some(addr)
        }
        None => None,
    };
    if roles == Roles::EngineOnly {
        // A worker has no API: its metrics are served only on a listener of their own.
        if let Some(addr) = metrics_addr {
            tracing::info!(metrics = %addr, "listening for metrics");
        }
        return Ok(Running {
            addr: None,
            metrics_addr,
            engine,
            shutdown,
            servers,
        });
    }
    let mut app = api::router(state);
    if metrics_addr.is_none() {
        app = app.merge(api::metrics_router(engine.clone()));
    }
    let listener = bind_listener(config.bind, "INVITE_BIND").await?;
    let addr = listener.local_addr()?;
    servers.push(serve(listener, app, signal));
    tracing::info!(%addr, metrics = %metrics_addr.unwrap_or(addr), "listening");
    Ok(Running {
        addr: Some(addr),
        metrics_addr,
        engine,
        shutdown,
        servers,
    })
}

/// The platform services this process talks to, each when configured.
type PlatformServices = (Option<Arc<IntegrationAccounts>>, Option<Arc<GatewayUsers>>);

/// The platform's Integration Service (its accounts mirrored into the store, sessions its records lack
/// read from Vault) and API Gateway (e-mail subs resolved to user ids), each when configured; both are
/// called with the service's own JWT.
fn platform_services(
    config: &Config,
    token: &Arc<ServiceToken>,
    vault: Option<&Arc<Vault>>,
    store: &SharedStore,
    sealer: &Arc<Sealer>,
    clock: &SharedClock,
) -> anyhow::Result<PlatformServices> {
    let integration = match &config.integration_service {
        None => None,
        Some(c) => {
            let mut client = IntegrationServiceClient::new(c.clone(), token.clone(), clock.clone());
            if let Some(url) = &config.redis_url {
                client = client
                    .with_redis(url, &config.queue_prefix)
                    .map_err(anyhow::Error::msg)?;
            }
            let mut accounts = IntegrationAccounts::new(client, store.clone(), sealer.clone(), clock.clone());
            if let Some(vault) = vault {
                accounts = accounts.with_vault(vault.clone());
            }
            Some(Arc::new(accounts))
        }
    };
    let gateway = config
        .api_gateway
        .clone()
        .map(|c| Arc::new(GatewayUsers::new(c, token.clone(), clock.clone())));
    Ok((integration, gateway))
}

async fn bind_listener(addr: SocketAddr, var: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{var}: cannot listen on {addr}"))
}

fn serve(
    listener: TcpListener,
    app: axum::Router,
    mut signal: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = signal.wait_for(|stop| *stop).await;
            })
            .await
    })
}
