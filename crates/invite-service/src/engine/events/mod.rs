//! Live events between processes: a task was paused, resumed or cancelled, work became due. They are
//! wake-ups and copies — the store stays the truth — so a lost event only delays, never loses, work.
//! In-process for standalone ([`Local`]), Redis pub/sub for the platform ([`redis`]).

pub mod redis;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A task's status changed (start, pause, resume, cancel, completion): workers re-read it before
    /// their next action, the scheduler looks again.
    TaskChanged { task_id: i64 },
    /// Something became due earlier than the scheduler planned (a target given back, an account freed).
    Wake,
}

#[async_trait]
pub trait Events: Send + Sync {
    /// Tells every process (this one included). Best effort: the store is the truth.
    async fn publish(&self, event: Event);

    /// Events from now on, from every process.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
}

/// Events within one process.
pub struct Local {
    tx: broadcast::Sender<Event>,
}

impl Default for Local {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
        }
    }
}

#[async_trait]
impl Events for Local {
    async fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
