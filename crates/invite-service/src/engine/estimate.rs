//! When a task's open targets will be done, from the Account Manager's own rules and ledgers: a pure
//! function, no I/O, so it can be checked against cases worked out by hand.
//!
//! Each usable account is played forward action by action, exactly as the Account Manager would
//! decide: a target costs the account one action of each [`Cost`] (the task's main action, counted in
//! its channel, and the username resolution before it); an action waits for the account's rest, its
//! pause after the previous action (the policy's mean, since the real one is drawn at random), and a
//! free slot in every rolling window; the lifetime cap in the channel retires the account for good.
//! The next target always goes to the account that can act soonest — what the scheduler does.
//!
//! Assumptions, stated in every answer: the accounts serve only this task, every open target costs
//! one action of each kind (a target that fails before the call, or is on the do-not-contact list,
//! makes the task end sooner), and nothing new happens to the accounts (no flood waits).

use std::collections::VecDeque;

use account_manager::policy::ActionPolicy;
use chrono::{DateTime, Duration, Utc};
use domain::outcome::AmAction;
use store::{Ledger, Standing};

/// The longest an estimate looks ahead; beyond it the answer is "not within a year".
pub const HORIZON_DAYS: i64 = 366;
/// The most actions simulated for one answer (the default target cap is 1,000 per task).
pub const MAX_STEPS: u64 = 200_000;

/// One Account Manager action every target costs an account, with that account's ledger for it.
#[derive(Debug, Clone)]
pub struct Cost {
    pub action: AmAction,
    pub rules: ActionPolicy,
    /// Counted in the task's channel: its per-channel windows and lifetime cap apply.
    pub in_channel: bool,
    pub ledger: Ledger,
}

/// An account that may serve the task, and what a target costs it (the main action first).
#[derive(Debug, Clone)]
pub struct AccountInput {
    pub account_id: String,
    pub costs: Vec<Cost>,
}

/// The task's open targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// May be taken now.
    pub due: u64,
    /// Retries, not before `waiting_from`.
    pub waiting: u64,
    pub waiting_from: Option<DateTime<Utc>>,
}

impl Demand {
    pub fn open(&self) -> u64 {
        self.due + self.waiting
    }
}

/// What one account would do.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountShare {
    pub account_id: String,
    /// Why it can take none of them (blocked, no rights in the channel, lifetime cap reached).
    pub unusable: Option<String>,
    /// Targets it would take.
    pub targets: u64,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    /// Its steady pace under the policy, in targets per day, and the rule that sets it.
    pub per_day: f64,
    pub limited_by: String,
    /// Left of its lifetime cap in the channel, before this estimate.
    pub lifetime_left: Option<u64>,
}

/// The answer: a completion time, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub completion_at: Option<DateTime<Utc>>,
    pub unavailable: Option<String>,
    pub open_targets: u64,
    pub accounts: Vec<AccountShare>,
}

/// A cost as the simulation plays it.
struct CostState<'a> {
    cost: &'a Cost,
    /// The account's grants of this action still inside the longest window, oldest first.
    account_grants: VecDeque<DateTime<Utc>>,
    channel_grants: VecDeque<DateTime<Utc>>,
    lifetime_left: Option<u64>,
    /// Not before: the pause after the last grant, a rest, a restriction.
    not_before: DateTime<Utc>,
    pause: Duration,
    longest: Duration,
}

/// When a rolling window has a free slot at or after `at`: when its oldest grant that must leave does
/// (the Account Manager's own rule: a grant counts while it is younger than the period).
fn window_free(grants: &VecDeque<DateTime<Utc>>, cap: u32, period: Duration, at: DateTime<Utc>) -> DateTime<Utc> {
    let inside: Vec<&DateTime<Utc>> = grants.iter().filter(|g| **g > at - period).collect();
    if inside.len() < cap as usize {
        return at;
    }
    *inside[inside.len() - cap as usize] + period
}

