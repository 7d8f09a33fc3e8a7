//! Everything the service logs during a test, scanned for the secrets the tests give it: JWT secrets,
//! the data key, api_hashes, session strings, Vault's secret_id and tokens, passwords in URLs, JWTs.
//!
//! Each harness that runs the service feeds its log here — in process through [`capture`] (a tracing
//! layer at DEBUG for the workspace's crates) or [`layer`] (added to a subscriber of the test's own), and
//! the binary's stdout and stderr through [`feed`] — and the [`Check`] that [`capture`] returns fails
//! the test when it is dropped if a secret showed up. The panic names the secret by label and the log
//! line by number, never the value. Lines are scanned as they are written and not kept, so a long test
//! costs no memory; a test process (nextest runs one per test) scans only what its own test logged.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::{
    fmt::Write as _,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, Once, OnceLock,
    },
};

use tracing::{
    field::{Field, Visit},
    span, Event, Subscriber,
};
use tracing_subscriber::{
    filter::{EnvFilter, LevelFilter, Targets},
    layer::{Context, SubscriberExt},
    registry::LookupSpan,
    util::SubscriberInitExt,
    Layer,
};

/// A password the tests put in URLs given to the service (which must show them without it).
pub const URL_PASSWORD: &str = "url-password-3b9d71";

/// What is captured in process: the workspace's crates down to DEBUG, everything else from INFO, sqlx
/// from WARN as the service's default filter has it. sqlx's statements (DEBUG) are left out: their
/// values are bound parameters, never in the text, and capturing them made the suite's test processes
/// use about 10% more CPU (the scan alone adds about 10%).
fn captured() -> Targets {
    let debug = [
        "invite_service",
        "store",
        "account_manager",
        "platforms",
        "domain",
        "clock",
    ];
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_targets(debug.map(|crate_name| (crate_name, LevelFilter::DEBUG)))
        // The fake Telegram server is the tests', not the service's.
        .with_target("mtproto_fake", LevelFilter::OFF)
        .with_target("sqlx", LevelFilter::WARN)
}

/// The secrets the tests give the service, by label. Fixtures are read where they are kept.
fn known_secrets() -> Vec<(String, String)> {
    let mut secrets: Vec<(String, String)> = [
        (
            "the API tests' JWT secret",
            "test-secret-that-is-long-enough-0123456789",
        ),
        ("the platform tests' JWT secret", "platform-test-secret-0123456789"),
        ("the CLI tests' JWT secret", "platform-secret-0123456789"),
        (
            "the platform profile's JWT secret in the fake Vault",
            "platform-profile-jwt-secret-kept-in-vault-3e9d",
        ),
        (
            "the integration tests' JWT secret",
            "integrations-test-secret-0123456789",
        ),
        (
            "the JWT secret kept in the fake Vault",
            "jwt-secret-kept-in-vault-9c1e4f",
        ),
        (
            "the running platform's JWT secret in the fake Vault",
            "jwt-secret-of-the-running-platform-77ab",
        ),
        (
            "the tests' data key",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        ),
        ("an api_hash", "0123456789abcdef0123456789abcdef"),
        ("another user's api_hash", "fedcba9876543210fedcba9876543210"),
        (
            "the session string kept in the fake Vault",
            "1BVtsOKABu0-session-string-of-account-one",
        ),
        ("the rotated session in the fake Vault", "rotated-session"),
        // The first 64 of the 512 hex digits of the grammers session's key (tests/api/accounts.rs).
        (
            "a grammers session's auth key",
            "abababababababababababababababababababababababababababababababab",
        ),
        ("the fake Vault's AppRole secret_id", "fake-vault-secret-id-5f0c2b9e"),
        ("a wrong AppRole secret_id", "a-wrong-secret-id-31337"),
        ("a token of the fake Vault", "hvs.fake"),
        // Every JWT starts with its header, {"typ":"JWT"… or {"alg":…, in base64url.
        ("a JWT", "eyJ0eXAiOi"),
        ("a JWT", "eyJhbGciOi"),
        ("RabbitMQ's password in a URL", ":guest@"),
        ("a password in a RabbitMQ URL", "hunter2-secret"),
        ("a password put in a URL", URL_PASSWORD),
    ]
    .iter()
    .map(|(label, value)| (label.to_string(), value.to_string()))
    .collect();
    let telethon: serde_json::Value =
        serde_json::from_str(include_str!("../data/telethon-sessions.json")).expect("the Telethon fixture is JSON");
    for (i, s) in telethon["sessions"]
        .as_array()
        .expect("a list of sessions")
        .iter()
        .enumerate()
    {
        let session = s["string_session"].as_str().expect("a string session");
        secrets.push((format!("Telethon session string #{}", i + 1), session.to_owned()));
    }
    secrets
}

