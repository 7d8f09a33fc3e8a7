//! End-to-end import benchmark: a realistic CSV read, prepared and stored exactly as `POST /import/file`
//! does it (`read_stream` → `DraftStream` a chunk at a time → `Store::begin_import` sink), on SQLite and
//! PostgreSQL. "read s" is finding the format and the layout; "prepare s" reading and validating the
//! rows; "store s" writing them and committing.
//!
//! `cargo bench -p invite-service --bench import` runs the driver: it re-executes this binary once per
//! case (`--case ROWS BACKEND`) so that each case's peak memory (VmHWM) is its own, prints one JSON line
//! per case and then a markdown table, and exits non-zero if any case failed. Arguments after `--` pick
//! sizes and backends (`cargo bench -p invite-service --bench import -- 100000 sqlite`).
//!
//! Each case's JSON line also carries, per phase, the heap the program held (counted by a wrapper around
//! the system allocator) beside the resident set, so that memory growth can be pinned to a phase.
//! `IMPORT_BENCH_LOG=sqlx=debug` logs every SQL statement with its time to stderr.
//!
//! PostgreSQL: a fresh database is created next to `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and dropped at the end.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    io::Write as _,
    process::{Command, ExitCode, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::Instant,
};

use anyhow::{anyhow, bail, ensure, Context as _};
use chrono::Utc;
use domain::{audience::TargetSource, phone::Region, task_input::parse_new_task, UserId};
use invite_service::importer::{
    read::{read_stream, ReadOptions},
    DraftStream, CHUNK_ROWS,
};
use serde_json::{json, Value};
use store::{
    ImportOutcome, ImportRequest, ImportStart, PageRequest, RequestMeta, SharedStore, StoreOptions, TargetQuery,
};

const SIZES: [usize; 2] = [1_000, 100_000];
const BACKENDS: [&str; 2] = ["sqlite", "postgres"];
const MAX_TARGETS: usize = 200_000;
const MIB: f64 = 1024.0 * 1024.0;

/// The system allocator, counting the bytes the program holds, so that each phase's own heap use can be
/// told apart from what the allocator keeps in its arenas (which VmHWM also counts).
struct CountingAlloc;

