//! `invite-service simulate`: days of campaigns in seconds. The real scheduler, Account Manager, store
//! (SQLite) and Telegram adapter run against the sandbox world on a virtual clock, as a discrete-event
//! loop: tick the scheduler, run every job it queued, jump the clock to the next stored wake-up. Then
//! the world's record is audited against the policy and compared with the store, and what was done
//! is divided by the most the policy allows ([`maximum`]).

pub mod maximum;

use std::{
    collections::{BTreeMap, HashSet},
    path::PathBuf,
    sync::Arc,
    time::Instant,
};

use account_manager::{
    sealing::{DataKey, Sealer},
    AccountManager, Policy,
};
use anyhow::Context;
use chrono::{DateTime, Duration, TimeZone, Utc};
use clock::{ManualClock, SharedClock};
use domain::{
    audience::{ImportReport, TargetDraft, TargetSource, TargetStatus},
    channel::ChannelRef,
    task::{ActionType, Platform, Priority, TaskSpec},
    username::Username,
    UserId,
};
use platforms::{
    sandbox::{people::PeopleMix, SandboxWorld, WorldConfig, BROADCAST_ADD_LIMIT},
    telegram::TelegramConfig,
};
use serde::Serialize;
use store::{
    AccountKind, ImportOutcome, ImportRequest, ImportStart, NewAccount, PageRequest, RequestMeta, StoreOptions,
    TargetQuery,
};

use self::maximum::{maximum, ChannelShape, Maximum, Shape};
use crate::{
    engine::{
        events::Local, lifecycle::Move, queue::memory::MemoryQueue, scheduler::Scheduler, worker, Engine, EngineConfig,
        Platforms,
    },
    telemetry::Metrics,
};

/// Who the audience is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Audience {
    /// Everyone exists and accepts: what is done depends on the limits alone.
    Accepting,
    /// The sandbox's default mix (unknown usernames, privacy settings, bots, …); refusals spend
    /// invites too, so the maximum still holds, but it stays an upper bound.
    Mixed,
}

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub accounts: usize,
    pub channels: usize,
    pub tasks: usize,
    pub targets: usize,
    pub days: f64,
    pub seed: u64,
    /// Every other channel is a broadcast channel (the 200-subscriber rule applies to it).
    pub broadcast: bool,
    pub audience: Audience,
    /// A SQLite file to keep; otherwise a temporary one in memory-backed storage, removed afterwards.
    pub db: Option<PathBuf>,
    /// Log to stderr with this filter (e.g. `warn`, `invite_service=info`), stamped with virtual time.
    pub log: Option<String>,
}

/// The extremes seen in the world's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observed {
    pub max_invites_per_account_24h: usize,
    pub max_invites_per_account_channel_24h: usize,
    pub max_invites_per_account_channel_total: usize,
    pub min_seconds_between_invites_of_an_account: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    /// Invite calls made within the simulated days (every call that spent an invite).
    pub actions: u64,
    pub theoretical_max: u64,
    pub utilization: f64,
    pub violations: usize,
    pub duplicates: usize,
    /// Targets unaccounted for: still claimed after the run, a success with no delivery in the world,
    /// or a delivery the store does not record as a success.
    pub lost: u64,
    pub wall_seconds: f64,
    pub observed: Observed,
    /// The theoretical maximum with its formula.
    pub maximum: Maximum,
    pub simulated_days: f64,
    pub accounts: usize,
    pub channels: usize,
    pub tasks: usize,
    pub targets: usize,
    /// People added to channels.
    pub delivered: usize,
    /// Targets by final state at the end (open ones included).
    pub targets_by_state: BTreeMap<String, i64>,
    pub scheduler_ticks: u64,
    /// Wall time spent in scheduler ticks and in jobs.
    pub scheduler_seconds: f64,
    pub jobs: u64,
    pub job_seconds: f64,
    pub violation_list: Vec<platforms::sandbox::audit::Finding>,
}

