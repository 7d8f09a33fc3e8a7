//! Grant/release throughput of the Account Manager, on each store, with durability on.
//!
//! One pair is `check_rate_limit` answering `Granted` followed by
//! `release_account(None, Some(&grant), Outcome::Success)`. The policy is `Policy::default()` with
//! the `invite` action opened up (no pause, 1,000,000 per 24 h per account and per channel, no lifetime
//! cap) so that every check is granted: what is measured is the machinery — locking the account,
//! reading its ledger, writing the grant, writing the release — not the limits.
//!
//! For each backend (a fresh SQLite file in the temp directory; a fresh PostgreSQL database, dropped at
//! the end) and each number of concurrent workers, 64 fresh accounts are created and the workers loop
//! over their own share of them, alternating two channels, for 1 s of warm-up and then 5 s of
//! measurement. Every pair ever made (warm-up included) must show in the ledger: the bench panics
//! when the consumed grants `am_usage` counts differ from the pairs made, or when a grant is left
//! unreleased.
//!
//! Run: `cargo bench -p account-manager --bench grants`. PostgreSQL is reached at `TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`), as in the integration tests.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration as StdDuration, Instant},
};

use account_manager::{policy::Window, AccountManager, Policy, RateLimit};
use chrono::Duration;
use clock::{Clock, SharedClock, SystemClock};
use domain::{
    outcome::{AmAction, Outcome},
    UserId,
};
use store::{AccountKind, NewAccount, RequestMeta, SharedStore, StoreOptions};

const ACCOUNTS: usize = 64;
const WORKERS: [usize; 2] = [1, 8];
const WARM_UP: StdDuration = StdDuration::from_secs(1);
const MEASURE: StdDuration = StdDuration::from_secs(5);
const CHANNELS: [&str; 2] = ["@bench_channel_a", "@bench_channel_b"];
const TARGET_PG_PAIRS_PER_SECOND: f64 = 1_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Removes the SQLite files or drops the PostgreSQL database, also when the bench panics.
enum Cleanup {
    Files(PathBuf),
    Database(String),
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Files(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            Cleanup::Database(name) => {
                let name = name.clone();
                // Its own thread and runtime: this may run inside (or while unwinding out of) the bench's.
                let dropped = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime to drop the database");
                    rt.block_on(async {
                        use sqlx::{Connection, Executor};
                        let mut c = sqlx::PgConnection::connect(&admin_url()).await?;
                        c.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                            .await?;
                        Ok::<_, sqlx::Error>(name)
                    })
                })
                .join();
                match dropped {
                    Ok(Ok(name)) => eprintln!("dropped database {name}"),
                    Ok(Err(e)) => eprintln!("could not drop the bench database: {e}"),
                    Err(_) => eprintln!("could not drop the bench database: the dropping thread panicked"),
                }
            }
        }
    }
}

struct Db {
    backend: Backend,
    store: SharedStore,
    url: String,
    /// What makes a commit durable here.
    durability: String,
    // Last: dropped after the store.
    _cleanup: Cleanup,
}

async fn open(backend: Backend) -> Db {
    let unique = format!("am_bench_{}", uuid::Uuid::new_v4().simple());
    let (url, cleanup) = match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{unique}.db"));
            (format!("sqlite:{}", path.display()), Cleanup::Files(path))
        }
        Backend::Postgres => {
            use sqlx::{Connection, Executor};
            let mut c = sqlx::PgConnection::connect(&admin_url())
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL is required at {}: {e}", admin_url()));
            c.execute(format!("CREATE DATABASE \"{unique}\"").as_str())
                .await
                .expect("create the bench database");
            let mut url = url::Url::parse(&admin_url()).expect("TEST_DATABASE_URL is a URL");
            url.set_path(&unique);
            (url.to_string(), Cleanup::Database(unique))
        }
    };
    // The store's defaults: SQLite in WAL with synchronous=FULL, PostgreSQL with the server's
    // synchronous_commit (on by default).
    let store = store::open(&url, &StoreOptions::default())
        .await
        .expect("open the store");
    store.migrate().await.expect("migrate the store");
    let durability = match backend {
        Backend::Sqlite => "journal_mode=WAL, synchronous=FULL (the store's settings)".to_string(),
        Backend::Postgres => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await.expect("connect to PostgreSQL");
            let mut settings = Vec::new();
            for name in ["synchronous_commit", "fsync", "wal_sync_method", "commit_delay"] {
                let value: String = sqlx::query_scalar("SELECT current_setting($1)")
                    .bind(name)
                    .fetch_one(&mut c)
                    .await
                    .expect("read a server setting");
                settings.push(format!("{name}={value}"));
            }
            settings.join(", ")
        }
    };
    Db {
        backend,
        store,
        url,
        durability,
        _cleanup: cleanup,
    }
}

