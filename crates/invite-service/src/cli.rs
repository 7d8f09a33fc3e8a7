//! The command line: `serve` (default), `api`, `worker`, `migrate`, `token`, `sandbox audit`,
//! `simulate`.

use std::{process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand};
use clock::{SharedClock, SystemClock};
use domain::UserId;

use crate::{
    api::auth::Authenticator,
    app::{self, Schema},
    config::{Config, ConfigError, VARIABLES},
    telemetry,
};

fn environment_help() -> String {
    let width = VARIABLES.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut out = String::from("Environment variables (an invalid value stops start-up with one line naming it):\n");
    for v in VARIABLES {
        out.push_str(&format!(
            "  {:width$}  {}\n  {:width$}  default: {}\n",
            v.name, v.about, "", v.default
        ));
    }
    out
}

#[derive(Parser)]
#[command(
    name = "invite-service",
    version,
    about = "Invite and direct-message campaigns over users' own messenger accounts, within every platform limit.",
    after_help = environment_help()
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one process (the default): migrates the database, then serves the API.
    Serve,
    /// The HTTP API alone; refuses to start on a database that `migrate` has not brought up to date.
    Api,
    /// The engine alone (platform): the scheduler, while this process leads, and workers taking jobs
    /// from the queues; refuses to start on a database that `migrate` has not brought up to date.
    Worker,
    /// Applies the embedded database migrations and exits.
    Migrate,
    /// Prints a JWT for a user, signed with the configured secret, to try the API with.
    Token {
        /// The user the token speaks for (a positive integer).
        #[arg(long)]
        user_id: i64,
        /// How long the token is valid, e.g. 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: chrono::Duration,
    },
    /// The sandbox world, a simulated Telegram shared through the database.
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// Days of campaigns in seconds: the real scheduler, Account Manager, store (SQLite) and Telegram
    /// adapter against the sandbox world on a virtual clock, under the configured policy
    /// (INVITE_POLICY / INVITE_POLICY_FILE). Prints the invites made, the most the policy allows
    /// (with its formula), the utilisation, and the audit of the world's record. Exits 1 when it finds
    /// a violation, a duplicate or a lost target.
    Simulate(SimulateArgs),
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// Sandbox accounts, all the same user's.
    #[arg(long, default_value_t = 20)]
    accounts: usize,
    /// Channels invited to (supergroups unless --broadcast).
    #[arg(long, default_value_t = 4)]
    channels: usize,
    /// Invite tasks, spread over the channels round-robin.
    #[arg(long, default_value_t = 8)]
    tasks: usize,
    /// Targets (usernames), spread over the tasks.
    #[arg(long, default_value_t = 5000)]
    targets: usize,
    /// Simulated days.
    #[arg(long, default_value_t = 3.0)]
    days: f64,
    /// Seeds the world's people and the Account Manager's pauses.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Make every other channel a broadcast channel (admins may add only its first 200 subscribers;
    /// the maximum accounts for it).
    #[arg(long)]
    broadcast: bool,
    /// Who the targets are: `accepting` (everyone exists and accepts) or `mixed` (the sandbox's mix of
    /// unknown usernames, privacy settings, bots…).
    #[arg(long, value_enum, default_value = "accepting")]
    audience: crate::sim::Audience,
    /// Keep the simulation's SQLite database in this file (default: a temporary one in memory).
    #[arg(long)]
    db: Option<std::path::PathBuf>,
    /// Log to stderr with this filter, e.g. `warn` or `invite_service=info` (default: no log), each
    /// line stamped with the virtual time.
    #[arg(long)]
    log: Option<String>,
    /// Print one JSON object (`actions`, `theoretical_max`, `utilization`, `violations`, `duplicates`,
    /// `lost`, `wall_seconds`, `observed`, and more).
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum SandboxCommand {
    /// Audits the world's record against the configured policy: duplicate deliveries, limits and
    /// pauses exceeded, the shortest gap between two invites of one account. Exits 1 when it finds a
    /// duplicate or a violation.
    Audit {
        /// Print the audit as JSON (`calls`, `deliveries`, `duplicates`, `violations`,
        /// `min_seconds_between_invites_of_an_account`, and the lists behind them).
        #[arg(long)]
        json: bool,
    },
}

