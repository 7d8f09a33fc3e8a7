//! The worker: one job, one action (spec "Последовательность"). For a claimed target and a leased
//! account: connect, look the channel up once per account, check the do-not-contact list again,
//! resolve the person, and make the call — each platform call granted by the Account Manager right
//! before it — then settle the target with its log in one transaction, tell the AM what happened, and
//! give the lease back.
//!
//! Outcomes (DESIGN §4): an account's problem gives the target back for another account; a transient
//! one retries later with backoff (stored, not slept) up to a limit; the target's own answer is final;
//! a message whose outcome is unknown is retried only by the same account with the same random id; a
//! channel that is full or gone ends the task's remaining work. A stale job (its claim epoch moved on,
//! the task was paused or cancelled) does nothing but give the target back.

use std::sync::Arc;

use account_manager::{Grant, Lease, RateLimit};
use chrono::{DateTime, Duration, Utc};
use domain::{
    audience::TargetStatus,
    channel::ChannelRef,
    identifier::{Identifier, PlatformUserId},
    outcome::{AmAction, ChannelProblem, Outcome, TargetProblem},
    phone::{Phone, Region},
    task::{ActionType, Task, TaskStatus},
    username::Username,
};
use platforms::{
    AccountClient, AccountCredentials, ChannelInfo, ChannelKind, DeliveryKey, Report, Resolution, TargetRef,
};
use rand::Rng;
use serde_json::{json, Value};
use store::{NewLog, Settlement};
use tokio::sync::watch;

use super::{
    events::Event,
    failpoints, main_action,
    queue::{Job, TargetData},
    Engine,
};

/// One claimed target for one leased account.
struct Action<'a> {
    e: &'a Engine,
    task: Task,
    target_id: i64,
    target: &'a TargetData,
    account_id: &'a str,
    epoch: i64,
    attempts: i64,
    /// The account this target may go to only (a message that may have been sent through it).
    pinned: Option<String>,
    logs: Vec<NewLog>,
}