/// `Policy::default()` with invites opened up, so every check is granted.
fn bench_policy() -> Policy {
    let mut policy = Policy::default();
    let day = Duration::hours(24);
    let invite = policy
        .actions
        .get_mut(&AmAction::Invite)
        .expect("the default policy has invites");
    invite.pause = (Duration::zero(), Duration::zero());
    invite.per_account = vec![Window {
        cap: 1_000_000,
        period: day,
    }];
    invite.per_channel = vec![Window {
        cap: 1_000_000,
        period: day,
    }];
    invite.lifetime_per_channel = None;
    policy
}

async fn create_accounts(store: &SharedStore, prefix: &str) -> Vec<String> {
    let meta = RequestMeta {
        request_id: "bench".into(),
        client_addr: None,
    };
    let user = UserId::new(1).expect("a valid user id");
    let mut ids = Vec::with_capacity(ACCOUNTS);
    for i in 0..ACCOUNTS {
        let id = format!("{prefix}-{i:02}");
        let account = NewAccount {
            id: id.clone(),
            platform: "telegram".into(),
            name: id.clone(),
            kind: AccountKind::Sandbox,
            session_sealed: None,
            api_id: None,
            api_hash_sealed: None,
            session_facts: serde_json::json!({}),
        };
        store
            .create_account(user, &account, SystemClock.now(), &meta)
            .await
            .expect("create a bench account");
        ids.push(id);
    }
    ids
}

#[derive(Default)]
struct WorkerStats {
    /// Pairs per account of this worker, warm-up included.
    made: Vec<(String, u64)>,
    /// Latencies of the pairs that completed inside the measured window.
    latencies: Vec<StdDuration>,
    grant_time: StdDuration,
    release_time: StdDuration,
}

async fn worker(am: Arc<AccountManager>, mine: Vec<String>, warm_end: Instant, end: Instant) -> WorkerStats {
    let mut made = vec![0u64; mine.len()];
    let mut stats = WorkerStats::default();
    let mut n = 0usize;
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let (slot, round) = (n % mine.len(), n / mine.len());
        // Each pass over the share switches channel, so every account uses both.
        let channel = CHANNELS[round % 2];
        let grant = match am.check_rate_limit(&mine[slot], AmAction::Invite, Some(channel)).await {
            RateLimit::Granted(g) => g,
            other => panic!("{} in {channel} was not granted: {other:?}", mine[slot]),
        };
        let t1 = Instant::now();
        am.release_account(None, Some(&grant), Outcome::Success)
            .await
            .unwrap_or_else(|e| panic!("release of grant {} failed: {e}", grant.id));
        let t2 = Instant::now();
        made[slot] += 1;
        n += 1;
        if t2 >= warm_end && t2 < end {
            stats.latencies.push(t2 - t0);
            stats.grant_time += t1 - t0;
            stats.release_time += t2 - t1;
        }
    }
    stats.made = mine.into_iter().zip(made).collect();
    stats
}

struct RunResult {
    backend: Backend,
    workers: usize,
    pairs: usize,
    seconds: f64,
    p50: StdDuration,
    p99: StdDuration,
    mean_grant: StdDuration,
    mean_release: StdDuration,
    ledger_per_account: u64,
}

impl RunResult {
    fn rate(&self) -> f64 {
        self.pairs as f64 / self.seconds
    }
}

fn percentile(sorted: &[StdDuration], p: f64) -> StdDuration {
    if sorted.is_empty() {
        return StdDuration::ZERO;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Grants of these accounts that were never released, read directly from the database.
async fn unreleased(db: &Db, prefix: &str) -> i64 {
    use sqlx::Connection;
    let sql = match db.backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM am_grants WHERE account_id LIKE ? AND released_at IS NULL",
        Backend::Postgres => "SELECT COUNT(*) FROM am_grants WHERE account_id LIKE $1 AND released_at IS NULL",
    };
    let pattern = format!("{prefix}-%");
    match db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url)
                .await
                .expect("connect to SQLite");
            sqlx::query_scalar(sql).bind(pattern).fetch_one(&mut c).await
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query_scalar(sql).bind(pattern).fetch_one(&mut c).await
        }
    }
    .expect("count unreleased grants")
}

