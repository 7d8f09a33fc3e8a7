//! Configuration from environment variables. Defaults give the standalone profile: no variable set →
//! SQLite under `./data`, the API on 127.0.0.1:8000, secrets generated into the data folder.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf};

use thiserror::Error;
use url::Url;

use domain::phone::Region;

use crate::{
    integrations::{
        gateway::GatewayConfig, integration_service::IntegrationServiceConfig, parsing_service::ParsingServiceConfig,
    },
    secrets::Secret,
    vault::VaultConfig,
};

/// One documented variable: its name, its default (if any) and what it does. `--help` and the README
/// are written from this list.
pub struct Variable {
    pub name: &'static str,
    pub default: &'static str,
    pub about: &'static str,
}

pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "INVITE_BIND",
        default: "127.0.0.1:8000",
        about: "address the HTTP API listens on",
    },
    Variable {
        name: "INVITE_DATA_DIR",
        default: "./data",
        about: "folder for the SQLite database and generated secrets; created on first run",
    },
    Variable {
        name: "DATABASE_URL",
        default: "sqlite:<INVITE_DATA_DIR>/invite-service.db",
        about: "sqlite:PATH (standalone) or postgres://USER@HOST:PORT/DB (platform)",
    },
    Variable {
        name: "INVITE_DB_MAX_CONNECTIONS",
        default: "10",
        about: "database connection pool size (1-1000)",
    },
    Variable {
        name: "INVITE_JWT_SECRET",
        default: "generated into <INVITE_DATA_DIR>/jwt-secret",
        about: "HS256 secret shared with the API gateway (at least 16 bytes); required with PostgreSQL",
    },
    Variable {
        name: "INVITE_DATA_KEY",
        default: "generated into <INVITE_DATA_DIR>/data-key",
        about: "64 hex characters: the key that seals stored sessions and API hashes; never the JWT secret; required with PostgreSQL",
    },
    Variable {
        name: "INVITE_TELEGRAM_API_ID",
        default: "(unset)",
        about: "service-wide Telegram api_id for accounts registered without their own",
    },
    Variable {
        name: "INVITE_TELEGRAM_API_HASH",
        default: "(unset)",
        about: "service-wide Telegram api_hash (32 hex characters), with INVITE_TELEGRAM_API_ID",
    },
    Variable {
        name: "INVITE_POLICY_FILE",
        default: "(unset: the built-in defaults)",
        about: "JSON file overriding the Account Manager's limits and pauses per platform and action",
    },
    Variable {
        name: "INVITE_POLICY",
        default: "(unset)",
        about: "inline JSON in the same format, applied over INVITE_POLICY_FILE",
    },
    Variable {
        name: "INVITE_SANDBOX_WORLD",
        default: "(the built-in world: seed 1, a realistic mix)",
        about: "JSON for the sandbox world: {\"seed\", \"people\": {shares}, \"limits\": {\"bursts\", \"strangers_per_day\", \"peer_flood_hours\"}}",
    },
    Variable {
        name: "INVITE_JWT_USER_CLAIM",
        default: "user_id",
        about: "JWT claim holding the user id (a numeric `sub` is the fallback)",
    },
    Variable {
        name: "INVITE_METRICS_BIND",
        default: "(unset: /metrics on the API listener)",
        about: "separate address for the Prometheus /metrics endpoint (a worker serves its metrics only there)",
    },
    Variable {
        name: "INVITE_MAX_BODY_BYTES",
        default: "1048576",
        about: "largest accepted JSON request body, in bytes",
    },
    Variable {
        name: "INVITE_TRUST_FORWARDED_FOR",
        default: "false",
        about: "take the client address for the audit log from X-Forwarded-For (set only behind a trusted proxy)",
    },
    Variable {
        name: "INVITE_LOG",
        default: "info,sqlx=warn",
        about: "log filter (tracing EnvFilter syntax, e.g. `info,sqlx=warn`); logs are JSON lines on stdout",
    },
    Variable {
        name: "INVITE_WORKERS",
        default: "4",
        about: "workers this process runs (serve): each executes one action at a time",
    },
    Variable {
        name: "INVITE_MAX_RUNNING_TASKS",
        default: "10",
        about: "tasks one user may have running or paused at once (409 beyond)",
    },
    Variable {
        name: "INVITE_START_LATENESS_MINUTES",
        default: "60",
        about: "a scheduled task more than this late (the service was down) is not started, and says why",
    },
    Variable {
        name: "INVITE_MAX_ATTEMPTS",
        default: "5",
        about: "tries of one target that failed for transient reasons before it is given up",
    },
    Variable {
        name: "INVITE_LOG_RETENTION_DAYS",
        default: "30",
        about: "execution-log rows older than this many days are deleted (targets and the Account Manager's ledger are kept)",
    },
    Variable {
        name: "INVITE_RETENTION_INTERVAL_HOURS",
        default: "24",
        about: "how often the leading scheduler queues the retention cleanup",
    },
    Variable {
        name: "INVITE_TEMPLATE_FALLBACK",
        default: "(empty)",
        about: "what a message placeholder with no value renders as (never the raw {placeholder})",
    },
    Variable {
        name: "INVITE_MAX_UPLOAD_BYTES",
        default: "10485760",
        about: "largest audience file accepted (413 beyond)",
    },
    Variable {
        name: "INVITE_MAX_TARGETS_PER_TASK",
        default: "1000",
        about: "most targets one task may hold; an import beyond it stores nothing (422)",
    },
    Variable {
        name: "INVITE_PHONE_REGION",
        default: "RU",
        about: "ISO country code for phone numbers written without one",
    },
    Variable {
        name: "INVITE_XLSX_MAX_UNPACKED_BYTES",
        default: "104857600",
        about: "most bytes an uploaded spreadsheet may unpack to (zip-bomb guard, 413)",
    },
    Variable {
        name: "PARSING_SERVICE_URL",
        default: "(unset: a parsing import and a task naming settings.parsing_task_id answer 503)",
        about: "base URL of the platform's Parsing Service (audiences imported from parsing tasks)",
    },
    Variable {
        name: "INVITE_PARSING_RESULTS_PATH",
        default: "/results/{task_id}",
        about: "path of a parsing task's results, read with limit/offset",
    },
    Variable {
        name: "INVITE_PARSING_PAGE_SIZE",
        default: "500",
        about: "results per page asked of the Parsing Service",
    },
    Variable {
        name: "INVITE_PARSING_TIMEOUT_SECS",
        default: "10",
        about: "timeout of one Parsing Service call (tried 3 times with backoff)",
    },
    Variable {
        name: "INTEGRATION_SERVICE_URL",
        default: "(unset: accounts only from this service's own registry)",
        about: "base URL of the platform's Integration Service: its accounts are mirrored as kind integration (platform profile)",
    },
    Variable {
        name: "INTEGRATION_ACCOUNTS_PATH",
        default: "/api/v1/accounts",
        about: "path of the Integration Service's account list, asked with user_id, platform and status=active",
    },
    Variable {
        name: "INTEGRATION_ACCOUNTS_CACHE_SECONDS",
        default: "60",
        about: "how long an account list is used (in Redis without secrets when REDIS_URL is set, else in process), and how often running tasks' accounts are mirrored again",
    },
    Variable {
        name: "INTEGRATION_TIMEOUT_SECONDS",
        default: "10",
        about: "timeout of one Integration Service call",
    },
    Variable {
        name: "INTEGRATION_BREAKER_FAILURES",
        default: "5",
        about: "Integration Service failures in a row (5xx, timeouts, refused connections) that open its circuit breaker",
    },
    Variable {
        name: "INTEGRATION_BREAKER_COOLDOWN_SECONDS",
        default: "30",
        about: "how long the open breaker fails calls at once before one trial call",
    },
    Variable {
        name: "INTEGRATION_ACCOUNTS_SANDBOX",
        default: "false",
        about: "TESTS AND DEMOS ONLY: the Integration Service's accounts act on the sandbox world instead of Telegram (needs INTEGRATION_SERVICE_URL; warned about at start)",
    },
    Variable {
        name: "INVITE_SERVICE_TOKEN_SUBJECT",
        default: "invite-service",
        about: "sub of the service's own JWT (HS256, the JWT secret, 1 h) sent to the platform's other services",
    },
    Variable {
        name: "API_GATEWAY_URL",
        default: "(unset: a token whose only identity is an e-mail sub is refused)",
        about: "base URL of the platform's API Gateway, to resolve an e-mail sub to a user id (/internal/users/by-email)",
    },
    Variable {
        name: "API_GATEWAY_CACHE_SECONDS",
        default: "60",
        about: "how long a resolved e-mail address is remembered",
    },
    Variable {
        name: "API_GATEWAY_TIMEOUT_SECONDS",
        default: "5",
        about: "timeout of one API Gateway call (503 beyond)",
    },
    Variable {
        name: "INVITE_QUEUE_PREFIX",
        default: "(empty: the spec's queue names)",
        about: "prefix of the RabbitMQ queue names and the Redis events channel, to share one broker between deployments",
    },
    Variable {
        name: "REDIS_URL",
        default: "(unset: in-process)",
        about: "redis:// URL for the shared cache and live events (platform profile)",
    },
    Variable {
        name: "CELERY_BROKER_URL",
        default: "(unset: in-process)",
        about: "amqp:// URL of RabbitMQ for the work queues (platform profile)",
    },
    Variable {
        name: "VAULT_ADDR",
        default: "(unset)",
        about: "address of Vault, e.g. http://vault:8200 (platform profile): the JWT secret and Telegram credentials come from its KV v2 store instead of INVITE_JWT_SECRET; unreachable at start → exit",
    },
    Variable {
        name: "VAULT_ROLE_ID",
        default: "(unset)",
        about: "Vault AppRole role id (required with VAULT_ADDR)",
    },
    Variable {
        name: "VAULT_SECRET_ID",
        default: "(unset)",
        about: "Vault AppRole secret id (required with VAULT_ADDR)",
    },
    Variable {
        name: "VAULT_KV_MOUNT",
        default: crate::vault::DEFAULT_KV_MOUNT,
        about: "KV v2 mount holding the secrets below (the running platform uses kv)",
    },
    Variable {
        name: "VAULT_JWT_SECRET_PATH",
        default: crate::vault::DEFAULT_JWT_SECRET_PATH,
        about: "path of the JWT secret within the mount (the running platform uses jwt)",
    },
    Variable {
        name: "VAULT_JWT_SECRET_KEY",
        default: crate::vault::DEFAULT_JWT_SECRET_KEY,
        about: "key of the JWT secret at that path",
    },
    Variable {
        name: "VAULT_TELEGRAM_CREDENTIALS_PATH",
        default: crate::vault::DEFAULT_TELEGRAM_CREDENTIALS_PATH,
        about: "path of the service-wide Telegram credentials (keys api_id, api_hash), used when INVITE_TELEGRAM_API_ID is unset",
    },
    Variable {
        name: "VAULT_ACCOUNT_SESSION_PATH",
        default: crate::vault::DEFAULT_ACCOUNT_SESSION_PATH,
        about: "path template of an account's session data (key session_data)",
    },
    Variable {
        name: "VAULT_TIMEOUT_SECONDS",
        default: "5",
        about: "timeout of one Vault call (1-300)",
    },
];

