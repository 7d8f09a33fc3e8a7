//! The Account Manager's interface (the spec's names): `allocate_account`, `check_rate_limit`,
//! `release_account`, `handle_error`, and the read-only questions the scheduler asks.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use clock::SharedClock;
use domain::{
    outcome::{AccountProblem, AmAction, ChannelProblem, Outcome},
    UserId,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use store::{AccountRecord, Decision, GrantRequest, LedgerAsk, SharedStore, Standing, StoreError, Verdict};

use crate::{
    policy::{decide, Policy},
    source::{AccountSource, LocalRegistry},
};

/// A slot granted for one platform call, already written to the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: i64,
    pub account_id: String,
    pub action: AmAction,
    pub channel: Option<String>,
}

/// The answer of `check_rate_limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimit {
    Granted(Grant),
    /// Ask again in `wait_for_seconds` (at `until`).
    Wait {
        wait_for_seconds: i64,
        until: DateTime<Utc>,
        reason: String,
    },
    /// `permanent`: never again for this account (and channel).
    Denied {
        reason: String,
        permanent: bool,
    },
}

/// An exclusive, expiring hold on an account: one live connection and one action at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub account_id: String,
    pub epoch: i64,
    pub until: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum AmError {
    #[error("the Account Manager cannot reach its store: {0}")]
    Store(#[from] StoreError),
}

/// What is left of an account's budget for one action (and channel), for completion estimates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// Per rolling window of the account: (cap, used, period in hours).
    pub account: Vec<(u32, u32, i64)>,
    pub channel: Vec<(u32, u32, i64)>,
    /// Left of the lifetime cap in the channel, when there is one.
    pub lifetime_left: Option<u64>,
}

pub struct AccountManager {
    store: SharedStore,
    source: Arc<dyn AccountSource>,
    clock: SharedClock,
    policy: Policy,
    rng: Mutex<StdRng>,
    /// Names this process in leases.
    holder: String,
}

