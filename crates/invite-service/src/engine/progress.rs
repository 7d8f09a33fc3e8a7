//! Where a task stands, for its status page: where its targets are, what each account serving it is
//! doing (working, resting until …, restricted, blocked, excluded), when anything may next happen,
//! and when it should be done ([`estimate`]). Read-only: it asks the store and the Account Manager's
//! rules, and takes no slot, no lease, nothing.

use account_manager::{
    policy::{decide, Decision},
    AccountManager,
};
use chrono::{DateTime, Utc};
use domain::{
    outcome::AmAction,
    task::{Task, TaskStatus},
};
use store::{AccountRecord, Ledger, LedgerAsk, Standing, StoreError, TargetCounts};

use super::{
    estimate::{self, AccountInput, Cost, Demand, Estimate},
    main_action,
    scheduler::usable_accounts,
    Engine,
};

/// What one account is doing for the task.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountView {
    pub account_id: String,
    pub name: String,
    /// `working` (may act now, or acting), `resting` (a pause, a full window or a flood wait, until
    /// `until`), `restricted` (may not contact strangers until `until`), `blocked`, `excluded` (may not
    /// act for this task), `unavailable` (may never act in this channel again).
    pub state: &'static str,
    pub reason: Option<String>,
    pub until: Option<DateTime<Utc>>,
    /// When it may next act for the task (None: never, as things stand).
    pub next_available_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub at: DateTime<Utc>,
    pub counts: TargetCounts,
    pub accounts: Vec<AccountView>,
    /// The earliest time an account may act for it, or its next due retry; None when it is not running
    /// or nothing is left to start.
    pub next_action_at: Option<DateTime<Utc>>,
    /// When it should be done; when it is not running, no time and the reason.
    pub estimate: Estimate,
}

