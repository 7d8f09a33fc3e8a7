//! The limits and pauses of each action, and the pure decision taken on an account's ledger. The
//! store reads the ledger under a per-account lock, this module decides, the store writes the grant.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use domain::outcome::AmAction;
pub use store::{Decision, Ledger, Standing};

/// At most `cap` consumed grants within any `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub cap: u32,
    pub period: Duration,
}

/// The rules of one action type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPolicy {
    /// Rolling windows per account.
    pub per_account: Vec<Window>,
    /// Rolling windows per (account, channel).
    pub per_channel: Vec<Window>,
    /// Grants per (account, channel), ever.
    pub lifetime_per_channel: Option<u32>,
    /// The pause after each grant before the account's next action of this type, drawn uniformly.
    pub pause: (Duration, Duration),
    /// Contacting people who do not know the account: refused while it is restricted by PEER_FLOOD.
    pub contacts_strangers: bool,
}

/// Optional pacing: act only within daily hours, spreading what is left of the daily quota evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveHours {
    /// Offset of the local time from UTC.
    pub utc_offset: Duration,
    /// Local start and end (exclusive), as durations since midnight.
    pub start: Duration,
    pub end: Duration,
    /// Spread the remaining daily quota evenly over the rest of the active hours.
    pub spread: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub actions: HashMap<AmAction, ActionPolicy>,
    /// Added to every FLOOD_WAIT.
    pub flood_margin: Duration,
    /// The first PEER_FLOOD rest; it doubles on each repeat up to `peer_flood_max`.
    pub peer_flood_rest: Duration,
    pub peer_flood_max: Duration,
    /// How long an account lease lasts (longer than a platform call's timeout).
    pub lease_ttl: Duration,
    pub active_hours: Option<ActiveHours>,
}

impl Default for Policy {
    /// DESIGN §5.
    fn default() -> Self {
        let day = Duration::hours(24);
        let window = |cap| vec![Window { cap, period: day }];
        let mut actions = HashMap::new();
        actions.insert(
            AmAction::Invite,
            ActionPolicy {
                per_account: window(30),
                per_channel: window(15),
                lifetime_per_channel: Some(200),
                pause: (Duration::seconds(600), Duration::seconds(900)),
                contacts_strangers: true,
            },
        );
        actions.insert(
            AmAction::Message,
            ActionPolicy {
                per_account: window(30),
                per_channel: vec![],
                lifetime_per_channel: None,
                pause: (Duration::seconds(120), Duration::seconds(300)),
                contacts_strangers: true,
            },
        );
        // Bursts of username resolution have drawn waits of 15–18 hours: a small budget, spaced.
        actions.insert(
            AmAction::ResolveUsername,
            ActionPolicy {
                per_account: vec![
                    Window {
                        cap: 20,
                        period: Duration::hours(1),
                    },
                    Window { cap: 100, period: day },
                ],
                per_channel: vec![],
                lifetime_per_channel: None,
                pause: (Duration::seconds(20), Duration::seconds(40)),
                contacts_strangers: false,
            },
        );
        actions.insert(
            AmAction::ImportContact,
            ActionPolicy {
                per_account: window(50),
                per_channel: vec![],
                lifetime_per_channel: None,
                pause: (Duration::seconds(30), Duration::seconds(60)),
                contacts_strangers: true,
            },
        );
        actions.insert(
            AmAction::ChannelLookup,
            ActionPolicy {
                per_account: vec![Window { cap: 200, period: day }],
                per_channel: vec![],
                lifetime_per_channel: None,
                pause: (Duration::seconds(1), Duration::seconds(2)),
                contacts_strangers: false,
            },
        );
        Self {
            actions,
            flood_margin: Duration::seconds(30),
            peer_flood_rest: day,
            peer_flood_max: Duration::days(7),
            lease_ttl: Duration::minutes(5),
            active_hours: None,
        }
    }
}

impl Policy {
    pub fn action(&self, action: AmAction) -> &ActionPolicy {
        self.actions.get(&action).expect("every action has a policy")
    }

    /// How far back the ledger must be read to decide on this action.
    pub fn lookback(&self, action: AmAction) -> Duration {
        let p = self.action(action);
        p.per_account
            .iter()
            .chain(&p.per_channel)
            .map(|w| w.period)
            .max()
            .unwrap_or(Duration::zero())
    }
}

