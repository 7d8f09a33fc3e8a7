//! The Prometheus metrics: HTTP traffic, and the campaign families of the spec (named as Python's
//! prometheus_client exposes them, counters ending in `_total`).
//!
//! Every label takes its values from a closed set of domain words (platforms, task and target
//! statuses, priorities, Account Manager actions), never an id, and every known combination is
//! exposed at zero from start-up, so a rate over a series that has not moved yet is 0, not absent.
//!
//! Counters count what this process did; Prometheus sums them over instances. The two gauges
//! (`invite_active_tasks`, `invite_queue_depth`) are read from the store and the queue at scrape time,
//! so every process reports the same global value: aggregate them with `max`, not `sum`.

use std::sync::Arc;

use account_manager::RateLimit;
use chrono::{DateTime, Utc};
use domain::{
    audience::TargetStatus,
    outcome::{AccountProblem, AmAction, Outcome},
    task::{Platform, Task, TaskStatus},
};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use store::Store;

use crate::engine::queue::{JobQueue, PRIORITIES};

/// The final target statuses: the values of `invite_targets_processed_total`'s `result`.
pub const TARGET_RESULTS: [TargetStatus; 5] = [
    TargetStatus::Succeeded,
    TargetStatus::AlreadyDone,
    TargetStatus::Failed,
    TargetStatus::Skipped,
    TargetStatus::Unknown,
];

/// The values of `invite_am_decisions_total`'s `decision`.
pub const AM_DECISIONS: [&str; 3] = ["granted", "wait", "denied"];

/// Campaigns last minutes to weeks: bucket bounds from 1 minute to 30 days, in minutes.
const TASK_DURATION_MINUTES: [u32; 14] = [
    1, 5, 15, 30, 60, 180, 360, 720, 1_440, 2_880, 4_320, 10_080, 20_160, 43_200,
];

