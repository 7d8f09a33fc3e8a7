//! Audits of the world's record: was anyone added or messaged twice, and did any account act beyond a
//! policy's limits. The record is the world's own — what was done to it — so this checks the engine
//! and the Account Manager from outside.

use std::collections::{BTreeMap, HashMap};

use account_manager::Policy;
use chrono::{DateTime, Utc};
use domain::outcome::AmAction;
use serde::Serialize;
use store::{WorldCall, WorldDelivery};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Audit {
    pub calls: usize,
    pub deliveries: usize,
    pub invites_delivered: usize,
    pub messages_delivered: usize,
    /// How many deliveries repeated an earlier one.
    pub duplicates: usize,
    pub duplicate_list: Vec<Finding>,
    /// How many times an account went past a limit or a pause of the policy.
    pub violations: usize,
    pub violation_list: Vec<Finding>,
    /// Invite calls that spent an invite (every answer but a flood wait or a spam restriction).
    pub invites_made: usize,
    /// The shortest gap between two invites of one account.
    pub min_seconds_between_invites_of_an_account: Option<f64>,
    /// The most invites one account made within any 24 hours, in one channel within any 24 hours, and
    /// in one channel in all.
    pub max_invites_per_account_24h: usize,
    pub max_invites_per_account_channel_24h: usize,
    pub max_invites_per_account_channel_total: usize,
    /// Calls by method and answer, e.g. `channels.inviteToChannel` → `400 USER_ALREADY_PARTICIPANT` → 3.
    pub answers: BTreeMap<String, BTreeMap<String, usize>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule: String,
    pub account_id: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub detail: String,
}

impl Audit {
    /// The audit for a person reading a terminal.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "sandbox world record: {} calls, {} deliveries ({} invites, {} messages)\n",
            self.calls, self.deliveries, self.invites_delivered, self.messages_delivered
        );
        let gap = self
            .min_seconds_between_invites_of_an_account
            .map_or("no account invited twice".to_owned(), |s| format!("{s:.1} s"));
        out.push_str(&format!("shortest gap between two invites of one account: {gap}\n"));
        out.push_str(&format!(
            "invites made: {}; most by one account in 24 h: {}; in one channel in 24 h: {}; in one channel in all: {}\n",
            self.invites_made,
            self.max_invites_per_account_24h,
            self.max_invites_per_account_channel_24h,
            self.max_invites_per_account_channel_total
        ));
        for (title, count, list) in [
            ("duplicate deliveries", self.duplicates, &self.duplicate_list),
            ("violations of the policy", self.violations, &self.violation_list),
        ] {
            out.push_str(&format!("{title}: {count}\n"));
            for f in list {
                let at = f.at.map(|t| t.to_rfc3339()).unwrap_or_default();
                let who = f.account_id.as_deref().unwrap_or("-");
                out.push_str(&format!("  {at} {who}: {}: {}\n", f.rule, f.detail));
            }
        }
        out.push_str("calls by method and answer:\n");
        for (method, answers) in &self.answers {
            for (answer, n) in answers {
                out.push_str(&format!("  {method:<28} {answer:<45} {n}\n"));
            }
        }
        out
    }
}

/// The Account Manager action a recorded call spent, if it spent one (a flood wait or a spam
/// restriction proves nothing was done, as the AM counts it).
fn action_of(call: &WorldCall) -> Option<AmAction> {
    if call.answer.starts_with("420 ") || call.answer == "400 PEER_FLOOD" {
        return None;
    }
    match call.method.as_str() {
        "channels.inviteToChannel" | "messages.addChatUser" => Some(AmAction::Invite),
        "messages.sendMessage" => Some(AmAction::Message),
        "contacts.resolveUsername" if call.channel_id.is_some() => Some(AmAction::ChannelLookup),
        "contacts.resolveUsername" => Some(AmAction::ResolveUsername),
        "contacts.importContacts" => Some(AmAction::ImportContact),
        "messages.checkChatInvite" | "channels.getChannels" | "messages.getChats" => Some(AmAction::ChannelLookup),
        // The second half of a lookup whose chat object had no member count: one grant, two calls.
        _ => None,
    }
}