/// The ledgers of the task's main action and of the resolution before it, in one read.
async fn ledgers(
    e: &Engine,
    account_id: &str,
    action: AmAction,
    channel: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<(Ledger, Ledger)>, StoreError> {
    let ask = |action: AmAction, channel| LedgerAsk {
        action: action.as_str(),
        channel,
        lookback: e.am.policy().lookback(action),
    };
    let asks = [ask(action, channel), ask(AmAction::ResolveUsername, None)];
    Ok(e.store.am_ledgers(account_id, now, &asks).await?.and_then(|l| {
        let mut l = l.into_iter();
        Some((l.next()?, l.next()?))
    }))
}

/// The Account Manager's own answer for one action, as of `now`, without taking anything.
fn verdict(e: &Engine, action: AmAction, has_channel: bool, ledger: &Ledger, now: DateTime<Utc>) -> Decision {
    decide(e.am.policy(), action, has_channel, ledger, now, |low, _| low)
}

fn view(
    a: &AccountRecord,
    state: &'static str,
    reason: Option<String>,
    until: Option<DateTime<Utc>>,
    next_available_at: Option<DateTime<Utc>>,
) -> AccountView {
    AccountView {
        account_id: a.id.clone(),
        name: a.name.clone(),
        state,
        reason,
        until,
        next_available_at,
    }
}

/// What a target costs this account: the task's main action and the resolution before it.
fn account_input(
    e: &Engine,
    a: &AccountRecord,
    action: AmAction,
    in_channel: bool,
    main: Ledger,
    resolve: Ledger,
) -> AccountInput {
    let rules = |action| e.am.policy().action(action).clone();
    AccountInput {
        account_id: a.id.clone(),
        costs: vec![
            Cost {
                action,
                rules: rules(action),
                in_channel,
                ledger: main,
            },
            Cost {
                action: AmAction::ResolveUsername,
                rules: rules(AmAction::ResolveUsername),
                in_channel: false,
                ledger: resolve,
            },
        ],
    }
}

/// What an account is doing, as the Account Manager would answer now for the task's main action and
/// for the resolution before it (the scheduler gives an account work when both may go).
fn account_view(
    e: &Engine,
    a: &AccountRecord,
    action: AmAction,
    in_channel: bool,
    main: &Ledger,
    resolve: &Ledger,
    now: DateTime<Utc>,
) -> AccountView {
    let standing = AccountManager::effective(&main.standing, now);
    if let Standing::Blocked { reason } = &standing {
        return view(a, "blocked", Some(reason.clone()), None, None);
    }
    let answers = [
        (action, verdict(e, action, in_channel, main, now)),
        (
            AmAction::ResolveUsername,
            verdict(e, AmAction::ResolveUsername, false, resolve, now),
        ),
    ];
    let mut next = now;
    let mut why = None;
    for (what, answer) in answers {
        match answer {
            Decision::Grant { .. } => {}
            Decision::Wait { until, reason } if until > next => {
                next = until;
                why = Some(format!("{}: {reason}", what.as_str()));
            }
            Decision::Wait { .. } => {}
            Decision::Deny { reason, .. } => return view(a, "unavailable", Some(reason), None, None),
        }
    }
    let state = match (&standing, next > now) {
        (_, false) => "working",
        (Standing::Restricted { .. }, true) => "restricted",
        (_, true) => "resting",
    };
    view(a, state, why, (next > now).then_some(next), Some(next))
}

/// Reads where the task stands as of now.
pub async fn progress(e: &Engine, task: &Task) -> Result<Progress, StoreError> {
    let now = e.clock.now();
    let counts = e.store.target_counts(task.id, now).await?;
    let (action, channel) = main_action(task);
    let usable: Vec<String> = usable_accounts(e, task.user_id, task)
        .await?
        .into_iter()
        .map(|a| a.id)
        .collect();
    let rows = e.store.task_accounts(task.id).await?;
    let all = e
        .store
        .list_accounts(task.user_id, Some(task.spec.platform.as_str()))
        .await?;
    let serving = all
        .iter()
        .filter(|a| usable.contains(&a.id) || rows.iter().any(|r| r.account_id == a.id));

    let mut accounts = Vec::new();
    let mut inputs = Vec::new();
    for a in serving {
        let row = rows.iter().find(|r| r.account_id == a.id);
        if let Some(row) = row.filter(|r| r.status == "excluded") {
            let why = row
                .stats
                .get("excluded_because")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            accounts.push(view(a, "excluded", why, None, None));
            continue;
        }
        let Some((main, resolve)) = ledgers(e, &a.id, action, channel.as_deref(), now).await? else {
            continue;
        };
        accounts.push(account_view(e, a, action, channel.is_some(), &main, &resolve, now));
        inputs.push(account_input(e, a, action, channel.is_some(), main, resolve));
    }

    let running = task.status == TaskStatus::InProgress;
    let soonest = accounts.iter().filter_map(|a| a.next_available_at).min();
    let next_action_at = match (running, counts.due > 0, counts.next_due_at) {
        (false, _, _) => None,
        (true, true, _) => soonest,
        (true, false, Some(retry)) => soonest.map(|s| s.max(retry)),
        (true, false, None) => None,
    };
    let demand = Demand {
        due: counts.due.max(0) as u64,
        waiting: counts.waiting.max(0) as u64,
        waiting_from: counts.next_due_at,
    };
    let estimate = if running {
        estimate::estimate(now, demand, &inputs)
    } else {
        let why = match task.status {
            TaskStatus::Pending => "the task has not started".to_string(),
            TaskStatus::Paused => "the task is paused: nothing runs until it is resumed".to_string(),
            finished => match task.finished_at {
                Some(at) => format!("the task is {finished} since {}", at.to_rfc3339()),
                None => format!("the task is {finished}"),
            },
        };
        Estimate {
            completion_at: None,
            unavailable: Some(why),
            open_targets: demand.open(),
            accounts: Vec::new(),
        }
    };
    Ok(Progress {
        at: now,
        counts,
        accounts,
        next_action_at,
        estimate,
    })
}