/// The service's metrics registry.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    tasks: IntCounterVec,
    targets_processed: IntCounterVec,
    accounts_blocked: IntCounterVec,
    flood_waits: IntCounterVec,
    task_duration: HistogramVec,
    active_tasks: IntGaugeVec,
    queue_depth: IntGaugeVec,
    am_decisions: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64], labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels).expect("valid metric");
    registry.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let m = Self {
            http_requests: counter(
                &registry,
                "http_requests_total",
                "HTTP requests answered, by method, route template and status",
                &["method", "route", "status"],
            ),
            http_duration: histogram(
                &registry,
                "http_request_duration_seconds",
                "HTTP request latency, by method and route template",
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
                &["method", "route"],
            ),
            tasks: counter(
                &registry,
                "invite_tasks_total",
                "Task status transitions, by platform and the status moved into (creation counts as PENDING)",
                &["platform", "status"],
            ),
            targets_processed: counter(
                &registry,
                "invite_targets_processed_total",
                "Targets that reached a final state, by platform and that state",
                &["platform", "result"],
            ),
            accounts_blocked: counter(
                &registry,
                "invite_accounts_blocked_total",
                "Accounts blocked by the Account Manager (dead, duplicated or unusable session), by platform",
                &["platform"],
            ),
            flood_waits: counter(
                &registry,
                "invite_floodwait_events_total",
                "FLOOD_WAIT answers from the platform, by platform",
                &["platform"],
            ),
            task_duration: histogram(
                &registry,
                "invite_task_duration_seconds",
                "Time from a task's start to its end (COMPLETED, FAILED or CANCELLED), pauses included",
                &TASK_DURATION_MINUTES.map(|m| f64::from(m) * 60.0),
                &["platform"],
            ),
            active_tasks: gauge(
                &registry,
                "invite_active_tasks",
                "Tasks IN_PROGRESS in the whole service (read from the store at scrape time), by platform",
                &["platform"],
            ),
            queue_depth: gauge(
                &registry,
                "invite_queue_depth",
                "Jobs waiting in the work queue (read at scrape time), by priority",
                &["priority"],
            ),
            am_decisions: counter(
                &registry,
                "invite_am_decisions_total",
                "Account Manager answers to check_rate_limit, by action and decision (granted, wait, denied)",
                &["action", "decision"],
            ),
            registry,
        };
        for platform in Platform::ALL.iter().map(|p| p.as_str()) {
            for status in TaskStatus::ALL {
                m.tasks.with_label_values(&[platform, status.as_str()]);
            }
            for result in TARGET_RESULTS {
                m.targets_processed.with_label_values(&[platform, result.as_str()]);
            }
            m.accounts_blocked.with_label_values(&[platform]);
            m.flood_waits.with_label_values(&[platform]);
            m.task_duration.with_label_values(&[platform]);
            m.active_tasks.with_label_values(&[platform]);
        }
        for priority in PRIORITIES {
            m.queue_depth.with_label_values(&[priority.as_str()]);
        }
        for action in AmAction::ALL {
            for decision in AM_DECISIONS {
                m.am_decisions.with_label_values(&[action.as_str(), decision]);
            }
        }
        Arc::new(m)
    }

    /// The Prometheus text exposition of every metric, the gauges as last refreshed.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }

    /// Reads the gauges from the store and the queue, then renders. A source that cannot be read
    /// keeps its gauges at their last values (and says so in the log); the counters are exposed
    /// regardless.
    pub async fn scrape(&self, store: &dyn Store, queue: &dyn JobQueue) -> String {
        match store.count_tasks_in_progress().await {
            Ok(counts) => {
                for platform in Platform::ALL {
                    let n = counts
                        .iter()
                        .filter(|(p, _)| p == platform.as_str())
                        .map(|(_, n)| *n)
                        .sum();
                    self.active_tasks.with_label_values(&[platform.as_str()]).set(n);
                }
            }
            Err(err) => tracing::warn!(error = %err, "metrics: cannot count the active tasks"),
        }
        match queue.depth().await {
            Ok(depth) => {
                for (priority, n) in depth {
                    let n = i64::try_from(n).unwrap_or(i64::MAX);
                    self.queue_depth.with_label_values(&[priority.as_str()]).set(n);
                }
            }
            Err(err) => tracing::warn!(error = %err, "metrics: cannot read the queue depth"),
        }
        self.render()
    }

    /// Counts and times one answered request under its route template
    /// (`/api/v1/invite/tasks/{task_id}`), so ids do not explode the label space.
    pub fn observe_http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_duration.with_label_values(&[method, route]).observe(seconds);
        self.http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
    }

    /// A task was created (it is `PENDING`).
    pub fn task_created(&self, platform: Platform) {
        self.tasks
            .with_label_values(&[platform.as_str(), TaskStatus::Pending.as_str()])
            .inc();
    }

    /// `task` (as it was before) moved into `to` at `now`; a final status also times the task from its
    /// start. A move that keeps the status (a start that waits for its scheduled time) is no transition.
    pub fn task_moved(&self, task: &Task, to: TaskStatus, now: DateTime<Utc>) {
        if task.status == to {
            return;
        }
        let platform = task.spec.platform.as_str();
        self.tasks.with_label_values(&[platform, to.as_str()]).inc();
        if let Some(started) = task.started_at.filter(|_| to.is_finished()) {
            let seconds = (now - started).num_milliseconds().max(0) as f64 / 1000.0;
            self.task_duration.with_label_values(&[platform]).observe(seconds);
        }
    }

    /// The engine ended a task (`to`, when `moved`: another process may have moved it first) and
    /// skipped its `skipped` remaining targets.
    pub fn task_ended(&self, task: &Task, to: TaskStatus, moved: bool, skipped: u64, now: DateTime<Utc>) {
        self.targets_processed(task.spec.platform, TargetStatus::Skipped, skipped);
        if moved {
            self.task_moved(task, to, now);
        }
    }

    /// `n` targets reached `status`; a status that is not final (a target given back) counts nothing.
    pub fn targets_processed(&self, platform: Platform, status: TargetStatus, n: u64) {
        if TARGET_RESULTS.contains(&status) {
            self.targets_processed
                .with_label_values(&[platform.as_str(), status.as_str()])
                .inc_by(n);
        }
    }

    /// An account problem handed to the Account Manager: a flood wait, or an error that blocks the
    /// account.
    pub fn account_problem(&self, platform: Platform, outcome: Outcome) {
        match outcome {
            Outcome::Account(AccountProblem::FloodWait(_)) => {
                self.flood_waits.with_label_values(&[platform.as_str()]).inc()
            }
            Outcome::Account(
                AccountProblem::SessionDead | AccountProblem::SessionDuplicated | AccountProblem::Unusable,
            ) => self.accounts_blocked.with_label_values(&[platform.as_str()]).inc(),
            _ => {}
        }
    }

    /// The Account Manager's answer to a `check_rate_limit` for `action`.
    pub fn am_decision(&self, action: AmAction, answer: &RateLimit) {
        let decision = match answer {
            RateLimit::Granted(_) => "granted",
            RateLimit::Wait { .. } => "wait",
            RateLimit::Denied { .. } => "denied",
        };
        self.am_decisions.with_label_values(&[action.as_str(), decision]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed_at_zero_from_the_start() {
        let text = Metrics::new().render();
        for line in [
            r#"invite_tasks_total{platform="telegram",status="CANCELLED"} 0"#,
            r#"invite_tasks_total{platform="whatsapp",status="PENDING"} 0"#,
            r#"invite_targets_processed_total{platform="telegram",result="already_done"} 0"#,
            r#"invite_accounts_blocked_total{platform="telegram"} 0"#,
            r#"invite_floodwait_events_total{platform="instagram"} 0"#,
            r#"invite_task_duration_seconds_count{platform="telegram"} 0"#,
            r#"invite_task_duration_seconds_bucket{platform="telegram",le="604800"} 0"#,
            r#"invite_active_tasks{platform="telegram"} 0"#,
            r#"invite_queue_depth{priority="LOW"} 0"#,
            r#"invite_am_decisions_total{action="channel_lookup",decision="wait"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
    }

    fn task(status: TaskStatus, started_at: Option<DateTime<Utc>>) -> Task {
        let at = Utc::now();
        Task {
            id: 1,
            user_id: domain::UserId::new(1).unwrap(),
            spec: domain::task::TaskSpec {
                name: "t".into(),
                description: None,
                platform: Platform::Telegram,
                action_type: domain::task::ActionType::SendMessage,
                target_channel: None,
                message_template: None,
                priority: domain::task::Priority::Normal,
                scheduled_start: None,
                settings: serde_json::Map::new(),
            },
            status,
            status_reason: None,
            counters: Default::default(),
            error_message: None,
            created_at: at,
            updated_at: at,
            started_at,
            finished_at: None,
            version: 1,
        }
    }

    fn value(m: &Metrics, series: &str) -> String {
        let text = m.render();
        let line = text
            .lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("{series} missing from\n{text}"));
        line[series.len() + 1..].to_owned()
    }

    #[test]
    fn only_real_transitions_count_and_final_ones_are_timed() {
        let m = Metrics::new();
        let now = Utc::now();
        m.task_moved(&task(TaskStatus::Pending, None), TaskStatus::Pending, now);
        m.task_moved(&task(TaskStatus::Pending, None), TaskStatus::InProgress, now);
        m.task_moved(&task(TaskStatus::Pending, None), TaskStatus::Cancelled, now);
        let started = now - chrono::Duration::hours(2);
        m.task_moved(&task(TaskStatus::InProgress, Some(started)), TaskStatus::Completed, now);
        let tasks = |s: &str| {
            value(
                &m,
                &format!(r#"invite_tasks_total{{platform="telegram",status="{s}"}}"#),
            )
        };
        assert_eq!(
            tasks("PENDING"),
            "0",
            "a start that waits for its time is no transition"
        );
        assert_eq!(tasks("IN_PROGRESS"), "1");
        assert_eq!(tasks("CANCELLED"), "1");
        assert_eq!(tasks("COMPLETED"), "1");
        let duration = |s: &str| value(&m, &format!(r#"invite_task_duration_seconds_{s}"#));
        assert_eq!(
            duration(r#"count{platform="telegram"}"#),
            "1",
            "a task never started is not timed"
        );
        assert_eq!(duration(r#"sum{platform="telegram"}"#), "7200");
        assert_eq!(duration(r#"bucket{platform="telegram",le="3600"}"#), "0");
        assert_eq!(duration(r#"bucket{platform="telegram",le="10800"}"#), "1");
    }

    #[test]
    fn targets_count_only_final_states_and_account_problems_by_kind() {
        let m = Metrics::new();
        m.targets_processed(Platform::Telegram, TargetStatus::Pending, 3);
        m.targets_processed(Platform::Telegram, TargetStatus::Skipped, 4);
        let pending = "invite_targets_processed_total{platform=\"telegram\",result=\"pending\"}";
        assert!(!m.render().contains(pending));
        assert_eq!(
            value(
                &m,
                r#"invite_targets_processed_total{platform="telegram",result="skipped"}"#
            ),
            "4"
        );
        let flood = Outcome::Account(AccountProblem::FloodWait(std::time::Duration::from_secs(30)));
        m.account_problem(Platform::Telegram, flood);
        m.account_problem(Platform::Telegram, Outcome::Account(AccountProblem::PeerFlood));
        m.account_problem(Platform::Telegram, Outcome::Account(AccountProblem::SessionDead));
        assert_eq!(value(&m, r#"invite_floodwait_events_total{platform="telegram"}"#), "1");
        assert_eq!(value(&m, r#"invite_accounts_blocked_total{platform="telegram"}"#), "1");
        let wait = RateLimit::Wait {
            wait_for_seconds: 5,
            until: Utc::now(),
            reason: "pause".into(),
        };
        m.am_decision(AmAction::Invite, &wait);
        assert_eq!(
            value(&m, r#"invite_am_decisions_total{action="invite",decision="wait"}"#),
            "1"
        );
    }
}