fn parse_ttl(v: &str) -> Result<chrono::Duration, String> {
    let d = humantime::parse_duration(v).map_err(|e| format!("{e} (examples: 30m, 1h, 7d)"))?;
    let d = chrono::Duration::from_std(d).map_err(|_| "too long".to_string())?;
    if d < chrono::Duration::seconds(1) || d > chrono::Duration::days(366) {
        return Err("must be between 1s and 366d".into());
    }
    Ok(d)
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_process_env() {
        Ok(c) => c,
        Err(ConfigError { var, problem }) => {
            eprintln!("error: {var}: {problem}");
            return ExitCode::from(2);
        }
    };
    let clock: SharedClock = Arc::new(SystemClock);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => server(&config, clock, Schema::Migrate, app::Roles::ApiAndEngine).await,
        Command::Api => server(&config, clock, Schema::RequireCurrent, app::Roles::ApiOnly).await,
        Command::Worker => server(&config, clock, Schema::RequireCurrent, app::Roles::EngineOnly).await,
        Command::Migrate => migrate(&config, clock).await,
        Command::Token { user_id, ttl } => token(&config, clock, user_id, ttl),
        Command::Sandbox {
            command: SandboxCommand::Audit { json },
        } => return sandbox_audit(&config, json).await,
        Command::Simulate(args) => return simulate(&config, args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "stopped");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn server(config: &Config, clock: SharedClock, schema: Schema, roles: app::Roles) -> anyhow::Result<()> {
    telemetry::init_logging(&config.log_filter, clock.clone());
    tracing::info!(database = %config.database_shown(), "starting");
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let starting = async {
        let store = app::open_store(config).await?;
        app::prepare_schema(&store, schema).await?;
        app::start(config, store, clock, roles).await
    };
    let running = tokio::select! {
        running = starting => running?,
        _ = &mut stop => {
            tracing::info!("stopped while starting");
            return Ok(());
        }
    };
    stop.await;
    tracing::info!("shutting down: finishing requests in flight");
    running.shutdown();
    running.wait().await
}

/// Prints the audit of the sandbox world's record; the exit code says whether it is clean.
async fn sandbox_audit(config: &Config, json: bool) -> ExitCode {
    let audited = async {
        let store = app::open_store(config).await?;
        app::prepare_schema(&store, Schema::RequireCurrent).await?;
        let (calls, deliveries) = store.world_record().await?;
        anyhow::Ok(platforms::sandbox::audit::audit(&calls, &deliveries, &config.policy))
    };
    let report = match audited.await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report).expect("an audit is JSON"));
    } else {
        print!("{}", report.to_text());
    }
    if report.duplicates + report.violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the simulator and prints its report; the exit code says whether the run was clean.
async fn simulate(config: &Config, args: SimulateArgs) -> ExitCode {
    let options = crate::sim::SimOptions {
        accounts: args.accounts,
        channels: args.channels,
        tasks: args.tasks,
        targets: args.targets,
        days: args.days,
        seed: args.seed,
        broadcast: args.broadcast,
        audience: args.audience,
        db: args.db,
        log: args.log,
    };
    let policy = config.policy.clone();
    let run = tokio::task::spawn_blocking(move || crate::sim::simulate_on_one_cpu(options, policy)).await;
    let report = match run.map_err(anyhow::Error::from).and_then(|r| r) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("a report is JSON"));
    } else {
        print!("{}", report.to_text());
    }
    if report.violations + report.duplicates == 0 && report.lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn migrate(config: &Config, clock: SharedClock) -> anyhow::Result<()> {
    telemetry::init_logging(&config.log_filter, clock);
    let store = app::open_store(config).await?;
    app::prepare_schema(&store, Schema::Migrate).await
}

fn token(config: &Config, clock: SharedClock, user_id: i64, ttl: chrono::Duration) -> anyhow::Result<()> {
    let user = UserId::new(user_id).ok_or_else(|| anyhow::anyhow!("--user-id must be a positive integer"))?;
    // No logger here: stdout carries the token alone. Where the secret lives goes to stderr.
    let secret = app::jwt_secret(config, |path, generated| {
        if generated {
            eprintln!("generated a JWT secret into {}", path.display());
        }
    })?;
    let auth = Authenticator::new(&secret, config.jwt_user_claim.clone(), clock);
    println!("{}", auth.issue(user, ttl));
    Ok(())
}

/// A future that ends at SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this is called,
/// not when it is first awaited: a signal that arrives while the service is still starting waits here
/// instead of killing the process mid-start.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let streams = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
        async move {
            match streams {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