/// A secret found: which, where, and the line with every secret in it masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub label: String,
    pub source: String,
    pub line: usize,
    pub masked: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in line {} of {}: {}",
            self.label, self.line, self.source, self.masked
        )
    }
}

/// Looks for a set of secrets in lines of text.
pub struct Scanner {
    secrets: Vec<(String, String)>,
}

impl Scanner {
    /// The secrets the tests use.
    pub fn known() -> Scanner {
        Scanner::new(known_secrets())
    }

    pub fn new(secrets: Vec<(String, String)>) -> Scanner {
        assert!(
            secrets.iter().all(|(_, v)| !v.is_empty()),
            "an empty secret matches everything"
        );
        Scanner { secrets }
    }

    /// The secrets in one line (`line` counts from 1 within `source`).
    pub fn scan_line(&self, source: &str, line: usize, text: &str) -> Vec<Finding> {
        let mut found = Vec::new();
        for (label, value) in &self.secrets {
            if text.contains(value.as_str()) && !found.iter().any(|f: &Finding| &f.label == label) {
                found.push(Finding {
                    label: label.clone(),
                    source: source.to_owned(),
                    line,
                    masked: self.mask(text),
                });
            }
        }
        found
    }

    /// The secrets in a text, line by line.
    pub fn scan_text(&self, source: &str, text: &str) -> Vec<Finding> {
        text.lines()
            .enumerate()
            .flat_map(|(i, line)| self.scan_line(source, i + 1, line))
            .collect()
    }

    fn mask(&self, text: &str) -> String {
        let mut masked = text.to_owned();
        for (label, value) in &self.secrets {
            masked = masked.replace(value.as_str(), &format!("<{label}>"));
        }
        const MAX: usize = 400;
        if masked.len() > MAX {
            let cut = (0..=MAX).rev().find(|&i| masked.is_char_boundary(i)).unwrap_or(0);
            masked.truncate(cut);
            masked.push('…');
        }
        masked
    }
}

/// One scan: its scanner, the lines of the tracing log it has seen, and what it found in every source.
pub struct Scan {
    scanner: Scanner,
    lines: AtomicUsize,
    findings: Mutex<Vec<Finding>>,
}

impl Scan {
    pub fn new(scanner: Scanner) -> Arc<Scan> {
        Arc::new(Scan {
            scanner,
            lines: AtomicUsize::new(0),
            findings: Mutex::new(Vec::new()),
        })
    }

    /// A tracing layer feeding this scan every event and span it sees. It filters by itself: a
    /// subscriber built with `tracing_subscriber::fmt()` takes no per-layer filter.
    pub fn layer<S: Subscriber + for<'a> LookupSpan<'a>>(self: &Arc<Self>) -> impl Layer<S> {
        ScanLayer {
            scan: self.clone(),
            filter: Some(captured()),
        }
    }

    /// Scans what a process of the binary printed (its stdout or stderr), named by `source`.
    pub fn feed(&self, source: &str, text: &str) {
        self.record(self.scanner.scan_text(source, text));
    }