/// A configuration problem: one line that names the variable.
#[derive(Debug, Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

/// Its `Debug` names where things are, never a credential (URLs lose theirs, secrets print redacted).
#[derive(Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub metrics_bind: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub db_max_connections: u32,
    pub jwt_secret: Option<Secret>,
    pub jwt_user_claim: String,
    pub data_key: Option<account_manager::sealing::DataKey>,
    pub telegram_api: Option<(i32, Secret)>,
    pub policy: account_manager::Policy,
    pub sandbox_world: platforms::sandbox::WorldConfig,
    pub engine: crate::engine::EngineConfig,
    /// Workers this process runs (standalone `serve`, `worker`).
    pub workers: usize,
    /// Prefix of the queue names and the events channel (empty: the spec's names).
    pub queue_prefix: String,
    pub max_body_bytes: usize,
    pub trust_forwarded_for: bool,
    pub log_filter: String,
    pub redis_url: Option<Url>,
    pub broker_url: Option<Url>,
    pub import: ImportConfig,
    pub parsing_service: Option<ParsingServiceConfig>,
    /// None when INTEGRATION_SERVICE_URL is unset.
    pub integration_service: Option<IntegrationServiceConfig>,
    /// INTEGRATION_ACCOUNTS_SANDBOX: the Integration Service's accounts act on the sandbox world.
    pub integration_accounts_sandbox: bool,
    /// None when API_GATEWAY_URL is unset.
    pub api_gateway: Option<GatewayConfig>,
    pub service_token_subject: String,
    /// None when VAULT_ADDR is unset.
    pub vault: Option<VaultConfig>,
}