/// When a window that is full gets a free slot: when its oldest grant that must leave does.
fn window_free_at(grants: &[DateTime<Utc>], w: &Window, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let inside: Vec<&DateTime<Utc>> = grants.iter().filter(|t| **t > now - w.period).collect();
    if inside.len() < w.cap as usize {
        return None;
    }
    let leaving = inside[inside.len() - w.cap as usize];
    Some(*leaving + w.period)
}

/// Decides on one request. `draw` picks the pause (uniform in the policy's range) for a grant.
pub fn decide(
    policy: &Policy,
    action: AmAction,
    has_channel: bool,
    ledger: &Ledger,
    now: DateTime<Utc>,
    draw: impl FnOnce(Duration, Duration) -> Duration,
) -> Decision {
    let rules = policy.action(action);
    match &ledger.standing {
        Standing::Blocked { reason } => {
            return Decision::Deny {
                reason: format!("account blocked: {reason}"),
                permanent: true,
                close_channel: false,
            }
        }
        Standing::Resting { until, reason } if *until > now => {
            return Decision::Wait {
                until: *until,
                reason: format!("account resting: {reason}"),
            }
        }
        Standing::Restricted { until, reason } if *until > now && rules.contains_strangers() => {
            return Decision::Wait {
                until: *until,
                reason: format!("account restricted: {reason}"),
            }
        }
        _ => {}
    }
    if has_channel {
        if let Some(reason) = &ledger.channel_gone {
            return Decision::Deny {
                reason: reason.clone(),
                permanent: true,
                close_channel: false,
            };
        }
        if let Some(reason) = &ledger.channel_closed {
            return Decision::Deny {
                reason: reason.clone(),
                permanent: true,
                close_channel: false,
            };
        }
        if let Some(cap) = rules.lifetime_per_channel {
            if ledger.channel_lifetime >= u64::from(cap) {
                return Decision::Deny {
                    reason: format!("{cap} {action}s into this channel, the most one account may ever make"),
                    permanent: true,
                    close_channel: true,
                };
            }
        }
    }
    let mut wait: Option<(DateTime<Utc>, String)> = None;
    let mut later = |until: DateTime<Utc>, reason: String| {
        if wait.as_ref().is_none_or(|(t, _)| until > *t) {
            wait = Some((until, reason));
        }
    };
    if let Some(until) = ledger.pause_until.filter(|t| *t > now) {
        later(until, format!("pause between {action}s"));
    }
    for w in &rules.per_account {
        if let Some(until) = window_free_at(&ledger.account_grants, w, now) {
            later(
                until,
                format!("{} {action}s per {} h for this account", w.cap, w.period.num_hours()),
            );
        }
    }
    if has_channel {
        for w in &rules.per_channel {
            if let Some(until) = window_free_at(&ledger.channel_grants, w, now) {
                later(
                    until,
                    format!("{} {action}s per {} h into this channel", w.cap, w.period.num_hours()),
                );
            }
        }
    }
    if let Some(hours) = policy.active_hours {
        if let Some((until, reason)) = pacing(&hours, rules, &ledger.account_grants, now) {
            later(until, reason);
        }
    }
    match wait {
        Some((until, reason)) => Decision::Wait { until, reason },
        None => Decision::Grant {
            pause_until: now + draw(rules.pause.0, rules.pause.1),
        },
    }
}

impl ActionPolicy {
    fn contains_strangers(&self) -> bool {
        self.contacts_strangers
    }
}

