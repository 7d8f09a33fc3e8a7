//! A plain driver for invite campaigns on the sandbox world, for tests of the adapter and the world
//! (the service's engine is the real one): each target is tried by the accounts in turn, every call
//! granted by the Account Manager first, and the virtual clock jumps to the earliest time an account
//! may act again when none can act now.

use std::collections::{BTreeMap, HashMap, HashSet};

use account_manager::{AccountManager, RateLimit};
use chrono::{DateTime, Utc};
use domain::{
    channel::ChannelRef,
    outcome::{AmAction, Outcome},
    UserId,
};
use platforms::{AccountClient, ChannelInfo, Resolution, TargetRef};
use store::{AccountKind, NewAccount, RequestMeta, SharedStore};

use super::sandbox::Sandbox;

pub async fn register_accounts(store: &SharedStore, user: i64, n: usize, now: DateTime<Utc>) -> Vec<String> {
    let meta = RequestMeta {
        request_id: "test".into(),
        client_addr: None,
    };
    let mut ids = Vec::new();
    for i in 0..n {
        let account = NewAccount {
            id: format!("sandbox-{user}-{i}"),
            platform: "telegram".into(),
            name: format!("Sandbox {i}"),
            kind: AccountKind::Sandbox,
            session_sealed: None,
            api_id: None,
            api_hash_sealed: None,
            session_facts: serde_json::json!({}),
        };
        store
            .create_account(UserId::new(user).unwrap(), &account, now, &meta)
            .await
            .unwrap();
        ids.push(account.id);
    }
    ids
}

/// Runs an invite campaign to its end; returns how many targets ended with each outcome.
pub async fn invite_all(
    s: &Sandbox,
    am: &AccountManager,
    accounts: &[String],
    channel: &str,
    targets: &[TargetRef],
) -> BTreeMap<&'static str, usize> {
    let channel_ref = ChannelRef::parse(channel).unwrap();
    let mut clients: HashMap<String, Box<dyn AccountClient>> = HashMap::new();
    for a in accounts {
        clients.insert(a.clone(), s.client(a).await);
    }
    let mut rooms: HashMap<String, ChannelInfo> = HashMap::new();
    let mut excluded: HashSet<String> = HashSet::new();
    let mut counts = BTreeMap::new();
    let mut turn = 0;
    for target in targets {
        let outcome = loop {
            let mut earliest: Option<DateTime<Utc>> = None;
            let mut wait = |until: DateTime<Utc>| earliest = Some(earliest.map_or(until, |e| e.min(until)));
            let mut ended = None;
            for k in 0..accounts.len() {
                let account = &accounts[(turn + k) % accounts.len()];
                if excluded.contains(account) {
                    continue;
                }
                let client = clients.get_mut(account).unwrap();
                if !rooms.contains_key(account) {
                    match am.check_rate_limit(account, AmAction::ChannelLookup, None).await {
                        RateLimit::Granted(g) => {
                            let found = client.lookup_channel(&channel_ref).await;
                            let outcome = found.as_ref().map_or_else(|r| r.outcome, |_| Outcome::Success);
                            am.release_account(None, Some(&g), outcome).await.unwrap();
                            match found {
                                Ok(info) if info.can_invite => {
                                    rooms.insert(account.clone(), info);
                                }
                                _ => {
                                    excluded.insert(account.clone());
                                    continue;
                                }
                            }
                        }
                        RateLimit::Wait { until, .. } => {
                            wait(until);
                            continue;
                        }
                        RateLimit::Denied { .. } => {
                            excluded.insert(account.clone());
                            continue;
                        }
                    }
                }
                let room = rooms[account].clone();
                let grant = match am.check_rate_limit(account, AmAction::Invite, Some(channel)).await {
                    RateLimit::Granted(g) => g,
                    RateLimit::Wait { until, .. } => {
                        wait(until);
                        continue;
                    }
                    RateLimit::Denied { permanent, .. } => {
                        if permanent {
                            excluded.insert(account.clone());
                        }
                        continue;
                    }
                };
                let peer = match client.resolution(target) {
                    Resolution::Known(p) => Ok(p),
                    Resolution::Unreachable => Err(Outcome::Target(domain::outcome::TargetProblem::NotFound)),
                    Resolution::Lookup(action) => match am.check_rate_limit(account, action, None).await {
                        RateLimit::Granted(rg) => {
                            let found = client.resolve(target).await;
                            let outcome = found.as_ref().map_or_else(|r| r.outcome, |_| Outcome::Success);
                            am.release_account(None, Some(&rg), outcome).await.unwrap();
                            if let Err(r) = &found {
                                am.handle_error(account, "telegram", r.outcome, &r.detail, None)
                                    .await
                                    .unwrap();
                            }
                            found.map_err(|r| r.outcome)
                        }
                        RateLimit::Wait { until, .. } => {
                            am.release_account(None, Some(&grant), Outcome::Transient)
                                .await
                                .unwrap();
                            wait(until);
                            continue;
                        }
                        RateLimit::Denied { .. } => {
                            am.release_account(None, Some(&grant), Outcome::Transient)
                                .await
                                .unwrap();
                            continue;
                        }
                    },
                };
                let outcome = match peer {
                    Ok(peer) => {
                        let report = client.invite(&room, &peer).await;
                        am.release_account(None, Some(&grant), report.outcome).await.unwrap();
                        if !matches!(
                            report.outcome,
                            Outcome::Success | Outcome::AlreadyDone | Outcome::Target(_)
                        ) {
                            am.handle_error(account, "telegram", report.outcome, &report.detail, Some(channel))
                                .await
                                .unwrap();
                        }
                        report.outcome
                    }
                    Err(o) => {
                        am.release_account(None, Some(&grant), Outcome::Transient)
                            .await
                            .unwrap();
                        o
                    }
                };
                if outcome.consumes_target() {
                    ended = Some(outcome);
                    turn += k + 1;
                    break;
                }
            }
            if let Some(o) = ended {
                break o;
            }
            match earliest {
                Some(t) => s.clock.set(t),
                None => panic!("no account can ever invite {target:?}"),
            }
        };
        *counts.entry(outcome.as_str()).or_default() += 1;
    }
    counts
}