/// Limits and defaults of audience import.
#[derive(Debug, Clone)]
pub struct ImportConfig {
    pub max_upload_bytes: usize,
    pub max_targets_per_task: usize,
    pub phone_region: Region,
    pub xlsx_max_unpacked_bytes: u64,
}

impl Config {
    pub fn from_process_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    pub fn from_vars(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());

        let bind = parse_addr("INVITE_BIND", get("INVITE_BIND").unwrap_or("127.0.0.1:8000"))?;
        let metrics_bind = get("INVITE_METRICS_BIND")
            .map(|v| parse_addr("INVITE_METRICS_BIND", v))
            .transpose()?;
        let data_dir = PathBuf::from(get("INVITE_DATA_DIR").unwrap_or("./data"));
        let database_url = match get("DATABASE_URL") {
            Some(url) => check_database_url(url)?,
            None => format!("sqlite:{}", data_dir.join("invite-service.db").display()),
        };
        let db_max_connections = parse_number(
            "INVITE_DB_MAX_CONNECTIONS",
            get("INVITE_DB_MAX_CONNECTIONS"),
            10,
            1,
            1000,
        )?;
        let max_body_bytes = parse_number(
            "INVITE_MAX_BODY_BYTES",
            get("INVITE_MAX_BODY_BYTES"),
            1 << 20,
            1024,
            64 << 20,
        )? as usize;
        let jwt_secret = get("INVITE_JWT_SECRET").map(|v| {
            if v.len() < 16 {
                Err(bad(
                    "INVITE_JWT_SECRET",
                    format!("must be at least 16 bytes long (got {})", v.len()),
                ))
            } else {
                Ok(Secret::new(v.to_string()))
            }
        });
        let jwt_secret = jwt_secret.transpose()?;
        let vault = parse_vault(get)?;
        if jwt_secret.is_none() && vault.is_none() && !database_url.starts_with("sqlite:") {
            return Err(bad(
                "INVITE_JWT_SECRET",
                "required with a PostgreSQL DATABASE_URL unless VAULT_ADDR is set: every replica must verify tokens with the same secret",
            ));
        }
        let jwt_user_claim = get("INVITE_JWT_USER_CLAIM").unwrap_or("user_id").to_string();
        let data_key = get("INVITE_DATA_KEY")
            .map(|v| {
                account_manager::sealing::DataKey::from_hex(v)
                    .map_err(|_| bad("INVITE_DATA_KEY", "must be 64 hexadecimal characters (32 bytes)"))
            })
            .transpose()?;
        if data_key.is_none() && !database_url.starts_with("sqlite:") {
            return Err(bad(
                "INVITE_DATA_KEY",
                "required with a PostgreSQL DATABASE_URL: every replica must open the same stored sessions",
            ));
        }
        let telegram_api = match (get("INVITE_TELEGRAM_API_ID"), get("INVITE_TELEGRAM_API_HASH")) {
            (None, None) => None,
            (Some(id), Some(hash)) => {
                let id = id
                    .parse::<i32>()
                    .ok()
                    .filter(|id| *id > 0)
                    .ok_or_else(|| bad("INVITE_TELEGRAM_API_ID", "must be a positive integer"))?;
                if hash.len() != 32 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("INVITE_TELEGRAM_API_HASH", "must be 32 hexadecimal characters"));
                }
                Some((id, Secret::new(hash.to_ascii_lowercase())))
            }
            (Some(_), None) => {
                return Err(bad(
                    "INVITE_TELEGRAM_API_HASH",
                    "is required with INVITE_TELEGRAM_API_ID",
                ))
            }
            (None, Some(_)) => {
                return Err(bad(
                    "INVITE_TELEGRAM_API_ID",
                    "is required with INVITE_TELEGRAM_API_HASH",
                ))
            }
        };
        let policy_file = match get("INVITE_POLICY_FILE") {
            None => None,
            Some(path) => Some((
                path.to_string(),
                std::fs::read_to_string(path)
                    .map_err(|e| bad("INVITE_POLICY_FILE", format!("cannot read {path}: {e}")))?,
            )),
        };
        let policy = account_manager::policy_config::load(
            policy_file.as_ref().map(|(p, text)| (p.as_str(), text.as_str())),
            get("INVITE_POLICY"),
        )
        .map_err(|e| {
            // The policy's messages start with the layer they come from; name that variable once.
            let text = e.to_string();
            match text.strip_prefix("INVITE_POLICY_FILE ") {
                Some(rest) => bad("INVITE_POLICY_FILE", rest),
                None => bad(
                    "INVITE_POLICY",
                    text.trim_start_matches("INVITE_POLICY")
                        .trim_start_matches(':')
                        .trim_start(),
                ),
            }
        })?;
        let sandbox_world = match get("INVITE_SANDBOX_WORLD") {
            None => platforms::sandbox::WorldConfig::default(),
            Some(json) => {
                platforms::sandbox::WorldConfig::from_json(json).map_err(|e| bad("INVITE_SANDBOX_WORLD", e))?
            }
        };
        let defaults = crate::engine::EngineConfig::default();
        let engine = crate::engine::EngineConfig {
            max_running_tasks: i64::from(parse_number(
                "INVITE_MAX_RUNNING_TASKS",
                get("INVITE_MAX_RUNNING_TASKS"),
                10,
                1,
                1000,
            )?),
            start_lateness: chrono::Duration::minutes(i64::from(parse_number(
                "INVITE_START_LATENESS_MINUTES",
                get("INVITE_START_LATENESS_MINUTES"),
                60,
                1,
                100_000,
            )?)),
            max_attempts: i64::from(parse_number(
                "INVITE_MAX_ATTEMPTS",
                get("INVITE_MAX_ATTEMPTS"),
                5,
                1,
                100,
            )?),
            template_fallback: get("INVITE_TEMPLATE_FALLBACK").unwrap_or_default().to_owned(),
            log_retention: chrono::Duration::days(i64::from(parse_number(
                "INVITE_LOG_RETENTION_DAYS",
                get("INVITE_LOG_RETENTION_DAYS"),
                30,
                1,
                36_500,
            )?)),
            retention_interval: chrono::Duration::hours(i64::from(parse_number(
                "INVITE_RETENTION_INTERVAL_HOURS",
                get("INVITE_RETENTION_INTERVAL_HOURS"),
                24,
                1,
                8_760,
            )?)),
            ..defaults
        };
        let queue_prefix = get("INVITE_QUEUE_PREFIX").unwrap_or_default().to_owned();
        if !queue_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(bad(
                "INVITE_QUEUE_PREFIX",
                "may hold only letters, digits, '-', '_' and '.'",
            ));
        }
        let workers = parse_number("INVITE_WORKERS", get("INVITE_WORKERS"), 4, 1, 256)? as usize;
        let trust_forwarded_for = parse_bool("INVITE_TRUST_FORWARDED_FOR", get("INVITE_TRUST_FORWARDED_FOR"))?;
        let log_filter = get("INVITE_LOG").unwrap_or("info,sqlx=warn").to_string();
        tracing_subscriber::EnvFilter::try_new(&log_filter).map_err(|e| bad("INVITE_LOG", e.to_string()))?;

        let redis_url = get("REDIS_URL")
            .map(|v| parse_url("REDIS_URL", v, &["redis", "rediss"]))
            .transpose()?;
        let broker_url = get("CELERY_BROKER_URL")
            .map(|v| parse_url("CELERY_BROKER_URL", v, &["amqp", "amqps"]))
            .transpose()?;
        let import = ImportConfig {
            max_upload_bytes: parse_number(
                "INVITE_MAX_UPLOAD_BYTES",
                get("INVITE_MAX_UPLOAD_BYTES"),
                10 << 20,
                1024,
                1 << 30,
            )? as usize,
            max_targets_per_task: parse_number(
                "INVITE_MAX_TARGETS_PER_TASK",
                get("INVITE_MAX_TARGETS_PER_TASK"),
                1000,
                1,
                10_000_000,
            )? as usize,
            phone_region: match get("INVITE_PHONE_REGION") {
                None => Region::default(),
                Some(v) => Region::parse(v).ok_or_else(|| {
                    bad(
                        "INVITE_PHONE_REGION",
                        format!("is not a known ISO country code (got {v:?})"),
                    )
                })?,
            },
            xlsx_max_unpacked_bytes: u64::from(parse_number(
                "INVITE_XLSX_MAX_UNPACKED_BYTES",
                get("INVITE_XLSX_MAX_UNPACKED_BYTES"),
                100 << 20,
                1 << 20,
                u32::MAX,
            )?),
        };
        let parsing_service = match get("PARSING_SERVICE_URL") {
            None => None,
            Some(v) => {
                let mut base_url = parse_url("PARSING_SERVICE_URL", v, &["http", "https"])?;
                if !base_url.path().ends_with('/') {
                    let path = format!("{}/", base_url.path());
                    base_url.set_path(&path);
                }
                let results_path = get("INVITE_PARSING_RESULTS_PATH")
                    .unwrap_or("/results/{task_id}")
                    .to_string();
                if !results_path.contains("{task_id}") {
                    return Err(bad("INVITE_PARSING_RESULTS_PATH", "must contain {task_id}"));
                }
                Some(ParsingServiceConfig {
                    base_url,
                    results_path,
                    page_size: parse_number(
                        "INVITE_PARSING_PAGE_SIZE",
                        get("INVITE_PARSING_PAGE_SIZE"),
                        500,
                        1,
                        10_000,
                    )?,
                    timeout: std::time::Duration::from_secs(u64::from(parse_number(
                        "INVITE_PARSING_TIMEOUT_SECS",
                        get("INVITE_PARSING_TIMEOUT_SECS"),
                        10,
                        1,
                        300,
                    )?)),
                    attempts: 3,
                })
            }
        };
        let (integration_service, api_gateway) = parse_platform_services(get)?;
        let integration_accounts_sandbox =
            parse_bool("INTEGRATION_ACCOUNTS_SANDBOX", get("INTEGRATION_ACCOUNTS_SANDBOX"))?;
        if integration_accounts_sandbox && integration_service.is_none() {
            return Err(bad(
                "INTEGRATION_ACCOUNTS_SANDBOX",
                "is true but INTEGRATION_SERVICE_URL is not set: it only sends the Integration Service's accounts to the sandbox world",
            ));
        }
        let service_token_subject = get("INVITE_SERVICE_TOKEN_SUBJECT")
            .unwrap_or(crate::integrations::service_token::SERVICE_NAME)
            .to_owned();
        Ok(Self {
            import,
            parsing_service,
            integration_service,
            integration_accounts_sandbox,
            api_gateway,
            service_token_subject,
            bind,
            metrics_bind,
            data_dir,
            database_url,
            db_max_connections,
            jwt_secret,
            jwt_user_claim,
            data_key,
            telegram_api,
            policy,
            sandbox_world,
            engine,
            workers,
            queue_prefix,
            max_body_bytes,
            trust_forwarded_for,
            log_filter,
            redis_url,
            broker_url,
            vault,
        })
    }

    /// The database as logs and errors may name it: a SQLite path, or a PostgreSQL URL without its
    /// credentials.
    pub fn database_shown(&self) -> String {
        match self.database_url.strip_prefix("sqlite:") {
            Some(path) => format!("SQLite {}", path.split('?').next().unwrap_or_default()),
            None => format!("PostgreSQL {}", url_without_credentials(&self.database_url)),
        }
    }

    /// The profile of DESIGN §2 this configuration amounts to: the platform's as soon as the store is
    /// PostgreSQL or a platform service holds the secrets or the accounts, standalone otherwise.
    pub fn profile(&self) -> Profile {
        if !self.database_url.starts_with("sqlite:") || self.vault.is_some() || self.integration_service.is_some() {
            Profile::Platform
        } else {
            Profile::Standalone
        }
    }
}