static HEAP_LIVE: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = HEAP_LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    HEAP_PEAK.fetch_max(live, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        HEAP_LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            HEAP_LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Memory at the end of a phase: the heap the program holds, the most it held during the phase, and the
/// process's resident set (now and its high-water mark).
fn phase_memory() -> anyhow::Result<Value> {
    let status = proc_status()?;
    let value = json!({
        "heap_live_bytes": HEAP_LIVE.load(Ordering::Relaxed),
        "heap_peak_bytes": HEAP_PEAK.swap(HEAP_LIVE.load(Ordering::Relaxed), Ordering::Relaxed),
        "rss_bytes": status_kb(&status, "VmRSS:")?,
        "hwm_bytes": status_kb(&status, "VmHWM:")?,
    });
    Ok(value)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(pos) = args.iter().position(|a| a == "--case") {
        return child(&args[pos + 1..]);
    }
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    driver(&filters)
}

/// Whether the arguments after `--` select a case: sizes and backends named (none named = all).
fn selected(filters: &[&str], rows: usize, backend: &str) -> bool {
    let (sizes, backends): (Vec<&str>, Vec<&str>) = filters.iter().partition(|f| f.parse::<usize>().is_ok());
    (sizes.is_empty() || sizes.iter().any(|s| s.parse() == Ok(rows)))
        && (backends.is_empty() || backends.contains(&backend))
}

// ---------------------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------------------

fn driver(filters: &[&str]) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("import bench: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut results: Vec<Value> = Vec::new();
    let mut failed = 0;
    for rows in SIZES {
        for backend in BACKENDS {
            if !selected(filters, rows, backend) {
                continue;
            }
            let output = Command::new(&exe)
                .args(["--case", &rows.to_string(), backend])
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output();
            let outcome = output.map_err(|e| e.to_string()).and_then(|out| {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{'));
                match (out.status.success(), line) {
                    (true, Some(line)) => serde_json::from_str::<Value>(line).map_err(|e| format!("bad output: {e}")),
                    (true, None) => Err("no result line".into()),
                    (false, _) => Err(format!("{}", out.status)),
                }
            });
            match outcome {
                Ok(result) => {
                    println!("{result}");
                    results.push(result);
                }
                Err(e) => {
                    println!("{}", json!({"rows": rows, "backend": backend, "failed": e}));
                    failed += 1;
                }
            }
        }
    }
    print_table(&results);
    if failed > 0 {
        eprintln!("import bench: {failed} case(s) failed");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_table(results: &[Value]) {
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!();
    println!(
        "| rows | backend | file MB | read s | prepare s | store s | total s | rows/s | peak RSS MB | RSS growth MB |"
    );
    println!(
        "|-----:|---------|--------:|-------:|----------:|--------:|--------:|-------:|------------:|--------------:|"
    );
    for r in results {
        println!(
            "| {} | {} | {:.2} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} | {:.1} | {:.1} |",
            r["rows"],
            r["backend"].as_str().unwrap_or("?"),
            f(r, "file_bytes") / MIB,
            f(r, "read_s"),
            f(r, "prepare_s"),
            f(r, "store_s"),
            f(r, "total_s"),
            f(r, "rows_per_s"),
            f(r, "peak_rss_bytes") / MIB,
            f(r, "peak_rss_minus_baseline_bytes") / MIB,
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// One case, in its own process
// ---------------------------------------------------------------------------------------------------

fn child(args: &[String]) -> ExitCode {
    let parsed = match args {
        [rows, backend] => rows
            .parse::<usize>()
            .ok()
            .filter(|_| BACKENDS.contains(&backend.as_str()))
            .map(|rows| (rows, backend.clone())),
        _ => None,
    };
    let Some((rows, backend)) = parsed else {
        eprintln!("usage: import --case ROWS (sqlite|postgres)");
        return ExitCode::from(2);
    };
    if let Ok(filter) = std::env::var("IMPORT_BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run_case(rows, &backend)) {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("import bench case {rows} {backend} failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_case(rows: usize, backend: &str) -> anyhow::Result<Value> {
    let unique = format!("invite_bench_{}", uuid::Uuid::new_v4().simple());
    let (url, _guard) = match backend {
        "sqlite" => {
            let dir = std::env::temp_dir().join(&unique);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let url = format!("sqlite:{}", dir.join("invite.db").display());
            (url, DbGuard::Sqlite(dir))
        }
        _ => {
            use sqlx::{Connection as _, Executor as _};
            let admin = postgres_admin_url();
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .with_context(|| format!("PostgreSQL is required for the postgres case ({admin})"))?;
            conn.execute(format!("CREATE DATABASE \"{unique}\"").as_str()).await?;
            conn.close().await?;
            let mut url = url::Url::parse(&admin)?;
            url.set_path(&unique);
            (url.to_string(), DbGuard::Postgres(unique.clone()))
        }
    };

    // Setup, not timed: the schema and a fresh PENDING task.
    let store: SharedStore = store::open(&url, &StoreOptions::default()).await?;
    store.migrate().await?;
    let user = UserId::new(1).expect("a valid user id");
    let now = Utc::now();
    let meta = RequestMeta {
        request_id: "import-bench".into(),
        client_addr: Some("127.0.0.1".into()),
    };
    let body = json!({
        "name": "Import benchmark",
        "action_type": "send_message",
        "message_template": "Привет, {first_name}!",
    });
    let spec = parse_new_task(&body, now).map_err(|e| anyhow!("task spec: {e:?}"))?;
    let task = store.create_task(user, &spec, now, &meta).await?;

    let file = generate_csv(rows);
    let file_bytes = file.bytes.len();
    let baseline = vm_hwm()?;
    let before = phase_memory()?;

    // Timed: as the API does it — the upload held in memory, its rows read and validated a chunk at a
    // time and written into one open transaction.
    let started = Instant::now();
    let stream = read_stream(
        Some("audience.csv"),
        Some("text/csv"),
        &file.bytes,
        &ReadOptions::default(),
    )
    .map_err(|e| anyhow!("read_stream: {e}"))?;
    let mut drafts =
        DraftStream::start(stream, None, Region::default()).map_err(|e| anyhow!("DraftStream::start: {e:?}"))?;
    let read_s = started.elapsed().as_secs_f64();
    let after_read = phase_memory()?;

    let request = ImportRequest {
        task_id: task.id,
        source: TargetSource::FileUpload,
        file_name: Some("audience.csv".into()),
        dry_run: false,
        max_targets: MAX_TARGETS,
    };
    let mut sink = match store.begin_import(user, request, Utc::now(), &meta).await? {
        ImportStart::Started(sink) => sink,
        _ => bail!("the task does not take an import"),
    };
    let (mut prepare_s, mut store_s) = (0.0, 0.0);
    loop {
        let t = Instant::now();
        let chunk = drafts.next_chunk(CHUNK_ROWS).map_err(|e| anyhow!("next_chunk: {e}"))?;
        prepare_s += t.elapsed().as_secs_f64();
        let Some(chunk) = chunk else { break };
        let t = Instant::now();
        sink.add(chunk, &mut drafts.report).await?;
        store_s += t.elapsed().as_secs_f64();
    }
    let after_prepare = phase_memory()?;
    let t = Instant::now();
    let outcome = sink.finish(drafts.report).await?;
    store_s += t.elapsed().as_secs_f64();
    let total_s = started.elapsed().as_secs_f64();
    let after_store = phase_memory()?;

    // The import must be right, or the numbers mean nothing.
    let report = match outcome {
        ImportOutcome::Done { report, .. } => report,
        other => bail!("the import was refused: {other:?}"),
    };
    ensure!(
        report.total_rows == rows,
        "total_rows {} != {rows} generated rows",
        report.total_rows
    );
    ensure!(
        report.invalid == file.invalid,
        "invalid {} != {} generated invalid rows",
        report.invalid,
        file.invalid
    );
    ensure!(
        report.duplicates == file.duplicates,
        "duplicates {} != {} generated duplicates",
        report.duplicates,
        file.duplicates
    );
    ensure!(
        report.stored == file.expected_valid,
        "stored {} != {} expected valid rows",
        report.stored,
        file.expected_valid
    );
    let query = TargetQuery {
        status: None,
        page: PageRequest { page: 1, page_size: 1 },
    };
    let listed = store
        .list_targets(user, task.id, &query)
        .await?
        .context("the task vanished")?;
    ensure!(
        listed.total == file.expected_valid as i64,
        "the task holds {} targets, expected {}",
        listed.total,
        file.expected_valid
    );
    drop(store);

    let peak = vm_hwm()?;
    Ok(json!({
        "rows": rows,
        "backend": backend,
        "read_s": read_s,
        "prepare_s": prepare_s,
        "store_s": store_s,
        "total_s": total_s,
        "rows_per_s": rows as f64 / total_s,
        "file_bytes": file_bytes,
        "stored": report.stored,
        "invalid": report.invalid,
        "duplicates": report.duplicates,
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "peak_rss_minus_baseline_bytes": peak.saturating_sub(baseline),
        "memory": {"baseline": before, "read": after_read, "prepare": after_prepare, "store": after_store},
    }))
}

fn proc_status() -> anyhow::Result<String> {
    std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")
}

/// A `kB` line of `/proc/self/status`, in bytes.
fn status_kb(status: &str, key: &str) -> anyhow::Result<u64> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .with_context(|| format!("no {key} in /proc/self/status"))?;
    let kb: u64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("{key} {line:?}"))?;
    Ok(kb * 1024)
}

/// The process's peak resident set size so far, in bytes.
fn vm_hwm() -> anyhow::Result<u64> {
    status_kb(&proc_status()?, "VmHWM:")
}

fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Removes the case's database when the case ends, pass or fail.
enum DbGuard {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        match self {
            DbGuard::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            DbGuard::Postgres(name) => {
                let name = name.clone();
                // Drop may run inside the runtime; a fresh thread may block on a runtime of its own.
                let dropped = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    rt.block_on(async {
                        use sqlx::{Connection as _, Executor as _};
                        let mut conn = sqlx::PgConnection::connect(&postgres_admin_url()).await?;
                        conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                            .await?;
                        anyhow::Ok(())
                    })
                })
                .join();
                if let Ok(Err(e)) = dropped {
                    eprintln!("import bench: could not drop the benchmark database: {e:#}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------------------------------

const FIRST_NAMES: &[&str] = &[
    "Александр",
    "Мария",
    "Дмитрий",
    "Анна",
    "Сергей",
    "Елена",
    "Иван",
    "Ольга",
    "Никита",
    "Татьяна",
    "Алексей",
    "Наталья",
    "Михаил",
    "Екатерина",
    "Артём",
    "Юлия",
    "Фёдор",
    "Светлана",
    "Андрей",
    "Ксения",
];

const LAST_NAMES: &[&str] = &[
    "Иванов",
    "Смирнова",
    "Кузнецов",
    "Попова",
    "Васильев",
    "Петрова",
    "Соколов",
    "Михайлова",
    "Новиков",
    "Фёдорова",
    "Морозов",
    "Волкова",
    "Алексеев",
    "Лебедева",
    "Семёнов",
    "Егорова",
    "Павлов",
    "Козлова",
    "",
];

/// Cities as a CSV cell: one needs quoting, one is left empty.
const CITIES: &[&str] = &[
    "Москва",
    "Санкт-Петербург",
    "Новосибирск",
    "Екатеринбург",
    "Казань",
    "Нижний Новгород",
    "Челябинск",
    "Самара",
    "Ростов-на-Дону",
    "Уфа",
    "\"Москва, Зеленоград\"",
    "",
];

const OPERATORS: &[&str] = &["912", "916", "926", "903", "985", "999", "950"];

struct CsvFile {
    bytes: Vec<u8>,
    invalid: usize,
    duplicates: usize,
    expected_valid: usize,
}

/// The username and phone of row `i` (0-based data row), unique per row.
fn identity(i: usize) -> (String, String) {
    let suffix = char::from(b'a' + (i % 26) as u8);
    let username = format!("user_{i:06}_{suffix}");
    let op = OPERATORS[i % OPERATORS.len()];
    let (a, b, c) = (i / 10_000, (i / 100) % 100, i % 100);
    let phone = match i % 3 {
        0 => format!("+7 {op} {a:03}-{b:02}-{c:02}"),
        1 => format!("8 ({op}) {a:03}-{b:02}-{c:02}"),
        _ => format!("+7{op}{a:03}{b:02}{c:02}"),
    };
    (username, phone)
}

/// A realistic audience file: ~1% rows without any usable identifier, ~1% repeating an earlier person
/// (half written the same way, half with the username in upper case and the phone as `8XXXXXXXXXX`).
fn generate_csv(rows: usize) -> CsvFile {
    let mut bytes = Vec::with_capacity(rows * 96 + 64);
    let (mut invalid, mut duplicates) = (0, 0);
    bytes.extend_from_slice(b"username,phone,first_name,last_name,city\n");
    for i in 0..rows {
        let (username, phone) = match i % 100 {
            37 => {
                invalid += 1;
                let phone = if i % 200 == 37 { "" } else { "не указан" };
                (format!("{i} плохое имя"), phone.to_string())
            }
            71 => {
                duplicates += 1;
                let (username, phone) = identity(i - 13);
                if (i / 100) % 2 == 0 {
                    (username, phone)
                } else {
                    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
                    (username.to_ascii_uppercase(), format!("8{}", &digits[1..]))
                }
            }
            _ => identity(i),
        };
        let first = FIRST_NAMES[i % FIRST_NAMES.len()];
        let last = LAST_NAMES[(i / 7) % LAST_NAMES.len()];
        let city = CITIES[(i / 3) % CITIES.len()];
        writeln!(bytes, "{username},{phone},{first},{last},{city}").expect("writing to memory");
    }
    bytes.shrink_to_fit();
    CsvFile {
        bytes,
        invalid,
        duplicates,
        expected_valid: rows - invalid - duplicates,
    }
}