impl AccountManager {
    pub fn new(store: SharedStore, clock: SharedClock, policy: Policy, seed: Option<u64>) -> Arc<Self> {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        let holder = format!("am-{:08x}", rand::random::<u32>());
        let source = Arc::new(LocalRegistry(store.clone()));
        Arc::new(Self {
            store,
            source,
            clock,
            policy,
            rng: Mutex::new(rng),
            holder,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn draw(&self, low: Duration, high: Duration) -> Duration {
        let (lo, hi) = (low.num_milliseconds(), high.num_milliseconds());
        if hi <= lo {
            return low;
        }
        let ms = self.rng.lock().expect("rng lock").gen_range(lo..=hi);
        Duration::milliseconds(ms)
    }

    fn request<'a>(
        &self,
        account_id: &'a str,
        action: AmAction,
        channel: Option<&'a str>,
        now: DateTime<Utc>,
    ) -> GrantRequest<'a> {
        GrantRequest {
            account_id,
            action: action.as_str(),
            channel,
            now,
            lookback: self.policy.lookback(action),
        }
    }

    /// The grant, taken by the worker right before the platform call. Fails closed: when the store
    /// cannot be read or written, the answer is a (temporary) denial.
    pub async fn check_rate_limit(&self, account_id: &str, action: AmAction, channel: Option<&str>) -> RateLimit {
        let now = self.clock.now();
        let request = self.request(account_id, action, channel, now);
        let pause = {
            let rules = self.policy.action(action);
            self.draw(rules.pause.0, rules.pause.1)
        };
        let decide_here =
            |ledger: &store::Ledger| decide(&self.policy, action, channel.is_some(), ledger, now, |_, _| pause);
        let answer = match self.store.am_grant(&request, &decide_here).await {
            Ok(Verdict::Granted { grant_id, .. }) => RateLimit::Granted(Grant {
                id: grant_id,
                account_id: account_id.to_string(),
                action,
                channel: channel.map(str::to_string),
            }),
            Ok(Verdict::Wait { until, reason }) => RateLimit::Wait {
                wait_for_seconds: (until - now).num_seconds().max(1),
                until,
                reason,
            },
            Ok(Verdict::Denied { reason, permanent }) => RateLimit::Denied { reason, permanent },
            Ok(Verdict::NoSuchAccount) => RateLimit::Denied {
                reason: "no such account".into(),
                permanent: true,
            },
            Err(e) => {
                tracing::error!(account_id, action = action.as_str(), error = %e, "Account Manager: check_rate_limit failed closed");
                RateLimit::Denied {
                    reason: format!("the Account Manager cannot decide ({e}); nothing is sent"),
                    permanent: false,
                }
            }
        };
        match &answer {
            RateLimit::Granted(g) => tracing::info!(
                account_id,
                action = action.as_str(),
                channel,
                grant_id = g.id,
                "Account Manager: check_rate_limit granted"
            ),
            RateLimit::Wait {
                wait_for_seconds,
                reason,
                ..
            } => tracing::info!(
                account_id,
                action = action.as_str(),
                channel,
                wait_for_seconds,
                reason = reason.as_str(),
                "Account Manager: check_rate_limit wait"
            ),
            RateLimit::Denied { reason, permanent } => tracing::info!(
                account_id,
                action = action.as_str(),
                channel,
                reason = reason.as_str(),
                permanent,
                "Account Manager: check_rate_limit denied"
            ),
        }
        answer
    }

    /// When this account may next do this action here, or None when never (without taking a slot).
    pub async fn next_available_at(
        &self,
        account_id: &str,
        action: AmAction,
        channel: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, AmError> {
        let at = self.next_available(account_id, &[(action, channel)]).await?;
        Ok(at.into_iter().next().flatten())
    }

    /// The same for several (action, channel) pairs of one account, from one read of its ledger; in the
    /// order asked. Every answer is None when there is no such account.
    pub async fn next_available(
        &self,
        account_id: &str,
        needs: &[(AmAction, Option<&str>)],
    ) -> Result<Vec<Option<DateTime<Utc>>>, AmError> {
        let now = self.clock.now();
        let asks: Vec<LedgerAsk<'_>> = needs
            .iter()
            .map(|(action, channel)| LedgerAsk {
                action: action.as_str(),
                channel: *channel,
                lookback: self.policy.lookback(*action),
            })
            .collect();
        let Some(ledgers) = self.store.am_ledgers(account_id, now, &asks).await? else {
            return Ok(vec![None; needs.len()]);
        };
        Ok(needs
            .iter()
            .zip(&ledgers)
            .map(|((action, channel), ledger)| {
                match decide(&self.policy, *action, channel.is_some(), ledger, now, |low, _| low) {
                    Decision::Grant { .. } => Some(now),
                    Decision::Wait { until, .. } => Some(until),
                    Decision::Deny { .. } => None,
                }
            })
            .collect())
    }

    /// What is left of the budget, for completion estimates.
    pub async fn remaining_budget(
        &self,
        account_id: &str,
        action: AmAction,
        channel: Option<&str>,
    ) -> Result<Budget, AmError> {
        let now = self.clock.now();
        let rules = self.policy.action(action);
        let usage = self.store.am_usage(account_id, None).await?;
        let recent = self
            .store
            .am_usage(account_id, Some(now - self.policy.lookback(action)))
            .await?;
        let count = |rows: &[store::Usage], in_channel: bool| -> u64 {
            rows.iter()
                .filter(|u| u.action == action.as_str() && (!in_channel || u.channel.as_deref() == channel))
                .map(|u| u.count as u64)
                .sum()
        };
        // Windows shorter than the lookback are approximated by the lookback's count (an upper bound).
        let used_account = count(&recent, false) as u32;
        let used_channel = count(&recent, true) as u32;
        Ok(Budget {
            account: rules
                .per_account
                .iter()
                .map(|w| (w.cap, used_account.min(w.cap), w.period.num_hours()))
                .collect(),
            channel: if channel.is_some() {
                rules
                    .per_channel
                    .iter()
                    .map(|w| (w.cap, used_channel.min(w.cap), w.period.num_hours()))
                    .collect()
            } else {
                Vec::new()
            },
            lifetime_left: rules
                .lifetime_per_channel
                .filter(|_| channel.is_some())
                .map(|cap| u64::from(cap).saturating_sub(count(&usage, true))),
        })
    }

    /// An exclusive lease on one of the user's accounts on this platform that may act now (or soonest),
    /// for the channel when given. None when every account is leased, blocked or closed there.
    pub async fn allocate_account(
        &self,
        user: UserId,
        platform: &str,
        purpose: &str,
        channel: Option<&str>,
    ) -> Result<Option<Lease>, AmError> {
        let now = self.clock.now();
        let accounts = self.source.accounts(user, platform).await?;
        let closed: Vec<String> = match channel {
            None => Vec::new(),
            Some(c) => {
                let mut out = Vec::new();
                for a in &accounts {
                    if self
                        .store
                        .am_channel_states(&a.id)
                        .await?
                        .iter()
                        .any(|s| s.channel == c)
                    {
                        out.push(a.id.clone());
                    }
                }
                out
            }
        };
        let mut candidates: Vec<&AccountRecord> = accounts
            .iter()
            .filter(|a| !matches!(a.standing, Standing::Blocked { .. }) && !closed.contains(&a.id))
            .filter(|a| a.lease_until.is_none_or(|t| t <= now))
            .collect();
        candidates.sort_by_key(|a| a.standing.until().filter(|t| *t > now).unwrap_or(now));
        let until = now + self.policy.lease_ttl;
        for a in candidates {
            if let Some(epoch) = self.store.am_lease(&a.id, &self.holder, now, until).await? {
                tracing::info!(
                    user_id = user.get(),
                    platform,
                    purpose,
                    channel,
                    account_id = a.id.as_str(),
                    epoch,
                    "Account Manager: allocate_account"
                );
                return Ok(Some(Lease {
                    account_id: a.id.clone(),
                    epoch,
                    until,
                }));
            }
        }
        tracing::info!(
            user_id = user.get(),
            platform,
            purpose,
            channel,
            "Account Manager: allocate_account found no free account"
        );
        Ok(None)
    }

    /// An exclusive lease on this account (the scheduler picks the account itself): None while another
    /// holder's lease has not expired.
    pub async fn lease(&self, account_id: &str, holder: &str) -> Result<Option<Lease>, AmError> {
        let now = self.clock.now();
        let until = now + self.policy.lease_ttl;
        let epoch = self.store.am_lease(account_id, holder, now, until).await?;
        Ok(epoch.map(|epoch| Lease {
            account_id: account_id.to_owned(),
            epoch,
            until,
        }))
    }

    /// Records the outcome of a granted call (a call that did nothing gives its slot back) and frees
    /// the lease.
    pub async fn release_account(
        &self,
        lease: Option<&Lease>,
        grant: Option<&Grant>,
        outcome: Outcome,
    ) -> Result<(), AmError> {
        let now = self.clock.now();
        if let Some(g) = grant {
            self.store
                .am_release(g.id, outcome.as_str(), outcome.consumes_budget(), now)
                .await?;
        }
        if let Some(l) = lease {
            self.store.am_unlease(&l.account_id, l.epoch).await?;
        }
        tracing::info!(
            account_id = lease
                .map(|l| l.account_id.as_str())
                .or(grant.map(|g| g.account_id.as_str())),
            grant_id = grant.map(|g| g.id),
            outcome = outcome.as_str(),
            consumed = outcome.consumes_budget(),
            "Account Manager: release_account"
        );
        Ok(())
    }

    /// What an error means for the account or the channel, stored so every process sees it and
    /// resting accounts come back by themselves when their time passes.
    pub async fn handle_error(
        &self,
        account_id: &str,
        platform: &str,
        outcome: Outcome,
        message: &str,
        channel: Option<&str>,
    ) -> Result<(), AmError> {
        let now = self.clock.now();
        let effect = match outcome {
            Outcome::Account(AccountProblem::FloodWait(wait)) => {
                let wait = Duration::from_std(wait).unwrap_or(Duration::days(1));
                let until = now + wait + self.policy.flood_margin;
                let reason = format!("FLOOD_WAIT {} s", wait.num_seconds());
                self.tighten(
                    account_id,
                    Standing::Resting {
                        until,
                        reason: reason.clone(),
                    },
                    now,
                )
                .await?;
                format!("resting until {until}: {reason}")
            }
            Outcome::Account(AccountProblem::PeerFlood) => {
                let strikes = self.store.am_add_strike(account_id).await?.unwrap_or(1).max(1);
                let factor = 1i32 << (strikes - 1).min(10);
                let rest = (self.policy.peer_flood_rest * factor).min(self.policy.peer_flood_max);
                let until = now + rest;
                let reason = format!("PEER_FLOOD (strike {strikes}): may not contact strangers");
                self.tighten(
                    account_id,
                    Standing::Restricted {
                        until,
                        reason: reason.clone(),
                    },
                    now,
                )
                .await?;
                format!("restricted until {until}: {reason}")
            }
            Outcome::Account(
                p @ (AccountProblem::SessionDead | AccountProblem::SessionDuplicated | AccountProblem::Unusable),
            ) => {
                let reason = format!("{}: {message}", Outcome::Account(p).as_str());
                self.tighten(account_id, Standing::Blocked { reason: reason.clone() }, now)
                    .await?;
                format!("blocked: {reason}")
            }
            Outcome::Channel(p @ (ChannelProblem::NoRights | ChannelProblem::Private)) => match channel {
                Some(c) => {
                    self.store
                        .am_close_channel(account_id, c, "no_rights", Outcome::Channel(p).as_str(), now)
                        .await?;
                    format!("excluded from {c}")
                }
                None => "no channel given".into(),
            },
            Outcome::Channel(p @ (ChannelProblem::Full | ChannelProblem::NotFound)) => match channel {
                Some(c) => {
                    let state = if p == ChannelProblem::Full { "full" } else { "not_found" };
                    self.store
                        .am_channel_gone(platform, c, state, Outcome::Channel(p).as_str(), now)
                        .await?;
                    format!("{c} is {state} for every account")
                }
                None => "no channel given".into(),
            },
            other => format!("{} changes nothing for the account", other.as_str()),
        };
        tracing::warn!(
            account_id,
            outcome = outcome.as_str(),
            message,
            channel,
            effect = effect.as_str(),
            "Account Manager: handle_error"
        );
        Ok(())
    }

    /// Makes the account's standing at least as strict as `new`: an error never lifts a block, and a
    /// rest and a restriction together hold until the later of the two ends (a rest stops every action,
    /// so that is the safe side).
    async fn tighten(&self, account_id: &str, new: Standing, now: DateTime<Utc>) -> Result<(), AmError> {
        let Some(current) = self.store.am_standing(account_id).await? else {
            return Ok(());
        };
        let merged = Self::stricter(&Self::effective(&current, now), new);
        self.store.am_set_standing(account_id, &merged, now).await?;
        Ok(())
    }

    fn stricter(current: &Standing, new: Standing) -> Standing {
        match (current, new) {
            (Standing::Blocked { .. }, _) => current.clone(),
            (_, blocked @ Standing::Blocked { .. }) => blocked,
            (Standing::Active, new) => new,
            (current, new) => {
                let until = current.until().max(new.until()).expect("both are timed");
                let reason = format!(
                    "{}; {}",
                    new.reason().unwrap_or_default(),
                    current.reason().unwrap_or_default()
                );
                if matches!(current, Standing::Resting { .. }) || matches!(new, Standing::Resting { .. }) {
                    Standing::Resting { until, reason }
                } else {
                    Standing::Restricted { until, reason }
                }
            }
        }
    }

    /// The effective standing now: a rest or restriction whose time has passed is over.
    pub fn effective(standing: &Standing, now: DateTime<Utc>) -> Standing {
        match standing {
            Standing::Resting { until, .. } | Standing::Restricted { until, .. } if *until <= now => Standing::Active,
            other => other.clone(),
        }
    }
}