/// Outside active hours: wait for the next start. Inside with spreading: the day's remaining quota is
/// spread evenly over the remaining active time, so the next action waits for its share.
fn pacing(
    hours: &ActiveHours,
    rules: &ActionPolicy,
    grants: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, String)> {
    let local = now + hours.utc_offset;
    let midnight = local
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let since_midnight = local - midnight;
    let start = midnight + hours.start - hours.utc_offset;
    let end = midnight + hours.end - hours.utc_offset;
    if since_midnight < hours.start {
        return Some((start, "outside active hours".into()));
    }
    if since_midnight >= hours.end {
        return Some((start + Duration::days(1), "outside active hours".into()));
    }
    if !hours.spread {
        return None;
    }
    let daily = rules.per_account.iter().find(|w| w.period == Duration::hours(24))?;
    let used_today = grants.iter().filter(|t| **t >= start).count() as i64;
    let left = i64::from(daily.cap) - used_today;
    if left <= 0 {
        return None;
    }
    let share = (end - now) / (left as i32);
    let last = grants.iter().filter(|t| **t >= start).max()?;
    let next = *last + share;
    (next > now).then(|| (next, "spreading the daily quota over the active hours".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap()
    }

    fn ledger() -> Ledger {
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

    fn mid(a: Duration, b: Duration) -> Duration {
        (a + b) / 2
    }

    #[test]
    fn a_grant_sets_a_pause_of_ten_to_fifteen_minutes_for_invites() {
        let d = decide(&Policy::default(), AmAction::Invite, true, &ledger(), t0(), |a, b| {
            assert_eq!((a.num_seconds(), b.num_seconds()), (600, 900));
            mid(a, b)
        });
        assert_eq!(
            d,
            Decision::Grant {
                pause_until: t0() + Duration::seconds(750)
            }
        );
    }

    #[test]
    fn a_full_window_waits_until_its_oldest_grant_leaves() {
        let mut l = ledger();
        l.account_grants = (0..30)
            .map(|i| t0() - Duration::hours(23) + Duration::minutes(i))
            .collect();
        let d = decide(&Policy::default(), AmAction::Invite, true, &l, t0(), mid);
        assert_eq!(
            d,
            Decision::Wait {
                until: t0() + Duration::hours(1),
                reason: "30 invites per 24 h for this account".into()
            }
        );
    }

    #[test]
    fn the_lifetime_cap_closes_the_channel_for_good() {
        let mut l = ledger();
        l.channel_lifetime = 200;
        let d = decide(&Policy::default(), AmAction::Invite, true, &l, t0(), mid);
        assert!(
            matches!(
                d,
                Decision::Deny {
                    permanent: true,
                    close_channel: true,
                    ..
                }
            ),
            "{d:?}"
        );
        assert!(matches!(
            decide(&Policy::default(), AmAction::Message, false, &l, t0(), mid),
            Decision::Grant { .. }
        ));
    }

    #[test]
    fn peer_flood_stops_contacting_strangers_but_not_lookups() {
        let mut l = ledger();
        l.standing = Standing::Restricted {
            until: t0() + Duration::hours(24),
            reason: "PEER_FLOOD".into(),
        };
        assert!(matches!(
            decide(&Policy::default(), AmAction::Invite, true, &l, t0(), mid),
            Decision::Wait { .. }
        ));
        assert!(matches!(
            decide(&Policy::default(), AmAction::ChannelLookup, true, &l, t0(), mid),
            Decision::Grant { .. }
        ));
        l.standing = Standing::Resting {
            until: t0() - Duration::seconds(1),
            reason: "flood".into(),
        };
        assert!(
            matches!(
                decide(&Policy::default(), AmAction::Invite, true, &l, t0(), mid),
                Decision::Grant { .. }
            ),
            "a rest that has passed is over"
        );
    }

    #[test]
    fn active_hours_hold_actions_until_the_next_start() {
        let policy = Policy {
            active_hours: Some(ActiveHours {
                utc_offset: Duration::hours(3),
                start: Duration::hours(9),
                end: Duration::hours(21),
                spread: true,
            }),
            ..Policy::default()
        };
        // 09:00 UTC is 12:00 local: inside; no grants today, so no spreading wait.
        assert!(matches!(
            decide(&policy, AmAction::Invite, true, &ledger(), t0(), mid),
            Decision::Grant { .. }
        ));
        // 19:00 UTC is 22:00 local: wait for 09:00 local tomorrow = 06:00 UTC.
        let late = t0() + Duration::hours(10);
        let d = decide(&policy, AmAction::Invite, true, &ledger(), late, mid);
        assert_eq!(
            d,
            Decision::Wait {
                until: Utc.with_ymd_and_hms(2026, 6, 2, 6, 0, 0).unwrap(),
                reason: "outside active hours".into()
            }
        );
        // Spreading: 29 invites left over 9 hours: one every ~18.6 minutes after the last.
        let mut l = ledger();
        l.account_grants = vec![t0()];
        let d = decide(&policy, AmAction::Invite, true, &l, t0() + Duration::seconds(1), mid);
        match d {
            Decision::Wait { until, .. } => {
                let gap = until - t0();
                assert!((18..=19).contains(&gap.num_minutes()), "{gap}");
            }
            other => panic!("{other:?}"),
        }
    }
}