/// How the service is deployed (DESIGN §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// One process on SQLite, secrets from the environment or the data folder.
    Standalone,
    /// PostgreSQL, RabbitMQ, Redis, Vault and the platform's services.
    Platform,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Standalone => "standalone",
            Profile::Platform => "platform",
        }
    }
}

/// Vault's settings when VAULT_ADDR is set. Any other VAULT_ variable without it is refused: the service
/// would otherwise run on secrets of its own while the deployment meant Vault's.
fn parse_vault<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Option<VaultConfig>, ConfigError> {
    let Some(addr) = get("VAULT_ADDR") else {
        for v in VARIABLES.iter().filter(|v| v.name.starts_with("VAULT_")) {
            if get(v.name).is_some() {
                return Err(bad(v.name, "is set but VAULT_ADDR is not"));
            }
        }
        return Ok(None);
    };
    let addr = parse_url("VAULT_ADDR", addr, &["http", "https"])?;
    let role_id = get("VAULT_ROLE_ID").ok_or_else(|| bad("VAULT_ROLE_ID", "is required with VAULT_ADDR"))?;
    let secret_id = get("VAULT_SECRET_ID").ok_or_else(|| bad("VAULT_SECRET_ID", "is required with VAULT_ADDR"))?;
    let mut vault = VaultConfig::new(addr, role_id.to_string(), Secret::new(secret_id.to_string()));
    let path = |var: &'static str, value: Option<&str>, default: String| match value {
        None => Ok(default),
        Some(v) => crate::vault::check_path(v).map_err(|problem| bad(var, problem)),
    };
    vault.kv_mount = path("VAULT_KV_MOUNT", get("VAULT_KV_MOUNT"), vault.kv_mount)?;
    vault.jwt_secret_path = path(
        "VAULT_JWT_SECRET_PATH",
        get("VAULT_JWT_SECRET_PATH"),
        vault.jwt_secret_path,
    )?;
    vault.telegram_credentials_path = path(
        "VAULT_TELEGRAM_CREDENTIALS_PATH",
        get("VAULT_TELEGRAM_CREDENTIALS_PATH"),
        vault.telegram_credentials_path,
    )?;
    if let Some(v) = get("VAULT_JWT_SECRET_KEY") {
        vault.jwt_secret_key = v.to_string();
    }
    if let Some(v) = get("VAULT_ACCOUNT_SESSION_PATH") {
        vault.account_session_path = crate::vault::check_account_session_path(v)
            .map_err(|problem| bad("VAULT_ACCOUNT_SESSION_PATH", problem))?;
    }
    vault.timeout = std::time::Duration::from_secs(u64::from(parse_number(
        "VAULT_TIMEOUT_SECONDS",
        get("VAULT_TIMEOUT_SECONDS"),
        5,
        1,
        300,
    )?));
    Ok(Some(vault))
}

