//! The scheduler: when an account may act, it decides what the account does. The highest priority
//! class with work for the account wins, round-robin among tasks of that class (DESIGN §4a); a task
//! that gets nothing because a higher one holds its accounts shows "preempted by task N".
//!
//! One [`Scheduler::tick`] looks at the store as of now, dispatches what is due, and returns the
//! earliest time anything stored becomes due; [`Scheduler::run`] sleeps until then or until an event.
//! The simulator drives `tick` itself in virtual time. Every claim is a conditional update in the
//! store, so two schedulers overlapping for a moment cannot hand one target out twice.

use std::{
    collections::{HashMap, HashSet},
    hash::{Hash, Hasher},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use domain::{
    outcome::AmAction,
    task::{Task, TaskStatus},
    UserId,
};
use store::{AccountRecord, AccountState, Standing, StoreError, TargetCounts};
use tokio::sync::watch;

use super::{
    audience::ScheduledAudience,
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
    /// One tick at a time; what it remembers between ticks.
    memory: tokio::sync::Mutex<Memory>,
}

/// What the scheduler remembers between ticks. Each view is kept only while what it was read from is
/// unchanged: a task's version (bumped by every change of its targets' states), its roster version
/// (bumped when an account is excluded from it or finds its channel), an account's lease epoch and standing (an account's ledger is written only under a lease, and
/// every lease bumps the epoch). A stale view could only delay work: every claim and every grant is
/// decided again by the store.
#[derive(Default)]
struct Memory {
    /// When each task was last served, for round-robin within a priority class.
    served: HashMap<i64, u64>,
    turn: u64,
    /// The reason last written per task, so it is written only when it changes.
    reasons: HashMap<i64, Reason>,
    tasks: HashMap<i64, TaskView>,
    /// The tasks' rows, each read again when its version moves.
    rows: HashMap<i64, Arc<Task>>,
    /// Per channel (as tasks name it), the accounts that looked it up.
    knowers: HashMap<String, HashSet<String>>,
    accounts: HashMap<String, AccountView>,
    /// A stable number per [`Need`] key, indexing [`AccountView::at`].
    need_ids: HashMap<String, usize>,
    /// When expired claims were last given back.
    reclaimed_at: Option<DateTime<Utc>>,
}

struct TaskView {
    version: i64,
    /// None once this scheduler claimed from the task (read again next tick).
    counts: Option<TargetCounts>,
    /// The roster version `excluded` was read at (None: not yet read).
    roster_version: Option<i64>,
    excluded: HashSet<String>,
    /// A fingerprint of the usable accounts the last check for orphaned pins ran with.
    pins_checked_for: Option<u64>,
}

struct AccountView {
    epoch: i64,
    standing: Standing,
    /// When the account may next act, by [`Need`] id: unknown, or known (None: never).
    at: Vec<Option<Option<DateTime<Utc>>>>,
}

/// The user's accounts on the task's platform that may work for it: `settings.account_ids` narrows
/// them; blocked accounts never work.
pub async fn usable_accounts(engine: &Engine, user: UserId, task: &Task) -> Result<Vec<AccountRecord>, StoreError> {
    let all = engine
        .store
        .list_accounts(user, Some(task.spec.platform.as_str()))
        .await?;
    let wanted = wanted_accounts(task);
    Ok(all
        .into_iter()
        .filter(|a| may_serve((&a.id, &a.platform, &a.standing), task, wanted.as_deref()))
        .collect())
}

/// The accounts `settings.account_ids` names, if it does.
fn wanted_accounts(task: &Task) -> Option<Vec<String>> {
    task.spec.settings.get("account_ids").and_then(|v| {
        v.as_array()
            .map(|ids| ids.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
    })
}

fn may_serve((id, platform, standing): (&str, &str, &Standing), task: &Task, wanted: Option<&[String]>) -> bool {
    platform == task.spec.platform.as_str()
        && wanted.is_none_or(|w| w.iter().any(|x| x == id))
        && !matches!(standing, Standing::Blocked { .. })
}

fn earliest(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// Why a running task is not moving, as shown next to its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Moving,
    PreemptedBy(i64),
    WaitingUntil(DateTime<Utc>),
}

impl Reason {
    fn text(self) -> Option<String> {
        match self {
            Self::Moving => None,
            Self::PreemptedBy(by) => Some(format!("preempted by task {by}")),
            Self::WaitingUntil(t) => Some(format!("waiting for an account until {}", t.to_rfc3339())),
        }
    }

    /// Whether the reason shown still says the same: a wait whose end moved by less than a minute,
    /// and has not passed, is not written again.
    fn same_as(self, new: Reason, now: DateTime<Utc>) -> bool {
        match (self, new) {
            (Self::WaitingUntil(a), Self::WaitingUntil(b)) => a > now && (a - b).num_seconds().abs() < 60,
            (a, b) => a == b,
        }
    }
}

/// A running task as one tick sees it.
struct Running {
    task: Arc<Task>,
    /// Index into the tick's [`Need`]s: the main action in the task's channel.
    need: usize,
    /// The accounts (by the tick's index) that may work for it.
    serving: Bits,
}

/// A set of the tick's accounts, by index: which may serve a task, or any task with a need. Most
/// accounts rest at any moment; with these the tick finds the few that can act without pairing every
/// account with every task.
#[derive(Clone, Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn set(&mut self, i: usize) {
        if self.0.len() <= i / 64 {
            self.0.resize(i / 64 + 1, 0);
        }
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn has(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn add(&mut self, other: &Bits) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (w, o) in self.0.iter_mut().zip(&other.0) {
            *w |= o;
        }
    }

    fn members(&self) -> impl Iterator<Item = usize> + '_ {
        self.0
            .iter()
            .enumerate()
            .flat_map(|(w, bits)| (0..64).filter(move |b| bits & (1 << b) != 0).map(move |b| w * 64 + b))
    }
}