/// How long a worker waits after a job failed (its store or broker failing) before it takes the next.
const FAILED_JOB_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs jobs from the queue until shutdown; a job is acknowledged only after its outcome is committed.
pub async fn run(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let delivery = tokio::select! {
            d = engine.queue.next() => d,
            _ = shutdown.changed() => return,
        };
        let delivery = match delivery {
            Ok(d) => d,
            Err(err) => {
                tracing::error!(error = %err, "worker: the queue failed; retrying in 1 s");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(err) = execute(&engine, delivery.job()).await {
            // Not acknowledged: the job goes back to the queue and is done again while its claim holds.
            tracing::error!(
                error = format!("{err:#}"),
                job = delivery.job().name(),
                "worker: job failed"
            );
            drop(delivery);
            // A failing store would hand the job straight back to this worker: a pause first.
            tokio::select! {
                _ = tokio::time::sleep(FAILED_JOB_PAUSE) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        if let Err(err) = delivery.ack().await {
            tracing::warn!(error = %err, "worker: could not acknowledge a finished job");
        }
    }
}

/// Executes one job.
pub async fn execute(e: &Engine, job: &Job) -> anyhow::Result<()> {
    match job {
        Job::ProcessTargetBatch {
            task_id,
            target_id,
            target,
            account_id,
            epoch,
            attempts,
            lease_epoch,
        } => {
            let lease = Lease {
                account_id: account_id.clone(),
                epoch: *lease_epoch,
                until: e.clock.now(),
            };
            let result = process(e, *task_id, *target_id, target, account_id, *epoch, *attempts).await;
            e.am.release_account(Some(&lease), None, Outcome::Success).await?;
            e.events.publish(Event::Wake).await;
            result
        }
        Job::ExecuteInviteTask { .. } | Job::ReactivateAccountAfterCooldown { .. } => {
            e.events.publish(Event::Wake).await;
            Ok(())
        }
        Job::CleanupCompletedTasks => {
            super::retention::cleanup(e).await?;
            Ok(())
        }
    }
}

async fn process(
    e: &Engine,
    task_id: i64,
    target_id: i64,
    target: &TargetData,
    account_id: &str,
    epoch: i64,
    attempts: i64,
) -> anyhow::Result<()> {
    // A job delivered again (its worker died after committing, or the broker redelivered it) finds its
    // claim settled, moved on or run out: it does nothing at all.
    let Some(pinned) = hold_claim(e, task_id, target_id, epoch).await? else {
        tracing::info!(
            task_id,
            target_id,
            epoch,
            "worker: a stale job (its claim moved on or ran out): nothing done"
        );
        return Ok(());
    };
    let Some(task) = e.store.engine_task(task_id).await? else {
        return Ok(());
    };
    let mut a = Action {
        e,
        task,
        target_id,
        target,
        account_id,
        epoch,
        attempts,
        pinned,
        logs: Vec::new(),
    };
    if a.task.status != TaskStatus::InProgress {
        // Paused or cancelled since the claim: the target goes back untouched.
        return a.give_back(None, "the task is no longer running").await;
    }
    let Some(secrets) = e.store.account_secrets(account_id).await? else {
        a.exclude("the account was removed").await?;
        return a.give_back(None, "the account was removed").await;
    };
    let secret = match &secrets.session_sealed {
        Some(sealed) => match e.sealer.open(sealed, &format!("account:{account_id}:session")) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => {
                let detail = format!("the stored session cannot be opened: {err}");
                a.account_problem(Outcome::Account(domain::outcome::AccountProblem::Unusable), &detail)
                    .await?;
                return a.give_back(None, &detail).await;
            }
        },
        None => String::new(),
    };
    let credentials = AccountCredentials {
        account_id: account_id.to_owned(),
        secret,
        api_id: secrets.api_id,
    };
    let mut client = match e.platforms.for_kind(secrets.kind).connect(&credentials).await {
        Ok(c) => c,
        Err(report) => {
            a.log("connect", "FAILED", report.outcome, &report.detail);
            if matches!(report.outcome, Outcome::Account(_)) {
                a.account_problem(report.outcome, &report.detail).await?;
                return a.give_back(None, &report.detail).await;
            }
            let later = a.backoff();
            return a.give_back(Some(later), &report.detail).await;
        }
    };
    let result = a.act(client.as_mut()).await;
    client.close().await;
    result
}

/// Whether the job's claim still holds its target, extending its lease by a full lease from now if so
/// (see [`store::Store::hold_claim`]); the account the target is pinned to, if any.
async fn hold_claim(e: &Engine, task_id: i64, target_id: i64, epoch: i64) -> anyhow::Result<Option<Option<String>>> {
    let now = e.clock.now();
    let until = now + e.am.policy().lease_ttl;
    Ok(e.store.hold_claim(task_id, target_id, epoch, now, until).await?)
}

/// The call that reaches the person, given half of the claim's lease (just extended by [`hold_claim`])
/// whatever the adapter's own timeout: no call outlives its claim, so no other account can take the
/// target while this call may still land. An abandoned call may have landed: a message counts as of
/// unknown outcome (retried only by this account, with the same random id), an invite is retried
/// (a repeat is answered as already a member).
async fn within_claim(lease: Duration, action: ActionType, call: impl std::future::Future<Output = Report>) -> Report {
    let limit = (lease / 2).to_std().unwrap_or_default();
    match tokio::time::timeout(limit, call).await {
        Ok(report) => report,
        Err(_) => {
            let outcome = match action {
                ActionType::SendMessage => Outcome::Unknown,
                ActionType::InviteToGroup => Outcome::RetryLater,
            };
            let detail = format!(
                "no answer within {} s, half of the claim's lease: the call was abandoned before the claim could run out",
                limit.as_secs()
            );
            Report::new(outcome, detail)
        }
    }
}

impl Action<'_> {
    async fn act(&mut self, client: &mut dyn AccountClient) -> anyhow::Result<()> {
        let e = self.e;
        let (action, channel) = main_action(&self.task);
        let room = match self.task.spec.action_type {
            ActionType::InviteToGroup => match self.room(client).await? {
                Some(room) => Some(room),
                None => return Ok(()),
            },
            ActionType::SendMessage => None,
        };
        let target = self.target_ref();
        if e.store.on_do_not_contact(self.task.user_id, &dnc_keys(&target)).await? {
            self.log(
                "do_not_contact",
                "SKIPPED",
                Outcome::Success,
                "on the do-not-contact list",
            );
            return self
                .settle_final(TargetStatus::Skipped, "do_not_contact", json!({}))
                .await;
        }
        let peer = match client.resolution(&target) {
            Resolution::Known(peer) => peer,
            Resolution::Unreachable => {
                let o = Outcome::Target(TargetProblem::NotFound);
                self.log("resolve", "FAILED", o, "only a numeric id this account has never seen");
                return self.settle(o, "only a numeric id this account has never seen").await;
            }
            Resolution::Lookup(lookup) => {
                let Some(grant) = self.grant(lookup, None).await? else {
                    return Ok(());
                };
                let found = client.resolve(&target).await;
                let (outcome, detail) = match &found {
                    Ok(_) => (Outcome::Success, "resolved".to_owned()),
                    Err(r) => (r.outcome, r.detail.clone()),
                };
                e.am.release_account(None, Some(&grant), outcome).await?;
                self.log(
                    lookup.as_str(),
                    if found.is_ok() { "SUCCESS" } else { "FAILED" },
                    outcome,
                    &detail,
                );
                match found {
                    Ok(peer) => peer,
                    Err(r) => return self.settle(r.outcome, &r.detail).await,
                }
            }
        };
        let Some(grant) = self.grant(action, channel.as_deref()).await? else {
            return Ok(());
        };
        // The claim may have run out while this job waited (a slow store, a redelivery): then the target
        // may be another account's already, and this call would reach the person twice.
        if hold_claim(e, self.task.id, self.target_id, self.epoch).await?.is_none() {
            e.am.release_account(None, Some(&grant), Outcome::Transient).await?;
            tracing::warn!(
                task_id = self.task.id,
                target_id = self.target_id,
                epoch = self.epoch,
                "worker: the claim ran out before the call: no call made"
            );
            return Ok(());
        }
        failpoints::hit("after_grant");
        let lease = e.am.policy().lease_ttl;
        let action_type = self.task.spec.action_type;
        let report = match &room {
            Some(room) => within_claim(lease, action_type, client.invite(room, &peer)).await,
            None => {
                // Pinned before the send: a worker dying between the send and its commit leaves the
                // target to this account alone, which Telegram dedups by random id.
                e.store
                    .pin_target(self.task.id, self.target_id, self.epoch, self.account_id)
                    .await?;
                self.pinned = Some(self.account_id.to_owned());
                let text = self.render(&peer);
                let key = DeliveryKey {
                    task_id: self.task.id,
                    target_id: self.target_id,
                };
                within_claim(lease, action_type, client.send_message(&peer, &text, key)).await
            }
        };
        failpoints::hit("after_call");
        e.am.release_account(None, Some(&grant), report.outcome).await?;
        let status = if matches!(report.outcome, Outcome::Success | Outcome::AlreadyDone) {
            "SUCCESS"
        } else {
            "FAILED"
        };
        self.log(action.as_str(), status, report.outcome, &report.detail);
        self.settle(report.outcome, &report.detail).await?;
        failpoints::hit("after_commit");
        self.count_use(report.outcome).await?;
        self.circuit_breaker().await
    }

    /// The channel as this account sees it: looked up once (a granted `channel_lookup`) and kept on the
    /// account's row of the task it was looked up for. None when this account may not invite there (it is excluded for the task
    /// and the target goes back) or must wait for the grant.
    async fn room(&mut self, client: &mut dyn AccountClient) -> anyhow::Result<Option<ChannelInfo>> {
        let e = self.e;
        let Some(channel_ref) = self.task.spec.target_channel.clone() else {
            self.settle_final(TargetStatus::Failed, "no_target_channel", json!({}))
                .await?;
            return Ok(None);
        };
        // Found already, for this task or another with the channel: no second call for the same answer.
        if let Some(info) = e
            .store
            .known_channel(self.account_id, &channel_ref.to_string())
            .await?
            .as_ref()
            .and_then(channel_from_json)
        {
            return Ok(Some(info));
        }
        let Some(grant) = self.grant(AmAction::ChannelLookup, None).await? else {
            return Ok(None);
        };
        let found = client.lookup_channel(&channel_ref).await;
        let outcome = found.as_ref().map_or_else(|r| r.outcome, |_| Outcome::Success);
        e.am.release_account(None, Some(&grant), outcome).await?;
        match found {
            Ok(info) if info.can_invite => {
                self.log(
                    "channel_lookup",
                    "SUCCESS",
                    outcome,
                    &format!("{} {}", info.kind.as_str(), info.title),
                );
                self.remember_channel(&info).await?;
                Ok(Some(info))
            }
            Ok(info) => {
                let detail = format!("this account may not add members to {}", info.title);
                self.log(
                    "channel_lookup",
                    "FAILED",
                    Outcome::Channel(ChannelProblem::NoRights),
                    &detail,
                );
                self.channel_problem(Outcome::Channel(ChannelProblem::NoRights), &detail, &channel_ref)
                    .await?;
                Ok(None)
            }
            Err(r) => {
                self.log("channel_lookup", "FAILED", r.outcome, &r.detail);
                match r.outcome {
                    Outcome::Channel(_) => self.channel_problem(r.outcome, &r.detail, &channel_ref).await?,
                    other => self.settle(other, &r.detail).await?,
                }
                Ok(None)
            }
        }
    }

    /// Keeps what this account found of the task's channel on the task's account row.
    async fn remember_channel(&self, info: &ChannelInfo) -> anyhow::Result<()> {
        let e = self.e;
        e.store
            .remember_task_channel(
                self.task.id,
                self.account_id,
                self.task.spec.platform.as_str(),
                &channel_json(info),
                e.clock.now(),
            )
            .await?;
        Ok(())
    }

    /// The grant for one call, or None when the AM says wait or no (the target goes back for later).
    async fn grant(&mut self, action: AmAction, channel: Option<&str>) -> anyhow::Result<Option<Grant>> {
        let answer = self.e.am.check_rate_limit(self.account_id, action, channel).await;
        self.e.metrics.am_decision(action, &answer);
        match answer {
            RateLimit::Granted(g) => Ok(Some(g)),
            RateLimit::Wait { until, reason, .. } => {
                self.give_back(Some(until), &format!("{}: {reason}", action.as_str()))
                    .await?;
                Ok(None)
            }
            RateLimit::Denied { reason, .. } => {
                self.give_back(None, &format!("{}: {reason}", action.as_str())).await?;
                Ok(None)
            }
        }
    }

    /// Settles the target by what the call came to.
    async fn settle(&mut self, outcome: Outcome, detail: &str) -> anyhow::Result<()> {
        let result = json!({ "outcome": outcome.as_str(), "detail": detail, "account_id": self.account_id });
        match outcome {
            Outcome::Success => self.settle_final(TargetStatus::Succeeded, "success", result).await,
            Outcome::AlreadyDone => {
                self.settle_final(TargetStatus::AlreadyDone, "already_done", result)
                    .await
            }
            Outcome::Target(p) => {
                self.settle_final(TargetStatus::Failed, Outcome::Target(p).as_str(), result)
                    .await
            }
            Outcome::Account(_) => {
                self.account_problem(outcome, detail).await?;
                self.give_back(None, detail).await
            }
            Outcome::Channel(_) => match self.task.spec.target_channel.clone() {
                Some(c) => self.channel_problem(outcome, detail, &c).await,
                None => self.settle_final(TargetStatus::Failed, outcome.as_str(), result).await,
            },
            Outcome::Unknown => {
                if self.attempts + 1 >= self.e.config.max_attempts {
                    return self.settle_final(TargetStatus::Unknown, "unknown", result).await;
                }
                // Only this account, with the same random id, may try again: Telegram drops a
                // repeat only per sender.
                let at = self.e.clock.now() + self.e.config.unknown_retry_after;
                self.reschedule(Some(at), Some(self.account_id.to_owned()), true, detail)
                    .await
            }
            Outcome::Transient | Outcome::RetryLater => {
                if self.attempts + 1 >= self.e.config.max_attempts {
                    let reason = format!("gave up after {} attempts", self.attempts + 1);
                    return self.settle_final(TargetStatus::Failed, &reason, result).await;
                }
                let at = self.backoff();
                self.reschedule(Some(at), None, true, detail).await
            }
        }
    }

    async fn settle_final(&mut self, status: TargetStatus, reason: &str, result: Value) -> anyhow::Result<()> {
        let s = Settlement {
            task_id: self.task.id,
            target_id: self.target_id,
            epoch: self.epoch,
            now: self.e.clock.now(),
            status,
            reason: Some(reason.to_owned()),
            next_attempt_at: None,
            pin_account: None,
            count_attempt: true,
            result,
            logs: std::mem::take(&mut self.logs),
        };
        self.commit(s).await
    }

    async fn reschedule(
        &mut self,
        at: Option<DateTime<Utc>>,
        pin: Option<String>,
        count_attempt: bool,
        detail: &str,
    ) -> anyhow::Result<()> {
        let s = Settlement {
            task_id: self.task.id,
            target_id: self.target_id,
            epoch: self.epoch,
            now: self.e.clock.now(),
            status: TargetStatus::Pending,
            reason: None,
            next_attempt_at: at,
            pin_account: pin,
            count_attempt,
            result: json!({ "last": detail }),
            logs: std::mem::take(&mut self.logs),
        };
        self.commit(s).await
    }

    /// The target goes back without counting a try (the account, not the target, could not act),
    /// keeping its pin: a message that may have gone out through an account stays with it.
    async fn give_back(&mut self, at: Option<DateTime<Utc>>, detail: &str) -> anyhow::Result<()> {
        let pin = self.pinned.clone();
        self.reschedule(at, pin, false, detail).await
    }

    async fn commit(&mut self, s: Settlement) -> anyhow::Result<()> {
        if !self.e.store.settle_target(&s).await? {
            tracing::info!(
                task_id = s.task_id,
                target_id = s.target_id,
                epoch = s.epoch,
                "worker: the claim moved on (a redelivered job): nothing written"
            );
        } else {
            self.e.metrics.targets_processed(self.task.spec.platform, s.status, 1);
        }
        Ok(())
    }

    async fn account_problem(&mut self, outcome: Outcome, detail: &str) -> anyhow::Result<()> {
        let platform = self.task.spec.platform.as_str();
        self.e
            .am
            .handle_error(self.account_id, platform, outcome, detail, None)
            .await?;
        self.e.metrics.account_problem(self.task.spec.platform, outcome);
        Ok(())
    }

    /// The channel refuses this account (it is excluded for the task, the target goes back) or
    /// everyone (the task's remaining work ends with that reason).
    async fn channel_problem(&mut self, outcome: Outcome, detail: &str, channel: &ChannelRef) -> anyhow::Result<()> {
        let e = self.e;
        let key = channel.to_string();
        e.am.handle_error(
            self.account_id,
            self.task.spec.platform.as_str(),
            outcome,
            detail,
            Some(&key),
        )
        .await?;
        match outcome {
            Outcome::Channel(ChannelProblem::Full | ChannelProblem::NotFound) => {
                let reason = outcome.as_str();
                self.settle_final(TargetStatus::Skipped, reason, json!({ "detail": detail }))
                    .await?;
                let now = e.clock.now();
                let skipped = e
                    .store
                    .end_open_targets(self.task.id, TargetStatus::Skipped, reason, now)
                    .await?;
                let counts = e.store.target_counts(self.task.id, now).await?;
                let (to, why) = if counts.succeeded + counts.already_done > 0 {
                    (TaskStatus::Completed, format!("{reason}: {detail}"))
                } else {
                    (TaskStatus::Failed, format!("{reason}: {detail}"))
                };
                let moved = e
                    .store
                    .engine_transition(self.task.id, &[TaskStatus::InProgress], to, Some(&why), now)
                    .await?;
                e.metrics.task_ended(&self.task, to, moved, skipped, now);
                e.events.publish(Event::TaskChanged { task_id: self.task.id }).await;
                Ok(())
            }
            _ => {
                self.exclude(detail).await?;
                self.give_back(None, detail).await
            }
        }
    }

    /// Counts the action and its outcome on the task's account row (`invite_task_accounts.stats`).
    async fn count_use(&mut self, outcome: Outcome) -> anyhow::Result<()> {
        let e = self.e;
        e.store
            .count_task_account_use(
                self.task.id,
                self.account_id,
                self.task.spec.platform.as_str(),
                outcome.as_str(),
                e.clock.now(),
            )
            .await?;
        Ok(())
    }

    async fn exclude(&mut self, why: &str) -> anyhow::Result<()> {
        self.e
            .store
            .exclude_task_account(
                self.task.id,
                self.account_id,
                self.task.spec.platform.as_str(),
                why,
                self.e.clock.now(),
            )
            .await?;
        Ok(())
    }

    /// Pauses the task when most recent actions failed for reasons that are not the targets' own.
    async fn circuit_breaker(&mut self) -> anyhow::Result<()> {
        let e = self.e;
        let window = e.config.breaker_window;
        let recent = e.store.recent_outcomes(self.task.id, window).await?;
        if (recent.len() as i64) < window {
            return Ok(());
        }
        let foreign: Vec<&String> = recent.iter().filter(|o| !targets_own(o)).collect();
        if (foreign.len() as f64) < e.config.breaker_ratio * window as f64 {
            return Ok(());
        }
        let mut kinds: Vec<&str> = foreign.iter().map(|s| s.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let reason = format!(
            "circuit breaker: {} of the last {window} actions failed for reasons that are not the targets' own ({})",
            foreign.len(),
            kinds.join(", ")
        );
        if e.store
            .engine_transition(
                self.task.id,
                &[TaskStatus::InProgress],
                TaskStatus::Paused,
                Some(&reason),
                e.clock.now(),
            )
            .await?
        {
            e.metrics.task_moved(&self.task, TaskStatus::Paused, e.clock.now());
            tracing::warn!(task_id = self.task.id, reason, "task paused");
            e.events.publish(Event::TaskChanged { task_id: self.task.id }).await;
        }
        Ok(())
    }

    fn backoff(&self) -> DateTime<Utc> {
        let c = &self.e.config;
        let exp = c.retry_base * 2i32.saturating_pow(self.attempts.clamp(0, 20) as u32);
        let base = exp.min(c.retry_max);
        let jitter = rand::thread_rng().gen_range(0..=base.num_milliseconds().max(1) / 4);
        self.e.clock.now() + base + Duration::milliseconds(jitter)
    }

    fn log(&mut self, action: &str, status: &str, outcome: Outcome, detail: &str) {
        self.logs.push(NewLog {
            target_id: Some(self.target_id),
            account_id: self.account_id.to_owned(),
            action: action.to_owned(),
            status: status.to_owned(),
            details: json!({ "outcome": outcome.as_str(), "detail": detail }),
        });
    }

    fn target_ref(&self) -> TargetRef {
        let t = self.target;
        TargetRef {
            username: t.username.as_deref().and_then(|u| Username::parse(u).ok()),
            user_id: t.user_id.and_then(PlatformUserId::new),
            phone: t.phone.as_deref().and_then(|p| Phone::parse(p, Region::default()).ok()),
            first_name: t.first_name.clone(),
            last_name: t.last_name.clone(),
        }
    }

    /// The message for this person: a placeholder with no value renders the configured fallback.
    fn render(&self, peer: &platforms::Peer) -> String {
        let Some(template) = &self.task.spec.message_template else {
            return String::new();
        };
        let t = self.target;
        let fallback = &self.e.config.template_fallback;
        template.render(|name| {
            let value = match name {
                "username" => t.username.clone().or_else(|| peer.username.clone()),
                "first_name" => t.first_name.clone().or_else(|| peer.first_name.clone()),
                "last_name" => t.last_name.clone().or_else(|| peer.last_name.clone()),
                "phone" => t.phone.clone(),
                "user_id" => Some(peer.user_id.to_string()),
                other => t.extra.get(other).map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
            };
            Some(
                value
                    .filter(|v| !v.trim().is_empty())
                    .unwrap_or_else(|| fallback.clone()),
            )
        })
    }
}

/// The keys the do-not-contact list is written in.
fn dnc_keys(t: &TargetRef) -> Vec<String> {
    let mut ids = Vec::new();
    if let Some(u) = &t.username {
        ids.push(Identifier::Username(u.clone()));
    }
    if let Some(i) = t.user_id {
        ids.push(Identifier::UserId(i));
    }
    if let Some(p) = &t.phone {
        ids.push(Identifier::Phone(p.clone()));
    }
    ids.iter().map(Identifier::dedup_key).collect()
}

/// The outcomes that are the target's own answer (anything else, repeated, trips the breaker).
fn targets_own(outcome: &str) -> bool {
    matches!(outcome, "success" | "already_done")
        || [
            TargetProblem::PrivacyRestricted,
            TargetProblem::PremiumRequired,
            TargetProblem::NotMutualContact,
            TargetProblem::TooManyChannels,
            TargetProblem::Banned,
            TargetProblem::Deactivated,
            TargetProblem::NotFound,
            TargetProblem::Invalid,
            TargetProblem::Bot,
            TargetProblem::PaidMessagesRequired,
            TargetProblem::Blocked,
            TargetProblem::Refused,
        ]
        .iter()
        .any(|p| Outcome::Target(*p).as_str() == outcome)
}

fn channel_json(c: &ChannelInfo) -> Value {
    json!({
        "id": c.id,
        "access_hash": c.access_hash,
        "kind": c.kind.as_str(),
        "title": c.title,
        "members": c.members,
        "can_invite": c.can_invite,
        "joined": c.joined,
    })
}

fn channel_from_json(v: &Value) -> Option<ChannelInfo> {
    let kind = match v.get("kind")?.as_str()? {
        "broadcast" => ChannelKind::Broadcast,
        "supergroup" => ChannelKind::Supergroup,
        "basic_group" => ChannelKind::BasicGroup,
        _ => return None,
    };
    Some(ChannelInfo {
        id: v.get("id")?.as_i64()?,
        access_hash: v.get("access_hash")?.as_i64()?,
        kind,
        title: v.get("title")?.as_str()?.to_owned(),
        members: v.get("members").and_then(Value::as_i64),
        can_invite: v.get("can_invite")?.as_bool()?,
        joined: v.get("joined")?.as_bool()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_kept_on_the_task_reads_back_the_same() {
        let c = ChannelInfo {
            id: 5,
            access_hash: -7,
            kind: ChannelKind::Broadcast,
            title: "News".into(),
            members: Some(12),
            can_invite: true,
            joined: true,
        };
        assert_eq!(channel_from_json(&channel_json(&c)), Some(c));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_is_abandoned_before_its_claim_can_run_out() {
        let lease = Duration::seconds(30);
        let hangs = || std::future::pending::<Report>();
        let started = tokio::time::Instant::now();
        let message = within_claim(lease, ActionType::SendMessage, hangs()).await;
        assert_eq!(message.outcome, Outcome::Unknown, "a message may have arrived");
        assert_eq!(started.elapsed(), std::time::Duration::from_secs(15));
        assert!(
            message.detail.starts_with("no answer within 15 s"),
            "{}",
            message.detail
        );
        let invite = within_claim(lease, ActionType::InviteToGroup, hangs()).await;
        assert_eq!(
            invite.outcome,
            Outcome::RetryLater,
            "a repeated invite is answered as already a member"
        );

        let quick = async {
            tokio::time::sleep(std::time::Duration::from_secs(14)).await;
            Report::new(Outcome::Success, "added")
        };
        let report = within_claim(lease, ActionType::InviteToGroup, quick).await;
        assert_eq!((report.outcome, report.detail.as_str()), (Outcome::Success, "added"));
    }

    #[test]
    fn the_breaker_counts_only_what_is_not_the_targets_own() {
        assert!(targets_own("success") && targets_own("privacy_restricted") && targets_own("refused"));
        assert!(!targets_own("flood_wait") && !targets_own("transient") && !targets_own("channel_no_rights"));
    }
}