pub fn audit(calls: &[WorldCall], deliveries: &[WorldDelivery], policy: &Policy) -> Audit {
    let mut answers: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for c in calls {
        *answers
            .entry(c.method.clone())
            .or_default()
            .entry(c.answer.clone())
            .or_default() += 1;
    }
    let duplicate_list = duplicates(deliveries);
    let violation_list = violations(calls, policy);
    Audit {
        calls: calls.len(),
        deliveries: deliveries.len(),
        invites_delivered: deliveries.iter().filter(|d| d.kind == "invite").count(),
        messages_delivered: deliveries.iter().filter(|d| d.kind == "message").count(),
        duplicates: duplicate_list.len(),
        duplicate_list,
        violations: violation_list.len(),
        violation_list,
        invites_made: calls.iter().filter(|c| action_of(c) == Some(AmAction::Invite)).count(),
        min_seconds_between_invites_of_an_account: min_gap(calls, AmAction::Invite),
        max_invites_per_account_24h: busiest(calls, |c| c.account_id.clone(), true),
        max_invites_per_account_channel_24h: busiest(calls, |c| (c.account_id.clone(), c.channel_id), true),
        max_invites_per_account_channel_total: busiest(calls, |c| (c.account_id.clone(), c.channel_id), false),
        answers,
    }
}

/// The most invites one group (an account, an account in a channel) made within any 24 hours, or in
/// all when `rolling` is false.
fn busiest<K: std::hash::Hash + Eq>(calls: &[WorldCall], key: impl Fn(&WorldCall) -> K, rolling: bool) -> usize {
    let mut groups: HashMap<K, Vec<DateTime<Utc>>> = HashMap::new();
    for c in calls.iter().filter(|c| action_of(c) == Some(AmAction::Invite)) {
        groups.entry(key(c)).or_default().push(c.at);
    }
    let day = chrono::Duration::hours(24);
    groups
        .into_values()
        .map(|mut times| {
            if !rolling {
                return times.len();
            }
            times.sort();
            let (mut start, mut most) = (0, 0);
            for (i, t) in times.iter().enumerate() {
                while *t - times[start] >= day {
                    start += 1;
                }
                most = most.max(i + 1 - start);
            }
            most
        })
        .max()
        .unwrap_or(0)
}

fn duplicates(deliveries: &[WorldDelivery]) -> Vec<Finding> {
    let mut groups: BTreeMap<(String, String), Vec<&WorldDelivery>> = BTreeMap::new();
    for d in deliveries {
        let mut keys = Vec::new();
        match d.kind.as_str() {
            "invite" => keys.push((
                "person added twice".to_owned(),
                format!("channel {} user {}", d.channel_id.unwrap_or_default(), d.user_id),
            )),
            _ => {
                if let Some(r) = d.random_id {
                    keys.push(("message delivered twice".to_owned(), format!("random_id {r}")));
                }
                if let Some(h) = &d.text_sha256 {
                    keys.push((
                        "same text delivered twice".to_owned(),
                        format!("user {} text {}", d.user_id, &h[..h.len().min(12)]),
                    ));
                }
            }
        }
        for k in keys {
            groups.entry(k).or_default().push(d);
        }
    }
    groups
        .into_iter()
        .filter(|(_, ds)| ds.len() > 1)
        .map(|((rule, key), ds)| Finding {
            rule,
            account_id: Some(ds.iter().map(|d| d.account_id.as_str()).collect::<Vec<_>>().join(",")),
            at: ds.get(1).map(|d| d.at),
            detail: format!("{key}: {} deliveries", ds.len()),
        })
        .collect()
}