impl SimReport {
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "simulated {:.2} days: {} accounts, {} channels, {} tasks, {} targets\n",
            self.simulated_days, self.accounts, self.channels, self.tasks, self.targets
        );
        out.push_str(&format!("actions (invites made):  {}\n", self.actions));
        out.push_str(&format!("theoretical maximum:     {}\n", self.theoretical_max));
        out.push_str(&format!("  {}\n", self.maximum.formula));
        out.push_str(&format!("utilization:             {:.2} %\n", self.utilization * 100.0));
        out.push_str(&format!("violations:              {}\n", self.violations));
        for f in &self.violation_list {
            out.push_str(&format!("  {} {:?}: {}\n", f.rule, f.account_id, f.detail));
        }
        out.push_str(&format!("duplicates:              {}\n", self.duplicates));
        out.push_str(&format!("lost:                    {}\n", self.lost));
        out.push_str(&format!("people added:            {}\n", self.delivered));
        let o = &self.observed;
        out.push_str(&format!(
            "observed: most invites by one account in 24 h {}, in one channel in 24 h {}, in one channel in all {}, shortest gap {} s\n",
            o.max_invites_per_account_24h,
            o.max_invites_per_account_channel_24h,
            o.max_invites_per_account_channel_total,
            o.min_seconds_between_invites_of_an_account.map_or("-".into(), |s| format!("{s:.1}")),
        ));
        let states: Vec<String> = self.targets_by_state.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push_str(&format!("targets: {}\n", states.join(", ")));
        out.push_str(&format!(
            "scheduler ticks {} ({:.1} s), jobs {} ({:.1} s), wall time {:.1} s\n",
            self.scheduler_ticks, self.scheduler_seconds, self.jobs, self.job_seconds, self.wall_seconds
        ));
        out
    }
}

/// Runs [`simulate`] on a thread of its own with a single-threaded runtime, kept to one CPU. The
/// simulation is one sequential loop whose every store call hands work to SQLite's own thread and waits
/// for the answer; on one CPU each hand-over is a switch there instead of waking another CPU, which
/// makes a run several times faster. Threads started from it (SQLite's) inherit the CPU.
pub fn simulate_on_one_cpu(options: SimOptions, policy: Policy) -> anyhow::Result<SimReport> {
    std::thread::Builder::new()
        .name("simulate".into())
        .spawn(move || {
            keep_to_one_cpu();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(simulate(&options, policy))
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("the simulation thread panicked"))?
}

fn keep_to_one_cpu() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_getcpu takes no arguments; the set is a plain bit mask, zeroed, with one CPU
    // set, and sched_setaffinity(0, …) only changes the calling thread.
    unsafe {
        let cpu = libc::sched_getcpu();
        if cpu >= 0 {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                tracing::warn!("simulate: could not keep to one CPU; the run will be slower");
            }
        }
    }
}