    pub fn findings(&self) -> Vec<Finding> {
        self.findings.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The check that fails, when dropped, if this scan found a secret.
    pub fn check(self: &Arc<Self>) -> Check {
        Check(self.clone())
    }

    fn record(&self, found: Vec<Finding>) {
        if !found.is_empty() {
            self.findings.lock().unwrap_or_else(|e| e.into_inner()).extend(found);
        }
    }

    fn scan_log_line(&self, line: &str) {
        let n = self.lines.fetch_add(1, Ordering::Relaxed) + 1;
        self.record(self.scanner.scan_line("the in-process log", n, line));
    }
}

/// The process's scan, of the secrets the tests use.
fn global() -> &'static Arc<Scan> {
    static GLOBAL: OnceLock<Arc<Scan>> = OnceLock::new();
    GLOBAL.get_or_init(|| Scan::new(Scanner::known()))
}

/// Scans what a process of the binary printed (its stdout or stderr), named by `source`.
pub fn feed(source: &str, text: &str) {
    global().feed(source, text);
}

/// A layer feeding the process's scan, for a subscriber a test builds itself (one set with
/// `set_default` hides the global subscriber from its thread).
pub fn layer<S: Subscriber + for<'a> LookupSpan<'a>>() -> impl Layer<S> {
    global().layer()
}

/// Installs the process's scan as its subscriber (once; with `TEST_LOG=<filter>` the log is also
/// printed) and returns the check to keep until the end of the test.
pub fn capture() -> Check {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let print = std::env::var("TEST_LOG").ok().map(|filter| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(EnvFilter::new(filter))
        });
        // Filtered per layer, so that nothing the scan leaves out is even recorded.
        let scan = ScanLayer {
            scan: global().clone(),
            filter: None,
        };
        tracing_subscriber::registry()
            .with(scan.with_filter(captured()))
            .with(print)
            .try_init()
            .expect("no other global subscriber: the log scan would see nothing");
    });
    global().check()
}

/// Fails the test, when dropped, if its scan found a secret (when the test fails already, the findings
/// are printed instead).
#[must_use = "the check runs when it is dropped"]
pub struct Check(Arc<Scan>);

impl Drop for Check {
    fn drop(&mut self) {
        let findings = self.0.findings();
        if findings.is_empty() {
            return;
        }
        let report = report(&findings);
        if std::thread::panicking() {
            eprintln!("{report}");
        } else {
            panic!("{report}");
        }
    }
}

pub fn report(findings: &[Finding]) -> String {
    let mut text = format!("{} secret(s) in what the service logged:", findings.len());
    for f in findings.iter().take(20) {
        let _ = write!(text, "\n  {f}");
    }
    text
}

struct ScanLayer {
    scan: Arc<Scan>,
    /// None when the subscriber filters for it.
    filter: Option<Targets>,
}

impl ScanLayer {
    fn wanted(&self, meta: &tracing::Metadata<'_>) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.would_enable(meta.target(), meta.level()))
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for ScanLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if !self.wanted(meta) {
            return;
        }
        let mut line = format!("{} {}:", meta.level(), meta.target());
        event.record(&mut Fields(&mut line));
        self.scan.scan_log_line(&line);
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, _: &span::Id, _: Context<'_, S>) {
        if !self.wanted(attrs.metadata()) {
            return;
        }
        let mut line = format!("span {}:", attrs.metadata().name());
        attrs.record(&mut Fields(&mut line));
        self.scan.scan_log_line(&line);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if ctx.metadata(id).is_some_and(|meta| !self.wanted(meta)) {
            return;
        }
        let mut line = String::from("span record:");
        values.record(&mut Fields(&mut line));
        self.scan.scan_log_line(&line);
    }
}

/// Writes fields as `name=value`: strings raw, errors with their sources, the rest as the log would.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let _ = write!(self.0, " {}={value}", field.name());
        let mut source = value.source();
        while let Some(s) = source {
            let _ = write!(self.0, ": {s}");
            source = s.source();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}