impl CostState<'_> {
    /// The earliest time at or after `at` this action may be granted.
    fn next(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let mut t = at.max(self.not_before);
        loop {
            let mut later = t;
            for w in &self.cost.rules.per_account {
                later = later.max(window_free(&self.account_grants, w.cap, w.period, t));
            }
            if self.cost.in_channel {
                for w in &self.cost.rules.per_channel {
                    later = later.max(window_free(&self.channel_grants, w.cap, w.period, t));
                }
            }
            if later == t {
                return t;
            }
            t = later;
        }
    }

    fn record(&mut self, at: DateTime<Utc>) {
        while self.account_grants.front().is_some_and(|g| *g <= at - self.longest) {
            self.account_grants.pop_front();
        }
        while self.channel_grants.front().is_some_and(|g| *g <= at - self.longest) {
            self.channel_grants.pop_front();
        }
        self.account_grants.push_back(at);
        if self.cost.in_channel {
            self.channel_grants.push_back(at);
        }
        if let Some(left) = self.lifetime_left.as_mut() {
            *left = left.saturating_sub(1);
        }
        self.not_before = at + self.pause;
    }
}

/// The mean of a uniform pause.
fn mean_pause(rules: &ActionPolicy) -> Duration {
    rules.pause.0 + (rules.pause.1 - rules.pause.0) / 2
}