/// The Integration Service and the API Gateway, each when its URL is set.
fn parse_platform_services<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<(Option<IntegrationServiceConfig>, Option<GatewayConfig>), ConfigError> {
    let seconds = |var: &'static str, default: u32, max: u32| {
        parse_number(var, get(var), default, 1, max).map(|s| std::time::Duration::from_secs(u64::from(s)))
    };
    let integration = match get("INTEGRATION_SERVICE_URL") {
        None => None,
        Some(v) => {
            let accounts_path = get("INTEGRATION_ACCOUNTS_PATH")
                .unwrap_or("/api/v1/accounts")
                .to_owned();
            if !accounts_path.starts_with('/') {
                return Err(bad("INTEGRATION_ACCOUNTS_PATH", "must start with /"));
            }
            Some(IntegrationServiceConfig {
                base_url: base_url("INTEGRATION_SERVICE_URL", v)?,
                accounts_path,
                cache_ttl: seconds("INTEGRATION_ACCOUNTS_CACHE_SECONDS", 60, 3600)?,
                timeout: seconds("INTEGRATION_TIMEOUT_SECONDS", 10, 300)?,
                breaker_failures: parse_number(
                    "INTEGRATION_BREAKER_FAILURES",
                    get("INTEGRATION_BREAKER_FAILURES"),
                    5,
                    1,
                    1000,
                )?,
                breaker_cooldown: seconds("INTEGRATION_BREAKER_COOLDOWN_SECONDS", 30, 3600)?,
            })
        }
    };
    let gateway = match get("API_GATEWAY_URL") {
        None => None,
        Some(v) => Some(GatewayConfig {
            base_url: base_url("API_GATEWAY_URL", v)?,
            cache_ttl: seconds("API_GATEWAY_CACHE_SECONDS", 60, 3600)?,
            timeout: seconds("API_GATEWAY_TIMEOUT_SECONDS", 5, 300)?,
        }),
    };
    Ok((integration, gateway))
}

/// An http(s) URL ending with `/`, so that paths join below it rather than replace its last segment.
fn base_url(var: &'static str, v: &str) -> Result<Url, ConfigError> {
    let mut url = parse_url(var, v, &["http", "https"])?;
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn parse_addr(var: &'static str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse().map_err(|_| {
        bad(
            var,
            format!("must be an IP address and port such as 127.0.0.1:8000 (got {v:?})"),
        )
    })
}