async fn run(db: &Db, workers: usize) -> RunResult {
    let prefix = format!("bench-{}-w{workers}", db.backend.name());
    let accounts = create_accounts(&db.store, &prefix).await;
    let clock: SharedClock = Arc::new(SystemClock);
    let am = AccountManager::new(db.store.clone(), clock, bench_policy(), Some(workers as u64));

    let start = Instant::now();
    let warm_end = start + WARM_UP;
    let end = warm_end + MEASURE;
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let mine: Vec<String> = accounts.iter().skip(w).step_by(workers).cloned().collect();
            tokio::spawn(worker(am.clone(), mine, warm_end, end))
        })
        .collect();
    let mut all = Vec::with_capacity(workers);
    for h in handles {
        all.push(h.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
    }

    // Every pair made must be a consumed grant in the ledger, account by account.
    let mut total_made = 0u64;
    let mut total_ledger = 0u64;
    for (account, made) in all.iter().flat_map(|s| s.made.iter()) {
        let usage = db.store.am_usage(account, None).await.expect("read the ledger");
        let in_ledger: u64 = usage
            .iter()
            .filter(|u| u.action == AmAction::Invite.as_str())
            .map(|u| u.count as u64)
            .sum();
        assert_eq!(
            in_ledger,
            *made,
            "{}: the ledger of {account} holds {in_ledger} consumed grants for {made} pairs",
            db.backend.name()
        );
        total_made += made;
        total_ledger += in_ledger;
    }
    assert_eq!(
        total_ledger,
        total_made,
        "{} W={workers}: the ledger holds {total_ledger} consumed grants for {total_made} pairs",
        db.backend.name()
    );
    let open_grants = unreleased(db, &prefix).await;
    assert_eq!(
        open_grants,
        0,
        "{} W={workers}: {open_grants} grants were never released",
        db.backend.name()
    );

    let mut latencies: Vec<StdDuration> = all.iter().flat_map(|s| s.latencies.iter().copied()).collect();
    latencies.sort_unstable();
    let pairs = latencies.len();
    let per_pair = |total: StdDuration| total.checked_div(pairs.max(1) as u32).unwrap_or_default();
    RunResult {
        backend: db.backend,
        workers,
        pairs,
        seconds: MEASURE.as_secs_f64(),
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        mean_grant: per_pair(all.iter().map(|s| s.grant_time).sum()),
        mean_release: per_pair(all.iter().map(|s| s.release_time).sum()),
        ledger_per_account: total_made / ACCOUNTS as u64,
    }
}

fn ms(d: StdDuration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a multi-thread runtime");
    let (results, durability) = rt.block_on(async {
        let mut results = Vec::new();
        let mut durability = Vec::new();
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let db = open(backend).await;
            durability.push(format!("{}: {}", backend.name(), db.durability));
            for workers in WORKERS {
                let r = run(&db, workers).await;
                eprintln!(
                    "{} W={}: {} pairs in {:.1} s (ledger check passed)",
                    backend.name(),
                    workers,
                    r.pairs,
                    r.seconds
                );
                results.push(r);
            }
        }
        (results, durability)
    });

    println!();
    println!(
        "Account Manager grant/release pairs (check_rate_limit → Granted, then release_account(Success)); \
         durability on ({}); system clock; {ACCOUNTS} fresh accounts per run, two channels; {} s warm-up, {} s measured; \
         {} tokio worker threads.",
        durability.join("; "),
        WARM_UP.as_secs(),
        MEASURE.as_secs(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    println!(
        "Policy: Policy::default() with invite pause (0 s, 0 s), 1,000,000 per 24 h per account and per channel, \
         no lifetime cap — every check is granted, so this measures the machinery (locking the account, reading \
         the ledger, writing the grant, writing the release), not the limits."
    );
    println!();
    println!("| backend | workers | pairs | seconds | pairs/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &results {
        println!(
            "| {} | {} | {} | {:.1} | {:.0} | {:.2} | {:.2} |",
            r.backend.name(),
            r.workers,
            r.pairs,
            r.seconds,
            r.rate(),
            ms(r.p50),
            ms(r.p99)
        );
    }
    println!();
    for r in &results {
        println!(
            "{} W={}: mean check_rate_limit {:.2} ms + release_account {:.2} ms per pair; ledger at the end: {} \
             consumed grants per account, all counted by am_usage",
            r.backend.name(),
            r.workers,
            ms(r.mean_grant),
            ms(r.mean_release),
            r.ledger_per_account
        );
    }
    println!();
    let pg: Vec<&RunResult> = results.iter().filter(|r| r.backend == Backend::Postgres).collect();
    let best = pg
        .iter()
        .max_by(|a, b| a.rate().total_cmp(&b.rate()))
        .expect("a PostgreSQL run");
    let all_runs = pg
        .iter()
        .map(|r| format!("W={}: {:.0}", r.workers, r.rate()))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "Verdict: target ≥ 1,000 pairs/s on PostgreSQL {} — best {:.0} pairs/s at W={} ({all_runs} pairs/s).",
        if best.rate() >= TARGET_PG_PAIRS_PER_SECOND {
            "MET"
        } else {
            "MISSED"
        },
        best.rate(),
        best.workers
    );
}
