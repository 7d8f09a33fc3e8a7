//! Processes of the invite-service binary started by a test: each one's stdout (JSON log lines) and
//! stderr in files, waited on by log message, stopped by signal, killed when dropped; and the tails of
//! their logs for a failure's message. Shared by `tests/platform.rs` and `tests/platform_profile.rs`.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::{
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus},
    time::{Duration, Instant},
};

use serde_json::Value;

const SIGTERM: i32 = 15;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_invite-service");
/// The local RabbitMQ and Redis that `.ci/run` starts.
pub const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// One child process of the binary, with its stdout and stderr in files. Killed when dropped.
pub struct Proc {
    pub label: String,
    /// The failpoint it was armed with (`INVITE_FAILPOINTS`), if any.
    pub failpoint: Option<&'static str>,
    pub child: Child,
    pub out: PathBuf,
    pub err: PathBuf,
    /// We sent it SIGKILL.
    pub killed: bool,
    /// We asked it to stop (SIGTERM).
    pub stopping: bool,
}

impl Proc {
    /// Starts `cmd`, whose stdout and stderr the caller pointed at `out` and `err`.
    pub fn start(mut cmd: Command, label: String, failpoint: Option<&'static str>, out: PathBuf, err: PathBuf) -> Proc {
        let child = cmd.spawn().expect("start the invite-service binary");
        Proc {
            label,
            failpoint,
            child,
            out,
            err,
            killed: false,
            stopping: false,
        }
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait on a child process")
    }

    pub fn sigkill(&mut self) {
        self.killed = true;
        let _ = self.child.kill();
    }

    pub fn sigterm(&mut self) {
        self.stopping = true;
        let _ = Command::new("kill")
            .arg(format!("-{SIGTERM}"))
            .arg(self.child.id().to_string())
            .status();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The JSON log lines written so far.
    pub fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for a log line with this message; panics when the process ends first or it takes too long.
    pub async fn wait_for_log(&mut self, message: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log().into_iter().find(|v| v["message"] == message) {
                return line;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "{} ended ({}) before logging {message:?}:\n{}\n{}",
                    self.label,
                    describe(status),
                    tail(&self.out, 30),
                    tail(&self.err, 30)
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not log {message:?} within {within:?}",
                self.label
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a process ended.
pub fn describe(status: ExitStatus) -> String {
    match status.signal() {
        Some(s) => format!("killed by signal {s}"),
        None => format!("exit code {}", status.code().unwrap_or(-1)),
    }
}

/// The last `n` lines of a log file, headed by its path.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    format!(
        "--- {} (last {} of {} lines) ---\n{}",
        path.display(),
        lines.len() - from,
        lines.len(),
        lines[from..].join("\n")
    )
}

/// The HTTP API of a running `api` process, as one user.
#[derive(Default)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ApiClient {
    /// The API whose process logged `listening` (the line names its address), called with `token`.
    pub fn new(listening: &Value, token: String) -> Self {
        let addr = listening["addr"].as_str().expect("the listening line names its addr");
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{addr}/api/v1/invite"),
            token,
        }
    }

    /// A JSON request; the status and the JSON answer (or its text as a JSON string).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (reqwest::StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(15));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Imports these usernames into the task (`POST /import/file`, a CSV); panics unless it succeeds.
    pub async fn import(&self, task_id: i64, people: &[String]) {
        let resp = self
            .http
            .post(format!("{}/import/file", self.base))
            .bearer_auth(&self.token)
            .multipart(usernames_upload(task_id, people))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert!(status.is_success(), "import: {status} {}", resp.text().await.unwrap());
    }
}

/// Fails the test (never skips it) unless RabbitMQ and Redis answer on the machine's usual ports.
pub async fn require_broker_and_redis(broker_url: &str, redis_url: &str, prefix: &str) {
    use invite_service::engine::{events::redis::RedisEvents, queue::rabbitmq::RabbitQueue};
    let within = Duration::from_secs(15);
    match tokio::time::timeout(within, RabbitQueue::connect_with_prefix(broker_url, prefix)).await {
        Ok(Ok(q)) => q.close().await,
        Ok(Err(e)) => panic!("RabbitMQ must run on 127.0.0.1:5672 (guest/guest): {e}"),
        Err(_) => panic!("connecting to RabbitMQ on 127.0.0.1:5672 timed out"),
    }
    match tokio::time::timeout(within, RedisEvents::connect_with_prefix(redis_url, prefix)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("Redis must run on 127.0.0.1:6379: {e}"),
        Err(_) => panic!("connecting to Redis on 127.0.0.1:6379 timed out"),
    }
}

/// Runs a future to its end on a thread with a runtime of its own: for a `Drop`, which runs inside the
/// test's runtime and cannot block on it.
pub fn on_own_runtime<F: std::future::Future<Output = ()>>(work: impl FnOnce() -> F + Send + 'static) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work());
    })
    .join();
}

/// Deletes the queues a test made in RabbitMQ (their names start with `prefix`); gives up after 10 s.
pub fn delete_queues_blocking(broker_url: &str, prefix: &str) {
    let (url, prefix) = (broker_url.to_owned(), prefix.to_owned());
    on_own_runtime(move || async move {
        let connect = invite_service::engine::queue::rabbitmq::RabbitQueue::connect_with_prefix(&url, &prefix);
        if let Ok(Ok(q)) = tokio::time::timeout(Duration::from_secs(10), connect).await {
            let _ = q.delete_queues().await;
            q.close().await;
        }
    });
}

/// A CSV upload of these usernames into a task, as `POST /import/file` takes it.
fn usernames_upload(task_id: i64, people: &[String]) -> reqwest::multipart::Form {
    let csv = std::iter::once("username")
        .chain(people.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("\n");
    reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("people.csv"),
        )
        .text("task_id", task_id.to_string())
}
