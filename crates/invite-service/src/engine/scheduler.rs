//! The scheduler: when an account may act, it decides what the account does. The highest priority
//! class with work for the account wins, round-robin among tasks of that class (DESIGN §4a); a task
//! that gets nothing because a higher one holds its accounts shows "preempted by task N".
//!
//! One [`Scheduler::tick`] looks at the store as of now, dispatches what is due, and returns the
//! earliest time anything stored becomes due; [`Scheduler::run`] sleeps until then or until an event.
//! The simulator drives `tick` itself in virtual time. Every claim is a conditional update in the
//! store, so two schedulers overlapping for a moment cannot hand one target out twice.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use domain::{
    outcome::AmAction,
    task::{Task, TaskStatus},
    UserId,
};
use store::{AccountRecord, Standing, StoreError};
use tokio::sync::watch;

use super::{
    events::Event,
    lifecycle::SCHEDULED_PREFIX,
    main_action,
    queue::{Job, TargetData},
    Engine,
};

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    pub dispatched: usize,
    /// The earliest stored time something becomes due; None when nothing waits on time.
    pub next_wake: Option<DateTime<Utc>>,
}

pub struct Scheduler {
    engine: Arc<Engine>,
    /// When each task was last served, for round-robin within a priority class.
    served: Mutex<HashMap<i64, u64>>,
    turn: Mutex<u64>,
    /// The reason last written per task, so it is written only when it changes.
    reasons: Mutex<HashMap<i64, Option<String>>>,
}