/// A temporary database file, removed when dropped.
struct TempDb(PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// The campaign's channels: supergroups, or with `broadcast` every other one a broadcast channel.
fn channel_name(i: usize, broadcast: bool) -> String {
    if broadcast && i % 2 == 1 {
        format!("sim{i:03}_channel")
    } else {
        format!("sim{i:03}_group")
    }
}

pub async fn simulate(options: &SimOptions, policy: Policy) -> anyhow::Result<SimReport> {
    anyhow::ensure!(
        options.accounts > 0 && options.channels > 0 && options.tasks > 0,
        "accounts, channels and tasks must be at least 1"
    );
    anyhow::ensure!(
        options.tasks >= options.channels,
        "every channel needs a task: --tasks must be at least --channels"
    );
    anyhow::ensure!(
        options.days > 0.0 && options.days <= 366.0,
        "--days must be above 0 and at most 366"
    );
    let wall = Instant::now();
    let (path, _temp) = match &options.db {
        Some(p) => (p.clone(), None),
        None => {
            let dir = ["/dev/shm", "/tmp"]
                .into_iter()
                .map(PathBuf::from)
                .find(|d| d.is_dir())
                .unwrap_or_else(std::env::temp_dir);
            let p = dir.join(format!(
                "invite-sim-{}-{}.db",
                std::process::id(),
                rand::random::<u32>()
            ));
            (p.clone(), Some(TempDb(p)))
        }
    };
    // The loop waits for each answer: one connection, whose page cache no other connection empties.
    let one_connection = StoreOptions {
        single_connection: true,
        ..StoreOptions::default()
    };
    let store = store::open(&format!("sqlite:{}", path.display()), &one_connection)
        .await
        .with_context(|| format!("cannot open the simulation database {}", path.display()))?;
    store.migrate().await?;

    let start = Utc
        .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
        .single()
        .expect("a valid time");
    let length = Duration::milliseconds((options.days * 86_400_000.0) as i64);
    let end = start + length;
    let manual = Arc::new(ManualClock::new(start));
    let clock: SharedClock = manual.clone();
    if let Some(filter) = &options.log {
        crate::telemetry::init_logging(filter, clock.clone());
    }
    let world_config = WorldConfig {
        seed: options.seed,
        people: match options.audience {
            Audience::Accepting => PeopleMix::nobody_refuses(),
            Audience::Mixed => PeopleMix::default(),
        },
        ..WorldConfig::default()
    };
    let world = SandboxWorld::new(store.clone(), clock.clone(), world_config);
    let max_running = i64::try_from(options.tasks)?;
    let queue = Arc::new(MemoryQueue::default());
    let engine = Arc::new(Engine {
        store: store.clone(),
        clock: clock.clone(),
        am: AccountManager::new(store.clone(), clock.clone(), policy.clone(), Some(options.seed)),
        platforms: Platforms::new(TelegramConfig::default(), world.clone()),
        sealer: Arc::new(Sealer::new(&DataKey::generate())),
        queue: queue.clone(),
        events: Arc::new(Local::default()),
        metrics: Metrics::new(),
        leading: Default::default(),
        parsing: None,
        config: EngineConfig {
            max_running_tasks: max_running,
            ..EngineConfig::default()
        },
    });
    let user = UserId::new(1).expect("1 is a user id");
    let (shape, tasks) = setup(&engine, &world, user, options, start).await?;
    let maximum = maximum(&policy, &Shape { length, ..shape });

    let scheduler = Scheduler::new(engine.clone());
    let (mut ticks, mut jobs) = (0u64, 0u64);
    let (mut tick_seconds, mut job_seconds) = (0.0, 0.0);
    loop {
        let now = clock.now();
        if now >= end {
            break;
        }
        let started = Instant::now();
        let tick = scheduler.tick().await?;
        ticks += 1;
        tick_seconds += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut ran = 0;
        while let Some(job) = queue.try_take() {
            worker::execute(&engine, &job).await?;
            ran += 1;
        }
        jobs += ran;
        job_seconds += started.elapsed().as_secs_f64();
        if ran > 0 {
            // Accounts came back: look again at this same instant.
            continue;
        }
        match tick.next_wake {
            None => break,
            Some(at) => manual.set(at.max(now + Duration::milliseconds(1)).min(end)),
        }
    }

    let (calls, deliveries) = store.world_record().await?;
    let calls: Vec<_> = calls.into_iter().filter(|c| c.at < end).collect();
    let audit = platforms::sandbox::audit::audit(&calls, &deliveries, &policy);
    let (lost, by_state) = reconcile(&engine, &world, user, &tasks, &deliveries).await?;
    let actions = audit.invites_made as u64;
    Ok(SimReport {
        actions,
        theoretical_max: maximum.value,
        utilization: if maximum.value == 0 {
            0.0
        } else {
            actions as f64 / maximum.value as f64
        },
        violations: audit.violations,
        duplicates: audit.duplicates,
        lost,
        wall_seconds: wall.elapsed().as_secs_f64(),
        observed: Observed {
            max_invites_per_account_24h: audit.max_invites_per_account_24h,
            max_invites_per_account_channel_24h: audit.max_invites_per_account_channel_24h,
            max_invites_per_account_channel_total: audit.max_invites_per_account_channel_total,
            min_seconds_between_invites_of_an_account: audit.min_seconds_between_invites_of_an_account,
        },
        maximum,
        simulated_days: options.days,
        accounts: options.accounts,
        channels: options.channels,
        tasks: options.tasks,
        targets: options.targets,
        delivered: audit.invites_delivered,
        targets_by_state: by_state,
        scheduler_ticks: ticks,
        scheduler_seconds: tick_seconds,
        jobs,
        job_seconds,
        violation_list: audit.violation_list,
    })
}

fn username_of(task: usize, i: usize) -> String {
    format!("sim_t{task:03}_p{i:06}")
}

/// Accounts, tasks with their audiences, all started; the campaign's shape for the maximum, and each
/// task's channel.
async fn setup(
    engine: &Engine,
    world: &SandboxWorld,
    user: UserId,
    options: &SimOptions,
    now: DateTime<Utc>,
) -> anyhow::Result<(Shape, Vec<(i64, String)>)> {
    let meta = RequestMeta {
        request_id: "simulate".into(),
        client_addr: None,
    };
    for i in 0..options.accounts {
        let account = NewAccount {
            id: uuid::Uuid::new_v4().to_string(),
            platform: Platform::Telegram.as_str().to_owned(),
            name: format!("Simulated {i}"),
            kind: AccountKind::Sandbox,
            session_sealed: None,
            api_id: None,
            api_hash_sealed: None,
            session_facts: serde_json::json!({}),
        };
        engine.store.create_account(user, &account, now, &meta).await?;
    }
    let mut channels = vec![
        ChannelShape {
            targets: 0,
            add_limit: None,
        };
        options.channels
    ];
    for (c, shape) in channels.iter_mut().enumerate() {
        let name = channel_name(c, options.broadcast);
        if name.ends_with("channel") {
            // The members it has room for, and the one invite that finds it full.
            shape.add_limit = Some((BROADCAST_ADD_LIMIT - world.base_members(&name)).max(0) as u64 + 1);
        }
    }
    let mut tasks = Vec::new();
    for t in 0..options.tasks {
        let c = t % options.channels;
        let spec = TaskSpec {
            name: format!("Simulated campaign {t}"),
            description: None,
            platform: Platform::Telegram,
            action_type: ActionType::InviteToGroup,
            target_channel: Some(ChannelRef::parse(&format!("@{}", channel_name(c, options.broadcast)))?),
            message_template: None,
            priority: Priority::Normal,
            scheduled_start: None,
            settings: serde_json::Map::new(),
        };
        let task = engine.store.create_task(user, &spec, now, &meta).await?;
        // The targets spread evenly over the tasks.
        let count = options.targets / options.tasks + usize::from(t < options.targets % options.tasks);
        let request = ImportRequest {
            task_id: task.id,
            source: TargetSource::Manual,
            file_name: None,
            dry_run: false,
            max_targets: count.max(1),
        };
        let ImportStart::Started(mut sink) = engine.store.begin_import(user, request, now, &meta).await? else {
            anyhow::bail!("cannot import into simulated task {}", task.id);
        };
        let mut report = ImportReport::default();
        let drafts: Vec<TargetDraft> = (0..count)
            .map(|i| TargetDraft {
                row: i + 1,
                username: Some(Username::parse(&username_of(t, i)).expect("a valid username")),
                user_id: None,
                user_id_is_hint: false,
                phone: None,
                first_name: None,
                last_name: None,
                extra: serde_json::Map::new(),
            })
            .collect();
        report.total_rows = drafts.len();
        for chunk in drafts.chunks(5_000) {
            sink.add(chunk.to_vec(), &mut report).await?;
        }
        match sink.finish(report).await? {
            ImportOutcome::Done { .. } => {}
            other => anyhow::bail!("the simulated import was refused: {other:?}"),
        }
        channels[c].targets += count as u64;
        tasks.push((task.id, channel_name(c, options.broadcast)));
        engine
            .apply_move(user, task.id, Move::Start, &meta)
            .await
            .with_context(|| format!("cannot start simulated task {}", task.id))?;
    }
    let shape = Shape {
        accounts: options.accounts as u64,
        channels,
        length: Duration::zero(),
    };
    Ok((shape, tasks))
}

/// Compares the store with the world: targets still claimed, successes the world did not see, and
/// people added whom the store does not count. Also the targets by state.
async fn reconcile(
    engine: &Engine,
    world: &SandboxWorld,
    user: UserId,
    tasks: &[(i64, String)],
    deliveries: &[store::WorldDelivery],
) -> anyhow::Result<(u64, BTreeMap<String, i64>)> {
    let now = engine.clock.now();
    let mut by_state: BTreeMap<String, i64> = BTreeMap::new();
    let mut stuck = 0;
    let mut succeeded: HashSet<(i64, i64)> = HashSet::new();
    for (task_id, channel) in tasks {
        let counts = engine.store.target_counts(*task_id, now).await?;
        stuck += counts.in_progress;
        for (state, n) in [
            ("pending", counts.due + counts.waiting),
            ("in_progress", counts.in_progress),
            ("succeeded", counts.succeeded),
            ("already_done", counts.already_done),
            ("failed", counts.failed),
            ("skipped", counts.skipped),
            ("unknown", counts.unknown),
        ] {
            *by_state.entry(state.to_owned()).or_default() += n;
        }
        let channel = world.chat_id(channel);
        let mut page = 1;
        loop {
            let query = TargetQuery {
                status: Some(TargetStatus::Succeeded),
                page: PageRequest { page, page_size: 1000 },
            };
            let Some(found) = engine.store.list_targets(user, *task_id, &query).await? else {
                break;
            };
            for t in &found.items {
                let person = t
                    .username
                    .as_ref()
                    .and_then(|u| world.people().by_username(u))
                    .map_or(-1, |p| p.user_id);
                succeeded.insert((channel, person));
            }
            if i64::from(page) * 1000 >= found.total {
                break;
            }
            page += 1;
        }
    }
    let added: HashSet<(i64, i64)> = deliveries
        .iter()
        .filter(|d| d.kind == "invite")
        .map(|d| (d.channel_id.unwrap_or_default(), d.user_id))
        .collect();
    let unfounded = succeeded.difference(&added).count() as i64;
    let unrecorded = added.difference(&succeeded).count() as i64;
    if unfounded + unrecorded > 0 {
        tracing::error!(
            unfounded,
            unrecorded,
            "the store and the world disagree on who was added"
        );
    }
    Ok(((stuck + unfounded + unrecorded) as u64, by_state))
}