fn violations(calls: &[WorldCall], policy: &Policy) -> Vec<Finding> {
    let mut by_account: HashMap<(&str, AmAction), Vec<&WorldCall>> = HashMap::new();
    for c in calls {
        if let Some(a) = action_of(c) {
            by_account.entry((c.account_id.as_str(), a)).or_default().push(c);
        }
    }
    let mut found = Vec::new();
    let mut keys: Vec<_> = by_account.keys().copied().collect();
    keys.sort_by_key(|(account, action)| (account.to_string(), action.as_str()));
    for key @ (account, action) in keys {
        let list = &by_account[&key];
        let rules = policy.action(action);
        let times: Vec<DateTime<Utc>> = list.iter().map(|c| c.at).collect();
        for w in &rules.per_account {
            if let Some(at) = first_excess(&times, w.cap, w.period) {
                found.push(finding(
                    account,
                    at,
                    format!("{} per account", action.as_str()),
                    w.cap,
                    w.period,
                ));
            }
        }
        let mut by_channel: BTreeMap<i64, Vec<DateTime<Utc>>> = BTreeMap::new();
        for c in list {
            if let Some(ch) = c.channel_id {
                by_channel.entry(ch).or_default().push(c.at);
            }
        }
        for (channel, times) in &by_channel {
            for w in &rules.per_channel {
                if let Some(at) = first_excess(times, w.cap, w.period) {
                    let rule = format!("{} per account in channel {channel}", action.as_str());
                    found.push(finding(account, at, rule, w.cap, w.period));
                }
            }
            if let Some(cap) = rules.lifetime_per_channel {
                if times.len() > cap as usize {
                    found.push(Finding {
                        rule: format!("{} ever per account in channel {channel}", action.as_str()),
                        account_id: Some(account.to_owned()),
                        at: times.get(cap as usize).copied(),
                        detail: format!("{} calls, at most {cap} allowed", times.len()),
                    });
                }
            }
        }
        let least = rules.pause.0;
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            if gap < least {
                found.push(Finding {
                    rule: format!("pause between {} calls", action.as_str()),
                    account_id: Some(account.to_owned()),
                    at: Some(pair[1]),
                    detail: format!(
                        "{:.3} s after the previous one, at least {} s required",
                        gap.num_milliseconds() as f64 / 1000.0,
                        least.num_seconds()
                    ),
                });
            }
        }
    }
    found
}

/// The time of the first call that made more than `cap` calls within one `period` (sorted input).
fn first_excess(times: &[DateTime<Utc>], cap: u32, period: chrono::Duration) -> Option<DateTime<Utc>> {
    let cap = cap as usize;
    let mut start = 0;
    for (i, t) in times.iter().enumerate() {
        while *t - times[start] >= period {
            start += 1;
        }
        if i + 1 - start > cap {
            return Some(*t);
        }
    }
    None
}

fn finding(account: &str, at: DateTime<Utc>, rule: String, cap: u32, period: chrono::Duration) -> Finding {
    Finding {
        rule,
        account_id: Some(account.to_owned()),
        at: Some(at),
        detail: format!("more than {cap} within {} s", period.num_seconds()),
    }
}

