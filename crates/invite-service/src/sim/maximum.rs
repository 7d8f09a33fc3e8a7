//! The most invites a campaign could make, from the policy and the campaign's shape alone — not from
//! how the world answers. The simulator divides what the engine did by this.
//!
//! Over a run of length `L`, an account can make at most
//! `N_acc = min(cap·⌈L/period⌉ for each per-account window of invite and of username resolution,
//! 1 + ⌊L/pause_min⌋ for each)`, since every target is a username resolved once before its invite; in
//! one channel at most `N_ch = min(N_acc, cap·⌈L/period⌉ for each per-channel window, the lifetime
//! cap)`. A channel takes at most its targets `T_c` (and, for a broadcast channel, the members an admin
//! may still add, plus the one invite that finds it full). Accounts and channels form a bipartite flow network; every account serves every
//! channel, so the maximum flow equals the minimum cut `min over k in 0..=A of (A−k)·N_acc + Σ_c
//! min(T_c, k·N_ch)`.

use account_manager::Policy;
use chrono::Duration;
use domain::outcome::AmAction;
use serde::Serialize;

/// What the maximum is computed from.
#[derive(Debug, Clone)]
pub struct Shape {
    pub accounts: u64,
    /// Per channel: its targets, and the members that may still be added when that is limited.
    pub channels: Vec<ChannelShape>,
    pub length: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct ChannelShape {
    pub targets: u64,
    pub add_limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maximum {
    pub value: u64,
    /// `N_acc` and `N_ch` of the formula.
    pub per_account: u64,
    pub per_account_channel: u64,
    /// The formula with this run's numbers.
    pub formula: String,
}

/// The most grants of an action an account may get in `length`: every rolling window and the pause.
fn action_cap(policy: &Policy, action: AmAction, length: Duration) -> u64 {
    let rules = policy.action(action);
    let windows = rules
        .per_account
        .iter()
        .map(|w| u64::from(w.cap) * periods(length, w.period));
    let pause = rules.pause.0;
    let by_pause =
        (pause > Duration::zero()).then(|| 1 + (length.num_milliseconds() / pause.num_milliseconds()) as u64);
    windows.chain(by_pause).min().unwrap_or(u64::MAX)
}

/// How many periods a rolling window can fill within `length` (a run that starts with a full window).
fn periods(length: Duration, period: Duration) -> u64 {
    let (l, p) = (length.num_milliseconds(), period.num_milliseconds().max(1));
    ((l + p - 1) / p).max(0) as u64
}

pub fn maximum(policy: &Policy, shape: &Shape) -> Maximum {
    let length = shape.length;
    let per_account =
        action_cap(policy, AmAction::Invite, length).min(action_cap(policy, AmAction::ResolveUsername, length));
    let rules = policy.action(AmAction::Invite);
    let per_account_channel = rules
        .per_channel
        .iter()
        .map(|w| u64::from(w.cap) * periods(length, w.period))
        .chain(rules.lifetime_per_channel.map(u64::from))
        .fold(per_account, u64::min);
    let room: Vec<u64> = shape
        .channels
        .iter()
        .map(|c| c.add_limit.map_or(c.targets, |l| l.min(c.targets)))
        .collect();
    let cut = |k: u64| -> u64 {
        (shape.accounts - k).saturating_mul(per_account)
            + room
                .iter()
                .map(|t| (*t).min(k.saturating_mul(per_account_channel)))
                .sum::<u64>()
    };
    let (best_k, value) = (0..=shape.accounts)
        .map(|k| (k, cut(k)))
        .min_by_key(|(_, v)| *v)
        .expect("at least k = 0");
    let limited = shape.channels.iter().filter(|c| c.add_limit.is_some()).count();
    let formula = format!(
        "L = {:.2} days; N_acc = min(invite and resolve windows and pauses over L) = {per_account}; \
         N_ch = min(N_acc, per-channel windows over L, lifetime cap) = {per_account_channel}; \
         A = {} accounts, C = {} channels ({limited} with an add limit), targets {}; \
         max = min over k of (A−k)·N_acc + Σ_c min(T_c, k·N_ch) = {value} (at k = {best_k})",
        length.num_seconds() as f64 / 86_400.0,
        shape.accounts,
        shape.channels.len(),
        shape.channels.iter().map(|c| c.targets).sum::<u64>(),
    );
    Maximum {
        value,
        per_account,
        per_account_channel,
        formula,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(accounts: u64, channels: &[(u64, Option<u64>)], days: i64) -> Shape {
        Shape {
            accounts,
            channels: channels
                .iter()
                .map(|(targets, add_limit)| ChannelShape {
                    targets: *targets,
                    add_limit: *add_limit,
                })
                .collect(),
            length: Duration::days(days),
        }
    }

    #[test]
    fn default_policy_three_days_is_thirty_a_day_per_account() {
        let m = maximum(&Policy::default(), &shape(200, &[(5_000, None); 10], 3));
        assert_eq!(m.per_account, 90);
        assert_eq!(m.per_account_channel, 45);
        assert_eq!(m.value, 200 * 90);
    }

    #[test]
    fn one_channel_binds_at_fifteen_a_day() {
        let m = maximum(&Policy::default(), &shape(10, &[(10_000, None)], 2));
        assert_eq!(m.value, 10 * 30);
    }

    #[test]
    fn targets_and_add_limits_bind() {
        // 3 accounts could make 3·45 = 135 in one channel over 3 days, but it has 100 targets.
        assert_eq!(maximum(&Policy::default(), &shape(3, &[(100, None)], 3)).value, 100);
        // A broadcast channel with 60 places left takes 60; the other channel takes its 45 per account.
        let m = maximum(&Policy::default(), &shape(2, &[(1_000, Some(60)), (1_000, None)], 3));
        assert_eq!(m.value, 60 + 90);
    }

    #[test]
    fn a_partial_day_counts_a_full_window_and_pauses_bind_when_caps_are_large() {
        // Half a day: one window of 30, 15 per channel; two channels → 30.
        let half = Shape {
            length: Duration::hours(12),
            ..shape(1, &[(100, None), (100, None)], 0)
        };
        assert_eq!(maximum(&Policy::default(), &half).value, 30);
        // Caps lifted: one hour at a 600 s minimum pause is 7 invites.
        let mut policy = Policy::default();
        let invite = policy.actions.get_mut(&AmAction::Invite).unwrap();
        invite.per_account.clear();
        invite.per_channel.clear();
        let hour = Shape {
            length: Duration::hours(1),
            ..shape(1, &[(100, None)], 0)
        };
        assert_eq!(maximum(&policy, &hour).value, 7);
    }
}
