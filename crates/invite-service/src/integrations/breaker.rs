//! A circuit breaker for one upstream service: after a run of failed calls it fails fast for a
//! cool-down instead of making every caller wait for timeouts, then lets one trial call through and
//! closes again when that call succeeds. Time is the service clock's, so tests move it by hand.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

#[derive(Debug)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: DateTime<Utc>,
        problem: String,
    },
    /// One trial call is out; a trial that never reports back (its caller gave up) is replaced once
    /// `since` is a cool-down old.
    HalfOpen {
        since: DateTime<Utc>,
        problem: String,
    },
}

/// Why a call was not made: the last problem seen, and when the next trial call may go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub problem: String,
    pub retry_at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

impl Breaker {
    /// Opens after `threshold` failures in a row, for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// Whether a call may go out now; when the cool-down is over, this call is the trial.
    pub fn admit(&self, now: DateTime<Utc>) -> Result<(), Open> {
        let mut state = self.state.lock().expect("breaker lock");
        match &*state {
            State::Closed { .. } => Ok(()),
            State::Open { until, problem } if now < *until => Err(Open {
                problem: problem.clone(),
                retry_at: *until,
            }),
            State::HalfOpen { since, problem } if now < *since + self.cooldown => Err(Open {
                problem: problem.clone(),
                retry_at: *since + self.cooldown,
            }),
            State::Open { problem, .. } | State::HalfOpen { problem, .. } => {
                *state = State::HalfOpen {
                    since: now,
                    problem: problem.clone(),
                };
                Ok(())
            }
        }
    }

    /// The upstream answered (whatever it said, it is up).
    pub fn success(&self) {
        *self.state.lock().expect("breaker lock") = State::Closed { failures: 0 };
    }

    /// The upstream failed (5xx, timeout, unreachable). Returns the open state when this failure
    /// opened the breaker.
    pub fn failure(&self, problem: &str, now: DateTime<Utc>) -> Option<Open> {
        let mut state = self.state.lock().expect("breaker lock");
        let opens = match &*state {
            State::Closed { failures } if failures + 1 < self.threshold => {
                *state = State::Closed { failures: failures + 1 };
                false
            }
            State::Closed { .. } | State::HalfOpen { .. } => true,
            // A call let through before the breaker opened failed late: the cool-down stands.
            State::Open { .. } => false,
        };
        if !opens {
            return None;
        }
        let until = now + self.cooldown;
        *state = State::Open {
            until,
            problem: problem.to_owned(),
        };
        Some(Open {
            problem: problem.to_owned(),
            retry_at: until,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn opens_after_a_run_of_failures_then_half_opens_and_closes() {
        let t0 = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        let b = Breaker::new(3, Duration::seconds(30));
        assert_eq!(b.failure("500", t0), None);
        b.success();
        assert_eq!(b.failure("500", t0), None);
        assert_eq!(b.failure("500", t0), None);
        assert!(b.admit(t0).is_ok(), "two failures in a row are not yet three");
        let open = b.failure("it answered 500", t0).expect("the third opens it");
        assert_eq!(open.retry_at, t0 + Duration::seconds(30));
        assert_eq!(b.admit(t0 + Duration::seconds(29)), Err(open.clone()));

        let t1 = t0 + Duration::seconds(30);
        assert!(b.admit(t1).is_ok(), "the trial call");
        assert!(b.admit(t1).is_err(), "only one trial at a time");
        assert!(
            b.failure("it answered 503", t1).is_some(),
            "a failed trial opens it again"
        );
        assert_eq!(b.admit(t1).unwrap_err().problem, "it answered 503");

        let t2 = t1 + Duration::seconds(30);
        assert!(b.admit(t2).is_ok());
        b.success();
        assert!(b.admit(t2).is_ok() && b.admit(t2).is_ok(), "closed again");
    }

    #[test]
    fn a_trial_that_never_reports_back_is_replaced() {
        let t0 = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        let b = Breaker::new(1, Duration::seconds(10));
        b.failure("timeout", t0);
        assert!(b.admit(t0 + Duration::seconds(10)).is_ok());
        assert!(b.admit(t0 + Duration::seconds(15)).is_err());
        assert!(b.admit(t0 + Duration::seconds(20)).is_ok());
    }
}