fn hours(d: Duration) -> String {
    let secs = d.num_seconds();
    if secs % 3600 == 0 {
        format!("{} h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// The steady pace of an account under these costs (targets a day) and the rule that sets it.
pub fn pace(costs: &[Cost]) -> (f64, String) {
    let day = Duration::days(1).num_milliseconds() as f64;
    let mut best: Option<(f64, String)> = None;
    let mut consider = |rate: f64, why: String| {
        if best.as_ref().is_none_or(|(r, _)| rate < *r) {
            best = Some((rate, why));
        }
    };
    for c in costs {
        let name = c.action.as_str();
        for w in &c.rules.per_account {
            let rate = f64::from(w.cap) * day / w.period.num_milliseconds().max(1) as f64;
            consider(
                rate,
                format!("{} {name}s per {} for the account", w.cap, hours(w.period)),
            );
        }
        if c.in_channel {
            for w in &c.rules.per_channel {
                let rate = f64::from(w.cap) * day / w.period.num_milliseconds().max(1) as f64;
                consider(
                    rate,
                    format!("{} {name}s per {} into the channel", w.cap, hours(w.period)),
                );
            }
        }
        let pause = mean_pause(&c.rules);
        if pause > Duration::zero() {
            let rate = day / pause.num_milliseconds() as f64;
            consider(rate, format!("a pause of {} on average between {name}s", hours(pause)));
        }
    }
    best.unwrap_or((f64::INFINITY, "nothing".to_string()))
}

/// Why this account can never act for the task, if so.
fn unusable(account: &AccountInput) -> Option<String> {
    for c in &account.costs {
        if let Standing::Blocked { reason } = &c.ledger.standing {
            return Some(format!("blocked: {reason}"));
        }
        if c.in_channel {
            if let Some(reason) = c.ledger.channel_gone.as_ref().or(c.ledger.channel_closed.as_ref()) {
                return Some(reason.clone());
            }
            if let Some(cap) = c.rules.lifetime_per_channel {
                if c.ledger.channel_lifetime >= u64::from(cap) {
                    return Some(format!(
                        "{cap} {}s into this channel, the most one account may ever make",
                        c.action.as_str()
                    ));
                }
            }
        }
    }
    None
}

fn start_state(cost: &Cost, now: DateTime<Utc>) -> CostState<'_> {
    let mut not_before = cost.ledger.pause_until.unwrap_or(now).max(now);
    match &cost.ledger.standing {
        Standing::Resting { until, .. } => not_before = not_before.max(*until),
        Standing::Restricted { until, .. } if cost.rules.contacts_strangers => not_before = not_before.max(*until),
        _ => {}
    }
    let longest = cost
        .rules
        .per_account
        .iter()
        .chain(&cost.rules.per_channel)
        .map(|w| w.period)
        .max()
        .unwrap_or(Duration::zero());
    CostState {
        cost,
        account_grants: cost.ledger.account_grants.iter().copied().collect(),
        channel_grants: cost.ledger.channel_grants.iter().copied().collect(),
        lifetime_left: cost
            .rules
            .lifetime_per_channel
            .filter(|_| cost.in_channel)
            .map(|cap| u64::from(cap).saturating_sub(cost.ledger.channel_lifetime)),
        not_before,
        pause: mean_pause(&cost.rules),
        longest,
    }
}

/// Plays the accounts forward until the open targets are done, or says why they cannot be.
pub fn estimate(now: DateTime<Utc>, demand: Demand, accounts: &[AccountInput]) -> Estimate {
    let mut shares: Vec<AccountShare> = accounts
        .iter()
        .map(|a| {
            let (per_day, limited_by) = pace(&a.costs);
            let lifetime_left = a
                .costs
                .iter()
                .filter(|c| c.in_channel)
                .find_map(|c| c.rules.lifetime_per_channel.map(|cap| (cap, c.ledger.channel_lifetime)))
                .map(|(cap, used)| u64::from(cap).saturating_sub(used));
            AccountShare {
                account_id: a.account_id.clone(),
                unusable: unusable(a),
                targets: 0,
                first_at: None,
                last_at: None,
                per_day,
                limited_by,
                lifetime_left,
            }
        })
        .collect();
    let open = demand.open();
    let answer = |completion_at, unavailable, shares| Estimate {
        completion_at,
        unavailable,
        open_targets: open,
        accounts: shares,
    };
    if open == 0 {
        return answer(Some(now), None, shares);
    }
    if open > MAX_STEPS {
        let why = format!("{open} open targets are more than an estimate plays forward ({MAX_STEPS})");
        return answer(None, Some(why), shares);
    }
    let mut states: Vec<Option<Vec<CostState>>> = accounts
        .iter()
        .zip(&shares)
        .map(|(a, s)| {
            s.unusable
                .is_none()
                .then(|| a.costs.iter().map(|c| start_state(c, now)).collect())
        })
        .collect();
    if states.iter().all(Option::is_none) {
        let why = if accounts.is_empty() {
            "no account may serve the task".to_string()
        } else {
            "no account may serve the task: every one is blocked or may not act in the channel".to_string()
        };
        return answer(None, Some(why), shares);
    }
    let horizon = now + Duration::days(HORIZON_DAYS);
    let next_of = |costs: &Vec<CostState>, at: DateTime<Utc>| -> DateTime<Utc> {
        let mut t = at;
        loop {
            let later = costs.iter().fold(t, |t, c| c.next(t));
            if later == t {
                return t;
            }
            t = later;
        }
    };
    let mut due = demand.due;
    let mut last = now;
    for done in 0..open {
        let ready = if due > 0 {
            now
        } else {
            demand.waiting_from.unwrap_or(now).max(now)
        };
        let pick = states
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|costs| (i, next_of(costs, ready))))
            .min_by_key(|(i, t)| (*t, *i));
        let Some((i, at)) = pick else {
            let why = format!(
                "{} of {open} open targets are left when every account has reached its lifetime cap in the channel",
                open - done
            );
            return answer(None, Some(why), shares);
        };
        if at > horizon {
            let why = format!("more than {HORIZON_DAYS} days away at the accounts' pace");
            return answer(None, Some(why), shares);
        }
        let costs = states[i].as_mut().expect("picked among usable accounts");
        for c in costs.iter_mut() {
            c.record(at);
        }
        if costs.iter().any(|c| c.lifetime_left == Some(0)) {
            states[i] = None;
        }
        let share = &mut shares[i];
        share.targets += 1;
        share.first_at.get_or_insert(at);
        share.last_at = Some(at);
        due = due.saturating_sub(1);
        last = at;
    }
    answer(Some(last), None, shares)
}