/// The user's accounts on the task's platform that may work for it: `settings.account_ids` narrows
/// them; blocked accounts never work.
pub async fn usable_accounts(engine: &Engine, user: UserId, task: &Task) -> Result<Vec<AccountRecord>, StoreError> {
    let wanted: Option<Vec<String>> = task.spec.settings.get("account_ids").and_then(|v| {
        v.as_array()
            .map(|ids| ids.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
    });
    let all = engine
        .store
        .list_accounts(user, Some(task.spec.platform.as_str()))
        .await?;
    Ok(all
        .into_iter()
        .filter(|a| wanted.as_ref().is_none_or(|w| w.contains(&a.id)))
        .filter(|a| !matches!(a.standing, Standing::Blocked { .. }))
        .collect())
}

fn earliest(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Scheduler {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            served: Mutex::default(),
            turn: Mutex::new(0),
            reasons: Mutex::default(),
        }
    }

    /// Looks at everything due now and dispatches it.
    pub async fn tick(&self) -> anyhow::Result<Tick> {
        let e = &self.engine;
        let now = e.clock.now();
        e.store.reclaim_expired_targets(now).await?;
        let mut wake = self.start_scheduled(now).await?;

        // Which tasks each account could serve now.
        let mut running = Vec::new();
        let mut candidates: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut accounts_of_user: HashMap<(i64, String), Vec<AccountRecord>> = HashMap::new();
        // Per task, the accounts that already know its channel (the others must look it up first).
        let mut looked_up: HashMap<i64, Vec<String>> = HashMap::new();
        for task in e.store.engine_tasks().await? {
            if task.status != TaskStatus::InProgress {
                continue;
            }
            let counts = e.store.target_counts(task.id, now).await?;
            if counts.open() == 0 {
                self.finish(&task, counts.succeeded + counts.already_done > 0).await?;
                continue;
            }
            if let Some(at) = counts.next_due_at {
                wake = earliest(wake, at);
            }
            if counts.due == 0 {
                continue;
            }
            let key = (task.user_id.get(), task.spec.platform.as_str().to_owned());
            if !accounts_of_user.contains_key(&key) {
                accounts_of_user.insert(key.clone(), usable_accounts(e, task.user_id, &task).await?);
            }
            let rows = e.store.task_accounts(task.id).await?;
            let excluded: Vec<String> = rows
                .iter()
                .filter(|a| a.status == "excluded")
                .map(|a| a.account_id.clone())
                .collect();
            looked_up.insert(
                task.id,
                rows.into_iter()
                    .filter(|a| a.channel.is_some())
                    .map(|a| a.account_id)
                    .collect(),
            );
            let serving: Vec<&AccountRecord> = accounts_of_user[&key]
                .iter()
                .filter(|a| !excluded.contains(&a.id))
                .collect();
            let usable: Vec<String> = serving.iter().map(|a| a.id.clone()).collect();
            let orphaned = e
                .store
                .end_orphaned_pins(task.id, &usable, "unknown_account_gone", now)
                .await?;
            if orphaned > 0 {
                tracing::warn!(
                    task_id = task.id,
                    orphaned,
                    "messages of unknown outcome whose account can no longer send end as unknown"
                );
            }
            if serving.is_empty() && counts.in_progress == 0 {
                e.store
                    .end_open_targets(
                        task.id,
                        domain::audience::TargetStatus::Skipped,
                        "no_usable_account",
                        now,
                    )
                    .await?;
                e.store
                    .engine_transition(
                        task.id,
                        &[TaskStatus::InProgress],
                        TaskStatus::Failed,
                        Some("no usable account left: every account is blocked or may not act here"),
                        now,
                    )
                    .await?;
                e.events.publish(Event::TaskChanged { task_id: task.id }).await;
                continue;
            }
            let index = running.len();
            for a in serving {
                candidates.entry(a.id.clone()).or_default().push(index);
            }
            running.push(task);
        }

        // Each account serves the highest priority first, round-robin within it.
        let mut dispatched_to: HashMap<i64, usize> = HashMap::new();
        let mut held_by: HashMap<i64, i64> = HashMap::new();
        let mut waiting_until: HashMap<i64, DateTime<Utc>> = HashMap::new();
        let mut dispatched = 0;
        for (account, mut tasks) in candidates {
            {
                let served = self.served.lock().unwrap_or_else(|p| p.into_inner());
                tasks.sort_by_key(|i| {
                    let t = &running[*i];
                    (
                        std::cmp::Reverse(t.spec.priority.rank()),
                        served.get(&t.id).copied().unwrap_or(0),
                        t.id,
                    )
                });
            }
            // When the account may act for each task, read first and judged at one instant after all
            // the reads: a pause ending between two reads must not hand the account to a lower task.
            let mut options = Vec::new();
            for i in tasks.iter().copied() {
                let task = &running[i];
                let (action, channel) = main_action(task);
                let Some(mut at) = e.am.next_available_at(&account, action, channel.as_deref()).await? else {
                    continue;
                };
                if let Some(r) =
                    e.am.next_available_at(&account, AmAction::ResolveUsername, None)
                        .await?
                {
                    at = at.max(r);
                }
                let knows_channel = looked_up.get(&task.id).is_some_and(|a| a.contains(&account));
                if action == AmAction::Invite && !knows_channel {
                    if let Some(l) = e.am.next_available_at(&account, AmAction::ChannelLookup, None).await? {
                        at = at.max(l);
                    }
                }
                options.push((i, at));
            }
            let judged_at = e.clock.now();
            let mut got: Option<usize> = None;
            for (i, at) in options {
                let task = &running[i];
                if at > judged_at {
                    wake = earliest(wake, at);
                    let w = waiting_until.entry(task.id).or_insert(at);
                    *w = (*w).min(at);
                    continue;
                }
                let Some(lease) = e.am.lease(&account, "scheduler").await? else {
                    break;
                };
                match e.store.claim_target(task.id, &account, now, lease.until).await? {
                    Some(claim) => {
                        let t = claim.target;
                        let job = Job::ProcessTargetBatch {
                            task_id: task.id,
                            target_id: t.id,
                            target: TargetData {
                                username: t.username,
                                user_id: t.user_id,
                                phone: t.phone,
                                first_name: t.first_name,
                                last_name: t.last_name,
                                extra: t.extra.as_object().cloned().unwrap_or_default(),
                            },
                            account_id: account.clone(),
                            epoch: claim.epoch,
                            attempts: claim.attempts,
                            lease_epoch: lease.epoch,
                        };
                        e.queue.publish(&job, task.spec.priority).await?;
                        dispatched += 1;
                        *dispatched_to.entry(task.id).or_default() += 1;
                        let mut turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
                        *turn += 1;
                        self.served
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(task.id, *turn);
                        got = Some(i);
                        break;
                    }
                    None => {
                        e.store.am_unlease(&account, lease.epoch).await?;
                    }
                }
            }
            if let Some(winner) = got {
                for i in tasks.iter().copied().filter(|i| *i != winner) {
                    if running[i].spec.priority.rank() < running[winner].spec.priority.rank() {
                        held_by.entry(running[i].id).or_insert(running[winner].id);
                    }
                }
            }
        }

        for task in &running {
            let reason = if dispatched_to.contains_key(&task.id) {
                None
            } else if let Some(by) = held_by.get(&task.id) {
                Some(format!("preempted by task {by}"))
            } else {
                waiting_until
                    .get(&task.id)
                    .map(|t| format!("waiting for an account until {}", t.to_rfc3339()))
            };
            self.show_reason(task, reason, now).await?;
        }
        Ok(Tick {
            dispatched,
            next_wake: wake,
        })
    }

    /// Starts tasks whose scheduled time has come; returns the next scheduled start.
    async fn start_scheduled(&self, now: DateTime<Utc>) -> anyhow::Result<Option<DateTime<Utc>>> {
        let e = &self.engine;
        let mut wake = None;
        for task in e.store.engine_tasks().await? {
            let armed = task.status == TaskStatus::Pending
                && task
                    .status_reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with(SCHEDULED_PREFIX));
            let Some(at) = task.spec.scheduled_start.filter(|_| armed) else {
                continue;
            };
            if at > now {
                wake = earliest(wake, at);
                continue;
            }
            let (to, reason) = if now - at > e.config.start_lateness {
                (
                    TaskStatus::Pending,
                    Some(format!(
                        "not started: it was scheduled for {} and the service could not start it within {} minutes",
                        at.to_rfc3339(),
                        e.config.start_lateness.num_minutes()
                    )),
                )
            } else {
                (TaskStatus::InProgress, None)
            };
            e.store
                .engine_transition(task.id, &[TaskStatus::Pending], to, reason.as_deref(), now)
                .await?;
            e.events.publish(Event::TaskChanged { task_id: task.id }).await;
        }
        Ok(wake)
    }

    /// Every target is final: the task is complete, with a reason when nobody was reached.
    async fn finish(&self, task: &Task, achieved: bool) -> anyhow::Result<()> {
        let e = &self.engine;
        let reason = (!achieved).then_some("every target ended, none of them reached");
        e.store
            .engine_transition(
                task.id,
                &[TaskStatus::InProgress],
                TaskStatus::Completed,
                reason,
                e.clock.now(),
            )
            .await?;
        e.events.publish(Event::TaskChanged { task_id: task.id }).await;
        Ok(())
    }

    async fn show_reason(&self, task: &Task, reason: Option<String>, now: DateTime<Utc>) -> anyhow::Result<()> {
        let changed = {
            let mut reasons = self.reasons.lock().unwrap_or_else(|p| p.into_inner());
            let before = reasons.get(&task.id).cloned().unwrap_or(task.status_reason.clone());
            reasons.insert(task.id, reason.clone());
            before != reason
        };
        if changed {
            self.engine
                .store
                .set_task_reason(task.id, reason.as_deref(), now)
                .await?;
        }
        Ok(())
    }

    /// Ticks until shutdown while this process leads (one scheduler at a time across processes; the
    /// others wait to take over). After each tick it sleeps until the next stored wake-up, an event, or
    /// the idle safety net, whichever comes first.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut events = self.engine.events.subscribe();
        let idle = self.engine.config.idle_wake;
        let mut leadership: Option<Box<dyn store::Leadership>> = None;
        loop {
            let leading = match leadership.as_mut() {
                Some(l) => store::Leadership::still_leading(l.as_mut()).await,
                None => match self.engine.store.try_lead().await {
                    Ok(Some(l)) => {
                        tracing::info!("scheduler: leading");
                        leadership = Some(l);
                        true
                    }
                    Ok(None) => false,
                    Err(err) => {
                        tracing::warn!(error = %err, "scheduler: cannot ask for leadership");
                        false
                    }
                },
            };
            if !leading {
                if leadership.take().is_some() {
                    tracing::warn!("scheduler: leadership lost; waiting to lead again");
                }
                // A follower asks again soon: a dead leader's lock goes with its connection.
                tokio::select! {
                    _ = tokio::time::sleep(idle.min(std::time::Duration::from_secs(3))) => continue,
                    _ = shutdown.changed() => return,
                }
            }
            let next = match self.tick().await {
                Ok(t) => t.next_wake,
                Err(err) => {
                    tracing::error!(error = format!("{err:#}"), "scheduler tick failed");
                    None
                }
            };
            let sleep = next
                .map(|at| (at - self.engine.clock.now()).to_std().unwrap_or_default().min(idle))
                .unwrap_or(idle);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = events.recv() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