fn parse_number(var: &'static str, v: Option<&str>, default: u32, min: u32, max: u32) -> Result<u32, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    match v.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad(
            var,
            format!("must be a whole number from {min} to {max} (got {v:?})"),
        )),
    }
}

fn parse_bool(var: &'static str, v: Option<&str>) -> Result<bool, ConfigError> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("0" | "false" | "no" | "off") => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some(other) => Err(bad(var, format!("must be true or false (got {other:?})"))),
    }
}

fn parse_url(var: &'static str, v: &str, schemes: &[&str]) -> Result<Url, ConfigError> {
    let url = Url::parse(v).map_err(|e| bad(var, format!("is not a valid URL ({e})")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(bad(
            var,
            format!("must use {} (got {}:)", schemes.join(" or "), url.scheme()),
        ));
    }
    Ok(url)
}

fn check_database_url(v: &str) -> Result<String, ConfigError> {
    let scheme = v.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(v.to_string()),
        "postgres" | "postgresql" => {
            parse_url("DATABASE_URL", v, &["postgres", "postgresql"])?;
            Ok(v.to_string())
        }
        _ => Err(bad(
            "DATABASE_URL",
            format!("must start with sqlite: or postgres:// (got {scheme:?})"),
        )),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("profile", &self.profile().as_str())
            .field("bind", &self.bind)
            .field("store", &self.database_shown())
            .field("redis_url", &self.redis_url.as_ref().map(ShownUrl))
            .field("broker_url", &self.broker_url.as_ref().map(ShownUrl))
            .field("parsing_service", &self.parsing_service)
            .field("integration_service", &self.integration_service)
            .field("api_gateway", &self.api_gateway)
            .field("vault", &self.vault)
            .finish_non_exhaustive()
    }
}

/// Debug-prints a URL as [`url_without_credentials`] shows it: for configuration structs whose derived
/// `Debug` would print a password written into the URL.
pub struct ShownUrl<'a>(pub &'a Url);

impl std::fmt::Debug for ShownUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&url_without_credentials(self.0.as_str()))
    }
}