fn min_gap(calls: &[WorldCall], action: AmAction) -> Option<f64> {
    let mut last: HashMap<&str, DateTime<Utc>> = HashMap::new();
    let mut least: Option<f64> = None;
    for c in calls.iter().filter(|c| action_of(c) == Some(action)) {
        if let Some(prev) = last.insert(c.account_id.as_str(), c.at) {
            let gap = (c.at - prev).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            least = Some(least.map_or(gap, |l| l.min(gap)));
        }
    }
    least
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn call(id: i64, account: &str, secs: i64, method: &str, channel: Option<i64>, answer: &str) -> WorldCall {
        WorldCall {
            id,
            at: Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap(),
            account_id: account.into(),
            method: method.into(),
            channel_id: channel,
            user_id: Some(id),
            answer: answer.into(),
        }
    }

    fn delivery(id: i64, account: &str, kind: &str, user: i64, random_id: Option<i64>) -> WorldDelivery {
        WorldDelivery {
            id,
            call_id: id,
            at: Utc.timestamp_opt(1_800_000_000 + id, 0).unwrap(),
            account_id: account.into(),
            kind: kind.into(),
            channel_id: (kind == "invite").then_some(9),
            user_id: user,
            random_id,
            text_sha256: random_id.map(|r| format!("{r:064x}")),
        }
    }

    #[test]
    fn a_message_delivered_by_two_accounts_is_a_duplicate() {
        let d = vec![
            delivery(1, "a", "message", 5, Some(77)),
            delivery(2, "b", "message", 5, Some(77)),
            delivery(3, "a", "message", 6, Some(78)),
            delivery(4, "a", "invite", 5, None),
        ];
        let a = audit(&[], &d, &Policy::default());
        assert_eq!(a.invites_delivered, 1);
        assert_eq!(a.messages_delivered, 3);
        assert!(a.duplicates >= 1, "{:?}", a.duplicate_list);
        assert!(a.duplicate_list.iter().any(|f| f.rule == "message delivered twice"));
        assert_eq!(audit(&[], &d[2..], &Policy::default()).duplicates, 0);
    }

    #[test]
    fn pauses_and_windows_of_the_policy_are_checked_and_flood_waits_do_not_count() {
        let invite = "channels.inviteToChannel";
        let spaced: Vec<WorldCall> = (0..5)
            .map(|i| call(i, "a", i * 700, invite, Some(9), "ok"))
            .chain([call(9, "a", 3000, invite, Some(9), "420 FLOOD_WAIT_30")])
            .collect();
        let a = audit(&spaced, &[], &Policy::default());
        assert_eq!(a.violations, 0, "{:?}", a.violation_list);
        assert_eq!(a.min_seconds_between_invites_of_an_account, Some(700.0));

        let hurried = vec![
            call(1, "a", 0, invite, Some(9), "ok"),
            call(2, "a", 60, invite, Some(9), "ok"),
        ];
        let a = audit(&hurried, &[], &Policy::default());
        assert_eq!(a.violations, 1);
        assert!(a.violation_list[0].rule.contains("pause"));

        let mut policy = Policy::default();
        let rules = policy.actions.get_mut(&AmAction::Invite).unwrap();
        rules.pause = (Duration::zero(), Duration::zero());
        rules.per_channel[0].cap = 2;
        let three: Vec<WorldCall> = (0..3).map(|i| call(i, "a", i * 10, invite, Some(9), "ok")).collect();
        let a = audit(&three, &[], &policy);
        assert_eq!(a.violations, 1, "{:?}", a.violation_list);
        assert!(a.violation_list[0].rule.contains("in channel 9"));
    }

    #[test]
    fn the_busiest_account_and_channel_are_measured_in_rolling_days_and_in_all() {
        let invite = "channels.inviteToChannel";
        let h = 3600;
        let calls = vec![
            call(1, "a", 0, invite, Some(1), "ok"),
            call(2, "a", h, invite, Some(2), "ok"),
            call(3, "a", 2 * h, invite, Some(1), "400 USER_PRIVACY_RESTRICTED"),
            call(4, "a", 2 * h + 60, invite, Some(1), "420 FLOOD_WAIT_60"),
            // A day after the first: the first has left the window.
            call(5, "a", 24 * h, invite, Some(1), "ok"),
            call(6, "b", 0, invite, Some(1), "ok"),
            call(7, "b", 10, "contacts.resolveUsername", None, "ok"),
        ];
        let a = audit(&calls, &[], &Policy::default());
        assert_eq!(a.invites_made, 5);
        assert_eq!(a.max_invites_per_account_24h, 3);
        assert_eq!(a.max_invites_per_account_channel_24h, 2);
        assert_eq!(a.max_invites_per_account_channel_total, 3);
    }

    #[test]
    fn first_excess_slides_over_the_period() {
        let t = |s| Utc.timestamp_opt(s, 0).unwrap();
        let times = [t(0), t(10), t(100), t(105)];
        assert_eq!(first_excess(&times, 2, Duration::seconds(50)), None);
        assert_eq!(first_excess(&times, 1, Duration::seconds(50)), Some(t(10)));
        assert_eq!(first_excess(&times, 3, Duration::seconds(200)), Some(t(105)));
    }
}