/// What an account must be free for: an action (in a channel).
struct Need {
    action: AmAction,
    channel: Option<String>,
    key: String,
    /// Its stable number in [`Memory::need_ids`].
    id: usize,
}

impl Need {
    fn new(m: &mut Memory, action: AmAction, channel: Option<String>) -> Self {
        let key = format!("{}|{}", action.as_str(), channel.as_deref().unwrap_or(""));
        let next = m.need_ids.len();
        let id = *m.need_ids.entry(key.clone()).or_insert(next);
        Self {
            action,
            channel,
            key,
            id,
        }
    }
}

/// How often claims whose lease expired (their worker died) are given back: well within a lease.
const RECLAIM_EVERY: chrono::Duration = chrono::Duration::seconds(15);

/// The later of two availabilities, None meaning never.
fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    Some(a?.max(b?))
}

/// A hash of an account id; a set of accounts is fingerprinted by the sum of its members' hashes (order
/// does not matter).
fn id_hash(id: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

impl Scheduler {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            memory: tokio::sync::Mutex::default(),
        }
    }

    /// Looks at everything due now and dispatches it.
    pub async fn tick(&self) -> anyhow::Result<Tick> {
        let e = &self.engine;
        let mut memory = self.memory.lock().await;
        let m = &mut *memory;
        let now = e.clock.now();
        if m.reclaimed_at.is_none_or(|t| now - t >= RECLAIM_EVERY || now < t) {
            m.reclaimed_at = Some(now);
            if e.store.reclaim_expired_targets(now).await? > 0 {
                for view in m.tasks.values_mut() {
                    view.counts = None;
                }
            }
        }
        let mut tasks = self.current_tasks(m).await?;
        let (mut wake, started) = self.start_scheduled(&tasks, now).await?;
        if started {
            tasks = self.current_tasks(m).await?;
        }
        let live: HashSet<i64> = tasks.iter().map(|(t, _)| t.id).collect();
        m.tasks.retain(|id, _| live.contains(id));
        m.rows.retain(|id, _| live.contains(id));

        // Every account of the users with running tasks, once, with a hash of its id.
        let mut accounts: Vec<(AccountState, u64)> = Vec::new();
        let mut users: HashMap<i64, std::ops::Range<usize>> = HashMap::new();
        let mut running: Vec<Running> = Vec::new();
        // Channels whose tasks' rosters moved: who knows them is read again.
        let mut stale_channels: HashSet<String> = HashSet::new();
        let mut needs: Vec<Need> = vec![
            Need::new(m, AmAction::ResolveUsername, None),
            Need::new(m, AmAction::ChannelLookup, None),
        ];
        let (resolve, lookup) = (0, 1);
        for (task, roster_version) in tasks {
            if task.status != TaskStatus::InProgress {
                continue;
            }
            let view = self
                .task_view(m, &task, roster_version, &mut stale_channels, now)
                .await?;
            let counts = view.counts.expect("just read");
            if counts.open() == 0 {
                // Read again before a task is finished: a remembered view must never end one.
                let fresh = e.store.target_counts(task.id, now).await?;
                if fresh.open() == 0 {
                    self.finish(&task, fresh.succeeded + fresh.already_done > 0).await?;
                    continue;
                }
            }
            if let Some(at) = counts.next_due_at {
                wake = earliest(wake, at);
            }
            if counts.due == 0 {
                continue;
            }
            let range = match users.get(&task.user_id.get()) {
                Some(r) => r.clone(),
                None => {
                    let start = accounts.len();
                    for a in e.store.account_states(task.user_id).await? {
                        let hash = id_hash(&a.id);
                        accounts.push((a, hash));
                    }
                    users.insert(task.user_id.get(), start..accounts.len());
                    start..accounts.len()
                }
            };
            let wanted = wanted_accounts(&task);
            let mut serving = Bits::default();
            let mut usable = 0u64;
            let mut count = 0;
            for i in range {
                let a = &accounts[i].0;
                if may_serve((&a.id, &a.platform, &a.standing), &task, wanted.as_deref())
                    && !view.excluded.contains(&a.id)
                {
                    serving.set(i);
                    usable = usable.wrapping_add(accounts[i].1);
                    count += 1;
                }
            }
            if view.pins_checked_for != Some(usable) {
                let ids: Vec<String> = serving.members().map(|i| accounts[i].0.id.clone()).collect();
                let orphaned = e
                    .store
                    .end_orphaned_pins(task.id, &ids, "unknown_account_gone", now)
                    .await?;
                if orphaned > 0 {
                    e.metrics
                        .targets_processed(task.spec.platform, domain::audience::TargetStatus::Unknown, orphaned);
                    tracing::warn!(
                        task_id = task.id,
                        orphaned,
                        "messages of unknown outcome whose account can no longer send end as unknown"
                    );
                    view.counts = None;
                }
                view.pins_checked_for = Some(usable);
            }
            if count == 0 && counts.in_progress == 0 {
                self.fail_without_accounts(&task, now).await?;
                continue;
            }
            let (action, channel) = main_action(&task);
            let need = Need::new(m, action, channel);
            let need = match needs.iter().position(|n| n.key == need.key) {
                Some(i) => i,
                None => {
                    needs.push(need);
                    needs.len() - 1
                }
            };
            running.push(Running { task, need, serving });
        }
        for channel in &stale_channels {
            m.knowers.remove(channel);
        }
        m.knowers
            .retain(|channel, _| needs.iter().any(|n| n.channel.as_ref() == Some(channel)));
        for channel in needs.iter().filter_map(|n| n.channel.as_ref()) {
            if !m.knowers.contains_key(channel) {
                let knowers = e.store.channel_knowers(channel).await?;
                m.knowers.insert(channel.clone(), knowers.into_iter().collect());
            }
        }
        // Per need, the accounts serving a task with it.
        let mut by_need = vec![Bits::default(); needs.len()];
        for r in &running {
            by_need[r.need].add(&r.serving);
        }

        // Each account serves the highest priority first, round-robin within it.
        let mut dispatched_to: HashSet<i64> = HashSet::new();
        let mut held_by: HashMap<i64, i64> = HashMap::new();
        // Per need, the earliest an account that cannot act now may act for it.
        let mut need_waits: HashMap<usize, DateTime<Utc>> = HashMap::new();
        let mut dispatched = 0;
        for (account, (record, _)) in accounts.iter().enumerate() {
            let mut wanted: Vec<bool> = by_need.iter().map(|b| b.has(account)).collect();
            // A leased account is at work; it comes back (and wakes the scheduler) when done.
            if !wanted.iter().any(|w| *w) || record.lease_until.is_some_and(|t| t > now) {
                continue;
            }
            // When the account may act for each need, read first and judged at one instant after all
            // the reads: a pause ending between two reads must not hand the account to a lower task.
            wanted[resolve] = true;
            wanted[lookup] = true;
            let mut at: Vec<Option<Option<DateTime<Utc>>>> = vec![None; needs.len()];
            self.availability(m, record, &needs, &mut at, &wanted).await?;
            let at: Vec<Option<DateTime<Utc>>> = at.into_iter().map(Option::flatten).collect();
            // An invite by an account that has not looked the channel up waits for a lookup too; the
            // lookup rarely waits, so who looked what up is asked only when it matters.
            let when = |m: &Memory, r: &Running| {
                let t = later(at[r.need], at[resolve]);
                let lookup_later = match (t, at[lookup]) {
                    (Some(t), Some(l)) => l > t,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                let knows = || {
                    let need = &needs[r.need];
                    need.action != AmAction::Invite
                        || need
                            .channel
                            .as_ref()
                            .and_then(|c| m.knowers.get(c))
                            .is_some_and(|k| k.contains(&record.id))
                };
                if lookup_later && !knows() {
                    later(t, at[lookup])
                } else {
                    t
                }
            };
            let judged_at = e.clock.now();
            // Most accounts rest most of the time: nothing to sort or claim for them. The check is per
            // need, leaving lookups out (they only make an action later).
            let soonest_per_need: Vec<(usize, DateTime<Utc>)> = (0..needs.len())
                .filter(|n| *n != resolve && *n != lookup && wanted[*n])
                .filter_map(|n| later(at[n], at[resolve]).map(|t| (n, t)))
                .collect();
            if soonest_per_need.iter().all(|(_, t)| *t > judged_at) {
                for (n, t) in soonest_per_need {
                    let w = need_waits.entry(n).or_insert(t);
                    *w = (*w).min(t);
                    wake = earliest(wake, t);
                }
                continue;
            }
            let mut list: Vec<usize> = (0..running.len())
                .filter(|i| running[*i].serving.has(account))
                .collect();
            list.sort_by_key(|i| {
                let t = &running[*i].task;
                (
                    std::cmp::Reverse(t.spec.priority.rank()),
                    m.served.get(&t.id).copied().unwrap_or(0),
                    t.id,
                )
            });
            let mut got: Option<usize> = None;
            for i in list.iter().copied() {
                let r = &running[i];
                let Some(t) = when(m, r) else { continue };
                if t > judged_at {
                    wake = earliest(wake, t);
                    let w = need_waits.entry(r.need).or_insert(t);
                    *w = (*w).min(t);
                    continue;
                }
                let Some(lease) = e.am.lease(&record.id, "scheduler").await? else {
                    break;
                };
                let claim = e.store.claim_target(r.task.id, &record.id, now, lease.until).await?;
                if let Some(view) = m.tasks.get_mut(&r.task.id) {
                    view.counts = None;
                }
                match claim {
                    Some(claim) => {
                        self.dispatch(&r.task, &record.id, claim, lease.epoch).await?;
                        dispatched += 1;
                        dispatched_to.insert(r.task.id);
                        m.turn += 1;
                        m.served.insert(r.task.id, m.turn);
                        got = Some(i);
                        break;
                    }
                    None => {
                        e.store.am_unlease(&record.id, lease.epoch).await?;
                    }
                }
            }
            if let Some(winner) = got {
                let rank = running[winner].task.spec.priority.rank();
                for i in list.iter().copied().filter(|i| *i != winner) {
                    if running[i].task.spec.priority.rank() < rank {
                        held_by.entry(running[i].task.id).or_insert(running[winner].task.id);
                    }
                }
            }
        }

        for r in &running {
            let task = &r.task;
            // A wait no longer than the action's own pause is the campaign's normal rhythm, not a reason.
            let rhythm = e.am.policy().action(needs[r.need].action).pause.1;
            let reason = if dispatched_to.contains(&task.id) {
                Reason::Moving
            } else if let Some(by) = held_by.get(&task.id) {
                Reason::PreemptedBy(*by)
            } else {
                match need_waits.get(&r.need) {
                    Some(t) if *t - now > rhythm => Reason::WaitingUntil(*t),
                    _ => Reason::Moving,
                }
            };
            self.show_reason(m, task, reason, now).await?;
        }
        Ok(Tick {
            dispatched,
            next_wake: wake,
        })
    }

    /// The tasks to look after, with their roster versions; a task's row is read again only when its
    /// version moved.
    async fn current_tasks(&self, m: &mut Memory) -> anyhow::Result<Vec<(Arc<Task>, i64)>> {
        let store = &self.engine.store;
        let mut tasks = Vec::new();
        for v in store.engine_task_versions().await? {
            let row = match m.rows.get(&v.id) {
                Some(row) if row.version == v.version => row.clone(),
                _ => match store.engine_task(v.id).await? {
                    Some(task) => {
                        let row = Arc::new(task);
                        m.rows.insert(v.id, row.clone());
                        row
                    }
                    None => continue,
                },
            };
            tasks.push((row, v.roster_version));
        }
        Ok(tasks)
    }

    /// The task's counts, read again only when its version moved, a retry came due or this scheduler
    /// claimed from it; and its excluded accounts, read again only when its roster version moved (its
    /// channel is then marked stale).
    async fn task_view<'m>(
        &self,
        m: &'m mut Memory,
        task: &Task,
        roster_version: i64,
        stale_channels: &mut HashSet<String>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<&'m mut TaskView> {
        let e = &self.engine;
        let fresh = m.tasks.get(&task.id).is_some_and(|v| {
            v.version == task.version && v.counts.as_ref().is_some_and(|c| c.next_due_at.is_none_or(|t| t > now))
        });
        if !fresh {
            let counts = e.store.target_counts(task.id, now).await?;
            let view = m.tasks.entry(task.id).or_insert_with(|| TaskView {
                version: task.version,
                counts: None,
                roster_version: None,
                excluded: HashSet::new(),
                pins_checked_for: None,
            });
            view.version = task.version;
            view.counts = Some(counts);
        }
        let view = m.tasks.get_mut(&task.id).expect("just stored");
        if view.roster_version != Some(roster_version) {
            view.excluded = e.store.excluded_accounts(task.id).await?.into_iter().collect();
            view.roster_version = Some(roster_version);
            if let Some(channel) = &task.spec.target_channel {
                stale_channels.insert(channel.to_string());
            }
        }
        Ok(view)
    }

    /// When the account may next do each need marked in `at` (None: never), from the Account Manager,
    /// read again only after the account's ledger may have changed.
    async fn availability(
        &self,
        m: &mut Memory,
        account: &AccountState,
        needs: &[Need],
        at: &mut [Option<Option<DateTime<Utc>>>],
        wanted: &[bool],
    ) -> anyhow::Result<()> {
        let am = &self.engine.am;
        // Pacing over active hours depends on the hour, not only on the ledger: never remembered.
        let remember = am.policy().active_hours.is_none();
        let ids = m.need_ids.len();
        let view = match m.accounts.get_mut(&account.id) {
            Some(view) => view,
            None => m.accounts.entry(account.id.clone()).or_insert(AccountView {
                epoch: account.lease_epoch,
                standing: account.standing.clone(),
                at: Vec::new(),
            }),
        };
        if !remember || view.epoch != account.lease_epoch || view.standing != account.standing {
            view.epoch = account.lease_epoch;
            view.standing = account.standing.clone();
            view.at.clear();
        }
        view.at.resize(ids, None);
        // What is not remembered is read in one go, for every need at once.
        let unknown: Vec<usize> = (0..needs.len())
            .filter(|i| wanted[*i] && at[*i].is_none() && view.at[needs[*i].id].is_none())
            .collect();
        if !unknown.is_empty() {
            let asks: Vec<(AmAction, Option<&str>)> = unknown
                .iter()
                .map(|i| (needs[*i].action, needs[*i].channel.as_deref()))
                .collect();
            let answers = am.next_available(&account.id, &asks).await?;
            for (i, when) in unknown.into_iter().zip(answers) {
                view.at[needs[i].id] = Some(when);
            }
        }
        for (i, need) in needs.iter().enumerate() {
            if wanted[i] && at[i].is_none() {
                at[i] = view.at[need.id];
            }
        }
        Ok(())
    }

    /// Queues the claimed target for the account.
    async fn dispatch(&self, task: &Task, account: &str, claim: store::Claim, lease_epoch: i64) -> anyhow::Result<()> {
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
            account_id: account.to_owned(),
            epoch: claim.epoch,
            attempts: claim.attempts,
            lease_epoch,
        };
        self.engine.queue.publish(&job, task.spec.priority).await?;
        Ok(())
    }

    /// Starts tasks whose scheduled time has come; returns the next scheduled start, and whether any
    /// task moved.
    async fn start_scheduled(
        &self,
        tasks: &[(Arc<Task>, i64)],
        now: DateTime<Utc>,
    ) -> anyhow::Result<(Option<DateTime<Utc>>, bool)> {
        let e = &self.engine;
        let mut wake = None;
        let mut moved = false;
        for (task, _) in tasks {
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
                match e.scheduled_audience(task, now).await? {
                    ScheduledAudience::Ready => (TaskStatus::InProgress, None),
                    ScheduledAudience::Later(retry_at) => {
                        wake = retry_at.map_or(wake, |t| earliest(wake, t));
                        continue;
                    }
                    ScheduledAudience::NotStarted(why) => (TaskStatus::Pending, Some(why)),
                }
            };
            if e.store
                .engine_transition(task.id, &[TaskStatus::Pending], to, reason.as_deref(), now)
                .await?
            {
                e.metrics.task_moved(task, to, now);
            }
            e.events.publish(Event::TaskChanged { task_id: task.id }).await;
            moved = true;
        }
        Ok((wake, moved))
    }

    /// No account may work for the task any more: what is left is skipped and the task fails.
    async fn fail_without_accounts(&self, task: &Task, now: DateTime<Utc>) -> anyhow::Result<()> {
        let e = &self.engine;
        let skipped = e
            .store
            .end_open_targets(
                task.id,
                domain::audience::TargetStatus::Skipped,
                "no_usable_account",
                now,
            )
            .await?;
        let failed = e
            .store
            .engine_transition(
                task.id,
                &[TaskStatus::InProgress],
                TaskStatus::Failed,
                Some("no usable account left: every account is blocked or may not act here"),
                now,
            )
            .await?;
        e.metrics.task_ended(task, TaskStatus::Failed, failed, skipped, now);
        e.events.publish(Event::TaskChanged { task_id: task.id }).await;
        Ok(())
    }

    /// Every target is final: the task is complete, with a reason when nobody was reached.
    async fn finish(&self, task: &Task, achieved: bool) -> anyhow::Result<()> {
        let e = &self.engine;
        let reason = (!achieved).then_some("every target ended, none of them reached");
        let completed = e
            .store
            .engine_transition(
                task.id,
                &[TaskStatus::InProgress],
                TaskStatus::Completed,
                reason,
                e.clock.now(),
            )
            .await?;
        e.metrics
            .task_ended(task, TaskStatus::Completed, completed, 0, e.clock.now());
        e.events.publish(Event::TaskChanged { task_id: task.id }).await;
        Ok(())
    }

    async fn show_reason(&self, m: &mut Memory, task: &Task, reason: Reason, now: DateTime<Utc>) -> anyhow::Result<()> {
        let shown = m.reasons.get(&task.id).copied();
        if shown.is_some_and(|before| before.same_as(reason, now)) {
            return Ok(());
        }
        m.reasons.insert(task.id, reason);
        let text = reason.text();
        if shown.is_none() && task.status_reason == text {
            return Ok(());
        }
        self.engine.store.set_task_reason(task.id, text.as_deref(), now).await?;
        Ok(())
    }

    /// Ticks until shutdown while this process leads (one scheduler at a time across processes; the
    /// others wait to take over). After each tick it sleeps until the next stored wake-up, an event, or
    /// the idle safety net, whichever comes first.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut events = self.engine.events.subscribe();
        let idle = self.engine.config.idle_wake;
        let mut leadership: Option<Box<dyn store::Leadership>> = None;
        let mut retention = super::retention::Publisher::default();
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
            self.engine.leading.set(leading);
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
            retention.maybe_publish(&self.engine).await;
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
