//! Campaigns ("invite tasks"): their states, priorities and the definition a user edits.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::{channel::ChannelRef, template::MessageTemplate};

/// The platform user who owns tasks and accounts; always taken from the caller's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(i64);

impl UserId {
    /// User ids are positive integers (the platform's `SERIAL` ids).
    pub fn new(id: i64) -> Option<Self> {
        (id > 0).then_some(Self(id))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

word_enum!(
    /// The spec's task status enum (PostgreSQL type `taskstatus`).
    TaskStatus {
        Pending => "PENDING",
        InProgress => "IN_PROGRESS",
        Paused => "PAUSED",
        Completed => "COMPLETED",
        Failed => "FAILED",
        Cancelled => "CANCELLED" | "CANCELED",
    }
);

impl TaskStatus {
    /// A task that has ended and will never act again.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

word_enum!(
    /// How urgently a task gets accounts. The API says `NORMAL`; the database enum `taskpriority`
    /// keeps the spec's `MEDIUM`.
    Priority {
        High => "HIGH" | "URGENT",
        Normal => "NORMAL" | "MEDIUM",
        Low => "LOW",
    }
);

impl Priority {
    /// The spelling of PostgreSQL's `taskpriority` enum.
    pub fn db_str(self) -> &'static str {
        match self {
            Self::High => "HIGH",
            Self::Normal => "MEDIUM",
            Self::Low => "LOW",
        }
    }

    /// Higher is served first.
    pub fn rank(self) -> u8 {
        match self {
            Self::High => 2,
            Self::Normal => 1,
            Self::Low => 0,
        }
    }
}

word_enum!(
    /// Messengers a task may run on.
    Platform {
        Telegram => "telegram",
        Instagram => "instagram",
        Whatsapp => "whatsapp",
    }
);

impl Platform {
    /// Platforms with an adapter; the others are accepted names that cannot run yet.
    pub fn is_supported(self) -> bool {
        matches!(self, Self::Telegram)
    }
}

word_enum!(
    /// What a task does to each target. The platform's web client says `group_invite`/`message`.
    ActionType {
        InviteToGroup => "invite_to_group" | "group_invite",
        SendMessage => "send_message" | "message",
    }
);

/// The definition of a campaign: everything a user sets. Holding one means it is valid as a whole
/// (an invite has a channel, a message has a template); time-dependent rules are checked where the
/// current time is known.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    pub name: String,
    pub description: Option<String>,
    pub platform: Platform,
    pub action_type: ActionType,
    pub target_channel: Option<ChannelRef>,
    pub message_template: Option<MessageTemplate>,
    pub priority: Priority,
    pub scheduled_start: Option<DateTime<Utc>>,
    pub settings: Map<String, Value>,
}

/// The names of a spec's fields, as the API spells them.
pub mod field {
    pub const NAME: &str = "name";
    pub const DESCRIPTION: &str = "description";
    pub const PLATFORM: &str = "platform";
    pub const ACTION_TYPE: &str = "action_type";
    pub const TARGET_CHANNEL: &str = "target_channel";
    pub const MESSAGE_TEMPLATE: &str = "message_template";
    pub const PRIORITY: &str = "priority";
    pub const SCHEDULED_START: &str = "scheduled_start";
    pub const SETTINGS: &str = "settings";
}

impl TaskSpec {
    /// The fields whose values differ between two specs, in the API's order.
    pub fn changed_fields(&self, other: &TaskSpec) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |differs: bool, name| {
            if differs {
                out.push(name)
            }
        };
        check(self.name != other.name, field::NAME);
        check(self.description != other.description, field::DESCRIPTION);
        check(self.platform != other.platform, field::PLATFORM);
        check(self.action_type != other.action_type, field::ACTION_TYPE);
        check(self.target_channel != other.target_channel, field::TARGET_CHANNEL);
        check(self.message_template != other.message_template, field::MESSAGE_TEMPLATE);
        check(self.priority != other.priority, field::PRIORITY);
        check(self.scheduled_start != other.scheduled_start, field::SCHEDULED_START);
        check(self.settings != other.settings, field::SETTINGS);
        out
    }
}

/// Which fields a task in a given status lets its owner change.
pub enum Editable {
    All,
    Only(&'static [&'static str]),
    Nothing,
}

impl TaskStatus {
    pub fn editable(self) -> Editable {
        match self {
            Self::Pending => Editable::All,
            Self::Paused => Editable::Only(&[field::NAME, field::DESCRIPTION, field::PRIORITY]),
            Self::InProgress | Self::Completed | Self::Failed | Self::Cancelled => Editable::Nothing,
        }
    }
}

/// Progress counters of a task, kept by the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounters {
    pub target_count: i64,
    pub completed_count: i64,
    pub failed_count: i64,
    pub skipped_count: i64,
}

impl TaskCounters {
    /// Share of targets that reached a final state, in percent with two decimals.
    pub fn progress_percentage(&self) -> f64 {
        if self.target_count <= 0 {
            return 0.0;
        }
        let done = (self.completed_count + self.failed_count + self.skipped_count).min(self.target_count);
        (done as f64 * 10_000.0 / self.target_count as f64).round() / 100.0
    }
}

/// A stored task.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: i64,
    pub user_id: UserId,
    pub spec: TaskSpec,
    pub status: TaskStatus,
    pub status_reason: Option<String>,
    pub counters: TaskCounters,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Bumped by every write; an update applies only to the version it was computed from.
    pub version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_parse_in_any_case_with_their_aliases() {
        assert_eq!(Priority::parse("medium"), Some(Priority::Normal));
        assert_eq!(Priority::parse("Normal"), Some(Priority::Normal));
        assert_eq!(Priority::parse("urgent"), Some(Priority::High));
        assert_eq!(Priority::parse("critical"), None);
        assert_eq!(Priority::Normal.as_str(), "NORMAL");
        assert_eq!(Priority::Normal.db_str(), "MEDIUM");
        assert_eq!(ActionType::parse("group_invite"), Some(ActionType::InviteToGroup));
        assert_eq!(ActionType::parse("MESSAGE"), Some(ActionType::SendMessage));
        assert_eq!(TaskStatus::parse("in_progress"), Some(TaskStatus::InProgress));
        assert_eq!(Platform::parse("WhatsApp"), Some(Platform::Whatsapp));
        assert!(!Platform::Whatsapp.is_supported());
    }

    #[test]
    fn progress_counts_every_final_state() {
        let c = TaskCounters {
            target_count: 3,
            completed_count: 1,
            failed_count: 0,
            skipped_count: 1,
        };
        assert_eq!(c.progress_percentage(), 66.67);
        assert_eq!(TaskCounters::default().progress_percentage(), 0.0);
    }

    #[test]
    fn paused_tasks_keep_their_definition() {
        assert!(matches!(TaskStatus::Pending.editable(), Editable::All));
        assert!(matches!(TaskStatus::Paused.editable(), Editable::Only(f) if f.contains(&"priority")));
        assert!(matches!(TaskStatus::Completed.editable(), Editable::Nothing));
    }
}
