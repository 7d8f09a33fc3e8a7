//! The simulator: days of campaigns on the real scheduler, Account Manager, store and Telegram adapter
//! in virtual time must use every invite the policy allows, and not one more.

use account_manager::Policy;
use invite_service::sim::{maximum, simulate, Audience, SimOptions};

fn options(accounts: usize, channels: usize, tasks: usize, targets: usize, days: f64) -> SimOptions {
    SimOptions {
        accounts,
        channels,
        tasks,
        targets,
        days,
        seed: 7,
        broadcast: false,
        audience: Audience::Accepting,
        db: None,
        log: None,
    }
}

#[tokio::test]
async fn two_days_of_supergroup_campaigns_use_the_whole_budget_and_break_no_limit() {
    let report = simulate(&options(6, 2, 4, 2_000, 2.0), Policy::default())
        .await
        .unwrap();
    // 30 a day per account, 15 a day per account in each of 2 channels: 6 × 60.
    assert_eq!(report.theoretical_max, 360, "{}", report.maximum.formula);
    assert_eq!(report.actions, 360, "{}", report.to_text());
    assert!(report.utilization >= 0.99);
    assert_eq!(
        (report.violations, report.duplicates, report.lost),
        (0, 0, 0),
        "{}",
        report.to_text()
    );
    let o = &report.observed;
    assert_eq!(o.max_invites_per_account_24h, 30);
    assert!(o.max_invites_per_account_channel_24h <= 15);
    assert!(o.max_invites_per_account_channel_total <= 30);
    assert!(o.min_seconds_between_invites_of_an_account.unwrap() >= 600.0);
    assert_eq!(report.targets_by_state["succeeded"], 360);
    assert_eq!(report.targets_by_state["in_progress"], 0);
}

#[tokio::test]
async fn broadcast_channels_fill_at_their_first_two_hundred_and_the_maximum_knows_it() {
    let mut o = options(12, 2, 2, 2_000, 2.0);
    o.broadcast = true;
    let report = simulate(&o, Policy::default()).await.unwrap();
    let room = report.maximum.formula.clone();
    // Channel 0 is a supergroup (12 accounts × 2 days × 15 = 360 at most, 30 a day per account);
    // channel 1 is a broadcast channel that takes only the members it has room for.
    assert!(room.contains("1 with an add limit"), "{room}");
    assert!(report.theoretical_max < 12 * 60, "{room}");
    assert!(report.utilization >= 0.99, "{}", report.to_text());
    assert_eq!(
        (report.violations, report.duplicates, report.lost),
        (0, 0, 0),
        "{}",
        report.to_text()
    );
    // The broadcast channel's task ended when the channel was full: its remaining targets skipped.
    assert!(report.targets_by_state["skipped"] > 0, "{}", report.to_text());
}

#[tokio::test]
async fn with_the_mixed_audience_refusals_spend_invites_and_nothing_is_lost() {
    let mut o = options(4, 2, 2, 1_000, 1.0);
    o.audience = Audience::Mixed;
    let report = simulate(&o, Policy::default()).await.unwrap();
    assert_eq!(report.theoretical_max, 120);
    assert!(report.utilization >= 0.99, "{}", report.to_text());
    assert!(
        report.delivered < report.actions as usize,
        "some people refuse: {}",
        report.to_text()
    );
    assert_eq!(
        (report.violations, report.duplicates, report.lost),
        (0, 0, 0),
        "{}",
        report.to_text()
    );
}

#[test]
fn the_maximum_is_the_minimum_cut_of_accounts_and_channels() {
    let shape = maximum::Shape {
        accounts: 4,
        channels: vec![
            maximum::ChannelShape {
                targets: 10,
                add_limit: None,
            },
            maximum::ChannelShape {
                targets: 1_000,
                add_limit: None,
            },
        ],
        length: chrono::Duration::days(1),
    };
    // The first channel takes its 10 targets; the rest of the accounts' 4 × 30 must go into the second
    // at 15 each: 10 + 60.
    assert_eq!(maximum::maximum(&Policy::default(), &shape).value, 70);
}