#[cfg(test)]
mod tests {
    use account_manager::{policy::Window, Policy};
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap()
    }

    fn fresh() -> Ledger {
        Ledger {
            standing: Standing::Active,
            channel_closed: None,
            channel_gone: None,
            pause_until: None,
            account_grants: vec![],
            channel_grants: vec![],
            channel_lifetime: 0,
        }
    }

    fn invite(rules: ActionPolicy, ledger: Ledger) -> Cost {
        Cost {
            action: AmAction::Invite,
            rules,
            in_channel: true,
            ledger,
        }
    }

    fn default_invite() -> ActionPolicy {
        Policy::default().action(AmAction::Invite).clone()
    }

    fn account(id: &str, costs: Vec<Cost>) -> AccountInput {
        AccountInput {
            account_id: id.to_string(),
            costs,
        }
    }

    fn due(n: u64) -> Demand {
        Demand {
            due: n,
            ..Demand::default()
        }
    }

    fn minutes(m: f64) -> Duration {
        Duration::milliseconds((m * 60_000.0) as i64)
    }

    #[test]
    fn one_account_and_forty_five_targets_take_three_days_of_fifteen() {
        // 30 a day for the account, 15 a day into the channel, 10–15 min pauses (12.5 on average):
        // 15 on day one at 12.5-minute steps, then the channel's window waits for the first to leave.
        let e = estimate(t0(), due(45), &[account("a", vec![invite(default_invite(), fresh())])]);
        let last_of_day = minutes(14.0 * 12.5);
        assert_eq!(e.completion_at, Some(t0() + Duration::days(2) + last_of_day), "{e:?}");
        let share = &e.accounts[0];
        assert_eq!(share.targets, 45);
        assert_eq!(share.first_at, Some(t0()));
        assert_eq!(share.per_day, 15.0);
        assert_eq!(share.limited_by, "15 invites per 24 h into the channel");
        assert_eq!(share.lifetime_left, Some(200));
        assert_eq!(e.unavailable, None);
    }

    #[test]
    fn pauses_bind_when_the_caps_are_large() {
        let rules = ActionPolicy {
            per_account: vec![Window {
                cap: 10_000,
                period: Duration::hours(24),
            }],
            per_channel: vec![],
            lifetime_per_channel: None,
            pause: (Duration::seconds(60), Duration::seconds(60)),
            contacts_strangers: true,
        };
        let e = estimate(t0(), due(10), &[account("a", vec![invite(rules, fresh())])]);
        assert_eq!(e.completion_at, Some(t0() + Duration::minutes(9)));
        assert_eq!(e.accounts[0].per_day, 1440.0);
        assert_eq!(e.accounts[0].limited_by, "a pause of 1 min on average between invites");
    }

    #[test]
    fn two_accounts_share_the_targets() {
        let accounts = [
            account("a", vec![invite(default_invite(), fresh())]),
            account("b", vec![invite(default_invite(), fresh())]),
        ];
        let e = estimate(t0(), due(30), &accounts);
        assert_eq!(e.completion_at, Some(t0() + minutes(14.0 * 12.5)));
        assert_eq!((e.accounts[0].targets, e.accounts[1].targets), (15, 15));
    }

    #[test]
    fn grants_already_made_hold_their_slots_until_they_leave_the_window() {
        // 15 invites into the channel between 23 h and 22 h46 ago: the first leaves the window in 1 h.
        let mut ledger = fresh();
        ledger.channel_grants = (0..15)
            .map(|i| t0() - Duration::hours(23) + Duration::minutes(i))
            .collect();
        ledger.account_grants = ledger.channel_grants.clone();
        ledger.channel_lifetime = 15;
        let e = estimate(t0(), due(1), &[account("a", vec![invite(default_invite(), ledger)])]);
        assert_eq!(e.completion_at, Some(t0() + Duration::hours(1)));
        assert_eq!(e.accounts[0].lifetime_left, Some(185));
    }

    #[test]
    fn a_rest_and_a_stored_pause_delay_the_first_action() {
        let mut resting = fresh();
        resting.standing = Standing::Resting {
            until: t0() + Duration::hours(2),
            reason: "FLOOD_WAIT_7200".into(),
        };
        let e = estimate(t0(), due(1), &[account("a", vec![invite(default_invite(), resting)])]);
        assert_eq!(e.completion_at, Some(t0() + Duration::hours(2)));

        let mut paused = fresh();
        paused.pause_until = Some(t0() + Duration::minutes(7));
        let e = estimate(t0(), due(2), &[account("a", vec![invite(default_invite(), paused)])]);
        assert_eq!(e.completion_at, Some(t0() + Duration::minutes(7) + minutes(12.5)));
    }

    #[test]
    fn the_lifetime_cap_leaves_targets_nobody_can_take() {
        let mut nearly = fresh();
        nearly.channel_lifetime = 195;
        let alone = [account("a", vec![invite(default_invite(), nearly.clone())])];
        let e = estimate(t0(), due(10), &alone);
        assert_eq!(e.completion_at, None);
        assert_eq!(
            e.unavailable.as_deref(),
            Some("5 of 10 open targets are left when every account has reached its lifetime cap in the channel")
        );
        assert_eq!(e.accounts[0].targets, 5);

        // A second account with room takes the rest.
        let both = [alone[0].clone(), account("b", vec![invite(default_invite(), fresh())])];
        let e = estimate(t0(), due(10), &both);
        assert_eq!(e.completion_at, Some(t0() + minutes(4.0 * 12.5)), "{e:?}");
        assert_eq!((e.accounts[0].targets, e.accounts[1].targets), (5, 5));

        let mut spent = fresh();
        spent.channel_lifetime = 200;
        let e = estimate(t0(), due(1), &[account("a", vec![invite(default_invite(), spent)])]);
        assert_eq!(e.completion_at, None);
        assert_eq!(
            e.accounts[0].unusable.as_deref(),
            Some("200 invites into this channel, the most one account may ever make")
        );
    }

    #[test]
    fn blocked_accounts_or_none_give_no_estimate() {
        let mut blocked = fresh();
        blocked.standing = Standing::Blocked {
            reason: "AUTH_KEY_UNREGISTERED".into(),
        };
        let e = estimate(t0(), due(3), &[account("a", vec![invite(default_invite(), blocked)])]);
        assert_eq!(e.completion_at, None);
        assert_eq!(
            e.accounts[0].unusable.as_deref(),
            Some("blocked: AUTH_KEY_UNREGISTERED")
        );
        assert!(e.unavailable.unwrap().contains("every one is blocked"));
        let e = estimate(t0(), due(3), &[]);
        assert_eq!(e.unavailable.as_deref(), Some("no account may serve the task"));
    }

    #[test]
    fn retries_wait_for_their_time_and_nothing_open_is_done_now() {
        let demand = Demand {
            due: 0,
            waiting: 1,
            waiting_from: Some(t0() + Duration::minutes(30)),
        };
        let e = estimate(t0(), demand, &[account("a", vec![invite(default_invite(), fresh())])]);
        assert_eq!(e.completion_at, Some(t0() + Duration::minutes(30)));
        let e = estimate(t0(), due(0), &[account("a", vec![invite(default_invite(), fresh())])]);
        assert_eq!(e.completion_at, Some(t0()));
    }

    #[test]
    fn every_cost_of_a_target_binds_resolving_usernames_too() {
        let big = ActionPolicy {
            per_account: vec![Window {
                cap: 1000,
                period: Duration::hours(24),
            }],
            per_channel: vec![],
            lifetime_per_channel: None,
            pause: (Duration::zero(), Duration::zero()),
            contacts_strangers: true,
        };
        let resolve = Cost {
            action: AmAction::ResolveUsername,
            rules: ActionPolicy {
                per_account: vec![Window {
                    cap: 2,
                    period: Duration::hours(1),
                }],
                per_channel: vec![],
                lifetime_per_channel: None,
                pause: (Duration::zero(), Duration::zero()),
                contacts_strangers: false,
            },
            in_channel: false,
            ledger: fresh(),
        };
        let costs = vec![invite(big, fresh()), resolve];
        // Two an hour: the fifth at the start of the third hour.
        let e = estimate(t0(), due(5), &[account("a", costs.clone())]);
        assert_eq!(e.completion_at, Some(t0() + Duration::hours(2)));
        assert_eq!(
            pace(&costs),
            (48.0, "2 resolve_usernames per 1 h for the account".into())
        );
    }

    #[test]
    fn a_horizon_bounds_what_is_played_forward() {
        let rules = ActionPolicy {
            per_account: vec![Window {
                cap: 1,
                period: Duration::days(30),
            }],
            per_channel: vec![],
            lifetime_per_channel: None,
            pause: (Duration::zero(), Duration::zero()),
            contacts_strangers: true,
        };
        let e = estimate(t0(), due(20), &[account("a", vec![invite(rules, fresh())])]);
        assert_eq!(e.completion_at, None);
        assert_eq!(
            e.unavailable.as_deref(),
            Some("more than 366 days away at the accounts' pace")
        );
    }
}