/// A URL as a log may show it: no user, password, query or fragment (a PostgreSQL URL may carry
/// `?password=`), only where it leads. Text that is not a URL with a host is not shown at all.
pub fn url_without_credentials(v: &str) -> String {
    match Url::parse(v) {
        Ok(mut url) if !url.cannot_be_a_base() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        _ => "(not shown: not a URL with a host)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn error_of(pairs: &[(&str, &str)]) -> String {
        Config::from_vars(&vars(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn nothing_set_gives_the_standalone_profile() {
        let c = Config::from_vars(&HashMap::new()).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(c.database_url, "sqlite:./data/invite-service.db");
        assert!(c.jwt_secret.is_none());
        assert_eq!(c.jwt_user_claim, "user_id");
    }

    #[test]
    fn postgres_vault_or_the_integration_service_make_the_platform_profile() {
        let profile = |pairs: &[(&str, &str)]| Config::from_vars(&vars(pairs)).unwrap().profile();
        let key = "ab".repeat(32);
        let vault = [
            ("VAULT_ADDR", "http://vault:8200"),
            ("VAULT_ROLE_ID", "role"),
            ("VAULT_SECRET_ID", "secret"),
        ];
        assert_eq!(profile(&[]), Profile::Standalone);
        assert_eq!(profile(&[("REDIS_URL", "redis://r:6379")]), Profile::Standalone);
        assert_eq!(
            profile(&[
                ("DATABASE_URL", "postgres://u@h/db"),
                ("INVITE_JWT_SECRET", "0123456789abcdef-secret"),
                ("INVITE_DATA_KEY", &key)
            ]),
            Profile::Platform
        );
        assert_eq!(profile(&vault), Profile::Platform);
        assert_eq!(
            profile(&[("INTEGRATION_SERVICE_URL", "http://i:8002")]),
            Profile::Platform
        );
        assert_eq!(
            (Profile::Standalone.as_str(), Profile::Platform.as_str()),
            ("standalone", "platform")
        );
    }

    #[test]
    fn an_invalid_value_names_its_variable() {
        assert!(error_of(&[("INVITE_BIND", "localhost")]).starts_with("INVITE_BIND: "));
        assert!(error_of(&[("DATABASE_URL", "mysql://x")]).starts_with("DATABASE_URL: "));
        assert!(error_of(&[("INVITE_DB_MAX_CONNECTIONS", "0")]).starts_with("INVITE_DB_MAX_CONNECTIONS: "));
        assert!(error_of(&[("INVITE_JWT_SECRET", "short")]).starts_with("INVITE_JWT_SECRET: "));
        assert!(error_of(&[("DATABASE_URL", "postgres://u@h/db")]).starts_with("INVITE_JWT_SECRET: required"));
        assert!(error_of(&[("REDIS_URL", "http://x")]).starts_with("REDIS_URL: "));
        assert!(error_of(&[("INVITE_TRUST_FORWARDED_FOR", "maybe")]).starts_with("INVITE_TRUST_FORWARDED_FOR: "));
        assert!(error_of(&[("INVITE_LOG", "info,[")]).starts_with("INVITE_LOG: "));
        assert!(error_of(&[("VAULT_ROLE_ID", "r")]).starts_with("VAULT_ROLE_ID: "));
        assert_eq!(
            error_of(&[(
                "INVITE_POLICY",
                r#"{"telegram": {"invite": {"pause": ["15m", "10m"]}}}"#
            )]),
            "INVITE_POLICY: telegram.invite.pause: the low end 15m is above the high end 10m"
        );
        assert!(error_of(&[("INVITE_POLICY_FILE", "/nonexistent/policy.json")])
            .starts_with("INVITE_POLICY_FILE: cannot read"));
        assert!(error_of(&[("INVITE_DATA_KEY", "abc")]).starts_with("INVITE_DATA_KEY: "));
        assert!(error_of(&[("INVITE_TELEGRAM_API_ID", "5")]).starts_with("INVITE_TELEGRAM_API_HASH: "));
        assert!(error_of(&[("INVITE_LOG_RETENTION_DAYS", "0")]).starts_with("INVITE_LOG_RETENTION_DAYS: "));
        assert!(error_of(&[("INVITE_RETENTION_INTERVAL_HOURS", "x")]).starts_with("INVITE_RETENTION_INTERVAL_HOURS: "));
    }

    #[test]
    fn every_variable_read_is_documented_for_help() {
        let source = include_str!("config.rs");
        let read: std::collections::BTreeSet<&str> = source
            .split("get(\"")
            .skip(1)
            .filter_map(|rest| rest.split_once('"').map(|(name, _)| name))
            .filter(|name| name.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !name.is_empty())
            .collect();
        assert!(read.len() > 20, "{read:?}");
        for name in read {
            assert!(
                VARIABLES.iter().any(|v| v.name == name),
                "{name} is read but not in VARIABLES"
            );
        }
    }

    #[test]
    fn platform_services_are_read_with_their_defaults() {
        let c = Config::from_vars(&HashMap::new()).unwrap();
        assert!(c.integration_service.is_none() && c.api_gateway.is_none());
        assert_eq!(c.service_token_subject, "invite-service");
        let c = Config::from_vars(&vars(&[
            ("INTEGRATION_SERVICE_URL", "http://integration:8002/base"),
            ("API_GATEWAY_URL", "http://gateway:8000"),
            ("INVITE_SERVICE_TOKEN_SUBJECT", "svc-invite"),
        ]))
        .unwrap();
        let i = c.integration_service.unwrap();
        assert_eq!(i.base_url.as_str(), "http://integration:8002/base/");
        assert_eq!(i.accounts_path, "/api/v1/accounts");
        assert_eq!(i.cache_ttl, std::time::Duration::from_secs(60));
        assert_eq!((i.breaker_failures, i.breaker_cooldown.as_secs()), (5, 30));
        assert_eq!(c.api_gateway.unwrap().base_url.as_str(), "http://gateway:8000/");
        assert_eq!(c.service_token_subject, "svc-invite");
        assert!(error_of(&[("INTEGRATION_SERVICE_URL", "ftp://x")]).starts_with("INTEGRATION_SERVICE_URL: "));
        assert!(error_of(&[
            ("INTEGRATION_SERVICE_URL", "http://x"),
            ("INTEGRATION_BREAKER_FAILURES", "0")
        ])
        .starts_with("INTEGRATION_BREAKER_FAILURES: "));
        assert!(
            error_of(&[("API_GATEWAY_URL", "http://x"), ("API_GATEWAY_CACHE_SECONDS", "x")])
                .starts_with("API_GATEWAY_CACHE_SECONDS: ")
        );
    }

    #[test]
    fn integration_accounts_go_to_the_sandbox_only_when_asked_and_with_the_integration_service() {
        let c = Config::from_vars(&vars(&[("INTEGRATION_SERVICE_URL", "http://i:8002")])).unwrap();
        assert!(!c.integration_accounts_sandbox, "off by default");
        let c = Config::from_vars(&vars(&[
            ("INTEGRATION_SERVICE_URL", "http://i:8002"),
            ("INTEGRATION_ACCOUNTS_SANDBOX", "true"),
        ]))
        .unwrap();
        assert!(c.integration_accounts_sandbox);
        assert!(error_of(&[("INTEGRATION_ACCOUNTS_SANDBOX", "true")])
            .starts_with("INTEGRATION_ACCOUNTS_SANDBOX: is true but INTEGRATION_SERVICE_URL is not set"));
        assert!(error_of(&[
            ("INTEGRATION_SERVICE_URL", "http://i:8002"),
            ("INTEGRATION_ACCOUNTS_SANDBOX", "maybe")
        ])
        .starts_with("INTEGRATION_ACCOUNTS_SANDBOX: must be true or false"));
    }

    #[test]
    fn a_sandbox_world_that_cannot_be_is_refused_by_name() {
        assert!(error_of(&[("INVITE_SANDBOX_WORLD", r#"{"people": {"bot": 2}}"#)])
            .starts_with("INVITE_SANDBOX_WORLD: people.bot must be between 0 and 1"));
        assert!(
            error_of(&[("INVITE_SANDBOX_WORLD", r#"{"seeds": 1}"#)]).starts_with("INVITE_SANDBOX_WORLD: unknown field")
        );
    }

    #[test]
    fn secrets_never_reach_error_text_or_logs() {
        let err = error_of(&[("DATABASE_URL", "postgres://u:hunter2@h/db"), ("INVITE_BIND", "x")]);
        assert!(!err.contains("hunter2"));
        assert_eq!(
            url_without_credentials("postgres://u:hunter2@h:5432/db?sslmode=require&password=hunter2"),
            "postgres://h:5432/db"
        );
        assert_eq!(url_without_credentials("redis://:hunter2@h:6379/0"), "redis://h:6379/0");
        assert_eq!(
            url_without_credentials("amqp://u:hunter2@h:5672/%2f"),
            "amqp://h:5672/%2f"
        );
        assert_eq!(url_without_credentials("http://h:8200/base/"), "http://h:8200/base/");
        assert_eq!(
            url_without_credentials("u:hunter2@h"),
            "(not shown: not a URL with a host)"
        );
        let c = Config::from_vars(&vars(&[("INVITE_JWT_SECRET", "0123456789abcdef-secret")])).unwrap();
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
        let c = Config::from_vars(&vars(&[
            ("VAULT_ADDR", "http://vault:8200"),
            ("VAULT_ROLE_ID", "role"),
            ("VAULT_SECRET_ID", "vault-secret-id-value"),
        ]))
        .unwrap();
        assert!(!format!("{c:?}").contains("vault-secret-id-value"));
        // A password written into any URL stays out of the configuration's Debug.
        let c = Config::from_vars(&vars(&[
            (
                "DATABASE_URL",
                "postgres://u:pw-database@db:5432/invites?password=pw-query",
            ),
            ("REDIS_URL", "redis://:pw-redis@redis:6379/0"),
            ("CELERY_BROKER_URL", "amqp://u:pw-broker@rabbit:5672/%2f"),
            ("PARSING_SERVICE_URL", "http://u:pw-parsing@parsing:8000"),
            ("INTEGRATION_SERVICE_URL", "http://u:pw-integration@integration:8000"),
            ("API_GATEWAY_URL", "http://u:pw-gateway@gateway:8000"),
            ("VAULT_ADDR", "http://u:pw-vault@vault:8200"),
            ("VAULT_ROLE_ID", "role"),
            ("VAULT_SECRET_ID", "vault-secret-id-value"),
            (
                "INVITE_DATA_KEY",
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            ),
        ]))
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("pw-"), "{shown}");
        for host in [
            "db:5432",
            "redis:6379",
            "rabbit:5672",
            "parsing:8000",
            "integration:8000",
            "gateway:8000",
            "vault:8200",
        ] {
            assert!(shown.contains(host), "{host} is named: {shown}");
        }
    }

    #[test]
    fn vault_defaults_to_the_specs_paths_and_expresses_the_running_platforms() {
        let base = [
            ("VAULT_ADDR", "https://vault.internal:8200"),
            ("VAULT_ROLE_ID", "role"),
            ("VAULT_SECRET_ID", "secret"),
        ];
        let v = Config::from_vars(&vars(&base)).unwrap().vault.unwrap();
        assert_eq!(v.addr.as_str(), "https://vault.internal:8200/");
        assert_eq!(v.secret_id.expose(), "secret");
        assert_eq!(
            (
                v.kv_mount.as_str(),
                v.jwt_secret_path.as_str(),
                v.jwt_secret_key.as_str()
            ),
            ("secret", "invite-service/jwt_secret", "secret_key")
        );
        assert_eq!(v.telegram_credentials_path, "telegram/api_credentials");
        assert_eq!(v.account_session_path, "invite-service/accounts/{account_id}");
        assert_eq!(v.timeout, std::time::Duration::from_secs(5));

        let platform = [
            ("VAULT_KV_MOUNT", "kv"),
            ("VAULT_JWT_SECRET_PATH", "/jwt/"),
            ("VAULT_JWT_SECRET_KEY", "secret_key"),
            ("VAULT_ACCOUNT_SESSION_PATH", "telegram/sessions/{account_id}"),
            ("VAULT_TIMEOUT_SECONDS", "2"),
        ];
        let v = Config::from_vars(&vars(&[&base[..], &platform[..]].concat()))
            .unwrap()
            .vault
            .unwrap();
        assert_eq!((v.kv_mount.as_str(), v.jwt_secret_path.as_str()), ("kv", "jwt"));
        assert_eq!(v.account_session_path, "telegram/sessions/{account_id}");
        assert_eq!(v.timeout, std::time::Duration::from_secs(2));

        let postgres = Config::from_vars(&vars(
            &[
                &base[..],
                &[
                    ("DATABASE_URL", "postgres://u@h/db"),
                    ("INVITE_DATA_KEY", &"ab".repeat(32)),
                ],
            ]
            .concat(),
        ));
        assert!(
            postgres.unwrap().jwt_secret.is_none(),
            "the JWT secret comes from Vault"
        );
    }

    #[test]
    fn a_vault_setting_that_cannot_work_is_refused_by_name() {
        let with = |extra: &[(&str, &str)]| {
            let base = [
                ("VAULT_ADDR", "http://vault:8200"),
                ("VAULT_ROLE_ID", "role"),
                ("VAULT_SECRET_ID", "s3cr3t-id"),
            ];
            error_of(&[&base[..], extra].concat())
        };
        assert!(error_of(&[("VAULT_ADDR", "vault:8200")]).starts_with("VAULT_ADDR: "));
        assert!(error_of(&[("VAULT_ADDR", "ftp://vault")]).starts_with("VAULT_ADDR: must use http or https"));
        assert_eq!(
            error_of(&[("VAULT_ADDR", "http://vault:8200"), ("VAULT_SECRET_ID", "s")]),
            "VAULT_ROLE_ID: is required with VAULT_ADDR"
        );
        assert_eq!(
            error_of(&[("VAULT_ADDR", "http://vault:8200"), ("VAULT_ROLE_ID", "r")]),
            "VAULT_SECRET_ID: is required with VAULT_ADDR"
        );
        assert_eq!(
            error_of(&[("VAULT_SECRET_ID", "s3cr3t-id")]),
            "VAULT_SECRET_ID: is set but VAULT_ADDR is not"
        );
        assert_eq!(
            error_of(&[("VAULT_KV_MOUNT", "kv")]),
            "VAULT_KV_MOUNT: is set but VAULT_ADDR is not"
        );
        assert!(with(&[("VAULT_KV_MOUNT", "kv/../sys")]).starts_with("VAULT_KV_MOUNT: must be a Vault path"));
        assert!(with(&[("VAULT_JWT_SECRET_PATH", "a b")]).starts_with("VAULT_JWT_SECRET_PATH: "));
        assert!(with(&[("VAULT_TELEGRAM_CREDENTIALS_PATH", "x?y")]).starts_with("VAULT_TELEGRAM_CREDENTIALS_PATH: "));
        assert!(with(&[("VAULT_ACCOUNT_SESSION_PATH", "accounts/one")])
            .starts_with("VAULT_ACCOUNT_SESSION_PATH: must contain {account_id}"));
        assert!(with(&[("VAULT_TIMEOUT_SECONDS", "0")]).starts_with("VAULT_TIMEOUT_SECONDS: "));
        for err in [
            with(&[("VAULT_TIMEOUT_SECONDS", "0")]),
            with(&[("VAULT_KV_MOUNT", "..")]),
        ] {
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(!err.contains("s3cr3t-id"), "{err}");
        }
    }
}
